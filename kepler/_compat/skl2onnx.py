"""Every patch Kepler makes to skl2onnx, and the private skl2onnx API they use (written for skl2onnx 1.20).

Each patch replaces what skl2onnx has registered or imported, once per process (:func:`install` applies them all):

* :func:`hist_gradient_boosting_int_attributes`: HistGradientBoosting trees under onnx >= 1.17;
* :func:`route_missing_values_like_sklearn`: NaN in scikit-learn's DecisionTree, forest and IsolationForest;
* :func:`float64_one_hot_encoder` and :func:`float64_simple_imputer`: preprocessing kept in float64.

The private API: the converter and shape-calculator pools of ``skl2onnx.common._registration``, ``apply_cast`` of
``skl2onnx.common._apply_operation``, and the ``add_tree_to_attribute_pairs`` each tree converter module imports
from ``skl2onnx.common.tree_ensemble``. Tested with skl2onnx 1.20.0, onnx 1.23.2 and scikit-learn 1.9.1;
tests/_compat/test_skl2onnx.py fails, naming the shim, when one of them changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

Converter = Callable[[Any, Any, Any], None]  # skl2onnx's (scope, operator, container)
ShapeCalculator = Callable[[Any], None]  # skl2onnx's (operator)

HIST_GRADIENT_BOOSTING = ("SklearnHistGradientBoostingClassifier", "SklearnHistGradientBoostingRegressor")
ONE_HOT_ENCODER = "SklearnOneHotEncoder"
SIMPLE_IMPUTER = "SklearnSimpleImputer"
_MARK = "_kepler_wrapped"  # set on what a patch installed, so that a second call changes nothing


def install() -> None:
    """Applies every patch of this module (each once per process)."""
    hist_gradient_boosting_int_attributes()
    route_missing_values_like_sklearn()
    float64_one_hot_encoder()
    float64_simple_imputer()


def registered_converter(alias: str) -> Converter:
    """The converter skl2onnx has registered under ``alias`` (``skl2onnx.common._registration._converter_pool``).

    Each entry is a callable with ``get_allowed_options()``; written for skl2onnx 1.20.
    """
    from skl2onnx.common._registration import _converter_pool

    return _converter_pool[alias]  # type: ignore[no-any-return]


def registered_shape_calculator(alias: str) -> ShapeCalculator:
    """The shape calculator skl2onnx has registered under ``alias`` (``_registration._shape_calculator_pool``)."""
    from skl2onnx.common._registration import _shape_calculator_pool

    return _shape_calculator_pool[alias]  # type: ignore[no-any-return]


def replace_converter(
    alias: str,
    wrap: Callable[[Converter], Converter],
    shape_calculator: Callable[[ShapeCalculator], ShapeCalculator] | None = None,
) -> None:
    """Registers ``wrap(original)`` as skl2onnx's converter for ``alias`` (and ``shape_calculator(original)`` as
    its shape calculator), keeping the converter's options; a second call changes nothing.

    skl2onnx 1.20's public ``update_registered_converter`` takes a model class, and these aliases are its own
    scikit-learn converters, so the registration functions of ``_registration`` are used with ``overwrite=True``.
    """
    from skl2onnx.common._registration import register_converter, register_shape_calculator

    original = registered_converter(alias)
    if getattr(original, _MARK, False):
        return
    if shape_calculator is not None:
        register_shape_calculator(alias, shape_calculator(registered_shape_calculator(alias)), overwrite=True)
    register_converter(alias, wrap(original), overwrite=True, options=original.get_allowed_options())  # type: ignore[attr-defined]
    setattr(registered_converter(alias), _MARK, True)


# ------------------------------------------------------------------ HistGradientBoosting under onnx >= 1.17


def hist_gradient_boosting_int_attributes() -> None:
    """Makes skl2onnx's HistGradientBoosting converters pass list attributes holding numpy bools as ints.

    skl2onnx 1.20 passes ``missing_go_to_left`` to ``container.add_node`` as numpy bools, which onnx >= 1.17
    rejects ("Expected an int, got a boolean"); the wrapper casts them before the node is made.
    """
    for alias in HIST_GRADIENT_BOOSTING:
        replace_converter(alias, with_int_attributes)


def with_int_attributes(original: Converter) -> Converter:
    """``original`` with its container's ``add_node`` casting bools in list attributes to ints."""

    def convert(scope: Any, operator: Any, container: Any) -> None:
        add_node = container.add_node

        def add_node_with_ints(*args: Any, **attrs: Any) -> Any:
            for key, value in attrs.items():
                if isinstance(value, (list, tuple)) and any(isinstance(v, (bool, np.bool_)) for v in value):
                    attrs[key] = [int(v) for v in value]
            return add_node(*args, **attrs)

        container.add_node = add_node_with_ints
        try:
            original(scope, operator, container)
        finally:
            del container.add_node

    return convert


# ------------------------------------------------------------------ NaN routing in scikit-learn trees


def route_missing_values_like_sklearn() -> None:
    """Makes skl2onnx's DecisionTree, forest and IsolationForest converters send NaN where scikit-learn does.

    scikit-learn (>= 1.3) sends a missing value to the child ``tree_.missing_go_to_left`` names, and does so
    even for trees fit without missing values; skl2onnx 1.20 leaves ``nodes_missing_value_tracks_true`` at 0,
    so onnxruntime sends every NaN right. Each of skl2onnx's ``decision_tree``, ``random_forest`` and
    ``isolation_forest`` converter modules imports ``add_tree_to_attribute_pairs`` by name; those names are
    replaced by one that fills the attribute in after skl2onnx's own.
    """
    from skl2onnx.common import tree_ensemble
    from skl2onnx.operator_converters import decision_tree, isolation_forest, random_forest

    missing = with_missing_value_tracks(tree_ensemble.add_tree_to_attribute_pairs)
    for module in (decision_tree, random_forest, isolation_forest):
        if not getattr(module.add_tree_to_attribute_pairs, _MARK, False):
            module.add_tree_to_attribute_pairs = missing


def with_missing_value_tracks(original: Callable[..., None]) -> Callable[..., None]:
    """skl2onnx's ``add_tree_to_attribute_pairs(attr_pairs, is_classifier, tree, ...)``, followed by
    ``nodes_missing_value_tracks_true`` set from the scikit-learn tree's ``missing_go_to_left``."""

    def add_tree_with_missing(
        attr_pairs: dict[str, Any], is_classifier: bool, tree: Any, *args: Any, **kwargs: Any
    ) -> None:
        original(attr_pairs, is_classifier, tree, *args, **kwargs)
        go_left = getattr(tree, "missing_go_to_left", None)
        if go_left is None or tree.node_count == 0:
            return
        tracks = attr_pairs["nodes_missing_value_tracks_true"]
        first = len(tracks) - tree.node_count
        for i in range(tree.node_count):
            is_split = tree.children_left[i] > i or tree.children_right[i] > i
            tracks[first + i] = int(bool(go_left[i])) if is_split else 0

    setattr(add_tree_with_missing, _MARK, True)
    return add_tree_with_missing


# ------------------------------------------------------------------ preprocessing in float64


def float64_one_hot_encoder() -> None:
    """Makes skl2onnx's OneHotEncoder give float64 for an encoder of ``dtype=np.float64`` (scikit-learn's default).

    skl2onnx 1.20 always declares and writes float32; the replacement declares float64 and casts the original
    converter's output (written under another name) with ``_apply_operation.apply_cast``.
    """
    replace_converter(ONE_HOT_ENCODER, _one_hot_converter, shape_calculator=_one_hot_shape)


def float64_simple_imputer() -> None:
    """Makes skl2onnx's SimpleImputer impute a float64 input in float64.

    skl2onnx 1.20 emits ai.onnx.ml ``Imputer``, which onnxruntime runs on float only; for a float64 input and a
    NaN ``missing_values`` the replacement emits IsNaN/Where (and scikit-learn's MissingIndicator columns and
    dropped all-missing columns), and leaves every other case to the original.
    """
    replace_converter(SIMPLE_IMPUTER, _imputer_converter)


class _RenamedOutputs:
    """Operator proxy whose outputs go to other variable names (skl2onnx's converters write to
    ``operator.output_full_names``)."""

    def __init__(self, operator: Any, names: list[str]) -> None:
        self._operator = operator
        self.output_full_names = names

    def __getattr__(self, name: str) -> Any:
        return getattr(self._operator, name)


def _one_hot_shape(original: ShapeCalculator) -> ShapeCalculator:
    from skl2onnx.common.data_types import DoubleTensorType

    def calculate(operator: Any) -> None:
        original(operator)
        if operator.raw_operator.dtype == np.float64:
            operator.outputs[0].type = DoubleTensorType(operator.outputs[0].type.shape)

    return calculate


def _one_hot_converter(original: Converter) -> Converter:
    from onnx import TensorProto
    from skl2onnx.common._apply_operation import apply_cast

    def convert(scope: Any, operator: Any, container: Any) -> None:
        if operator.raw_operator.dtype != np.float64:
            original(scope, operator, container)
            return
        float_name = scope.get_unique_variable_name("onehot_float")
        original(scope, _RenamedOutputs(operator, [float_name]), container)
        apply_cast(scope, float_name, operator.output_full_names[0], container, to=TensorProto.DOUBLE)

    return convert


def _imputer_converter(original: Converter) -> Converter:
    def convert(scope: Any, operator: Any, container: Any) -> None:
        imputer = operator.raw_operator
        missing = imputer.missing_values
        numeric_nan = isinstance(missing, float) and math.isnan(missing)
        if type(operator.inputs[0].type).__name__ != "DoubleTensorType" or not numeric_nan:
            original(scope, operator, container)
            return
        statistics = np.asarray(imputer.statistics_, dtype=np.float64)
        source = operator.inputs[0].full_name
        target = operator.outputs[0].full_name
        indicator = getattr(imputer, "indicator_", None)
        if indicator is not None:
            # scikit-learn appends one 0/1 column per feature its MissingIndicator tracks.
            imputed = scope.get_unique_variable_name("imputed_values")
            flags = scope.get_unique_variable_name("missing_flags")
            _impute(scope, container, source, imputed, statistics)
            _missing_flags(scope, container, source, flags, indicator.features_)
            container.add_node(
                "Concat", [imputed, flags], [target], axis=1, name=scope.get_unique_operator_name("Concat")
            )
            return
        _impute(scope, container, source, target, statistics)

    return convert


def _missing_flags(scope: Any, container: Any, source: str, target: str, features: Any) -> None:
    from onnx import TensorProto

    mask = scope.get_unique_variable_name("is_missing")
    container.add_node("IsNaN", [source], [mask], name=scope.get_unique_operator_name("IsNaN"))
    index = scope.get_unique_variable_name("indicator_columns")
    container.add_initializer(index, TensorProto.INT64, [len(features)], [int(f) for f in features])
    picked = scope.get_unique_variable_name("picked_flags")
    container.add_node(
        "Gather", [mask, index], [picked], axis=1, name=scope.get_unique_operator_name("Gather")
    )
    container.add_node(
        "Cast", [picked], [target], to=TensorProto.DOUBLE, name=scope.get_unique_operator_name("Cast")
    )


def _impute(scope: Any, container: Any, source: str, target: str, statistics: np.ndarray) -> None:
    """Replaces NaN by the fitted statistics and drops the columns scikit-learn drops."""
    from onnx import TensorProto

    mask = scope.get_unique_variable_name("is_missing")
    container.add_node("IsNaN", [source], [mask], name=scope.get_unique_operator_name("IsNaN"))
    fill = scope.get_unique_variable_name("fill_values")
    container.add_initializer(
        fill, TensorProto.DOUBLE, [1, len(statistics)], np.nan_to_num(statistics).tolist()
    )
    kept = ~np.isnan(statistics)  # scikit-learn drops columns it never saw a value in
    filled = target if kept.all() else scope.get_unique_variable_name("imputed")
    container.add_node("Where", [mask, fill, source], [filled], name=scope.get_unique_operator_name("Where"))
    if not kept.all():
        index = scope.get_unique_variable_name("kept_columns")
        container.add_initializer(index, TensorProto.INT64, [int(kept.sum())], np.flatnonzero(kept).tolist())
        container.add_node(
            "Gather", [filled, index], [target], axis=1, name=scope.get_unique_operator_name("Gather")
        )
