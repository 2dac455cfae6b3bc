"""The benchmark script runs end to end (quick mode) and reports every figure the README quotes.

Speed goals are not asserted here: they live in the script's output, measured on a quiet machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "compile_vs_native.py"


def test_quick_run_reports_every_model_and_target(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "compile_vs_native.json").read_text())
    pairs = {(r["model"], r["target"]) for r in report["results"]}
    assert pairs == {
        (m, t)
        for m in ("xgboost", "random_forest", "lightgbm", "logistic_pipeline")
        for t in ("edge", "cloud-1t")  # --quick leaves out the 2-thread cloud profile
    }
    for row in report["results"]:
        assert row["parity_passed"] and row["label_agreement"] == 1.0
        tree = row["model"] != "logistic_pipeline"
        backends = {"onnxruntime", "c-trees"} if tree and row["target"] != "edge" else {"onnxruntime"}
        assert set(row["backend_rows_s"]) == backends, row
        assert all(diff <= 1e-6 for diff in row["backend_max_abs_diff_vs_onnx"].values()), row
        assert row["target"] == "cloud" or row["threads"] == 1
        assert row["native_p50_us"] > 0 and row["compiled_p50_us"] > 0 and row["session_p50_us"] > 0
        assert row["native_rows_s"] > 0 and row["compiled_rows_s"] > 0 and row["size_mb"] > 0
    markdown = (tmp_path / "compile_vs_native.md").read_text()
    assert "Machine:" in markdown and markdown.count("\n| ") == 1 + len(report["results"])
