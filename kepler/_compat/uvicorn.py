"""Headers on every answer of the uvicorn server BentoML starts (written for uvicorn 0.30–0.54, tested with 0.54.0).

:func:`install_server_headers` makes the uvicorn server that BentoML starts in each worker add headers to every
answer it sends (uvicorn's ``headers`` setting), the answers no ASGI middleware sees included: the 400 of its
HTTP parser for a request it cannot read. uvicorn's h11 protocol leaves its own headers off that one answer, so
the protocol is subclassed to add them, as its httptools protocol does: ``H11Protocol.send_400_response`` is
uvicorn's private method, and the subclass reads the protocol's ``server_state.default_headers`` and
``transport``.

This module imports only the standard library and uvicorn (BentoML's HTTP server): the service imports it.
"""

from __future__ import annotations

import functools
import typing as t

_SERVER_HEADERS: dict[str, str] = {}  # name -> value: what install_server_headers asked for
_SERVED: set[str] = set()  # lowercase names a server made since then adds to every answer
_MARK = "_kepler_headers"  # set on the Config.__init__ wrapper, so that it is installed once


def install_server_headers(headers: dict[str, str]) -> None:
    """Makes every uvicorn server configured after this call add ``headers`` to each of its answers.

    BentoML builds each worker's ``uvicorn.Config`` after importing the service module, with no way to pass
    uvicorn's ``headers`` setting; wrapping ``Config.__init__`` adds them (a header the caller sets itself
    wins) and swaps its ``http`` protocol for :func:`parser_errors_with_headers`'. Calling this again adds or
    replaces headers; the wrapper is installed once.
    """
    import uvicorn

    _SERVER_HEADERS.update(headers)
    if getattr(uvicorn.Config.__init__, _MARK, False):
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

    setattr(__init__, _MARK, True)
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
        return _h11_with_headers(protocol)  # type: ignore[arg-type]
    return http


@functools.cache
def _h11_with_headers(protocol: type) -> type:
    class H11WithHeaders(protocol):  # type: ignore[misc]
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
