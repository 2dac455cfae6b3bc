"""Where references come from (kepler/monitoring/sources.py): a release's artifact and its reference profile, stored
or computed on demand for an artifact compiled before profiles, and a release as the reference side of drift.

The project holds two releases of one table: ``old-1.0``, the format 1 artifact of tests/runtimes/data/manifest_v1
(no profile), and ``new-1.0``, compiled here (with one). No search and no MLflow: a unified version records the
data version, the artifact and its build folder, which is all a release needs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import kepler as kp
from kepler.cli.main import app, exit_code_for
from kepler.errors import ArtifactError, MonitoringError
from kepler.monitoring import data_drift
from kepler.monitoring.reference import CategoricalColumn, NumericColumn, ReferenceProfile
from kepler.monitoring.sources import artifact_reference, release_artifact, release_reference

V1 = Path(__file__).resolve().parents[1] / "runtimes" / "data" / "manifest_v1" / "classifier"
INPUTS = ["temp [C]", "rpm", "line"]
OUTPUTS = ["prediction", "probability[fail]", "probability[ok]"]
runner = CliRunner()


def v1_table() -> pd.DataFrame:
    """The table the format 1 classifier was compiled from (make_v1.py in its folder's README, same seed)."""
    rng = np.random.default_rng(3)
    n = 120
    line = rng.choice(["north", "south", "east"], n)
    temp = np.round(rng.normal(70, 6, n), 2)
    rpm = rng.integers(900, 1600, n)
    status = np.where((temp > 72) | (line == "south"), "fail", "ok")
    frame = pd.DataFrame(
        {
            "id": [f"m{i}" for i in range(n)],
            "temp [C]": temp.astype(object),
            "rpm": rpm,
            "line": line,
            "status": status,
        }
    )
    frame.loc[5, "temp [C]"] = "n.a."
    frame.loc[9, "temp [C]"] = "—"
    frame.loc[7, "line"] = "NA"
    return frame


def _files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("table") / "lines.csv"
    v1_table().to_csv(path, index=False)
    return path


@dataclass
class Project:
    root: Path
    table: Path
    shifted: Path
    old: Path
    new: Path


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, table_csv: Path) -> Iterator[Project]:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder
    from sklearn.tree import DecisionTreeClassifier

    from kepler.versioning.project import init
    from kepler.versioning.releases import create_release
    from kepler.versioning.unified import create_unified_version

    root = tmp_path_factory.mktemp("sources") / "proj"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.setenv("DVC_NO_ANALYTICS", "1")
        init(root)
        patch.chdir(root)
        (root / "data").mkdir()
        shutil.copy(table_csv, root / "data" / "lines.csv")
        shifted = root / "shifted.csv"
        v1_table().assign(rpm=lambda f: f["rpm"] + 600).to_csv(shifted, index=False)

        old = root / "builds" / "old" / "artifact"
        shutil.copytree(V1, old, ignore=shutil.ignore_patterns("expected.json"))
        data = kp.data.load(root / "data" / "lines.csv", label="status")
        columns = ColumnTransformer(
            [
                ("num", SimpleImputer(strategy="median"), ["temp [C]", "rpm"]),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["line"]),
            ]
        )
        model = Pipeline(
            [("columns", columns), ("tree", DecisionTreeClassifier(max_depth=3, random_state=0))]
        )
        model.fit(data.frame, data.label)
        new = root / "builds" / "new" / "artifact"
        kp.compile(
            model,
            sample=data.frame,
            output=new,
            benchmark=False,
            input_typing=data.input_typing(),
            labels=data.label,
        )
        for name, version, build in (("old-1.0", "1.0.0", "old"), ("new-1.0", "1.1.0", "new")):
            create_unified_version(
                f"{build}-build",
                data_paths=["data/lines.csv"],
                artifact=root / "builds" / build / "artifact",
                metadata={"build_path": f"builds/{build}"},
            )
            create_release(name, version, unified_version=f"{build}-build", model_line="lines")
        yield Project(root=root, table=root / "data" / "lines.csv", shifted=shifted, old=old, new=new)


# --------------------------------------------------------------------------- artifacts (no project)


def test_a_format_1_artifact_has_no_stored_profile_and_one_computed_from_its_data(table_csv: Path) -> None:
    before = _files(V1)
    with pytest.raises(MonitoringError) as caught:
        artifact_reference(V1)
    assert "has no reference profile" in str(caught.value) and "\n" not in str(caught.value)

    profile = artifact_reference(V1, data=table_csv)
    assert profile.names == INPUTS + OUTPUTS and profile.rows == 120
    temperature = profile.column("temp [C]")
    assert isinstance(temperature, NumericColumn) and temperature.missing == 2  # "n.a." and "—"
    labels = kp.runtimes.load(V1).predict(pd.read_csv(table_csv)[INPUTS])
    prediction = profile.column("prediction")
    assert isinstance(prediction, CategoricalColumn)
    assert prediction.categories == dict(Counter(str(v) for v in labels))
    assert profile.calibration is None
    assert _files(V1) == before  # nothing written into the artifact


def test_a_profile_file_the_manifest_records_must_be_there(tmp_path: Path, industrial) -> None:
    from sklearn.linear_model import Ridge

    frame = industrial.numeric_filled
    artifact = kp.compile(
        Ridge().fit(frame, industrial.wear), sample=frame, output=tmp_path / "a", benchmark=False
    )
    stored = artifact_reference(artifact.path)
    assert stored.to_dict() == ReferenceProfile.load(artifact.path / "reference.json").to_dict()
    assert stored.names == [*frame.columns, "prediction"]
    (artifact.path / "reference.json").unlink()
    with pytest.raises(
        ArtifactError, match=r"reference\.json: the reference profile the manifest records is missing"
    ):
        artifact_reference(artifact.path, data=frame)


# --------------------------------------------------------------------------- releases


@pytest.mark.integration
def test_release_artifact_is_the_artifact_folder_of_its_build(project: Project) -> None:
    assert release_artifact("new-1.0").resolve() == project.new.resolve()
    assert release_artifact("old-1.0").resolve() == project.old.resolve()


@pytest.mark.integration
def test_a_release_reference_is_the_profile_its_artifact_stores(project: Project) -> None:
    profile = release_reference("new-1.0")
    assert profile.to_dict() == ReferenceProfile.load(project.new / "reference.json").to_dict()
    assert profile.names == INPUTS + OUTPUTS
    assert profile.calibration is not None and profile.calibration["rows"] == 120
    assert kp.monitoring.release_reference("new-1.0").to_dict() == profile.to_dict()


@pytest.mark.integration
def test_a_modified_profile_of_a_release_is_refused(project: Project) -> None:
    path = project.new / "reference.json"
    original = path.read_bytes()
    try:
        path.write_bytes(original.replace(b'"rows":120', b'"rows":121', 1))
        with pytest.raises(ArtifactError) as caught:
            release_reference("new-1.0")
        message = str(caught.value)
        assert (
            message.startswith("release 'new-1.0' refused: ") and "reference profile was modified" in message
        )
        assert "\n" not in message
    finally:
        path.write_bytes(original)
    assert release_reference("new-1.0").rows == 120


@pytest.mark.integration
def test_a_release_without_a_stored_profile_gets_one_from_its_data_version_cached_beside(
    project: Project,
) -> None:
    before = _files(project.old)
    cache = project.root / ".kepler" / "cache" / "references"
    profile = release_reference("old-1.0")
    assert profile.names == INPUTS + OUTPUTS and profile.rows == 120
    # The same table, the same artifact: what artifact_reference computes from the file.
    assert profile.to_dict() == artifact_reference(project.old, data=project.table).to_dict()
    assert _files(project.old) == before  # the published artifact is never written to
    cached = sorted(cache.glob("*.json"))
    assert len(cached) == 1
    status = subprocess.run(
        ["git", "-C", str(project.root), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ".kepler/cache" not in status  # git ignores the cache

    # A second call reads the cache: a marker written there is what comes back.
    marked = profile.to_dict() | {"rows": 7}
    ReferenceProfile.from_dict(marked).save(cached[0])
    assert release_reference("old-1.0").rows == 7
    cached[0].write_text("not json", encoding="utf-8")  # a broken cache file is computed again
    assert release_reference("old-1.0").to_dict() == profile.to_dict()


@pytest.mark.integration
@pytest.mark.parametrize("release", ["new-1.0", "old-1.0"])
def test_a_release_is_a_drift_reference(project: Project, release: str) -> None:
    same = data_drift(release, "data/lines.csv")
    assert not same.dataset_drift and same.drifted_columns == []
    assert same.tested_columns == INPUTS
    assert [name for name, _ in same.skipped] == OUTPUTS + ["id", "status"]
    shifted = data_drift(release, project.shifted)
    assert shifted.drifted_columns == ["rpm"]


@pytest.mark.integration
def test_kepler_monitor_drift_takes_a_release_as_the_reference(project: Project) -> None:
    result = runner.invoke(app, ["monitor", "drift", "new-1.0", str(project.shifted), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["columns"]
    assert list(dict.fromkeys(r["column"] for r in rows)) == INPUTS
    assert {r["column"] for r in rows if r["drifted"]} == {"rpm"}


@pytest.mark.integration
def test_a_release_as_the_current_side_is_refused_in_one_line(project: Project) -> None:
    with pytest.raises(MonitoringError) as caught:
        data_drift("data/lines.csv", "new-1.0")
    message = str(caught.value)
    assert message.startswith("current 'new-1.0' is a release, and a release can only be the reference")
    assert "\n" not in message
    result = runner.invoke(app, ["monitor", "drift", "data/lines.csv", "new-1.0"])
    assert isinstance(result.exception, MonitoringError) and str(result.exception) == message
    assert exit_code_for(result.exception) == 13


@pytest.mark.integration
def test_an_unknown_release_is_one_clear_line(project: Project) -> None:
    with pytest.raises(MonitoringError) as caught:
        release_reference("pm-9.9")
    assert (
        str(caught.value)
        == "no release 'pm-9.9' in this project; `kepler versioning list-releases` lists them"
    )
    with pytest.raises(MonitoringError) as caught:
        release_artifact("pm-9.9")
    assert str(caught.value).startswith("no release 'pm-9.9'")
    with pytest.raises(MonitoringError) as caught:
        data_drift("pm-9.9", "data/lines.csv")
    message = str(caught.value)
    assert message.startswith(
        "reference 'pm-9.9' is neither a file, a data version nor a release of this project"
    )
    assert "\n" not in message


def test_served_missing_categories_are_compared_as_the_model_reads_them(project: Project) -> None:
    # Traffic is recorded as received (a missing category is null); the release's profile was taken on the
    # training table, where the model's missing_as category stands in its place.
    from kepler.monitoring.traffic import _as_the_model_reads
    from kepler.runtimes.manifest import read_manifest

    column = next(c for c in read_manifest(project.new).input_schema.columns if c.name == "line")
    assert column.missing_as is not None
    profile = release_reference("new-1.0")
    line = profile.column("line")
    assert isinstance(line, CategoricalColumn) and column.missing_as in line.categories
    served = pd.DataFrame({"line": ["north", None, np.nan], "rpm": [1000.0, np.nan, 1200.0]})
    read = _as_the_model_reads(served, "new-1.0", None)
    assert read["line"].tolist() == ["north", column.missing_as, column.missing_as]
    assert read["rpm"].isna().tolist() == [False, True, False]  # numeric columns keep their missing values
    assert served["line"].isna().sum() == 2  # the recorded frame is left as it was
