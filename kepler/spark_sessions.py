"""Spark sessions for Kepler's jobs (batch scoring, trials): master URLs checked, sessions reused or started."""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
from typing import Any
from urllib.parse import urlsplit

from kepler.errors import EndpointError, KeplerError

CONNECT_TIMEOUT_S = 3.0
PROBE_TIMEOUT_S = 60.0
_MASTER = re.compile(
    r"^(local(\[(\*|\d+)(,\d+)?\])?|local-cluster\[\d+,\d+,\d+\]|spark://[^/\s]+|yarn|k8s://\S+|mesos://\S+)$"
)


def check_master(master: str) -> None:
    """Refuses a master URL Spark cannot use, and a ``spark://`` or ``k8s://`` master no port answers at.

    Raises:
        KeplerError: a malformed master URL.
        EndpointError: a master no port answers at (names it and what to check).
    """
    if not _MASTER.match(master):
        raise KeplerError(
            f"Spark master {master!r} is not a master URL; use local[N], spark://HOST:PORT, yarn or "
            f"k8s://https://HOST:PORT"
        )
    endpoints = _endpoints(master)
    if not endpoints:
        return
    last = ""
    for host, port in endpoints:
        try:
            with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
                return
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            last = f"{host}:{port} ({reason.lower()})"
    raise EndpointError(
        f"Spark master {master} cannot be reached at {last} within {CONNECT_TIMEOUT_S:g} s; check the URL "
        f"(the master's web UI shows it), that the master runs, and that this machine may reach its port",
        endpoint=master,
    )


def _endpoints(master: str) -> list[tuple[str, int]]:
    """The host:port pairs to try for a master (none for local, yarn and mesos masters)."""
    if master.startswith("spark://"):
        pairs = []
        for part in master[len("spark://") :].split(","):
            host, _, port = part.rpartition(":")
            pairs.append((host.strip("[]") or part, int(port) if port.isdigit() else 7077))
        return pairs
    if master.startswith("k8s://"):
        url = urlsplit(master[len("k8s://") :] if "://" in master[6:] else "https://" + master[6:])
        return [(url.hostname or "", url.port or 443)]
    return []


def session_for(spark: Any, app_name: str = "kepler") -> tuple[Any, bool]:
    """The Spark session to score on: the one given, this process's active one for the same master, or a new one.

    Returns:
        ``(session, made)``: ``made`` is True when this call started the session (the caller stops it).

    Raises:
        KeplerError: pyspark is not installed, Java cannot start, the master is wrong or unreachable, or another
            master's session is already active in this process.
    """
    if not isinstance(spark, str):
        return spark, False
    master = spark.strip()
    check_master(master)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise KeplerError(
            "Spark jobs need pyspark; install it with `pip install 'kepler-ml[spark]'`"
        ) from None
    active = SparkSession.getActiveSession()
    if active is not None:
        running = active.sparkContext.master
        if running != master:
            raise KeplerError(
                f"a Spark session for master {running} is already active in this process; pass that session "
                f"(spark=session), or stop it before using {master}"
            )
        return active, False
    if master.startswith("local"):
        # Local workers must run this Python, which has Kepler; a cluster's workers need Kepler installed.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        session = (
            SparkSession.builder.master(master)
            .appName(app_name)
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .getOrCreate()
        )
    except Exception as exc:  # pyspark raises its own error types, Java ones through py4j
        text = str(exc)
        if "JAVA_GATEWAY_EXITED" in text or "Java gateway" in text or "JAVA_HOME" in text:
            raise KeplerError(
                f"Spark could not start its JVM for master {master}; install Java 17 (`java -version` must "
                f"work) or set JAVA_HOME"
            ) from None
        raise EndpointError(
            f"Spark master {master} did not accept the application ({first_line(text)}); check that the URL "
            f"is the master's (its web UI shows it) and the master's log",
            endpoint=master,
        ) from None
    session.sparkContext.setLogLevel("ERROR")
    if not master.startswith("local"):
        _probe(session, master)
    return session, True


def _probe(session: Any, master: str) -> None:
    """Runs one tiny task; a master that accepts the application but runs nothing fails here, not hours later."""
    context = session.sparkContext
    failure: list[BaseException] = []

    def run() -> None:
        try:
            context.parallelize([0], 1).count()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(PROBE_TIMEOUT_S)
    if thread.is_alive() or failure:
        context.cancelAllJobs()
        session.stop()
        why = f"ran no task within {PROBE_TIMEOUT_S:g} s" if not failure else first_line(str(failure[0]))
        raise EndpointError(
            f"Spark master {master} accepted the application but {why}; check that it has workers with "
            f"free cores and memory, and that they can reach this driver",
            endpoint=master,
        )


def first_line(text: str) -> str:
    """The first non-blank line of a (Java) error message, at most 300 characters."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else "no message"
