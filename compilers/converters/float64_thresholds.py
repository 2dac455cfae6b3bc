"""Float64 split thresholds for the tree ensembles that compare in float64 natively (LightGBM, HistGradientBoosting).

LightGBM and scikit-learn's HistGradientBoosting compare float64 features with float64
thresholds; the converters write float32 thresholds rounded to nearest, so a value
within one float32 step of a threshold can take the other branch. onnxruntime runs
``ai.onnx.ml`` tree ensembles on float64 inputs with float64 thresholds
(``nodes_values_as_tensor``), so the graph gets the native thresholds back and reads
float64 features, which makes its splits those of the native model.

The native thresholds are matched to the graph's branch nodes by tree and node id and
checked against the converter's float32 values; if any disagrees, the graph keeps float32
thresholds rounded down (``x <= t`` exactly when ``x <= floor32(t)`` for float32 x) behind
a Cast, and the parity check judges the rest.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
NodeKey = tuple[int, int]


def floor32(threshold: float) -> float:
    """The largest float32 that is not above ``threshold``."""
    rounded = np.float32(threshold)
    if float(rounded) > threshold:
        rounded = np.nextafter(rounded, np.float32(-np.inf))
    return float(rounded)


def _lightgbm_tree(root: dict[str, Any], tree_id: int, found: dict[NodeKey, float]) -> None:
    # onnxmltools numbers the root 0 and gives each branch the next two ids for its
    # children before it walks the left subtree, then the right one.
    next_id = 1
    stack = [(root, 0)]
    while stack:
        node, node_id = stack.pop()
        if "left_child" not in node:
            continue
        found[(tree_id, node_id)] = (
            float(node["threshold"]) if node.get("decision_type") == "<=" else float("nan")
        )
        left, right = next_id, next_id + 1
        next_id += 2
        stack.append((node["right_child"], right))
        stack.append((node["left_child"], left))


def lightgbm_thresholds(estimator: Any) -> dict[NodeKey, float]:
    """The float64 thresholds of a fitted LightGBM model by (tree id, node id)."""
    found: dict[NodeKey, float] = {}
    for tree_id, tree in enumerate(estimator.booster_.dump_model()["tree_info"]):
        _lightgbm_tree(tree["tree_structure"], tree_id, found)
    return found


def hist_gradient_boosting_thresholds(estimator: Any) -> dict[NodeKey, float]:
    """The float64 thresholds of a fitted HistGradientBoosting model by (tree id, node id)."""
    from kepler._compat.sklearn import fitted_predictors

    # skl2onnx numbers trees iteration * n_outputs + output (one output unless multiclass).
    found: dict[NodeKey, float] = {}
    predictors = fitted_predictors(estimator)
    n_outputs = len(predictors[0]) if predictors else 1
    for iteration, trees in enumerate(predictors):
        for output, tree in enumerate(trees):
            tree_id = iteration if n_outputs == 1 else iteration * n_outputs + output
            for node_id, node in enumerate(tree.nodes):
                if not node["is_leaf"]:
                    found[(tree_id, node_id)] = float(node["num_threshold"])
    return found


def _new_values(node: onnx.NodeProto, thresholds: dict[NodeKey, float]) -> list[float] | None:
    attributes = {a.name: a for a in node.attribute}
    if "nodes_values" not in attributes:
        return None
    keys = zip(
        attributes["nodes_treeids"].ints,
        attributes["nodes_nodeids"].ints,
        (m.decode() for m in attributes["nodes_modes"].strings),
        strict=False,
    )
    values = list(attributes["nodes_values"].floats)
    exact = list(values)
    for position, (tree, node_id, mode) in enumerate(keys):
        if mode == "LEAF":
            continue
        native = thresholds.get((tree, node_id))
        if native is None or np.isnan(native) or mode != "BRANCH_LEQ":
            return None
        if np.float32(native) != np.float32(values[position]) and floor32(native) != values[position]:
            return None
        exact[position] = native
    return exact


def use_native_thresholds(model: onnx.ModelProto, thresholds: dict[NodeKey, float]) -> str:
    """Gives the estimator graph float64 thresholds and a float64 input, or float32 ones rounded down.

    Args:
        model: A graph converted with one float32 input, holding the estimator's tree ensemble.
        thresholds: The native model's float64 thresholds by (tree id, node id).

    Returns:
        ``"float64"`` when the graph now reads float64 with native thresholds,
        ``"float32"`` when it reads float64 through a Cast to float32 with rounded-down thresholds.
    """
    trees = [n for n in model.graph.node if n.op_type in _TREE_OPS]
    rewritten = [_new_values(n, thresholds) for n in trees]
    graph_input = model.graph.input[0]
    exact = bool(trees) and all(v is not None for v in rewritten)
    for node, values in zip(trees, rewritten, strict=False):
        if values is None:
            continue
        kept = [a for a in node.attribute if a.name != "nodes_values"]
        del node.attribute[:]
        node.attribute.extend(kept)
        if exact:
            tensor = numpy_helper.from_array(np.asarray(values, dtype=np.float64), "nodes_values")
            node.attribute.append(helper.make_attribute("nodes_values_as_tensor", tensor))
        else:
            node.attribute.append(helper.make_attribute("nodes_values", [floor32(v) for v in values]))
    if exact:
        graph_input.type.tensor_type.elem_type = TensorProto.DOUBLE
        return "float64"
    # Keep a float64 interface: cast inside the graph, as the native libraries never would.
    name = graph_input.name
    cast_name = f"{name}_as_float32"
    for node in model.graph.node:
        node.input[:] = [cast_name if i == name else i for i in node.input]
    model.graph.node.insert(
        0, helper.make_node("Cast", [name], [cast_name], to=TensorProto.FLOAT, name="kepler_cast_float32")
    )
    graph_input.type.tensor_type.elem_type = TensorProto.DOUBLE
    return "float32"
