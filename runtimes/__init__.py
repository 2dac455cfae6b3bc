"""Runtimes: onnxruntime sessions from a target profile, the Predictor and the benchmark harness.

Imports only onnxruntime and numpy (and pandas when handed a DataFrame): this is what ships in services.
"""

from __future__ import annotations

from kepler.runtimes.artifact import Artifact, read_artifact, sha256_file
from kepler.runtimes.benchmark import benchmark, machine
from kepler.runtimes.predictor import Predictor, load
from kepler.runtimes.session import create_session, session_options, session_settings

__all__ = [
    "Artifact",
    "Predictor",
    "benchmark",
    "create_session",
    "load",
    "machine",
    "read_artifact",
    "session_options",
    "session_settings",
    "sha256_file",
]
