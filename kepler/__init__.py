"""Kepler: compile classic ML models to verified ONNX artifacts for edge and cloud targets.

``import kepler as kp`` is cheap: every name below is imported on first use.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# ORT_DISABLE_TELEMETRY: onnxruntime 1.32 starts its 1DS telemetry when imported (an event store under
# ~/.cache/Microsoft and a .ses file in the temp folder) unless this is set first; DO_NOT_TRACK does not stop it.
for _variable in (
    "MLFLOW_DISABLE_TELEMETRY",
    "BENTOML_DO_NOT_TRACK",
    "DVC_NO_ANALYTICS",
    "DO_NOT_TRACK",
    "ORT_DISABLE_TELEMETRY",
):
    os.environ.setdefault(_variable, "1")


def _source_root() -> str | None:
    """The repository root when this file runs from a source tree, else None.

    pyproject.toml installs the top-level folders ``compilers/``, ``runtimes/`` and ``targets/`` as
    ``kepler.compilers`` and so on. Python started in the repository root imports this folder, not
    the installed wheel, and would find no ``kepler.compilers`` here: a source tree is recognised by
    those folders beside ``kepler/`` together with pyproject.toml (an installed wheel has them inside).
    """
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    if os.path.isdir(os.path.join(here, "compilers")) or not os.path.isfile(
        os.path.join(root, "pyproject.toml")
    ):
        return None
    if all(
        os.path.isfile(os.path.join(root, name, "__init__.py"))
        for name in ("compilers", "runtimes", "targets")
    ):
        return root
    return None


_root = _source_root()
if _root is not None and _root not in __path__:
    # Searched after this folder, so kepler.compilers resolves to <root>/compilers exactly as
    # pyproject.toml's package-dir maps it; kepler's own subpackages still come from kepler/.
    __path__.append(_root)
del _root

try:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version

    __version__ = _version("kepler-ml")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"

__all__ = [
    "KeplerError",
    "Project",
    "__version__",
    "automl",
    "bench",
    "build",
    "compile",
    "compilers",
    "data",
    "errors",
    "init",
    "load_model",
    "monitoring",
    "reproduce",
    "runtimes",
    "score",
    "supported",
    "targets",
    "versioning",
]

_LAZY = {
    "compile": ("kepler.compilers", "compile"),
    "supported": ("kepler.compilers", "supported"),
    "load_model": ("kepler.compilers", "load_model"),
    "init": ("kepler.versioning.project", "init"),
    "Project": ("kepler.versioning.project", "Project"),
    "build": ("kepler.builds", "build"),
    "bench": ("kepler.api", "bench"),
    "deploy": ("kepler.deployment.deployments", "deploy"),
    "score": ("kepler.scoring.api", "score"),
    "KeplerError": ("kepler.errors", "KeplerError"),
}
_SUBMODULES = {
    "compilers",
    "runtimes",
    "targets",
    "errors",
    "api",
    "data",
    "automl",
    "versioning",
    "reproduce",
    "monitoring",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"kepler.{name}")
    else:
        raise AttributeError(f"module 'kepler' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
