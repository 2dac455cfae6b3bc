"""Estimator families the search may try: how to build each, and its search space."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kepler.targets import Registry

CLASSIFICATION = "classification"
REGRESSION = "regression"


@dataclass(frozen=True)
class Family:
    """One searchable estimator family.

    Attributes:
        name: Family name used in presets and results.
        build: ``(params, task, seed) -> estimator``.
        space: ``(rows, task, interpretable) -> {param: FLAML domain spec}``.
        tasks: Tasks it serves.
        interpretable: Whether it stays in the search when interpretability is required.
        scaled: Whether numeric columns are standardized in front of it.
        dense: Whether it needs a dense matrix (one-hot encoding of a wide categorical column is sparse).
        estimators: Class names it produces, checked against the compiler's registry.
    """

    name: str
    build: Callable[[dict[str, Any], str, int], Any]
    space: Callable[[int, str, bool], dict[str, dict[str, Any]]]
    tasks: tuple[str, ...]
    estimators: tuple[str, ...]
    interpretable: bool = False
    scaled: bool = False
    dense: bool = False

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        """Pickles as its name in the registry: its functions are made per family, and trials on Spark ship the
        search state with the standard pickle."""
        return _registered, (self.name,)


def _registered(name: str) -> Family:
    return FAMILIES.get(name)


FAMILIES: Registry[Family] = Registry("estimator family")


def _tune() -> Any:
    from flaml import tune

    return tune


def _hp(domain: Any, init: Any, low_cost: Any = None) -> dict[str, Any]:
    spec = {"domain": domain, "init_value": init}
    if low_cost is not None:
        spec["low_cost_init_value"] = low_cost
    return spec


def _ints(params: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: int(round(v)) if k in names else v for k, v in params.items()}


# -- linear -----------------------------------------------------------------------------------------


def _linear_build(params: dict[str, Any], task: str, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge

    if task == CLASSIFICATION:
        return LogisticRegression(C=params["C"], class_weight=params.get("class_weight"), max_iter=2000)
    return Ridge(alpha=1.0 / params["C"])


def _linear_space(rows: int, task: str, interpretable: bool) -> dict[str, dict[str, Any]]:
    tune = _tune()
    space = {"C": _hp(tune.loguniform(1e-3, 1e3), 1.0)}
    if task == CLASSIFICATION:
        space["class_weight"] = _hp(tune.choice([None, "balanced"]), None)
    return space


# -- trees and forests ------------------------------------------------------------------------------


def _tree_build(params: dict[str, Any], task: str, seed: int) -> Any:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    p = _ints(params, "max_depth", "min_samples_leaf")
    if task == CLASSIFICATION:
        return DecisionTreeClassifier(
            max_depth=p["max_depth"],
            min_samples_leaf=p["min_samples_leaf"],
            class_weight=p.get("class_weight"),
            random_state=seed,
        )
    return DecisionTreeRegressor(
        max_depth=p["max_depth"], min_samples_leaf=p["min_samples_leaf"], random_state=seed
    )


def _tree_space(rows: int, task: str, interpretable: bool) -> dict[str, dict[str, Any]]:
    tune = _tune()
    space = {
        "max_depth": _hp(tune.randint(2, 5 if interpretable else 16), 4, 2),
        "min_samples_leaf": _hp(tune.lograndint(1, max(2, min(128, rows // 10))), 4),
    }
    if task == CLASSIFICATION:
        space["class_weight"] = _hp(tune.choice([None, "balanced"]), None)
    return space


def _forest_build(kind: str) -> Callable[[dict[str, Any], str, int], Any]:
    def build(params: dict[str, Any], task: str, seed: int) -> Any:
        from sklearn import ensemble

        p = _ints(params, "n_estimators", "max_depth", "min_samples_leaf")
        cls = getattr(ensemble, f"{kind}{'Classifier' if task == CLASSIFICATION else 'Regressor'}")
        extra = {"class_weight": p.get("class_weight")} if task == CLASSIFICATION else {}
        # An odd number of trees cannot tie 50/50 between two classes (see the README's precision policy).
        trees = p["n_estimators"] | 1
        return cls(
            n_estimators=trees,
            max_depth=p["max_depth"],
            max_features=p["max_features"],
            min_samples_leaf=p["min_samples_leaf"],
            random_state=seed,
            n_jobs=1,
            **extra,
        )

    return build


def _forest_space(rows: int, task: str, interpretable: bool) -> dict[str, dict[str, Any]]:
    tune = _tune()
    space = {
        "n_estimators": _hp(tune.lograndint(4, 256), 16, 4),
        "max_depth": _hp(tune.randint(3, 16), 8, 4),
        "max_features": _hp(tune.uniform(0.2, 1.0), 0.5),
        "min_samples_leaf": _hp(tune.lograndint(1, max(2, min(64, rows // 20))), 2),
    }
    if task == CLASSIFICATION:
        space["class_weight"] = _hp(tune.choice([None, "balanced", "balanced_subsample"]), None)
    return space


# -- boosting ---------------------------------------------------------------------------------------


def _xgboost_build(params: dict[str, Any], task: str, seed: int) -> Any:
    import xgboost as xgb

    p = _ints(params, "n_estimators", "max_depth")
    cls = xgb.XGBClassifier if task == CLASSIFICATION else xgb.XGBRegressor
    return cls(
        n_estimators=p["n_estimators"],
        max_depth=p["max_depth"],
        learning_rate=p["learning_rate"],
        subsample=p["subsample"],
        colsample_bytree=p["colsample_bytree"],
        min_child_weight=p["min_child_weight"],
        reg_lambda=p["reg_lambda"],
        random_state=seed,
        n_jobs=1,
    )


def _xgboost_space(
    limit_trees: int, limit_depth: int
) -> Callable[[int, str, bool], dict[str, dict[str, Any]]]:
    def space(rows: int, task: str, interpretable: bool) -> dict[str, dict[str, Any]]:
        tune = _tune()
        return {
            "n_estimators": _hp(tune.lograndint(4, limit_trees), min(32, limit_trees), 4),
            "max_depth": _hp(tune.randint(2, limit_depth + 1), min(6, limit_depth), 2),
            "learning_rate": _hp(tune.loguniform(0.01, 0.5), 0.1),
            "subsample": _hp(tune.uniform(0.5, 1.0), 1.0),
            "colsample_bytree": _hp(tune.uniform(0.5, 1.0), 1.0),
            "min_child_weight": _hp(tune.loguniform(0.5, 32.0), 1.0),
            "reg_lambda": _hp(tune.loguniform(1e-3, 32.0), 1.0),
        }

    return space


def _lightgbm_build(params: dict[str, Any], task: str, seed: int) -> Any:
    import lightgbm as lgb

    p = _ints(params, "n_estimators", "num_leaves", "min_child_samples")
    cls = lgb.LGBMClassifier if task == CLASSIFICATION else lgb.LGBMRegressor
    return cls(
        n_estimators=p["n_estimators"],
        num_leaves=p["num_leaves"],
        learning_rate=p["learning_rate"],
        min_child_samples=p["min_child_samples"],
        colsample_bytree=p["colsample_bytree"],
        reg_lambda=p["reg_lambda"],
        random_state=seed,
        n_jobs=1,
        verbose=-1,
    )


def _lightgbm_space(rows: int, task: str, interpretable: bool) -> dict[str, dict[str, Any]]:
    tune = _tune()
    return {
        "n_estimators": _hp(tune.lograndint(4, 512), 32, 4),
        "num_leaves": _hp(tune.lograndint(4, 128), 16, 4),
        "learning_rate": _hp(tune.loguniform(0.01, 0.5), 0.1),
        "min_child_samples": _hp(tune.lograndint(2, max(3, min(100, rows // 20))), 20),
        "colsample_bytree": _hp(tune.uniform(0.5, 1.0), 1.0),
        "reg_lambda": _hp(tune.loguniform(1e-3, 32.0), 1.0),
    }


def _hist_build(params: dict[str, Any], task: str, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    p = _ints(params, "max_iter", "max_leaf_nodes")
    cls = HistGradientBoostingClassifier if task == CLASSIFICATION else HistGradientBoostingRegressor
    return cls(
        max_iter=p["max_iter"],
        max_leaf_nodes=p["max_leaf_nodes"],
        learning_rate=p["learning_rate"],
        l2_regularization=p["l2_regularization"],
        random_state=seed,
    )


def _hist_space(rows: int, task: str, interpretable: bool) -> dict[str, dict[str, Any]]:
    tune = _tune()
    return {
        "max_iter": _hp(tune.lograndint(8, 256), 32, 8),
        "max_leaf_nodes": _hp(tune.lograndint(4, 64), 16, 4),
        "learning_rate": _hp(tune.loguniform(0.01, 0.5), 0.1),
        "l2_regularization": _hp(tune.loguniform(1e-4, 10.0), 1e-3),
    }


# -- anomaly ----------------------------------------------------------------------------------------


def _isolation_build(params: dict[str, Any], task: str, seed: int) -> Any:
    from sklearn.ensemble import IsolationForest

    p = _ints(params, "n_estimators")
    return IsolationForest(
        n_estimators=p["n_estimators"],
        max_samples=p["max_samples"],
        max_features=p["max_features"],
        random_state=seed,
        n_jobs=1,
    )


def _isolation_space(rows: int, task: str, interpretable: bool) -> dict[str, dict[str, Any]]:
    tune = _tune()
    return {
        "n_estimators": _hp(
            tune.lograndint(16, 256), 16, 16
        ),  # skl2onnx builds each tree in Python: ~40 ms a tree
        "max_samples": _hp(tune.uniform(0.1, 1.0), 0.25, 0.1),
        "max_features": _hp(tune.uniform(0.5, 1.0), 1.0),
    }


for _family in (
    # One linear family per task, so that results name the model they hold; both share the build, which
    # picks the estimator by task (a build recorded with the older shared name still rebuilds as it was).
    Family(
        "logistic_regression",
        _linear_build,
        _linear_space,
        (CLASSIFICATION,),
        ("LogisticRegression",),
        interpretable=True,
        scaled=True,
    ),
    Family("ridge", _linear_build, _linear_space, (REGRESSION,), ("Ridge",), interpretable=True, scaled=True),
    Family(
        "decision_tree",
        _tree_build,
        _tree_space,
        (CLASSIFICATION, REGRESSION),
        ("DecisionTreeClassifier", "DecisionTreeRegressor"),
        interpretable=True,
    ),
    Family(
        "random_forest",
        _forest_build("RandomForest"),
        _forest_space,
        (CLASSIFICATION, REGRESSION),
        ("RandomForestClassifier", "RandomForestRegressor"),
    ),
    Family(
        "extra_trees",
        _forest_build("ExtraTrees"),
        _forest_space,
        (CLASSIFICATION, REGRESSION),
        ("ExtraTreesClassifier", "ExtraTreesRegressor"),
    ),
    Family(
        "xgboost",
        _xgboost_build,
        _xgboost_space(512, 10),
        (CLASSIFICATION, REGRESSION),
        ("XGBClassifier", "XGBRegressor"),
    ),
    Family(
        "small_boosting",
        _xgboost_build,
        _xgboost_space(50, 3),
        (CLASSIFICATION, REGRESSION),
        ("XGBClassifier", "XGBRegressor"),
        interpretable=True,
    ),
    Family(
        "lightgbm",
        _lightgbm_build,
        _lightgbm_space,
        (CLASSIFICATION, REGRESSION),
        ("LGBMClassifier", "LGBMRegressor"),
    ),
    Family(
        "hist_gradient_boosting",
        _hist_build,
        _hist_space,
        (CLASSIFICATION, REGRESSION),
        ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor"),
        dense=True,
    ),
    Family("isolation_forest", _isolation_build, _isolation_space, (CLASSIFICATION,), ("IsolationForest",)),
):
    FAMILIES.register(_family.name, _family)

ALL_FAMILIES = tuple(n for n in FAMILIES.names() if n != "isolation_forest")

# A family named for one task stands for its twin on the other, so a list written for classification
# (``families = ["logistic_regression", ...]``) still searches a linear model on a regression label.
TASK_TWINS = {"logistic_regression": "ridge", "ridge": "logistic_regression"}


def list_families() -> list[str]:
    """Names of the registered families."""
    return FAMILIES.names()


def searchable(
    names: tuple[str, ...] | list[str], task: str, *, interpretable: bool, allowed: tuple[str, ...] = ()
) -> list[Family]:
    """The families to search: those named, serving ``task``, compilable, and allowed by the profile.

    ``allowed`` holds estimator class names or compiler families (``tree``, ``boosting``...). A linear
    family named for the other task stands for its twin (``logistic_regression`` searches ``ridge`` on a
    regression label, and the reverse).
    """
    from kepler.compilers.converters import CONVERTERS

    chosen: list[Family] = []
    for name in names:
        family = FAMILIES.get(name)
        if task not in family.tasks and name in TASK_TWINS:
            family = FAMILIES.get(TASK_TWINS[name])
        if any(f.name == family.name for f in chosen):
            continue
        if task not in family.tasks or (interpretable and not family.interpretable):
            continue
        if not all(e in CONVERTERS for e in family.estimators):
            continue
        if allowed and not any(
            e in allowed or CONVERTERS.get(e).family in allowed for e in family.estimators
        ):
            continue
        chosen.append(family)
    return chosen
