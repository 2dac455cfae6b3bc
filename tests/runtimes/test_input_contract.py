"""The input contract the feed builder enforces before the model runs (issue 13): one value per cell, one row out
per row in, missing keys only where a column takes a missing value, infinity as missing, valid Unicode; and
finite answers, probabilities summing to 1, over random payloads."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kepler.errors import InputSchemaError
from kepler.runtimes.inputs import CATEGORICAL_INPUT, NUMERIC_INPUT, FeedBuilder
from kepler.runtimes.manifest import InputSchema

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def schema(dtype: str = "float64", **rules: dict) -> InputSchema:
    columns = [
        {"name": "rpm", "kind": "numeric", "dtype": dtype, **rules.get("rpm", {})},
        {"name": "door_open", "kind": "numeric", "dtype": dtype, **rules.get("door_open", {})},
        {
            "name": "line",
            "kind": "categorical",
            "dtype": "str",
            "categories": ["east", "missing", "north"],
            "allow_unknown": True,
            **rules.get("line", {}),
        },
    ]
    return InputSchema.from_dict(
        {
            "columns": columns,
            "ignored_columns": ["machine_id", "failure"],
            "numeric": {"input": NUMERIC_INPUT, "columns": ["rpm", "door_open"], "dtype": dtype},
            "categorical": {"input": CATEGORICAL_INPUT, "columns": ["line"]},
        }
    )


PLAIN = FeedBuilder(schema())
TYPED = FeedBuilder(schema(line={"missing_as": "missing"}))
ROW = {"rpm": 1500.0, "door_open": 1.0, "line": "east"}


def refused(builder: FeedBuilder, data: Any) -> str:
    with pytest.raises(InputSchemaError) as caught:
        builder.feed(data)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 1000, message
    message.encode("utf-8")  # printable anywhere: no lone surrogate in the message itself
    return message


# --------------------------------------------------------------------------- one value per cell


@pytest.mark.unit
@pytest.mark.parametrize(
    "data, words",
    [
        (
            [{**ROW, "rpm": [300.5]}],
            "column 'rpm' holds a list [300.5] in row 0; a cell holds one value: send a number",
        ),
        (
            [ROW, {**ROW, "rpm": json.loads("[" * 50 + "300.5" + "]" * 50)}],
            "column 'rpm' holds a list [[[[[[[[[[",
        ),
        ([{**ROW, "rpm": [1.0, 2.0]}], "column 'rpm' holds a list [1.0, 2.0] in row 0"),
        ([{"rpm": [], "door_open": [], "line": []}] * 2, "column 'rpm' holds a list [] in row 0"),
        (
            [{**ROW, "line": []}],
            "column 'line' holds a list [] in row 0; a cell holds one value: send the category as text",
        ),
        ([{**ROW, "line": {"code": "east"}}], "column 'line' holds an object {'code': 'east'} in row 0"),
        (
            {"rpm": [[1.0, 2.0]], "door_open": [1.0], "line": ["east"]},
            "column 'rpm' holds a list [1.0, 2.0] in row 0",
        ),
        ({"rpm": [[], []], "door_open": [[], []], "line": [[], []]}, "column 'rpm' holds a list [] in row 0"),
        (
            {"rpm": [1.0, [2.0]], "door_open": [1.0, 0.0], "line": ["east", "east"]},
            "column 'rpm' holds a list [2.0] in row 1",
        ),
        ([[1.0, [2.0], "east"]], "column 'door_open' holds a list [2.0] in row 0"),
        ([[1.0, 0.0, "east"], [1.0, 0.0, ("north",)]], "column 'line' holds a list ('north',) in row 1"),
        (
            {"rpm": np.ones((2, 2)), "door_open": [1.0, 0.0], "line": ["east", "east"]},
            "column 'rpm' must hold one value per row, got an array of shape (2, 2)",
        ),
        ([{**ROW, "rpm": {1.0}}], "column 'rpm' holds a set {1.0} in row 0"),
    ],
)
def test_a_cell_holds_one_value(data: Any, words: str) -> None:
    """Issue 13: [300.5] (even 50 deep) was read as a number; [] in every numeric cell left feed cells unwritten;
    two values in a cell reached onnxruntime; `line: []` dropped the column."""
    assert words in refused(PLAIN, data)


@pytest.mark.unit
def test_a_dataframe_cell_holding_a_list_is_refused() -> None:
    frame = pd.DataFrame(
        {"rpm": [1.0, 2.0], "door_open": [0.0, 1.0], "line": pd.Series(["east", ["north"]], dtype=object)}
    )
    assert "column 'line' holds a list ['north'] in row 1" in refused(PLAIN, frame)
    frame = pd.DataFrame(
        {"rpm": pd.Series([1.0, [2.0]], dtype=object), "door_open": [0.0, 1.0], "line": ["a", "b"]}
    )
    assert "column 'rpm' holds a list [2.0] in row 1" in refused(PLAIN, frame)


@pytest.mark.unit
def test_columns_the_model_ignores_are_never_looked_into() -> None:
    """A source table's list column (the build drops it) may come along with the rows."""
    feed = PLAIN.feed([{**ROW, "machine_id": ["M", 1, {"x": None}], "failure": "\ud800"}])
    assert feed[NUMERIC_INPUT].tolist() == [[1500.0, 1.0]]
    feed = PLAIN.feed({"rpm": [1.0], "door_open": [0.0], "line": ["east"], "machine_id": [[1, [2]]]})
    assert feed[CATEGORICAL_INPUT].tolist() == [["east"]]
    assert "columns have different lengths [1, 2]" in refused(
        PLAIN, {**{k: [v] for k, v in ROW.items()}, "machine_id": [1, 2]}
    )


# --------------------------------------------------------------------------- rows in, rows out


@pytest.mark.unit
@pytest.mark.parametrize(
    "data, rows",
    [
        ([ROW], 1),
        ([ROW, {"door_open": 0.0, "line": "north"}, {"rpm": None, "line": "east"}], 3),
        ({"rpm": [1.0, 2.0], "door_open": [None, "1"], "line": ["east", "north"]}, 2),
        ({"rpm": 1.0, "door_open": 0.0, "line": "east"}, 1),  # one record as a mapping of values
        ([[1.0, 0.0, "east"]] * 4, 4),
        (pd.DataFrame([ROW] * 5), 5),
    ],
)
def test_every_row_in_gives_one_row_out(data: Any, rows: int) -> None:
    feed = PLAIN.feed(data)
    assert feed[NUMERIC_INPUT].shape == (rows, 2) and feed[CATEGORICAL_INPUT].shape == (rows, 1)


# --------------------------------------------------------------------------- missing keys


@pytest.mark.unit
def test_a_missing_key_is_missing_only_where_the_column_takes_one() -> None:
    feed = PLAIN.feed([ROW, {"door_open": 0.0, "line": "north"}])
    assert math.isnan(feed[NUMERIC_INPUT][1, 0]) and feed[NUMERIC_INPUT][1, 1] == 0.0
    assert refused(PLAIN, [ROW, {"rpm": 1.0, "door_open": 0.0}]) == (
        "record 1 has no 'line', and that column takes no missing value; send 'line' in every record"
    )
    assert TYPED.feed([ROW, {"rpm": 1.0, "door_open": 0.0}])[CATEGORICAL_INPUT][:, 0].tolist() == [
        "east",
        "missing",
    ]
    assert "column 'line' is categorical and takes no missing value, got None in row 1" in refused(
        PLAIN, [ROW, {**ROW, "line": None}]
    )
    # A column no record holds is a missing column, whatever it takes.
    assert refused(PLAIN, [{"door_open": 1.0, "line": "east"}]).startswith("missing columns: rpm;")


# --------------------------------------------------------------------------- infinity and huge numbers


@pytest.mark.unit
@pytest.mark.parametrize(
    "value", [math.inf, -math.inf, 10**400, -(10**400), np.float64("inf"), "inf", "-Infinity"]
)
def test_infinity_and_numbers_beyond_a_float_are_missing_values(value: Any) -> None:
    """The runtime's one rule for infinity, as in training (kepler.data) and pandas' CSV reader ("inf").
    (A JSON body cannot carry infinity at all: the service refuses 1e400 as it refuses Infinity.)"""
    for data in (
        [{**ROW, "rpm": value}],
        {"rpm": [value, 2.0], "door_open": [1.0, 1.0], "line": ["east"] * 2},
    ):
        numeric = PLAIN.feed(data)[NUMERIC_INPUT]
        assert math.isnan(numeric[0, 0]) and np.isfinite(numeric[:, 1]).all()


@pytest.mark.unit
def test_infinity_in_arrays_and_frames_is_missing_and_the_callers_data_is_untouched() -> None:
    numeric_only = FeedBuilder(
        InputSchema.from_dict(
            {
                "columns": [
                    {"name": "a", "kind": "numeric", "dtype": "float32"},
                    {"name": "b", "kind": "numeric", "dtype": "float32"},
                ],
                "numeric": {"input": NUMERIC_INPUT, "columns": ["a", "b"], "dtype": "float32"},
            }
        )
    )
    rows = np.array([[np.inf, 1.0], [1e39, 2.0]])  # 1e39 is beyond float32: infinity once cast
    fed = numeric_only.feed(rows)[NUMERIC_INPUT]
    assert np.isnan(fed[:, 0]).all() and fed[:, 1].tolist() == [1.0, 2.0] and np.isinf(rows[0, 0])
    frame = pd.DataFrame({"rpm": [np.inf, 3.0], "door_open": [-np.inf, 1.0], "line": ["east", "east"]})
    fed = PLAIN.feed(frame)[NUMERIC_INPUT]
    assert np.isnan(fed[0]).all() and fed[1].tolist() == [3.0, 1.0] and np.isinf(frame["rpm"][0])


# --------------------------------------------------------------------------- text


@pytest.mark.unit
def test_text_must_be_valid_unicode() -> None:
    """Issue 13: a lone surrogate reached onnxruntime, which failed to encode it (a 500)."""
    assert refused(PLAIN, [ROW, {**ROW, "line": "\ud800"}]) == (
        "column 'line' holds text that is not valid Unicode in row 1 ('\\ud800': a lone surrogate); send UTF-8 text"
    )
    assert refused(TYPED, {"rpm": [1.0], "door_open": [1.0], "line": np.array(["x\udfff"])}).startswith(
        "column 'line' holds text that is not valid Unicode in row 0"
    )
    assert "column 'rpm' must be numeric, got '\\ud800' in row 0" in refused(
        PLAIN, [{**ROW, "rpm": "\ud800"}]
    )
    assert PLAIN.feed([{**ROW, "line": "\U0001f600 \u00e9"}])[CATEGORICAL_INPUT][0, 0] == "\U0001f600 \u00e9"


@pytest.mark.unit
def test_messages_are_one_readable_line() -> None:
    message = refused(PLAIN, [{**ROW, "a\nb": 1, "\ud800": 2, "x" * 10_000: 3}])
    assert message.startswith("unexpected columns: 'a\\nb', '\\ud800', 'xxxxxxxx")
    assert "a number of about 5000 digits" in refused(PLAIN, [{**ROW, "line": 10**5000}])


# --------------------------------------------------------------------------- any payload, fed

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats()
    | st.text(max_size=5)
    | st.sampled_from([10**400, "\ud800", "12", " 3.5 ", "NA", "inf", "east", "north", "yes"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=5,
)
NAMES = st.sampled_from(["rpm", "door_open", "line", "machine_id", "extra"])
RECORDS = st.lists(st.dictionaries(NAMES, VALUES, max_size=5), max_size=4)
COLUMNS = st.integers(0, 3).flatmap(
    lambda n: st.dictionaries(NAMES, st.lists(VALUES, min_size=n, max_size=n) | VALUES, max_size=5)
)
ROWS = st.lists(st.lists(VALUES, min_size=3, max_size=3), min_size=1, max_size=3)


def fed_or_refused(builder: FeedBuilder, data: Any) -> None:
    try:
        feed = builder.feed(data)
    except InputSchemaError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 1000
        str(exc).encode("utf-8")
        return
    rows = (
        len(data) if isinstance(data, list) else len(next(v for k, v in data.items() if k in builder.names))
    )
    numeric, categorical = feed[NUMERIC_INPUT], feed[CATEGORICAL_INPUT]
    assert numeric.shape == (rows, 2) and numeric.dtype == np.float64 and not np.isinf(numeric).any()
    assert categorical.shape == (rows, 1)
    assert all(isinstance(v, str) and v.encode("utf-8") is not None for v in categorical.ravel())


@pytest.mark.unit
@settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=RECORDS | COLUMNS | ROWS)
@example(data=[{"rpm": [], "door_open": [], "line": []}, {"rpm": [], "door_open": [], "line": []}])
@example(data={"rpm": [[]], "door_open": [[]], "line": [[]]})
@example(data=[{"rpm": [[[300.5]]], "door_open": 1.0, "line": "east"}])
@example(data=[{"rpm": 1.0, "door_open": 1.0, "line": "\ud800"}])
@example(data=[{"rpm": 10**400, "door_open": math.inf, "line": "east"}])
def test_any_payload_is_fed_one_row_per_row_or_refused(data: Any) -> None:
    for builder in (PLAIN, TYPED):
        fed_or_refused(builder, data)


# --------------------------------------------------------------------------- answers over random payloads


@pytest.fixture(scope="module")
def predictors(industrial, tmp_path_factory) -> dict[str, Any]:
    """A classifier over numeric and text columns, a forest, and a bare linear regressor (which answers
    infinity for rows near the float limit)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    import kepler as kp
    import kepler.runtimes as kr

    numeric = ["temperature", "pressure", "vibration", "rpm"]
    out: dict[str, Any] = {}
    for name, estimator in (
        ("logistic", LogisticRegression(max_iter=1000)),
        ("forest", RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0)),
    ):
        model = Pipeline(
            [
                (
                    "columns",
                    ColumnTransformer(
                        [
                            ("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
                            ("cat", OneHotEncoder(handle_unknown="ignore"), ["line"]),
                        ]
                    ),
                ),
                ("model", estimator),
            ]
        )
        model.fit(industrial.frame, industrial.grade)
        path = tmp_path_factory.mktemp(name) / "artifact"
        kp.compile(model, "edge", industrial.frame, output=path, benchmark=False)
        out[name] = kr.load(path)
    rows = industrial.numeric_filled.to_numpy()
    path = tmp_path_factory.mktemp("ridge") / "artifact"
    # Wear in thousandths: weights above 1, so rows near the float limit overflow.
    kp.compile(Ridge().fit(rows, industrial.wear * 1000), "edge", rows, output=path, benchmark=False)
    out["ridge"] = kr.load(path)
    return out


FEATURES = ["temperature", "pressure", "vibration", "rpm", "line"]
NUMBERS = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(-1e3, 1e3)
    | st.none()
    | st.integers(-(10**6), 10**6)
)
CELLS = st.integers(0, 9).flatmap(lambda pick: VALUES if pick == 0 else NUMBERS)
LINES = st.sampled_from(["north", "south", "east", "west", "", "\u00e9"]) | VALUES
RECORDS_OF_FEATURES = st.lists(
    st.fixed_dictionaries({**{n: CELLS for n in FEATURES[:4]}, "line": LINES}), min_size=1, max_size=5
)
MATRICES = st.lists(st.lists(NUMBERS, min_size=4, max_size=4), min_size=1, max_size=5)


def answered_or_refused(method: Any, data: Any, rows: int, proba: bool, classes: list | None) -> None:
    try:
        answer = method(data)
    except InputSchemaError as exc:
        assert "\n" not in str(exc)
        return
    assert len(answer) == rows
    if proba:
        assert answer.shape == (rows, len(classes)) and np.isfinite(answer).all()
        np.testing.assert_allclose(answer.sum(axis=1), 1.0, atol=1e-6)
    elif classes is not None:
        assert set(answer.tolist()) <= set(classes)
    else:
        assert np.isfinite(answer).all()


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(records=RECORDS_OF_FEATURES, matrix=MATRICES)
@example(
    records=[
        {"temperature": 1.7e308, "pressure": -1.7e308, "vibration": 1e308, "rpm": 5e307, "line": "east"}
    ],
    matrix=[[1.7e308, 1.7e308, 1.7e308, 1.7e308]],
)
def test_answers_are_finite_and_probabilities_sum_to_one(
    predictors: dict, records: list, matrix: list
) -> None:
    for name in ("logistic", "forest"):
        predictor = predictors[name]
        classes = predictor.classes_.tolist()
        answered_or_refused(predictor.predict_proba, records, len(records), True, classes)
        answered_or_refused(predictor.predict, records, len(records), False, classes)
    answered_or_refused(predictors["ridge"].predict, matrix, len(matrix), False, None)


def test_an_answer_that_is_not_finite_is_refused(predictors: dict) -> None:
    """A linear model answers infinity for rows near the float limit: an answer from garbage, refused as bad input."""
    with pytest.raises(InputSchemaError, match="the model's answer for row 1 is not a finite number"):
        predictors["ridge"].predict([[1.0, 1.0, 1.0, 1.0], [1.7e308, 1.7e308, 1.7e308, 1.7e308]])
    assert np.isfinite(predictors["ridge"].predict([[1.0, 1.0, 1.0, 1.0]])).all()
