"""Atomic file writes: a temporary file in the same folder, fsynced, then renamed over the target."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

# This module is a leaf (standard library only): kepler.compilers writes its artifacts with it, and
# importing it must stay as cheap as importing kepler.errors.

TEMP_SUFFIX = ".tmp"


def temp_path(path: str | os.PathLike[str]) -> Path:
    """A fresh temporary name beside ``path``: ``.<name>.<32 hex digits>.tmp``.

    The leading dot hides it from listings that skip hidden files (record stores, build folders), the
    random part makes it unique to one write, and the same folder makes the final rename atomic.
    """
    target = Path(path)
    return target.with_name(f".{target.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")


def write_atomically(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> Path:
    """Writes ``path`` in one step: readers see the old file or the whole new one, never part of it.

    ``write`` fills a temporary file opened for binary writing in the same folder; the file is then
    flushed, fsynced and renamed over ``path``, and the folder is fsynced so that the rename survives
    a crash (where the platform can open folders). On any error, an interrupt included, the temporary
    file is removed and ``path`` is left as it was.

    The temporary file is created with ``O_EXCL`` under a random name rather than with
    ``tempfile.mkstemp``: mkstemp's files are private (0600), and Kepler's files must keep the
    permissions the umask gives, as a plain write would.

    Args:
        path: The file to write; its folder must exist.
        write: Called once with the open temporary file.

    Returns:
        ``path`` as a Path.
    """
    target = Path(path)
    temp = temp_path(target)
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            descriptor = -1  # the handle owns it now and closes it
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        if descriptor != -1:
            os.close(descriptor)
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    fsync_directory(target.parent)
    return target


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically (see :func:`write_atomically`)."""
    return write_atomically(path, lambda handle: handle.write(data))


def write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Writes ``text`` to ``path`` atomically (see :func:`write_atomically`); newlines are written as given."""
    return write_bytes(path, text.encode(encoding))


def write_json(
    path: str | os.PathLike[str],
    data: Any,
    *,
    indent: int | None = 2,
    sort_keys: bool = False,
    default: Callable[[Any], Any] | None = str,
) -> Path:
    """Writes ``data`` as JSON to ``path`` atomically, ending with a newline.

    The text is made before the temporary file exists, so data that JSON cannot hold fails with
    nothing written.
    """
    text = json.dumps(data, indent=indent, sort_keys=sort_keys, default=default) + "\n"
    return write_text(path, text)


def fsync_directory(folder: str | os.PathLike[str]) -> None:
    """Flushes a folder's entries (a rename into it) to disk; a no-op where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # Windows cannot open a folder; its renames are flushed with the file
        return
    try:
        os.fsync(descriptor)
    except OSError:  # some filesystems (and platforms) refuse fsync on a folder
        pass
    finally:
        os.close(descriptor)
