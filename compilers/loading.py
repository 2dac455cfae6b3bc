"""Loading a fitted model from a file: joblib/pickle, XGBoost JSON/UBJ, or LightGBM text."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

from kepler.errors import ModelLoadError

PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
XGBOOST_SUFFIXES = (".json", ".ubj")
LIGHTGBM_SUFFIXES = (".txt", ".lgb")


def load_model(path: str | os.PathLike[str]) -> Any:
    """Loads a fitted model file, choosing the reader by suffix.

    Pickle and joblib files run code when loaded: load only files you trust.

    Raises:
        ModelLoadError: missing, unreadable, truncated or unrecognized file.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such model file; pass the path of a saved model")
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        return _load_pickle(path)
    if suffix in XGBOOST_SUFFIXES:
        return _load_xgboost(path)
    if suffix in LIGHTGBM_SUFFIXES:
        return _load_lightgbm(path)
    raise ModelLoadError(
        f"{path}: unknown model file type {suffix or '(none)'}; use .joblib/.pkl (scikit-learn), "
        f".json/.ubj (XGBoost) or .txt (LightGBM)"
    )


def _load_pickle(path: Path) -> Any:
    import joblib

    try:
        model = joblib.load(path)
    except (
        EOFError,
        pickle.UnpicklingError,
        ValueError,
        IndexError,
        KeyError,
        TypeError,
        AttributeError,
        ModuleNotFoundError,
        OSError,
    ) as exc:
        raise ModelLoadError(
            f"{path}: unreadable or truncated model file ({type(exc).__name__}: {str(exc)[:120]}); save it again "
            f"with joblib.dump(model, path)"
        ) from None
    if not hasattr(model, "predict") and not hasattr(model, "transform"):
        raise ModelLoadError(
            f"{path}: holds a {type(model).__name__}, not a model; save the fitted estimator"
        )
    return model


def _xgboost_is_classifier(booster: Any) -> bool:
    objective: str = json.loads(booster.save_config())["learner"]["objective"]["name"]
    return objective.startswith(("binary:", "multi:"))


def _load_xgboost(path: Path) -> Any:
    try:
        import xgboost as xgb
    except ImportError:
        raise ModelLoadError(f"{path}: reading an XGBoost model needs xgboost; pip install xgboost") from None
    try:
        booster = xgb.Booster()
        booster.load_model(str(path))
        model = xgb.XGBClassifier() if _xgboost_is_classifier(booster) else xgb.XGBRegressor()
        model.load_model(str(path))
    except (xgb.core.XGBoostError, ValueError, KeyError) as exc:
        raise ModelLoadError(
            f"{path}: not a readable XGBoost model ({str(exc).splitlines()[0][:120]}); "
            f"save it with model.save_model('model.json')"
        ) from None
    return model


def _load_lightgbm(path: Path) -> Any:
    try:
        import lightgbm as lgb
    except ImportError:
        raise ModelLoadError(
            f"{path}: reading a LightGBM model needs lightgbm; pip install lightgbm"
        ) from None
    try:
        booster = lgb.Booster(model_file=str(path))
    except (lgb.basic.LightGBMError, ValueError) as exc:
        raise ModelLoadError(
            f"{path}: not a readable LightGBM model ({str(exc).splitlines()[0][:120]}); "
            f"save it with booster.save_model('model.txt')"
        ) from None
    objective = str(booster.dump_model(num_iteration=1).get("objective", "regression")).split()[0]
    n_classes = int(booster.dump_model(num_iteration=1).get("num_class", 1))
    is_classifier = objective in ("binary", "multiclass", "multiclassova", "cross_entropy")
    classes = (2 if objective in ("binary", "cross_entropy") else n_classes) if is_classifier else None
    # The scikit-learn wrapper around the loaded booster, with the state LGBMModel.fit leaves.
    from kepler._compat.lightgbm import sklearn_model_around

    return sklearn_model_around(booster, objective, classes)
