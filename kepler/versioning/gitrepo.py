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


def _relative(root: Path, paths: list[Path | str]) -> list[str]:
    return [
        str(Path(p).resolve().relative_to(root.resolve())) if Path(p).is_absolute() else str(p) for p in paths
    ]


def commit(root: Path, paths: list[Path | str], message: str) -> str:
    """Stages ``paths`` and commits them (if anything changed); returns the commit id."""
    rels = _relative(root, paths)
    git(root, "add", "--", *rels)
    if git(root, "diff", "--cached", "--name-only", "--", *rels, check=False):
        git(root, "commit", "-q", "-m", message, "--", *rels)
    return head(root) or ""


def restore_to_head(root: Path, paths: list[Path | str]) -> None:
    """Puts ``paths`` back as HEAD has them, in the index and the working tree, and removes those HEAD does not
    hold: after a write that could not be committed. Only for files Kepler alone writes (its records).

    Raises:
        VersioningError: git could not restore them (the message names the files to check).
    """
    rels = _relative(root, paths)
    try:
        if head(root) is None:
            tracked: set[str] = set()
            git(root, "rm", "-q", "--cached", "--ignore-unmatch", "--", *rels)
        else:
            tracked = set(git(root, "ls-tree", "-r", "--name-only", "HEAD", "--", *rels).splitlines())
            git(root, "reset", "-q", "HEAD", "--", *rels)
        for rel in rels:
            if rel in tracked:
                git(root, "checkout", "HEAD", "--", rel)
            else:
                (root / rel).unlink(missing_ok=True)
    except (VersioningError, OSError) as exc:
        raise VersioningError(
            f"could not put {', '.join(rels)} back as the last commit has them ({exc}); run "
            f"`git checkout HEAD -- <file>` for the tracked ones and delete the others"
        ) from None


def uncommitted(root: Path, folder: Path | str) -> list[str]:
    """The files under ``folder`` that differ from HEAD: changed, staged, deleted or not tracked."""
    rel = _relative(root, [folder])[0]
    changed = git(root, "diff", "--name-only", "HEAD", "--", rel) if head(root) else ""
    untracked = git(root, "ls-files", "--others", "--exclude-standard", "--", rel)
    return sorted(set(changed.splitlines()) | set(untracked.splitlines()))


def committed_text(root: Path, path: Path | str) -> str | None:
    """The text of ``path`` as HEAD holds it, or None when HEAD does not hold it."""
    rel = _relative(root, [path])[0]
    if head(root) is None or not git(root, "ls-tree", "--name-only", "HEAD", "--", rel):
        return None
    return git(root, "show", f"HEAD:{rel}")


def tag(root: Path, name: str, message: str) -> None:
    """Creates an annotated tag at HEAD (an existing tag of that name is an error)."""
    git(root, "tag", "-a", name, "-m", message)
