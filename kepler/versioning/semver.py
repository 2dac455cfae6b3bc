"""Semantic versions (https://semver.org): MAJOR.MINOR.PATCH[-prerelease][+build], a leading "v" accepted."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kepler.errors import VersioningError

# The regular expression published with the SemVer 2.0.0 specification.
_PATTERN = re.compile(
    r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<prerelease>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)


@dataclass(frozen=True)
class SemVer:
    """One parsed semantic version.

    Attributes:
        major, minor, patch: The three numbers.
        prerelease: The part after ``-`` (``"rc.1"``), or ``""``.
        build: The part after ``+`` (``"build.7"``), or ``""``; it takes no part in precedence.
    """

    major: int
    minor: int
    patch: int
    prerelease: str = ""
    build: str = ""

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += f"-{self.prerelease}"
        if self.build:
            text += f"+{self.build}"
        return text

    @property
    def precedence(self) -> tuple:
        """A sort key following SemVer precedence: a pre-release sorts before its release,
        numeric identifiers numerically and before alphanumeric ones; build metadata is ignored."""
        if not self.prerelease:
            pre: tuple = ((1,),)
        else:
            pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease.split("."))
            pre = ((0,), *pre)
        return (self.major, self.minor, self.patch, pre)

    @property
    def identity(self) -> str:
        """The version without build metadata: two versions with the same identity are the same release."""
        return str(SemVer(self.major, self.minor, self.patch, self.prerelease))


def parse(text: object) -> SemVer:
    """Parses a semantic version; ``"v1.2.0"`` and ``"1.2.0"`` are the same version.

    Raises:
        VersioningError: not a semantic version (the message shows valid examples).
    """
    value = text.strip() if isinstance(text, str) else ""
    if value[:1] in ("v", "V"):
        value = value[1:]
    match = _PATTERN.fullmatch(value)
    if not match:
        raise VersioningError(
            f"version {text!r} is not a semantic version; use MAJOR.MINOR.PATCH such as "
            f"'1.0.0', '2.1.3-rc.1' or 'v1.4.0+build.7'"
        )
    return SemVer(
        int(match["major"]),
        int(match["minor"]),
        int(match["patch"]),
        match["prerelease"] or "",
        match["build"] or "",
    )


def normalize(text: object) -> str:
    """The canonical text of a semantic version (no leading "v")."""
    return str(parse(text))
