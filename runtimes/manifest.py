"""The artifact manifest's schema: typed records of ``manifest.json``, its version, and reading older versions.

Format 2 (written since issue 10) stores the text a reader counts as missing once per artifact
(``input_schema.missing_words``) instead of on every column; a column lists only the words it reads beyond those.
Format 1 (Kepler 0.1.0 before issue 10) is read and migrated: the words every column shares move up to the
schema. Every other field has the same shape in both formats. Format 2 gained an optional ``reference`` record
(issue 11: the reference profile file and its sha256); a manifest without it reads as before.

This module is the only code that reads the manifest by key: everything else reads attributes.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kepler.errors import ArtifactError, ProfileError
from kepler.targets import ParityTolerance, TargetProfile, profile_from_dict

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)

# Column kinds, and the graph inputs that carry them (one matrix per kind).
NUMERIC = "numeric"
CATEGORICAL = "categorical"
KINDS = (NUMERIC, CATEGORICAL)
NUMERIC_INPUT = "numeric_features"
CATEGORICAL_INPUT = "categorical_features"
# Tasks (``OutputSchema.task``), as the converter registry names model roles.
CLASSIFIER = "classifier"
REGRESSOR = "regressor"
OUTLIER = "outlier"


# --------------------------------------------------------------------------- reading JSON objects by field


def _bad(where: str, path: str, problem: str) -> ArtifactError:
    return ArtifactError(f"{where}: manifest field '{path}' {problem}; recompile the artifact")


class _Fields:
    """Typed reads of one JSON object of a manifest; every error names the file and the field."""

    def __init__(self, data: Any, where: str, path: str = "") -> None:
        if not isinstance(data, Mapping):
            raise _bad(where, path or "(top)", f"must be an object, got {type(data).__name__}")
        self.data: Mapping[str, Any] = data
        self.where = where
        self.path = path

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def value(self, key: str) -> Any:
        if key not in self.data:
            raise ArtifactError(f"{self.where}: manifest lacks {self.name(key)}; recompile the artifact")
        return self.data[key]

    def _typed(self, key: str, types: type | tuple[type, ...], what: str, *, optional: bool) -> Any:
        value = self.data.get(key) if optional else self.value(key)
        if value is None and optional:
            return None
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise _bad(self.where, self.name(key), f"must be {what}, got {value!r}")
        if not isinstance(value, types):
            raise _bad(self.where, self.name(key), f"must be {what}, got {_short(value)}")
        return value

    def text(self, key: str) -> str:
        return str(self._typed(key, str, "text", optional=False))

    def opt_text(self, key: str) -> str | None:
        value = self._typed(key, str, "text", optional=True)
        return None if value is None else str(value)

    def whole(self, key: str) -> int:
        return int(self._typed(key, int, "a whole number", optional=False))

    def opt_whole(self, key: str) -> int | None:
        value = self._typed(key, int, "a whole number", optional=True)
        return None if value is None else int(value)

    def number(self, key: str) -> float:
        return float(self._typed(key, (int, float), "a number", optional=False))

    def opt_number(self, key: str) -> float | None:
        value = self._typed(key, (int, float), "a number", optional=True)
        return None if value is None else float(value)

    def flag(self, key: str, default: bool | None = None) -> bool:
        if default is not None and key not in self.data:
            return default
        return bool(self._typed(key, bool, "true or false", optional=False))

    def texts(self, key: str, *, optional: bool = False) -> tuple[str, ...]:
        value = self._typed(key, list, "a list of text", optional=optional)
        if value is None:
            return ()
        if not all(isinstance(item, str) for item in value):
            raise _bad(self.where, self.name(key), f"must be a list of text, got {_short(value)}")
        return tuple(value)

    def values(self, key: str, *, optional: bool = False) -> tuple[Any, ...] | None:
        value = self._typed(key, list, "a list", optional=optional)
        return None if value is None else tuple(value)

    def mapping(self, key: str, *, optional: bool = False) -> dict[str, Any] | None:
        value = self._typed(key, Mapping, "an object", optional=optional)
        return None if value is None else dict(value)

    def obj(self, key: str) -> _Fields:
        return _Fields(self.value(key), self.where, self.name(key))

    def opt_obj(self, key: str) -> _Fields | None:
        return self.obj(key) if self.has(key) else None

    def objs(self, key: str) -> list[_Fields]:
        items = self._typed(key, list, "a list of objects", optional=False)
        return [_Fields(item, self.where, f"{self.name(key)}[{i}]") for i, item in enumerate(items)]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _listed(values: Iterable[Any] | None) -> list[Any] | None:
    return None if values is None else list(values)


# --------------------------------------------------------------------------- the input schema


@dataclass(frozen=True)
class Column:
    """One column of the table the model reads.

    Attributes:
        name: The column's name in the source table (any text; the graph uses generated names).
        kind: ``numeric`` or ``categorical``.
        dtype: ``float32`` or ``float64`` for numeric columns, ``string`` for categorical ones.
        categories: A categorical column's known categories (None: any text).
        allow_unknown: Whether a categorical column accepts categories it was not fit on.
        from_text: A numeric column's reading of text: ``numbers`` or ``booleans`` (None: numbers only).
        missing_as: The category a missing value stands for in a categorical column (None: no missing value).
        missing_words: Text this column reads as missing beyond the schema's ``missing_words``.
    """

    name: str
    kind: str
    dtype: str
    categories: tuple[str, ...] | None = None
    allow_unknown: bool = True
    from_text: str | None = None
    missing_as: str | None = None
    missing_words: tuple[str, ...] = ()

    @property
    def is_numeric(self) -> bool:
        """True for a numeric column."""
        return self.kind == NUMERIC

    def to_dict(self) -> dict[str, Any]:
        """The column as JSON values (keys that do not apply to its kind are left out)."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "dtype": self.dtype}
        if self.kind == CATEGORICAL:
            out["categories"] = _listed(self.categories)
            out["allow_unknown"] = self.allow_unknown
        if self.from_text is not None:
            out["from_text"] = self.from_text
        if self.missing_as is not None:
            out["missing_as"] = self.missing_as
        if self.missing_words:
            out["missing_words"] = list(self.missing_words)
        return out

    @classmethod
    def _read(cls, fields: _Fields) -> Column:
        kind = fields.text("kind")
        if kind not in KINDS:
            raise _bad(fields.where, fields.name("kind"), f"must be one of {', '.join(KINDS)}, got {kind!r}")
        categories = fields.texts("categories", optional=True) if fields.has("categories") else None
        return cls(
            name=fields.text("name"),
            kind=kind,
            dtype=fields.text("dtype"),
            categories=categories,
            allow_unknown=fields.flag("allow_unknown", default=True),
            from_text=fields.opt_text("from_text"),
            missing_as=fields.opt_text("missing_as"),
            missing_words=fields.texts("missing_words", optional=True),
        )


@dataclass(frozen=True)
class ColumnGroup:
    """One graph input: a matrix of the columns of one kind, in this order.

    Attributes:
        input: The graph input's name.
        columns: Names of the columns, in the matrix's column order.
        dtype: The matrix's float type (numeric group); None for the categorical group (text).
    """

    input: str
    columns: tuple[str, ...]
    dtype: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The group as JSON values."""
        out: dict[str, Any] = {"input": self.input, "columns": list(self.columns)}
        if self.dtype is not None:
            out["dtype"] = self.dtype
        return out

    @classmethod
    def _read(cls, fields: _Fields) -> ColumnGroup:
        return cls(
            input=fields.text("input"), columns=fields.texts("columns"), dtype=fields.opt_text("dtype")
        )


@dataclass(frozen=True)
class InputSchema:
    """What the model reads: its columns, the graph inputs they feed, and the source table's other columns.

    Attributes:
        columns: Every column the model reads, in the order it was fit on.
        numeric: The graph input of the numeric columns (None: there are none).
        categorical: The graph input of the categorical columns (None: there are none).
        by_name: Whether the model selects columns by name (a ColumnTransformer on named columns).
        estimator_family: The final estimator's family (``tree``, ``linear``...), as the converter registry says.
        converter_float: The float type the estimator's converter takes.
        ignored_columns: Columns of the source table the model does not read, accepted and ignored (ids, the label).
        missing_words: Text every column reads as missing (the training table reader's words), stored once.
    """

    columns: tuple[Column, ...]
    numeric: ColumnGroup | None = None
    categorical: ColumnGroup | None = None
    by_name: bool = False
    estimator_family: str | None = None
    converter_float: str | None = None
    ignored_columns: tuple[str, ...] = ()
    missing_words: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The model's column names, in order."""
        return tuple(column.name for column in self.columns)

    def column(self, name: str) -> Column:
        """The column called ``name``.

        Raises:
            KeyError: the model reads no such column.
        """
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def words(self, column: Column) -> frozenset[str]:
        """All the text ``column`` reads as missing: the schema's words and its own."""
        return frozenset(self.missing_words).union(column.missing_words)

    def sharing_missing_words(self) -> InputSchema:
        """The same schema with the missing words every column holds stored once, on the schema.

        What each column reads as missing (:meth:`words`) does not change: a word moves up only when every
        column lists it.
        """
        first, *others = self.columns
        shared = [w for w in first.missing_words if all(w in c.missing_words for c in others)]
        if not shared:
            return self
        words = tuple(dict.fromkeys([*self.missing_words, *shared]))
        taken = frozenset(words)
        columns = tuple(
            dataclasses.replace(c, missing_words=tuple(w for w in c.missing_words if w not in taken))
            for c in self.columns
        )
        return dataclasses.replace(self, columns=columns, missing_words=words)

    def to_dict(self) -> dict[str, Any]:
        """The schema as JSON values."""
        out: dict[str, Any] = {
            "columns": [column.to_dict() for column in self.columns],
            "by_name": self.by_name,
            "numeric": self.numeric.to_dict() if self.numeric else None,
            "categorical": self.categorical.to_dict() if self.categorical else None,
        }
        if self.estimator_family is not None:
            out["estimator_family"] = self.estimator_family
        if self.converter_float is not None:
            out["converter_float"] = self.converter_float
        if self.ignored_columns:
            out["ignored_columns"] = list(self.ignored_columns)
        if self.missing_words:
            out["missing_words"] = list(self.missing_words)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "input schema") -> InputSchema:
        """Reads a format-2 input schema (the manifest's ``input_schema``).

        Raises:
            ArtifactError: a missing field or a value of the wrong type, naming it.
        """
        return cls._read(_Fields(data, where))

    @classmethod
    def _read(cls, fields: _Fields) -> InputSchema:
        numeric = fields.opt_obj("numeric")
        categorical = fields.opt_obj("categorical")
        columns = tuple(Column._read(item) for item in fields.objs("columns"))
        if not columns:
            raise _bad(fields.where, fields.name("columns"), "must list at least one column")
        return cls(
            columns=columns,
            numeric=ColumnGroup._read(numeric) if numeric else None,
            categorical=ColumnGroup._read(categorical) if categorical else None,
            by_name=fields.flag("by_name", default=False),
            estimator_family=fields.opt_text("estimator_family"),
            converter_float=fields.opt_text("converter_float"),
            ignored_columns=fields.texts("ignored_columns", optional=True),
            missing_words=fields.texts("missing_words", optional=True),
        )


# --------------------------------------------------------------------------- the output schema


@dataclass(frozen=True)
class OutputSchema:
    """What the graph answers.

    Attributes:
        task: ``classifier``, ``regressor`` or ``outlier``.
        outputs: The graph's output names, in order.
        classes: A classifier's classes, in the order of its probability columns (None otherwise).
        label: The output of labels (classifiers, outlier detectors).
        probabilities: The output of class probabilities (classifiers).
        prediction: The output of values (regressors).
        scores: The output of anomaly scores (outlier detectors that have them).
        labels_restored: Whether the graph maps label codes back to the labels the model was fit for.
    """

    task: str
    outputs: tuple[str, ...]
    classes: tuple[Any, ...] | None = None
    label: str | None = None
    probabilities: str | None = None
    prediction: str | None = None
    scores: str | None = None
    labels_restored: bool = False

    @property
    def answer(self) -> str:
        """The output ``predict`` reads: labels, or values for regressors."""
        name = self.label or self.prediction
        return name if name is not None else self.outputs[0]

    @property
    def is_classifier(self) -> bool:
        """True for a classifier (it answers class probabilities)."""
        return self.task == CLASSIFIER

    @property
    def named(self) -> tuple[str, ...]:
        """The outputs the schema names (labels, probabilities, values, scores), in that order."""
        return tuple(n for n in (self.label, self.probabilities, self.prediction, self.scores) if n)

    def to_dict(self) -> dict[str, Any]:
        """The schema as JSON values (outputs the task does not have are left out)."""
        out: dict[str, Any] = {
            "task": self.task,
            "classes": _listed(self.classes),
            "outputs": list(self.outputs),
        }
        for key, value in (
            ("label", self.label),
            ("probabilities", self.probabilities),
            ("prediction", self.prediction),
            ("scores", self.scores),
        ):
            if value is not None:
                out[key] = value
        if self.labels_restored:
            out["labels_restored"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "output schema") -> OutputSchema:
        """Reads the manifest's ``output_schema``.

        Raises:
            ArtifactError: a missing field or a value of the wrong type, naming it.
        """
        return cls._read(_Fields(data, where))

    @classmethod
    def _read(cls, fields: _Fields) -> OutputSchema:
        return cls(
            task=fields.text("task"),
            outputs=fields.texts("outputs"),
            classes=fields.values("classes", optional=True),
            label=fields.opt_text("label"),
            probabilities=fields.opt_text("probabilities"),
            prediction=fields.opt_text("prediction"),
            scores=fields.opt_text("scores"),
            labels_restored=fields.flag("labels_restored", default=False),
        )


# --------------------------------------------------------------------------- provenance


@dataclass(frozen=True)
class Source:
    """The native model the artifact was compiled from.

    Attributes:
        type: The model's class, with its module (``sklearn.pipeline.Pipeline``).
        estimator: The final estimator's class name.
        library: The final estimator's library (``sklearn``, ``xgboost``, ``lightgbm``).
        role: ``classifier``, ``regressor`` or ``outlier``.
        families: The converter family of each step.
        steps: The class name of each step.
        params: The final estimator's parameters (JSON values; others as their repr).
    """

    type: str
    estimator: str
    library: str
    role: str
    families: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The source as JSON values."""
        return {
            "type": self.type,
            "estimator": self.estimator,
            "library": self.library,
            "role": self.role,
            "families": list(self.families),
            "steps": list(self.steps),
            "params": dict(self.params),
        }

    @classmethod
    def _read(cls, fields: _Fields) -> Source:
        return cls(
            type=fields.text("type"),
            estimator=fields.text("estimator"),
            library=fields.text("library"),
            role=fields.text("role"),
            families=fields.texts("families", optional=True),
            steps=fields.texts("steps", optional=True),
            params=fields.mapping("params", optional=True) or {},
        )


@dataclass(frozen=True)
class PassRecord:
    """One graph pass applied at compile time, with the graph's node count before and after."""

    name: str
    nodes_before: int
    nodes_after: int

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON values."""
        return {"name": self.name, "nodes_before": self.nodes_before, "nodes_after": self.nodes_after}

    @classmethod
    def _read(cls, fields: _Fields) -> PassRecord:
        return cls(fields.text("name"), fields.whole("nodes_before"), fields.whole("nodes_after"))


@dataclass(frozen=True)
class SessionSettings:
    """The onnxruntime settings the artifact runs with on its target (``kepler.runtimes.session_settings``)."""

    intra_op_num_threads: int
    inter_op_num_threads: int
    execution_mode: str
    graph_optimization_level: str
    providers: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON values."""
        return {
            "intra_op_num_threads": self.intra_op_num_threads,
            "inter_op_num_threads": self.inter_op_num_threads,
            "execution_mode": self.execution_mode,
            "graph_optimization_level": self.graph_optimization_level,
            "providers": list(self.providers),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "session settings") -> SessionSettings:
        """Reads session settings (the manifest's ``session``).

        Raises:
            ArtifactError: a missing field or a value of the wrong type, naming it.
        """
        return cls._read(_Fields(data, where))

    @classmethod
    def _read(cls, fields: _Fields) -> SessionSettings:
        return cls(
            intra_op_num_threads=fields.whole("intra_op_num_threads"),
            inter_op_num_threads=fields.whole("inter_op_num_threads"),
            execution_mode=fields.text("execution_mode"),
            graph_optimization_level=fields.text("graph_optimization_level"),
            providers=fields.texts("providers"),
        )


@dataclass(frozen=True)
class Machine:
    """The machine that compiled or measured an artifact (``kepler.runtimes.machine``)."""

    cpu: str
    cores: int | None
    platform: str
    python: str

    def to_dict(self) -> dict[str, Any]:
        """The machine as JSON values."""
        return {"cpu": self.cpu, "cores": self.cores, "platform": self.platform, "python": self.python}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "machine") -> Machine:
        """Reads a machine description.

        Raises:
            ArtifactError: a missing field or a value of the wrong type, naming it.
        """
        return cls._read(_Fields(data, where))

    @classmethod
    def _read(cls, fields: _Fields) -> Machine:
        return cls(
            cpu=fields.text("cpu"),
            cores=fields.opt_whole("cores"),
            platform=fields.text("platform"),
            python=fields.text("python"),
        )


@dataclass(frozen=True)
class Environment:
    """What produced the artifact: library versions (None: not installed) and the machine."""

    libraries: dict[str, str | None]
    machine: Machine

    def to_dict(self) -> dict[str, Any]:
        """The environment as JSON values (the machine's fields beside ``libraries``)."""
        return {"libraries": dict(self.libraries), **self.machine.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "environment") -> Environment:
        """Reads an environment (the manifest's ``environment``).

        Raises:
            ArtifactError: a missing field or a value of the wrong type, naming it.
        """
        return cls._read(_Fields(data, where))

    @classmethod
    def _read(cls, fields: _Fields) -> Environment:
        libraries = fields.mapping("libraries") or {}
        for name, version in libraries.items():
            if version is not None and not isinstance(version, str):
                raise _bad(fields.where, fields.name(f"libraries.{name}"), f"must be text, got {version!r}")
        return cls(libraries=libraries, machine=Machine._read(fields))


# --------------------------------------------------------------------------- parity and benchmark reports


@dataclass(frozen=True)
class Parity:
    """The parity report: the compiled graph against the native model on the compile sample.

    Attributes:
        rows: Rows compared.
        passed: Whether every value was within tolerance and labels agreed enough.
        bit_exact: Whether every value and label was identical.
        max_abs_diff: Largest absolute difference of any output value.
        max_rel_diff: Largest relative difference of any output value.
        rows_out_of_tolerance: Rows with a value beyond ``atol + rtol * |native|``.
        label_agreement: Share of rows whose labels agree (None without labels).
        tolerance: The tolerance applied (the profile's ``[parity]``).
        worst_rows: The rows that differ most, each with both answers.
        error: Why the outputs could not be compared (shapes differ); the figures are then None.
    """

    rows: int
    passed: bool
    bit_exact: bool
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    rows_out_of_tolerance: int | None = None
    label_agreement: float | None = None
    tolerance: ParityTolerance | None = None
    worst_rows: tuple[dict[str, Any], ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON values, in the shape ``kepler.compilers.parity.compare`` returns."""
        if self.error is not None:
            return {
                "rows": self.rows,
                "passed": self.passed,
                "bit_exact": self.bit_exact,
                "error": self.error,
            }
        return {
            "rows": self.rows,
            "passed": self.passed,
            "bit_exact": self.bit_exact,
            "max_abs_diff": self.max_abs_diff,
            "max_rel_diff": self.max_rel_diff,
            "rows_out_of_tolerance": self.rows_out_of_tolerance,
            "label_agreement": self.label_agreement,
            "tolerance": dataclasses.asdict(self.tolerance) if self.tolerance else None,
            "worst_rows": [dict(row) for row in self.worst_rows],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "parity report") -> Parity:
        """Reads a parity report (``kepler.compilers.parity.compare``'s, or the manifest's ``parity``).

        Raises:
            ArtifactError: a missing field or a value of the wrong type, naming it.
        """
        return cls._read(_Fields(data, where))

    @classmethod
    def _read(cls, fields: _Fields) -> Parity:
        tolerance = fields.opt_obj("tolerance")
        return cls(
            rows=fields.whole("rows"),
            passed=fields.flag("passed"),
            bit_exact=fields.flag("bit_exact"),
            max_abs_diff=fields.opt_number("max_abs_diff"),
            max_rel_diff=fields.opt_number("max_rel_diff"),
            rows_out_of_tolerance=fields.opt_whole("rows_out_of_tolerance"),
            label_agreement=fields.opt_number("label_agreement"),
            tolerance=ParityTolerance(
                atol=tolerance.number("atol"),
                rtol=tolerance.number("rtol"),
                min_label_agreement=tolerance.number("min_label_agreement"),
            )
            if tolerance
            else None,
            worst_rows=tuple(dict(row.data) for row in fields.objs("worst_rows"))
            if fields.has("worst_rows")
            else (),
            error=fields.opt_text("error"),
        )


@dataclass(frozen=True)
class BatchTiming:
    """Latency of one batch size: percentiles, mean and throughput, with a histogram of the calls."""

    batch: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    iterations: int
    throughput_rows_s: float
    histogram: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The timing as JSON values."""
        out: dict[str, Any] = {
            "batch": self.batch,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
            "iterations": self.iterations,
            "throughput_rows_s": self.throughput_rows_s,
        }
        if self.histogram is not None:
            out["histogram"] = dict(self.histogram)
        return out

    @classmethod
    def _read(cls, fields: _Fields) -> BatchTiming:
        return cls(
            batch=fields.whole("batch"),
            p50_ms=fields.number("p50_ms"),
            p95_ms=fields.number("p95_ms"),
            p99_ms=fields.number("p99_ms"),
            mean_ms=fields.number("mean_ms"),
            iterations=fields.whole("iterations"),
            throughput_rows_s=fields.number("throughput_rows_s"),
            histogram=fields.mapping("histogram", optional=True),
        )


@dataclass(frozen=True)
class BudgetCheck:
    """One budget of the target against what was measured (``measured`` None: not measured)."""

    limit: float
    measured: float | None
    ok: bool

    def to_dict(self) -> dict[str, Any]:
        """The check as JSON values."""
        return {"limit": self.limit, "measured": self.measured, "ok": self.ok}

    @classmethod
    def _read(cls, fields: _Fields) -> BudgetCheck:
        return cls(limit=fields.number("limit"), measured=fields.opt_number("measured"), ok=fields.flag("ok"))


@dataclass(frozen=True)
class Benchmark:
    """The benchmark report recorded at compile time (``kepler.runtimes.benchmark``).

    Attributes:
        target: The profile's name.
        threads: Threads the session ran with.
        artifact: The folder measured (at compile time, the staging folder).
        model_file: The model file's name.
        size_mb: The model file's size.
        load_ms: Median time to open the artifact.
        batches: One timing per batch size, smallest first.
        throughput_rows_s: Rows per second at ``throughput_batch``.
        throughput_batch: The largest batch size.
        process_peak_rss_mb: Peak memory of a fresh process answering one row (None: not measured).
        session_rss_mb: Memory the sessions added to the measuring process.
        peak_rss_mb: Peak memory of the measuring process.
        machine: The machine measured on.
        budgets: ``latency_p99_ms``, ``size_mb``, ``memory_mb``: each limit against the figure measured.
        native: With a native model: its type, timings and throughput.
        ratios: With a native model: ``p50_speedup_batch1`` and ``throughput_ratio``.
    """

    target: str
    threads: int
    size_mb: float
    load_ms: float
    batches: tuple[BatchTiming, ...]
    throughput_rows_s: float
    throughput_batch: int
    process_peak_rss_mb: float | None
    session_rss_mb: float
    peak_rss_mb: float
    machine: Machine
    budgets: dict[str, BudgetCheck]
    artifact: str = ""
    model_file: str = ""
    native: dict[str, Any] | None = None
    ratios: dict[str, Any] | None = None

    def batch(self, size: int) -> BatchTiming | None:
        """The timing of batch ``size``, if it was measured."""
        return next((b for b in self.batches if b.batch == size), None)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON values, in the shape ``kepler.runtimes.benchmark`` returns."""
        out: dict[str, Any] = {
            "target": self.target,
            "threads": self.threads,
            "artifact": self.artifact,
            "model_file": self.model_file,
            "size_mb": self.size_mb,
            "load_ms": self.load_ms,
            "batches": [b.to_dict() for b in self.batches],
            "throughput_rows_s": self.throughput_rows_s,
            "throughput_batch": self.throughput_batch,
            "process_peak_rss_mb": self.process_peak_rss_mb,
            "session_rss_mb": self.session_rss_mb,
            "peak_rss_mb": self.peak_rss_mb,
            "machine": self.machine.to_dict(),
            "budgets": {name: check.to_dict() for name, check in self.budgets.items()},
        }
        if self.native is not None:
            out["native"] = dict(self.native)
        if self.ratios is not None:
            out["ratios"] = dict(self.ratios)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "benchmark report") -> Benchmark:
        """Reads a benchmark report (``kepler.runtimes.benchmark``'s, or the manifest's ``benchmark``).

        Raises:
            ArtifactError: a missing field or a value of the wrong type, naming it.
        """
        return cls._read(_Fields(data, where))

    @classmethod
    def _read(cls, fields: _Fields) -> Benchmark:
        budgets = fields.obj("budgets")
        return cls(
            target=fields.text("target"),
            threads=fields.whole("threads"),
            artifact=fields.opt_text("artifact") or "",
            model_file=fields.opt_text("model_file") or "",
            size_mb=fields.number("size_mb"),
            load_ms=fields.number("load_ms"),
            batches=tuple(BatchTiming._read(item) for item in fields.objs("batches")),
            throughput_rows_s=fields.number("throughput_rows_s"),
            throughput_batch=fields.whole("throughput_batch"),
            process_peak_rss_mb=fields.opt_number("process_peak_rss_mb"),
            session_rss_mb=fields.number("session_rss_mb"),
            peak_rss_mb=fields.number("peak_rss_mb"),
            machine=Machine._read(fields.obj("machine")),
            budgets={name: BudgetCheck._read(budgets.obj(name)) for name in budgets.data},
            native=fields.mapping("native", optional=True),
            ratios=fields.mapping("ratios", optional=True),
        )


# --------------------------------------------------------------------------- the target profile


def profile_from_record(fields: Mapping[str, Any], where: str) -> TargetProfile:
    """A target profile as a manifest or a record stores it (``TargetProfile.to_dict()``), validated.

    The recorded ``source`` (the profile file it was read from) is kept.

    Raises:
        ProfileError: an unknown key, a missing field or a bad value, naming ``where`` and the field.
    """
    recorded = {key: value for key, value in fields.items() if key != "source"}
    if isinstance(recorded.get("parity"), Mapping):
        recorded["parity"] = dict(recorded["parity"])
    profile = profile_from_dict(recorded, where)
    source = fields.get("source")
    return dataclasses.replace(profile, source=source if isinstance(source, str) else where)


def profile_from_manifest(manifest: Manifest | str | os.PathLike[str]) -> TargetProfile:
    """The target profile an artifact was compiled for, as its manifest records it.

    Args:
        manifest: A manifest, or an artifact folder (or its ``manifest.json``) to read one from.

    Raises:
        ArtifactError: the manifest cannot be read (see :func:`read_manifest`).
    """
    return (manifest if isinstance(manifest, Manifest) else read_manifest(manifest)).target


# --------------------------------------------------------------------------- companion files


@dataclass(frozen=True)
class ReferenceFile:
    """The artifact's reference profile file (``reference.json``), recorded so the integrity check covers it.

    Attributes:
        file: Its name in the artifact folder.
        sha256: Its sha256, checked on every verified load.
        size_bytes: Its size.
    """

    file: str
    sha256: str
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON values."""
        return {"file": self.file, "sha256": self.sha256, "size_bytes": self.size_bytes}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "reference file") -> ReferenceFile:
        """Reads the manifest's ``reference`` record.

        Raises:
            ArtifactError: a missing field or a value of the wrong type, naming it.
        """
        return cls._read(_Fields(data, where, "reference"))

    @classmethod
    def _read(cls, fields: _Fields) -> ReferenceFile:
        name = fields.text("file")
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise _bad(fields.where, fields.name("file"), f"must be a file name, got {name!r}")
        return cls(file=name, sha256=fields.text("sha256"), size_bytes=fields.whole("size_bytes"))


@dataclass(frozen=True)
class CompiledBackend:
    """A compiled backend the artifact holds beside its ONNX graph (see :mod:`kepler.runtimes.compiled_trees`).

    Attributes:
        name: The backend (``c-trees``).
        library: The shared library's file name in the artifact folder.
        sha256: The library's sha256, checked on every verified load.
        size_bytes: The library's size.
        machine: The architecture it was built for (``x86_64``...).
        isa: The instruction-set level it was built for (``x86-64-v3``, ``generic``...).
        cpu_flags: CPU flags a machine needs to run it.
        compiler: The compiler that built it (its ``--version`` line).
        finish: How the runtime turns its raw scores into the graph's outputs.
        prefix: The ONNX graph of the preprocessing before the trees (None: the trees read a graph input).
        prefix_sha256: That graph's sha256.
        parity: Its parity report against the native model, as the ONNX graph's.
    """

    name: str
    library: str
    sha256: str
    size_bytes: int
    machine: str
    isa: str
    cpu_flags: tuple[str, ...]
    compiler: str
    finish: dict[str, Any]
    prefix: str | None = None
    prefix_sha256: str | None = None
    parity: Parity | None = None

    def files(self) -> dict[str, str]:
        """Its files in the artifact folder, name -> sha256."""
        files = {self.library: self.sha256}
        if self.prefix is not None and self.prefix_sha256 is not None:
            files[self.prefix] = self.prefix_sha256
        return files

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON values."""
        out: dict[str, Any] = {
            "name": self.name,
            "library": self.library,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "machine": self.machine,
            "isa": self.isa,
            "cpu_flags": list(self.cpu_flags),
            "compiler": self.compiler,
            "finish": dict(self.finish),
            "prefix": self.prefix,
            "prefix_sha256": self.prefix_sha256,
        }
        if self.parity is not None:
            out["parity"] = self.parity.to_dict()
        return out

    @classmethod
    def _read(cls, fields: _Fields) -> CompiledBackend:
        for key in ("library", "prefix"):
            name = fields.opt_text(key)
            if name is not None and (not name or "/" in name or "\\" in name or name in (".", "..")):
                raise _bad(fields.where, fields.name(key), f"must be a file name, got {name!r}")
        parity = fields.opt_obj("parity")
        return cls(
            name=fields.text("name"),
            library=fields.text("library"),
            sha256=fields.text("sha256"),
            size_bytes=fields.whole("size_bytes"),
            machine=fields.text("machine"),
            isa=fields.text("isa"),
            cpu_flags=fields.texts("cpu_flags"),
            compiler=fields.text("compiler"),
            finish=fields.mapping("finish") or {},
            prefix=fields.opt_text("prefix"),
            prefix_sha256=fields.opt_text("prefix_sha256"),
            parity=Parity._read(parity) if parity else None,
        )


ONNX_BACKEND = "onnxruntime"


@dataclass(frozen=True)
class Backends:
    """Which backend serves which batch sizes, chosen at compile time by measurement.

    Attributes:
        compiled: The compiled backends the artifact holds (the ONNX graph is always there).
        skipped: Backends the profile allows that were not built, with why (no compiler, a graph the
            backend does not cover, failed parity).
        timings_ms: Per backend, the median latency (ms) of a call at each of the profile's batch sizes.
        choice: ``(from_rows, backend)`` pairs, rows ascending, the first from 1: a call of ``n`` rows goes
            to the backend of the last pair with ``from_rows <= n``.
    """

    compiled: tuple[CompiledBackend, ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)
    timings_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    choice: tuple[tuple[int, str], ...] = ((1, ONNX_BACKEND),)

    def backend_for(self, rows: int) -> str:
        """The backend chosen for a call of ``rows`` rows."""
        chosen = self.choice[0][1]
        for from_rows, backend in self.choice:
            if rows >= from_rows:
                chosen = backend
        return chosen

    def compiled_backend(self, name: str) -> CompiledBackend | None:
        """The record of compiled backend ``name`` (None: the artifact holds none by that name)."""
        return next((b for b in self.compiled if b.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON values."""
        return {
            "compiled": [b.to_dict() for b in self.compiled],
            "skipped": dict(self.skipped),
            "timings_ms": {k: dict(v) for k, v in self.timings_ms.items()},
            "choice": [{"from_rows": rows, "backend": name} for rows, name in self.choice],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "backends") -> Backends:
        """Reads the manifest's ``backends`` record.

        Raises:
            ArtifactError: a missing field, a value of the wrong type, or a choice naming a backend the
                artifact does not hold.
        """
        return cls._read(_Fields(data, where, "backends"))

    @classmethod
    def _read(cls, fields: _Fields) -> Backends:
        compiled = tuple(CompiledBackend._read(item) for item in fields.objs("compiled"))
        choice = tuple((item.whole("from_rows"), item.text("backend")) for item in fields.objs("choice"))
        known = {ONNX_BACKEND, *(b.name for b in compiled)}
        if not choice or choice[0][0] != 1 or any(name not in known for _, name in choice):
            raise _bad(
                fields.where,
                fields.name("choice"),
                f"must start from 1 row and name only {', '.join(sorted(known))}, got {_short(choice)}",
            )
        timings = fields.mapping("timings_ms") or {}
        return cls(
            compiled=compiled,
            skipped={str(k): str(v) for k, v in (fields.mapping("skipped") or {}).items()},
            timings_ms={str(k): {str(b): float(t) for b, t in dict(v).items()} for k, v in timings.items()},
            choice=choice,
        )


# --------------------------------------------------------------------------- the manifest

_REQUIRED = (
    "model_file",
    "sha256",
    "input_schema",
    "output_schema",
    "target",
    "kepler_version",
    "created_at",
    "size_bytes",
    "opset",
    "source",
    "session",
    "passes",
    "environment",
)


@dataclass(frozen=True)
class Manifest:
    """Everything ``manifest.json`` records about a compiled artifact.

    Attributes:
        kepler_version: The Kepler that compiled it.
        created_at: When, as UTC ISO 8601 text.
        model_file: The model file's name in the artifact folder (``model.onnx`` or ``model.ort``).
        sha256: The model file's sha256, checked on every load.
        size_bytes: The model file's size.
        opset: The ONNX opset per domain (``""`` is the main domain).
        input_schema: What the model reads.
        output_schema: What the graph answers.
        source: The native model.
        target: The target profile it was compiled for (see :func:`profile_from_manifest`).
        session: The onnxruntime settings on that target.
        passes: The graph passes applied, in order.
        environment: Library versions and the machine that compiled it.
        precision: The precision policy, in words.
        seed: The final estimator's ``random_state`` (None: none; text: not a number).
        parity: The parity report (None only while the compile is checking it).
        benchmark: The benchmark report (None: compiled with ``benchmark=False``).
        reference: The reference profile file and its sha256 (None: an artifact compiled before profiles,
            format 1 or early format 2; its profile is then computed on demand, see
            :mod:`kepler.monitoring.sources`).
        backends: The compiled backends beside the ONNX graph and which serves which batch sizes (None:
            ONNX serves every call).
    """

    kepler_version: str
    created_at: str
    model_file: str
    sha256: str
    size_bytes: int
    opset: dict[str, int]
    input_schema: InputSchema
    output_schema: OutputSchema
    source: Source
    target: TargetProfile
    session: SessionSettings
    passes: tuple[PassRecord, ...]
    environment: Environment
    precision: str = ""
    seed: int | str | None = None
    parity: Parity | None = None
    benchmark: Benchmark | None = None
    reference: ReferenceFile | None = None
    backends: Backends | None = None

    @property
    def format_version(self) -> int:
        """The format this manifest is written in (a manifest read from an older format is migrated)."""
        return FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON values, in format :data:`FORMAT_VERSION` (what ``manifest.json`` holds)."""
        out: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "kepler_version": self.kepler_version,
            "created_at": self.created_at,
            "model_file": self.model_file,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "opset": dict(self.opset),
            "input_schema": self.input_schema.to_dict(),
            "output_schema": self.output_schema.to_dict(),
            "source": self.source.to_dict(),
            "target": self.target.to_dict(),
            "session": self.session.to_dict(),
            "passes": [p.to_dict() for p in self.passes],
            "environment": self.environment.to_dict(),
            "precision": self.precision,
            "seed": self.seed,
        }
        if self.parity is not None:
            out["parity"] = self.parity.to_dict()
        if self.benchmark is not None:
            out["benchmark"] = self.benchmark.to_dict()
        if self.reference is not None:
            out["reference"] = self.reference.to_dict()
        if self.backends is not None:
            out["backends"] = self.backends.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "manifest") -> Manifest:
        """Reads a parsed ``manifest.json`` of any readable format (:data:`READABLE_VERSIONS`); keys the format
        does not define are ignored.

        Args:
            data: The parsed JSON.
            where: What to name in errors (the file's path).

        Raises:
            ArtifactError: not an object, an unknown format version, a missing field or a bad value; one line
                naming ``where`` and the field.
        """
        if not isinstance(data, Mapping):
            raise ArtifactError(f"{where}: corrupted manifest (not a JSON object); recompile the artifact")
        version = data.get("format_version")
        if "format_version" not in data:
            raise ArtifactError(f"{where}: manifest lacks format_version; recompile the artifact")
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            raise ArtifactError(
                f"{where}: artifact format {version!r} is not supported (this Kepler reads "
                f"{' and '.join(map(str, READABLE_VERSIONS))}); recompile the artifact with this Kepler"
            )
        missing = [key for key in _REQUIRED if key not in data]
        if missing:
            raise ArtifactError(f"{where}: manifest lacks {', '.join(missing)}; recompile the artifact")
        fields = _Fields(data, where)
        input_schema = InputSchema._read(fields.obj("input_schema"))
        if version == 1:
            input_schema = input_schema.sharing_missing_words()
        try:
            target = profile_from_record(fields.mapping("target") or {}, "target")
        except ProfileError as exc:
            raise ArtifactError(
                f"{where}: the recorded target is not a valid profile ({exc}); recompile the artifact"
            ) from None
        opset = fields.mapping("opset") or {}
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in opset.values()):
            raise _bad(where, "opset", f"must map domains to whole numbers, got {_short(opset)}")
        seed = data.get("seed")
        parity = fields.opt_obj("parity")
        benchmark = fields.opt_obj("benchmark")
        reference = fields.opt_obj("reference")
        backends = fields.opt_obj("backends")
        return cls(
            kepler_version=fields.text("kepler_version"),
            created_at=fields.text("created_at"),
            model_file=fields.text("model_file"),
            sha256=fields.text("sha256"),
            size_bytes=fields.whole("size_bytes"),
            opset=opset,
            input_schema=input_schema,
            output_schema=OutputSchema._read(fields.obj("output_schema")),
            source=Source._read(fields.obj("source")),
            target=target,
            session=SessionSettings._read(fields.obj("session")),
            passes=tuple(PassRecord._read(item) for item in fields.objs("passes")),
            environment=Environment._read(fields.obj("environment")),
            precision=fields.opt_text("precision") or "",
            seed=seed if isinstance(seed, (int, str)) and not isinstance(seed, bool) else None,
            parity=Parity._read(parity) if parity else None,
            benchmark=Benchmark._read(benchmark) if benchmark else None,
            reference=ReferenceFile._read(reference) if reference else None,
            backends=Backends._read(backends) if backends else None,
        )


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Reads and checks ``manifest.json`` of an artifact folder (or the file itself), migrating older formats.

    Raises:
        ArtifactError: the file is missing, is not JSON, has an unknown format version, or lacks a field or
            holds a bad value; one line naming the file (and the field).
    """
    given = Path(path)
    manifest_path = given if given.name == MANIFEST_NAME and not given.is_dir() else given / MANIFEST_NAME
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(
            f"{manifest_path.parent}: not a Kepler artifact (no {MANIFEST_NAME}); compile one with `kepler compile`"
        ) from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{manifest_path}: corrupted manifest ({exc}); recompile the artifact") from None
    return Manifest.from_dict(data, str(manifest_path))
