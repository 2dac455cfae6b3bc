"""The few git operations the project store needs, through the git command line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from kepler.errors import VersioningError


def git(root: Path, *args: str, check: bool = True) -> str:
    """Runs ``git -C root args`` and returns its stdout.

    Raises:
        VersioningError: git is missing or the command failed (with git's own message).
    """
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, env=env, timeout=120
        )
    except FileNotFoundError:
        raise VersioningError("git is not installed; install git and retry") from None
    if check and done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise VersioningError(
            f"git {' '.join(args[:2])} failed: {message[-1] if message else done.returncode}"
        )
    return done.stdout.strip()


def is_repo(root: Path) -> bool:
    """True when ``root`` is inside a git work tree."""
    try:
        return git(root, "rev-parse", "--is-inside-work-tree", check=False) == "true"
    except VersioningError:
        return False


def head(root: Path) -> str | None:
    """The current commit, or None before the first commit."""
    out = git(root, "rev-parse", "--verify", "-q", "HEAD", check=False)
    return out or None


def user(root: Path) -> str:
    """``Name <email>`` of the configured git user, for audit trails."""
    name = git(root, "config", "user.name", check=False) or "unknown"
    email = git(root, "config", "user.email", check=False)
    return f"{name} <{email}>" if email else name


def ensure_identity(root: Path) -> None:
    """Gives the repository a local identity when none is configured, so commits can be made."""
    if not git(root, "config", "user.name", check=False):
        git(root, "config", "user.name", "Kepler")
    if not git(root, "config", "user.email", check=False):
        git(root, "config", "user.email", "kepler@localhost")


def commit(root: Path, paths: list[Path | str], message: str, *, restore_on_failure: bool = False) -> str:
    """Stages ``paths`` and commits them (if anything changed); returns the commit id.

    Args:
        root: The repository.
        paths: The files to commit.
        message: The commit message.
        restore_on_failure: When the commit fails (a hook refuses it, the disk is full), put ``paths`` back as
            HEAD has them, in the index and the working tree, and remove those HEAD does not hold: for files
            Kepler alone writes (its records), never for a user's.
    """
    rels = [
        str(Path(p).resolve().relative_to(root.resolve())) if Path(p).is_absolute() else str(p) for p in paths
    ]
    git(root, "add", "--", *rels)
    if git(root, "diff", "--cached", "--name-only", "--", *rels, check=False):
        try:
            git(root, "commit", "-q", "-m", message, "--", *rels)
        except BaseException:
            if restore_on_failure:
                _restore_to_head(root, rels)
            raise
    return head(root) or ""


def _restore_to_head(root: Path, rels: list[str]) -> None:
    """Puts ``rels`` back as HEAD has them: unstaged, the tracked ones checked out, the new ones removed."""
    has_head = head(root) is not None
    tracked = (
        set(git(root, "ls-tree", "-r", "--name-only", "HEAD", "--", *rels, check=False).splitlines())
        if has_head
        else set()
    )
    if has_head:
        git(root, "reset", "-q", "HEAD", "--", *rels, check=False)
    else:
        git(root, "rm", "-q", "--cached", "--ignore-unmatch", "--", *rels, check=False)
    for rel in rels:
        if rel in tracked:
            git(root, "checkout", "HEAD", "--", rel, check=False)
        else:
            (root / rel).unlink(missing_ok=True)


def tag(root: Path, name: str, message: str) -> None:
    """Creates an annotated tag at HEAD (an existing tag of that name is an error)."""
    git(root, "tag", "-a", name, "-m", message)
