"""kepler build with its trials on Spark, what needs no JVM: a wrong master or a missing pyspark refused first, in one
line, with nothing written; and what an executor receives pickles with the standard pickle, as Spark's broadcast does.
The builds on the ``local[2]`` Spark are in test_spark.py (one module, one JVM)."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import kepler as kp
from kepler.automl.families import FAMILIES
from kepler.automl.pipelines import learner_class
from kepler.automl.spark import SparkTrials, TrialMetric, aggregate_folds, trials_setting
from kepler.cli.main import main
from kepler.errors import DataError, EndpointError, KeplerError

SENSORS = Path(__file__).resolve().parents[2] / "examples" / "data" / "sensors.csv"


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
