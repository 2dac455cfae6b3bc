"""Runtimes: onnxruntime sessions from a target profile, the Predictor and the benchmark harness.

Imports only onnxruntime and numpy (and pandas when handed a DataFrame): this is what ships in services.
"""

from __future__ import annotations

from kepler.runtimes.artifact import Artifact, read_artifact, sha256_file
from kepler.runtimes.benchmark import benchmark, machine
from kepler.runtimes.manifest import Manifest, profile_from_manifest, read_manifest
from kepler.runtimes.predictor import Predictor, load
from kepler.runtimes.session import create_session, session_options, session_settings

__all__ = [
    "Artifact",
    "Manifest",
    "Predictor",
    "benchmark",
    "create_session",
    "load",
    "machine",
    "profile_from_manifest",
    "read_artifact",
    "read_manifest",
    "session_options",
    "session_settings",
    "sha256_file",
]
