"""Parity tests: every converter family, compiled with kp.compile and run by onnxruntime,
against the native model on the same rows.

Each estimator family runs three ways:
- inside a Pipeline behind a ColumnTransformer (imputers, scalers, one-hot encoding,
  polynomial features, SelectKBest) on the industrial table with NaNs and a categorical column;
- bare, fit on a numpy array;
- bare, fit on a numeric DataFrame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, PolynomialFeatures, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from xgboost import XGBClassifier, XGBRegressor

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

NUMERIC = ["temperature", "pressure", "vibration", "rpm"]


@dataclass(frozen=True)
class Case:
    """One estimator family under test.

    Attributes:
        name: Test id.
        make: Builds a fresh, unfitted estimator.
        task: classifier, regressor or outlier.
        accepts_nan: Whether the native estimator takes NaN without an imputer.
    """

    name: str
    make: Callable[[], Any]
    task: str
    accepts_nan: bool

    def __str__(self) -> str:
        return self.name


CASES = [
    Case("logistic_regression", lambda: LogisticRegression(max_iter=2000), "classifier", False),
    Case("linear_regression", LinearRegression, "regressor", False),
    Case("ridge", lambda: Ridge(alpha=0.5), "regressor", False),
    Case(
        "decision_tree_classifier",
        lambda: DecisionTreeClassifier(max_depth=6, random_state=0),
        "classifier",
        True,
    ),
    Case(
        "decision_tree_regressor",
        lambda: DecisionTreeRegressor(max_depth=6, random_state=0),
        "regressor",
        True,
    ),
    Case(
        "random_forest_classifier",
        lambda: RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0),
        "classifier",
        True,
    ),
    Case(
        "random_forest_regressor",
        lambda: RandomForestRegressor(n_estimators=15, max_depth=6, random_state=0),
        "regressor",
        True,
    ),
    Case(
        "extra_trees_classifier",
        lambda: ExtraTreesClassifier(n_estimators=15, max_depth=6, random_state=0),
        "classifier",
        True,
    ),
    Case(
        "extra_trees_regressor",
        lambda: ExtraTreesRegressor(n_estimators=15, max_depth=6, random_state=0),
        "regressor",
        True,
    ),
    Case(
        "gradient_boosting_classifier",
        lambda: GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=0),
        "classifier",
        False,
    ),
    Case(
        "gradient_boosting_regressor",
        lambda: GradientBoostingRegressor(n_estimators=15, max_depth=3, random_state=0),
        "regressor",
        False,
    ),
    Case(
        "hist_gradient_boosting_classifier",
        lambda: HistGradientBoostingClassifier(max_iter=15, random_state=0),
        "classifier",
        True,
    ),
    Case(
        "hist_gradient_boosting_regressor",
        lambda: HistGradientBoostingRegressor(max_iter=15, random_state=0),
        "regressor",
        True,
    ),
    Case("isolation_forest", lambda: IsolationForest(n_estimators=20, random_state=0), "outlier", True),
    Case("xgb_classifier", lambda: XGBClassifier(n_estimators=15, max_depth=4, n_jobs=1), "classifier", True),
    Case("xgb_regressor", lambda: XGBRegressor(n_estimators=15, max_depth=4, n_jobs=1), "regressor", True),
    Case(
        "lgbm_classifier", lambda: LGBMClassifier(n_estimators=15, n_jobs=1, verbose=-1), "classifier", True
    ),
    Case("lgbm_regressor", lambda: LGBMRegressor(n_estimators=15, n_jobs=1, verbose=-1), "regressor", True),
]


def _label(data: Any, task: str) -> np.ndarray | None:
    return {"classifier": data.failure, "regressor": data.wear, "outlier": None}[task]


def _fit(model: Any, rows: Any, label: np.ndarray | None) -> Any:
    return model.fit(rows) if label is None else model.fit(rows, label)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_pipeline_parity_on_table_with_categoricals_and_missing_values(
    case, industrial, holdout, compile_edge, parity, full_preprocessing, sensitive_rows
):
    model = _fit(
        Pipeline(full_preprocessing(case.task) + [("model", case.make())]),
        industrial.frame,
        _label(industrial, case.task),
    )
    assert industrial.frame[["temperature", "vibration", "pressure"]].isna().any().all()

    artifact = compile_edge(model, industrial.frame)

    assert artifact.parity.passed is True
    assert artifact.parity.rows == len(industrial.frame)
    if case.task != "regressor":
        assert artifact.parity.label_agreement == 1.0
    schema = artifact.input_schema
    assert schema.by_name is True
    kinds = {column.name: column.kind for column in schema.columns}
    assert kinds == {**{name: "numeric" for name in NUMERIC}, "line": "categorical"}
    predictor = artifact.predictor()
    parity(model, predictor, industrial.frame, case.task)
    # Rows the compile never saw, with an unseen category (the encoder ignores it).
    unseen = holdout.frame.copy()
    unseen.loc[unseen.index[:5], "line"] = "west"
    if case.name.startswith(("lgbm", "hist_gradient")):
        # These compare float64 features natively, the graph float32 ones: a row whose feature lies
        # within float32 rounding of a threshold may differ (see test_precision_policy); no other may.
        sensitive = sensitive_rows(model[-1], model[:-1].transform(unseen))
        assert len(sensitive) <= len(unseen) // 20
        unseen = unseen.drop(index=unseen.index[sensitive])
    parity(model, predictor, unseen, case.task)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bare_estimator_fit_on_numpy_array(case, industrial, holdout, compile_edge, parity):
    source = industrial.numeric if case.accepts_nan else industrial.numeric_filled
    rows = source.to_numpy()
    model = _fit(case.make(), rows, _label(industrial, case.task))

    artifact = compile_edge(model, rows)

    assert artifact.input_schema.by_name is False
    assert artifact.input_schema.names == ("f0", "f1", "f2", "f3")
    predictor = artifact.predictor()
    parity(model, predictor, rows, case.task)
    unseen = (holdout.numeric if case.accepts_nan else holdout.numeric_filled).to_numpy()
    parity(model, predictor, unseen, case.task)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bare_estimator_fit_on_dataframe(case, industrial, compile_edge, parity):
    frame = industrial.numeric if case.accepts_nan else industrial.numeric_filled
    model = _fit(case.make(), frame, _label(industrial, case.task))

    artifact = compile_edge(model, frame)

    assert list(artifact.input_schema.names) == NUMERIC
    parity(model, artifact.predictor(), frame, case.task)


def test_xgboost_fit_on_dataframe_is_left_unchanged_by_compile(industrial, compile_edge):
    frame = industrial.numeric
    model = XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1).fit(frame, industrial.failure)
    before = model.predict_proba(frame)

    compile_edge(model, frame)

    assert model.get_booster().feature_names == NUMERIC
    np.testing.assert_array_equal(model.predict_proba(frame), before)


MULTICLASS = [
    Case("logistic_regression", lambda: LogisticRegression(max_iter=2000), "classifier", False),
    Case("decision_tree", lambda: DecisionTreeClassifier(max_depth=5, random_state=0), "classifier", True),
    Case(
        "random_forest",
        lambda: RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0),
        "classifier",
        True,
    ),
    Case(
        "gradient_boosting",
        lambda: GradientBoostingClassifier(n_estimators=10, random_state=0),
        "classifier",
        False,
    ),
    Case(
        "hist_gradient_boosting",
        lambda: HistGradientBoostingClassifier(max_iter=10, random_state=0),
        "classifier",
        True,
    ),
    Case("xgb", lambda: XGBClassifier(n_estimators=10, max_depth=4, n_jobs=1), "classifier", True),
    Case("lgbm", lambda: LGBMClassifier(n_estimators=10, n_jobs=1, verbose=-1), "classifier", True),
]


@pytest.mark.parametrize("case", MULTICLASS, ids=str)
def test_multiclass_pipeline_parity(case, industrial, holdout, compile_edge, parity, full_preprocessing):
    assert len(np.unique(industrial.grade)) == 3
    model = Pipeline(full_preprocessing("classifier") + [("model", case.make())]).fit(
        industrial.frame, industrial.grade
    )

    artifact = compile_edge(model, industrial.frame)

    assert artifact.output_schema.classes == (0, 1, 2)
    predictor = artifact.predictor()
    assert predictor.predict_proba(industrial.frame).shape == (len(industrial.frame), 3)
    parity(model, predictor, industrial.frame, "classifier")
    parity(model, predictor, holdout.frame, "classifier")


@pytest.mark.parametrize("case", MULTICLASS, ids=str)
def test_multiclass_bare_parity(case, industrial, compile_edge, parity):
    rows = (industrial.numeric if case.accepts_nan else industrial.numeric_filled).to_numpy()
    model = case.make().fit(rows, industrial.grade)

    artifact = compile_edge(model, rows)

    parity(model, artifact.predictor(), rows, "classifier")


@pytest.mark.parametrize(
    "make",
    [
        lambda: LogisticRegression(max_iter=2000),
        lambda: DecisionTreeClassifier(max_depth=5, random_state=0),
        lambda: RandomForestClassifier(n_estimators=15, max_depth=5, random_state=0),
    ],
    ids=["logistic_regression", "decision_tree", "random_forest"],
)
def test_string_class_labels_come_back_as_strings(make, industrial, compile_edge, parity, full_preprocessing):
    model = Pipeline(full_preprocessing("classifier") + [("model", make())]).fit(
        industrial.frame, industrial.status
    )

    artifact = compile_edge(model, industrial.frame)

    assert artifact.output_schema.classes == ("fail", "ok")
    labels = artifact.predictor().predict(industrial.frame)
    assert set(labels.tolist()) <= {"fail", "ok"}
    parity(model, artifact.predictor(), industrial.frame, "classifier")


# One preprocessing family at a time, in front of a float64 estimator (linear) and a
# float32 one (forest), so a failure names the transformer.
def _imputed(transformer: Any, strategy: str = "median") -> Pipeline:
    return Pipeline([("impute", SimpleImputer(strategy=strategy)), ("step", transformer)])


PREPROCESSING = {
    "standard_scaler": lambda: [
        ("columns", ColumnTransformer([("num", _imputed(StandardScaler()), NUMERIC)]))
    ],
    "minmax_scaler": lambda: [("columns", ColumnTransformer([("num", _imputed(MinMaxScaler()), NUMERIC)]))],
    "one_hot_ignore_unknown": lambda: [
        (
            "columns",
            ColumnTransformer(
                [("num", SimpleImputer(), NUMERIC), ("cat", OneHotEncoder(handle_unknown="ignore"), ["line"])]
            ),
        )
    ],
    "one_hot_error_drop_first": lambda: [
        (
            "columns",
            ColumnTransformer(
                [
                    ("num", SimpleImputer(), NUMERIC),
                    ("cat", OneHotEncoder(handle_unknown="error", drop="first"), ["line"]),
                ]
            ),
        )
    ],
    "imputer_mean": lambda: [
        ("columns", ColumnTransformer([("num", SimpleImputer(strategy="mean"), NUMERIC)]))
    ],
    "imputer_median": lambda: [
        ("columns", ColumnTransformer([("num", SimpleImputer(strategy="median"), NUMERIC)]))
    ],
    "imputer_most_frequent": lambda: [
        ("columns", ColumnTransformer([("num", SimpleImputer(strategy="most_frequent"), NUMERIC)]))
    ],
    "imputer_constant": lambda: [
        (
            "columns",
            ColumnTransformer([("num", SimpleImputer(strategy="constant", fill_value=-1.5), NUMERIC)]),
        )
    ],
    "polynomial_features": lambda: [
        (
            "columns",
            ColumnTransformer(
                [("num", _imputed(PolynomialFeatures(degree=2)), ["temperature", "vibration", "pressure"])]
            ),
        )
    ],
    "select_k_best": lambda: [
        (
            "columns",
            ColumnTransformer([("num", SimpleImputer(), NUMERIC), ("cat", OneHotEncoder(), ["line"])]),
        ),
        ("select", SelectKBest(f_classif, k=3)),
    ],
    "imputer_with_missing_indicator": lambda: [
        (
            "columns",
            ColumnTransformer(
                [("num", SimpleImputer(add_indicator=True), NUMERIC), ("cat", OneHotEncoder(), ["line"])]
            ),
        )
    ],
    "remainder_imputer": lambda: [
        ("columns", ColumnTransformer([("cat", OneHotEncoder(), ["line"])], remainder=SimpleImputer()))
    ],
}


@pytest.mark.parametrize(
    "make_estimator",
    [
        lambda: LogisticRegression(max_iter=2000),
        lambda: RandomForestClassifier(n_estimators=11, max_depth=6, random_state=0),
    ],
    ids=["logistic_regression", "random_forest"],
)
@pytest.mark.parametrize("family", sorted(PREPROCESSING))
def test_each_preprocessing_family(family, make_estimator, industrial, holdout, compile_edge, parity):
    model = Pipeline(PREPROCESSING[family]() + [("model", make_estimator())]).fit(
        industrial.frame, industrial.failure
    )

    artifact = compile_edge(model, industrial.frame)

    predictor = artifact.predictor()
    parity(model, predictor, industrial.frame, "classifier")
    parity(model, predictor, holdout.frame, "classifier")


def test_imputer_drops_a_column_that_was_always_missing(industrial, compile_edge, parity):
    frame = industrial.frame.assign(spare_sensor=np.nan)
    columns = NUMERIC + ["spare_sensor"]
    model = Pipeline(
        [
            (
                "columns",
                ColumnTransformer([("num", SimpleImputer(), columns), ("cat", OneHotEncoder(), ["line"])]),
            ),
            ("model", LogisticRegression(max_iter=2000)),
        ]
    ).fit(frame, industrial.failure)
    assert model[:-1].transform(frame.head(1)).shape[1] == len(NUMERIC) + 3  # scikit-learn dropped it

    artifact = compile_edge(model, frame)

    parity(model, artifact.predictor(), frame, "classifier")


@pytest.mark.parametrize(
    "make",
    [
        lambda: HistGradientBoostingClassifier(max_iter=10, random_state=0),
        lambda: DecisionTreeClassifier(max_depth=6, random_state=0),
        lambda: RandomForestClassifier(n_estimators=11, max_depth=6, random_state=0),
        lambda: XGBClassifier(n_estimators=10, max_depth=4, n_jobs=1),
    ],
    ids=["hist_gradient_boosting", "decision_tree", "random_forest", "xgb"],
)
def test_missing_values_flow_through_scaler_into_tree(make, industrial, holdout, compile_edge, parity):
    """StandardScaler keeps NaN; the tree routes it, in the graph as natively."""
    model = Pipeline(
        [
            (
                "columns",
                ColumnTransformer([("num", StandardScaler(), NUMERIC), ("cat", OneHotEncoder(), ["line"])]),
            ),
            ("model", make()),
        ]
    ).fit(industrial.frame, industrial.failure)

    artifact = compile_edge(model, industrial.frame)

    parity(model, artifact.predictor(), industrial.frame, "classifier")
    parity(model, artifact.predictor(), holdout.frame, "classifier")


@pytest.mark.parametrize(
    "make, task",
    [
        (lambda: DecisionTreeClassifier(max_depth=6, random_state=0), "classifier"),
        (lambda: DecisionTreeRegressor(max_depth=6, random_state=0), "regressor"),
        (lambda: RandomForestClassifier(n_estimators=11, max_depth=6, random_state=0), "classifier"),
        (lambda: ExtraTreesRegressor(n_estimators=11, max_depth=6, random_state=0), "regressor"),
        (lambda: IsolationForest(n_estimators=15, random_state=0), "outlier"),
    ],
    ids=[
        "decision_tree_classifier",
        "decision_tree_regressor",
        "random_forest",
        "extra_trees",
        "isolation_forest",
    ],
)
def test_scikit_learn_tree_fit_without_nan_routes_nan_at_serving_time_like_native(
    make, task, industrial, compile_edge, parity
):
    """A tree fit on complete rows still sends a NaN to the child scikit-learn picks
    (the larger one); the compiled graph must do the same on rows with gaps."""
    complete = industrial.numeric_filled.to_numpy()
    model = _fit(make(), complete, _label(industrial, task))

    artifact = compile_edge(model, complete)

    with_gaps = industrial.numeric.to_numpy()
    assert np.isnan(with_gaps).any()
    parity(model, artifact.predictor(), with_gaps, task)


def test_isolation_forest_scores_and_labels(industrial, compile_edge):
    rows = industrial.numeric_filled.to_numpy()
    model = IsolationForest(n_estimators=20, contamination=0.1, random_state=0).fit(rows)

    artifact = compile_edge(model, rows)

    predictor = artifact.predictor()
    assert artifact.output_schema.task == "outlier"
    labels = predictor.predict(rows)
    assert set(labels.tolist()) == {-1, 1}
    np.testing.assert_array_equal(labels, model.predict(rows))
    # The graph's score is decision_function (score_samples - offset_), whose sign gives the label.
    scores = predictor.decision_function(rows)
    np.testing.assert_allclose(scores, model.decision_function(rows), atol=1e-5)
    np.testing.assert_allclose(scores, model.score_samples(rows) - model.offset_, atol=1e-5)
    np.testing.assert_array_equal(np.where(scores < 0, -1, 1), labels)


def test_regressor_fit_on_2d_target_is_flattened(industrial, compile_edge):
    rows = industrial.numeric_filled.to_numpy()
    model = Ridge().fit(rows, industrial.wear)

    artifact = compile_edge(model, rows)

    prediction = artifact.predictor().predict(rows)
    assert prediction.shape == (len(rows),)
    np.testing.assert_allclose(prediction, model.predict(rows), rtol=1e-9, atol=1e-9)


def test_linear_models_compile_in_float64(industrial, compile_edge, full_preprocessing):
    """Linear models compute in float64 natively: the compiled graph matches to ~1e-12, not ~1e-7."""
    model = Pipeline(full_preprocessing("classifier") + [("model", LogisticRegression(max_iter=2000))])
    model.fit(industrial.frame, industrial.failure)

    artifact = compile_edge(model, industrial.frame)

    assert {c.dtype for c in artifact.input_schema.columns if c.kind == "numeric"} == {"float64"}
    assert artifact.parity.max_abs_diff < 1e-12
    np.testing.assert_allclose(
        artifact.predictor().predict_proba(industrial.frame),
        model.predict_proba(industrial.frame),
        rtol=0,
        atol=1e-12,
    )


def test_single_step_pipeline_of_xgboost_fit_on_dataframe(industrial, compile_edge, parity):
    frame = industrial.numeric
    model = Pipeline([("model", XGBRegressor(n_estimators=10, max_depth=3, n_jobs=1))]).fit(
        frame, industrial.wear
    )

    artifact = compile_edge(model, frame)

    parity(model, artifact.predictor(), frame, "regressor")


def test_sample_as_list_of_rows_for_numpy_model(industrial, compile_edge, parity):
    rows = industrial.numeric_filled.to_numpy()
    model = GradientBoostingRegressor(n_estimators=10, random_state=0).fit(rows, industrial.wear)

    artifact = compile_edge(model, rows.tolist())

    parity(model, artifact.predictor(), rows, "regressor")


def test_sample_with_extra_label_column_is_refused(industrial, compile_edge, full_preprocessing):
    from kepler.errors import InputSchemaError

    model = Pipeline(full_preprocessing("classifier") + [("model", LogisticRegression(max_iter=2000))])
    model.fit(industrial.frame, industrial.failure)
    with_label = industrial.frame.assign(failure=industrial.failure)

    with pytest.raises(InputSchemaError, match="failure"):
        compile_edge(model, with_label)


def test_sample_is_required(industrial):
    import kepler as kp
    from kepler.errors import InputSchemaError

    model = Ridge().fit(industrial.numeric_filled, industrial.wear)
    with pytest.raises(InputSchemaError, match="sample"):
        kp.compile(model, target="edge", benchmark=False)


def test_text_column_for_matrix_model_is_refused(industrial, compile_edge):
    from kepler.errors import InputSchemaError

    model = Ridge().fit(industrial.numeric_filled.to_numpy(), industrial.wear)
    table = pd.DataFrame(industrial.numeric_filled.to_numpy(), columns=["f0", "f1", "f2", "f3"])
    table["f3"] = "text"
    with pytest.raises(InputSchemaError, match="f3"):
        compile_edge(model, table)
