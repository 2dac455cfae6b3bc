"""Fixes for two BentoML 1.4 server behaviours that set the Kepler service's tail latency under load, and headers
the HTTP server itself puts on every answer.

Both were found by profiling single-row requests at 500 requests/s on 2 cores (``benchmarks/serve.py``):

* BentoML's ``TimeoutMiddleware`` schedules ``loop.call_later(timeout, ...)`` for every request and never
  cancels it. The timer handle holds a copy of the request's context (its OpenTelemetry span, which BentoML
  always records), so every request's span, future and context live for the whole timeout (60 s): about
  20 objects per request, 5,000 more every second per worker at 250 requests/s, all promoted to the
  collector's oldest generation. Each full collection walked them: 20-100 ms pauses, several a minute.
  The replacement below behaves the same (a 504 when nothing was answered in time) and cancels its timer
  when the request ends.
* A root IO model rebuilds its JSON schema (a new pydantic ``TypeAdapter``) to parse every request body and
  again to pick every answer's media type: about 13% of a worker's time. :func:`build_io_schemas_once`
  makes each endpoint's models build it once.

:func:`install_server_headers` makes the uvicorn server that BentoML starts in each worker add headers to every
answer it sends (uvicorn's ``headers`` setting), the answers no ASGI middleware sees included: the 400 of its HTTP
parser for a request it cannot read (uvicorn's h11 protocol leaves its own headers off that one answer, so the
protocol is subclassed to add them, as its httptools protocol does; ``send_400_response`` is uvicorn's private
method, hence the cap on uvicorn in pyproject.toml).

This module imports only the standard library, bentoml and uvicorn (BentoML's HTTP server).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import typing as t

from bentoml._internal.server.http import traffic

BentoTimeoutMiddleware = (
    traffic.TimeoutMiddleware
)  # BentoML's own, kept whatever install_cancelling_timeout did


class CancellingTimeoutMiddleware(BentoTimeoutMiddleware):  # type: ignore[misc,valid-type]
    """BentoML's request timeout, with the timer cancelled once the request is answered."""

    async def __call__(self, scope: dict[str, t.Any], receive: t.Any, send: t.Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

        async def started(message: dict[str, t.Any]) -> None:
            if not waiter.done():
                waiter.set_result(None)
            await send(message)

        request = asyncio.ensure_future(self.app(scope, receive, started))
        # A request that ends without answering (an error BentoML already answered, a disconnect) releases
        # the waiter too, instead of holding it for the whole timeout.
        request.add_done_callback(lambda _: waiter.done() or waiter.set_result(None))
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
    traffic.TimeoutMiddleware = CancellingTimeoutMiddleware


def build_io_schemas_once(service: t.Any) -> None:
    """Makes each endpoint's input and output models of ``service`` build their JSON schema only once.

    The schema of a class never changes; callers may edit what they get (BentoML's OpenAPI code pops
    ``$defs``), so each call returns a copy.
    """
    for method in service.apis.values():
        for spec in (method.input_spec, method.output_spec):
            build = spec.model_json_schema.__func__  # the classmethod's function, to call with any subclass
            built: dict[t.Any, dict[str, t.Any]] = {}

            def once(
                cls: t.Any,
                *args: t.Any,
                _build: t.Any = build,
                _built: dict = built,  # type: ignore[type-arg]
                **kwargs: t.Any,
            ) -> dict[str, t.Any]:
                try:
                    key = (cls, args, tuple(sorted(kwargs.items())))
                    hash(key)
                except TypeError:
                    return _build(cls, *args, **kwargs)
                if key not in _built:
                    _built[key] = _build(cls, *args, **kwargs)
                return copy.deepcopy(_built[key])

            spec.model_json_schema = classmethod(once)


_SERVER_HEADERS: dict[str, str] = {}  # name -> value: what install_server_headers asked for
_SERVED: set[str] = set()  # lowercase names a server made since then adds to every answer


def install_server_headers(headers: dict[str, str]) -> None:
    """Makes every uvicorn server configured after this call add ``headers`` to each of its answers.

    BentoML builds each worker's ``uvicorn.Config`` after importing the service module, with no way to pass
    uvicorn's ``headers`` setting; wrapping ``Config.__init__`` adds them (a header the caller sets itself
    wins). Calling this again adds or replaces headers; the wrapper is installed once.
    """
    import uvicorn

    _SERVER_HEADERS.update(headers)
    if getattr(uvicorn.Config.__init__, "_kepler_headers", False):
        return
    original = uvicorn.Config.__init__

    @functools.wraps(original)
    def __init__(self: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
        given = list(kwargs.pop("headers", None) or [])
        names = {name.lower() for name, _ in given}
        kwargs["headers"] = given + [(k, v) for k, v in _SERVER_HEADERS.items() if k.lower() not in names]
        kwargs["http"] = parser_errors_with_headers(kwargs.get("http", "auto"))
        original(self, *args, **kwargs)
        _SERVED.update(k.lower() for k in _SERVER_HEADERS)

    __init__._kepler_headers = True  # type: ignore[attr-defined]
    uvicorn.Config.__init__ = __init__  # type: ignore[method-assign]


def server_adds(name: str) -> bool:
    """True when this process configured a server that adds header ``name`` to every answer (so an ASGI app
    must not add it again: uvicorn would send it twice)."""
    return name.lower() in _SERVED


def parser_errors_with_headers(http: t.Any) -> t.Any:
    """The HTTP protocol ``http`` (a uvicorn ``http`` setting: a name or a class) as one that puts the server's
    headers on its 400 for a request it cannot parse; ``http`` itself where it does already."""
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string
    from uvicorn.protocols.http.h11_impl import H11Protocol

    try:
        protocol = import_from_string(HTTP_PROTOCOLS.get(http, http)) if isinstance(http, str) else http
    except Exception:  # not installed: uvicorn says so itself when it loads the setting
        return http
    if isinstance(protocol, type) and issubclass(protocol, H11Protocol):
        return _h11_with_headers(protocol)
    return http


@functools.cache
def _h11_with_headers(protocol: type) -> type:
    class H11WithHeaders(protocol):  # type: ignore[misc,valid-type]
        """uvicorn's h11 protocol, with the server's headers on the 400 for a request it cannot parse."""

        def send_400_response(self, msg: str) -> None:
            # What uvicorn's httptools protocol sends: the answer, written whole, then the connection closed
            # (the h11 state machine is done with this connection either way).
            body = msg.encode("ascii", "replace")
            head = [b"HTTP/1.1 400 Bad Request\r\n"]
            head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
            head += [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: " + str(len(body)).encode() + b"\r\n",
                b"connection: close\r\n\r\n",
            ]
            self.transport.write(b"".join(head) + body)
            self.transport.close()

    return H11WithHeaders
