"""The Predictor: scikit-learn style predictions over a compiled artifact, and input checking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import IsolationForest, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import kepler as kp
import kepler.runtimes as kr
from kepler.errors import InputSchemaError, KeplerError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

NUMERIC = ["temperature", "pressure", "vibration", "rpm"]


@pytest.fixture(scope="module")
def strict(industrial, tmp_path_factory) -> dict[str, Any]:
    """A classifier over numeric and categorical columns whose encoder refuses unknown categories."""
    model = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        (
                            "num",
                            Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]),
                            NUMERIC,
                        ),
                        ("cat", OneHotEncoder(handle_unknown="error"), ["line"]),
                    ]
                ),
            ),
            ("model", LogisticRegression(max_iter=2000)),
        ]
    ).fit(industrial.frame, industrial.failure)
    output = tmp_path_factory.mktemp("strict") / "artifact"
    kp.compile(model, target="edge", sample=industrial.frame, output=output, benchmark=False)
    return {"model": model, "path": output, "predictor": kr.load(output)}


@pytest.fixture(scope="module")
def regressor(industrial, tmp_path_factory) -> dict[str, Any]:
    """A bare regressor fit on a numpy matrix."""
    rows = industrial.numeric_filled.to_numpy()
    model = Ridge().fit(rows, industrial.wear)
    output = tmp_path_factory.mktemp("ridge") / "artifact"
    kp.compile(model, target="edge", sample=rows, output=output, benchmark=False)
    return {"model": model, "path": output, "predictor": kr.load(output), "rows": rows}


def _head(industrial, rows: int = 6) -> pd.DataFrame:
    return industrial.frame.head(rows).copy()


def test_load_gives_the_compiled_profile_settings(strict):
    predictor = strict["predictor"]
    assert predictor.profile.name == "edge"
    assert predictor.session_settings["intra_op_num_threads"] == 1
    assert predictor.session_settings["providers"] == ["CPUExecutionProvider"]
    assert predictor.task == "classifier"
    assert predictor.classes_.tolist() == [0, 1]
    assert predictor.feature_names_in_.tolist() == NUMERIC + ["line"]
    assert predictor.manifest.target.name == "edge"


def test_load_with_another_target_uses_its_settings(strict):
    import os

    predictor = kr.load(strict["path"], "cloud")
    assert predictor.profile.name == "cloud"
    assert predictor.session_settings["intra_op_num_threads"] == (os.cpu_count() or 1)


def test_predictions_match_the_native_model(strict, industrial, parity):
    parity(strict["model"], strict["predictor"], industrial.frame, "classifier")


def test_every_input_form_gives_identical_results(strict, industrial):
    predictor = strict["predictor"]
    frame = _head(industrial, 12)
    expected_proba = predictor.predict_proba(frame)
    expected_label = predictor.predict(frame)
    forms = {
        "dict_of_lists": {c: frame[c].tolist() for c in frame.columns},
        "dict_of_arrays": {c: frame[c].to_numpy() for c in frame.columns},
        "records": frame.to_dict("records"),
        "records_as_tuple": tuple(frame.to_dict("records")),
        "array_2d": frame.to_numpy(),
        "list_of_rows": frame.to_numpy().tolist(),
        "columns_reordered": frame[frame.columns[::-1]],
    }
    for name, data in forms.items():
        np.testing.assert_array_equal(predictor.predict_proba(data), expected_proba, err_msg=name)
        np.testing.assert_array_equal(predictor.predict(data), expected_label, err_msg=name)
    np.testing.assert_allclose(expected_proba, strict["model"].predict_proba(frame), atol=1e-12)


def test_booleans_in_a_numeric_column_count_as_zero_and_one_in_every_form(strict, industrial):
    frame = _head(industrial, 3)
    flags = [True, False, True]
    as_numbers = frame.assign(pressure=[1.0, 0.0, 1.0])
    expected = strict["predictor"].predict_proba(as_numbers)
    forms = [
        frame.assign(pressure=flags),
        frame.assign(pressure=pd.Series(flags, dtype=object, index=frame.index)),
        {**{c: frame[c].tolist() for c in frame.columns}, "pressure": flags},
        [
            dict(record, pressure=flag)
            for record, flag in zip(frame.to_dict(orient="records"), flags, strict=False)
        ],
    ]
    for form in forms:
        np.testing.assert_array_equal(strict["predictor"].predict_proba(form), expected)


def test_a_single_record_as_a_dict_of_scalars(strict, industrial):
    frame = _head(industrial, 1)
    one = {c: frame[c].iloc[0] for c in frame.columns}
    np.testing.assert_array_equal(
        strict["predictor"].predict_proba(one), strict["predictor"].predict_proba(frame)
    )


def test_missing_values_as_none_nan_or_null(strict, industrial):
    frame = _head(industrial, 3)
    frame.loc[frame.index[0], "temperature"] = np.nan
    records = frame.to_dict("records")
    records[0]["temperature"] = None
    predictor = strict["predictor"]
    np.testing.assert_array_equal(predictor.predict_proba(records), predictor.predict_proba(frame))
    np.testing.assert_allclose(
        predictor.predict_proba(frame), strict["model"].predict_proba(frame), atol=1e-12
    )


def test_numeric_forms_for_a_matrix_model(regressor):
    predictor, rows = regressor["predictor"], regressor["rows"][:10]
    expected = predictor.predict(rows)
    names = [f"f{i}" for i in range(rows.shape[1])]
    forms = {
        "float32": rows.astype(np.float32),
        "int": np.rint(rows).astype(np.int64),
        "frame": pd.DataFrame(rows, columns=names),
        "dict": {n: rows[:, i] for i, n in enumerate(names)},
        "records": [dict(zip(names, r, strict=False)) for r in rows.tolist()],
        "list": rows.tolist(),
        "text": rows.astype(str),  # numbers sent as text read as pandas reads a CSV
        "records_of_text": [{n: repr(v) for n, v in zip(names, r, strict=False)} for r in rows.tolist()],
    }
    for name, data in forms.items():
        result = predictor.predict(data)
        assert result.shape == (10,), name
        if name != "int":
            np.testing.assert_allclose(result, expected, rtol=1e-6, err_msg=name)
    np.testing.assert_allclose(expected, regressor["model"].predict(rows), rtol=1e-9)


@pytest.mark.parametrize(
    "case",
    [
        "missing_column",
        "extra_column",
        "string_in_numeric",
        "number_in_categorical",
        "none_in_categorical",
        "unknown_category",
        "empty_frame",
        "empty_array",
        "one_dimensional",
        "too_few_columns",
        "too_many_columns",
        "unequal_columns",
        "unreadable_type",
    ],
)
def test_bad_input_raises_input_schema_error(case, strict, industrial):
    frame = _head(industrial, 3)
    bad: Any
    expected: str
    if case == "missing_column":
        bad, expected = frame.drop(columns="rpm"), "missing columns: rpm"
    elif case == "extra_column":
        bad, expected = frame.assign(operator="x"), "unexpected columns: operator"
    elif case == "string_in_numeric":
        bad, expected = (
            frame.assign(rpm=pd.Series(["fast", 1200.0, 1300.0], dtype=object, index=frame.index)),
            "column 'rpm' must be numeric, got 'fast'",
        )
    elif case == "number_in_categorical":
        bad, expected = (
            frame.assign(line=[1, 2, 3]),
            "column 'line' is categorical and must hold strings, got 1 in row 0",
        )
    elif case == "none_in_categorical":
        records = frame.to_dict("records")
        records[2]["line"] = None
        bad, expected = records, "column 'line' is categorical and takes no missing value, got None in row 2"
    elif case == "unknown_category":
        bad, expected = (
            frame.assign(line=["north", "mars", "east"]),
            "column 'line' has unknown categories ['mars']",
        )
    elif case == "empty_frame":
        bad, expected = frame.iloc[:0], "empty batch"
    elif case == "empty_array":
        bad, expected = np.empty((0, 5), dtype=object), "empty batch"
    elif case == "one_dimensional":
        bad, expected = frame.to_numpy()[0], "expected a 2-D array of shape (rows, 5), got shape (5,)"
    elif case == "too_few_columns":
        bad, expected = frame.to_numpy()[:, :4], "expected 5 columns"
    elif case == "too_many_columns":
        bad, expected = np.column_stack([frame.to_numpy(), frame.to_numpy()[:, :1]]), "expected 5 columns"
    elif case == "unequal_columns":
        bad = {c: frame[c].tolist() for c in frame.columns}
        bad["rpm"] = [1000.0]
        expected = "columns have different lengths"
    else:
        bad, expected = "temperature=70", "cannot read input of type str"
    predictor = strict["predictor"]
    for method in (predictor.predict, predictor.predict_proba):
        with pytest.raises(InputSchemaError) as caught:
            method(bad)
        assert expected in str(caught.value)


def test_unknown_category_is_accepted_when_the_encoder_ignores_it(industrial, compile_edge):
    model = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("num", SimpleImputer(), NUMERIC),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["line"]),
                    ]
                ),
            ),
            ("model", LogisticRegression(max_iter=2000)),
        ]
    ).fit(industrial.frame, industrial.failure)
    predictor = compile_edge(model, industrial.frame).predictor()
    frame = _head(industrial).assign(line="mars")
    np.testing.assert_allclose(predictor.predict_proba(frame), model.predict_proba(frame), atol=1e-12)


@pytest.mark.parametrize("case", ["one_dimensional", "wrong_width", "empty", "text"])
def test_bad_input_for_a_matrix_model(case, regressor):
    rows = regressor["rows"][:3]
    bad, expected = {
        "one_dimensional": (rows[0], "got shape (4,)"),
        "wrong_width": (rows[:, :3], "expected 4 columns (f0, f1, f2, f3), got 3"),
        "empty": (rows[:0], "empty batch"),
        "text": (
            np.where(rows > -np.inf, "hot", ""),
            "column 'f0' must be numeric, got 'hot' in row 0; send numbers",
        ),
    }[case]
    with pytest.raises(InputSchemaError) as caught:
        regressor["predictor"].predict(bad)
    assert expected in str(caught.value)
    assert "np." not in str(caught.value)  # numpy's repr of a scalar is not what the caller sent


def test_numbers_sent_as_text_give_the_answers_of_numbers(strict, industrial):
    frame = _head(industrial, 12)
    frame.loc[frame.index[1], "temperature"] = np.nan
    records = frame.to_dict("records")
    as_text = [
        {k: v if isinstance(v, str) else "" if np.isnan(v) else repr(v) for k, v in r.items()}
        for r in records
    ]
    assert any(r["temperature"] == "" for r in as_text) and isinstance(as_text[0]["rpm"], str)
    predictor = strict["predictor"]
    np.testing.assert_array_equal(predictor.predict_proba(as_text), predictor.predict_proba(frame))
    text_frame = pd.DataFrame(as_text).assign(temperature=lambda f: f["temperature"].replace("", "NaN"))
    np.testing.assert_array_equal(predictor.predict_proba(text_frame), predictor.predict_proba(frame))


def test_source_rows_with_the_columns_the_build_dropped(industrial, tmp_path):
    """An artifact compiled with a dataset's input typing ignores the columns the build dropped and the label."""
    source = industrial.frame.assign(
        serial=[f"SN-{i:05d}" for i in range(len(industrial.frame))], failure=industrial.failure
    )
    dataset = kp.data.load(source, label="failure")
    assert dataset.input_typing()["serial"] == dataset.input_typing()["failure"] == {"ignored": True}
    model = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("num", SimpleImputer(), NUMERIC),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["line"]),
                    ]
                ),
            ),
            ("model", LogisticRegression(max_iter=2000)),
        ]
    ).fit(dataset.frame, dataset.label)
    kp.compile(
        model,
        "edge",
        dataset.frame,
        output=tmp_path / "a",
        benchmark=False,
        input_typing=dataset.input_typing(),
    )
    predictor = kr.load(tmp_path / "a")
    assert predictor.ignored_columns == ["serial", "failure"] and predictor.unknown_columns == "reject"
    rows = source.head(8)
    expected = predictor.predict_proba(dataset.frame.head(8))
    for form in (rows, rows.to_dict("records"), {c: rows[c].tolist() for c in rows.columns}):
        np.testing.assert_array_equal(predictor.predict_proba(form), expected)
    with pytest.raises(InputSchemaError, match="unexpected columns: operator; the model reads"):
        predictor.predict(rows.assign(operator="kim"))
    relaxed = kr.load(tmp_path / "a", unknown_columns="ignore")
    assert relaxed.unknown_columns == "ignore"
    np.testing.assert_array_equal(relaxed.predict_proba(rows.assign(operator="kim")), expected)
    with pytest.raises(KeplerError, match="unknown_columns must be reject or ignore"):
        kr.load(tmp_path / "a", unknown_columns="sometimes")


def test_predict_proba_on_a_regressor_raises(regressor):
    with pytest.raises(KeplerError, match="predict_proba needs a classifier, this model is a regressor"):
        regressor["predictor"].predict_proba(regressor["rows"][:2])


def test_decision_function_on_a_classifier_raises(strict, industrial):
    with pytest.raises(KeplerError, match="decision_function needs an outlier detector"):
        strict["predictor"].decision_function(_head(industrial))


def test_outlier_detector_predicts_labels_and_scores(industrial, compile_edge):
    rows = industrial.numeric_filled.to_numpy()
    model = IsolationForest(n_estimators=15, random_state=0).fit(rows)
    predictor = compile_edge(model, rows).predictor()
    assert predictor.task == "outlier" and predictor.classes_ is None
    np.testing.assert_array_equal(predictor.predict(rows), model.predict(rows))
    with pytest.raises(KeplerError, match="predict_proba needs a classifier"):
        predictor.predict_proba(rows)


def test_run_returns_every_graph_output_by_name(strict, industrial):
    outputs = strict["predictor"].run(_head(industrial))
    assert set(outputs) == {"label", "probabilities"}
    assert outputs["probabilities"].shape == (6, 2)
    np.testing.assert_array_equal(outputs["label"].ravel(), strict["predictor"].predict(_head(industrial)))


def test_feed_groups_numeric_and_categorical_columns(strict, industrial):
    feed = strict["predictor"].feed(_head(industrial))
    schema = strict["predictor"].manifest.input_schema
    numeric = feed[schema.numeric.input]
    categorical = feed[schema.categorical.input]
    assert numeric.shape == (6, 4) and numeric.dtype == np.float64
    assert categorical.shape == (6, 1) and categorical.dtype == object
    np.testing.assert_array_equal(numeric, _head(industrial)[NUMERIC].to_numpy())


def test_predictions_do_not_modify_the_input(strict, industrial):
    frame = _head(industrial)
    copy = frame.copy()
    strict["predictor"].predict_proba(frame)
    pd.testing.assert_frame_equal(frame, copy)


def test_columns_named_like_the_graph_inputs_do_not_clash(industrial, compile_edge, parity):
    frame = industrial.frame.rename(
        columns={"temperature": "numeric_features", "line": "categorical_features"}
    )
    numeric = ["numeric_features", "pressure", "vibration", "rpm"]
    model = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [("num", SimpleImputer(), numeric), ("cat", OneHotEncoder(), ["categorical_features"])]
                ),
            ),
            ("model", RandomForestClassifier(n_estimators=7, max_depth=4, random_state=0)),
        ]
    )
    model.fit(frame, industrial.failure)
    artifact = compile_edge(model, frame)
    parity(model, artifact.predictor(), frame, "classifier")


def test_load_of_a_missing_folder(tmp_path: Path):
    from kepler.errors import ArtifactError

    with pytest.raises(ArtifactError, match="no such artifact folder"):
        kr.load(tmp_path / "absent")
