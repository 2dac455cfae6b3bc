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
    "release_reference": "sources",
    "release_artifact": "sources",
    "artifact_reference": "sources",
    "METHODS": "statistics",
    "DEFAULT_THRESHOLDS": "statistics",
    "read_traffic": "traffic",
    "traffic_drift": "traffic",
    "traffic_folder": "traffic",
    "pipeline_stability": "pipeline",
    "PipelineStabilityReport": "pipeline",
    "deployment_success": "deployments",
    "DeploymentReport": "deployments",
    "record_monitoring_run": "records",
    "CalibrationTable": "calibration",
    "performance": "performance",
    "PerformanceReport": "performance",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
