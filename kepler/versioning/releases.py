"""Releases: a semantic version over named components, with a status, a promotion history and MLflow aliases.

A release is a JSON record in ``.kepler/records/releases/<name>.json``, committed to git
with every change, so its whole history is reviewable in ``git log``.

Statuses and promotions::

    draft ──> staging ──> production ──> archived
      └──────────┴────────────────────────^

- ``ready_for_deployment`` (the guide's word) is an alias of ``staging``.
- A release may be *created* at any status (creation is not a promotion); ``promote_release``
  moves one step at a time along the arrows, and promoting to the current status changes nothing.
  ``archived`` is final: to bring an old version back, create a new release of it.
- **One production release per model line.** A release entering production (by creation or
  promotion) archives the line's previous production release; both records get an audit entry.
- **Model line**: the ``model_line`` argument; else the registered MLflow model name of
  ``components["mlflow_model"]``; else ``"default"``.
- **Versions** are semantic (``1.0.0``, ``2.1.0-rc.1``, a leading ``v`` is dropped) and unique
  within a model line (build metadata ignored, as SemVer precedence does).
- **History**: each record keeps a list of ``{at, from, to, by, action}`` entries (``by`` is the
  git user); deployments add ``deploy``/``rollback`` entries through :func:`record_deployment`.
- **MLflow registry**: when the release names a registered model version —
  ``components["mlflow_model"] = {"name": "pm-model", "version": "3"}`` (or ``"models:/pm-model/3"``;
  filled in from the unified version's registered model when ``unified_version`` has one),
  or ``model_line`` plus a numeric ``components["model_version"]`` — entering staging or production
  sets that alias (``staging``/``production``) on the version, and leaving the status (promotion,
  archive) removes the alias if it still points to this version. Registry stages are deprecated in
  MLflow 3, so aliases carry the status.

Example (guide section 6)::

    release = kp.versioning.create_release(
        release_name="stable-v1.0", version="1.0.0",
        components={"data_version": "sensors-v1.0", "model_version": "xgboost-v1.3",
                    "pipeline_version": "preprocessing-v1.2"},
        status="production")
    kp.versioning.promote_release("stable-v1.0", target_environment="production")   # already there: no change
    kp.versioning.reproduce_release("stable-v1.0")
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kepler.clock import now
from kepler.errors import VersioningError
from kepler.records import Record, Section, keyed, optional
from kepler.versioning import gitrepo, semver
from kepler.versioning.names import check_name
from kepler.versioning.project import current
from kepler.versioning.registry_aliases import (
    AliasChange,
    finish_cut_off_change,
    moved_all_or_nothing,
    read_aliases,
    read_journal,
)

KIND = "releases"
STATUSES = ("draft", "staging", "production", "archived")
STATUS_ALIASES = {"ready_for_deployment": "staging", "ready-for-deployment": "staging"}
TRANSITIONS = {
    "draft": ("staging", "archived"),
    "staging": ("production", "archived"),
    "production": ("archived",),
    "archived": (),
}
DEFAULT_LINE = "default"
REGISTRY_ALIASES = ("staging", "production")  # the statuses that own an MLflow alias of the same name


@dataclass
class HistoryEntry(Section):
    """One audit entry of a release's history (it also reads as its dict: ``entry["action"]``).

    Attributes:
        at: ISO 8601 UTC time.
        action: create, promote, archive, deploy, rollback, deploy-failed or reproduce.
        from_status: The status before (``"from"`` in the record); None on creation.
        to: The status after.
        by: The git user.
        reason: Why (an archive by supersession).
        platform: Where a deployment went (``local``, ``cloud-run``...).
        target: The deployment's target (a service name, URL, bento tag...).
        details: The deployment's facts (bento and image tags, service node, ``deployed_at``...).
        version: The version a reproduction rebuilt.
        success: Whether the reproduction succeeded (False on a ``deploy-failed`` entry).
        error: Why it (the reproduction or the deployment) failed.
    """

    KIND = "release history entry"
    ERROR = VersioningError

    at: str
    action: str
    from_status: str | None = keyed("from")
    to: str | None = None
    by: str | None = None
    reason: str | None = optional()
    platform: str | None = optional()
    target: str | None = optional()
    details: dict[str, Any] | None = optional()
    version: str | None = optional()
    success: bool | None = optional()
    error: str | None = optional()
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Release(Record):
    """One release (its record: ``.kepler/records/releases/<name>.json``).

    Schema versions: 1, the record as written before records carried ``schema_version``.

    Attributes:
        release_id: The release name (also its record's name).
        version: Its semantic version, normalized (no leading "v").
        components: What it is made of (data, pipeline and model versions, an MLflow model...).
        status: draft, staging, production or archived.
        model_line: The model line it belongs to; one production release per line.
        unified_version: The unified version it releases, if any (what :func:`reproduce_release` rebuilds).
        history: Audit entries (:class:`HistoryEntry`: ``at, from, to, by, action, ...``), oldest first.
        created_at: ISO 8601 UTC time of creation.
        notes: Release notes.
        git_commit: The project's git HEAD when the release was created.
    """

    release_id: str
    version: str
    components: dict[str, Any] = field(default_factory=dict)
    status: str = "draft"
    model_line: str = DEFAULT_LINE
    unified_version: str | None = None
    history: list[HistoryEntry] = field(default_factory=list)
    created_at: str = ""
    notes: str | None = None
    git_commit: str | None = None

    KIND = "release"
    ERROR = VersioningError
    NESTED = {"history": HistoryEntry}

    @property
    def name(self) -> str:
        """The release name (same as ``release_id``)."""
        return self.release_id


def normalize_status(status: object) -> str:
    """A status name, with ``ready_for_deployment`` read as ``staging``.

    Raises:
        VersioningError: an unknown status.
    """
    value = str(status).strip().lower() if isinstance(status, str) else ""
    value = STATUS_ALIASES.get(value, value)
    if value not in STATUSES:
        raise VersioningError(
            f"unknown release status {status!r}; use one of {', '.join(STATUSES)} "
            f"(ready_for_deployment means staging)"
        )
    return value


def _json_dict(value: object, what: str = "components") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise VersioningError(
            f"{what} must be a dict of name -> value, such as "
            "{'model_version': 'xgboost-v1.3', 'data_version': 'sensors-v1.0'}"
        )
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise VersioningError(f"{what} must hold JSON values (text, numbers, lists, dicts): {exc}") from None


def registry_model(release: Release) -> tuple[str, str] | None:
    """The registered MLflow model version ``(name, version)`` a release names, or None.

    Raises:
        VersioningError: ``components["mlflow_model"]`` is malformed.
    """
    ref = release.components.get("mlflow_model")
    if ref is None:
        version = release.components.get("model_version")
        explicit_line = release.model_line != DEFAULT_LINE
        if explicit_line and (isinstance(version, int) or (isinstance(version, str) and version.isdigit())):
            return release.model_line, str(version)
        return None
    name: str | None
    if isinstance(ref, str) and ref.startswith("models:/") and ref.count("/") == 2:
        name, version = ref[len("models:/") :].split("/")
    elif isinstance(ref, dict):
        name, version = ref.get("name"), ref.get("version")
    else:
        name = version = None
    if not isinstance(name, str) or not name or not str(version or "").isdigit():
        raise VersioningError(
            f"components['mlflow_model'] = {ref!r} is not a registered model version; "
            f"use {{'name': 'my-model', 'version': '3'}} or 'models:/my-model/3'"
        )
    return name, str(version)


def _line(model_line: object, components: dict[str, Any]) -> str:
    if model_line is not None:
        if not isinstance(model_line, str) or not model_line.strip():
            raise VersioningError(f"model_line must be a non-empty string, got {model_line!r}")
        return model_line.strip()
    probe = Release(release_id="probe", version="0.0.0", components=components)
    ref = registry_model(probe)
    return ref[0] if ref else DEFAULT_LINE


def _entry(project: Any, action: str, before: str | None, after: str, **extra: Any) -> HistoryEntry:
    return HistoryEntry(
        at=now(),
        action=action,
        from_status=before,
        to=after,
        by=gitrepo.user(project.root),
        **{k: v for k, v in extra.items() if v is not None},
    )


def _load(project: Any, name: str) -> Release:
    check_name(name, "release name")
    if not project.store.exists(KIND, name):
        raise VersioningError(f"unknown release {name!r}; list them with `kepler versioning list-releases`")
    return Release.from_dict(project.store.read(KIND, name))


def _all(project: Any) -> list[Release]:
    return [Release.from_dict(r) for r in project.store.all(KIND)]


def _save(project: Any, releases: list[Release], message: str) -> None:
    """Writes the records and commits them, or, when either fails (a hook refuses the commit, another git holds
    the index), leaves them as the last commit has them. Callers hold the releases lock."""
    paths = [project.store.path(KIND, r.release_id) for r in releases]
    head = gitrepo.head(project.root)
    try:
        for release in releases:
            project.store.write(KIND, release.release_id, release.to_dict())
        with project.store.lock("git"):
            gitrepo.commit(project.root, paths, message)
    except BaseException:
        if gitrepo.head(project.root) == head:  # not committed (an interrupt after the commit keeps it)
            with project.store.lock("git"):
                gitrepo.restore_to_head(project.root, paths)
        raise


def _supersede(project: Any, entering: Release, releases: list[Release]) -> list[Release]:
    """Archives the production release(s) of ``entering``'s model line other than itself."""
    archived = []
    for other in releases:
        if (
            other.release_id != entering.release_id
            and other.model_line == entering.model_line
            and other.status == "production"
        ):
            other.history.append(
                _entry(
                    project,
                    "archive",
                    "production",
                    "archived",
                    reason=f"superseded by {entering.release_id} ({entering.version})",
                )
            )
            other.status = "archived"
            archived.append(other)
    return archived


def _alias_change(
    project: Any, entering: Release, before: str | None, archived: list[Release]
) -> AliasChange | None:
    """The MLflow aliases a release change moves: the new status's alias set on the entering release's model
    version, and the aliases the old statuses held dropped where they still point to those versions. None when
    no release involved names a registered model version.

    Reads the aliases as they stand (before anything moves): an unreachable server changes nothing.
    """
    moves: list[tuple[tuple[str, str], str | None, list[str]]] = []
    ref = registry_model(entering)
    if ref:
        dropped = [before] if before in REGISTRY_ALIASES and before != entering.status else []
        moves.append((ref, entering.status if entering.status in REGISTRY_ALIASES else None, dropped))
    for old in archived:
        old_ref = registry_model(old)
        if old_ref:
            moves.append((old_ref, None, ["production"]))
    keys = list(
        dict.fromkeys(
            [(model, alias) for (model, _), alias, _ in moves if alias]
            + [(model, alias) for (model, _), _, dropped in moves for alias in dropped]
        )
    )
    if not keys:
        return None
    current = read_aliases(project.mlflow_client(), project.tracking_uri, keys)
    after = dict(current)
    moved = set()
    for (model, version), alias, _ in moves:
        if alias:
            after[(model, alias)] = version
            moved.add((model, alias))
    for (model, version), _, dropped in moves:
        for alias in dropped:
            if (model, alias) not in moved and current[(model, alias)] == version:
                after[(model, alias)] = None
    return AliasChange(release=entering.release_id, status=entering.status, before=current, after=after)


def _finish_cut_off_change(project: Any) -> None:
    """Puts right a release change cut off mid-way (see :mod:`kepler.versioning.registry_aliases`): its aliases
    forward when its records were committed, back when they were not, and release records it wrote but did not
    commit back as the last commit has them (under the releases lock, no other command is writing them).
    Callers hold the releases lock."""
    change = read_journal(project)
    if change is None:
        return
    text = gitrepo.committed_text(project.root, project.store.path(KIND, change.release))
    committed = text is not None and Release.from_dict(json.loads(text)).status == change.status
    finish_cut_off_change(project, committed)
    leftovers = gitrepo.uncommitted(project.root, project.store.root / KIND)
    if leftovers:
        with project.store.lock("git"):
            gitrepo.restore_to_head(project.root, [project.root / rel for rel in leftovers])


def create_release(
    release_name: str,
    version: str = "1.0.0",
    components: dict[str, Any] | None = None,
    status: str = "draft",
    *,
    model_line: str | None = None,
    unified_version: str | None = None,
    notes: str | None = None,
    project: Any = None,
) -> Release:
    """Creates a release and commits its record.

    Args:
        release_name: The release name (``[A-Za-z0-9][A-Za-z0-9._@-]*``), unique in the project.
        version: Semantic version, unique within the model line (``v1.0.0`` is stored as ``1.0.0``).
        components: What the release is made of, e.g. ``{"data_version": ..., "model_version": ...,
            "pipeline_version": ..., "mlflow_model": {"name": ..., "version": ...}}``.
        status: draft (default), staging (or ready_for_deployment), production or archived.
        model_line: The model line (see the module notes for the default).
        unified_version: The unified version released (must exist).
        notes: Release notes.
        project: The project; the one containing the working directory by default.

    Returns:
        The new release. Created at production, it archives the line's previous production release.

    Raises:
        VersioningError: a bad name, version or status, a taken name, a version already released in
            the line, an unknown unified version, or an MLflow model version that is not registered.
    """
    project = current(project)
    check_name(release_name, "release name")
    parsed = semver.parse(version)
    status = normalize_status(status)
    components = _json_dict(components)
    if unified_version is not None:
        check_name(unified_version, "unified version")
        if not project.store.exists("unified", unified_version):
            raise VersioningError(
                f"unknown unified version {unified_version!r}; create it with "
                f"kp.versioning.create_unified_version first"
            )
        from kepler.versioning.unified import get_unified_version

        model = get_unified_version(unified_version, project=project).model
        if (
            "mlflow_model" not in components
            and isinstance(model, dict)
            and model.get("name")
            and str(model.get("version") or "").isdigit()
        ):
            components["mlflow_model"] = {"name": str(model["name"]), "version": str(model["version"])}
    line = _line(model_line, components)
    if notes is not None and not isinstance(notes, str):
        raise VersioningError("notes must be text")
    with project.store.lock(KIND):
        _finish_cut_off_change(project)
        if project.store.exists(KIND, release_name):
            raise VersioningError(
                f"release {release_name!r} already exists; choose another name, or promote it "
                f"with promote_release"
            )
        releases = _all(project)
        for other in releases:
            if other.model_line == line and semver.parse(other.version).identity == parsed.identity:
                raise VersioningError(
                    f"version {parsed} of model line {line!r} is already released as "
                    f"{other.release_id!r}; bump the version (e.g. {_bump(parsed)})"
                )
        release = Release(
            release_id=release_name,
            version=str(parsed),
            components=components,
            status=status,
            model_line=line,
            unified_version=unified_version,
            created_at=now(),
            notes=notes,
            git_commit=gitrepo.head(project.root),
        )
        release.history.append(_entry(project, "create", None, status))
        _settle(
            project, release, None, releases, f"release {release_name} {release.version} created ({status})"
        )
    return release


def _settle(project: Any, release: Release, before: str | None, others: list[Release], message: str) -> None:
    """After a release enters its status: archive the line's old production release when it enters
    production, move the registry aliases, and save and commit every changed record: all of it, or none
    (:func:`kepler.versioning.registry_aliases.moved_all_or_nothing`)."""
    archived = _supersede(project, release, others) if release.status == "production" else []
    if archived:
        message += "; archived " + ", ".join(r.release_id for r in archived)
    head = gitrepo.head(project.root)
    change = _alias_change(project, release, before, archived)
    if change is None:
        _save(project, [release, *archived], message)
        return
    with moved_all_or_nothing(project, change, committed=lambda: gitrepo.head(project.root) != head):
        _save(project, [release, *archived], message)


def _bump(version: semver.SemVer) -> str:
    return f"{version.major}.{version.minor}.{version.patch + 1}"


def promote_release(name: str, target_environment: str = "staging", *, project: Any = None) -> Release:
    """Moves a release one step along draft -> staging -> production -> archived.

    Promoting to the status the release already has changes nothing. Entering production
    archives the line's previous production release.

    Args:
        name: The release name.
        target_environment: staging (or ready_for_deployment), production or archived.

    Returns:
        The release after the move.

    Raises:
        VersioningError: an unknown release or status, or a move that skips a step
            (the message names the allowed next statuses).
    """
    project = current(project)
    target = normalize_status(target_environment)
    with project.store.lock(KIND):
        _finish_cut_off_change(project)
        release = _load(project, name)
        before = release.status
        if before == target:
            return release
        allowed = TRANSITIONS[before]
        if target not in allowed:
            nexts = (
                " or ".join(allowed) if allowed else "none (archived is final; create a new release instead)"
            )
            raise VersioningError(
                f"release {name!r} is {before} and cannot move to {target}; allowed next: {nexts}"
            )
        releases = [r for r in _all(project) if r.release_id != name]
        release.status = target
        release.history.append(
            _entry(project, "archive" if target == "archived" else "promote", before, target)
        )
        _settle(project, release, before, releases, f"release {name} {release.version}: {before} -> {target}")
    return release


def get_release(name: str, *, project: Any = None) -> Release:
    """One release by name.

    Raises:
        VersioningError: no such release.
    """
    return _load(current(project), name)


def list_releases(
    *, model_line: str | None = None, status: str | None = None, project: Any = None
) -> list[Release]:
    """Every release, by model line and then by semantic version (oldest first).

    Args:
        model_line: Only this line.
        status: Only this status (``ready_for_deployment`` means staging).
    """
    releases = _all(current(project))
    if model_line is not None:
        releases = [r for r in releases if r.model_line == model_line]
    if status is not None:
        wanted = normalize_status(status)
        releases = [r for r in releases if r.status == wanted]
    return sorted(releases, key=lambda r: (r.model_line, semver.parse(r.version).precedence, r.release_id))


def record_deployment(
    name: str,
    *,
    platform: str,
    target: str,
    rollback: bool = False,
    details: dict[str, Any] | None = None,
    error: str | None = None,
    project: Any = None,
) -> Release:
    """Appends a ``deploy`` (or ``rollback``) entry to a release's history and commits it; with ``error``,
    a ``deploy-failed`` entry (``success: false``) for a deployment that did not come up.

    Args:
        name: The release deployed.
        platform: Where it went (``local``, ``cloud_run``...).
        target: The deployment target (a service name, URL, image...).
        rollback: True when this deployment rolls back to this release.
        details: Extra JSON-ready facts (image, revision, bento tag...).
        error: Why the deployment failed (then the entry is ``deploy-failed``).

    Raises:
        VersioningError: an unknown release, or details that are not JSON values.
    """
    project = current(project)
    details = _json_dict(details, "details") if details is not None else None
    with project.store.lock(KIND):
        release = _load(project, name)
        action = "deploy-failed" if error is not None else "rollback" if rollback else "deploy"
        release.history.append(
            _entry(
                project,
                action,
                release.status,
                release.status,
                platform=str(platform),
                target=str(target),
                details=details,
                success=False if error is not None else None,
                error=error,
            )
        )
        _save(project, [release], f"release {name} {release.version}: {action} to {platform} {target}")
    return release


def reproduce_target(release: Release) -> str:
    """What reproducing a release rebuilds: its unified version, else its components'
    ``unified_version``, else their ``model_version``.

    Raises:
        VersioningError: the release names none of them.
    """
    target = (
        release.unified_version
        or release.components.get("unified_version")
        or release.components.get("model_version")
    )
    if not target:
        raise VersioningError(
            f"release {release.release_id!r} names no unified version to reproduce; create "
            f"releases with unified_version=... (or components={{'model_version': ...}})"
        )
    return str(target)


def reproduce_release(name: str, *, project: Any = None, output: Any = None) -> Any:
    """Reproduces a release with ``kp.reproduce.from_version`` on what it releases (see :func:`reproduce_target`),
    and records the outcome (``reproduce`` history entry) on the release.

    Returns:
        The :class:`kepler.reproduce.ReproductionResult`.
    """
    import importlib

    project = current(project)
    release = _load(project, name)
    target = reproduce_target(release)
    result = importlib.import_module("kepler.reproduce").from_version(target, project=project, output=output)
    success = bool(getattr(result, "success", False))
    with project.store.lock(KIND):
        release = _load(project, name)
        release.history.append(
            _entry(
                project,
                "reproduce",
                release.status,
                release.status,
                version=target,
                success=success,
                error=getattr(result, "error_message", None),
            )
        )
        _save(
            project,
            [release],
            f"release {name} {release.version}: reproduced {target} ({'success' if success else 'failed'})",
        )
    return result
