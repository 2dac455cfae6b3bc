"""The precision policy (compilers/convert.py, README "Precision policy"):

1. preprocessing runs in float64, as in scikit-learn;
2. tree estimators see float32 features;
3. float32 thresholds are rounded down, so ``x <= t`` holds in the graph exactly when it
   holds natively for every float32 number x.

scikit-learn trees and forests, IsolationForest and XGBoost cast their input to float32
natively, so they agree exactly on any data. LightGBM and HistGradientBoosting compare
float64 features with float64 thresholds natively: they agree exactly on float32 numbers,
and a float64 value within half a float32 step of a threshold can take the other branch,
which the parity check reports.

The data sits exactly on split thresholds: feature values are adjacent float32 numbers,
so one ulp of error anywhere flips a branch. Each test shows that its data is that
sensitive, so it cannot pass by accident.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from xgboost import XGBClassifier, XGBRegressor

import kepler as kp

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _one_ulp_up(rows: np.ndarray, column: int = 0) -> np.ndarray:
    nudged = rows.copy()
    nudged[:, column] = np.nextafter(rows[:, column].astype(np.float32), np.float32(np.inf)).astype(
        np.float64
    )
    return nudged


def _assert_exact_agreement(artifact: Any, model: Any, rows: Any) -> None:
    report = artifact.parity
    assert report.passed is True
    assert report.label_agreement == 1.0
    assert report.max_abs_diff < 1e-6
    assert all(r["native_label"] == r["compiled_label"] for r in report.worst_rows)
    predictor = artifact.predictor()
    np.testing.assert_array_equal(predictor.predict(rows), model.predict(rows))
    np.testing.assert_allclose(predictor.predict_proba(rows), model.predict_proba(rows), atol=1e-6)


def test_threshold_data_really_sits_between_adjacent_float32_values(threshold_data):
    X, y = threshold_data
    grid = np.unique(X[:, 0].astype(np.float32))
    assert np.all(np.nextafter(grid[:-1], np.float32(np.inf)) == grid[1:])  # adjacent float32 numbers
    tree = DecisionTreeClassifier(random_state=0).fit(X, y)
    assert (tree.predict(X) == y).all()
    assert set(tree.tree_.feature[tree.tree_.feature >= 0].tolist()) == {0}
    thresholds = np.sort(tree.tree_.threshold[tree.tree_.feature == 0])
    assert len(thresholds) == len(grid) // 2 - 1  # one split per label change
    # Each threshold separates two adjacent float32 values: nothing lies strictly between them.
    below = grid[np.searchsorted(grid, thresholds, side="right") - 1]
    above = grid[np.searchsorted(grid, thresholds, side="right")]
    assert np.all(np.nextafter(below, np.float32(np.inf)) == above)
    # scikit-learn's thresholds are midpoints, not float32 numbers: rounding them to nearest would
    # put some exactly on a data value.
    assert (thresholds.astype(np.float32).astype(np.float64) != thresholds).all()
    assert (thresholds.astype(np.float32) == above).any()
    # One float32 ulp moves the upper value of every pair across a threshold.
    assert (tree.predict(_one_ulp_up(X)) != y).mean() == pytest.approx(0.5, abs=0.05)


THRESHOLD_MODELS = {
    "decision_tree": lambda: DecisionTreeClassifier(random_state=0),
    "random_forest": lambda: RandomForestClassifier(n_estimators=15, random_state=0),
    "xgboost": lambda: XGBClassifier(n_estimators=20, max_depth=6, n_jobs=1),
    "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(
        max_iter=20, min_samples_leaf=1, random_state=0
    ),
    "lightgbm": lambda: LGBMClassifier(
        n_estimators=20, min_child_samples=1, min_data_in_bin=1, n_jobs=1, verbose=-1
    ),
}


@pytest.mark.parametrize("name", sorted(THRESHOLD_MODELS))
def test_trees_agree_exactly_on_float32_threshold_data(name, threshold_data, compile_edge):
    X, y = threshold_data
    model = THRESHOLD_MODELS[name]().fit(X, y)
    assert (model.predict(X) == y).mean() > 0.9
    assert (model.predict(X) != model.predict(_one_ulp_up(X))).mean() > 0.2  # one ulp matters to this model

    artifact = compile_edge(model, X)

    _assert_exact_agreement(artifact, model, X)
    _assert_exact_agreement(artifact, model, _one_ulp_up(X))


def _scaled_threshold_table() -> tuple[pd.DataFrame, np.ndarray]:
    """A raw column whose *standardized* values are one float32 step apart.

    Sixty readings 7e-5 apart near 1000 sit among 400 ordinary ones near 0; standardized,
    they land near 2.5, where one float32 step is 2.4e-7 (above the 1e-7 under which
    scikit-learn treats values as equal). Their label alternates with each distinct float32
    value of the standardized feature; the ordinary rows are class 0. Computing the scaler
    in float32 would change those features.
    """
    rng = np.random.default_rng(5)
    raw = np.concatenate([1000.0 + np.arange(60) * 7e-5, rng.normal(0.0, 100.0, 400)])
    standardized = StandardScaler().fit_transform(raw.reshape(-1, 1)).ravel().astype(np.float32)
    labels = np.zeros(len(raw), dtype=np.int64)
    labels[:60] = np.searchsorted(np.unique(standardized[:60]), standardized[:60]) % 2
    frame = pd.DataFrame(
        {
            "reading": raw,
            "noise": rng.normal(size=len(raw)),
            "line": pd.Series(rng.choice(["a", "b"], len(raw)), dtype=object),
        }
    )
    return frame, labels


def _pipeline(front: str, estimator: Any) -> tuple[Pipeline, Any]:
    frame, y = _scaled_threshold_table()
    if front == "standard_scaler":
        rows: Any = frame[["reading", "noise"]].to_numpy()
        pre: Any = StandardScaler()
    else:
        rows = frame
        pre = ColumnTransformer(
            [("num", StandardScaler(), ["reading", "noise"]), ("cat", OneHotEncoder(), ["line"])]
        )
    return Pipeline([("pre", pre), ("model", estimator)]).fit(rows, y), rows


def test_scaled_threshold_data_is_sensitive_to_float32_preprocessing():
    frame, y = _scaled_threshold_table()
    raw = frame[["reading"]].to_numpy()
    scaler = StandardScaler().fit(raw)
    float64_then_cast = scaler.transform(raw).astype(np.float32)
    cluster = float64_then_cast[:60, 0]
    steps = np.diff(np.unique(cluster))
    assert np.all(np.nextafter(np.unique(cluster)[:-1], np.float32(np.inf)) == np.unique(cluster)[1:])
    assert steps.min() > 1e-7 and len(np.unique(cluster)) >= 45
    in_float32 = (raw.astype(np.float32) - np.float32(scaler.mean_[0])) / np.float32(scaler.scale_[0])
    assert (in_float32[:60] != float64_then_cast[:60]).mean() > 0.2
    tree = DecisionTreeClassifier(random_state=0).fit(float64_then_cast, y)
    assert (tree.predict(float64_then_cast) == y).all()
    assert (tree.predict(in_float32) != y).any()  # float32 preprocessing would flip labels
    assert (tree.predict(np.nextafter(float64_then_cast, np.float32(np.inf))) != y).sum() > 10


FLOAT32_NATIVE = {
    "decision_tree": lambda: DecisionTreeClassifier(random_state=0),
    "random_forest": lambda: RandomForestClassifier(n_estimators=15, random_state=0),
    "xgboost": lambda: XGBClassifier(n_estimators=30, max_depth=8, n_jobs=1),
}


@pytest.mark.parametrize("estimator", sorted(FLOAT32_NATIVE))
@pytest.mark.parametrize("front", ["standard_scaler", "column_transformer"])
def test_pipelines_preprocess_in_float64_and_agree_exactly(front, estimator, compile_edge):
    model, rows = _pipeline(front, FLOAT32_NATIVE[estimator]())

    artifact = compile_edge(model, rows)

    assert {c.dtype for c in artifact.input_schema.columns if c.kind == "numeric"} == {"float64"}
    _assert_exact_agreement(artifact, model, rows)


FLOAT64_NATIVE = {
    "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(
        max_iter=30, min_samples_leaf=1, max_leaf_nodes=None, random_state=0
    ),
    "lightgbm": lambda: LGBMClassifier(
        n_estimators=30, min_child_samples=1, min_data_in_bin=1, num_leaves=255, n_jobs=1, verbose=-1
    ),
}


@pytest.mark.parametrize("estimator", sorted(FLOAT64_NATIVE))
@pytest.mark.parametrize("front", ["standard_scaler", "column_transformer"])
def test_float64_native_boosters_in_pipelines_agree_on_float32_sensitive_rows(
    front, estimator, tmp_path, sensitive_rows
):
    """On standardized features one float32 step apart, some rows would take the other branch of a
    LightGBM/HistGradientBoosting split in float32 (``sensitive_rows``); the compiled graph keeps
    float64 features and thresholds behind the float64 preprocessing, so every row agrees."""
    model, rows = _pipeline(front, FLOAT64_NATIVE[estimator]())
    sensitive = sensitive_rows(model[-1], model[:-1].transform(rows))
    assert 0 < len(sensitive) < len(model[:-1].transform(rows)) // 10

    artifact = kp.compile(model, target="edge", sample=rows, output=tmp_path / "edge", benchmark=False)
    assert artifact.parity.passed and artifact.parity.label_agreement == 1.0
    native = model.predict_proba(rows)
    compiled = artifact.predictor().predict_proba(rows)
    np.testing.assert_allclose(compiled[sensitive], native[sensitive], atol=1e-6)
    np.testing.assert_allclose(compiled, native, atol=1e-6)


def _root_split(model: Any) -> tuple[int, float]:
    """Feature and float64 threshold of the first split of the first tree."""
    if hasattr(model, "booster_"):
        root = model.booster_.dump_model()["tree_info"][0]["tree_structure"]
        return int(root["split_feature"]), float(root["threshold"])
    if hasattr(model, "_predictors"):
        node = model._predictors[0][0].nodes[0]
        return int(node["feature_idx"]), float(node["num_threshold"])
    if hasattr(model, "get_booster"):
        frame = model.get_booster().trees_to_dataframe()
        root = frame[(frame.Tree == 0) & (frame.Node == 0)].iloc[0]
        return int(str(root.Feature).lstrip("f")), float(root.Split)
    estimator = model.estimators_[0] if hasattr(model, "estimators_") else model
    return int(estimator.tree_.feature[0]), float(estimator.tree_.threshold[0])


def _rows_straddling_root_split(model: Any, rows: np.ndarray) -> np.ndarray:
    """Copies of one row with the root split's feature set to float64 values that are not float32
    numbers, a fraction of a float32 step on either side of the threshold."""
    feature, threshold = _root_split(model)
    base = np.float64(np.float32(threshold))
    step = float(np.spacing(np.float32(threshold)))
    offsets = np.array([-0.45, -0.3, -0.2, -0.1, 0.1, 0.2, 0.3, 0.45, 0.55, 0.7]) * step
    crafted = np.repeat(rows[:1], len(offsets), axis=0)
    crafted[:, feature] = base + offsets
    assert (crafted[:, feature].astype(np.float32).astype(np.float64) != crafted[:, feature]).all()
    return np.vstack([rows, crafted])


REGRESSORS = {
    "decision_tree": (lambda: DecisionTreeRegressor(max_depth=6, random_state=0), True),
    "random_forest": (lambda: RandomForestRegressor(n_estimators=11, max_depth=6, random_state=0), True),
    "xgboost": (lambda: XGBRegressor(n_estimators=15, max_depth=4, n_jobs=1), True),
    "hist_gradient_boosting": (lambda: HistGradientBoostingRegressor(max_iter=15, random_state=0), False),
    "lightgbm": (lambda: LGBMRegressor(n_estimators=15, n_jobs=1, verbose=-1), False),
}


@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_float64_values_within_a_float32_step_of_a_threshold(name, industrial, tmp_path, sensitive_rows):
    """Every tree family agrees on float64 values a fraction of a float32 step from a threshold.

    Float32-native trees cast natively as the graph does. LightGBM and HistGradientBoosting
    compare in float64: the crafted rows would take the other branch in a float32 graph
    (``sensitive_rows`` proves it), so the graph must carry float64 thresholds and inputs.
    """
    make, casts_to_float32 = REGRESSORS[name]
    train = industrial.numeric.to_numpy()
    model = make().fit(train, industrial.wear)
    sample = _rows_straddling_root_split(model, train)
    crafted = np.arange(len(train), len(sample))
    if not casts_to_float32:
        assert set(crafted.tolist()) & set(sensitive_rows(model, sample))

    artifact = kp.compile(model, target="edge", sample=sample, output=tmp_path / "artifact", benchmark=False)
    assert artifact.parity.passed is True and artifact.parity.rows_out_of_tolerance == 0
    np.testing.assert_allclose(
        artifact.predictor().predict(sample), model.predict(sample), rtol=1e-5, atol=1e-5
    )
    graph = onnx.load(str(artifact.model_path))
    trees = [n for n in graph.graph.node if n.op_type.startswith("TreeEnsemble")]
    has_float64_thresholds = any(a.name == "nodes_values_as_tensor" for n in trees for a in n.attribute)
    assert has_float64_thresholds is (not casts_to_float32)
    assert artifact.input_schema.numeric.dtype == ("float32" if casts_to_float32 else "float64")
