"""Constraint-aware AutoML: FLAML searches, every candidate is compiled and timed on the target profile."""

from __future__ import annotations

from kepler.automl.presets import Preset, list_presets, load_preset
from kepler.automl.result import AutoMLResult
from kepler.automl.run import automl_pipeline, industrial_automl

__all__ = ["AutoMLResult", "Preset", "automl_pipeline", "industrial_automl", "list_presets", "load_preset"]
