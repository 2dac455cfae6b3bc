"""One clock for every record: timezone-aware UTC, ISO 8601 to the second."""

from __future__ import annotations

import datetime as dt


def now() -> str:
    """The current UTC time as ISO 8601 text."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
