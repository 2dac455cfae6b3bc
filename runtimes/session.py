"""onnxruntime sessions configured from a target profile."""

from __future__ import annotations

import os
from typing import Any

import onnxruntime as ort

from kepler.targets import TargetProfile

_LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session_options(profile: TargetProfile) -> ort.SessionOptions:
    """Builds session options from a profile: threads, sequential execution, optimization level."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = profile.resolved_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = _LEVELS[profile.graph_optimization]
    options.log_severity_level = 3  # errors only: ORT warns on every dynamic batch otherwise
    return options


def session_settings(profile: TargetProfile) -> dict[str, Any]:
    """The session settings as plain data, for manifests and reports."""
    return {
        "intra_op_num_threads": profile.resolved_threads,
        "inter_op_num_threads": 1,
        "execution_mode": "sequential",
        "graph_optimization_level": profile.graph_optimization,
        "providers": ["CPUExecutionProvider"],
    }


def create_session(model: str | os.PathLike[str] | bytes, profile: TargetProfile) -> ort.InferenceSession:
    """Creates a CPU inference session for a model path or serialized bytes."""
    source = model if isinstance(model, bytes) else os.fspath(model)
    return ort.InferenceSession(
        source, sess_options=session_options(profile), providers=["CPUExecutionProvider"]
    )
