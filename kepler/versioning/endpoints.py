"""The services a scaled-out project talks to (an MLflow tracking server, an S3 endpoint): bounded retries, one clear
error naming the endpoint, and no credentials in any setting, record or message.

Retries. MLflow retries its own HTTP requests: Kepler bounds them (:data:`MLFLOW_HTTP_DEFAULTS`, each only where the
environment does not set it already), so a dead server fails in seconds instead of MLflow's default four minutes.
S3 requests are retried by botocore (and DVC's s3fs) with their own bounded backoff. Kepler's own probes
(:func:`check_tracking_server`, :func:`check_s3`) try :data:`PROBE_ATTEMPTS` times with a doubling pause.

Errors. :func:`endpoint_error` reads an exception of MLflow, requests, botocore or SQLAlchemy and, when it means that
a service cannot be reached or refuses, returns the :class:`~kepler.errors.EndpointError` to raise instead (the URL
without credentials, what happened, what to check); :func:`service_errors` does that around a block.

Credentials come only from the environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` or ``AWS_PROFILE``,
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` or ``MLFLOW_TRACKING_TOKEN``, ``PGPASSWORD`` or
``~/.pgpass``): :func:`check_no_secret` refuses a URL that carries a password, so none reaches kepler.toml.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kepler.errors import EndpointError, VersioningError

# MLflow's HTTP client: at most 3 retries, pauses of about 0 + 2 + 4 s (factor 1, MLflow doubles it), half a second
# of jitter, 30 s for one answer. A refused connection thus fails in about 6 s.
MLFLOW_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    # MLflow prints "View run ... at: <server URL>" on stdout after each run: it would corrupt `--json` output.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
PROBE_ATTEMPTS = 3
PROBE_PAUSE_S = 0.5  # before the second attempt; doubled before each next one
PROBE_TIMEOUT_S = 5.0
SERVER_SCHEMES = ("http", "https")

TRACKING_HINT = (
    "check that the server runs and answers at that URL ([tracking] uri in kepler.toml) and the network"
)
S3_HINT = (
    "check that the endpoint runs ([s3] endpoint_url in kepler.toml), the network, and the AWS credentials "
    "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)"
)


def configure_mlflow(s3_endpoint: str | None = None) -> None:
    """Bounds MLflow's HTTP retries (where the environment leaves them unset) and points MLflow's S3 client at
    the project's S3 endpoint, if it names one (kepler.toml wins over ``MLFLOW_S3_ENDPOINT_URL`` inside a project)."""
    for name, value in MLFLOW_HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if s3_endpoint:
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = s3_endpoint


def is_server(uri: str) -> bool:
    """True for an MLflow tracking server's URL (http or https), which keeps its own artifact store."""
    return urlsplit(uri).scheme.lower() in SERVER_SCHEMES


def redact(url: str) -> str:
    """``url`` without user name and password, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def check_no_secret(url: str, what: str) -> str:
    """``url`` unchanged, when it carries no password.

    Raises:
        VersioningError: it holds a password (which would land in kepler.toml); the message says which
            environment variables carry credentials instead.
    """
    try:
        password = urlsplit(url).password
    except ValueError:
        raise VersioningError(f"{what} {url!r} is not a URL; fix it") from None
    if password:
        raise VersioningError(
            f"{what} {redact(url)} holds a password; Kepler never writes credentials into kepler.toml: give them "
            f"in the environment (MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN for "
            f"a tracking server, PGPASSWORD or ~/.pgpass for PostgreSQL, AWS_* or AWS_PROFILE for S3)"
        )
    return url


def _attempts() -> Iterator[int]:
    """Attempt numbers, pausing (doubling from :data:`PROBE_PAUSE_S`) before each one after the first."""
    for attempt in range(PROBE_ATTEMPTS):
        if attempt:
            time.sleep(PROBE_PAUSE_S * 2 ** (attempt - 1))
        yield attempt


def check_tracking_server(uri: str) -> None:
    """Asks the MLflow tracking server at ``uri`` for ``/health`` (up to :data:`PROBE_ATTEMPTS` times).

    Any HTTP answer below 500 counts as reachable (a server behind authentication may refuse the probe: the
    MLflow calls carry the credentials). Nothing is checked for other URIs.

    Raises:
        EndpointError: no answer, or only server errors (HTTP 5xx).
    """
    if not is_server(uri):
        return
    import urllib.error
    import urllib.request

    url = uri.rstrip("/") + "/health"
    reason = ""
    for _ in _attempts():
        try:
            with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as answer:  # http(s) only: is_server
                answer.read(64)
            return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
            reason = f"answers HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, OSError) as exc:
            reason = _network_reason(exc)
    raise EndpointError(
        f"the MLflow tracking server {redact(uri)} {reason} after {PROBE_ATTEMPTS} attempts; {TRACKING_HINT}",
        endpoint=redact(uri),
    )


def _network_reason(exc: BaseException) -> str:
    """A few words on why a connection failed."""
    text = str(getattr(exc, "reason", exc)).lower()
    if "refused" in text:
        return "refuses connections (nothing listens there)"
    if "timed out" in text or isinstance(exc, TimeoutError):
        return f"did not answer within {PROBE_TIMEOUT_S:g} s"
    if "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "has a host name that does not resolve"
    return f"cannot be reached ({_first_line(exc)})"


def _first_line(exc: BaseException, limit: int = 160) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]


def s3_location(url: str) -> tuple[str, str]:
    """(bucket, key prefix) of an ``s3://bucket/prefix`` URL.

    Raises:
        VersioningError: not an s3 URL, or no bucket.
    """
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise VersioningError(f"{url!r} is not an S3 URL; use s3://bucket/prefix")
    return parts.netloc, parts.path.strip("/")


def _s3_client(endpoint: str | None) -> Any:
    import boto3
    from botocore.config import Config

    # Kepler's probe retries on its own (with its pauses); botocore's connection attempts stay short.
    config = Config(
        connect_timeout=PROBE_TIMEOUT_S, read_timeout=PROBE_TIMEOUT_S * 2, retries={"max_attempts": 1}
    )
    return boto3.client("s3", endpoint_url=endpoint or None, config=config)


def check_s3(url: str, endpoint: str | None, what: str = "the S3 remote") -> None:
    """Checks that the bucket of ``url`` answers at ``endpoint`` (AWS when None) with the environment's credentials.

    Raises:
        EndpointError: the endpoint cannot be reached, refuses the credentials, or has no such bucket.
    """
    bucket, _ = s3_location(url)
    try:
        client = _s3_client(endpoint)
    except ImportError:
        raise EndpointError(
            f"{what} {url} needs boto3; install Kepler's S3 extra: pip install 'kepler-ml[s3]'", endpoint=url
        ) from None
    failure: BaseException | None = None
    for _ in _attempts():
        try:
            client.head_bucket(Bucket=bucket)
            return
        except Exception as exc:
            failure = exc
            if _s3_status(exc) in (301, 400, 403, 404):  # an answer: retrying would not change it
                break
    assert failure is not None
    error = s3_error(failure, url, endpoint, what)
    raise (
        error
        if error is not None
        else EndpointError(
            f"{what} {url} at {_where(endpoint)} fails ({_first_line(failure)}); {S3_HINT}",
            endpoint=_where(endpoint),
        )
    ) from None


def _where(endpoint: str | None) -> str:
    return f"endpoint {redact(endpoint)}" if endpoint else "AWS S3"


def _s3_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = str(response.get("Error", {}).get("Code", ""))
        if isinstance(status, int):
            return status
        if code.isdigit():
            return int(code)
    return None


def s3_error(
    exc: BaseException, url: str | None, endpoint: str | None, what: str = "the S3 remote"
) -> EndpointError | None:
    """The :class:`EndpointError` a botocore failure on ``url`` (an ``s3://`` URL, if known) means, or None for
    another kind of exception."""
    try:
        import botocore.exceptions as bx
    except ImportError:
        return None
    where = _where(endpoint)
    name = f"{what} {url}" if url else what
    for cause in _chain(exc):
        if isinstance(cause, bx.NoCredentialsError):
            return EndpointError(
                f"{name} needs AWS credentials and none are set; set AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
                endpoint=where,
            )
        if isinstance(cause, (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError)):
            return EndpointError(
                f"{name} cannot be reached at {where} ({_first_line(cause)}); {S3_HINT}", endpoint=where
            )
        if isinstance(cause, bx.ClientError):
            status = _s3_status(cause)
            code = str(cause.response.get("Error", {}).get("Code", ""))
            if status == 404 or code == "NoSuchBucket":
                bucket = (
                    s3_location(url)[0]
                    if url
                    else str(cause.response.get("Error", {}).get("BucketName", "?"))
                )
                return EndpointError(
                    f"{name}: the bucket {bucket!r} does not exist at {where}; create it "
                    f"(aws s3 mb s3://{bucket}) or fix the URL",
                    endpoint=where,
                )
            if status in (401, 403) or code in (
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "AccessDenied",
            ):
                return EndpointError(
                    f"{name} at {where} refuses the credentials (HTTP {status} {code}); check "
                    f"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE and the bucket's policy",
                    endpoint=where,
                )
            if status is not None and status >= 500:
                return EndpointError(
                    f"{name} at {where} answers HTTP {status} ({code}); {S3_HINT}", endpoint=where
                )
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during, nearest first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 12:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


_API_URL = re.compile(r"API request to (\S+?)(?:/api/|/ajax-api/| failed)")


def endpoint_error(
    exc: BaseException, tracking_uri: str | None = None, s3_endpoint: str | None = None
) -> EndpointError | None:
    """The :class:`EndpointError` an exception of MLflow's clients means, or None when it means something else.

    Recognized: MLflow's HTTP failures (no connection, time-outs, retries used up on server errors, refused
    credentials), a tracking database that cannot be reached (SQLAlchemy), and S3 failures of MLflow's
    artifact client (botocore) or boto3's uploads.
    """
    if isinstance(exc, EndpointError):
        return exc
    chain = _chain(exc)
    names = {type(c).__name__ for c in chain}
    text = str(exc)
    match = _API_URL.search(text)
    server = redact(tracking_uri) if tracking_uri and is_server(tracking_uri) else None
    if match and server is None:
        server = redact(match.group(1))
    error_code = str(getattr(exc, "error_code", ""))
    if error_code in ("PERMISSION_DENIED", "UNAUTHENTICATED") and server:
        return EndpointError(
            f"the MLflow tracking server {server} refuses Kepler's request ({error_code}); check "
            f"MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN and the server's permissions",
            endpoint=server,
        )
    from_mlflow = type(exc).__module__.startswith("mlflow")
    if (
        match
        or from_mlflow
        and names
        & {
            "ConnectionError",
            "ConnectTimeout",
            "ReadTimeout",
            "Timeout",
            "RetryError",
            "MaxRetryError",
        }
    ):
        where = server or "(unknown URL)"
        lower = text.lower()
        if "refused" in lower:
            reason = "refuses connections (nothing listens there)"
        elif "timeout" in lower or "timed out" in lower:
            reason = "did not answer in time"
        elif "too many" in lower and "error responses" in lower:
            status = re.search(r"too many (\d+) error responses", lower)
            reason = (
                f"keeps answering HTTP {status.group(1) if status else '5xx'} (server error) after "
                f"{os.environ.get('MLFLOW_HTTP_REQUEST_MAX_RETRIES', '3')} retries: look at the server's log, its "
                f"backend store and its artifact store (--backend-store-uri, --artifacts-destination)"
            )
        elif "name or service not known" in lower or "failed to resolve" in lower:
            reason = "has a host name that does not resolve"
        else:
            reason = f"failed ({text.strip().splitlines()[0][:160] if text.strip() else type(exc).__name__})"
        return EndpointError(f"the MLflow tracking server {where} {reason}; {TRACKING_HINT}", endpoint=where)
    if from_mlflow and "OperationalError" in names and tracking_uri:
        where = redact(tracking_uri)
        return EndpointError(
            f"the MLflow tracking database {where} cannot be reached ({_first_line(chain[-1])}); check that the "
            f"database runs and accepts Kepler's user (PGPASSWORD or ~/.pgpass), or use a tracking server",
            endpoint=where,
        )
    for cause in chain:
        module = type(cause).__module__
        if module.startswith(("botocore", "boto3")):
            endpoint = s3_endpoint or os.environ.get("MLFLOW_S3_ENDPOINT_URL")
            error = s3_error(cause, None, endpoint, "MLflow's S3 artifact store")
            if error is not None:
                return error
            if module.startswith("boto3"):  # S3UploadFailedError: botocore's reason only in the text
                where = _where(endpoint)
                return EndpointError(
                    f"MLflow's S3 artifact store at {where} failed ({_first_line(cause)}); {S3_HINT}",
                    endpoint=where,
                )
    return None


@contextlib.contextmanager
def service_errors(tracking_uri: str | None = None, s3_endpoint: str | None = None) -> Iterator[None]:
    """Inside the block, an exception that means an unreachable or refusing service becomes an EndpointError."""
    try:
        yield
    except EndpointError:
        raise
    except Exception as exc:
        error = endpoint_error(exc, tracking_uri, s3_endpoint)
        if error is None:
            raise
        raise error from None


@contextlib.contextmanager
def fail_fast() -> Iterator[None]:
    """MLflow's HTTP calls inside the block give up at the first failure, with a short time-out: for cleanup
    calls to a server that may be gone, which should cost a second, not the retries' seconds."""
    names = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
    saved = {name: os.environ.get(name) for name in names}
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "5"
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
