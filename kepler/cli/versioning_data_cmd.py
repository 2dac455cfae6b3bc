"""`kepler versioning` commands for data and unified versions (filled in by the data-versioning work)."""

from __future__ import annotations
