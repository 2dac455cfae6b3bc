"""kepler.monitoring.reference: what a profile keeps, its JSON round trip, and its 64 KB per 100 columns bound."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kepler.errors import MonitoringError
from kepler.monitoring.reference import (
    BYTES_PER_100_COLUMNS,
    CategoricalColumn,
    NumericColumn,
    ReferenceProfile,
)


def _wide(rows: int, numeric: int, categorical: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    for i in range(numeric):
        # Offsets and scales that make long numbers: the worst case for the JSON's size.
        columns[f"sensor_reading_{i:03d}"] = rng.normal(1000 * rng.random(), 10 ** rng.uniform(-3, 4), rows)
    names = [f"category_value_{j:02d}" for j in range(40)]
    for i in range(categorical):
        columns[f"categorical_column_{i:03d}"] = rng.choice(names, rows)
    return pd.DataFrame(columns)


def test_numeric_profile_holds_quantile_bins_missing_min_max() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(10.0, 2.0, 5000)
    values[:250] = np.nan
    values[250] = np.inf  # ±inf counts as missing, as Evidently drops it
    profile = ReferenceProfile.from_frame(pd.DataFrame({"x": values}))
    column = profile.column("x")
    assert isinstance(column, NumericColumn)
    present = values[np.isfinite(values)]
    assert (column.count, column.missing) == (4749, 251)
    assert column.missing_rate == pytest.approx(251 / 5000)
    assert (column.min, column.max) == (present.min(), present.max())
    assert len(column.counts) == 20 and sum(column.counts) == 4749
    assert max(column.counts) - min(column.counts) <= 2  # equal-mass bins
    np.testing.assert_array_equal(column.counts, np.histogram(present, column.edges)[0])
    assert column.std == pytest.approx(np.std(present), rel=1e-9)
    # The bin means, from the stored positions, within 1% of each bin's width.
    edges = np.asarray(column.edges)
    index = np.clip(np.searchsorted(edges, present, side="right") - 1, 0, len(column.counts) - 1)
    means = np.bincount(index, weights=present) / np.bincount(index)
    assert np.all(np.abs(column.bin_sums() / column.counts - means) <= 0.006 * np.diff(edges))
    assert column.values is None and column.distinct is None


def test_small_references_keep_their_values_and_few_distinct_values_are_kept_exactly() -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.normal(size=300), "k": rng.choice([1, 2, 3], 300)})
    profile = ReferenceProfile.from_frame(frame)
    x, k = profile.column("x"), profile.column("k")
    assert isinstance(x, NumericColumn) and isinstance(k, NumericColumn)
    np.testing.assert_array_equal(x.values, np.sort(frame["x"].to_numpy()))
    assert k.distinct == [1.0, 2.0, 3.0]
    assert k.distinct_counts == [int((frame["k"] == v).sum()) for v in (1, 2, 3)]


def test_categories_are_capped_with_an_other_bucket() -> None:
    values = [f"c{i:02d}" for i in range(30) for _ in range(30 - i)] + [None] * 7
    profile = ReferenceProfile.from_frame(pd.DataFrame({"c": values}))
    column = profile.column("c")
    assert isinstance(column, CategoricalColumn)
    assert list(column.categories)[:3] == ["c00", "c01", "c02"] and len(column.categories) == 20
    assert column.categories["c00"] == 30
    assert column.other == sum(30 - i for i in range(20, 30)) and column.other_categories == 10
    assert column.missing == 7


def test_json_round_trip_keeps_the_same_profile(tmp_path: Path) -> None:
    frame = _wide(3000, 3, 2)
    frame["flag"] = np.arange(3000) % 3 == 0
    profile = ReferenceProfile.from_frame(
        frame, predictions=frame["flag"], probabilities=np.full((3000, 2), 0.5)
    )
    saved = profile.save(tmp_path / "profile.json")
    loaded = ReferenceProfile.load(saved)
    assert loaded.to_dict() == profile.to_dict()
    assert json.loads(saved.read_text())["schema_version"] == 1
    assert loaded.names[-3:] == ["prediction", "probability[0]", "probability[1]"]
    assert isinstance(loaded.column("flag"), CategoricalColumn)  # booleans are categories


def test_a_profile_of_100_columns_stays_within_64_kb() -> None:
    profile = ReferenceProfile.from_frame(_wide(20_000, 70, 30))
    # Counts of 1,000 per bin here; leave room for two more digits in each of the 2,000 counts, as a
    # table of 100 million rows would have.
    assert len(profile.to_json().encode()) + 2 * 2000 <= BYTES_PER_100_COLUMNS
    # Every numeric column kept its 20 bins and every categorical one its 20 largest categories.
    assert {len(c.counts) for c in profile.columns if isinstance(c, NumericColumn)} == {20}
    assert {len(c.categories) for c in profile.columns if isinstance(c, CategoricalColumn)} == {20}


def test_a_small_reference_of_100_columns_gives_up_its_values_to_fit() -> None:
    profile = ReferenceProfile.from_frame(_wide(900, 100, 0))
    assert len(profile.to_json().encode()) <= BYTES_PER_100_COLUMNS
    assert all(c.values is None for c in profile.columns if isinstance(c, NumericColumn))


def test_a_tight_budget_merges_bins_and_keeps_them_consistent() -> None:
    frame = _wide(5000, 10, 0)
    profile = ReferenceProfile.from_frame(frame, max_bytes=2500)
    assert len(profile.to_json().encode()) <= 2500
    for column in profile.columns:
        assert isinstance(column, NumericColumn)
        assert len(column.counts) < 20 and sum(column.counts) == 5000
        np.testing.assert_array_equal(column.counts, np.histogram(frame[column.name], column.edges)[0])


def test_bad_profiles_and_tables_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MonitoringError, match="no data rows"):
        ReferenceProfile.from_frame(pd.DataFrame({"x": []}))
    with pytest.raises(MonitoringError, match="3 predictions for 2 rows"):
        ReferenceProfile.from_frame(pd.DataFrame({"x": [1, 2]}), predictions=[1, 2, 3])
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(MonitoringError, match="not JSON"):
        ReferenceProfile.load(tmp_path / "bad.json")
    with pytest.raises(MonitoringError, match="newer than this Kepler reads"):
        ReferenceProfile.from_dict({"schema_version": 99, "rows": 1, "columns": []})
    with pytest.raises(MonitoringError, match="bad field"):
        ReferenceProfile.from_dict({"rows": 1, "columns": [{"kind": "numeric", "name": "x"}]})


def test_a_calibration_table_round_trips_and_a_profile_without_one_still_reads(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(50.0), "line": ["a", "b"] * 25})
    plain = ReferenceProfile.from_frame(frame)
    assert plain.calibration is None and "calibration" not in plain.to_dict()
    table = {"schema_version": 1, "classes": [0, 1], "rows": 50}
    plain.calibration = table
    plain.save(tmp_path / "profile.json")
    assert ReferenceProfile.load(tmp_path / "profile.json").calibration == table
    with pytest.raises(MonitoringError, match="calibration is a list, not an object"):
        ReferenceProfile.from_dict({**plain.to_dict(), "calibration": [1, 2]})


def test_model_profile_reads_numeric_text_as_numbers_and_names_the_outputs() -> None:
    from kepler.monitoring.reference import model_profile

    frame = pd.DataFrame({"t": ["1.5", "n.a.", "3"], "ok": [True, False, True], "line": ["a", "b", None]})
    outputs = {"label": np.array(["x", "y", "x"]), "values": np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])}
    profile = model_profile(
        frame, task="classifier", outputs=outputs, numeric=["t", "ok"], classes=["x", "y"]
    )
    assert profile.names == ["t", "ok", "line", "prediction", "probability[x]", "probability[y]"]
    t, ok = profile.column("t"), profile.column("ok")
    assert isinstance(t, NumericColumn) and (t.count, t.missing, t.min, t.max) == (2, 1, 1.5, 3.0)
    assert isinstance(ok, NumericColumn) and ok.distinct == [0.0, 1.0]
    assert frame["t"].tolist() == ["1.5", "n.a.", "3"]  # the caller's table is left alone
    regressor = model_profile(frame, task="regressor", outputs={"values": np.array([[1.0], [2.0], [3.0]])})
    assert regressor.names[-1] == "prediction"
    detector = model_profile(frame, task="outlier", outputs={"label": np.array([1, -1, 1])})
    assert detector.names[-1] == "prediction"
