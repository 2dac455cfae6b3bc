"""Pure rules of packaging and serving: tag names, lineage labels, batching from the profile, service settings."""

from __future__ import annotations

import importlib
import re

import pytest

from kepler.deployment.package import batching_settings, model_labels, tag_name
from kepler.errors import KeplerError
from kepler.targets import load_profile

TAG = re.compile(r"[a-z0-9]([a-z0-9_.-]*[a-z0-9])?")
EDGE = load_profile("edge")  # p99 50 ms at batch 1; batch sizes 1, 100, 10000


@pytest.mark.parametrize("release", ["stable-v1.0", "Stable-V1.0", "pm@2026.11", "x" * 128, "a_b.c-d"])
def test_tag_names_are_valid_bentoml_tags(release: str) -> None:
    name = tag_name(release)
    assert TAG.fullmatch(name) and len(name) <= 63 and name.startswith("kepler-")


def test_lossy_tag_names_keep_releases_apart() -> None:
    assert tag_name("stable-v1.0") == "kepler-stable-v1.0"
    assert tag_name("Stable-V1.0") != tag_name("stable-v1.0")
    assert tag_name("a@b") != tag_name("a-b")


def test_labels_are_text() -> None:
    labels = model_labels(
        {
            "release": "r",
            "version": "1.0.0",
            "data_md5": "abc",
            "mlflow_run_id": None,
            "artifact_sha256": "f" * 64,
        }
    )
    assert labels == {
        "kepler.release": "r",
        "kepler.version": "1.0.0",
        "kepler.data-md5": "abc",
        "kepler.artifact-sha256": "f" * 64,
    }


def test_batching_comes_from_the_profile() -> None:
    assert batching_settings(EDGE, None) == {"batching": False}
    assert batching_settings(EDGE, True) == {"batching": True, "max_batch_size": 100, "max_latency_ms": 50}
    assert batching_settings(EDGE, {"max_latency_ms": 120})["max_latency_ms"] == 120
    with pytest.raises(KeplerError, match="unknown batching option"):
        batching_settings(EDGE, {"latency": 5})
    with pytest.raises(KeplerError, match="batching must be"):
        batching_settings(EDGE, "fast")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_service_settings_environment_over_bento_arguments() -> None:
    service = importlib.import_module("kepler.deployment.service")
    arguments = {"model_tag": "kepler-r:abc", "release": "r", "workers": 2, "batching": False}
    values = service.settings(
        arguments, {"KEPLER_WORKERS": "3", "KEPLER_BATCHING": "on", "KEPLER_MODEL_TAG": "x:y"}
    )
    assert values["model_tag"] == "kepler-r:abc" and values["release"] == "r"  # identity: the bento's
    assert values["workers"] == 3 and values["batching"] is True  # tuning: the environment's
    assert service.settings({}, {"KEPLER_MODEL_TAG": "m:1"})["release"] == "m:1"
    with pytest.raises(KeplerError, match="has no model"):
        service.settings({}, {})
    with pytest.raises(KeplerError, match="whole number"):
        service.settings(arguments, {"KEPLER_MAX_BODY_BYTES": "lots"})
    assert values["unknown_columns"] == "reject"  # the default
    relaxed = {**arguments, "unknown_columns": "ignore"}
    assert service.settings(relaxed, {})["unknown_columns"] == "ignore"
    assert service.settings(arguments, {"KEPLER_UNKNOWN_COLUMNS": " IGNORE "})["unknown_columns"] == "ignore"
    assert service.settings(relaxed, {"KEPLER_UNKNOWN_COLUMNS": "reject"})["unknown_columns"] == "reject"
    with pytest.raises(KeplerError, match="setting unknown_columns must be reject or ignore, got 'drop'"):
        service.settings(arguments, {"KEPLER_UNKNOWN_COLUMNS": "drop"})


ROWS = [{"a": 1.0, "b": "x"}, {"a": 2.0, "b": "y"}]
COLUMNS = {"a": [1.0, 2.0], "b": ["x", "y"]}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(
    "payload, table",
    [
        (ROWS, ROWS),
        (COLUMNS, COLUMNS),
        ({"dataframe_records": ROWS}, ROWS),
        ({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, "x"], [2.0, "y"]]}}, COLUMNS),
        (
            {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, "x"], [2.0, "y"]], "index": [7, 8]}},
            COLUMNS,
        ),
        ({"inputs": ROWS}, ROWS),
        ({"inputs": COLUMNS, "params": None}, COLUMNS),
        ({"instances": ROWS, "params": {}}, ROWS),
    ],
)
def test_mlflow_payloads_hold_records_or_columns(payload, table) -> None:
    service = importlib.import_module("kepler.deployment.service")
    assert service.read_payload(payload, {"a", "b"}) == table


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_column_named_like_an_mlflow_key_stays_a_column() -> None:
    service = importlib.import_module("kepler.deployment.service")
    assert service.read_payload({"inputs": [1.0, 2.0]}, {"inputs"}) == {"inputs": [1.0, 2.0]}
    assert service.read_payload({"instances": [1.0]}, {"instances", "failure"}) == {"instances": [1.0]}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(
    "payload, words",
    [
        ("text", "got a JSON str"),
        ([1, 2], "a list body must hold records"),
        ({"a": 1.0}, "map each column to a list"),
        ({"dataframe_split": [[1.0]]}, "dataframe_split must be an object of columns, data"),
        (
            {"dataframe_split": {"columns": ["a"], "data": [[1.0]], "dtypes": {}}},
            "dataframe_split must be an object",
        ),
        ({"dataframe_split": {"data": [[1.0]]}}, "needs columns"),
        ({"dataframe_split": {"columns": ["a", "a"], "data": [[1.0, 2.0]]}}, "names a column twice (a)"),
        ({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0]]}}, "each a list of 2 values"),
        ({"dataframe_records": [[1.0, "x"]]}, "a list body must hold records"),
        ({"inputs": "a=1"}, "inputs must hold a list of records or an object of columns, got a JSON str"),
        (
            {"inputs": ROWS, "instances": ROWS},
            "holds one of dataframe_records, dataframe_split, inputs, instances",
        ),
        ({"dataframe_records": ROWS, "params": {"threshold": 0.3}}, "takes no params"),
    ],
)
def test_bad_bodies_are_schema_errors(payload, words) -> None:
    from kepler.errors import InputSchemaError

    service = importlib.import_module("kepler.deployment.service")
    with pytest.raises(InputSchemaError) as caught:
        service.read_payload(payload, {"a", "b"})
    assert words in str(caught.value) and "\n" not in str(caught.value)
