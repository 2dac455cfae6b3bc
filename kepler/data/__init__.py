"""Data loading: tables from files, DataFrames or Splunk, typed and checked for training."""

from __future__ import annotations

from kepler.data.dataset import ColumnInfo, Dataset
from kepler.data.load import load
from kepler.data.splunk import from_splunk
from kepler.data.tables import read_table

__all__ = ["ColumnInfo", "Dataset", "from_splunk", "load", "read_table"]
