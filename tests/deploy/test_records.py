"""Deployment records written before records carried ``schema_version`` still read: the deploy entry in a
release's history (what rollback detection reads) and the record of a local background server.

The fixtures in tests/previous_records/ were written by Kepler then; these tests only read, so no server,
git or DVC is started.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from kepler.deployment.local import ServerRecord, stop
from kepler.deployment.records import current_deployment, is_rollback
from kepler.errors import KeplerError
from kepler.versioning.project import Project
from kepler.versioning.releases import Release

pytestmark = pytest.mark.unit

PREVIOUS = Path(__file__).resolve().parents[1] / "previous_records"
SERVICE = "pm-1.0@local-20261130T023617584935Z"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    (tmp_path / "kepler.toml").write_text('[project]\nname = "previous"\n', encoding="utf-8")
    shutil.copytree(PREVIOUS / "records", tmp_path / ".kepler" / "records")
    return Project(tmp_path)


def test_the_last_deployment_reads_from_a_previous_release_record(project: Project) -> None:
    found = current_deployment("local", "default-edge", project=project)
    assert found is not None
    release, entry = found
    assert (
        release.release_id == "pm-1.0"
        and entry.action == "deploy"
        and entry.target == "http://127.0.0.1:3000"
    )
    assert entry.details is not None and entry.details["service_node"] == SERVICE
    assert current_deployment("cloud-run", "default-edge", project=project) is None


def test_deploying_an_earlier_version_is_a_rollback(project: Project) -> None:
    earlier = Release(release_id="pm-0.9", version="0.9.0", model_line="default-edge")
    later = Release(release_id="pm-1.1", version="1.1.0", model_line="default-edge")
    assert is_rollback(earlier, "local", project=project) == (True, "pm-1.0")
    assert is_rollback(later, "local", project=project) == (False, "pm-1.0")


def test_a_previous_server_record_reads() -> None:
    data = json.loads((PREVIOUS / "servers" / "3000.json").read_text(encoding="utf-8"))
    assert "schema_version" not in data
    record = ServerRecord.from_dict(data)
    assert record.pid == 4242 and record.port == 3000 and record.bento_tag == "kepler-pm:abc"
    assert record.to_dict() == {"schema_version": 1, **data}


def test_stop_reads_a_previous_server_record(tmp_path: Path) -> None:
    """The record names a process that is not that server (this test's own), so stop kills nothing; having
    read the record, it removes it (an unreadable record would be left where it is)."""
    folder = tmp_path / "kepler-servers"
    folder.mkdir()
    data = json.loads((PREVIOUS / "servers" / "3000.json").read_text(encoding="utf-8"))
    record = folder / "3000.json"
    record.write_text(json.dumps({**data, "pid": os.getpid()}), encoding="utf-8")
    assert stop(3000, bentoml_home=tmp_path) is False
    assert not record.exists()


def test_a_server_record_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "kepler-servers"
    folder.mkdir()
    (folder / "3000.json").write_text(json.dumps({"schema_version": 5, "pid": os.getpid()}), encoding="utf-8")
    with pytest.raises(KeplerError, match="upgrade Kepler"):
        stop(3000, bentoml_home=tmp_path)
