"""A kepler build inside a project records itself, the real tools agree, and reproducing it rebuilds the same model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

import kepler as kp
from kepler.versioning.project import init

SENSORS = Path(__file__).resolve().parents[2] / "examples" / "data" / "sensors.csv"


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tracked")
    init(root)
    (root / "data").mkdir()
    pd.read_csv(SENSORS).head(1500).to_csv(root / "data" / "sensors.csv", index=False)
    return root


@pytest.mark.parametrize(
    ("families", "exact"),
    [(["random_forest", "lightgbm"], True), (["logistic_regression"], False)],
    ids=["trees", "linear"],
)
def test_build_is_recorded_and_reproduces(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch, families, exact
) -> None:
    monkeypatch.chdir(project_dir)
    built = kp.build(
        "data/sensors.csv",
        label="failure",
        target="edge",
        time_budget=4,
        seed=3,
        constraints={"families": families},
    )
    tracking = built.report["tracking"]
    name = tracking["unified_version"]

    # MLflow: the build's run with params, metrics and tags, one child run per trial, a registered model.
    client = MlflowClient(tracking_uri=kp.Project(".").tracking_uri)
    run = client.get_run(tracking["mlflow_run_id"])
    assert run.data.params["family"] == built.report["best_algorithm"]
    assert "test_score" in run.data.metrics and "budget_latency_p99_ms" in run.data.metrics
    assert run.data.tags["kepler.data_versions"] == tracking["data_version"]
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'", max_results=1000
    )
    assert len(children) == len(built.report["trials"])
    model = tracking["registered_model"]
    assert client.get_model_version(model["name"], model["version"]).run_id == run.info.run_id

    # git, DVC and the records agree.
    unified = kp.versioning.get_unified_version(name)
    assert (
        unified.mlflow_run_id == run.info.run_id
        and unified.artifact_sha256 == built.report["artifact"]["sha256"]
    )
    assert unified.git_commit in _git(project_dir, "rev-list", "--all")
    dvc = Path(sys.executable).with_name("dvc")
    status = subprocess.run([str(dvc), "status"], cwd=project_dir, capture_output=True, text=True)
    assert status.returncode == 0 and ("up to date" in status.stdout.lower() or status.stdout.strip() == "")
    assert f"kepler: probe set of {name}" in _git(project_dir, "log", "--format=%s")
    lineage = kp.versioning.get_complete_lineage(name)
    assert [step["node_id"] for step in lineage] == [tracking["data_version"], name]

    # Reproduction: data restored by hash, config retrained with its seed, recompiled, probe predictions compared.
    result = kp.reproduce.from_version(name, output=project_dir / "repro" / name)
    assert result.success, result.error_message
    comparison = result.comparison
    assert comparison["labels_equal"] and comparison["within_tolerance"]
    if exact:
        assert comparison["max_abs_diff"] == 0.0 and comparison["bit_exact"]
    assert any("retrained" in step for step in result.steps_completed)


def test_a_text_label_build_reproduces_with_its_recorded_labels(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project_dir)
    frame = pd.read_csv(SENSORS).head(600)
    frame["grade"] = pd.cut(frame["tool_wear_min"], 3, labels=["worn", "new", "used"]).astype(str)
    frame.drop(columns=["failure", "tool_wear_min"]).to_csv(project_dir / "data" / "grades.csv", index=False)
    # XGBoost takes only codes 0..k-1: before, this build ended in an internal error.
    built = kp.build(
        "data/grades.csv",
        label="grade",
        target="edge",
        time_budget=4,
        seed=1,
        constraints={"families": ["xgboost"]},
    )
    name = built.report["tracking"]["unified_version"]
    assert built.report["class_labels"] == ["new", "used", "worn"]
    assert kp.versioning.get_unified_version(name).build_config["class_labels"] == ["new", "used", "worn"]

    result = kp.reproduce.from_version(name, output=project_dir / "repro" / name)
    assert result.success, result.error_message
    assert result.comparison["labels_equal"] and result.comparison["bit_exact"]
    manifest = kp.runtimes.load(project_dir / "repro" / name / "artifact").manifest
    assert manifest.output_schema.classes == ("new", "used", "worn")


def test_reproduce_cli_and_unknown_version(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project_dir)
    kepler = str(Path(sys.executable).with_name("kepler"))
    unknown = subprocess.run(
        [kepler, "reproduce", "from-version", "nope-v9"], capture_output=True, text=True, cwd=project_dir
    )
    assert unknown.returncode == 1 and "unknown" in unknown.stderr and "Traceback" not in unknown.stderr
    versions = kp.versioning.list_unified_versions()
    assert versions
    done = subprocess.run(
        [kepler, "reproduce", "from-version", versions[0].version_id, "--type", "full"],
        capture_output=True,
        text=True,
        cwd=project_dir,
    )
    assert done.returncode == 0, done.stderr
    assert "reproduced" in done.stdout
