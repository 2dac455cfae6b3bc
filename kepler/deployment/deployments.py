"""``kp.deploy``: a release packaged, recorded and run on a platform (local or Cloud Run), and the
:class:`Deployment` it returns.

Deploying packages the release (:mod:`kepler.deployment.package`), records it in the release's history and the
lineage graph (:mod:`kepler.deployment.records`) and, locally with ``port=``, starts its server in the background
(:mod:`kepler.deployment.local`); on Cloud Run it builds the image and the service spec
(:mod:`kepler.deployment.cloudrun`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from kepler.deployment.local import _port, start
from kepler.errors import KeplerError

PLATFORMS = ("local", "cloud-run")
_PLATFORM_ALIASES = {"cloud_run": "cloud-run", "cloudrun": "cloud-run"}


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

    The service records a ``[monitoring] sample_rate`` share of its requests (kepler.toml, read now) within
    ``max_mb``: locally in ``<BENTOML_HOME>/kepler-traffic/<release>/`` (the project's ``.kepler/bentoml``), where
    ``kepler monitor traffic <release>`` reads them (:mod:`kepler.deployment.recording`).

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
        **options: cloud-run: passed to :func:`kepler.deployment.cloudrun.deploy_cloud_run` (``image_tag``,
            ``base_image``, ``output_dir``, ``region``, ``build``, ``apply``...).

    Returns:
        The :class:`Deployment`.

    Raises:
        VersioningError: an unknown release, or one without a unified version.
        ArtifactError: the artifact's sha256 does not match its manifest or its unified version.
        KeplerError: bad arguments, a BentoML failure, or a server that did not become ready.
    """
    from kepler.deployment.package import package_release, resolve_release
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
    project = current(project)
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
    details: dict[str, Any] = {}
    if port is not None:
        launched = time.monotonic()
        planned = f"http://{host}:{port}"
        with _failures_recorded(resolved.name, chosen, planned, project, bento_tag=package.bento_tag):
            server = start(package, port=port, host=host, wait_s=wait_s)
        url, pid, log = server["url"], server["pid"], server["log"]
        details = {"url": url, "ready_s": round(time.monotonic() - launched, 3)}
    target = url or package.bento_tag
    recorded = _record(
        resolved,
        package,
        platform=chosen,
        target=target,
        rollback=rollback,
        project=project,
        details=details or None,
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


@contextlib.contextmanager
def _failures_recorded(
    release: str, platform: str, target: str, project: Any, **details: Any
) -> Iterator[None]:
    """Records a ``deploy-failed`` history entry when the block raises a KeplerError, then re-raises it.

    It wraps what brings a packaged release up (the local server's start, the Cloud Run build and deploy);
    a release that cannot be packaged (bad settings, BentoML errors) was never deployed, so it is not counted.
    """
    try:
        yield
    except KeplerError as exc:
        from kepler.deployment.records import record_failure

        try:
            record_failure(
                release,
                platform=platform,
                target=target,
                error=f"{type(exc).__name__}: {exc}",
                details={k: v for k, v in details.items() if v is not None},
                project=project,
            )
        except KeplerError:  # the deployment's own error is the one to report
            pass
        raise


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
    from kepler.deployment.records import record_service

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
        from kepler.deployment.cloudrun import deploy_cloud_run
    except ImportError as exc:
        raise KeplerError(
            f"platform cloud-run is not available in this installation ({exc}); deploy with platform='local'"
        ) from None
    from kepler.deployment.package import tag_name
    from kepler.runtimes.manifest import profile_from_manifest

    options = dict(options)
    options.setdefault("output_dir", project.root / "deploy" / tag_name(resolved.name))
    tag = package.bento_tag
    with _failures_recorded(resolved.name, "cloud-run", tag, project, bento_tag=tag):
        result = deploy_cloud_run(
            package.bento_tag,
            release=resolved.release.to_dict(),
            profile=profile_from_manifest(resolved.manifest).to_dict(),
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
