"""The test split and the validation folds: stratified, and holding every class, rare ones included."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kepler.automl.families import CLASSIFICATION
from kepler.data.values import plain, shown
from kepler.errors import DataError

TEST_SHARE = 0.2
CV_FOLDS = 5
# Rows a class needs: one in the test split, and two among the search's rows, so that a 2-fold
# cross-validation (the fewest folds) validates on it in each fold and trains on it in each fold.
MIN_CLASS_ROWS = 3
MIN_SEARCH_ROWS = 2


def check_class_rows(label: pd.Series, name: str | None = None) -> None:
    """Checks that every class of a classification label has enough rows for the test split and the folds.

    Raises:
        DataError: a class with fewer than :data:`MIN_CLASS_ROWS` rows, naming it, its row count and what to do.
    """
    counts = label.value_counts()
    rare = counts[counts < MIN_CLASS_ROWS].sort_values(kind="stable")  # the smallest first
    if rare.empty:
        return
    value, rows = rare.index[0], int(rare.iloc[0])
    others = (
        f" (and {len(rare) - 1} other class{'es' if len(rare) > 2 else ''} as small)" if len(rare) > 1 else ""
    )
    column = f"label {name!r}: " if name else ""
    raise DataError(
        f"{column}class {shown(value)} has {rows} row{'s' if rows != 1 else ''} of {len(label)}{others}; a build needs at "
        f"least {MIN_CLASS_ROWS} rows of each class (1 for the test split, 2 so that every validation fold holds it): "
        f"add rows of that class, merge it into another class, or drop its rows"
    )


def split_test(frame: Any, label: Any, task: str, seed: int) -> tuple[Any, ...]:
    """Holds out the test split (20%) that no search sees; for classification it is stratified and holds every
    class, and the rows left for the search hold at least two of each.

    A stratified split rounds each class's share, so a class of a few rows may get no test row: one of its
    rows then moves to the test split (and back, where the search would keep fewer than two).

    Returns:
        ``x_rest, y_rest, x_test, y_test``.

    Raises:
        DataError: a class with fewer than :data:`MIN_CLASS_ROWS` rows.
    """
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(frame))
    if task != CLASSIFICATION:
        rest, test = train_test_split(positions, test_size=TEST_SHARE, random_state=seed)
        return frame.iloc[rest], label.iloc[rest], frame.iloc[test], label.iloc[test]
    check_class_rows(label)
    y = np.asarray(label)
    try:
        rest, test = train_test_split(positions, test_size=TEST_SHARE, random_state=seed, stratify=y)
    except ValueError:  # fewer test rows than classes: a plain split, repaired below
        rest, test = train_test_split(positions, test_size=TEST_SHARE, random_state=seed)
    rest, test = _hold_every_class(list(rest), list(test), y)
    return frame.iloc[rest], label.iloc[rest], frame.iloc[test], label.iloc[test]


def _hold_every_class(rest: list[int], test: list[int], y: np.ndarray) -> tuple[list[int], list[int]]:
    in_test = pd.Series(y[test]).value_counts() if test else pd.Series(dtype="int64")
    in_rest = pd.Series(y[rest]).value_counts() if rest else pd.Series(dtype="int64")
    for value in pd.unique(y):
        if int(in_test.get(value, 0)) == 0:
            moved = next(p for p in rest if y[p] == value)
            rest.remove(moved)
            test.append(moved)
        elif int(in_rest.get(value, 0)) < MIN_SEARCH_ROWS:
            for moved in [p for p in test if y[p] == value][: MIN_SEARCH_ROWS - int(in_rest.get(value, 0))]:
                test.remove(moved)
                rest.append(moved)
    return rest, test


def cv_folds(label: Any, task: str) -> int:
    """Folds of the search's cross-validation: 5, or the smallest class's rows when it has fewer, so that every
    validation fold holds every class (a fold without the positive class has no ROC-AUC, and a family
    trained on a fold without a class refuses the labels)."""
    if task != CLASSIFICATION:
        return CV_FOLDS
    smallest = int(pd.Series(np.asarray(label)).value_counts().min())
    return max(MIN_SEARCH_ROWS, min(CV_FOLDS, smallest))


def smallest_class(label: Any) -> tuple[Any, int]:
    """The class with the fewest rows and its count."""
    counts = pd.Series(np.asarray(label)).value_counts()
    return plain(counts.index[-1]), int(counts.iloc[-1])
