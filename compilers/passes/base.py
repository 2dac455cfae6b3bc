"""The pass registry: a pass is a function (ModelProto, PassContext) -> ModelProto, registered by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import onnx

from kepler.errors import CompileError
from kepler.targets import Registry, TargetProfile

Pass = Callable[[onnx.ModelProto, "PassContext"], onnx.ModelProto]

PASSES: Registry[Pass] = Registry("pass")


@dataclass
class PassContext:
    """What a pass may read: the target profile, the outputs to keep, and metadata to embed.

    Attributes:
        profile: The target profile being compiled for.
        keep_outputs: Graph outputs the artifact serves; others may be removed. Empty keeps all.
        metadata: String key/values to embed in the model.
    """

    profile: TargetProfile
    keep_outputs: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)


def register_pass(name: str, *, replace: bool = False) -> Callable[[Pass], Pass]:
    """Decorator that registers a pass under ``name``; a taken name raises."""

    def decorate(fn: Pass) -> Pass:
        PASSES.register(name, fn, replace=replace)
        return fn

    return decorate


def list_passes() -> list[str]:
    """Names of the registered passes."""
    return PASSES.names()


def check_pass_names(names: tuple[str, ...] | list[str], source: str) -> None:
    """Fails early, naming the profile, when a profile lists an unknown pass."""
    from kepler.errors import ProfileError

    unknown = [n for n in names if n not in PASSES]
    if unknown:
        raise ProfileError(
            f"{source}: field 'passes' names unknown pass {unknown[0]!r}; known: {', '.join(list_passes())}"
        )


def run_passes(
    model: onnx.ModelProto, names: list[str] | tuple[str, ...], context: PassContext
) -> tuple[onnx.ModelProto, list[dict[str, Any]]]:
    """Applies the named passes in order.

    Returns:
        The final model and, per pass, its name and the node count before and after.

    Raises:
        CompileError: a pass failed.
    """
    applied = []
    for name in names:
        before = len(model.graph.node)
        try:
            model = PASSES.get(name)(model, context)
        except CompileError:
            raise
        except Exception as exc:
            raise CompileError(
                f"pass {name!r} failed: {type(exc).__name__}: {exc}; remove it from the profile's passes"
            ) from exc
        applied.append({"name": name, "nodes_before": before, "nodes_after": len(model.graph.node)})
    return model, applied
