"""Fixtures of the scale-out tests: real engines started by the tests (servers.py: PostgreSQL, moto's S3,
`mlflow server`). Test modules cannot import conftest (pytest's importlib mode): they get these as fixtures."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _load(name: str) -> object:
    """A helper module of this folder, loaded once by path (the folder is not a package)."""
    qualified = f"kepler_tests_scale_{name}"
    if qualified not in sys.modules:
        spec = importlib.util.spec_from_file_location(qualified, Path(__file__).with_name(f"{name}.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module
        spec.loader.exec_module(module)
    return sys.modules[qualified]


servers = _load("servers")
aws_credentials = servers.aws_credentials  # type: ignore[attr-defined]
postgres = servers.postgres  # type: ignore[attr-defined]
s3_server = servers.s3_server  # type: ignore[attr-defined]
services = servers.services  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def servers_module() -> object:
    """servers.py itself (its helpers: ``s3_keys``, ``start_s3``, ``start_mlflow``, ``AWS_ENV``...)."""
    return servers


spark_session = _load("spark").spark_session  # type: ignore[attr-defined]  # helper 12F's local[2] Spark
