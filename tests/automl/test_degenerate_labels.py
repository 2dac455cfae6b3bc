"""Labels a careless table holds: a rare class, text classes, booleans; and a wide one-hot encoding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kepler as kp
from kepler.automl.labels import label_codes
from kepler.automl.splits import MIN_CLASS_ROWS, check_class_rows, cv_folds, split_test
from kepler.errors import DataError


def _table(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"temperature": rng.normal(60, 5, rows), "pressure": rng.normal(3, 0.5, rows)})


# -- the rare class ---------------------------------------------------------------------------------


def test_a_class_too_small_for_the_test_split_and_the_folds_is_named_with_its_rows() -> None:
    frame = _table(1000).assign(failure=0)
    frame.loc[417, "failure"] = 1
    with pytest.raises(
        DataError,
        match=r"^label 'failure': class 1 has 1 row of 1000; a build needs at least 3 rows "
        r"of each class .*: add rows of that class, merge it into another class, or "
        r"drop its rows$",
    ):
        kp.automl.automl_pipeline(
            frame, "failure", optimization_time=2
        )  # before: ValueError: 1 is not in list


@pytest.mark.parametrize("rows_of_class", [MIN_CLASS_ROWS, 4, 7])
def test_the_test_split_and_the_search_rows_keep_every_class(rows_of_class: int) -> None:
    label = pd.Series(
        ["ok"] * (600 - 2 * rows_of_class) + ["fault"] * rows_of_class + ["jam"] * rows_of_class
    )
    frame = _table(len(label))
    for seed in range(5):
        x_rest, y_rest, x_test, y_test = split_test(frame, label, "classification", seed)
        assert set(y_test) == set(y_rest) == {"ok", "fault", "jam"}
        assert y_rest.value_counts().min() >= 2 and len(x_rest) + len(x_test) == len(frame)
        assert not set(x_rest.index) & set(x_test.index)
        assert 2 <= cv_folds(y_rest, "classification") <= 5


def test_the_split_is_the_stratified_one_when_every_class_is_large() -> None:
    from sklearn.model_selection import train_test_split

    label = pd.Series(np.arange(500) % 3)
    frame = _table(500)
    _, _, x_test, _ = split_test(frame, label, "classification", 7)
    _, expected = train_test_split(frame, test_size=0.2, random_state=7, stratify=label)
    assert list(x_test.index) == list(expected.index)  # reproductions of older builds split as they did


def test_check_class_rows_counts_every_small_class() -> None:
    label = pd.Series(["a"] * 50 + ["b"] * 2 + ["c"])
    with pytest.raises(DataError, match=r"class 'c' has 1 row of 53 \(and 1 other class as small\)"):
        check_class_rows(label)


def test_a_class_of_four_rows_in_a_thousand_is_searched_with_fewer_folds(tmp_path) -> None:
    frame = _table(1000)
    frame["failure"] = 0
    rare = [11, 222, 555, 888]
    frame.loc[rare, "failure"] = 1
    frame.loc[rare, "temperature"] += 30
    # Before: 5-fold cross-validation left the class out of some folds: "ValueError: 1 is not in list".
    result = kp.automl.automl_pipeline(
        frame,
        "failure",
        optimization_time=3,
        output=tmp_path / "artifact",
        constraints={"families": ["decision_tree", "logistic_regression"]},
    )
    assert result["plan"]["evaluation"] == {"eval_method": "cv", "n_splits": 3}
    assert any("3-fold cross-validation instead of 5-fold" in note for note in result["plan"]["notes"])
    assert result["positive_class"] == 1 and "roc_auc" in result["test_metrics"]
    assert all(np.isfinite(t["val_score"]) for t in result["trials"] if t["error"] is None)


# -- text and other non-code labels -----------------------------------------------------------------


def test_label_codes_are_the_sorted_labels() -> None:
    codes = label_codes(pd.Series(["mid", "high", "low", "mid"]))
    assert codes.labels == ("high", "low", "mid") and not codes.identity
    assert codes.encode(pd.Series(["low", "mid"])).tolist() == [1, 2]
    assert codes.decode([2, 0]).tolist() == ["mid", "high"]
    assert (
        label_codes(pd.Series(np.array([1, 0, 1]))).identity
        and label_codes(pd.Series([0, 1])).class_labels is None
    )
    assert label_codes(pd.Series([2, 5])).class_labels == [2, 5]
    assert label_codes(pd.Series([True, False])).as_graph([True]).tolist() == [
        "True"
    ]  # as the graph answers them
    with pytest.raises(DataError, match=r"class 'none' is not one of the labels"):
        codes.encode(pd.Series(["none"]))


def test_a_three_class_text_label_is_searched_by_every_family_and_answered_as_text(tmp_path) -> None:
    frame = _table(300)
    frame["grade"] = np.where(frame.temperature > 63, "high", np.where(frame.temperature < 57, "low", "mid"))
    # Before: XGBoost refused the labels: "Invalid classes inferred from unique values of y. Expected: [0 1 2]".
    result = kp.automl.automl_pipeline(
        frame,
        "grade",
        optimization_time=4,
        output=tmp_path / "artifact",
        constraints={"families": ["xgboost", "lightgbm"]},
    )
    assert result["best_algorithm"] in ("xgboost", "lightgbm") and result["trials"]
    assert all(t["error"] is None for t in result["trials"])
    assert result.class_labels == ["high", "low", "mid"] and result["labels_encoded"] is True
    schema = result.artifact.manifest.output_schema
    assert schema.classes == ("high", "low", "mid") and schema.labels_restored is True
    predictor = result.artifact.predictor()
    answers = predictor.predict(frame)
    assert set(answers) <= {"high", "low", "mid"}
    np.testing.assert_array_equal(
        answers, result.labels_of(result.model.predict(frame))
    )  # the model predicts codes
    assert result["test_metrics"]["accuracy"] > 0.8


def test_a_boolean_label_compiles_and_scores_against_the_graphs_answers(tmp_path) -> None:
    frame = _table(300)
    frame["alarm"] = frame.temperature > 60
    # Before: the decision tree's compiled labels (0/1) disagreed with the native ones (False/True): parity failed.
    result = kp.automl.automl_pipeline(
        frame,
        "alarm",
        optimization_time=3,
        output=tmp_path / "artifact",
        constraints={"families": ["decision_tree"]},
    )
    assert result.class_labels == [False, True] and result["positive_class"] is True
    assert result.artifact.parity.passed and result["test_metrics"]["accuracy"] > 0.9


# -- a wide one-hot encoding ---------------------------------------------------------------------------


def test_a_wide_categorical_column_reaches_hist_gradient_boosting_dense(tmp_path) -> None:
    rng = np.random.default_rng(1)
    frame = _table(400)
    frame["station"] = rng.choice([f"s{i}" for i in range(80)], 400)
    frame["failure"] = (frame.temperature > 62).astype(int)
    # Before: "Sparse data was passed for X, but dense data is required" (an internal error).
    result = kp.automl.automl_pipeline(
        frame,
        "failure",
        optimization_time=4,
        output=tmp_path / "artifact",
        constraints={"families": ["hist_gradient_boosting"]},
    )
    assert result["best_algorithm"] == "hist_gradient_boosting" and result.artifact.parity.passed
