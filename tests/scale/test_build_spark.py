"""kepler build with its trials on Spark: a compliant model on the shared local[2] session, recorded as completely
as a build on this machine; a wrong master or a missing pyspark refused first, in one line, with nothing written;
and what an executor receives pickles with the standard pickle, as Spark's broadcast does."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow import MlflowClient

import kepler as kp
from kepler.automl.families import FAMILIES
from kepler.automl.pipelines import learner_class
from kepler.automl.spark import SparkTrials, TrialMetric, aggregate_folds, trials_setting
from kepler.cli.main import main
from kepler.errors import DataError, EndpointError, KeplerError

SENSORS = Path(__file__).resolve().parents[2] / "examples" / "data" / "sensors.csv"
FAMILY_NAMES = ["logistic_regression", "decision_tree"]


# -- on Spark (integration) ------------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_build_on_spark_finds_a_compliant_model_and_records_it_completely(
    spark_session: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kepler.versioning.project import init

    init(tmp_path)
    (tmp_path / "data").mkdir()
    pd.read_csv(SENSORS).head(600).to_csv(tmp_path / "data" / "sensors.csv", index=False)
    monkeypatch.chdir(tmp_path)
    built = kp.build(
        "data/sensors.csv",
        label="failure",
        target="edge",
        time_budget=6,  # the search's; Spark's start and its workers' warm-up come on top
        seed=1,
        constraints={"families": FAMILY_NAMES},
        spark="local[2]",
        concurrent_trials=2,
    )
    report = built.report.to_dict()

    # Found on Spark, and the driver's re-measurement decided.
    assert report["search_isolation"] == "spark"
    assert report["spark"]["master"] == "local[2]" and report["spark"]["concurrent_trials"] == 2
    assert "re-measured on the driver" in report["spark"]["note"]
    assert report["trials"] and {t["family"] for t in report["trials"]} <= set(FAMILY_NAMES)
    assert report["deployment_ready"] is True
    assert all(row["ok"] for row in report["constraint_report"])
    assert report["constraint_report"][0]["measured"] == built.result["constraint_report"][0]["measured"]
    assert (built.path / "artifact" / "manifest.json").is_file()
    assert report["spark"]["note"].replace("'", "&#x27;") in (built.path / "report.html").read_text("utf-8")

    # The same records as a build on this machine: MLflow run with a child per trial, registered model, data
    # version, unified version, lineage.
    tracking = report["tracking"]
    client = MlflowClient(tracking_uri=kp.Project(".").tracking_uri)
    run = client.get_run(tracking["mlflow_run_id"])
    assert run.data.params["family"] == report["best_algorithm"]
    assert run.data.tags["kepler.data_versions"] == tracking["data_version"]
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'", max_results=1000
    )
    assert len(children) == len(report["trials"])
    model = tracking["registered_model"]
    assert client.get_model_version(model["name"], model["version"]).run_id == run.info.run_id
    unified = kp.versioning.get_unified_version(tracking["unified_version"])
    assert unified.mlflow_run_id == run.info.run_id
    assert unified.artifact_sha256 == report["artifact"]["sha256"]
    lineage = kp.versioning.get_complete_lineage(tracking["unified_version"])
    assert [step["node_id"] for step in lineage] == [tracking["data_version"], tracking["unified_version"]]
    assert not tracking["notes"]


@pytest.mark.integration
def test_executors_that_cannot_load_the_trial_fail_the_build_at_once_in_one_line(
    spark_session: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kepler.automl.families import Family

    # A family only this process knows: an executor unpickling the search finds no such family, as one without
    # Kepler finds no such module.
    tree = FAMILIES.get("decision_tree")
    family = Family("only_on_the_driver", tree.build, tree.space, tree.tasks, tree.estimators)
    monkeypatch.setitem(FAMILIES._entries, family.name, family)
    table = tmp_path / "sensors.csv"
    pd.read_csv(SENSORS).head(300).to_csv(table, index=False)
    with pytest.raises(KeplerError) as raised:
        kp.build(
            table,
            label="failure",
            time_budget=60,
            constraints={"families": [family.name]},
            spark="local[2]",
            output=tmp_path / "builds",
            track=False,
        )
    message = str(raised.value)
    assert "executors of Spark local[2] cannot run Kepler's trials" in message and "\n" not in message
    assert "only_on_the_driver" in message and "pip install 'kepler-ml[spark]'" in message
    assert not (tmp_path / "builds").exists() or not any((tmp_path / "builds").iterdir())


# -- refused first (unit: nothing starts) ------------------------------------------------------------------------


@pytest.fixture
def table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "sensors.csv"
    pd.read_csv(SENSORS).head(50).to_csv(path, index=False)
    return path


def _refused(table: Path, capsys: pytest.CaptureFixture[str], *args: str, code: int = 1) -> str:
    exited = main(["build", str(table), "--label", "failure", "--no-track", "--time-budget", "5s", *args])
    err = capsys.readouterr().err
    assert exited == code and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and not (table.parent / "builds").exists()  # nothing recorded
    return err


def test_an_unreachable_master_is_refused_in_one_line_before_anything_is_written(
    table: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    err = _refused(table, capsys, "--spark", f"spark://127.0.0.1:{port}", code=EndpointError.exit_code)
    assert f"spark://127.0.0.1:{port}" in err and "cannot be reached" in err and "master runs" in err


def test_a_wrong_master_url_is_refused_in_one_line(table: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(table, capsys, "--spark", "localhost:7077")
    assert "'localhost:7077' is not a master URL" in err and "spark://HOST:PORT" in err


def test_without_pyspark_the_error_names_the_install_command(
    table: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark raises ImportError
    err = _refused(table, capsys, "--spark", "local[2]")
    assert "pip install 'kepler-ml[spark]'" in err


def test_concurrent_trials_need_a_master_and_model_builds_take_no_spark(
    table: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "--spark MASTER" in _refused(table, capsys, "--concurrent-trials", "2")
    model = table.parent / "model.joblib"
    model.write_bytes(b"")
    assert "a --model build has none" in _refused(table, capsys, "--model", str(model), "--spark", "local[2]")


def test_the_master_and_concurrency_come_from_kepler_toml_and_the_command_line_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert trials_setting() is None
    (tmp_path / "kepler.toml").write_text(
        '[scale]\nspark_master = "spark://cluster:7077"\nconcurrent_trials = 8\n', encoding="utf-8"
    )
    assert trials_setting() == SparkTrials("spark://cluster:7077", 8)
    assert trials_setting("local[2]", 2) == SparkTrials("local[2]", 2)
    assert trials_setting("local[2]") == SparkTrials("local[2]", 8)
    (tmp_path / "kepler.toml").write_text("[scale]\nconcurrent_trials = 0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"\[scale\] concurrent_trials must be a whole number"):
        trials_setting()
    with pytest.raises(KeplerError, match="at least 1"):
        SparkTrials("local[2]", 0)


# -- what an executor receives -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sensors(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("spark-trials") / "sensors.csv"
    pd.read_csv(SENSORS).head(600).to_csv(path, index=False)
    return kp.data.load(path, label="failure")


def test_learners_families_and_the_trial_metric_pickle_as_spark_broadcasts_them(sensors) -> None:
    from kepler.automl.search import SearchSpec
    from kepler.targets import load_profile

    family = FAMILIES.get("decision_tree")
    learner = learner_class(family, "classification", 3, ["a"], ["b"], trial_threads=1)
    again = pickle.loads(pickle.dumps(learner))  # the standard pickle: classes by reference otherwise
    assert again.kepler_family == "decision_tree" and again.kepler_arguments == learner.kepler_arguments
    assert pickle.loads(pickle.dumps(family)) is family
    spec = SearchSpec(
        task="classification",
        metric="roc_auc",
        metric_options={},
        families=[family],
        profile=load_profile("edge"),
        budgets={"latency_p99_ms": {"limit": 50.0}, "size_mb": {"limit": 10.0}},
        time_budget_s=5,
        seed=0,
        interpretable=False,
        positive=1,
    )
    metric = pickle.loads(pickle.dumps(TrialMetric(spec)))

    # A trial as FLAML runs it on the executor: fit under the profile's threads, then the metric compiles and
    # times the candidate and returns its figures.
    frame, label = sensors.frame, sensors.label
    numeric, categorical = list(sensors.numeric_columns), list(sensors.categorical_columns)
    cls = pickle.loads(
        pickle.dumps(learner_class(family, "classification", 0, numeric, categorical, trial_threads=1))
    )
    estimator = cls(task="binary", max_depth=3, min_samples_leaf=5)
    estimator.fit(frame.head(400), label.head(400))
    loss, figures = metric(frame.tail(200), label.tail(200), estimator, None, None, None)
    assert figures["error"] is None and figures["family"] == "decision_tree"
    assert 0 < figures["p99_ms"] < 1e3 and 0 < figures["size_mb"] < 1 and loss == -figures["val_score"]

    broken = cls(task="binary", max_depth=3, min_samples_leaf=5)
    broken.fit(frame.head(400), label.head(400).iloc[:10])  # rows and labels disagree: the fit raises
    loss, failed = metric(frame.tail(200), label.tail(200), broken, None, None, None)
    assert failed["error"].startswith("fitting decision_tree failed: ValueError") and loss == 1e9

    score, merged = aggregate_folds([-0.5, -0.7], [figures, {**figures, "val_score": 0.9}])
    assert score == pytest.approx(-0.6) and merged["val_score"] == pytest.approx(
        (figures["val_score"] + 0.9) / 2
    )
