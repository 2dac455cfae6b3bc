"""Canaries of kepler._compat.skl2onnx: the private skl2onnx API its patches use, the skl2onnx behaviour each patch
works around, and the patched conversions against scikit-learn.

A canary's message names the shim: when skl2onnx changes, it says which patch to revisit (or remove, when skl2onnx
fixed what the patch works around).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeRegressor

from kepler._compat import skl2onnx as compat
from kepler._compat.sklearn import fitted_predictors

TARGET_OPSET = {"": 15, "ai.onnx.ml": 3}  # Kepler's (kepler.compilers.convert)


@pytest.fixture(scope="module", autouse=True)
def _patched() -> None:
    compat.install()  # what Kepler does before its first conversion; idempotent


def run(model: Any, x: np.ndarray, input_type: Any) -> list[np.ndarray]:
    from skl2onnx import convert_sklearn

    graph = convert_sklearn(
        model, initial_types=[("x", input_type([None, x.shape[1]]))], target_opset=TARGET_OPSET
    )
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


def test_the_aliases_the_patches_replace_are_registered() -> None:
    from skl2onnx._supported_operators import sklearn_operator_name_map

    for cls, alias in zip(
        (HistGradientBoostingClassifier, HistGradientBoostingRegressor),
        compat.HIST_GRADIENT_BOOSTING,
        strict=True,
    ):
        assert sklearn_operator_name_map[cls] == alias, (
            f"kepler._compat.skl2onnx.hist_gradient_boosting_int_attributes: skl2onnx registers {cls.__name__} "
            f"as {sklearn_operator_name_map[cls]!r}, not {alias!r}"
        )
    for alias in (*compat.HIST_GRADIENT_BOOSTING, compat.ONE_HOT_ENCODER, compat.SIMPLE_IMPUTER):
        converter = compat.registered_converter(alias)
        assert callable(converter) and callable(converter.get_allowed_options), (
            f"kepler._compat.skl2onnx.replace_converter: skl2onnx's _converter_pool[{alias!r}] changed"
        )
        assert getattr(converter, "_kepler_wrapped", False), (
            f"kepler._compat.skl2onnx.install left {alias} alone"
        )
    assert callable(compat.registered_shape_calculator(compat.ONE_HOT_ENCODER)), (
        "kepler._compat.skl2onnx.float64_one_hot_encoder: skl2onnx's _shape_calculator_pool changed"
    )


def test_install_twice_changes_nothing() -> None:
    before = {
        a: compat.registered_converter(a) for a in (*compat.HIST_GRADIENT_BOOSTING, compat.ONE_HOT_ENCODER)
    }
    shape = compat.registered_shape_calculator(compat.ONE_HOT_ENCODER)
    compat.install()
    assert {a: compat.registered_converter(a) for a in before} == before
    assert compat.registered_shape_calculator(compat.ONE_HOT_ENCODER) is shape


def test_skl2onnx_passes_hist_gradient_boosting_missing_flags_as_bools_which_onnx_rejects() -> None:
    """What hist_gradient_boosting_int_attributes is for: if either changes, this fails and the patch can go."""
    from skl2onnx.common import tree_ensemble

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    model = HistGradientBoostingRegressor(max_iter=2, random_state=0).fit(x, x[:, 0])
    attributes = tree_ensemble.get_default_tree_regressor_attribute_pairs()
    tree_ensemble.add_tree_to_attribute_pairs_hist_gradient_boosting(
        attributes, False, fitted_predictors(model)[0][0], 0, 1.0, 0, False
    )
    flags = attributes["nodes_missing_value_tracks_true"]
    assert any(isinstance(v, (bool, np.bool_)) for v in flags), (
        "kepler._compat.skl2onnx.hist_gradient_boosting_int_attributes: skl2onnx no longer passes "
        "missing_go_to_left as bools; drop the patch"
    )
    with pytest.raises((TypeError, ValueError)):
        onnx.helper.make_attribute("nodes_missing_value_tracks_true", flags)


def test_hist_gradient_boosting_converts_and_matches() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3))
    x[rng.random(x.shape) < 0.1] = np.nan
    y = (np.nan_to_num(x[:, 0]) > 0).astype(np.int64)
    model = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(x, y)
    labels = run(model, x.astype(np.float32), _float_type())[0]
    assert (labels == model.predict(x.astype(np.float32))).mean() > 0.99


def test_skl2onnx_leaves_nan_routing_to_onnxruntime_default() -> None:
    """What route_missing_values_like_sklearn is for: if skl2onnx fills the flags itself, this fails and the patch
    can go."""
    from skl2onnx.common import tree_ensemble

    x, y = _left_for_missing()
    tree = DecisionTreeRegressor(max_depth=2, random_state=0).fit(x, y).tree_
    assert tree.missing_go_to_left.any(), "scikit-learn no longer routes this tree's NaN left"
    attributes = tree_ensemble.get_default_tree_regressor_attribute_pairs()
    tree_ensemble.add_tree_to_attribute_pairs(attributes, False, tree, 0, 1.0, 0, False)
    assert not any(attributes["nodes_missing_value_tracks_true"]), (
        "kepler._compat.skl2onnx.route_missing_values_like_sklearn: skl2onnx sets "
        "nodes_missing_value_tracks_true itself now; drop the patch"
    )


def test_tree_converters_call_the_replaced_name() -> None:
    from skl2onnx.operator_converters import decision_tree, isolation_forest, random_forest

    for module in (decision_tree, random_forest, isolation_forest):
        assert getattr(getattr(module, "add_tree_to_attribute_pairs", None), "_kepler_wrapped", False), (
            f"kepler._compat.skl2onnx.route_missing_values_like_sklearn: {module.__name__} no longer imports "
            f"add_tree_to_attribute_pairs by name"
        )
    x, y = _left_for_missing()
    model = DecisionTreeRegressor(max_depth=2, random_state=0).fit(x, y)
    rows = np.array([[np.nan, 0.0], [np.nan, 5.0], [1.0, np.nan]])
    predicted = run(model, rows.astype(np.float32), _float_type())[0].ravel()
    np.testing.assert_allclose(
        predicted,
        model.predict(rows.astype(np.float32)),
        rtol=1e-6,
        err_msg="kepler._compat.skl2onnx.route_missing_values_like_sklearn: NaN goes elsewhere than scikit-learn's",
    )


def test_one_hot_encoder_converts_in_float64() -> None:
    from skl2onnx.common._apply_operation import apply_cast

    assert list(inspect.signature(apply_cast).parameters)[:4] == [
        "scope",
        "input_name",
        "output_name",
        "container",
    ], "kepler._compat.skl2onnx.float64_one_hot_encoder: skl2onnx.common._apply_operation.apply_cast changed"
    x = np.array([[1.0, 2.0], [3.0, 2.0], [1.0, 5.0]])
    model = OneHotEncoder().fit(x)
    encoded = run(model, x, _double_type())[0]
    assert encoded.dtype == np.float64, (
        "kepler._compat.skl2onnx.float64_one_hot_encoder: OneHotEncoder's output is not float64"
    )
    np.testing.assert_array_equal(encoded, model.transform(x).toarray())


@pytest.mark.filterwarnings("ignore:Skipping features without any observed values:UserWarning")
@pytest.mark.parametrize("indicator", [False, True])
def test_simple_imputer_imputes_float64_as_scikit_learn(indicator: bool) -> None:
    x = np.array([[1.0, np.nan, 7.5], [np.nan, np.nan, 2.25], [3.0, np.nan, np.nan]])
    model = SimpleImputer(add_indicator=indicator).fit(x)
    imputed = run(model, x, _double_type())[0]
    assert imputed.dtype == np.float64, (
        "kepler._compat.skl2onnx.float64_simple_imputer: the output is not float64"
    )
    np.testing.assert_array_equal(imputed, model.transform(x))


def _left_for_missing() -> tuple[np.ndarray, np.ndarray]:
    """A table whose fitted tree sends a missing first feature left (where the low values go)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 2))
    y = np.where(x[:, 0] > 0, 10.0, -10.0)
    x[:20, 0] = np.nan
    y[:20] = -10.0
    return x, y


def _float_type() -> Any:
    from skl2onnx.common.data_types import FloatTensorType

    return FloatTensorType


def _double_type() -> Any:
    from skl2onnx.common.data_types import DoubleTensorType

    return DoubleTensorType
