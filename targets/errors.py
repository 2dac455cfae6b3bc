"""Root of Kepler's exception family; it lives in the lowest layer so every layer can raise it."""

from __future__ import annotations


class KeplerError(Exception):
    """Base of every error Kepler raises on purpose.

    Messages say what went wrong and what to do next. The CLI prints
    ``str(error)`` as one line and maps the class to an exit code.
    """


class ProfileError(KeplerError):
    """A target profile is unknown, unreadable or invalid."""


class RegistryError(KeplerError):
    """A registry refused an entry or does not hold a name."""
