"""`kepler versioning` commands for releases and lineage (filled in by the releases work)."""

from __future__ import annotations
