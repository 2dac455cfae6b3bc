"""BentoML internals Kepler relies on (written for BentoML 1.4, tested with 1.4.40).

Two fixes for server behaviours that set the Kepler service's tail latency under load, both found by profiling
single-row requests at 500 requests/s on 2 cores (``benchmarks/serve.py``):

* BentoML's ``TimeoutMiddleware`` (``bentoml._internal.server.http.traffic``) schedules
  ``loop.call_later(timeout, ...)`` for every request and never cancels it. The timer handle holds a copy of
  the request's context (its OpenTelemetry span, which BentoML always records), so every request's span,
  future and context live for the whole timeout (60 s): about 20 objects per request, 5,000 more every second
  per worker at 250 requests/s, all promoted to the collector's oldest generation. Each full collection walked
  them: 20-100 ms pauses, several a minute. :class:`CancellingTimeoutMiddleware` behaves the same (a 504 when
  nothing was answered in time) and cancels its timer when the request ends.
* A root IO model rebuilds its JSON schema (a new pydantic ``TypeAdapter``) to parse every request body and
  again to pick every answer's media type: about 13% of a worker's time. :func:`build_io_schemas_once` makes
  each endpoint's models build it once.

And :func:`write_container_context`, the Dockerfile BentoML itself writes for a bento
(``bentoml._internal.container.construct_containerfile``).

This module imports only the standard library and bentoml: the service imports it.
"""

from __future__ import annotations

import asyncio
import copy
import shutil
import typing as t
from pathlib import Path

from bentoml._internal.server.http import traffic

BentoTimeoutMiddleware = (
    traffic.TimeoutMiddleware
)  # BentoML's own, kept whatever install_cancelling_timeout did


class CancellingTimeoutMiddleware(BentoTimeoutMiddleware):
    """BentoML's request timeout, with the timer cancelled once the request is answered.

    A subclass of BentoML's private ``TimeoutMiddleware``: it keeps its constructor (``app``, ``timeout``) and
    its ``_set_timer_out(waiter)``, which fails the waiter with a ``TimeoutError``.
    """

    async def __call__(self, scope: t.MutableMapping[str, t.Any], receive: t.Any, send: t.Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

        async def started(message: t.MutableMapping[str, t.Any]) -> None:
            if not waiter.done():
                waiter.set_result(None)
            await send(message)

        request = asyncio.ensure_future(self.app(scope, receive, started))

        # A request that ends without answering (an error BentoML already answered, a disconnect) releases
        # the waiter too, instead of holding it for the whole timeout.
        def release(_: asyncio.Future[None]) -> None:
            if not waiter.done():
                waiter.set_result(None)

        request.add_done_callback(release)
        try:
            try:
                await waiter
            except TimeoutError:
                if request.cancel():
                    await traffic.JSONResponse(
                        {"error": f"Not able to process the request in {self.timeout} seconds"},
                        status_code=504,
                    )(scope, receive, send)
                return
            await request
        finally:
            timer.cancel()


def install_cancelling_timeout() -> None:
    """Makes BentoML's servers built after this call use :class:`CancellingTimeoutMiddleware`.

    BentoML imports ``TimeoutMiddleware`` from ``bentoml._internal.server.http.traffic`` when it builds the
    server's middleware list, so replacing the module attribute is enough; calling this twice changes nothing.
    """
    traffic.TimeoutMiddleware = CancellingTimeoutMiddleware  # type: ignore[misc]


def build_io_schemas_once(service: t.Any) -> None:
    """Makes each endpoint's input and output models of ``service`` build their JSON schema only once.

    BentoML's service keeps its endpoints in ``service.apis``, each with an ``input_spec`` and an
    ``output_spec`` model whose ``model_json_schema`` classmethod is replaced here. The schema of a class never
    changes; callers may edit what they get (BentoML's OpenAPI code pops ``$defs``), so each call returns a copy.
    """
    for method in service.apis.values():
        for spec in (method.input_spec, method.output_spec):
            build = spec.model_json_schema.__func__  # the classmethod's function, to call with any subclass
            built: dict[t.Any, dict[str, t.Any]] = {}

            def once(
                cls: t.Any,
                /,
                *args: t.Any,
                _build: t.Any = build,
                _built: dict = built,  # type: ignore[type-arg]
                **kwargs: t.Any,
            ) -> dict[str, t.Any]:
                try:
                    key = (cls, args, tuple(sorted(kwargs.items())))
                    hash(key)
                except TypeError:
                    return _build(cls, *args, **kwargs)  # type: ignore[no-any-return]
                if key not in _built:
                    _built[key] = _build(cls, *args, **kwargs)
                return copy.deepcopy(_built[key])

            spec.model_json_schema = classmethod(once)


def write_container_context(tag: str, destination: Path) -> dict[str, str]:
    """Writes the build context of bento ``tag`` (from the store of ``BENTOML_HOME``) to ``destination``, with
    the Dockerfile BentoML writes for it (``bentoml containerize``'s, without BuildKit syntax).

    ``bentoml._internal.container.construct_containerfile(bento, enable_buildkit, add_header=...)`` yields the
    temporary context folder and the Dockerfile's path in it. Returns the bento's tag (``"bento"``) and the
    Dockerfile's path relative to ``destination`` (``"dockerfile"``).
    """
    import bentoml
    from bentoml._internal.container import construct_containerfile

    bento = bentoml.get(tag)
    with construct_containerfile(bento, enable_buildkit=False, add_header=True) as (context, dockerfile):
        shutil.copytree(context, destination)
        relative = Path(dockerfile).relative_to(context)
    return {"bento": str(bento.tag), "dockerfile": str(relative)}
