"""Model compiler: converter and pass registries, conversion to one ONNX graph, parity, the artifact."""

from __future__ import annotations

from kepler.compilers.artifact import CompiledArtifact
from kepler.compilers.compile import compile
from kepler.compilers.converters import ConverterSpec, register_converter, supported
from kepler.compilers.loading import load_model
from kepler.compilers.passes import PassContext, list_passes, register_pass

__all__ = [
    "CompiledArtifact",
    "ConverterSpec",
    "PassContext",
    "compile",
    "list_passes",
    "load_model",
    "register_converter",
    "register_pass",
    "supported",
]
