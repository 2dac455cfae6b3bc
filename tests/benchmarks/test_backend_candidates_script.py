"""The backend-candidates benchmark runs end to end (quick mode): every candidate timed, each one's parity.

Speed is not asserted here: the figures live in the script's output, measured on a quiet machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "backend_candidates.py"
ONNX_CANDIDATES = {
    "native predict_proba",
    "onnxruntime (profile)",
    "onnxruntime level extended",
    "onnxruntime ORT_PARALLEL",
    "TreeEnsemble (ai.onnx.ml 5)",
    "split K=1",
    "split K=2",
    "split K=4",
    "Kepler c-trees",
}


@pytest.mark.integration
def test_quick_run_times_every_candidate_with_parity(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "backend_candidates.json").read_text())
    found = {(r["model"], r["candidate"], r["threads"]) for r in report["results"]}
    expected = {
        (model, candidate, threads)
        for model in ("xgboost", "random_forest")
        for candidate in (*ONNX_CANDIDATES, "perfect-tree traversal")
        for threads in (1, 2)
    }
    assert found == expected
    for row in report["results"]:
        assert row["max_abs_diff_vs_native"] <= 1e-5, row
        assert row["p50_ms"] > 0 and row["rows_s"] > 0 and len(row["rounds_p50_ms"]) == report["rounds"], row
    # --quick leaves TL2cgen out, and says so
    assert [s["candidate"] for s in report["skipped"]] == ["TL2cgen"]
    markdown = (tmp_path / "backend_candidates.md").read_text()
    assert "Machine:" in markdown and "Skipped: all TL2cgen" in markdown
    assert (
        markdown.count("\n| ") == 1 + len(expected) // 2
    )  # the header, then one row per model and candidate
