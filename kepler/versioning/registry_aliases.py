"""MLflow registry aliases moved all or nothing, with a journal that puts right a change cut off mid-way.

A release change moves up to three aliases (set the entering status's, drop the old status's, drop the archived
release's ``production``), one HTTP call each, and then commits the release records. A server lost between two
calls, or a process killed, would leave aliases that no record explains. So before the first call Kepler writes
the aliases as they stand and as they will stand to ``.kepler/locks/registry-aliases.json`` (beside the locks, not
in git); a failure puts the old ones back at once when the server still answers, and the next release command of
the project finishes the job when it did not: forward when the records were committed, back when they were not.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kepler.atomic_files import write_json
from kepler.errors import EndpointError, VersioningError

JOURNAL_NAME = "registry-aliases.json"
JOURNAL_VERSION = 1

# (registered model name, alias) -> the model version the alias points to, or None when the alias is not set.
AliasState = dict[tuple[str, str], str | None]

logger = logging.getLogger(__name__)


@dataclass
class AliasChange:
    """The aliases one release change moves.

    Attributes:
        release: The release that changes status.
        status: The status it enters.
        before: The touched aliases as they stood before the change.
        after: The same aliases as the change leaves them.
    """

    release: str
    status: str
    before: AliasState
    after: AliasState

    def to_dict(self) -> dict[str, Any]:
        """The journal's JSON form."""
        return {
            "schema_version": JOURNAL_VERSION,
            "release": self.release,
            "status": self.status,
            "aliases": [
                {"model": model, "alias": alias, "before": version, "after": self.after[(model, alias)]}
                for (model, alias), version in self.before.items()
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AliasChange:
        """Reads the journal's JSON form."""
        before: AliasState = {}
        after: AliasState = {}
        for entry in data["aliases"]:
            key = (str(entry["model"]), str(entry["alias"]))
            before[key], after[key] = entry["before"], entry["after"]
        return cls(release=str(data["release"]), status=str(data["status"]), before=before, after=after)


def journal_path(project: Any) -> Path:
    """Where a project's alias journal lives (git ignores the locks folder)."""
    return Path(project.store.locks) / JOURNAL_NAME


def read_journal(project: Any) -> AliasChange | None:
    """The change a cut-off release command left, or None.

    Raises:
        VersioningError: the journal cannot be read (it names the file to look at).
    """
    path = journal_path(project)
    if not path.is_file():
        return None
    try:
        return AliasChange.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VersioningError(
            f"{path} (the MLflow aliases of a release change cut off mid-way) cannot be read ({exc}); set the "
            f"aliases its entries name by hand with the MLflow client, then delete the file"
        ) from None


def write_journal(project: Any, change: AliasChange) -> None:
    """Records a change before its first alias moves."""
    path = journal_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, change.to_dict())


def clear_journal(project: Any) -> None:
    """Forgets a change that is complete, or undone."""
    journal_path(project).unlink(missing_ok=True)


def read_aliases(client: Any, uri: str, keys: list[tuple[str, str]]) -> AliasState:
    """The version each alias points to now (None when it is not set).

    Raises:
        EndpointError: the tracking server cannot be reached.
    """
    from mlflow.exceptions import MlflowException

    from kepler.versioning.endpoints import endpoint_error

    state: AliasState = {}
    for model, alias in keys:
        try:
            state[(model, alias)] = str(client.get_model_version_by_alias(model, alias).version)
        except MlflowException as exc:
            unreachable = endpoint_error(exc, uri)
            if unreachable is not None:
                raise unreachable from None
            if not _not_found(exc):
                raise VersioningError(
                    f"cannot read MLflow alias {alias!r} of model {model!r}: {exc.message}; check the model "
                    f"registry of {uri}"
                ) from None
            state[(model, alias)] = None
    return state


def _not_found(exc: Any) -> bool:
    """Whether MLflow's error says the alias (or its model) does not exist: MLflow 3 answers a missing alias
    with INVALID_PARAMETER_VALUE "... alias ... not found", a missing model with RESOURCE_DOES_NOT_EXIST."""
    code = str(getattr(exc, "error_code", ""))
    return code == "RESOURCE_DOES_NOT_EXIST" or (
        code == "INVALID_PARAMETER_VALUE" and "not found" in str(getattr(exc, "message", exc)).lower()
    )


def apply_aliases(client: Any, uri: str, target: AliasState, current: AliasState) -> None:
    """Moves the aliases from ``current`` to ``target``: sets first, then removals (an alias set on a new version
    leaves its old one by itself).

    Raises:
        EndpointError: the tracking server cannot be reached.
        VersioningError: an alias cannot be set on its version (the model version is not registered).
    """
    from mlflow.exceptions import MlflowException

    from kepler.versioning.endpoints import endpoint_error

    for (model, alias), version in target.items():
        if version is None or current.get((model, alias)) == version:
            continue
        try:
            client.set_registered_model_alias(model, alias, version)
        except MlflowException as exc:
            unreachable = endpoint_error(exc, uri)
            if unreachable is not None:
                raise unreachable from None
            raise VersioningError(
                f"cannot set MLflow alias {alias!r} on model {model!r} version {version}: {exc.message}; "
                f"register that model version first"
            ) from None
    for (model, alias), version in target.items():
        if version is not None or current.get((model, alias)) is None:
            continue
        try:
            client.delete_registered_model_alias(model, alias)
        except MlflowException as exc:
            unreachable = endpoint_error(exc, uri)
            if unreachable is not None:
                raise unreachable from None
            # already gone: nothing to remove


@contextmanager
def moved_all_or_nothing(project: Any, change: AliasChange, committed: Callable[[], bool]) -> Iterator[None]:
    """Moves the aliases of ``change``, then runs the block (which commits the records). Either all of it holds
    at the end, or the aliases are put back; where the server cannot be reached to do so, the journal stays for
    the next release command and the error says so.

    Args:
        project: The project.
        change: The aliases to move.
        committed: Whether the records were committed after all (an interrupt after the commit): then the
            aliases are finished forward instead of put back.
    """
    client, uri = project.mlflow_client(), project.tracking_uri
    write_journal(project, change)
    try:
        apply_aliases(client, uri, change.after, change.before)
        yield
    except BaseException as exc:
        landed = committed()
        if _apply_at_once(client, uri, change.after if landed else change.before):
            clear_journal(project)
            raise
        if isinstance(exc, EndpointError):
            state = (
                "the release records were committed, and the next release command finishes moving the MLflow "
                "aliases"
                if landed
                else "the release records are unchanged, and the next release command puts back the MLflow "
                "aliases moved so far"
            )
            raise EndpointError(
                f"{exc}; {state} (kept in {journal_path(project)})", endpoint=exc.endpoint
            ) from None
        raise
    clear_journal(project)


def _apply_at_once(client: Any, uri: str, target: AliasState) -> bool:
    """Sets the aliases to ``target`` at once (no retries), whatever they are now; False when that fails."""
    from kepler.versioning.endpoints import fail_fast

    try:
        with fail_fast():
            apply_aliases(client, uri, target, read_aliases(client, uri, list(target)))
    except Exception as exc:  # the journal stays: the next release command finishes the job
        logger.warning("could not set the MLflow aliases right yet (%s); the next release command will", exc)
        return False
    return True


def finish_cut_off_change(project: Any, committed: bool) -> None:
    """Puts right the aliases of a release change cut off mid-way: as the change leaves them when its records
    were ``committed``, else as they were before it. Nothing happens without a journal.

    Raises:
        EndpointError: the tracking server still cannot be reached (nothing changed; rerun once it answers).
    """
    change = read_journal(project)
    if change is None:
        return
    client, uri = project.mlflow_client(), project.tracking_uri
    target = change.after if committed else change.before
    try:
        apply_aliases(client, uri, target, read_aliases(client, uri, list(target)))
    except EndpointError as exc:
        raise EndpointError(
            f"{exc}; an earlier change of release {change.release!r} was cut off while moving MLflow aliases, "
            f"and Kepler puts them right before the next one: rerun once the server answers",
            endpoint=exc.endpoint,
        ) from None
    except VersioningError as exc:
        raise VersioningError(
            f"an earlier change of release {change.release!r} was cut off while moving MLflow aliases, and they "
            f"cannot be put right ({exc}); set the aliases that {journal_path(project)} names by hand with the "
            f"MLflow client, then delete that file"
        ) from None
    clear_journal(project)
