"""Unified versions: git commit + DVC data + MLflow run/model + artifact + pipeline + build config,
the CLI lines of the guide, and a kill partway through."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import kepler.versioning as kv
from kepler.errors import VersioningError
from kepler.versioning.unified import UnifiedVersion


def test_unified_version_without_mlflow(
    project: Any, sensors: Path, make_table: Any, run_git: Any, run_dvc: Any
) -> None:
    make_table(project.root / "data" / "maintenance.csv", rows=12, seed=5)
    data_version = kv.version_data("data/sensors.csv", "sensors-v1.0")
    unified = kv.create_unified_version(
        version_name="production-v1.0",
        data_paths=["data/sensors.csv", "data/maintenance.csv"],
        experiment_name="predictive-maintenance",
        metadata={
            "model_type": "xgboost",
            "performance": {"accuracy": 0.94},
            "deployment_target": "cloud_run",
        },
    )
    assert isinstance(unified, UnifiedVersion) and unified.version_id == "production-v1.0"
    assert unified.dvc_data_version == data_version.md5
    assert unified.data[0] == {
        "path": "data/sensors.csv",
        "md5": data_version.md5,
        "data_version": "sensors-v1.0",
    }
    maintenance = unified.data[1]
    assert maintenance["path"] == "data/maintenance.csv" and maintenance["data_version"].startswith(
        "maintenance-"
    )
    # The commit holds both .dvc files at the recorded md5s.
    assert len(unified.git_commit) == 40 and not unified.git_dirty
    for entry in unified.data:
        dvc_file = run_git(project.root, "show", f"{unified.git_commit}:{entry['path']}.dvc")
        assert f"md5: {entry['md5']}" in dvc_file
    assert unified.mlflow_run_id is None and unified.experiment_name == "predictive-maintenance"
    assert unified.metadata["performance"] == {"accuracy": 0.94}
    assert unified.environment["libraries"]["dvc"] and unified.environment["cores"]
    assert "kepler: unified version production-v1.0" in run_git(project.root, "log", "--format=%s")
    assert run_git(project.root, "status", "--porcelain") == ""
    assert run_dvc(project.root, "status").returncode == 0
    assert kv.get_unified_version("production-v1.0") == unified
    assert [v.version_id for v in kv.list_unified_versions()] == ["production-v1.0"]
    with pytest.raises(VersioningError, match="unified version 'production-v1.0' exists"):
        kv.create_unified_version("production-v1.0", data_paths=["data/sensors.csv"])
    with pytest.raises(VersioningError, match="unknown unified version"):
        kv.get_unified_version("nope")
    with pytest.raises(VersioningError, match="not allowed"):
        kv.create_unified_version("../up")
    with pytest.raises(VersioningError, match="outside the project"):
        kv.create_unified_version("v-out", data_paths=["../elsewhere.csv"])
    assert len(kv.list_unified_versions()) == 1


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_unified_version_with_mlflow_artifact_pipeline_and_build(
    project: Any, sensors: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=project.tracking_uri, registry_uri=project.tracking_uri)
    experiment_id = client.create_experiment(
        "predictive-maintenance", artifact_location=project.artifact_root
    )
    older = client.create_run(experiment_id)
    client.set_terminated(older.info.run_id)
    time.sleep(0.01)
    latest = client.create_run(experiment_id)
    client.set_terminated(latest.info.run_id)
    time.sleep(0.01)
    child = client.create_run(experiment_id, tags={"mlflow.parentRunId": latest.info.run_id})
    client.set_terminated(child.info.run_id)
    client.create_registered_model("sensor-model")
    model_version = client.create_model_version(
        "sensor-model", source=project.artifact_root, run_id=latest.info.run_id
    )
    # A real manifest (format 1, as an older Kepler wrote it): its sha256 is what the version records.
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    manifest = Path(__file__).parents[1] / "runtimes" / "data" / "manifest_v1" / "regressor" / "manifest.json"
    shutil.copy(manifest, artifact / "manifest.json")
    sha256 = json.loads(manifest.read_text(encoding="utf-8"))["sha256"]
    kv.version_feature_pipeline("prep", [{"type": "StandardScaler"}], "v1")
    build = {
        "estimator": "XGBClassifier",
        "hyperparameters": {"n_estimators": 100},
        "seed": 0,
        "target": "edge",
    }

    unified = kv.create_unified_version(
        "production-v1.0",
        data_paths=["data/sensors.csv"],
        experiment_name="predictive-maintenance",
        model={"name": "sensor-model", "version": model_version.version},
        artifact=artifact,
        feature_pipeline="prep@v1",
        build_config=build,
    )
    assert unified.mlflow_run_id == latest.info.run_id  # the latest top-level run, not the trial child
    assert unified.model == {"name": "sensor-model", "version": str(model_version.version)}
    assert unified.artifact_sha256 == sha256 and unified.feature_pipeline == "prep@v1"
    assert unified.build_config == build

    given = kv.create_unified_version("pinned", mlflow_run_id=older.info.run_id)
    assert (given.mlflow_run_id, given.experiment_name) == (older.info.run_id, "predictive-maintenance")
    assert given.data == [] and given.dvc_data_version is None
    with pytest.raises(VersioningError, match="belongs to experiment"):
        kv.create_unified_version("wrong", experiment_name="other", mlflow_run_id=older.info.run_id)
    with pytest.raises(VersioningError, match="MLflow run"):
        kv.create_unified_version("missing-run", mlflow_run_id="0" * 32)
    with pytest.raises(VersioningError, match="registered model sensor-model version 99 does not exist"):
        kv.create_unified_version("missing-model", model={"name": "sensor-model", "version": 99})
    with pytest.raises(VersioningError, match="manifest.json: no such file"):
        kv.create_unified_version("missing-artifact", artifact=tmp_path)
    with pytest.raises(VersioningError, match="unknown feature pipeline"):
        kv.create_unified_version("missing-pipeline", feature_pipeline="prep@v9")
    nothing = kv.create_unified_version("no-experiment", experiment_name="never-created")
    assert nothing.mlflow_run_id is None
    assert {v.version_id for v in kv.list_unified_versions()} == {
        "production-v1.0",
        "pinned",
        "no-experiment",
    }


def test_cli_create_unified_as_in_the_guide(project: Any, sensors: Path, run_kepler: Any) -> None:
    done = run_kepler(
        "versioning",
        "create-unified",
        "production-v1.0",
        "--data-paths",
        "data/sensors.csv",
        "--experiment",
        "predictive-maintenance",
        cwd=project.root,
    )
    assert done.returncode == 0, done.stderr
    assert "production-v1.0" in done.stdout and "git commit" in done.stdout
    two = run_kepler(
        "versioning",
        "create-unified",
        "v2",
        "--data-paths",
        "data/sensors.csv",
        "--data-paths",
        "data/sensors.csv",
        "--metadata",
        '{"model_type": "xgboost"}',
        "--json",
        cwd=project.root,
    )
    assert two.returncode == 0, two.stderr
    record = json.loads(two.stdout)
    assert record["metadata"] == {"model_type": "xgboost"} and len(record["data"]) == 2
    assert record["dvc_data_version"] == record["data"][0]["md5"]
    listed = run_kepler("versioning", "list-unified", "--json", cwd=project.root)
    assert [v["version_id"] for v in json.loads(listed.stdout)] == ["production-v1.0", "v2"]
    table = run_kepler("versioning", "list-unified", cwd=project.root)
    assert table.returncode == 0 and "production-v1.0" in table.stdout
    again = run_kepler("versioning", "create-unified", "production-v1.0", cwd=project.root)
    assert again.returncode == 11 and "exists" in again.stderr and len(again.stderr.strip().splitlines()) == 1


_CHILD = """
import sys
from kepler.versioning import create_unified_version, version_data
version_data("data/warmup.csv")
print("ready", flush=True)
create_unified_version("killed", data_paths=[f"data/part-{i}.csv" for i in range(8)])
print("finished", flush=True)
"""


def test_kill_partway_leaves_a_readable_store(
    project: Any, make_table: Any, run_git: Any, run_dvc: Any
) -> None:
    make_table(project.root / "data" / "warmup.csv", rows=5)
    for i in range(8):
        make_table(project.root / "data" / f"part-{i}.csv", rows=8, seed=i)
    env = {k: v for k, v in os.environ.items() if k != "KEPLER_DEBUG"}
    child = subprocess.Popen(
        [sys.executable, "-P", "-c", _CHILD], cwd=project.root, env=env, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    time.sleep(0.6)  # somewhere inside create_unified_version's data versioning
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    store = project.store
    for kind in ("data", "unified"):
        for record in store.all(kind):  # every record readable, whatever the kill interrupted
            assert record["version_id"]
    finished = store.exists("unified", "killed")
    # As the error would tell a user: a git command killed midway leaves .git/index.lock behind.
    (project.root / ".git" / "index.lock").unlink(missing_ok=True)
    if finished:
        assert kv.get_unified_version("killed").data
    else:
        unified = kv.create_unified_version("killed", data_paths=[f"data/part-{i}.csv" for i in range(8)])
        assert len(unified.data) == 8
    assert run_git(project.root, "status", "--porcelain") == ""
    status = run_dvc(project.root, "status")
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout + status.stderr
