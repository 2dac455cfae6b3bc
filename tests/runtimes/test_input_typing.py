"""Input typing: a column's ``from_text`` and ``missing_as`` rules turn raw values into what the graph reads."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kepler.errors import InputSchemaError
from kepler.runtimes.inputs import CATEGORICAL_INPUT, NUMERIC_INPUT, FeedBuilder


def schema(**rules: dict) -> dict:
    columns = [
        {"name": "rpm", "kind": "numeric", "dtype": "float64", **rules.get("rpm", {})},
        {"name": "door_open", "kind": "numeric", "dtype": "float64", **rules.get("door_open", {})},
        {"name": "line", "kind": "categorical", "dtype": "str", "categories": ["east", "missing", "north"],
         "allow_unknown": True, **rules.get("line", {})},
    ]
    return {"columns": columns,
            "numeric": {"input": NUMERIC_INPUT, "columns": ["rpm", "door_open"], "dtype": "float64"},
            "categorical": {"input": CATEGORICAL_INPUT, "columns": ["line"]}}


WORDS = ["NA", "null", "N/A"]
TYPED = FeedBuilder(schema(rpm={"from_text": "numbers", "missing_words": WORDS},
                           door_open={"from_text": "booleans", "missing_words": WORDS},
                           line={"missing_as": "missing", "missing_words": WORDS}))
PLAIN = FeedBuilder(schema())


def test_raw_rows_read_as_the_training_table_was_typed() -> None:
    records = [
        {"rpm": " 1500.5 ", "door_open": "Yes", "line": None},
        {"rpm": "", "door_open": "no", "line": "  "},
        {"rpm": 1200, "door_open": True, "line": "east"},
        {"rpm": None, "door_open": "1", "line": float("nan")},
        {"rpm": "inf", "door_open": "FALSE", "line": "north"},
    ]
    feed = TYPED.feed(records)
    numeric = feed[NUMERIC_INPUT]
    assert numeric[0].tolist() == [1500.5, 1.0] and numeric[2].tolist() == [1200.0, 1.0]
    assert math.isnan(numeric[1, 0]) and numeric[1, 1] == 0.0
    assert math.isnan(numeric[3, 0]) and numeric[3, 1] == 1.0
    assert math.isnan(numeric[4, 0]) and numeric[4, 1] == 0.0  # infinity is missing, as in kepler.data
    assert feed[CATEGORICAL_INPUT][:, 0].tolist() == ["missing", "missing", "east", "missing", "north"]


def test_text_column_arrays_map_blanks() -> None:
    feed = TYPED.feed({"rpm": np.array(["1", "2"]), "door_open": np.array(["yes", "no"]),
                       "line": np.array(["", "east"])})
    assert feed[NUMERIC_INPUT].tolist() == [[1.0, 1.0], [2.0, 0.0]]
    assert feed[CATEGORICAL_INPUT][:, 0].tolist() == ["missing", "east"]


def test_typed_values_pass_unchanged() -> None:
    records = [{"rpm": 1.5, "door_open": 0.0, "line": "east"}]
    assert {k: v.tolist() for k, v in TYPED.feed(records).items()} == \
        {k: v.tolist() for k, v in PLAIN.feed(records).items()}


@pytest.mark.parametrize("row, message", [
    ({"rpm": "fast", "door_open": "yes", "line": "east"}, "column 'rpm' must be numeric, got 'fast'"),
    ({"rpm": 1.0, "door_open": "maybe", "line": "east"}, "column 'door_open' is a yes/no column, got 'maybe'"),
    ({"rpm": 1.0, "door_open": 1.0, "line": 7}, "column 'line' is categorical and must hold strings, got 7"),
])
def test_text_that_does_not_read_is_refused(row: dict, message: str) -> None:
    with pytest.raises(InputSchemaError, match=message):
        TYPED.feed([row])


@pytest.mark.parametrize("row, message", [
    ({"rpm": "1500", "door_open": 1.0, "line": "east"}, "column 'rpm' must be numeric, got '1500'"),
    ({"rpm": 1.0, "door_open": "yes", "line": "east"}, "column 'door_open' must be numeric, got 'yes'"),
    ({"rpm": 1.0, "door_open": 1.0, "line": None}, "column 'line' is categorical and must hold strings, got None"),
])
def test_without_rules_raw_text_is_refused(row: dict, message: str) -> None:
    with pytest.raises(InputSchemaError, match=message):
        PLAIN.feed([row])


def test_lists_keep_each_value_as_sent() -> None:
    """numpy would turn a list of text and NaN into text ('nan'), and 1.0 beside "no" into '1.0'."""
    feed = TYPED.feed([{"rpm": 1.0, "door_open": "no", "line": "east"},
                       {"rpm": "2", "door_open": 1.0, "line": float("nan")}])
    assert feed[NUMERIC_INPUT].tolist() == [[1.0, 0.0], [2.0, 1.0]]
    assert feed[CATEGORICAL_INPUT][:, 0].tolist() == ["east", "missing"]
    columns = TYPED.feed({"rpm": [1.0, "3"], "door_open": [1.0, "no"], "line": ["east", None]})
    assert columns[NUMERIC_INPUT].tolist() == [[1.0, 1.0], [3.0, 0.0]]


def test_the_readers_missing_words_are_missing() -> None:
    feed = TYPED.feed([{"rpm": "NA", "door_open": " null ", "line": "N/A"}])
    assert np.isnan(feed[NUMERIC_INPUT]).all() and feed[CATEGORICAL_INPUT][0, 0] == "missing"
    with pytest.raises(InputSchemaError, match="got 'NA'"):
        PLAIN.feed([{"rpm": "NA", "door_open": 1.0, "line": "east"}])


def test_the_callers_data_is_never_written_to() -> None:
    import pandas as pd

    line = np.array(["east", None], dtype=object)
    TYPED.feed({"rpm": [1.0, 2.0], "door_open": [0.0, 1.0], "line": line})
    assert line.tolist() == ["east", None]
    frame = pd.DataFrame({"rpm": [1.0, 2.0], "door_open": [0.0, 1.0],
                          "line": pd.Series(["east", None], dtype=object)})
    feed = TYPED.feed(frame)  # pandas may hand out read-only views of its columns
    assert feed[CATEGORICAL_INPUT][:, 0].tolist() == ["east", "missing"] and frame["line"].tolist()[1] is None
