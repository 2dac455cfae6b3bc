"""Preprocessing converted in float64, as scikit-learn computes it.

skl2onnx 1.20 emits float32 in three places of an otherwise float64 graph: OneHotEncoder's output,
SimpleImputer's ai.onnx.ml ``Imputer`` (float-only in onnxruntime), and PolynomialFeatures' ``ConstantOfShape``.
The first two are patched in skl2onnx (:mod:`kepler._compat.skl2onnx`, installed by :func:`install`);
:func:`repair_constant_of_shape` fixes the third in the converted graph.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper


def install() -> None:
    """Replaces skl2onnx's OneHotEncoder and SimpleImputer converters with float64-preserving ones."""
    from kepler._compat import skl2onnx as skl2onnx_compat

    skl2onnx_compat.float64_one_hot_encoder()
    skl2onnx_compat.float64_simple_imputer()


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
