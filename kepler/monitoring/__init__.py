"""Monitoring: reference profiles and drift between tables, on numpy and scipy, under Evidently's test names."""

from __future__ import annotations

from kepler.lazy_exports import lazy_exports

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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
