"""Values as messages and reports show them: numpy scalars as the plain Python values they hold."""

from __future__ import annotations

from typing import Any

import numpy as np


def plain(value: Any) -> Any:
    """The Python scalar a numpy scalar holds (``np.int64(0)`` -> ``0``); any other value as it is."""
    return value.item() if isinstance(value, np.generic) else value


def shown(value: Any, limit: int = 40) -> str:
    """A value for a one-line message: the repr of its plain form (``0``, ``'high'``), cut to ``limit`` characters."""
    text = repr(plain(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"
