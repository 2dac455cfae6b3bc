"""Fixtures for the versioning tests: a real Kepler project (git + DVC + .kepler/) in a temp folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc")
KEPLER = str(BIN / "kepler")


def git(root: Path, *args: str) -> str:
    """``git -C root args``: stdout (fails the test on a non-zero exit)."""
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The venv's ``dvc`` command in ``root``."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    return subprocess.run([DVC, *args], capture_output=True, text=True, cwd=root, env=env, timeout=120)


def kepler(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The venv's ``kepler`` command in ``cwd``."""
    env = {k: v for k, v in os.environ.items() if k not in ("KEPLER_DEBUG", "MLFLOW_TRACKING_URI")}
    env["DVC_NO_ANALYTICS"] = "1"
    return subprocess.run([KEPLER, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def write_table(path: Path, rows: int = 20, seed: int = 0) -> Path:
    """A small CSV table of sensor readings."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "temperature": rng.normal(70, 5, rows).round(3),
            "pressure": rng.normal(1, 0.1, rows).round(4),
            "line": rng.choice(["north", "south"], rows),
            "failure": rng.integers(0, 2, rows),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh Kepler project in tmp_path/proj, with the working directory inside it."""
    from kepler.versioning.project import init

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    root = tmp_path / "proj"
    made = init(root)
    monkeypatch.chdir(root)
    return made


@pytest.fixture
def sensors(project: Any) -> Path:
    """data/sensors.csv inside the project (20 rows, 4 columns)."""
    return write_table(project.root / "data" / "sensors.csv")


@pytest.fixture(scope="session")
def run_git() -> Any:
    """The :func:`git` helper (test modules cannot import conftest)."""
    return git


@pytest.fixture(scope="session")
def run_dvc() -> Any:
    """The :func:`dvc` helper."""
    return dvc


@pytest.fixture(scope="session")
def run_kepler() -> Any:
    """The :func:`kepler` helper."""
    return kepler


@pytest.fixture(scope="session")
def make_table() -> Any:
    """The :func:`write_table` helper."""
    return write_table
