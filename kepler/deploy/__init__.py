"""Deploying releases: a BentoML model and bento per release, served locally or on Cloud Run.

``kp.deploy(release, platform="local")`` packages a release in the project's BentoML store and records
the deployment (the release's history, a service node in the lineage graph); with ``port=`` it also
starts the service in the background. ``kepler.deploy.serve`` (``kepler serve``) runs it in the foreground.

This package's ``__init__`` imports nothing: ``kepler.deploy.service`` ships in serving images with only
bentoml, numpy and onnxruntime, and importing it must not pull in the versioning stack.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_EXPORTS = {
    "deploy": "kepler.deploy.local",
    "serve": "kepler.deploy.local",
    "stop": "kepler.deploy.local",
    "start": "kepler.deploy.local",
    "Deployment": "kepler.deploy.local",
    "PLATFORMS": "kepler.deploy.local",
    "package_release": "kepler.deploy.package",
    "resolve_release": "kepler.deploy.package",
    "Package": "kepler.deploy.package",
    "record_service": "kepler.deploy.records",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'kepler.deploy' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _CallableModule(types.ModuleType):
    """``kp.deploy`` names the function :func:`kepler.deploy.local.deploy`, but once this package is imported
    ``kepler.deploy`` is the package itself; calling the package calls the function, so both work."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return __getattr__("deploy")(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
