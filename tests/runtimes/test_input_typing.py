"""Input typing: a column's ``from_text`` and ``missing_as`` rules turn raw values into what the graph reads;
numbers sent as text read as pandas reads a CSV; columns the build dropped are ignored, unknown ones refused."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

from kepler.errors import InputSchemaError, KeplerError
from kepler.runtimes.inputs import CATEGORICAL_INPUT, NUMERIC_INPUT, PANDAS_MISSING_WORDS, FeedBuilder
from kepler.runtimes.manifest import InputSchema


def schema(ignored: list[str] | None = None, **rules: dict) -> InputSchema:
    columns = [
        {"name": "rpm", "kind": "numeric", "dtype": "float64", **rules.get("rpm", {})},
        {"name": "door_open", "kind": "numeric", "dtype": "float64", **rules.get("door_open", {})},
        {
            "name": "line",
            "kind": "categorical",
            "dtype": "str",
            "categories": ["east", "missing", "north"],
            "allow_unknown": True,
            **rules.get("line", {}),
        },
    ]
    built = {
        "columns": columns,
        "numeric": {"input": NUMERIC_INPUT, "columns": ["rpm", "door_open"], "dtype": "float64"},
        "categorical": {"input": CATEGORICAL_INPUT, "columns": ["line"]},
    }
    if ignored is not None:
        built["ignored_columns"] = ignored
    return InputSchema.from_dict(built)


WORDS = ["NA", "null", "N/A"]
TYPED = FeedBuilder(
    schema(
        rpm={"from_text": "numbers", "missing_words": WORDS},
        door_open={"from_text": "booleans", "missing_words": WORDS},
        line={"missing_as": "missing", "missing_words": WORDS},
    )
)
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
    feed = TYPED.feed(
        {"rpm": np.array(["1", "2"]), "door_open": np.array(["yes", "no"]), "line": np.array(["", "east"])}
    )
    assert feed[NUMERIC_INPUT].tolist() == [[1.0, 1.0], [2.0, 0.0]]
    assert feed[CATEGORICAL_INPUT][:, 0].tolist() == ["missing", "east"]


def test_typed_values_pass_unchanged() -> None:
    records = [{"rpm": 1.5, "door_open": 0.0, "line": "east"}]
    assert {k: v.tolist() for k, v in TYPED.feed(records).items()} == {
        k: v.tolist() for k, v in PLAIN.feed(records).items()
    }


@pytest.mark.parametrize(
    "row, message",
    [
        ({"rpm": "fast", "door_open": "yes", "line": "east"}, "column 'rpm' must be numeric, got 'fast'"),
        (
            {"rpm": 1.0, "door_open": "maybe", "line": "east"},
            "column 'door_open' is a yes/no column, got 'maybe'",
        ),
        (
            {"rpm": 1.0, "door_open": 1.0, "line": 7},
            "column 'line' is categorical and must hold strings, got 7 in row 0",
        ),
    ],
)
def test_text_that_does_not_read_is_refused(row: dict, message: str) -> None:
    with pytest.raises(InputSchemaError, match=message):
        TYPED.feed([row])


@pytest.mark.parametrize(
    "row, message",
    [
        (
            {"rpm": "1500 rpm", "door_open": 1.0, "line": "east"},
            "column 'rpm' must be numeric, got '1500 rpm'",
        ),
        ({"rpm": 1.0, "door_open": "yes", "line": "east"}, "column 'door_open' must be numeric, got 'yes'"),
        (
            {"rpm": 1.0, "door_open": 1.0, "line": None},
            "column 'line' is categorical and takes no missing value, got None in row 0",
        ),
    ],
)
def test_without_rules_raw_text_is_refused(row: dict, message: str) -> None:
    with pytest.raises(InputSchemaError, match=message):
        PLAIN.feed([row])


def test_lists_keep_each_value_as_sent() -> None:
    """numpy would turn a list of text and NaN into text ('nan'), and 1.0 beside "no" into '1.0'."""
    feed = TYPED.feed(
        [
            {"rpm": 1.0, "door_open": "no", "line": "east"},
            {"rpm": "2", "door_open": 1.0, "line": float("nan")},
        ]
    )
    assert feed[NUMERIC_INPUT].tolist() == [[1.0, 0.0], [2.0, 1.0]]
    assert feed[CATEGORICAL_INPUT][:, 0].tolist() == ["east", "missing"]
    columns = TYPED.feed({"rpm": [1.0, "3"], "door_open": [1.0, "no"], "line": ["east", None]})
    assert columns[NUMERIC_INPUT].tolist() == [[1.0, 1.0], [3.0, 0.0]]


def test_the_readers_missing_words_are_missing() -> None:
    feed = TYPED.feed([{"rpm": "NA", "door_open": " null ", "line": "N/A"}])
    assert np.isnan(feed[NUMERIC_INPUT]).all() and feed[CATEGORICAL_INPUT][0, 0] == "missing"
    # Without rules a categorical column keeps "NA" as a category: it may be one (North America).
    assert PLAIN.feed([{"rpm": 1.0, "door_open": 1.0, "line": "NA"}])[CATEGORICAL_INPUT][0, 0] == "NA"


@pytest.mark.parametrize("builder", [TYPED, PLAIN], ids=["missing_as", "no-rules"])
def test_a_long_categorical_column_reads_as_its_rows_one_by_one(builder: FeedBuilder) -> None:
    """The feed of a long column (where only distinct values are checked when all are categories as they stand)
    equals the feeds of its rows one at a time, with and without a missing word among them."""
    rows = ["east", "north", "east", "west"] * 50
    for extra in ([], ["NA"], [" "], [np.str_("north")]):
        column = rows + extra
        numeric = [1.0] * len(column)
        whole = builder.feed({"rpm": numeric, "door_open": numeric, "line": column})[CATEGORICAL_INPUT]
        one_by_one = [
            builder.feed([{"rpm": 1.0, "door_open": 1.0, "line": value}])[CATEGORICAL_INPUT][0, 0]
            for value in column
        ]
        assert whole[:, 0].tolist() == one_by_one
    for bad in (None, 3, b"east"):
        with pytest.raises(InputSchemaError, match=f"in row {len(rows)}"):
            PLAIN.feed(
                {"rpm": [1.0] * (len(rows) + 1), "door_open": [1.0] * (len(rows) + 1), "line": rows + [bad]}
            )


SENT_AS_TEXT = [
    "300.5",
    " 12 ",
    "1e3",
    "NaN",
    "",
    "NA",
    "null",
    "-7",
    "+.5e-3",
    "1E+3",
    "5.",
    "N/A",
    "#N/A",
    "-nan",
    "0.1",
    "123456789.123456789",
]


def test_numbers_sent_as_text_read_as_pandas_reads_a_csv() -> None:
    """No from_text rule needed: JSON clients (csv.DictReader, forms) send numbers as strings."""
    csv = "rpm\n" + "\n".join(f'"{text}"' if text.strip() != text else text for text in SENT_AS_TEXT) + "\n"
    expected = pd.read_csv(io.StringIO(csv), skip_blank_lines=False)["rpm"].to_numpy(dtype="float64")
    for builder in (PLAIN, TYPED):
        records = [{"rpm": text, "door_open": 1.0, "line": "east"} for text in SENT_AS_TEXT]
        np.testing.assert_array_equal(builder.feed(records)[NUMERIC_INPUT][:, 0], expected)
        columns = {
            "rpm": SENT_AS_TEXT,
            "door_open": [1.0] * len(SENT_AS_TEXT),
            "line": ["east"] * len(SENT_AS_TEXT),
        }
        np.testing.assert_array_equal(builder.feed(columns)[NUMERIC_INPUT][:, 0], expected)
    assert np.isnan(
        PLAIN.feed([{"rpm": "inf", "door_open": "-Infinity", "line": "x"}])[NUMERIC_INPUT]
    ).all(), "infinity is missing, as in training"


@pytest.mark.parametrize("text", ["1_000", "0x1A", "\u0661\u0662", "12abc", "1.5e", "yes", "true", "\u22125"])
def test_text_pandas_would_not_read_as_a_number_is_refused(text: str) -> None:
    assert not pd.api.types.is_numeric_dtype(
        pd.read_csv(io.StringIO(f"rpm\n{text}\n2\n"))["rpm"]
    )  # text to pandas too
    with pytest.raises(InputSchemaError, match=f"column 'rpm' must be numeric, got {text!r}"):
        PLAIN.feed([{"rpm": text, "door_open": 1.0, "line": "east"}])


def test_a_yes_no_column_reads_numbers_as_text_too() -> None:
    feed = TYPED.feed({"rpm": [1.0, 2.0], "door_open": ["1.0", " 0 "], "line": ["a", "b"]})
    assert feed[NUMERIC_INPUT][:, 1].tolist() == [1.0, 0.0]


def test_pandas_missing_words_are_pandas_defaults() -> None:
    from pandas._libs.parsers import STR_NA_VALUES

    assert PANDAS_MISSING_WORDS == set(STR_NA_VALUES) - {""}


def test_numeric_arrays_take_the_fast_path_unchanged() -> None:
    numeric_only = InputSchema.from_dict(
        {
            "columns": [{"name": "a", "kind": "numeric", "dtype": "float32"}],
            "numeric": {"input": NUMERIC_INPUT, "columns": ["a"], "dtype": "float32"},
        }
    )
    rows = np.array([[1.5], [2.5]], dtype=np.float32)
    assert FeedBuilder(numeric_only).feed(rows)[NUMERIC_INPUT] is rows
    text = FeedBuilder(numeric_only).feed(np.array([["1.5"], [" 2.5"]]))[NUMERIC_INPUT]
    assert text.dtype == np.float32 and text.tolist() == [[1.5], [2.5]]


# --- columns the model does not read -------------------------------------------------------------

SOURCE_ROW = {
    "machine_id": "M-0042",
    "timestamp": "2026-01-05T06:00:00",
    "rpm": "1500",
    "door_open": "yes",
    "line": "east",
    "failure": 1,
    "comment": None,
}
DROPPED = ["machine_id", "timestamp", "failure", "comment"]
YES_NO = {"from_text": "booleans"}


def test_columns_the_build_dropped_are_accepted_and_ignored() -> None:
    builder = FeedBuilder(schema(DROPPED, door_open=YES_NO))
    model_only = {k: SOURCE_ROW[k] for k in ("rpm", "door_open", "line")}
    expected = {k: v.tolist() for k, v in builder.feed([model_only]).items()}
    frame = pd.DataFrame([SOURCE_ROW])
    for form in ([SOURCE_ROW], {k: [v] for k, v in SOURCE_ROW.items()}, SOURCE_ROW, frame):
        assert {k: v.tolist() for k, v in builder.feed(form).items()} == expected
    # Only some of them, in any order, is fine too.
    assert {k: v.tolist() for k, v in builder.feed([{"failure": 0, **model_only}]).items()} == expected
    assert builder.ignored == DROPPED


def test_unknown_columns_are_refused_by_name_or_ignored_on_request() -> None:
    row = {**SOURCE_ROW, "operator": "kim", "shift": 2}
    with pytest.raises(InputSchemaError) as caught:
        FeedBuilder(schema(DROPPED, door_open=YES_NO)).feed([row])
    message = str(caught.value)
    assert message.startswith("unexpected columns: operator, shift; the model reads rpm, door_open, line")
    assert "machine_id, timestamp, failure, comment, which it ignores" in message
    assert "unknown_columns='ignore'" in message
    relaxed = FeedBuilder(schema(DROPPED, door_open=YES_NO), unknown_columns=" Ignore ")
    assert relaxed.unknown_columns == "ignore"
    expected = relaxed.feed([{k: SOURCE_ROW[k] for k in ("rpm", "door_open", "line")}])
    for form in ([row], pd.DataFrame([row]), {k: [v] for k, v in row.items()}):
        assert {k: v.tolist() for k, v in relaxed.feed(form).items()} == {
            k: v.tolist() for k, v in expected.items()
        }
    with pytest.raises(InputSchemaError, match="missing columns: line"):
        relaxed.feed([{"rpm": 1.0, "door_open": 1.0, "operator": "kim"}])  # ignoring never fills a gap


def test_a_manifest_without_ignored_columns_refuses_them() -> None:
    """Artifacts compiled before ignored_columns existed keep refusing every column they do not read."""
    with pytest.raises(
        InputSchemaError,
        match="unexpected columns: machine_id, timestamp, failure, comment; "
        "the model reads rpm, door_open, line; drop them",
    ):
        FeedBuilder(schema()).feed([SOURCE_ROW])


def test_a_bad_unknown_columns_option_is_refused() -> None:
    with pytest.raises(KeplerError, match="unknown_columns must be reject or ignore, got 'drop'"):
        FeedBuilder(schema(), unknown_columns="drop")


def test_the_callers_data_is_never_written_to() -> None:
    import pandas as pd

    line = np.array(["east", None], dtype=object)
    TYPED.feed({"rpm": [1.0, 2.0], "door_open": [0.0, 1.0], "line": line})
    assert line.tolist() == ["east", None]
    frame = pd.DataFrame(
        {"rpm": [1.0, 2.0], "door_open": [0.0, 1.0], "line": pd.Series(["east", None], dtype=object)}
    )
    feed = TYPED.feed(frame)  # pandas may hand out read-only views of its columns
    assert feed[CATEGORICAL_INPUT][:, 0].tolist() == ["east", "missing"] and frame["line"].tolist()[1] is None
