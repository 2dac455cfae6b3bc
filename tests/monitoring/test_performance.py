"""kepler.monitoring.performance: labels joined to recorded requests, metrics per window, CBPE without labels."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from typer.testing import CliRunner

from kepler.cli.main import app, exit_code_for
from kepler.deployment.recording import Recorder, records_of
from kepler.errors import MonitoringError
from kepler.monitoring.calibration import CalibrationTable
from kepler.monitoring.performance import (
    ModelFacts,
    PerformanceReport,
    join_labels,
    performance,
    performance_of,
)
from kepler.versioning.releases import Release
from kepler.versioning.store import RecordStore
from kepler.versioning.unified import UnifiedVersion

WEIGHTS = np.array([1.5, -1.0, 0.5])
START = pd.Timestamp("2026-11-30 08:00", tz="UTC")
HOUR = 3600.0
runner = CliRunner()


def _inputs(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    if kind == "boundary":  # rows near the decision boundary: accuracy falls towards a coin toss
        return np.c_[rng.normal(2 / 3, 0.05, n), rng.normal(0.0, 0.05, (n, 2))]
    return rng.normal(1.0 if kind == "shifted" else 0.0, 1.0, (n, 3))


def _labels_of(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    return (rng.random(len(x)) < 1.0 / (1.0 + np.exp(-(x @ WEIGHTS - 1.0)))).astype(int)


@pytest.fixture(scope="module")
def model() -> tuple[LogisticRegression, CalibrationTable]:
    rng = np.random.default_rng(11)
    x = _inputs(rng, 3000, "reference")
    fitted = LogisticRegression().fit(x, _labels_of(rng, x))
    held = _inputs(rng, 3000, "reference")
    return fitted, CalibrationTable.fit(fitted.predict_proba(held), _labels_of(rng, held), [0, 1])


def _traffic(
    model: LogisticRegression, kinds: list[str], rows: int = 600, seed: int = 5
) -> tuple[pd.DataFrame, np.ndarray]:
    """Recorded requests as ``read_traffic`` gives them, one window (hour) per kind, and their true labels."""
    rng = np.random.default_rng(seed)
    parts, truth = [], []
    for hour, kind in enumerate(kinds):
        x = _inputs(rng, rows, kind)
        proba = model.predict_proba(x)
        offsets = np.sort(rng.uniform(0, HOUR - 1, rows))
        parts.append(
            pd.DataFrame(
                {
                    "request_id": [f"req-{hour}-{i:05d}" for i in range(rows)],
                    "row": 0,
                    "time": START + pd.to_timedelta(hour * HOUR + offsets, unit="s"),
                    "release": "pm-1",
                    "endpoint": "/predict_proba",
                    "serial": [hour * rows + i for i in range(rows)],
                    "x0": x[:, 0],
                    "x1": x[:, 1],
                    "x2": x[:, 2],
                    "prediction": model.predict(x),
                    "probability[0]": proba[:, 0],
                    "probability[1]": proba[:, 1],
                }
            )
        )
        truth.append(_labels_of(rng, x))
    return pd.concat(parts, ignore_index=True), np.concatenate(truth)


def _facts(table: CalibrationTable, metric: str = "accuracy") -> ModelFacts:
    return ModelFacts(
        metric=metric,
        reference=table.reference[metric],
        test_metrics={"score": table.reference[metric], "accuracy": table.reference["accuracy"]},
        task="classification",
        label="failure",
        positive=1,
        calibration=table,
    )


def test_labels_join_by_request_id_and_the_metric_is_computed_per_window(
    model: tuple[LogisticRegression, CalibrationTable],
) -> None:
    fitted, table = model
    requests, truth = _traffic(fitted, ["reference", "reference", "shifted"])
    rng = np.random.default_rng(0)
    picked = np.sort(rng.choice(len(requests), 1500, replace=False))  # labels for some requests, shuffled
    labels = pd.DataFrame({"request_id": requests["request_id"].iloc[picked], "failure": truth[picked]})
    labels = labels.sample(frac=1.0, random_state=1)
    report = performance_of(requests, labels, _facts(table, "f1"), window_s=HOUR)
    assert report.mode == "labels" and report.join == "request_id"
    assert (report.labels_given, report.labels_matched, report.rows) == (1500, 1500, 1800)
    assert [w.rows for w in report.windows] == [600, 600, 600]
    assert [w.start for w in report.windows] == [START + pd.Timedelta(hours=h) for h in range(3)]
    for hour, window in enumerate(report.windows):
        rows = picked[(picked >= hour * 600) & (picked < (hour + 1) * 600)]
        assert window.labelled == rows.size
        expected = f1_score(truth[rows], requests["prediction"].to_numpy()[rows], pos_label=1)
        assert window.value == pytest.approx(expected, abs=1e-12)
        assert window.drop == pytest.approx(table.reference["f1"] - expected, abs=1e-9)
        # CBPE runs next to the realized metric, on every row of the window.
        assert window.estimated == pytest.approx(window.value, abs=0.08)
    assert report.reference == table.reference["f1"] and report.reference_source == "build test metric"


def test_labels_join_by_a_key_column_matched_as_text(
    model: tuple[LogisticRegression, CalibrationTable],
) -> None:
    fitted, table = model
    requests, truth = _traffic(fitted, ["reference", "reference"])
    # A CSV gives the key back as text, the label under the build's label name, some labels twice.
    labels = pd.DataFrame({"serial": requests["serial"].astype(str), "failure": truth})
    labels = pd.concat([labels.iloc[:10].assign(failure=1 - truth[:10]), labels], ignore_index=True)
    report = performance_of(requests, labels, _facts(table), key="serial", window_s=HOUR)
    assert report.join == "key:serial" and report.labels_matched == 1200
    predicted = requests["prediction"].to_numpy()
    assert report.windows[0].value == pytest.approx(accuracy_score(truth[:600], predicted[:600]))
    assert report.windows[1].value == pytest.approx(accuracy_score(truth[600:], predicted[600:]))


def test_requests_of_several_rows_join_on_request_id_and_row(
    model: tuple[LogisticRegression, CalibrationTable],
) -> None:
    fitted, table = model
    requests, truth = _traffic(fitted, ["reference"], rows=60)
    requests["request_id"] = [f"batch-{i // 3}" for i in range(60)]  # 20 requests of 3 rows
    requests["row"] = [i % 3 for i in range(60)]
    labels = pd.DataFrame({"request_id": requests["request_id"], "row": requests["row"], "label": truth})
    truth_joined, join, given = join_labels(requests, labels.iloc[::-1])
    assert join == "request_id+row" and given == 60
    np.testing.assert_array_equal(truth_joined.astype(int), truth)
    with pytest.raises(MonitoringError, match=r"request 'batch-0' served 3 rows.*no 'row' column"):
        join_labels(requests, labels.drop(columns=["row"]))


def test_a_window_whose_metric_drops_is_flagged_and_no_other(
    model: tuple[LogisticRegression, CalibrationTable],
) -> None:
    fitted, table = model
    requests, truth = _traffic(fitted, ["reference", "reference", "reference"])
    broken = truth.copy()
    rng = np.random.default_rng(3)
    flip = 1200 + rng.choice(600, 180, replace=False)  # the third hour's labels: 30% flipped (concept shift)
    broken[flip] = 1 - broken[flip]
    labels = pd.DataFrame({"request_id": requests["request_id"], "label": broken})
    report = performance_of(requests, labels, _facts(table), window_s=HOUR)
    assert [w.flagged for w in report.windows] == [False, False, True]
    assert report.degraded and report.flagged == [report.windows[2]]
    assert report.windows[2].drop > 0.05 >= max(report.windows[0].drop, report.windows[1].drop)
    # A looser threshold flags nothing; two-hour windows fold the first two hours into one.
    assert not performance_of(requests, labels, _facts(table), window_s=HOUR, threshold=0.5).degraded
    wide = performance_of(requests, labels, _facts(table), window_s=2 * HOUR)
    assert [w.rows for w in wide.windows] == [1200, 600]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_without_labels_cbpe_estimates_each_window_and_flags_the_degraded_one(
    model: tuple[LogisticRegression, CalibrationTable], seed: int
) -> None:
    fitted, table = model
    requests, truth = _traffic(fitted, ["reference", "shifted", "boundary"], seed=seed)
    report = performance_of(requests, None, _facts(table), window_s=HOUR)
    assert report.mode == "estimated" and report.labels_given == 0
    predicted = requests["prediction"].to_numpy()
    for hour, window in enumerate(report.windows):
        rows = slice(hour * 600, (hour + 1) * 600)
        assert window.value == window.estimated
        assert window.value == pytest.approx(accuracy_score(truth[rows], predicted[rows]), abs=0.05)
    assert [w.flagged for w in report.windows] == [False, False, True]


def test_probabilities_missing_on_predict_requests_leave_those_rows_out_of_the_estimate(
    model: tuple[LogisticRegression, CalibrationTable],
) -> None:
    fitted, table = model
    requests, _ = _traffic(fitted, ["reference"])
    full = performance_of(requests.iloc[:300], None, _facts(table), window_s=HOUR)
    requests.loc[300:, ["probability[0]", "probability[1]"]] = np.nan
    requests.loc[300:, "endpoint"] = "/predict"
    part = performance_of(requests, None, _facts(table), window_s=HOUR)
    assert part.windows[0].rows == 600 and part.windows[0].value == full.windows[0].value
    assert part.notes == [
        "300 rows carry no probabilities (requests to /predict), so no estimate covers them"
    ]
    assert full.notes == []


def test_report_as_json_and_as_a_table(model: tuple[LogisticRegression, CalibrationTable]) -> None:
    fitted, table = model
    requests, truth = _traffic(fitted, ["reference", "boundary"], rows=200)
    labels = pd.DataFrame({"request_id": requests["request_id"], "label": truth})
    report = performance_of(requests, labels, _facts(table), window_s=HOUR, release="pm-1")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["metric"] == "accuracy" and data["mode"] == "labels" and data["release"] == "pm-1"
    assert data["labels"] == {"given": 400, "matched": 400, "unmatched": 0, "join": "request_id"}
    assert data["windows"][0]["start"] == "2026-11-30T08:00:00Z" and data["windows"][1]["flagged"]
    assert data["flagged_windows"] == 1 and data["degraded"] is True
    assert set(data["windows"][0]) == {
        "start",
        "end",
        "rows",
        "labelled",
        "value",
        "estimated",
        "drop",
        "flagged",
    }
    console = Console(record=True, width=160)
    console.print(report.table())
    text = console.export_text()
    assert "2026-11-30 09:00" in text and "dropped" in text and "1 of 2 windows dropped" in text


def test_without_a_calibration_table_labels_still_work_and_estimates_do_not(
    model: tuple[LogisticRegression, CalibrationTable],
) -> None:
    fitted, table = model
    requests, truth = _traffic(fitted, ["reference"], rows=100)
    facts = replace(_facts(table), calibration=None, calibration_missing="built without labels")
    labels = pd.DataFrame({"request_id": requests["request_id"], "label": truth})
    report = performance_of(requests, labels, facts, window_s=HOUR)
    assert report.windows[0].estimated is None and report.windows[0].value is not None
    with pytest.raises(
        MonitoringError, match=r"no calibration table .*\(built without labels\); pass --labels"
    ):
        performance_of(requests, None, facts, window_s=HOUR)


def test_regressors_are_scored_on_labels_only() -> None:
    rng = np.random.default_rng(4)
    y = rng.normal(10.0, 2.0, 200)
    requests = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(200)],
            "row": 0,
            "time": START + pd.to_timedelta(np.arange(200) * 10.0, unit="s"),
            "prediction": y + rng.normal(0.0, 0.5, 200),
        }
    )
    facts = ModelFacts(metric=None, test_metrics={"rmse": 0.5}, task="regression")
    labels = pd.DataFrame({"request_id": requests["request_id"], "wear": y})
    report = performance_of(requests, labels, facts, metric="rmse", window_s=HOUR)
    rmse = float(np.sqrt(np.mean((requests["prediction"] - y) ** 2)))
    assert report.windows[0].value == pytest.approx(rmse) and report.reference == 0.5
    assert report.windows[0].drop == pytest.approx(rmse - 0.5)  # lower is better: a rise is the drop
    with pytest.raises(MonitoringError, match="cannot be estimated without labels"):
        performance_of(requests, None, facts, metric="rmse")


def test_bad_input_is_one_clear_error(model: tuple[LogisticRegression, CalibrationTable]) -> None:
    fitted, table = model
    requests, truth = _traffic(fitted, ["reference"], rows=50)
    facts = _facts(table)
    with pytest.raises(
        MonitoringError, match=r"the labels have no 'request_id' column \(columns: 'id', 'label'\)"
    ):
        performance_of(requests, pd.DataFrame({"id": ["x"], "label": [1]}), facts)
    with pytest.raises(MonitoringError, match="none of the 2 labels matches a recorded request"):
        performance_of(requests, pd.DataFrame({"request_id": ["nope", "other"], "label": [1, 0]}), facts)
    with pytest.raises(MonitoringError, match="the labels have no key column 'serial'"):
        performance_of(requests, pd.DataFrame({"request_id": ["x"], "label": [1]}), facts, key="serial")
    with pytest.raises(MonitoringError, match="the recorded requests have no column 'lot'"):
        performance_of(requests, pd.DataFrame({"lot": ["x"], "label": [1]}), facts, key="lot")
    with pytest.raises(MonitoringError, match="cannot tell the label column"):
        performance_of(requests, pd.DataFrame({"request_id": ["x"], "a": [1], "b": [0]}), facts)
    with pytest.raises(MonitoringError, match="no recorded requests in the range"):
        performance_of(requests.iloc[:0], None, facts)
    with pytest.raises(MonitoringError, match="cannot be estimated from probabilities|does not apply"):
        performance_of(requests, None, facts, metric="r2")
    bad_label = pd.DataFrame({"request_id": requests["request_id"], "label": "maybe"})
    with pytest.raises(MonitoringError, match="label 'maybe' is none of the model's classes"):
        performance_of(requests, bad_label, facts)


def test_the_report_type_is_exported() -> None:
    import kepler.monitoring as monitoring

    assert monitoring.PerformanceReport is PerformanceReport
    assert monitoring.CalibrationTable is CalibrationTable


# --------------------------------------------------------------------------- a release of a project


@dataclass(frozen=True)
class Released:
    root: Path
    traffic: Path
    truth: dict[str, str]  # request id -> true label
    predicted: dict[str, str]  # request id -> the prediction the service answered


def _project(root: Path, artifact_folder: Path) -> None:
    (root / "kepler.toml").write_text('[project]\nname = "perf"\n\n[monitoring]\nwindow = "1w"\n')
    store = RecordStore(root)
    report = {
        "metric": "f1",
        "test_metrics": {"score": 0.69, "f1": 0.69, "accuracy": 0.79},
        "positive_class": "fail",
        "use_case": "predictive_maintenance",
        "data": {"label": "failure", "task": "classification"},
    }
    (artifact_folder.parent / "report.json").write_text(json.dumps(report))
    unified = UnifiedVersion(
        version_id="build-b1",
        git_commit=None,
        dvc_data_version=None,
        metadata={"build_path": str(artifact_folder.parent), "test_metrics": report["test_metrics"]},
        build_config={"use_case": "predictive_maintenance", "label": "failure", "task": "classification"},
    )
    store.write("unified", "build-b1", unified.to_dict())
    for name in ("pm-1", "pm-2"):
        store.write(
            "releases", name, Release(release_id=name, version="1.0.0", unified_version="build-b1").to_dict()
        )


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Released:
    """A project with release pm-1 (a compiled logistic model, calibrated on held-out rows) and its traffic,
    recorded by the service's own recorder: 800 single-row requests drawn from a shifted N(0.5, 1)."""
    from kepler.compilers import compile as compile_model

    root = tmp_path_factory.mktemp("project")
    rng = np.random.default_rng(21)
    columns = ["x0", "x1", "x2"]
    x = _inputs(rng, 3000, "reference")
    y = np.where(_labels_of(rng, x) == 1, "fail", "ok")
    fitted = LogisticRegression().fit(pd.DataFrame(x[:1500], columns=columns), y[:1500])
    artifact = root / "builds" / "b1" / "artifact"
    compile_model(fitted, "edge", pd.DataFrame(x[1500:], columns=columns), output=artifact, labels=y[1500:])
    _project(root, artifact)
    traffic = root / "traffic"
    recorder = Recorder(
        traffic / "pm-1",
        release="pm-1",
        sample_rate=1.0,
        max_mb=10.0,
        rows_of=lambda body: records_of(json.loads(body)),
        classes=["fail", "ok"],
    )
    served = rng.normal(0.5, 1.0, (800, 3))
    proba = fitted.predict_proba(pd.DataFrame(served, columns=columns))
    truth, predicted = {}, {}
    for i, (row, shares) in enumerate(zip(served, proba, strict=True)):
        rid = f"{i:08x}-req"
        answer = [[float(shares[0]), float(shares[1])]]
        assert recorder.offer(
            rid,
            "predict_proba",
            json.dumps([dict(zip(columns, row, strict=True))]).encode(),
            json.dumps(answer).encode(),
        )
        truth[rid] = "fail" if rng.random() < 1.0 / (1.0 + np.exp(-(row @ WEIGHTS - 1.0))) else "ok"
        predicted[rid] = "fail" if shares[0] >= shares[1] else "ok"
    recorder.close()
    # pm-2's only recording is from 2020: nothing in any recent range.
    (traffic / "pm-2").mkdir(parents=True)
    old = {
        "request_id": "old",
        "time": "2020-01-01T00:00:00+00:00",
        "release": "pm-2",
        "endpoint": "predict",
        "rows": [{"x0": 0.0, "x1": 0.0, "x2": 0.0}],
        "outputs": {"prediction": ["ok"], "classes": ["fail", "ok"]},
    }
    (traffic / "pm-2" / "1-old-0.jsonl").write_text(json.dumps(old) + "\n")
    return Released(root, traffic, truth, predicted)


@pytest.fixture
def in_project(released: Released, monkeypatch: pytest.MonkeyPatch) -> Released:
    monkeypatch.chdir(released.root)
    monkeypatch.setenv("KEPLER_TRAFFIC_DIR", str(released.traffic))
    return released


def test_a_release_scored_on_a_labels_file_joined_by_request_id(in_project: Released, tmp_path: Path) -> None:
    ids = list(in_project.truth)
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": ids, "failure": [in_project.truth[i] for i in ids]}).to_csv(
        labels, index=False
    )
    report = performance("pm-1", labels)
    assert (
        report.metric == "f1" and report.reference == 0.69 and report.reference_source == "build test metric"
    )
    assert report.window_s == 7 * 86400.0  # kepler.toml's [monitoring] window
    assert report.labels_matched == 800 and sum(w.rows for w in report.windows) == 800
    realized = f1_score(
        [in_project.truth[i] for i in ids], [in_project.predicted[i] for i in ids], pos_label="fail"
    )
    if len(report.windows) == 1:  # unless the requests straddled a week's boundary
        assert report.windows[0].value == pytest.approx(realized, abs=1e-12)
        # The artifact's own calibration table (fit on its held-out rows at compile time) estimates it too.
        assert report.windows[0].estimated == pytest.approx(realized, abs=0.05)


def test_a_release_estimated_without_labels(in_project: Released) -> None:
    report = performance("pm-1", since="1d", window=7 * 86400.0, metric="accuracy", threshold=0.2)
    assert report.mode == "estimated" and report.since is not None and report.threshold == 0.2
    assert report.reference == 0.79  # the build's test accuracy, next to its test metric
    ids = list(in_project.truth)
    realized = accuracy_score([in_project.truth[i] for i in ids], [in_project.predicted[i] for i in ids])
    total = sum(w.rows * (w.value or 0.0) for w in report.windows) / 800
    assert total == pytest.approx(realized, abs=0.05)


def test_release_errors_are_one_line_and_exit_13(in_project: Released, tmp_path: Path) -> None:
    no_key = tmp_path / "no-key.csv"
    pd.DataFrame({"id": ["x"], "failure": ["ok"]}).to_csv(no_key, index=False)
    unmatched = tmp_path / "unmatched.csv"
    pd.DataFrame({"request_id": ["nope"], "failure": ["ok"]}).to_csv(unmatched, index=False)
    for argv, message in [
        (["nope"], "unknown release 'nope'"),
        (["pm-2", "--since", "1h"], "release 'pm-2' has no recorded requests in the last 1h"),
        (["pm-1", "--labels", str(no_key)], "the labels have no 'request_id' column"),
        (["pm-1", "--labels", str(unmatched)], "none of the 1 labels matches a recorded request"),
        (["pm-1", "--labels", str(no_key), "--key", "id"], "the recorded requests have no column 'id'"),
        (["pm-1", "--window", "soon"], "--window 'soon' is not a duration"),
    ]:
        result = runner.invoke(app, ["monitor", "performance", *argv])
        assert isinstance(result.exception, MonitoringError), result.output
        assert message in str(result.exception) and "\n" not in str(result.exception)
        assert exit_code_for(result.exception) == 13


def test_windows_read_times_of_any_resolution_and_keys_of_mixed_types(
    model: tuple[LogisticRegression, CalibrationTable],
) -> None:
    fitted, table = model
    requests, truth = _traffic(fitted, ["reference", "shifted"], rows=100)
    requests["time"] = requests["time"].astype("datetime64[us, UTC]")  # what read_traffic gives
    requests["serial"] = requests["serial"].astype(object)
    requests.loc[::2, "serial"] = requests.loc[::2, "serial"].astype(float)  # 7.0 sent in a JSON body
    labels = pd.DataFrame({"serial": np.arange(200, dtype=float), "label": truth})
    labels.loc[0, "serial"] = np.nan  # a label without its key joins nothing
    report = performance_of(requests, labels, _facts(table), key="serial", window_s=HOUR)
    assert [w.start for w in report.windows] == [START, START + pd.Timedelta(hours=1)]
    assert [w.labelled for w in report.windows] == [99, 100]
