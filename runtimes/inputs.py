"""Turning a DataFrame, a column mapping or an array into the graph's feed, checked against the manifest."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from kepler.errors import InputSchemaError

NUMERIC = "numeric"
CATEGORICAL = "categorical"


def _is_dataframe(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "columns")


def _numeric_column(name: str, values: Any, dtype: type = np.float32) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in "fiub":
        return array.astype(dtype, copy=False)
    if array.dtype.kind in "OUS":
        out = np.empty(array.shape, dtype=dtype)
        for i, value in enumerate(array.ravel()):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                out.flat[i] = np.nan
            elif isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
                out.flat[i] = value
            else:
                raise InputSchemaError(
                    f"column {name!r} must be numeric, got {value!r}; send numbers (or null for a missing value)"
                )
        return out
    raise InputSchemaError(f"column {name!r} must be numeric, got dtype {array.dtype}; send numbers")


def _categorical_column(name: str, values: Any, spec: dict[str, Any]) -> np.ndarray:
    array = np.asarray(values, dtype=object)
    for value in array.ravel():
        if not isinstance(value, str):
            raise InputSchemaError(
                f"column {name!r} is categorical and must hold strings, got {value!r}; send the category as text"
            )
    categories = spec.get("categories")
    if categories is not None and not spec.get("allow_unknown", True):
        unknown = sorted(set(array.ravel().tolist()) - set(categories))
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
        self.layout = input_schema["layout"]
        self.columns: list[dict[str, Any]] = input_schema["columns"]
        self.names = [column["name"] for column in self.columns]
        self.matrix_input = input_schema.get("matrix_input", "X")
        self._n = len(self.columns)
        self._dtypes = [np.float64 if c.get("dtype") == "float64" else np.float32 for c in self.columns]
        self._matrix_dtype = self._dtypes[0] if self._dtypes else np.float32

    def feed(self, data: Any) -> dict[str, np.ndarray]:
        """Checks ``data`` against the schema and returns the session feed.

        Raises:
            InputSchemaError: missing or extra columns, wrong types, unknown categories, or an empty batch.
        """
        if self.layout == "matrix" and type(data) is np.ndarray:
            # Fast path: the hot loop of batch-1 serving lands here.
            if data.ndim == 2 and data.shape[1] == self._n and data.shape[0] > 0 and data.dtype.kind in "fiub":
                return {self.matrix_input: data.astype(self._matrix_dtype, copy=False)}
            self._check_array(data)
        columns = self._columns_of(data)
        if self.layout == "matrix":
            stacked = np.column_stack([_numeric_column(name, columns[name], self._matrix_dtype) for name in self.names])
            return {self.matrix_input: stacked}
        feed = {}
        for spec, dtype in zip(self.columns, self._dtypes):
            name = spec["name"]
            values = columns[name]
            if spec["kind"] == CATEGORICAL:
                array = _categorical_column(name, values, spec)
            else:
                array = _numeric_column(name, values, dtype)
            feed[spec["input"]] = array.reshape(-1, 1)
        return feed

    def fastest_form(self, data: Any) -> Any:
        """``data`` converted once into the form :meth:`feed` reads fastest (for benchmarks)."""
        if self.layout == "matrix":
            return self.feed(data)[self.matrix_input]
        return {spec["name"]: array.ravel() for spec, array in zip(self.columns, self.feed(data).values())}

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
        if _is_dataframe(data):
            given = [str(c) for c in data.columns]
            columns = {str(c): data[c].to_numpy() for c in data.columns}
            rows = len(data)
        elif isinstance(data, Mapping):
            given = [str(c) for c in data]
            columns = {str(k): np.atleast_1d(np.asarray(v)) for k, v in data.items()}
            lengths = {len(v) for v in columns.values()}
            if len(lengths) > 1:
                raise InputSchemaError(f"columns have different lengths {sorted(lengths)}; send equal-length columns")
            rows = lengths.pop() if lengths else 0
        elif isinstance(data, (np.ndarray, list, tuple)):
            array = np.asarray(data, dtype=object) if not isinstance(data, np.ndarray) else data
            if array.ndim == 1 and len(array) and isinstance(array[0], Mapping):
                return self._columns_of(_records_to_columns(list(array), self.names))
            self._check_array(array)
            return {name: array[:, i] for i, name in enumerate(self.names)}
        else:
            raise InputSchemaError(
                f"cannot read input of type {type(data).__name__}; pass a DataFrame, a dict of columns, "
                f"a list of records or a 2-D array"
            )
        missing = [n for n in self.names if n not in columns]
        if missing:
            raise InputSchemaError(f"missing columns: {', '.join(missing)}; the model needs {', '.join(self.names)}")
        extra = [n for n in given if n not in set(self.names)]
        if extra:
            raise InputSchemaError(f"unexpected columns: {', '.join(extra)}; drop them or recompile with them")
        if rows == 0:
            raise InputSchemaError("empty batch: send at least one row")
        return columns


def _records_to_columns(records: list[Any], names: list[str]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {}
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise InputSchemaError(f"record {index} is not an object; send a list of objects")
        for key in record:
            columns.setdefault(str(key), [])
    for key in columns:
        columns[key] = [record.get(key) for record in records]
    return columns
