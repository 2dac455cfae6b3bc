"""Monitoring runs on record: an MLflow run under the release's model line, and a lineage node on what was checked.

Every ``kepler monitor`` check of a release (drift, traffic, performance, pipeline, deployments) is kept
twice in the project:

* an MLflow run in the experiment ``kepler-monitoring-<model line>`` of the project's tracking store (the
  store builds record in), named ``monitor-<kind>-<release>``, with the check's figures as metrics (names
  made safe for MLflow: :func:`metric_name`), the report as ``report.json`` (and ``report.html`` when
  there is one), and tags naming the release, its version, model line, registered model version,
  unified version and build run;
* a lineage node of kind ``monitoring`` (id ``monitor-<kind>-<run id>``) whose input is the release's
  node (or the service node checked), so ``get_complete_lineage(<release>)`` lists every check of it.

Outside a Kepler project, or for a check of no release (drift between two files or two data versions),
nothing is recorded and :func:`record_monitoring_run` returns None.

Example::

    report = kp.monitoring.data_drift("pm-1.1", "today.csv")
    run_id = record_monitoring_run("drift", "pm-1.1", drift_metrics(report), report.to_dict())
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kepler.errors import MonitoringError, ProjectNotFoundError, VersioningError

if TYPE_CHECKING:
    from kepler.monitoring.drift import DriftReport

KINDS = ("drift", "traffic", "performance", "pipeline", "deployments")
EXPERIMENT_PREFIX = "kepler-monitoring-"
NODE_PREFIX = "monitor-"
MAX_METRIC_NAME = 250  # MLflow's limit on a metric key
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")  # MLflow accepts letters, digits, _ - . space and /


def metric_name(name: str) -> str:
    """``name`` as an MLflow metric key: characters MLflow refuses become ``_``, cut to 250 characters."""
    safe = _UNSAFE.sub("_", str(name)).strip() or "_"
    return safe[:MAX_METRIC_NAME]


def safe_metrics(metrics: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """The finite numbers of ``metrics`` under MLflow-safe, distinct keys.

    Names that collide once made safe (``temp [C]`` and ``temp (C)``) get ``~2``, ``~3``... in order.

    Returns:
        ``(metrics, renamed)``: the metrics by safe key, and safe key -> original name for every key
        that differs from its original.
    """
    out: dict[str, float] = {}
    renamed: dict[str, str] = {}
    for name, value in metrics.items():
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            continue
        key = metric_name(name)
        if key in out:
            stem, count = key[: MAX_METRIC_NAME - 6], 2
            while f"{stem}~{count}" in out:
                count += 1
            key = f"{stem}~{count}"
        out[key] = float(value)
        if key != name:
            renamed[key] = str(name)
    return out, renamed


def drift_metrics(report: DriftReport, prefix: str = "") -> dict[str, float]:
    """A drift report's figures as metrics.

    ``drift_share``, ``dataset_drift`` (0 or 1), ``drifted_columns``, ``tested_columns``, and per row
    ``column.<name>.<method>.statistic`` / ``.p_value`` / ``.drifted`` (a statistic that is infinite is
    left out), each name after ``prefix``.
    """
    metrics: dict[str, float] = {
        f"{prefix}drift_share": float(report.drift_share),
        f"{prefix}dataset_drift": float(report.dataset_drift),
        f"{prefix}drifted_columns": float(len(report.drifted_columns)),
        f"{prefix}tested_columns": float(len(report.tested_columns)),
    }
    for row in report.columns:
        stem = f"{prefix}column.{row.column}.{row.method}"
        if row.statistic is not None:
            metrics[f"{stem}.statistic"] = float(row.statistic)
        if row.p_value is not None:
            metrics[f"{stem}.p_value"] = float(row.p_value)
        metrics[f"{stem}.drifted"] = float(row.drifted)
    return metrics


def find_release(values: Iterable[Any], *, project: Any = None) -> str | None:
    """The first of ``values`` that names a release of the current project (and is no existing file).

    What the drift command records against: ``kepler monitor drift pm-1.1 today.csv`` checked ``pm-1.1``.
    None outside a project, or when none of them is a release.
    """
    from kepler.versioning.project import current

    try:
        project = current(project)
    except ProjectNotFoundError:
        return None
    for value in values:
        if not _is_name(value) or Path(value).exists():
            continue
        if project.store.exists("releases", value):
            return value
    return None


def _is_name(value: Any) -> bool:
    from kepler.versioning.names import check_name

    try:
        check_name(value)
    except VersioningError:
        return False
    return True


def node_id(kind: str, run_id: str) -> str:
    """The lineage node id of a monitoring run."""
    return f"{NODE_PREFIX}{kind}-{run_id}"


def record_monitoring_run(
    kind: str,
    subject: str | None,
    metrics: Mapping[str, float],
    report: Mapping[str, Any],
    html: str | os.PathLike[str] | None = None,
    *,
    series: Mapping[str, Sequence[float | None]] | None = None,
    project: Any = None,
) -> str | None:
    """Records one monitoring run of a release: an MLflow run and a lineage node (see the module notes).

    Args:
        kind: drift, traffic, performance, pipeline or deployments.
        subject: The release checked, or the lineage id of the service node checked; None records nothing.
        metrics: The figures (names are made MLflow-safe; non-finite values are left out; booleans are 0/1).
        report: The report as JSON values (logged as ``report.json``).
        html: The HTML report, when there is one (logged as ``report.html``).
        series: Figures with one value per step (a metric per performance window): each is logged as one
            MLflow metric whose step is the value's index (None values are skipped).
        project: The project; default the one containing the working directory.

    Returns:
        The MLflow run id (the lineage node is ``monitor-<kind>-<run id>``: :func:`node_id`), or None when
        nothing was recorded: no project, no subject.

    Raises:
        MonitoringError: an unknown kind, a subject that is neither a release nor a service node of the
            project, or a report that is not JSON values.
        VersioningError: the tracking store or the lineage records refused the run.
    """
    from kepler.versioning.project import current

    if kind not in KINDS:
        raise MonitoringError(f"unknown monitoring kind {kind!r}; use one of {', '.join(KINDS)}")
    if subject is None:
        return None
    try:
        project = current(project)
    except ProjectNotFoundError:
        return None
    release, inputs = _subject(project, subject)
    try:
        body = json.dumps(report, indent=2, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise MonitoringError(
            f"the {kind} report is not JSON values ({exc}); pass report.to_dict()"
        ) from None
    values, renamed = safe_metrics(metrics)
    steps: list[tuple[str, int, float]] = []
    for name, sequence in (series or {}).items():
        for step, value in enumerate(sequence):
            if isinstance(value, (int, float)) and math.isfinite(float(value)):
                steps.append((metric_name(name), step, float(value)))
    run_id = _mlflow_run(project, kind, subject, release, values, renamed, body, html, steps)
    node = node_id(kind, run_id)
    from kepler.clock import now
    from kepler.versioning.lineage import create_monitoring_lineage

    summary: dict[str, Any] = {k: values[k] for k in ("drift_share", "dataset_drift") if k in values}
    create_monitoring_lineage(
        node,
        kind,
        inputs,
        {
            "run_id": run_id,
            "experiment": EXPERIMENT_PREFIX + release.model_line,
            "release": release.release_id,
            "version": release.version,
            "subject": subject,
            "checked_at": now(),
            **summary,
        },
        project=project,
    )
    return run_id


def _subject(project: Any, subject: str) -> tuple[Any, list[str]]:
    """The release a subject belongs to and the lineage node(s) the monitoring node hangs from."""
    from kepler.deployment.records import ensure_release_node
    from kepler.versioning.lineage import get_lineage_node
    from kepler.versioning.releases import get_release

    if not _is_name(subject):
        raise MonitoringError(f"monitoring subject {subject!r} is not a release or lineage node name")
    if project.store.exists("releases", subject):
        release = get_release(subject, project=project)
        return release, [ensure_release_node(release, _lineage(project, release), project=project)]
    try:
        node = get_lineage_node(subject, project=project)
    except VersioningError:
        node = None
    name = (node or {}).get("metadata", {}).get("release")
    if node is None or node["kind"] != "service" or not project.store.exists("releases", str(name)):
        raise MonitoringError(
            f"{subject!r} is neither a release nor a deployment (service node) of this project; "
            f"name a release (`kepler versioning list-releases`)"
        )
    return get_release(str(name), project=project), [subject]


def _lineage(project: Any, release: Any) -> dict[str, Any]:
    """What :func:`~kepler.deployment.records.ensure_release_node` needs of a release's lineage."""
    from kepler.versioning.unified import get_unified_version

    if not release.unified_version:
        return {}
    try:
        unified = get_unified_version(release.unified_version, project=project)
    except VersioningError:
        return {}
    return {"data": list(unified.data or []), "artifact_sha256": unified.artifact_sha256}


def _tags(project: Any, kind: str, subject: str, release: Any) -> dict[str, str]:
    from kepler.versioning.experiments import run_tags
    from kepler.versioning.releases import registry_model
    from kepler.versioning.unified import get_unified_version

    tags = run_tags(project)
    tags.update(
        {
            "mlflow.runName": f"monitor-{kind}-{subject}"[:250],
            "kepler.kind": "monitoring",
            "kepler.monitor": kind,
            "kepler.subject": subject,
            "kepler.release": release.release_id,
            "kepler.release_version": release.version,
            "kepler.model_line": release.model_line,
        }
    )
    try:
        model = registry_model(release)
    except VersioningError:
        model = None
    if model is not None:
        tags["kepler.registered_model"] = f"models:/{model[0]}/{model[1]}"
    if release.unified_version:
        tags["kepler.unified_version"] = release.unified_version
        try:
            build_run = get_unified_version(release.unified_version, project=project).mlflow_run_id
        except VersioningError:
            build_run = None
        if build_run:
            tags["kepler.build_run_id"] = build_run
    return tags


def _mlflow_run(
    project: Any,
    kind: str,
    subject: str,
    release: Any,
    metrics: dict[str, float],
    renamed: dict[str, str],
    body: str,
    html: str | os.PathLike[str] | None,
    steps: list[tuple[str, int, float]],
) -> str:
    from mlflow import MlflowClient
    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException

    from kepler.versioning.experiments import _experiment_id

    client = MlflowClient(tracking_uri=project.tracking_uri)
    run_id = None
    try:
        experiment = _experiment_id(client, EXPERIMENT_PREFIX + release.model_line, project.artifact_root)
        run_id = client.create_run(experiment, tags=_tags(project, kind, subject, release)).info.run_id
        client.set_tag(run_id, "kepler.lineage_node", node_id(kind, run_id))
        stamp = int(time.time() * 1000)
        items = [Metric(k, v, stamp, 0) for k, v in metrics.items()]
        items += [Metric(k, v, stamp, step) for k, step, v in steps]
        for start in range(0, len(items), 1000):  # MLflow takes at most 1000 metrics per batch
            client.log_batch(run_id, metrics=items[start : start + 1000])
        with tempfile.TemporaryDirectory(prefix="kepler-monitor-") as folder:
            (Path(folder) / "report.json").write_text(body + "\n", encoding="utf-8")
            client.log_artifact(run_id, str(Path(folder) / "report.json"))
            if renamed:
                names = Path(folder) / "metric_names.json"
                names.write_text(json.dumps(renamed, indent=2, sort_keys=True) + "\n", encoding="utf-8")
                client.log_artifact(run_id, str(names))
        if html is not None:
            # logged under the name report.html whatever the file is called
            with tempfile.TemporaryDirectory(prefix="kepler-monitor-") as folder:
                copy = Path(folder) / "report.html"
                copy.write_bytes(Path(html).read_bytes())
                client.log_artifact(run_id, str(copy))
        client.set_terminated(run_id, "FINISHED")
    except (MlflowException, OSError) as exc:
        if run_id is not None:
            try:
                client.set_terminated(run_id, "FAILED")
            except MlflowException:
                pass
        raise VersioningError(
            f"recording the {kind} check of {subject} in MLflow failed ({str(exc).splitlines()[0][:200]}); "
            f"check the tracking store ({project.tracking_uri})"
        ) from None
    return run_id
