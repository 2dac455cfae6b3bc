"""The traffic recorder: lines in the agreed format, rotation within max_mb, sampling, a full queue that drops
instead of blocking, writer failures that never reach the request, and a flush on close."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from kepler.deployment.recording import (
    MIB,
    Recorder,
    default_root,
    file_size,
    folder_name,
    records_of,
    request_id,
)

pytestmark = pytest.mark.unit  # no process, no server: the unit tier, although tests/deploy/ is integration


def rows_of(body: bytes) -> list[dict[str, Any]]:
    return records_of(json.loads(body))


def recorder(folder: Path, **kwargs: Any) -> Recorder:
    options: dict[str, Any] = {
        "release": "pm-1.1",
        "sample_rate": 1.0,
        "max_mb": 10.0,
        "rows_of": rows_of,
        "classes": [0, 1],
    }
    options.update(kwargs)
    return Recorder(folder, **options)


def lines(folder: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(folder.glob("*.jsonl")):
        out += [json.loads(line) for line in path.read_bytes().splitlines()]
    return out


def body(i: int) -> bytes:
    return json.dumps([{"torque_nm": 40.0 + i, "machine_type": "M"}]).encode()


def test_lines_follow_the_agreed_format(tmp_path: Path) -> None:
    rec = recorder(tmp_path / "t")
    assert rec.offer("a1", "predict", body(1), b"[1]")
    columns = json.dumps({"torque_nm": [1.5, "2"], "machine_type": ["L", None]}).encode()
    assert rec.offer("a2", "predict_proba", columns, b"[[0.2, 0.8], [0.7, 0.3]]")
    rec.close()
    first, second = lines(tmp_path / "t")
    assert set(first) == {"request_id", "time", "release", "endpoint", "rows", "outputs"}
    assert first["request_id"] == "a1" and first["release"] == "pm-1.1" and first["endpoint"] == "predict"
    assert first["time"].endswith("+00:00")
    assert first["rows"] == [{"torque_nm": 41.0, "machine_type": "M"}]
    assert first["outputs"] == {"prediction": [1], "classes": [0, 1]}
    # Columns become records, values as received; the prediction of predict_proba is the likeliest class.
    assert second["rows"] == [
        {"torque_nm": 1.5, "machine_type": "L"},
        {"torque_nm": "2", "machine_type": None},
    ]
    assert second["outputs"] == {
        "prediction": [1, 0],
        "probabilities": [[0.2, 0.8], [0.7, 0.3]],
        "classes": [0, 1],
    }
    assert rec.stats()["written"] == 2 and rec.stats()["dropped"] == 0


def test_files_rotate_and_the_folder_stays_within_max_mb(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    rec = recorder(folder, max_mb=0.05)  # 52 KB: files of 13 KB, about 90 lines each
    assert rec.file_bytes == file_size(int(0.05 * MIB), 1) == int(0.05 * MIB) // 4
    for i in range(2000):  # about 300 KB of lines
        while not rec.offer(f"r{i}", "predict", body(i), b"[0]"):
            threading.Event().wait(0.001)  # the queue is full: let the writer catch up
    rec.close()
    files = sorted(folder.glob("*.jsonl"))
    sizes = [p.stat().st_size for p in files]
    assert len(files) >= 2 and max(sizes) <= rec.file_bytes, str(rec.stats())
    assert sum(sizes) <= 0.05 * MIB
    assert rec.stats()["written"] == 2000 and rec.stats()["files_deleted"] > 0
    kept = [line["request_id"] for line in lines(folder)]
    assert kept[-1] == "r1999" and kept == [f"r{i}" for i in range(2000 - len(kept), 2000)]  # the newest


def test_pruning_keeps_another_live_writers_open_file(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    live = folder / f"{os.getpid()}-20260101T000000000000Z-000003.jsonl"  # a live process's newest file
    dead = folder / "999999999-20260101T000000000000Z-000001.jsonl"  # no such process
    for path in (live, dead):
        path.write_bytes(b"x" * 30_000)
        os.utime(path, (1, 1))  # older than anything the recorder writes
    rec = recorder(folder, max_mb=0.05, workers=2)
    for i in range(300):
        while not rec.offer(f"r{i}", "predict", body(i), b"[0]"):
            threading.Event().wait(0.001)
    rec.close()
    assert live.exists() and not dead.exists()


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_sample_rate_zero_records_nothing_and_one_records_everything(tmp_path: Path, rate: float) -> None:
    rec = recorder(tmp_path / "t", sample_rate=rate)
    draws = [rec.sampled() for _ in range(1000)]
    rec.close()
    assert draws == [bool(rate)] * 1000


def test_a_sample_rate_between_records_about_that_share(tmp_path: Path) -> None:
    rec = recorder(tmp_path / "t", sample_rate=0.25)
    share = sum(rec.sampled() for _ in range(20_000)) / 20_000
    rec.close()
    assert 0.22 < share < 0.28


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    stuck = threading.Event()

    def slow_rows(data: bytes) -> list[dict[str, Any]]:
        stuck.wait(30)  # the writer hangs on the first exchange until the test lets it go
        return rows_of(data)

    rec = recorder(tmp_path / "t", rows_of=slow_rows, queue_items=5)
    accepted = [rec.offer(f"r{i}", "predict", body(i), b"[0]") for i in range(50)]
    # The writer holds at most one batch (it may have drained the queue once), the queue five: the others are
    # dropped at once and counted.
    assert 5 <= sum(accepted) <= 10 and accepted[:5] == [True] * 5
    assert rec.stats()["dropped"] == 50 - sum(accepted)
    stuck.set()
    rec.close()
    assert rec.stats()["written"] == sum(accepted)


def test_a_byte_bound_on_the_queue_drops_large_exchanges(tmp_path: Path) -> None:
    stuck = threading.Event()
    rec = recorder(tmp_path / "t", rows_of=lambda data: stuck.wait(30) and rows_of(data), queue_bytes=1000)
    assert rec.offer("small", "predict", body(1), b"[0]")
    assert not rec.offer("large", "predict", b"[" + b" " * 2000 + b"]", b"[0]")
    stuck.set()
    rec.close()
    assert rec.stats()["dropped"] == 1


def test_writer_failures_are_counted_and_logged_once_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def picky(data: bytes) -> list[dict[str, Any]]:
        if b"bad" in data:
            raise ValueError("cannot read")
        return rows_of(data)

    rec = recorder(tmp_path / "t", rows_of=picky)
    offered = [rec.offer(f"r{i}", "predict", b'"bad"' if i % 2 else body(i), b"[0]") for i in range(10)]
    rec.close()
    assert offered == [True] * 10
    assert rec.stats()["failed"] == 5 and rec.stats()["written"] == 5
    assert len([r for r in caplog.records if "could not be written" in r.getMessage()]) == 1

    # A folder that cannot be made: every line fails, nothing raises.
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    broken = recorder(blocker / "t")
    assert broken.offer("x", "predict", body(1), b"[0]")
    broken.close()
    assert broken.stats()["failed"] == 1 and broken.stats()["written"] == 0
    assert [r for r in caplog.records if "writing traffic" in r.getMessage()]


def test_close_writes_everything_queued_and_later_offers_are_dropped(tmp_path: Path) -> None:
    rec = recorder(tmp_path / "t", queue_items=100_000)
    for i in range(3000):
        assert rec.offer(f"r{i}", "predict", body(i), b"[0]")
    rec.close()
    assert len(lines(tmp_path / "t")) == 3000
    assert not rec.offer("late", "predict", body(0), b"[0]")
    rec.close()  # idempotent


def test_a_line_larger_than_a_file_is_dropped_and_counted(tmp_path: Path) -> None:
    rec = recorder(tmp_path / "t", max_mb=0.01)  # files of 2.5 KB
    big = json.dumps([{"text": "x" * 5000}]).encode()
    rec.offer("big", "predict", big, b"[0]")
    rec.offer("small", "predict", body(1), b"[0]")
    rec.close()
    assert [line["request_id"] for line in lines(tmp_path / "t")] == ["small"]
    assert rec.stats()["dropped"] == 1


def test_request_ids_and_folders() -> None:
    assert request_id("order-17:a.b_c") == "order-17:a.b_c"
    for bad in (None, "", "two words", "x" * 129, "-leading", "inject\r\nheader", "é"):
        made = request_id(bad)
        assert len(made) == 32 and int(made, 16) >= 0
    assert request_id(None) != request_id(None)
    assert folder_name("pm-1.1") == "pm-1.1" and folder_name("kepler-m:abc/../x") == "kepler-m_abc_.._x"
    assert default_root({"KEPLER_TRAFFIC_DIR": "/srv/t", "BENTOML_HOME": "/b"}) == Path("/srv/t")
    assert default_root({"BENTOML_HOME": "/b"}) == Path("/b/kepler-traffic")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_service_settings_carry_the_recording_bounds() -> None:
    from kepler.deployment import service
    from kepler.errors import KeplerError

    arguments = {"model_tag": "kepler-r:abc", "release": "r", "sample_rate": 0.25, "max_mb": 50}
    values = service.settings(arguments, {})
    assert values["sample_rate"] == 0.25 and values["max_mb"] == 50.0 and values["traffic_dir"] == ""
    assert service.settings({"model_tag": "m:1"}, {})["sample_rate"] == 0.0  # no deploy, no recording
    changed = service.settings(arguments, {"KEPLER_SAMPLE_RATE": "1", "KEPLER_TRAFFIC_DIR": "/srv/t"})
    assert changed["sample_rate"] == 1.0 and changed["traffic_dir"] == "/srv/t"
    for variable, value, words in (
        ("KEPLER_SAMPLE_RATE", "2", "sample_rate must be from 0 to 1"),
        ("KEPLER_SAMPLE_RATE", "often", "sample_rate must be a number"),
        ("KEPLER_MAX_MB", "0", "max_mb must be above 0"),
        ("KEPLER_MAX_MB", "nan", "max_mb must be a finite number"),
    ):
        with pytest.raises(KeplerError, match=words):
            service.settings(arguments, {variable: value})
