"""A searched model answers rows as they appear in the source table: yes/no text, numbers as text, missing categories."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import kepler as kp
from kepler.errors import InputSchemaError

BUDGET = 4


@pytest.fixture(scope="module")
def raw_table(sensors_csv):
    """The sensors slice with a yes/no text column, a numbers-as-text column and gaps in a categorical one
    (a DataFrame: a CSV reader would already read the numbers)."""
    frame = pd.read_csv(sensors_csv).drop(columns=["timestamp", "machine_id"])
    rng = np.random.default_rng(0)
    frame["coolant_on"] = np.where(rng.random(len(frame)) < 0.5, "Yes", "no")
    frame["shift_hours"] = [f"{h:.1f}" for h in rng.uniform(6, 12, len(frame))]
    machine_type = frame["machine_type"].astype(object)
    machine_type[rng.random(len(frame)) < 0.1] = None
    frame["machine_type"] = machine_type
    return frame


def test_search_artifact_reads_raw_rows_like_typed_ones(raw_table, tmp_path) -> None:
    dataset = kp.data.load(raw_table, label="failure")
    assert dataset.input_typing() == {
        "machine_type": {"missing_as": "missing"},
        "coolant_on": {"from_text": "booleans"},
        "shift_hours": {"from_text": "numbers"},
        "failure": {"ignored": True},
    }
    result = kp.automl.automl_pipeline(
        dataset, "failure", optimization_time=BUDGET, output=tmp_path / "artifact"
    )
    columns = {c.name: c for c in result.artifact.manifest.input_schema.columns}
    assert columns["coolant_on"].from_text == "booleans" and columns["machine_type"].missing_as == "missing"

    raw = raw_table.drop(columns=["failure"]).head(200)
    records = json.loads(raw.to_json(orient="records"))  # as a client sends them: text, and null for gaps
    assert any(r["machine_type"] is None for r in records) and isinstance(records[0]["shift_hours"], str)
    predictor = kp.runtimes.load(tmp_path / "artifact")
    typed = dataset.frame.loc[raw.index]
    np.testing.assert_array_equal(predictor.predict_proba(records), predictor.predict_proba(typed))
    np.testing.assert_array_equal(predictor.predict(records), predictor.predict(typed))


def test_compile_checks_the_rules_against_the_columns(artifact_dir: Path) -> None:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0] * 5, "kind": ["a", "b", "missing", "a"] * 5})
    y = [0, 1, 1, 0] * 5
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["kind"]),
                        ("num", StandardScaler(), ["x"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(frame, y)
    with pytest.raises(
        InputSchemaError, match="input typing missing_as='missing' does not fit numeric column 'x'"
    ):
        kp.compile(model, "edge", frame, benchmark=False, input_typing={"x": {"missing_as": "missing"}})
    with pytest.raises(InputSchemaError, match="from_text='dates' does not fit numeric column 'x'"):
        kp.compile(model, "edge", frame, benchmark=False, input_typing={"x": {"from_text": "dates"}})
    artifact = kp.compile(
        model,
        "edge",
        frame,
        output=artifact_dir,
        benchmark=False,
        input_typing={"kind": {"missing_as": "missing"}, "not_a_feature": {"from_text": "numbers"}},
    )
    predictor = artifact.predictor()
    assert (
        predictor.predict_proba([{"x": 2.0, "kind": None}]).tolist()
        == predictor.predict_proba([{"x": 2.0, "kind": "missing"}]).tolist()
    )
