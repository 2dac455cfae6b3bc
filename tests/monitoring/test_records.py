"""Monitoring runs on record (kepler/monitoring/records.py): an MLflow run under the release's model line and a
lineage node on the release, in a real project with a real SQLite tracking store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kepler.errors import MonitoringError
from kepler.monitoring import data_drift
from kepler.monitoring.records import (
    drift_metrics,
    find_release,
    metric_name,
    node_id,
    record_monitoring_run,
    safe_metrics,
)


def test_metric_names_are_made_safe_and_kept_apart() -> None:
    assert metric_name("column.temp [C].ks.statistic") == "column.temp _C_.ks.statistic"
    values, renamed = safe_metrics(
        {"temp [C]": 1.0, "temp (C)": 2.0, "ok": 3, "flag": True, "gone": float("nan"), "text": "x"}
    )
    assert values == {"temp _C_": 1.0, "temp _C_~2": 2.0, "ok": 3.0, "flag": 1.0}
    assert renamed == {"temp _C_": "temp [C]", "temp _C_~2": "temp (C)"}
    assert len(metric_name("x" * 400)) == 250


def test_drift_metrics_hold_the_verdict_and_every_rows_figures() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"a": rng.normal(0, 1, 300), "b": rng.normal(0, 1, 300)})
    current = pd.DataFrame({"a": rng.normal(3, 1, 300), "b": rng.normal(0, 1, 300)})
    report = data_drift(reference, current)
    metrics = drift_metrics(report)
    assert metrics["drift_share"] == 0.5 and metrics["dataset_drift"] == 1.0
    assert metrics["drifted_columns"] == 1.0 and metrics["tested_columns"] == 2.0
    assert metrics["column.a.ks.drifted"] == 1.0 and metrics["column.b.ks.drifted"] == 0.0
    assert metrics["column.a.ks.statistic"] == report.columns[0].statistic
    assert metrics["column.a.ks.p_value"] == report.columns[0].p_value


def test_outside_a_project_nothing_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert record_monitoring_run("drift", "pm-1.0", {"drift_share": 0.0}, {}) is None
    assert find_release(["pm-1.0", "today.csv"]) is None
    assert not list(tmp_path.iterdir())
    with pytest.raises(MonitoringError, match="unknown monitoring kind"):
        record_monitoring_run("latency", "pm-1.0", {}, {})


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh project with release pm-1.0 (model line pm) and no build."""
    from kepler.versioning.project import init
    from kepler.versioning.releases import create_release

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    made = init(tmp_path / "proj")
    monkeypatch.chdir(made.root)
    create_release("pm-1.0", "1.0.0", model_line="pm")
    return made


@pytest.mark.integration
def test_a_run_is_an_mlflow_run_with_metrics_and_a_lineage_node_on_the_release(
    project: Any, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from kepler.versioning.lineage import get_complete_lineage, get_lineage_node

    html = tmp_path / "drift.html"
    html.write_text("<!DOCTYPE html><title>Data drift</title>\n", encoding="utf-8")
    report = {"columns": [], "drift_share": 0.25, "dataset_drift": False}
    metrics = {"drift_share": 0.25, "dataset_drift": 0.0, "column.temp [C].ks.p_value": 0.5}
    # a file and a data version id name no release; the release does
    assert find_release([str(html), "sensors-123", "pm-1.0"]) == "pm-1.0"
    run_id = record_monitoring_run("drift", "pm-1.0", metrics, report, html)
    assert run_id is not None

    client = MlflowClient(tracking_uri=project.tracking_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "kepler-monitoring-pm"
    assert run.data.metrics == {"drift_share": 0.25, "dataset_drift": 0.0, "column.temp _C_.ks.p_value": 0.5}
    tags = run.data.tags
    assert (tags["kepler.monitor"], tags["kepler.release"], tags["kepler.model_line"]) == (
        "drift",
        "pm-1.0",
        "pm",
    )
    assert tags["kepler.lineage_node"] == node_id("drift", run_id)
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert artifacts == {"report.json", "report.html", "metric_names.json"}
    stored = json.loads(Path(client.download_artifacts(run_id, "report.json", str(tmp_path))).read_text())
    assert stored == report

    node = get_lineage_node(node_id("drift", run_id))
    assert node["kind"] == "monitoring" and node["inputs"] == ["pm-1.0"]
    assert node["metadata"]["run_id"] == run_id and node["metadata"]["drift_share"] == 0.25
    assert get_lineage_node("pm-1.0")["kind"] == "release"
    steps = {s["node_id"]: s["relation"] for s in get_complete_lineage("pm-1.0")}
    assert steps[node_id("drift", run_id)] == "downstream"

    # a figure per window: one metric, a step per window
    windows = record_monitoring_run(
        "performance", "pm-1.0", {"degraded": 1.0}, {}, series={"f1": [0.9, None, 0.7]}
    )
    assert windows is not None
    history = client.get_metric_history(windows, "f1")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (2, 0.7)]

    # no subject: nothing recorded; a subject that is no release nor service: one clear error
    assert record_monitoring_run("drift", None, metrics, report) is None
    with pytest.raises(MonitoringError, match="neither a release nor a deployment"):
        record_monitoring_run("drift", "pm-9", metrics, report)
    assert len(client.search_runs([run.info.experiment_id])) == 2
