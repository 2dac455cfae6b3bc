"""Loading fitted models from files: joblib/pickle, XGBoost JSON/UBJ, LightGBM text, and bad files."""

from __future__ import annotations

import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier, XGBRegressor

import kepler as kp
from kepler.compilers import load_model
from kepler.errors import KeplerError, ModelLoadError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def rows(industrial) -> np.ndarray:
    return industrial.numeric.to_numpy()


@pytest.mark.parametrize("suffix", [".joblib", ".pkl", ".pickle"])
def test_pickled_pipeline_round_trips_and_compiles(suffix, industrial, full_preprocessing, tmp_path, parity):
    model = Pipeline(full_preprocessing("classifier") + [("model", LogisticRegression(max_iter=2000))])
    model.fit(industrial.frame, industrial.failure)
    path = tmp_path / f"model{suffix}"
    joblib.dump(model, path)

    loaded = load_model(path)

    assert type(loaded) is Pipeline
    np.testing.assert_array_equal(
        loaded.predict_proba(industrial.frame), model.predict_proba(industrial.frame)
    )
    artifact = kp.compile(
        loaded, target="edge", sample=industrial.frame, output=tmp_path / "artifact", benchmark=False
    )
    parity(model, artifact.predictor(), industrial.frame, "classifier")


@pytest.mark.parametrize("suffix", [".json", ".ubj"])
@pytest.mark.parametrize(
    "make, label, task",
    [
        (lambda: XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1), "failure", "classifier"),
        (lambda: XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1), "grade", "classifier"),
        (lambda: XGBRegressor(n_estimators=10, max_depth=3, n_jobs=1), "wear", "regressor"),
    ],
    ids=["binary", "multiclass", "regressor"],
)
def test_xgboost_files_load_as_the_right_estimator(
    suffix, make, label, task, industrial, rows, tmp_path, parity
):
    model = make().fit(rows, getattr(industrial, label))
    path = tmp_path / f"model{suffix}"
    model.save_model(path)

    loaded = load_model(path)

    assert type(loaded) is type(model)
    artifact = kp.compile(loaded, target="edge", sample=rows, output=tmp_path / "artifact", benchmark=False)
    parity(model, artifact.predictor(), rows, task)


@pytest.mark.parametrize(
    "make, label, task",
    [
        (lambda: LGBMClassifier(n_estimators=10, n_jobs=1, verbose=-1), "failure", "classifier"),
        (lambda: LGBMClassifier(n_estimators=10, n_jobs=1, verbose=-1), "grade", "classifier"),
        (lambda: LGBMRegressor(n_estimators=10, n_jobs=1, verbose=-1), "wear", "regressor"),
    ],
    ids=["binary", "multiclass", "regressor"],
)
def test_lightgbm_text_files_load_as_the_right_estimator(
    make, label, task, industrial, rows, tmp_path, parity
):
    model = make().fit(rows, getattr(industrial, label))
    path = tmp_path / "model.txt"
    model.booster_.save_model(str(path))

    loaded = load_model(path)

    assert type(loaded) is type(model)
    if task == "classifier":
        np.testing.assert_array_equal(loaded.classes_, model.classes_)
    artifact = kp.compile(loaded, target="edge", sample=rows, output=tmp_path / "artifact", benchmark=False)
    parity(model, artifact.predictor(), rows, task)


def test_missing_file(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model file"):
        load_model(tmp_path / "absent.joblib")


def test_unknown_suffix_lists_the_known_ones(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07")
    with pytest.raises(ModelLoadError) as caught:
        load_model(path)
    message = str(caught.value)
    assert ".onnx" in message and ".joblib" in message and ".json" in message and ".txt" in message


def test_truncated_joblib(industrial, tmp_path):
    path = tmp_path / "model.joblib"
    joblib.dump(LogisticRegression().fit(industrial.numeric_filled, industrial.failure), path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ModelLoadError, match="unreadable or truncated"):
        load_model(path)


def test_garbage_pickle(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(b"this is not a pickle at all")
    with pytest.raises(ModelLoadError, match=str(path.name)):
        load_model(path)


def test_pickle_of_something_that_is_not_a_model(tmp_path):
    path = tmp_path / "model.pkl"
    with open(path, "wb") as handle:
        pickle.dump({"weights": [1, 2, 3]}, handle)
    with pytest.raises(ModelLoadError, match="holds a dict, not a model"):
        load_model(path)


@pytest.mark.parametrize(
    "name, content",
    [
        ("model.json", b'{"learner": '),
        ("model.ubj", b"\x00\x01\x02garbage"),
        ("model.txt", b"this is not a lightgbm model\n"),
    ],
    ids=["xgboost_json", "xgboost_ubj", "lightgbm_txt"],
)
def test_corrupted_booster_files(name, content, tmp_path):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ModelLoadError) as caught:
        load_model(path)
    assert name in str(caught.value)


def test_load_errors_belong_to_keplers_family():
    assert issubclass(ModelLoadError, KeplerError)


def test_kp_load_model_is_the_same_function():
    assert kp.load_model is load_model


def test_directory_is_not_a_model_file(tmp_path: Path):
    folder = tmp_path / "model.joblib"
    folder.mkdir()
    with pytest.raises(ModelLoadError, match="no such model file"):
        load_model(folder)
