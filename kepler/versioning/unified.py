"""Unified versions: one name for the git commit, the DVC data, the MLflow run and model, the compiled
artifact, the feature pipeline, the build configuration and the environment that belong together.

A unified version is a record ``.kepler/records/unified/<name>.json``, committed to git. Its inputs are
made durable first (data files become DVC data versions, committed), then the record is written once,
atomically, at the very end: a process killed partway leaves no record and a readable store, and the
same call can simply be run again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from kepler.clock import now
from kepler.errors import ArtifactError, VersioningError
from kepler.records import Record
from kepler.versioning import gitrepo
from kepler.versioning.data_versions import (
    GIT_LOCK,
    check_metadata,
    commit_paths,
    version_data,
)
from kepler.versioning.endpoints import redact
from kepler.versioning.names import check_name
from kepler.versioning.project import Project, current

KIND = "unified"
_EXTRA_LIBRARIES = ("mlflow", "dvc", "joblib")


@dataclass
class UnifiedVersion(Record):
    """What one unified version ties together (its record: ``.kepler/records/unified/<version_id>.json``).

    Schema versions: 1, the record as written before records carried ``schema_version``.

    Attributes:
        version_id: The version's name.
        git_commit: HEAD once the data versions were committed (the code of this version).
        git_dirty: True when tracked files had uncommitted changes at that moment.
        dvc_data_version: The DVC md5 of the first data path (None without data).
        data: One ``{"path", "md5", "data_version"}`` per data path.
        mlflow_run_id: The MLflow run (given, or the latest top-level run of ``experiment_name``), or None.
        experiment_name: The MLflow experiment of that run.
        model: ``{"name", "version"}`` of the MLflow registered model version, or None.
        artifact_sha256: The compiled artifact's sha256 (from its manifest.json), or None.
        feature_pipeline: ``name@version`` of the feature pipeline, or None.
        build_config: Estimator, hyperparameters, seed, target profile... as passed, or None.
        environment: Library versions and the machine.
        metadata: What the caller attached.
        created_at: UTC time of recording.
    """

    version_id: str
    git_commit: str | None
    dvc_data_version: str | None
    data: list[dict[str, Any]] = field(default_factory=list)
    mlflow_run_id: str | None = None
    experiment_name: str | None = None
    model: dict[str, str] | None = None
    artifact_sha256: str | None = None
    feature_pipeline: str | None = None
    build_config: dict[str, Any] | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    git_dirty: bool = False

    KIND = "unified version"
    ERROR = VersioningError


# --------------------------------------------------------------------------- inputs


def _data_paths(data_paths: Any) -> list[str | os.PathLike[str]]:
    if data_paths is None:
        return []
    if isinstance(data_paths, (str, os.PathLike)):
        return [data_paths]
    return list(data_paths)


def _model(model: Any) -> dict[str, str] | None:
    if model is None:
        return None
    if not isinstance(model, dict) or not model.get("name") or model.get("version") in (None, ""):
        raise VersioningError(
            f"model must be {{'name': <registered model>, 'version': <version>}}, got {model!r}"
        )
    return {"name": str(model["name"]), "version": str(model["version"])}


def _artifact_sha256(artifact: str | os.PathLike[str] | None) -> str | None:
    if artifact is None:
        return None
    from kepler.runtimes.manifest import MANIFEST_NAME, read_manifest

    path = Path(artifact)
    manifest = path if path.name == MANIFEST_NAME else path / MANIFEST_NAME
    if not manifest.is_file():
        raise VersioningError(f"{manifest}: no such file; pass the folder of a compiled artifact")
    try:
        sha = read_manifest(manifest).sha256
    except ArtifactError as exc:
        raise VersioningError(str(exc)) from None
    if len(sha) != 64:
        raise VersioningError(f"{manifest}: no sha256 in the manifest; recompile the artifact")
    return sha


def _feature_pipeline(project: Project, feature_pipeline: Any) -> str | None:
    if feature_pipeline is None:
        return None
    from kepler.versioning.features import FeaturePipeline, get_pipeline

    if isinstance(feature_pipeline, FeaturePipeline):
        feature_pipeline = feature_pipeline.pipeline_id
    if not isinstance(feature_pipeline, str) or feature_pipeline.count("@") != 1:
        raise VersioningError(f"feature_pipeline must be 'name@version', got {feature_pipeline!r}")
    name, version = feature_pipeline.split("@")
    return get_pipeline(name, version, project=project).pipeline_id


def _store_missing(project: Project) -> bool:
    """True when the tracking URI is a SQLite file that does not exist yet (so it holds no run)."""
    uri = project.tracking_uri
    return uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).exists()


def _client(project: Project) -> Any:
    return project.mlflow_client()


def _raise_unreachable(project: Project, exc: Exception) -> None:
    """Raises the EndpointError that ``exc`` means when the tracking store cannot be reached or refuses."""
    from kepler.versioning.endpoints import endpoint_error

    error = endpoint_error(exc, project.tracking_uri, project.s3_endpoint)
    if error is not None:
        raise error from None


def _mlflow_run(
    project: Project, experiment_name: str | None, run_id: str | None
) -> tuple[str | None, str | None]:
    """(run id, experiment name): the given run, or the latest top-level run of the experiment, or Nones."""
    if run_id is None and (experiment_name is None or _store_missing(project)):
        return None, experiment_name
    from mlflow.exceptions import MlflowException

    client = _client(project)
    try:
        if run_id is not None:
            run = client.get_run(run_id)
            name = client.get_experiment(run.info.experiment_id).name
            if experiment_name is not None and experiment_name != name:
                raise VersioningError(
                    f"MLflow run {run_id} belongs to experiment {name!r}, not {experiment_name!r}; "
                    f"pass the right experiment or leave it out"
                )
            return run_id, name
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None:
            return None, experiment_name
        runs = client.search_runs(
            [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=200
        )
    except MlflowException as exc:
        _raise_unreachable(project, exc)
        what = f"run {run_id}" if run_id is not None else f"experiment {experiment_name!r}"
        raise VersioningError(
            f"MLflow {what}: {exc.message.splitlines()[0][:200]}; check the id or name "
            f"(tracking URI {redact(project.tracking_uri)})"
        ) from None
    top = next((r for r in runs if "mlflow.parentRunId" not in r.data.tags), runs[0] if runs else None)
    return (top.info.run_id if top is not None else None), experiment_name


def _check_model(project: Project, model: dict[str, str] | None) -> None:
    if model is None:
        return
    from mlflow.exceptions import MlflowException

    if _store_missing(project):
        raise VersioningError(
            f"registered model {model['name']} version {model['version']} does not exist "
            f"(the project has no MLflow store yet); register the model first"
        )
    try:
        _client(project).get_model_version(model["name"], model["version"])
    except MlflowException as exc:
        _raise_unreachable(project, exc)
        raise VersioningError(
            f"registered model {model['name']} version {model['version']} does not exist in "
            f"{redact(project.tracking_uri)}; register it first or fix the name/version"
        ) from None


def _environment() -> dict[str, Any]:
    from kepler.compilers.environment import environment

    env = environment()
    libraries = dict(env.get("libraries", {}))
    for name in _EXTRA_LIBRARIES:
        try:
            libraries[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            libraries[name] = None
    return {**env, "libraries": libraries}


# --------------------------------------------------------------------------- public API


def create_unified_version(
    version_name: str,
    data_paths: list[str | os.PathLike[str]] | None = None,
    experiment_name: str | None = None,
    metadata: dict[str, Any] | None = None,
    *,
    mlflow_run_id: str | None = None,
    model: dict[str, Any] | None = None,
    artifact: str | os.PathLike[str] | None = None,
    feature_pipeline: Any = None,
    build_config: dict[str, Any] | None = None,
    project: Project | None = None,
) -> UnifiedVersion:
    """Records a unified version: git commit + DVC data + MLflow run/model + artifact + features + build.

    Args:
        version_name: The version's name (unique in the project).
        data_paths: Data files inside the project; each is versioned with
            :func:`~kepler.versioning.data_versions.version_data` unless these bytes already are.
        experiment_name: MLflow experiment whose latest top-level run is recorded (None when the
            experiment or any run is missing).
        metadata: JSON values kept with the version.
        mlflow_run_id: The run to record instead of looking one up (must exist).
        model: ``{"name": ..., "version": ...}`` of an MLflow registered model version (must exist).
        artifact: A compiled artifact folder (or its manifest.json); its sha256 is recorded.
        feature_pipeline: ``"name@version"`` (or a FeaturePipeline) of a declared feature pipeline.
        build_config: Estimator, hyperparameters, seed, target profile... (JSON values).
        project: The project; default the one containing the working directory.

    Raises:
        ProjectNotFoundError: not inside a project.
        VersioningError: the name is taken or invalid; a data path, run, model, artifact or pipeline
            is missing or bad.
    """
    project = current(project)
    check_name(version_name, "unified version name")
    metadata = check_metadata(metadata)
    build = check_metadata(build_config, "build_config") if build_config is not None else None
    paths = _data_paths(data_paths)
    model_ref = _model(model)
    artifact_sha = _artifact_sha256(artifact)
    pipeline_id = _feature_pipeline(project, feature_pipeline)
    store = project.store
    with store.lock(KIND):
        if store.exists(KIND, version_name):
            raise VersioningError(
                f"unified version {version_name!r} exists; choose another name "
                f"(list them with `kepler versioning list-unified`)"
            )
        run_id, experiment = _mlflow_run(project, experiment_name, mlflow_run_id)
        _check_model(project, model_ref)
        data = []
        for path in paths:
            version = version_data(path, project=project)
            data.append({"path": version.file_path, "md5": version.md5, "data_version": version.version_id})
        with store.lock(GIT_LOCK):
            commit = gitrepo.head(project.root)
            dirty = bool(
                gitrepo.git(project.root, "status", "--porcelain", "--untracked-files=no", check=False)
            )
        unified = UnifiedVersion(
            version_id=version_name,
            git_commit=commit,
            git_dirty=dirty,
            dvc_data_version=data[0]["md5"] if data else None,
            data=data,
            mlflow_run_id=run_id,
            experiment_name=experiment,
            model=model_ref,
            artifact_sha256=artifact_sha,
            feature_pipeline=pipeline_id,
            build_config=build,
            environment=_environment(),
            metadata=metadata,
            created_at=now(),
        )
        record = store.write(KIND, version_name, unified.to_dict())
        commit_paths(project, [record], f"kepler: unified version {version_name}")
    return unified


def list_unified_versions(*, project: Project | None = None) -> list[UnifiedVersion]:
    """Every unified version of the project, oldest first."""
    project = current(project)
    records = [UnifiedVersion.from_dict(r) for r in project.store.all(KIND)]
    return sorted(records, key=lambda v: (v.created_at, v.version_id))


def get_unified_version(name: str, *, project: Project | None = None) -> UnifiedVersion:
    """One unified version by name.

    Raises:
        VersioningError: no such version.
    """
    project = current(project)
    return UnifiedVersion.from_dict(
        project.store.read(
            KIND,
            check_name(name, "unified version name"),
            missing=f"unknown unified version {name!r}; list them with `kepler versioning list-unified`",
        )
    )
