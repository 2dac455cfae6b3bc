"""kepler.monitoring.calibration: CBPE's estimate under covariate shift, the realized metrics, size and JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from kepler.automl.metrics import METRICS as AUTOML_METRICS
from kepler.automl.metrics import Evaluation
from kepler.errors import MonitoringError
from kepler.monitoring.calibration import MAX_BYTES, METRICS, CalibrationTable, class_indices

WEIGHTS = np.array([1.5, -1.0, 0.5])


def _rows(rng: np.random.Generator, n: int, mean: float) -> tuple[np.ndarray, np.ndarray]:
    """Inputs from N(mean, 1) and labels from a fixed logistic P(y | x): covariate shift only."""
    x = rng.normal(mean, 1.0, (n, 3))
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(x @ WEIGHTS - 1.0)))).astype(int)
    return x, y


def _setup(seed: int) -> tuple[LogisticRegression, CalibrationTable, np.random.Generator]:
    rng = np.random.default_rng(seed)
    model = LogisticRegression().fit(*_rows(rng, 3000, 0.0))
    held_x, held_y = _rows(rng, 3000, 0.0)
    return model, CalibrationTable.fit(model.predict_proba(held_x), held_y, [0, 1]), rng


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_cbpe_estimates_accuracy_and_f1_within_005_under_covariate_shift(seed: int) -> None:
    # The model and its table come from N(0, 1); the served rows from N(1, 1), labelled by the same P(y | x).
    model, table, rng = _setup(seed)
    assert table.positive == 1  # the rarer class of the held-out labels, as Kepler's builds pick it
    shifted_x, shifted_y = _rows(rng, 3000, 1.0)
    proba = model.predict_proba(shifted_x)
    predicted = model.predict(shifted_x)
    realized_accuracy = accuracy_score(shifted_y, predicted)
    realized_f1 = f1_score(shifted_y, predicted, pos_label=1)
    assert abs(realized_f1 - table.reference["f1"]) > 0.05  # the shift moves the metric, or the test is moot
    assert table.estimate(proba, "accuracy", predictions=predicted) == pytest.approx(
        realized_accuracy, abs=0.05
    )
    assert table.estimate(proba, "f1", predictions=predicted) == pytest.approx(realized_f1, abs=0.05)
    assert table.estimate(proba, "roc_auc") == pytest.approx(
        AUTOML_METRICS.get("roc_auc")(Evaluation(shifted_y, predicted, proba[:, 1], 1)), abs=0.05
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimate_on_the_held_out_rows_is_their_realized_metric(seed: int) -> None:
    rng = np.random.default_rng(seed)
    model = LogisticRegression().fit(*_rows(rng, 3000, 0.0))
    held_x, held_y = _rows(rng, 3000, 0.0)
    proba = model.predict_proba(held_x)
    table = CalibrationTable.fit(proba, held_y, [0, 1])
    assert table.reference["accuracy"] == pytest.approx(
        accuracy_score(held_y, proba.argmax(axis=1)), abs=1e-6
    )
    for metric in ("accuracy", "f1", "precision", "recall", "roc_auc"):
        assert table.estimate(proba, metric) == pytest.approx(table.reference[metric], abs=0.02), metric


def test_calibration_repairs_a_miscalibrated_model() -> None:
    # Probabilities pushed towards 0 (cubed): read as they are, they underestimate accuracy badly.
    model, _, rng = _setup(7)
    held_x, held_y = _rows(rng, 4000, 0.0)
    served_x, served_y = _rows(rng, 4000, 1.0)

    def squashed(x: np.ndarray) -> np.ndarray:
        positive = model.predict_proba(x)[:, 1] ** 3
        return np.c_[1.0 - positive, positive]

    table = CalibrationTable.fit(squashed(held_x), held_y, [0, 1])
    proba = squashed(served_x)
    predicted = proba.argmax(axis=1)
    realized = accuracy_score(served_y, predicted)
    naive = np.mean(proba[np.arange(len(proba)), predicted])
    assert abs(naive - realized) > 0.1
    assert table.estimate(proba, "accuracy") == pytest.approx(realized, abs=0.05)
    for class_map in table.maps:
        assert np.all(np.diff(class_map.x) > 0) and np.all(np.diff(class_map.y) >= 0)
        assert 0.0 <= min(class_map.y) and max(class_map.y) <= 1.0


def _multiclass(seed: int, classes: int, rows: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    weights = rng.normal(0.0, 1.0, (5, classes))
    x = rng.normal(0.0, 1.0, (rows, 5))
    logits = x @ weights
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = (rng.random((rows, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    names = [f"grade-{i:02d}-of-the-line" for i in range(classes)]
    return p, np.array(names)[y], names


def test_ten_class_table_is_small_round_trips_through_json_and_estimates_macro_f1() -> None:
    proba, labels, names = _multiclass(3, 10, 20000)
    table = CalibrationTable.fit(proba, labels, names)
    text = table.to_json()
    assert len(text.encode()) <= MAX_BYTES == 4096
    assert len(table.maps) == 10 and table.positive is None
    again = CalibrationTable.from_dict(json.loads(text))
    assert again.to_dict() == table.to_dict()
    np.testing.assert_array_equal(again.calibrate(proba[:50]), table.calibrate(proba[:50]))
    np.testing.assert_allclose(table.calibrate(proba).sum(axis=1), 1.0)
    predicted = np.array(names)[proba.argmax(axis=1)]
    assert table.reference["f1"] == pytest.approx(f1_score(labels, predicted, average="macro"), abs=1e-6)
    assert table.estimate(proba, "f1") == pytest.approx(table.reference["f1"], abs=0.03)
    assert table.estimate(proba, "accuracy") == pytest.approx(accuracy_score(labels, predicted), abs=0.03)
    with pytest.raises(MonitoringError, match="needs a binary model"):
        table.estimate(proba, "roc_auc")


def test_binary_table_is_a_few_hundred_bytes_and_round_trips() -> None:
    model, table, rng = _setup(0)
    assert len(table.to_json().encode()) <= 1024
    again = CalibrationTable.from_dict(json.loads(table.to_json()))
    assert again.to_dict() == table.to_dict()
    proba = model.predict_proba(_rows(rng, 500, 0.5)[0])
    for metric in METRICS:
        assert again.estimate(proba, metric) == table.estimate(proba, metric)


@pytest.mark.parametrize("metric", ["accuracy", "f1", "precision", "recall", *AUTOML_METRICS.names()])
def test_realized_metrics_equal_scikit_learns_and_the_builds(metric: str) -> None:
    if metric not in METRICS:
        with pytest.raises(MonitoringError, match="cannot be estimated"):
            _setup(0)[1].estimate(np.full((3, 2), 0.5), metric)
        return
    model, table, rng = _setup(1)
    x, y = _rows(rng, 800, 0.3)
    proba = model.predict_proba(x)
    predicted = model.predict(x)
    labels = np.where(y == 1, "fail", "ok")
    string_table = CalibrationTable.fit(proba, labels, ["ok", "fail"], positive="fail")
    evaluation = Evaluation(
        labels,
        np.where(predicted == 1, "fail", "ok"),
        proba[:, 1],
        "fail",
        {"precision_floor": 0.5, "recall_target": 0.8},
    )
    if metric in AUTOML_METRICS.names():
        expected = AUTOML_METRICS.get(metric)(evaluation)
    else:
        scorer = precision_score if metric == "precision" else recall_score
        expected = scorer(evaluation.y_true, evaluation.y_pred, pos_label="fail")
    assert string_table.realized(proba, labels, metric) == pytest.approx(expected, abs=1e-9)
    # Labels read back from a CSV are text; the classes 0 and 1 still match them.
    assert table.realized(proba, y.astype(str), metric) == pytest.approx(
        table.realized(proba, y, metric), abs=1e-12
    )


def test_class_indices_match_values_and_their_text() -> None:
    assert class_indices([1, "0", 1.0, "x", None], [0, 1]).tolist() == [1, 0, 1, -1, -1]
    assert class_indices(["ok", "fail"], ["ok", "fail"]).tolist() == [0, 1]


def test_bad_input_is_one_clear_error() -> None:
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    with pytest.raises(MonitoringError, match="label 'x' is none of the model's classes"):
        CalibrationTable.fit(proba, ["a", "b", "x"], ["a", "b"])
    with pytest.raises(MonitoringError, match="2 labels for 3 rows"):
        CalibrationTable.fit(proba, ["a", "b"], ["a", "b"])
    with pytest.raises(MonitoringError, match="one column per class"):
        CalibrationTable.fit(proba, ["a", "b", "c"], ["a", "b", "c"])
    with pytest.raises(MonitoringError, match="no held-out rows"):
        CalibrationTable.fit(np.zeros((0, 2)), [], ["a", "b"])
    with pytest.raises(MonitoringError, match="positive class 'c'"):
        CalibrationTable.fit(proba, ["a", "b", "a"], ["a", "b"], positive="c")
    table = CalibrationTable.fit(proba, ["a", "b", "a"], ["a", "b"])
    with pytest.raises(MonitoringError, match="cannot be estimated from probabilities"):
        table.estimate(proba, "r2")
    with pytest.raises(MonitoringError, match="no rows"):
        table.estimate(np.zeros((0, 2)), "accuracy")
    with pytest.raises(MonitoringError, match="NaN"):
        table.estimate(np.array([[np.nan, 1.0]]), "accuracy")
    with pytest.raises(MonitoringError, match="not a calibration table"):
        CalibrationTable.from_dict({"rows": 3})
    with pytest.raises(MonitoringError, match="newer than this Kepler reads"):
        CalibrationTable.from_dict({**table.to_dict(), "schema_version": 99})
    with pytest.raises(MonitoringError, match="do not match its classes"):
        CalibrationTable.from_dict({**table.to_dict(), "maps": []})
