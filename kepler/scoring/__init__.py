"""Batch scoring: a table scored with a release's or an artifact's ONNX model, streamed locally or on Spark."""

from __future__ import annotations

from kepler.lazy_exports import lazy_exports

__all__ = ["ScoreResult", "score"]

__getattr__, __dir__ = lazy_exports(__name__, {"score": "api", "ScoreResult": "api"})
