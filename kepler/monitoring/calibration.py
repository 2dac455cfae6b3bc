"""Calibration tables for confidence-based performance estimation (NannyML's CBPE) without labels.

At build time, :meth:`CalibrationTable.fit` reads the model's probabilities on held-out rows with their
labels. Per class (for a binary model: the positive class only) it fits a monotone map from predicted to
observed probability (isotonic regression), and stores it as a short table of knots: the mean predicted
probability of each of about 20 equal-mass bins with the mean calibrated probability there, plus the two
ends. At estimate time, :meth:`CalibrationTable.calibrate` reads that table with ``np.interp`` (values
beyond the ends take the end values, as isotonic regression's ``clip`` does), and
:meth:`CalibrationTable.estimate` computes a metric's expected value from the expected confusion matrix:
each row counts as positive with its calibrated probability.

Under covariate shift (the inputs move, ``P(label | probability)`` does not) the estimate follows the
realized metric; under concept shift it cannot, and nothing label-free can.

The realized metric of labelled rows is computed by :func:`realized` with the same formulas (each row's
calibrated probabilities replaced by its one-hot label), so that estimate and truth are read the same
way; they agree with :mod:`kepler.automl.metrics` (scikit-learn) to rounding.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kepler.data.values import plain, shown
from kepler.errors import MonitoringError

SCHEMA_VERSION = 1
MAX_BYTES = 4096  # the JSON of a 10-class table stays at or under this
KNOTS = 20  # equal-mass bins per class map (before the ends are added), fewer when many classes
MIN_KNOTS = 4
DIGITS = 4  # decimals kept of each knot
DEFAULT_OPTIONS: dict[str, float] = {"precision_floor": 0.5, "recall_target": 0.8}
BINARY_METRICS = ("roc_auc", "pr_auc", "recall_at_precision", "fpr_at_recall")
METRICS = ("accuracy", "f1", "precision", "recall", *BINARY_METRICS)


@dataclass(frozen=True)
class ClassMap:
    """The calibration map of one class: predicted probability -> calibrated probability.

    Attributes:
        label: The class.
        x: Predicted probabilities (knots), strictly ascending.
        y: Calibrated probability at each knot, non-decreasing, in [0, 1].
    """

    label: Any
    x: tuple[float, ...]
    y: tuple[float, ...]

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of predicted ones (linear between knots, the end values beyond)."""
        out: np.ndarray = np.interp(scores, self.x, self.y)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields."""
        return {"class": plain(self.label), "x": list(self.x), "y": list(self.y)}


@dataclass
class CalibrationTable:
    """What CBPE needs of a classifier: its calibration maps and its realized metrics on held-out rows.

    Attributes:
        classes: The model's classes, in the order of its probability columns.
        positive: The positive class of a binary model (the build's ``positive_class``), else None.
        maps: One map per class (binary: one, for the positive class).
        rows: Held-out rows the table was fitted on.
        reference: The realized metrics on those rows (:data:`METRICS` that apply), by name.
        options: ``precision_floor`` and ``recall_target`` of the threshold metrics.
        schema_version: Version of this layout.
    """

    classes: list[Any]
    positive: Any
    maps: list[ClassMap]
    rows: int
    reference: dict[str, float] = field(default_factory=dict)
    options: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_OPTIONS))
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def fit(
        cls,
        probabilities: Any,
        labels: Any,
        classes: Sequence[Any],
        *,
        predictions: Any = None,
        positive: Any = None,
        options: dict[str, float] | None = None,
        knots: int | None = None,
    ) -> CalibrationTable:
        """Fits the calibration maps on held-out probabilities and their labels.

        Args:
            probabilities: The model's class probabilities, shape ``(rows, len(classes))``.
            labels: The true class of each row (values of ``classes``; matched as text where the types
                differ, as labels read from CSV do).
            classes: The classes, in the order of the probability columns.
            predictions: The model's predicted classes (default: the most probable class of each row).
            positive: The positive class of a binary model; default the rarer class of ``labels``
                (Kepler's builds pick it that way), ties going to the later class.
            options: ``precision_floor`` / ``recall_target`` (a use case's preset) for the reference
                metrics and later estimates.
            knots: Bins per class map (default: 20, fewer with many classes so the JSON stays small).

        Returns:
            The table.

        Raises:
            MonitoringError: shapes that do not match, no rows, a label or prediction that is no class.
        """
        from sklearn.isotonic import IsotonicRegression

        names = [plain(c) for c in classes]
        table = _probabilities(probabilities, len(names))
        if table.shape[0] == 0:
            raise MonitoringError("no held-out rows to fit a calibration table on; pass labelled rows")
        truth = class_indices(labels, names, "label")
        if truth.size != table.shape[0]:
            raise MonitoringError(
                f"{truth.size} labels for {table.shape[0]} rows of probabilities; pass one label per row"
            )
        unknown = truth < 0
        if unknown.any():
            bad = np.asarray(labels, dtype=object).ravel()[unknown][0]
            raise MonitoringError(
                f"label {shown(bad)} is none of the model's classes {_names(names)}; check the labels"
            )
        predicted = _predicted(table, predictions, names)
        positive_index = _positive_index(names, positive, truth)
        merged = dict(DEFAULT_OPTIONS)
        merged.update(options or {})
        mapped = [positive_index] if positive_index is not None else list(range(len(names)))
        per_class = knots if knots is not None else max(MIN_KNOTS, min(KNOTS, 200 // len(mapped)))
        fitted: list[tuple[np.ndarray, np.ndarray]] = []
        for k in mapped:
            order = np.argsort(table[:, k], kind="stable")
            scores = table[order, k]
            target = (truth[order] == k).astype(float)
            model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, target)
            fitted.append((scores, np.asarray(model.predict(scores), dtype=float)))
        result = cls(
            classes=names,
            positive=None if positive_index is None else names[positive_index],
            maps=[],
            rows=int(table.shape[0]),
            options={k: float(v) for k, v in merged.items()},
        )
        while True:
            result.maps = [
                _compact(names[k], scores, values, per_class)
                for k, (scores, values) in zip(mapped, fitted, strict=True)
            ]
            if per_class <= MIN_KNOTS or len(result.to_json().encode()) <= MAX_BYTES - 400:
                break
            per_class = max(MIN_KNOTS, per_class * 3 // 4)
        onehot = np.zeros_like(table)
        onehot[np.arange(truth.size), truth] = 1.0
        for metric in METRICS:
            if metric in BINARY_METRICS and positive_index is None:
                continue
            value = _metric(metric, onehot, predicted, table, positive_index, result.options)
            if value is not None:
                result.reference[metric] = _round(value, 6)
        return result

    @property
    def positive_index(self) -> int | None:
        """Column of the positive class (binary models), else None."""
        return None if self.positive is None else self.classes.index(self.positive)

    def calibrate(self, probabilities: Any) -> np.ndarray:
        """Calibrated class probabilities (rows sum to 1).

        Args:
            probabilities: Class probabilities, shape ``(rows, len(classes))``.

        Returns:
            An array of the same shape.

        Raises:
            MonitoringError: the shape does not match the classes.
        """
        table = _probabilities(probabilities, len(self.classes))
        out = np.empty_like(table)
        positive = self.positive_index
        if positive is not None:
            calibrated = self.maps[0](table[:, positive])
            out[:] = ((1.0 - calibrated) / max(len(self.classes) - 1, 1))[:, None]
            out[:, positive] = calibrated
            return out
        for k, class_map in enumerate(self.maps):
            out[:, k] = class_map(table[:, k])
        totals = out.sum(axis=1, keepdims=True)
        # A row every map sends to 0 keeps the model's own probabilities rather than dividing by zero.
        return np.where(totals > 0, out / np.where(totals > 0, totals, 1.0), table)

    def estimate(
        self,
        probabilities: Any,
        metric: str,
        *,
        predictions: Any = None,
        options: dict[str, float] | None = None,
    ) -> float:
        """The metric's expected value on unlabelled rows (CBPE).

        Args:
            probabilities: The model's class probabilities on the rows, shape ``(rows, len(classes))``.
            metric: One of :data:`METRICS` (``f1``, ``precision`` and ``recall`` are of the positive class
                for binary models, macro otherwise; the others need a binary model).
            predictions: The model's predicted classes (default: the most probable class of each row).
            options: Overrides of the table's ``precision_floor`` / ``recall_target``.

        Returns:
            The estimate.

        Raises:
            MonitoringError: an unknown metric or one that does not apply, no rows, bad shapes.
        """
        table = _probabilities(probabilities, len(self.classes))
        _check_metric(metric, self.positive_index)
        if table.shape[0] == 0:
            raise MonitoringError("no rows to estimate a metric on; pass the rows' probabilities")
        predicted = _predicted(table, predictions, self.classes)
        value = _metric(
            metric,
            self.calibrate(table),
            predicted,
            table,
            self.positive_index,
            {**self.options, **(options or {})},
        )
        return float("nan") if value is None else value

    def realized(
        self,
        probabilities: Any,
        labels: Any,
        metric: str,
        *,
        predictions: Any = None,
        options: dict[str, float] | None = None,
    ) -> float:
        """The metric's realized value on labelled rows, with the same formulas as :meth:`estimate`.

        Raises:
            MonitoringError: as :meth:`estimate`, or a label that is none of the classes.
        """
        return realized(
            probabilities,
            labels,
            metric,
            self.classes,
            positive=self.positive,
            predictions=predictions,
            options={**self.options, **(options or {})},
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe content (a few hundred bytes for a binary model, at most 4 KB for 10 classes)."""
        return {
            "schema_version": self.schema_version,
            "classes": [plain(c) for c in self.classes],
            "positive": plain(self.positive),
            "rows": self.rows,
            "maps": [m.to_dict() for m in self.maps],
            "reference": dict(self.reference),
            "options": dict(self.options),
        }

    def to_json(self) -> str:
        """Compact JSON text."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any) -> CalibrationTable:
        """A table from :meth:`to_dict`'s output.

        Raises:
            MonitoringError: the content is not a calibration table, or one of a newer schema version.
        """
        if not isinstance(data, dict) or "maps" not in data or "classes" not in data:
            raise MonitoringError("not a calibration table (no 'classes' and 'maps'); rebuild the artifact")
        version = data.get("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise MonitoringError(
                f"calibration table schema version {version!r} is newer than this Kepler reads "
                f"({SCHEMA_VERSION}); upgrade Kepler"
            )
        try:
            classes = list(data["classes"])
            positive = data.get("positive")
            maps = [
                ClassMap(m["class"], tuple(float(v) for v in m["x"]), tuple(float(v) for v in m["y"]))
                for m in data["maps"]
            ]
            table = cls(
                classes=classes,
                positive=positive,
                maps=maps,
                rows=int(data.get("rows", 0)),
                reference={str(k): float(v) for k, v in dict(data.get("reference", {})).items()},
                options={
                    **DEFAULT_OPTIONS,
                    **{str(k): float(v) for k, v in dict(data.get("options", {})).items()},
                },
                schema_version=version,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MonitoringError(
                f"a calibration table with a bad field ({type(exc).__name__}: {exc}); rebuild the artifact"
            ) from None
        expected = 1 if positive is not None else len(classes)
        if (
            (positive is not None and positive not in classes)
            or len(maps) != expected
            or any(len(m.x) != len(m.y) or not m.x for m in maps)
        ):
            raise MonitoringError(
                "a calibration table whose maps do not match its classes; rebuild the artifact"
            )
        return table


def realized(
    probabilities: Any,
    labels: Any,
    metric: str,
    classes: Sequence[Any],
    *,
    positive: Any = None,
    predictions: Any = None,
    options: dict[str, float] | None = None,
) -> float:
    """A metric's realized value on labelled rows (scikit-learn's definitions, computed as CBPE reads them).

    Args:
        probabilities: Class probabilities, shape ``(rows, len(classes))`` (the scores of the ranking
            metrics; the predictions when ``predictions`` is None).
        labels: True classes.
        metric: One of :data:`METRICS`.
        classes: The classes, in the order of the probability columns.
        positive: The positive class (binary models); None for macro averages.
        predictions: Predicted classes (default: the most probable class of each row).
        options: ``precision_floor`` / ``recall_target``.

    Raises:
        MonitoringError: an unknown metric or one that needs a positive class, no rows, bad shapes, or a
            label that is none of the classes.
    """
    names = [plain(c) for c in classes]
    table = _probabilities(probabilities, len(names))
    positive_index = None if positive is None else _class_index(names, positive, "positive class")
    _check_metric(metric, positive_index)
    truth = class_indices(labels, names, "label")
    if truth.size != table.shape[0]:
        raise MonitoringError(f"{truth.size} labels for {table.shape[0]} rows; pass one label per row")
    if table.shape[0] == 0:
        raise MonitoringError("no labelled rows to compute a metric on")
    if (truth < 0).any():
        bad = np.asarray(labels, dtype=object).ravel()[truth < 0][0]
        raise MonitoringError(
            f"label {shown(bad)} is none of the model's classes {_names(names)}; check the labels"
        )
    onehot = np.zeros_like(table)
    onehot[np.arange(truth.size), truth] = 1.0
    value = _metric(
        metric,
        onehot,
        _predicted(table, predictions, names),
        table,
        positive_index,
        {**DEFAULT_OPTIONS, **(options or {})},
    )
    return float("nan") if value is None else value


def class_indices(values: Any, classes: Sequence[Any], what: str = "value") -> np.ndarray:
    """The column index of each value among ``classes``, -1 where it is none of them.

    Values match a class when equal, or when their text is (``"1"`` and ``1``, as a CSV gives them).
    """
    items = np.asarray(values, dtype=object).ravel()
    exact = {plain(c): i for i, c in enumerate(classes)}
    text = {str(plain(c)): i for i, c in enumerate(classes)}
    out = np.full(items.size, -1, dtype=np.int64)
    for row, value in enumerate(items):
        value = plain(value)
        try:
            index = exact.get(value)
        except TypeError:  # an unhashable value is no class
            index = None
        if index is None:
            index = text.get(_text(value))
        if index is not None:
            out[row] = index
    return out


def _text(value: Any) -> str:
    # 1.0 read from a CSV column with missing values is the class 1.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _class_index(classes: list[Any], value: Any, what: str) -> int:
    index = int(class_indices([value], classes)[0])
    if index < 0:
        raise MonitoringError(f"{what} {shown(value)} is none of the model's classes {_names(classes)}")
    return index


def _names(classes: Sequence[Any], limit: int = 8) -> str:
    shown_ = ", ".join(shown(c, 20) for c in list(classes)[:limit])
    return f"[{shown_}{', …' if len(classes) > limit else ''}]"


def _probabilities(probabilities: Any, n_classes: int) -> np.ndarray:
    try:
        table = np.asarray(probabilities, dtype=float)
    except (TypeError, ValueError):
        raise MonitoringError("probabilities must be numbers; pass the model's class probabilities") from None
    if table.ndim != 2 or table.shape[1] != n_classes:
        raise MonitoringError(
            f"probabilities of shape {table.shape} for {n_classes} classes; pass one column per class"
        )
    if n_classes < 2:
        raise MonitoringError("a calibration table needs a classifier of at least two classes")
    if not np.isfinite(table).all():
        raise MonitoringError("probabilities hold NaN or infinite values; pass the model's probabilities")
    return table


def _predicted(table: np.ndarray, predictions: Any, classes: Sequence[Any]) -> np.ndarray:
    if predictions is None:
        predicted: np.ndarray = np.argmax(table, axis=1)
        return predicted
    predicted = class_indices(predictions, classes, "prediction")
    if predicted.size != table.shape[0]:
        raise MonitoringError(f"{predicted.size} predictions for {table.shape[0]} rows; pass one per row")
    if (predicted < 0).any():
        bad = np.asarray(predictions, dtype=object).ravel()[predicted < 0][0]
        raise MonitoringError(f"prediction {shown(bad)} is none of the model's classes {_names(classes)}")
    return predicted


def _positive_index(classes: list[Any], positive: Any, truth: np.ndarray) -> int | None:
    if positive is not None:
        if len(classes) != 2:
            raise MonitoringError(
                f"a positive class is for binary models; this one has {len(classes)} classes"
            )
        return _class_index(classes, positive, "positive class")
    if len(classes) != 2:
        return None
    counts = np.bincount(truth, minlength=2)
    return 0 if counts[0] < counts[1] else 1


def _check_metric(metric: str, positive_index: int | None) -> None:
    if metric not in METRICS:
        raise MonitoringError(
            f"metric {metric!r} cannot be estimated from probabilities; use one of {', '.join(METRICS)}"
        )
    if metric in BINARY_METRICS and positive_index is None:
        raise MonitoringError(f"metric {metric!r} needs a binary model with a positive class")


def _compact(label: Any, scores: np.ndarray, values: np.ndarray, bins: int) -> ClassMap:
    """Knots of an isotonic fit: the two ends, and the mean score and fit of each equal-mass bin."""
    xs = [float(scores[0])]
    ys = [float(values[0])]
    for chunk in np.array_split(np.arange(scores.size), min(bins, scores.size)):
        if chunk.size:
            xs.append(float(scores[chunk].mean()))
            ys.append(float(values[chunk].mean()))
    xs.append(float(scores[-1]))
    ys.append(float(values[-1]))
    x = np.round(np.asarray(xs), DIGITS)
    y = np.clip(np.round(np.maximum.accumulate(np.asarray(ys)), DIGITS), 0.0, 1.0)
    # Equal knots (ties, or bins closer than the rounding) merge into one, their fit averaged.
    unique, start = np.unique(x, return_index=True)
    merged = np.round(np.add.reduceat(y, start) / np.diff(np.r_[start, x.size]), DIGITS)
    return ClassMap(plain(label), tuple(float(v) for v in unique), tuple(float(v) for v in merged))


def _confusion(truth: np.ndarray, predicted: np.ndarray, k: int) -> tuple[float, float, float]:
    """Expected true positives, false positives and false negatives of class ``k`` (one against rest)."""
    hit = predicted == k
    p = truth[:, k]
    tp = float(p[hit].sum())
    return tp, float(hit.sum()) - tp, float(p[~hit].sum())


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def _metric(
    metric: str,
    truth: np.ndarray,
    predicted: np.ndarray,
    scores: np.ndarray,
    positive: int | None,
    options: dict[str, float],
) -> float | None:
    """A metric from (expected) class memberships: one-hot labels give the realized metric, calibrated
    probabilities the CBPE estimate. None where it is undefined (a ranking metric with one class only)."""
    if metric == "accuracy":
        return float(truth[np.arange(predicted.size), predicted].mean())
    if metric in ("f1", "precision", "recall"):
        ks = [positive] if positive is not None else range(truth.shape[1])
        values = []
        for k in ks:
            tp, fp, fn = _confusion(truth, predicted, k)
            if positive is None and tp + fn <= 0 and not (predicted == k).any():
                continue  # scikit-learn's macro averages over the classes present in labels or predictions
            if metric == "f1":
                values.append(_ratio(2 * tp, 2 * tp + fp + fn))
            else:
                values.append(_ratio(tp, tp + (fp if metric == "precision" else fn)))
        return float(np.mean(values)) if values else 0.0
    assert positive is not None
    tps, fps = _curve(truth[:, positive], scores[:, positive])
    pos, neg = tps[-1], fps[-1]
    if pos <= 0 or (neg <= 0 and metric in ("roc_auc", "fpr_at_recall")):
        return None
    recall = tps / pos
    if metric == "roc_auc":
        tpr, fpr = np.r_[0.0, recall], np.r_[0.0, fps / neg]
        return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    if metric == "fpr_at_recall":
        tpr, fpr = np.r_[0.0, recall], np.r_[0.0, fps / neg]
        reached = tpr >= options["recall_target"] - 1e-12
        return float(1.0 - fpr[reached].min()) if reached.any() else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tps + fps > 0, tps / (tps + fps), 1.0)
    if metric == "pr_auc":
        return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    ok = precision >= options["precision_floor"] - 1e-12
    return float(recall[ok].max()) if ok.any() else 0.0


def _curve(membership: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative (expected) positives and negatives above each distinct score, highest first."""
    order = np.argsort(-score, kind="stable")
    ordered = score[order]
    members = membership[order]
    last = np.r_[np.flatnonzero(np.diff(ordered)), ordered.size - 1]
    tps = np.cumsum(members)[last]
    fps = (last + 1) - tps
    return tps, fps


def _round(value: float, digits: int) -> float:
    return float(round(value, digits)) if math.isfinite(value) else value
