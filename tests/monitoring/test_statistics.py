"""kepler.monitoring.statistics: each test equals scipy's (or Evidently's formula) computed directly here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from kepler.monitoring import statistics as st


def test_auto_picks_as_evidently() -> None:
    assert st.auto_method(True, 1000, 6) == "ks"
    assert st.auto_method(True, 1000, 5) == "chi2"
    assert st.auto_method(True, 1000, 2) == "z"
    assert st.auto_method(False, 1000, 40) == "chi2"
    assert st.auto_method(False, 1000, 2) == "z"
    assert st.auto_method(True, 1001, 6) == "wasserstein"
    assert st.auto_method(True, 1001, 5) == "jensenshannon"
    assert st.auto_method(False, 1001, 2) == "jensenshannon"


def test_defaults_and_comparisons_are_evidentlys() -> None:
    assert st.DEFAULT_THRESHOLDS == {
        "ks": 0.05,
        "chi2": 0.05,
        "z": 0.05,
        "wasserstein": 0.1,
        "jensenshannon": 0.1,
        "psi": 0.1,
    }
    assert st.drifted("ks", st.TestResult(0.1, 0.05), 0.05)  # KS drifts at p <= threshold
    assert not st.drifted("chi2", st.TestResult(3.0, 0.05), 0.05)  # chi2 and z at p < threshold
    assert st.drifted("wasserstein", st.TestResult(0.1), 0.1)  # distances at >= threshold
    assert not st.drifted("psi", st.TestResult(0.0999), 0.1)


def test_chi2_equals_scipy_chi2_contingency() -> None:
    reference = np.array([50.0, 30.0, 20.0, 0.0])
    current = np.array([40.0, 45.0, 35.0, 0.0])  # a category neither side has is left out
    expected = stats.chi2_contingency([reference[:3], current[:3]], correction=False)
    result = st.chi2_counts(reference, current)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)


def test_chi2_finds_a_new_category_and_one_category_is_no_drift() -> None:
    new = st.chi2_counts(np.array([100.0, 0.0]), np.array([80.0, 20.0]))
    assert new.p_value is not None and new.p_value < 1e-5
    assert st.chi2_counts(np.array([10.0]), np.array([7.0])) == st.TestResult(0.0, 1.0)


def test_z_test_is_the_pooled_two_proportion_test() -> None:
    reference, current = np.array([70.0, 30.0]), np.array([50.0, 70.0])
    p1, p2 = 30 / 100, 70 / 120
    pooled = (30 + 70) / 220
    z = abs(p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 120))
    result = st.z_counts(reference, current)
    assert result.statistic == pytest.approx(z, rel=1e-12)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(z), rel=1e-12)
    assert st.z_counts(np.array([9.0, 0.0]), np.array([4.0, 0.0])) == st.TestResult(0.0, 1.0)


def test_jensenshannon_and_psi_on_shares() -> None:
    r = np.array([0.5, 0.3, 0.2, 0.0])
    c = np.array([0.4, 0.3, 0.2, 0.1])
    assert st.share_test("jensenshannon", r * 10, c * 20).statistic == pytest.approx(jensenshannon(r, c))
    # Evidently fills empty shares with 0.0001 (the smallest share is above 0.0001).
    filled = np.array([0.5, 0.3, 0.2, 0.0001])
    assert st.share_test("psi", r * 10, c * 20).statistic == pytest.approx(
        float(np.sum((filled - c) * np.log(filled / c)))
    )


def test_ks_and_wasserstein_on_values_equal_scipy() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=400), rng.normal(0.3, 1.2, size=300)
    ks = st.ks_values(a, b)
    expected = stats.ks_2samp(a, b)
    assert (ks.statistic, ks.p_value) == (expected.statistic, expected.pvalue)
    w = st.wasserstein_values(a, b, float(np.std(a)))
    assert w.statistic == pytest.approx(stats.wasserstein_distance(a, b) / np.std(a), rel=1e-12)
    # Evidently floors the norm at 0.001.
    constant = np.full(50, 2.0)
    assert st.wasserstein_values(constant, constant + 0.5, 0.0).statistic == pytest.approx(500.0)


def test_wasserstein_of_sorted_weighted_samples_equals_scipy() -> None:
    rng = np.random.default_rng(5)
    reference, current = np.unique(rng.poisson(4.0, 900), return_counts=True)
    cur_values, cur_counts = np.unique(np.round(rng.normal(4.5, 2.0, 1200), 1), return_counts=True)
    expected = stats.wasserstein_distance(reference, cur_values, current, cur_counts) / 2.0
    result = st.wasserstein_sorted(reference, current, cur_values, cur_counts, 2.0)
    assert result.statistic == pytest.approx(expected, rel=1e-12)


def test_sturges_shares_follow_numpy() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.gamma(2.0, size=500), rng.gamma(2.5, size=800)
    edges = np.histogram_bin_edges(np.concatenate([a, b]), bins="sturges")
    r, c = st.sturges_shares(a, b)
    np.testing.assert_array_equal(r, np.histogram(a, edges)[0] / a.size)
    np.testing.assert_array_equal(c, np.histogram(b, edges)[0] / b.size)


def test_missing_share_is_a_jensenshannon_distance_of_missing_and_present() -> None:
    result = st.missing_share(0, 100, 20, 100)
    assert result.statistic == pytest.approx(jensenshannon([0.0, 1.0], [0.2, 0.8]))
    assert st.missing_share(5, 100, 5, 100).statistic == pytest.approx(0.0)


def test_fits_leaves_mismatched_columns_to_auto() -> None:
    assert not st.fits("ks", numeric=False, distinct=3)
    assert not st.fits("chi2", numeric=True, distinct=50)
    assert st.fits("chi2", numeric=True, distinct=4)
    assert st.fits("psi", numeric=False, distinct=50) and st.fits("jensenshannon", numeric=True, distinct=50)
