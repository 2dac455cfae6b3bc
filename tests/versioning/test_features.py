"""Versioned feature pipelines: declared as data, fitted once, replayed identically; allow-list and labels."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

import kepler.versioning as kv
from kepler.errors import VersioningError
from kepler.versioning.features import FeaturePipeline, rebuild_pipeline

GUIDE_STEPS = [{"type": "StandardScaler"}, {"type": "PolynomialFeatures", "degree": 2}, {"type": "SelectKBest", "k": 10}]


@pytest.fixture
def frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(4)
    data = pd.DataFrame(rng.normal(size=(60, 5)), columns=[f"s{i}" for i in range(5)])
    labels = (data["s0"] + 0.5 * data["s1"] > 0).astype(int).to_numpy()
    return data, labels


@pytest.mark.filterwarnings("ignore:Features .* are constant:UserWarning", "ignore:invalid value encountered:RuntimeWarning",
                            "ignore:X does not have valid feature names:UserWarning")
def test_guide_pipeline_same_transform_every_time(project: Any, frame: tuple[pd.DataFrame, np.ndarray],
                                                   run_git: Any) -> None:
    data, labels = frame
    pipeline = kv.version_feature_pipeline(pipeline_name="sensor-preprocessing", steps=GUIDE_STEPS, version="v1.2.0")
    assert isinstance(pipeline, FeaturePipeline) and pipeline.pipeline_id == "sensor-preprocessing@v1.2.0"
    assert pipeline.fitted is None and pipeline.supervised
    first = kv.apply_versioned_pipeline(data, pipeline_name="sensor-preprocessing", version="v1.2.0", y=labels)
    assert isinstance(first, pd.DataFrame) and first.shape == (60, 10) and list(first.index) == list(data.index)
    # The guide's call, once fitted: no labels needed, the same output every time.
    again = kv.apply_versioned_pipeline(data, pipeline_name="sensor-preprocessing", version="v1.2.0")
    pd.testing.assert_frame_equal(first, again)
    as_array = kv.apply_versioned_pipeline(data.to_numpy(), "sensor-preprocessing", "v1.2.0")
    assert isinstance(as_array, np.ndarray)
    np.testing.assert_array_equal(as_array, first.to_numpy())
    # Fitting on other data later changes nothing: the fitted state belongs to the version.
    shifted = data + 100.0
    before = kv.apply_versioned_pipeline(shifted, "sensor-preprocessing", "v1.2.0", y=1 - labels)
    pd.testing.assert_frame_equal(before, kv.apply_versioned_pipeline(shifted, "sensor-preprocessing", "v1.2.0"))
    record = kv.list_pipelines()[0]
    fitted = record.fitted
    assert fitted is not None and len(fitted["sha256"]) == 64 and len(fitted["fit_data_md5"]) == 32
    assert fitted["feature_names_out"] == list(first.columns)
    tracked = run_git(project.root, "ls-files", ".kepler/records/pipelines").split()
    assert tracked == [".kepler/records/pipelines/sensor-preprocessing@v1.2.0.joblib",
                       ".kepler/records/pipelines/sensor-preprocessing@v1.2.0.json"]
    assert run_git(project.root, "status", "--porcelain") == ""
    rebuilt = rebuild_pipeline("sensor-preprocessing@v1.2.0")
    assert rebuilt["fitted"] and rebuilt["steps_completed"]
    np.testing.assert_array_equal(rebuilt["pipeline"].transform(data), first.to_numpy())


def test_tampered_fitted_state_is_refused(project: Any, frame: tuple[pd.DataFrame, np.ndarray]) -> None:
    data, _ = frame
    kv.version_feature_pipeline("scale", [{"type": "MinMaxScaler"}], "v1")
    kv.apply_versioned_pipeline(data, "scale", "v1")
    path = project.root / ".kepler" / "records" / "pipelines" / "scale@v1.joblib"
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(VersioningError, match="sha256"):
        kv.apply_versioned_pipeline(data, "scale", "v1")


def test_allow_list_and_bad_parameters(project: Any) -> None:
    with pytest.raises(VersioningError, match=r"step 1: unknown type 'os.system'"):
        kv.version_feature_pipeline("p", [{"type": "StandardScaler"}, {"type": "os.system"}], "v1")
    with pytest.raises(VersioningError, match="unknown type 'sklearn.preprocessing.StandardScaler'"):
        kv.version_feature_pipeline("p", [{"type": "sklearn.preprocessing.StandardScaler"}], "v1")
    with pytest.raises(VersioningError, match=r"step 0 \(PolynomialFeatures\): bad parameters"):
        kv.version_feature_pipeline("p", [{"type": "PolynomialFeatures", "degre": 2}], "v1")
    with pytest.raises(VersioningError, match=r"step 0 \(SelectKBest\): bad parameters"):
        kv.version_feature_pipeline("p", [{"type": "SelectKBest", "k": "many"}], "v1")
    with pytest.raises(VersioningError, match="score_func"):
        kv.version_feature_pipeline("p", [{"type": "SelectKBest", "score_func": "os.system"}], "v1")
    with pytest.raises(VersioningError, match="'type'"):
        kv.version_feature_pipeline("p", [{"kind": "PCA"}], "v1")
    with pytest.raises(VersioningError, match="non-empty list"):
        kv.version_feature_pipeline("p", [], "v1")
    with pytest.raises(VersioningError, match="not allowed"):
        kv.version_feature_pipeline("../p", [{"type": "PCA"}], "v1")
    with pytest.raises(VersioningError, match="'@'"):
        kv.version_feature_pipeline("p@x", [{"type": "PCA"}], "v1")
    assert kv.list_pipelines() == []


def test_supervised_step_needs_y_on_first_apply(project: Any, frame: tuple[pd.DataFrame, np.ndarray]) -> None:
    data, labels = frame
    kv.version_feature_pipeline("select", [{"type": "SelectKBest", "k": 2, "score_func": "f_classif"}], "v1")
    with pytest.raises(VersioningError, match=r"supervised score_func \(SelectKBest\).*pass the labels with y="):
        kv.apply_versioned_pipeline(data, "select", "v1")
    assert kv.list_pipelines()[0].fitted is None
    out = kv.apply_versioned_pipeline(data, "select", "v1", y=labels)
    assert list(out.columns) == ["s0", "s1"]


def test_selector_without_labels_keeps_the_highest_variance_features(
        project: Any, frame: tuple[pd.DataFrame, np.ndarray]) -> None:
    data, _ = frame
    kv.version_feature_pipeline("unsupervised", [{"type": "SelectKBest", "k": 2}], "v1")
    out = kv.apply_versioned_pipeline(data, "unsupervised", "v1")
    expected = list(data.var().sort_values(ascending=False).index[:2])
    assert sorted(out.columns) == sorted(expected)
    assert kv.list_pipelines()[0].fitted["labels"] == "none: selected by variance"
    again = kv.apply_versioned_pipeline(data, "unsupervised", "v1")
    pd.testing.assert_frame_equal(out, again)


def test_redeclaring(project: Any, run_git: Any) -> None:
    first = kv.version_feature_pipeline("p", [{"type": "StandardScaler"}], "v1")
    commits = run_git(project.root, "rev-list", "--count", "HEAD")
    same = kv.version_feature_pipeline("p", [{"type": "StandardScaler"}], "v1")
    assert same == first and run_git(project.root, "rev-list", "--count", "HEAD") == commits
    with pytest.raises(VersioningError, match="p@v1 exists with other steps"):
        kv.version_feature_pipeline("p", [{"type": "RobustScaler"}], "v1")
    kv.version_feature_pipeline("p", [{"type": "RobustScaler"}], "v2")
    assert [x.version for x in kv.list_pipelines()] == ["v1", "v2"]
    record = json.loads((project.root / ".kepler" / "records" / "pipelines" / "p@v2.json").read_text())
    assert record["steps"] == [{"type": "RobustScaler"}] and record["fitted"] is None


def test_unknown_pipeline_and_mismatched_data(project: Any, frame: tuple[pd.DataFrame, np.ndarray]) -> None:
    data, _ = frame
    with pytest.raises(VersioningError, match="unknown feature pipeline 'nope@v1'"):
        kv.apply_versioned_pipeline(data, "nope", "v1")
    kv.version_feature_pipeline("imp", [{"type": "SimpleImputer", "strategy": "median"}, {"type": "PCA", "n_components": 2}], "v1")
    kv.apply_versioned_pipeline(data, "imp", "v1")
    with pytest.raises(VersioningError, match="cannot transform"):
        kv.apply_versioned_pipeline(data[["s0", "s1"]], "imp", "v1")
