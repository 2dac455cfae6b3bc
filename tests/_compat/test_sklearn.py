"""Canaries of kepler._compat.sklearn: HistGradientBoosting's fitted trees and parameter checks before fit."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.feature_selection import SelectKBest
from sklearn.preprocessing import StandardScaler

from kepler._compat.sklearn import fitted_predictors, validate_params


@pytest.mark.parametrize(
    ("model", "per_iteration"), [(HistGradientBoostingRegressor, 1), (HistGradientBoostingClassifier, 3)]
)
def test_fitted_predictors_are_the_trees_with_their_float64_thresholds(
    model: type, per_iteration: int
) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 3))
    y = x[:, 0] if per_iteration == 1 else np.digitize(x[:, 0], [-0.5, 0.5])
    fitted = model(max_iter=4, random_state=0).fit(x, y)
    trees = fitted_predictors(fitted)
    assert len(trees) == fitted.n_iter_ and all(len(t) == per_iteration for t in trees), (
        "kepler._compat.sklearn.fitted_predictors: _predictors is no longer one list of trees per iteration"
    )
    nodes = trees[0][0].nodes
    assert {"is_leaf", "num_threshold"} <= set(nodes.dtype.names), (
        "kepler._compat.sklearn.fitted_predictors: a tree's nodes lost is_leaf or num_threshold"
    )
    assert nodes["num_threshold"].dtype == np.float64, (
        "kepler._compat.sklearn.fitted_predictors: the split thresholds are no longer float64"
    )
    root = nodes[0]  # the root splits the rows: a row at its threshold goes left, one just above goes right
    if per_iteration == 1:
        rows = np.zeros((2, 3))
        rows[:, root["feature_idx"]] = [root["num_threshold"], np.nextafter(root["num_threshold"], np.inf)]
        low, high = fitted.predict(rows)
        assert low != high, (
            "kepler._compat.sklearn.fitted_predictors: the thresholds are not those the model uses"
        )


def test_validate_params_checks_the_constructor_parameters_without_data() -> None:
    validate_params(StandardScaler())
    validate_params(SelectKBest(k=3))
    with pytest.raises(ValueError, match="with_mean"):
        validate_params(StandardScaler(with_mean="sometimes"))
    with pytest.raises(TypeError):
        validate_params(SelectKBest(k=-2.5))


def test_scikit_learn_still_checks_parameters_only_through_its_private_method() -> None:
    assert callable(getattr(StandardScaler(), "_validate_params", None)), (
        "kepler._compat.sklearn.validate_params: scikit-learn estimators no longer have _validate_params"
    )
    StandardScaler(with_mean="sometimes")  # the constructor itself checks nothing
