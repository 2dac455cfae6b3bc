"""The build report (``builds/<id>/report.json``, ``kepler build --json``) as typed, versioned classes.

This module owns the report's schema. A search build's report holds the search result's keys
(:func:`kepler.automl.automl_pipeline`); a ``--model`` build's report holds the keys of that kind only, so a
key that a kind does not write stays out of its ``report.json`` (see :mod:`kepler.records`). Every key a
report holds is an attribute here; nested parts owned elsewhere (the parity and benchmark reports of the
artifact, the trials, the budget rows, the time plan) stay JSON objects, as their modules write them.

Schema versions:

1. The report as written before reports carried ``schema_version`` (which therefore read as version 1).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kepler.errors import KeplerError
from kepler.records import Record, Section, optional

REPORT_FILE = "report.json"


@dataclass
class ReportArtifact(Section):
    """The compiled artifact of a build (``report["artifact"]``).

    Attributes:
        path: Its folder (``builds/<build-id>/artifact``).
        sha256: Its model's sha256, as its manifest records it.
        size_mb: Its model's size in MiB.
        estimator: The final estimator's class name.
        parity: The compiler's parity report (native against compiled predictions).
        benchmark: The runtime's benchmark report (latency per batch, size, memory, budgets).
    """

    KIND = "build report's artifact section"

    path: str | None = None
    sha256: str | None = None
    size_mb: float | None = None
    estimator: str | None = None
    parity: dict[str, Any] | None = None
    benchmark: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class TableSummary(Section):
    """The table a build read (``report["data"]``): a search writes every key, a ``--model`` build three.

    Attributes:
        rows: Rows read.
        label: The label column, or None (a ``--model`` build without one).
        features: The feature columns, in order.
        path: The table's file, when the build was given one.
        source: Where the table came from, as :func:`kepler.data.load` says.
        task: classification or regression.
        numeric_columns: The numeric features.
        categorical_columns: The categorical features.
        dropped_columns: The columns left out, each for a reason its column entry gives.
        columns: One ``{"name", "role", "note", ...}`` per column of the table.
        notes: What reading the table changed.
        class_balance: Class counts, shares and whether the classes are imbalanced (classification).
    """

    KIND = "build report's data section"

    rows: int | None = None
    label: str | None = None
    features: list[str] | None = None
    path: str | None = optional()
    source: str | None = optional()
    task: str | None = optional()
    numeric_columns: list[str] | None = optional()
    categorical_columns: list[str] | None = optional()
    dropped_columns: list[str] | None = optional()
    columns: list[dict[str, Any]] | None = optional()
    notes: list[str] | None = optional()
    class_balance: dict[str, Any] | None = optional()
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class BuildTracking(Section):
    """What recording the build in the Kepler project made (``report["tracking"]``).

    Attributes:
        data_version: The DVC data version of the table, or None (not inside the project).
        mlflow_run_id: The build's MLflow run.
        experiment: Its MLflow experiment.
        registered_model: ``{"name", "version"}`` of the registered model version, or None.
        unified_version: The unified version that ties the build together.
        lineage: The lineage nodes recorded (the data node, then the build's model node).
        notes: What could not be recorded, and why.
    """

    KIND = "build report's tracking section"

    data_version: str | None = None
    mlflow_run_id: str | None = None
    experiment: str | None = None
    registered_model: dict[str, str] | None = None
    unified_version: str | None = None
    lineage: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class BuildReport(Record):
    """A build's report. Every key may be missing on a report read from elsewhere (None here).

    Attributes:
        build_id: The build's id (UTC time and a random suffix).
        command: The command line that ran it, or None (``kp.build``).
        created_at: ISO 8601 UTC time of the build.
        target: The target profile as a dict (``name``, budgets, threads, parity...).
        kind: ``search`` or ``model`` (a ``--model`` build).
        best_estimator: The final estimator's class name.
        deployment_ready: Every budget met and parity passed.
        constraint_report: One row per budget: ``budget, limit, source, measured, ok, over_by``.
        test_metrics: Metrics of the compiled model (a search: on its held-out rows; a ``--model`` build:
            on the given table, when it has the label).
        data: The table read.
        artifact: The compiled artifact.
        tracking: What the Kepler project recorded, or None (not tracked).
        model_file: The model compiled (a ``--model`` build).
        test_metrics_note: How ``test_metrics`` were computed (a ``--model`` build).
        extra: Keys this Kepler does not know (from a newer search result), kept as read.

    A search's report also has its result's keys: ``best_algorithm, best_config, best_trial, metric,
    validation_score, test_rows, budgets, rejected_at_final_check, trials, failed_trials, pareto_front,
    use_case, families, interpretability_required, seed, time_budget_s, plan, search_seconds, search_stopped,
    search_isolation, final_seconds, total_seconds, positive_class, class_labels, labels_encoded`` and, inside
    a caller's MLflow run, ``mlflow`` (see :func:`kepler.automl.automl_pipeline`). A search whose trials ran on
    Spark also has ``spark``: ``master``, ``concurrent_trials``, ``startup_seconds`` and ``note``, the line
    saying that the trials' latencies only guided the search and the driver's re-measurement decided.
    """

    KIND = "build report"
    NESTED = {"artifact": ReportArtifact, "data": TableSummary, "tracking": BuildTracking}

    build_id: str | None = None
    command: str | None = None
    created_at: str | None = None
    target: dict[str, Any] | str | None = None
    kind: str | None = None
    model_file: str | None = optional()
    best_algorithm: str | None = optional()
    best_estimator: str | None = None
    best_config: dict[str, Any] | None = optional()
    best_trial: int | None = optional()
    deployment_ready: bool | None = None
    metric: str | None = optional()
    validation_score: float | None = optional()
    test_metrics: dict[str, float] | None = optional()
    test_metrics_note: str | None = optional()
    test_rows: int | None = optional()
    budgets: dict[str, dict[str, Any]] | None = optional()
    constraint_report: list[dict[str, Any]] | None = None
    rejected_at_final_check: list[dict[str, Any]] | None = optional()
    trials: list[dict[str, Any]] | None = optional()
    failed_trials: list[dict[str, Any]] | None = optional()
    pareto_front: list[int] | None = optional()
    use_case: str | None = optional()
    families: list[str] | None = optional()
    interpretability_required: bool | None = optional()
    seed: int | None = optional()
    time_budget_s: float | None = optional()
    plan: dict[str, Any] | None = optional()
    search_seconds: float | None = optional()
    search_stopped: bool | None = optional()
    search_isolation: str | None = optional()
    spark: dict[str, Any] | None = optional()
    final_seconds: float | None = optional()
    total_seconds: float | None = optional()
    positive_class: Any = optional()
    class_labels: list[Any] | None = optional()
    labels_encoded: bool | None = optional()
    mlflow: dict[str, Any] | None = optional()
    data: TableSummary | None = None
    artifact: ReportArtifact | None = None
    tracking: BuildTracking | None = optional()
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def target_name(self) -> str | None:
        """The target's name (``target`` is the profile's dict; a search result names it)."""
        if isinstance(self.target, Mapping):
            name = self.target.get("name")
            return str(name) if name not in (None, "") else None
        return str(self.target) if self.target not in (None, "") else None

    @property
    def chosen(self) -> str | None:
        """The model chosen: the family a search picked, else the estimator compiled."""
        return self.best_algorithm or self.best_estimator

    @classmethod
    def of_search(
        cls,
        result: Mapping[str, Any],
        *,
        build_id: str,
        command: str | None,
        created_at: str,
        target: dict[str, Any],
    ) -> BuildReport:
        """The report of a search build: the search result's keys (its ``artifact`` path and ``target`` name
        replaced by the build's own), with the build's id, command, time and target profile."""
        keys = {k: v for k, v in result.items() if k not in ("artifact", "target")}
        return cls.from_dict(
            {
                "build_id": build_id,
                "command": command,
                "created_at": created_at,
                "target": target,
                "kind": "search",
                **keys,
            }
        )

    @classmethod
    def coerce(cls, report: BuildReport | Mapping[str, Any] | None) -> BuildReport:
        """``report`` as a BuildReport: itself, read from its dict form, or empty (None, or not a dict)."""
        if isinstance(report, BuildReport):
            return report
        return cls.from_dict(report) if isinstance(report, Mapping) else cls()


def read_report(path: str | os.PathLike[str]) -> BuildReport:
    """Reads a ``report.json`` (a build folder or the file), of this or an older schema version.

    Raises:
        KeplerError: no such file, not JSON, or written by a newer Kepler.
    """
    file = Path(path)
    file = file / REPORT_FILE if file.is_dir() else file
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeplerError(f"{file}: no such report; pass a build folder (builds/<build-id>)") from None
    except (OSError, ValueError) as exc:
        raise KeplerError(f"{file}: unreadable report ({exc}); rebuild, or restore the file") from None
    try:
        return BuildReport.from_dict(data)
    except KeplerError as exc:
        raise type(exc)(f"{file}: {exc}") from None
