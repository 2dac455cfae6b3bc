"""Running an artifact's compiled tree kernel (a shared library loaded with ctypes) as a session would.

A :class:`CompiledTrees` answers ``run(output_names, feed)`` exactly as the artifact's onnxruntime session
does: the graph's preprocessing, when it has any, runs in onnxruntime (the artifact's ``prefix`` graph),
the trees run in the library, and the library's raw scores are finished here the way ONNX's
TreeEnsemble operators finish them (base values, the binary case, the post transform, the label).

A library that cannot run on this machine (another architecture, a CPU without the instructions it was
built for, a file the loader refuses) raises :class:`BackendUnavailable`; the Predictor then serves with
onnxruntime and says why.
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kepler.errors import BackendUnavailable, KeplerError

__all__ = ["ABI_VERSION", "BackendUnavailable", "CompiledTrees", "cpu_flags", "finish_scores"]

ABI_VERSION = 1
_DOUBLE_P = ctypes.POINTER(ctypes.c_double)
_INPUT_TYPES = {32: np.float32, 64: np.float64}


def cpu_flags() -> set[str]:
    """The CPU feature flags of this machine as Linux names them (empty where /proc/cpuinfo is not there)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def machine_problem(machine: str, needed: Sequence[str]) -> str | None:
    """Why a library built for ``machine`` needing CPU flags ``needed`` cannot run here (None: it can)."""
    here = platform.machine().lower()
    if here.replace("amd64", "x86_64") != machine.replace("amd64", "x86_64"):
        return f"it was built for {machine} and this machine is {here}"
    missing = sorted(set(needed) - cpu_flags()) if needed else []
    if missing:
        return f"this CPU lacks {', '.join(missing)}"
    return None


# ELF e_machine codes of the architectures a kernel is built for (the loader's own message for a library of
# another architecture reads as if the file were missing).
_ELF_MACHINES = {62: "x86_64", 183: "aarch64", 3: "i386", 40: "arm", 243: "riscv64", 21: "ppc64"}


def library_machine(path: Path) -> str | None:
    """The architecture an ELF shared library is built for (None: not ELF, or an architecture not listed)."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(20)
    except OSError:
        return None
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    code = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return _ELF_MACHINES.get(code)


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max(axis=1, keepdims=True))
    result: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return result


def finish_scores(scores: np.ndarray, finish: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The ensemble's outputs from the kernel's raw scores, as ONNX's TreeEnsemble operators compute them.

    Args:
        scores: float64 (rows, outputs): the summed (or averaged) leaf weights.
        finish: The backend record's ``finish`` (:meth:`kepler.compilers.backends.tree_tables.TreeTables.finish`).

    Returns:
        Output name -> array: (label, probabilities) for a classifier, (values,) for a regressor.
    """
    rows = scores.shape[0]
    base = np.asarray(finish.get("base_values") or [], dtype=np.float64)
    transform = finish["post_transform"]
    names = list(finish["outputs"])
    if finish["op"] == "TreeEnsembleRegressor":
        values = scores + base.reshape(1, -1) if base.size else scores
        if transform == "LOGISTIC":
            values = 1.0 / (1.0 + np.exp(-values))
        elif transform == "SOFTMAX":
            values = _softmax(values)
        return {names[0]: values.astype(np.float32)}
    classes = list(finish["classes"])
    width = len(classes)
    result = np.zeros((rows, width), dtype=np.float64)
    if base.size:
        result += base.reshape(1, -1) if base.size == width else base[0]
    result[:, : scores.shape[1]] += scores
    if finish.get("binary"):
        result[:, 1] = result[:, 0]
        result[:, 0] = 1.0 - result[:, 1] if transform == "NONE" else -result[:, 1]
    if transform == "LOGISTIC":
        result = 1.0 / (1.0 + np.exp(-result))
    elif transform == "SOFTMAX":
        result = _softmax(result)
    probabilities = result.astype(np.float32)
    codes = probabilities.argmax(axis=1)
    if classes and all(isinstance(c, int) for c in classes):
        labels = np.asarray(classes, dtype=np.int64)[codes]
    else:
        labels = np.asarray([str(c) for c in classes], dtype=object)[codes]
    return {names[0]: labels, names[1]: probabilities}


class CompiledTrees:
    """A compiled tree kernel with its prefix graph, answering like an onnxruntime session.

    Args:
        folder: The artifact folder.
        record: The manifest's record of the backend (``CompiledBackend.to_dict()``).
        profile: The target profile (threads for the kernel and the prefix session).

    Raises:
        BackendUnavailable: the library cannot run here (wrong machine, missing CPU features, a file the
            loader refuses or that answers another ABI); the message says why.
    """

    def __init__(self, folder: str | os.PathLike[str], record: Mapping[str, Any], profile: Any) -> None:
        problem = machine_problem(str(record.get("machine", "")), tuple(record.get("cpu_flags") or ()))
        if problem is not None:
            raise BackendUnavailable(f"compiled backend {record.get('name')!r} cannot run here: {problem}")
        path = Path(folder) / str(record["library"])
        built_for = library_machine(path)
        here = platform.machine().lower().replace("amd64", "x86_64").replace("arm64", "aarch64")
        if built_for is not None and built_for != here:
            raise BackendUnavailable(
                f"compiled backend {record.get('name')!r} cannot run here: its library is built for {built_for} "
                f"and this machine is {here}"
            )
        try:
            library = ctypes.CDLL(str(path))
            abi = int(library.kepler_abi())
        except (OSError, AttributeError) as exc:
            raise BackendUnavailable(
                f"compiled backend {record.get('name')!r} cannot load here: {str(exc).splitlines()[0]}"
            ) from None
        if abi != ABI_VERSION:
            raise BackendUnavailable(
                f"compiled backend {record.get('name')!r} speaks ABI {abi}, this Kepler reads {ABI_VERSION}"
            )
        self.name = str(record.get("name"))
        self.finish: dict[str, Any] = dict(record["finish"])
        dtype = _INPUT_TYPES.get(int(library.kepler_input_bits()))
        if dtype is None or np.dtype(dtype).name != self.finish.get("input_dtype"):
            raise BackendUnavailable(
                f"compiled backend {self.name!r} reads another input type than its record says; recompile"
            )
        self._dtype = dtype
        self._scores = library.kepler_scores
        self._scores.restype = ctypes.c_int32
        self._scores.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, _DOUBLE_P, ctypes.c_int32]
        self._n_outputs = int(library.kepler_n_outputs())
        self._width = int(library.kepler_n_features())
        self._threads = int(profile.resolved_threads)
        self._input = str(self.finish["input"])
        self._prefix = None
        self._prefix_inputs: list[str] = []
        if record.get("prefix"):
            from kepler.runtimes.session import create_session

            self._prefix = create_session(Path(folder) / str(record["prefix"]), profile)
            self._prefix_inputs = [i.name for i in self._prefix.get_inputs()]
        self._library = library  # keeps the library loaded as long as the session lives

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        """The kernel's raw scores (float64, rows × outputs) of the matrix the ensemble reads."""
        x = np.ascontiguousarray(matrix, dtype=self._dtype)
        if x.ndim != 2 or x.shape[1] < self._width:
            raise KeplerError(
                f"the compiled kernel reads {self._width} columns, got an array of shape {x.shape}"
            )
        out = np.empty((x.shape[0], self._n_outputs), dtype=np.float64)
        status = self._scores(
            x.ctypes.data, x.shape[0], x.shape[1], out.ctypes.data_as(_DOUBLE_P), self._threads
        )
        if status != 0:
            why = "it could not allocate its block buffers" if status == 2 else f"status {status}"
            raise KeplerError(f"the compiled kernel refused an array of shape {x.shape}: {why}")
        return out

    def run(self, output_names: Sequence[str] | None, feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Like ``onnxruntime.InferenceSession.run``: the named outputs (all when None) for ``feed``."""
        if self._prefix is not None:
            matrix = self._prefix.run([self._input], {k: feed[k] for k in self._prefix_inputs})[0]
        else:
            matrix = feed[self._input]
        outputs = finish_scores(self.scores(matrix), self.finish)
        names = list(output_names) if output_names else list(self.finish["outputs"])
        return [outputs[name] for name in names]
