"""The model and tables the scoring tests score: a pipeline over numeric columns with gaps and one categorical
column, compiled once; tables with an id column, as CSV and Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

LINES = ["north", "south", "east"]
NUMERIC = ["temp [C]", "pressure", "vibration", "rpm"]


def table(rows: int, seed: int = 3) -> pd.DataFrame:
    """Sensor rows with an ``id`` and a ``timestamp`` (not model columns) and some missing values."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "timestamp": pd.date_range("2026-01-01", periods=rows, freq="s").astype(str),
            "temp [C]": rng.normal(70.0, 6.0, rows),
            "pressure": rng.normal(1.0, 0.12, rows),
            "vibration": rng.gamma(2.0, 1.1, rows),
            "rpm": rng.integers(900, 1600, rows).astype(np.float64),
            "line": rng.choice(LINES, rows),
        }
    )
    frame.loc[rng.random(rows) < 0.08, "temp [C]"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "vibration"] = np.nan
    return frame


class Scored(NamedTuple):
    """A compiled artifact and the table it was fit on."""

    artifact: Path
    frame: pd.DataFrame


def compile_artifact(folder: Path) -> Scored:
    """Fits a small random forest pipeline (three classes) and compiles it for the edge profile into ``folder``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    import kepler as kp

    frame = table(1200, seed=1)
    risk = (
        0.2 * (frame["temp [C]"].fillna(70) - 70)
        + (frame["vibration"].fillna(2) - 2)
        + (frame["line"] == "south")
    )
    label = np.digitize(risk, [-0.5, 1.0]).astype(np.int64)
    columns = ColumnTransformer(
        [
            ("num", SimpleImputer(strategy="median"), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["line"]),
        ]
    )
    model = Pipeline(
        [("columns", columns), ("forest", RandomForestClassifier(12, max_depth=6, random_state=0))]
    )
    model.fit(frame[[*NUMERIC, "line"]], label)
    kp.compile(
        model, sample=frame[[*NUMERIC, "line"]].head(300), target="edge", benchmark=False, output=folder
    )
    return Scored(folder, frame)


def reference(artifact: Path, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The artifact's own Predictor's labels and probabilities for ``frame``."""
    from kepler.runtimes import load

    predictor = load(artifact, unknown_columns="ignore")
    return predictor.predict(frame), predictor.predict_proba(frame)
