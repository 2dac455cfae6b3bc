"""Canaries of kepler._compat.onnxmltools: onnxmltools' operator converters, where skl2onnx needs them."""

from __future__ import annotations

import inspect

import pytest

from kepler._compat import onnxmltools as compat


@pytest.mark.parametrize(
    ("shim", "library"),
    [(compat.xgboost_operator_converter, "xgboost"), (compat.lightgbm_operator_converter, "lightgbm")],
)
def test_the_operator_converters_are_where_the_shims_look(shim: object, library: str) -> None:
    name = f"kepler._compat.onnxmltools.{shim.__name__}"  # type: ignore[attr-defined]
    try:
        converter = shim()  # type: ignore[operator]
    except ImportError as exc:
        raise AssertionError(f"{name}: onnxmltools moved its {library} operator converter ({exc})") from None
    assert list(inspect.signature(converter).parameters) == ["scope", "operator", "container"], (
        f"{name}: onnxmltools' {library} operator converter no longer takes (scope, operator, container)"
    )
