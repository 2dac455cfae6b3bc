"""Kepler's exception family: one base class, one subclass per kind of failure, each with its exit code."""

from __future__ import annotations

from typing import Any, ClassVar

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
    "MonitoringError",
    "DriftDetected",
    "EndpointError",
    "BackendUnavailable",
]


class ModelLoadError(KeplerError):
    """A model file is missing, unreadable, truncated or not a model."""

    exit_code: ClassVar[int] = 4


class UnsupportedModelError(KeplerError):
    """The model is unfitted, or holds an estimator no converter handles."""

    exit_code: ClassVar[int] = 5


class CompileError(KeplerError):
    """Conversion to ONNX or an optimization pass failed."""

    exit_code: ClassVar[int] = 9


class ParityError(CompileError):
    """The compiled artifact disagrees with the native model beyond the profile's tolerance.

    Attributes:
        report: The parity report (a dict) that shows the disagreement.
    """

    exit_code: ClassVar[int] = 7

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


class ArtifactError(KeplerError):
    """A compiled artifact is missing, incomplete or has been tampered with."""

    exit_code: ClassVar[int] = 8


class BackendUnavailable(ArtifactError):
    """A compiled backend an artifact holds cannot run here (another machine, a CPU without the instructions it
    was built for, its files left out). Raised only when a caller forces that backend; otherwise the Predictor
    serves with onnxruntime and says why."""

    exit_code: ClassVar[int] = 16


class InputSchemaError(KeplerError):
    """Input data does not match the schema the model was compiled for."""

    exit_code: ClassVar[int] = 6


class DataError(KeplerError):
    """Training data cannot be used: a missing, unreadable or empty table, a bad column or label,
    or a data source (such as Splunk) that cannot be reached or refuses the query."""

    exit_code: ClassVar[int] = 6


class BudgetError(KeplerError):
    """No candidate model fits the target's budgets.

    Attributes:
        report: The closest candidates, each with the budget it broke and by how much.
    """

    exit_code: ClassVar[int] = 10

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


class VersioningError(KeplerError):
    """A versioning record, name, release transition or lineage edge is invalid, unknown or taken."""

    exit_code: ClassVar[int] = 11


class ProjectNotFoundError(VersioningError):
    """The working directory is not inside a Kepler project."""

    exit_code: ClassVar[int] = 12


class MonitoringError(KeplerError):
    """A monitoring check cannot run: an unknown method, a bad threshold, sides with no column in common,
    or a side that is neither a table, a reference profile nor a data version."""

    exit_code: ClassVar[int] = 13


class DriftDetected(MonitoringError):
    """The dataset drifted, and the caller asked to fail on drift (``kepler monitor drift --fail-on-drift``).

    Attributes:
        drift_report: The :class:`~kepler.monitoring.drift.DriftReport` that found the drift.
    """

    exit_code: ClassVar[int] = 14

    def __init__(self, message: str, drift_report: Any) -> None:
        super().__init__(message)
        self.drift_report = drift_report


class EndpointError(KeplerError):
    """A service Kepler records to or reads from cannot be reached or refuses: an MLflow tracking server,
    an S3 endpoint (the DVC remote, MLflow's artifacts), a Spark master. The message names the endpoint
    and what to check.

    Attributes:
        endpoint: The URL that failed (without credentials).
    """

    exit_code: ClassVar[int] = 15

    def __init__(self, message: str, endpoint: str = "") -> None:
        super().__init__(message)
        self.endpoint = endpoint
