"""Served traffic: the requests a release's service recorded, read back as a table and tested for drift.

A service with ``[monitoring] sample_rate`` above 0 records sampled requests (:mod:`kepler.deployment.recording`)
to ``<BENTOML_HOME>/kepler-traffic/<release>/``; for a local deployment (``kp.deploy(release, port=...)``,
``kepler serve``) that is the project's ``.kepler/bentoml/kepler-traffic/<release>/``, or
``$KEPLER_TRAFFIC_DIR/<release>/`` when that variable is set (for the service and for this module alike).

Reading: a newline-terminated line that is not a traffic record is an error naming the file and line; a last line
without its newline is skipped, since that is a line still being written (or cut by a writer that was killed).
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kepler.deployment.recording import SUFFIX, TRAFFIC_FOLDER, folder_name
from kepler.errors import MonitoringError

if TYPE_CHECKING:
    import pandas as pd

    from kepler.monitoring.drift import DriftReport

META_COLUMNS = ("request_id", "row", "time", "release", "endpoint")
PREDICTION = "prediction"
TIME_DTYPE = "datetime64[ns, UTC]"


def probability_column(label: Any) -> str:
    """The column of a class's probability: ``probability[<class>]``, as reference profiles name it."""
    return f"probability[{label}]"


def traffic_folder(release: str, *, project: Any = None) -> Path:
    """The folder a release's service records its traffic to (see the module docstring).

    Args:
        release: The release name.
        project: The project; the one containing the working directory by default (not needed when
            ``KEPLER_TRAFFIC_DIR`` is set).

    Raises:
        ProjectNotFoundError: no ``KEPLER_TRAFFIC_DIR`` and no project here.
    """
    root = os.environ.get("KEPLER_TRAFFIC_DIR")
    if root:
        return Path(root) / folder_name(release)
    from kepler.versioning.project import current

    return current(project).bentoml_home / TRAFFIC_FOLDER / folder_name(release)


def read_traffic(
    release: str,
    since_s: float | None = None,
    *,
    project: Any = None,
    folder: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """The recorded requests of a release, one row per request row.

    Args:
        release: The release name.
        since_s: Only requests of the last ``since_s`` seconds (default: all that are kept).
        project: The project (see :func:`traffic_folder`).
        folder: Read this folder instead of the release's.

    Returns:
        Columns ``request_id``, ``row`` (the row's index in its request), ``time`` (UTC), ``release``,
        ``endpoint``, then the input columns as received, ``prediction`` and ``probability[<class>]`` (empty where
        the request went to ``/predict``), ordered by time. No rows when nothing was recorded in the window.

    Raises:
        VersioningError: no traffic folder and no such release.
        MonitoringError: no traffic folder for a known release, a bad ``since_s``, or a corrupt recording (the
            message names the file and line).
    """
    import pandas as pd

    if since_s is not None and not (isinstance(since_s, (int, float)) and since_s > 0):
        raise MonitoringError(f"since_s must be a positive number of seconds, got {since_s!r}")
    where = Path(folder) if folder is not None else traffic_folder(release, project=project)
    if not where.is_dir():
        if folder is None:
            from kepler.versioning.releases import get_release

            get_release(release, project=project)  # an unknown release: its own error
        raise MonitoringError(
            f"no traffic recorded for release {release!r} (no folder {where}); serve it with "
            f"`kepler deploy {release} --port N` with [monitoring] sample_rate above 0 and send it requests"
        )
    cutoff = time.time() - since_s if since_s is not None else None
    files = sorted(where.glob(f"*{SUFFIX}"), key=lambda p: (_mtime(p), p.name))
    rows: list[dict[str, Any]] = []
    for path in files:
        if cutoff is not None and _mtime(path) < cutoff:
            continue  # last written before the window
        for number, record in _records(path):
            rows.extend(_rows(record, path, number, cutoff))
    if not rows:
        frame = pd.DataFrame({name: pd.Series(dtype=object) for name in META_COLUMNS})
        frame["time"] = pd.to_datetime(frame["time"], utc=True).astype(TIME_DTYPE)
        frame["row"] = frame["row"].astype("int64")
        return frame
    frame = pd.DataFrame.from_records(rows)
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601").astype(TIME_DTYPE)
    first = [*META_COLUMNS]
    outputs = [c for c in frame.columns if c == PREDICTION or str(c).startswith("probability[")]
    inputs = [c for c in frame.columns if c not in first and c not in outputs]
    frame = frame[first + inputs + outputs]
    return frame.sort_values(["time", "request_id", "row"], kind="stable").reset_index(drop=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []  # deleted by the writer's rotation since listed
    except OSError as exc:
        raise MonitoringError(f"{path}: cannot read it ({exc}); check its permissions") from None
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        lines.pop()  # the last line has no newline yet: still being written
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _corrupt(path, number, f"not JSON: {exc}") from None
        if not isinstance(record, dict):
            raise _corrupt(path, number, "not a JSON object")
        out.append((number, record))
    return out


def _corrupt(path: Path, number: int, why: str) -> MonitoringError:
    return MonitoringError(
        f"{path}, line {number}: a corrupt traffic record ({why}); move the file out of the traffic folder "
        f"or delete that line"
    )


def _rows(record: dict[str, Any], path: Path, number: int, cutoff: float | None) -> list[dict[str, Any]]:
    for key, kind in (
        ("request_id", str),
        ("time", str),
        ("release", str),
        ("endpoint", str),
        ("rows", list),
        ("outputs", dict),
    ):
        if not isinstance(record.get(key), kind):
            raise _corrupt(path, number, f"{key!r} missing or not a {kind.__name__}")
    try:
        when = datetime.fromisoformat(record["time"])
    except ValueError:
        raise _corrupt(path, number, f"time {record['time']!r} is not an ISO-8601 time") from None
    if when.tzinfo is None:
        raise _corrupt(path, number, f"time {record['time']!r} has no time zone")
    if cutoff is not None and when.timestamp() < cutoff:
        return []
    inputs, outputs = record["rows"], record["outputs"]
    predictions = outputs.get(PREDICTION)
    probabilities = outputs.get("probabilities")
    classes = outputs.get("classes")
    if not isinstance(predictions, list) or len(predictions) != len(inputs):
        raise _corrupt(path, number, f"{len(inputs)} rows but outputs.prediction is not a list of as many")
    if probabilities is not None:
        if not isinstance(probabilities, list) or len(probabilities) != len(inputs):
            raise _corrupt(
                path, number, f"{len(inputs)} rows but outputs.probabilities is not a list of as many"
            )
        width = len(probabilities[0]) if probabilities else 0
        names = classes if isinstance(classes, list) and len(classes) == width else list(range(width))
        columns = [probability_column(c) for c in names]
    base = {k: record[k] for k in ("request_id", "time", "release", "endpoint")}
    out = []
    for index, values in enumerate(inputs):
        if not isinstance(values, dict):
            raise _corrupt(path, number, f"row {index} is not an object of column: value")
        row = {**values, **base, "row": index, PREDICTION: predictions[index]}
        if probabilities is not None:
            shares = probabilities[index]
            if not isinstance(shares, list) or len(shares) != len(columns):
                raise _corrupt(path, number, f"row {index}'s probabilities are not a list of {len(columns)}")
            row.update(zip(columns, shares, strict=True))
        out.append(row)
    return out


def traffic_drift(
    release: str,
    since: str | float | None = None,
    *,
    reference: Any = None,
    method: str = "auto",
    threshold: float | None = None,
    project: Any = None,
    folder: str | os.PathLike[str] | None = None,
) -> DriftReport:
    """Drift of a release's served traffic from its reference profile: the inputs as received, the predictions
    and, over the requests to ``/predict_proba``, the class probabilities.

    Args:
        release: The release name.
        since: Only the traffic of this last period: ``"1h"``, ``"30m"``... or seconds (default: all kept).
        reference: The reference (anything :func:`~kepler.monitoring.data_drift` takes); default the release's
            reference profile.
        method: As :func:`~kepler.monitoring.data_drift`.
        threshold: As :func:`~kepler.monitoring.data_drift`.
        project: The project; the one containing the working directory by default.
        folder: Read the traffic from this folder instead of the release's.

    Returns:
        The drift report (``drift_share`` from kepler.toml's ``[monitoring] drift_share``).

    Raises:
        VersioningError: an unknown release.
        MonitoringError: no traffic in the window, a corrupt recording, or a bad ``since``.
    """
    from kepler.monitoring.drift import data_drift
    from kepler.monitoring.settings import load_settings, parse_duration

    since_s = None
    if since is not None:
        since_s = float(since) if isinstance(since, (int, float)) else parse_duration(since, "--since")
    frame = read_traffic(release, since_s, project=project, folder=folder)
    if frame.empty:
        window = f" in the last {since}" if since is not None else ""
        raise MonitoringError(
            f"no traffic recorded for release {release!r}{window}; send it requests, or widen --since"
        )
    probabilities = [c for c in frame.columns if str(c).startswith("probability[")]
    values = frame.drop(columns=[*META_COLUMNS, *probabilities])
    if reference is None:
        reference = _release_reference(release, project)
        values = _as_the_model_reads(values, release, project)
    root = None if project is None else getattr(project, "root", None)
    share = load_settings(root).drift_share
    report = data_drift(reference, values, method=method, threshold=threshold, drift_share=share)
    answered = frame.loc[frame["endpoint"] == "predict_proba", probabilities] if probabilities else None
    if answered is None or answered.empty:
        return report
    try:
        extra = data_drift(reference, answered, method=method, threshold=threshold, drift_share=share)
    except MonitoringError:  # the reference profiles no probabilities
        return report
    return _merged(report, extra)


def _as_the_model_reads(values: pd.DataFrame, release: str, project: Any) -> pd.DataFrame:
    """Served inputs with each missing categorical value as the category the model reads it as (``missing_as``).

    The artifact's reference profile was taken on the training table, where such values already stood as that
    category; served rows are recorded as received, with the value missing. Without this, every column that
    had missing values in training would show a category drifting to zero.
    """
    from kepler.monitoring.sources import release_artifact
    from kepler.runtimes.manifest import read_manifest

    schema = read_manifest(release_artifact(release, project=project)).input_schema
    fills = {
        column.name: column.missing_as
        for column in schema.columns
        if column.missing_as is not None and column.name in values.columns
    }
    if not fills:
        return values
    filled = values.copy(deep=False)
    for name, category in fills.items():
        filled[name] = values[name].astype(object).where(values[name].notna(), category)
    return filled


def _release_reference(release: str, project: Any) -> Any:
    try:
        from kepler.monitoring.sources import release_reference
    except ImportError:
        raise MonitoringError(
            f"release references are not available in this installation; pass reference= to compare release "
            f"{release!r}'s traffic with"
        ) from None
    return release_reference(release, project=project)


def _merged(first: DriftReport, second: DriftReport) -> DriftReport:
    """One report of two over different columns of the same traffic (the probabilities cover fewer rows)."""
    from dataclasses import replace

    rows = [*first.columns, *second.columns]
    tested = list(dict.fromkeys(row.column for row in rows))
    drifted = {row.column for row in rows if row.drifted}
    share = len(drifted) / len(tested) if tested else 0.0
    return replace(
        first,
        columns=rows,
        drift_share=share,
        dataset_drift=share >= first.share_threshold,
        skipped=[s for s in first.skipped if not s[0].startswith("probability[")]
        + [s for s in second.skipped if s[0].startswith("probability[")],
        distributions={**first.distributions, **second.distributions},
    )
