"""DVC internals Kepler relies on where DVC has no public API (written for DVC 3.50–3.67 and dvc-data 3.15–3.18).

Data versions are read with DVC's public ``dvc.api.read``; these shims cover what it cannot do: repair the
lock file a killed DVC process leaves behind, and replace a damaged object in the project's cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RWLOCK = Path(".dvc") / "tmp" / "rwlock"  # DVC's own lock table, relative to the project root


def heal_rwlock(root: Path) -> bool:
    """Removes the DVC lock table ``.dvc/tmp/rwlock`` of the project at ``root`` when it is not valid JSON.

    DVC rewrites that file in place; a process killed midway leaves it empty or cut, and DVC then refuses to
    run (``RWLockFileCorruptedError``). A missing file reads as no locks held, and entries of dead processes
    DVC clears itself. Call it only while no other DVC process can run in the project. Returns True when the
    file was removed.
    """
    path = root / RWLOCK
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return True
    return False


def cached_object(repo: Any, md5: str) -> Path:
    """Where the open ``dvc.repo.Repo`` ``repo`` keeps the object of ``md5`` in its local cache (whether or not
    it is there): ``repo.cache.local.oid_to_path``."""
    return Path(repo.cache.local.oid_to_path(md5))


def restore_cached(repo: Any, md5: str) -> None:
    """Replaces the local cache's copy of the object ``md5`` (damaged, or missing) with the default remote's.

    DVC's public ``fetch`` skips an object the cache already holds, damaged or not, and takes a git revision
    where Kepler knows only the md5; this removes the copy (:func:`cached_object`) and pulls the object by
    its hash (``repo.cloud.pull`` of a dvc-data ``HashInfo``). A remote without it leaves the cache without it.
    """
    from dvc_data.hashfile.hash_info import HashInfo

    cached = cached_object(repo, md5)
    if cached.exists():
        cached.unlink()
    repo.cloud.pull([HashInfo("md5", md5)])
