"""Reading a table file as it is (CSV or Parquet), for compiling and benchmarking a given model."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def read_table(path: str | os.PathLike[str]) -> Any:
    """Reads a CSV or Parquet file without typing its columns (``kp.data.load`` types them for training).

    Raises:
        DataError: missing, empty, unreadable or not a table.
    """
    from kepler.data.files import read_source

    return read_source(os.fspath(path))[0]


def read_table_bytes(data: bytes, file_name: str) -> Any:
    """Reads a table held as bytes (a data version's exact content), its format told by ``file_name``'s suffix.

    Raises:
        DataError: empty, unreadable or not a table (named by ``file_name``).
    """
    with tempfile.TemporaryDirectory(prefix="kepler-table-") as folder:
        path = Path(folder) / Path(file_name).name
        path.write_bytes(data)
        return read_table(path)
