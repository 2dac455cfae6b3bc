"""Classification labels as every family fits them: codes 0..k-1 of the sorted labels, restored inside the graph."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kepler.data.values import plain, shown
from kepler.errors import DataError


def _order(value: Any) -> tuple[str, Any]:
    # Labels of one type sort as they are (numbers by value, text alphabetically); mixed types group by type.
    return (type(value).__name__, value)


@dataclass(frozen=True)
class LabelCodes:
    """The label each code 0..k-1 stands for.

    XGBoost (and any family whose classes must be 0..k-1) refuses text or unordered labels, so every
    family of a search and the final refit are fit on codes; the compiled graph answers the labels
    (``kp.compile(..., class_labels=...)``).

    Attributes:
        labels: The distinct labels, sorted (plain Python values); code ``i`` stands for ``labels[i]``.
    """

    labels: tuple[Any, ...]

    @property
    def identity(self) -> bool:
        """Whether the labels are the codes themselves (integers 0..k-1): nothing to encode or restore."""
        return all(
            isinstance(v, int) and not isinstance(v, bool) and v == i for i, v in enumerate(self.labels)
        )

    @property
    def class_labels(self) -> list[Any] | None:
        """What ``kp.compile(..., class_labels=...)`` takes: the labels, or None when they are the codes."""
        return None if self.identity else list(self.labels)

    def code(self, label: Any) -> int:
        """The code of one label.

        Raises:
            DataError: an unknown label.
        """
        try:
            return self.labels.index(plain(label))
        except ValueError:
            raise DataError(
                f"class {shown(label)} is not one of the labels the model was built for "
                f"({', '.join(shown(v) for v in self.labels[:10])})"
            ) from None

    def encode(self, label: pd.Series) -> pd.Series:
        """The codes of a label column (int64, same index and name).

        Raises:
            DataError: a value that is not one of the labels.
        """
        mapping = {value: code for code, value in enumerate(self.labels)}
        codes = label.map(lambda v: mapping.get(plain(v), -1)).astype("int64")
        unknown = label[codes.to_numpy() < 0]
        if not unknown.empty:
            self.code(unknown.iloc[0])
        return codes

    def as_graph(self, label: pd.Series | Sequence[Any] | np.ndarray) -> np.ndarray:
        """Labels as the compiled graph answers them (text for labels that are neither all integers nor all
        floats, such as booleans), so that they compare with its predictions."""
        values = pd.Series(np.asarray(label, dtype=object))
        if self.identity:
            return np.asarray(label)
        from kepler.compilers.labels import decode

        return decode(self.encode(values).to_numpy(), list(self.labels))

    def decode(self, codes: Any) -> np.ndarray:
        """The labels (as the compiled graph answers them) that codes stand for, e.g. ``result.model.predict(rows)``."""
        if self.identity:
            return np.asarray(codes)
        from kepler.compilers.labels import decode

        return decode(np.asarray(codes), list(self.labels))


def label_codes(label: pd.Series) -> LabelCodes:
    """The codes of a classification label: its distinct values, sorted."""
    distinct = {plain(v) for v in pd.unique(label)}
    return LabelCodes(tuple(sorted(distinct, key=_order)))
