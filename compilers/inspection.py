"""Inspecting a native model before conversion: fitted, supported, and what it predicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kepler.compilers.converters import COMPOSITE, TRANSFORMER, spec_for, supported
from kepler.compilers.converters.spec import ConverterSpec
from kepler.errors import UnsupportedModelError


@dataclass
class ModelInfo:
    """What conversion needs to know about a native model.

    Attributes:
        model: The model as given.
        final: The final estimator (the last step of a Pipeline).
        spec: The converter spec of the final estimator.
        leaves: Every non-composite component, in order.
        feature_names: Column names seen at fit time, if any.
        n_features: Number of input columns at fit time.
    """

    model: Any
    final: Any
    spec: ConverterSpec
    leaves: list[Any] = field(default_factory=list)
    feature_names: list[str] | None = None
    n_features: int | None = None

    @property
    def role(self) -> str:
        """classifier, regressor or outlier."""
        return self.spec.role

    @property
    def families(self) -> list[str]:
        """Families of every component, e.g. ``["preprocessing", "boosting"]``."""
        return [spec_for(leaf).family for leaf in self.leaves]  # type: ignore[union-attr]


def _children(obj: Any) -> list[Any]:
    name = type(obj).__name__
    if name == "Pipeline":
        return [step for _, step in obj.steps if step not in (None, "passthrough")]
    if name == "ColumnTransformer":
        transformers = getattr(obj, "transformers_", obj.transformers)
        return [t for _, t, _ in transformers if not isinstance(t, str)]
    if name == "FeatureUnion":
        return [t for _, t in obj.transformer_list if not isinstance(t, str)]
    return []


def _walk(obj: Any, leaves: list[Any]) -> None:
    spec = spec_for(obj)
    if spec is None:
        raise UnsupportedModelError(
            f"cannot compile {type(obj).__module__}.{type(obj).__name__}: no converter is registered for it; "
            f"supported: {', '.join(supported())}"
        )
    reason = spec.refuse(obj) if spec.refuse is not None else None
    if reason:
        raise UnsupportedModelError(f"cannot compile {type(obj).__name__}: {reason}")
    if spec.role == COMPOSITE:
        for child in _children(obj):
            _walk(child, leaves)
    else:
        leaves.append(obj)


def _check_fitted(obj: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(obj)
    except NotFittedError:
        raise UnsupportedModelError(
            f"the {type(obj).__name__} is not fitted; call fit(X, y) before compiling it"
        ) from None
    except TypeError as exc:
        raise UnsupportedModelError(
            f"{type(obj).__name__} is not an estimator ({exc}); pass a fitted model"
        ) from None


def inspect_model(model: Any) -> ModelInfo:
    """Checks that ``model`` is fitted and every component is supported.

    Raises:
        UnsupportedModelError: unfitted model, unsupported component, or no final estimator.
    """
    if not hasattr(model, "fit") or not (hasattr(model, "predict") or hasattr(model, "transform")):
        raise UnsupportedModelError(
            f"{type(model).__name__} is not a model; pass a fitted scikit-learn, XGBoost or LightGBM estimator"
        )
    leaves: list[Any] = []
    _walk(model, leaves)
    final = model.steps[-1][1] if type(model).__name__ == "Pipeline" else model
    final_spec = spec_for(final)
    if final_spec is None or final_spec.role in (TRANSFORMER, COMPOSITE):
        raise UnsupportedModelError(
            f"the model ends in {type(final).__name__}, not an estimator; "
            f"compile a Pipeline whose last step is one of: {', '.join(supported('classifier') + supported('regressor'))}"
        )
    _check_fitted(model)
    for leaf in leaves:
        _check_fitted(leaf)
    names = getattr(model, "feature_names_in_", None)
    n_features = getattr(model, "n_features_in_", None)
    return ModelInfo(
        model=model,
        final=final,
        spec=final_spec,
        leaves=leaves,
        feature_names=[str(n) for n in names] if names is not None else None,
        n_features=int(n_features) if n_features is not None else None,
    )
