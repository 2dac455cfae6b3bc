"""The corpus of tables nobody here prepared: scikit-learn's bundled tables and generated messy ones.

The corpus test (tests/test_corpus.py) builds each table with ``kepler build --target edge``, and
benchmarks/automl_vs_flaml.py searches each one with Kepler and with plain FLAML.

Usage:
    python benchmarks/corpus.py OUTPUT_FOLDER      # writes every table as CSV and lists them
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SKLEARN_TABLES = ("breast_cancer", "wine", "iris", "digits", "diabetes")

# One kind of hostile header per generated table (issue 9, item 1).
HEADER_KINDS: dict[str, list[str]] = {
    "spaces": ["air temperature", "rotational speed", "tool wear", " padded name "],
    "brackets": ["Air temperature [K]", "Torque [Nm]", "Tool wear (min)", "{flow}"],
    "slashes_dots": ["od280/od315_of_diluted_wines", "flow.rate", "in/out", "v1.2.3"],
    "percent": ["humidity %", "load%", "%", "100% rated"],
    "unicode": ["température", "温度", "Δp (bar)", "naïve résumé"],
    "leading_digit": ["1st stage", "2nd_stage", "3", "007"],
    "long": ["sensor reading " + "x" * 185, "sensor reading " + "y" * 185, "z" * 200, "w" * 200],
    "collisions": ["temp [C]", "temp (C)", "temp_C_", "temp C"],
}


@dataclass(frozen=True)
class Table:
    """One table of the corpus.

    Attributes:
        name: Short name (``breast_cancer``, ``headers_brackets``, ``mixed``).
        path: The CSV file.
        label: The label column.
        task: ``classification`` or ``regression``.
        dropped: Columns a build is expected to drop (ids, timestamps, empty and constant columns).
    """

    name: str
    path: Path
    label: str
    task: str
    dropped: tuple[str, ...] = ()


def sklearn_table(name: str, folder: Path) -> Table:
    """A table bundled with scikit-learn, written as it ships (its feature names and ``target``)."""
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    path = folder / f"{name}.csv"
    bunch.frame.to_csv(path, index=False)
    task = "regression" if name == "diabetes" else "classification"
    return Table(name, path, "target", task)


def header_table(kind: str, folder: Path, rows: int = 400, seed: int = 0) -> Table:
    """Four numeric sensors named with one kind of hostile header, a text column and a binary label."""
    rng = np.random.default_rng(seed)
    names = HEADER_KINDS[kind]
    values = rng.normal(0.0, 1.0, (rows, len(names)))
    values[rng.random((rows, len(names))) < 0.05] = np.nan
    frame = pd.DataFrame(values, columns=names)
    frame[f"line {kind} [name]"] = rng.choice(["north", "south", "east"], rows)
    risk = np.nan_to_num(values[:, 0]) + 0.8 * np.nan_to_num(values[:, 1]) - 0.5 * np.nan_to_num(values[:, 3])
    risk += np.where(frame[f"line {kind} [name]"] == "east", 0.7, 0.0) + rng.normal(0.0, 0.5, rows)
    label = f"failure [{kind}]"
    frame[label] = (risk > 0.6).astype(int)
    path = folder / f"headers_{kind}.csv"
    frame.to_csv(path, index=False)
    return Table(f"headers_{kind}", path, label, "classification")


def mixed_table(folder: Path, rows: int = 500, seed: int = 1) -> Table:
    """A machine log as exported: text categories, a yes/no column, a timestamp, an id, an empty and a
    constant column, numbers with gaps, and a text label; headers with units in brackets."""
    rng = np.random.default_rng(seed)
    machine_type = rng.choice(["L", "M", "H"], rows, p=[0.5, 0.3, 0.2])
    air = rng.normal(300.0, 2.0, rows)
    torque = rng.normal(40.0, 10.0, rows)
    wear = rng.integers(0, 250, rows).astype(float)
    coolant = rng.choice(["yes", "no"], rows)
    risk = (torque - 40.0) / 10.0 + (wear - 125.0) / 80.0 + np.where(machine_type == "L", 0.5, 0.0)
    risk += np.where(coolant == "no", 0.6, 0.0) + rng.normal(0.0, 0.6, rows)
    status = np.where(risk > 1.2, "failure", np.where(risk > 0.4, "warning", "ok"))
    frame = pd.DataFrame(
        {
            "UDI": [f"M{14860 + i}" for i in range(rows)],
            "Timestamp": pd.date_range("2026-01-01", periods=rows, freq="17min").strftime(
                "%Y-%m-%dT%H:%M:%S"
            ),
            "Machine type": machine_type,
            "Air temperature [K]": air,
            "Torque [Nm]": torque,
            "Tool wear [min]": wear,
            "Coolant on?": coolant,
            "Comment": np.nan,
            "Plant (site)": "Monterrey",
            "Status": status,
        }
    )
    frame.loc[rng.random(rows) < 0.06, "Torque [Nm]"] = np.nan
    frame.loc[rng.random(rows) < 0.04, "Machine type"] = np.nan
    path = folder / "mixed.csv"
    frame.to_csv(path, index=False)
    return Table(
        "mixed", path, "Status", "classification", dropped=("UDI", "Timestamp", "Comment", "Plant (site)")
    )


def write_corpus(folder: Path) -> list[Table]:
    """Writes every table of the corpus into ``folder`` and returns them, scikit-learn's first."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = [sklearn_table(name, folder) for name in SKLEARN_TABLES]
    tables += [header_table(kind, folder, seed=i) for i, kind in enumerate(HEADER_KINDS)]
    tables.append(mixed_table(folder))
    return tables


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for table in write_corpus(Path(sys.argv[1])):
        print(f"{table.name}\t{table.path}\t{table.label}\t{table.task}")
