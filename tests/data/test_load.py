"""kp.data.load: every schema inference rule, the label checks, and one clear DataError per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kepler as kp
from kepler.data import ColumnInfo, Dataset, load
from kepler.errors import DataError, KeplerError

REPO = Path(__file__).resolve().parents[2]
SENSORS = REPO / "examples" / "data" / "sensors.csv"
SENSOR_COLUMNS = [
    "air_temperature_k",
    "process_temperature_k",
    "rotational_speed_rpm",
    "torque_nm",
    "tool_wear_min",
    "vibration_mm_s",
]
ROWS = 40


def table(**columns) -> pd.DataFrame:
    """A DataFrame of ROWS rows: the given columns plus a two-class label ``y`` and a float sensor ``temp``."""
    rng = np.random.default_rng(3)
    base = {"temp": rng.normal(60.0, 5.0, ROWS), "y": np.tile([0, 1], ROWS // 2)}
    return pd.DataFrame({**columns, **base})


def info(dataset: Dataset, name: str) -> ColumnInfo:
    return next(c for c in dataset.columns if c.name == name)


def error_of(source, **kwargs) -> str:
    with pytest.raises(DataError) as caught:
        load(source, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- the shipped example -------------------------------------------------------------------------


def test_sensors_example():
    dataset = kp.data.load(SENSORS, label="failure")

    assert info(dataset, "timestamp").kind == "datetime" and info(dataset, "timestamp").role == "dropped"
    assert info(dataset, "machine_id").kind == "id" and info(dataset, "machine_id").role == "dropped"
    assert dataset.categorical_columns == ["machine_type"]
    assert dataset.numeric_columns == SENSOR_COLUMNS
    assert dataset.features == ["machine_type", *SENSOR_COLUMNS]
    assert "failure" not in dataset.frame.columns
    assert dataset.task == "classification"
    assert len(dataset) == 5000 and len(dataset.label) == 5000
    assert (dataset.frame[SENSOR_COLUMNS].dtypes == "float64").all()
    assert dataset.frame["machine_type"].dtype == object
    assert set(dataset.frame["machine_type"]) == {"H", "L", "M"}
    # Sensor dropouts stay NaN: the compiled pipeline imputes them.
    assert dataset.frame["torque_nm"].isna().sum() == 95

    balance = dataset.class_balance
    assert balance["counts"] == {0: 4782, 1: 218}
    assert balance["minority_class"] == 1
    assert balance["minority_share"] == pytest.approx(0.0436)
    assert balance["imbalanced"] is True
    notes = " ".join(dataset.notes)
    assert "timestamp" in notes and "machine_id" in notes and "4.4%" in notes and "imbalanced" in notes

    summary = json.loads(json.dumps(dataset.summary()))
    assert summary["rows"] == 5000
    assert summary["class_balance"]["counts"] == {"0": 4782, "1": 218}
    assert summary["dropped_columns"] == ["timestamp", "machine_id"]
    assert [c["name"] for c in summary["columns"]][-1] == "failure"


def test_kp_data_is_the_package():
    import kepler.data

    assert kp.data is kepler.data
    assert kp.data.load is load


# --- inference rules -------------------------------------------------------------------------------


def test_numeric_columns_become_float64_and_float_sensors_are_never_ids():
    # Unique, sorted floats: a slowly rising temperature is a sensor, not a row id.
    rising = np.linspace(20.0, 80.0, ROWS)
    counts = np.random.default_rng(1).integers(0, 500, ROWS)
    dataset = load(table(rising=rising, counts=counts), label="y")
    assert info(dataset, "rising").kind == "numeric"
    assert info(dataset, "counts").kind == "numeric"
    assert dataset.frame["counts"].dtype == "float64"
    np.testing.assert_array_equal(dataset.frame["rising"], rising)


def test_numbers_stored_as_text_become_numeric():
    values = [f"{v:.3f}" for v in np.linspace(1.0, 2.0, ROWS)]
    values[5] = None
    dataset = load(table(reading=values), label="y")
    column = info(dataset, "reading")
    assert column.kind == "numeric" and "text" in column.note
    assert dataset.frame["reading"].dtype == "float64"
    assert np.isnan(dataset.frame["reading"].iloc[5])
    assert dataset.frame["reading"].iloc[0] == pytest.approx(1.0)


def test_infinite_values_become_missing_with_a_note():
    values = np.ones(ROWS)
    values[[2, 7]] = [np.inf, -np.inf]
    values[3] = 2.0
    dataset = load(table(pressure=values), label="y")
    assert dataset.frame["pressure"].isna().sum() == 2
    assert "2 infinite" in info(dataset, "pressure").note


@pytest.mark.parametrize(
    "values, kind",
    [
        ([True, False] * (ROWS // 2), "bool dtype"),
        (["yes", "No"] * (ROWS // 2), "yes/no"),
        ([" TRUE", "false"] * (ROWS // 2), "true/false"),
        (["1", "0"] * (ROWS // 2), "text 0/1"),
        ([1, 0] * (ROWS // 2), "int 0/1"),
        ([1.0, 0.0, np.nan, 1.0] * (ROWS // 4), "float 0/1 with missing"),
    ],
)
def test_booleans_become_zero_and_one(values, kind):
    dataset = load(table(valve_open=values), label="y")
    column = dataset.frame["valve_open"]
    assert info(dataset, "valve_open").kind == "boolean", kind
    assert column.dtype == "float64"
    assert set(column.dropna()) == {0.0, 1.0}
    assert column.iloc[0] == 1.0 and column.iloc[1] == 0.0
    assert dataset.numeric_columns == ["valve_open", "temp"]


def test_text_with_other_pairs_or_more_values_is_not_boolean():
    dataset = load(
        table(
            state=["on", "off"] * (ROWS // 2),
            mixed=["yes", "false"] * (ROWS // 2),
            counts=[0, 1, 2, 1] * (ROWS // 4),
        ),
        label="y",
    )
    assert info(dataset, "state").kind == "categorical"
    assert info(dataset, "mixed").kind == "categorical"
    assert info(dataset, "counts").kind == "numeric"


@pytest.mark.parametrize(
    "values",
    [
        pd.date_range("2026-01-01", periods=ROWS, freq="10min"),
        pd.date_range("2026-01-01", periods=ROWS, freq="10min", tz="UTC"),
        [f"2026-01-05T06:{i:02d}:00" for i in range(ROWS)],
        [f"2026-02-{i % 28 + 1:02d}" for i in range(ROWS)],
        [f"2026-01-05 06:{i:02d}:00.250+01:00" for i in range(ROWS)],
    ],
)
def test_datetime_columns_are_dropped_with_a_note(values):
    dataset = load(table(when=values), label="y")
    column = info(dataset, "when")
    assert column.kind == "datetime" and column.role == "dropped"
    assert "when" not in dataset.frame.columns
    assert "callers" in column.note
    assert any("when" in note and "datetime" in note for note in dataset.notes)


def test_text_that_only_looks_like_dates_is_not_datetime():
    # Not ISO 8601: read as categories (and never guessed as day-first or month-first dates).
    dataset = load(table(shift=["05/01/2026", "06/01/2026"] * (ROWS // 2)), label="y")
    assert info(dataset, "shift").kind == "categorical"


def test_id_like_columns_are_dropped():
    serials = [f"SN-{i:05d}" for i in range(ROWS)]
    serials[1] = serials[0]  # nearly all unique is enough
    shuffled_ints = np.random.default_rng(0).permutation(ROWS) * 7
    dataset = load(
        table(
            serial=serials,
            row=np.arange(1000, 1000 + ROWS),
            countdown=np.arange(ROWS)[::-1],
            shuffled=shuffled_ints,
        ),
        label="y",
    )
    for name in ("serial", "row", "countdown"):
        assert info(dataset, name).kind == "id", name
        assert info(dataset, name).role == "dropped"
        assert name not in dataset.frame.columns
    # Unique integers out of order are a measurement, not a row id.
    assert info(dataset, "shuffled").kind == "numeric"
    assert sum("looks like" in note for note in dataset.notes) == 3


def test_small_tables_keep_distinct_text_as_categories():
    # Under 20 distinct values every value may be distinct by chance: no id guess.
    frame = pd.DataFrame(
        {"line": [f"line-{i}" for i in range(10)], "temp": np.arange(10) * 1.5, "y": [0, 1] * 5}
    )
    dataset = load(frame, label="y")
    assert info(dataset, "line").kind == "categorical"


def test_categorical_columns_stay_text_and_missing_becomes_a_category():
    values = ["north", "south", None, "east"] * (ROWS // 4)
    values[5] = "  "  # blank text is missing too
    dataset = load(table(line=values), label="y")
    column = dataset.frame["line"]
    assert info(dataset, "line").kind == "categorical"
    assert column.dtype == object and all(isinstance(v, str) for v in column)
    assert (column == "missing").sum() == ROWS // 4 + 1
    assert "missing" in info(dataset, "line").note
    assert dataset.categorical_columns == ["line"]


def test_pandas_categoricals_stay_categorical_even_with_numbers():
    dataset = load(table(grade=pd.Categorical([1, 2, 3, 4] * (ROWS // 4))), label="y")
    assert info(dataset, "grade").kind == "categorical"
    assert list(dataset.frame["grade"].iloc[:2]) == ["1", "2"]


def test_wide_categoricals_get_a_note():
    values = [f"w{i % 60}" for i in range(120)]
    frame = pd.DataFrame({"word": values, "temp": np.arange(120) * 0.5, "y": [0, 1] * 60})
    dataset = load(frame, label="y")
    assert info(dataset, "word").kind == "categorical"
    assert "60 distinct" in info(dataset, "word").note


def test_explicit_drop_and_the_source_frame_is_untouched():
    frame = table(noise=["a", None] * (ROWS // 2), empty=[np.nan] * ROWS)
    before = frame.copy()
    dataset = load(frame, label="y", drop=["noise", "empty"])
    assert dataset.features == ["temp"]
    assert info(dataset, "empty").role == "dropped" and info(dataset, "empty").kind is None
    pd.testing.assert_frame_equal(frame, before)
    assert load(frame, label="y", drop="empty").features == ["noise", "temp"]


def test_without_a_label():
    dataset = load(table(line=["a", "b"] * (ROWS // 2)))
    assert dataset.label is None and dataset.task is None and dataset.class_balance is None
    assert dataset.features == ["line", "temp", "y"]
    assert info(dataset, "y").kind == "boolean"  # without a label, y is just a 0/1 column
    assert json.loads(json.dumps(dataset.summary()))["label"] is None


def test_non_text_column_names_become_text():
    frame = pd.DataFrame(
        {0: np.arange(ROWS) * 0.5 + np.tile([0.1, 0.2], ROWS // 2), "y": [0, 1] * (ROWS // 2)}
    )
    dataset = load(frame, label="y")
    assert dataset.features == ["0"]


# --- the label -------------------------------------------------------------------------------------


def test_rows_with_a_missing_label_are_dropped_and_the_index_kept():
    frame = table()
    frame["y"] = frame["y"].astype(float)
    frame.loc[[3, 10, 11], "y"] = np.nan
    frame.index = [f"r{i}" for i in range(ROWS)]
    dataset = load(frame, label="y")
    assert len(dataset) == ROWS - 3 and len(dataset.label) == ROWS - 3
    assert "r3" not in dataset.frame.index and list(dataset.frame.index) == list(dataset.label.index)
    assert any("3 rows with a missing label" in note for note in dataset.notes)
    # 0.0/1.0 read as float because of the gaps: still classification, with integer classes.
    assert dataset.task == "classification" and dataset.label.dtype == "int64"
    assert info(dataset, "y").missing == 3


def test_classification_and_regression_are_inferred():
    rng = np.random.default_rng(5)
    cases = {
        "text": (["ok", "worn", "broken", "ok"] * (ROWS // 4), "classification"),
        "bool": ([True, False] * (ROWS // 2), "classification"),
        "int classes": ([0, 1, 2, 3] * (ROWS // 4), "classification"),
        "twenty classes": (list(range(20)) * (ROWS // 20), "classification"),
        "many ints": (list(range(ROWS)), "regression"),
        "floats": (rng.normal(10.0, 2.0, ROWS), "regression"),
        "few float values": ([0.5, 1.5] * (ROWS // 2), "regression"),
    }
    for case, (values, task) in cases.items():
        frame = table()
        frame["target"] = values
        dataset = load(frame, label="target", drop=["y"])
        assert dataset.task == task, case
        assert "target" not in dataset.frame.columns
        assert (dataset.class_balance is not None) == (task == "classification"), case
    assert load(frame, label="target", drop=["y"]).label.dtype == "float64"


def test_class_balance_for_several_classes():
    frame = table()
    frame["grade"] = ["a"] * 20 + ["b"] * 16 + ["c"] * 4
    balance = load(frame, label="grade").class_balance
    assert balance["counts"] == {"a": 20, "b": 16, "c": 4}
    assert list(balance["counts"]) == ["a", "b", "c"]
    assert balance["minority_class"] == "c" and balance["minority_share"] == pytest.approx(0.1)
    # Three classes: 10% is under 40% of the balanced share (33%), so imbalanced; 25% each is not.
    assert balance["imbalanced"] is True
    frame["grade"] = ["a", "b", "c", "d"] * (ROWS // 4)
    assert load(frame, label="grade").class_balance["imbalanced"] is False


def test_balanced_binary_label_is_not_imbalanced():
    dataset = load(table(), label="y")
    assert dataset.class_balance["imbalanced"] is False
    assert not any("imbalanced" in note for note in dataset.notes)


def test_missing_label_column_lists_the_columns():
    message = error_of(table(line=["a"] * ROWS), label="failure")
    assert "'failure'" in message and "line, temp, y" in message


def test_label_with_one_class():
    frame = table()
    frame["y"] = 1
    message = error_of(frame, label="y")
    assert "single value" in message and "'y'" in message


def test_label_with_no_values():
    frame = table()
    frame["y"] = np.nan
    assert "no values" in error_of(frame, label="y")


def test_label_also_in_drop():
    assert "drop" in error_of(table(), label="y", drop=["y"])


def test_unknown_drop_name():
    message = error_of(table(), label="y", drop=["tmep"])
    assert "'tmep'" in message and "temp" in message


def test_no_feature_left():
    message = error_of(table(), label="y", drop=["temp"])
    assert "no feature columns" in message


# --- bad columns -----------------------------------------------------------------------------------


def test_all_empty_column_is_dropped_with_a_note():
    frame = table(dead_sensor=[np.nan] * ROWS, comment=[None] * ROWS)
    dataset = load(frame, label="y")
    for name in ("dead_sensor", "comment"):
        column = info(dataset, name)
        assert (column.kind, column.role, column.missing, column.distinct) == ("empty", "dropped", ROWS, 0)
        assert name not in dataset.frame.columns
        assert any(note.startswith(f"column {name!r}: dropped: no values") for note in dataset.notes)
    summary = json.loads(json.dumps(dataset.summary()))
    assert summary["dropped_columns"] == ["dead_sensor", "comment"] and summary["features"] == ["temp"]


def test_all_blank_text_column_is_empty(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("a,b,c,y\n1,,  ,0\n2,,\t,1\n3,,,0\n")
    dataset = load(path, label="y")
    assert info(dataset, "b").kind == info(dataset, "c").kind == "empty" and dataset.features == ["a"]


@pytest.mark.parametrize(
    "values",
    [
        [7] * ROWS,
        [2.5] * ROWS,
        ["plant-3"] * ROWS,
        [True] * ROWS,
        ["yes"] * ROWS,
        pd.Categorical(["a"] * ROWS),
        ["2026-01-01"] * ROWS,
    ],
)
def test_constant_columns_are_dropped_with_a_note(values):
    dataset = load(table(site=values), label="y")
    column = info(dataset, "site")
    assert (column.kind, column.role, column.missing, column.distinct) == ("constant", "dropped", 0, 1)
    assert "site" not in dataset.frame.columns and dataset.features == ["temp"]
    assert any(note.startswith("column 'site': dropped: the same value") for note in dataset.notes)


def test_one_value_with_gaps_is_kept_for_its_missing_indicator():
    """Whether a row has the value is information (an alarm code present on some rows): the column stays."""
    dataset = load(table(alarm=["E42", None] * (ROWS // 2), level=[3.0, np.nan] * (ROWS // 2)), label="y")
    assert info(dataset, "alarm").kind == "categorical"
    assert dataset.frame["alarm"].tolist()[:2] == ["E42", "missing"]
    assert info(dataset, "level").kind == "numeric" and dataset.frame["level"].isna().sum() == ROWS // 2


def test_nothing_but_uninformative_columns_is_an_error():
    message = error_of(pd.DataFrame({"empty": [None] * 4, "same": [1] * 4, "y": [0, 1, 0, 1]}), label="y")
    assert "no feature columns" in message and "empty, same" in message


def test_text_in_a_numeric_column_names_column_value_and_row(tmp_path):
    values = [f"{v:.2f}" for v in np.linspace(10, 20, 50)]
    values[17] = "ERR-42"
    path = tmp_path / "plant.csv"
    pd.DataFrame({"torque": values, "y": [0, 1] * 25}).to_csv(path, index=False)
    message = error_of(path, label="y")
    assert "'torque'" in message and "'ERR-42'" in message and "row 18" in message


def test_mostly_text_column_is_categorical_not_an_error():
    # Only 50% of values parse as numbers: this is a code column, not a numeric one with a typo.
    dataset = load(table(code=["10", "A7"] * (ROWS // 2)), label="y")
    assert info(dataset, "code").kind == "categorical"


# --- bad files -------------------------------------------------------------------------------------


def test_csv_and_parquet_files_load_alike(tmp_path):
    frame = table(line=["a", "b"] * (ROWS // 2))
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    from_csv = load(tmp_path / "t.csv", label="y")
    from_parquet = load(str(tmp_path / "t.parquet"), label="y")
    pd.testing.assert_frame_equal(from_csv.frame, from_parquet.frame)
    assert from_csv.source.endswith("t.csv")


def test_latin1_csv_is_read_with_a_note(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("zone,temp,y\nhall\xe9,1.5,0\nsalle,2.5,1\nhall\xe9,3.5,0\n".encode("latin-1"))
    dataset = load(path, label="y")
    assert set(dataset.frame["zone"]) == {"hall\xe9", "salle"}
    assert any("Latin-1" in note for note in dataset.notes)


def test_missing_file(tmp_path):
    assert "no such file" in error_of(tmp_path / "nope.csv")


def test_folder_is_not_a_file(tmp_path):
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    assert "not a file" in error_of(folder)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert "empty" in error_of(path)


def test_header_only_file(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("a,b,failure\n")
    assert "no data rows" in error_of(path, label="failure")


def test_header_only_parquet(tmp_path):
    path = tmp_path / "header.parquet"
    table().head(0).to_parquet(path)
    assert "no data rows" in error_of(path)


def test_blank_lines_only(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("\n\n\n")
    assert "no table" in error_of(path)


def test_unknown_suffix(tmp_path):
    path = tmp_path / "readings.xlsx"
    path.write_bytes(b"PK\x03\x04 not really")
    message = error_of(path)
    assert ".xlsx" in message and ".csv" in message


@pytest.mark.parametrize(
    "content, needle",
    [
        (b'{"rows": [{"a": 1, "b": 2}]}', "JSON"),
        (b'\n  [\n {"a": 1},\n {"a": 2}\n]\n', "JSON"),
        (b"<html><body>Login</body></html>", "HTML"),
        (bytes(range(256)) * 8, "binary"),
        (b"PK\x03\x04" + bytes(200), "Excel"),
        (b"PAR1" + bytes(50), "Parquet"),
    ],
)
def test_file_that_is_not_a_table(tmp_path, content, needle):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    assert needle in error_of(path)


def test_csv_renamed_parquet(tmp_path):
    path = tmp_path / "data.parquet"
    path.write_text("a,b\n1,2\n")
    message = error_of(path)
    assert "not a Parquet file" in message and "rename it to .csv" in message


def test_unreadable_csv(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text('a,b\n1,2\n3,"4\n')  # an unterminated quote
    assert "not a readable CSV" in error_of(path)


def test_bad_source_type_and_empty_frames():
    assert "pandas DataFrame" in error_of(42)
    assert "no data rows" in error_of(pd.DataFrame({"a": []}))
    assert "no data rows" in error_of(pd.DataFrame())


def test_duplicate_column_names():
    frame = pd.DataFrame([[1, 2, 0], [3, 4, 1]], columns=["a", "a", "y"])
    assert "duplicate" in error_of(frame, label="y")


def test_data_error_is_a_kepler_error_with_the_input_data_exit_code():
    from kepler.cli.main import exit_code_for

    assert issubclass(DataError, KeplerError)
    assert exit_code_for(DataError("bad")) == 6


def test_input_typing_says_how_a_compiled_model_reads_raw_values():
    dataset = load(
        table(
            door=["yes", "No"] * (ROWS // 2),
            count=["1.5", "2"] * (ROWS // 2),
            flag=[True, False] * (ROWS // 2),
            line=["east", None] * (ROWS // 2),
        ),
        label="y",
    )
    assert info(dataset, "door").from_text == "booleans" and info(dataset, "count").from_text == "numbers"
    assert info(dataset, "flag").from_text == "" and info(dataset, "temp").from_text == ""
    assert dataset.input_typing() == {
        "door": {"from_text": "booleans"},
        "count": {"from_text": "numbers"},
        "line": {"missing_as": "missing"},
        "y": {"ignored": True},
    }


def test_input_typing_marks_the_columns_the_model_does_not_read_ignored():
    """A row sent as it stands in the source table carries them: the runtime accepts and ignores them."""
    frame = table(
        serial=[f"SN-{i:05d}" for i in range(ROWS)],
        when=[f"2026-02-{i % 28 + 1:02d}" for i in range(ROWS)],
        empty=[None] * ROWS,
        same=["x"] * ROWS,
        noise=[1.0, 2.0] * (ROWS // 2),
    )
    typing = load(frame, label="y", drop=["noise"]).input_typing()
    assert {name for name, rule in typing.items() if rule == {"ignored": True}} == {
        "serial",
        "when",
        "empty",
        "same",
        "noise",
        "y",
    }
    assert "temp" not in typing


def test_a_csv_readers_missing_words_travel_with_the_typing(tmp_path):
    path = tmp_path / "t.csv"
    table(line=["east", "NA"] * (ROWS // 2)).to_csv(path, index=False)
    dataset = load(path, label="y")
    assert (dataset.frame["line"] == "missing").sum() == ROWS // 2  # NA read as missing, as pandas does
    words = dataset.input_typing()["line"]["missing_words"]
    assert {"NA", "null", "N/A", "NaN"} <= set(words) and "" not in words
    assert dataset.input_typing()["temp"] == {"missing_words": words}
    assert (
        "missing_words"
        not in load(table(line=["east", "NA"] * (ROWS // 2)), label="y").input_typing()["line"]
    )


def test_csv_missing_words_are_pandas_defaults():
    """Spelt out so that models can carry them; they must stay what pandas reads as missing by default."""
    from pandas._libs.parsers import STR_NA_VALUES

    from kepler.data.files import CSV_MISSING_WORDS

    assert set(CSV_MISSING_WORDS) == set(STR_NA_VALUES)
