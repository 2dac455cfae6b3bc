"""Kepler's own records: small JSON manifests, written atomically under a file lock and committed to git."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock

from kepler import atomic_files
from kepler.errors import VersioningError
from kepler.versioning.names import check_name

KINDS = ("data", "pipelines", "experiments", "unified", "probes", "releases", "lineage")
LOCK_TIMEOUT_S = 120


class RecordStore:
    """Records of one project, one JSON file per record: ``<root>/.kepler/records/<kind>/<name>.json``.

    Writers take a per-kind file lock; a write goes to a temporary file that is
    fsynced and renamed over the record, so readers and a killed writer never
    leave half a record behind.
    """

    def __init__(self, project_root: Path) -> None:
        self.root = project_root / ".kepler" / "records"
        self.locks = project_root / ".kepler" / "locks"

    def path(self, kind: str, name: str) -> Path:
        """Where a record lives (the name is validated first)."""
        if kind not in KINDS:
            raise VersioningError(f"unknown record kind {kind!r}")
        return self.root / kind / f"{check_name(name)}.json"

    @contextlib.contextmanager
    def lock(self, kind: str) -> Iterator[None]:
        """Holds the writers' lock of one kind of record."""
        self.locks.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(self.locks / f"{kind}.lock"), timeout=LOCK_TIMEOUT_S):
                yield
        except TimeoutError:
            raise VersioningError(
                f"another Kepler process holds the {kind} lock for over {LOCK_TIMEOUT_S} s; "
                f"wait for it or remove {self.locks / (kind + '.lock')} if it crashed"
            ) from None

    def exists(self, kind: str, name: str) -> bool:
        """True when the record exists."""
        return self.path(kind, name).is_file()

    def read(self, kind: str, name: str, *, missing: str | None = None) -> dict[str, Any]:
        """Reads one record.

        Args:
            kind: The kind of record.
            name: Its name (validated).
            missing: The error message when there is no such record.

        Raises:
            VersioningError: no such record, or a corrupted file (naming it).
        """
        path = self.path(kind, name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise VersioningError(
                missing
                or f"unknown {kind[:-1] if kind.endswith('s') else kind} {name!r}; "
                f"list what exists with `kepler versioning`"
            ) from None
        except (OSError, ValueError) as exc:
            raise VersioningError(
                f"{path}: corrupted record ({exc}); restore it from git "
                f"(git checkout -- {path.name}) or delete it"
            ) from None
        if not isinstance(data, dict):
            raise VersioningError(f"{path}: corrupted record (not a JSON object); restore it from git")
        return data

    def write(self, kind: str, name: str, data: dict[str, Any]) -> Path:
        """Writes one record atomically (temp file, fsync, rename). Callers hold :meth:`lock`.

        Temporary files of earlier writes of this record are removed first: only a writer killed before its
        rename leaves one, and under the lock no other writer of the record is alive.
        """
        path = self.path(kind, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{path.name}.*{atomic_files.TEMP_SUFFIX}"):
            stale.unlink(missing_ok=True)
        return atomic_files.write_json(path, data, sort_keys=True)

    def names(self, kind: str) -> list[str]:
        """Names of the records of one kind (temporary files excluded)."""
        folder = self.root / kind
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.json") if not p.name.startswith("."))

    def all(self, kind: str) -> list[dict[str, Any]]:
        """Every record of one kind."""
        return [self.read(kind, name) for name in self.names(kind)]
