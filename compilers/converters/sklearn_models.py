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
    if getattr(transformer, "func", None) is None:
        return None
    return (
        f"FunctionTransformer(func={getattr(transformer.func, '__name__', transformer.func)!r}) runs Python code "
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
    """Wraps skl2onnx's HistGradientBoosting converters so numpy bools become ints.

    skl2onnx 1.20 passes ``missing_go_to_left`` as numpy bools, which onnx >= 1.17
    rejects ("Expected an int, got a boolean"); the wrapper casts them before the node is made.
    """
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._registration import _converter_pool
    from skl2onnx.common._registration import register_converter as skl_register
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    for cls in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
        alias = sklearn_operator_name_map[cls]
        original = _converter_pool[alias]
        if getattr(original, "_kepler_wrapped", False):
            continue

        skl_register(
            alias, _with_int_attributes(original), overwrite=True, options=original.get_allowed_options()
        )
        _converter_pool[alias]._kepler_wrapped = True
    _route_missing_values_like_sklearn()


def _route_missing_values_like_sklearn():
    """Makes skl2onnx's DecisionTree, forest and IsolationForest converters send NaN where scikit-learn does.

    scikit-learn (>= 1.3) sends a missing value to the child ``tree_.missing_go_to_left``
    names, and does so even for trees fit without missing values; skl2onnx 1.20 leaves
    ``nodes_missing_value_tracks_true`` at 0, so onnxruntime sends every NaN right.
    """
    from skl2onnx.common import tree_ensemble
    from skl2onnx.operator_converters import decision_tree, isolation_forest, random_forest

    original = tree_ensemble.add_tree_to_attribute_pairs

    def add_tree_with_missing(attr_pairs, is_classifier, tree, *args, **kwargs):
        original(attr_pairs, is_classifier, tree, *args, **kwargs)
        go_left = getattr(tree, "missing_go_to_left", None)
        if go_left is None or tree.node_count == 0:
            return
        tracks = attr_pairs["nodes_missing_value_tracks_true"]
        first = len(tracks) - tree.node_count
        for i in range(tree.node_count):
            is_split = tree.children_left[i] > i or tree.children_right[i] > i
            tracks[first + i] = int(bool(go_left[i])) if is_split else 0

    add_tree_with_missing._kepler_wrapped = True
    for module in (decision_tree, random_forest, isolation_forest):
        if not getattr(module.add_tree_to_attribute_pairs, "_kepler_wrapped", False):
            module.add_tree_to_attribute_pairs = add_tree_with_missing


def _with_int_attributes(original):
    """Wraps a skl2onnx converter so list attributes holding numpy bools are passed as ints."""
    import numpy as np

    def convert(scope, operator, container):
        add_node = container.add_node

        def add_node_with_ints(*args, **attrs):
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
