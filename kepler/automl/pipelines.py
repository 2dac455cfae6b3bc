"""The candidate Pipeline of a trial: preprocessing for the table's columns, then the family's estimator."""

from __future__ import annotations

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
) -> type:
    """A FLAML learner whose model is the Kepler candidate Pipeline of ``family``.

    FLAML instantiates it per trial with a configuration drawn from ``search_space``.
    """
    from flaml.automl.model import SKLearnEstimator

    def make_model(**params: Any) -> Any:
        params.pop("n_jobs", None)
        return candidate(family, params, task, seed, numeric, categorical)

    class KeplerLearner(SKLearnEstimator):
        kepler_family = family.name

        @classmethod
        def search_space(cls, data_size: Any, task: Any = None, **params: Any) -> dict[str, dict[str, Any]]:
            return family.space(int(data_size[0]), _task_name(task), interpretable)

        def __init__(self, task: Any = "binary", **config: Any) -> None:
            super().__init__(task, **config)
            self.estimator_class = make_model

        def predict_proba(self, X: Any, **kwargs: Any) -> Any:
            return self.model.predict_proba(X)

    KeplerLearner.__name__ = f"Kepler_{family.name}"
    return KeplerLearner


def _task_name(task: Any) -> str:
    name = getattr(task, "name", task) or "binary"
    return "regression" if str(name) == "regression" else "classification"
