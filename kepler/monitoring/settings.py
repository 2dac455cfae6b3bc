"""The ``[monitoring]`` table of kepler.toml: traffic recording bounds and the checks' thresholds.

Standard library only: the serving process reads ``sample_rate`` and ``max_mb`` through it.

Example::

    [monitoring]
    sample_rate = 0.1          # share of requests recorded by a service (0..1)
    max_mb = 100               # recordings kept per deployment, oldest files removed first
    drift_share = 0.5          # a dataset drifts when this share of its columns drift
    performance_drop = 0.05    # a window's metric this far below the build's test metric is flagged
    window = "1h"              # performance windows

    [monitoring.thresholds]    # per drift method, over Evidently's defaults
    wasserstein = 0.15
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from kepler.errors import MonitoringError
from kepler.project_file import find_project_file

# Evidently 0.7's defaults, kept here (not in kepler.monitoring.statistics, which imports them) so that this
# module stays free of numpy and the service reads it cheaply.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks": 0.05,
    "chi2": 0.05,
    "z": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
}
P_VALUE_METHODS = frozenset({"ks", "chi2", "z"})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_KEYS = {"sample_rate", "max_mb", "drift_share", "performance_drop", "window", "thresholds"}


@dataclass(frozen=True)
class MonitoringSettings:
    """Monitoring settings, defaults filled in.

    Attributes:
        sample_rate: Share of served requests recorded, 0 (off) to 1 (all).
        max_mb: Megabytes of recordings kept per deployment; the oldest files go first.
        drift_share: Share of drifted columns at which a dataset drifts (Evidently: 0.5).
        performance_drop: Absolute drop of the metric below the build's test metric that is flagged.
        window: Length of a performance window, as text (``"1h"``).
        window_s: The same in seconds.
        thresholds: Drift threshold per method (p-value for ks/chi2/z, distance for the others).
    """

    sample_rate: float = 1.0
    max_mb: float = 100.0
    drift_share: float = 0.5
    performance_drop: float = 0.05
    window: str = "1h"
    window_s: float = 3600.0
    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))

    def threshold(self, method: str) -> float:
        """The threshold of a drift method (its default where kepler.toml sets none)."""
        return self.thresholds.get(method, DEFAULT_THRESHOLDS[method])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe settings (what a monitoring record stores)."""
        return {
            "sample_rate": self.sample_rate,
            "max_mb": self.max_mb,
            "drift_share": self.drift_share,
            "performance_drop": self.performance_drop,
            "window": self.window,
            "thresholds": dict(self.thresholds),
        }


def parse_duration(text: Any, what: str = "duration") -> float:
    """Seconds in ``"90s"``, ``"15m"``, ``"1h"``, ``"2d"`` or ``"1w"``.

    Raises:
        MonitoringError: anything else, or a duration of zero.
    """
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise MonitoringError(
            f"{what} {text!r} is not a duration; write a positive number and a unit, like 30m, 1h or 7d"
        )
    return float(match.group(1)) * _SECONDS[match.group(2)]


def load_settings(start: str | os.PathLike[str] | None = None) -> MonitoringSettings:
    """The ``[monitoring]`` settings of the nearest kepler.toml (defaults where there is none).

    Args:
        start: Folder to look from (default: the working directory), upwards as git does.

    Raises:
        MonitoringError: kepler.toml cannot be read, or a value is out of range or unknown.
    """
    path = find_project_file(start)
    if path is None:
        return MonitoringSettings()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MonitoringError(f"{path}: cannot read it ({exc}); fix the file's TOML") from None
    table = document.get("monitoring", {})
    if not isinstance(table, dict):
        raise MonitoringError(f"{path}: [monitoring] must be a table; write it as a [monitoring] section")
    return settings_from_table(table, source=str(path))


def settings_from_table(table: dict[str, Any], source: str = "[monitoring]") -> MonitoringSettings:
    """Checked settings from a ``[monitoring]`` table.

    Raises:
        MonitoringError: an unknown key, or a value out of range.
    """
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise MonitoringError(
            f"{source}: unknown [monitoring] key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}"
        )
    defaults = MonitoringSettings()
    sample_rate = _number(table, "sample_rate", defaults.sample_rate, source, low=0.0, high=1.0)
    max_mb = _number(table, "max_mb", defaults.max_mb, source, low=0.0, low_open=True)
    drift_share = _number(
        table, "drift_share", defaults.drift_share, source, low=0.0, high=1.0, low_open=True
    )
    drop = _number(table, "performance_drop", defaults.performance_drop, source, low=0.0, high=1.0)
    window = table.get("window", defaults.window)
    window_s = parse_duration(window, f"{source}: [monitoring] window")
    thresholds = dict(DEFAULT_THRESHOLDS)
    given = table.get("thresholds", {})
    if not isinstance(given, dict):
        raise MonitoringError(f"{source}: [monitoring.thresholds] must be a table of method = number")
    for method in given:
        if method not in DEFAULT_THRESHOLDS:
            raise MonitoringError(
                f"{source}: unknown drift method {method!r} in [monitoring.thresholds]; "
                f"use one of {', '.join(DEFAULT_THRESHOLDS)}"
            )
        high = 1.0 if method in P_VALUE_METHODS else None
        thresholds[method] = _number(
            given, method, 0.0, source, low=0.0, high=high, low_open=True, high_open=True
        )
    return MonitoringSettings(
        sample_rate=sample_rate,
        max_mb=max_mb,
        drift_share=drift_share,
        performance_drop=drop,
        window=str(window),
        window_s=window_s,
        thresholds=thresholds,
    )


def _number(
    table: dict[str, Any],
    key: str,
    default: float,
    source: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    value = table.get(key, default)
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lower = "" if low is None else f"{'above' if low_open else 'at least'} {low:g}"
        upper = "" if high is None else f"{'below' if high_open else 'at most'} {high:g}"
        bounds = " and ".join(part for part in (lower, upper) if part)
        raise MonitoringError(f"{source}: [monitoring] {key} = {value!r}; write a number {bounds}")
    return float(value)
