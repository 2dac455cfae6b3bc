"""Converter registry: every native class Kepler compiles, registered explicitly here."""

from __future__ import annotations

from kepler.compilers.converters import boosting_libraries, double_precision, sklearn_models
from kepler.compilers.converters.spec import (
    CLASSIFIER,
    COMPOSITE,
    CONVERTERS,
    OUTLIER,
    REGRESSOR,
    TRANSFORMER,
    ConverterSpec,
    register_converter,
    spec_for,
)

__all__ = [
    "CLASSIFIER",
    "COMPOSITE",
    "CONVERTERS",
    "OUTLIER",
    "REGRESSOR",
    "TRANSFORMER",
    "ConverterSpec",
    "install_backends",
    "register_converter",
    "spec_for",
    "supported",
]

_installed = False


def supported(role: str | None = None) -> list[str]:
    """Names of the classes Kepler compiles, optionally only those of one role."""
    return [n for n in CONVERTERS.names() if role is None or CONVERTERS.get(n).role == role]


def install_backends() -> None:
    """Hooks Kepler's converters into skl2onnx once per process (it imports the heavy libraries)."""
    global _installed
    if not _installed:
        sklearn_models.install()
        boosting_libraries.install()
        double_precision.install()
        _installed = True
