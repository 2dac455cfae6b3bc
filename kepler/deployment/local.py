"""Local servers of packaged releases: started in the background, stopped, or run in the foreground.

``start`` runs ``bentoml serve <bento>`` in the background on a port (what ``kp.deploy(release, port=N)`` does,
:mod:`kepler.deployment.deployments`): a server Kepler started earlier on the same port is stopped first, so
deploying an earlier release there is the rollback. ``serve`` runs the same server in the foreground, for
development, and records nothing.

Background servers are remembered in ``<BENTOML_HOME>/kepler-servers/<port>.json`` (pid, release, bento,
log file), so ``stop(port)`` (``kepler deploy --stop --port N``) ends only a process Kepler started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kepler import atomic_files
from kepler.errors import KeplerError
from kepler.records import Record

DEFAULT_PORT = 3000


def _port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise KeplerError(f"port must be a whole number from 1 to 65535, got {port!r}")
    return port


def _servers(home: Path) -> Path:
    return Path(home) / "kepler-servers"


@dataclass
class ServerRecord(Record):
    """A background server Kepler started (``<BENTOML_HOME>/kepler-servers/<port>.json``).

    Schema versions: 1, the record as written before records carried ``schema_version``.

    Attributes:
        pid: The server's process (the leader of its own session).
        port: Its port.
        host: The address it listens on.
        url: Where it answers.
        release: The release it serves.
        bento_tag: The bento it serves (``stop`` checks that the pid still runs it).
        log: Its log file.
        started_at: When it started (seconds since the epoch).
    """

    KIND = "local server record"

    pid: int = 0
    port: int | None = None
    host: str | None = None
    url: str | None = None
    release: str | None = None
    bento_tag: str | None = None
    log: str | None = None
    started_at: float | None = None


def _alive(pid: int, bento_tag: str | None = None) -> bool:
    """True when ``pid`` runs and is the ``bentoml serve`` Kepler started (not a reused pid)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the record
    words = [w.decode(errors="replace") for w in command]
    return "bentoml" in words and "serve" in words and (bento_tag is None or bento_tag in words)


def _ready(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=timeout) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start(
    package: Any, *, port: int = DEFAULT_PORT, host: str = "127.0.0.1", wait_s: float = 120.0
) -> dict[str, Any]:
    """Runs ``bentoml serve <bento>`` in the background on ``port`` and waits for ``/readyz``.

    A server Kepler started on that port before is stopped first. Returns ``{"url", "pid", "log"}``.

    Raises:
        KeplerError: the port is taken by another program, or the server did not become ready
            (the last lines of its log are in the message).
    """
    _port(port)
    home = Path(package.bentoml_home)
    stop(port, bentoml_home=home)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    if _ready(url, timeout=0.5):
        raise KeplerError(f"port {port} already serves something Kepler did not start; choose another port")
    folder = _servers(home)
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{port}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            package.serve_command(port, host),
            env=package.env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    record = ServerRecord(
        pid=process.pid,
        port=port,
        host=host,
        url=url,
        release=package.release,
        bento_tag=package.bento_tag,
        log=str(log),
        started_at=time.time(),
    )
    # `stop` may read it at any time
    atomic_files.write_json(folder / f"{port}.json", record.to_dict(), indent=None)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _ready(url):
            return {"url": url, "pid": process.pid, "log": str(log)}
        time.sleep(0.2)
    stop(port, bentoml_home=home)
    tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-10:])
    raise KeplerError(
        f"the service for {package.release} did not become ready on {url} "
        f"({'it exited' if process.poll() is not None else f'not ready in {wait_s:.0f} s'}); "
        f"log {log}:\n{tail}"
    )


def stop(
    port: int,
    *,
    bentoml_home: str | os.PathLike[str] | None = None,
    project: Any = None,
    timeout_s: float = 15.0,
) -> bool:
    """Stops the background server Kepler started on ``port``; False when there was none."""
    if bentoml_home is None:
        from kepler.versioning.project import current

        bentoml_home = current(project).bentoml_home
    record_path = _servers(Path(bentoml_home)) / f"{_port(port)}.json"
    try:
        record = ServerRecord.from_dict(json.loads(record_path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return False
    pid = int(record.pid or 0)
    stopped = False
    if pid > 0 and _alive(pid, record.bento_tag):
        _terminate(pid, timeout_s)
        stopped = True
    record_path.unlink(missing_ok=True)
    return stopped


def _terminate(pid: int, timeout_s: float) -> None:
    """SIGTERM to the server's process group (it was started in its own session), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                finished, _ = os.waitpid(pid, os.WNOHANG)
                if finished == pid:
                    return
            except ChildProcessError:  # not our child: poll for it
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
            time.sleep(0.1)


def serve(
    release: str,
    *,
    port: int = DEFAULT_PORT,
    host: str = "127.0.0.1",
    project: Any = None,
    batching: Any = None,
    workers: int = 1,
    max_body_mb: float | None = None,
    access_log: bool = True,
    unknown_columns: str = "reject",
) -> int:
    """Runs a release's service in the foreground (development): packages it, then ``bentoml serve``.

    Takes :func:`kepler.deployment.deployments.deploy`'s service settings. Records nothing in the release's
    history. Returns the server's exit code (Ctrl-C stops it).
    """
    from kepler.deployment.package import package_release

    _port(port)
    package = package_release(
        release,
        project=project,
        batching=batching,
        workers=workers,
        max_body_mb=max_body_mb,
        access_log=access_log,
        unknown_columns=unknown_columns,
    )
    print(
        f"serving release {package.release} {package.version} (bento {package.bento_tag}) on "
        f"http://{host}:{port}  (Ctrl-C stops it)",
        file=sys.stderr,
        flush=True,
    )
    process = subprocess.Popen(package.serve_command(port, host), env=package.env())
    try:  # a SIGTERM to this process stops the server too (Ctrl-C reaches both through the terminal)
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: process.send_signal(signal.SIGTERM))
    except ValueError:  # not the main thread: no handler
        previous = None
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        try:
            return process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
