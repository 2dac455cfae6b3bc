"""Experiment tracking on a real SQLite MLflow store inside a real git project."""

from __future__ import annotations

from pathlib import Path

import pytest

import kepler as kp
from kepler.errors import VersioningError
from kepler.versioning import gitrepo
from kepler.versioning.project import Project, init


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """One project for the module: creating MLflow's SQLite tables takes a couple of seconds."""
    return init(tmp_path_factory.mktemp("experiments") / "proj")


@pytest.fixture
def project(shared: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(shared.root)
    yield shared
    while mlflow.active_run() is not None:  # never leak a run into the next test
        mlflow.end_run()


def client(project: Project):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=project.tracking_uri)


def only_run(project: Project, experiment: str):
    experiment_id = client(project).get_experiment_by_name(experiment).experiment_id
    runs = client(project).search_runs([experiment_id])
    assert len(runs) == 1
    return runs[0]


def test_guide_block_3_runs_as_written(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    # Iniciar experimento con tracking automático
    experiment_id = kp.versioning.start_experiment("predictive-maintenance")

    # Registrar parámetros y métricas automáticamente
    kp.versioning.log_parameters({"algorithm": "xgboost", "n_estimators": 100})
    kp.versioning.log_metrics({"accuracy": 0.94, "f1_score": 0.93})

    # Finalizar experimento
    result = kp.versioning.end_experiment()
    print(f"Experiment ID: {result['run_id']}")

    assert capsys.readouterr().out == f"Experiment ID: {result['run_id']}\n"
    assert result["experiment_id"] == experiment_id and result["status"] == "FINISHED"
    run = only_run(project, "predictive-maintenance")
    assert run.info.run_id == result["run_id"] and run.info.status == "FINISHED"
    assert run.data.params == {"algorithm": "xgboost", "n_estimators": "100"}
    assert run.data.metrics == {"accuracy": 0.94, "f1_score": 0.93}
    assert run.data.tags["mlflow.source.git.commit"] == gitrepo.head(project.root)
    assert run.data.tags["kepler.version"] == kp.__version__
    assert "kepler.data_versions" not in run.data.tags  # no data version recorded in this project yet
    experiment = client(project).get_experiment(experiment_id)
    assert experiment.artifact_location == project.artifact_root
    assert Path(project.tracking_uri.removeprefix("sqlite:///")) == project.root / ".kepler" / "mlflow.db"


def test_runs_are_tagged_with_the_projects_data_versions(project: Project) -> None:
    with project.store.lock("data"):
        project.store.write(
            "data", "sensors-v1.0", {"version_id": "sensors-v1.0", "file_path": "data/sensors.csv"}
        )
        project.store.write(
            "data", "sensors-v2.0", {"version_id": "sensors-v2.0", "file_path": "data/sensors.csv"}
        )
    try:
        with kp.versioning.track_experiment("tagged") as exp:
            kp.versioning.log_metrics({"accuracy": 0.9})
        run = client(project).get_run(exp.run_id)
        assert run.data.tags["kepler.data_versions"] == "sensors-v1.0,sensors-v2.0"
    finally:
        for name in ("sensors-v1.0", "sensors-v2.0"):
            project.store.path("data", name).unlink()


def test_track_experiment_finishes_the_run(project: Project) -> None:
    with kp.versioning.track_experiment("automl-v2.0") as exp:
        assert exp.status == "RUNNING"
        kp.versioning.log_parameters({"time_budget": "1h"})
        kp.versioning.log_metrics({"accuracy": 0.95})
    assert exp.status == "FINISHED"
    run = client(project).get_run(exp.run_id)
    assert run.info.status == "FINISHED" and run.info.experiment_id == exp.experiment_id
    assert run.data.params == {"time_budget": "1h"} and run.data.metrics == {"accuracy": 0.95}
    import mlflow

    assert mlflow.active_run() is None


def test_track_experiment_marks_failed_and_reraises(project: Project) -> None:
    import mlflow

    with pytest.raises(ValueError, match="training diverged"):
        with kp.versioning.track_experiment("failing") as exp:
            kp.versioning.log_metrics({"loss": 12.5})
            raise ValueError("training diverged")
    assert exp.status == "FAILED"
    run = client(project).get_run(exp.run_id)
    assert run.info.status == "FAILED" and run.data.metrics == {"loss": 12.5}
    assert mlflow.active_run() is None


def test_a_block_that_ends_its_own_run_is_respected(project: Project) -> None:
    with kp.versioning.track_experiment("self-ended") as exp:
        kp.versioning.end_experiment("KILLED")
    assert exp.status == "KILLED"
    assert client(project).get_run(exp.run_id).info.status == "KILLED"


def test_logging_without_a_run_says_how_to_start_one(project: Project) -> None:
    with pytest.raises(VersioningError, match="start one with start_experiment"):
        kp.versioning.log_parameters({"a": 1})
    with pytest.raises(VersioningError, match="start one with start_experiment"):
        kp.versioning.log_metrics({"a": 1.0})
    with pytest.raises(VersioningError, match="start one with start_experiment"):
        kp.versioning.end_experiment()


def test_bad_calls_are_refused(project: Project) -> None:
    kp.versioning.start_experiment("bad-calls")
    with pytest.raises(VersioningError, match="still active"):
        kp.versioning.start_experiment("another")
    with pytest.raises(VersioningError, match="must be numbers"):
        kp.versioning.log_metrics({"accuracy": "high"})
    with pytest.raises(VersioningError, match="unknown run status"):
        kp.versioning.end_experiment("DONE")
    assert kp.versioning.end_experiment("failed")["status"] == "FAILED"
    with pytest.raises(VersioningError, match="non-empty"):
        kp.versioning.start_experiment("")


def test_second_run_reuses_the_experiment(project: Project) -> None:
    first = kp.versioning.start_experiment("reused")
    kp.versioning.end_experiment()
    second = kp.versioning.start_experiment("reused")
    kp.versioning.end_experiment()
    assert first == second
    assert len(client(project).search_runs([first])) == 2
