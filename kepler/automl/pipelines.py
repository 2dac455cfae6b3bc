"""The candidate Pipeline of a trial: preprocessing for the table's columns, then the family's estimator."""

from __future__ import annotations

import copyreg
import time
from typing import Any

from kepler.automl.families import Family


def preprocessing(numeric: list[str], categorical: list[str], *, scaled: bool, dense: bool = False) -> Any:
    """A ColumnTransformer selecting columns by name: median imputation (and scaling) for numbers,
    one-hot encoding that ignores unseen categories for text; its output is dense when ``dense`` (a wide
    one-hot encoding is otherwise sparse, which HistGradientBoosting refuses)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if scaled:
        numeric_steps.append(("scale", StandardScaler()))
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(("numeric", Pipeline(numeric_steps), list(numeric)))
    if categorical:
        parts.append(("categorical", OneHotEncoder(handle_unknown="ignore"), list(categorical)))
    return ColumnTransformer(parts, sparse_threshold=0.0 if dense else 0.3)


def candidate(
    family: Family, params: dict[str, Any], task: str, seed: int, numeric: list[str], categorical: list[str]
) -> Any:
    """The unfitted Pipeline for one configuration of a family."""
    from sklearn.pipeline import Pipeline

    return Pipeline(
        [
            ("preprocessing", preprocessing(numeric, categorical, scaled=family.scaled, dense=family.dense)),
            ("model", family.build(params, task, seed)),
        ]
    )


def learner_class(
    family: Family,
    task: str,
    seed: int,
    numeric: list[str],
    categorical: list[str],
    *,
    interpretable: bool = False,
    trial_threads: int | None = None,
) -> type:
    """A FLAML learner whose model is the Kepler candidate Pipeline of ``family``.

    FLAML instantiates it per trial with a configuration drawn from ``search_space``. With ``trial_threads``
    (trials on Spark executors, where the driver's limits do not reach), its fit holds every native pool to
    that many threads, and a fit that raises is recorded as the trial's error (``kepler_fit_error``) instead of
    raising, since an executor's exception would stall FLAML's Spark loop until its deadline.
    """
    from flaml.automl.model import SKLearnEstimator

    def make_model(**params: Any) -> Any:
        params.pop("n_jobs", None)
        return candidate(family, params, task, seed, numeric, categorical)

    class KeplerLearner(SKLearnEstimator, metaclass=_LearnerType):
        kepler_family = family.name
        kepler_arguments = (
            family,
            task,
            seed,
            list(numeric),
            list(categorical),
            interpretable,
            trial_threads,
        )

        @classmethod
        def search_space(cls, data_size: Any, task: Any = None, **params: Any) -> dict[str, dict[str, Any]]:
            return family.space(int(data_size[0]), _task_name(task), interpretable)

        def __init__(self, task: Any = "binary", **config: Any) -> None:
            super().__init__(task, **config)
            self.estimator_class = make_model

        def predict_proba(self, X: Any, **kwargs: Any) -> Any:
            return self.model.predict_proba(X)

        if trial_threads is not None:

            def fit(
                self, X_train: Any, y_train: Any, budget: Any = None, free_mem_ratio: Any = 0, **kwargs: Any
            ) -> Any:
                from threadpoolctl import threadpool_limits

                self.kepler_fit_error = None
                started = time.perf_counter()
                try:
                    with threadpool_limits(limits=trial_threads):
                        return super().fit(
                            X_train, y_train, budget=budget, free_mem_ratio=free_mem_ratio, **kwargs
                        )
                except Exception as exc:
                    text = " ".join(str(exc).split())[:300]
                    self.kepler_fit_error = f"fitting {family.name} failed: {type(exc).__name__}: {text}"
                    return time.perf_counter() - started

    KeplerLearner.__name__ = f"Kepler_{family.name}"
    return KeplerLearner


class _LearnerType(type):
    """The type of the learner classes :func:`learner_class` makes: they pickle as the call that makes them.

    FLAML's trials on Spark broadcast the search state, learner classes included, with the standard pickle,
    which takes a class by its module and name: a class made per search has neither. Pickle looks up a class's
    type in ``copyreg``'s table first, so these classes go as ``learner_class(*kepler_arguments)``.
    """


def _learner_again(
    family: Family,
    task: str,
    seed: int,
    numeric: list[str],
    categorical: list[str],
    interpretable: bool,
    trial_threads: int | None,
) -> Any:
    return learner_class(
        family, task, seed, numeric, categorical, interpretable=interpretable, trial_threads=trial_threads
    )


def _reduce_learner(cls: Any) -> tuple[Any, tuple[Any, ...]]:
    return _learner_again, tuple(cls.kepler_arguments)


copyreg.pickle(_LearnerType, _reduce_learner)


def _task_name(task: Any) -> str:
    name = getattr(task, "name", task) or "binary"
    return "regression" if str(name) == "regression" else "classification"
