"""``kepler monitor performance``: a release's metric per time window on served requests, against its build's.

With labels (a CSV or Parquet file, or a DataFrame), each label is joined to the recorded request it belongs
to, by request id (the ``X-Request-Id`` the service answered; plus ``row`` for a request of several rows)
or by a key column both sides have, and the use case's metric is computed per window on the labelled rows.
Without labels, the metric is estimated per window from the release's calibration table (CBPE, see
:mod:`kepler.monitoring.calibration`); with labels the estimate is shown next to the realized value.

A window is flagged when its metric is more than ``[monitoring] performance_drop`` (0.05) below the build's
test metric (for ``rmse``, where lower is better: above it). Windows are aligned to the epoch (a ``1h``
window starts on the hour, UTC).

The core, :func:`performance_of`, takes the recorded requests as a DataFrame; :func:`performance` finds
them, the build's metric and the calibration table for a release of the project.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kepler.data.values import plain, shown
from kepler.errors import MonitoringError
from kepler.monitoring.calibration import BINARY_METRICS, CalibrationTable, class_indices, realized
from kepler.monitoring.calibration import METRICS as ESTIMABLE

if TYPE_CHECKING:
    import pandas as pd

REQUEST_ID = "request_id"
ROW = "row"
TIME = "time"
PREDICTION = "prediction"
LABEL = "label"
PROBABILITY_PREFIX = "probability["
REGRESSION_METRICS = ("r2", "neg_rmse", "rmse")
LOWER_IS_BETTER = frozenset({"rmse"})
_JOINED = "__kepler_label__"


@dataclass(frozen=True)
class PerformanceWindow:
    """One time window of served requests.

    Attributes:
        start: Its start (UTC).
        end: Its end (UTC), exclusive.
        rows: Prediction rows served in it.
        labelled: Of those, the rows with a label.
        value: The metric: realized on the labelled rows, or (without labels) the CBPE estimate; None
            where it cannot be computed (no labelled row, or a ranking metric with one class only).
        estimated: The CBPE estimate on all its rows, where the release has a calibration table.
        drop: How far ``value`` lies below the reference metric (above it, for lower-is-better metrics).
        flagged: Whether ``drop`` exceeds the threshold.
    """

    start: datetime
    end: datetime
    rows: int
    labelled: int
    value: float | None
    estimated: float | None
    drop: float | None
    flagged: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON values (times as ISO 8601 UTC)."""
        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "rows": self.rows,
            "labelled": self.labelled,
            "value": self.value,
            "estimated": self.estimated,
            "drop": self.drop,
            "flagged": self.flagged,
        }


@dataclass
class PerformanceReport:
    """A release's metric per window, next to its build's test metric.

    Attributes:
        release: The release, or None (a report on a DataFrame).
        metric: The metric's name.
        mode: ``labels`` (realized on joined labels) or ``estimated`` (CBPE, no labels).
        reference: The build's test metric (or, lacking it, the calibration table's held-out one).
        reference_source: Where ``reference`` comes from.
        threshold: The drop that flags a window (``[monitoring] performance_drop``).
        window_s: Window length in seconds.
        windows: The windows with requests, oldest first.
        rows: Prediction rows read.
        labels_given: Labels given (0 without labels).
        labels_matched: Labels that joined a request row.
        join: ``request_id``, ``request_id+row`` or ``key:<column>``; None without labels.
        since: Start of the range read (UTC), if one was given.
    """

    release: str | None
    metric: str
    mode: str
    reference: float | None
    reference_source: str
    threshold: float
    window_s: float
    windows: list[PerformanceWindow]
    rows: int
    labels_given: int = 0
    labels_matched: int = 0
    join: str | None = None
    since: datetime | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> list[PerformanceWindow]:
        """The flagged windows."""
        return [w for w in self.windows if w.flagged]

    @property
    def degraded(self) -> bool:
        """Whether any window was flagged."""
        return bool(self.flagged)

    def to_dict(self) -> dict[str, Any]:
        """JSON values."""
        return {
            "release": self.release,
            "metric": self.metric,
            "mode": self.mode,
            "reference": self.reference,
            "reference_source": self.reference_source,
            "threshold": self.threshold,
            "window_s": self.window_s,
            "since": None if self.since is None else _iso(self.since),
            "rows": self.rows,
            "labels": {
                "given": self.labels_given,
                "matched": self.labels_matched,
                "unmatched": self.labels_given - self.labels_matched,
                "join": self.join,
            },
            "windows": [w.to_dict() for w in self.windows],
            "flagged_windows": len(self.flagged),
            "degraded": self.degraded,
            "notes": list(self.notes),
        }

    def figures(self) -> dict[str, float]:
        """The report's figures, for the monitoring run's metrics: the reference, the last, lowest and
        highest window values, the flagged windows, rows and matched labels."""
        values = [w.value for w in self.windows if w.value is not None]
        out: dict[str, float] = {
            "windows": float(len(self.windows)),
            "flagged_windows": float(len(self.flagged)),
            "degraded": float(self.degraded),
            "rows": float(self.rows),
        }
        if self.mode == "labels":
            out["labels_matched"] = float(self.labels_matched)
        if self.reference is not None:
            out[f"reference_{self.metric}"] = self.reference
        if values:
            out[f"last_{self.metric}"] = values[-1]
            out[f"min_{self.metric}"] = min(values)
            out[f"max_{self.metric}"] = max(values)
        return out

    def summary(self) -> str:
        """One line: how many windows were flagged against which reference."""
        how = "realized on labels" if self.mode == "labels" else "estimated without labels (CBPE)"
        reference = "no reference" if self.reference is None else f"reference {self.reference:.4g}"
        return (
            f"{self.metric} {how}; {reference} ({self.reference_source}); {len(self.flagged)} of "
            f"{len(self.windows)} windows dropped more than {self.threshold:g}"
        )

    def table(self) -> Any:
        """The windows as a Rich table, the summary as its caption."""
        from rich.table import Table

        title = f"Performance of {self.release}" if self.release else "Performance"
        table = Table(title=title, caption=self.summary())
        headers = ["window (UTC)", "rows", "labelled", self.metric, "estimated (CBPE)", "drop", ""]
        for name in headers:
            table.add_column(name, justify="left" if name.startswith("window") or not name else "right")
        for w in self.windows:
            table.add_row(
                f"{w.start:%Y-%m-%d %H:%M} – {w.end:%H:%M}",
                str(w.rows),
                str(w.labelled) if self.mode == "labels" else "",
                "" if w.value is None else f"{w.value:.4f}",
                "" if w.estimated is None else f"{w.estimated:.4f}",
                "" if w.drop is None else f"{w.drop:+.4f}",
                "[bold red]dropped[/]" if w.flagged else ("[green]ok[/]" if w.value is not None else ""),
            )
        return table


@dataclass(frozen=True)
class ModelFacts:
    """What performance needs to know of the release's model (from its build and reference profile).

    Attributes:
        metric: The use case's metric (the build's), e.g. ``f1``.
        reference: The build's test value of ``metric``, if recorded.
        test_metrics: Every test metric the build recorded.
        task: ``classification`` or ``regression`` (None: unknown, classification assumed).
        label: The build's label column, if known.
        positive: The positive class of a binary model.
        calibration: The calibration table, if the artifact has one.
        calibration_missing: Why there is no calibration table, when there is none.
        options: ``precision_floor`` / ``recall_target`` of the use case.
    """

    metric: str | None = None
    reference: float | None = None
    test_metrics: dict[str, float] = field(default_factory=dict)
    task: str | None = None
    label: str | None = None
    positive: Any = None
    calibration: CalibrationTable | None = None
    calibration_missing: str | None = None
    options: dict[str, float] = field(default_factory=dict)


def performance(
    release: str,
    labels: Any = None,
    *,
    key: str | None = None,
    since: str | float | None = None,
    window: str | float | None = None,
    metric: str | None = None,
    threshold: float | None = None,
    label_column: str | None = None,
    project: Any = None,
) -> PerformanceReport:
    """A release's metric per window of its recorded requests, against its build's test metric.

    Args:
        release: The release's name.
        labels: A CSV or Parquet file, or a DataFrame, of labels: a ``request_id`` column (plus ``row``
            for requests of several rows) or the ``key`` column, and the label column. None: estimate
            the metric from the calibration table (CBPE).
        key: Join on this column (present in the labels and among the requests' inputs) instead of the
            request id.
        since: Only requests this recent: ``"1h"``, ``"7d"``... or seconds (default: all recorded).
        window: Window length, same forms (default: ``[monitoring] window``, 1h).
        metric: The metric (default: the build's, the use case's metric).
        threshold: The drop that flags a window (default: ``[monitoring] performance_drop``, 0.05).
        label_column: The labels' label column (default: ``label``, else the build's label column, else
            the one column besides the join columns).
        project: The Kepler project (default: the one around the working directory).

    Returns:
        The report.

    Raises:
        MonitoringError: an unknown release, no recorded requests in the range, labels without the join
            key or matching no request, no calibration table to estimate from, a bad duration or metric.
        DataError: the labels file cannot be read.
    """
    from kepler.monitoring.settings import load_settings, parse_duration

    settings = load_settings()
    since_s = _seconds(since, "--since", parse_duration)
    window_s = _seconds(window, "--window", parse_duration) or settings.window_s
    drop = settings.performance_drop if threshold is None else _check_threshold(threshold)
    facts = release_facts(release, project=project)
    label_table = read_labels(labels) if labels is not None else None
    requests = _read_requests(release, since_s, project)
    if len(requests) == 0:
        what = f"in the last {since}" if since is not None else "yet"
        raise MonitoringError(
            f"release {release!r} has no recorded requests {what}; serve traffic with recording on "
            f"([monitoring] sample_rate > 0) or widen --since"
        )
    started = None if since_s is None else datetime.fromtimestamp(_now() - since_s, tz=UTC)
    return performance_of(
        requests,
        label_table,
        facts,
        key=key,
        metric=metric,
        window_s=window_s,
        threshold=drop,
        label_column=label_column,
        release=release,
        since=started,
    )


def performance_of(
    requests: pd.DataFrame,
    labels: pd.DataFrame | None,
    facts: ModelFacts,
    *,
    key: str | None = None,
    metric: str | None = None,
    window_s: float = 3600.0,
    threshold: float = 0.05,
    label_column: str | None = None,
    release: str | None = None,
    since: datetime | None = None,
) -> PerformanceReport:
    """The metric per window of recorded requests (the core of :func:`performance`, on a DataFrame).

    Args:
        requests: Recorded requests: ``request_id``, ``row``, ``time`` (UTC), the inputs, ``prediction``
            and ``probability[<class>]`` columns, one row per prediction.
        labels: Labels to join (see :func:`performance`), or None to estimate with CBPE.
        facts: The model's metric, reference, classes and calibration table.
        key: Join on this column instead of the request id.
        metric: The metric (default: ``facts.metric``, else accuracy or r2).
        window_s: Window length in seconds.
        threshold: The drop that flags a window.
        label_column: The labels' label column (see :func:`performance`).
        release: The release's name, for the report.
        since: The start of the range read, for the report.

    Raises:
        MonitoringError: see :func:`performance`.
    """
    import pandas as pd

    if not window_s or window_s <= 0 or not math.isfinite(window_s):
        raise MonitoringError(f"the window must be a positive duration, got {window_s!r}")
    if len(requests) == 0:
        raise MonitoringError("no recorded requests in the range; widen --since or serve traffic first")
    for column in (TIME, PREDICTION):
        if column not in requests.columns:
            raise MonitoringError(f"the recorded requests have no {column!r} column; re-record the traffic")
    regression = facts.task == "regression"
    chosen = metric or facts.metric or _default_metric(regression, facts)
    _check_metric(chosen, regression, labels is None, facts)
    table = facts.calibration
    classes = _classes(requests, table)
    positive = facts.positive if facts.positive is not None else (table.positive if table else None)
    if positive is not None and classes and int(class_indices([positive], classes)[0]) < 0:
        positive = None
    probabilities = _probabilities(requests, classes) if not regression else None
    has_scores = (
        np.isfinite(probabilities).all(axis=1)
        if probabilities is not None
        else np.zeros(len(requests), dtype=bool)
    )
    if chosen in BINARY_METRICS and positive is None:
        raise MonitoringError(
            f"metric {chosen!r} needs a binary model's positive class, and the build records none; "
            f"pass --metric accuracy or f1"
        )
    if chosen in BINARY_METRICS and probabilities is None:
        raise MonitoringError(
            f"metric {chosen!r} needs the recorded class probabilities, and the requests have none; "
            f"pass --metric accuracy or f1"
        )
    options = {**(table.options if table else {}), **facts.options}
    reference, source = _reference(chosen, facts)

    times = pd.to_datetime(requests[TIME], utc=True)
    # Seconds since the epoch whatever the column's resolution (read_traffic's is microseconds).
    seconds = ((times - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(dtype=float)
    window_index = np.floor(seconds / window_s).astype(np.int64)
    truth: np.ndarray | None = None
    labels_given = labels_matched = 0
    join = None
    if labels is not None:
        truth, join, labels_given = join_labels(
            requests, labels, key=key, label_column=label_column, facts=facts
        )
        labels_matched = int((~pd.isna(truth)).sum())
        if labels_matched == 0:
            raise MonitoringError(
                f"none of the {labels_given} labels matches a recorded request (joined on {join}); check "
                f"the ids or keys, or widen --since"
            )
    windows: list[PerformanceWindow] = []
    predictions = requests[PREDICTION].to_numpy()
    for index in np.unique(window_index):
        rows = np.flatnonzero(window_index == index)
        estimated = None
        scored = rows[has_scores[rows]]  # requests to /predict recorded no probabilities
        if table is not None and probabilities is not None and scored.size:
            estimated = _finite(
                table.estimate(
                    probabilities[scored], chosen, predictions=predictions[scored], options=options
                )
            )
        labelled = 0
        if truth is not None:
            have = rows[~pd.isna(truth[rows])]
            if chosen in BINARY_METRICS:
                have = have[has_scores[have]]
            labelled = int(have.size)
            value = (
                _realized(
                    chosen, truth[have], predictions[have], probabilities, have, classes, positive, options
                )
                if have.size
                else None
            )
        else:
            value = estimated
        drop = None
        if value is not None and reference is not None:
            drop = value - reference if chosen in LOWER_IS_BETTER else reference - value
            drop = round(drop, 12)
        start = datetime.fromtimestamp(float(index) * window_s, tz=UTC)
        windows.append(
            PerformanceWindow(
                start=start,
                end=datetime.fromtimestamp(float(index + 1) * window_s, tz=UTC),
                rows=int(rows.size),
                labelled=labelled,
                value=value,
                estimated=estimated,
                drop=drop,
                flagged=drop is not None and drop > threshold,
            )
        )
    notes = []
    unscored = int(len(requests) - has_scores.sum())
    if table is not None and probabilities is not None and unscored:
        notes.append(
            f"{unscored} rows carry no probabilities (requests to /predict), so no estimate covers them"
        )
    if reference is None:
        notes.append(f"the build records no test {chosen}; windows are shown, none is flagged")
    return PerformanceReport(
        release=release,
        metric=chosen,
        mode="labels" if labels is not None else "estimated",
        reference=reference,
        reference_source=source,
        threshold=threshold,
        window_s=float(window_s),
        windows=windows,
        rows=int(len(requests)),
        labels_given=labels_given,
        labels_matched=labels_matched,
        join=join,
        since=since,
        notes=notes,
    )


def join_labels(
    requests: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    key: str | None = None,
    label_column: str | None = None,
    facts: ModelFacts | None = None,
) -> tuple[np.ndarray, str, int]:
    """The label of each request row (None where it has none).

    Labels join by ``request_id`` (and ``row``, when the labels have it) or by ``key``. Ids and keys
    match as text (``7`` and ``"7"``, as a CSV gives them). A label given twice for the same row: the
    last one counts. Without ``row``, a label of a request that served several rows is refused, since
    it cannot say which row it labels.

    Returns:
        The labels aligned with ``requests`` (object array), the join's name, and how many labels there were.

    Raises:
        MonitoringError: the labels lack the join key, the requests lack the key column, the label column
            cannot be found, or a label names a request of several rows without ``row``.
    """
    import pandas as pd

    columns = [str(c) for c in labels.columns]
    if key is not None:
        on = [key]
        if key not in columns:
            raise MonitoringError(
                f"the labels have no key column {key!r} (columns: {_listing(columns)}); add it or pass "
                f"--key with one of them"
            )
        if key not in requests.columns:
            raise MonitoringError(
                f"the recorded requests have no column {key!r} to join labels on; pass --key with an "
                f"input column the service received"
            )
        join = f"key:{key}"
    else:
        if REQUEST_ID not in columns:
            raise MonitoringError(
                f"the labels have no {REQUEST_ID!r} column (columns: {_listing(columns)}); add the "
                f"X-Request-Id of each answer as {REQUEST_ID}, or join on a column with --key COL"
            )
        on = [REQUEST_ID, ROW] if ROW in columns and ROW in requests.columns else [REQUEST_ID]
        join = "+".join(on)
    name = _label_column(columns, on, label_column, facts)
    left = pd.DataFrame({f"__k{i}": _key_text(requests[c]) for i, c in enumerate(on)})
    right = pd.DataFrame({f"__k{i}": _key_text(labels[c]) for i, c in enumerate(on)})
    right[_JOINED] = labels[name].to_numpy(dtype=object)
    usable = ~pd.isna(right[_JOINED]).to_numpy() & ~labels[on].isna().any(axis=1).to_numpy()
    right = right[usable].drop_duplicates(subset=list(right.columns[:-1]), keep="last")
    if key is None and on == [REQUEST_ID] and ROW in requests.columns:
        rows_per_request = left["__k0"].value_counts()
        several = rows_per_request[rows_per_request > 1].index
        hit = right["__k0"].isin(several)
        if hit.any():
            request = right.loc[hit, "__k0"].iloc[0]
            raise MonitoringError(
                f"request {request!r} served {int(rows_per_request[request])} rows, but the labels have no "
                f"{ROW!r} column to say which one each label is for; add it (0, 1, ... in request order)"
            )
    merged = left.merge(right, how="left", on=list(left.columns), validate="many_to_one")
    return merged[_JOINED].to_numpy(dtype=object), join, int(len(labels))


def read_labels(labels: Any) -> pd.DataFrame:
    """Labels as a DataFrame: a DataFrame as given, or a CSV or Parquet file read.

    Raises:
        MonitoringError: neither a DataFrame nor an existing file, or a table without rows.
        DataError: the file cannot be read.
    """
    import pandas as pd

    if isinstance(labels, pd.DataFrame):
        frame = labels
    elif isinstance(labels, (str, os.PathLike)):
        path = Path(labels)
        if not path.is_file():
            raise MonitoringError(
                f"labels file {os.fspath(labels)}: no such file; pass a CSV or Parquet file"
            )
        from kepler.data.tables import read_table

        frame = read_table(path)
    else:
        raise MonitoringError(
            f"labels must be a CSV or Parquet file or a DataFrame, got {type(labels).__name__}"
        )
    if len(frame) == 0:
        raise MonitoringError("the labels table has no rows; pass labels of served requests")
    return frame


def release_facts(release: str, *, project: Any = None) -> ModelFacts:
    """The metric, test metrics, classes and calibration table of a release's build.

    Raises:
        MonitoringError: an unknown release.
    """
    from kepler.errors import KeplerError, VersioningError
    from kepler.versioning.project import current
    from kepler.versioning.releases import get_release

    project = current(project)
    try:
        record = get_release(release, project=project)
    except VersioningError:
        raise MonitoringError(
            f"unknown release {release!r}; list them with `kepler versioning list-releases`"
        ) from None
    report: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    config: dict[str, Any] = {}
    if record.unified_version:
        from kepler.versioning.unified import get_unified_version

        try:
            unified = get_unified_version(record.unified_version, project=project)
        except KeplerError:
            unified = None
        if unified is not None:
            metadata = dict(unified.metadata or {})
            config = dict(unified.build_config or {})
            report = _build_report(project.root, metadata.get("build_path"))
    test_metrics = {
        str(k): float(v)
        for k, v in dict(report.get("test_metrics") or metadata.get("test_metrics") or {}).items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    metric = report.get("metric") or _preset_metric(config.get("use_case"))
    reference = test_metrics.get("score") if metric and "score" in test_metrics else None
    if metric and reference is None:
        reference = test_metrics.get(metric)
    data = dict(report.get("data") or {})
    task = data.get("task") or config.get("task")
    if task is None and ("rmse" in test_metrics or "r2" in test_metrics):
        task = "regression"  # a --model build of a regressor records its test rmse and no task
    calibration, missing = _calibration(release, project)
    return ModelFacts(
        metric=metric,
        reference=reference,
        test_metrics=test_metrics,
        task=task,
        label=data.get("label") or config.get("label"),
        positive=report.get("positive_class"),
        calibration=calibration,
        calibration_missing=missing,
        options=_preset_options(config.get("use_case")),
    )


# --------------------------------------------------------------------------- helpers


def _read_requests(release: str, since_s: float | None, project: Any) -> pd.DataFrame:
    from kepler.monitoring.traffic import read_traffic

    return read_traffic(release, since_s=since_s, project=project)


def _calibration(release: str, project: Any) -> tuple[CalibrationTable | None, str | None]:
    """The release's calibration table, or None and why there is none."""
    from kepler.errors import KeplerError

    try:
        from kepler.monitoring.sources import release_reference  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None, "this Kepler reads no release reference profiles"
    try:
        profile = release_reference(release, project=project)
    except KeplerError as exc:  # labels still give the realized metric without it
        return None, str(exc)
    data = getattr(profile, "calibration", None)
    if data is None:
        return None, "its reference profile holds no calibration table (built without labels, or before them)"
    table = data if isinstance(data, CalibrationTable) else CalibrationTable.from_dict(data)
    return table, None


def _build_report(root: Path, build_path: Any) -> dict[str, Any]:
    if not build_path:
        return {}
    folder = Path(build_path)
    for candidate in (folder, root / folder) if not folder.is_absolute() else (folder,):
        path = candidate / "report.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return data
    return {}


def _preset(use_case: Any) -> dict[str, Any]:
    """A shipped use-case preset's table (read as TOML: monitoring does not import the AutoML room)."""
    import tomllib

    if not isinstance(use_case, str) or not use_case.replace("_", "").isalnum():
        return {}
    path = Path(__file__).resolve().parent.parent / "automl" / "presets" / f"{use_case}.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _preset_metric(use_case: Any) -> str | None:
    metric = _preset(use_case).get("metric")
    return str(metric) if metric else None


def _preset_options(use_case: Any) -> dict[str, float]:
    table = _preset(use_case)
    return {k: float(table[k]) for k in ("precision_floor", "recall_target") if k in table}


def _seconds(value: Any, what: str, parse: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value <= 0:
            raise MonitoringError(f"{what} must be a positive duration, got {value!r}")
        return float(value)
    seconds: float = parse(value, what)
    return seconds


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise MonitoringError(f"the threshold must be a number from 0 to 1, got {threshold!r}")
    return float(threshold)


def _check_metric(metric: str, regression: bool, estimating: bool, facts: ModelFacts) -> None:
    if regression:
        if metric not in REGRESSION_METRICS:
            raise MonitoringError(
                f"metric {metric!r} does not apply to a regressor; use one of {', '.join(REGRESSION_METRICS)}"
            )
        if estimating:
            raise MonitoringError(
                "a regressor's performance cannot be estimated without labels; pass --labels FILE"
            )
        return
    if metric not in ESTIMABLE:
        raise MonitoringError(
            f"metric {metric!r} does not apply to a classifier here; use one of {', '.join(ESTIMABLE)}"
        )
    if estimating and facts.calibration is None:
        why = f" ({facts.calibration_missing.rstrip('.')})" if facts.calibration_missing else ""
        raise MonitoringError(
            f"no calibration table to estimate performance without labels{why}; pass --labels FILE, or "
            f"rebuild the release's artifact with labels so its reference profile holds one"
        )


def _default_metric(regression: bool, facts: ModelFacts) -> str:
    if regression:
        return "rmse" if "rmse" in facts.test_metrics else "r2"
    return "accuracy"


def _reference(metric: str, facts: ModelFacts) -> tuple[float | None, str]:
    if metric == facts.metric and facts.reference is not None:
        return facts.reference, "build test metric"
    if metric in facts.test_metrics:
        return facts.test_metrics[metric], "build test metric"
    if metric == "rmse" and "neg_rmse" in facts.test_metrics:
        return -facts.test_metrics["neg_rmse"], "build test metric"
    if facts.calibration is not None and metric in facts.calibration.reference:
        return facts.calibration.reference[metric], "calibration table (held-out rows)"
    return None, "none recorded"


def _classes(requests: pd.DataFrame, table: CalibrationTable | None) -> list[Any]:
    if table is not None:
        return list(table.classes)
    return [
        str(c)[len(PROBABILITY_PREFIX) : -1]
        for c in requests.columns
        if str(c).startswith(PROBABILITY_PREFIX) and str(c).endswith("]")
    ]


def _probabilities(requests: pd.DataFrame, classes: list[Any]) -> np.ndarray | None:
    names = [f"{PROBABILITY_PREFIX}{plain(c)}]" for c in classes]
    if not names or any(n not in requests.columns for n in names):
        return None
    try:
        values: np.ndarray = requests[names].to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise MonitoringError("recorded probabilities that are not numbers; re-record the traffic") from None
    return values if np.isfinite(values).all(axis=1).any() else None


def _realized(
    metric: str,
    truth: np.ndarray,
    predicted: np.ndarray,
    probabilities: np.ndarray | None,
    rows: np.ndarray,
    classes: list[Any],
    positive: Any,
    options: dict[str, float],
) -> float | None:
    if metric in REGRESSION_METRICS:
        try:
            y = np.asarray(truth, dtype=float)
            p = np.asarray(predicted, dtype=float)
        except (TypeError, ValueError):
            raise MonitoringError("regression labels must be numbers; check the label column") from None
        rmse = float(np.sqrt(np.mean((y - p) ** 2)))
        if metric == "rmse":
            return rmse
        if metric == "neg_rmse":
            return -rmse
        total = float(np.sum((y - y.mean()) ** 2))
        return None if total == 0 else 1.0 - float(np.sum((y - p) ** 2)) / total
    if probabilities is not None:
        # Only the ranking metrics read the scores (their rows all have them); the rest read predictions.
        scores = np.nan_to_num(probabilities[rows], nan=0.0)
    else:
        if metric not in ("accuracy", "f1", "precision", "recall"):
            raise MonitoringError(
                f"metric {metric!r} needs the recorded class probabilities; record them, or use accuracy or f1"
            )
        # Without probabilities, the classes are those the predictions and labels name.
        classes = list(dict.fromkeys([*map(_text_of, predicted), *map(_text_of, truth)]))
        if len(classes) < 2:
            classes.append("\x00")
        scores = np.zeros((len(predicted), len(classes)))
        scores[np.arange(len(predicted)), class_indices(predicted, classes)] = 1.0
        if positive is not None:
            positive = _text_of(positive)
            if positive not in classes:
                return _finite(0.0)
    value = realized(
        scores, truth, metric, classes, positive=positive, predictions=predicted, options=options
    )
    return _finite(value)


def _text_of(value: Any) -> str:
    value = plain(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _label_column(columns: list[str], on: list[str], given: str | None, facts: ModelFacts | None) -> str:
    if given is not None:
        if given not in columns:
            raise MonitoringError(
                f"the labels have no column {given!r} (columns: {_listing(columns)}); pass --label-column"
            )
        return given
    if LABEL in columns and LABEL not in on:
        return LABEL
    if facts is not None and facts.label and facts.label in columns and facts.label not in on:
        return facts.label
    rest = [c for c in columns if c not in on and c not in (ROW, REQUEST_ID, TIME)]
    if len(rest) == 1:
        return rest[0]
    raise MonitoringError(
        f"cannot tell the label column among {_listing(rest) or 'no other column'}; name it 'label' or "
        f"pass --label-column"
    )


def _key_text(series: pd.Series) -> pd.Series:
    """Join keys as text: integral floats without their ``.0`` (an id column with a gap reads as float, a
    JSON body may send ``7.0``), so that ``7``, ``7.0`` and ``"7"`` meet."""
    import pandas as pd

    if pd.api.types.is_float_dtype(series.dtype):
        values = series.to_numpy(dtype=float)
        integral = np.isfinite(values) & (values == np.round(values))
        text = series.astype(str).to_numpy(dtype=object)
        text[integral] = values[integral].astype(np.int64).astype(str)
        return pd.Series(text, index=series.index, dtype=object)
    if series.dtype == object:
        return series.map(_text_of).astype(object)
    return series.astype(str).astype(object)


def _listing(names: list[str], limit: int = 8) -> str:
    head = ", ".join(shown(n, 30) for n in names[:limit])
    return head + (", …" if len(names) > limit else "")


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _now() -> float:
    from kepler.clock import utc_now

    return utc_now().timestamp()
