"""Versioning on git + DVC + MLflow: data versions, feature pipelines, experiments, unified versions,
releases and lineage, under the names of the versioning guide."""

from __future__ import annotations

from kepler.lazy_exports import lazy_exports

_EXPORTS = {
    "Project": "project",
    "init": "project",
    "current": "project",
    "version_data": "data_versions",
    "list_versions": "data_versions",
    "get_data": "data_versions",
    "get_data_version": "data_versions",
    "version_feature_pipeline": "features",
    "apply_versioned_pipeline": "features",
    "list_pipelines": "features",
    "start_experiment": "experiments",
    "log_parameters": "experiments",
    "log_metrics": "experiments",
    "end_experiment": "experiments",
    "track_experiment": "experiments",
    "create_unified_version": "unified",
    "list_unified_versions": "unified",
    "get_unified_version": "unified",
    "create_release": "releases",
    "promote_release": "releases",
    "reproduce_release": "releases",
    "list_releases": "releases",
    "get_release": "releases",
    "record_deployment": "releases",
    "create_data_lineage": "lineage",
    "create_pipeline_lineage": "lineage",
    "create_model_lineage": "lineage",
    "create_release_lineage": "lineage",
    "create_service_lineage": "lineage",
    "get_complete_lineage": "lineage",
    "get_lineage_node": "lineage",
    "lineage_tree": "lineage",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
