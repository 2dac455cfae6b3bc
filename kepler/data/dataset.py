"""The loaded table: typed feature columns, the label, and what inference decided about every column."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from kepler.data.files import NUMERIC_MISSING_WORDS

# Column kinds. Features are numeric, boolean (stored as 0.0/1.0) or categorical (text); datetime, id,
# empty (no values), constant (one value, never missing) and nested (lists, arrays or mappings in cells, as in a
# Parquet list column) columns are always dropped; "label" marks the label.
NUMERIC = "numeric"
BOOLEAN = "boolean"
CATEGORICAL = "categorical"
DATETIME = "datetime"
ID = "id"
EMPTY = "empty"
CONSTANT = "constant"
NESTED = "nested"
LABEL = "label"

# A missing value of a categorical feature becomes this category (the graph takes strings only).
MISSING_CATEGORY = "missing"
# ColumnInfo.from_text: features typed from text, whose compiled models read that text too.
TEXT_NUMBERS = "numbers"
TEXT_BOOLEANS = "booleans"
# Input typing rule of a source column the model does not read (dropped, or the label): callers may send it.
IGNORED = "ignored"

# Column roles.
FEATURE = "feature"
DROPPED = "dropped"

CLASSIFICATION = "classification"
REGRESSION = "regression"


@dataclass(frozen=True)
class ColumnInfo:
    """What inference decided about one column of the source table.

    Attributes:
        name: The column name.
        kind: ``numeric``, ``boolean``, ``categorical``, ``datetime``, ``id``, ``empty`` or ``constant``;
            ``label`` for the label column; None for a column dropped with ``drop=[...]`` (it is not inspected).
        role: ``feature``, ``dropped`` or ``label``.
        note: Why the column was dropped or changed; empty when nothing needs saying.
        dtype: The column's dtype in the source table.
        missing: Missing values in the rows kept (those with a label).
        distinct: Distinct non-missing values in the rows kept.
        from_text: ``numbers`` or ``booleans`` when a numeric or boolean feature was read from text
            (its compiled model then accepts that text too); empty otherwise.
        missing_words: For a numeric feature read from text: the words of
            :data:`kepler.data.files.NUMERIC_MISSING_WORDS` found in it (``—``, ``n.a.``...), read as missing
            values (counted in ``missing``); its compiled model reads every word of that list as missing.
    """

    name: str
    kind: str | None
    role: str
    note: str = ""
    dtype: str = ""
    missing: int = 0
    distinct: int = 0
    from_text: str = ""
    missing_words: tuple[str, ...] = ()


@dataclass
class Dataset:
    """A table ready for training: typed features, the label and the task.

    Attributes:
        frame: Feature columns only, in source order: numeric and boolean columns as float64
            (booleans as 0.0/1.0, missing as NaN), categorical columns as object dtype holding str.
        label: The label (rows with a missing label removed), aligned with ``frame``; None without a label.
        label_name: The label column's name, or None.
        task: ``classification`` or ``regression``; None without a label.
        columns: One :class:`ColumnInfo` per source column, in source order.
        notes: Everything inference changed or dropped, one sentence each.
        class_balance: For classification: ``counts`` (class -> rows, most frequent first),
            ``minority_class``, ``minority_share`` and ``imbalanced``; None otherwise.
        source: Where the table came from (a path, or ``DataFrame``).
        missing_words: Text the reader counted as a missing value (pandas' words for a CSV source:
            ``NA``, ``null``, ``N/A``...); empty for Parquet and DataFrames.
    """

    frame: pd.DataFrame
    label: pd.Series | None = None
    label_name: str | None = None
    task: str | None = None
    columns: list[ColumnInfo] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    class_balance: dict[str, Any] | None = None
    source: str = "DataFrame"
    missing_words: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def features(self) -> list[str]:
        """Names of the feature columns, in ``frame`` order."""
        return [str(name) for name in self.frame.columns]

    @property
    def numeric_columns(self) -> list[str]:
        """Feature columns stored as float64: numeric and boolean ones."""
        return [c.name for c in self.columns if c.role == FEATURE and c.kind in (NUMERIC, BOOLEAN)]

    @property
    def categorical_columns(self) -> list[str]:
        """Feature columns stored as text."""
        return [c.name for c in self.columns if c.role == FEATURE and c.kind == CATEGORICAL]

    def input_typing(self) -> dict[str, dict[str, Any]]:
        """Per source column, how a compiled model of this table reads raw values the way :func:`kepler.data.load`
        typed them: a missing category as ``"missing"``, text booleans and numbers as numbers, and the
        words a CSV reader takes for a missing value (``NA``, ``null``...) as missing, and in a numeric column read
        from text with dashes or ``n.a.`` for gaps, the words of ``NUMERIC_MISSING_WORDS`` too. Columns the model does
        not read (dropped ones: ids, timestamps, empty, constant and nested columns, ``drop=[...]``; and the label) get
        ``{"ignored": True}``: a row sent as it stands in the source table carries them, and they are ignored.

        Pass it to ``kepler.compilers.compile(..., input_typing=...)`` (the AutoML search does), so that a
        service answers rows sent as they appear in the source table.
        """
        rules: dict[str, dict[str, Any]] = {}
        for column in self.columns:
            if column.role != FEATURE:
                rules[column.name] = {IGNORED: True}
                continue
            rule: dict[str, Any] = {}
            if column.kind == CATEGORICAL:
                rule["missing_as"] = MISSING_CATEGORY
            elif column.from_text:
                rule["from_text"] = column.from_text
            words = list(self.missing_words)
            if (
                column.missing_words
            ):  # the words this numeric column was read with: all of them, not only those seen
                words += [w for w in NUMERIC_MISSING_WORDS if w not in words]
            if words:
                rule["missing_words"] = words
            if rule:
                rules[column.name] = rule
        return rules

    def summary(self) -> dict[str, Any]:
        """Everything about the dataset except the data itself, as plain JSON types."""
        balance = None
        if self.class_balance is not None:
            # JSON object keys must be strings; classes may be ints or bools.
            balance = {
                **self.class_balance,
                "counts": {str(k): v for k, v in self.class_balance["counts"].items()},
                "minority_class": str(self.class_balance["minority_class"]),
            }
        return {
            "source": self.source,
            "rows": len(self),
            "label": self.label_name,
            "task": self.task,
            "features": self.features,
            "numeric_columns": self.numeric_columns,
            "categorical_columns": self.categorical_columns,
            "dropped_columns": [c.name for c in self.columns if c.role == DROPPED],
            "columns": [asdict(c) for c in self.columns],
            "notes": list(self.notes),
            "class_balance": balance,
        }
