"""Reading a table file as it is (CSV or Parquet), for compiling and benchmarking a given model."""

from __future__ import annotations

import os
from typing import Any

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def read_table(path: str | os.PathLike[str]) -> Any:
    """Reads a CSV or Parquet file without typing its columns (``kp.data.load`` types them for training).

    Raises:
        DataError: missing, empty, unreadable or not a table.
    """
    from kepler.data.files import read_source

    return read_source(os.fspath(path))[0]
