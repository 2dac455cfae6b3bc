"""Recording a kepler build inside a project: data version, MLflow runs and model, unified version, probe set."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from kepler.versioning import gitrepo
from kepler.versioning.clock import now
from kepler.versioning.project import Project

CHILD_RUN_BATCH = 100


def _finite(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}


def _params(values: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v)[:500] for k, v in values.items()}


def probe_record(artifact_path: Path, name: str) -> dict[str, Any]:
    """The probe rows stored with an artifact and the artifact's own predictions on them."""
    from kepler.runtimes import load

    predictor = load(artifact_path)
    rows = predictor.artifact.probe() or {}
    outputs = predictor.run(rows)
    return {"version": name, "rows": rows,
            "outputs": {k: v.tolist() for k, v in outputs.items()},
            "artifact_sha256": predictor.manifest["sha256"], "created_at": now()}


def _log_trials(client: Any, experiment_id: str, parent_id: str, trials: list[dict[str, Any]]) -> None:
    from mlflow.entities import Metric, Param, RunTag

    stamp = 0
    for trial in trials:
        run = client.create_run(experiment_id, tags={"mlflow.parentRunId": parent_id,
                                                     "mlflow.runName": f"trial-{trial['number']:03d}-{trial['family']}",
                                                     "kepler.compliant": str(trial["compliant"])})
        metrics = _finite({"val_score": trial.get("val_score"), "p99_ms": trial.get("p99_ms"),
                           "size_mb": trial.get("size_mb")})
        params = _params({"family": trial["family"], **trial.get("config", {})})
        client.log_batch(run.info.run_id, metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()],
                         params=[Param(k, v) for k, v in params.items()],
                         tags=[RunTag("kepler.error", trial["error"][:500])] if trial.get("error") else [])
        client.set_terminated(run.info.run_id, "FINISHED")


def track_build(project: Project, report: dict[str, Any], build_path: Path, data_path: str | os.PathLike[str] | None,
                *, model_line: str | None = None) -> dict[str, Any]:
    """Records a finished build in the project and returns what was recorded.

    * the data file becomes a DVC data version (identical content is reused);
    * an MLflow run holds the build's parameters, metrics and reports, with one child run per trial;
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
    mlflow.set_tracking_uri(project.tracking_uri)
    client = MlflowClient(tracking_uri=project.tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    experiment_id = (experiment.experiment_id if experiment is not None
                     else client.create_experiment(experiment_name, artifact_location=project.artifact_root))
    commit = gitrepo.head(project.root) or ""
    tags = {"mlflow.source.git.commit": commit, "kepler.version": __version__, "kepler.build_id": report["build_id"],
            "kepler.kind": kind, "kepler.target": report["target"]["name"],
            "kepler.data_versions": data_version.version_id if data_version else "",
            "mlflow.runName": f"build-{report['build_id']}"}
    artifact_dir = build_path / "artifact"
    manifest = json.loads((artifact_dir / "manifest.json").read_text(encoding="utf-8"))
    with mlflow.start_run(experiment_id=experiment_id, tags=tags) as run:
        params = {"estimator": report.get("best_estimator"), "family": report.get("best_algorithm"),
                  "target": report["target"]["name"], "use_case": report.get("use_case"),
                  "seed": report.get("seed"), "time_budget_s": report.get("time_budget_s"),
                  **{f"model.{k}": v for k, v in (report.get("best_config") or {}).items()}}
        mlflow.log_params(_params({k: v for k, v in params.items() if v is not None}))
        metrics = {f"test_{k}": v for k, v in (report.get("test_metrics") or {}).items()}
        metrics.update({f"budget_{r['budget']}": r["measured"] for r in report.get("constraint_report", [])
                        if r.get("measured") is not None})
        if report.get("validation_score") is not None:
            metrics["validation_score"] = report["validation_score"]
        mlflow.log_metrics(_finite(metrics))
        if data_version is not None:
            dataset = mlflow.data.from_pandas(_frame_head(data_path), source=str(data_path), name=data_version.version_id,
                                              digest=data_version.md5[:36])
            mlflow.log_input(dataset, context="training")
        mlflow.log_artifact(str(build_path / "report.json"))
        mlflow.log_artifact(str(build_path / "report.html"))
        info = mlflow.onnx.log_model(onnx.load(str(artifact_dir / manifest["model_file"])), name="model",
                                     registered_model_name=line, extra_files=[str(artifact_dir / "manifest.json")])
        run_id = run.info.run_id
    if report.get("trials"):
        _log_trials(client, experiment_id, run_id, report["trials"])
    registered = info.registered_model_version
    model = {"name": line, "version": str(registered)} if registered is not None else None

    unified_name = f"build-{report['build_id']}"
    unified = create_unified_version(
        unified_name, data_paths=[str(data_path)] if data_version is not None else None,
        experiment_name=experiment_name, mlflow_run_id=run_id, model=model, artifact=str(artifact_dir),
        build_config={"kind": kind, "family": report.get("best_algorithm"), "estimator": report.get("best_estimator"),
                      "params": report.get("best_config"), "seed": report.get("seed"),
                      "target": report["target"], "use_case": report.get("use_case"),
                      "label": (report.get("data") or {}).get("label"), "task": (report.get("data") or {}).get("task"),
                      "numeric": (report.get("data") or {}).get("numeric_columns"),
                      "categorical": (report.get("data") or {}).get("categorical_columns"),
                      "model_file": report.get("model_file"), "build_id": report["build_id"]},
        metadata={"build_path": str(build_path), "test_metrics": report.get("test_metrics")},
        project=project,
    )
    lineage = _record_lineage(project, data_version, unified_name, line, model)
    store = project.store
    with store.lock("probes"):
        path = store.write("probes", unified_name, probe_record(artifact_dir, unified_name))
    with store.lock("git"):
        gitrepo.commit(project.root, [path], f"kepler: probe set of {unified_name}")
    return {"data_version": data_version.version_id if data_version else None, "mlflow_run_id": run_id,
            "experiment": experiment_name, "registered_model": model, "unified_version": unified.version_id,
            "lineage": lineage, "notes": notes}


def _record_lineage(project: Project, data_version: Any, unified_name: str, line: str,
                    model: dict[str, str] | None) -> list[str]:
    """Adds the data node (once per data version) and the build's model node to the lineage graph."""
    from kepler.versioning.lineage import create_data_lineage, create_model_lineage

    inputs = []
    if data_version is not None:
        create_data_lineage(data_version.version_id, data_version.file_path, {"md5": data_version.md5},
                            project=project)
        inputs.append(data_version.version_id)
    create_model_lineage(unified_name, line, inputs, {"unified_version": unified_name, "registered_model": model},
                         project=project)
    return [*inputs, unified_name]


def _frame_head(path: Any) -> Any:
    from kepler.data import read_table

    return read_table(path).head(1000)
