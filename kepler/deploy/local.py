"""The front door ``kp.deploy`` and local serving.

Local deployment packages the release (:mod:`kepler.deploy.package`), records it (:mod:`kepler.deploy.records`)
and, with ``port=``, runs ``bentoml serve <bento>`` in the background on that port: a server Kepler started
earlier on the same port is stopped first, so deploying an earlier release there is the rollback.
``serve`` runs the same server in the foreground, for development, and records nothing.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kepler.errors import KeplerError

PLATFORMS = ("local", "cloud-run")
_PLATFORM_ALIASES = {"cloud_run": "cloud-run", "cloudrun": "cloud-run"}
DEFAULT_PORT = 3000


@dataclass
class Deployment:
    """One deployment of a release.

    Attributes:
        release: The release name.
        version: Its version.
        platform: ``local`` or ``cloud-run``.
        target: Where it runs: the URL of a started server, the bento tag, or the cloud service.
        bento_tag: The bento.
        model_tag: The BentoML model inside it.
        image_tag: The container image (cloud-run).
        service_node: The lineage node of this deployment (input: the release node).
        rollback: True when it went back to an earlier release.
        previous: The release deployed on that platform before, if any.
        url: The server's URL when one was started.
        pid: The server's process id when one was started.
        log: The server's log file when one was started.
        bentoml_home: The BentoML store.
        details: Platform-specific results (the cloud-run build, spec and commands).
    """

    release: str
    version: str
    platform: str
    target: str
    bento_tag: str
    model_tag: str
    image_tag: str | None = None
    service_node: str | None = None
    rollback: bool = False
    previous: str | None = None
    url: str | None = None
    pid: int | None = None
    log: str | None = None
    bentoml_home: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def _platform(platform: object) -> str:
    value = str(platform).strip().lower() if isinstance(platform, str) else ""
    value = _PLATFORM_ALIASES.get(value, value)
    if value not in PLATFORMS:
        raise KeplerError(f"unknown platform {platform!r}; use one of {', '.join(PLATFORMS)}")
    return value


def _port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise KeplerError(f"port must be a whole number from 1 to 65535, got {port!r}")
    return port


def deploy(
    release: str,
    platform: str = "local",
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    project: Any = None,
    rollback: bool | None = None,
    batching: Any = None,
    workers: int = 1,
    max_body_mb: float | None = None,
    access_log: bool = False,
    unknown_columns: str = "reject",
    wait_s: float = 120.0,
    **options: Any,
) -> Deployment:
    """Deploys a release: packages it as a BentoML model and bento, records it, and (locally, with ``port``) runs it.

    Args:
        release: The release name.
        platform: ``local`` (default) or ``cloud-run``.
        port: Local only: start the service in the background on this port (replacing a server Kepler
            started there before). Without it the release is packaged and recorded, ready for
            ``kepler serve`` or ``bentoml serve <bento>``.
        host: Local only: the address to listen on.
        project: The project; the one containing the working directory by default.
        rollback: Record the deployment as a rollback (True) or not (False); by default it is one when the
            release's version is lower than that of the release last deployed on the platform.
        batching: Adaptive batching: off by default; True takes ``max_latency_ms`` and ``max_batch_size`` from
            the target profile; a dict sets them.
        workers: Service worker processes.
        max_body_mb: The largest request body accepted (default 4 MiB); larger ones get 413.
        access_log: BentoML's per-request access log.
        unknown_columns: ``reject`` (422, the default) or ``ignore``: what the service does with request columns
            the model does not know. The source table's columns the build dropped (ids, timestamps, the label)
            are always accepted and ignored. ``KEPLER_UNKNOWN_COLUMNS`` overrides it where the service runs.
        wait_s: Local with ``port``: how long to wait for ``/readyz``.
        **options: cloud-run: passed to :func:`kepler.deploy.cloudrun.deploy_cloud_run` (``image_tag``,
            ``base_image``, ``output_dir``, ``region``, ``build``, ``apply``...).

    Returns:
        The :class:`Deployment`.

    Raises:
        VersioningError: an unknown release, or one without a unified version.
        ArtifactError: the artifact's sha256 does not match its manifest or its unified version.
        KeplerError: bad arguments, a BentoML failure, or a server that did not become ready.
    """
    from kepler.deploy.package import package_release, resolve_release
    from kepler.versioning.project import current

    chosen = _platform(platform)
    if port is not None:
        _port(port)
        if chosen != "local":
            raise KeplerError("port applies to platform local only")
    if chosen == "local" and options:
        raise KeplerError(
            f"option(s) {', '.join(sorted(options))} do not apply to platform local; "
            f"they are for platform cloud-run"
        )
    project = project or current()
    resolved = resolve_release(release, project=project)
    package = package_release(
        resolved,
        project=project,
        platform=chosen,
        batching=batching,
        workers=workers,
        max_body_mb=max_body_mb,
        access_log=access_log,
        unknown_columns=unknown_columns,
    )
    if chosen == "cloud-run":
        return _deploy_cloud_run(resolved, package, project=project, rollback=rollback, options=options)
    url = pid = log = None
    if port is not None:
        server = start(package, port=port, host=host, wait_s=wait_s)
        url, pid, log = server["url"], server["pid"], server["log"]
    target = url or package.bento_tag
    recorded = _record(
        resolved,
        package,
        platform=chosen,
        target=target,
        rollback=rollback,
        project=project,
        details={"url": url} if url else None,
    )
    return Deployment(
        release=resolved.name,
        version=resolved.release.version,
        platform=chosen,
        target=target,
        bento_tag=package.bento_tag,
        model_tag=package.model_tag,
        service_node=recorded["service_node"],
        rollback=recorded["rollback"],
        previous=recorded["previous"],
        url=url,
        pid=pid,
        log=log,
        bentoml_home=str(package.bentoml_home),
    )


def _record(
    resolved: Any,
    package: Any,
    *,
    platform: str,
    target: str,
    rollback: bool | None,
    project: Any,
    image_tag: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from kepler.deploy.records import record_service

    return record_service(
        resolved.name,
        resolved.lineage,
        platform=platform,
        target=target,
        bento_tag=package.bento_tag,
        model_tag=package.model_tag,
        image_tag=image_tag,
        rollback=rollback,
        details=details,
        project=project,
    )


def _deploy_cloud_run(
    resolved: Any, package: Any, *, project: Any, rollback: bool | None, options: dict[str, Any]
) -> Deployment:
    try:
        from kepler.deploy.cloudrun import deploy_cloud_run
    except ImportError as exc:
        raise KeplerError(
            f"platform cloud-run is not available in this installation ({exc}); deploy with platform='local'"
        ) from None
    from kepler.deploy.package import tag_name

    options = dict(options)
    options.setdefault("output_dir", project.root / "deploy" / tag_name(resolved.name))
    result = deploy_cloud_run(
        package.bento_tag,
        release=resolved.release.to_dict(),
        profile=dict(resolved.manifest.get("target") or {}),
        bentoml_home=package.bentoml_home,
        **options,
    )
    built = bool((result.get("build") or {}).get("built")) or result.get("status") == "deployed"
    image = result.get("image") if built else None
    target = result.get("service_name") or package.bento_tag
    recorded: dict[str, Any] = {"service_node": None, "rollback": False, "previous": None}
    if built:  # a spec without an image is not a deployment
        recorded = _record(
            resolved,
            package,
            platform="cloud-run",
            target=target,
            rollback=rollback,
            project=project,
            image_tag=image,
            details={
                "status": result.get("status"),
                "service_yaml": result.get("service_yaml"),
                "region": result.get("region"),
            },
        )
    return Deployment(
        release=resolved.name,
        version=resolved.release.version,
        platform="cloud-run",
        target=target,
        bento_tag=package.bento_tag,
        model_tag=package.model_tag,
        image_tag=image,
        service_node=recorded["service_node"],
        rollback=recorded["rollback"],
        previous=recorded["previous"],
        bentoml_home=str(package.bentoml_home),
        details=result,
    )


# --------------------------------------------------------------------------- local servers


def _servers(home: Path) -> Path:
    return Path(home) / "kepler-servers"


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
    record = {
        "pid": process.pid,
        "port": port,
        "host": host,
        "url": url,
        "release": package.release,
        "bento_tag": package.bento_tag,
        "log": str(log),
        "started_at": time.time(),
    }
    (folder / f"{port}.json").write_text(json.dumps(record), encoding="utf-8")
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

        bentoml_home = (project or current()).bentoml_home
    record_path = _servers(Path(bentoml_home)) / f"{_port(port)}.json"
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    pid = int(record.get("pid", 0))
    stopped = False
    if pid > 0 and _alive(pid, record.get("bento_tag")):
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

    Takes :func:`deploy`'s service settings. Records nothing in the release's history. Returns the server's
    exit code (Ctrl-C stops it).
    """
    from kepler.deploy.package import package_release

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
