"""Connector settings: an argument, else an environment variable, else a table in the project's kepler.toml."""

from __future__ import annotations

import os
import tomllib
from typing import Any

from kepler.errors import DataError
from kepler.project_file import PROJECT_FILE, find_project_file


def project_section(
    section: str, keys: tuple[str, ...], start: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """The ``[section]`` table of the nearest kepler.toml; empty when there is no file or no such table.

    Raises:
        DataError: the file is not valid TOML, or the table has a key outside ``keys``
            (a typo there would otherwise be silently ignored).
    """
    path = find_project_file(start)
    if path is None:
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid TOML ({exc}); fix the file") from None
    table = document.get(section, {})
    if not isinstance(table, dict):
        raise DataError(f"{path}: [{section}] must be a table; write it as a [{section}] section")
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise DataError(
            f"{path}: unknown key {', '.join(unknown)} in [{section}]; the keys are: {', '.join(keys)}"
        )
    return table


def setting(value: str | None, env: str, section: str, key: str, table: dict[str, Any]) -> str | None:
    """The first of: ``value``, the environment variable ``env``, ``table[key]``; None when none is set.

    Raises:
        DataError: the kepler.toml value is not a string.
    """
    if value:
        return value
    if os.environ.get(env):
        return os.environ[env]
    found = table.get(key)
    if found is not None and not isinstance(found, str):
        raise DataError(f"{PROJECT_FILE}: [{section}] {key} must be a string")
    return found or None
