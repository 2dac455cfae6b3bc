"""What machine and library versions produced an artifact."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from kepler.runtimes.benchmark import machine

_LIBRARIES = (
    "kepler-ml",
    "numpy",
    "pandas",
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "onnxmltools",
    "scikit-learn",
    "xgboost",
    "lightgbm",
)


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that shape a compile."""
    versions: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment() -> dict[str, Any]:
    """Library versions plus the machine description."""
    return {"libraries": library_versions(), **machine()}
