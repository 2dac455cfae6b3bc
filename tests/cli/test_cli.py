"""The `kepler` command end to end: happy paths, and one clear line with a non-zero exit for each bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from xgboost import XGBClassifier

REPO = Path(__file__).resolve().parents[2]
SENSORS = REPO / "examples" / "data" / "sensors.csv"
NUMERIC = [
    "air_temperature_k",
    "process_temperature_k",
    "rotational_speed_rpm",
    "torque_nm",
    "tool_wear_min",
    "vibration_mm_s",
]
FEATURES = NUMERIC + ["machine_type"]
KEPLER = str(Path(sys.executable).with_name("kepler"))


def kepler(*args: str, cwd: Path | None = None, debug: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KEPLER_DEBUG"}
    if debug:
        env["KEPLER_DEBUG"] = "1"
    return subprocess.run([KEPLER, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, result.stderr
    for needle in needles:
        assert needle in error_lines[0], error_lines[0]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the example sample, a fitted XGBoost pipeline, and a few bad model files."""
    root = tmp_path_factory.mktemp("cli")
    table = pd.read_csv(SENSORS).head(1500)
    table[FEATURES].to_csv(root / "sample.csv", index=False)
    table.to_csv(root / "with_label.csv", index=False)
    pipeline = Pipeline(
        [
            (
                "pre",
                ColumnTransformer(
                    [
                        ("num", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["machine_type"]),
                    ]
                ),
            ),
            ("model", XGBClassifier(n_estimators=20, max_depth=4, n_jobs=1, random_state=0)),
        ]
    ).fit(table[FEATURES], table["failure"])
    joblib.dump(pipeline, root / "model.joblib")
    joblib.dump(LogisticRegression(), root / "unfitted.joblib")
    x = np.random.default_rng(0).normal(size=(50, 3))
    joblib.dump(SVC().fit(x, (x[:, 0] > 0).astype(int)), root / "svc.joblib")
    (root / "garbage.joblib").write_bytes(os.urandom(2048))
    whole = (root / "model.joblib").read_bytes()
    (root / "truncated.joblib").write_bytes(whole[: len(whole) // 2])
    return root


def test_help_is_lazy() -> None:
    code = (
        "import sys; from kepler.cli.main import main; rc = main(['--help']); "
        "heavy = [m for m in ('sklearn', 'mlflow', 'flaml', 'bentoml', 'xgboost', 'lightgbm', 'skl2onnx', "
        "'onnxruntime', 'pandas') if m in sys.modules]; print('HEAVY', heavy); sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    assert "compile" in result.stdout and "bench" in result.stdout and "targets" in result.stdout


def test_version() -> None:
    from kepler import __version__

    result = kepler("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"kepler {__version__}"


def test_targets_list_and_show() -> None:
    listed = kepler("targets", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    names = {p["name"]: p for p in json.loads(listed.stdout)}
    assert (
        names["edge"]["threads"] == 1
        and names["edge"]["latency_p99_ms"] == 50
        and names["edge"]["size_mb"] == 10
    )
    assert names["cloud"]["threads"] == 0 and names["cloud"]["latency_p99_ms"] == 200
    shown = kepler("targets", "show", "edge")
    assert shown.returncode == 0 and "latency_p99_ms" in shown.stdout
    assert "edge" in kepler("targets", "list").stdout


@pytest.fixture(scope="module")
def compiled(workspace: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The example pipeline compiled once by `kepler compile --json`, and the command's result; the tests that
    share the artifact only read it (one that changes it works on a copy)."""
    out = workspace / "artifact-edge"
    result = kepler(
        "compile",
        str(workspace / "model.joblib"),
        "--target",
        "edge",
        "--sample",
        str(workspace / "with_label.csv"),
        "--drop",
        "failure",
        "--drop",
        "timestamp",
        "--drop",
        "machine_id",
        "--output",
        str(out),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    return out, result


def test_compile_then_bench_against_native(
    workspace: Path, compiled: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    out, run = compiled
    manifest = json.loads(run.stdout)
    assert manifest["parity"]["passed"] and manifest["parity"]["label_agreement"] == 1.0
    assert (out / "model.onnx").is_file() and (out / "manifest.json").is_file()

    bench = kepler(
        "bench",
        str(out),
        "--compare-native",
        str(workspace / "model.joblib"),
        "--batch",
        "1",
        "--batch",
        "64",
        "--min-time",
        "0.05",  # a glance: the figures' presence is checked here, not their steadiness
        "--json",
    )
    assert bench.returncode == 0, bench.stderr
    report = json.loads(bench.stdout)
    assert [b["batch"] for b in report["batches"]] == [1, 64]
    assert report["native"]["batches"][0]["p50_ms"] > 0
    assert report["ratios"]["p50_speedup_batch1"] > 0
    assert report["budgets"]["size_mb"]["ok"]

    table = kepler("bench", str(out), "--batch", "1", "--min-time", "0.05")
    assert table.returncode == 0 and "Budgets" in table.stdout
    refused = kepler("bench", str(out), "--min-time", "0")
    assert refused.returncode == 2 and "--min-time" in refused.stderr


@pytest.mark.parametrize("fit_on", ["array", "frame"])
def test_bench_against_a_native_model_fit_on_an_array_or_a_frame(tmp_path: Path, fit_on: str) -> None:
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        rng.normal(size=(300, 4)), columns=["air temp [K]", "torque (Nm)", "speed/rpm", "wear %"]
    )
    label = (table["air temp [K]"] + table["wear %"] > 0).astype(int)
    features = table.to_numpy() if fit_on == "array" else table
    joblib.dump(
        RandomForestClassifier(n_estimators=5, random_state=0).fit(features, label), tmp_path / "rf.joblib"
    )
    table.assign(label=label).to_csv(tmp_path / "sample.csv", index=False)
    out = tmp_path / "artifact"
    compiled = kepler(
        "compile",
        str(tmp_path / "rf.joblib"),
        "--sample",
        str(tmp_path / "sample.csv"),
        "--drop",
        "label",
        "--output",
        str(out),
        "--no-benchmark",  # timed below, against the native model
    )
    assert compiled.returncode == 0, compiled.stderr
    for sample in (
        [],
        ["--sample", str(tmp_path / "sample.csv"), "--drop", "label"],
    ):  # probe rows, then a table
        bench = kepler(
            "bench",
            str(out),
            "--compare-native",
            str(tmp_path / "rf.joblib"),
            *sample,
            "--batch",
            "1",
            "--min-time",
            "0.05",
            "--json",
        )
        assert bench.returncode == 0, bench.stderr
        report = json.loads(bench.stdout)
        assert report["native"]["batches"][0]["batch"] == 1 and report["native"]["batches"][0]["p50_ms"] > 0
        assert report["ratios"]["p50_speedup_batch1"] > 0


def test_bench_against_a_native_model_needs_its_columns(
    workspace: Path, compiled: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    out = compiled[0]
    short = tmp_path / "short.csv"
    pd.read_csv(workspace / "sample.csv").drop(columns=["torque_nm"]).to_csv(short, index=False)
    result = kepler(
        "bench",
        str(out),
        "--compare-native",
        str(workspace / "model.joblib"),
        "--sample",
        str(short),
        "--batch",
        "1",
    )
    assert_clean_failure(result, 6, "torque_nm")


def test_compile_default_output_folder(workspace: Path, tmp_path: Path) -> None:
    result = kepler(
        "compile",
        str(workspace / "model.joblib"),
        "--sample",
        str(workspace / "sample.csv"),
        "--no-benchmark",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "artifacts" / "model-edge" / "manifest.json").read_text())
    assert manifest["parity"]["passed"] and manifest.get("benchmark") is None  # --no-benchmark: not timed
    assert "compiled XGBClassifier" in result.stdout and "Budgets" not in result.stdout


@pytest.mark.parametrize(
    ("model", "code", "needles"),
    [
        ("unfitted.joblib", 5, ("not fitted", "fit(X, y)")),
        ("svc.joblib", 5, ("SVC", "supported:", "RandomForestClassifier")),
        ("garbage.joblib", 4, ("unreadable or truncated",)),
        ("truncated.joblib", 4, ("unreadable or truncated",)),
        ("missing.joblib", 4, ("no such model file",)),
    ],
)
def test_bad_model_files(
    workspace: Path, tmp_path: Path, model: str, code: int, needles: tuple[str, ...]
) -> None:
    out = tmp_path / "never"
    result = kepler(
        "compile", str(workspace / model), "--sample", str(workspace / "sample.csv"), "--output", str(out)
    )
    assert_clean_failure(result, code, *needles)
    assert not out.exists()


def test_unknown_target(workspace: Path, tmp_path: Path) -> None:
    result = kepler(
        "compile",
        str(workspace / "model.joblib"),
        "--target",
        "mars",
        "--sample",
        str(workspace / "sample.csv"),
        "--output",
        str(tmp_path / "never"),
    )
    assert_clean_failure(result, 3, "unknown target 'mars'", "edge")
    assert not (tmp_path / "never").exists()


def test_malformed_profile(workspace: Path, tmp_path: Path) -> None:
    profile = tmp_path / "bad.toml"
    profile.write_text(
        (REPO / "targets" / "edge.toml").read_text().replace("threads = 1", "threads = 1\ncores = 4")
    )
    result = kepler(
        "compile",
        str(workspace / "model.joblib"),
        "--target",
        str(profile),
        "--sample",
        str(workspace / "sample.csv"),
        "--output",
        str(tmp_path / "never"),
    )
    assert_clean_failure(result, 3, str(profile), "'cores'")
    negative = tmp_path / "negative.toml"
    negative.write_text(
        (REPO / "targets" / "edge.toml").read_text().replace("size_mb = 10.0", "size_mb = -1")
    )
    result = kepler("targets", "show", str(negative))
    assert_clean_failure(result, 3, str(negative), "'size_mb'")
    assert not (tmp_path / "never").exists()


def test_sample_with_wrong_columns(workspace: Path, tmp_path: Path) -> None:
    result = kepler(
        "compile",
        str(workspace / "model.joblib"),
        "--sample",
        str(workspace / "with_label.csv"),
        "--output",
        str(tmp_path / "never"),
    )
    assert_clean_failure(result, 6, "not fit on", "failure")
    short = tmp_path / "short.csv"
    pd.read_csv(workspace / "sample.csv").drop(columns=["torque_nm"]).to_csv(short, index=False)
    result = kepler(
        "compile",
        str(workspace / "model.joblib"),
        "--sample",
        str(short),
        "--output",
        str(tmp_path / "never"),
    )
    assert_clean_failure(result, 6, "lacks columns", "torque_nm")
    assert not (tmp_path / "never").exists()


def test_sample_that_is_not_a_table(workspace: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    result = kepler(
        "compile",
        str(workspace / "model.joblib"),
        "--sample",
        str(empty),
        "--output",
        str(tmp_path / "never"),
    )
    assert_clean_failure(result, 6, "empty")
    assert not (tmp_path / "never").exists()


def test_tampered_artifact(compiled: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    out = tmp_path / "artifact"
    shutil.copytree(compiled[0], out)  # the shared artifact stays intact
    model = out / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    result = kepler("bench", str(out), "--batch", "1")
    assert_clean_failure(result, 8, "sha256", "does not match")


def test_not_an_artifact_output_is_refused(workspace: Path, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    result = kepler(
        "compile",
        str(workspace / "model.joblib"),
        "--sample",
        str(workspace / "sample.csv"),
        "--output",
        str(taken),
    )
    assert_clean_failure(result, 8, "not a Kepler artifact")
    assert sorted(p.name for p in taken.iterdir()) == ["notes.txt"]


def test_debug_shows_traceback(workspace: Path, tmp_path: Path) -> None:
    result = kepler(
        "compile",
        str(workspace / "unfitted.joblib"),
        "--sample",
        str(workspace / "sample.csv"),
        "--output",
        str(tmp_path / "never"),
        debug=True,
    )
    assert result.returncode == 5
    assert "Traceback" in result.stderr


def test_usage_error_exits_two() -> None:
    result = kepler("compile")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
