"""The budget-under-load benchmark runs end to end (one short round) and reports each search against its budget.

The goal (search within budget × 1.2) is not asserted here: it lives in the script's output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "budget_under_load.py"
# Two searches side by side, beside the other test worker: each needs room for at least one trial.
BUDGET_S = 5


def test_one_short_round_reports_both_searches(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--budget",
            str(BUDGET_S),
            "--rounds",
            "1",
            "--no-quiet",
            "--output",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "budget_under_load.json").read_text())
    assert report["budget_s"] == BUDGET_S and report["goal_ratio"] == 1.2 and report["machine"]["cores"]
    runs = report["runs"]["loaded"]
    assert sorted(r["table"] for r in runs) == ["diabetes", "sensors"] and report["runs"]["quiet"] == []
    for run in runs:
        assert (
            run["ratio"] == run["search_seconds"] / BUDGET_S
            and run["final_seconds"] > 0
            and run["trials"] > 0
        )
        assert run["isolation"] == "process" and isinstance(run["stopped"], bool) and run["deployment_ready"]
    assert report["max_ratio"] == max(r["ratio"] for r in runs)
    markdown = (tmp_path / "budget_under_load.md").read_text()
    assert markdown.startswith("Machine: ") and "| sensors | 1 side by side |" in markdown
    assert "| diabetes | 1 side by side |" in markdown
