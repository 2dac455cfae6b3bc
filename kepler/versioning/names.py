"""Validation of the names users give to versions, releases, pipelines and lineage nodes."""

from __future__ import annotations

import re

from kepler.errors import VersioningError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")
MAX_LENGTH = 128


def check_name(name: object, what: str = "name") -> str:
    """Returns ``name`` when it is a safe record name, else raises.

    Names match ``[A-Za-z0-9][A-Za-z0-9._@-]*`` (at most 128 characters) and never
    contain ``..``, so no name can escape the project store.

    Raises:
        VersioningError: the name is empty, too long, or has a separator or ``..``.
    """
    if not isinstance(name, str) or not name:
        raise VersioningError(f"{what} must be a non-empty string, got {name!r}")
    if len(name) > MAX_LENGTH or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise VersioningError(
            f"{what} {name!r} is not allowed: use letters, digits and . _ @ - (no '/', no '..', "
            f"at most {MAX_LENGTH} characters), starting with a letter or digit"
        )
    return name
