"""Recording a kepler build inside a project (data version, MLflow runs and model, unified version, probe set),
and a search run inside a caller's MLflow run."""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kepler.build_report import BuildReport, BuildTracking
from kepler.clock import now
from kepler.errors import VersioningError
from kepler.records import Record, Section
from kepler.versioning import gitrepo
from kepler.versioning.project import Project

CHILD_RUN_BATCH = 100


def _finite(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
    }


def _params(values: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v)[:500] for k, v in values.items()}


PROBES = "probes"


@dataclass
class ProbeSet(Record):
    """The probe rows kept with a build's unified version and the artifact's own predictions on them
    (``.kepler/records/probes/<unified version>.json``): what ``kp.reproduce`` compares a rebuild with.

    Schema versions: 1, the record as written before records carried ``schema_version``.

    Attributes:
        version: The unified version.
        rows: Column -> values of the probe rows.
        outputs: Output name -> the artifact's values on them.
        artifact_sha256: The artifact's sha256.
        created_at: UTC time of recording.
    """

    KIND = "probe set"
    ERROR = VersioningError

    version: str
    rows: dict[str, list[Any]]
    outputs: dict[str, list[Any]]
    artifact_sha256: str | None = None
    created_at: str = ""

    @property
    def row_count(self) -> int:
        """How many probe rows there are."""
        return len(next(iter(self.rows.values()), []))


@dataclass
class BuildConfig(Section):
    """How a build made its model: the ``build_config`` of its unified version, what ``kp.reproduce`` retrains
    from (a unified version recorded by hand may hold any other keys, kept in ``extra``).

    Attributes:
        kind: ``search`` or ``model`` (only a search's model can be retrained).
        family: The family chosen.
        estimator: The final estimator's class name.
        params: The chosen configuration.
        seed: The seed of the split, the search and the model.
        target: The target profile as a dict.
        use_case: The use-case preset.
        label: The label column.
        task: classification or regression.
        numeric: The numeric feature columns.
        categorical: The categorical feature columns.
        model_file: The model compiled (a ``--model`` build).
        build_id: The build.
        class_labels: The labels the model's codes stand for (classification), or None.
    """

    KIND = "build config"
    ERROR = VersioningError

    kind: str | None = None
    family: str | None = None
    estimator: str | None = None
    params: dict[str, Any] | None = None
    seed: int | None = None
    target: dict[str, Any] | str | None = None
    use_case: str | None = None
    label: str | None = None
    task: str | None = None
    numeric: list[str] | None = None
    categorical: list[str] | None = None
    model_file: str | None = None
    build_id: str | None = None
    class_labels: list[Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


def probe_record(artifact_path: Path, name: str) -> ProbeSet:
    """The probe rows stored with an artifact and the artifact's own predictions on them."""
    from kepler.runtimes import load

    predictor = load(artifact_path)
    rows = predictor.artifact.probe() or {}
    outputs = predictor.run(rows)
    return ProbeSet(
        version=name,
        rows=rows,
        outputs={k: v.tolist() for k, v in outputs.items()},
        artifact_sha256=predictor.manifest.sha256,
        created_at=now(),
    )


def read_probes(project: Project, name: str) -> ProbeSet:
    """The probe set of a unified version.

    Raises:
        VersioningError: none recorded, or an unreadable record.
    """
    return ProbeSet.from_dict(
        project.store.read(
            PROBES, name, missing=f"unified version {name!r} has no probe set; only kepler builds record one"
        )
    )


def _search_params(report: BuildReport) -> dict[str, str]:
    """The parameters of a search or build run: the chosen model, its config and what the search was given."""
    params = {
        "estimator": report.best_estimator,
        "family": report.best_algorithm,
        "target": report.target_name,
        "use_case": report.use_case,
        "seed": report.seed,
        "time_budget_s": report.time_budget_s,
        **{f"model.{k}": v for k, v in (report.best_config or {}).items()},
    }
    return _params({k: v for k, v in params.items() if v is not None})


def _search_metrics(report: BuildReport) -> dict[str, float]:
    """The metrics of a search or build run: held-out test metrics, measured budgets, validation score."""
    metrics: dict[str, Any] = {f"test_{k}": v for k, v in (report.test_metrics or {}).items()}
    metrics.update(
        {
            f"budget_{r['budget']}": r["measured"]
            for r in report.constraint_report or []
            if r.get("measured") is not None
        }
    )
    if report.validation_score is not None:
        metrics["validation_score"] = report.validation_score
    return _finite(metrics)


def _log_trials(
    client: Any,
    experiment_id: str,
    parent_id: str,
    trials: list[dict[str, Any]],
    created: list[str] | None = None,
) -> None:
    """One FINISHED child run of ``parent_id`` per trial; each run's id goes into ``created`` as soon as it exists."""
    from mlflow.entities import Metric, Param, RunTag

    stamp = 0
    for trial in trials:
        run = client.create_run(
            experiment_id,
            tags={
                "mlflow.parentRunId": parent_id,
                "mlflow.runName": f"trial-{trial['number']:03d}-{trial['family']}",
                "kepler.compliant": str(trial["compliant"]),
            },
        )
        if created is not None:
            created.append(run.info.run_id)
        metrics = _finite(
            {
                "val_score": trial.get("val_score"),
                "p99_ms": trial.get("p99_ms"),
                "size_mb": trial.get("size_mb"),
            }
        )
        params = _params({"family": trial["family"], **trial.get("config", {})})
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag("kepler.error", trial["error"][:500])] if trial.get("error") else [],
        )
        client.set_terminated(run.info.run_id, "FINISHED")


@dataclass
class _Written:
    """What a build has recorded so far, so that a failure can take it back (:func:`_roll_back`).

    Attributes:
        experiment_id: The MLflow experiment of the runs.
        runs: MLflow runs created (the build's run first, then its trials').
        model: The registered model version ``(name, version)``.
        new_line: True when the build created the registered model itself.
        records: Kepler records written (unified version, lineage node, probe set).
    """

    experiment_id: str | None = None
    runs: list[str] = field(default_factory=list)
    model: tuple[str, str] | None = None
    new_line: bool = False
    records: list[Path] = field(default_factory=list)


def check_services(project: Project) -> None:
    """Checks, before a build records anything, that its tracking server and S3 remote answer.

    Raises:
        EndpointError: the tracking server (an http(s) tracking URI) or the DVC remote on S3 cannot be
            reached or refuses.
    """
    from kepler.versioning.data_versions import check_remote
    from kepler.versioning.endpoints import check_tracking_server

    check_tracking_server(project.tracking_uri)
    check_remote(project)


def track_build(
    project: Project,
    report: BuildReport,
    build_path: Path,
    data_path: str | os.PathLike[str] | None,
    *,
    model_line: str | None = None,
) -> BuildTracking:
    """Records a finished build in the project and returns what was recorded.

    * the data file becomes a DVC data version (identical content is reused);
    * an MLflow run holds the build's parameters, metrics and reports, with one child run per trial; inside
      a caller's active run (``track_experiment``, ``mlflow.start_run``) it is a child of that run, in its
      experiment and store, and the trials stay under the search run that :func:`track_search` recorded;
    * the ONNX artifact is logged with ``mlflow.onnx.log_model`` and registered as a model version;
    * a unified version ties git commit, data md5, run, model version, artifact sha256 and build config;
    * the probe rows and the artifact's predictions on them are stored for ``kp.reproduce``.

    All or nothing: the tracking server and the S3 remote are checked before anything is written; the data
    version is complete on its own (a rerun reuses it); the build's run is FINISHED only once its trials are
    logged, and the Kepler records, which name the run, are written only after that. When a step fails, what the
    build recorded is taken back: its Kepler records are removed (and the removal committed), its registered model
    version and runs deleted in MLflow. A server that died cannot be told: its run then stays FAILED or RUNNING,
    and no Kepler record names it.

    Raises:
        EndpointError: the tracking server or the S3 endpoint cannot be reached or refuses.
    """
    import mlflow

    from kepler.versioning.data_versions import version_data
    from kepler.versioning.endpoints import service_errors

    check_services(project)
    data_version = None
    notes: list[str] = []
    if data_path is not None:
        try:
            project.relative(data_path)
        except Exception as exc:  # outside the project: the build stands, its data is not versioned
            notes.append(f"data not versioned: {exc}")
        else:
            data_version = version_data(data_path, project=project)

    line = model_line or f"{report.use_case or 'kepler'}-{report.target_name}".replace("_", "-")
    written = _Written()
    uri = mlflow.get_tracking_uri() if mlflow.active_run() is not None else project.tracking_uri
    try:
        with service_errors(uri, project.s3_endpoint):
            run_id, experiment_name, model = _record_run(
                project, report, build_path, data_path, data_version, line, written
            )
        unified_name = f"build-{report.build_id}"
        unified = _record_version(
            project, report, build_path, data_path, data_version, run_id, experiment_name, model, written
        )
        lineage = _record_lineage(project, data_version, unified_name, line, model)
        written.records.append(project.store.path("lineage", unified_name))
        store = project.store
        with store.lock("probes"):
            path = store.write(
                PROBES, unified_name, probe_record(build_path / "artifact", unified_name).to_dict()
            )
            written.records.append(path)
        with store.lock("git"):
            gitrepo.commit(project.root, [path], f"kepler: probe set of {unified_name}")
    except BaseException as exc:
        _roll_back(project, uri, written, f"build {report.build_id} failed: {type(exc).__name__}")
        raise
    return BuildTracking(
        data_version=data_version.version_id if data_version else None,
        mlflow_run_id=run_id,
        experiment=experiment_name,
        registered_model=model,
        unified_version=unified.version_id,
        lineage=lineage,
        notes=notes,
    )


def _record_run(
    project: Project,
    report: BuildReport,
    build_path: Path,
    data_path: Any,
    data_version: Any,
    line: str,
    written: _Written,
) -> tuple[str, str, dict[str, str] | None]:
    """The build's MLflow run, its trials' child runs and its registered model version.

    Returns:
        (run id, experiment name, ``{"name", "version"}`` of the model version or None).
    """
    import mlflow
    import onnx
    from mlflow.exceptions import MlflowException

    from kepler import __version__
    from kepler.runtimes.manifest import MANIFEST_NAME, read_manifest

    kind = report.kind or "search"
    experiment_name = f"kepler-build-{report.use_case or 'default'}"
    commit = gitrepo.head(project.root) or ""
    tags = {
        "mlflow.source.git.commit": commit,
        "kepler.version": __version__,
        "kepler.build_id": str(report.build_id),
        "kepler.kind": kind,
        "kepler.target": str(report.target_name),
        "kepler.data_versions": data_version.version_id if data_version else "",
        "mlflow.runName": f"build-{report.build_id}",
    }
    search_run = (report.mlflow or {}).get("search_run_id")
    if search_run:
        tags["kepler.search_run_id"] = search_run
    active = mlflow.active_run()
    if active is not None:
        # Inside a caller's run (track_experiment, mlflow.start_run): the build is its child, in its
        # experiment and tracking store.
        from kepler.versioning.experiments import active_run_store

        active, client = active_run_store()
        experiment_id = active.info.experiment_id
        experiment_name = client.get_experiment(experiment_id).name
    else:
        mlflow.set_tracking_uri(project.tracking_uri)
        client = project.mlflow_client()
        from kepler.versioning.experiments import _experiment_id

        experiment_id = _experiment_id(client, experiment_name, project.artifact_root)
    try:
        client.get_registered_model(line)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        written.new_line = True
    artifact_dir = build_path / "artifact"
    manifest = read_manifest(artifact_dir)
    written.experiment_id = experiment_id
    run = mlflow.start_run(experiment_id=experiment_id, tags=tags, nested=active is not None)
    run_id = run.info.run_id
    written.runs.append(run_id)
    mlflow.log_params(_search_params(report))
    mlflow.log_metrics(_search_metrics(report))
    if data_version is not None:
        # mlflow.data defines its from_* constructors at import time, so mypy cannot see them.
        dataset = mlflow.data.from_pandas(  # type: ignore[attr-defined]
            _frame_head(data_path),
            source=str(data_path),
            name=data_version.version_id,
            digest=data_version.md5[:36],
        )
        mlflow.log_input(dataset, context="training")
    mlflow.log_artifact(str(build_path / "report.json"))
    mlflow.log_artifact(str(build_path / "report.html"))
    info = mlflow.onnx.log_model(
        onnx.load(str(artifact_dir / manifest.model_file)),
        name="model",
        registered_model_name=line,
        extra_files=[str(artifact_dir / MANIFEST_NAME)],
        # Named, so MLflow does not start a process to infer them (1.7-2.1 s per build).
        pip_requirements=mlflow.onnx.get_default_pip_requirements(),
    )
    registered = info.registered_model_version
    if registered is not None:
        written.model = (line, str(registered))
    if report.trials and not search_run:  # else the search run already holds them
        _log_trials(client, experiment_id, run_id, report.trials, written.runs)
    mlflow.end_run("FINISHED")  # last: a FINISHED build run has all its trials
    model = {"name": line, "version": str(registered)} if registered is not None else None
    return run_id, experiment_name, model


def _record_version(
    project: Project,
    report: BuildReport,
    build_path: Path,
    data_path: Any,
    data_version: Any,
    run_id: str,
    experiment_name: str,
    model: dict[str, str] | None,
    written: _Written,
) -> Any:
    """The build's unified version (its record is noted in ``written`` before it is written)."""
    from kepler.versioning.unified import create_unified_version

    unified_name = f"build-{report.build_id}"
    table = report.data
    config = BuildConfig(
        kind=report.kind or "search",
        family=report.best_algorithm,
        estimator=report.best_estimator,
        params=report.best_config,
        seed=report.seed,
        target=report.target,
        use_case=report.use_case,
        label=table.label if table else None,
        task=table.task if table else None,
        numeric=table.numeric_columns if table else None,
        categorical=table.categorical_columns if table else None,
        model_file=report.model_file,
        build_id=report.build_id,
        class_labels=report.class_labels,
    )
    path = project.store.path("unified", unified_name)
    existed = path.exists()
    unified = create_unified_version(
        unified_name,
        data_paths=[str(data_path)] if data_version is not None else None,
        experiment_name=experiment_name,
        mlflow_run_id=run_id,
        model=model,
        artifact=str(build_path / "artifact"),
        build_config=config.to_dict(),
        metadata={"build_path": str(build_path), "test_metrics": report.test_metrics},
        project=project,
    )
    if not existed:
        written.records.append(path)
    return unified


def _roll_back(project: Project, uri: str, written: _Written, reason: str) -> None:
    """Takes back what a failed build recorded (see :func:`track_build`); never raises.

    Kepler's records first (local: always possible), then MLflow's, each call made once without retries and
    only when the tracking store still answers, so a dead server costs a second, not minutes.
    """
    import mlflow

    from kepler.versioning.endpoints import check_tracking_server, fail_fast

    removed = [path for path in written.records if path.exists()]
    for path in removed:
        path.unlink()
    if removed:
        try:
            with project.store.lock("git"):
                tracked = gitrepo.git(
                    project.root, "ls-files", "--", *map(str, removed), check=False
                ).splitlines()
                if tracked:
                    gitrepo.commit(
                        project.root, [project.root / t for t in tracked], f"kepler: roll back ({reason})"
                    )
        except Exception:  # the files are gone; a commit that failed leaves their removal for the next one
            pass
    active = mlflow.active_run()
    with fail_fast():
        if active is not None and written.runs and active.info.run_id == written.runs[0]:
            try:
                mlflow.end_run("FAILED")  # off the stack first; telling the server may fail
            except Exception:
                pass
        if not (written.runs or written.model):
            return
        try:
            check_tracking_server(uri)
        except Exception:
            return
        client = project.mlflow_client() if active is None or uri == project.tracking_uri else None
        if client is None:
            from mlflow import MlflowClient

            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        steps: list[tuple[Any, tuple[str, ...]]] = []
        if written.model is not None:
            steps.append((client.delete_model_version, written.model))
            if written.new_line:
                steps.append((client.delete_registered_model, (written.model[0],)))
        if written.runs and written.experiment_id is not None:
            try:  # MLflow 3 keeps a logged model beside the run: the ONNX model of this build
                models = client.search_logged_models(
                    [written.experiment_id], filter_string=f"source_run_id = '{written.runs[0]}'"
                )
                steps.extend((client.delete_logged_model, (m.model_id,)) for m in models)
            except Exception:
                pass
        steps.extend((client.delete_run, (run_id,)) for run_id in reversed(written.runs))
        for call, args in steps:
            try:
                call(*args)
            except Exception:
                pass


def track_search(result: dict[str, Any]) -> dict[str, Any]:
    """Records a finished search as a child run of the caller's active MLflow run, if there is one.

    The run (``automl-search-<family>``) holds the search's parameters (chosen family and estimator,
    config, metric, seed, budgets), its metrics (held-out test metrics, measured budgets, validation
    score, trials, seconds) and Kepler's run tags; each trial is a child run of it. Runs go to the
    tracking store and experiment of the active run (the project's store under ``track_experiment``),
    and no artifact is logged, so no folder appears. Without an active run nothing is recorded and no
    store is opened.

    Args:
        result: The search's result dict (``kp.automl.automl_pipeline``).

    Returns:
        ``{}`` when no run is active, else ``{"mlflow": {"search_run_id", "parent_run_id", "experiment_id"}}``.

    Raises:
        VersioningError: the tracking store refused the runs.
    """
    mlflow = sys.modules.get("mlflow")
    if mlflow is None or mlflow.active_run() is None:  # no run can be active before mlflow is imported
        return {}
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException

    from kepler import __version__
    from kepler.errors import ProjectNotFoundError
    from kepler.versioning.experiments import active_run_store, run_tags
    from kepler.versioning.project import current

    try:
        tags = run_tags(current())
    except ProjectNotFoundError:
        tags = {"kepler.version": __version__}
    active, client = active_run_store()
    parent_id, experiment_id = active.info.run_id, active.info.experiment_id
    search = BuildReport.from_dict({k: v for k, v in result.items() if k != "artifact"})  # its keys, typed
    tags.update(
        {
            "mlflow.parentRunId": parent_id,
            "mlflow.runName": f"automl-search-{search.best_algorithm}",
            "kepler.kind": "automl-search",
            "kepler.target": str(search.target_name),
            "kepler.deployment_ready": str(bool(search.deployment_ready)),
        }
    )
    params = {
        **_search_params(search),
        **_params(
            {
                "metric": search.metric,
                "interpretability_required": search.interpretability_required,
                "families": ",".join(search.families or []),
                **{f"budget.{name}": budget.get("limit") for name, budget in (search.budgets or {}).items()},
            }
        ),
    }
    trials = search.trials or []
    metrics = {
        **_search_metrics(search),
        **_finite(
            {
                "trials": len(trials),
                "compliant_trials": sum(1 for t in trials if t.get("compliant")),
                "search_seconds": search.search_seconds,
                "final_seconds": search.final_seconds,
                "total_seconds": search.total_seconds,
            }
        ),
    }
    run_id = None
    try:
        run_id = client.create_run(experiment_id, tags=tags).info.run_id
        stamp = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
        )
        _log_trials(client, experiment_id, run_id, trials)
        client.set_terminated(run_id, "FINISHED")
    except MlflowException as exc:
        if run_id is not None:
            try:
                client.set_terminated(run_id, "FAILED")
            except MlflowException:
                pass
        raise VersioningError(
            f"recording the search under MLflow run {parent_id} failed "
            f"({str(exc).splitlines()[0][:200]}); check the tracking store"
        ) from None
    return {"mlflow": {"search_run_id": run_id, "parent_run_id": parent_id, "experiment_id": experiment_id}}


def _record_lineage(
    project: Project, data_version: Any, unified_name: str, line: str, model: dict[str, str] | None
) -> list[str]:
    """Adds the data node (once per data version) and the build's model node to the lineage graph."""
    from kepler.versioning.lineage import create_data_lineage, create_model_lineage

    inputs = []
    if data_version is not None:
        create_data_lineage(
            data_version.version_id, data_version.file_path, {"md5": data_version.md5}, project=project
        )
        inputs.append(data_version.version_id)
    create_model_lineage(
        unified_name,
        line,
        inputs,
        {"unified_version": unified_name, "registered_model": model},
        project=project,
    )
    return [*inputs, unified_name]


def _frame_head(path: Any) -> Any:
    from kepler.data import read_table

    return read_table(path).head(1000)
