"""``kp.data.load``: a table in, a typed :class:`~kepler.data.dataset.Dataset` with a validated label out."""

from __future__ import annotations

import os
from collections.abc import Iterable

import pandas as pd

from kepler.data.dataset import DROPPED, FEATURE, LABEL, ColumnInfo, Dataset
from kepler.data.files import CSV_MISSING_WORDS, is_csv, read_source
from kepler.data.label import class_balance, missing_label, prepare_label
from kepler.data.schema import infer_column
from kepler.errors import DataError


def load(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    label: str | None = None,
    drop: Iterable[str] | None = None,
) -> Dataset:
    """Loads a table, infers the type of every column and validates the label.

    Columns are classed as numeric, boolean, categorical, datetime or id (see
    :mod:`kepler.data.schema` for the rules). Datetime and id columns, empty columns and
    constant ones (one value in every row) are dropped with a note; every change made to the
    data is listed in ``Dataset.notes``.

    Args:
        source: A CSV or Parquet path, or a pandas DataFrame (never modified).
        label: The label column. Rows with a missing label are dropped, and the task
            (classification or regression) is inferred from the label's values.
        drop: Columns to leave out, by name (a single name is accepted too).

    Returns:
        The dataset: typed feature columns, the label, the task, and a note per change.

    Raises:
        DataError: the source cannot be read or is empty; the label or a ``drop`` name is
            not a column; the label has one class; a column holds text among numbers; or no
            feature column is left.

    Example:
        >>> ds = kp.data.load("examples/data/sensors.csv", label="failure")
        >>> ds.task, ds.class_balance["imbalanced"]
        ('classification', True)
    """
    frame, where, notes = read_source(source)
    names = list(frame.columns)
    label = None if label is None else str(label)  # column names are text after reading
    dropped = _drop_list(drop, names, where)
    if label is not None and label not in names:
        raise DataError(f"{where}: no label column {label!r}; the columns are: {', '.join(names)}")
    if label is not None and label in dropped:
        raise DataError(f"{label!r} is both the label and in drop=[...]; remove it from drop")

    # Inference sees 0-based positions as the index, so errors can name rows; the source index comes back at the end.
    source_index = frame.index
    frame = frame.reset_index(drop=True)

    target = label_info = balance = task = None
    if label is not None:
        source_label = frame[label]
        missing = missing_label(source_label)
        if missing.any() and not missing.all():
            notes.append(f"dropped {int(missing.sum())} rows with a missing label {label!r}")
        frame = frame[~missing]
        target, task, label_notes = prepare_label(label, frame[label])
        notes.extend(label_notes)
        label_info = ColumnInfo(
            name=label,
            kind=LABEL,
            role=LABEL,
            note=f"{task} label",
            dtype=str(source_label.dtype),
            missing=int(missing.sum()),
            distinct=int(target.nunique()),
        )
        if task == "classification":
            balance = class_balance(target)

    columns: list[ColumnInfo] = []
    features: dict[str, pd.Series] = {}
    for name in names:
        if name == label:
            assert label_info is not None  # set above whenever there is a label
            columns.append(label_info)
            continue
        if name in dropped:
            columns.append(
                ColumnInfo(
                    name=name,
                    kind=None,
                    role=DROPPED,
                    note="dropped: drop=[...]",
                    dtype=str(frame[name].dtype),
                )
            )
            continue
        info, values = infer_column(name, frame[name])
        columns.append(info)
        if info.note:
            notes.append(f"column {name!r}: {info.note}")
        if info.role == FEATURE:
            features[name] = values
    if balance is not None and balance["imbalanced"]:
        assert label is not None  # a class balance is computed only for a label
        notes.append(_imbalance_note(label, balance))
    if not features:
        raise DataError(
            f"{where}: no feature columns are left (dropped or not usable: "
            f"{', '.join(c.name for c in columns if c.role == DROPPED)}); pass a table with features"
        )

    index = source_index[frame.index]
    typed = pd.DataFrame(features, index=frame.index)
    typed.index = index
    if target is not None:
        target = target.rename(label)
        target.index = index
    words = CSV_MISSING_WORDS if isinstance(source, (str, os.PathLike)) and is_csv(source) else ()
    return Dataset(
        frame=typed,
        label=target,
        label_name=label,
        task=task,
        columns=columns,
        notes=notes,
        class_balance=balance,
        source=where,
        missing_words=tuple(w for w in words if w),
    )


def _drop_list(drop: Iterable[str] | None, names: list[str], where: str) -> set[str]:
    if drop is None:
        return set()
    wanted = [drop] if isinstance(drop, str) else [str(d) for d in drop]
    unknown = [d for d in wanted if d not in names]
    if unknown:
        raise DataError(
            f"{where}: drop=[...] names no column {', '.join(map(repr, unknown))}; "
            f"the columns are: {', '.join(names)}"
        )
    return set(wanted)


def _imbalance_note(label: str, balance: dict) -> str:
    rows = sum(balance["counts"].values())
    smallest = balance["counts"][balance["minority_class"]]
    return (
        f"label {label!r} is imbalanced: class {balance['minority_class']!r} has "
        f"{balance['minority_share']:.1%} of the rows ({smallest} of {rows}); "
        f"judge models by recall, F1 or PR-AUC rather than accuracy"
    )
