"""Fixtures of the scoring tests: one compiled artifact per session, and the helpers of artifacts.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def _helpers() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "kepler_tests_scoring_artifacts", Path(__file__).with_name("artifacts.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HELPERS = _helpers()


@pytest.fixture(scope="session")
def scoring() -> ModuleType:
    """The helpers of artifacts.py (table, reference)."""
    return HELPERS


@pytest.fixture(scope="session")
def scored_artifact(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A compiled three-class artifact (see artifacts.compile_artifact)."""
    return HELPERS.compile_artifact(tmp_path_factory.mktemp("scoring") / "forest")
