"""Recording a kepler build inside a project (data version, MLflow runs and model, unified version, probe set),
and a search run inside a caller's MLflow run."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from kepler.versioning import gitrepo
from kepler.versioning.clock import now
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


def probe_record(artifact_path: Path, name: str) -> dict[str, Any]:
    """The probe rows stored with an artifact and the artifact's own predictions on them."""
    from kepler.runtimes import load

    predictor = load(artifact_path)
    rows = predictor.artifact.probe() or {}
    outputs = predictor.run(rows)
    return {
        "version": name,
        "rows": rows,
        "outputs": {k: v.tolist() for k, v in outputs.items()},
        "artifact_sha256": predictor.manifest["sha256"],
        "created_at": now(),
    }


def _target_name(report: dict[str, Any]) -> str:
    target = report.get("target")
    return str(target["name"] if isinstance(target, dict) else target)


def _search_params(report: dict[str, Any]) -> dict[str, str]:
    """The parameters of a search or build run: the chosen model, its config and what the search was given."""
    params = {
        "estimator": report.get("best_estimator"),
        "family": report.get("best_algorithm"),
        "target": _target_name(report),
        "use_case": report.get("use_case"),
        "seed": report.get("seed"),
        "time_budget_s": report.get("time_budget_s"),
        **{f"model.{k}": v for k, v in (report.get("best_config") or {}).items()},
    }
    return _params({k: v for k, v in params.items() if v is not None})


def _search_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The metrics of a search or build run: held-out test metrics, measured budgets, validation score."""
    metrics = {f"test_{k}": v for k, v in (report.get("test_metrics") or {}).items()}
    metrics.update(
        {
            f"budget_{r['budget']}": r["measured"]
            for r in report.get("constraint_report", [])
            if r.get("measured") is not None
        }
    )
    if report.get("validation_score") is not None:
        metrics["validation_score"] = report["validation_score"]
    return _finite(metrics)


def _log_trials(client: Any, experiment_id: str, parent_id: str, trials: list[dict[str, Any]]) -> None:
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


def track_build(
    project: Project,
    report: dict[str, Any],
    build_path: Path,
    data_path: str | os.PathLike[str] | None,
    *,
    model_line: str | None = None,
) -> dict[str, Any]:
    """Records a finished build in the project and returns what was recorded.

    * the data file becomes a DVC data version (identical content is reused);
    * an MLflow run holds the build's parameters, metrics and reports, with one child run per trial; inside
      a caller's active run (``track_experiment``, ``mlflow.start_run``) it is a child of that run, in its
      experiment and store, and the trials stay under the search run that :func:`track_search` recorded;
    * the ONNX artifact is logged with ``mlflow.onnx.log_model`` and registered as a model version;
    * a unified version ties git commit, data md5, run, model version, artifact sha256 and build config;
    * the probe rows and the artifact's predictions on them are stored for ``kp.reproduce``.
    """
    import mlflow
    import onnx
    from mlflow import MlflowClient

    from kepler import __version__
    from kepler.versioning.data_versions import version_data
    from kepler.versioning.unified import create_unified_version

    data_version = None
    notes: list[str] = []
    if data_path is not None:
        try:
            project.relative(data_path)
        except Exception as exc:  # outside the project: the build stands, its data is not versioned
            notes.append(f"data not versioned: {exc}")
        else:
            data_version = version_data(data_path, project=project)

    kind = report.get("kind", "search")
    line = model_line or f"{report.get('use_case') or 'kepler'}-{report['target']['name']}".replace("_", "-")
    experiment_name = f"kepler-build-{report.get('use_case') or 'default'}"
    commit = gitrepo.head(project.root) or ""
    tags = {
        "mlflow.source.git.commit": commit,
        "kepler.version": __version__,
        "kepler.build_id": report["build_id"],
        "kepler.kind": kind,
        "kepler.target": report["target"]["name"],
        "kepler.data_versions": data_version.version_id if data_version else "",
        "mlflow.runName": f"build-{report['build_id']}",
    }
    search_run = (report.get("mlflow") or {}).get("search_run_id")
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
        client = MlflowClient(tracking_uri=project.tracking_uri)
        experiment = client.get_experiment_by_name(experiment_name)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else client.create_experiment(experiment_name, artifact_location=project.artifact_root)
        )
    artifact_dir = build_path / "artifact"
    manifest = json.loads((artifact_dir / "manifest.json").read_text(encoding="utf-8"))
    with mlflow.start_run(experiment_id=experiment_id, tags=tags, nested=active is not None) as run:
        mlflow.log_params(_search_params(report))
        mlflow.log_metrics(_search_metrics(report))
        if data_version is not None:
            dataset = mlflow.data.from_pandas(
                _frame_head(data_path),
                source=str(data_path),
                name=data_version.version_id,
                digest=data_version.md5[:36],
            )
            mlflow.log_input(dataset, context="training")
        mlflow.log_artifact(str(build_path / "report.json"))
        mlflow.log_artifact(str(build_path / "report.html"))
        info = mlflow.onnx.log_model(
            onnx.load(str(artifact_dir / manifest["model_file"])),
            name="model",
            registered_model_name=line,
            extra_files=[str(artifact_dir / "manifest.json")],
        )
        run_id = run.info.run_id
    if report.get("trials") and not search_run:  # else the search run already holds them
        _log_trials(client, experiment_id, run_id, report["trials"])
    registered = info.registered_model_version
    model = {"name": line, "version": str(registered)} if registered is not None else None

    unified_name = f"build-{report['build_id']}"
    unified = create_unified_version(
        unified_name,
        data_paths=[str(data_path)] if data_version is not None else None,
        experiment_name=experiment_name,
        mlflow_run_id=run_id,
        model=model,
        artifact=str(artifact_dir),
        build_config={
            "kind": kind,
            "family": report.get("best_algorithm"),
            "estimator": report.get("best_estimator"),
            "params": report.get("best_config"),
            "seed": report.get("seed"),
            "target": report["target"],
            "use_case": report.get("use_case"),
            "label": (report.get("data") or {}).get("label"),
            "task": (report.get("data") or {}).get("task"),
            "numeric": (report.get("data") or {}).get("numeric_columns"),
            "categorical": (report.get("data") or {}).get("categorical_columns"),
            "model_file": report.get("model_file"),
            "build_id": report["build_id"],
            "class_labels": report.get("class_labels"),
        },
        metadata={"build_path": str(build_path), "test_metrics": report.get("test_metrics")},
        project=project,
    )
    lineage = _record_lineage(project, data_version, unified_name, line, model)
    store = project.store
    with store.lock("probes"):
        path = store.write("probes", unified_name, probe_record(artifact_dir, unified_name))
    with store.lock("git"):
        gitrepo.commit(project.root, [path], f"kepler: probe set of {unified_name}")
    return {
        "data_version": data_version.version_id if data_version else None,
        "mlflow_run_id": run_id,
        "experiment": experiment_name,
        "registered_model": model,
        "unified_version": unified.version_id,
        "lineage": lineage,
        "notes": notes,
    }


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
    from kepler.errors import ProjectNotFoundError, VersioningError
    from kepler.versioning.experiments import active_run_store, run_tags
    from kepler.versioning.project import current

    try:
        tags = run_tags(current())
    except ProjectNotFoundError:
        tags = {"kepler.version": __version__}
    active, client = active_run_store()
    parent_id, experiment_id = active.info.run_id, active.info.experiment_id
    tags.update(
        {
            "mlflow.parentRunId": parent_id,
            "mlflow.runName": f"automl-search-{result.get('best_algorithm')}",
            "kepler.kind": "automl-search",
            "kepler.target": _target_name(result),
            "kepler.deployment_ready": str(bool(result.get("deployment_ready"))),
        }
    )
    params = {
        **_search_params(result),
        **_params(
            {
                "metric": result.get("metric"),
                "interpretability_required": result.get("interpretability_required"),
                "families": ",".join(result.get("families") or []),
                **{
                    f"budget.{name}": budget.get("limit")
                    for name, budget in (result.get("budgets") or {}).items()
                },
            }
        ),
    }
    trials = result.get("trials") or []
    metrics = {
        **_search_metrics(result),
        **_finite(
            {
                "trials": len(trials),
                "compliant_trials": sum(1 for t in trials if t.get("compliant")),
                "search_seconds": result.get("search_seconds"),
                "final_seconds": result.get("final_seconds"),
                "total_seconds": result.get("total_seconds"),
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
