"""The soak benchmark runs end to end (a few seconds) and reports every figure the README quotes.

Its goals are not asserted here (they live in the script's output, from a 10-minute run), except the ones that do
not depend on the machine's speed: no 5xx, and every hostile request a 4xx.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


@pytest.mark.integration
def test_a_short_soak_reports_status_classes_latency_and_rss(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--minutes",
            "0.05",
            "--rate",
            "200",
            "--hostile-share",
            "0.2",
            "--sample-seconds",
            "1",
            "--output",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads((tmp_path / "soak.json").read_text())
    assert report["all"]["requests"] == 600 and report["all"]["p50_ms"] <= report["all"]["p99_ms"]
    classes = report["status_classes"]
    assert classes["valid"] == {"2xx": report["valid"]["requests"]}
    assert classes["hostile"] == {"4xx": report["hostile"]["requests"]} and report["hostile_not_4xx"] == {}
    assert report["checks"]["no 5xx"] and report["checks"]["every hostile request 4xx"]
    rss = report["rss"]
    assert (
        0 < rss["start_mib"]
        and 0 < rss["after_first_minute_mib"] <= rss["peak_mib"]
        and len(rss["samples"]) >= 2
    )
    markdown = (tmp_path / "soak.md").read_text()
    assert "Machine:" in markdown and "Worker RSS:" in markdown and "Goals: " in markdown
