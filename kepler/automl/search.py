"""The constraint-aware search: FLAML picks configurations, Kepler measures each compiled candidate."""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kepler.automl import budgets as budget_mod
from kepler.automl.families import CLASSIFICATION, Family
from kepler.automl.measure import measure_compiled
from kepler.automl.metrics import METRICS, Evaluation
from kepler.automl.pipelines import learner_class
from kepler.targets import TargetProfile

_FAILED = 1e9  # what a trial that cannot be compiled reports, so FLAML steers away from it
PROBE_ROWS = 64


@dataclass
class Trial:
    """One evaluated configuration and what the compiled candidate measured."""

    number: int
    family: str
    config: dict[str, Any]
    val_score: float
    p99_ms: float
    p50_ms: float
    size_mb: float
    elapsed_s: float
    error: str | None = None
    violations: dict[str, float] = field(default_factory=dict)

    @property
    def compliant(self) -> bool:
        """No error and no budget broken."""
        return self.error is None and not self.violations

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (infinite figures become None)."""
        def clean(value: Any) -> Any:
            return None if isinstance(value, float) and not math.isfinite(value) else value

        return {"number": self.number, "family": self.family, "config": _plain(self.config),
                "val_score": clean(self.val_score), "p99_ms": clean(self.p99_ms), "p50_ms": clean(self.p50_ms),
                "size_mb": clean(self.size_mb), "elapsed_s": self.elapsed_s, "error": self.error,
                "violations": self.violations, "compliant": self.compliant}


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in config.items()}


@dataclass
class SearchSpec:
    """Everything a search needs besides the data."""

    task: str
    metric: str
    metric_options: dict[str, float]
    families: list[Family]
    profile: TargetProfile
    budgets: dict[str, dict[str, Any]]
    time_budget_s: float
    seed: int
    interpretable: bool
    positive: Any = None


def evaluate(model: Any, rows: Any, truth: Any, spec: SearchSpec) -> Evaluation:
    """Predictions and scores of a fitted model (native or compiled Predictor) on labelled rows."""
    truth = np.asarray(truth)
    if spec.task != CLASSIFICATION:
        return Evaluation(truth, np.asarray(model.predict(rows)), options=spec.metric_options)
    final = model.steps[-1][1] if hasattr(model, "steps") else None
    is_outlier = type(final).__name__ == "IsolationForest" or getattr(model, "task", None) == "outlier"
    if is_outlier:
        scores = -np.asarray(model.decision_function(rows), dtype=float)
        negatives = [c for c in np.unique(truth) if c != spec.positive]
        flagged = np.asarray(model.predict(rows)) == -1
        labels = np.where(flagged, spec.positive, negatives[0] if negatives else spec.positive)
        return Evaluation(truth, labels, scores, spec.positive, spec.metric_options)
    proba = np.asarray(model.predict_proba(rows), dtype=float)
    classes = list(model.classes_)
    scores = proba[:, classes.index(spec.positive)] if spec.positive is not None else None
    return Evaluation(truth, np.asarray(model.predict(rows)), scores, spec.positive, spec.metric_options)


CV_MAX_ROWS = 20_000  # below this, 5-fold cross-validation: a small validation split picks noise
CV_FOLDS = 5


def run_search(x_fit: Any, y_fit: Any, spec: SearchSpec, numeric: list[str], categorical: list[str],
               progress: Callable[[Trial, Trial | None, float], None] | None = None) -> tuple[list[Trial], float]:
    """Runs FLAML over the families; every configuration is compiled and timed under the profile.

    Small tables are scored by 5-fold cross-validation, larger ones on a 20% holdout; either
    way the rows passed here exclude the test split. A configuration is converted and timed
    once, on its first fold, since every fold builds the same graph shape.

    Returns:
        Every trial (one per configuration), in order, and the seconds the search took.
    """
    from flaml import AutoML

    trials: dict[tuple, Trial] = {}
    fold_scores: dict[tuple, list[float]] = {}
    started = time.perf_counter()
    score_of = METRICS.get(spec.metric)

    def metric(X_val: Any, y_val: Any, estimator: Any, labels: Any, X_train: Any, y_train: Any,
               *args: Any, **kwargs: Any) -> tuple[float, dict[str, float]]:
        model = estimator._model
        score = float(score_of(evaluate(model, X_val, y_val, spec)))
        config = {k: v for k, v in estimator.params.items() if k != "n_jobs"}
        family = getattr(estimator, "kepler_family", "?")
        key = (family, tuple(sorted((k, repr(v)) for k, v in config.items())))
        trial = trials.get(key)
        if trial is None:
            measured = measure_compiled(model, X_val.head(PROBE_ROWS), spec.profile)
            trial = Trial(number=len(trials) + 1, family=family, config=config, val_score=score,
                          p99_ms=measured["p99_ms"], p50_ms=measured["p50_ms"], size_mb=measured["size_mb"],
                          elapsed_s=0.0, error=measured["error"])
            for budget, value in (("latency_p99_ms", trial.p99_ms), ("size_mb", trial.size_mb)):
                limit = spec.budgets[budget]["limit"]
                if value > limit:
                    trial.violations[budget] = value / limit
            trials[key] = trial
            fold_scores[key] = []
        fold_scores[key].append(score)
        trial.val_score = float(np.mean(fold_scores[key]))
        trial.elapsed_s = time.perf_counter() - started
        if progress is not None:
            best = max((t for t in trials.values() if t.compliant), key=lambda t: t.val_score, default=None)
            progress(trial, best, trial.elapsed_s)
        if trial.error is not None:
            return _FAILED, {"p99_ms": _FAILED, "size_mb": _FAILED, "val_score": score}
        return -score, {"p99_ms": trial.p99_ms, "size_mb": trial.size_mb, "val_score": score}

    # FLAML logs its own model into an active MLflow run (MLflow 3.17 refuses its types) and leaves mlruns/;
    # Kepler records its own runs.
    automl = AutoML(mlflow_logging=False)
    learners = []
    for family in spec.families:
        learners.append(f"kepler_{family.name}")
        automl.add_learner(learners[-1], learner_class(
            family, spec.task, spec.seed, numeric, categorical, interpretable=spec.interpretable))
    logging.getLogger("flaml.automl.logger").setLevel(logging.ERROR)
    evaluation = ({"eval_method": "cv", "n_splits": CV_FOLDS} if len(x_fit) <= CV_MAX_ROWS
                  else {"eval_method": "holdout", "split_ratio": 0.2})
    with warnings.catch_warnings():
        # FLAML 2.7 calls pandas APIs that pandas 3 deprecates; the warnings are FLAML's to fix.
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        automl.fit(
            x_fit, y_fit, task=spec.task, metric=metric, **evaluation,
            metric_constraints=[("p99_ms", "<=", spec.budgets["latency_p99_ms"]["limit"]),
                                ("size_mb", "<=", spec.budgets["size_mb"]["limit"])],
            estimator_list=learners, time_budget=spec.time_budget_s, seed=spec.seed, skip_transform=True,
            retrain_full=False, verbose=0, log_file_name="", n_jobs=1, auto_augment=False, early_stop=False,
            keep_search_state=False, model_history=False, mlflow_logging=False,
        )
    return list(trials.values()), time.perf_counter() - started


def pareto_front(trials: list[Trial]) -> list[Trial]:
    """Trials no other trial beats on validation score, p99 latency and size at once."""
    candidates = [t for t in trials if t.error is None]
    front = []
    for t in candidates:
        dominated = any(
            o is not t and o.val_score >= t.val_score and o.p99_ms <= t.p99_ms and o.size_mb <= t.size_mb
            and (o.val_score > t.val_score or o.p99_ms < t.p99_ms or o.size_mb < t.size_mb)
            for o in candidates)
        if not dominated:
            front.append(t)
    return sorted(front, key=lambda t: -t.val_score)


def closest_candidates(trials: list[Trial], limit: int = 5) -> list[dict[str, Any]]:
    """The trials that came nearest to every budget, with what each broke and by how much."""
    ranked = sorted((t for t in trials if t.error is None), key=lambda t: max(t.violations.values(), default=0.0))
    return [{"trial": t.number, "family": t.family, "val_score": t.val_score, "p99_ms": t.p99_ms,
             "size_mb": t.size_mb, "broken": {k: {"over_by": round(v, 3)} for k, v in t.violations.items()}}
            for t in ranked[:limit]]


budget_check = budget_mod.check
