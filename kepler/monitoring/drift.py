"""``kp.monitoring.data_drift``: per-column drift between a reference and a current table, Evidently's way.

Each column is tested on its present values: missing values (NaN, None, ±inf) are left out of the
test, as Evidently leaves them out. A change in how often a column is missing is caught by a second
row for that column, method ``missing_share``: the Jensen–Shannon distance between the (missing,
present) shares of the two sides, drifting at 0.1. That row appears only for a column with a missing
value on either side, so a table without missing values gets exactly Evidently's rows. A column
drifts when any of its rows does, and the dataset drifts when at least half its columns drift.

A reference given as a table (DataFrame or file) is used exactly: every statistic is scipy's on the
values. A reference given as a :class:`~kepler.monitoring.reference.ReferenceProfile` is read from its
summary, which is what makes it fast on large tables; :mod:`kepler.monitoring.statistics` says what is
then computed from bins, and how that differs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kepler.errors import DataError, DriftDetected, MonitoringError
from kepler.monitoring import statistics as st
from kepler.monitoring.reference import (
    CategoricalColumn,
    ColumnProfile,
    NumericColumn,
    ReferenceProfile,
    bin_cumulative,
    category_counts,
    is_numeric,
    is_profiled,
    present_values,
    profile_column,
)

if TYPE_CHECKING:
    import pandas as pd

DRIFT_SHARE = 0.5
# One threshold for every test, one per method, or None for each method's default.
Limits = float | Mapping[str, float] | None
OTHER = "(other)"  # the bucket of categories a capped profile does not name
PLOT_CATEGORIES = 20


@dataclass(frozen=True)
class ColumnDrift:
    """One row of a drift report: one test on one column.

    Attributes:
        column: The column name.
        method: The test (:data:`~kepler.monitoring.statistics.METHODS`), or ``missing_share``.
        statistic: The test statistic or distance; None where it is infinite (chi-square with a
            category the reference never had).
        p_value: The p-value, for ks, chi2 and z; else None.
        threshold: The threshold the verdict used.
        drifted: The verdict.
    """

    column: str
    method: str
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON values."""
        return {
            "column": self.column,
            "method": self.method,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "drifted": self.drifted,
        }


@dataclass
class Distribution:
    """Both sides of one column over one set of bins or categories, for the report's charts.

    Attributes:
        kind: ``numeric`` (``labels`` are bin edges, one more than the shares) or ``categorical``.
        labels: Bin edges, or category names.
        reference: Share of the reference's present values per bin or category.
        current: Share of the current's present values per bin or category.
    """

    kind: str
    labels: list[Any]
    reference: list[float]
    current: list[float]


@dataclass
class DriftReport:
    """Drift between two tables: one row per column test, and the verdict on the whole table.

    Attributes:
        columns: The rows, in the reference's column order (a column's ``missing_share`` row follows
            its value row).
        drift_share: Share of the tested columns that drifted.
        dataset_drift: Whether ``drift_share`` reached ``share_threshold``.
        share_threshold: The share of drifted columns at which the dataset drifts (0.5).
        reference_rows: Rows of the reference.
        current_rows: Rows of the current table.
        skipped: Columns not tested, each with the reason.
        distributions: Reference and current distributions of the drifted columns, for charts.
    """

    columns: list[ColumnDrift]
    drift_share: float
    dataset_drift: bool
    share_threshold: float = DRIFT_SHARE
    reference_rows: int = 0
    current_rows: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    distributions: dict[str, Distribution] = field(default_factory=dict, repr=False)

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the columns with a drifted row, in order."""
        return list(dict.fromkeys(row.column for row in self.columns if row.drifted))

    @property
    def tested_columns(self) -> list[str]:
        """Names of the tested columns, in order."""
        return list(dict.fromkeys(row.column for row in self.columns))

    def to_dict(self) -> dict[str, Any]:
        """``{"columns": [{"column", "method", "statistic", "p_value", "threshold", "drifted"}...],
        "drift_share", "dataset_drift"}``: JSON values only."""
        return {
            "columns": [row.to_dict() for row in self.columns],
            "drift_share": self.drift_share,
            "dataset_drift": self.dataset_drift,
        }

    def summary(self) -> str:
        """One line: how many columns drifted and the dataset verdict."""
        drifted, tested = len(self.drifted_columns), len(self.tested_columns)
        verdict = "dataset drift" if self.dataset_drift else "no dataset drift"
        return (
            f"{drifted} of {tested} columns drifted ({self.drift_share:.0%}; the dataset drifts at "
            f"{self.share_threshold:.0%}): {verdict}"
        )

    def table(self) -> Any:
        """The rows as a Rich table, with the summary as its caption."""
        from rich.table import Table

        table = Table(title="Data drift", caption=self.summary())
        for name, justify in (
            ("column", "left"),
            ("method", "left"),
            ("statistic", "right"),
            ("p-value", "right"),
            ("threshold", "right"),
            ("drift", "left"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for row in self.columns:
            table.add_row(
                row.column,
                row.method,
                "inf" if row.statistic is None else f"{row.statistic:.4g}",
                "" if row.p_value is None else f"{row.p_value:.3g}",
                f"{row.threshold:g}",
                "[bold red]drift[/]" if row.drifted else "[green]no drift[/]",
            )
        for name, why in self.skipped:
            table.add_row(name, "", "", "", "", f"[dim]not tested: {why}[/]")
        return table

    def render_html(self) -> str:
        """The report as one self-contained HTML page (inline CSS and SVG, no scripts, no URLs)."""
        from kepler.monitoring.html import render_drift_report

        return render_drift_report(self)

    def to_html(self, path: str | os.PathLike[str]) -> Path:
        """Writes :meth:`render_html`'s page to ``path`` atomically.

        Returns:
            The path written.
        """
        from kepler import atomic_files

        return atomic_files.write_text(path, self.render_html())

    def raise_if_drifted(self) -> None:
        """Raises :class:`~kepler.errors.DriftDetected` when the dataset drifted (for CI gates).

        Raises:
            DriftDetected: ``dataset_drift`` is true.
        """
        if self.dataset_drift:
            drifted = self.drifted_columns
            shown = ", ".join(drifted[:5]) + (f" and {len(drifted) - 5} more" if len(drifted) > 5 else "")
            raise DriftDetected(f"{self.summary()} (drifted: {shown})", self)


def data_drift(
    reference: Any,
    current: Any,
    method: str = "auto",
    threshold: float | None = None,
    columns: Sequence[str] | None = None,
    *,
    drift_share: float | None = None,
) -> DriftReport:
    """Tests each column of ``current`` for drift from ``reference``, with Evidently 0.7's tests.

    Args:
        reference: A DataFrame, a CSV or Parquet path, a :class:`ReferenceProfile` or the path of
            one (``.json``), the id of a data version of the current Kepler project, or the name of
            one of its releases (its artifact's reference profile: :mod:`kepler.monitoring.sources`).
        current: A DataFrame, a CSV or Parquet path, or a data version id (a release is refused).
        method: ``auto`` (Evidently's choice per column) or one of ks, chi2, z, wasserstein,
            jensenshannon, psi. A method that does not apply to a column (ks on categories) leaves
            that column to ``auto``; each row names the test it got.
        threshold: Overrides the default threshold of every column test (as Evidently's
            ``threshold`` does); the ``missing_share`` rows keep 0.1. Default: each method's threshold
            from ``[monitoring.thresholds]`` in kepler.toml, else Evidently's.
        columns: The columns to test (default: every column the two sides share).
        drift_share: The share of drifted columns at which the dataset drifts (default:
            ``[monitoring] drift_share`` in kepler.toml, else 0.5).

    Returns:
        The report.

    Raises:
        MonitoringError: an unknown method, a bad threshold or drift share, a side that is neither a
            table, a profile, a data version nor (as the reference) a release, no column in common,
            or an unknown column.
        DataError: a table that cannot be read or has no rows.

    Example:
        >>> report = kp.monitoring.data_drift("train.csv", "today.parquet")
        >>> report.dataset_drift, report.drifted_columns
        (False, ['temperature'])
    """
    method = _check_method(method)
    limits: Limits = _check_threshold(method, threshold)
    if limits is None or drift_share is None:  # the defaults: kepler.toml's [monitoring], else Evidently's
        from kepler.monitoring.settings import load_settings

        settings = load_settings()
        limits = settings.thresholds if limits is None else limits
        drift_share = settings.drift_share if drift_share is None else drift_share
    if not (isinstance(drift_share, (int, float)) and 0 < drift_share <= 1):
        raise MonitoringError(f"drift_share must be a number in (0, 1], got {drift_share!r}")
    ref = _side(reference, "reference")
    cur = _side(current, "current")
    if isinstance(cur, ReferenceProfile):
        raise MonitoringError(
            "the current side is a reference profile; a profile can only be the reference: pass the "
            "current data as a table"
        )
    if len(cur) == 0 or cur.shape[1] == 0:
        raise DataError("the current table has no data rows; pass a table with data rows")
    if not isinstance(ref, ReferenceProfile) and (len(ref) == 0 or ref.shape[1] == 0):
        raise DataError("the reference table has no data rows; pass a table with data rows")
    names, skipped = _common_columns(ref, cur, columns)

    rows: list[ColumnDrift] = []
    distributions: dict[str, Distribution] = {}
    for name in names:
        profile = _reference_column(ref, name)
        if profile is None:
            skipped.append((name, "a datetime or complex column"))
            continue
        column_rows, distribution = _test_column(profile, cur[name], method, limits)
        rows.extend(column_rows)
        if distribution is not None:
            distributions[name] = distribution
    tested = list(dict.fromkeys(row.column for row in rows))
    if not tested:
        raise MonitoringError(
            "no column could be tested (every common column is a datetime or complex column); "
            "pass tables with numeric or categorical columns in common"
        )
    drifted = {row.column for row in rows if row.drifted}
    share = len(drifted) / len(tested)
    return DriftReport(
        columns=rows,
        drift_share=share,
        dataset_drift=share >= drift_share,
        share_threshold=float(drift_share),
        reference_rows=ref.rows if isinstance(ref, ReferenceProfile) else len(ref),
        current_rows=len(cur),
        skipped=skipped,
        distributions=distributions,
    )


# --------------------------------------------------------------------------- arguments and sides


def _check_method(method: Any) -> str:
    name = str(method).strip().lower() if isinstance(method, str) else method
    if name == "auto" or name in st.METHODS:
        return str(name)
    raise MonitoringError(f"unknown drift method {method!r}; use auto or one of: {', '.join(st.METHODS)}")


def _check_threshold(method: str, threshold: Any) -> float | None:
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise MonitoringError(f"the threshold must be a finite number, got {threshold!r}")
    if threshold <= 0:
        raise MonitoringError(f"the threshold must be above 0, got {threshold:g}")
    if method in st.P_VALUE_METHODS and threshold >= 1:
        raise MonitoringError(
            f"{method} compares a p-value with the threshold, so it must be below 1 (got {threshold:g}); "
            f"the default is {st.DEFAULT_THRESHOLDS[method]:g}"
        )
    return float(threshold)


def _side(value: Any, role: str) -> pd.DataFrame | ReferenceProfile:
    import pandas as pd

    if isinstance(value, (ReferenceProfile, pd.DataFrame)):
        return value
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if path.suffix.lower() == ".json" and path.is_file():
            return ReferenceProfile.load(path)
        if path.exists():
            from kepler.data.tables import read_table

            frame: pd.DataFrame = read_table(path)
            return frame
        if isinstance(value, str):
            return _named(value, role)
        raise MonitoringError(f"{role} {os.fspath(value)}: no such file; pass a CSV, Parquet or profile path")
    raise MonitoringError(
        f"the {role} side is a {type(value).__name__}; pass a DataFrame, a CSV, Parquet or profile "
        f"(.json) path, a data version id, or (as the reference) a release name or a ReferenceProfile"
    )


def _named(name: str, role: str) -> pd.DataFrame | ReferenceProfile:
    """A side given by name: a data version of the current project, or (as the reference) a release."""
    from kepler.errors import ProjectNotFoundError, VersioningError
    from kepler.monitoring import sources
    from kepler.versioning import data_versions

    try:
        data_versions.get_data_version(name)
    except ProjectNotFoundError:
        raise MonitoringError(
            f"{role} {name!r}: no such file, and no Kepler project here to look it up in as a data "
            f"version or release; pass a CSV, Parquet or profile (.json) path"
        ) from None
    except VersioningError:
        if not sources.is_release(name):
            raise MonitoringError(
                f"{role} {name!r} is neither a file, a data version nor a release of this project; pass a "
                f"CSV, Parquet or profile (.json) path, a data version id or (as the reference) a release"
            ) from None
        if role != "reference":
            raise MonitoringError(
                f"{role} {name!r} is a release, and a release can only be the reference (its reference "
                f"profile); pass the current data as a file, a DataFrame or a data version id"
            ) from None
        return sources.release_reference(name)
    return sources.read_data_version(name, role=role)


def _common_columns(
    ref: pd.DataFrame | ReferenceProfile, cur: pd.DataFrame, wanted: Sequence[str] | None
) -> tuple[list[str], list[tuple[str, str]]]:
    ref_names = ref.names if isinstance(ref, ReferenceProfile) else [str(c) for c in ref.columns]
    cur_names = [str(c) for c in cur.columns]
    if any(not isinstance(c, str) for c in cur.columns) or (
        not isinstance(ref, ReferenceProfile) and any(not isinstance(c, str) for c in ref.columns)
    ):
        raise MonitoringError(
            "column names must be text; rename the columns (df.columns = df.columns.astype(str))"
        )
    for side, listed in (("reference", ref_names), ("current table", cur_names)):
        repeated = sorted({c for c in listed if listed.count(c) > 1})
        if repeated:
            raise MonitoringError(f"the {side} has duplicate column names {_listing(repeated)}; rename them")
    in_cur = set(cur_names)
    if wanted is not None:
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        in_ref = set(ref_names)
        unknown = [c for c in wanted if c not in in_ref or c not in in_cur]
        if unknown:
            where = ", ".join(
                f"{c!r} (not in the {'reference' if c not in in_ref else 'current table'})" for c in unknown
            )
            raise MonitoringError(f"unknown column {where}; name columns both sides have")
        if not wanted:
            raise MonitoringError("columns=[] names no column; leave it out to test every common column")
        return list(dict.fromkeys(wanted)), []
    common = [c for c in ref_names if c in in_cur]
    if not common:
        raise MonitoringError(
            f"the reference and the current table have no column in common (reference: "
            f"{_listing(ref_names)}; current: {_listing(cur_names)}); compare tables of the same columns"
        )
    in_common = set(common)
    skipped = [(c, "only in the reference") for c in ref_names if c not in in_common]
    skipped += [(c, "only in the current table") for c in cur_names if c not in in_common]
    return common, skipped


def _listing(names: Iterable[str], limit: int = 6) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _reference_column(ref: pd.DataFrame | ReferenceProfile, name: str) -> ColumnProfile | None:
    if isinstance(ref, ReferenceProfile):
        return ref.column(name)
    series = ref[name]
    if not is_profiled(series):
        return None
    # A table as reference is used exactly: every value, every category.
    return profile_column(name, series, keep_values=True, max_categories=None)


# --------------------------------------------------------------------------- one column


def _test_column(
    profile: ColumnProfile, series: pd.Series, method: str, threshold: Limits
) -> tuple[list[ColumnDrift], Distribution | None]:
    values = np.empty(0)
    counts: dict[str, int] = {}
    if isinstance(profile, NumericColumn):
        values = np.sort(present_values(_as_numbers(series)))
        missing = len(series) - int(values.size)
        row, distribution = _numeric_row(profile, values, method, threshold)
    else:  # values as text, so that a numeric current column still meets the reference's categories
        counts, missing = category_counts(series)
        row, distribution = _categorical_row(profile, counts, method, threshold)
    rows = [] if row is None else [row]
    if profile.missing or missing:
        result = st.missing_share(profile.missing, profile.rows, missing, len(series))
        rows.append(_row(profile.name, st.MISSING_METHOD, result, st.MISSING_THRESHOLD))
    if not any(r.drifted for r in rows):
        distribution = None
    elif distribution is None and row is not None:
        distribution = (
            _numeric_distribution(profile, values)
            if isinstance(profile, NumericColumn)
            else _categorical_distribution(profile, counts)
        )
    return rows, distribution


def _row(column: str, method: str, result: st.TestResult, threshold: float) -> ColumnDrift:
    statistic = result.statistic if math.isfinite(result.statistic) else None
    return ColumnDrift(
        column, method, statistic, result.p_value, threshold, st.drifted(method, result, threshold)
    )


def _pick(method: str, numeric: bool, reference_rows: int, distinct: int) -> str:
    if method != "auto" and st.fits(method, numeric, distinct):
        return method
    return st.auto_method(numeric, reference_rows, distinct)


def _threshold(chosen: str, threshold: Limits) -> float:
    if threshold is None:
        return st.DEFAULT_THRESHOLDS[chosen]
    if isinstance(threshold, Mapping):  # per method (kepler.toml's [monitoring.thresholds])
        return float(threshold.get(chosen, st.DEFAULT_THRESHOLDS[chosen]))
    if chosen in st.P_VALUE_METHODS and threshold >= 1:
        raise MonitoringError(
            f"{chosen} (picked for a column) compares a p-value with the threshold, so it must be below 1 "
            f"(got {threshold:g}); pass a threshold below 1 or a method"
        )
    return threshold


def _numeric_row(
    profile: NumericColumn, values: np.ndarray, method: str, threshold: Limits
) -> tuple[ColumnDrift | None, Distribution | None]:
    if profile.count == 0 or values.size == 0:
        return None, None
    # Distinct values of both sides together decide between a numeric test and a category test; a
    # reference of more than 20 distinct values has more than 5, so the current's need no counting.
    distinct = st.BINNED_NUMERIC + 1
    if profile.distinct is not None and _count_distinct(values) <= st.BINNED_NUMERIC:
        distinct = len(set(profile.distinct) | set(_distinct(values)[0].tolist()))
    chosen = _pick(method, True, profile.count, distinct)
    limit = _threshold(chosen, threshold)
    distribution = None
    if chosen in ("chi2", "z") or (chosen in ("jensenshannon", "psi") and profile.distinct is not None):
        assert profile.distinct is not None and profile.distinct_counts is not None
        ref = dict(zip(profile.distinct, profile.distinct_counts, strict=True))
        cur_keys, cur_counts = _distinct(values)
        cur = dict(zip(cur_keys.tolist(), cur_counts.tolist(), strict=True))
        keys = sorted(set(ref) | set(cur))
        r = np.array([ref.get(k, 0) for k in keys], dtype=float)
        c = np.array([cur.get(k, 0) for k in keys], dtype=float)
        result = st.share_test(chosen, r, c)
        distribution = Distribution("categorical", [f"{k:g}" for k in keys], _shares(r), _shares(c))
    elif chosen == "ks":
        if profile.values is not None:
            result = st.ks_values(profile.values, values)
        elif profile.distinct is not None:
            result = st.ks_values(np.repeat(profile.distinct, profile.distinct_counts or []), values)
        else:
            result = st.ks_binned(_binned(profile, values))
    elif chosen == "wasserstein":
        std = float(profile.std or 0.0)
        if profile.values is not None or profile.distinct is not None:
            if profile.distinct is not None:
                ref_values, ref_counts = np.asarray(profile.distinct), np.asarray(profile.distinct_counts)
            else:
                ref_values, ref_counts = _distinct(np.asarray(profile.values))
            cur_values, cur_counts = _distinct(values)
            result = st.wasserstein_sorted(ref_values, ref_counts, cur_values, cur_counts, std)
        else:
            result = st.wasserstein_binned(_binned(profile, values), std)
    else:  # jensenshannon or psi on a column with more than 20 distinct reference values
        if profile.values is not None:
            r, c = st.sturges_shares(profile.values, values)
        else:
            r, c = st.binned_shares(_binned(profile, values))
        result = st.share_test(chosen, r, c)
    return _row(profile.name, chosen, result, limit), distribution


def _count_distinct(ordered: np.ndarray) -> int:
    """How many distinct values sorted values hold."""
    return int(np.count_nonzero(np.diff(ordered))) + 1 if ordered.size else 0


def _distinct(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of sorted values, and how often each occurs."""
    starts = np.concatenate([[0], np.flatnonzero(np.diff(ordered)) + 1])
    return ordered[starts], np.diff(np.concatenate([starts, [ordered.size]]))


def _binned(profile: NumericColumn, ordered: np.ndarray) -> st.Binned:
    """The reference's bins and the current's sorted values on one grid (see :class:`~kepler.monitoring.statistics.Binned`)."""
    edges = np.asarray(profile.edges, dtype=float)
    m = edges.size
    n = ordered.size
    before = bin_cumulative(ordered, edges)
    current_counts = np.concatenate([[before[0]], np.diff(before), [n - before[-1]]]).astype(float)
    # Sums of (x − edges[0]) per range of the sorted values, in one cumulative sum shifted for precision.
    cumulative = np.concatenate([[0.0], np.cumsum(ordered - edges[0])])
    at = cumulative[np.concatenate([before, [n]])]
    sums = np.diff(np.concatenate([[0.0], at]))  # below, bins 1..m-1, above
    offsets = edges - edges[0]
    gaps = np.empty(m + 1)
    gaps[0] = -sums[0]  # Σ (edges[0] − x) below the range
    gaps[1:m] = current_counts[1:m] * offsets[1:] - sums[1:m]  # Σ (right edge − x)
    gaps[m] = sums[m] - current_counts[m] * offsets[-1]  # Σ (x − edges[-1]) above the range
    reference_counts = np.concatenate([[0.0], np.asarray(profile.counts, dtype=float), [0.0]])
    widths = np.diff(edges)
    reference_gaps = np.concatenate(
        [[0.0], reference_counts[1:m] * (1.0 - np.asarray(profile.positions)) * widths, [0.0]]
    )
    return st.Binned(edges, reference_counts, reference_gaps, current_counts, np.maximum(gaps, 0.0))


def _categorical_row(
    profile: CategoricalColumn, counts: dict[str, int], method: str, threshold: Limits
) -> tuple[ColumnDrift | None, Distribution | None]:
    if profile.count == 0 or not counts:
        return None, None
    keys, r, c = _aligned(profile, counts)
    distinct = len(keys) + max(profile.other_categories - 1, 0)
    chosen = _pick(method, False, profile.count, distinct)
    result = st.share_test(chosen, r, c)
    return _row(profile.name, chosen, result, _threshold(chosen, threshold)), None


def _aligned(profile: CategoricalColumn, counts: dict[str, int]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Category names and the counts of both sides over them, sorted by name (the z-test's order).

    Against a profile that names all its categories, the categories are those of either side; against
    a capped one, the current's unnamed categories join the profile's "other" bucket.
    """
    named = profile.categories
    if profile.other:
        keys = sorted(named)
        r = [named[k] for k in keys] + [profile.other]
        c = [counts.get(k, 0) for k in keys] + [sum(v for k, v in counts.items() if k not in named)]
        keys.append(OTHER)
    else:
        keys = sorted(set(named) | set(counts))
        r = [named.get(k, 0) for k in keys]
        c = [counts.get(k, 0) for k in keys]
    return keys, np.asarray(r, dtype=float), np.asarray(c, dtype=float)


def _as_numbers(series: pd.Series) -> pd.Series:
    """A current column as numbers for a numeric reference column; text that is no number is missing."""
    if is_numeric(series):
        return series
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("float64")
    return pd.to_numeric(series, errors="coerce")


# --------------------------------------------------------------------------- charts


def _shares(counts: np.ndarray) -> list[float]:
    total = float(np.sum(counts))
    return [float(v) / total for v in counts] if total else [0.0 for _ in counts]


def _numeric_distribution(profile: NumericColumn, ordered: np.ndarray) -> Distribution:
    binned = _binned(profile, ordered)
    edges = list(binned.edges)
    ref = list(binned.reference_counts)
    cur = list(binned.current_counts)
    # The bins below and above the reference's range span the current values there (empty: dropped).
    if cur[-1]:
        edges.append(float(ordered[-1]))
    else:
        ref.pop()
        cur.pop()
    if cur[0]:
        edges.insert(0, float(ordered[0]))
    else:
        ref.pop(0)
        cur.pop(0)
    if len(edges) < 2:  # a constant reference column: one bin of zero width
        edges = [edges[0], edges[0]]
    return Distribution("numeric", edges, _shares(np.asarray(ref)), _shares(np.asarray(cur)))


def _categorical_distribution(profile: CategoricalColumn, counts: dict[str, int]) -> Distribution:
    keys, r, c = _aligned(profile, counts)
    if len(keys) > PLOT_CATEGORIES:  # the largest categories of either side, the rest together
        order = np.argsort(-(r / r.sum() + c / c.sum()), kind="stable")
        top, rest = order[: PLOT_CATEGORIES - 1], order[PLOT_CATEGORIES - 1 :]
        keys = [keys[i] for i in top] + [f"{len(rest)} more"]
        r = np.append(r[top], r[rest].sum())
        c = np.append(c[top], c[rest].sum())
    return Distribution("categorical", keys, _shares(r), _shares(c))
