"""LightGBM's private fitted state of its scikit-learn wrapper (written for LightGBM 4.0–4.7)."""

from __future__ import annotations

from typing import Any

# What LGBMModel.fit (and LGBMClassifier.fit) leave on a fitted model, besides the public ``fitted_``.
FITTED_STATE = ("_Booster", "_n_features", "_n_features_in", "_objective", "_other_params")
CLASSIFIER_STATE = ("_n_classes", "_classes", "_le")


def sklearn_model_around(booster: Any, objective: str, classes: int | None) -> Any:
    """An ``LGBMClassifier`` (``classes`` labels ``0..classes-1``) or, for ``classes=None``, an ``LGBMRegressor``
    that predicts with ``booster`` (a ``lightgbm.Booster`` read from a model file).

    LightGBM has no public way to wrap a Booster in its scikit-learn API, which skl2onnx and onnxmltools
    convert; this sets the private state ``fit`` leaves (:data:`FITTED_STATE`, :data:`CLASSIFIER_STATE`).
    """
    import lightgbm as lgb
    import numpy as np

    model = lgb.LGBMClassifier() if classes is not None else lgb.LGBMRegressor()
    model._Booster = booster
    model.fitted_ = True
    model._n_features = booster.num_feature()
    model._n_features_in = booster.num_feature()
    model._objective = objective
    model._other_params = {}
    if classes is not None:
        model._n_classes = classes
        model._classes = np.arange(classes)
        from sklearn.preprocessing import LabelEncoder

        model._le = LabelEncoder().fit(model._classes)
    return model
