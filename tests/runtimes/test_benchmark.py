"""kepler.runtimes.benchmark: latency percentiles per batch size, throughput, size, load time, memory,
and ratios against the native model."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingRegressor
from xgboost import XGBClassifier

import kepler as kp
import kepler.runtimes as kr
from kepler.errors import ArtifactError
from kepler.runtimes.benchmark import time_calls

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

FAST = {"batch_sizes": (1, 16), "min_time_s": 0.01, "max_time_s": 0.5}  # stops after 50 calls and 10 ms


@pytest.fixture(scope="module")
def xgb(industrial, tmp_path_factory) -> dict[str, Any]:
    rows = industrial.numeric.to_numpy()
    model = XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1).fit(rows, industrial.failure)
    output = tmp_path_factory.mktemp("bench") / "artifact"
    kp.compile(model, target="edge", sample=rows, output=output, benchmark=False)
    return {"model": model, "rows": rows, "path": output}


def test_report_per_batch_size(xgb):
    report = kr.benchmark(xgb["path"], **FAST)

    assert report["target"] == "edge" and report["threads"] == 1
    assert [b["batch"] for b in report["batches"]] == [1, 16]
    for batch in report["batches"]:
        assert 0 < batch["p50_ms"] <= batch["p95_ms"] <= batch["p99_ms"]
        assert batch["mean_ms"] > 0
        assert batch["iterations"] >= 50
        assert batch["throughput_rows_s"] == pytest.approx(batch["batch"] / (batch["p50_ms"] / 1e3))
    assert report["throughput_batch"] == 16
    assert report["throughput_rows_s"] == report["batches"][-1]["throughput_rows_s"]
    assert report["size_mb"] == pytest.approx(os.path.getsize(xgb["path"] / "model.onnx") / 2**20)
    assert report["model_file"] == "model.onnx"
    assert report["load_ms"] > 0
    assert report["session_rss_mb"] >= 0 and report["peak_rss_mb"] > 0
    assert report["machine"]["cores"] == os.cpu_count() and report["machine"]["cpu"]
    json.dumps(report)  # JSON-ready


def test_budgets_compare_with_the_profile(xgb):
    report = kr.benchmark(xgb["path"], **FAST)
    budgets = report["budgets"]
    assert budgets["latency_p99_ms"] == {
        "limit": 50.0,
        "measured": report["batches"][0]["p99_ms"],
        "ok": report["batches"][0]["p99_ms"] <= 50.0,
    }
    assert budgets["size_mb"]["limit"] == 10.0 and budgets["size_mb"]["ok"] is True
    assert budgets["memory_mb"] == {
        "limit": 256.0,
        "measured": report["process_peak_rss_mb"],
        "ok": report["process_peak_rss_mb"] <= 256.0,
    }


def test_memory_is_the_peak_of_a_fresh_runtime_process(xgb):
    import subprocess
    import sys

    report = kr.benchmark(xgb["path"], **FAST)
    # The imports alone, in a process like the one the benchmark starts: the figure holds at least these...
    imports = subprocess.run(
        [
            sys.executable,
            "-P",
            "-c",
            "import numpy, onnxruntime, kepler.runtimes\n"
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert report["process_peak_rss_mb"] >= int(imports.stdout) / 1024
    # ...and not this process's, which holds scikit-learn, XGBoost and the converters besides.
    assert report["process_peak_rss_mb"] < report["peak_rss_mb"]


def test_memory_can_be_left_unmeasured_and_then_fails_its_budget(xgb):
    report = kr.benchmark(xgb["path"], process_memory=False, **FAST)
    assert report["process_peak_rss_mb"] is None
    assert report["budgets"]["memory_mb"] == {"limit": 256.0, "measured": None, "ok": False}


def test_a_fresh_process_that_cannot_load_the_artifact_is_an_error(xgb, tmp_path):
    import shutil

    from kepler.errors import KeplerError
    from kepler.runtimes.benchmark import process_peak_rss_mb

    path = tmp_path / "copy"
    shutil.copytree(xgb["path"], path)
    predictor = kr.load(path)
    row = predictor.fastest_form(xgb["rows"][:1])
    assert process_peak_rss_mb(path, predictor.profile, row) > 0
    (path / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(KeplerError, match="a fresh runtime process could not load .* sha256"):
        process_peak_rss_mb(path, predictor.profile, row)


def test_native_model_timed_beside_it_gives_ratios(xgb):
    report = kr.benchmark(xgb["path"], native=xgb["model"], **FAST)

    native = report["native"]
    assert native["type"] == "XGBClassifier"
    assert [b["batch"] for b in native["batches"]] == [1, 16]
    for batch in native["batches"]:
        assert 0 < batch["p50_ms"] <= batch["p99_ms"]
    ratios = report["ratios"]
    assert ratios["p50_speedup_batch1"] == pytest.approx(
        native["batches"][0]["p50_ms"] / report["batches"][0]["p50_ms"]
    )
    assert ratios["throughput_ratio"] == pytest.approx(
        report["throughput_rows_s"] / native["throughput_rows_s"]
    )
    assert ratios["p50_speedup_batch1"] > 0


def test_native_with_explicit_data(xgb):
    report = kr.benchmark(xgb["path"], data=xgb["rows"][:20], native=xgb["model"], **FAST)
    assert "ratios" in report


def test_without_native_there_are_no_ratios(xgb):
    report = kr.benchmark(xgb["path"], **FAST)
    assert "native" not in report and "ratios" not in report


def test_another_target_changes_the_session_and_budgets(xgb):
    report = kr.benchmark(xgb["path"], "cloud", **FAST)
    assert report["target"] == "cloud"
    assert report["threads"] == (os.cpu_count() or 1)
    assert report["budgets"]["latency_p99_ms"]["limit"] == 200.0


def test_batch_sizes_default_to_the_profile(industrial, tmp_path):
    profile = tmp_path / "small.toml"
    profile.write_text(
        'name = "small"\nthreads = 1\nmemory_mb = 256\nlatency_p99_ms = 50\nsize_mb = 10\n'
        'batch_sizes = [4, 1]\nartifact_format = "onnx"\npasses = []\n',
        encoding="utf-8",
    )
    rows = industrial.numeric_filled.to_numpy()
    model = GradientBoostingRegressor(n_estimators=10, random_state=0).fit(rows, industrial.wear)
    artifact = kp.compile(model, target=profile, sample=rows, output=tmp_path / "artifact", benchmark=False)

    report = kr.benchmark(artifact.path, min_time_s=0.01, max_time_s=0.05)

    assert [b["batch"] for b in report["batches"]] == [1, 4]
    assert report["target"] == "small"


def test_a_regressor_with_dataframe_rows_and_native(industrial, compile_edge):
    frame = industrial.numeric_filled
    model = GradientBoostingRegressor(n_estimators=10, random_state=0).fit(frame, industrial.wear)
    artifact = compile_edge(model, frame)
    report = kr.benchmark(artifact.path, data=frame, native=model, **FAST)
    assert report["native"]["type"] == "GradientBoostingRegressor"
    assert report["ratios"]["throughput_ratio"] > 0


def test_no_probe_and_no_data(xgb, tmp_path):
    import shutil

    path = tmp_path / "copy"
    shutil.copytree(xgb["path"], path)
    (path / "probe.json").unlink()
    with pytest.raises(ArtifactError, match="no probe rows stored; pass data="):
        kr.benchmark(path, **FAST)
    assert kr.benchmark(path, data=xgb["rows"][:5], **FAST)["batches"]


def test_time_calls_respects_its_bounds():
    calls = []
    stats = time_calls(lambda: calls.append(1), min_iters=20, min_time_s=0.0, max_time_s=0.2, warmup_s=0.0)
    assert stats["iterations"] >= 20
    assert len(calls) >= stats["iterations"] + 3  # warm-up calls are not timed
    assert stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"]
    slow = time_calls(
        lambda: np.linalg.svd(np.ones((60, 60))),
        min_iters=10**9,
        min_time_s=0.0,
        max_time_s=0.05,
        warmup_s=0.0,
    )
    assert slow["iterations"] < 10**9  # stops at max_time_s


def test_compile_records_a_benchmark_only_when_asked(xgb, industrial, tmp_path):
    rows = xgb["rows"]
    without = kp.compile(xgb["model"], target="edge", sample=rows, output=tmp_path / "a", benchmark=False)
    assert without.benchmark is None and without.manifest.benchmark is None
    on_disk = json.loads((without.path / "manifest.json").read_text(encoding="utf-8"))
    assert "benchmark" not in on_disk
