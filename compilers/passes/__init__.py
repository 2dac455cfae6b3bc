"""Optimization passes, each registered by name; profiles list which ones run, in order."""

from __future__ import annotations

from kepler.compilers.passes import embed_metadata, ort_optimize, prune_unused
from kepler.compilers.passes.base import (
    PASSES,
    PassContext,
    check_pass_names,
    list_passes,
    register_pass,
    run_passes,
)

__all__ = [
    "PASSES",
    "PassContext",
    "check_pass_names",
    "embed_metadata",
    "list_passes",
    "ort_optimize",
    "prune_unused",
    "register_pass",
    "run_passes",
]
