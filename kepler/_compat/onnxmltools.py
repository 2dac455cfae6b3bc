"""onnxmltools' operator converters, which it does not export (written for onnxmltools 1.16).

Its public ``convert_xgboost`` and ``convert_lightgbm`` convert a bare model; inside a scikit-learn Pipeline the
model is converted by skl2onnx, which needs the converter of the one operator, a
``(scope, operator, container)`` function in onnxmltools' ``operator_converters`` modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Converter = Callable[[Any, Any, Any], None]


def xgboost_operator_converter() -> Converter:
    """skl2onnx's converter for an XGBoost model: ``onnxmltools.convert.xgboost.operator_converters.XGBoost``.

    Raises:
        ImportError: onnxmltools (or xgboost) is not installed.
    """
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost

    return convert_xgboost  # type: ignore[no-any-return]


def lightgbm_operator_converter() -> Converter:
    """skl2onnx's converter for a LightGBM model: ``onnxmltools.convert.lightgbm.operator_converters.LightGbm``.

    Raises:
        ImportError: onnxmltools is not installed.
    """
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

    return convert_lightgbm  # type: ignore[no-any-return]
