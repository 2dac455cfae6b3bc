"""The serving benchmark runs end to end (quick mode) and reports every figure the README quotes.

Speed goals are not asserted here: they live in the script's output, measured on a quiet machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "serve.py"
FIELDS = (
    "requests",
    "ok",
    "errors",
    "throughput_rps",
    "p50_ms",
    "p99_ms",
    "server_cpu_ms_per_request",
    "server_process_cores",
    "other_cores",
    "workers",
    "access_log",
    "batching",
    "ready_s",
)


def test_quick_run_reports_both_services(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--seconds", "0.5", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads((tmp_path / "serve.json").read_text())
    runs = {(r["service"], r["load"]) for r in report["results"]}
    assert runs == {("kepler", "closed"), ("native", "closed"), ("kepler", "open"), ("native", "open")}
    for row in report["results"]:
        assert all(field in row for field in FIELDS), sorted(set(FIELDS) - set(row))
        assert row["requests"] > 0 and row["ok"] + row["errors"] == row["requests"]
        assert row["p50_ms"] <= row["p99_ms"]
    # Both services answer the same rows with the same probabilities (the ONNX graph against the native model).
    assert report["agreement"]["rows"] > 0 and report["agreement"]["max_abs_diff"] < 1e-4
    assert set(report["goal"]) >= {"rate", "p99_ms", "met", "setting", "detail"}
    markdown = (tmp_path / "serve.md").read_text()
    assert "Machine:" in markdown and markdown.count("\n| ") == 1 + len(report["results"])
