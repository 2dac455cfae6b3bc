"""Search metrics, each scored so that higher is better, computed from labels and positive-class scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from kepler.targets import Registry


@dataclass(frozen=True)
class Evaluation:
    """What a metric reads: true labels, predicted labels, and a score per row.

    Attributes:
        y_true: True labels (classification) or values (regression).
        y_pred: Predicted labels or values.
        scores: Positive-class probability or anomaly score (higher = more positive), or None.
        positive: The positive class label (binary classification), or None.
        options: Preset options (``precision_floor``, ``recall_target``).
    """

    y_true: np.ndarray
    y_pred: np.ndarray
    scores: np.ndarray | None = None
    positive: Any = None
    options: dict[str, float] | None = None

    def option(self, name: str, default: float) -> float:
        """A preset option, or its default."""
        return float((self.options or {}).get(name, default))

    @property
    def binary_truth(self) -> np.ndarray:
        """True labels as 0/1 for the positive class."""
        return (np.asarray(self.y_true) == self.positive).astype(int)


Metric = Callable[[Evaluation], float]
METRICS: Registry[Metric] = Registry("metric")


def register_metric(name: str) -> Callable[[Metric], Metric]:
    """Decorator that registers a metric; a taken name raises."""

    def decorate(fn: Metric) -> Metric:
        METRICS.register(name, fn)
        return fn

    return decorate


@register_metric("accuracy")
def accuracy(e: Evaluation) -> float:
    """Share of rows whose predicted label is right."""
    return float(np.mean(np.asarray(e.y_true) == np.asarray(e.y_pred)))


@register_metric("f1")
def f1(e: Evaluation) -> float:
    """F1 of the positive (failure) class for binary tasks; macro F1 otherwise."""
    from sklearn.metrics import f1_score

    if e.positive is not None:
        return float(f1_score(e.y_true, e.y_pred, pos_label=e.positive, zero_division=0))
    return float(f1_score(e.y_true, e.y_pred, average="macro", zero_division=0))


@register_metric("roc_auc")
def roc_auc(e: Evaluation) -> float:
    """Area under the ROC curve of the positive-class score."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(e.binary_truth, e.scores))


@register_metric("pr_auc")
def pr_auc(e: Evaluation) -> float:
    """Average precision of the positive-class score (imbalance-aware)."""
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(e.binary_truth, e.scores))


@register_metric("recall_at_precision")
def recall_at_precision(e: Evaluation) -> float:
    """Best recall over score thresholds whose precision reaches ``precision_floor`` (0 when none does)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(e.binary_truth, e.scores)
    ok = precision >= e.option("precision_floor", 0.5)
    return float(recall[ok].max()) if ok.any() else 0.0


@register_metric("fpr_at_recall")
def specificity_at_recall(e: Evaluation) -> float:
    """1 - false-positive rate at the first threshold whose recall reaches ``recall_target``.

    Higher is better like every metric here; the report also shows the false-positive rate itself.
    """
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(e.binary_truth, e.scores)
    reached = tpr >= e.option("recall_target", 0.8)
    return float(1.0 - fpr[reached].min()) if reached.any() else 0.0


@register_metric("r2")
def r2(e: Evaluation) -> float:
    """Coefficient of determination."""
    from sklearn.metrics import r2_score

    return float(r2_score(e.y_true, e.y_pred))


@register_metric("neg_rmse")
def neg_rmse(e: Evaluation) -> float:
    """Minus the root mean squared error."""
    return -float(
        np.sqrt(np.mean((np.asarray(e.y_true, dtype=float) - np.asarray(e.y_pred, dtype=float)) ** 2))
    )


def report(e: Evaluation, task: str) -> dict[str, float]:
    """The standard metrics of a task, for result tables (those that apply to the data)."""
    names = ("accuracy", "f1") if task == "classification" else ("r2", "neg_rmse")
    values = {name: METRICS.get(name)(e) for name in names}
    if (
        task == "classification"
        and e.scores is not None
        and e.positive is not None
        and len(set(e.binary_truth)) == 2
    ):
        from sklearn.metrics import precision_score, recall_score

        values.update(
            roc_auc=roc_auc(e),
            pr_auc=pr_auc(e),
            precision=float(precision_score(e.y_true, e.y_pred, pos_label=e.positive, zero_division=0)),
            recall=float(recall_score(e.y_true, e.y_pred, pos_label=e.positive, zero_division=0)),
        )
    return values
