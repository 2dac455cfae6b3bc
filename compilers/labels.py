"""Original class labels for a classifier fit on encoded labels (0..k-1), restored inside the graph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
import onnx.numpy_helper
from onnx import TensorProto, helper

from kepler.errors import CompileError

LABELS_INITIALIZER = "kepler_class_labels"
RESTORE_LABELS_NODE = "kepler_restore_labels"


def plain_labels(labels: Sequence[Any]) -> list[Any]:
    """Labels as JSON-ready Python values (numpy scalars unwrapped)."""
    return [label.item() if isinstance(label, np.generic) else label for label in labels]


def _label_tensor(labels: list[Any]) -> tuple[np.ndarray, int]:
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in labels):
        return np.asarray(labels, dtype=np.int64), TensorProto.INT64
    if all(isinstance(v, (float, np.floating)) for v in labels):
        return np.asarray(labels, dtype=np.float64), TensorProto.DOUBLE
    return np.asarray([str(v) for v in labels], dtype=object), TensorProto.STRING


def check_encoded(classes: Any, labels: Sequence[Any]) -> None:
    """Checks that a classifier was fit on the codes 0..k-1 of ``labels``.

    Raises:
        CompileError: the model's classes are not those codes.
    """
    found = [
        int(c) if isinstance(c, (int, np.integer)) else c for c in (classes if classes is not None else [])
    ]
    if found != list(range(len(labels))):
        raise CompileError(
            f"class_labels has {len(labels)} labels but the model's classes are {found[:10]}; pass "
            f"class_labels only for a classifier fit on their codes 0..{len(labels) - 1}"
        )


def decode(codes: np.ndarray, labels: Sequence[Any]) -> np.ndarray:
    """The labels that ``codes`` (0..k-1) stand for."""
    values, _ = _label_tensor(plain_labels(labels))
    return values[np.asarray(codes).astype(np.int64)]


def restore_labels(model: onnx.ModelProto, label_output: str, labels: Sequence[Any]) -> onnx.ModelProto:
    """Makes the graph's label output give ``labels[code]`` instead of the code the classifier computes.

    A ``Gather`` from a constant of the original labels follows the classifier's label output, which
    keeps its name, so every converter's graph gets the same treatment.
    """
    values, elem = _label_tensor(plain_labels(labels))
    graph = model.graph
    codes = f"{label_output}_code"
    for node in graph.node:
        node.output[:] = [codes if name == label_output else name for name in node.output]
        node.input[:] = [codes if name == label_output else name for name in node.input]
    graph.initializer.append(onnx.numpy_helper.from_array(values, LABELS_INITIALIZER))
    graph.node.append(
        helper.make_node(
            "Gather", [LABELS_INITIALIZER, codes], [label_output], axis=0, name=RESTORE_LABELS_NODE
        )
    )
    for output in graph.output:
        if output.name == label_output:
            shape = [d.dim_value or d.dim_param or None for d in output.type.tensor_type.shape.dim]
            output.CopyFrom(helper.make_tensor_value_info(label_output, elem, shape or [None]))
    return model
