"""Converter fixes so preprocessing converts in float64, as scikit-learn computes it.

skl2onnx 1.20 emits float32 in three places of an otherwise float64 graph:
OneHotEncoder's output, SimpleImputer's ai.onnx.ml ``Imputer`` (float-only in
onnxruntime), and PolynomialFeatures' ``ConstantOfShape``. These wrappers and
:func:`repair_constant_of_shape` keep the whole preprocessing graph in float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper


class _RenamedOutputs:
    """Operator proxy whose outputs go to other variable names."""

    def __init__(self, operator: Any, names: list[str]) -> None:
        self._operator = operator
        self.output_full_names = names

    def __getattr__(self, name: str) -> Any:
        return getattr(self._operator, name)


def _one_hot_shape(original: Any) -> Any:
    from skl2onnx.common.data_types import DoubleTensorType

    def calculate(operator: Any) -> None:
        original(operator)
        if operator.raw_operator.dtype == np.float64:
            operator.outputs[0].type = DoubleTensorType(operator.outputs[0].type.shape)

    return calculate


def _one_hot_converter(original: Any) -> Any:
    from skl2onnx.common._apply_operation import apply_cast

    def convert(scope: Any, operator: Any, container: Any) -> None:
        if operator.raw_operator.dtype != np.float64:
            original(scope, operator, container)
            return
        float_name = scope.get_unique_variable_name("onehot_float")
        original(scope, _RenamedOutputs(operator, [float_name]), container)
        apply_cast(scope, float_name, operator.output_full_names[0], container, to=TensorProto.DOUBLE)

    return convert


def _imputer_converter(original: Any) -> Any:
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


def install() -> None:
    """Replaces skl2onnx's OneHotEncoder and SimpleImputer converters with float64-preserving ones."""
    from skl2onnx.common._registration import (
        _converter_pool,
        _shape_calculator_pool,
        register_converter,
        register_shape_calculator,
    )

    one_hot = _converter_pool["SklearnOneHotEncoder"]
    if not getattr(one_hot, "_kepler_wrapped", False):
        register_shape_calculator(
            "SklearnOneHotEncoder",
            _one_hot_shape(_shape_calculator_pool["SklearnOneHotEncoder"]),
            overwrite=True,
        )
        register_converter(
            "SklearnOneHotEncoder",
            _one_hot_converter(one_hot),
            overwrite=True,
            options=one_hot.get_allowed_options(),
        )
        _converter_pool["SklearnOneHotEncoder"]._kepler_wrapped = True
    imputer = _converter_pool["SklearnSimpleImputer"]
    if not getattr(imputer, "_kepler_wrapped", False):
        register_converter(
            "SklearnSimpleImputer",
            _imputer_converter(imputer),
            overwrite=True,
            options=imputer.get_allowed_options(),
        )
        _converter_pool["SklearnSimpleImputer"]._kepler_wrapped = True


def repair_constant_of_shape(model: onnx.ModelProto) -> onnx.ModelProto:
    """Makes float32 ``ConstantOfShape`` values float64 in a graph converted in float64."""
    for node in model.graph.node:
        if node.op_type != "ConstantOfShape":
            continue
        for attribute in node.attribute:
            if attribute.name == "value" and attribute.t.data_type == TensorProto.FLOAT:
                value = numpy_helper.to_array(attribute.t).astype(np.float64)
                attribute.t.CopyFrom(numpy_helper.from_array(value, attribute.t.name))
    return model
