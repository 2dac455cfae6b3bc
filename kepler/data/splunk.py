"""``kp.data.from_splunk``: runs a search through Splunk's REST export endpoint and returns the rows as a DataFrame."""

from __future__ import annotations

import re
import socket
import ssl
import xml.etree.ElementTree as ElementTree
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urlsplit
from urllib.request import Request, urlopen

import pandas as pd

from kepler.data.config import project_section, setting
from kepler.errors import DataError
from kepler.project_file import PROJECT_FILE

EXPORT_PATH = "/services/search/jobs/export"
HOST_ENV = "SPLUNK_HOST"
TOKEN_ENV = "SPLUNK_TOKEN"
SECTION = "splunk"
# Splunk's search language needs a leading command; a bare filter is a "search" one.
_HAS_COMMAND = re.compile(r"^(search\b|\|)", re.IGNORECASE)


def from_splunk(
    query: str,
    time_range: str = "-7d",
    *,
    host: str | None = None,
    token: str | None = None,
    latest: str = "now",
    timeout: float = 60.0,
    verify_tls: bool = True,
) -> pd.DataFrame:
    """Runs a Splunk search and returns its results as a DataFrame.

    The search is sent to ``POST {host}/services/search/jobs/export`` with
    ``output_mode=csv``, and the streamed CSV answer is parsed by pandas as it arrives.
    Only the standard library speaks HTTP (no Splunk SDK), and there is no default host:
    nothing leaves the machine unless a host is configured.

    Args:
        query: A search, such as ``"index=sensors sourcetype=plc | table _time machine temp"``;
            ``search`` is prepended unless it starts with ``search`` or ``|``.
        time_range: The earliest time, in Splunk's syntax (``-7d``, ``-24h@h``, an ISO date).
        host: The REST address, such as ``https://splunk.example.com:8089`` (``https://`` is
            assumed without a scheme). Default: ``SPLUNK_HOST``, else ``host`` under
            ``[splunk]`` in the nearest kepler.toml.
        token: An authentication token, sent as ``Authorization: Bearer``. Default:
            ``SPLUNK_TOKEN``, else ``token`` under ``[splunk]`` in kepler.toml (prefer the
            environment variable: kepler.toml is usually committed).
        latest: The latest time, in Splunk's syntax.
        timeout: Seconds to wait for the connection and for each read.
        verify_tls: Check the server's certificate. Turn off only for a self-signed
            certificate on a network you trust.

    Returns:
        One row per result, one column per field, typed by ``pandas.read_csv``.

    Raises:
        DataError: no host or token is configured; the token is rejected; Splunk rejects
            the query; the search returns no rows; the host cannot be reached, does not
            answer in time, or fails the TLS handshake.
    """
    search = _search_text(query)
    base, secret = _connection(host, token)
    url = base + EXPORT_PATH
    form = {"search": search, "earliest_time": time_range, "latest_time": latest, "output_mode": "csv"}
    request = Request(
        url,
        data=urlencode(form).encode("utf-8"),
        method="POST",
        headers={
            "Authorization": f"Bearer {secret}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "text/csv",
        },
    )
    context = _tls_context(verify_tls) if url.startswith("https://") else None
    try:
        with urlopen(request, timeout=timeout, context=context) as response:
            frame = pd.read_csv(response, low_memory=False)
    except HTTPError as error:
        raise _http_error(error, base, search) from None
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    except pd.errors.ParserError as error:
        raise DataError(
            f"Splunk at {base} answered with something that is not CSV "
            f"({str(error).splitlines()[0][:160]}); check that {base} is Splunk's REST port"
        ) from None
    except (URLError, OSError) as error:
        raise _connection_error(error, base, timeout) from None
    if len(frame) == 0:
        raise DataError(
            f"the Splunk search returned no rows between {time_range} and {latest} ({search!r}); "
            f"widen time_range or check the index and the filters"
        )
    return frame


def _search_text(query: str) -> str:
    text = (query or "").strip()
    if not text:
        raise DataError("the Splunk query is empty; pass a search such as 'index=sensors'")
    return text if _HAS_COMMAND.match(text) else f"search {text}"


def _connection(host: str | None, token: str | None) -> tuple[str, str]:
    """The base URL and the token, from the arguments, the environment or kepler.toml."""
    table = project_section(SECTION, ("host", "token"))
    found_host = setting(host, HOST_ENV, SECTION, "host", table)
    if not found_host:
        raise DataError(
            f"no Splunk host: pass host=..., set {HOST_ENV}, or set host under [{SECTION}] "
            f"in {PROJECT_FILE} (such as https://splunk.example.com:8089)"
        )
    found_token = setting(token, TOKEN_ENV, SECTION, "token", table)
    if not found_token:
        raise DataError(
            f"no Splunk token: pass token=..., set {TOKEN_ENV}, or set token under [{SECTION}] "
            f"in {PROJECT_FILE}"
        )
    base = found_host.strip().rstrip("/")
    if "://" not in base:
        base = f"https://{base}"  # Splunk's management port speaks HTTPS by default
    if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).hostname:
        raise DataError(
            f"Splunk host {found_host!r} is not an http(s) address; use one such as "
            f"https://splunk.example.com:8089"
        )
    return base, found_token.strip()


def _tls_context(verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _http_error(error: HTTPError, base: str, search: str) -> DataError:
    try:
        body = error.read().decode("utf-8", errors="replace")
    except OSError:
        body = ""
    finally:
        error.close()
    message = splunk_messages(body) or error.reason or "no message"
    if error.code in (401, 403):
        return DataError(
            f"Splunk at {base} refused the token (HTTP {error.code}: {message}); "
            f"check {TOKEN_ENV} or the token argument, and that the token may run searches"
        )
    if error.code == 400:
        return DataError(f"Splunk rejected the query {search!r}: {message} Fix the search and retry.")
    return DataError(f"Splunk at {base} answered HTTP {error.code} ({message}); check the host and retry")


def splunk_messages(body: str) -> str:
    """The text of the ``<msg>`` elements in a Splunk XML error body, joined; empty when there are none."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return " ".join(body.split())[:200]
    texts = [" ".join((node.text or "").split()) for node in root.iter() if node.tag.split("}")[-1] == "msg"]
    return " ".join(t for t in texts if t)


def _connection_error(error: OSError, base: str, timeout: float) -> DataError:
    reason = error.reason if isinstance(error, URLError) else error
    if isinstance(reason, ssl.SSLError):
        hint = (
            "if the server uses a self-signed certificate, add it to SSL_CERT_FILE, or pass verify_tls=False "
            "on a network you trust"
        )
        if "WRONG_VERSION_NUMBER" in str(reason) or "wrong version number" in str(reason):
            hint = "the server does not speak TLS: use http:// in the host if that is intended"
        return DataError(f"TLS handshake with Splunk at {base} failed ({_short(reason)}); {hint}")
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return DataError(
            f"Splunk at {base} did not answer within {timeout:g} s; check the host, "
            f"or raise timeout= for a long search"
        )
    if isinstance(reason, ConnectionRefusedError):
        return DataError(
            f"cannot connect to Splunk at {base}: connection refused; check the host and the port "
            f"(the REST port is usually 8089)"
        )
    return DataError(f"cannot reach Splunk at {base} ({_short(reason)}); check the host and the network")


def _short(reason: object) -> str:
    text = str(getattr(reason, "strerror", None) or reason)
    return " ".join(text.split())[:160]
