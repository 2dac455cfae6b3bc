"""kepler init and finding the project: idempotent init, a clear error outside a project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kepler.errors import ProjectNotFoundError
from kepler.versioning import project as project_mod


def test_init_twice_is_idempotent(tmp_path: Path, run_git: Any) -> None:
    root = tmp_path / "p"
    first = project_mod.init(root)
    head = run_git(root, "rev-parse", "HEAD")
    second = project_mod.init(root)
    assert second.root == first.root
    assert run_git(root, "rev-parse", "HEAD") == head
    assert run_git(root, "status", "--porcelain") == ""
    assert (
        (root / "kepler.toml").is_file()
        and (root / ".dvc").is_dir()
        and (root / ".kepler" / "records").is_dir()
    )


def test_outside_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kepler.versioning as kv

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ProjectNotFoundError, match="kepler init"):
        kv.list_versions()
    with pytest.raises(ProjectNotFoundError, match="kepler init"):
        kv.version_data("x.csv")
    with pytest.raises(ProjectNotFoundError, match="kepler init"):
        kv.list_unified_versions()
    with pytest.raises(ProjectNotFoundError, match="kepler init"):
        kv.list_pipelines()


def test_every_lookup_fails_with_the_one_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Functions that take ``project=None`` all resolve it through ``current``: same lookup, same error."""
    import kepler.versioning as kv
    from kepler.reproduce import from_version
    from kepler.versioning import lineage, releases

    monkeypatch.chdir(tmp_path)
    expected = f"{tmp_path.resolve()} is not inside a Kepler project; run `kepler init` to create one"
    lookups = {
        "current": project_mod.current,
        "Project": lambda: project_mod.Project(tmp_path / "sub" / ".."),
        "list_versions": kv.list_versions,
        "list_unified_versions": kv.list_unified_versions,
        "list_pipelines": kv.list_pipelines,
        "list_releases": releases.list_releases,
        "get_lineage_node": lambda: lineage.get_lineage_node("x"),
        "from_version": lambda: from_version("x"),
    }
    for name, lookup in lookups.items():
        with pytest.raises(ProjectNotFoundError) as caught:
            lookup()
        assert str(caught.value) == expected, name


def test_current_returns_a_given_project_as_it_is(
    project: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # outside every project: a given project needs no lookup
    assert project_mod.current(project) is project


def test_current_finds_the_root_from_a_subfolder(project: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = project.root / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert project_mod.current().root == project.root


def test_kepler_init_cli(tmp_path: Path, run_kepler: Any) -> None:
    done = run_kepler("init", "proj", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    root = (tmp_path / "proj").resolve()
    assert info["project"] == str(root)
    assert info["tracking_uri"] == f"sqlite:///{root / '.kepler' / 'mlflow.db'}"
    assert info["dvc_remote"] == str(root / ".kepler" / "dvc-remote")
    again = run_kepler("init", cwd=root)
    assert again.returncode == 0, again.stderr
    assert str(root) in again.stdout and "DVC remote" in again.stdout and "sqlite:///" in again.stdout


def test_cli_outside_a_project_exits_non_zero(tmp_path: Path, run_kepler: Any) -> None:
    done = run_kepler("versioning", "list-data", cwd=tmp_path)
    assert done.returncode == 12
    assert done.stderr.startswith("error:") and "kepler init" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_record_write_killed_before_its_rename_leaves_nothing_git_shows(project: Any, run_git: Any) -> None:
    """A writer killed between its temporary file and the rename leaves ``.<record>.<hex>.tmp``: git ignores it,
    and the next write of that record removes it."""
    store = project.store
    store.write("releases", "pm-1.0", {"release_id": "pm-1.0"})
    stale = store.path("releases", "pm-1.0").with_name(".pm-1.0.json.0123456789abcdef0123456789abcdef.tmp")
    stale.write_text('{"release_id": "pm-1')  # half a record, as a kill leaves it
    other = store.path("releases", "pm-2.0").with_name(".pm-2.0.json.0123456789abcdef0123456789abcdef.tmp")
    other.write_text("{")
    run_git(project.root, "add", "-A")
    assert ".tmp" not in run_git(project.root, "status", "--porcelain")
    assert store.names("releases") == ["pm-1.0"]

    store.write("releases", "pm-1.0", {"release_id": "pm-1.0", "status": "staging"})
    assert not stale.exists() and other.exists()  # only that record's leftovers: another may be mid-write
    assert json.loads(store.path("releases", "pm-1.0").read_text())["status"] == "staging"
