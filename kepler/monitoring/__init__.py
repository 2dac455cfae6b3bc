"""Monitoring: reference profiles and drift between tables, on numpy and scipy, under Evidently's test names."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "data_drift": "drift",
    "DriftReport": "drift",
    "ColumnDrift": "drift",
    "ReferenceProfile": "reference",
    "NumericColumn": "reference",
    "CategoricalColumn": "reference",
    "METHODS": "statistics",
    "DEFAULT_THRESHOLDS": "statistics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'kepler.monitoring' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"kepler.monitoring.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
