"""The Kepler service: one BentoML service module for every release.

It serves the release's ONNX artifact through :mod:`kepler.runtimes` and nothing else: this module
imports only bentoml, numpy, onnxruntime (through kepler.runtimes) and the standard library, so a
serving image carries no scikit-learn, XGBoost, LightGBM, MLflow, pandas or pickle.

Importing this module configures nothing: :func:`configure` makes the BentoML service of one release from its
settings (a new service class each call), and :func:`install_server_fixes` prepares a server process for it.
``bentoml serve`` imports :mod:`kepler.deployment.entry_service`, which calls both with :func:`settings`: which
release comes from the bento's arguments (``bentoml.build(args=...)``, set by ``kp.deploy``) or, when serving
that module directly, from ``KEPLER_MODEL_TAG`` and ``KEPLER_RELEASE``. Tuning settings (``workers``,
``batching``, ``max_body_bytes``, ``unknown_columns``...) read ``KEPLER_<NAME>`` first, then the bento's
arguments, then the defaults below, so an operator can change them without a rebuild.

Endpoints:

- ``POST /predict`` and ``POST /predict_proba``: a JSON list of records (``[{"col": value, ...}, ...]``)
  or an object of columns (``{"col": [values...], ...}``), or one of MLflow's scoring payloads
  (``{"dataframe_records": [...]}``, ``{"dataframe_split": {"columns": [...], "data": [[...]]}}``,
  ``{"inputs": records or columns}``, ``{"instances": [...]}``); they answer a JSON list, one entry per row.
- ``POST /invocations``: MLflow's scoring route, so an MLflow client works unchanged: ``/predict``'s
  answer as ``{"predictions": [...]}``.
- ``GET /metadata``: the release, its version, its lineage (data md5, MLflow run, git commit, artifact
  sha256...), the model's inputs and outputs and the artifact's benchmark figures.
- BentoML's ``/livez`` and ``/readyz``.

Every answer, errors included, carries ``X-Kepler-Release: <release name>``; that name is the release's
node in the project's lineage graph (``kp.versioning.get_complete_lineage(name)``).

Every answer, errors included, carries ``X-Request-Id``: the client's own when it sent a sane token (1-128
letters, digits and ``. _ : -``), else a new uuid4 hex; labels join recorded traffic by it
(``kepler monitor performance``). (The HTTP server's own 400 for a request it cannot parse has none: there is
no request to name.)

Traffic recording (:mod:`kepler.deployment.recording`): with ``sample_rate`` above 0 (``kp.deploy`` passes
``[monitoring] sample_rate`` and ``max_mb`` from kepler.toml; ``KEPLER_SAMPLE_RATE``, ``KEPLER_MAX_MB``
override them), that share of the successful ``/predict``, ``/predict_proba`` and ``/invocations`` requests is
written, with its answer, release, endpoint, time and request id, to JSON Lines files in
``<traffic_dir>/<release>/`` (``KEPLER_TRAFFIC_DIR``; by default ``<BENTOML_HOME>/kepler-traffic``, which for a
local deployment is the project's ``.kepler/bentoml/kepler-traffic``), by a background thread, within
``max_mb``. Recording never blocks nor fails a request: when its queue is full the request is dropped from the
recording and counted (``GET /metadata``: ``recording``, this worker's counters); what is queued is written on
a graceful shutdown (SIGTERM).

Rows are taken as clients send them: the source table's columns the build dropped (ids, timestamps, empty
columns, the label) are ignored, numbers sent as JSON strings are read as pandas reads a CSV, and any other
column the model does not know gets 422, or is ignored with ``unknown_columns=ignore``
(``KEPLER_UNKNOWN_COLUMNS``, ``kepler serve --unknown-columns ignore``).

Bad input never gets a 5xx: a body that is not JSON (or not UTF-8) gets 400, a body over ``max_body_bytes``
413, and a payload that breaks the input contract (:mod:`kepler.runtimes.inputs`: a missing or unexpected
column, a wrong type, a list or an object in a cell, a key missing from a record where the column takes no
missing value, text that is not valid Unicode, an empty batch, columns of unequal length) 422, each with
``{"error": "<one line>", "status": <code>}``. Every row sent gets one answer.

A JSON body cannot carry infinity: ``Infinity``, ``-Infinity`` and ``NaN`` (which JSON has no word for) and a
number beyond a 64-bit float (``1e400``, an integer of 400 digits, which a JSON reader would turn into infinity)
all get 422, wherever they are in the body; send null for a missing value. (Infinity reaching the runtime from
Python, or as the text ``"inf"``, is a missing value, as in training.)

A request whose body is cut short by the client's disconnect is never scored. Every answer carries
``X-Kepler-Release``, those of the HTTP server itself included (its 400 for a request it cannot parse).
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import re
import threading
import typing as t
from http import HTTPStatus
from pathlib import Path

import bentoml
import numpy as np
from bentoml.exceptions import BentoMLException
from bentoml.models import BentoModel

from kepler._compat.bentoml import build_io_schemas_once, install_cancelling_timeout
from kepler._compat.uvicorn import install_server_headers, server_adds
from kepler.deployment.recording import Recorder, default_root, folder_name, records_of, request_id
from kepler.errors import InputSchemaError, KeplerError
from kepler.runtimes import load as load_predictor
from kepler.runtimes.inputs import REJECT, UNKNOWN_COLUMNS
from kepler.runtimes.manifest import Benchmark, Manifest, Parity
from kepler.runtimes.predictor import finite_answer

RELEASE_HEADER = "X-Kepler-Release"
REQUEST_ID_HEADER = "X-Request-Id"
INVOCATIONS_ROUTE = "/invocations"  # MLflow's scoring route: /predict, answered as {"predictions": [...]}
PREDICT_ROUTES = {"/predict": "predict", "/predict_proba": "predict_proba", INVOCATIONS_ROUTE: "predict"}
# MLflow's scoring payloads (mlflow.pyfunc.scoring_server), each holding the table under one key.
MLFLOW_FORMS = ("dataframe_records", "dataframe_split", "inputs", "instances")
MLFLOW_PARAMS = "params"
METADATA_ROUTE = "/metadata"
INPUT_FIELDS = (
    "name",
    "kind",
    "dtype",
    "categories",
    "from_text",
    "missing_as",
    "missing_words",
)  # of each input in /metadata
MIB = 1 << 20
FLOAT64_DIGITS = 309  # an integer of more digits is beyond a 64-bit float (1.8e308)
# The JSON escape of a UTF-16 surrogate: the only way a JSON body can hold text that is not valid Unicode.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
LOG = logging.getLogger("kepler.deployment.service")
COMPLETE, TOO_LARGE, DISCONNECTED = (
    "complete",
    "too large",
    "disconnected",
)  # how reading a request body ended

# name -> (type, default). Identity settings come from the bento first; tuning settings from the environment first.
# The type is a class, or a tuple of the words allowed (see _convert).
_Setting = tuple[type | tuple[str, ...], object]
IDENTITY: dict[str, _Setting] = {
    "model_tag": (str, None),
    "release": (str, None),
    "bento_tag": (str, None),
    "platform": (str, "local"),
}
TUNING: dict[str, _Setting] = {
    "workers": (int, 1),
    "threads": (int, 1),
    "batching": (bool, False),
    "max_batch_size": (int, 100),
    "max_latency_ms": (int, 200),
    "max_body_bytes": (int, 4 * MIB),
    "access_log": (bool, False),
    "timeout_s": (int, 60),
    "unknown_columns": (UNKNOWN_COLUMNS, REJECT),  # reject (422) or ignore columns the model does not know
    # Traffic recording (kepler.deployment.recording): kp.deploy passes kepler.toml's [monitoring] values; a
    # service made without them records nothing.
    "sample_rate": (float, 0.0),
    "max_mb": (float, 100.0),
    "traffic_dir": (str, ""),  # the folder of every release's traffic folder; "" for the default
}


def _convert(name: str, kind: t.Any, value: t.Any) -> t.Any:
    if isinstance(kind, tuple):  # one of these words
        text = str(value).strip().lower()
        if text not in kind:
            raise KeplerError(f"setting {name} must be {' or '.join(kind)}, got {value!r}")
        return text
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise KeplerError(f"setting {name} must be true or false, got {value!r}")
    if kind is float:
        try:
            real = float(value)
        except (TypeError, ValueError):
            raise KeplerError(f"setting {name} must be a number, got {value!r}") from None
        if not math.isfinite(real) or real < 0:
            raise KeplerError(f"setting {name} must be a finite number >= 0, got {value!r}")
        return real
    if kind is int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise KeplerError(f"setting {name} must be a whole number, got {value!r}") from None
        if number < 1:
            raise KeplerError(f"setting {name} must be at least 1, got {number}")
        return number
    return str(value)


def settings(
    arguments: t.Mapping[str, t.Any] | None = None, environ: t.Mapping[str, str] | None = None
) -> dict[str, t.Any]:
    """The service's settings: bento arguments and ``KEPLER_<NAME>`` variables over the defaults.

    Args:
        arguments: The bento's arguments; by default those BentoML holds (``bentoml.use_arguments()``).
        environ: The variables; by default ``os.environ``.

    Raises:
        KeplerError: no model tag, or a setting that is not a valid number or flag.
    """
    arguments = dict(vars(bentoml.use_arguments())) if arguments is None else dict(arguments)
    environ = os.environ if environ is None else environ
    values: dict[str, t.Any] = {}
    for name, (kind, default) in IDENTITY.items():
        value = arguments.get(name)
        if value in (None, ""):
            value = environ.get(f"KEPLER_{name.upper()}") or default
        values[name] = None if value is None else _convert(name, kind, value)
    for name, (kind, default) in TUNING.items():
        value = environ.get(f"KEPLER_{name.upper()}")
        if value in (None, ""):
            value = arguments.get(name, default)
        values[name] = _convert(name, kind, value)
    if not values["model_tag"]:
        raise KeplerError(
            "this Kepler service has no model: serve a bento made by `kepler deploy <release>` "
            "(or `kepler serve <release>`), or set KEPLER_MODEL_TAG to a model in BENTOML_HOME"
        )
    values["release"] = values["release"] or values["model_tag"]
    if values["sample_rate"] > 1:
        raise KeplerError(f"setting sample_rate must be from 0 to 1, got {values['sample_rate']:g}")
    if values["max_mb"] <= 0:
        raise KeplerError(f"setting max_mb must be above 0, got {values['max_mb']:g}")
    return values


# --------------------------------------------------------------------------- the loaded release


class Loaded:
    """What a service instance loaded, shared with its gate: one per service :func:`configure` made, filled when
    the service is instantiated (once in each worker process)."""

    def __init__(self) -> None:
        self.predictor: t.Any = None
        self.metadata: dict[str, t.Any] | None = None
        self.classifier = False
        self.known: frozenset[str] = frozenset()
        self.recorder: Recorder | None = None  # set when the service records traffic
        self._lock = threading.Lock()

    def set(self, predictor: t.Any, metadata: dict[str, t.Any]) -> None:
        with self._lock:
            self.predictor = predictor
            self.metadata = metadata
            self.classifier = predictor.manifest.output_schema.probabilities is not None
            self.known = known_columns(predictor)


def _benchmark_summary(benchmark: Benchmark | None) -> dict[str, t.Any] | None:
    if benchmark is None:
        return None
    return {
        "target": benchmark.target,
        "threads": benchmark.threads,
        "batches": [
            {
                "batch": b.batch,
                "p50_ms": b.p50_ms,
                "p95_ms": b.p95_ms,
                "p99_ms": b.p99_ms,
                "mean_ms": b.mean_ms,
                "throughput_rows_s": b.throughput_rows_s,
            }
            for b in benchmark.batches
        ],
        "size_mb": benchmark.size_mb,
        "load_ms": benchmark.load_ms,
        "session_rss_mb": benchmark.session_rss_mb,
        "throughput_rows_s": benchmark.throughput_rows_s,
        "budgets": {name: check.to_dict() for name, check in benchmark.budgets.items()},
        "machine": benchmark.machine.to_dict(),
    }


def _parity_summary(parity: Parity | None) -> dict[str, t.Any] | None:
    if parity is None:
        return None
    return {k: v for k, v in parity.to_dict().items() if k != "worst_rows"}


def describe(manifest: Manifest, kepler: dict[str, t.Any], config: dict[str, t.Any]) -> dict[str, t.Any]:
    """The ``/metadata`` document of a release.

    Each input lists the text it reads as missing beyond ``model.missing_words``, which every input reads.
    """
    lineage = dict(kepler.get("lineage") or {})
    outputs = manifest.output_schema
    inputs = manifest.input_schema
    return {
        "release": lineage.get("release", config["release"]),
        "version": lineage.get("version"),
        "lineage": lineage,
        "service": {
            "model_tag": config["model_tag"],
            "bento_tag": config.get("bento_tag"),
            "platform": config.get("platform"),
            "workers": config["workers"],
            "batching": (
                {"max_batch_size": config["max_batch_size"], "max_latency_ms": config["max_latency_ms"]}
                if config["batching"]
                else False
            ),
            "max_body_bytes": config["max_body_bytes"],
            "unknown_columns": config.get("unknown_columns", REJECT),
            "sample_rate": config.get("sample_rate", 0.0),
        },
        "model": {
            "task": outputs.task,
            "classes": list(outputs.classes) if outputs.classes is not None else None,
            "estimator": manifest.source.estimator,
            "inputs": [
                {k: v for k, v in column.to_dict().items() if k in INPUT_FIELDS} for column in inputs.columns
            ],
            "ignored_columns": list(inputs.ignored_columns),
            "missing_words": list(inputs.missing_words),
            "target": manifest.target.name,
            "sha256": manifest.sha256,
            "size_bytes": manifest.size_bytes,
        },
        "benchmark": _benchmark_summary(manifest.benchmark),
        "parity": _parity_summary(manifest.parity),
    }


# --------------------------------------------------------------------------- the gate in front of every route


class _NotANumber(ValueError):
    """A JSON token that is no number the model can read: infinity in any spelling (a 422, not a 400)."""


def _reject_constant(token: str) -> t.NoReturn:
    raise _NotANumber(
        f"the body holds {token}, which JSON has no word for and the model cannot read; send a finite "
        f"number, or null for a missing value"
    )


def _beyond_float64(token: str) -> t.NoReturn:
    shown = token if len(token) <= 24 else f"{token[:12]}...{token[-6:]} ({len(token)} characters)"
    raise _NotANumber(
        f"the body holds the number {shown}, beyond what a 64-bit float holds (about 1.8e308): "
        f"infinity, which JSON has no word for either; send a finite number, or null for a missing value"
    )


def _parse_float(token: str) -> float:
    number = float(token)
    if math.isinf(number):
        _beyond_float64(token)
    return number


def _parse_int(token: str) -> int:
    # Python's int() refuses more than 4300 digits with a message about interpreter settings; any integer past
    # 309 digits is beyond a float anyway.
    if len(token) - token.startswith("-") > FLOAT64_DIGITS:
        _beyond_float64(token)
    number = int(token)
    if len(token) - token.startswith("-") == FLOAT64_DIGITS:
        try:
            float(number)
        except OverflowError:
            _beyond_float64(token)
    return number


def _invalid_text(payload: t.Any) -> str | None:
    """The first string (key or value) of ``payload`` that is not valid Unicode, or None."""
    stack = [payload]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def parse_body(body: bytes) -> t.Any:
    """The JSON value of a request body, read as the gate reads it.

    Raises:
        ValueError: the body is not JSON (400).
        InputSchemaError: the body holds a number the model cannot read (infinity in any spelling) or text that
            is not valid Unicode (422).
    """
    try:
        payload = json.loads(
            body, parse_constant=_reject_constant, parse_float=_parse_float, parse_int=_parse_int
        )
    except _NotANumber as exc:
        raise InputSchemaError(str(exc)) from None
    if SURROGATE_ESCAPE.search(body) and (bad := _invalid_text(payload)) is not None:
        shown = json.dumps(bad[:40])
        raise InputSchemaError(
            f"the body holds text that is not valid Unicode ({shown}: a lone surrogate); send UTF-8 text"
        )
    return payload


def _error(status: int, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"error": message, "status": status}).encode()


def known_columns(predictor: t.Any) -> frozenset[str]:
    """The column names a request may carry for ``predictor``: those it reads and those it ignores."""
    return frozenset(str(n) for n in predictor.feature_names_in_) | frozenset(predictor.ignored_columns)


def read_payload(payload: t.Any, known: t.Collection[str] = ()) -> list[t.Any] | dict[str, t.Any]:
    """The table a parsed JSON body holds: a list of records or an object of columns, as sent or unwrapped from
    one of MLflow's scoring payloads. The one reader of bodies, for the gate and the endpoints alike.

    An object is an MLflow payload when its keys are one of :data:`MLFLOW_FORMS` (and optionally ``params``)
    and none of them is a column in ``known``: a model with a column called ``inputs`` still takes columns.

    Raises:
        InputSchemaError: the body is neither records, columns nor an MLflow payload holding one of them.
    """
    if (
        isinstance(payload, dict)
        and payload
        and set(payload) <= {*MLFLOW_FORMS, MLFLOW_PARAMS}
        and not set(payload) & set(known)
        and set(payload) != {MLFLOW_PARAMS}
    ):
        payload = _unwrap_mlflow(payload)
    if isinstance(payload, list):
        if any(not isinstance(row, dict) for row in payload):
            raise InputSchemaError(
                "a list body must hold records (JSON objects of column: value); "
                "send columns as an object of lists instead"
            )
        return payload
    if isinstance(payload, dict):
        if any(not isinstance(v, list) for v in payload.values()):
            raise InputSchemaError("an object body must map each column to a list of values")
        return payload
    raise InputSchemaError(
        f"expected a list of records or an object of columns, got a JSON {type(payload).__name__}"
    )


def _unwrap_mlflow(payload: dict[str, t.Any]) -> t.Any:
    forms = [key for key in MLFLOW_FORMS if key in payload]
    if len(forms) != 1:
        raise InputSchemaError(
            f"an MLflow payload holds one of {', '.join(MLFLOW_FORMS)}, got {', '.join(forms)}; send one"
        )
    if payload.get(MLFLOW_PARAMS) not in (None, {}):
        raise InputSchemaError('this model takes no params; leave "params" out')
    form = forms[0]
    table = payload[form]
    if form != "dataframe_split":
        if not isinstance(table, (list, dict)):
            raise InputSchemaError(
                f"{form} must hold a list of records or an object of columns, "
                f"got a JSON {type(table).__name__}"
            )
        return table
    if not isinstance(table, dict) or set(table) - {"columns", "data", "index"}:
        raise InputSchemaError(
            "dataframe_split must be an object of columns, data and optionally index (pandas' split orient)"
        )
    columns, data = table.get("columns"), table.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InputSchemaError("dataframe_split needs columns: a list of the column names")
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise InputSchemaError(
            f"dataframe_split names a column twice ({', '.join(twice)}); send each column once"
        )
    if not isinstance(data, list) or any(
        not isinstance(row, list) or len(row) != len(columns) for row in data
    ):
        raise InputSchemaError(
            f"dataframe_split needs data: a list of rows, each a list of {len(columns)} values "
            f"in the order of columns"
        )
    return {column: [row[i] for row in data] for i, column in enumerate(columns)}


def check_payload(body: bytes, route: str, loaded: Loaded) -> tuple[int, bytes] | None:
    """None when ``body`` is a valid request for ``route`` to the release ``loaded`` holds, else
    ``(status, JSON error body)``.

    Reads the body with :func:`read_payload` and runs the release's own input check
    (:meth:`kepler.runtimes.Predictor.feed`), so what passes here is exactly what the model accepts.
    """
    try:
        payload = parse_body(body)
    except InputSchemaError as exc:
        return _error(422, str(exc))
    except RecursionError:
        return _error(
            400, "the body is nested too deeply to be a table; send a list of records or an object of columns"
        )
    except UnicodeDecodeError:
        return _error(400, "the body is not UTF-8 text; send JSON encoded as UTF-8")
    except ValueError as exc:  # JSONDecodeError
        return _error(
            400,
            f"the body is not valid JSON ({exc}); send a list of records "
            f'[{{"column": value, ...}}] or an object of columns {{"column": [values]}}',
        )
    try:
        table = read_payload(payload, loaded.known)
    except InputSchemaError as exc:
        return _error(422, str(exc))
    if route == "predict_proba" and not loaded.classifier:
        task = loaded.predictor.manifest.output_schema.task
        return _error(400, f"predict_proba needs a classifier and this release serves a {task}; use /predict")
    try:
        loaded.predictor.feed(table)
    except InputSchemaError as exc:
        return _error(422, str(exc))
    except (
        Exception
    ):  # a reader's bug: logged for the operator, a plain 422 for the client (it is their input)
        LOG.exception("the input check failed on a request body of %d bytes", len(body))
        return _error(
            422,
            "the input cannot be read as the model's columns; send a list of records or an object "
            "of columns, one number, text or null per cell",
        )
    return None


class ReleaseGate:
    """ASGI middleware: stamps ``X-Kepler-Release`` on every answer, serves ``GET /metadata``, and checks the
    body of each prediction request (size, JSON, schema) before BentoML sees it.

    With batching on, it wraps each request's payload in a one-item list, so BentoML's adaptive batching
    groups whole requests (records or columns alike), and unwraps the answer again. ``loaded`` is the service's
    :class:`Loaded`: the release the gate checks bodies against and describes.
    """

    def __init__(
        self, app: t.Any, *, release: str, max_body_bytes: int, batching: bool, loaded: Loaded
    ) -> None:
        self.app = app
        self.loaded = loaded
        self.header = (RELEASE_HEADER.lower().encode(), release.encode("latin-1", "replace"))
        self.max_body_bytes = max_body_bytes
        self.drain_bytes = max(4 * max_body_bytes, 64 * MIB)
        self.batching = batching

    async def __call__(self, scope: dict[str, t.Any], receive: t.Any, send: t.Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(_header(scope, REQUEST_ID_HEADER.lower().encode()))
        stamps = [(REQUEST_ID_HEADER.lower().encode(), rid.encode())]
        if not server_adds(RELEASE_HEADER):  # else the HTTP server puts it on every answer, its own included
            stamps.append(self.header)
        send = self._stamped(send, stamps)
        started = False

        async def tracked(message: dict[str, t.Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._handle(scope, receive, tracked, rid)
        except Exception:
            # A failure of the gate or of what it calls: logged once, answered here (with the release header and
            # one plain line, never a traceback) rather than by the server's bare 500.
            if started:
                raise
            LOG.exception("request to %s failed", scope.get("path", ""))
            await self._reply(
                send, *_error(500, "the service failed on this request; the server log has the details")
            )

    async def _handle(self, scope: dict[str, t.Any], receive: t.Any, send: t.Any, rid: str) -> None:
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if path == METADATA_ROUTE:
            if method not in ("GET", "HEAD"):
                await self._reply(send, *_error(405, "use GET /metadata"), extra=[(b"allow", b"GET, HEAD")])
            elif self.loaded.metadata is None:
                await self._reply(
                    send, *_error(503, "the model is still loading; retry when /readyz answers 200")
                )
            else:
                recorder = self.loaded.recorder  # this worker's recording counters, live
                document = {**self.loaded.metadata, "recording": recorder.stats() if recorder else None}
                await self._reply(send, 200, json.dumps(document).encode(), head=method == "HEAD")
            return
        route = PREDICT_ROUTES.get(path)
        if route is None or method != "POST":
            await self.app(scope, receive, send)
            return
        if self.loaded.predictor is None:
            await self._reply(
                send, *_error(503, "the model is still loading; retry when /readyz answers 200")
            )
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            if not declared.isdigit():
                await self._reply(send, *_error(400, f"bad Content-Length {declared!r}"))
                return
            if "100-continue" not in headers.get("expect", "").lower():
                await self._drain(
                    receive, 0
                )  # the client is sending it anyway: read it so the answer arrives
            await self._too_large(send)
            return
        body, state = await self._read(receive)
        if (
            state == DISCONNECTED
        ):  # the client left before its body was complete: nothing to score, no one to answer
            return
        if state == TOO_LARGE:
            await self._drain(receive, len(body))
            await self._too_large(send)
            return
        if len(body) > 65536:
            import anyio.to_thread

            problem = await anyio.to_thread.run_sync(check_payload, body, route, self.loaded)
        else:
            problem = check_payload(body, route, self.loaded)
        if problem is not None:
            await self._reply(send, *problem)
            return
        send = self._one_error(send)
        if path == INVOCATIONS_ROUTE:
            scope = {**scope, "path": "/predict", "raw_path": b"/predict"}
            send = self._as_predictions(send)
        recorder = self.loaded.recorder
        if recorder is not None and recorder.sampled():
            send = _recorded(send, recorder, rid, route, body)
        if self.batching:
            body = b"[" + body + b"]"
            send = self._unwrapped(send)
        new_headers = [
            (k, v)
            for k, v in scope.get("headers", [])
            if k.lower() not in (b"content-type", b"content-length")
        ]
        new_headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        sent = False

        async def replay() -> dict[str, t.Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app({**scope, "headers": new_headers}, replay, send)

    @staticmethod
    def _stamped(send: t.Any, stamps: list[tuple[bytes, bytes]]) -> t.Any:
        async def stamped(message: dict[str, t.Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *stamps]}
            await send(message)

        return stamped

    @staticmethod
    def _one_error(send: t.Any) -> t.Any:
        """Gives an error answer BentoML wrapped in a list (``[{"error": ...}]``, its shape for a 4xx an endpoint
        raised) the gate's own shape: one object with one ``error`` line and the status."""

        def rewrite(status: int, body: bytes) -> tuple[int, bytes]:
            try:
                answer = json.loads(body)
            except ValueError:
                return status, body
            if (
                isinstance(answer, list)
                and len(answer) == 1
                and isinstance(answer[0], dict)
                and "error" in answer[0]
            ):
                body = json.dumps(
                    {"error": str(answer[0]["error"]).replace("\n", " "), "status": status}
                ).encode()
            return status, body

        return _rewritten(send, rewrite, lambda status: status >= 400)

    @staticmethod
    def _as_predictions(send: t.Any) -> t.Any:
        """Wraps a successful answer as MLflow's ``{"predictions": ...}``."""
        return _rewritten(
            send,
            lambda status, body: (status, b'{"predictions": ' + body.strip() + b"}"),
            lambda status: status == 200,
        )

    @staticmethod
    def _unwrapped(send: t.Any) -> t.Any:
        """Strips the one-item list that batching put around a successful answer."""

        def rewrite(status: int, body: bytes) -> tuple[int, bytes]:
            body = body.strip()
            if body.startswith(b"[") and body.endswith(b"]"):
                body = body[1:-1]
            if body.startswith(b"{"):  # this request's error object in a batch's answer (see _split)
                status = 422
            return status, body

        return _rewritten(send, rewrite, lambda status: status == 200)

    async def _read(self, receive: t.Any) -> tuple[bytes, str]:
        """The body and how reading it ended: :data:`COMPLETE`, :data:`TOO_LARGE` (reading stops at the limit) or
        :data:`DISCONNECTED` (the client left before the last chunk: what came is not the body it meant)."""
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect
                return b"".join(parts), DISCONNECTED
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return b"", TOO_LARGE
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts), COMPLETE

    async def _drain(self, receive: t.Any, already: int) -> None:
        """Reads and drops the rest of an oversize body (up to a bound), so the client can read the 413."""
        size = already
        while size <= self.drain_bytes:
            message = await receive()
            if message["type"] != "http.request":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def _too_large(self, send: t.Any) -> None:
        limit = self.max_body_bytes
        await self._reply(
            send,
            *_error(
                413,
                f"the body is larger than this service accepts ({limit} bytes, "
                f"{limit / MIB:.1f} MiB); send fewer rows per request",
            ),
            extra=[(b"connection", b"close")],
        )

    @staticmethod
    async def _reply(
        send: t.Any,
        status: int,
        body: bytes,
        *,
        head: bool = False,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *(extra or []),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else body, "more_body": False})


# --------------------------------------------------------------------------- the service


def answer(predictor: t.Any, payload: t.Any, known: t.Collection[str], *, proba: bool) -> list[t.Any]:
    """The answer to one request's parsed body: a label or value per row, or a list of probabilities per row.

    Raises:
        InputSchemaError: the body breaks the input contract.
    """
    table = read_payload(payload, known)
    return (predictor.predict_proba(table) if proba else predictor.predict(table)).tolist()


def _rewritten(
    send: t.Any, rewrite: t.Callable[[int, bytes], tuple[int, bytes]], applies: t.Callable[[int], bool]
) -> t.Any:
    """An ASGI ``send`` that buffers an answer whose status ``applies`` and sends ``rewrite(status, body)`` instead,
    with its content-length set; other answers pass through unchanged."""
    start: dict[str, t.Any] | None = None
    chunks: list[bytes] = []

    async def rewritten(message: dict[str, t.Any]) -> None:
        nonlocal start
        if message["type"] == "http.response.start" and applies(message.get("status", 200)):
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        status, body = rewrite(start["status"], b"".join(chunks))
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send(
            {**start, "status": status, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return rewritten


def _header(scope: dict[str, t.Any], name: bytes) -> str | None:
    """The value of a request header (``name`` in lower case), or None."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _recorded(send: t.Any, recorder: Recorder, rid: str, endpoint: str, body: bytes) -> t.Any:
    """An ASGI ``send`` that passes the answer on, then offers a successful one with its request to ``recorder``
    (which never blocks nor raises)."""
    status = 0
    chunks: list[bytes] = []

    async def recorded(message: dict[str, t.Any]) -> None:
        nonlocal status
        await send(message)
        if message["type"] == "http.response.start":
            status = message.get("status", 0)
        elif message["type"] == "http.response.body" and status == 200:
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                recorder.offer(rid, endpoint, body, b"".join(chunks))

    return recorded


def _schema_error(exc: Exception) -> BentoMLException:
    """A 422 for input the gate let through (it should not happen: the gate runs the same check)."""
    return BentoMLException(str(exc), error_code=HTTPStatus.UNPROCESSABLE_ENTITY)


def _split(results: np.ndarray, counts: list[int]) -> list[t.Any]:
    """Each request's share of a batch's answer; a request whose answer is not finite gets an error object
    instead (the gate answers it 422), so that one bad request does not fail the others of its batch."""
    out, start = [], 0
    for count in counts:
        part = results[start : start + count]
        try:
            out.append(finite_answer(part).tolist())
        except InputSchemaError as exc:
            out.append({"error": str(exc), "status": 422})
        start += count
    return out


def install_server_fixes(release: str) -> None:
    """Prepares this process's BentoML server for the service of ``release``: BentoML's request timeout that cancels
    its timer, and ``X-Kepler-Release`` on every answer the HTTP server sends, its parser's 400 included
    (:mod:`kepler._compat.bentoml`, :mod:`kepler._compat.uvicorn`).

    Process-wide: it patches BentoML's and uvicorn's classes for the servers built after it, so the module that
    ``bentoml serve`` imports (:mod:`kepler.deployment.entry_service`) calls it, not :func:`configure`.
    """
    install_cancelling_timeout()
    install_server_headers({RELEASE_HEADER: release})


def make_recorder(
    config: t.Mapping[str, t.Any], predictor: t.Any, known: t.Collection[str]
) -> Recorder | None:
    """The traffic recorder of a service process, or None when ``sample_rate`` is 0.

    It writes to ``<traffic_dir>/<release>/`` (``traffic_dir`` defaults to ``<BENTOML_HOME>/kepler-traffic``,
    :func:`kepler.deployment.recording.default_root`).
    """
    if not config.get("sample_rate"):
        return None
    root = Path(config["traffic_dir"]) if config.get("traffic_dir") else default_root()
    outputs = predictor.manifest.output_schema
    classes = (
        list(outputs.classes) if outputs.probabilities is not None and outputs.classes is not None else None
    )

    def rows_of(body: bytes) -> list[dict[str, t.Any]]:
        return records_of(read_payload(json.loads(body), known))

    return Recorder(
        root / folder_name(config["release"]),
        release=config["release"],
        sample_rate=config["sample_rate"],
        max_mb=config["max_mb"],
        rows_of=rows_of,
        classes=classes,
        workers=config["workers"],
    )


class ReleaseService:
    """Serves one Kepler release's ONNX artifact: what each service made by :func:`configure` runs, with that
    service's settings (``config``), BentoML model (``model``), endpoints and :class:`Loaded`."""

    config: t.ClassVar[dict[str, t.Any]]
    loaded: t.ClassVar[Loaded]
    model: t.Any  # the BentoModel of config["model_tag"]; BentoML gives instances the stored model

    def __init__(self) -> None:
        config = self.config
        stored = self.model
        labels = dict(stored.info.labels)
        expected = labels.get("kepler.release")
        if expected and expected != config["release"]:
            raise KeplerError(
                f"model {stored.tag} belongs to release {expected!r}, not {config['release']!r}; "
                f"deploy the release again with `kepler deploy {config['release']}`"
            )
        # Verifies the ONNX file's sha256 against its manifest.
        self.predictor = load_predictor(stored.path, unknown_columns=config["unknown_columns"])
        self.known = known_columns(self.predictor)
        manifest = self.predictor.manifest
        recorded = labels.get("kepler.artifact-sha256")
        if recorded and recorded != manifest.sha256:
            raise KeplerError(
                f"model {stored.tag}: artifact sha256 {manifest.sha256[:12]}… differs from the "
                f"lineage's {recorded[:12]}…; deploy the release again"
            )
        kepler_metadata = dict(stored.info.metadata.get("kepler") or {})
        self.metadata = {**describe(manifest, kepler_metadata, config), "backends": self.predictor.backends}
        self.loaded.set(self.predictor, self.metadata)
        self.loaded.recorder = make_recorder(config, self.predictor, self.known)
        # Everything loaded so far (BentoML, pydantic, onnxruntime, the session) lives as long as the worker.
        # Left in the collector's generations, every full collection walks all of it again: 55-70 ms pauses
        # every 3-4 s at 500 requests/s (p99 67 ms). Frozen, a full collection walks only what requests leave
        # behind: 2-3 ms (p99 9 ms).
        gc.collect()
        gc.freeze()

    @bentoml.on_shutdown
    def close_recording(self) -> None:
        """Writes the traffic still queued: BentoML calls it in each worker on a graceful shutdown (SIGTERM)."""
        recorder = self.loaded.recorder
        if recorder is not None:
            recorder.close()

    def _batched(self, payloads: list, *, proba: bool) -> list:
        """One run for the payloads of several requests (on the backend chosen for their rows), split back per
        request."""
        try:
            feeds = [self.predictor.feed(read_payload(p, self.known)) for p in payloads]
        except InputSchemaError as exc:
            raise _schema_error(exc) from None
        counts = [len(next(iter(f.values()))) for f in feeds]
        feed = {name: np.concatenate([f[name] for f in feeds]) for name in feeds[0]}
        outputs = self.predictor.manifest.output_schema
        name = str(outputs.probabilities if proba else outputs.answer)
        result = self.predictor.run_feed([name], feed)[0]
        return _split(result if proba else result.ravel(), counts)


def configure(config: t.Mapping[str, t.Any]) -> t.Any:
    """The BentoML service of one release: :class:`ReleaseService` with ``config``'s settings, model, endpoints and
    gate (:class:`ReleaseGate`).

    Each call makes a new service class with its own :class:`Loaded` and changes nothing else, so services with
    different settings can live in one process. A server process needs :func:`install_server_fixes` besides;
    :mod:`kepler.deployment.entry_service` calls both for ``bentoml serve``.

    Args:
        config: Settings by :func:`settings`'s names (``model_tag`` is needed, the others default); values are read
            as :func:`settings` reads bento arguments.

    Returns:
        The BentoML service (``bentoml.Service``).

    Raises:
        KeplerError: an unknown setting, no model tag, or a setting that is not a valid number, flag or word.
    """
    unknown = sorted(set(config) - set(IDENTITY) - set(TUNING))
    if unknown:
        raise KeplerError(
            f"unknown service setting(s) {', '.join(unknown)}; use {', '.join([*IDENTITY, *TUNING])}"
        )
    chosen = settings(config, environ={})

    class KeplerService(ReleaseService):
        """Serves one Kepler release's ONNX artifact."""

        config = chosen
        loaded = Loaded()
        model = BentoModel(chosen["model_tag"])

        if chosen["batching"]:

            @bentoml.api(
                route="/predict",
                batchable=True,
                batch_dim=0,
                max_batch_size=chosen["max_batch_size"],
                max_latency_ms=chosen["max_latency_ms"],
            )
            def predict(self, payloads: list, /) -> list:
                """Labels (classifiers, outlier detectors) or values (regressors), one per row."""
                return self._batched(payloads, proba=False)

            @bentoml.api(
                route="/predict_proba",
                batchable=True,
                batch_dim=0,
                max_batch_size=chosen["max_batch_size"],
                max_latency_ms=chosen["max_latency_ms"],
            )
            def predict_proba(self, payloads: list, /) -> list:
                """Class probabilities, one list per row. Classifiers only."""
                return self._batched(payloads, proba=True)
        else:

            @bentoml.api(route="/predict")
            def predict(self, payload: t.Any, /) -> list:
                """Labels (classifiers, outlier detectors) or values (regressors), one per row."""
                try:
                    return answer(self.predictor, payload, self.known, proba=False)
                except InputSchemaError as exc:
                    raise _schema_error(exc) from None

            @bentoml.api(route="/predict_proba")
            def predict_proba(self, payload: t.Any, /) -> list:
                """Class probabilities, one list per row. Classifiers only."""
                try:
                    return answer(self.predictor, payload, self.known, proba=True)
                except InputSchemaError as exc:
                    raise _schema_error(exc) from None

    service = bentoml.service(
        name="kepler",
        workers=chosen["workers"],
        threads=chosen["threads"],
        traffic={"timeout": chosen["timeout_s"]},
        logging={"access": {"enabled": chosen["access_log"]}},
        labels={"kepler.release": chosen["release"]},
    )(KeplerService)
    build_io_schemas_once(service)
    service.add_asgi_middleware(
        ReleaseGate,
        release=chosen["release"],
        max_body_bytes=chosen["max_body_bytes"],
        batching=chosen["batching"],
        loaded=KeplerService.loaded,
    )
    return service
