"""XGBoost and LightGBM models, converted by onnxmltools and registered into skl2onnx so they work inside Pipelines."""

from __future__ import annotations

import copy
from typing import Any

from kepler.compilers.converters.float64_thresholds import lightgbm_thresholds
from kepler.compilers.converters.spec import CLASSIFIER, REGRESSOR, ConverterSpec, register_converter


def without_feature_names(model: Any, final: Any) -> tuple[Any, Any]:
    """A copy of ``model`` whose XGBoost booster has no feature names, and its final estimator.

    An XGBoost model fit on a DataFrame keeps the column names in its booster, and onnxmltools then
    fails ("feature names should follow pattern 'f%d'"); the graph addresses features by position.
    """
    if not getattr(final.get_booster(), "feature_names", None):
        return model, final
    model = copy.deepcopy(model)
    final = model.steps[-1][1] if type(model).__name__ == "Pipeline" else model
    final.get_booster().feature_names = None
    return model, final


# XGBoost casts its input to float32; LightGBM compares float64 with float64 thresholds, which the
# converter writes as float32 (restored after conversion).
for _name, _role in (("XGBClassifier", CLASSIFIER), ("XGBRegressor", REGRESSOR)):
    register_converter(
        ConverterSpec(
            _name, "xgboost", _role, "boosting", backend="onnxmltools", prepare=without_feature_names
        )
    )
for _name, _role in (("LGBMClassifier", CLASSIFIER), ("LGBMRegressor", REGRESSOR)):
    register_converter(
        ConverterSpec(
            _name,
            "lightgbm",
            _role,
            "boosting",
            backend="onnxmltools",
            native_float="float64",
            converter_float="float32",
            native_thresholds=lightgbm_thresholds,
        )
    )

_CLASSIFIER_OPTIONS = {"nocl": [True, False], "zipmap": [True, False, "columns"]}


def install() -> None:
    """Registers the onnxmltools converters with skl2onnx (idempotent)."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    from kepler._compat import onnxmltools as onnxmltools_compat

    try:
        from xgboost import XGBClassifier, XGBRegressor

        convert_xgboost = onnxmltools_compat.xgboost_operator_converter()
    except ImportError:
        pass
    else:
        update_registered_converter(
            XGBClassifier,
            "XGBoostXGBClassifier",
            calculate_linear_classifier_output_shapes,
            convert_xgboost,
            options=_CLASSIFIER_OPTIONS,
        )
        update_registered_converter(
            XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes, convert_xgboost
        )
    try:
        from lightgbm import LGBMClassifier, LGBMRegressor

        convert_lightgbm = onnxmltools_compat.lightgbm_operator_converter()
    except ImportError:
        pass
    else:
        update_registered_converter(
            LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options=_CLASSIFIER_OPTIONS,
        )
        update_registered_converter(
            LGBMRegressor,
            "LightGbmLGBMRegressor",
            calculate_linear_regressor_output_shapes,
            convert_lightgbm,
            options={"split": None},
        )
