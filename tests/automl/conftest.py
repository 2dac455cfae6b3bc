"""Shared fixtures for the AutoML tests: a small slice of the example sensors table."""

from __future__ import annotations

from pathlib import Path

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
