"""scikit-learn classes Kepler compiles through skl2onnx, a fix for HistGradientBoosting under onnx >= 1.17,
and NaN routing for scikit-learn trees."""

from __future__ import annotations

from kepler.compilers.converters.float64_thresholds import hist_gradient_boosting_thresholds
from kepler.compilers.converters.spec import (
    CLASSIFIER,
    COMPOSITE,
    OUTLIER,
    REGRESSOR,
    TRANSFORMER,
    ConverterSpec,
    register_converter,
)

_ESTIMATORS = [
    ("LogisticRegression", CLASSIFIER, "linear"),
    ("SGDClassifier", CLASSIFIER, "linear"),
    ("RidgeClassifier", CLASSIFIER, "linear"),
    ("LinearRegression", REGRESSOR, "linear"),
    ("Ridge", REGRESSOR, "linear"),
    ("Lasso", REGRESSOR, "linear"),
    ("ElasticNet", REGRESSOR, "linear"),
    ("SGDRegressor", REGRESSOR, "linear"),
    ("DecisionTreeClassifier", CLASSIFIER, "tree"),
    ("DecisionTreeRegressor", REGRESSOR, "tree"),
    ("RandomForestClassifier", CLASSIFIER, "forest"),
    ("RandomForestRegressor", REGRESSOR, "forest"),
    ("ExtraTreesClassifier", CLASSIFIER, "forest"),
    ("ExtraTreesRegressor", REGRESSOR, "forest"),
    ("GradientBoostingClassifier", CLASSIFIER, "boosting"),
    ("GradientBoostingRegressor", REGRESSOR, "boosting"),
    ("HistGradientBoostingClassifier", CLASSIFIER, "boosting"),
    ("HistGradientBoostingRegressor", REGRESSOR, "boosting"),
    ("IsolationForest", OUTLIER, "outlier"),
]

_TRANSFORMERS = [
    "StandardScaler",
    "MinMaxScaler",
    "RobustScaler",
    "MaxAbsScaler",
    "OneHotEncoder",
    "OrdinalEncoder",
    "SimpleImputer",
    "PolynomialFeatures",
    "SelectKBest",
    "VarianceThreshold",
    "Normalizer",
    "Binarizer",
]

_COMPOSITES = ["Pipeline", "ColumnTransformer", "FeatureUnion"]


def _refuse_function(transformer: object) -> str | None:
    """skl2onnx converts a FunctionTransformer only as the identity: ``"passthrough"`` in a fitted
    ColumnTransformer, or one built without a function."""
    func = getattr(transformer, "func", None)
    if func is None:
        return None
    return (
        f"FunctionTransformer(func={getattr(func, '__name__', func)!r}) runs Python code "
        f"that ONNX cannot hold; compute that column before the model, or use a supported transformer"
    )


for _name, _role, _family in _ESTIMATORS:
    if _name.startswith("HistGradientBoosting"):
        # Compares float64 features with float64 thresholds natively; the converter writes float32 ones.
        register_converter(
            ConverterSpec(
                _name,
                "sklearn",
                _role,
                _family,
                native_float="float64",
                converter_float="float32",
                native_thresholds=hist_gradient_boosting_thresholds,
            )
        )
    else:
        register_converter(
            ConverterSpec(
                _name, "sklearn", _role, _family, native_float="float64" if _family == "linear" else "float32"
            )
        )
for _name in _TRANSFORMERS:
    register_converter(ConverterSpec(_name, "sklearn", TRANSFORMER, "preprocessing"))
register_converter(
    ConverterSpec("FunctionTransformer", "sklearn", TRANSFORMER, "preprocessing", refuse=_refuse_function)
)
for _name in _COMPOSITES:
    register_converter(ConverterSpec(_name, "sklearn", COMPOSITE, "composite"))


def install() -> None:
    """Patches skl2onnx's HistGradientBoosting converters (numpy bools as ints, for onnx >= 1.17) and its tree
    converters (NaN routed where scikit-learn routes it); see :mod:`kepler._compat.skl2onnx`."""
    from kepler._compat import skl2onnx as skl2onnx_compat

    skl2onnx_compat.hist_gradient_boosting_int_attributes()
    skl2onnx_compat.route_missing_values_like_sklearn()
