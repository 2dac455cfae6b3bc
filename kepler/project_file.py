"""Finding a Kepler project's settings file, kepler.toml, from a folder upwards."""

from __future__ import annotations

import os
from pathlib import Path

# A leaf (standard library only): kepler.data reads connector settings through it and
# kepler.versioning.project finds the current project with it, so both walk up the same way.

PROJECT_FILE = "kepler.toml"


def find_project_file(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest ``kepler.toml`` in ``start`` (default: the working directory) or a parent, or None.

    Found as git finds ``.git``: the first folder on the way up to the filesystem root that holds one.
    """
    folder = Path.cwd() if start is None else Path(start)
    folder = folder.resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / PROJECT_FILE
        if path.is_file():
            return path
    return None
