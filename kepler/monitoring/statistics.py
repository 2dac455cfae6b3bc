"""Drift statistics under Evidently 0.7's names, definitions and default thresholds, on numpy and scipy.

================= ============ ========= ===================================================
method            kind         threshold drift when
================= ============ ========= ===================================================
``ks``            numeric      0.05      two-sample Kolmogorov–Smirnov p-value ≤ threshold
``chi2``          categorical  0.05      chi-square homogeneity p-value < threshold
``z``             categorical  0.05      two-proportion z-test p-value < threshold
``wasserstein``   numeric      0.1       W1 / max(std of reference, 0.001) ≥ threshold
``jensenshannon`` both         0.1       Jensen–Shannon distance (natural log) ≥ threshold
``psi``           both         0.1       population stability index ≥ threshold
================= ============ ========= ===================================================

``auto`` picks as Evidently does, by the rows of the reference column (missing values left out) and
the distinct values of both sides together: up to 1,000 reference rows, a numeric column with more than
5 values gets ``ks``, anything else ``chi2`` (more than 2 values) or ``z`` (2 or fewer); above 1,000
rows, a numeric column with more than 5 values gets ``wasserstein`` and anything else ``jensenshannon``.

Definitions follow Evidently's code, with one exception:

- chi-square: *not* Evidently's, deliberately: Pearson's test of homogeneity of the two tables' counts
  over the categories of either side (:func:`chi2_counts` says why);
- z: the share of every value but the first (sorted) in each table, pooled two-proportion z-test;
- Jensen–Shannon and PSI: shares over the categories of either side, or for a numeric column whose
  reference has more than 20 distinct values, over Sturges bins of both tables together
  (``np.histogram_bin_edges(..., "sturges")``); PSI replaces empty shares by 0.0001 (or a millionth of
  the smallest share when that is under 0.0001), Jensen–Shannon does not.

Against a reference *profile* (a summary, not the values) some tests are computed from bins; each
function says where and how that differs. :mod:`kepler.monitoring.reference` lists what a profile keeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Re-exported: drift and the tests read them here, beside the methods.
from kepler.monitoring.settings import DEFAULT_THRESHOLDS as DEFAULT_THRESHOLDS
from kepler.monitoring.settings import P_VALUE_METHODS as P_VALUE_METHODS

METHODS = ("ks", "chi2", "z", "wasserstein", "jensenshannon", "psi")
NUMERIC_ONLY = frozenset({"ks", "wasserstein"})
SMALL_REFERENCE = 1000  # Evidently: a reference column of this many rows or fewer gets KS / chi-square
FEW_VALUES = 5  # Evidently: a numeric column with this many distinct values or fewer is tested as categories
BINNED_NUMERIC = 20  # Evidently: JS and PSI bin a numeric column whose reference has more distinct values
MISSING_METHOD = "missing_share"
MISSING_THRESHOLD = 0.1
_WASSERSTEIN_FLOOR = 0.001  # Evidently's floor on the reference std that norms the distance


@dataclass(frozen=True)
class TestResult:
    """One test's outcome.

    Attributes:
        statistic: The test statistic or distance (``inf`` where it is infinite).
        p_value: The p-value, for tests that have one.
    """

    statistic: float
    p_value: float | None = None


def auto_method(numeric: bool, reference_rows: int, distinct: int) -> str:
    """Evidently 0.7's choice of test for one column.

    Args:
        numeric: Whether the column is numeric.
        reference_rows: Values present in the reference column.
        distinct: Distinct values in both tables together.

    Returns:
        A name from :data:`METHODS`.
    """
    continuous = numeric and distinct > FEW_VALUES
    if reference_rows <= SMALL_REFERENCE:
        if continuous:
            return "ks"
        return "chi2" if distinct > 2 else "z"
    return "wasserstein" if continuous else "jensenshannon"


def fits(method: str, numeric: bool, distinct: int) -> bool:
    """Whether a method applies to a column (else the column gets the ``auto`` pick).

    ``ks`` and ``wasserstein`` need numbers; ``chi2`` and ``z`` need categories, or a numeric column
    with at most 5 distinct values (which ``auto`` tests as categories too); the others apply to both.
    """
    if method in NUMERIC_ONLY:
        return numeric
    if method in ("chi2", "z"):
        return not numeric or distinct <= FEW_VALUES
    return True


def drifted(method: str, result: TestResult, threshold: float) -> bool:
    """The verdict, with Evidently's comparison for each method (KS: p ≤ t; chi2, z: p < t; others ≥ t)."""
    if method in P_VALUE_METHODS:
        p = result.p_value
        assert p is not None
        return p <= threshold if method == "ks" else p < threshold
    return result.statistic >= threshold


# --------------------------------------------------------------------------- tests on counts (categories)


def chi2_counts(reference: np.ndarray, current: np.ndarray) -> TestResult:
    """Pearson's chi-square test of homogeneity of the two count vectors (one entry per category).

    Equals ``scipy.stats.chi2_contingency([reference, current], correction=False)``. Evidently's
    ``chisquare`` instead fits the current counts to the reference shares as if those were exact
    (``scipy.stats.chisquare``): with tables of similar size that alarms on about one no-drift column in
    five at p < 0.05 (the statistic is about twice a chi-square), where this test alarms on one in twenty.
    Categories absent from both sides are left out; a single category gives statistic 0 and p = 1.
    """
    from scipy import stats

    table = np.vstack([np.asarray(reference, dtype=float), np.asarray(current, dtype=float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] <= 1:
        return TestResult(0.0, 1.0)
    statistic, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    return TestResult(float(statistic), float(p_value))


def z_counts(reference: np.ndarray, current: np.ndarray) -> TestResult:
    """Evidently's two-proportion z-test: the share of all but the first category on each side.

    The statistic is ``|z|``; the p-value is two-sided. One category on both sides gives p = 1.
    """
    from scipy import stats

    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    n1, n2 = reference.sum(), current.sum()
    if np.count_nonzero(reference + current) <= 1:  # one value on both sides
        return TestResult(0.0, 1.0)
    p1 = float(reference[1:].sum() / n1)
    p2 = float(current[1:].sum() / n2)
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    if spread == 0:
        return TestResult(0.0, 1.0)
    z = abs(p1 - p2) / spread
    return TestResult(z, float(2 * stats.norm.sf(z)))


def jensenshannon_shares(reference: np.ndarray, current: np.ndarray) -> TestResult:
    """Jensen–Shannon distance (natural log) between two share vectors: ``scipy.spatial.distance.jensenshannon``."""
    from scipy.spatial import distance

    return TestResult(float(distance.jensenshannon(reference, current)))


def psi_shares(reference: np.ndarray, current: np.ndarray) -> TestResult:
    """Population stability index ``Σ (r − c) ln(r / c)`` with Evidently's filling of empty shares."""
    r = _fill_zeroes(np.asarray(reference, dtype=float))
    c = _fill_zeroes(np.asarray(current, dtype=float))
    return TestResult(float(np.sum((r - c) * np.log(r / c))))


def _fill_zeroes(shares: np.ndarray) -> np.ndarray:
    present = shares[shares != 0]
    if present.size == shares.size or present.size == 0:
        return shares
    smallest = present.min()
    return np.where(shares == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001, shares)


def share_test(method: str, reference: np.ndarray, current: np.ndarray) -> TestResult:
    """A category test on aligned count vectors (one entry per category, same order on both sides)."""
    if method == "chi2":
        return chi2_counts(reference, current)
    if method == "z":
        return z_counts(reference, current)
    r = np.asarray(reference, dtype=float)
    c = np.asarray(current, dtype=float)
    r, c = r / r.sum(), c / c.sum()
    if method == "jensenshannon":
        return jensenshannon_shares(r, c)
    if method == "psi":
        return psi_shares(r, c)
    raise ValueError(f"{method} is not a category test")


def missing_share(
    reference_missing: int, reference_rows: int, current_missing: int, current_rows: int
) -> TestResult:
    """The missing-value check: Jensen–Shannon distance between the (missing, present) shares of each side."""
    r = np.array([reference_missing, reference_rows - reference_missing], dtype=float) / reference_rows
    c = np.array([current_missing, current_rows - current_missing], dtype=float) / current_rows
    return jensenshannon_shares(r, c)


# --------------------------------------------------------------------------- tests on values (numbers)


def ks_values(reference: np.ndarray, current: np.ndarray) -> TestResult:
    """Two-sample Kolmogorov–Smirnov test: ``scipy.stats.ks_2samp`` (two-sided, its ``auto`` method)."""
    from scipy import stats

    result = stats.ks_2samp(reference, current)
    return TestResult(float(result.statistic), float(result.pvalue))


def wasserstein_values(
    reference: np.ndarray,
    current: np.ndarray,
    reference_std: float,
    reference_weights: np.ndarray | None = None,
    current_weights: np.ndarray | None = None,
) -> TestResult:
    """Normed Wasserstein distance: ``scipy.stats.wasserstein_distance`` / max(std of reference, 0.001)."""
    from scipy import stats

    distance = stats.wasserstein_distance(reference, current, reference_weights, current_weights)
    return TestResult(float(distance) / max(reference_std, _WASSERSTEIN_FLOOR))


def wasserstein_sorted(
    reference: np.ndarray,
    reference_weights: np.ndarray,
    current: np.ndarray,
    current_weights: np.ndarray,
    reference_std: float,
) -> TestResult:
    """Normed Wasserstein distance of two weighted samples whose values are sorted and distinct.

    The same number as ``scipy.stats.wasserstein_distance(reference, current, reference_weights,
    current_weights)`` (``∫ |F_ref − F_cur|`` over the merged support), without scipy's sorts: the sides
    come sorted, which is what makes a column of a million values take milliseconds, not a second.
    """
    points = np.sort(np.concatenate([reference, current]), kind="stable")
    f_r = _cdf_at(reference, reference_weights, points[:-1])
    f_c = _cdf_at(current, current_weights, points[:-1])
    distance = float(np.sum(np.abs(f_r - f_c) * np.diff(points)))
    return TestResult(distance / max(reference_std, _WASSERSTEIN_FLOOR))


def _cdf_at(values: np.ndarray, weights: np.ndarray, points: np.ndarray) -> np.ndarray:
    cumulative = np.concatenate([[0.0], np.cumsum(weights, dtype=float)])
    cumulative /= cumulative[-1]
    return cumulative[np.searchsorted(values, points, side="right")]


def sturges_shares(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shares of both tables over Sturges bins of their values together (Evidently's JS and PSI binning)."""
    edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
    return (
        np.histogram(reference, edges)[0] / reference.size,
        np.histogram(current, edges)[0] / current.size,
    )


# --------------------------------------------------------------------------- tests against profile bins


@dataclass(frozen=True)
class Binned:
    """Both sides over one grid: the reference's bins, plus a bin below and one above its range.

    Attributes:
        edges: The reference's bin edges (``m`` edges, ``m - 1`` bins).
        reference_counts: ``m + 1`` counts: below the range (always 0), each bin, above (always 0).
        reference_gaps: ``m + 1`` values of ``Σ (right edge − x)`` per bin (below/above: 0).
        current_counts: ``m + 1`` counts of the current values on the same grid.
        current_gaps: ``m + 1`` values of ``Σ (right edge − x)`` per bin; for the bin below the range,
            the right edge is ``edges[0]``; for the bin above, ``Σ (x − edges[-1])`` (a positive number).
    """

    edges: np.ndarray
    reference_counts: np.ndarray
    reference_gaps: np.ndarray
    current_counts: np.ndarray
    current_gaps: np.ndarray


def wasserstein_binned(binned: Binned, reference_std: float) -> TestResult:
    """Normed Wasserstein distance from binned sides that carry the sum of their values per bin.

    ``W1 = ∫ |F_ref − F_cur|``. Over one bin ``[a, b]``, ``∫ F = (b − a)·F(a⁻) + Σ_bin (b − x)/n`` holds
    exactly for an empirical CDF, so the integral of ``F_ref − F_cur`` over each bin is exact; its
    absolute value is the bin's share of W1 unless the two CDFs cross inside the bin, where it is a
    lower bound. Below and above the reference's range the reference CDF is 0 and 1, so they never cross
    there. The result is therefore exact when the CDFs cross only at bin edges, and otherwise low by at
    most the part of the crossing bins; with 20 equal-mass bins that is small next to a shift that
    matters at the 0.1 threshold. A profile stores where each bin mean lies to 1% of the bin's width,
    which moves the result by at most half a percent of the mass-weighted bin width (on 1,000,000-row
    tables of normal, lognormal, gamma and uniform columns it stayed within 0.003 of scipy's value).
    """
    m = binned.edges.size
    n_r = binned.reference_counts.sum()
    n_c = binned.current_counts.sum()
    # Bin j (1..m-1) is [edges[j-1], edges[j]]; the share of values before it is the cumulative count to j-1.
    before_r = np.cumsum(binned.reference_counts)[: m - 1] / n_r
    before_c = np.cumsum(binned.current_counts)[: m - 1] / n_c
    inner = slice(1, m)
    integral = np.diff(binned.edges) * (before_r - before_c) + (
        binned.reference_gaps[inner] / n_r - binned.current_gaps[inner] / n_c
    )
    below = binned.current_gaps[0] / n_c  # ∫ F_cur below edges[0], where F_ref = 0
    above = binned.current_gaps[-1] / n_c  # ∫ (1 − F_cur) above edges[-1], where F_ref = 1
    distance = float(np.abs(integral).sum() + below + above)
    return TestResult(distance / max(reference_std, _WASSERSTEIN_FLOOR))


def ks_binned(binned: Binned) -> TestResult:
    """KS from bins: the largest CDF gap at the bin edges, with scipy's asymptotic p-value.

    The gap at the edges is exact; between edges the reference CDF is unknown, so the statistic is a
    lower bound of the exact one and the test errs towards "no drift". The p-value is
    ``scipy.stats.kstwo.sf(D, round(n·m / (n + m)))``, what ``ks_2samp`` uses for large samples.
    """
    from scipy import stats

    n_r = float(binned.reference_counts.sum())
    n_c = float(binned.current_counts.sum())
    f_r = np.cumsum(binned.reference_counts)[:-1] / n_r
    f_c = np.cumsum(binned.current_counts)[:-1] / n_c
    d = float(np.max(np.abs(f_r - f_c)))
    return TestResult(d, float(stats.kstwo.sf(d, np.round(n_r * n_c / (n_r + n_c)))))


def binned_shares(binned: Binned) -> tuple[np.ndarray, np.ndarray]:
    """Shares of each side over the reference's quantile bins, the outer two open-ended.

    JS and PSI against a profile use these bins (as PSI is usually computed), not Evidently's Sturges
    bins over both tables: the reference's values inside a bin are unknown, so they cannot be split
    over other bins without inventing their shape. Current values below or above the reference's range
    count in its first or last bin (a bin of the reference's own would hold none of them and, in PSI,
    weigh as much as a new category). The two binnings give different values; near the threshold their
    verdicts can differ.
    """
    ref = binned.reference_counts[1:-1].copy()
    cur = binned.current_counts[1:-1].copy()
    cur[0] += binned.current_counts[0]
    cur[-1] += binned.current_counts[-1]
    return ref / ref.sum(), cur / cur.sum()
