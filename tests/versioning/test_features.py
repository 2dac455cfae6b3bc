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

GUIDE_STEPS = [
    {"type": "StandardScaler"},
    {"type": "PolynomialFeatures", "degree": 2},
    {"type": "SelectKBest", "k": 10},
]


@pytest.fixture
def frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(4)
    data = pd.DataFrame(rng.normal(size=(60, 5)), columns=[f"s{i}" for i in range(5)])
    labels = (data["s0"] + 0.5 * data["s1"] > 0).astype(int).to_numpy()
    return data, labels


@pytest.mark.filterwarnings(
    "ignore:Features .* are constant:UserWarning",
    "ignore:invalid value encountered:RuntimeWarning",
    "ignore:X does not have valid feature names:UserWarning",
)
def test_guide_pipeline_same_transform_every_time(
    project: Any, frame: tuple[pd.DataFrame, np.ndarray], run_git: Any
) -> None:
    data, labels = frame
    pipeline = kv.version_feature_pipeline(
        pipeline_name="sensor-preprocessing", steps=GUIDE_STEPS, version="v1.2.0"
    )
    assert isinstance(pipeline, FeaturePipeline) and pipeline.pipeline_id == "sensor-preprocessing@v1.2.0"
    assert pipeline.fitted is None and pipeline.supervised
    first = kv.apply_versioned_pipeline(
        data, pipeline_name="sensor-preprocessing", version="v1.2.0", y=labels
    )
    assert (
        isinstance(first, pd.DataFrame) and first.shape == (60, 10) and list(first.index) == list(data.index)
    )
    # The guide's call, once fitted: no labels needed, the same output every time.
    again = kv.apply_versioned_pipeline(data, pipeline_name="sensor-preprocessing", version="v1.2.0")
    pd.testing.assert_frame_equal(first, again)
    as_array = kv.apply_versioned_pipeline(data.to_numpy(), "sensor-preprocessing", "v1.2.0")
    assert isinstance(as_array, np.ndarray)
    np.testing.assert_array_equal(as_array, first.to_numpy())
    # Fitting on other data later changes nothing: the fitted state belongs to the version.
    shifted = data + 100.0
    before = kv.apply_versioned_pipeline(shifted, "sensor-preprocessing", "v1.2.0", y=1 - labels)
    pd.testing.assert_frame_equal(
        before, kv.apply_versioned_pipeline(shifted, "sensor-preprocessing", "v1.2.0")
    )
    record = kv.list_pipelines()[0]
    fitted = record.fitted
    assert fitted is not None and len(fitted["sha256"]) == 64 and len(fitted["fit_data_md5"]) == 32
    assert fitted["feature_names_out"] == list(first.columns)
    tracked = run_git(project.root, "ls-files", ".kepler/records/pipelines").split()
    assert tracked == [
        ".kepler/records/pipelines/sensor-preprocessing@v1.2.0.joblib",
        ".kepler/records/pipelines/sensor-preprocessing@v1.2.0.json",
    ]
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
    with pytest.raises(
        VersioningError, match=r"supervised score_func \(SelectKBest\).*pass the labels with y="
    ):
        kv.apply_versioned_pipeline(data, "select", "v1")
    assert kv.list_pipelines()[0].fitted is None
    out = kv.apply_versioned_pipeline(data, "select", "v1", y=labels)
    assert list(out.columns) == ["s0", "s1"]


def test_selector_without_labels_keeps_the_highest_variance_features(
    project: Any, frame: tuple[pd.DataFrame, np.ndarray]
) -> None:
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
    kv.version_feature_pipeline(
        "imp", [{"type": "SimpleImputer", "strategy": "median"}, {"type": "PCA", "n_components": 2}], "v1"
    )
    kv.apply_versioned_pipeline(data, "imp", "v1")
    with pytest.raises(VersioningError, match="cannot transform"):
        kv.apply_versioned_pipeline(data[["s0", "s1"]], "imp", "v1")


# --------------------------------------------------------------------------- mixed tables


@pytest.fixture
def mixed() -> pd.DataFrame:
    """Sensor readings with a text column, a date column and a 0/1 label."""
    rng = np.random.default_rng(7)
    rows = 80
    line = rng.choice(["H", "north", "south"], rows)
    temperature = rng.normal(70, 5, rows)
    return pd.DataFrame(
        {
            "temperature": temperature,
            "pressure": rng.normal(1, 0.1, rows),
            "rpm": rng.normal(1500, 100, rows).round(),
            "line": line,
            "seen": pd.date_range("2026-01-01", periods=rows, freq="h"),
            "failure": ((temperature > 72) | (line == "H")).astype(int),
        }
    )


def _set_label(project: Any, label: str) -> None:
    with open(project.root / "kepler.toml", "a", encoding="utf-8") as handle:
        handle.write(f'\n[build]\nlabel = "{label}"\n')


@pytest.mark.filterwarnings(
    "ignore:Features .* are constant:UserWarning", "ignore:invalid value encountered:RuntimeWarning"
)
def test_mixed_table_numeric_steps_on_numbers_text_passes_project_label_kept_out(
    project: Any, mixed: pd.DataFrame
) -> None:
    _set_label(project, "failure")
    kv.version_feature_pipeline("prep", GUIDE_STEPS, "v1")
    out = kv.apply_versioned_pipeline(mixed, "prep", "v1")
    # 3 numeric columns -> 10 polynomial terms (bias included), all kept by k=10; text and dates pass through.
    assert list(out.columns[-2:]) == ["line", "seen"] and out.shape == (80, 12)
    assert "failure" not in out.columns and list(out.index) == list(mixed.index)
    pd.testing.assert_series_equal(out["line"], mixed["line"])
    pd.testing.assert_series_equal(out["seen"], mixed["seen"])
    scaled = (mixed["temperature"] - mixed["temperature"].mean()) / mixed["temperature"].std(ddof=0)
    np.testing.assert_allclose(out["temperature"], scaled)
    fitted = kv.list_pipelines()[0].fitted
    assert fitted["label"] == "failure" and fitted["labels"] == "column 'failure'"
    assert fitted["layout"] == {
        "kind": "mixed",
        "numeric": ["temperature", "pressure", "rpm"],
        "encoded": [],
        "passthrough": ["line", "seen"],
    }
    # Later applies: with or without the label column, the same output.
    pd.testing.assert_frame_equal(
        kv.apply_versioned_pipeline(mixed.drop(columns="failure"), "prep", "v1"), out
    )
    pd.testing.assert_frame_equal(kv.apply_versioned_pipeline(mixed, "prep", "v1"), out)
    rebuilt = rebuild_pipeline("prep@v1")
    assert rebuilt["fitted"]
    pd.testing.assert_frame_equal(rebuilt["pipeline"].transform(mixed.drop(columns="failure")), out)


def test_label_from_the_call_selects_with_it(project: Any, mixed: pd.DataFrame) -> None:
    kv.version_feature_pipeline("pick", [{"type": "SelectKBest", "k": 1}], "v1")
    out = kv.apply_versioned_pipeline(mixed, "pick", "v1", label="failure")
    # f_classif against the label picks temperature (it drives failures); by variance rpm would win.
    assert list(out.columns) == ["temperature", "line", "seen"]
    fitted = kv.list_pipelines()[0].fitted
    assert fitted["label"] == "failure" and fitted["fit_steps"] == [{"type": "SelectKBest", "k": 1}]
    # The recorded label is kept out of later applies without naming it again.
    pd.testing.assert_frame_equal(kv.apply_versioned_pipeline(mixed, "pick", "v1"), out)


def test_without_a_label_a_numeric_label_column_is_a_feature(project: Any, mixed: pd.DataFrame) -> None:
    kv.version_feature_pipeline("scale", [{"type": "StandardScaler"}], "v1")
    out = kv.apply_versioned_pipeline(mixed, "scale", "v1")
    assert "failure" in out.columns and kv.list_pipelines()[0].fitted["label"] is None


def test_encoder_step_encodes_the_text_and_later_steps_see_the_codes(
    project: Any, mixed: pd.DataFrame
) -> None:
    _set_label(project, "failure")
    steps = [{"type": "StandardScaler"}, {"type": "OneHotEncoder"}, {"type": "SelectKBest", "k": 2}]
    kv.version_feature_pipeline("enc", steps, "v1")
    out = kv.apply_versioned_pipeline(mixed, "enc", "v1")
    # The selector ranks the one-hot codes with the numbers: line == "H" and temperature drive failures.
    assert sorted(out.columns) == ["line_H", "seen", "temperature"]
    assert out["line_H"].tolist() == (mixed["line"] == "H").astype(float).tolist()
    record = kv.list_pipelines()[0]
    assert record.steps[1] == {"type": "OneHotEncoder"}  # as declared
    assert record.fitted["fit_steps"][1] == {"type": "OneHotEncoder", "sparse_output": False}
    assert record.fitted["layout"]["encoded"] == ["line"] and record.fitted["layout"]["passthrough"] == [
        "seen"
    ]
    assert rebuild_pipeline("enc@v1")["fitted"]
    unseen = mixed.head(3).assign(line=["H", "west", "north"])
    with pytest.raises(VersioningError, match="cannot transform"):
        kv.apply_versioned_pipeline(unseen, "enc", "v1")


def test_regression_label_scores_with_f_regression(project: Any, mixed: pd.DataFrame) -> None:
    data = mixed.assign(wear=mixed["pressure"] * 3 + np.random.default_rng(1).normal(0, 0.01, len(mixed)))
    kv.version_feature_pipeline("reg", [{"type": "SelectKBest", "k": 1}], "v1")
    out = kv.apply_versioned_pipeline(data.drop(columns="failure"), "reg", "v1", label="wear")
    assert list(out.columns) == ["pressure", "line", "seen"]
    assert kv.list_pipelines()[0].fitted["fit_steps"] == [
        {"type": "SelectKBest", "k": 1, "score_func": "f_regression"}
    ]


def test_changed_column_kind_is_refused(project: Any, mixed: pd.DataFrame) -> None:
    kv.version_feature_pipeline("scale", [{"type": "MinMaxScaler"}], "v1")
    kv.apply_versioned_pipeline(mixed, "scale", "v1", label="failure")
    with pytest.raises(VersioningError, match="cannot transform"):
        kv.apply_versioned_pipeline(mixed.drop(columns="line"), "scale", "v1")
