"""Hostile and degenerate request bodies: the seed corpus of issue 13, for the tests and the soak benchmark.

Every body here must get a 4xx with one ``error`` line from a Kepler service, never a 2xx computed from
garbage and never a 5xx. The bodies are built around one valid record of the served model, so that each
breaks exactly one rule. Standard library only: ``benchmarks/soak.py`` imports this module too.
"""

from __future__ import annotations

import json
from typing import Any


def _record_body(record: dict[str, Any], column: str, raw_value: str) -> bytes:
    """A one-record list body with ``column`` set to ``raw_value``, written as raw JSON text."""
    cells = [f"{json.dumps(k)}: {raw_value if k == column else json.dumps(v)}" for k, v in record.items()]
    return ("[{" + ", ".join(cells) + "}]").encode()


def bodies(input_schema: dict[str, Any], record: dict[str, Any]) -> dict[str, bytes]:
    """Name -> raw body, for the model whose manifest ``input_schema`` is given and one valid ``record`` of it
    (the model's columns only)."""
    columns = input_schema["columns"]
    numeric = [c["name"] for c in columns if c["kind"] == "numeric"]
    categorical = [c["name"] for c in columns if c["kind"] == "categorical"]
    strict = [c["name"] for c in columns if c["kind"] == "categorical" and c.get("missing_as") is None]
    first = numeric[0] if numeric else categorical[0]
    text_column = categorical[0] if categorical else first
    found: dict[str, bytes] = {
        # Lists and objects in a cell: never read as the number they hold, never spread over rows.
        "[] in every numeric cell": json.dumps([{**record, **{n: [] for n in numeric}}]).encode(),
        "[] in every cell of two records": json.dumps([{k: [] for k in record}] * 2).encode(),
        "[] twice in every column": json.dumps({k: [[], []] for k in record}).encode(),
        "two values in a cell": json.dumps([{**record, first: [1.0, 2.0]}]).encode(),
        "two values in a cell, columns": json.dumps(
            {**{k: [v] for k, v in record.items()}, first: [[1.0, 2.0]]}
        ).encode(),
        "[300.5] in a cell": json.dumps([{**record, first: [300.5]}]).encode(),
        "[300.5] 50 deep in a cell": _record_body(record, first, "[" * 50 + "300.5" + "]" * 50),
        "an object in a cell": json.dumps([{**record, first: {"value": 1.0}}]).encode(),
        "[] in a text column": json.dumps([{**record, text_column: []}]).encode(),
        # Numbers JSON cannot carry: infinity in every spelling.
        "1e400": _record_body(record, first, "1e400"),
        "-1e400": _record_body(record, first, "-1e400"),
        "Infinity": _record_body(record, first, "Infinity"),
        "-Infinity": _record_body(record, first, "-Infinity"),
        "NaN": _record_body(record, first, "NaN"),
        "an integer of 5000 digits": _record_body(record, first, "9" * 5000),
        "an integer of 400 digits": _record_body(record, first, "1" + "0" * 399),
        # Text that is not valid Unicode, as JSON can write it (a lone surrogate) and as bytes.
        "a lone surrogate": _record_body(record, text_column, '"\\ud800"'),
        "a lone low surrogate": _record_body(record, text_column, '"x\\udfff"'),
        "bytes that are not UTF-8": b'[{"\xff\xfe": 1}]',
        # Tables that are not tables.
        "an empty list": b"[]",
        "an empty object": b"{}",
        "no columns": b"[{}]",
        "an empty body": b"",
        "null": b"null",
        "a bare number": b"5",
        "a string": b'"rows"',
        "a list of numbers": b"[1, 2, 3]",
        "not JSON": b"temperature=70&pressure=1",
        "a body cut in the middle": json.dumps([record]).encode()[:-7],
        "nested 100000 deep": b"[" * 100_000 + b"]" * 100_000,
        "columns of unequal lengths": json.dumps(
            {**{k: [v, v] for k, v in record.items()}, first: [record[first]]}
        ).encode(),
        "a missing column": json.dumps([{k: v for k, v in record.items() if k != first}]).encode(),
        "text in a numeric column": json.dumps([{**record, first: "hot"}]).encode(),
        "two MLflow forms": json.dumps({"inputs": [record], "instances": [record]}).encode(),
        "MLflow split of the wrong width": json.dumps(
            {"dataframe_split": {"columns": list(record), "data": [[1.0]]}}
        ).encode(),
    }
    if strict:  # a key missing from one record, in a column that takes no missing value
        missing = {k: v for k, v in record.items() if k != strict[0]}
        found["a key missing from one record"] = json.dumps([record, missing]).encode()
    return found


def request(port: int, route: str, body: bytes) -> bytes:
    """One HTTP/1.1 keep-alive request for ``body`` (as benchmarks/serve.py prepares its requests)."""
    return (
        f"POST {route} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


# Requests uvicorn's HTTP parser refuses before any application sees them (each answered 400).
UNPARSABLE_REQUESTS = {
    "garbage": b"GARBAGE\r\n\r\n",
    "a bad Content-Length": b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "a bad chunk": b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
}
