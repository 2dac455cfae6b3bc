"""Traffic recording for the Kepler service: sampled requests written as JSON Lines by a background thread.

Standard library only: it ships in the bento beside :mod:`kepler.deployment.service`, which feeds it.

Where: one folder per release, ``<root>/<release>/``, with ``<root>`` the service's ``traffic_dir`` setting
(``KEPLER_TRAFFIC_DIR``) or else ``<BENTOML_HOME>/kepler-traffic``. A local deployment's ``BENTOML_HOME`` is the
project's BentoML store (``.kepler/bentoml``), so its traffic lies in ``.kepler/bentoml/kepler-traffic/<release>/``,
where :func:`kepler.monitoring.traffic.traffic_folder` finds it from the release name alone.

Files: ``<pid>-<start>-<n>.jsonl`` (``start`` the writer's start time, UTC, to the microsecond), one JSON object
per line::

    {"request_id": "...", "time": "2026-11-30T05:21:04.123456+00:00", "release": "pm-1.1",
     "endpoint": "predict" | "predict_proba", "rows": [{"col": value, ...}, ...],
     "outputs": {"prediction": [...], "probabilities": [[...], ...], "classes": [...]}}

``rows`` are the request's rows as received (numbers sent as text stay text); ``probabilities`` appear for
``predict_proba`` (whose ``prediction`` is the class of the highest probability) and ``classes`` for classifiers.

Bounds: a file is closed at ``file_bytes`` (a quarter of ``max_mb`` per worker, at most 16 MiB) and the oldest
closed files of the folder are deleted so that the closed files plus every worker's current file stay within
``max_mb``; a request whose line alone is larger than a file is dropped. Never blocking: the request path only
puts the exchange in a bounded queue (:meth:`Recorder.offer`); when the queue is full the exchange is dropped and
counted. Lines are formatted and written by one thread per process, unbuffered, so what was written survives a
crash; :meth:`Recorder.close` (the service's shutdown hook, on SIGTERM) writes what is queued. A failure of the
writer is logged once and counted, never raised.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import random
import re
import sys
import threading
import time
import typing as t
import uuid
from datetime import UTC, datetime
from pathlib import Path

LOG = logging.getLogger("kepler.deployment.recording")
TRAFFIC_FOLDER = "kepler-traffic"  # under BENTOML_HOME
SUFFIX = ".jsonl"
MIB = 1 << 20
MAX_FILE_BYTES = 16 * MIB
MIN_FILE_BYTES = 1024
QUEUE_ITEMS = 10_000
QUEUE_BYTES = 64 * MIB  # bodies and answers waiting for the writer
LINGER_S = 0.05  # the writer's wait between draining the queue
BATCH_ITEMS = 1024  # lines formatted and written at once, at most
ENDPOINTS = ("predict", "predict_proba")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")
_FILE = re.compile(r"^(\d+)-([0-9T]+Z)-(\d+)\.jsonl$")
_STOP = object()


def request_id(sent: str | None) -> str:
    """The request id of an answer: the client's ``X-Request-Id`` when it is a sane token (1-128 letters, digits
    and ``. _ : -``, starting with a letter or digit), else a new uuid4 hex."""
    if sent and _TOKEN.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


def folder_name(release: str) -> str:
    """The folder name of a release's traffic: the name, with any character outside ``[A-Za-z0-9._@-]`` as ``_``."""
    name = _UNSAFE.sub("_", release).lstrip(".") or "_"
    return name


def default_root(environ: t.Mapping[str, str] | None = None) -> Path:
    """Where the traffic of every release lies: ``KEPLER_TRAFFIC_DIR``, else ``<BENTOML_HOME>/kepler-traffic``
    (BentoML's default home, ``~/bentoml``, when ``BENTOML_HOME`` is not set)."""
    environ = os.environ if environ is None else environ
    if environ.get("KEPLER_TRAFFIC_DIR"):
        return Path(environ["KEPLER_TRAFFIC_DIR"])
    home = environ.get("BENTOML_HOME") or os.path.join(os.path.expanduser("~"), "bentoml")
    return Path(home) / TRAFFIC_FOLDER


def file_size(max_bytes: int, workers: int) -> int:
    """The size at which a traffic file is closed: a quarter of ``max_bytes`` per worker, from 1 KiB to 16 MiB."""
    return max(MIN_FILE_BYTES, min(MAX_FILE_BYTES, max_bytes // (4 * max(1, workers))))


def records_of(table: t.Any) -> list[dict[str, t.Any]]:
    """A table read from a body (a list of records, or an object of columns) as a list of records."""
    if isinstance(table, dict):
        names = list(table)
        return [dict(zip(names, values, strict=True)) for values in zip(*table.values(), strict=True)]
    return list(table)


class Recorder:
    """Records sampled exchanges of one service process to its release's traffic folder.

    Args:
        folder: The release's traffic folder (created on the first write).
        release: The release name written in each line.
        sample_rate: Share of requests recorded, 0 to 1 (:meth:`sampled`).
        max_mb: Megabytes the folder may hold.
        rows_of: Reads a request body (bytes the service accepted) into its rows, as a list of records.
        classes: A classifier's classes, in the order of its probabilities; None for other models.
        workers: Worker processes writing to the same folder (each keeps one file open).
        queue_items: At most this many exchanges wait for the writer; more are dropped.
        queue_bytes: At most this many bytes of bodies and answers wait for the writer; more are dropped.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        release: str,
        sample_rate: float,
        max_mb: float,
        rows_of: t.Callable[[bytes], list[dict[str, t.Any]]],
        classes: t.Sequence[t.Any] | None = None,
        workers: int = 1,
        queue_items: int = QUEUE_ITEMS,
        queue_bytes: int = QUEUE_BYTES,
    ) -> None:
        self.folder = Path(folder)
        self.release = release
        self.sample_rate = float(sample_rate)
        self.max_mb = float(max_mb)
        self.max_bytes = int(max_mb * MIB)
        self.workers = max(1, int(workers))
        self.file_bytes = file_size(self.max_bytes, self.workers)
        self.rows_of = rows_of
        self.classes = list(classes) if classes is not None else None
        self.queue_bytes = queue_bytes
        self.offered = 0  # exchanges put in the queue
        self.dropped = 0  # exchanges dropped: queue full, or a line larger than a file
        self.written = 0  # lines written
        self.failed = 0  # exchanges lost to a writer failure (logged once)
        self.files_deleted = 0
        self._pending = 0  # bytes queued
        self._lock = threading.Lock()
        self._queue: queue.Queue[t.Any] = queue.Queue(maxsize=queue_items)
        self._random = random.Random()
        self._logged: set[str] = set()
        self._start = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self._pid = os.getpid()
        self._index = 0
        self._path: Path | None = None
        self._handle: t.BinaryIO | None = None
        self._size = 0
        self._closed = False
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kepler-traffic-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # ----------------------------------------------------------------------- the request path

    def sampled(self) -> bool:
        """Whether to record the next request (a coin weighted by ``sample_rate``)."""
        rate = self.sample_rate
        return rate >= 1.0 or (rate > 0.0 and self._random.random() < rate)

    def offer(self, request_id: str, endpoint: str, body: bytes, answer: bytes) -> bool:
        """Queues one exchange for the writer without waiting; False (and counted) when it was dropped.

        Never raises.
        """
        try:
            size = len(body) + len(answer)
            with self._lock:
                if self._closed or self._pending + size > self.queue_bytes:
                    self.dropped += 1
                    return False
                try:
                    self._queue.put_nowait((request_id, time.time(), endpoint, body, answer))
                except queue.Full:
                    self.dropped += 1
                    return False
                self._pending += size
                self.offered += 1
            return True
        except Exception:  # never into the request
            self._log_once("offer", "recording a request failed; later failures are counted, not logged")
            return False

    def stats(self) -> dict[str, t.Any]:
        """This process's counters: what ``/metadata`` shows under ``recording``."""
        return {
            "sample_rate": self.sample_rate,
            "max_mb": self.max_mb,
            "folder": str(self.folder),
            "queued": self._queue.qsize(),
            "recorded": self.offered,
            "written": self.written,
            "dropped": self.dropped,
            "failed": self.failed,
            "files_deleted": self.files_deleted,
        }

    def close(self, timeout: float = 10.0) -> None:
        """Writes what is queued, then stops the writer and closes its file (idempotent). Never raises."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._closing.set()
            self._queue.put(_STOP, timeout=timeout)
            self._thread.join(timeout)
        except Exception:
            self._log_once("close", "stopping the traffic writer failed")
        try:
            atexit.unregister(self.close)
        except Exception:  # pragma: no cover - atexit never fails here
            pass

    # ----------------------------------------------------------------------- the writer thread

    def _run(self) -> None:
        stop = False
        while not stop:
            batch = [self._queue.get()]
            # Lingers before draining, so that under load the thread wakes (and takes the GIL from the requests)
            # about 1/LINGER_S times a second rather than once per request; close() cuts the wait short.
            if self._queue.qsize() < BATCH_ITEMS:  # no backlog to catch up on
                self._closing.wait(LINGER_S)
            while len(batch) < BATCH_ITEMS:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            lines = []
            for item in batch:
                if item is _STOP:
                    stop = True
                    continue
                with self._lock:
                    self._pending -= len(item[3]) + len(item[4])
                try:
                    line = self._line(*item)
                except Exception:
                    self.failed += 1
                    self._log_once("format", "a recorded request could not be written as a line")
                    continue
                if len(line) > self.file_bytes:
                    with self._lock:
                        self.dropped += 1
                    self._log_once(
                        "large",
                        f"a recorded request of {len(line)} bytes is larger than a traffic file "
                        f"({self.file_bytes} bytes) and was dropped; raise [monitoring] max_mb",
                    )
                    continue
                lines.append(line)
            if lines:
                try:
                    self._write(lines)
                except Exception:
                    self.failed += len(lines)
                    self._log_once("write", f"writing traffic to {self.folder} failed")
        try:
            self._close_file()
        except Exception:
            self._log_once("write", f"closing the traffic file in {self.folder} failed")

    def _line(self, request_id: str, when: float, endpoint: str, body: bytes, answer: bytes) -> bytes:
        rows = self.rows_of(body)
        answered = json.loads(answer)
        outputs: dict[str, t.Any]
        if endpoint == "predict_proba":
            outputs = {"prediction": [self._best(p) for p in answered], "probabilities": answered}
        else:
            outputs = {"prediction": answered}
        if self.classes is not None:
            outputs["classes"] = self.classes
        record = {
            "request_id": request_id,
            "time": datetime.fromtimestamp(when, UTC).isoformat(timespec="microseconds"),
            "release": self.release,
            "endpoint": endpoint,
            "rows": rows,
            "outputs": outputs,
        }
        return json.dumps(record, separators=(",", ":")).encode() + b"\n"

    def _best(self, probabilities: list[float]) -> t.Any:
        index = max(range(len(probabilities)), key=probabilities.__getitem__)  # the first of ties, as argmax
        return self.classes[index] if self.classes is not None else index

    def _write(self, lines: list[bytes]) -> None:
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            used = (self._size if self._handle is not None else 0) + size
            if used and used + len(line) > self.file_bytes:  # this file is full: the line opens the next
                self._flush(chunk)
                chunk, size = [], 0
                self._close_file()
            chunk.append(line)
            size += len(line)
        self._flush(chunk)

    def _flush(self, chunk: list[bytes]) -> None:
        if not chunk:
            return
        if self._handle is None:
            self._open_file()
        assert self._handle is not None
        data = b"".join(chunk)
        self._handle.write(data)  # unbuffered: one write per batch, in the OS's hands at once
        self._size += len(data)
        self.written += len(chunk)

    def _open_file(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._index += 1
        self._path = self.folder / f"{self._pid}-{self._start}-{self._index:06d}{SUFFIX}"
        self._handle = open(self._path, "ab", buffering=0)
        self._size = 0
        self._prune()

    def _close_file(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            self._prune()

    def _prune(self) -> None:
        """Deletes the folder's oldest closed files until they and one open file per worker fit ``max_mb``.

        A file is open when it is the newest of a live process's writer (its pid runs); those are never deleted.
        """
        files = []
        newest: dict[tuple[str, str], int] = {}
        for path in self.folder.glob(f"*{SUFFIX}"):
            match = _FILE.match(path.name)
            try:
                stat = path.stat()
            except OSError:
                continue
            key = (match.group(1), match.group(2)) if match else ("", path.name)
            index = int(match.group(3)) if match else 0
            files.append((stat.st_mtime, path.name, stat.st_size, key, index))
            newest[key] = max(newest.get(key, 0), index)
        current = self._path.name if self._handle is not None and self._path is not None else None
        closed = []
        for mtime, name, size, key, index in files:
            if name == current:
                continue
            mine = key == (str(self._pid), self._start)  # this writer's files: all closed but `current`
            if not mine and key[0] and index == newest[key] and _alive(int(key[0])):
                continue  # another writer's open file
            closed.append((mtime, name, size))
        budget = max(0, self.max_bytes - self.workers * self.file_bytes)
        total = sum(size for _, _, size in closed)
        for _, name, size in sorted(closed):
            if total <= budget:
                break
            try:
                (self.folder / name).unlink()
                self.files_deleted += 1
            except FileNotFoundError:
                pass  # another worker deleted it
            total -= size

    def _log_once(self, what: str, message: str) -> None:
        if what in self._logged:
            return
        self._logged.add(what)
        LOG.error(message, exc_info=sys.exc_info()[0] is not None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True
