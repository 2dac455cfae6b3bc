"""XGBoost and LightGBM models, converted by onnxmltools and registered into skl2onnx so they work inside Pipelines."""

from __future__ import annotations

from kepler.compilers.converters.spec import CLASSIFIER, REGRESSOR, ConverterSpec, register_converter

register_converter(ConverterSpec("XGBClassifier", "xgboost", CLASSIFIER, "boosting", backend="onnxmltools"))
register_converter(ConverterSpec("XGBRegressor", "xgboost", REGRESSOR, "boosting", backend="onnxmltools"))
register_converter(ConverterSpec("LGBMClassifier", "lightgbm", CLASSIFIER, "boosting", backend="onnxmltools"))
register_converter(ConverterSpec("LGBMRegressor", "lightgbm", REGRESSOR, "boosting", backend="onnxmltools"))

_CLASSIFIER_OPTIONS = {"nocl": [True, False], "zipmap": [True, False, "columns"]}


def install() -> None:
    """Registers the onnxmltools converters with skl2onnx (idempotent)."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes, calculate_linear_regressor_output_shapes,
    )

    try:
        from xgboost import XGBClassifier, XGBRegressor
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    except ImportError:
        pass
    else:
        update_registered_converter(XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
                                    convert_xgboost, options=_CLASSIFIER_OPTIONS)
        update_registered_converter(XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes,
                                    convert_xgboost)
    try:
        from lightgbm import LGBMClassifier, LGBMRegressor
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    except ImportError:
        pass
    else:
        update_registered_converter(LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes,
                                    convert_lightgbm, options=_CLASSIFIER_OPTIONS)
        update_registered_converter(LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes,
                                    convert_lightgbm, options={"split": None})
