"""Canaries of kepler._compat.bentoml: BentoML's private request timeout, the endpoint schemas it rebuilds, and its
Dockerfile writer; and the shims that rely on them.

A canary's message names the shim: when BentoML changes, it says which shim to revisit (or remove, when BentoML
fixed what the shim works around).
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
import typing as t
import weakref
from pathlib import Path
from typing import Any

import bentoml
import pytest
from bentoml._internal.server.http import traffic

from kepler._compat.bentoml import (
    BentoTimeoutMiddleware,
    CancellingTimeoutMiddleware,
    build_io_schemas_once,
    install_cancelling_timeout,
)

SPAN: contextvars.ContextVar[Any] = contextvars.ContextVar("span")  # stands for BentoML's OpenTelemetry span


class Span:
    """What a request's context holds."""


async def answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
    delay = scope.get("delay", 0.0)
    if delay:
        await asyncio.sleep(delay)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok", "more_body": False})


async def serve(
    middleware: Any, requests: int, delay: float = 0.0
) -> tuple[list[list[dict[str, Any]]], list[Any]]:
    """Sends ``requests`` requests through ``middleware``, each in its own context with its own span."""
    spans: list[Any] = []

    async def one() -> list[dict[str, Any]]:
        span = Span()
        spans.append(weakref.ref(span))
        SPAN.set(span)
        del span
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await middleware({"type": "http", "delay": delay}, receive, send)
        return sent

    answers = [await asyncio.create_task(one()) for _ in range(requests)]
    return answers, spans


def alive_spans(middleware_class: type, requests: int) -> int:
    async def run() -> int:
        answers, spans = await serve(middleware_class(answer, timeout=60), requests)
        assert all(a[0]["status"] == 200 and a[1]["body"] == b"ok" for a in answers)
        gc.collect()
        return sum(ref() is not None for ref in spans)

    return asyncio.run(run())


def test_bentoml_timeout_holds_every_request_for_the_timeout() -> None:
    """What CancellingTimeoutMiddleware is for: if BentoML lets requests go itself, this fails and the shim can go."""
    assert alive_spans(BentoTimeoutMiddleware, 300) == 300, (
        "kepler._compat.bentoml.CancellingTimeoutMiddleware: BentoML's TimeoutMiddleware no longer holds each "
        "request for the whole timeout; drop the shim and its install_cancelling_timeout call"
    )


def test_bentoml_timeout_middleware_is_what_the_subclass_relies_on() -> None:
    middleware = BentoTimeoutMiddleware(answer, timeout=7)
    assert (middleware.app, middleware.timeout) == (answer, 7), (
        "kepler._compat.bentoml.CancellingTimeoutMiddleware: BentoML's TimeoutMiddleware(app, timeout) changed"
    )

    async def timed_out() -> bool:
        waiter = asyncio.get_running_loop().create_future()
        middleware._set_timer_out(waiter)
        try:
            await waiter
        except TimeoutError:
            return True
        return False

    assert asyncio.run(timed_out()), (
        "kepler._compat.bentoml.CancellingTimeoutMiddleware: TimeoutMiddleware._set_timer_out no longer fails "
        "the waiter with a TimeoutError"
    )
    assert callable(getattr(traffic, "JSONResponse", None)), (
        "kepler._compat.bentoml.CancellingTimeoutMiddleware: bentoml._internal.server.http.traffic has no JSONResponse"
    )


def test_bentoml_builds_its_middleware_from_the_traffic_module() -> None:
    """install_cancelling_timeout replaces the module attribute: BentoML must read it when it builds a server."""
    from bentoml._internal.server.base_app import BaseAppFactory

    class Factory(BaseAppFactory):
        name = "canary"

    original = traffic.TimeoutMiddleware
    try:
        install_cancelling_timeout()
        classes = [middleware.cls for middleware in Factory(timeout=5).middlewares]
    finally:
        traffic.TimeoutMiddleware = original
    assert CancellingTimeoutMiddleware in classes, (
        "kepler._compat.bentoml.install_cancelling_timeout: BentoML's servers no longer take TimeoutMiddleware "
        "from bentoml._internal.server.http.traffic when they are built"
    )


def test_cancelling_timeout_lets_answered_requests_go() -> None:
    # asyncio drops cancelled timers in bulk (over 100 and over half of the scheduled ones): a few stay a while.
    assert alive_spans(CancellingTimeoutMiddleware, 300) <= 101


def test_cancelling_timeout_still_answers_504() -> None:
    async def run() -> list[dict[str, Any]]:
        answers, _ = await serve(CancellingTimeoutMiddleware(answer, timeout=0.05), 1, delay=5.0)
        return answers[0]

    sent = asyncio.run(run())
    assert sent[0]["status"] == 504
    assert json.loads(sent[1]["body"]) == {"error": "Not able to process the request in 0.05 seconds"}


def test_cancelling_timeout_passes_errors_through() -> None:
    async def broken(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(asyncio.wait_for(serve(CancellingTimeoutMiddleware(broken, timeout=60), 1), 5))


def test_install_is_idempotent() -> None:
    original = traffic.TimeoutMiddleware
    try:
        install_cancelling_timeout()
        install_cancelling_timeout()
        assert traffic.TimeoutMiddleware is CancellingTimeoutMiddleware
    finally:
        traffic.TimeoutMiddleware = original


def _counting_builds(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The schema builds (pydantic TypeAdapters made by BentoML's IO models) from now on."""
    io_models = importlib.import_module("_bentoml_sdk.io_models")
    builds: list[Any] = []
    real_adapter = io_models.TypeAdapter

    def counting(*args: Any, **kwargs: Any) -> Any:
        builds.append(args)
        return real_adapter(*args, **kwargs)

    monkeypatch.setattr(io_models, "TypeAdapter", counting)
    return builds


def _service() -> Any:
    @bentoml.service
    class Echo:
        @bentoml.api(route="/predict")
        def predict(self, payload: t.Any, /) -> list:  # type: ignore[type-arg]
            return list(payload)

    return Echo


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_bentoml_rebuilds_a_root_model_schema_on_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """What build_io_schemas_once is for: if BentoML builds each schema once itself, this fails and the shim can go."""
    service = _service()
    builds = _counting_builds(monkeypatch)
    for method in service.apis.values():
        for spec in (method.input_spec, method.output_spec):
            builds.clear()
            spec.model_json_schema()
            spec.model_json_schema()
            assert len(builds) == 2, (
                "kepler._compat.bentoml.build_io_schemas_once: BentoML no longer rebuilds an endpoint's schema on "
                "every call; drop the shim"
            )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_endpoint_schemas_are_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    service = _service()
    assert all(hasattr(m, "input_spec") and hasattr(m, "output_spec") for m in service.apis.values()), (
        "kepler._compat.bentoml.build_io_schemas_once: a BentoML endpoint no longer has input_spec and output_spec"
    )
    build_io_schemas_once(service)
    builds = _counting_builds(monkeypatch)
    for method in service.apis.values():
        for spec in (method.input_spec, method.output_spec):
            first = spec.model_json_schema()
            first["edited"] = True  # a caller's edit must not reach the next caller
            builds.clear()
            again = spec.model_json_schema()
            assert builds == [] and "edited" not in again
            assert spec.mime_type() == "application/json" and builds == []


def test_bentoml_writes_the_dockerfile_the_shim_calls() -> None:
    from bentoml._internal.container import construct_containerfile

    parameters = inspect.signature(construct_containerfile).parameters
    assert {"bento", "enable_buildkit", "add_header"} <= set(parameters), (
        "kepler._compat.bentoml.write_container_context: "
        "bentoml._internal.container.construct_containerfile(bento, enable_buildkit, add_header=) changed"
    )
    assert inspect.isgeneratorfunction(inspect.unwrap(construct_containerfile)), (
        "kepler._compat.bentoml.write_container_context: construct_containerfile is no longer a context manager"
    )


CONTAINER_PROGRAM = """
import json, sys
from pathlib import Path
import bentoml
from kepler._compat.bentoml import write_container_context
bento = bentoml.bentos.build("service:Echo", build_ctx=".", python={"lock_packages": False})
print(json.dumps(write_container_context(str(bento.tag), Path(sys.argv[1]))))
"""

SERVICE = """
import typing as t
import bentoml

@bentoml.service
class Echo:
    @bentoml.api
    def echo(self, payload: t.Any, /) -> list:
        return list(payload)
"""


@pytest.mark.integration
def test_write_container_context_writes_bentomls_dockerfile(tmp_path: Path) -> None:
    """In a fresh process: BentoML picks its store (BENTOML_HOME) when it is imported."""
    (tmp_path / "service.py").write_text(SERVICE, encoding="utf-8")
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "home"), "BENTOML_DO_NOT_TRACK": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CONTAINER_PROGRAM, str(tmp_path / "context")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, "kepler._compat.bentoml.write_container_context: " + done.stderr[-3000:]
    written = json.loads(done.stdout.strip().splitlines()[-1])
    assert written["bento"].startswith("echo:"), written
    dockerfile = tmp_path / "context" / written["dockerfile"]
    assert (tmp_path / "context" / "bento.yaml").is_file() and dockerfile.is_file(), written
    assert re.search(r"^FROM\s+\S+", dockerfile.read_text(encoding="utf-8"), re.MULTILINE), (
        "kepler._compat.bentoml.write_container_context: BentoML's Dockerfile has no FROM line"
    )
