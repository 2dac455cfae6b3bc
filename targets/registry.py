"""A named registry that refuses silent overwrites and lists what it holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from kepler.targets.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to entries; a second entry under a taken name raises.

    Args:
        kind: What the registry holds, used in error messages ("converter", "pass").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T, *, replace: bool = False) -> T:
        """Adds ``entry`` under ``name``.

        Raises:
            RegistryError: ``name`` is taken and ``replace`` is False.
        """
        if name in self._entries and not replace:
            raise RegistryError(
                f"a {self.kind} named {name!r} is already registered; "
                f"pick another name or pass replace=True to override it on purpose"
            )
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        """Returns the entry under ``name``.

        Raises:
            RegistryError: no such entry; the message lists the known names.
        """
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names()) or 'none'}"
            ) from None

    def names(self) -> list[str]:
        """Returns the registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
