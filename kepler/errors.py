"""Kepler's exception family: one base class, one subclass per kind of failure."""

from __future__ import annotations

from typing import Any

from kepler.targets.errors import KeplerError, ProfileError, RegistryError

__all__ = [
    "ArtifactError",
    "CompileError",
    "DataError",
    "InputSchemaError",
    "KeplerError",
    "ModelLoadError",
    "ParityError",
    "ProfileError",
    "RegistryError",
    "BudgetError",
    "ProjectNotFoundError",
    "VersioningError",
    "UnsupportedModelError",
]


class ModelLoadError(KeplerError):
    """A model file is missing, unreadable, truncated or not a model."""


class UnsupportedModelError(KeplerError):
    """The model is unfitted, or holds an estimator no converter handles."""


class CompileError(KeplerError):
    """Conversion to ONNX or an optimization pass failed."""


class ParityError(CompileError):
    """The compiled artifact disagrees with the native model beyond the profile's tolerance.

    Attributes:
        report: The parity report (a dict) that shows the disagreement.
    """

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


class ArtifactError(KeplerError):
    """A compiled artifact is missing, incomplete or has been tampered with."""


class InputSchemaError(KeplerError):
    """Input data does not match the schema the model was compiled for."""


class DataError(KeplerError):
    """Training data cannot be used: a missing, unreadable or empty table, a bad column or label,
    or a data source (such as Splunk) that cannot be reached or refuses the query."""


class BudgetError(KeplerError):
    """No candidate model fits the target's budgets.

    Attributes:
        report: The closest candidates, each with the budget it broke and by how much.
    """

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


class VersioningError(KeplerError):
    """A versioning record, name, release transition or lineage edge is invalid, unknown or taken."""


class ProjectNotFoundError(VersioningError):
    """The working directory is not inside a Kepler project."""
