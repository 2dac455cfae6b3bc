"""Turning a DataFrame, a column mapping, records or an array into the graph's feed, checked against the manifest.

A compiled graph has at most two inputs: every numeric column in one float matrix
and every categorical column in one string matrix, in the order the manifest gives.
Two arrays per call keep the per-request overhead flat however many columns there are.

Rows are taken as clients send them: columns of the source table the model does not read (the
manifest's ``ignored_columns``: ids, timestamps, empty columns, the label) are accepted and ignored;
numbers sent as text in a numeric column are read as pandas reads them from a CSV; other unknown
columns are refused, or ignored with ``unknown_columns="ignore"``.

The input contract, the same for the service, the Predictor and batch scoring, checked before the model runs
(every breach is an :class:`~kepler.errors.InputSchemaError` naming the column, and the row where there is one;
rows count from 0):

- a cell of a column the model reads is one value: a number, a text, a boolean or null. A list, a mapping or any
  other container in a cell is refused, never spread over rows or read as the number it holds;
- every row in gives one row out: a record is one row, a column holds one value per row;
- a key missing from a record is a missing value where the column takes one (numeric columns, and categorical
  columns with a ``missing_as`` rule) and an error otherwise;
- infinity, and a number beyond the model's float type (``10**400``), is a missing value, as in training
  (:mod:`kepler.data` reads infinite numbers as missing) and as pandas reads ``inf`` in a CSV;
- text is valid Unicode: a string holding a lone surrogate (``"\\ud800"``) is refused.

Columns the model does not read (ignored or, on request, unknown ones) are never looked into.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sized
from typing import Any

import numpy as np

from kepler.errors import InputSchemaError, KeplerError
from kepler.runtimes.manifest import (
    CATEGORICAL,
    CATEGORICAL_INPUT,
    NUMERIC,
    NUMERIC_INPUT,
    Column,
    InputSchema,
)

__all__ = [
    "CATEGORICAL",
    "CATEGORICAL_INPUT",
    "FROM_TEXT",
    "IGNORE",
    "MISSING_AS",
    "MISSING_WORDS",
    "NUMERIC",
    "NUMERIC_INPUT",
    "PANDAS_MISSING_WORDS",
    "REJECT",
    "TEXT_BOOLEANS",
    "TEXT_FORMS",
    "TEXT_NUMBERS",
    "UNKNOWN_COLUMNS",
    "FeedBuilder",
    "unknown_columns_mode",
]

_DTYPES = {"float32": np.float32, "float64": np.float64}

# Input typing: the rules of ``kp.compile(..., input_typing=...)``, set from how the training table was typed
# (kepler.data) and kept on the manifest's columns (kepler.runtimes.manifest.Column), so that rows can be sent as
# they appear in that table.
FROM_TEXT = (
    "from_text"  # numeric column: "numbers" reads numeric text, "booleans" reads true/false, yes/no, 1/0
)
MISSING_AS = "missing_as"  # categorical column: the category a missing value (null, NaN, blank) stands for
MISSING_WORDS = "missing_words"  # any column: text that counts as missing (e.g. "NA" in a CSV source)
TEXT_NUMBERS = "numbers"
TEXT_BOOLEANS = "booleans"
TEXT_FORMS = (TEXT_NUMBERS, TEXT_BOOLEANS)
_TRUE_TEXT = frozenset({"true", "yes", "1"})
_FALSE_TEXT = frozenset({"false", "no", "0"})
# What to do with any other column the model does not know: refuse the input (the default) or ignore the column.
REJECT = "reject"
IGNORE = "ignore"
UNKNOWN_COLUMNS = (REJECT, IGNORE)
# Text pandas reads as a missing value in a CSV by default (pandas._libs.parsers.STR_NA_VALUES), spelt out because
# the runtime does not import pandas; blank text is missing too.
PANDAS_MISSING_WORDS = frozenset(
    {
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)
# A number as pandas' CSV parser reads one: decimal or exponent notation, or infinity; ASCII digits only
# (Python's float() also takes "1_000" and other scripts' digits, which pandas reads as text).
_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?)", re.IGNORECASE
)
_SCALARS = (str, bytes, bool, int, float, np.generic)  # what a cell may hold, besides a missing value
_ABSENT = object()  # a key a record does not have
_SHOWN_CHARS = 60  # longest value or name quoted in a message


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


def _cells(name: str, values: Any) -> np.ndarray:
    """One column as a 1-D array, one cell per row. A list holding text stays one object per value (numpy would
    make every value text: NaN as ``'nan'``, 1.0 as ``'1.0'``), and a list held in a cell stays one object, to be
    refused by the column's reader: never spread over rows (``[[]]`` as no row, ``[[300.5]]`` as 300.5).

    Raises:
        InputSchemaError: an array of more than one dimension for one column.
    """
    if isinstance(values, (list, tuple)):
        try:
            array = np.asarray(values)
        except (ValueError, TypeError, OverflowError):  # cells of unequal shapes
            array = None
        if array is None or array.ndim != 1:
            array = np.empty(len(values), dtype=object)
            for i, value in enumerate(values):
                array[i] = value
        elif array.dtype.kind in "US":
            array = np.asarray(values, dtype=object)
        return array
    array = values if isinstance(values, np.ndarray) else np.asarray(values)
    if array.ndim == 0:  # one value: a record given as a mapping of scalars
        out = np.empty(1, dtype=object if array.dtype.kind in "OUS" else array.dtype)
        out[0] = array.item() if array.dtype.kind == "O" else array[()]
        return out
    if array.ndim != 1:
        raise InputSchemaError(
            f"column {_quoted(name)} must hold one value per row, got an array of shape "
            f"{array.shape}; send a flat list of values"
        )
    return array


def _is_missing(value: Any) -> bool:
    """None, NaN (float or numpy), pandas.NA or pandas.NaT."""
    if value is None or type(value).__name__ in (
        "NAType",
        "NaTType",
    ):  # pandas' markers, without importing pandas
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


def _repr(value: Any, most: int = _SHOWN_CHARS) -> str:
    """``repr(value)`` cut to a readable length (never failing: an integer too long for Python to print)."""
    if isinstance(value, np.generic):
        value = value.item()
    try:
        text = repr(value)
    except ValueError:
        text = (
            f"<a number of about {int(value.bit_length() * 0.30103)} digits>"
            if isinstance(value, int)
            else f"<a {type(value).__name__}>"
        )
    return text if len(text) <= most else text[: most - 3] + "..."


def _shown(value: Any) -> str:
    """A value as the caller wrote it (``'hot'``, not numpy's ``np.str_('hot')``), cut to a readable length,
    with what the value is when it is not a scalar (``a list [300.5]``)."""
    text = _repr(value)
    if isinstance(value, (list, tuple)):
        return f"a list {text}"
    if isinstance(value, Mapping):
        return f"an object {text}"
    if not isinstance(value, _SCALARS) and not _is_missing(value):
        return f"a {type(value).__name__} {text}"
    return text


def _quoted(name: str) -> str:
    """A column name in a message: quoted, escaped (no line breaks, no invalid text), cut to a readable length."""
    text = repr(name[:_SHOWN_CHARS] if isinstance(name, str) else name)
    return text + "..." if isinstance(name, str) and len(name) > _SHOWN_CHARS else text


def _label(name: str) -> str:
    """A column name in a list of names: as it is when printable and short, else as :func:`_quoted` shows it."""
    return name if name.isprintable() and len(name) <= _SHOWN_CHARS else _quoted(name)


def _not_a_cell(name: str, value: Any, row: int, want: str, missing: bool = True) -> InputSchemaError:
    return InputSchemaError(
        f"column {_quoted(name)} holds {_shown(value)} in row {row}; a cell holds one value: "
        f"send {want}" + (" (or null for a missing value)" if missing else "")
    )


def _numeric_column(
    name: str, values: np.ndarray, dtype: type, booleans: bool, words: frozenset[str]
) -> np.ndarray:
    """A numeric column's cells as floats; text is read as pandas reads a CSV cell (``words``: the text that
    counts as missing, pandas' own words included; ``booleans``: true/false, yes/no read as 1/0)."""
    array = values
    if array.dtype.kind in "fiub":
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: infinity, read as missing below
            return array.astype(dtype, copy=False)
    if array.dtype.kind in "OUS":
        out: np.ndarray = np.empty(array.size, dtype=dtype)
        for i, value in enumerate(array):
            if _is_missing(value):
                out[i] = np.nan
            elif isinstance(
                value, (int, float, np.integer, np.floating, np.bool_)
            ):  # bools count as 0/1, as in numpy
                try:
                    with np.errstate(over="ignore"):
                        out[i] = value
                except OverflowError:  # an integer beyond float64: infinity, missing as every infinity
                    out[i] = np.nan
            elif isinstance(value, (str, bytes)):
                out[i] = _from_text(name, value, booleans, words, i)
            elif isinstance(value, _SCALARS):
                raise InputSchemaError(
                    f"column {_quoted(name)} must be numeric, got {_shown(value)} in row {i}; "
                    f"send numbers (or null for a missing value)"
                )
            else:
                raise _not_a_cell(name, value, i, "a number")
        return out
    raise InputSchemaError(f"column {_quoted(name)} must be numeric, got dtype {array.dtype}; send numbers")


def _finite(matrix: np.ndarray) -> np.ndarray:
    """``matrix`` with infinities as missing values (a new array when there are any: the caller's is never written)."""
    infinite = np.isinf(matrix)
    if infinite.any():
        matrix = np.where(infinite, np.nan, matrix).astype(matrix.dtype, copy=False)
    return matrix


def _from_text(name: str, value: str | bytes, booleans: bool, words: frozenset[str], row: int) -> float:
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
        raise InputSchemaError(
            f"column {_quoted(name)} is a yes/no column, got {_shown(text)} in row {row}; "
            f"send true/false, yes/no, 1/0 (or null for a missing value)"
        )
    raise InputSchemaError(
        f"column {_quoted(name)} must be numeric, got {_shown(text)} in row {row}; send numbers "
        f"(or null for a missing value)"
    )


def _categorical_column(name: str, values: np.ndarray, spec: Column, words: frozenset[str]) -> np.ndarray:
    """A categorical column's cells as text, a missing value as the column's ``missing_as`` category (``words``:
    the text that counts as missing)."""
    array = values
    missing_as = spec.missing_as
    distinct = _distinct(values) if array.dtype.kind == "O" else None
    if array.dtype.kind == "U" and missing_as is None:  # numpy already proved every value is text
        array = array.astype(object)
    elif distinct is not None and all(
        isinstance(value, str) and (missing_as is None or not _is_missing_text(value, words))
        for value in distinct
    ):
        # Every distinct value is a category as it stands (the usual batch: a few categories, many rows): the
        # row-by-row check below would change nothing, and it costs a microsecond a cell.
        array = array.astype(object, copy=True)
    else:
        # A copy: the caller's array (or a read-only view of its DataFrame) is never written to.
        array = array.astype(object, copy=True)
        for i, value in enumerate(array):
            if isinstance(value, str) and (missing_as is None or not _is_missing_text(value, words)):
                continue
            if missing_as is not None and (_is_missing(value) or _is_missing_text(value, words)):
                array[i] = missing_as
            elif _is_missing(value):
                raise InputSchemaError(
                    f"column {_quoted(name)} is categorical and takes no missing value, got "
                    f"{_shown(value)} in row {i}; send the category as text"
                )
            elif isinstance(value, _SCALARS):
                raise InputSchemaError(
                    f"column {_quoted(name)} is categorical and must hold strings, got "
                    f"{_shown(value)} in row {i}; send the category as text"
                )
            else:
                raise _not_a_cell(name, value, i, "the category as text", missing=missing_as is not None)
    _check_text(name, array)
    categories = spec.categories
    if categories is not None and not spec.allow_unknown:
        unknown = sorted(set(array.tolist()) - set(categories))
        if unknown:
            raise InputSchemaError(
                f"column {_quoted(name)} has unknown categories "
                f"{_repr(unknown[:5], 200)}; the model knows {_repr(list(categories[:20]), 400)}"
            )
    return array


def _distinct(array: np.ndarray) -> set[Any] | None:
    """The distinct values of an object array, or None when some value cannot be hashed (a list, a dict)."""
    try:
        return set(array.tolist())
    except TypeError:
        return None


def _check_text(name: str, array: np.ndarray) -> None:
    """Every string of ``array`` is valid Unicode (onnxruntime passes text on as UTF-8)."""
    try:
        "".join(array).encode("utf-8")
    except UnicodeEncodeError:
        for i, value in enumerate(array):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise InputSchemaError(
                    f"column {_quoted(name)} holds text that is not valid Unicode in row {i} "
                    f"({_shown(value)}: a lone surrogate); send UTF-8 text"
                ) from None


class FeedBuilder:
    """Builds ``{input_name: array}`` for one artifact's input schema.

    Args:
        input_schema: The manifest's input schema.
        unknown_columns: ``reject`` (default): a column that is neither the model's nor one of the schema's
            ``ignored_columns`` is an error; ``ignore``: it is ignored too.

    Raises:
        KeplerError: ``unknown_columns`` is neither ``reject`` nor ``ignore``.
    """

    def __init__(self, input_schema: InputSchema, *, unknown_columns: str = REJECT) -> None:
        self.schema = input_schema
        self.columns: tuple[Column, ...] = input_schema.columns
        self.names = list(input_schema.names)
        self.unknown_columns = unknown_columns_mode(unknown_columns)
        self._specs = {column.name: column for column in self.columns}
        # What each column reads as missing, worked out once: the schema's words and the column's own
        # (and, in numeric columns, pandas' words, read as missing in any CSV).
        self._words = {column.name: input_schema.words(column) for column in self.columns}
        for column in self.columns:
            if column.is_numeric:
                self._words[column.name] |= PANDAS_MISSING_WORDS
        numeric = input_schema.numeric
        categorical = input_schema.categorical
        self._num_input = numeric.input if numeric else ""
        self._num_names: list[str] = list(numeric.columns) if numeric else []
        self._num_dtype = _DTYPES[numeric.dtype or "float32"] if numeric else np.float32
        self._cat_input = categorical.input if categorical else ""
        self._cat_names: list[str] = list(categorical.columns) if categorical else []
        self._n = len(self.names)
        self._only_numeric = not self._cat_names
        self._name_set = set(self.names)
        self.ignored: list[str] = [n for n in input_schema.ignored_columns if n not in self._name_set]
        self._ignored_set = frozenset(self.ignored)
        # Columns where a key missing from a record is a missing value: numeric ones, and categorical ones
        # with a missing_as rule; in any other, a missing key is an error.
        self._may_be_missing = frozenset(self._num_names) | frozenset(
            n for n in self._cat_names if self._specs[n].missing_as is not None
        )

    def feed(self, data: Any) -> dict[str, np.ndarray]:
        """Checks ``data`` against the schema and the input contract (see the module) and returns the session feed,
        one row per row of ``data``.

        Columns in ``ignored_columns`` (and, with ``unknown_columns="ignore"``, any other column the model
        does not read) are accepted and left out. Numeric columns read numbers sent as text.

        Raises:
            InputSchemaError: missing or unknown columns, wrong types, a cell that is not one value, text that is not
                valid Unicode, unknown categories, or an empty batch.
        """
        if self._only_numeric and type(data) is np.ndarray:
            # Fast path: batch-1 serving of numeric models lands here.
            if (
                data.ndim == 2
                and data.shape[1] == self._n
                and data.shape[0] > 0
                and data.dtype.kind in "fiub"
            ):
                with np.errstate(over="ignore", invalid="ignore"):
                    return {self._num_input: _finite(data.astype(self._num_dtype, copy=False))}
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
            columns.update(zip(self._num_names, feed[self._num_input].T, strict=False))
        if self._cat_input:
            columns.update(zip(self._cat_names, feed[self._cat_input].T, strict=False))
        return {name: columns[name] for name in self.names}

    def _check_names(self, given: list[str], rows: int) -> None:
        given_set = set(given)
        if given_set == self._name_set and len(given) == self._n and rows > 0:
            return
        missing = [n for n in self.names if n not in given_set]
        if missing:
            raise InputSchemaError(
                f"missing columns: {_listed(missing)}; the model needs {_listed(self.names)}"
            )
        if self.unknown_columns == REJECT:
            unknown = [n for n in given if n not in self._name_set and n not in self._ignored_set]
            if unknown:
                ignored = f" (and may send {_listed(self.ignored)}, which it ignores)" if self.ignored else ""
                raise InputSchemaError(
                    f"unexpected columns: {_listed(unknown)}; the model reads {_listed(self.names)}{ignored}; "
                    f"drop them, or ignore unknown columns (unknown_columns='ignore'; "
                    f"`kepler serve --unknown-columns ignore`)"
                )
        if rows == 0:
            raise InputSchemaError("empty batch: send at least one row")

    def _from_frame(self, frame: Any) -> dict[str, np.ndarray]:
        # Column by column: selecting a sub-frame costs far more than a few Series.to_numpy() calls.
        labels = {str(c): c for c in frame.columns}
        if len(labels) != len(frame.columns):
            twice = sorted(
                {str(c) for c in frame.columns if [str(d) for d in frame.columns].count(str(c)) > 1}
            )
            raise InputSchemaError(f"duplicate columns: {_listed(twice)}; send each column once")
        self._check_names(list(labels), len(frame))
        return self._from_columns({name: _cells(name, frame[labels[name]].to_numpy()) for name in self.names})

    def _from_columns(self, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The feed from the model's columns, each a 1-D array of cells of one length."""
        feed: dict[str, np.ndarray] = {}
        if self._num_input:
            arrays = [columns[n] for n in self._num_names]
            if all(a.dtype.kind in "fiub" for a in arrays):
                with np.errstate(over="ignore", invalid="ignore"):
                    matrix = np.stack(arrays, axis=1).astype(self._num_dtype, copy=False)
            else:
                matrix = np.stack(
                    [
                        _numeric_column(
                            n, a, self._num_dtype, self._specs[n].from_text == TEXT_BOOLEANS, self._words[n]
                        )
                        for n, a in zip(self._num_names, arrays, strict=False)
                    ],
                    axis=1,
                )
            feed[self._num_input] = _finite(matrix)
        if self._cat_input:
            feed[self._cat_input] = np.stack(
                [_categorical_column(n, columns[n], self._specs[n], self._words[n]) for n in self._cat_names],
                axis=1,
            )
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
                f"expected {self._n} columns ({_listed(self.names, 8)}), got {data.shape[1]}"
            )

    def _columns_of(self, data: Any) -> dict[str, np.ndarray]:
        """The model's columns of ``data`` (a mapping of columns, records, or rows), each a 1-D array of cells."""
        if isinstance(data, Mapping):
            names = [str(k) for k in data]
            read = {
                name: _cells(name, data[key])
                for name, key in zip(names, data, strict=False)
                if name in self._name_set
            }
            # Columns the model does not read are never looked into: only their lengths must agree.
            lengths = {len(v) for v in read.values()}
            lengths |= {
                _length(data[key])
                for name, key in zip(names, data, strict=False)
                if name not in self._name_set
            }
            if len(lengths) > 1:
                raise InputSchemaError(
                    f"columns have different lengths {sorted(lengths)}; send equal-length columns"
                )
            self._check_names(names, lengths.pop() if lengths else 0)
            return read
        if isinstance(data, (np.ndarray, list, tuple)):
            if len(data) == 0:
                raise InputSchemaError("empty batch: send at least one row")
            if isinstance(data, (list, tuple)) and all(isinstance(r, Mapping) for r in data):
                return self._from_records(list(data))
            if isinstance(data, np.ndarray) and data.ndim == 1 and all(isinstance(r, Mapping) for r in data):
                return self._from_records(list(data))
            array = data if isinstance(data, np.ndarray) else self._rows(data)
            self._check_array(array)
            return {name: array[:, i] for i, name in enumerate(self.names)}
        raise InputSchemaError(
            f"cannot read input of type {type(data).__name__}; pass a DataFrame, a dict of columns, "
            f"a list of records or a 2-D array"
        )

    def _rows(self, rows: list[Any] | tuple[Any, ...]) -> np.ndarray:
        """A list of rows as a 2-D object array, each cell kept whole (a list in a cell stays one cell)."""
        if any(isinstance(r, Mapping) for r in rows):
            raise InputSchemaError(
                "a list must hold records (mappings of column to value) or rows (lists of values), not both"
            )
        try:
            array = np.asarray(rows, dtype=object)
        except (ValueError, TypeError):  # rows or cells of unequal lengths
            array = None
        if array is not None and array.ndim == 2:
            return array
        if not all(isinstance(r, (list, tuple)) or (isinstance(r, np.ndarray) and r.ndim == 1) for r in rows):
            if array is not None:
                return array  # refused by _check_array, which names its shape
            raise InputSchemaError(f"expected a list of rows, each a list of {self._n} values")
        widths = sorted({len(r) for r in rows})
        if len(widths) > 1:
            raise InputSchemaError(
                f"rows have different lengths {widths[:5]}; send {self._n} values in every row"
            )
        out = np.empty((len(rows), widths[0]), dtype=object)
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                out[i, j] = value
        return out

    def _from_records(self, records: list[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        """The model's columns of ``records``, one row per record. A key missing from a record is a missing value
        where the column takes one, and an error otherwise."""
        keys: dict[str, None] = {}
        for record in records:
            keys.update(dict.fromkeys(str(k) for k in record))
        self._check_names(list(keys), len(records))
        columns = {}
        for name in self.names:
            values = [record.get(name, _ABSENT) for record in records]
            absent = [i for i, value in enumerate(values) if value is _ABSENT]
            if absent:
                if name not in self._may_be_missing:
                    raise InputSchemaError(
                        f"record {absent[0]} has no {_quoted(name)}, and that column takes no missing value; "
                        f"send {_quoted(name)} in every record"
                    )
                for i in absent:
                    values[i] = None
            columns[name] = _cells(name, values)
        return columns


def _length(values: Any) -> int:
    """How many rows a column the model does not read holds: its length, or 1 for a single value."""
    if isinstance(values, (list, tuple)):
        return len(values)
    if isinstance(values, np.ndarray):
        return len(values) if values.ndim else 1
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Sized):
        return 1
    return len(values)


def _listed(names: list[str], most: int = 12) -> str:
    return ", ".join(_label(n) for n in names[:most]) + (
        f" and {len(names) - most} more" if len(names) > most else ""
    )
