"""The label: missing values, the task it implies (classification or regression) and its class balance."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kepler.data.dataset import CLASSIFICATION, REGRESSION
from kepler.data.values import plain, shown
from kepler.errors import DataError

# Integer, boolean or text labels with at most this many classes are classification targets.
MAX_CLASSES = 20
# A binary label is imbalanced when its minority class has under 20% of the rows. For k classes
# the same rule reads "under 40% of the 1/k share a balanced split gives" (0.4 / 2 = 20%).
IMBALANCE_RATIO = 0.4


def missing_label(series: pd.Series) -> pd.Series:
    """Rows whose label is missing (NaN, None, or blank text)."""
    mask = series.isna()
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        mask = mask | series.map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)
    return mask


def prepare_label(name: str, label: pd.Series) -> tuple[pd.Series, str, list[str]]:
    """Infers the task from a label without missing values and types the label for it.

    Args:
        name: The label column's name (used in errors and notes).
        label: The label, missing rows already removed.

    Returns:
        The label (int64 classes for integral numbers, the source values for text and bool,
        float64 for regression), the task, and notes.

    Raises:
        DataError: the label has no values, holds dates or nested values (lists), or has a single value.
    """
    if label.empty:
        raise DataError(f"label {name!r} has no values; pick a label column that is filled in")
    if (
        label.dtype == object
        and label.map(lambda v: isinstance(v, (list, tuple, set, frozenset, dict, np.ndarray))).any()
    ):
        raise DataError(
            f"label {name!r} holds lists or other nested values; pick a column with one class or number "
            f"per row as the label"
        )
    if pd.api.types.is_datetime64_any_dtype(label):
        raise DataError(f"label {name!r} holds dates; pick a column of classes or numbers as the label")
    values = label
    if not pd.api.types.is_bool_dtype(values) and not pd.api.types.is_numeric_dtype(values):
        # Numbers stored as text (a DataFrame of strings) are numbers, as for features.
        numbers = pd.to_numeric(values.map(lambda v: str(v).strip()), errors="coerce")
        if numbers.notna().all():
            values = numbers
    distinct = values.unique()
    if len(distinct) < 2:
        raise DataError(
            f"label {name!r} has a single value ({shown(distinct[0])}) in all {len(values)} rows; "
            f"a model needs at least two classes: check the label column and the rows"
        )
    if pd.api.types.is_bool_dtype(values):
        return values, CLASSIFICATION, []
    if pd.api.types.is_numeric_dtype(values):
        floats = values.astype("float64")
        integral = bool(np.all(np.isfinite(floats)) and np.all(floats == np.round(floats)))
        if integral and len(distinct) <= MAX_CLASSES:
            return floats.astype("int64"), CLASSIFICATION, []
        return floats, REGRESSION, []
    notes = []
    if len(distinct) > MAX_CLASSES:
        notes.append(
            f"label {name!r} has {len(distinct)} classes; check that it is a class and not an id or free text"
        )
    return values.astype(object), CLASSIFICATION, notes


def class_balance(label: pd.Series) -> dict[str, Any]:
    """Rows per class, most frequent first, and whether the minority class is too small.

    Returns:
        ``counts`` (class -> rows), ``classes``, ``minority_class``, ``minority_share``
        (a fraction of the rows) and ``imbalanced``.
    """
    counts = label.value_counts(sort=False)
    # Most frequent first; ties in a stable order so reports do not change between runs.
    ordered = sorted(((plain(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], str(kv[0])))
    total = sum(v for _, v in ordered)
    minority, smallest = ordered[-1]
    share = smallest / total
    return {
        "counts": dict(ordered),
        "classes": len(ordered),
        "minority_class": minority,
        "minority_share": share,
        "imbalanced": share < IMBALANCE_RATIO / len(ordered),
    }
