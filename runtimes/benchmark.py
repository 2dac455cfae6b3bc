"""Benchmark harness: latency percentiles per batch size, throughput, size, load time and memory."""

from __future__ import annotations

import functools
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from kepler.errors import ArtifactError, KeplerError
from kepler.runtimes.artifact import Artifact, read_artifact
from kepler.runtimes.predictor import Predictor, load
from kepler.targets import TargetProfile

HISTOGRAM_BINS = 30  # latency histogram for reports; the slowest 0.1% fall outside it
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mb() -> float:
    """Current resident memory of this process in MiB."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * _PAGE / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB."""
    return _maxrss_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _maxrss_mb(value: int) -> float:
    return value / 2**20 if sys.platform == "darwin" else value / 1024  # bytes on macOS, KiB elsewhere


# What an edge device runs: a fresh interpreter with Kepler's runtime and onnxruntime, the artifact
# loaded, one row answered. It reads the row and the profile from stdin, so nothing is written to disk.
_EDGE_PROCESS = """
import pickle, resource, sys
job = pickle.load(sys.stdin.buffer)
from kepler.runtimes.predictor import Predictor
from kepler.runtimes.artifact import read_artifact
from kepler.targets import profile_from_dict
predictor = Predictor(read_artifact(job["artifact"]), profile_from_dict(job["profile"], job["source"]))
answer = predictor.predict_proba if predictor.task == "classifier" else predictor.predict
answer(job["row"])
try:  # VmHWM: the peak of this address space; ru_maxrss keeps the forked parent's figure across exec on Linux
    with open("/proc/self/status") as status:
        print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")))
except (OSError, StopIteration):
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def process_peak_rss_mb(
    artifact: str | os.PathLike[str] | Artifact, profile: TargetProfile, row: Any
) -> float:
    """Peak resident memory, in MiB, of a fresh Python process that imports only Kepler's runtime and
    onnxruntime, loads the artifact on the profile and answers one row: what an edge process needs.

    Args:
        artifact: The artifact folder.
        profile: The target profile (its threads and optimization level shape the session).
        row: One row in a form :class:`Predictor` reads without pandas (see ``Predictor.fastest_form``).

    Raises:
        KeplerError: the fresh process could not load the artifact or answer the row.
    """
    import pickle
    import subprocess

    path = artifact.path if isinstance(artifact, Artifact) else os.fspath(artifact)
    fields = {k: v for k, v in profile.to_dict().items() if k != "source"}
    job = pickle.dumps(
        {"artifact": str(path), "profile": fields, "source": profile.source or profile.name, "row": row}
    )
    # -P: the working directory (perhaps a source tree) is not put on sys.path; the installed Kepler is used.
    done = subprocess.run(
        [sys.executable, "-P", "-c", _EDGE_PROCESS], input=job, capture_output=True, timeout=300
    )
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise KeplerError(
            f"a fresh runtime process could not load {path} and answer one row "
            f"({lines[-1] if lines else f'exit status {done.returncode}'}); "
            f"check that `python -c 'import kepler.runtimes'` works in this environment"
        )
    return _maxrss_mb(int(done.stdout.decode().strip().splitlines()[-1]))


def cpu_name() -> str:
    """The CPU model name, as the OS reports it."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    # Not platform.processor(): on Linux it runs `uname -p` in a subprocess.
    return platform.machine()


def machine() -> dict[str, Any]:
    """A description of the machine that produced a measurement."""
    # Not platform.platform(): it reads the processor field, which runs `uname -p` in a subprocess.
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "platform": f"{platform.system()}-{platform.release()}-{platform.machine()}",
        "python": platform.python_version(),
    }


def time_calls(
    call: Callable[[], Any],
    *,
    min_iters: int = 50,
    min_time_s: float = 0.5,
    max_time_s: float = 3.0,
    warmup_s: float = 0.1,
) -> dict[str, Any]:
    """Times ``call`` repeatedly after a warm-up and returns latency percentiles in ms."""
    deadline = time.perf_counter() + warmup_s
    calls = 0
    while calls < 3 or time.perf_counter() < deadline:
        call()
        calls += 1
    samples: list[int] = []
    start = time.perf_counter()
    clock = time.perf_counter_ns
    while True:
        t0 = clock()
        call()
        samples.append(clock() - t0)
        elapsed = time.perf_counter() - start
        if (len(samples) >= min_iters and elapsed >= min_time_s) or elapsed >= max_time_s:
            break
    ms = np.asarray(samples, dtype=np.float64) / 1e6
    counts, edges = np.histogram(ms, bins=HISTOGRAM_BINS, range=(ms.min(), np.percentile(ms, 99.9)))
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "iterations": len(samples),
        "histogram": {"edges_ms": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }


def _tile_columns(columns: Mapping[str, Any], rows: int) -> dict[str, np.ndarray]:
    return {name: np.resize(np.asarray(values), rows) for name, values in columns.items()}


def _tile(data: Any, rows: int) -> Any:
    if type(data).__name__ == "DataFrame":
        index = np.resize(np.arange(len(data)), rows)
        return data.iloc[index].reset_index(drop=True)
    if isinstance(data, Mapping):
        return _tile_columns(data, rows)
    array = np.asarray(data)
    return array[np.resize(np.arange(len(array)), rows)]


def limit_native_threads(model: Any, threads: int) -> dict[str, Any]:
    """Sets every ``n_jobs``/``nthread`` parameter of a native model to the profile's thread count,
    so native and compiled are timed on the same cores.

    Returns:
        The previous values, for ``model.set_params(**previous)``.
    """
    if not hasattr(model, "get_params"):
        return {}
    params = model.get_params(deep=True)
    previous = {k: v for k, v in params.items() if k.split("__")[-1] in ("n_jobs", "nthread")}
    if previous:
        model.set_params(**{k: threads for k in previous})
    return previous


def _native_call(model: Any, batch: Any, task: str) -> Callable[[], Any]:
    if task == "classifier" and hasattr(model, "predict_proba"):
        return lambda: model.predict_proba(batch)
    return lambda: model.predict(batch)


def benchmark(
    artifact: str | os.PathLike[str] | Artifact,
    target: str | os.PathLike[str] | TargetProfile | None = None,
    *,
    data: Any = None,
    native: Any = None,
    native_data: Any = None,
    batch_sizes: tuple[int, ...] | None = None,
    min_time_s: float = 0.5,
    max_time_s: float = 3.0,
    process_memory: bool = True,
) -> dict[str, Any]:
    """Measures a compiled artifact on a target profile, optionally against the native model.

    Args:
        artifact: The artifact folder.
        target: The profile; by default the one the artifact was compiled for.
        data: Rows to time on (DataFrame, dict of columns or array), tiled to each batch size;
            by default the probe rows stored in the artifact.
        native: The native model, timed in the same run on the same rows.
        native_data: The rows in the form the native model takes, if not ``data`` itself.
        batch_sizes: Overrides the profile's batch sizes.
        min_time_s: Least time to spend timing each batch size.
        max_time_s: Most time to spend timing each batch size.
        process_memory: Measure ``process_peak_rss_mb`` (about half a second: a fresh process
            loads the artifact and answers one row); the ``memory_mb`` budget is checked against it.

    Returns:
        A JSON-ready report: per-batch percentiles, throughput at the largest batch, size,
        session load time, memory (``process_peak_rss_mb``: a fresh runtime process at batch 1;
        ``session_rss_mb`` and ``peak_rss_mb``: this process), budget checks and, with
        ``native``, ratios.
    """
    opened = read_artifact(artifact)
    rss_before = rss_mb()
    load_times = []
    predictor: Predictor | None = None
    for _ in range(3):
        t0 = time.perf_counter()
        predictor = load(opened, target)
        load_times.append((time.perf_counter() - t0) * 1e3)
    assert predictor is not None
    profile = predictor.profile
    if data is None:
        data = opened.probe()
        if data is None:
            raise ArtifactError(f"{opened.path}: no probe rows stored; pass data= to benchmark it")
    previous_threads = limit_native_threads(native, profile.resolved_threads) if native is not None else {}
    try:
        return _measure(
            opened,
            predictor,
            profile,
            data,
            native,
            native_data,
            batch_sizes,
            min_time_s,
            max_time_s,
            load_times,
            rss_before,
            process_memory,
        )
    finally:
        if previous_threads:
            native.set_params(**previous_threads)


def _measure(
    opened: Artifact,
    predictor: Predictor,
    profile: TargetProfile,
    data: Any,
    native: Any,
    native_data: Any,
    batch_sizes: tuple[int, ...] | None,
    min_time_s: float,
    max_time_s: float,
    load_times: list[float],
    rss_before: float,
    process_memory: bool,
) -> dict[str, Any]:
    if native is not None and native_data is None:
        native_data = data if not isinstance(data, Mapping) else _to_frame(data)
    sizes = tuple(sorted(set(batch_sizes or profile.batch_sizes)))
    method = predictor.predict_proba if predictor.task == "classifier" else predictor.predict
    rows = predictor.fastest_form(data)

    batches = []
    native_batches = []
    for size in sizes:
        batch = _tile(rows, size)
        entry = {
            "batch": size,
            **time_calls(functools.partial(method, batch), min_time_s=min_time_s, max_time_s=max_time_s),
        }
        entry["throughput_rows_s"] = size / (entry["p50_ms"] / 1e3)
        batches.append(entry)
        if native is not None:
            native_batch = _tile(native_data, size)
            native_entry = {
                "batch": size,
                **time_calls(
                    _native_call(native, native_batch, predictor.task),
                    min_time_s=min_time_s,
                    max_time_s=max_time_s,
                ),
            }
            native_entry["throughput_rows_s"] = size / (native_entry["p50_ms"] / 1e3)
            native_batches.append(native_entry)

    size_mb = opened.size_bytes / 2**20
    session_rss = max(0.0, rss_mb() - rss_before)
    batch1 = next(b for b in batches if b["batch"] == 1) if 1 in sizes else batches[0]
    process_rss = process_peak_rss_mb(opened, profile, _tile(rows, 1)) if process_memory else None
    report: dict[str, Any] = {
        "target": profile.name,
        "threads": profile.resolved_threads,
        "artifact": str(opened.path),
        "model_file": opened.model_path.name,
        "size_mb": size_mb,
        "load_ms": float(np.median(load_times)),
        "batches": batches,
        "throughput_rows_s": batches[-1]["throughput_rows_s"],
        "throughput_batch": batches[-1]["batch"],
        "process_peak_rss_mb": process_rss,
        "session_rss_mb": session_rss,
        "peak_rss_mb": peak_rss_mb(),
        "machine": machine(),
        "budgets": {
            "latency_p99_ms": {
                "limit": profile.latency_p99_ms,
                "measured": batch1["p99_ms"],
                "ok": batch1["p99_ms"] <= profile.latency_p99_ms,
            },
            "size_mb": {"limit": profile.size_mb, "measured": size_mb, "ok": size_mb <= profile.size_mb},
            "memory_mb": {
                "limit": profile.memory_mb,
                "measured": process_rss,
                "ok": process_rss is not None and process_rss <= profile.memory_mb,
            },
        },
    }
    if native is not None:
        native_first = native_batches[0]
        report["native"] = {
            "type": type(native).__name__,
            "batches": native_batches,
            "throughput_rows_s": native_batches[-1]["throughput_rows_s"],
        }
        report["ratios"] = {
            "p50_speedup_batch1": native_first["p50_ms"] / batches[0]["p50_ms"],
            "throughput_ratio": report["throughput_rows_s"] / report["native"]["throughput_rows_s"],
        }
    return report


def _to_frame(columns: Mapping[str, Any]) -> Any:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas ships with the compiler extras
        raise KeplerError(
            "timing the native model on stored probe rows needs pandas; pip install pandas"
        ) from None
    return pd.DataFrame({name: list(values) for name, values in columns.items()})
