"""Schema inference: classes each column (numeric, boolean, categorical, datetime, id, empty, constant) and types it."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from kepler.data.dataset import (
    BOOLEAN,
    CATEGORICAL,
    CONSTANT,
    DATETIME,
    DROPPED,
    EMPTY,
    FEATURE,
    ID,
    MISSING_CATEGORY,
    NESTED,
    NUMERIC,
    TEXT_BOOLEANS,
    TEXT_NUMBERS,
    ColumnInfo,
)
from kepler.data.files import NUMERIC_MISSING_WORDS
from kepler.data.values import shown
from kepler.errors import DataError

# A column is an id when at least this share of its values is distinct ...
ID_UNIQUE_SHARE = 0.95
# ... and it has at least this many distinct values: in a tiny table every value may be
# distinct by chance, and a categorical column must not be mistaken for an id.
ID_MIN_DISTINCT = 20
# A text column where this share of values parses as numbers is meant to be numeric.
NUMERIC_TEXT_SHARE = 0.90
# Categorical columns with more distinct values than this get a note: one-hot encoding them is wide.
WIDE_CATEGORICAL = 50
# Text booleans: the distinct values (lower-cased, stripped) must be exactly one of these pairs.
BOOLEAN_PAIRS = {
    frozenset({"true", "false"}): "true",
    frozenset({"yes", "no"}): "yes",
    frozenset({"0", "1"}): "1",
}

# Builds a ColumnInfo for the column being inferred: (kind, role=, note=, distinct=) -> ColumnInfo.
Describe = Callable[..., ColumnInfo]

_ISO_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}"  # date
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"  # optional time with seconds and fraction
    r"(?:Z|[+-]\d{2}:?\d{2})?)?"  # optional UTC offset
)


def infer_column(name: str, series: pd.Series) -> tuple[ColumnInfo, pd.Series | None]:
    """Classes one column and converts it to its feature type.

    The rules, in the order they are tried:

    0. ``nested`` (dropped): cells holding lists, arrays, sets or mappings (a Parquet list or struct column).
       A compiled model takes one number or one text per cell.
    1. ``empty`` (dropped): no values at all (every value missing or blank). ``constant`` (dropped): one
       distinct value and no missing values. Neither says anything about a row. A column with one value
       and some missing values is kept and typed by the rules below: whether a row has the value is
       all it carries, and that can matter (a fault code present only on some rows).
    2. ``datetime`` (a datetime dtype, date objects, or text where every value is an ISO 8601
       date) is dropped: the compiled graph takes the raw table, so features derived from a
       timestamp would have to be computed by callers.
    3. ``boolean``: a bool dtype; numbers whose only values are 0 and 1; or text whose only
       two values, ignoring case and surrounding spaces, are true/false, yes/no or 0/1.
       Stored as 0.0/1.0 (missing stays NaN).
    4. A pandas ``category`` dtype is ``categorical`` whatever its values (the caller chose it).
    5. ``numeric``: a numeric dtype, or text where every value parses as a number, apart from
       words that exported tables use for a gap (``—``, ``-``, ``n.a.``, ``?``: the list
       :data:`~kepler.data.files.NUMERIC_MISSING_WORDS`), which are read as missing values and
       counted in the column's note. Text where at least 90% of the other values parse but some
       do not is an error (a typo or an error code in a sensor column) naming the column, a bad
       value and its row. Durations become seconds; infinite numbers become missing
       (scikit-learn rejects infinity).
    6. ``id`` (dropped): text where at least 95% of the values are distinct and there are at
       least 20 distinct values, or integers that are unique and strictly monotonic (row ids,
       at least 20 rows). Floats are never ids: a real-valued sensor has many distinct values.
    7. ``categorical``: any other text; missing values become the string ``"missing"``.

    Args:
        name: The column name (used in notes and errors).
        series: The column; its index holds 0-based row positions in the source table,
            which errors report as 1-based row numbers.

    Returns:
        The column's :class:`ColumnInfo` and its values typed for training (float64 for
        numeric and boolean, object dtype of str for categorical), or None when dropped.

    Raises:
        DataError: the column holds text in an otherwise numeric column.
    """
    dtype = str(series.dtype)
    if series.dtype == object:
        nested = series[series.map(_is_nested)]
        if not nested.empty:
            return ColumnInfo(
                name=name,
                kind=NESTED,
                role=DROPPED,
                dtype=dtype,
                note=f"dropped: cells hold lists or other nested values ({len(nested)} rows, e.g. "
                f"{shown(_listed(nested.iloc[0]))}); a model takes one number or text per cell: "
                f"spread the values over columns of their own if they matter",
            ), None
    missing = _missing_mask(series)
    present = series[~missing]
    if present.empty:
        return ColumnInfo(
            name=name,
            kind=EMPTY,
            role=DROPPED,
            dtype=dtype,
            missing=int(missing.sum()),
            distinct=0,
            note="dropped: no values (every value is missing); a model cannot learn from it",
        ), None
    if not missing.any() and _single_value(present):
        return ColumnInfo(
            name=name,
            kind=CONSTANT,
            role=DROPPED,
            dtype=dtype,
            missing=0,
            distinct=1,
            note=f"dropped: the same value ({shown(present.iloc[0])}) in every row; "
            f"a model cannot learn from it",
        ), None

    def info(
        kind: str, role: str = FEATURE, note: str = "", distinct: int | None = None, from_text: str = ""
    ) -> ColumnInfo:
        count = int(present.nunique()) if distinct is None else distinct
        return ColumnInfo(
            name=name,
            kind=kind,
            role=role,
            note=note,
            dtype=dtype,
            missing=int(missing.sum()),
            distinct=count,
            from_text=from_text,
        )

    if pd.api.types.is_bool_dtype(series):
        return info(BOOLEAN), _as_float(series, missing)
    if (
        pd.api.types.is_datetime64_any_dtype(series)
        or isinstance(series.dtype, pd.PeriodDtype)
        or pd.api.types.infer_dtype(present, skipna=True) in ("date", "datetime", "datetime64")
    ):
        return info(DATETIME, DROPPED, _datetime_note()), None
    if pd.api.types.is_timedelta64_dtype(series):
        seconds = series.dt.total_seconds().astype("float64")
        return info(
            NUMERIC, note="durations converted to seconds (float64); callers must send seconds"
        ), seconds
    if isinstance(series.dtype, pd.CategoricalDtype):
        # A pandas categorical is the caller's explicit choice: keep it categorical whatever its values.
        return _categorical(info, series, missing)
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_complex_dtype(series):
        return _numeric(info, series, missing)
    return _text(name, info, series, missing, present)


def _is_nested(value: object) -> bool:
    return isinstance(value, (list, tuple, set, frozenset, dict, np.ndarray))


def _listed(value: object) -> object:
    """A nested cell as plain Python (an array as a list), for a message."""
    return value.tolist() if isinstance(value, np.ndarray) else value


def _single_value(present: pd.Series) -> bool:
    """True when every value is the same (unhashable values count as distinct)."""
    try:
        return present.nunique() == 1
    except TypeError:
        return False


def _missing_mask(series: pd.Series) -> pd.Series:
    """Missing values; in text columns blank strings count as missing too."""
    mask = series.isna()
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        blank = series.map(lambda v: isinstance(v, str) and not v.strip())
        mask = mask | blank.astype(bool)
    return mask


def _datetime_note() -> str:
    return (
        "dropped: datetime column; the compiled model takes the raw table, so features derived from it "
        "(hour, weekday, age) must be computed by callers; add them as columns if they matter"
    )


def _as_float(series: pd.Series, missing: pd.Series) -> pd.Series:
    if series.dtype != object and (
        pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
    ):
        # Numbers and booleans (nullable ones too) convert directly; the detour through objects cost a wide
        # table's loading about a millisecond per column.
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        return pd.Series(values, index=series.index, name=series.name)
    values = series.astype(object).where(~missing, np.nan)
    return pd.Series(values.to_numpy(dtype="float64", na_value=np.nan), index=series.index, name=series.name)


def _numeric(info: Describe, series: pd.Series, missing: pd.Series) -> tuple[ColumnInfo, pd.Series | None]:
    values = _as_float(series, missing)
    present = values[~missing]
    distinct = set(present.unique().tolist())
    if distinct == {0.0, 1.0}:
        return info(BOOLEAN), values
    if pd.api.types.is_integer_dtype(series) and not missing.any() and _is_row_id(series):
        return info(
            ID,
            DROPPED,
            "dropped: looks like a row id (unique, strictly monotonic integers); "
            "it would let a model memorise row order",
        ), None
    infinite = np.isinf(values)
    if infinite.any():
        # scikit-learn estimators and imputers reject infinity; NaN is treated as a missing reading.
        values = values.where(~infinite, np.nan)
        return info(NUMERIC, note=f"{int(infinite.sum())} infinite values treated as missing"), values
    return info(NUMERIC), values


def _is_row_id(series: pd.Series) -> bool:
    return (
        len(series) >= ID_MIN_DISTINCT
        and series.is_unique
        and (series.is_monotonic_increasing or series.is_monotonic_decreasing)
    )


def _text(
    name: str, info: Describe, series: pd.Series, missing: pd.Series, present: pd.Series
) -> tuple[ColumnInfo, pd.Series | None]:
    text = present.map(_as_text)
    stripped = text.str.strip()
    if (
        stripped.str.fullmatch(_ISO_DATE).all()
        and pd.to_datetime(stripped, format="ISO8601", errors="coerce", utc=True).notna().all()
    ):
        return info(DATETIME, DROPPED, _datetime_note()), None

    lowered = frozenset(stripped.str.lower().unique().tolist())
    if lowered in BOOLEAN_PAIRS:
        truthy = BOOLEAN_PAIRS[lowered]
        values = pd.Series(np.nan, index=series.index, dtype="float64", name=series.name)
        values[~missing] = (stripped.str.lower() == truthy).astype("float64").to_numpy()
        pair = "/".join(sorted(lowered, key=lambda v: v != truthy))
        return info(
            BOOLEAN,
            note=f"text {pair} stored as 1.0/0.0 (compiled models accept the text too)",
            from_text=TEXT_BOOLEANS,
        ), values

    words = stripped.isin(NUMERIC_MISSING_WORDS)
    numbers = pd.to_numeric(stripped[~words], errors="coerce")
    parsed = numbers.notna()
    if not numbers.empty and parsed.all():
        values = pd.Series(np.nan, index=series.index, dtype="float64", name=series.name)
        values[numbers.index] = numbers.astype("float64").to_numpy()
        note = "numbers stored as text converted to float64 (compiled models accept the text too)"
        if not words.any():
            return info(NUMERIC, note=note, from_text=TEXT_NUMBERS), values
        counts = stripped[words].value_counts()
        found = tuple(sorted(counts.index))
        listed = ", ".join(f"{word!r} ×{int(counts[word])}" for word in found)
        return ColumnInfo(
            name=name,
            kind=NUMERIC,
            role=FEATURE,
            dtype=str(series.dtype),
            missing=int(missing.sum() + words.sum()),
            distinct=int(numbers.nunique()),
            from_text=TEXT_NUMBERS,
            missing_words=found,
            note=f"{int(words.sum())} values read as missing ({listed}), as compiled models will "
            f"read them; the numbers stored as text converted to float64",
        ), values
    if not numbers.empty and parsed.mean() >= NUMERIC_TEXT_SHARE:
        bad = text[~words][~parsed]
        row = bad.index[0]
        raise DataError(
            f"column {name!r} is numeric but holds text: row {_row_number(row)} has {bad.iloc[0]!r} "
            f"({len(bad)} of {len(text)} values are not numbers); fix or blank out those values, "
            f"or drop the column with drop=[{name!r}]"
        )

    distinct = int(text.nunique())
    if distinct >= ID_MIN_DISTINCT and distinct >= ID_UNIQUE_SHARE * len(text):
        return info(
            ID,
            DROPPED,
            f"dropped: looks like an id ({distinct} distinct values in {len(text)} rows)",
            distinct=distinct,
        ), None
    return _categorical(info, series, missing)


def _categorical(info: Describe, series: pd.Series, missing: pd.Series) -> tuple[ColumnInfo, pd.Series]:
    values = series.astype(object).map(_as_text, na_action="ignore")
    values = values.where(~missing, MISSING_CATEGORY).astype(object)
    notes = []
    count = int(missing.sum())
    if count:
        # The graph takes strings only, so "missing" is a category of its own; compiled models map a
        # missing value sent at serving time to it (see input_typing).
        notes.append(f"{count} missing values replaced by {MISSING_CATEGORY!r} (compiled models do the same)")
    distinct = int(series[~missing].nunique())
    if distinct > WIDE_CATEGORICAL:
        notes.append(
            f"{distinct} distinct values make a wide one-hot encoding; drop it with drop=[...] "
            f"if it is free text"
        )
    return info(CATEGORICAL, note="; ".join(notes), distinct=distinct), values


def _as_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else str(value)


def _row_number(position: object) -> object:
    """1-based row number (header not counted) from a 0-based position."""
    return position + 1 if isinstance(position, (int, np.integer)) else position
