"""One clock for every record and build: timezone-aware UTC."""

from __future__ import annotations

import datetime as dt
from typing import Literal

# A leaf (standard library only), so kepler.compilers can stamp its manifests with it.

Timespec = Literal["seconds", "milliseconds", "microseconds"]


def utc_now() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


def now(timespec: Timespec = "seconds") -> str:
    """The current UTC time as ISO 8601 text, such as ``2026-11-03T14:05:09+00:00``.

    Args:
        timespec: The smallest unit written; records use seconds, deployment entries microseconds
            (two deployments may fall within one second and must still sort apart).
    """
    return utc_now().isoformat(timespec=timespec)
