"""Degenerate tables read as a careless export holds them: gap words in numbers, list columns, plain values in messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kepler as kp
from kepler.data.files import CSV_MISSING_WORDS, NUMERIC_MISSING_WORDS
from kepler.errors import DataError


def _readings(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {"reading": rng.normal(size=rows).round(3), "other": rng.normal(size=rows), "y": np.arange(rows) % 2}
    )


def test_gap_words_in_a_numeric_csv_column_are_missing_values_with_a_note(tmp_path) -> None:
    frame = _readings().astype({"reading": object})
    frame.loc[[3, 7], "reading"] = "N/A"  # pandas' word
    frame.loc[[5, 9, 11], "reading"] = "—"  # beyond pandas' words: before, the column was text (or an error)
    frame.loc[13, "reading"] = " n.a. "
    frame.to_csv(tmp_path / "gaps.csv", index=False)

    dataset = kp.data.load(tmp_path / "gaps.csv", label="y")
    assert dataset.numeric_columns == ["reading", "other"]
    assert dataset.frame["reading"].dtype == "float64" and dataset.frame["reading"].isna().sum() == 6
    column = next(c for c in dataset.columns if c.name == "reading")
    assert column.kind == "numeric" and column.missing == 6 and column.missing_words == ("n.a.", "—")
    note = next(n for n in dataset.notes if n.startswith("column 'reading'"))
    assert "4 values read as missing ('n.a.' ×1, '—' ×3)" in note
    # The compiled model reads every gap word (and pandas' CSV words) as missing in that column, and only there.
    words = dataset.input_typing()["reading"]["missing_words"]
    assert set(NUMERIC_MISSING_WORDS) | {w for w in CSV_MISSING_WORDS if w} == set(words)
    assert "—" not in dataset.input_typing().get("other", {}).get("missing_words", [])


def test_gap_words_in_a_dataframe_column_of_objects() -> None:
    frame = _readings()
    frame["reading"] = frame["reading"].astype(object)
    frame.loc[[2, 4], "reading"] = "-"
    frame.loc[6, "reading"] = "#DIV/0!"
    dataset = kp.data.load(frame, label="y")
    assert dataset.frame["reading"].isna().sum() == 3 and "reading" in dataset.numeric_columns
    assert dataset.input_typing()["reading"]["missing_words"] == list(NUMERIC_MISSING_WORDS)


def test_other_text_among_numbers_is_still_an_error_naming_it_not_a_gap_word() -> None:
    frame = _readings(100).astype({"reading": object})
    frame.loc[1, "reading"] = "—"
    frame.loc[8, "reading"] = "E42"
    with pytest.raises(DataError, match=r"column 'reading' is numeric but holds text: row 9 has 'E42'"):
        kp.data.load(frame, label="y")


def test_gap_words_in_a_text_column_stay_categories() -> None:
    frame = _readings()
    frame["line"] = np.where(np.arange(60) % 3 == 0, "—", np.where(np.arange(60) % 3 == 1, "north", "south"))
    dataset = kp.data.load(frame, label="y")
    assert "line" in dataset.categorical_columns and set(dataset.frame["line"]) == {"—", "north", "south"}


@pytest.mark.parametrize("cell", [[1, 2], {"a": 1}], ids=["list", "struct"])
def test_a_parquet_column_of_lists_or_structs_is_dropped_with_a_note(tmp_path, cell) -> None:
    frame = _readings()
    frame["nested"] = [cell] * len(frame)
    frame.to_parquet(tmp_path / "nested.parquet")
    dataset = kp.data.load(tmp_path / "nested.parquet", label="y")  # before: TypeError: unhashable type
    column = next(c for c in dataset.columns if c.name == "nested")
    assert column.kind == "nested" and column.role == "dropped"
    assert "nested" in dataset.summary()["dropped_columns"] and dataset.features == ["reading", "other"]
    assert any(
        n.startswith("column 'nested': dropped: cells hold lists or other nested values (60 rows, e.g. ")
        for n in dataset.notes
    )
    assert dataset.input_typing()["nested"] == {"ignored": True}


def test_a_label_of_lists_is_refused() -> None:
    frame = _readings()
    frame["y"] = [[1]] * len(frame)
    with pytest.raises(DataError, match=r"^label 'y' holds lists or other nested values; pick a column"):
        kp.data.load(frame, label="y")


def test_messages_show_plain_values_not_numpy_reprs() -> None:
    frame = _readings().assign(y=np.zeros(60, dtype=np.int64))
    with pytest.raises(DataError) as caught:
        kp.data.load(frame, label="y")
    assert "(0)" in str(caught.value) and "np." not in str(caught.value)  # before: np.int64(0)
