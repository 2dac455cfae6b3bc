"""A classifier fit on label codes compiles to a graph that answers the original labels (parity on labels)."""

from __future__ import annotations

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

import kepler as kp
from kepler.errors import CompileError

ESTIMATORS = {
    "logistic": lambda: LogisticRegression(max_iter=500),
    "forest": lambda: RandomForestClassifier(n_estimators=5, random_state=0),
    "xgboost": lambda: xgboost.XGBClassifier(n_estimators=5, max_depth=3),
    "lightgbm": lambda: lightgbm.LGBMClassifier(n_estimators=5, verbose=-1),
}


@pytest.fixture(scope="module")
def table() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"reading [V]": rng.normal(size=300), "line": rng.choice(["x", "y"], 300)})
    frame.loc[rng.random(300) < 0.05, "reading [V]"] = np.nan
    grade = np.where(frame["reading [V]"] > 0.5, 2, np.where(frame["reading [V]"] < -0.5, 0, 1))
    return frame, grade


def _fit(name: str, frame: pd.DataFrame, codes: np.ndarray) -> Pipeline:
    columns = ColumnTransformer([("n", SimpleImputer(), ["reading [V]"]), ("c", OneHotEncoder(), ["line"])])
    return Pipeline([("columns", columns), ("model", ESTIMATORS[name]())]).fit(frame, codes)


@pytest.mark.parametrize("labels", [["high", "low", "mid"], [10, 20, 30]], ids=["text", "numbers"])
@pytest.mark.parametrize("name", ESTIMATORS)
def test_the_graph_answers_the_original_labels(name: str, labels: list, table, artifact_dir) -> None:
    frame, codes = table
    model = _fit(name, frame, codes)
    artifact = kp.compile(model, "edge", frame, class_labels=labels, output=artifact_dir, benchmark=False)
    predictor = artifact.predictor()
    np.testing.assert_array_equal(predictor.predict(frame), np.asarray(labels)[model.predict(frame)])
    np.testing.assert_allclose(predictor.predict_proba(frame), model.predict_proba(frame), atol=1e-6)
    assert list(artifact.manifest.output_schema.classes) == labels and predictor.classes_.tolist() == labels
    assert artifact.parity.label_agreement == 1.0


def test_labels_that_do_not_match_the_codes_are_refused(table) -> None:
    frame, codes = table
    model = _fit("logistic", frame, codes)
    with pytest.raises(CompileError, match="class_labels has 2 labels but the model's classes are"):
        kp.compile(model, "edge", frame, class_labels=["a", "b"], benchmark=False)
    regressor = Pipeline([("impute", SimpleImputer()), ("model", LinearRegression())]).fit(
        frame[["reading [V]"]], codes
    )
    with pytest.raises(CompileError, match="class_labels is for classifiers"):
        kp.compile(regressor, "edge", frame[["reading [V]"]], class_labels=["a", "b", "c"], benchmark=False)
