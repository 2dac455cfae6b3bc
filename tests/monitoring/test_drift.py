"""kepler.monitoring.drift: known drifts are found, no drift is quiet, and every statistic is scipy's."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from kepler.errors import DataError, DriftDetected, MonitoringError
from kepler.monitoring import DriftReport, ReferenceProfile, data_drift

LINES = ["north", "south", "east"]


def sensors(
    rows: int,
    seed: int,
    *,
    shift: float = 0.0,
    new_line: bool = False,
    missing: float = 0.05,
) -> pd.DataFrame:
    """A production line's readings; ``shift`` moves the temperature by that many standard deviations,
    ``new_line`` puts a fifth of the rows on a line the reference never had, ``missing`` is vibration's
    share of dropouts."""
    rng = np.random.default_rng(seed)
    line = rng.choice(np.array(LINES, dtype=object), rows, p=[0.5, 0.3, 0.2])
    if new_line:
        line[rng.random(rows) < 0.2] = "west"
    vibration = rng.gamma(2.0, 1.1, rows)
    vibration[rng.random(rows) < missing] = np.nan
    return pd.DataFrame(
        {
            "temperature": rng.normal(70.0 + 6.0 * shift, 6.0, rows),
            "pressure": rng.normal(1.0, 0.12, rows),
            "vibration": vibration,
            "line": line,
            "shift": rng.choice([1, 2, 3], rows),  # numeric with 3 values: tested as categories
        }
    )


def verdicts(report: DriftReport) -> dict[tuple[str, str], bool]:
    return {(row.column, row.method): row.drifted for row in report.columns}


@pytest.mark.parametrize("rows", [500, 5000])
def test_known_drifts_are_found_and_nothing_else(rows: int) -> None:
    reference = sensors(rows, 1)
    current = sensors(rows, 2, shift=0.5, new_line=True, missing=0.3)
    report = data_drift(reference, current)
    small = rows <= 1000
    assert verdicts(report) == {
        ("temperature", "ks" if small else "wasserstein"): True,
        ("pressure", "ks" if small else "wasserstein"): False,
        ("vibration", "ks" if small else "wasserstein"): False,
        ("vibration", "missing_share"): True,
        ("line", "chi2" if small else "jensenshannon"): True,
        ("shift", "chi2" if small else "jensenshannon"): False,
    }
    assert report.drifted_columns == ["temperature", "vibration", "line"]
    assert report.drift_share == pytest.approx(3 / 5) and report.dataset_drift


def test_the_same_drifts_are_found_against_a_stored_profile(tmp_path: Path) -> None:
    profile = ReferenceProfile.from_frame(sensors(5000, 1)).save(tmp_path / "reference.json")
    report = data_drift(profile, sensors(5000, 2, shift=0.5, new_line=True, missing=0.3))
    assert report.drifted_columns == ["temperature", "vibration", "line"]
    quiet = data_drift(profile, sensors(5000, 3))
    assert quiet.drifted_columns == [] and not quiet.dataset_drift


def test_a_small_stored_profile_gives_the_tables_own_report(tmp_path: Path) -> None:
    # A reference of 500 rows keeps its values in the profile, so every test is exact.
    reference = sensors(500, 1)
    profile = ReferenceProfile.from_frame(reference).save(tmp_path / "reference.json")
    for current in (sensors(500, 2, shift=0.5, new_line=True, missing=0.3), sensors(500, 3)):
        assert data_drift(profile, current).to_dict() == data_drift(reference, current).to_dict()


def _alarms(rows: int, replicates: int) -> dict[str, int]:
    alarms: dict[str, int] = {}
    for replicate in range(replicates):
        report = data_drift(sensors(rows, 100 + 2 * replicate), sensors(rows, 101 + 2 * replicate))
        for name in report.tested_columns:
            alarms[name] = alarms.get(name, 0) + (name in report.drifted_columns)
    assert set(alarms) == {"temperature", "pressure", "vibration", "line", "shift"}
    return alarms


def test_no_drift_false_positive_rate_per_column_is_at_most_5_percent() -> None:
    # 20 independent no-drift replicates at the default thresholds (references above 1,000 rows, so
    # Wasserstein and Jensen–Shannon): at most one false alarm per column.
    alarms = _alarms(4000, 20)
    assert max(alarms.values()) <= 1, alarms


def test_p_value_tests_alarm_at_their_level_on_small_references() -> None:
    # KS, chi-square and z at p < 0.05 alarm on 5% of no-drift columns by construction, so 20 replicates
    # cannot show "at most 1 in 20" for each column; 60 replicates check that the rate is the test's
    # level. The bounds are the binomial 99.9% upper limits at 5% (Evidently's goodness-of-fit
    # chi-square, which alarms on about 20% of these columns, breaks them).
    alarms = _alarms(300, 60)
    assert max(alarms.values()) <= 9, alarms
    assert sum(alarms.values()) <= 27, alarms


def test_a_changed_missing_rate_alone_is_drift_of_that_column() -> None:
    report = data_drift(sensors(3000, 4, missing=0.0), sensors(3000, 5, missing=0.08))
    missing = next(r for r in report.columns if r.method == "missing_share")
    assert missing.column == "vibration" and missing.drifted
    share = sensors(3000, 5, missing=0.08)["vibration"].isna().mean()
    assert missing.statistic == pytest.approx(jensenshannon([0.0, 1.0], [share, 1 - share]), rel=1e-12)
    assert report.drifted_columns == ["vibration"]
    # No missing value on either side: no missing_share row at all (Evidently's rows exactly).
    assert [
        r.method for r in data_drift(sensors(300, 4, missing=0.0), sensors(300, 5, missing=0.0)).columns
    ] == [
        "ks",
        "ks",
        "ks",
        "chi2",
        "chi2",
    ]


def _row(report: DriftReport, column: str) -> tuple[float | None, float | None]:
    row = next(r for r in report.columns if r.column == column and r.method != "missing_share")
    return row.statistic, row.p_value


def test_statistics_equal_scipys_on_small_references() -> None:
    reference, current = sensors(600, 6), sensors(700, 7, shift=0.1)
    report = data_drift(reference, current)
    ks = stats.ks_2samp(reference["temperature"], current["temperature"])
    assert _row(report, "temperature") == (ks.statistic, ks.pvalue)
    present = reference["vibration"].dropna(), current["vibration"].dropna()
    ks = stats.ks_2samp(*present)
    assert _row(report, "vibration") == (ks.statistic, ks.pvalue)
    r = reference["line"].value_counts().reindex(LINES).to_numpy(float)
    c = current["line"].value_counts().reindex(LINES).to_numpy(float)
    chi2 = stats.chi2_contingency([r, c], correction=False)
    assert _row(report, "line") == pytest.approx((chi2.statistic, chi2.pvalue), rel=1e-12)


def test_statistics_equal_scipys_on_large_references() -> None:
    reference, current = sensors(3000, 8), sensors(2500, 9, shift=0.05)
    report = data_drift(reference, current)
    a, b = reference["temperature"].to_numpy(), current["temperature"].to_numpy()
    expected = stats.wasserstein_distance(a, b) / np.std(a)
    assert _row(report, "temperature")[0] == pytest.approx(expected, rel=1e-9)
    r = reference["line"].value_counts(normalize=True).reindex(LINES).to_numpy()
    c = current["line"].value_counts(normalize=True).reindex(LINES).to_numpy()
    assert _row(report, "line") == (pytest.approx(jensenshannon(r, c), rel=1e-12), None)


def test_jensenshannon_and_psi_on_numbers_use_sturges_bins_like_evidently() -> None:
    reference, current = sensors(3000, 10), sensors(2000, 11, shift=0.2)
    a, b = reference["pressure"].to_numpy(), current["pressure"].to_numpy()
    edges = np.histogram_bin_edges(np.concatenate([a, b]), bins="sturges")
    r, c = np.histogram(a, edges)[0] / a.size, np.histogram(b, edges)[0] / b.size
    js = data_drift(reference, current, method="jensenshannon", columns=["pressure"])
    assert _row(js, "pressure")[0] == pytest.approx(jensenshannon(r, c), rel=1e-12)
    psi = data_drift(reference, current, method="psi", columns=["pressure"])
    floor = lambda s: np.where(s == 0, 0.0001, s)  # noqa: E731  (Evidently's filling; no share here is below it)
    assert _row(psi, "pressure")[0] == pytest.approx(
        float(np.sum((floor(r) - floor(c)) * np.log(floor(r) / floor(c))))
    )


def test_binary_columns_get_evidentlys_z_test_on_small_references() -> None:
    reference = pd.DataFrame({"ok": np.arange(400) % 4 == 0})
    current = pd.DataFrame({"ok": np.arange(300) % 2 == 0})
    report = data_drift(reference, current)
    (row,) = report.columns
    p1, p2 = 100 / 400, 150 / 300
    pooled = 250 / 700
    z = abs(p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / 400 + 1 / 300))
    assert (row.method, row.statistic, row.drifted) == ("z", pytest.approx(z), True)
    assert row.p_value == pytest.approx(2 * stats.norm.sf(z))


def test_a_profile_gives_scipys_ks_when_it_kept_the_values_and_close_wasserstein_from_bins() -> None:
    reference = sensors(800, 12)
    current = sensors(900, 13, shift=0.15)
    profile = ReferenceProfile.from_frame(reference)
    assert _row(data_drift(profile, current), "temperature") == _row(
        data_drift(reference, current), "temperature"
    )
    big_reference, big_current = sensors(20000, 14), sensors(20000, 15, shift=0.15)
    binned = _row(data_drift(ReferenceProfile.from_frame(big_reference), big_current), "temperature")[0]
    exact = _row(data_drift(big_reference, big_current), "temperature")[0]
    assert binned == pytest.approx(exact, rel=0.02)


def test_ks_from_bins_when_the_profile_has_no_values() -> None:
    reference, current = sensors(900, 16), sensors(900, 17, shift=0.3)
    profile = ReferenceProfile.from_frame(reference, max_bytes=3000)  # too small to keep the values
    statistic, p_value = _row(data_drift(profile, current, columns=["temperature"]), "temperature")
    exact = stats.ks_2samp(reference["temperature"], current["temperature"])
    assert statistic is not None and p_value is not None
    assert statistic <= exact.statistic + 1e-12 and statistic >= exact.statistic - 0.06
    assert p_value < 0.05


def test_a_method_that_does_not_fit_a_column_leaves_it_to_auto_and_thresholds_apply() -> None:
    reference, current = sensors(2000, 18), sensors(2000, 19)
    report = data_drift(reference, current, method="ks")
    assert {r.column: r.method for r in report.columns if r.method != "missing_share"} == {
        "temperature": "ks",
        "pressure": "ks",
        "vibration": "ks",
        "line": "jensenshannon",  # categories: auto
        "shift": "ks",  # numbers, if few: Evidently runs a named method on any numeric column too
    }
    strict = data_drift(reference, current, method="wasserstein", threshold=1e-9, columns=["pressure"])
    assert strict.columns[0].threshold == 1e-9 and strict.dataset_drift


def test_report_dict_has_exactly_the_issues_shape_and_is_json() -> None:
    report = data_drift(sensors(500, 20), sensors(500, 21, new_line=True))
    data = report.to_dict()
    assert set(data) == {"columns", "drift_share", "dataset_drift"}
    assert all(
        set(row) == {"column", "method", "statistic", "p_value", "threshold", "drifted"}
        for row in data["columns"]
    )
    line = next(row for row in data["columns"] if row["column"] == "line")
    assert line["method"] == "chi2" and line["p_value"] < 1e-10 and line["drifted"]  # a new line
    json.dumps(data, allow_nan=False)


def test_html_report_overlays_each_drifted_column_offline(tmp_path: Path) -> None:
    report = data_drift(sensors(3000, 22), sensors(3000, 23, shift=1.0, new_line=True))
    page = report.to_html(tmp_path / "drift.html").read_text()
    assert page.count('<svg class="chart drift"') == len(report.drifted_columns) == 2
    assert 'aria-label="temperature: reference and current"' in page and "west" in page
    assert "<script" not in page and "http" not in page.replace('xmlns="http', "")
    assert [p.name for p in tmp_path.iterdir()] == ["drift.html"]


def test_rich_table_lists_every_row_and_the_verdict() -> None:
    from rich.console import Console

    report = data_drift(sensors(3000, 24), sensors(3000, 25, shift=1.0))
    console = Console(record=True, width=200)
    console.print(report.table())
    text = console.export_text()
    assert "temperature" in text and "no dataset drift" in text and "1 of 5 columns drifted" in text


def test_fail_on_drift_raises_drift_detected_with_the_report() -> None:
    report = data_drift(sensors(3000, 26), sensors(3000, 27, shift=1.0, new_line=True, missing=0.4))
    with pytest.raises(DriftDetected, match="3 of 5 columns drifted") as raised:
        report.raise_if_drifted()
    assert raised.value.drift_report is report and DriftDetected.exit_code == 14
    data_drift(sensors(3000, 26), sensors(3000, 28)).raise_if_drifted()  # no drift: nothing raised


def test_sides_can_be_csv_parquet_and_profile_files(tmp_path: Path) -> None:
    reference, current = sensors(1500, 29), sensors(1500, 30, shift=1.0)
    reference.to_csv(tmp_path / "reference.csv", index=False)
    current.to_parquet(tmp_path / "current.parquet")
    from_files = data_drift(tmp_path / "reference.csv", str(tmp_path / "current.parquet"))
    assert from_files.to_dict() == data_drift(reference, current).to_dict()
    ReferenceProfile.from_frame(reference).save(tmp_path / "profile.json")
    assert data_drift(str(tmp_path / "profile.json"), current).drifted_columns == ["temperature"]


def test_columns_only_on_one_side_are_skipped_and_named() -> None:
    reference = sensors(500, 31)
    current = sensors(500, 32).drop(columns=["pressure"]).assign(extra=1.0)
    report = data_drift(reference, current)
    assert report.tested_columns == ["temperature", "vibration", "line", "shift"]
    assert report.skipped == [("pressure", "only in the reference"), ("extra", "only in the current table")]


def test_a_text_column_against_a_numeric_reference_counts_its_text_as_missing() -> None:
    reference = pd.DataFrame({"x": np.arange(100.0)})
    current = pd.DataFrame({"x": ["1.5", "n/a"] * 50})
    report = data_drift(reference, current)
    assert verdicts(report)[("x", "missing_share")] is True


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda r, c: data_drift(r, c[[]].assign(other=1)), MonitoringError, "no column in common"),
        (lambda r, c: data_drift(r, c.iloc[:0]), DataError, "current table has no data rows"),
        (
            lambda r, c: data_drift(r, c, method="kolmogorov"),
            MonitoringError,
            "unknown drift method 'kolmogorov'",
        ),
        (lambda r, c: data_drift(r, c, threshold=-1), MonitoringError, "must be above 0"),
        (lambda r, c: data_drift(r, c, threshold=float("nan")), MonitoringError, "finite number"),
        (lambda r, c: data_drift(r, c, method="chi2", threshold=5), MonitoringError, "must be below 1"),
        (
            lambda r, c: data_drift(r, c, threshold=2),
            MonitoringError,
            r"picked for a column\) compares a p-value",
        ),
        (lambda r, c: data_drift(r, c, columns=["nope"]), MonitoringError, "unknown column 'nope'"),
        (
            lambda r, c: data_drift(r, ReferenceProfile.from_frame(c)),
            MonitoringError,
            "can only be the reference",
        ),
        (lambda r, c: data_drift(r, [1, 2]), MonitoringError, "the current side is a list"),
        (lambda r, c: data_drift(r, c, drift_share=0), MonitoringError, "drift_share"),
        (
            lambda r, c: data_drift(r, pd.concat([c, c["line"]], axis=1)),
            MonitoringError,
            "current table has duplicate column names line",
        ),
    ],
)
def test_bad_input_is_one_clear_error(call, error, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=message) as raised:
        call(sensors(100, 33), sensors(100, 34))
    assert "\n" not in str(raised.value)


def test_a_name_that_is_no_file_outside_a_project_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MonitoringError, match="'data-v7': no such file, and no Kepler project here"):
        data_drift(sensors(100, 35), "data-v7")
