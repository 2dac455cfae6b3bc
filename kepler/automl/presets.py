"""Use-case presets (predictive maintenance, quality control, anomaly detection): declarative TOML files."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kepler.errors import ProfileError
from kepler.targets import Registry

_FIELDS = {
    "name",
    "description",
    "task",
    "metric",
    "families",
    "latency_p99_ms",
    "size_mb",
    "memory_mb",
    "precision_floor",
    "recall_target",
}


@dataclass(frozen=True)
class Preset:
    """What a use case asks of the search: metric, model families and budgets.

    Attributes:
        name: Preset name.
        description: One line for people.
        task: ``classification`` or ``regression``.
        metric: Name in :mod:`kepler.automl.metrics`.
        families: Estimator families searched (see :mod:`kepler.automl.learners`).
        latency_p99_ms: Budget at batch 1, or None.
        size_mb: Budget on the model file, or None.
        memory_mb: Budget on the session's memory, or None.
        precision_floor: For ``recall_at_precision``.
        recall_target: For ``fpr_at_recall``.
    """

    name: str
    description: str
    task: str
    metric: str
    families: tuple[str, ...]
    latency_p99_ms: float | None = None
    size_mb: float | None = None
    memory_mb: float | None = None
    precision_floor: float = 0.5
    recall_target: float = 0.8

    def budgets(self) -> dict[str, float]:
        """The budgets this preset sets."""
        return {
            k: v
            for k, v in (
                ("latency_p99_ms", self.latency_p99_ms),
                ("size_mb", self.size_mb),
                ("memory_mb", self.memory_mb),
            )
            if v is not None
        }


def _read(path: Path) -> Preset:
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{path}: unreadable preset ({exc}); fix the file") from None
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ProfileError(
            f"{path}: field '{unknown[0]}' is not a preset field (known: {', '.join(sorted(_FIELDS))})"
        )
    for key in ("name", "task", "metric", "families"):
        if key not in data:
            raise ProfileError(f"{path}: field '{key}' is missing; add it")
    for key in ("latency_p99_ms", "size_mb", "memory_mb"):
        value = data.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
        ):
            raise ProfileError(f"{path}: field '{key}' must be a number > 0, got {value!r}")
    return Preset(
        name=data["name"],
        description=data.get("description", ""),
        task=data["task"],
        metric=data["metric"],
        families=tuple(data["families"]),
        latency_p99_ms=data.get("latency_p99_ms"),
        size_mb=data.get("size_mb"),
        memory_mb=data.get("memory_mb"),
        precision_floor=float(data.get("precision_floor", 0.5)),
        recall_target=float(data.get("recall_target", 0.8)),
    )


PRESETS: Registry[Path] = Registry("use-case preset")
for _path in sorted((Path(__file__).parent / "presets").glob("*.toml")):
    PRESETS.register(_path.stem, _path)


def list_presets() -> list[str]:
    """Names of the registered presets."""
    return PRESETS.names()


def load_preset(name_or_path: str | os.PathLike[str] | Preset) -> Preset:
    """A preset by name or TOML path.

    Raises:
        ProfileError: unknown name or invalid file.
    """
    if isinstance(name_or_path, Preset):
        return name_or_path
    text = os.fspath(name_or_path)
    if text in PRESETS:
        return _read(PRESETS.get(text))
    if text.endswith(".toml") and Path(text).is_file():
        return _read(Path(text))
    raise ProfileError(
        f"unknown use case {text!r}; use one of {', '.join(list_presets())} or a preset .toml file"
    )
