"""The service's gate, driven in-process as the ASGI middleware it is: for any body, a 2xx with one valid answer
per row, or a 4xx with one ``error`` line; never a 5xx, never a traceback; the release header on every answer;
a body cut short by a disconnect never scored.

Behind the gate stands a small ASGI app in place of BentoML's endpoint: it reads the body as BentoML reads an
untyped JSON body (``json.loads``) and answers as the service's endpoints do. The same bodies against
real ``bentoml serve`` servers are in test_deploy_local.py.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from kepler.errors import InputSchemaError

SENSORS = Path(__file__).resolve().parents[2] / "examples" / "data" / "sensors.csv"
_spec = importlib.util.spec_from_file_location("kepler_tests_hostile", Path(__file__).with_name("hostile.py"))
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)

RELEASE = "gate-test"
HEADER = b"x-kepler-release"
MAX_BODY = 1 << 20
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
NUMERIC = [
    "air_temperature_k",
    "process_temperature_k",
    "rotational_speed_rpm",
    "torque_nm",
    "tool_wear_min",
    "vibration_mm_s",
]
MODEL_COLUMNS = NUMERIC + ["machine_type"]
RECORD = {
    "air_temperature_k": 300.7,
    "process_temperature_k": 310.5,
    "rotational_speed_rpm": 1534.0,
    "torque_nm": 26.4,
    "tool_wear_min": 91.0,
    "vibration_mm_s": 4.29,
    "machine_type": "H",
}
# The payloads, for the model below (its machine_type column reads a missing value as "missing").
SEEDS = hostile.bodies(
    {
        "columns": [{"name": n, "kind": "numeric"} for n in NUMERIC]
        + [{"name": "machine_type", "kind": "categorical", "missing_as": "missing"}]
    },
    RECORD,
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The service module with the gate's view of a release loaded: a pipeline over the example table, compiled
    with the table's input typing (ignored columns, ``missing_as``), as ``kepler build`` compiles it."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    import kepler as kp
    import kepler.runtimes as kr

    service = importlib.import_module("kepler.deployment.service")
    table = pd.read_csv(SENSORS).head(1200)
    dataset = kp.data.load(table, label="failure")
    numeric = [c for c in dataset.frame.columns if c != "machine_type"]
    model = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["machine_type"]),
                    ]
                ),
            ),
            ("model", LogisticRegression(max_iter=1000)),
        ]
    ).fit(dataset.frame, dataset.label)
    output = tmp_path_factory.mktemp("gate") / "artifact"
    kp.compile(
        model, "edge", dataset.frame, output=output, benchmark=False, input_typing=dataset.input_typing()
    )
    predictor = kr.load(output)
    loaded = service.Loaded()
    config = service.settings({"model_tag": "kepler-unit:1", "release": RELEASE}, {})
    loaded.set(predictor, service.describe(predictor.manifest, {}, config))
    return Served(service, loaded)


class Served:
    """The service module with a release loaded as a worker holds it (``loaded``, the gate's view of it)."""

    def __init__(self, module: Any, loaded: Any) -> None:
        self.module = module
        self.loaded = loaded

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)


class Endpoint:
    """Stands in for BentoML's endpoint: the body read as BentoML reads an untyped JSON body and answered as the
    service's endpoints answer it; an input error shaped as BentoML shapes an endpoint's 4xx (a one-item list)."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.bodies: list[bytes] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["path"] == "/fails":
            raise RuntimeError("something broke behind the gate")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.bodies.append(body)
        if scope["path"] not in ("/predict", "/predict_proba"):
            status, out = 404, b'{"detail": "Not Found"}'
        else:
            loaded = self.service.loaded
            try:
                table = self.service.read_payload(json.loads(body), loaded.known)
                predict = (
                    loaded.predictor.predict_proba
                    if scope["path"] == "/predict_proba"
                    else loaded.predictor.predict
                )
                status, out = 200, json.dumps(predict(table).tolist()).encode()
            except InputSchemaError as exc:
                status, out = 422, json.dumps([{"error": str(exc)}]).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": out, "more_body": False})


class Answer:
    def __init__(self, messages: list[dict]) -> None:
        self.messages = messages
        starts = [m for m in messages if m["type"] == "http.response.start"]
        self.status = starts[0]["status"] if starts else None
        self.headers = starts[0].get("headers", []) if starts else []
        self.body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k.lower() == name]


def call(
    gate: Any,
    body: bytes | list[bytes],
    *,
    path: str = "/predict_proba",
    method: str = "POST",
    disconnect: bool = False,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Answer:
    """One request through ``gate``: ``body`` in one chunk or several; with ``disconnect``, the client leaves
    after the last chunk, before saying the body is complete."""
    chunks = [body] if isinstance(body, bytes) else body
    incoming = [
        {"type": "http.request", "body": c, "more_body": disconnect or i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    if headers is None:
        headers = [(b"content-type", b"application/json")]
        if not disconnect:
            headers.append((b"content-length", str(sum(map(len, chunks))).encode()))

    async def receive() -> dict:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "http_version": "1.1",
    }
    asyncio.run(gate(scope, receive, send))
    return Answer(sent)


@pytest.fixture(scope="module")
def endpoint(served: Any) -> Endpoint:
    return Endpoint(served)


@pytest.fixture(scope="module")
def gate(served: Any, endpoint: Endpoint) -> Any:
    return served.ReleaseGate(
        endpoint, release=RELEASE, max_body_bytes=MAX_BODY, batching=False, loaded=served.loaded
    )


@pytest.fixture(scope="module")
def record(served: Any) -> dict:
    assert served.loaded.predictor.feature_names_in_.tolist() == MODEL_COLUMNS or set(
        served.loaded.predictor.feature_names_in_
    ) == set(MODEL_COLUMNS)
    return dict(RECORD)


def rows_of(service: Any, body: bytes) -> int:
    table = service.read_payload(json.loads(body), service.loaded.known)
    return len(table) if isinstance(table, list) else len(next(iter(table.values())))


def check_answer(service: Any, answer: Answer, body: bytes, route: str) -> None:
    """The contract of every answer: 2xx with one valid answer per row, or 4xx with one error line."""
    assert answer.status is not None and answer.header(HEADER) == [RELEASE.encode()], answer.messages
    assert 200 <= answer.status < 300 or 400 <= answer.status < 500, (answer.status, answer.body[:300])
    if answer.status >= 400:
        error = answer.json()
        assert isinstance(error, dict) and error["status"] == answer.status, answer.body[:300]
        message = error["error"]
        assert isinstance(message, str) and message and "\n" not in message and "Traceback" not in message
        assert "sys." not in message and "np." not in message and "dtype=" not in message, message
        return
    result = answer.json()
    assert isinstance(result, list) and len(result) == rows_of(service, body), (len(result), body[:300])
    classes = service.loaded.predictor.classes_.tolist()
    for row in result:
        if route == "/predict_proba":
            assert len(row) == len(classes) and all(isinstance(p, float) and math.isfinite(p) for p in row), (
                row
            )
            assert abs(sum(row) - 1.0) < 1e-6, row
        else:
            assert row in classes, row


# --------------------------------------------------------------------------- the findings


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_hostile_body_gets_a_4xx(name: str, served: Any, gate: Any) -> None:
    body = SEEDS[name]
    for route in ("/predict", "/predict_proba"):
        answer = call(gate, body, path=route)
        assert 400 <= answer.status < 500, (name, answer.status, answer.body[:300])
        check_answer(served, answer, body, route)


def test_lists_in_cells_are_refused_by_column_and_row(served: Any, gate: Any, record: dict) -> None:
    """Issue 13: [300.5] (even 50 deep) was read as a number, [] gave an answer from uninitialized memory,
    `machine_type: []` dropped the column, two values in a cell were a 500."""
    bodies = SEEDS
    for name, words in {
        "[300.5] 50 deep in a cell": "column 'air_temperature_k' holds a list [[[[",
        "[300.5] in a cell": "column 'air_temperature_k' holds a list [300.5] in row 0",
        "[] in every numeric cell": "column 'air_temperature_k' holds a list [] in row 0",
        "[] in a text column": "column 'machine_type' holds a list [] in row 0",
        "two values in a cell": "holds a list [1.0, 2.0] in row 0",
        "two values in a cell, columns": "holds a list [1.0, 2.0] in row 0",
    }.items():
        answer = call(gate, bodies[name])
        assert answer.status == 422 and words in answer.json()["error"], (name, answer.body)


def test_rows_in_are_rows_out(served: Any, gate: Any, record: dict) -> None:
    """Issue 13: `[]` in every column gave 200 `[]`: 2 rows in, 0 answers out."""
    bodies = SEEDS
    for name in ("[] twice in every column", "[] in every cell of two records"):
        answer = call(gate, bodies[name])
        assert answer.status == 422 and "holds a list [] in row 0" in answer.json()["error"], answer.body
    two = json.dumps([record, {**record, "machine_type": None}]).encode()
    answer = call(gate, two)
    assert answer.status == 200 and len(answer.json()) == 2


def test_infinity_in_any_spelling_is_refused_alike(served: Any, gate: Any, record: dict) -> None:
    """Issue 13: 1e400 reached the model as infinity while the Infinity literal got 400. Both are 422 now, with
    one rule and one message; an integer past 4300 digits no longer shows Python's internals."""
    bodies = SEEDS
    for name in (
        "1e400",
        "-1e400",
        "Infinity",
        "-Infinity",
        "NaN",
        "an integer of 5000 digits",
        "an integer of 400 digits",
    ):
        answer = call(gate, bodies[name])
        message = answer.json()["error"]
        assert answer.status == 422 and message.endswith(
            "send a finite number, or null for a missing value"
        ), (name, message)
        assert "set_int_max_str_digits" not in message and "4300" not in message
    # The largest integer a float holds is a number like any other.
    fits = json.dumps([{**record, "tool_wear_min": 10**308}]).encode()
    assert call(gate, fits).status == 200


def test_text_that_is_not_unicode_is_a_422_not_a_500(served: Any, gate: Any, record: dict) -> None:
    bodies = SEEDS
    for name in ("a lone surrogate", "a lone low surrogate"):
        answer = call(gate, bodies[name])
        assert answer.status == 422 and "not valid Unicode" in answer.json()["error"], answer.body
    paired = json.dumps([{**record, "machine_type": "\U0001f600"}]).encode()  # escaped as a surrogate pair
    assert b"\\ud83d\\ude00" in paired and call(gate, paired).status == 200
    # Anywhere in the body, in a column the model ignores too.
    ignored = call(gate, b'[{"machine_id": "\\udc00", ' + json.dumps(record).encode()[1:] + b"]")
    assert ignored.status == 422


def test_a_body_cut_short_by_a_disconnect_is_never_scored(
    served: Any, endpoint: Endpoint, gate: Any, record: dict
) -> None:
    """Issue 13: the gate took a disconnect for the end of the body and scored what had come."""
    body = json.dumps([record]).encode()  # a prefix that happens to be a whole table
    before = len(endpoint.bodies)
    answer = call(gate, [body[:10], body[10:]], disconnect=True)
    assert answer.messages == [] and len(endpoint.bodies) == before
    complete = call(gate, [body[:10], body[10:]])
    assert complete.status == 200 and endpoint.bodies[-1] == body


def test_the_release_header_is_on_every_answer(served: Any, gate: Any, record: dict) -> None:
    body = json.dumps([record]).encode()
    answers = {
        "200": call(gate, body),
        "422": call(gate, b"[]"),
        "400 not JSON": call(gate, b"{"),
        "400 bad Content-Length": call(gate, body, headers=[(b"content-length", b"lots")]),
        "413": call(gate, body, headers=[(b"content-length", str(MAX_BODY + 1).encode())]),
        "metadata": call(gate, b"", path="/metadata", method="GET"),
        "405": call(gate, b"", path="/metadata", method="POST"),
        "404 from behind": call(gate, b"", path="/nowhere", method="GET"),
        "500 from behind": call(gate, b"", path="/fails", method="GET"),
    }
    for what, answer in answers.items():
        assert answer.header(HEADER) == [RELEASE.encode()], what
    assert answers["500 from behind"].status == 500
    assert answers["500 from behind"].json()["error"].startswith("the service failed on this request")


def test_the_header_is_left_to_a_server_that_adds_it(served: Any, endpoint: Endpoint, record: dict) -> None:
    """Under `bentoml serve`, uvicorn adds the header to every answer (its parser's 400 included): the gate must
    not add it twice."""
    from kepler._compat import uvicorn as uvicorn_compat

    gate = served.ReleaseGate(
        endpoint, release=RELEASE, max_body_bytes=MAX_BODY, batching=False, loaded=served.loaded
    )
    uvicorn_compat._SERVED.add(served.RELEASE_HEADER.lower())
    try:
        answer = call(gate, json.dumps([record]).encode())
    finally:
        uvicorn_compat._SERVED.discard(served.RELEASE_HEADER.lower())
    assert answer.status == 200 and answer.header(HEADER) == []


def test_an_error_bentoml_wraps_in_a_list_keeps_the_gate_shape(served: Any) -> None:
    """BentoML answers an endpoint's 4xx as `[{"error": ...}]`; the gate gives it its own one-object shape."""
    wrapped = served.ReleaseGate._one_error

    async def run() -> list[dict]:
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        inner = wrapped(send)
        await inner({"type": "http.response.start", "status": 422, "headers": [(b"content-length", b"30")]})
        await inner({"type": "http.response.body", "body": b'[{"error": "bad row"}]', "more_body": False})
        return sent

    sent = asyncio.run(run())
    assert sent[0]["status"] == 422 and json.loads(sent[1]["body"]) == {"error": "bad row", "status": 422}


def test_a_batch_answers_each_request_on_its_own() -> None:
    """With batching, a request whose answer is not finite gets its own 422; the others of its batch their answers."""
    service = importlib.import_module("kepler.deployment.service")
    parts = service._split(np.array([[0.25, 0.75], [np.inf, 0.0], [0.5, 0.5]]), [1, 1, 1])
    assert parts[0] == [[0.25, 0.75]] and parts[2] == [[0.5, 0.5]]
    assert parts[1]["status"] == 422 and "not a finite number" in parts[1]["error"]


# --------------------------------------------------------------------------- any body


OTHER_COLUMNS = ["timestamp", "machine_id", "failure"]  # columns the model ignores
UNKNOWN_COLUMNS = ["operator", "", "\ud800"]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from([10**308, 10**400, -(10**400), "\ud800", "x\udfff", "\U0001f600", "NA", " ", "12"])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
NUMBER_CELLS = (
    st.floats(250, 2000)
    | st.floats(-1e308, 1e308)
    | st.none()
    | st.sampled_from(["300.5", " 12 ", "NA", "", "inf", "-1e3", "nan", "#N/A"])
)
TEXT_CELLS = st.sampled_from(["L", "M", "H", "X", "", " ", "NA", None, "\u00e9"])


def _cell(name: str) -> st.SearchStrategy:
    good = TEXT_CELLS if name == "machine_type" else NUMBER_CELLS
    return st.integers(0, 24).flatmap(lambda pick: JSON_VALUES if pick == 0 else good)


ROW = st.builds(
    lambda row, drop: {k: v for k, v in row.items() if k not in drop},
    st.fixed_dictionaries(
        {n: _cell(n) for n in MODEL_COLUMNS}, optional={n: JSON_VALUES for n in OTHER_COLUMNS}
    ),
    st.sets(st.sampled_from(MODEL_COLUMNS), max_size=2),
)
ROW_WITH_UNKNOWN = st.builds(
    lambda row, key, value: {**row, key: value}, ROW, st.sampled_from(UNKNOWN_COLUMNS), JSON_VALUES
)
RECORDS = st.lists(ROW, max_size=4) | st.lists(ROW | ROW_WITH_UNKNOWN, min_size=1, max_size=3)
COLUMNS = st.integers(0, 4).flatmap(
    lambda rows: st.fixed_dictionaries(
        {n: st.lists(_cell(n), min_size=rows, max_size=rows) for n in MODEL_COLUMNS},
        optional={
            n: st.lists(JSON_VALUES, min_size=rows, max_size=rows) | JSON_VALUES for n in OTHER_COLUMNS
        },
    )
)
TABLES = RECORDS | COLUMNS
MLFLOW = (
    TABLES.map(lambda t: {"dataframe_records": t})
    | TABLES.map(lambda t: {"inputs": t})
    | RECORDS.map(lambda t: {"instances": t, "params": {}})
    | RECORDS.map(
        lambda t: {
            "dataframe_split": {
                "columns": MODEL_COLUMNS,
                "data": [[r.get(c) for c in MODEL_COLUMNS] for r in t],
            }
        }
    )
)
BODIES = st.one_of(TABLES, MLFLOW, JSON_VALUES).map(lambda value: json.dumps(value).encode()) | st.binary(
    max_size=40
)
ROUTES = st.sampled_from(["/predict_proba", "/predict"])


def _with_seeds(test: Any) -> Any:
    for body in SEEDS.values():
        test = example(body=body, route="/predict_proba")(test)
    return test


def _fuzz(served: Any, gate: Any, body: bytes, route: str) -> None:
    answer = call(gate, body, path=route)
    event(f"status {answer.status}")  # --hypothesis-show-statistics: how many bodies got an answer
    check_answer(served, answer, body, route)


@_with_seeds
@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(body=BODIES, route=ROUTES)
def test_any_body_gets_a_valid_answer_or_one_error_line(
    served: Any, gate: Any, body: bytes, route: str
) -> None:
    _fuzz(served, gate, body, route)


@pytest.mark.integration
@settings(max_examples=2000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(body=BODIES, route=ROUTES)
def test_any_body_bounded_fuzz(served: Any, gate: Any, body: bytes, route: str) -> None:
    _fuzz(served, gate, body, route)
