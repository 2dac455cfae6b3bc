"""kepler.atomic_files: a write is all or nothing, leaves no temporary file, and keeps plain-write permissions."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import IO

import pytest

from kepler import atomic_files


def leftovers(folder: Path) -> list[str]:
    """Temporary files of atomic writes still in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(atomic_files.TEMP_SUFFIX))


def test_text_bytes_and_json_variants_write_whole_files(tmp_path: Path) -> None:
    assert atomic_files.write_text(tmp_path / "a.txt", "héllo\n") == tmp_path / "a.txt"
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    atomic_files.write_bytes(tmp_path / "b.bin", b"\x00\x01\xff")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01\xff"
    atomic_files.write_json(tmp_path / "c.json", {"b": 1, "a": [1.5, None]}, sort_keys=True)
    text = (tmp_path / "c.json").read_text(encoding="utf-8")
    assert json.loads(text) == {"a": [1.5, None], "b": 1}
    assert text.index('"a"') < text.index('"b"') and text.endswith("}\n")
    assert leftovers(tmp_path) == []


def test_a_write_replaces_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    atomic_files.write_json(target, {"version": 1})
    atomic_files.write_json(target, {"version": 2})
    assert json.loads(target.read_text(encoding="utf-8")) == {"version": 2}
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path, failure: BaseException) -> None:
    target = tmp_path / "record.json"
    target.write_text("old", encoding="utf-8")

    def half_then_fail(handle: IO[bytes]) -> None:
        handle.write(b"half of the new")
        raise failure

    with pytest.raises(type(failure)):
        atomic_files.write_atomically(target, half_then_fail)
    assert target.read_text(encoding="utf-8") == "old"
    assert leftovers(tmp_path) == []


def test_a_failed_rename_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    (target / "inside").mkdir(parents=True)  # a folder that holds something cannot be replaced by a file
    with pytest.raises(OSError):
        atomic_files.write_text(target, "text")
    assert (target / "inside").is_dir()
    assert leftovers(tmp_path) == []


def test_data_json_cannot_hold_fails_before_anything_is_written(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    target.write_text('{"kept": true}', encoding="utf-8")
    with pytest.raises(TypeError):
        atomic_files.write_json(target, {"value": object()}, default=None)
    assert target.read_text(encoding="utf-8") == '{"kept": true}'
    assert leftovers(tmp_path) == []


def test_a_missing_folder_fails_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_files.write_text(tmp_path / "absent" / "file.txt", "text")
    assert list(tmp_path.iterdir()) == []


def test_temp_names_are_unique_hidden_and_beside_the_target(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    names = {atomic_files.temp_path(target) for _ in range(1000)}
    assert len(names) == 1000
    for name in names:
        assert name.parent == tmp_path
        assert name.name.startswith(".report.json.") and name.name.endswith(".tmp")


def test_permissions_are_those_of_a_plain_write(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x", encoding="utf-8")
    atomic = atomic_files.write_text(tmp_path / "atomic.txt", "x")
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_concurrent_writers_leave_one_whole_file_and_readers_never_see_a_part(tmp_path: Path) -> None:
    target = tmp_path / "shared.bin"
    payloads = [bytes([index]) * 1_000_000 for index in range(2)]  # big enough to take many write calls
    atomic_files.write_bytes(target, payloads[0])
    seen: set[bytes] = set()
    errors: list[BaseException] = []
    writing = threading.Event()

    def writer(payload: bytes) -> None:
        def in_chunks(handle: IO[bytes]) -> None:  # many small writes, so that the two writers interleave
            for start in range(0, len(payload), 65536):
                handle.write(payload[start : start + 65536])

        try:
            for _ in range(5):
                atomic_files.write_atomically(target, in_chunks)
        except BaseException as exc:  # reported below: a thread's exception would otherwise be lost
            errors.append(exc)

    def reader() -> None:
        while writing.is_set():
            content = target.read_bytes()
            seen.add(content[:1] + content[-1:] + len(content).to_bytes(8, "big"))

    writing.set()
    watcher = threading.Thread(target=reader)
    watcher.start()
    threads = [threading.Thread(target=writer, args=(payload,)) for payload in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writing.clear()
    watcher.join()

    assert errors == []
    assert target.read_bytes() in payloads
    whole = {p[:1] + p[-1:] + len(p).to_bytes(8, "big") for p in payloads}
    assert seen and seen <= whole
    assert leftovers(tmp_path) == []


def test_fsync_directory_tolerates_a_folder_that_cannot_be_opened(tmp_path: Path) -> None:
    atomic_files.fsync_directory(tmp_path)  # a real folder: flushed
    atomic_files.fsync_directory(tmp_path / "absent")  # cannot be opened: nothing to flush, no error
    assert os.listdir(tmp_path) == []
