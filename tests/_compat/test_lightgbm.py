"""Canaries of kepler._compat.lightgbm: the private state LightGBM's scikit-learn wrapper keeps once fitted, and a
wrapper rebuilt around a loaded Booster that predicts as the fitted model does."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from kepler._compat.lightgbm import CLASSIFIER_STATE, FITTED_STATE, sklearn_model_around

SHIM = "kepler._compat.lightgbm.sklearn_model_around"


def _data(classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    y = x[:, 0] + 0.1 * rng.normal(size=120)
    return (
        (x, y)
        if classes is None
        else (x, np.digitize(y, np.quantile(y, np.linspace(0, 1, classes + 1)[1:-1])))
    )


@pytest.mark.parametrize(("classes", "objective"), [(None, "regression"), (2, "binary"), (3, "multiclass")])
def test_a_model_around_a_loaded_booster_predicts_as_the_fitted_one(
    classes: int | None, objective: str
) -> None:
    x, y = _data(classes)
    model = lgb.LGBMRegressor if classes is None else lgb.LGBMClassifier
    fitted = model(n_estimators=5, min_child_samples=5, verbose=-1).fit(x, y)
    state = FITTED_STATE + (CLASSIFIER_STATE if classes else ())
    missing = [name for name in state if not hasattr(fitted, name)]
    assert missing == [], f"{SHIM}: a fitted LightGBM model no longer keeps {missing}"
    assert fitted._objective == objective, f"{SHIM}: LightGBM names the objective {fitted._objective!r}"

    loaded = lgb.Booster(model_str=fitted.booster_.model_to_string())
    rebuilt = sklearn_model_around(loaded, objective, classes)
    assert type(rebuilt) is type(fitted) and rebuilt.n_features_in_ == 3, SHIM
    np.testing.assert_allclose(rebuilt.predict(x), fitted.predict(x), err_msg=SHIM)
    if classes:
        np.testing.assert_allclose(rebuilt.predict_proba(x), fitted.predict_proba(x), err_msg=SHIM)
        assert list(rebuilt.classes_) == list(range(classes)), SHIM
