"""kp.data.from_splunk against a small real HTTP server that speaks Splunk's search/jobs/export wire format."""

from __future__ import annotations

import csv
import io
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

import kepler as kp
from kepler.data.splunk import from_splunk, splunk_messages
from kepler.errors import DataError

TOKEN = "eyJraWQiOiJzcGx1bmsuc2VjcmV0In0.test-token"
KNOWN_COMMANDS = {"search", "table", "fields", "eval", "where", "stats", "tstats", "head", "sort", "rename"}
FIELDS = ["_time", "machine", "temperature", "rpm", "status", "message"]
ROWS = [
    ["2026-01-05T06:00:00.000+00:00", "M-1", "300.2", "1535", "ok", "started"],
    ["2026-01-05T06:10:00.000+00:00", "M-2", "301.5", "1374", "fail", 'spindle "B", overheated'],
    ["2026-01-05T06:20:00.000+00:00", "M-1", "", "1971", "ok", "line one\nline two"],
]


def splunk_xml(kind: str, text: str) -> bytes:
    """An error body as splunkd writes it."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<response>\n  <messages>\n'
        f'    <msg type="{kind}">{text}</msg>\n  </messages>\n</response>\n'
    ).encode()


class ExportHandler(BaseHTTPRequestHandler):
    """POST /services/search/jobs/export with a Bearer token; answers CSV, an empty body, or an XML error."""

    requests: list[dict] = []

    def do_POST(self) -> None:
        if self.path != "/services/search/jobs/export":
            return self._reply(404, splunk_xml("ERROR", "Not Found"), "text/xml")
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._reply(401, splunk_xml("WARN", "call not properly authenticated"), "text/xml")
        length = int(self.headers.get("Content-Length", 0))
        form = {
            k: v[0] for k, v in parse_qs(self.rfile.read(length).decode(), keep_blank_values=True).items()
        }
        form["content_type"] = self.headers.get("Content-Type")
        self.requests.append(form)
        search = form.get("search", "")
        for segment in search.split("|"):
            command = segment.split()[0].lower() if segment.split() else ""  # command names ignore case
            if command and command not in KNOWN_COMMANDS:
                return self._reply(
                    400, splunk_xml("FATAL", f"Unknown search command '{command}'."), "text/xml"
                )
        if "index=slow" in search:
            time.sleep(1.5)
        if "index=empty" in search or form.get("output_mode") != "csv":
            return self._reply(200, b"", "text/csv")
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")  # Splunk quotes every field
        writer.writerow(FIELDS)
        writer.writerows(ROWS)
        self._reply(200, out.getvalue().encode(), "text/csv; charset=UTF-8")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def server():
    ExportHandler.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ExportHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No Splunk settings or proxies from the machine running the tests; no kepler.toml above the cwd."""
    for name in ("SPLUNK_HOST", "SPLUNK_TOKEN", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.chdir(tmp_path)
    ExportHandler.requests.clear()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_happy_path(server):
    frame = kp.data.from_splunk(
        "index=sensors sourcetype=plc", "-24h", host=server, token=TOKEN, latest="-1h"
    )

    assert list(frame.columns) == FIELDS
    assert len(frame) == 3
    assert frame["temperature"].dtype == "float64" and frame["temperature"].isna().sum() == 1
    assert frame["rpm"].dtype == "int64"
    assert frame["message"].iloc[1] == 'spindle "B", overheated'
    assert frame["message"].iloc[2] == "line one\nline two"
    sent = ExportHandler.requests[-1]
    assert sent["search"] == "search index=sensors sourcetype=plc"
    assert sent["earliest_time"] == "-24h" and sent["latest_time"] == "-1h"
    assert sent["output_mode"] == "csv"
    assert sent["content_type"] == "application/x-www-form-urlencoded"


def test_result_loads_as_a_dataset(server):
    frame = from_splunk("search index=sensors", host=server, token=TOKEN)
    dataset = kp.data.load(frame, label="status")
    assert dataset.task == "classification"
    assert "_time" not in dataset.frame.columns  # a datetime column


@pytest.mark.parametrize(
    "query, sent",
    [
        ("search index=sensors", "search index=sensors"),
        ("  SEARCH index=sensors ", "SEARCH index=sensors"),
        ("| tstats count where index=sensors", "| tstats count where index=sensors"),
        ("index=sensors | table machine temperature", "search index=sensors | table machine temperature"),
        ("searches=3", "search searches=3"),
    ],
)
def test_query_prefixing(server, query, sent):
    from_splunk(query, host=server, token=TOKEN)
    assert ExportHandler.requests[-1]["search"] == sent


def test_default_time_range(server):
    from_splunk("index=sensors", host=server, token=TOKEN)
    sent = ExportHandler.requests[-1]
    assert (sent["earliest_time"], sent["latest_time"]) == ("-7d", "now")


def test_auth_failure(server):
    with pytest.raises(DataError) as caught:
        from_splunk("index=sensors", host=server, token="wrong")
    message = str(caught.value)
    assert (
        "HTTP 401" in message and "call not properly authenticated" in message and "SPLUNK_TOKEN" in message
    )
    assert ExportHandler.requests == []


def test_bad_query_shows_splunks_message(server):
    with pytest.raises(DataError) as caught:
        from_splunk("index=sensors | foo bar", host=server, token=TOKEN)
    message = str(caught.value)
    assert "Unknown search command 'foo'." in message and "rejected the query" in message


def test_empty_result(server):
    with pytest.raises(DataError) as caught:
        from_splunk("index=empty", "-1h", host=server, token=TOKEN)
    message = str(caught.value)
    assert "no rows" in message and "-1h" in message


def test_missing_host_and_token(server):
    with pytest.raises(DataError, match="SPLUNK_HOST"):
        from_splunk("index=sensors", token=TOKEN)
    with pytest.raises(DataError) as caught:
        from_splunk("index=sensors", host=server)
    message = str(caught.value)
    assert "no Splunk token" in message and "SPLUNK_TOKEN" in message and "kepler.toml" in message
    assert ExportHandler.requests == []


def test_settings_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("SPLUNK_HOST", server)
    monkeypatch.setenv("SPLUNK_TOKEN", TOKEN)
    assert len(from_splunk("index=sensors")) == 3


def test_settings_from_kepler_toml_in_a_parent(server, tmp_path, monkeypatch):
    (tmp_path / "kepler.toml").write_text(
        f'[project]\nname = "plant"\n\n[splunk]\nhost = "{server}"\ntoken = "{TOKEN}"\n'
    )
    inner = tmp_path / "notebooks" / "week1"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    assert len(from_splunk("index=sensors")) == 3
    # An argument wins over the file.
    with pytest.raises(DataError, match="HTTP 401"):
        from_splunk("index=sensors", token="other")


def test_unknown_key_in_kepler_toml(tmp_path):
    (tmp_path / "kepler.toml").write_text('[splunk]\nhost = "https://splunk:8089"\ntokn = "x"\n')
    with pytest.raises(DataError, match="unknown key tokn"):
        from_splunk("index=sensors")


def test_unreachable_host():
    with pytest.raises(DataError) as caught:
        from_splunk("index=sensors", host=f"http://127.0.0.1:{closed_port()}", token=TOKEN, timeout=5)
    assert "connection refused" in str(caught.value)


def test_timeout(server):
    started = time.monotonic()
    with pytest.raises(DataError) as caught:
        from_splunk("index=slow", host=server, token=TOKEN, timeout=0.3)
    assert "did not answer within 0.3 s" in str(caught.value)
    assert time.monotonic() - started < 1.4


def test_tls_failure(server):
    # https:// to a server that speaks plain HTTP: the handshake fails.
    with pytest.raises(DataError) as caught:
        from_splunk("index=sensors", host=server.replace("http://", "https://"), token=TOKEN, timeout=5)
    assert "TLS" in str(caught.value)


def test_host_without_scheme_defaults_to_https(server):
    with pytest.raises(DataError, match="TLS"):
        from_splunk("index=sensors", host=server.removeprefix("http://"), token=TOKEN, timeout=5)


def test_empty_query():
    with pytest.raises(DataError, match="empty"):
        from_splunk("  ", host="http://127.0.0.1:1", token=TOKEN)


def test_splunk_messages_parser():
    assert (
        splunk_messages(splunk_xml("FATAL", "Unknown search command 'foo'.").decode())
        == "Unknown search command 'foo'."
    )
    assert splunk_messages("plain   text\nbody") == "plain text body"
