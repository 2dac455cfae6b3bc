"""The reference profile every compiled artifact stores (compilers/compile.py, compilers/artifact.py): within its
size budget, recorded with its sha256 in the manifest (tampering is caught), and made of the artifact's own outputs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import kepler as kp
from kepler.compilers.artifact import REFERENCE_NAME
from kepler.compilers.compile import calibrate
from kepler.errors import ArtifactError, CompileError
from kepler.monitoring.reference import CategoricalColumn, NumericColumn, ReferenceProfile
from kepler.runtimes import read_artifact
from kepler.runtimes.artifact import sha256_file

NUMERIC = ["temperature", "pressure", "vibration", "rpm"]


def _classifier(industrial: Any) -> Pipeline:
    columns = ColumnTransformer(
        [
            (
                "num",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                NUMERIC,
            ),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["line"]),
        ]
    )
    return Pipeline([("columns", columns), ("model", LogisticRegression(max_iter=500))]).fit(
        industrial.frame, industrial.status
    )


@pytest.fixture(scope="module")
def classifier(industrial: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A text-label classifier compiled with its labels (so with a calibration table), and its sample."""
    model = _classifier(industrial)
    folder = tmp_path_factory.mktemp("reference") / "artifact"
    artifact = kp.compile(
        model, sample=industrial.frame, output=folder, benchmark=False, labels=industrial.status
    )
    return {"artifact": artifact, "model": model, "sample": industrial.frame, "labels": industrial.status}


def test_the_artifact_stores_its_profile_and_the_manifest_records_its_sha256(classifier: dict) -> None:
    artifact = classifier["artifact"]
    path = artifact.path / REFERENCE_NAME
    recorded = artifact.manifest.reference
    assert recorded is not None and recorded.file == REFERENCE_NAME
    assert recorded.sha256 == sha256_file(path)
    assert recorded.size_bytes == path.stat().st_size <= 64 * 1024
    on_disk = json.loads((artifact.path / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk["reference"] == {
        "file": REFERENCE_NAME,
        "sha256": recorded.sha256,
        "size_bytes": recorded.size_bytes,
    }
    assert read_artifact(artifact.path).reference_path == path


def test_the_profile_is_of_the_sample_and_of_the_artifacts_own_outputs(classifier: dict) -> None:
    artifact, sample = classifier["artifact"], classifier["sample"]
    profile = ReferenceProfile.load(artifact.path / REFERENCE_NAME)
    assert profile.rows == len(sample)
    assert profile.names == [*NUMERIC, "line", "prediction", "probability[fail]", "probability[ok]"]
    temperature = profile.column("temperature")
    assert isinstance(temperature, NumericColumn)
    assert temperature.missing == int(sample["temperature"].isna().sum())
    assert temperature.min == sample["temperature"].min() and temperature.max == sample["temperature"].max()

    predictor = artifact.predictor()
    labels = predictor.predict(sample)
    prediction = profile.column("prediction")
    assert isinstance(prediction, CategoricalColumn)
    assert prediction.categories == dict(Counter(str(v) for v in labels))
    probabilities = predictor.predict_proba(sample).astype(np.float64)
    for index, label in enumerate(artifact.output_schema.classes):
        column = profile.column(f"probability[{label}]")
        assert isinstance(column, NumericColumn)
        assert column.min == probabilities[:, index].min() and column.max == probabilities[:, index].max()
        assert column.mean == pytest.approx(probabilities[:, index].mean(), rel=1e-9)


def test_labels_give_a_calibration_table_and_no_labels_none(classifier: dict, tmp_path: Path) -> None:
    from kepler.monitoring.calibration import CalibrationTable

    stored = ReferenceProfile.load(classifier["artifact"].path / REFERENCE_NAME).calibration
    assert stored is not None
    table = CalibrationTable.from_dict(stored)
    assert [str(c) for c in table.classes] == ["fail", "ok"]
    assert table.rows == len(classifier["sample"])

    plain = kp.compile(
        classifier["model"], sample=classifier["sample"], output=tmp_path / "plain", benchmark=False
    )
    assert ReferenceProfile.load(plain.path / REFERENCE_NAME).calibration is None
    with pytest.raises(CompileError, match=r"^3 labels for 240 sample rows; pass one label per row"):
        kp.compile(
            classifier["model"],
            sample=classifier["sample"],
            output=tmp_path / "bad",
            benchmark=False,
            labels=["ok", "ok", "fail"],
        )
    with pytest.raises(CompileError, match=r"^labels= cannot calibrate the model: label 'broken' is none of"):
        kp.compile(
            classifier["model"],
            sample=classifier["sample"],
            output=tmp_path / "bad",
            benchmark=False,
            labels=["broken", *classifier["labels"][1:]],
        )
    assert not (tmp_path / "bad").exists()


def test_calibrate_swaps_in_a_profile_with_the_held_out_table(
    classifier: dict, holdout: Any, tmp_path: Path
) -> None:
    artifact = classifier["artifact"].save(tmp_path / "copy")
    before = ReferenceProfile.load(artifact.path / REFERENCE_NAME)
    probabilities = artifact.predictor().predict_proba(holdout.frame)
    calibrated = calibrate(artifact, probabilities, holdout.status)
    assert calibrated.path == artifact.path
    after = ReferenceProfile.load(artifact.path / REFERENCE_NAME)
    assert after.calibration is not None and after.calibration["rows"] == len(holdout.frame)
    assert after.to_dict()["columns"] == before.to_dict()["columns"]  # only the calibration changed
    assert after.to_dict()["outputs"] == before.to_dict()["outputs"]
    assert read_artifact(artifact.path).manifest.reference == calibrated.manifest.reference
    assert calibrated.manifest.reference is not None
    assert calibrated.manifest.reference.sha256 == sha256_file(artifact.path / REFERENCE_NAME)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]  # no staging folder left beside it


def test_a_modified_profile_is_caught_on_load(classifier: dict, tmp_path: Path) -> None:
    artifact = classifier["artifact"].save(tmp_path / "copy")
    path = artifact.path / REFERENCE_NAME
    data = json.loads(path.read_text(encoding="utf-8"))
    data["rows"] += 1
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ArtifactError, match=r"reference\.json: sha256 .* the reference profile was modified"):
        read_artifact(artifact.path)
    assert read_artifact(artifact.path, verify=False).manifest.reference is not None


def test_a_wide_table_fits_64_kb(tmp_path: Path) -> None:
    # 99 input columns and the prediction: 100 profiled columns, whose budget is 64 KB.
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(3000, 99)), columns=[f"sensor {i}" for i in range(99)])
    frame["sensor 0"] = rng.choice([1.0, 2.0, 3.0], len(frame))
    y = frame.to_numpy() @ rng.normal(size=99)
    artifact = kp.compile(Ridge().fit(frame, y), sample=frame, output=tmp_path / "wide", benchmark=False)
    size = (artifact.path / REFERENCE_NAME).stat().st_size
    assert size <= 64 * 1024
    profile = ReferenceProfile.load(artifact.path / REFERENCE_NAME)
    assert len(profile.names) == 100 and profile.names[-1] == "prediction"
    prediction = profile.column("prediction")
    assert isinstance(prediction, NumericColumn)
    values = artifact.predictor().predict(frame)
    assert prediction.min == pytest.approx(values.min()) and prediction.max == pytest.approx(values.max())
    assert profile.calibration is None
