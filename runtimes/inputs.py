"""Turning a DataFrame, a column mapping, records or an array into the graph's feed, checked against the manifest.

A compiled graph has at most two inputs: every numeric column in one float matrix
and every categorical column in one string matrix, in the order the manifest gives.
Two arrays per call keep the per-request overhead flat however many columns there are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from kepler.errors import InputSchemaError

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
        from_text = spec.get(FROM_TEXT)
        words = frozenset(spec.get(MISSING_WORDS, ()))
        reads_text = bool(from_text or words)
        out = np.empty(array.size, dtype=dtype)
        for i, value in enumerate(array.ravel()):
            if _is_missing(value):
                out[i] = np.nan
            elif isinstance(value, (int, float, np.number, np.bool_)):  # bools count as 0/1, as in numpy
                out[i] = value
            elif reads_text and _is_missing_text(value, words):
                out[i] = np.nan
            elif from_text and isinstance(value, (str, bytes)):
                out[i] = _from_text(name, value, from_text)
            else:
                raise InputSchemaError(
                    f"column {name!r} must be numeric, got {_shown(value)}; send numbers (or null for a missing value)"
                )
        return out
    raise InputSchemaError(f"column {name!r} must be numeric, got dtype {array.dtype}; send numbers")


def _from_text(name: str, value: str | bytes, form: str) -> float:
    """A numeric column's value sent as text (not blank), read the way the training table was typed."""
    text = (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)).strip()
    if form == TEXT_BOOLEANS:
        lowered = text.lower()
        if lowered in _TRUE_TEXT:
            return 1.0
        if lowered in _FALSE_TEXT:
            return 0.0
        raise InputSchemaError(f"column {name!r} is a yes/no column, got {text!r}; send true/false, yes/no, 1/0 "
                               f"(or null for a missing value)")
    try:
        number = float(text)
    except ValueError:
        raise InputSchemaError(f"column {name!r} must be numeric, got {text!r}; send numbers "
                               f"(or null for a missing value)") from None
    return number if math.isfinite(number) else math.nan  # as in training: infinity counts as missing


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
    """

    def __init__(self, input_schema: dict[str, Any]) -> None:
        self.columns: list[dict[str, Any]] = input_schema["columns"]
        self.names = [column["name"] for column in self.columns]
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

    def feed(self, data: Any) -> dict[str, np.ndarray]:
        """Checks ``data`` against the schema and returns the session feed.

        Raises:
            InputSchemaError: missing or extra columns, wrong types, unknown categories, or an empty batch.
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
        known = self._name_set
        missing = [n for n in self.names if n not in given_set]
        if missing:
            raise InputSchemaError(f"missing columns: {', '.join(missing)}; the model needs {', '.join(self.names)}")
        extra = [n for n in given if n not in known]
        if extra:
            raise InputSchemaError(f"unexpected columns: {', '.join(extra)}; drop them or recompile with them")
        if rows == 0:
            raise InputSchemaError("empty batch: send at least one row")

    def _from_frame(self, frame: Any) -> dict[str, np.ndarray]:
        # Column by column: selecting a sub-frame costs far more than a few Series.to_numpy() calls.
        self._check_names([str(c) for c in frame.columns], len(frame))
        return self._from_columns({str(c): frame[c].to_numpy() for c in frame.columns})

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
                return self._columns_of(_records_to_columns(list(data)))
            array = data if isinstance(data, np.ndarray) else np.asarray(data, dtype=object)
            if array.ndim == 1 and array.size and all(isinstance(r, Mapping) for r in array):
                return self._columns_of(_records_to_columns(list(array)))
            self._check_array(array)
            return {name: array[:, i] for i, name in enumerate(self.names)}
        raise InputSchemaError(
            f"cannot read input of type {type(data).__name__}; pass a DataFrame, a dict of columns, "
            f"a list of records or a 2-D array"
        )


def _records_to_columns(records: list[Mapping[str, Any]]) -> dict[str, list[Any]]:
    keys: dict[str, None] = {}
    for record in records:
        keys.update(dict.fromkeys(str(k) for k in record))
    return {key: [record.get(key) for record in records] for key in keys}
