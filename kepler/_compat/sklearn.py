"""scikit-learn private attributes Kepler reads (written for scikit-learn 1.4–1.9)."""

from __future__ import annotations

from typing import Any


def fitted_predictors(estimator: Any) -> list[list[Any]]:
    """The trees of a fitted HistGradientBoosting model: one list per iteration, one tree per output.

    scikit-learn keeps them in the private ``_predictors``; each tree's ``nodes`` is a structured array
    with ``is_leaf`` and ``num_threshold`` (the float64 split thresholds the converter rounds to float32).
    """
    predictors: list[list[Any]] = estimator._predictors
    return predictors


def validate_params(estimator: Any) -> None:
    """Checks the constructor parameters of an unfitted estimator as its ``fit`` would, without data.

    scikit-learn (1.2+) checks them only in ``fit``, through the private ``_validate_params``, which raises
    ``InvalidParameterError`` (a ``ValueError`` and a ``TypeError``); an estimator without it is not checked.
    """
    if hasattr(estimator, "_validate_params"):
        estimator._validate_params()
