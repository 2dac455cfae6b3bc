"""Data versions on a real git + DVC project: records, tags, DVC state, exact bytes back, duplicates,
bad names and paths, concurrent writers, and the CLI."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

import kepler.versioning as kv
from kepler.errors import VersioningError
from kepler.versioning.data_versions import DataVersion, version_data


def test_version_data_records_commits_tags_and_pushes(
    project: Any, sensors: Path, run_git: Any, run_dvc: Any
) -> None:
    version = kv.version_data(
        "data/sensors.csv",
        version_name="sensors-v1.0",
        metadata={"source": "splunk", "rows": 2890, "features": 15},
    )
    assert isinstance(version, DataVersion)
    assert version.version_id == "sensors-v1.0" and version.file_path == "data/sensors.csv"
    assert (version.rows, version.columns) == (20, ["temperature", "pressure", "line", "failure"])
    assert version.size == sensors.stat().st_size and len(version.schema_hash) == 64
    assert version.duplicate_of is None and version.tag == "data/sensors-v1.0"
    dvc_file = (project.root / "data" / "sensors.csv.dvc").read_text()
    assert f"md5: {version.md5}" in dvc_file
    # The tag points at the commit holding the .dvc file; the record is committed after it.
    assert run_git(project.root, "rev-parse", "data/sensors-v1.0^{commit}") == version.git_commit
    assert run_git(project.root, "show", f"{version.git_commit}:data/sensors.csv.dvc") == dvc_file.strip()
    log = run_git(project.root, "log", "--format=%s")
    assert "kepler: data version sensors-v1.0" in log and "kepler: data data/sensors.csv" in log
    assert (
        run_git(project.root, "ls-files", ".kepler/records/data") == ".kepler/records/data/sensors-v1.0.json"
    )
    assert run_git(project.root, "status", "--porcelain") == ""
    status = run_dvc(project.root, "status")
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout + status.stderr
    cloud = run_dvc(project.root, "status", "--cloud")
    assert cloud.returncode == 0 and "in sync" in cloud.stdout, cloud.stdout + cloud.stderr
    remote = Path(project.dvc_remote_url) / "files" / "md5" / version.md5[:2] / version.md5[2:]
    assert remote.read_bytes() == sensors.read_bytes()


def test_checkout_of_the_tag_gives_the_versioned_bytes(
    project: Any, sensors: Path, make_table: Any, run_git: Any, run_dvc: Any
) -> None:
    original = sensors.read_bytes()
    kv.version_data("data/sensors.csv", "sensors-v1.0")
    make_table(sensors, rows=30, seed=1)
    second = kv.version_data("data/sensors.csv", "sensors-v2.0")
    assert second.rows == 30
    run_git(project.root, "checkout", "-q", "data/sensors-v1.0")
    done = run_dvc(project.root, "checkout")
    assert done.returncode == 0, done.stderr
    assert sensors.read_bytes() == original
    run_git(project.root, "checkout", "-q", "data/sensors-v2.0")
    assert run_dvc(project.root, "checkout").returncode == 0
    assert sensors.read_bytes() != original and len(sensors.read_text().splitlines()) == 31


def test_get_data_after_the_file_changed_or_was_deleted(project: Any, sensors: Path, make_table: Any) -> None:
    original = sensors.read_bytes()
    version = kv.version_data("data/sensors.csv", "sensors-v1.0")
    make_table(sensors, rows=5, seed=3)
    assert kv.get_data("sensors-v1.0") == original
    sensors.unlink()
    assert kv.get_data(version) == original


def test_get_data_fetches_from_the_remote_when_the_cache_lost_it(project: Any, sensors: Path) -> None:
    original = sensors.read_bytes()
    version = kv.version_data("data/sensors.csv")
    cached = project.root / ".dvc" / "cache" / "files" / "md5" / version.md5[:2] / version.md5[2:]
    assert cached.is_file()
    cached.chmod(0o644)
    cached.write_bytes(b"damaged")
    sensors.unlink()
    assert kv.get_data(version.version_id) == original
    cached.unlink()
    assert kv.get_data(version.version_id) == original


def test_identical_content_is_detected(project: Any, sensors: Path, run_git: Any) -> None:
    first = kv.version_data("data/sensors.csv", "sensors-v1.0")
    tags = run_git(project.root, "tag")
    commits = run_git(project.root, "rev-list", "--count", "HEAD")
    again = kv.version_data("data/sensors.csv")  # the guide's flow versions the same file twice
    assert again.version_id == "sensors-v1.0" and again.duplicate_of == "sensors-v1.0"
    same_name = kv.version_data("data/sensors.csv", "sensors-v1.0")
    assert same_name.duplicate_of == "sensors-v1.0" and same_name.git_commit == first.git_commit
    assert (
        run_git(project.root, "tag") == tags
        and run_git(project.root, "rev-list", "--count", "HEAD") == commits
    )
    assert [v.version_id for v in kv.list_versions()] == ["sensors-v1.0"]
    # A new name for the same bytes is an alias: a record and a tag, no new DVC object.
    objects = sorted((project.root / ".dvc" / "cache").rglob("*"))
    alias = kv.version_data("data/sensors.csv", "sensors-golden")
    assert (
        alias.duplicate_of == "sensors-v1.0" and alias.md5 == first.md5 and alias.tag == "data/sensors-golden"
    )
    assert sorted((project.root / ".dvc" / "cache").rglob("*")) == objects
    assert {v.version_id for v in kv.list_versions()} == {"sensors-v1.0", "sensors-golden"}


def test_default_name_and_a_name_taken_by_other_content(project: Any, sensors: Path, make_table: Any) -> None:
    auto = kv.version_data(sensors)  # an absolute path inside the project works too
    assert auto.version_id == f"sensors-{auto.md5[:8]}"
    make_table(sensors, rows=7, seed=9)
    with pytest.raises(VersioningError, match=f"version '{auto.version_id}' exists"):
        kv.version_data("data/sensors.csv", auto.version_id)
    assert kv.get_data_version(auto.version_id).md5 == auto.md5


def test_bad_names_paths_and_versions(project: Any, sensors: Path, tmp_path: Path) -> None:
    with pytest.raises(VersioningError, match="not allowed"):
        kv.version_data("data/sensors.csv", "../x")
    with pytest.raises(VersioningError, match="not allowed"):
        kv.version_data("data/sensors.csv", "a/b")
    with pytest.raises(VersioningError, match="git tag"):
        kv.version_data("data/sensors.csv", "sensors.lock")
    outside = tmp_path / "outside.csv"
    outside.write_text("a\n1\n")
    with pytest.raises(VersioningError, match="a data path outside the project"):
        kv.version_data(outside)
    with pytest.raises(VersioningError, match="a data path outside the project"):
        kv.version_data("../outside.csv")
    with pytest.raises(VersioningError, match="no such file"):
        kv.version_data("data/missing.csv")
    with pytest.raises(VersioningError, match="folder"):
        kv.version_data("data")
    with pytest.raises(
        VersioningError, match=r"unknown data version 'nope'; list them with kp.versioning.list_versions\(\)"
    ):
        kv.get_data("nope")
    with pytest.raises(VersioningError, match="unknown data version"):
        kv.get_data_version("nope")
    assert kv.list_versions() == []
    assert not (project.root / ".kepler" / "records" / "data").exists() or not any(
        (project.root / ".kepler" / "records" / "data").iterdir()
    )


def test_list_versions_fields(project: Any, sensors: Path) -> None:
    (project.root / "data" / "notes.bin").write_bytes(b"\x00\x01binary")
    kv.version_data("data/sensors.csv", version_name="sensors-v1.0", metadata={"source": "splunk"})
    kv.version_data("data/notes.bin")
    versions = {v.version_id: v for v in kv.list_versions()}
    table = versions["sensors-v1.0"]
    assert (table.file_path, table.rows, table.metadata) == ("data/sensors.csv", 20, {"source": "splunk"})
    assert len(table.md5) == 32 and table.created_at.endswith("+00:00")
    other = next(v for k, v in versions.items() if k != "sensors-v1.0")
    assert other.file_path == "data/notes.bin" and other.rows is None and other.columns is None
    assert other.schema_hash is None and other.size == 8
    for v in versions.values():  # the guide's loop
        assert f"{v.version_id}: {v.file_path} ({v.rows} rows)"
        assert json.loads(json.dumps(v.to_dict()))["md5"] == v.md5
    with pytest.raises(VersioningError, match="JSON"):
        kv.version_data("data/sensors.csv", "x", metadata={"f": object()})


def test_explicit_project_from_elsewhere(
    project: Any, sensors: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    version = kv.version_data(sensors, "sensors-v1.0", project=project)
    assert [v.version_id for v in kv.list_versions(project=project)] == [version.version_id]
    assert kv.get_data("sensors-v1.0", project=project) == sensors.read_bytes()


def test_eight_processes_version_data_at_once(
    project: Any, make_table: Any, run_git: Any, run_dvc: Any
) -> None:
    for i in range(8):
        make_table(project.root / "data" / f"part-{i}.csv", rows=10 + i, seed=i)
    context = multiprocessing.get_context("spawn")
    with context.Pool(8) as pool:  # children start in the working directory: the project
        done = pool.starmap(
            version_data, [(f"data/part-{i}.csv", f"part-{i}") for i in range(8)], chunksize=1
        )
    assert sorted(v.version_id for v in done) == [f"part-{i}" for i in range(8)]
    folder = project.root / ".kepler" / "records" / "data"
    records = sorted(folder.iterdir())
    assert [p.name for p in records] == [f"part-{i}.json" for i in range(8)]
    for path in records:
        assert json.loads(path.read_text())["file_path"].startswith("data/part-")
    subjects = run_git(project.root, "log", "--format=%s")
    assert all(f"kepler: data version part-{i}" in subjects for i in range(8))
    assert sorted(run_git(project.root, "tag").split()) == [f"data/part-{i}" for i in range(8)]
    assert run_git(project.root, "status", "--porcelain") == ""
    status = run_dvc(project.root, "status")
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout + status.stderr
    assert len(kv.list_versions()) == 8


def test_cli_version_data_and_list_data(project: Any, sensors: Path, run_kepler: Any) -> None:
    done = run_kepler(
        "versioning",
        "version-data",
        "data/sensors.csv",
        "--name",
        "sensors-v1.0",
        "--metadata",
        '{"source": "splunk"}',
        "--json",
        cwd=project.root,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["version_id"] == "sensors-v1.0" and record["metadata"] == {"source": "splunk"}
    again = run_kepler("versioning", "version-data", "data/sensors.csv", cwd=project.root)
    assert again.returncode == 0 and "unchanged" in again.stdout and "sensors-v1.0" in again.stdout
    listed = run_kepler("versioning", "list-data", "--json", cwd=project.root)
    assert [v["version_id"] for v in json.loads(listed.stdout)] == ["sensors-v1.0"]
    table = run_kepler("versioning", "list-data", cwd=project.root)
    assert table.returncode == 0 and "sensors-v1.0" in table.stdout and "data/sensors.csv" in table.stdout
    bad = run_kepler("versioning", "version-data", "data/sensors.csv", "--name", "../x", cwd=project.root)
    assert (
        bad.returncode == 11 and bad.stderr.startswith("error:") and len(bad.stderr.strip().splitlines()) == 1
    )
    bad_json = run_kepler(
        "versioning", "version-data", "data/sensors.csv", "--metadata", "{nope", cwd=project.root
    )
    assert bad_json.returncode == 2 and "--metadata" in bad_json.stderr


def test_user_staged_changes_are_left_alone(project: Any, sensors: Path, run_git: Any) -> None:
    (project.root / "notes.txt").write_text("work in progress\n")
    run_git(project.root, "add", "notes.txt")
    kv.version_data("data/sensors.csv", "sensors-v1.0")
    kv.version_data("data/sensors.csv")  # a no-op commit attempt with something else staged
    assert run_git(project.root, "status", "--porcelain") == "A  notes.txt"
    assert "notes.txt" not in run_git(project.root, "log", "--name-only", "--format=")
