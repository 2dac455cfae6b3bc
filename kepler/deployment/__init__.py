"""Deploying releases: a BentoML model and bento per release, served locally or on Cloud Run.

``kp.deploy(release, platform="local")`` (:func:`kepler.deployment.deployments.deploy`) packages a release in
the project's BentoML store and records the deployment (the release's history, a service node in the lineage
graph); with ``port=`` it also starts the service in the background. ``kepler.deployment.serve``
(``kepler serve``) runs it in the foreground.

This package's ``__init__`` imports nothing: ``kepler.deployment.service`` ships in serving images with only
bentoml, numpy and onnxruntime, and importing it must not pull in the versioning stack. (The package is not
named ``deploy``: importing a submodule binds the package to that name on ``kepler``, where ``kp.deploy`` is
the function.)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "deploy": "kepler.deployment.deployments",
    "serve": "kepler.deployment.local",
    "stop": "kepler.deployment.local",
    "start": "kepler.deployment.local",
    "Deployment": "kepler.deployment.deployments",
    "PLATFORMS": "kepler.deployment.deployments",
    "package_release": "kepler.deployment.package",
    "resolve_release": "kepler.deployment.package",
    "Package": "kepler.deployment.package",
    "record_service": "kepler.deployment.records",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'kepler.deployment' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
