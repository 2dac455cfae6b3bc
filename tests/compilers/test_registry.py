"""Converter registry: no silent overwrites, a listing, and clear refusals of what it cannot compile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import QuantileTransformer, StandardScaler
from sklearn.svm import SVC

import kepler as kp
from kepler.compilers import ConverterSpec, register_converter, supported
from kepler.compilers.converters import CONVERTERS, spec_for
from kepler.errors import RegistryError, UnsupportedModelError
from kepler.targets import Registry

EXPECTED_ESTIMATORS = {
    "LogisticRegression",
    "LinearRegression",
    "Ridge",
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
    "HistGradientBoostingClassifier",
    "HistGradientBoostingRegressor",
    "IsolationForest",
    "XGBClassifier",
    "XGBRegressor",
    "LGBMClassifier",
    "LGBMRegressor",
}
EXPECTED_TRANSFORMERS = {
    "StandardScaler",
    "MinMaxScaler",
    "OneHotEncoder",
    "SimpleImputer",
    "PolynomialFeatures",
    "SelectKBest",
}


def test_supported_lists_every_family_sorted():
    names = supported()
    assert names == sorted(names)
    assert EXPECTED_ESTIMATORS | EXPECTED_TRANSFORMERS | {"Pipeline", "ColumnTransformer"} <= set(names)
    assert kp.supported() == names


def test_supported_filters_by_role():
    classifiers = supported("classifier")
    regressors = supported("regressor")
    assert "XGBClassifier" in classifiers and "XGBRegressor" not in classifiers
    assert "LGBMRegressor" in regressors and "LogisticRegression" not in regressors
    assert supported("outlier") == ["IsolationForest"]
    assert "OneHotEncoder" in supported("transformer")
    assert set(classifiers).isdisjoint(regressors)


def test_specs_describe_package_family_and_backend():
    xgb = CONVERTERS.get("XGBClassifier")
    assert (xgb.name, xgb.package, xgb.role, xgb.family, xgb.backend) == (
        "XGBClassifier",
        "xgboost",
        "classifier",
        "boosting",
        "onnxmltools",
    )
    assert CONVERTERS.get("RandomForestRegressor").family == "forest"
    assert CONVERTERS.get("LogisticRegression").family == "linear"
    assert CONVERTERS.get("StandardScaler").role == "transformer"


@pytest.mark.parametrize(
    "name, native, converter, thresholds",
    [
        ("LogisticRegression", "float64", "float64", False),
        ("Ridge", "float64", "float64", False),
        ("RandomForestClassifier", "float32", "float32", False),
        ("XGBRegressor", "float32", "float32", False),
        ("GradientBoostingClassifier", "float32", "float32", False),
        ("IsolationForest", "float32", "float32", False),
        ("LGBMClassifier", "float64", "float32", True),
        ("HistGradientBoostingRegressor", "float64", "float32", True),
    ],
)
def test_registrations_carry_the_precision_policy(name, native, converter, thresholds):
    spec = CONVERTERS.get(name)
    assert (spec.native_float, spec.input_float, spec.native_thresholds is not None) == (
        native,
        converter,
        thresholds,
    )


def test_no_class_name_lists_remain_outside_the_registry():
    """The precision policy lives in the registrations: the compiler never tests estimator class names."""
    import re
    from pathlib import Path

    import kepler.compilers as compilers

    root = Path(compilers.__file__).parent
    pattern = re.compile(r"__name__\s*(?:in|not in|==|!=)\s*\(?[\"'](?:LGBM|XGB|HistGradient|RandomForest)")
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_duplicate_converter_registration_raises():
    before = CONVERTERS.get("Ridge")
    with pytest.raises(RegistryError, match="'Ridge' is already registered"):
        register_converter(ConverterSpec("Ridge", "sklearn", "regressor", "linear"))
    assert CONVERTERS.get("Ridge") is before


def test_replace_is_an_explicit_override(monkeypatch):
    monkeypatch.setattr(CONVERTERS, "_entries", dict(CONVERTERS._entries))  # restored after the test
    replacement = ConverterSpec("Ridge", "sklearn", "regressor", "special")
    register_converter(replacement, replace=True)
    assert CONVERTERS.get("Ridge") is replacement


def test_registry_get_of_unknown_name_lists_known_ones():
    registry: Registry[int] = Registry("widget")
    registry.register("b", 2)
    registry.register("a", 1)
    assert registry.names() == ["a", "b"] and list(registry) == ["a", "b"] and len(registry) == 2
    assert "a" in registry and "c" not in registry
    with pytest.raises(RegistryError, match=r"unknown widget 'c'; known: a, b"):
        registry.get("c")
    with pytest.raises(RegistryError, match="widget named 'a'"):
        registry.register("a", 3)
    assert registry.get("a") == 1


def test_spec_matches_the_package_not_only_the_class_name():
    class LogisticRegression:  # same name, another package
        def fit(self, X, y):
            return self

        def predict(self, X):
            return X

    assert spec_for(LogisticRegression()) is None
    assert spec_for(SVC()) is None
    with pytest.raises(UnsupportedModelError, match="no converter is registered"):
        kp.compile(LogisticRegression(), target="edge", sample=np.zeros((2, 2)), benchmark=False)


@pytest.mark.parametrize("model", [SVC(), KNeighborsClassifier(n_neighbors=3)], ids=["svc", "kneighbors"])
def test_unsupported_estimator_names_the_class_and_lists_supported_ones(model, industrial, tmp_path):
    rows = industrial.numeric_filled.to_numpy()
    model.fit(rows, industrial.failure)
    output = tmp_path / "artifact"

    with pytest.raises(UnsupportedModelError) as caught:
        kp.compile(model, target="edge", sample=rows, output=output, benchmark=False)

    message = str(caught.value)
    assert type(model).__name__ in message
    assert type(model).__module__ in message
    assert "supported:" in message
    for name in ("LogisticRegression", "XGBClassifier", "RandomForestClassifier", "OneHotEncoder"):
        assert name in message
    assert not output.exists()


def test_unsupported_step_inside_a_pipeline_is_named(industrial):
    frame = industrial.numeric_filled
    model = Pipeline(
        [
            ("columns", ColumnTransformer([("q", QuantileTransformer(n_quantiles=20), list(frame.columns))])),
            ("model", LogisticRegression()),
        ]
    ).fit(frame, industrial.failure)
    with pytest.raises(UnsupportedModelError, match="QuantileTransformer"):
        kp.compile(model, target="edge", sample=frame, benchmark=False)


@pytest.mark.parametrize(
    "model",
    [
        LogisticRegression(),
        Pipeline([("scale", StandardScaler()), ("model", Ridge())]),
    ],
    ids=["estimator", "pipeline"],
)
def test_unfitted_model_is_refused(model, industrial, tmp_path):
    with pytest.raises(UnsupportedModelError, match=r"not fitted; call fit\(X, y\)"):
        kp.compile(
            model, target="edge", sample=industrial.numeric_filled, output=tmp_path / "a", benchmark=False
        )
    assert not (tmp_path / "a").exists()


def test_unfitted_xgboost_and_lightgbm_are_refused(industrial):
    from lightgbm import LGBMRegressor
    from xgboost import XGBClassifier

    for model in (XGBClassifier(), LGBMRegressor()):
        with pytest.raises(UnsupportedModelError, match="not fitted"):
            kp.compile(model, target="edge", sample=industrial.numeric_filled, benchmark=False)


def test_pipeline_ending_in_a_transformer_is_refused(industrial):
    model = Pipeline([("scale", StandardScaler())]).fit(industrial.numeric_filled)
    with pytest.raises(UnsupportedModelError, match="ends in StandardScaler, not an estimator"):
        kp.compile(model, target="edge", sample=industrial.numeric_filled, benchmark=False)


@pytest.mark.parametrize("thing", [{"a": 1}, "model.joblib", np.zeros(3)], ids=["dict", "str", "array"])
def test_objects_that_are_not_models_are_refused(thing, industrial):
    with pytest.raises(UnsupportedModelError, match="not a model"):
        kp.compile(thing, target="edge", sample=industrial.numeric_filled, benchmark=False)


def test_profile_allowed_estimators_restricts_families(industrial, tmp_path: Path):
    profile = tmp_path / "trees_only.toml"
    profile.write_text(
        'name = "trees_only"\nthreads = 1\nmemory_mb = 256\nlatency_p99_ms = 50\nsize_mb = 10\n'
        'batch_sizes = [1]\nartifact_format = "onnx"\npasses = []\n'
        'allowed_estimators = ["forest", "XGBClassifier"]\n',
        encoding="utf-8",
    )
    rows = industrial.numeric_filled
    linear = LogisticRegression(max_iter=2000).fit(rows, industrial.failure)
    with pytest.raises(
        UnsupportedModelError, match=r"allows only XGBClassifier, forest, not LogisticRegression"
    ):
        kp.compile(linear, target=profile, sample=rows, benchmark=False)

    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(rows, industrial.failure)
    artifact = kp.compile(forest, target=profile, sample=rows, output=tmp_path / "forest", benchmark=False)
    assert artifact.manifest.target.allowed_estimators == ("forest", "XGBClassifier")
