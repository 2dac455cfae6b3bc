"""Target profile schema: parsing and validating a profile TOML file."""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kepler.targets.errors import ProfileError

ARTIFACT_FORMATS = ("onnx", "ort")
GRAPH_OPTIMIZATION_LEVELS = ("disabled", "basic", "extended", "all")


@dataclass(frozen=True)
class ParityTolerance:
    """How close the compiled artifact must stay to the native model.

    A row passes when ``|compiled - native| <= atol + rtol * |native|`` for every
    output value; the compile fails unless the share of rows whose label agrees
    is at least ``min_label_agreement`` and every value passes.
    """

    atol: float = 1e-4
    rtol: float = 1e-3
    min_label_agreement: float = 1.0


@dataclass(frozen=True)
class TargetProfile:
    """A deployment target: hardware, budgets, benchmark plan and compile passes."""

    name: str
    description: str
    threads: int
    memory_mb: float
    latency_p99_ms: float
    size_mb: float
    batch_sizes: tuple[int, ...]
    artifact_format: str
    passes: tuple[str, ...]
    parity: ParityTolerance = field(default_factory=ParityTolerance)
    graph_optimization: str = "all"
    allowed_estimators: tuple[str, ...] = ()
    backends: tuple[str, ...] = ("onnxruntime",)
    source: str = ""

    @property
    def resolved_threads(self) -> int:
        """The thread count to use: ``threads``, or every core when it is 0."""
        return self.threads or (os.cpu_count() or 1)

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-ready dict of every field."""
        data = asdict(self)
        data["batch_sizes"] = list(self.batch_sizes)
        data["passes"] = list(self.passes)
        data["allowed_estimators"] = list(self.allowed_estimators)
        data["backends"] = list(self.backends)
        if data["backends"] == ["onnxruntime"]:
            del data["backends"]  # the default: a record reads as it did before profiles named backends
        return data


_REQUIRED = (
    "name",
    "threads",
    "memory_mb",
    "latency_p99_ms",
    "size_mb",
    "batch_sizes",
    "artifact_format",
    "passes",
)
_OPTIONAL = ("description", "parity", "graph_optimization", "allowed_estimators", "backends")
# The backends a profile may allow (kepler.compilers.backends builds the compiled ones): the ONNX graph every
# artifact has, and a C kernel generated from a tree ensemble, built at compile time where a C compiler is.
BACKENDS = ("onnxruntime", "c-trees")
_PARITY_KEYS = ("atol", "rtol", "min_label_agreement")


def _fail(source: str, field_name: str, problem: str) -> ProfileError:
    return ProfileError(f"{source}: field '{field_name}' {problem}; fix the profile and retry")


def _number(source: str, data: dict[str, Any], key: str, *, positive: bool, prefix: str = "") -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(source, prefix + key, f"must be a number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise _fail(source, prefix + key, f"must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _string_list(source: str, data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data[key]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(source, key, f"must be a list of names, got {value!r}")
    return tuple(value)


def profile_from_dict(data: dict[str, Any], source: str) -> TargetProfile:
    """Validates a parsed profile and builds a :class:`TargetProfile`.

    Args:
        data: The parsed TOML table.
        source: Where it came from (a file path), named in every error.

    Raises:
        ProfileError: an unknown key, a missing field or a bad value, naming ``source`` and the field.
    """
    unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise _fail(source, unknown[0], f"is not a profile field (known: {', '.join(_REQUIRED + _OPTIONAL)})")
    for key in _REQUIRED:
        if key not in data:
            raise _fail(source, key, "is missing")

    name = data["name"]
    if not isinstance(name, str) or not name.strip():
        raise _fail(source, "name", "must be a non-empty string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _fail(source, "description", "must be a string")

    threads = data["threads"]
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise _fail(source, "threads", f"must be a whole number >= 0 (0 = all cores), got {threads!r}")

    batch_sizes = data["batch_sizes"]
    if (
        not isinstance(batch_sizes, list)
        or not batch_sizes
        or not all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in batch_sizes)
    ):
        raise _fail(
            source, "batch_sizes", f"must be a non-empty list of whole numbers > 0, got {batch_sizes!r}"
        )
    if 1 not in batch_sizes:
        raise _fail(source, "batch_sizes", "must include 1, where latency_p99_ms is measured")

    artifact_format = data["artifact_format"]
    if artifact_format not in ARTIFACT_FORMATS:
        raise _fail(
            source,
            "artifact_format",
            f"must be one of {', '.join(ARTIFACT_FORMATS)}, got {artifact_format!r}",
        )

    graph_optimization = data.get("graph_optimization", "all")
    if graph_optimization not in GRAPH_OPTIMIZATION_LEVELS:
        raise _fail(
            source,
            "graph_optimization",
            f"must be one of {', '.join(GRAPH_OPTIMIZATION_LEVELS)}, got {graph_optimization!r}",
        )

    parity_data = data.get("parity", {})
    if not isinstance(parity_data, dict):
        raise _fail(source, "parity", "must be a table with atol, rtol and min_label_agreement")
    bad = sorted(set(parity_data) - set(_PARITY_KEYS))
    if bad:
        raise _fail(source, f"parity.{bad[0]}", f"is not a parity field (known: {', '.join(_PARITY_KEYS)})")
    defaults = ParityTolerance()
    parity_values = {k: parity_data.get(k, getattr(defaults, k)) for k in _PARITY_KEYS}
    parity = ParityTolerance(
        atol=_number(source, parity_values, "atol", positive=False, prefix="parity."),
        rtol=_number(source, parity_values, "rtol", positive=False, prefix="parity."),
        min_label_agreement=_number(
            source, parity_values, "min_label_agreement", positive=False, prefix="parity."
        ),
    )
    if parity.min_label_agreement > 1:
        raise _fail(source, "parity.min_label_agreement", "must be between 0 and 1")

    return TargetProfile(
        name=name.strip(),
        description=description,
        threads=threads,
        memory_mb=_number(source, data, "memory_mb", positive=True),
        latency_p99_ms=_number(source, data, "latency_p99_ms", positive=True),
        size_mb=_number(source, data, "size_mb", positive=True),
        batch_sizes=tuple(sorted(set(batch_sizes))),
        artifact_format=artifact_format,
        passes=_string_list(source, data, "passes"),
        parity=parity,
        graph_optimization=graph_optimization,
        allowed_estimators=_string_list(source, data, "allowed_estimators")
        if "allowed_estimators" in data
        else (),
        backends=_backends(source, data) if "backends" in data else ("onnxruntime",),
        source=source,
    )


def _backends(source: str, data: dict[str, Any]) -> tuple[str, ...]:
    names = _string_list(source, data, "backends")
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise _fail(
            source, "backends", f"names unknown backend {unknown[0]!r} (known: {', '.join(BACKENDS)})"
        )
    if "onnxruntime" not in names:
        raise _fail(source, "backends", "must include 'onnxruntime': every artifact holds its ONNX graph")
    return tuple(dict.fromkeys(names))


def read_profile_file(path: str | os.PathLike[str]) -> TargetProfile:
    """Reads and validates a profile TOML file.

    Raises:
        ProfileError: the file is missing, is not TOML, or fails validation.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(
            f"{path}: no such profile file; pass an existing .toml file or a built-in target name"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read the profile ({exc}); check the file") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML ({exc}); fix the syntax and retry") from None
    return profile_from_dict(data, str(path))
