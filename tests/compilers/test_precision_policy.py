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

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier, HistGradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from xgboost import XGBClassifier, XGBRegressor

import kepler as kp
from kepler.errors import ParityError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _one_ulp_up(rows: np.ndarray, column: int = 0) -> np.ndarray:
    nudged = rows.copy()
    nudged[:, column] = np.nextafter(rows[:, column].astype(np.float32), np.float32(np.inf)).astype(np.float64)
    return nudged


def _assert_exact_agreement(artifact: Any, model: Any, rows: Any) -> None:
    report = artifact.parity
    assert report["passed"] is True
    assert report["label_agreement"] == 1.0
    assert report["max_abs_diff"] < 1e-6
    assert all(r["native_label"] == r["compiled_label"] for r in report["worst_rows"])
    predictor = artifact.predictor()
    np.testing.assert_array_equal(predictor.predict(rows), model.predict(rows))
    np.testing.assert_allclose(predictor.predict_proba(rows), model.predict_proba(rows), atol=1e-6)


def _out_of_tolerance(report: dict[str, Any]) -> set[int]:
    """Rows the parity report names as beyond its tolerance (it also lists the worst rows within it)."""
    tolerance = report["tolerance"]
    return {r["row"] for r in report["worst_rows"]
            if r.get("native_label") != r.get("compiled_label")
            or any(abs(c - n) > tolerance["atol"] + tolerance["rtol"] * abs(n) for c, n in zip(r["compiled"], r["native"]))}


def _loose_profile(tmp_path: Path) -> Path:
    """A profile that accepts any difference, to look at what the graph computes."""
    path = tmp_path / "loose.toml"
    path.write_text(
        'name = "loose"\nthreads = 1\nmemory_mb = 256\nlatency_p99_ms = 1000\nsize_mb = 100\n'
        'batch_sizes = [1]\nartifact_format = "onnx"\npasses = []\n'
        '[parity]\natol = 1e9\nrtol = 0\nmin_label_agreement = 0\n', encoding="utf-8")
    return path


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
    "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(max_iter=20, min_samples_leaf=1, random_state=0),
    "lightgbm": lambda: LGBMClassifier(n_estimators=20, min_child_samples=1, min_data_in_bin=1, n_jobs=1, verbose=-1),
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
    frame = pd.DataFrame({"reading": raw, "noise": rng.normal(size=len(raw)),
                          "line": pd.Series(rng.choice(["a", "b"], len(raw)), dtype=object)})
    return frame, labels


def _pipeline(front: str, estimator: Any) -> tuple[Pipeline, Any]:
    frame, y = _scaled_threshold_table()
    if front == "standard_scaler":
        rows: Any = frame[["reading", "noise"]].to_numpy()
        pre: Any = StandardScaler()
    else:
        rows = frame
        pre = ColumnTransformer([("num", StandardScaler(), ["reading", "noise"]), ("cat", OneHotEncoder(), ["line"])])
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

    assert {c["dtype"] for c in artifact.input_schema["columns"] if c["kind"] == "numeric"} == {"float64"}
    _assert_exact_agreement(artifact, model, rows)


FLOAT64_NATIVE = {
    "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(max_iter=30, min_samples_leaf=1,
                                                                     max_leaf_nodes=None, random_state=0),
    "lightgbm": lambda: LGBMClassifier(n_estimators=30, min_child_samples=1, min_data_in_bin=1, num_leaves=255,
                                       n_jobs=1, verbose=-1),
}


@pytest.mark.parametrize("estimator", sorted(FLOAT64_NATIVE))
@pytest.mark.parametrize("front", ["standard_scaler", "column_transformer"])
def test_float64_native_boosters_in_pipelines_differ_only_on_float32_sensitive_rows(
        front, estimator, tmp_path, sensitive_rows):
    """On standardized features one float32 step apart, what the graph computes differs from
    LightGBM/HistGradientBoosting only on rows whose feature lies within float32 rounding of a
    threshold, and the edge compile fails exactly when such a row differs beyond tolerance."""
    model, rows = _pipeline(front, FLOAT64_NATIVE[estimator]())
    sensitive = sensitive_rows(model[-1], model[:-1].transform(rows))
    assert 0 < len(sensitive) < len(model[:-1].transform(rows)) // 10

    loose = kp.compile(model, target=_loose_profile(tmp_path), sample=rows, output=tmp_path / "loose",
                       benchmark=False)
    predictor = loose.predictor()
    native = model.predict_proba(rows)
    compiled = predictor.predict_proba(rows)
    off = np.flatnonzero(np.abs(compiled - native).max(axis=1) > 1e-4 + 1e-3 * np.abs(native).max(axis=1))
    assert set(off.tolist()) <= set(sensitive)
    agree = np.setdiff1d(np.arange(len(native)), sensitive)
    np.testing.assert_allclose(compiled[agree], native[agree], atol=1e-6)

    edge_output = tmp_path / "edge"
    if len(off):
        with pytest.raises(ParityError) as caught:
            kp.compile(model, target="edge", sample=rows, output=edge_output, benchmark=False)
        named = {r["row"] for r in caught.value.report["worst_rows"]}
        assert named & set(off.tolist())
        assert _out_of_tolerance(caught.value.report) <= set(sensitive)
        assert not edge_output.exists()
    else:
        assert kp.compile(model, target="edge", sample=rows, output=edge_output, benchmark=False).parity["passed"]


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
    """Float32-native trees agree on any float64 value (they cast it natively as the graph does).
    LightGBM and HistGradientBoosting can take the other branch; the compile then fails with a
    report that names the crafted rows."""
    make, casts_to_float32 = REGRESSORS[name]
    train = industrial.numeric.to_numpy()
    model = make().fit(train, industrial.wear)
    sample = _rows_straddling_root_split(model, train)
    crafted = np.arange(len(train), len(sample))
    output = tmp_path / "artifact"

    if casts_to_float32:
        artifact = kp.compile(model, target="edge", sample=sample, output=output, benchmark=False)
        assert artifact.parity["passed"] is True
        np.testing.assert_allclose(artifact.predictor().predict(sample), model.predict(sample), rtol=1e-5, atol=1e-5)
        return

    assert set(crafted.tolist()) & set(sensitive_rows(model, sample))
    with pytest.raises(ParityError) as caught:
        kp.compile(model, target="edge", sample=sample, output=output, benchmark=False)
    report = caught.value.report
    assert report["passed"] is False and report["rows_out_of_tolerance"] >= 1
    named = _out_of_tolerance(report)
    assert named and named <= set(crafted.tolist())
    assert str(report["rows_out_of_tolerance"]) in str(caught.value)
    assert not output.exists()
