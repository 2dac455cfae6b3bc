"""Reading a table (CSV or Parquet) into a DataFrame, with one clear error per kind of bad file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kepler.errors import InputSchemaError

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def read_table(path: str | os.PathLike[str]) -> Any:
    """Reads a CSV or Parquet file.

    Raises:
        InputSchemaError: missing, empty, unreadable or not a table.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputSchemaError(f"{path}: no such file; pass the path of a CSV or Parquet table")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputSchemaError(f"{path}: unknown table type {suffix or '(none)'}; use a .csv or .parquet file")
    if path.stat().st_size == 0:
        raise InputSchemaError(f"{path}: the file is empty; pass a table with a header row and data rows")
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path)
        else:
            frame = pd.read_parquet(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise InputSchemaError(f"{path}: not a readable table ({str(exc).splitlines()[0][:160]}); check the file") from None
    if frame.shape[1] == 0 or len(frame) == 0:
        raise InputSchemaError(f"{path}: the table has no data rows; pass a table with a header row and data rows")
    return frame
