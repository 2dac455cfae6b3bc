"""Shared fixtures for the AutoML tests: a small slice of the example sensors table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

SENSORS = Path(__file__).resolve().parents[2] / "examples" / "data" / "sensors.csv"


@pytest.fixture(scope="session")
def sensors_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,500 rows of the example table (with its rare failures), as a CSV file."""
    path = tmp_path_factory.mktemp("automl") / "sensors.csv"
    pd.read_csv(SENSORS).head(1500).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def sensors(sensors_csv: Path):
    """The slice, loaded and typed by kp.data."""
    import kepler as kp

    return kp.data.load(sensors_csv, label="failure")


# -- test families: estimators no converter knows, so every trial of theirs fails to compile -----------


def tree_class(name: str, fit_hook: Any = None) -> type:
    """A DecisionTreeClassifier subclass under ``name``: it fits like the tree, and no converter knows it."""
    from sklearn.tree import DecisionTreeClassifier

    def fit(self: Any, X: Any, y: Any, **kwargs: Any) -> Any:
        if fit_hook is not None:
            fit_hook()
        return DecisionTreeClassifier.fit(self, X, y, **kwargs)

    return type(name, (DecisionTreeClassifier,), {"fit": fit, "__module__": __name__})


def register_test_family(monkeypatch: pytest.MonkeyPatch, name: str, cls: type) -> str:
    """Registers a classification family building ``cls`` (removed after the test) and returns its name.

    It claims DecisionTreeClassifier among its estimators, so the search takes it in; its trials then
    meet the real converter registry, which knows no ``cls``.
    """
    from kepler.automl.families import CLASSIFICATION, FAMILIES, Family

    def build(params: dict[str, Any], task: str, seed: int) -> Any:
        return cls(
            max_depth=int(params["max_depth"]),
            min_samples_leaf=int(params["min_samples_leaf"]),
            random_state=seed,
        )

    family = Family(
        name, build, FAMILIES.get("decision_tree").space, (CLASSIFICATION,), ("DecisionTreeClassifier",)
    )
    monkeypatch.setitem(
        FAMILIES._entries, name, family
    )  # the registry has no removal; the test's entry goes after it
    return name


@pytest.fixture
def test_family(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``test_family(name, class_name, fit_hook=None)``: registers a family of ``class_name`` trees, whose
    fit calls ``fit_hook`` first, for this test; returns the family name."""

    def make(name: str, class_name: str, fit_hook: Any = None) -> str:
        return register_test_family(monkeypatch, name, tree_class(class_name, fit_hook))

    return make


@pytest.fixture
def unconvertible(test_family: Any) -> str:
    """A family whose every trial fails to compile: ``cannot compile ...UnconvertibleTree``."""
    return test_family("test_unconvertible", "UnconvertibleTree")
