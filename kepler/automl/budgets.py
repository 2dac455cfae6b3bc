"""Budgets of a search: the target profile's, a preset's and a user's constraints; the stricter one wins."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kepler.errors import ProfileError
from kepler.targets import TargetProfile

if TYPE_CHECKING:
    from kepler.runtimes.manifest import Benchmark

BUDGETS = ("latency_p99_ms", "size_mb", "memory_mb")
_CONSTRAINT_KEYS = set(BUDGETS) | {"metric", "families"}


def read_constraints(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Reads a constraints JSON file: any of latency_p99_ms, size_mb, memory_mb, metric, families.

    Raises:
        ProfileError: unreadable file, unknown key or bad value, naming the file and the key.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such constraints file; pass an existing .json file") from None
    except (OSError, ValueError) as exc:
        raise ProfileError(f"{path}: not valid JSON ({exc}); fix the file") from None
    if not isinstance(data, dict):
        raise ProfileError(f'{path}: constraints must be a JSON object like {{"latency_p99_ms": 20}}')
    return check_constraints(data, str(path))


def check_constraints(data: dict[str, Any], source: str = "constraints") -> dict[str, Any]:
    """Validates a constraints mapping.

    Raises:
        ProfileError: unknown key or a budget that is not a positive number.
    """
    unknown = sorted(set(data) - _CONSTRAINT_KEYS)
    if unknown:
        raise ProfileError(
            f"{source}: '{unknown[0]}' is not a constraint (known: {', '.join(sorted(_CONSTRAINT_KEYS))})"
        )
    for key in BUDGETS:
        value = data.get(key)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ProfileError(f"{source}: '{key}' must be a number > 0, got {value!r}")
    if "families" in data and (not isinstance(data["families"], list) or not data["families"]):
        raise ProfileError(f"{source}: 'families' must be a non-empty list of family names")
    return dict(data)


def merge_budgets(
    profile: TargetProfile,
    preset_budgets: dict[str, float],
    preset_name: str | None,
    constraints: dict[str, Any] | None,
) -> dict[str, dict[str, Any]]:
    """The budgets that apply, each with its limit and the source that set it (the strictest)."""
    candidates: dict[str, list[tuple[float, str]]] = {key: [] for key in BUDGETS}
    candidates["latency_p99_ms"].append((profile.latency_p99_ms, f"target {profile.name}"))
    candidates["size_mb"].append((profile.size_mb, f"target {profile.name}"))
    candidates["memory_mb"].append((profile.memory_mb, f"target {profile.name}"))
    for key, value in preset_budgets.items():
        candidates[key].append((float(value), f"use case {preset_name}"))
    for key in BUDGETS:
        if constraints and constraints.get(key) is not None:
            candidates[key].append((float(constraints[key]), "constraints"))
    return {
        key: {"limit": min(values)[0], "source": min(values)[1]}
        for key, values in candidates.items()
        if values
    }


# What each budget is checked against on a compiled artifact (shown beside the figure in reports).
MEASURES = {
    "latency_p99_ms": "p99 latency at batch 1, on the target's threads",
    "size_mb": "size of the model file",
    "memory_mb": "peak RSS of a fresh process with kepler.runtimes and onnxruntime that loads the artifact "
    "and answers batch 1",
}


def measured(benchmark: Benchmark | None) -> dict[str, float | None]:
    """The figures the budgets are checked against, from a compiled artifact's benchmark report (None: not
    measured, so no budget holds)."""
    if benchmark is None:
        return dict.fromkeys(BUDGETS)
    batch1 = benchmark.batch(1)
    return {
        "latency_p99_ms": batch1.p99_ms if batch1 else None,
        "size_mb": benchmark.size_mb,
        "memory_mb": benchmark.process_peak_rss_mb,
    }


def check(budgets: dict[str, dict[str, Any]], measured: dict[str, float | None]) -> list[dict[str, Any]]:
    """One row per budget: limit, source, measured value, whether it holds, by how much it is over,
    and what was measured."""
    rows = []
    for key, budget in budgets.items():
        value = measured.get(key)
        ok = value is not None and value <= budget["limit"]
        rows.append(
            {
                "budget": key,
                "limit": budget["limit"],
                "source": budget["source"],
                "measured": value,
                "ok": bool(ok),
                "over_by": None if ok or value is None else value / budget["limit"],
                "measure": MEASURES.get(key),
            }
        )
    return rows


def parse_duration(text: str | float | int) -> float:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"1h"`` or ``"1h30m"``.

    Raises:
        ProfileError: not a positive duration.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        import re

        raw = str(text).strip().lower()
        parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", raw)
        if not raw or parts is None or not any(parts.groups()):
            raise ProfileError(f"time budget {text!r} is not a duration; use e.g. 90s, 5m or 1h")
        hours, minutes, secs = (float(g) if g else 0.0 for g in parts.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if not math.isfinite(seconds) or seconds <= 0:
        raise ProfileError(f"time budget {text!r} must be more than 0 seconds")
    return seconds
