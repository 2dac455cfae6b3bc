"""Canaries of kepler._compat.uvicorn: uvicorn's h11 protocol answers a request it cannot parse through its private
``send_400_response``, without the server's headers; the shim's subclass adds them; ``Config`` takes the settings the
``Config.__init__`` wrapper passes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from kepler._compat.uvicorn import parser_errors_with_headers

HEADER = (b"x-kepler-release", b"r-1")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


class Transport(asyncio.Transport):
    """Collects what a protocol writes."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8000) if name in ("sockname", "peername") else default


def answer_to_garbage(protocol_class: type) -> tuple[bytes, bool]:
    """What ``protocol_class`` writes for a request it cannot parse, on a server whose headers hold HEADER."""

    async def run() -> tuple[bytes, bool]:
        config = uvicorn.Config(
            app, log_config=None, lifespan="off", http=protocol_class, headers=[("x", "y")]
        )
        config.load()
        state = ServerState()
        state.default_headers = [HEADER]
        protocol = protocol_class(config=config, server_state=state, app_state={})
        transport = Transport()
        protocol.connection_made(transport)
        protocol.data_received(b"GARBAGE\r\n\r\n")
        return transport.written, transport.closed

    return asyncio.run(run())


def test_uvicorn_h11_leaves_the_server_headers_off_its_parser_400() -> None:
    """What the shim is for: if uvicorn's h11 protocol adds them itself, this fails and the subclass can go."""
    written, closed = answer_to_garbage(H11Protocol)
    assert written.startswith(b"HTTP/1.1 400 ") and closed, (
        "kepler._compat.uvicorn.parser_errors_with_headers: uvicorn's h11 protocol no longer answers an unparseable "
        "request with a 400"
    )
    assert b"x-kepler-release" not in written.lower(), (
        "kepler._compat.uvicorn.parser_errors_with_headers: uvicorn's h11 protocol puts the server's headers on "
        "its parser 400 now; drop the H11Protocol subclass"
    )


def test_the_subclass_puts_the_server_headers_on_the_parser_400() -> None:
    protocol = parser_errors_with_headers("h11")
    assert "send_400_response" in vars(H11Protocol), (
        "kepler._compat.uvicorn.parser_errors_with_headers: uvicorn's H11Protocol has no send_400_response"
    )
    written, closed = answer_to_garbage(protocol)
    head, _, body = written.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert lines[0].startswith(b"http/1.1 400") and closed, (
        "kepler._compat.uvicorn.parser_errors_with_headers: uvicorn's h11 protocol no longer answers an unparseable "
        "request through send_400_response"
    )
    assert b"x-kepler-release: r-1" in lines and body == b"Invalid HTTP request received.", written


def test_uvicorn_config_takes_the_settings_the_wrapper_passes() -> None:
    config = uvicorn.Config(
        app, log_config=None, lifespan="off", http="h11", headers=[("X-Kepler-Release", "r-1")]
    )
    config.load()
    assert (
        config.http_protocol_class is H11Protocol and (b"x-kepler-release", b"r-1") in config.encoded_headers
    ), "kepler._compat.uvicorn.install_server_headers: uvicorn.Config(headers=, http=) changed"
    assert hasattr(ServerState(), "default_headers"), (
        "kepler._compat.uvicorn.parser_errors_with_headers: uvicorn's ServerState has no default_headers"
    )


def test_protocols_that_add_the_headers_already_are_kept() -> None:
    subclass = parser_errors_with_headers("h11")
    assert issubclass(subclass, H11Protocol) and subclass is not H11Protocol
    assert parser_errors_with_headers(H11Protocol) is subclass
    other = type("OtherProtocol", (asyncio.Protocol,), {})  # e.g. httptools', which adds them itself
    assert parser_errors_with_headers(other) is other
    assert parser_errors_with_headers("no.such.module:Protocol") == "no.such.module:Protocol"


SERVER_HEADERS_PROGRAM = """
import socket, sys, threading, time
import uvicorn
from kepler._compat.uvicorn import install_server_headers, server_adds

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})

assert not server_adds("X-Kepler-Release")
install_server_headers({"X-Kepler-Release": "r-1"})
install_server_headers({"X-Kepler-Release": "r-1"})  # twice: one wrapper
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
port = sock.getsockname()[1]
server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off", http="h11"))
assert server_adds("x-kepler-release")
threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
while not server.started:
    time.sleep(0.05)
for request in (b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n", b"GARBAGE\\r\\n\\r\\n",
                b"POST / HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: abc\\r\\n\\r\\n"):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(request)
        head = b""
        while b"\\r\\n\\r\\n" not in head:
            head += client.recv(4096)
    lines = head.split(b"\\r\\n\\r\\n")[0].decode().lower().split("\\r\\n")
    print(lines[0].split()[1], sum(line == "x-kepler-release: r-1" for line in lines))
server.should_exit = True
"""


@pytest.mark.integration
def test_the_server_puts_its_headers_on_every_answer_its_parser_400_included() -> None:
    """In a fresh process, as BentoML builds a worker's uvicorn.Config after importing the service."""
    done = subprocess.run(
        [sys.executable, "-c", SERVER_HEADERS_PROGRAM], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[:3] == ["200 1", "400 1", "400 1"], (
        "kepler._compat.uvicorn.install_server_headers: " + done.stdout
    )
