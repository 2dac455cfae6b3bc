"""Compiled backends beside an artifact's ONNX graph, registered by name; profiles list which they allow."""

from __future__ import annotations

from kepler.compilers.backends.build import BUILDERS, choose_backends, list_backends, register_backend
from kepler.compilers.backends.tree_tables import NotCompilable, TreeTables, read_tree_tables

__all__ = [
    "BUILDERS",
    "NotCompilable",
    "TreeTables",
    "choose_backends",
    "list_backends",
    "read_tree_tables",
    "register_backend",
]
