"""AutoML inside a caller's MLflow run: FLAML logs nothing, Kepler records child runs, no stray folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

import kepler as kp

BUDGET = "3s"  # a few seconds: the tests check what is recorded, not how good the model is


def _table(rows: int = 200) -> pd.DataFrame:
    """Readings with a text column and a 0/1 label that the text and temperature explain."""
    rng = np.random.default_rng(11)
    temperature = rng.normal(70, 5, rows)
    line = rng.choice(["H", "north", "south"], rows)
    return pd.DataFrame(
        {
            "temperature": temperature.round(3),
            "pressure": rng.normal(1, 0.1, rows).round(4),
            "line": line,
            "failure": ((temperature > 72) | (line == "H")).astype(int),
        }
    )


def _children(client: MlflowClient, experiment_id: str, parent: str) -> list[Any]:
    return client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent}'", max_results=1000)


def _strays(*roots: Path) -> list[Path]:
    """MLflow or FLAML leftovers outside the project's .kepler/ store."""
    found = []
    for root in roots:
        for pattern in ("mlruns", "mlartifacts", "mlflow.db", "flaml.log", "catboost_info"):
            found += [p for p in root.rglob(pattern) if ".kepler" not in p.relative_to(root).parts]
    return found


def _check_search_run(client: MlflowClient, experiment_id: str, parent: str, result: Any) -> Any:
    """The search's child run under ``parent`` holds its params and metrics, with one child run per trial."""
    children = _children(client, experiment_id, parent)
    searches = [r for r in children if r.data.tags.get("kepler.kind") == "automl-search"]
    assert len(searches) == 1, [r.data.tags.get("mlflow.runName") for r in children]
    search = searches[0]
    assert search.info.run_id == result["mlflow"]["search_run_id"] and search.info.status == "FINISHED"
    params, metrics = search.data.params, search.data.metrics
    assert params["family"] == result["best_algorithm"] and params["metric"] == result["metric"]
    assert params["estimator"] == result["best_estimator"]
    assert float(params["budget.latency_p99_ms"]) == result["budgets"]["latency_p99_ms"]["limit"]
    assert float(params["budget.size_mb"]) == result["budgets"]["size_mb"]["limit"]
    assert float(params["time_budget_s"]) == 3.0
    assert metrics["test_score"] == pytest.approx(result["test_metrics"]["score"])
    assert metrics["trials"] == len(result["trials"])
    assert search.data.tags["kepler.deployment_ready"] == str(result["deployment_ready"])
    trials = _children(client, experiment_id, search.info.run_id)
    assert len(trials) == len(result["trials"]) > 0
    return search


def test_automl_inside_track_experiment_records_child_runs(project: Any, tmp_path: Path) -> None:
    with kp.versioning.track_experiment("automl-v2.0") as exp:
        result = kp.automl.automl_pipeline(
            _table(),
            target="failure",
            optimization_time=BUDGET,
            interpretability_required=True,
            output=tmp_path / "artifact",
        )
        assert mlflow.active_run().info.run_id == exp.run_id  # the caller's run is still the active one
    assert exp.status == "FINISHED"
    client = MlflowClient(tracking_uri=project.tracking_uri)
    search = _check_search_run(client, exp.experiment_id, exp.run_id, result)
    assert result["mlflow"]["parent_run_id"] == exp.run_id
    assert search.data.tags["kepler.project"] == project.name
    assert len(search.data.tags["mlflow.source.git.commit"]) == 40
    # FLAML logged nothing of its own: no model, no other run.
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    assert {r.data.tags.get("kepler.kind") for r in runs if r.info.run_id != exp.run_id} <= {
        "automl-search",
        None,
    }
    assert not any(client.list_artifacts(r.info.run_id) for r in runs)
    assert _strays(tmp_path) == []


def test_automl_inside_the_users_own_run(project: Any, tmp_path: Path) -> None:
    mlflow.set_tracking_uri(project.tracking_uri)
    try:
        with mlflow.start_run() as run:
            result = kp.automl.industrial_automl(
                _table(),
                target="failure",
                use_case="predictive_maintenance",
                production_environment="edge",
                optimization_time=BUDGET,
                output=tmp_path / "artifact",
            )
            mlflow.log_metric("after", 1.0)  # the user's run goes on as before
    finally:
        mlflow.set_tracking_uri(None)
    client = MlflowClient(tracking_uri=project.tracking_uri)
    _check_search_run(client, run.info.experiment_id, run.info.run_id, result)
    assert client.get_run(run.info.run_id).data.metrics == {"after": 1.0}
    assert _strays(tmp_path) == []


def test_without_an_active_run_nothing_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert mlflow.active_run() is None
    result = kp.automl.automl_pipeline(
        _table(),
        target="failure",
        optimization_time=BUDGET,
        interpretability_required=True,
        output=tmp_path / "artifact",
    )
    assert "mlflow" not in result
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact"]


def test_build_inside_track_experiment_nests_its_run(project: Any, tmp_path: Path) -> None:
    (project.root / "data").mkdir()
    _table().to_csv(project.root / "data" / "readings.csv", index=False)
    with kp.versioning.track_experiment("builds-in-a-run") as exp:
        built = kp.build(
            "data/readings.csv",
            label="failure",
            time_budget=BUDGET,
            constraints={"families": ["decision_tree", "logistic_regression"]},
        )
        assert mlflow.active_run().info.run_id == exp.run_id
    client = MlflowClient(tracking_uri=project.tracking_uri)
    search = _check_search_run(client, exp.experiment_id, exp.run_id, built.report)
    tracking = built.report["tracking"]
    build_run = client.get_run(tracking["mlflow_run_id"])
    assert build_run.data.tags["mlflow.parentRunId"] == exp.run_id
    assert build_run.info.experiment_id == exp.experiment_id and tracking["experiment"] == "builds-in-a-run"
    assert build_run.data.tags["kepler.search_run_id"] == search.info.run_id
    # The trials are recorded once, under the search run.
    assert _children(client, exp.experiment_id, build_run.info.run_id) == []
    assert (
        kp.versioning.get_unified_version(tracking["unified_version"]).mlflow_run_id == build_run.info.run_id
    )
    assert _strays(tmp_path) == []
