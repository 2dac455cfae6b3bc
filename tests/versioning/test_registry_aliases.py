"""A release change moves its MLflow aliases all or nothing: a commit that fails puts them back at once, and a journal
left by a change cut off mid-way is finished by the project's next release command (forward when the records were
committed, back when they were not). The embedded store here; tests/scale/test_tracking_server.py cuts a real
server off mid-promotion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kepler.errors import VersioningError
from kepler.versioning.registry_aliases import AliasChange, journal_path, read_journal, write_journal
from kepler.versioning.releases import create_release, get_release, promote_release

MODEL = "pm-model"


@pytest.fixture
def registered(project: Any) -> Any:
    """Two versions of ``pm-model`` and ``alias(name)``: the version an alias points to, or None."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=project.tracking_uri, registry_uri=project.tracking_uri)
    client.create_registered_model(MODEL)
    for number in (1, 2):
        source = project.root / "models" / str(number)
        source.mkdir(parents=True)
        client.create_model_version(MODEL, source=str(source))

    def alias(name: str) -> str | None:
        try:
            return str(client.get_model_version_by_alias(MODEL, name).version)
        except MlflowException:
            return None

    alias.client = client  # type: ignore[attr-defined]
    return alias


def _release(name: str, version: str, number: int, status: str) -> None:
    create_release(
        name, version, components={"mlflow_model": {"name": MODEL, "version": str(number)}}, status=status
    )


def _head(root: Path, run_git: Any) -> str:
    return run_git(root, "rev-parse", "HEAD")


def test_a_commit_that_fails_puts_the_aliases_back_at_once(
    project: Any, registered: Any, run_git: Any
) -> None:
    _release("pm-1.0", "1.0.0", 1, "production")
    _release("pm-1.1", "1.1.0", 2, "staging")
    head = _head(project.root, run_git)
    hook = project.root / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'pre-commit: refused' >&2\nexit 1\n")
    hook.chmod(0o755)

    with pytest.raises(Exception, match="refused"):
        promote_release("pm-1.1", "production")
    # The commit failed after the aliases moved: they are back, and nothing is left to finish.
    assert (registered("production"), registered("staging")) == ("1", "2")
    assert not journal_path(project).exists() and _head(project.root, run_git) == head
    assert get_release("pm-1.1").status == "staging" and get_release("pm-1.0").status == "production"

    hook.unlink()
    promote_release("pm-1.1", "production")
    assert (registered("production"), registered("staging")) == ("2", None)
    assert get_release("pm-1.0").status == "archived"


@pytest.mark.parametrize("state", ["records-unchanged", "records-written", "records-committed"])
def test_the_next_release_command_finishes_a_change_cut_off_mid_way(
    project: Any, registered: Any, run_git: Any, state: str
) -> None:
    """A process killed between two alias calls left its journal: production already on version 2, staging still
    there. The next release command sets them as the committed records say: back (records unchanged, or written but
    not committed: those go back to the last commit too) or forward (committed)."""
    _release("pm-1.0", "1.0.0", 1, "production")
    _release("pm-1.1", "1.1.0", 2, "staging")
    before = {(MODEL, "production"): "1", (MODEL, "staging"): "2"}
    after = {(MODEL, "production"): "2", (MODEL, "staging"): None}
    if state == "records-committed":  # the promotion's records were committed before the process died
        promote_release("pm-1.1", "production")
    elif state == "records-written":  # written, not committed: the working tree says production
        record = get_release("pm-1.1").to_dict() | {"status": "production"}
        project.store.write("releases", "pm-1.1", record)
    write_journal(project, AliasChange(release="pm-1.1", status="production", before=before, after=after))
    registered.client.set_registered_model_alias(MODEL, "production", "2")
    registered.client.set_registered_model_alias(MODEL, "staging", "2")

    _release("other-9.0", "9.0.0", 1, "draft")  # any release command of the project
    committed = state == "records-committed"
    assert (registered("production"), registered("staging")) == (("2", None) if committed else ("1", "2"))
    assert get_release("pm-1.1").status == ("production" if committed else "staging")
    assert not journal_path(project).exists() and run_git(project.root, "status", "--porcelain") == ""


def test_the_journal_round_trips_and_an_unreadable_one_is_named(project: Any) -> None:
    change = AliasChange(
        release="pm-1.1",
        status="production",
        before={(MODEL, "production"): "1", (MODEL, "staging"): "2"},
        after={(MODEL, "production"): "2", (MODEL, "staging"): None},
    )
    write_journal(project, change)
    assert read_journal(project) == change
    assert json.loads(journal_path(project).read_text())["schema_version"] == 1
    assert ".kepler/locks/" in journal_path(project).as_posix()  # beside the locks: git ignores it

    journal_path(project).write_text("{not json")
    with pytest.raises(VersioningError) as unreadable:
        create_release("pm-2.0", "2.0.0")
    assert str(journal_path(project)) in str(unreadable.value) and "delete the file" in str(unreadable.value)
