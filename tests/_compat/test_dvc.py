"""Canaries of kepler._compat.dvc on a real DVC project (no git, in this process): DVC's lock table, its cache
layout and pull by hash, and what ``dvc.api.read`` (Kepler's way to read a data version) does with the cache."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dvc.api
import pytest
from dvc.repo import Repo

from kepler._compat.dvc import RWLOCK, cached_object, heal_rwlock, restore_cached

DATA = b"temperature,failure\n71.5,0\n80.25,1\n"
# DVC 3.67 trips pygtrie's deprecation of _NoneStep.value on every add; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@dataclass
class Project:
    root: Path
    remote: Path
    md5: str

    def repo(self) -> Any:
        return Repo(str(self.root))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """A DVC project without git holding table.csv, pushed to a local remote."""
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    root, remote = tmp_path / "project", tmp_path / "remote"
    root.mkdir()
    Repo.init(str(root), no_scm=True).close()
    repo = Repo(str(root))
    with repo.config.edit() as config:
        config["remote"]["store"] = {"url": str(remote)}
        config["core"]["remote"] = "store"
    (root / "table.csv").write_bytes(DATA)
    repo.add([str(root / "table.csv")])
    repo.push()
    repo.close()
    yield Project(root, remote, hashlib.md5(DATA).hexdigest())


def _damage(path: Path) -> None:
    path.chmod(0o644)  # DVC makes its cache read-only
    path.write_bytes(b"damaged")


def test_dvc_keeps_its_lock_table_where_heal_rwlock_looks(project: Project) -> None:
    table = project.root / RWLOCK
    assert table.is_file(), f"kepler._compat.dvc.heal_rwlock: DVC keeps no lock table at {RWLOCK}"
    assert isinstance(json.loads(table.read_text(encoding="utf-8")), dict), (
        f"kepler._compat.dvc.heal_rwlock: DVC's lock table {RWLOCK} is no longer a JSON object"
    )


def test_dvc_refuses_a_cut_lock_table_and_heal_rwlock_lets_it_run(project: Project) -> None:
    from dvc.exceptions import DvcException

    table = project.root / RWLOCK
    table.write_text('{"read": {}, "wr', encoding="utf-8")  # what a process killed mid-write leaves
    repo = project.repo()
    try:
        with pytest.raises(DvcException, match="(?i)rwlock"):
            repo.status()
    except pytest.fail.Exception:
        raise AssertionError(
            "kepler._compat.dvc.heal_rwlock: DVC runs with a cut lock table now; the shim can go"
        ) from None
    finally:
        repo.close()
    assert heal_rwlock(project.root) is True and not table.exists()
    repo = project.repo()
    try:
        repo.status()  # a missing table reads as no locks held
    finally:
        repo.close()
    assert heal_rwlock(project.root) is False and table.is_file(), "a valid table is left alone"
    table.unlink()
    assert heal_rwlock(project.root) is False


def test_cached_object_is_where_dvc_keeps_the_bytes(project: Project) -> None:
    repo = project.repo()
    try:
        assert cached_object(repo, project.md5).read_bytes() == DATA, (
            "kepler._compat.dvc.cached_object: repo.cache.local.oid_to_path no longer names the cache copy"
        )
    finally:
        repo.close()


def test_dvc_api_reads_a_damaged_cache_copy_and_restore_cached_repairs_it(project: Project) -> None:
    (project.root / "table.csv").unlink()  # else DVC reads the working copy (Kepler reads at a git revision)
    repo = project.repo()
    try:
        cached = cached_object(repo, project.md5)
        _damage(cached)
        read = dvc.api.read("table.csv", repo=str(project.root), mode="rb")
        assert read == b"damaged", (
            "kepler._compat.dvc.restore_cached: dvc.api.read no longer returns a damaged cache copy as it is; "
            "get_data's repair may go"
        )
        restore_cached(repo, project.md5)
        assert cached.read_bytes() == DATA, (
            "kepler._compat.dvc.restore_cached: repo.cloud.pull of a HashInfo no longer restores the cache copy"
        )
    finally:
        repo.close()
    assert dvc.api.read("table.csv", repo=str(project.root), mode="rb") == DATA


def test_dvc_api_reads_the_remote_when_the_cache_lacks_the_bytes(project: Project) -> None:
    """get_data relies on it: a version whose bytes left the cache is still read, from the remote."""
    (project.root / "table.csv").unlink()
    repo = project.repo()
    try:
        cached_object(repo, project.md5).unlink()
    finally:
        repo.close()
    assert dvc.api.read("table.csv", repo=str(project.root), mode="rb") == DATA


def test_restore_cached_without_the_bytes_in_the_remote_leaves_none(project: Project) -> None:
    stored = next(p for p in project.remote.rglob("*") if p.is_file())
    stored.chmod(0o644)
    stored.unlink()
    repo = project.repo()
    try:
        cached = cached_object(repo, project.md5)
        _damage(cached)
        restore_cached(repo, project.md5)
        assert not cached.exists()
    finally:
        repo.close()
