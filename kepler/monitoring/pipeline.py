"""``kp.monitoring.pipeline_stability``: drift of a feature pipeline's output columns across its versions or data.

Two comparisons, each of the transformed tables (the pipeline's output columns) with
:func:`~kepler.monitoring.drift.data_drift`, so every column gets Evidently's test and thresholds:

* **versions**: two fitted versions of one pipeline on the same data (``versions=("v1", "v2")``): which
  features a new version changes. Features only one version makes are listed as not tested.
* **data**: one fitted version across two data versions (``data_versions=("d1", "d2")``): which
  features move with the data.

Only fitted versions are compared: applying an unfitted one would fit it (and commit its state), which a
check must not do. The label column the version was fitted without is left out, as the version leaves it out.

Example::

    report = kp.monitoring.pipeline_stability("sensor-prep", versions=("v1", "v2"), data_versions="sensors-3f2a")
    report.drifted_features        # ['temperature']
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kepler.errors import MonitoringError, ProjectNotFoundError, VersioningError
from kepler.monitoring.drift import DriftReport, data_drift

if TYPE_CHECKING:
    import pandas as pd

MODES = ("versions", "data")


@dataclass
class PipelineStabilityReport:
    """Drift of each transformed feature between two runs of a feature pipeline.

    Attributes:
        pipeline_name: The pipeline.
        mode: ``versions`` (two versions, the same data) or ``data`` (one version, two data versions).
        reference: ``{"pipeline_version", "data"}`` of the reference side.
        current: The same for the current side.
        drift: The drift report of the transformed tables.
    """

    pipeline_name: str
    mode: str
    reference: dict[str, str]
    current: dict[str, str]
    drift: DriftReport

    @property
    def features(self) -> list[str]:
        """The tested features, in the reference's order."""
        return self.drift.tested_columns

    @property
    def drifted_features(self) -> list[str]:
        """The features that drifted."""
        return self.drift.drifted_columns

    @property
    def dataset_drift(self) -> bool:
        """Whether the share of drifted features reached the drift share."""
        return self.drift.dataset_drift

    @property
    def subject_versions(self) -> list[str]:
        """The pipeline ids (``name@version``) compared, the current one last."""
        ids = [f"{self.pipeline_name}@{self.reference['pipeline_version']}"]
        ids.append(f"{self.pipeline_name}@{self.current['pipeline_version']}")
        return list(dict.fromkeys(ids))

    def describe(self) -> str:
        """One line saying what was compared."""
        if self.mode == "versions":
            return (
                f"feature pipeline {self.pipeline_name}: version {self.reference['pipeline_version']} "
                f"against {self.current['pipeline_version']} on data {self.current['data']}"
            )
        return (
            f"feature pipeline {self.pipeline_name}@{self.current['pipeline_version']}: data "
            f"{self.reference['data']} against {self.current['data']}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The drift report's dict (``columns``, ``drift_share``, ``dataset_drift``) with what was compared:
        ``pipeline``, ``mode``, ``reference``, ``current``, ``drifted_features`` and ``not_tested``."""
        return {
            "pipeline": self.pipeline_name,
            "mode": self.mode,
            "reference": dict(self.reference),
            "current": dict(self.current),
            **self.drift.to_dict(),
            "drifted_features": self.drifted_features,
            "not_tested": [{"feature": name, "reason": why} for name, why in self.drift.skipped],
        }

    def summary(self) -> str:
        """One line: what was compared and the verdict."""
        return f"{self.describe()}: {self.drift.summary()}"

    def table(self) -> Any:
        """The drift rows as a Rich table, titled with what was compared."""
        table = self.drift.table()
        table.title = f"Pipeline stability: {self.describe()}"
        return table

    def render_html(self) -> str:
        """The drift report's page, titled with what was compared (offline: inline CSS and SVG)."""
        from html import escape

        page = self.drift.render_html()
        page = page.replace(
            "<title>Data drift</title>", f"<title>Pipeline stability: {escape(self.pipeline_name)}</title>", 1
        )
        return page.replace(
            "<header>",
            f'<header><p class="meta">Pipeline stability, {escape(self.describe())}: '
            f"the drift of each output feature.</p>",
            1,
        )

    def to_html(self, path: str | os.PathLike[str]) -> Path:
        """Writes :meth:`render_html`'s page to ``path`` atomically; returns the path."""
        from kepler import atomic_files

        return atomic_files.write_text(path, self.render_html())

    def raise_if_drifted(self) -> None:
        """Raises :class:`~kepler.errors.DriftDetected` when the transformed table drifted.

        Raises:
            DriftDetected: ``dataset_drift`` is true.
        """
        self.drift.raise_if_drifted()


def pipeline_stability(
    pipeline_name: str,
    *,
    versions: str | tuple[str, ...] | list[str] | None = None,
    data_versions: Any = None,
    method: str = "auto",
    threshold: float | None = None,
    project: Any = None,
) -> PipelineStabilityReport:
    """The drift of each feature a versioned pipeline outputs, between two versions or two data versions.

    Exactly one of ``versions`` and ``data_versions`` names two things:

    * ``versions=("v1", "v2")``: both versions transform the same data, ``data_versions="d"`` (one data
      version id, a CSV or Parquet path, or a DataFrame; default the project's newest data version);
    * ``data_versions=("d1", "d2")``: one version (``versions="v2"``; default the pipeline's newest fitted
      version) transforms both.

    Args:
        pipeline_name: The feature pipeline's name.
        versions: Two versions, or the one version to use.
        data_versions: Two data sides, or the one to use.
        method: The drift method (as :func:`~kepler.monitoring.drift.data_drift` takes it).
        threshold: The threshold of every test (default: kepler.toml's ``[monitoring.thresholds]``, else
            each method's own).
        project: The project; default the one containing the working directory.

    Returns:
        The report.

    Raises:
        MonitoringError: not two of either, an unknown pipeline, version or data version, an unfitted
            version, data a version cannot transform, no project, or the drift's own errors.
        DataError: a table that cannot be read or has no rows.
    """
    from kepler.versioning.project import current

    try:
        project = current(project)
    except ProjectNotFoundError:
        raise MonitoringError(
            "pipeline stability needs the Kepler project that holds the pipeline; run it inside one"
        ) from None
    pipeline_versions, data = _pair(versions, "versions"), _pair(data_versions, "data_versions")
    if len(pipeline_versions) == 2 and len(data) == 2:
        raise MonitoringError(
            "pass two pipeline versions (same data) or two data versions (one pipeline version), not both"
        )
    if len(pipeline_versions) == 2:
        mode = "versions"
        data = data or [_newest_data(project)]
        if len(data) != 1:
            raise MonitoringError("with two pipeline versions, name one data version to transform")
        sides = [(pipeline_versions[0], data[0]), (pipeline_versions[1], data[0])]
    elif len(data) == 2:
        mode = "data"
        version = pipeline_versions[0] if pipeline_versions else _newest_fitted(project, pipeline_name)
        sides = [(version, data[0]), (version, data[1])]
    else:
        raise MonitoringError(
            "name two pipeline versions (versions=('v1', 'v2'), --versions V1 V2) or two data versions "
            "(data_versions=('d1', 'd2'), --data D1 D2) to compare"
        )
    tables, labels = [], []
    for version, side in sides:
        frame, label = _table(side, project)
        tables.append(_transform(project, pipeline_name, version, frame, label))
        labels.append({"pipeline_version": version, "data": label})
    report = data_drift(tables[0], tables[1], method=method, threshold=threshold)
    return PipelineStabilityReport(pipeline_name, mode, labels[0], labels[1], report)


def _pair(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (tuple, list)):
        if len(value) not in (1, 2):
            raise MonitoringError(f"{what} takes one or two items, got {len(value)}")
        return list(value)
    return [value]


def _newest_data(project: Any) -> str:
    from kepler.versioning.data_versions import list_versions

    versions = list_versions(project=project)
    if not versions:
        raise MonitoringError(
            "the project has no data version to transform; version one (`kepler versioning version-data`) "
            "or name a table"
        )
    return str(versions[-1].version_id)


def _newest_fitted(project: Any, pipeline_name: str) -> str:
    from kepler.versioning.features import list_pipelines

    versions = [p for p in list_pipelines(project=project) if p.pipeline_name == pipeline_name]
    fitted = [p for p in versions if p.fitted is not None]
    if not fitted:
        raise MonitoringError(
            f"feature pipeline {pipeline_name!r} has no fitted version"
            + ("" if versions else " (no version at all)")
            + "; apply a version once (kp.versioning.apply_versioned_pipeline) before checking it"
        )
    return fitted[-1].version


def _table(side: Any, project: Any) -> tuple[pd.DataFrame, str]:
    """A data side as a table, and how the report names it."""
    import pandas as pd

    from kepler.data.tables import read_table

    if isinstance(side, pd.DataFrame):
        return side, "DataFrame"
    if isinstance(side, (str, os.PathLike)):
        path = Path(side)
        if path.is_file():
            frame: pd.DataFrame = read_table(path)
            return frame, os.fspath(side)
        if isinstance(side, str):
            return _data_version(project, side), side
    raise MonitoringError(
        f"data side {side!r} is neither a data version id, a CSV or Parquet path nor a DataFrame"
    )


def _data_version(project: Any, name: str) -> pd.DataFrame:
    """The table of a data version, read from its exact bytes."""
    from kepler.data.tables import read_table_bytes
    from kepler.versioning import data_versions

    try:
        record = data_versions.get_data_version(name, project=project)
    except VersioningError:
        raise MonitoringError(
            f"data {name!r} is neither a file nor a data version of this project; pass a CSV or Parquet "
            f"path or a data version id (`kepler versioning list-data`)"
        ) from None
    data = data_versions.get_data(record, project=project)
    frame: pd.DataFrame = read_table_bytes(data, f"{record.version_id}{Path(record.file_path).suffix}")
    return frame


def _transform(
    project: Any, pipeline_name: str, version: str, frame: pd.DataFrame, data: str
) -> pd.DataFrame:
    import pandas as pd

    from kepler.versioning.features import apply_versioned_pipeline, get_pipeline

    if not isinstance(version, str):
        raise MonitoringError(f"pipeline version {version!r} must be text, like v1.2.0")
    try:
        record = get_pipeline(pipeline_name, version, project=project)
    except VersioningError as exc:
        raise MonitoringError(str(exc)) from None
    if record.fitted is None:
        raise MonitoringError(
            f"feature pipeline {record.pipeline_id} is not fitted yet, so it has no output to check; "
            f"apply it once (kp.versioning.apply_versioned_pipeline) first"
        )
    try:
        out = apply_versioned_pipeline(frame, pipeline_name, version, project=project)
    except VersioningError as exc:
        raise MonitoringError(f"{exc} (data {data})") from None
    if not isinstance(out, pd.DataFrame):  # a 2-D array only comes from array input
        out = pd.DataFrame(out, columns=[f"x{i}" for i in range(out.shape[1])])
    return out


def pipeline_release(report: PipelineStabilityReport, *, project: Any = None) -> str | None:
    """The release a pipeline check is recorded on: one that ships the current side's pipeline version.

    A release ships ``name@version`` when its unified version's ``feature_pipeline`` or one of its
    components names it. Of several, a production release is preferred, then the highest version.
    None when no release ships it, or outside a project.
    """
    from kepler.versioning import semver
    from kepler.versioning.project import current
    from kepler.versioning.releases import list_releases
    from kepler.versioning.unified import get_unified_version

    try:
        project = current(project)
    except ProjectNotFoundError:
        return None
    wanted = f"{report.pipeline_name}@{report.current['pipeline_version']}"
    shipping = []
    for release in list_releases(project=project):
        named = wanted in {str(v) for v in release.components.values()}
        if not named and release.unified_version:
            try:
                unified = get_unified_version(release.unified_version, project=project)
            except VersioningError:
                continue
            named = unified.feature_pipeline == wanted
        if named:
            shipping.append(release)
    if not shipping:
        return None
    best = max(shipping, key=lambda r: (r.status == "production", semver.parse(r.version).precedence))
    return str(best.release_id)
