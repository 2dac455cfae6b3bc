"""Building the compiled backends a profile allows, checking their parity and choosing one per batch size.

The choice is made the way the search chooses models: by measurement on this machine. Each backend that
builds and passes parity is timed at every batch size of the profile, and each batch size goes to the
fastest; the manifest records the figures and the choice (:class:`kepler.runtimes.manifest.Backends`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from kepler.compilers import parity as parity_mod
from kepler.compilers.artifact import write_json
from kepler.compilers.backends.c_source import c_source
from kepler.compilers.backends.toolchain import build_library, find_toolchain
from kepler.compilers.backends.tree_tables import NotCompilable, read_tree_tables
from kepler.compilers.converters import CLASSIFIER
from kepler.errors import KeplerError
from kepler.runtimes.artifact import MANIFEST_NAME, read_artifact, sha256_file
from kepler.runtimes.benchmark import time_calls
from kepler.runtimes.compiled_trees import BackendUnavailable
from kepler.runtimes.manifest import ONNX_BACKEND, Backends, CompiledBackend, Manifest, Parity
from kepler.runtimes.predictor import Predictor
from kepler.targets import Registry, TargetProfile

Builder = Callable[[onnx.ModelProto, Path], CompiledBackend]
BUILDERS: Registry[Builder] = Registry("backend")

LIBRARY_NAME = "trees.so"
PREFIX_NAME = "trees-prefix.onnx"


def register_backend(name: str, builder: Builder, *, replace: bool = False) -> Builder:
    """Registers a compiled backend's builder under ``name`` (a taken name raises)."""
    return BUILDERS.register(name, builder, replace=replace)


def list_backends() -> list[str]:
    """Names of the compiled backends Kepler can build (``onnxruntime`` is always there besides)."""
    return BUILDERS.names()


def build_c_trees(model: onnx.ModelProto, folder: Path) -> CompiledBackend:
    """Generates and compiles the C kernel of ``model``'s tree ensemble into ``folder``.

    Its preprocessing, when the trees do not read a graph input, is cut out as an ONNX graph of its own.

    Raises:
        NotCompilable: the graph is not one the kernel covers, or no C compiler builds it; with the reason.
    """
    tables = read_tree_tables(model)
    toolchain = find_toolchain()
    library = folder / LIBRARY_NAME
    build_library(c_source(tables), library, toolchain)
    prefix = None
    inputs = [i.name for i in model.graph.input]
    if tables.input_name not in inputs:
        prefix = folder / PREFIX_NAME
        # The extractor reads tensor types from value_info, which a converted graph may not carry.
        cut = onnx.utils.Extractor(onnx.shape_inference.infer_shapes(model)).extract_model(
            inputs, [tables.input_name]
        )
        onnx.save(cut, str(prefix))
    return CompiledBackend(
        name="c-trees",
        library=library.name,
        sha256=sha256_file(library),
        size_bytes=library.stat().st_size,
        machine=toolchain.machine,
        isa=toolchain.isa,
        cpu_flags=toolchain.cpu_flags,
        compiler=toolchain.version,
        finish=tables.finish(),
        prefix=prefix.name if prefix else None,
        prefix_sha256=sha256_file(prefix) if prefix else None,
    )


register_backend("c-trees", build_c_trees)


def _remove(folder: Path, backend: CompiledBackend) -> None:
    for name in backend.files():
        (folder / name).unlink(missing_ok=True)


def _write(folder: Path, manifest: Manifest, backends: Backends) -> Manifest:
    manifest = dataclasses.replace(manifest, backends=backends)
    write_json(folder / MANIFEST_NAME, manifest.to_dict())
    return manifest


def choose_backends(
    folder: Path,
    model: onnx.ModelProto,
    manifest: Manifest,
    profile: TargetProfile,
    frame: Any,
    native: dict[str, np.ndarray],
    role: str,
    *,
    timing_s: float = 0.05,
) -> Backends:
    """Builds the compiled backends ``profile`` allows into the artifact being built, and chooses per batch size.

    A backend that does not build (no compiler, a graph it does not cover) or fails parity is left out, and
    the record says why; the ONNX graph always serves.

    Args:
        folder: The staging artifact folder (its manifest is rewritten as backends are added).
        model: The artifact's ONNX graph.
        manifest: The artifact's manifest so far (with its ONNX parity).
        profile: The target profile.
        frame: The compile sample, as the artifact reads it.
        native: The native model's outputs on ``frame`` (:func:`kepler.compilers.parity.native_outputs`).
        role: The model's role (classifier, regressor, outlier).
        timing_s: Seconds to time each backend at each batch size.

    Returns:
        The compiled backends, their figures and the choice.
    """
    compiled: list[CompiledBackend] = []
    skipped: dict[str, str] = {}
    for name in profile.backends:
        if name == ONNX_BACKEND:
            continue
        try:
            built = BUILDERS.get(name)(model, folder)
        except NotCompilable as exc:
            skipped[name] = str(exc)
            continue
        except Exception as exc:  # an optional backend never fails the compile: the ONNX graph serves
            skipped[name] = (
                f"could not be built ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            )
            continue
        _write(folder, manifest, Backends(compiled=(*compiled, built)))
        try:
            forced = Predictor(read_artifact(folder), profile, backend=name)
            outputs = parity_mod.compiled_outputs(forced, role, frame)
        except (BackendUnavailable, KeplerError) as exc:
            skipped[name] = f"built but does not run: {exc}"
            _remove(folder, built)
            continue
        report = parity_mod.compare(native, outputs, profile.parity)
        if not report["passed"]:
            skipped[name] = f"parity failed: {parity_mod.summarize(report)}"
            _remove(folder, built)
            continue
        compiled.append(dataclasses.replace(built, parity=Parity.from_dict(report)))
    plan = Backends(compiled=tuple(compiled), skipped=skipped)
    _write(folder, manifest, plan)
    if not compiled:
        return plan
    timings = measure_backends(
        folder, profile, frame, role, [ONNX_BACKEND, *(b.name for b in compiled)], timing_s
    )
    return dataclasses.replace(plan, timings_ms=timings, choice=fastest_per_batch(timings))


def measure_backends(
    folder: Path, profile: TargetProfile, frame: Any, role: str, names: list[str], timing_s: float
) -> dict[str, dict[str, float]]:
    """Median call latency (ms) of each backend at each of the profile's batch sizes, on rows of ``frame``."""
    artifact = read_artifact(folder)
    predictors = {name: Predictor(artifact, profile, backend=name) for name in names}
    timings: dict[str, dict[str, float]] = {name: {} for name in names}
    for batch in profile.batch_sizes:
        rows = frame.iloc[np.resize(np.arange(len(frame)), batch)]
        for name, predictor in predictors.items():
            data = predictor.fastest_form(rows)
            call = predictor.predict_proba if role == CLASSIFIER else predictor.predict
            figures = time_calls(
                functools.partial(call, data),
                min_iters=3,
                min_time_s=timing_s,
                max_time_s=timing_s * 4,
                warmup_s=0.0,
            )
            timings[name][str(batch)] = round(float(figures["p50_ms"]), 4)
    return timings


# A compiled backend must beat the ONNX graph by this much to serve a batch size: within timing noise the
# graph every artifact has keeps it.
MARGIN = 0.9


def fastest_per_batch(timings: dict[str, dict[str, float]]) -> tuple[tuple[int, str], ...]:
    """``(from_rows, backend)`` pairs from measured latencies: each measured batch size goes to the fastest
    backend (a compiled one only when under :data:`MARGIN` times the ONNX graph's time), and a call of ``n``
    rows follows the largest measured batch size at or below ``n``."""
    sizes = sorted({int(b) for figures in timings.values() for b in figures})
    choice: list[tuple[int, str]] = []

    def cost(name: str, size: int) -> float:
        measured = timings[name].get(str(size), float("inf"))
        return measured if name == ONNX_BACKEND else measured / MARGIN

    for size in sizes:
        best = min(timings, key=lambda name: cost(name, size))
        if not choice or choice[-1][1] != best:
            choice.append((1 if not choice else size, best))
    return tuple(choice) or ((1, ONNX_BACKEND),)
