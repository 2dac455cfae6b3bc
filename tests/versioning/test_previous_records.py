"""The project store's records written before records carried ``schema_version`` read as version 1.

tests/previous_records/records/ holds a project store as Kepler wrote it then: a tracked build's data
version, unified version, probe set and lineage, a release promoted to production and deployed locally,
and a fitted feature pipeline. These tests only read, so no git, DVC or MLflow is started.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from kepler.errors import VersioningError
from kepler.versioning.build_tracking import BuildConfig, ProbeSet, read_probes
from kepler.versioning.data_versions import DataVersion, get_data_version, list_versions
from kepler.versioning.features import FeaturePipeline, FittedState, list_pipelines
from kepler.versioning.lineage import LineageNode, get_complete_lineage
from kepler.versioning.project import Project
from kepler.versioning.releases import HistoryEntry, Release, get_release, list_releases
from kepler.versioning.unified import UnifiedVersion, get_unified_version

pytestmark = pytest.mark.unit

RECORDS = Path(__file__).resolve().parents[1] / "previous_records" / "records"
BUILD = "build-20261130-023540-30833e"
SERVICE = "pm-1.0@local-20261130T023617584935Z"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A project whose store holds the records of the previous form (and nothing else)."""
    (tmp_path / "kepler.toml").write_text('[project]\nname = "previous"\n', encoding="utf-8")
    shutil.copytree(RECORDS, tmp_path / ".kepler" / "records")
    return Project(tmp_path)


def stored(kind: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDS / kind / f"{name}.json").read_text(encoding="utf-8"))
    assert "schema_version" not in data  # the fixture is of the previous form
    return data


def test_a_release_reads_with_typed_history(project: Project) -> None:
    release = get_release("pm-1.0", project=project)
    assert (
        isinstance(release, Release)
        and release.status == "production"
        and release.model_line == "default-edge"
    )
    assert all(isinstance(e, HistoryEntry) for e in release.history)
    create, promote, deploy = release.history
    assert (create.action, create.from_status, create.to) == ("create", None, "staging")
    assert (promote.from_status, promote.to) == ("staging", "production")
    assert deploy.action == "deploy" and deploy.platform == "local" and deploy.details is not None
    assert deploy.details["service_node"] == SERVICE
    assert (
        deploy["from"] == "production" and deploy["target"] == "http://127.0.0.1:3000"
    )  # the dict reads too
    assert release.to_dict() == {"schema_version": 1, **stored("releases", "pm-1.0")}
    assert [r.release_id for r in list_releases(status="production", project=project)] == ["pm-1.0"]


def test_a_unified_version_and_its_build_config_read(project: Project) -> None:
    unified = get_unified_version(BUILD, project=project)
    assert isinstance(unified, UnifiedVersion) and unified.model == {"name": "default-edge", "version": "1"}
    assert unified.data[0]["data_version"] == "sensors-aea14224" and unified.artifact_sha256
    assert unified.to_dict() == {"schema_version": 1, **stored("unified", BUILD)}
    config = BuildConfig.from_dict(unified.build_config or {})
    assert config.kind == "search" and config.family == "decision_tree" and config.label == "failure"
    assert config.class_labels == [0, 1] and config.params and isinstance(config.target, dict)
    assert config.to_dict() == unified.build_config


def test_a_data_version_reads(project: Project) -> None:
    (version,) = list_versions(project=project)
    assert isinstance(version, DataVersion) and version.file_path == "sensors.csv" and version.rows == 600
    assert get_data_version("sensors-aea14224", project=project) == version
    assert version.to_dict() == {"schema_version": 1, **stored("data", "sensors-aea14224")}


def test_the_probe_set_reads(project: Project) -> None:
    probes = read_probes(project, BUILD)
    assert isinstance(probes, ProbeSet) and probes.version == BUILD and probes.row_count == 5
    assert set(probes.outputs) and all(len(v) == 5 for v in probes.outputs.values())
    assert probes.to_dict() == {"schema_version": 1, **stored("probes", BUILD)}
    with pytest.raises(VersioningError, match="has no probe set"):
        read_probes(project, "sensors-aea14224")


def test_the_lineage_reads_from_data_to_service(project: Project) -> None:
    steps = get_complete_lineage(SERVICE, project=project)
    assert [s["kind"] for s in steps] == ["data", "model", "release", "service"]
    assert [s["node_id"] for s in steps] == ["sensors-aea14224", BUILD, "pm-1.0", SERVICE]
    assert steps[2]["outputs"] == [SERVICE] and steps[-1]["relation"] == "self"
    node = LineageNode.from_dict(stored("lineage", SERVICE))
    assert node.kind == "service" and node.inputs == ["pm-1.0"]
    assert node.to_dict() == {"schema_version": 1, **stored("lineage", SERVICE)}


def test_a_fitted_feature_pipeline_reads(project: Project) -> None:
    (pipeline,) = list_pipelines(project=project)
    assert isinstance(pipeline, FeaturePipeline) and isinstance(pipeline.fitted, FittedState)
    assert pipeline.fitted.label == "failure" and pipeline.fitted.recorded("label")
    assert pipeline.fitted["labels"] == "column 'failure'" and pipeline.fitted.layout == {"kind": "plain"}
    assert pipeline.to_dict() == {"schema_version": 1, **stored("pipelines", "prep@v1")}


def test_a_fitted_state_older_than_the_label_says_so() -> None:
    record = stored("pipelines", "prep@v1")
    for key in ("label", "fit_steps", "layout"):
        del record["fitted"][key]
    fitted = FeaturePipeline.from_dict(record).fitted
    assert fitted is not None and not fitted.recorded("label") and fitted.fit_steps is None


def test_a_record_of_a_newer_schema_is_refused(project: Project) -> None:
    path = project.root / ".kepler" / "records" / "releases" / "pm-1.0.json"
    path.write_text(json.dumps({**stored("releases", "pm-1.0"), "schema_version": 99}), encoding="utf-8")
    with pytest.raises(VersioningError, match="schema version 99, newer than the 1 this Kepler reads"):
        get_release("pm-1.0", project=project)
