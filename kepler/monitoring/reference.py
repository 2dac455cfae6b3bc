"""Reference profiles: a compact, JSON-safe summary of a table that drift is measured against.

A profile holds, for each numeric column, 20 equal-mass (quantile) bins with their counts and where the
mean of each bin lies, the missing count, the minimum and maximum, the mean and the standard deviation;
for each categorical column, its category counts (the 20 most frequent, the rest in an "other" bucket);
and, optionally, the same for the model's predictions and probabilities, and a classifier's calibration
table for label-free performance estimates (:mod:`kepler.monitoring.calibration`). It stays at or under
64 KB of JSON per 100 columns (:data:`BYTES_PER_100_COLUMNS`). Every compiled artifact stores one of its
sample and its outputs (``reference.json``, :func:`model_profile`).

Exactness (what a profile keeps, and what the drift tests can therefore compute exactly):

- A numeric column with at most 20 distinct values keeps every value with its count, so every test
  on it is exact.
- A reference of at most 1,000 rows keeps its numeric values themselves, so that KS (the test
  Evidently picks for such references) is exactly scipy's; when they would push the profile over its
  size budget, they are left out and KS is computed from the bins (see :mod:`kepler.monitoring.statistics`).
- Otherwise a numeric column is known through its bins. The bins carry the mean of their values, which
  makes the Wasserstein distance exact wherever the two distributions do not cross inside a bin.

Bins follow numpy's histogram convention: ``[edges[i], edges[i+1])``, the last one closed. The first
and last edges are the column's exact minimum and maximum; inner edges are rounded to 6 significant
digits of the column's range, and counts are taken against the rounded edges, so a profile that went
through JSON is the same profile.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from kepler.errors import MonitoringError

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = 1
BINS = 20
MAX_CATEGORIES = 20
MAX_DISTINCT = 20  # numeric columns with this many distinct values or fewer keep them all (Evidently's rule)
EXACT_ROWS = 1000  # references up to this many rows keep their numeric values (Evidently's KS range)
BYTES_PER_100_COLUMNS = 64 * 1024
_POSITION_DECIMALS = 2  # a bin mean's place between its edges: 1% of the bin's width is ample for W1

Kind = Literal["numeric", "categorical"]


@dataclass
class NumericColumn:
    """The profile of one numeric column.

    Attributes:
        name: Column name.
        count: Values present (finite).
        missing: Values missing (NaN, None, ±inf).
        mean: Mean of the values present (None when there are none).
        std: Population standard deviation (ddof=0, as Evidently norms Wasserstein by) or None.
        edges: Bin edges, ascending; ``edges[0]`` is the minimum and ``edges[-1]`` the maximum.
        counts: Values per bin (``len(edges) - 1`` bins).
        positions: Where each bin's mean lies between its edges, 0 (left) to 1 (right).
        distinct: Every distinct value, ascending, when there are at most 20 of them; else None.
        distinct_counts: The count of each distinct value, or None.
        values: Every value present, ascending, for small references (exact KS); else None.
    """

    name: str
    count: int
    missing: int
    mean: float | None
    std: float | None
    edges: list[float]
    counts: list[int]
    positions: list[float]
    distinct: list[float] | None = None
    distinct_counts: list[int] | None = None
    values: np.ndarray | None = field(default=None, repr=False)
    kind: Kind = field(default="numeric", init=False)

    @property
    def rows(self) -> int:
        """Rows of the reference (values present plus missing)."""
        return self.count + self.missing

    @property
    def missing_rate(self) -> float:
        """Share of missing values."""
        return self.missing / self.rows if self.rows else 0.0

    @property
    def min(self) -> float | None:
        """The smallest value."""
        return self.edges[0] if self.edges else None

    @property
    def max(self) -> float | None:
        """The largest value."""
        return self.edges[-1] if self.edges else None

    def bin_sums(self) -> np.ndarray:
        """The sum of the values in each bin, from the counts and the positions of the bin means."""
        edges = np.asarray(self.edges, dtype=float)
        if edges.size < 2:
            return np.zeros(0)
        left, width = edges[:-1], np.diff(edges)
        sums: np.ndarray = np.asarray(self.counts, dtype=float) * (left + np.asarray(self.positions) * width)
        return sums

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields (non-finite numbers never occur: missing values are counted, not stored)."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "mean": self.mean,
            "std": self.std,
            "edges": self.edges,
            "counts": self.counts,
            "positions": self.positions,
        }
        if self.distinct is not None:
            out["distinct"] = self.distinct
            out["distinct_counts"] = self.distinct_counts
        if self.values is not None:
            out["values"] = self.values.tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NumericColumn:
        """A column profile from :meth:`to_dict`'s output."""
        values = data.get("values")
        return cls(
            name=str(data["name"]),
            count=int(data["count"]),
            missing=int(data["missing"]),
            mean=_float_or_none(data.get("mean")),
            std=_float_or_none(data.get("std")),
            edges=[float(v) for v in data["edges"]],
            counts=[int(v) for v in data["counts"]],
            positions=[float(v) for v in data["positions"]],
            distinct=None if data.get("distinct") is None else [float(v) for v in data["distinct"]],
            distinct_counts=None
            if data.get("distinct_counts") is None
            else [int(v) for v in data["distinct_counts"]],
            values=None if values is None else np.asarray(values, dtype=float),
        )


@dataclass
class CategoricalColumn:
    """The profile of one categorical column.

    Attributes:
        name: Column name.
        count: Values present.
        missing: Values missing.
        categories: Count per category (values as text), most frequent first, at most 20 of them.
        other: Values of the categories left out of ``categories``.
        other_categories: How many categories were left out.
    """

    name: str
    count: int
    missing: int
    categories: dict[str, int]
    other: int = 0
    other_categories: int = 0
    kind: Kind = field(default="categorical", init=False)

    @property
    def rows(self) -> int:
        """Rows of the reference (values present plus missing)."""
        return self.count + self.missing

    @property
    def missing_rate(self) -> float:
        """Share of missing values."""
        return self.missing / self.rows if self.rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields."""
        return {
            "name": self.name,
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "categories": dict(self.categories),
            "other": self.other,
            "other_categories": self.other_categories,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoricalColumn:
        """A column profile from :meth:`to_dict`'s output."""
        return cls(
            name=str(data["name"]),
            count=int(data["count"]),
            missing=int(data["missing"]),
            categories={str(k): int(v) for k, v in data["categories"].items()},
            other=int(data.get("other", 0)),
            other_categories=int(data.get("other_categories", 0)),
        )


ColumnProfile = NumericColumn | CategoricalColumn


@dataclass
class ReferenceProfile:
    """A table's reference profile: what drift is measured against, without the table itself.

    Attributes:
        rows: Rows of the profiled table.
        columns: One profile per input column, in the table's order.
        outputs: Profiles of the model's outputs (``prediction``, ``probability[<class>]``), if given.
        calibration: The calibration table for label-free performance estimation (CBPE), as
            ``kepler.monitoring.calibration.CalibrationTable.to_dict()`` gives it; None when no labels
            were known (profiles written before it read as None).
        schema_version: Version of this layout (:data:`SCHEMA_VERSION`).
    """

    rows: int
    columns: list[ColumnProfile]
    outputs: list[ColumnProfile] = field(default_factory=list)
    calibration: dict[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        predictions: Any = None,
        probabilities: Any = None,
        classes: list[Any] | None = None,
        max_bytes: int | None = None,
    ) -> ReferenceProfile:
        """Profiles a table (and optionally the model's outputs on it).

        Args:
            frame: The reference table (never modified). Numeric columns (bool excluded) are profiled
                as numeric, everything else as categorical; datetime and timedelta columns are skipped.
            predictions: The model's predictions on ``frame`` (one per row), if any.
            probabilities: Its class probabilities, shape ``(rows, classes)``, if any.
            classes: Class names for the probability columns (default ``0, 1, ...``).
            max_bytes: Size budget of the JSON; default 64 KB per 100 columns (at least 64 KB).

        Returns:
            The profile, within its size budget (see the module docstring for what gives way first).

        Raises:
            MonitoringError: the table has no rows, or the outputs do not match its rows.
        """
        if len(frame) == 0 or frame.shape[1] == 0:
            raise MonitoringError("the reference table has no data rows; profile a table with data rows")
        columns = [
            profile_column(str(name), frame[name]) for name in frame.columns if is_profiled(frame[name])
        ]
        outputs = _output_profiles(len(frame), predictions, probabilities, classes)
        profile = cls(rows=len(frame), columns=columns, outputs=outputs)
        budget = max_bytes if max_bytes is not None else size_budget(len(columns) + len(outputs))
        return profile.fit_budget(budget)

    def column(self, name: str) -> ColumnProfile | None:
        """The profile of an input or output column by name, or None."""
        for profile in (*self.columns, *self.outputs):
            if profile.name == name:
                return profile
        return None

    @property
    def names(self) -> list[str]:
        """Input column names, then output column names."""
        return [c.name for c in (*self.columns, *self.outputs)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe content (``calibration`` only when there is one)."""
        out: dict[str, Any] = {
            "schema_version": self.schema_version,
            "rows": self.rows,
            "columns": [c.to_dict() for c in self.columns],
            "outputs": [c.to_dict() for c in self.outputs],
        }
        if self.calibration is not None:
            out["calibration"] = self.calibration
        return out

    def to_json(self) -> str:
        """Compact JSON text (what the size budget counts)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReferenceProfile:
        """A profile from :meth:`to_dict`'s output.

        Raises:
            MonitoringError: the content is not a profile, or one of a newer schema version.
        """
        if not isinstance(data, dict) or "columns" not in data or "rows" not in data:
            raise MonitoringError("not a reference profile (no 'rows' and 'columns'); pass a profile's JSON")
        version = data.get("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise MonitoringError(
                f"reference profile schema version {version!r} is newer than this Kepler reads "
                f"({SCHEMA_VERSION}); upgrade Kepler"
            )
        calibration = data.get("calibration")
        if calibration is not None and not isinstance(calibration, dict):
            raise MonitoringError(
                f"a reference profile whose calibration is a {type(calibration).__name__}, not an object; "
                f"recompute it"
            )
        try:
            return cls(
                rows=int(data["rows"]),
                columns=[_column_from_dict(c) for c in data["columns"]],
                outputs=[_column_from_dict(c) for c in data.get("outputs", [])],
                calibration=calibration,
                schema_version=version,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MonitoringError(
                f"a reference profile with a bad field ({type(exc).__name__}: {exc}); recompute it"
            ) from None

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the profile as JSON, atomically.

        Returns:
            The path written.
        """
        from kepler import atomic_files

        return atomic_files.write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReferenceProfile:
        """Reads a profile written by :meth:`save`.

        Raises:
            MonitoringError: the file is missing, not JSON, or not a profile.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise MonitoringError(f"{path}: cannot read the reference profile ({exc.strerror})") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise MonitoringError(
                f"{path}: not JSON; pass a profile written by ReferenceProfile.save"
            ) from None
        try:
            return cls.from_dict(data)
        except MonitoringError as exc:
            raise MonitoringError(f"{path}: {exc}") from None

    def fit_budget(self, max_bytes: int) -> ReferenceProfile:
        """Shrinks the profile, in place, until its JSON fits ``max_bytes``.

        What gives way, in order: the kept numeric values of a small reference (KS is then computed
        from the bins), then categories beyond the 10, then beyond the 5, most frequent ones (into
        "other"), then every named category, then half the numeric bins at a time (neighbours merged),
        down to two. Whatever is left is kept even if it is still larger (column names alone can be).

        Returns:
            The profile itself.
        """
        if self._size() <= max_bytes:
            return self
        for profile in (*self.columns, *self.outputs):
            if isinstance(profile, NumericColumn):
                profile.values = None
        for cap in (10, 5, 0):
            if self._size() <= max_bytes:
                break
            for profile in (*self.columns, *self.outputs):
                if isinstance(profile, CategoricalColumn):
                    _cap_categories(profile, cap)
        while self._size() > max_bytes and any(
            isinstance(p, NumericColumn) and len(p.counts) > 2 for p in (*self.columns, *self.outputs)
        ):
            for profile in (*self.columns, *self.outputs):
                if isinstance(profile, NumericColumn):
                    _halve_bins(profile)
        return self

    def _size(self) -> int:
        return len(self.to_json().encode("utf-8"))


def model_profile(
    frame: pd.DataFrame,
    *,
    task: str,
    outputs: dict[str, np.ndarray],
    numeric: Sequence[str] = (),
    classes: Sequence[Any] | None = None,
    calibration: dict[str, Any] | None = None,
    max_bytes: int | None = None,
) -> ReferenceProfile:
    """The reference profile of a model's input table and of the model's outputs on it (what an artifact keeps).

    Args:
        frame: The input table (the model's columns).
        task: ``classifier``, ``regressor`` or ``outlier`` (the manifest's ``output_schema.task``).
        outputs: The model's outputs on ``frame``: ``label`` (classifiers and outlier detectors) and
            ``values`` (class probabilities, shape ``(rows, classes)``; a regressor's values), as
            ``kepler.compilers.parity.compiled_outputs`` gives them.
        numeric: Columns the model reads as numbers: profiled as numbers even where the table holds
            them as text or booleans (text that is no number counts as missing, as the runtime reads it).
        classes: A classifier's classes, in the order of the probability columns.
        calibration: The calibration table to store (``CalibrationTable.to_dict()``), if any.
        max_bytes: Size budget (default: :func:`size_budget` of the columns and outputs).

    Returns:
        The profile: the inputs, then ``prediction`` and, for a classifier, ``probability[<class>]``.
        A regressor of several outputs and an outlier detector's scores get no output profile beyond
        ``prediction`` (the former none at all).

    Raises:
        MonitoringError: the table has no rows, or the outputs do not match its rows.
    """
    import pandas as pd

    typed = frame
    wanted = [name for name in numeric if name in frame.columns and not is_numeric(frame[name])]
    if wanted:
        typed = frame.copy(deep=False)
        for name in wanted:
            column = frame[name]
            typed[name] = (
                column.astype("float64")
                if pd.api.types.is_bool_dtype(column.dtype)
                else pd.to_numeric(column, errors="coerce")
            )
    predictions = probabilities = None
    values = outputs.get("values")
    if task == "classifier":
        predictions, probabilities = outputs.get("label"), values
    elif task == "outlier":
        predictions = outputs.get("label")
    elif values is not None and np.asarray(values).reshape(len(frame), -1).shape[1] == 1:
        predictions = np.asarray(values).ravel()
    profile = ReferenceProfile.from_frame(
        typed,
        predictions=predictions,
        probabilities=probabilities,
        classes=None if classes is None or probabilities is None else list(classes),
        max_bytes=max_bytes,
    )
    if calibration is not None:
        profile.calibration = calibration
        profile.fit_budget(
            max_bytes if max_bytes is not None else size_budget(len(profile.columns) + len(profile.outputs))
        )
    return profile


def size_budget(columns: int) -> int:
    """The JSON size budget of a profile of ``columns`` columns: 64 KB per 100 columns, at least 64 KB."""
    return max(BYTES_PER_100_COLUMNS, math.ceil(BYTES_PER_100_COLUMNS * columns / 100))


def profile_column(
    name: str,
    series: pd.Series,
    *,
    keep_values: bool | None = None,
    max_categories: int | None = MAX_CATEGORIES,
) -> ColumnProfile:
    """The profile of one column.

    Args:
        name: Column name.
        series: Its values.
        keep_values: Keep every numeric value (exact KS). Default: when the column has at most
            :data:`EXACT_ROWS` rows.
        max_categories: Categories kept by name (None: all of them).

    Returns:
        A :class:`NumericColumn` or :class:`CategoricalColumn`.
    """
    if is_numeric(series):
        values = present_values(series)
        keep = len(series) <= EXACT_ROWS if keep_values is None else keep_values
        return numeric_profile(name, np.sort(values), len(series) - values.size, keep_values=keep)
    counts, missing = category_counts(series)
    return categorical_profile(name, counts, missing, max_categories)


def numeric_profile(name: str, ordered: np.ndarray, missing: int, *, keep_values: bool) -> NumericColumn:
    """The profile of a numeric column from its present values, sorted ascending.

    Args:
        name: Column name.
        ordered: The finite values, ascending.
        missing: How many values were missing.
        keep_values: Keep ``ordered`` itself in the profile.

    Returns:
        The column profile.
    """
    n = int(ordered.size)
    if n == 0:
        return NumericColumn(name, 0, missing, None, None, [], [], [])
    edges = quantile_edges(ordered, BINS)
    before = bin_cumulative(ordered, edges)
    counts = np.diff(before)
    sums = _range_sums(ordered, before, float(edges[0]))
    widths = np.diff(edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        means_offset = sums / counts  # mean of each bin minus edges[0]
        positions = (means_offset - (edges[:-1] - edges[0])) / widths
    positions = np.where((counts > 0) & (widths > 0), positions, 0.0)
    positions = np.round(np.clip(positions, 0.0, 1.0), _POSITION_DECIMALS)
    distinct = distinct_counts = None
    changes = np.flatnonzero(np.diff(ordered)) + 1
    if changes.size + 1 <= MAX_DISTINCT:
        starts = np.concatenate([[0], changes])
        distinct = [float(v) for v in ordered[starts]]
        distinct_counts = [int(c) for c in np.diff(np.concatenate([starts, [n]]))]
    return NumericColumn(
        name=name,
        count=n,
        missing=int(missing),
        mean=_significant(float(ordered.mean())),
        std=_significant(float(ordered.std())),
        edges=[float(e) for e in edges],
        counts=[int(c) for c in counts],
        positions=[float(p) for p in positions],
        distinct=distinct,
        distinct_counts=distinct_counts,
        values=ordered if keep_values else None,
    )


def categorical_profile(
    name: str, counts: dict[str, int], missing: int, max_categories: int | None = MAX_CATEGORIES
) -> CategoricalColumn:
    """The profile of a categorical column from its category counts.

    Args:
        name: Column name.
        counts: Count per category (text).
        missing: Missing values.
        max_categories: Categories kept by name (None: all).

    Returns:
        The column profile.
    """
    ordered = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    profile = CategoricalColumn(name, int(sum(ordered.values())), int(missing), ordered)
    if max_categories is not None:
        _cap_categories(profile, max_categories)
    return profile


def quantile_edges(ordered: np.ndarray, bins: int) -> np.ndarray:
    """Equal-mass bin edges of sorted values: exact minimum and maximum, inner edges rounded.

    Inner edges are rounded to 6 significant digits of the values' range (not of their magnitude, so
    values far from zero keep distinct edges); duplicates from ties are merged. A constant column gets
    the single bin ``[v, v]``.
    """
    lo, hi = float(ordered[0]), float(ordered[-1])
    if lo == hi:
        return np.array([lo, hi])
    levels = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    exponent = math.floor(math.log10(hi - lo)) - 5
    if (
        exponent < 0
    ):  # via decimal text, so that JSON holds the short form ("1.23457", not "1.2345700000000001")
        inner = np.array([float(f"{q:.{-exponent}f}") for q in np.quantile(ordered, levels)])
    else:
        step = 10.0**exponent
        inner = np.round(np.quantile(ordered, levels) / step) * step
    inner = inner[(inner > lo) & (inner < hi)]
    return np.unique(np.concatenate([[lo], inner, [hi]]))


def bin_cumulative(ordered: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """How many of the sorted values fall before each bin boundary (numpy's histogram convention).

    Returns:
        ``before[i]`` = values below ``edges[i]`` for every edge but the last, and values up to and
        including ``edges[-1]`` for the last; so ``diff`` gives the bin counts, ``before[0]`` the values
        below the range and ``size - before[-1]`` those above it.
    """
    before = np.searchsorted(ordered, edges, side="left")
    before[-1] = np.searchsorted(ordered, edges[-1], side="right")
    return before


def _range_sums(ordered: np.ndarray, boundaries: np.ndarray, shift: float) -> np.ndarray:
    """Sums of ``ordered - shift`` between consecutive boundaries (positions into ``ordered``)."""
    cumulative = np.concatenate([[0.0], np.cumsum(ordered - shift)])
    return np.diff(cumulative[boundaries])


def is_numeric(series: pd.Series) -> bool:
    """Whether a column is profiled as numeric: a numeric dtype that is not boolean."""
    import pandas as pd

    dtype = series.dtype
    return bool(pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))


def is_profiled(series: pd.Series) -> bool:
    """Whether a column is profiled (and tested): every dtype but datetime, timedelta and complex."""
    import pandas as pd

    dtype = series.dtype
    return not (
        pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
        or pd.api.types.is_complex_dtype(dtype)
    )


def present_values(series: pd.Series) -> np.ndarray:
    """The finite values of a numeric column as float64 (NaN, None, pd.NA and ±inf are missing).

    A float64 column without missing values is returned without a copy.
    """
    values: np.ndarray = np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan))
    finite = np.isfinite(values)
    return values if finite.all() else values[finite]


def category_counts(series: pd.Series) -> tuple[dict[str, int], int]:
    """Count per category of a column, its values as text, and the number of missing values."""
    counted = series.value_counts(dropna=True, sort=False)
    counts: dict[str, int] = {}
    for key, count in zip(counted.index.tolist(), counted.to_numpy().tolist(), strict=True):
        if count:
            text = str(key)
            counts[text] = counts.get(text, 0) + int(count)
    return counts, int(len(series) - sum(counts.values()))


def _cap_categories(profile: CategoricalColumn, cap: int) -> None:
    if len(profile.categories) <= cap:
        return
    items = list(profile.categories.items())
    kept, dropped = items[:cap], items[cap:]
    profile.categories = dict(kept)
    profile.other += sum(c for _, c in dropped)
    profile.other_categories += len(dropped)


def _output_profiles(
    rows: int, predictions: Any, probabilities: Any, classes: list[Any] | None
) -> list[ColumnProfile]:
    import pandas as pd

    outputs: list[ColumnProfile] = []
    if predictions is not None:
        series = pd.Series(np.asarray(predictions).ravel())
        if len(series) != rows:
            raise MonitoringError(
                f"{len(series)} predictions for {rows} rows; pass one prediction per row of the table"
            )
        outputs.append(profile_column("prediction", series))
    if probabilities is not None:
        table = np.asarray(probabilities, dtype=float)
        if table.ndim == 1:
            table = table[:, None]
        if table.ndim != 2 or table.shape[0] != rows:
            raise MonitoringError(
                f"probabilities of shape {table.shape} for {rows} rows; pass one row of class "
                f"probabilities per row of the table"
            )
        names = list(range(table.shape[1])) if classes is None else list(classes)
        if len(names) != table.shape[1]:
            raise MonitoringError(f"{len(names)} class names for {table.shape[1]} probability columns")
        for index, label in enumerate(names):
            outputs.append(profile_column(f"probability[{label}]", pd.Series(table[:, index])))
    return outputs


def _column_from_dict(data: dict[str, Any]) -> ColumnProfile:
    kind = data.get("kind")
    if kind == "numeric":
        return NumericColumn.from_dict(data)
    if kind == "categorical":
        return CategoricalColumn.from_dict(data)
    raise ValueError(f"unknown column kind {kind!r}")


def _significant(value: float, digits: int = 10) -> float:
    """``value`` to ``digits`` significant digits: short in JSON, and the same after a round trip."""
    return float(f"{value:.{digits}g}")


def _halve_bins(profile: NumericColumn) -> None:
    """Merges each pair of neighbouring bins (the counts add up, the bin means combine)."""
    if len(profile.counts) < 2:
        return
    edges = np.asarray(profile.edges, dtype=float)
    counts = np.asarray(profile.counts, dtype=float)
    offsets = counts * (edges[:-1] - edges[0] + np.asarray(profile.positions) * np.diff(edges))
    keep = np.r_[np.arange(0, edges.size - 1, 2), edges.size - 1]
    pairs = np.add.reduceat(counts, keep[:-1])
    sums = np.add.reduceat(offsets, keep[:-1])
    new_edges = edges[keep]
    widths = np.diff(new_edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        positions = (sums / pairs - (new_edges[:-1] - new_edges[0])) / widths
    positions = np.where((pairs > 0) & (widths > 0), positions, 0.0)
    profile.edges = [float(e) for e in new_edges]
    profile.counts = [int(c) for c in pairs]
    profile.positions = [float(p) for p in np.round(np.clip(positions, 0.0, 1.0), _POSITION_DECIMALS)]


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)
