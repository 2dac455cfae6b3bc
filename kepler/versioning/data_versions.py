"""Data versions: a file inside the project tracked by DVC, pushed to the project's DVC remote,
its ``.dvc`` file committed and tagged in git, and a JSON record in ``.kepler/records/data/``.

What one call of :func:`version_data` does, in order (under the project's ``data`` lock):

1. hashes the file (md5, as DVC 3 does) and decides, from the existing records, whether it is new;
2. ``dvc add`` and ``dvc push`` to the project's remote (under the ``dvc`` lock: DVC refuses concurrent use);
3. commits the ``.dvc`` file and the ``.gitignore`` DVC maintains, and tags that commit ``data/<version_id>``
   (under the ``git`` lock: git's index is shared by every writer of the project);
4. writes the record atomically and commits it.

A kill at any point leaves the store readable: the record is written last, and a rerun finishes the job
(an orphan tag left by a killed run is moved to the new commit).

Identical content (decided here, see :func:`version_data`):

* the same file with the same bytes, under no name or under the name it already has: nothing new is
  recorded; the existing version comes back with ``duplicate_of`` set to its own id;
* the same bytes under a new ``version_name`` (an alias): a new record and tag, no new DVC object
  (DVC stores content once), and ``duplicate_of`` names the first version that holds those bytes;
* a name already used for other bytes or another file: :class:`~kepler.errors.VersioningError`.

Locks, taken in this order only, so that callers can nest them: ``unified`` → ``data`` → ``dvc`` → ``git``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kepler import atomic_files
from kepler._compat import dvc as dvc_compat
from kepler.clock import now
from kepler.errors import KeplerError, VersioningError
from kepler.records import Record
from kepler.versioning import gitrepo
from kepler.versioning.names import check_name
from kepler.versioning.project import Project, current, quiet_dvc

KIND = "data"
DVC_LOCK = "dvc"
GIT_LOCK = "git"
TAG_PREFIX = "data/"
_TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
_INDEX_LOCK_WAIT_S = 5.0


@dataclass
class DataVersion(Record):
    """One recorded version of a data file (its record: ``.kepler/records/data/<version_id>.json``).

    Schema versions: 1, the record as written before records carried ``schema_version``.

    Attributes:
        version_id: The name of the version (``version_name``, or ``<stem>-<md5[:8]>``).
        file_path: The file, relative to the project root (POSIX separators).
        rows: Number of data rows of a CSV or Parquet table; None for other files.
        columns: Column names of a table, in order; None for other files.
        md5: DVC's md5 of the bytes (the ``outs`` md5 of the ``.dvc`` file).
        size: Size in bytes.
        schema_hash: sha256 of the table's column names and pandas dtypes; None for other files.
        created_at: UTC time of recording, ISO 8601.
        metadata: What the caller attached (JSON values).
        git_commit: The commit holding the ``.dvc`` file of these bytes (the tag points at it).
        tag: The git tag ``data/<version_id>``.
        duplicate_of: The earlier version with the same bytes, if any. On a call that recorded nothing
            new it is the version returned itself (``v.duplicate_of == v.version_id``).
    """

    version_id: str
    file_path: str
    rows: int | None
    columns: list[str] | None
    md5: str
    size: int
    schema_hash: str | None
    created_at: str
    metadata: dict[str, Any] = field(default_factory=dict)
    git_commit: str | None = None
    tag: str | None = None
    duplicate_of: str | None = None

    KIND = "data version"
    ERROR = VersioningError


# --------------------------------------------------------------------------- shared helpers


def check_metadata(metadata: Any, what: str = "metadata") -> dict[str, Any]:
    """``metadata`` as a JSON-serializable dict (None gives an empty one)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise VersioningError(f"{what} must be a dict of JSON values, got {type(metadata).__name__}")
    try:
        return json.loads(json.dumps(metadata, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise VersioningError(
            f"{what} is not JSON-serializable ({exc}); pass numbers, strings, lists and dicts"
        ) from None


@contextlib.contextmanager
def dvc_repo(project: Project) -> Iterator[Any]:
    """An open DVC repo of the project, under the project's ``dvc`` lock, quiet, DVC errors as VersioningError."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    with project.store.lock(DVC_LOCK), quiet_dvc(), warnings.catch_warnings():
        # DVC 3.67 trips pygtrie's deprecation of _NoneStep.value on every add; not ours to fix.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"dvc\.")
        # Every Kepler DVC call holds the dvc lock, so a broken DVC lock table now is a dead writer's.
        dvc_compat.heal_rwlock(project.root)
        try:
            repo = Repo(str(project.root))
        except DvcException as exc:
            raise VersioningError(
                f"{project.root}: DVC cannot open the project ({exc}); run `kepler init` there"
            ) from None
        try:
            yield repo
        except DvcException as exc:
            raise VersioningError(f"DVC failed: {exc}") from None
        finally:
            repo.close()


def commit_paths(project: Project, paths: list[Path | str], message: str) -> str:
    """Commits ``paths`` (only those) under the project's ``git`` lock; returns HEAD."""
    with project.store.lock(GIT_LOCK):
        _wait_for_index_lock(project)
        return gitrepo.commit(project.root, paths, message)


def _wait_for_index_lock(project: Project) -> None:
    """Every Kepler writer holds the ``git`` lock, so an index.lock now is a user's git command (wait for it)
    or one killed midway (say how to recover)."""
    lock = Path(gitrepo.git(project.root, "rev-parse", "--git-path", "index.lock"))
    lock = lock if lock.is_absolute() else project.root / lock
    deadline = time.monotonic() + _INDEX_LOCK_WAIT_S
    while lock.exists():
        if time.monotonic() > deadline:
            raise VersioningError(
                f"{lock} exists: a git command is running in {project.root}, or one was killed; "
                f"if no git command is running, delete {lock} and retry"
            )
        time.sleep(0.1)


def check_remote(project: Project) -> None:
    """Checks that the project's DVC remote answers, when it is on S3 (a local folder needs no check).

    Raises:
        EndpointError: the S3 endpoint cannot be reached, refuses the credentials, or lacks the bucket.
    """
    url = project.dvc_remote_url
    if url.startswith("s3://"):
        from kepler.versioning.endpoints import check_s3

        check_s3(url, project.s3_endpoint, "the DVC remote")


@contextlib.contextmanager
def _restored_on_failure(paths: list[Path]) -> Iterator[None]:
    """Puts ``paths`` back as they were (or removes them) when the block fails: a version that could not be pushed
    leaves no changed ``.dvc`` or ``.gitignore`` file behind."""
    saved = {path: path.read_bytes() if path.is_file() else None for path in paths}
    try:
        yield
    except BaseException:
        for path, content in saved.items():
            if content is None:
                path.unlink(missing_ok=True)
            elif not path.is_file() or path.read_bytes() != content:
                atomic_files.write_bytes(path, content)
        raise


def _tag_name(version_id: str) -> str:
    return TAG_PREFIX + version_id


def _check_tag(version_id: str) -> None:
    import subprocess

    done = subprocess.run(
        ["git", "check-ref-format", f"refs/tags/{_tag_name(version_id)}"], capture_output=True
    )
    if done.returncode != 0:
        raise VersioningError(
            f"version name {version_id!r} cannot be a git tag (it may not end in '.' or '.lock'); "
            f"choose another name"
        )


def _tag(project: Project, version_id: str, commit: str, message: str) -> str:
    """Tags ``commit``; a tag of that name without a record is the orphan of a killed run and is moved."""
    name = _tag_name(version_id)
    with project.store.lock(GIT_LOCK):
        existing = gitrepo.git(
            project.root, "rev-parse", "-q", "--verify", f"refs/tags/{name}^{{commit}}", check=False
        )
        if existing == commit:
            return name
        gitrepo.git(project.root, "tag", "-a", *(["-f"] if existing else []), name, "-m", message, commit)
    return name


def _md5(path: Path) -> tuple[str, int]:
    digest = hashlib.md5()
    size = 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _table_stats(path: Path) -> tuple[int | None, list[str] | None, str | None]:
    """Rows, column names and schema hash of a CSV or Parquet table; Nones for anything else."""
    if path.suffix.lower() not in _TABLE_SUFFIXES:
        return None, None, None
    from kepler.data.tables import read_table

    try:
        frame = read_table(path)
    except KeplerError:
        return None, None, None
    columns = [str(c) for c in frame.columns]
    schema = json.dumps(
        [[c, str(t)] for c, t in zip(columns, frame.dtypes, strict=False)], separators=(",", ":")
    )
    return int(len(frame)), columns, hashlib.sha256(schema.encode()).hexdigest()


def _auto_id(file_path: str, md5: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._@-]+", "-", Path(file_path).stem).strip(".-_@")
    stem = re.sub(r"\.{2,}", ".", stem)[:100] or "data"
    return f"{stem}-{md5[:8]}"


def _dvc_md5(dvc_file: Path) -> str:
    """The md5 a ``.dvc`` file records (DVC's documented format: ``outs: [{md5: ...}]``)."""
    import yaml

    try:
        # BaseLoader reads every value as text: an md5 of digits stays a string.
        return str(yaml.load(dvc_file.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)["outs"][0]["md5"])
    except Exception as exc:
        raise VersioningError(
            f"{dvc_file}: unreadable DVC file ({exc}); delete it and version the data again"
        ) from None


def _records(project: Project) -> list[DataVersion]:
    return [DataVersion.from_dict(r) for r in project.store.all(KIND)]


# --------------------------------------------------------------------------- public API


def version_data(
    path: str | os.PathLike[str],
    version_name: str | None = None,
    metadata: dict[str, Any] | None = None,
    *,
    project: Project | None = None,
) -> DataVersion:
    """Versions a data file of the project with DVC, git and a Kepler record.

    Args:
        path: A file inside the project (relative to the working directory, or absolute).
        version_name: The version's name; default ``<stem>-<md5[:8]>``.
        metadata: JSON values kept with the version.
        project: The project; default the one containing the working directory.

    Returns:
        The new version; or, when these bytes of this file are already versioned (under no name or the
        same name), the existing version with ``duplicate_of`` set to its own id and nothing new recorded.
        A new name for bytes already versioned makes an alias: a new record and tag, no new DVC object,
        ``duplicate_of`` naming the first version of those bytes.

    Raises:
        ProjectNotFoundError: not inside a project (run ``kepler init``).
        VersioningError: a data path outside the project, a missing file or a folder, a bad name,
            a name already used for other content, or a DVC/git failure.
    """
    project = current(project)
    try:
        relative = project.relative(path)
    except VersioningError:
        raise VersioningError(
            f"{path} is a data path outside the project {project.root}; "
            f"move or copy the file into the project and version it there"
        ) from None
    absolute = project.root / relative
    file_path = relative.as_posix()
    if absolute.is_dir():
        raise VersioningError(f"{file_path} is a folder; version each data file on its own")
    if not absolute.is_file():
        raise VersioningError(f"{file_path}: no such file; pass the path of a data file inside the project")
    if version_name is not None:
        check_name(version_name, "version name")
    metadata = check_metadata(metadata)
    store = project.store

    with store.lock(KIND):
        md5, size = _md5(absolute)
        records = sorted(_records(project), key=lambda v: (v.created_at, v.version_id))
        same_bytes = [v for v in records if v.md5 == md5]
        existing: DataVersion | None = None
        if version_name is not None:
            version_id = version_name
            if store.exists(KIND, version_id):
                existing = DataVersion.from_dict(store.read(KIND, version_id))
        else:
            existing = next((v for v in same_bytes if v.file_path == file_path), None)
            version_id = existing.version_id if existing else _auto_id(file_path, md5)
            if existing is None and store.exists(KIND, version_id):
                existing = DataVersion.from_dict(store.read(KIND, version_id))
        if existing is not None and (existing.md5 != md5 or existing.file_path != file_path):
            raise VersioningError(
                f"data version {version_id!r} exists for other content "
                f"({existing.file_path}, md5 {existing.md5}); choose another version_name"
            )
        if existing is None:
            _check_tag(version_id)

        check_remote(project)
        dvc_file = absolute.with_name(absolute.name + ".dvc")
        with _restored_on_failure([dvc_file, dvc_file.with_name(".gitignore")]), dvc_repo(project) as repo:
            repo.add([str(absolute)])
            try:
                repo.push(targets=[str(absolute)])
            except Exception:
                check_remote(project)  # an unreachable remote: say so, naming it
                raise
        recorded = _dvc_md5(dvc_file)
        if recorded != md5:
            raise VersioningError(
                f"{file_path} changed while it was being versioned (md5 {md5}, DVC saw {recorded}); "
                f"retry once nothing writes to it"
            )
        ignore = dvc_file.with_name(".gitignore")
        commit = commit_paths(
            project,
            [dvc_file, *([ignore] if ignore.exists() else [])],
            f"kepler: data {file_path} (md5 {md5})",
        )
        if existing is not None:
            # A run killed after writing the record but before committing it is finished here.
            commit_paths(project, [store.path(KIND, version_id)], f"kepler: data version {version_id}")
            return dataclasses.replace(existing, duplicate_of=existing.version_id)

        tag = _tag(project, version_id, commit, f"Kepler data version {version_id}: {file_path} md5 {md5}")
        rows, columns, schema_hash = _table_stats(absolute)
        version = DataVersion(
            version_id=version_id,
            file_path=file_path,
            rows=rows,
            columns=columns,
            md5=md5,
            size=size,
            schema_hash=schema_hash,
            created_at=now(),
            metadata=metadata,
            git_commit=commit,
            tag=tag,
            duplicate_of=same_bytes[0].version_id if same_bytes else None,
        )
        record = store.write(KIND, version_id, version.to_dict())
        commit_paths(project, [record], f"kepler: data version {version_id}")
    return version


def list_versions(*, project: Project | None = None) -> list[DataVersion]:
    """Every data version of the project, oldest first."""
    project = current(project)
    return sorted(_records(project), key=lambda v: (v.created_at, v.version_id))


def get_data_version(version_id: str, *, project: Project | None = None) -> DataVersion:
    """One data version by its id.

    Raises:
        VersioningError: no such version.
    """
    project = current(project)
    return DataVersion.from_dict(
        project.store.read(
            KIND,
            check_name(version_id, "version id"),
            missing=f"unknown data version {version_id!r}; list them with kp.versioning.list_versions()",
        )
    )


def get_data(version: str | DataVersion, *, project: Project | None = None) -> bytes:
    """The exact bytes of a data version, whatever the working file holds now.

    Read through DVC's public API (``dvc.api.read`` of the file at the version's commit): from the DVC cache,
    or from the DVC remote when the cache lacks them. A damaged copy in the cache is replaced by the remote's.
    The md5 is checked on the way out.

    Raises:
        VersioningError: unknown version, or the bytes are in neither the cache nor the remote.
    """
    project = current(project)
    record = get_data_version(
        version.version_id if isinstance(version, DataVersion) else version, project=project
    )
    with dvc_repo(project) as repo:
        if not dvc_compat.cached_object(repo, record.md5).exists():
            # The bytes must come from the remote: fail fast, naming it, when it is down.
            check_remote(project)
        try:
            data = _read_checked(project, record)
            if data is None:  # a damaged copy in the cache (read first), or bytes the remote lacks too
                dvc_compat.restore_cached(repo, record.md5)
                data = _read_checked(project, record)
        except Exception:
            check_remote(project)  # an unreachable remote: say so, naming it
            raise
    if data is None:
        check_remote(project)
        raise VersioningError(
            f"the bytes of data version {record.version_id!r} (md5 {record.md5}) are in neither "
            f"the DVC cache nor the remote {project.dvc_remote_url}; restore the remote"
        )
    return data


def _read_checked(project: Project, record: DataVersion) -> bytes | None:
    """The bytes of ``record`` through DVC's public API, or None when DVC has none or others."""
    import dvc.api
    from dvc.exceptions import DvcException

    try:
        data = dvc.api.read(record.file_path, repo=str(project.root), rev=record.git_commit, mode="rb")
    except (DvcException, OSError):
        return None
    return data if hashlib.md5(data).hexdigest() == record.md5 else None
