"""Data loading: reading tables from files with clear errors."""

from __future__ import annotations

from kepler.data.tables import read_table

__all__ = ["read_table"]
