"""What a converter registration says: which native class it handles and what that class is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kepler.targets import Registry

# Roles of a supported class inside a model.
CLASSIFIER = "classifier"
REGRESSOR = "regressor"
OUTLIER = "outlier"
TRANSFORMER = "transformer"
COMPOSITE = "composite"


@dataclass(frozen=True)
class ConverterSpec:
    """A native class Kepler can compile.

    Attributes:
        name: Registry name, the class name (``RandomForestClassifier``).
        package: Top-level package the class comes from (``sklearn``, ``xgboost``, ``lightgbm``).
        role: classifier, regressor, outlier, transformer or composite.
        family: Estimator family for AutoML and profiles (``linear``, ``tree``, ``forest``,
            ``boosting``, ``outlier``, ``preprocessing``).
        backend: The library that emits its ONNX (``skl2onnx`` or ``onnxmltools``).
        refuse: Given a fitted instance, why that instance cannot be compiled (None when it can), for
            classes whose converter handles only some settings.
        native_float: The float type the estimator computes in natively (``float32`` for the tree kernels
            that cast their input, ``float64`` for linear models, LightGBM and HistGradientBoosting); the
            graph feeds the estimator that type (README "Precision policy").
        converter_float: The float type its converter takes, when it differs from ``native_float``.
        native_thresholds: Given the fitted estimator, its float64 split thresholds by (tree id, node id),
            which replace the converter's float32 ones (see ``float64_thresholds``).
        prepare: Given the model and its final estimator, the pair to convert (a copy the converter
            accepts, e.g. XGBoost without its feature names); the caller's model is never changed.
    """

    name: str
    package: str
    role: str
    family: str
    backend: str = "skl2onnx"
    refuse: Callable[[object], str | None] | None = None
    native_float: str = "float32"
    converter_float: str | None = None
    native_thresholds: Callable[[Any], dict[tuple[int, int], float]] | None = None
    prepare: Callable[[Any, Any], tuple[Any, Any]] | None = None

    @property
    def input_float(self) -> str:
        """The float type the converter is given."""
        return self.converter_float or self.native_float

    def matches(self, obj: object) -> bool:
        """True when ``obj`` is an instance of the class this spec names."""
        cls = type(obj)
        return cls.__name__ == self.name and cls.__module__.split(".")[0] == self.package


CONVERTERS: Registry[ConverterSpec] = Registry("converter")


def register_converter(spec: ConverterSpec, *, replace: bool = False) -> ConverterSpec:
    """Registers a supported native class; a second spec with the same name raises."""
    return CONVERTERS.register(spec.name, spec, replace=replace)


def spec_for(obj: object) -> ConverterSpec | None:
    """The spec that handles ``obj``, or None."""
    name = type(obj).__name__
    if name in CONVERTERS:
        spec = CONVERTERS.get(name)
        if spec.matches(obj):
            return spec
    return None
