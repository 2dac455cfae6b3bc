"""Root of Kepler's exception family; it lives in the lowest layer so every layer can raise it."""

from __future__ import annotations

from typing import ClassVar


class KeplerError(Exception):
    """Base of every error Kepler raises on purpose.

    Messages say what went wrong and what to do next. The CLI prints
    ``str(error)`` as one line and exits with the class's :attr:`exit_code`.

    Attributes:
        exit_code: The ``kepler`` command's exit status for this kind of failure (the README's
            exit-code list); each subclass sets its own, and subclasses of those inherit it.
    """

    exit_code: ClassVar[int] = 1


class ProfileError(KeplerError):
    """A target profile is unknown, unreadable or invalid."""

    exit_code: ClassVar[int] = 3


class RegistryError(KeplerError):
    """A registry refused an entry or does not hold a name."""

    exit_code: ClassVar[int] = 3
