"""Pipeline stability (kepler/monitoring/pipeline.py, `kepler monitor pipeline`): the drift of each feature a
versioned pipeline outputs, between two versions on one data version, or one version across two, in a real
project; and kepler.toml's [monitoring] thresholds as the drift defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kepler.errors import DriftDetected, MonitoringError
from kepler.monitoring import data_drift


def test_kepler_toml_thresholds_and_drift_share_are_the_drift_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"a": rng.normal(0, 1, 2000), "b": rng.normal(0, 1, 2000)})
    current = pd.DataFrame({"a": rng.normal(0.08, 1, 2000), "b": rng.normal(0, 1, 2000)})
    monkeypatch.chdir(tmp_path)
    plain = data_drift(reference, current)  # no kepler.toml: Evidently's 0.1 for wasserstein
    a = plain.columns[0]
    assert (a.method, a.threshold) == ("wasserstein", 0.1) and not a.drifted
    assert plain.share_threshold == 0.5
    statistic = a.statistic
    assert statistic is not None and 0.02 < statistic < 0.1
    (tmp_path / "kepler.toml").write_text(
        f"[monitoring]\ndrift_share = 0.4\n[monitoring.thresholds]\nwasserstein = {statistic / 2}\n"
    )
    tuned = data_drift(reference, current)
    assert [(r.column, r.threshold, r.drifted) for r in tuned.columns] == [
        ("a", statistic / 2, True),
        ("b", statistic / 2, tuned.columns[1].statistic > statistic / 2),  # type: ignore[operator]
    ]
    assert tuned.share_threshold == 0.4
    # an explicit threshold or drift share still wins over the file
    given = data_drift(reference, current, threshold=0.3, drift_share=0.9)
    assert {r.threshold for r in given.columns} == {0.3} and given.share_threshold == 0.9


def _sensors(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "temperature": rng.normal(70, 5, rows),
            "pressure": rng.normal(1, 0.1, rows),
            "vibration": rng.gamma(2.0, 1.0, rows),
            "failure": rng.integers(0, 2, rows),
        }
    )
    frame.loc[rng.random(rows) < 0.3, "temperature"] = np.nan
    return frame


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A project with two data versions (the second shifts pressure), and pipeline prep in three versions:
    v1 imputes the mean, v2 a constant (only temperature, the column with gaps, changes), v3 scales."""
    import kepler as kp
    from kepler.versioning.project import init

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    made = init(tmp_path / "proj")
    monkeypatch.chdir(made.root)
    (made.root / "data").mkdir()
    first = _sensors()
    first.to_csv(made.root / "data" / "week1.csv", index=False)
    first.assign(pressure=first["pressure"] + 0.3).to_csv(made.root / "data" / "week2.csv", index=False)
    d1 = kp.versioning.version_data("data/week1.csv", version_name="week1")
    d2 = kp.versioning.version_data("data/week2.csv", version_name="week2")
    assert (d1.version_id, d2.version_id) == ("week1", "week2")
    for version, steps in (
        ("v1", [{"type": "SimpleImputer", "strategy": "mean"}]),
        ("v2", [{"type": "SimpleImputer", "strategy": "constant", "fill_value": 0.0}]),
        ("v3", [{"type": "SimpleImputer"}, {"type": "StandardScaler"}]),
    ):
        kp.versioning.version_feature_pipeline("prep", steps, version)
        kp.versioning.apply_versioned_pipeline(first, "prep", version, label="failure")
    kp.versioning.version_feature_pipeline("prep", [{"type": "MinMaxScaler"}], "v4")  # never fitted
    return made


@pytest.mark.integration
def test_a_version_that_shifts_one_feature_is_flagged_and_only_it(project: Any) -> None:
    import kepler as kp

    report = kp.monitoring.pipeline_stability("prep", versions=("v1", "v2"), data_versions="week1")
    assert report.mode == "versions"
    assert report.features == ["temperature", "pressure", "vibration"]  # the label stays out
    assert report.drifted_features == ["temperature"]
    assert report.reference == {"pipeline_version": "v1", "data": "week1"}
    assert report.current == {"pipeline_version": "v2", "data": "week1"}
    unchanged = [r for r in report.drift.columns if r.column != "temperature"]
    assert all(r.statistic == 0.0 for r in unchanged)
    # one version across the data versions: pressure moved, and nothing else
    across = kp.monitoring.pipeline_stability("prep", versions="v3", data_versions=("week1", "week2"))
    assert (across.mode, across.drifted_features) == ("data", ["pressure"])
    newest = kp.monitoring.pipeline_stability("prep", data_versions=("week1", "week2"))
    assert newest.current["pipeline_version"] == "v3"  # the newest fitted version (v4 is not fitted)
    data = newest.to_dict()
    assert {"columns", "drift_share", "dataset_drift", "pipeline", "mode", "reference", "current"} <= set(
        data
    )
    json.dumps(data)
    assert not report.dataset_drift  # 1 of 3 features: below the default drift share of 0.5
    report.raise_if_drifted()


@pytest.mark.integration
def test_bad_requests_are_one_clear_error(project: Any) -> None:
    import kepler as kp

    cases: list[tuple[dict[str, Any], str]] = [
        ({"versions": ("v1", "v2"), "data_versions": ("week1", "week2")}, "not both"),
        ({"versions": "v1", "data_versions": "week1"}, "name two pipeline versions"),
        ({"versions": ("v1", "v4"), "data_versions": "week1"}, "prep@v4 is not fitted"),
        ({"versions": ("v1", "v9"), "data_versions": "week1"}, "unknown feature pipeline 'prep@v9'"),
        ({"versions": ("v1", "v2"), "data_versions": "week9"}, "neither a file nor a data version"),
    ]
    for kwargs, message in cases:
        with pytest.raises(MonitoringError, match=message):
            kp.monitoring.pipeline_stability("prep", **kwargs)


@pytest.mark.integration
def test_cli_prints_json_records_on_the_release_shipping_the_pipeline_and_gates(project: Any) -> None:
    from mlflow import MlflowClient

    from kepler.cli.main import app, exit_code_for
    from kepler.versioning.lineage import get_lineage_node
    from kepler.versioning.releases import create_release

    runner = CliRunner()
    args = ["monitor", "pipeline", "prep", "--versions", "v1", "v2", "--on", "week1", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["drifted_features"] == ["temperature"]
    assert "recorded" not in result.stderr  # no release ships prep@v2: nothing recorded, nothing said

    create_release("pm-2.0", "2.0.0", components={"pipeline_version": "prep@v2"}, model_line="pm")
    with (project.root / "kepler.toml").open("a", encoding="utf-8") as handle:
        handle.write("\n[monitoring]\ndrift_share = 0.3\n")  # 1 of 3 features now drifts the table
    result = runner.invoke(app, [*args, "--fail-on-drift"])
    assert isinstance(result.exception, DriftDetected) and exit_code_for(result.exception) == 14
    assert json.loads(result.stdout)["dataset_drift"] is True  # the report came first, then the record
    run_id = result.stderr.split("MLflow run ")[1].split(",")[0]
    run = MlflowClient(tracking_uri=project.tracking_uri).get_run(run_id)
    assert run.data.tags["kepler.release"] == "pm-2.0" and run.data.tags["kepler.monitor"] == "pipeline"
    assert run.data.metrics["column.temperature.ks.drifted"] == 1.0
    assert get_lineage_node(f"monitor-pipeline-{run_id}")["inputs"] == ["pm-2.0"]
