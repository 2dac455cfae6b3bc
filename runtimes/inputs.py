"""Turning a DataFrame, a column mapping, records or an array into the graph's feed, checked against the manifest.

A compiled graph has at most two inputs: every numeric column in one float matrix
and every categorical column in one string matrix, in the order the manifest gives.
Two arrays per call keep the per-request overhead flat however many columns there are.

Rows are taken as clients send them: columns of the source table the model does not read (the
manifest's ``ignored_columns``: ids, timestamps, empty columns, the label) are accepted and ignored;
numbers sent as text in a numeric column are read as pandas reads them from a CSV; other unknown
columns are refused, or ignored with ``unknown_columns="ignore"``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from kepler.errors import InputSchemaError, KeplerError

NUMERIC = "numeric"
CATEGORICAL = "categorical"
NUMERIC_INPUT = "numeric_features"
CATEGORICAL_INPUT = "categorical_features"
_DTYPES = {"float32": np.float32, "float64": np.float64}

# Input typing: optional keys of a column in the manifest's input schema, set at compile time from how the
# training table was typed (kepler.data), so that rows can be sent as they appear in that table.
FROM_TEXT = "from_text"  # numeric column: "numbers" reads numeric text, "booleans" reads true/false, yes/no, 1/0
MISSING_AS = "missing_as"  # categorical column: the category a missing value (null, NaN, blank) stands for
MISSING_WORDS = "missing_words"  # any column: text that counts as missing (e.g. "NA" in a CSV source)
TEXT_NUMBERS = "numbers"
TEXT_BOOLEANS = "booleans"
TEXT_FORMS = (TEXT_NUMBERS, TEXT_BOOLEANS)
_TRUE_TEXT = frozenset({"true", "yes", "1"})
_FALSE_TEXT = frozenset({"false", "no", "0"})
# Input schema key: columns of the source table the model does not read, accepted and ignored (absent in old manifests).
IGNORED_COLUMNS = "ignored_columns"
# What to do with any other column the model does not know: refuse the input (the default) or ignore the column.
REJECT = "reject"
IGNORE = "ignore"
UNKNOWN_COLUMNS = (REJECT, IGNORE)
# Text pandas reads as a missing value in a CSV by default (pandas._libs.parsers.STR_NA_VALUES), spelt out because
# the runtime does not import pandas; blank text is missing too.
PANDAS_MISSING_WORDS = frozenset({"#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                                  "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
# A number as pandas' CSV parser reads one: decimal or exponent notation, or infinity; ASCII digits only
# (Python's float() also takes "1_000" and other scripts' digits, which pandas reads as text).
_NUMBER = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?)", re.IGNORECASE)


def unknown_columns_mode(value: Any) -> str:
    """``reject`` or ``ignore`` from ``value`` (case and surrounding spaces do not matter).

    Raises:
        KeplerError: any other value.
    """
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in UNKNOWN_COLUMNS:
        raise KeplerError(f"unknown_columns must be {' or '.join(UNKNOWN_COLUMNS)}, got {value!r}")
    return text


def _is_dataframe(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "columns")


def _as_array(values: Any) -> np.ndarray:
    """A column as a 1-D array. A list holding text stays one object per value: numpy would make every
    value text (NaN as ``'nan'``, 1.0 as ``'1.0'``)."""
    array = np.atleast_1d(np.asarray(values))
    if array.dtype.kind in "US" and isinstance(values, (list, tuple)):
        return np.atleast_1d(np.asarray(values, dtype=object))
    return array


def _is_missing(value: Any) -> bool:
    """None, NaN (float or numpy) or pandas.NA."""
    if value is None or type(value).__name__ == "NAType":  # pandas.NA, without importing pandas
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def _is_missing_text(value: Any, words: frozenset[str]) -> bool:
    """Blank text, or one of ``words`` (what the training table's reader counted as missing)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return False
    text = value.strip()
    return not text or text in words


def _shown(value: Any) -> str:
    """A value as the caller wrote it: ``'hot'``, not numpy's ``np.str_('hot')``."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _numeric_column(name: str, values: Any, dtype: type, spec: Mapping[str, Any] | None = None) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in "fiub":
        return array.astype(dtype, copy=False).ravel()
    if array.dtype.kind in "OUS":
        spec = spec or {}
        booleans = spec.get(FROM_TEXT) == TEXT_BOOLEANS
        words = PANDAS_MISSING_WORDS.union(spec.get(MISSING_WORDS, ()))
        out = np.empty(array.size, dtype=dtype)
        for i, value in enumerate(array.ravel()):
            if _is_missing(value):
                out[i] = np.nan
            elif isinstance(value, (int, float, np.number, np.bool_)):  # bools count as 0/1, as in numpy
                out[i] = value
            elif isinstance(value, (str, bytes)):
                out[i] = _from_text(name, value, booleans, words)
            else:
                raise InputSchemaError(
                    f"column {name!r} must be numeric, got {_shown(value)}; send numbers (or null for a missing value)"
                )
        return out
    raise InputSchemaError(f"column {name!r} must be numeric, got dtype {array.dtype}; send numbers")


def _from_text(name: str, value: str | bytes, booleans: bool, words: frozenset[str]) -> float:
    """A numeric column's value sent as text, read as pandas reads a CSV cell: blank text and pandas' missing
    words (and the training table reader's) are missing, numbers are numbers; true/false, yes/no only in a
    column typed from such text. Infinity counts as missing, as in training."""
    text = (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)).strip()
    if not text or text in words:
        return math.nan
    if booleans:
        lowered = text.lower()
        if lowered in _TRUE_TEXT:
            return 1.0
        if lowered in _FALSE_TEXT:
            return 0.0
    if _NUMBER.fullmatch(text):
        number = float(text)
        return number if math.isfinite(number) else math.nan
    if booleans:
        raise InputSchemaError(f"column {name!r} is a yes/no column, got {text!r}; send true/false, yes/no, 1/0 "
                               f"(or null for a missing value)")
    raise InputSchemaError(f"column {name!r} must be numeric, got {text!r}; send numbers "
                           f"(or null for a missing value)")


def _categorical_column(name: str, values: Any, spec: Mapping[str, Any]) -> np.ndarray:
    array = np.asarray(values)
    missing_as = spec.get(MISSING_AS)
    words = frozenset(spec.get(MISSING_WORDS, ()))
    if array.dtype.kind == "U" and missing_as is None:  # numpy already proved every value is text
        array = array.astype(object).ravel()
    else:
        # A copy: the caller's array (or a read-only view of its DataFrame) is never written to.
        array = array.astype(object, copy=True).ravel()
        for i, value in enumerate(array):
            if missing_as is not None and (_is_missing(value) or _is_missing_text(value, words)):
                array[i] = missing_as
            elif not isinstance(value, str):
                raise InputSchemaError(
                    f"column {name!r} is categorical and must hold strings, got {_shown(value)}; send the category as text"
                )
    categories = spec.get("categories")
    if categories is not None and not spec.get("allow_unknown", True):
        unknown = sorted(set(array.tolist()) - set(categories))
        if unknown:
            raise InputSchemaError(
                f"column {name!r} has unknown categories {unknown[:5]}; the model knows {categories[:20]}"
            )
    return array


class FeedBuilder:
    """Builds ``{input_name: array}`` for one artifact's input schema.

    Args:
        input_schema: The manifest's ``input_schema``.
        unknown_columns: ``reject`` (default): a column that is neither the model's nor one of the schema's
            ``ignored_columns`` is an error; ``ignore``: it is ignored too.

    Raises:
        KeplerError: ``unknown_columns`` is neither ``reject`` nor ``ignore``.
    """

    def __init__(self, input_schema: dict[str, Any], *, unknown_columns: str = REJECT) -> None:
        self.columns: list[dict[str, Any]] = input_schema["columns"]
        self.names = [column["name"] for column in self.columns]
        self.unknown_columns = unknown_columns_mode(unknown_columns)
        self._specs = {column["name"]: column for column in self.columns}
        numeric = input_schema.get("numeric")
        categorical = input_schema.get("categorical")
        self._num_input = numeric["input"] if numeric else None
        self._num_names: list[str] = numeric["columns"] if numeric else []
        self._num_dtype = _DTYPES[numeric["dtype"]] if numeric else np.float32
        self._cat_input = categorical["input"] if categorical else None
        self._cat_names: list[str] = categorical["columns"] if categorical else []
        self._n = len(self.names)
        self._only_numeric = not self._cat_names
        self._name_set = set(self.names)
        self.ignored: list[str] = [str(n) for n in input_schema.get(IGNORED_COLUMNS) or () if n not in self._name_set]
        self._ignored_set = frozenset(self.ignored)

    def feed(self, data: Any) -> dict[str, np.ndarray]:
        """Checks ``data`` against the schema and returns the session feed.

        Columns in ``ignored_columns`` (and, with ``unknown_columns="ignore"``, any other column the model
        does not read) are accepted and left out. Numeric columns read numbers sent as text.

        Raises:
            InputSchemaError: missing or unknown columns, wrong types, unknown categories, or an empty batch.
        """
        if self._only_numeric and type(data) is np.ndarray:
            # Fast path: batch-1 serving of numeric models lands here.
            if data.ndim == 2 and data.shape[1] == self._n and data.shape[0] > 0 and data.dtype.kind in "fiub":
                return {self._num_input: data.astype(self._num_dtype, copy=False)}
            self._check_array(data)
        if _is_dataframe(data):
            return self._from_frame(data)
        return self._from_columns(self._columns_of(data))

    def fastest_form(self, data: Any) -> Any:
        """``data`` converted once into the form :meth:`feed` reads fastest (for benchmarks)."""
        feed = self.feed(data)
        if self._only_numeric:
            return feed[self._num_input]
        columns: dict[str, np.ndarray] = {}
        if self._num_input:
            columns.update(zip(self._num_names, feed[self._num_input].T))
        if self._cat_input:
            columns.update(zip(self._cat_names, feed[self._cat_input].T))
        return {name: columns[name] for name in self.names}

    def _check_names(self, given: list[str], rows: int) -> None:
        given_set = set(given)
        if given_set == self._name_set and len(given) == self._n and rows > 0:
            return
        missing = [n for n in self.names if n not in given_set]
        if missing:
            raise InputSchemaError(f"missing columns: {', '.join(missing)}; the model needs {', '.join(self.names)}")
        if self.unknown_columns == REJECT:
            unknown = [n for n in given if n not in self._name_set and n not in self._ignored_set]
            if unknown:
                ignored = f" (and may send {_listed(self.ignored)}, which it ignores)" if self.ignored else ""
                raise InputSchemaError(
                    f"unexpected columns: {', '.join(unknown)}; the model reads {_listed(self.names)}{ignored}; "
                    f"drop them, or ignore unknown columns (unknown_columns='ignore'; "
                    f"`kepler serve --unknown-columns ignore`)"
                )
        if rows == 0:
            raise InputSchemaError("empty batch: send at least one row")

    def _from_frame(self, frame: Any) -> dict[str, np.ndarray]:
        # Column by column: selecting a sub-frame costs far more than a few Series.to_numpy() calls.
        labels = {str(c): c for c in frame.columns}
        if len(labels) != len(frame.columns):
            twice = sorted({str(c) for c in frame.columns if [str(d) for d in frame.columns].count(str(c)) > 1})
            raise InputSchemaError(f"duplicate columns: {', '.join(twice)}; send each column once")
        self._check_names(list(labels), len(frame))
        return self._from_columns({name: frame[labels[name]].to_numpy() for name in self.names})

    def _from_columns(self, columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
        feed = {}
        if self._num_input:
            arrays = [_as_array(columns[n]).ravel() for n in self._num_names]
            if all(a.dtype.kind in "fiub" for a in arrays):
                feed[self._num_input] = np.stack(arrays, axis=1).astype(self._num_dtype, copy=False)
            else:
                feed[self._num_input] = np.stack(
                    [_numeric_column(n, a, self._num_dtype, self._specs[n]) for n, a in zip(self._num_names, arrays)],
                    axis=1)
        if self._cat_input:
            feed[self._cat_input] = np.stack(
                [_categorical_column(n, columns[n], self._specs[n]) for n in self._cat_names], axis=1)
        return feed

    def _check_array(self, data: np.ndarray) -> None:
        if data.ndim != 2:
            raise InputSchemaError(
                f"expected a 2-D array of shape (rows, {self._n}), got shape {data.shape}; "
                f"for one row use X.reshape(1, -1)"
            )
        if data.shape[0] == 0:
            raise InputSchemaError("empty batch: send at least one row")
        if data.shape[1] != self._n:
            raise InputSchemaError(
                f"expected {self._n} columns ({', '.join(self.names[:8])}{'…' if self._n > 8 else ''}), "
                f"got {data.shape[1]}"
            )

    def _columns_of(self, data: Any) -> Mapping[str, Any]:
        if isinstance(data, Mapping):
            columns = {str(k): _as_array(v) for k, v in data.items()}
            lengths = {len(v) for v in columns.values()}
            if len(lengths) > 1:
                raise InputSchemaError(f"columns have different lengths {sorted(lengths)}; send equal-length columns")
            self._check_names(list(columns), lengths.pop() if lengths else 0)
            return columns
        if isinstance(data, (np.ndarray, list, tuple)):
            if len(data) == 0:
                raise InputSchemaError("empty batch: send at least one row")
            if isinstance(data, (list, tuple)) and all(isinstance(r, Mapping) for r in data):
                return self._from_records(list(data))
            array = data if isinstance(data, np.ndarray) else np.asarray(data, dtype=object)
            if array.ndim == 1 and array.size and all(isinstance(r, Mapping) for r in array):
                return self._from_records(list(array))
            self._check_array(array)
            return {name: array[:, i] for i, name in enumerate(self.names)}
        raise InputSchemaError(
            f"cannot read input of type {type(data).__name__}; pass a DataFrame, a dict of columns, "
            f"a list of records or a 2-D array"
        )

    def _from_records(self, records: list[Mapping[str, Any]]) -> dict[str, list[Any]]:
        """The model's columns of ``records``; a key missing from a record is a missing value."""
        keys: dict[str, None] = {}
        for record in records:
            keys.update(dict.fromkeys(str(k) for k in record))
        self._check_names(list(keys), len(records))
        return {name: _as_array([record.get(name) for record in records]) for name in self.names}


def _listed(names: list[str], most: int = 12) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")
