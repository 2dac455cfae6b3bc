"""Number formatting for the build report: 3 significant digits, µs under 1 ms, always HTML-safe."""

from __future__ import annotations

import math
import numbers
from html import escape
from typing import Any

DASH = "—"
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def esc(value: Any) -> str:
    """HTML-escapes any value (``None`` becomes an empty string).

    Args:
        value: Anything; it is turned into text with ``str``.

    Returns:
        Text safe inside elements and quoted attributes.
    """
    return escape("" if value is None else str(value), quote=True)


def num(value: Any) -> float | None:
    """The value as a finite float (numpy scalars included), or ``None`` for bools, strings, NaN, None.

    Args:
        value: A value from the report.

    Returns:
        A finite float or ``None``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy scalars are Real too
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def sig(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, thousands separators and no trailing zeros.

    Integers are shown whole; very small or large floats as ``4.1×10⁻⁷``; bools as yes/no;
    missing values as a dash; anything else as escaped text.

    Args:
        value: The value to show.
        digits: Significant digits for floats.

    Returns:
        HTML-safe text.
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    number = num(value)
    if number is None:
        return DASH if value is None or isinstance(value, float) else esc(value)
    if number == 0:
        return "0"
    exponent = math.floor(math.log10(abs(number)))
    if exponent >= 7 or exponent < -3:
        mantissa, power = f"{number:.{digits - 1}e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}×10{str(int(power)).translate(_SUPERSCRIPT)}"
    text = f"{number:,.{max(0, digits - 1 - exponent)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def ms(value: Any) -> str:
    """A duration given in milliseconds: µs under 1 ms, s from 1000 ms.

    Args:
        value: Milliseconds.

    Returns:
        HTML-safe text such as ``65 µs``, ``12.3 ms`` or ``1.5 s``.
    """
    number = num(value)
    if number is None:
        return sig(value)
    if abs(number) < 1:
        return f"{sig(number * 1000)} µs"
    if abs(number) < 1000:
        return f"{sig(number)} ms"
    return f"{sig(number / 1000)} s"


def seconds(value: Any) -> str:
    """A duration given in seconds (``41.2 s``, ``5 min 3 s``).

    Args:
        value: Seconds.

    Returns:
        HTML-safe text.
    """
    number = num(value)
    if number is None or abs(number) < 60:
        return sig(value) + (" s" if number is not None else "")
    minutes, rest = divmod(round(number), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def mb(value: Any) -> str:
    """A size in MB with 3 significant digits.

    Args:
        value: Megabytes.

    Returns:
        HTML-safe text such as ``0.129 MB``.
    """
    return sig(value) + (" MB" if num(value) is not None else "")


def pct(value: Any) -> str:
    """A share (0..1) as a percentage.

    Args:
        value: A fraction.

    Returns:
        HTML-safe text such as ``4.4%``.
    """
    number = num(value)
    return sig(value) if number is None else f"{sig(number * 100)}%"


def by_unit(key: str, value: Any) -> str:
    """A budget value formatted by the unit its name ends with (``_ms``, ``_mb``).

    Args:
        key: A budget or field name such as ``latency_p99_ms``.
        value: Its value.

    Returns:
        HTML-safe text.
    """
    if key.endswith("_ms"):
        return ms(value)
    if key.endswith("_mb"):
        return mb(value)
    return sig(value)


def vector(values: Any, limit: int = 8) -> str:
    """A short list of numbers (``[0.9, 0.1]``), cut after ``limit`` items; a scalar is shown alone.

    Args:
        values: A number or a list of numbers.
        limit: How many items to show.

    Returns:
        HTML-safe text.
    """
    if not isinstance(values, (list, tuple)):
        return sig(values)
    shown = ", ".join(sig(v) for v in values[:limit])
    return f"[{shown}{', …' if len(values) > limit else ''}]"
