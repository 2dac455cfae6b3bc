"""Measuring a trial's candidate as it would ship: converted to ONNX and timed in onnxruntime under the profile."""

from __future__ import annotations

import math
from typing import Any

from kepler.targets import TargetProfile

TRIAL_TIMING: dict[str, Any] = {"min_iters": 200, "min_time_s": 0.05, "max_time_s": 0.3, "warmup_s": 0.02}


def measure_compiled(model: Any, probe: Any, profile: TargetProfile) -> dict[str, Any]:
    """Converts a fitted Pipeline and measures the graph that would ship.

    Args:
        model: The fitted candidate.
        probe: A few rows of the table (DataFrame) to convert and time on.
        profile: The target profile: its threads and optimization level are used.

    Returns:
        ``p99_ms`` and ``p50_ms`` at batch 1, ``size_mb`` of the serialized graph, and
        ``error`` (None, or why the candidate cannot be compiled; its figures are then infinite).
    """
    from kepler.compilers.convert import to_onnx
    from kepler.compilers.inspection import inspect_model
    from kepler.compilers.schema import infer_input_schema
    from kepler.errors import KeplerError
    from kepler.runtimes.benchmark import time_calls
    from kepler.runtimes.inputs import FeedBuilder
    from kepler.runtimes.session import create_session

    try:
        info = inspect_model(model)
        schema, frame = infer_input_schema(info, probe)
        graph, outputs = to_onnx(info, schema, frame)
    except KeplerError as exc:
        return _failed(str(exc))
    except Exception as exc:
        return _failed(f"converting {type(model).__name__} failed: {type(exc).__name__}: {_first_line(exc)}")
    payload = graph.SerializeToString()
    try:
        session = create_session(payload, profile)
        feed = FeedBuilder(schema).feed(frame.head(1))
        names = [outputs.probabilities or outputs.prediction or outputs.scores or outputs.outputs[0]]
        run = session.run
        timing = time_calls(lambda: run(names, feed), **TRIAL_TIMING)
    except Exception as exc:
        return _failed(
            f"onnxruntime could not run the converted candidate: {type(exc).__name__}: {_first_line(exc)}"
        )
    return {
        "p99_ms": timing["p99_ms"],
        "p50_ms": timing["p50_ms"],
        "size_mb": len(payload) / 2**20,
        "error": None,
    }


def _failed(reason: str) -> dict[str, Any]:
    return {"p99_ms": math.inf, "p50_ms": math.inf, "size_mb": math.inf, "error": reason}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""
