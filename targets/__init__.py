"""Target profiles: the shipped edge and cloud profiles, user TOML files, and their validation."""

from __future__ import annotations

import os
from pathlib import Path

from kepler.targets.errors import KeplerError, ProfileError, RegistryError
from kepler.targets.profile import ParityTolerance, TargetProfile, profile_from_dict, read_profile_file
from kepler.targets.registry import Registry

__all__ = [
    "KeplerError",
    "ParityTolerance",
    "ProfileError",
    "Registry",
    "RegistryError",
    "TargetProfile",
    "list_profiles",
    "load_profile",
    "profile_from_dict",
    "read_profile_file",
    "register_profile",
]

_PROFILES: Registry[Path] = Registry("target profile")
for _path in sorted(Path(__file__).parent.glob("*.toml")):
    _PROFILES.register(_path.stem, _path)


def register_profile(path: str | os.PathLike[str], *, replace: bool = False) -> TargetProfile:
    """Registers a profile file under its ``name`` so it can be named like a built-in.

    Raises:
        ProfileError: the file is invalid.
        RegistryError: the name is taken and ``replace`` is False.
    """
    profile = read_profile_file(path)
    _PROFILES.register(profile.name, Path(path), replace=replace)
    return profile


def list_profiles() -> list[str]:
    """Names of the registered profiles (built-in ones first of all: ``cloud``, ``edge``)."""
    return _PROFILES.names()


def load_profile(target: str | os.PathLike[str] | TargetProfile) -> TargetProfile:
    """Resolves a target: a profile object, a registered name, or a path to a TOML file.

    Raises:
        ProfileError: unknown name, missing file or invalid profile.
    """
    if isinstance(target, TargetProfile):
        return target
    text = os.fspath(target)
    if text in _PROFILES:
        return read_profile_file(_PROFILES.get(text))
    if text.endswith(".toml") or os.sep in text or Path(text).exists():
        return read_profile_file(text)
    raise ProfileError(
        f"unknown target {text!r}; use one of {', '.join(list_profiles())} "
        f"or a path to a profile .toml file (see `kepler targets list`)"
    )
