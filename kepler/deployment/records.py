"""Recording a deployment: a service node in the lineage graph and a deploy (or rollback) entry in the
release's history, on every platform.

Lineage: ``data -> model (the build's unified version) -> release -> service``. The release node's id is
the release name, which is what a running service sends in ``X-Kepler-Release``, so
``get_complete_lineage(<header>)`` leads from a prediction back to the data version.

Rollback: deploying a release whose version is lower than that of the release last deployed on the
same platform, in the same model line, is a rollback; its history entry says so and names the release
it replaced.

A packaged deployment that does not come up (the local server never became ready, the Cloud Run build or
deploy failed) leaves a ``deploy-failed`` entry with the error (:func:`record_failure`), and a local server's entry keeps its
time to ready (``details.ready_s``: from launching the server to its first ready ``/readyz``), so
``kepler monitor deployments`` counts attempts, failures and readiness from the history alone.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from kepler.clock import now
from kepler.errors import VersioningError

if TYPE_CHECKING:
    from kepler.versioning.releases import HistoryEntry

MAX_NODE_ID = 128


def ensure_release_node(release: Any, lineage: dict[str, Any], *, project: Any) -> str:
    """The release's lineage node (id = release name), created on first deployment; its input is the build's node.

    Raises:
        VersioningError: another kind of node already holds the release's name.
    """
    from kepler.versioning.lineage import create_release_lineage, get_lineage_node

    node_id = release.release_id
    try:
        existing = get_lineage_node(node_id, project=project)
    except VersioningError:
        existing = None
    if existing is not None:
        if existing["kind"] != "release":
            raise VersioningError(
                f"lineage node {node_id!r} is a {existing['kind']} node, so release {node_id!r} "
                f"cannot take that id; create the release under another name"
            )
        return node_id
    inputs = []
    if release.unified_version:
        try:
            get_lineage_node(release.unified_version, project=project)
            inputs.append(release.unified_version)
        except VersioningError:
            inputs = [
                d["data_version"]
                for d in lineage.get("data", [])
                if d.get("data_version") and _exists(d["data_version"], project)
            ]
    create_release_lineage(
        node_id,
        release.release_id,
        inputs,
        {
            "version": release.version,
            "model_line": release.model_line,
            "unified_version": release.unified_version,
            "artifact_sha256": lineage.get("artifact_sha256"),
        },
        project=project,
    )
    return node_id


def _exists(node_id: str, project: Any) -> bool:
    from kepler.versioning.lineage import get_lineage_node

    try:
        get_lineage_node(node_id, project=project)
        return True
    except VersioningError:
        return False


def current_deployment(platform: str, model_line: str, *, project: Any) -> tuple[Any, HistoryEntry] | None:
    """The release last deployed on ``platform`` in ``model_line`` and its history entry, or None."""
    from kepler.versioning.releases import list_releases

    latest = None
    for release in list_releases(model_line=model_line, project=project):
        for index, entry in enumerate(release.history):
            if entry.action not in ("deploy", "rollback") or entry.platform != platform:
                continue
            key = ((entry.details or {}).get("deployed_at") or entry.at or "", index)
            if latest is None or key > latest[0]:
                latest = (key, release, entry)
    return None if latest is None else (latest[1], latest[2])


def is_rollback(release: Any, platform: str, *, project: Any) -> tuple[bool, str | None]:
    """(True, previous release) when deploying ``release`` goes back to an earlier version."""
    from kepler.versioning import semver

    found = current_deployment(platform, release.model_line, project=project)
    if found is None or found[0].release_id == release.release_id:
        return False, None
    previous = found[0]
    earlier = semver.parse(release.version).precedence < semver.parse(previous.version).precedence
    return earlier, previous.release_id


def record_service(
    release_name: str,
    lineage: dict[str, Any],
    *,
    platform: str,
    target: str,
    bento_tag: str | None,
    model_tag: str | None = None,
    image_tag: str | None = None,
    rollback: bool | None = None,
    details: dict[str, Any] | None = None,
    project: Any = None,
) -> dict[str, Any]:
    """Records one deployment of a release.

    Adds a service node (inputs: the release node) with platform, bento tag, image tag and time,
    and a ``deploy`` or ``rollback`` entry to the release's history.

    Args:
        release_name: The release deployed.
        lineage: Its lineage (:func:`kepler.deployment.package.lineage_of`).
        platform: ``local``, ``cloud-run``...
        target: Where it runs (a URL, a service name, or the bento tag).
        bento_tag: The bento deployed.
        model_tag: The BentoML model inside it.
        image_tag: The container image, where there is one.
        rollback: True or False to say so; None (default) to decide from the versions (see the module notes).
        details: More JSON facts for the history entry.

    Returns:
        ``{"service_node", "release_node", "rollback", "previous", "deployed_at"}``.
    """
    from kepler.versioning.lineage import create_service_lineage
    from kepler.versioning.project import current
    from kepler.versioning.releases import get_release, record_deployment

    project = current(project)
    release = get_release(release_name, project=project)
    detected, previous = is_rollback(release, platform, project=project)
    rollback = detected if rollback is None else bool(rollback)
    release_node = ensure_release_node(release, lineage, project=project)
    deployed_at = now("microseconds")  # two deployments within a second must still sort apart
    compact = dt.datetime.fromisoformat(deployed_at).strftime("%Y%m%dT%H%M%S%fZ")
    suffix = f"@{platform}-{compact}"
    node_id = f"{release_name[: MAX_NODE_ID - len(suffix)]}{suffix}"
    facts = {
        "platform": platform,
        "bento_tag": bento_tag,
        "model_tag": model_tag,
        "image_tag": image_tag,
        "target": target,
        "deployed_at": deployed_at,
        "rollback": rollback,
        "release": release_name,
        "version": release.version,
    }
    create_service_lineage(node_id, bento_tag or target, [release_node], facts, project=project)
    entry_details = {
        "bento_tag": bento_tag,
        "model_tag": model_tag,
        "image_tag": image_tag,
        "service_node": node_id,
        "deployed_at": deployed_at,
        "replaces": previous,
        **(details or {}),
    }
    record_deployment(
        release_name,
        platform=platform,
        target=target,
        rollback=rollback,
        details={k: v for k, v in entry_details.items() if v is not None},
        project=project,
    )
    return {
        "service_node": node_id,
        "release_node": release_node,
        "rollback": rollback,
        "previous": previous,
        "deployed_at": deployed_at,
    }


def record_failure(
    release_name: str,
    *,
    platform: str,
    target: str,
    error: str,
    details: dict[str, Any] | None = None,
    project: Any = None,
) -> None:
    """Records a deployment that did not come up: a ``deploy-failed`` entry in the release's history.

    What ``kepler monitor deployments`` counts as failed. No service node is made (nothing runs).

    Args:
        release_name: The release whose deployment failed.
        platform: ``local``, ``cloud-run``...
        target: Where it was to run (a URL, a service name, or the bento tag).
        error: Why it failed (its first line is kept).
        details: More JSON facts for the history entry.
    """
    from kepler.versioning.releases import record_deployment

    first = (error.strip().splitlines() or ["unknown error"])[0][:500]
    record_deployment(
        release_name,
        platform=platform,
        target=target,
        details={"failed_at": now("microseconds"), **(details or {})},
        error=first,
        project=project,
    )
