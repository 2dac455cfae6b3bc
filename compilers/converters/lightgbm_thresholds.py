"""Exact LightGBM splits on float32 inputs: round each split threshold down, not to nearest.

LightGBM compares float64 features with float64 thresholds; the ONNX tree ensemble
compares float32 features with float32 thresholds that onnxmltools rounds to nearest.
When a feature value is a float32 number x, ``x <= t`` holds exactly when
``x <= floor32(t)``, the largest float32 not above t; rounding to nearest can land
above t and send x = round32(t) down the wrong branch. scikit-learn's converter
already rounds this way (skl2onnx ``sklearn_threshold``); this does the same for LightGBM.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper

_TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")


def floor32(threshold: float) -> np.float32:
    """The largest float32 that is not above ``threshold``."""
    rounded = np.float32(threshold)
    if float(rounded) > threshold:
        rounded = np.nextafter(rounded, np.float32(-np.inf))
    return rounded


def _thresholds_by_node_id(root: dict[str, Any]) -> dict[int, float]:
    """Thresholds keyed by the node ids onnxmltools assigns: the root is 0, and each branch
    takes the next two ids for its children before the walk descends left, then right."""
    found: dict[int, float] = {}
    next_id = 1
    stack = [(root, 0)]
    while stack:
        node, node_id = stack.pop()
        if "left_child" not in node:
            continue
        found[node_id] = float(node["threshold"]) if node.get("decision_type") == "<=" else float("nan")
        left, right = next_id, next_id + 1
        next_id += 2
        # LIFO: push right first so the left subtree is walked (and numbered) first.
        stack.append((node["right_child"], right))
        stack.append((node["left_child"], left))
    return found


def floor_lightgbm_thresholds(model: onnx.ModelProto, estimator: Any) -> int:
    """Rewrites the thresholds of the graph's LightGBM tree ensemble in place.

    The dump's thresholds are matched to the graph's branch nodes by tree and node id;
    when any of them disagrees with the graph's rounded value, the graph is left as it
    is (the parity check then judges it).

    Returns:
        How many thresholds changed.
    """
    trees = estimator.booster_.dump_model()["tree_info"]
    expected = {index: _thresholds_by_node_id(tree["tree_structure"]) for index, tree in enumerate(trees)}
    changed = 0
    for node in model.graph.node:
        if node.op_type not in _TREE_OPS:
            continue
        attributes = {a.name: a for a in node.attribute}
        if "nodes_values" not in attributes:
            continue
        positions = zip(attributes["nodes_treeids"].ints, attributes["nodes_nodeids"].ints,
                        (m.decode() for m in attributes["nodes_modes"].strings))
        values = list(attributes["nodes_values"].floats)
        new_values = list(values)
        for position, (tree, node_id, mode) in enumerate(positions):
            if mode == "LEAF":
                continue
            original = expected.get(tree, {}).get(node_id)
            if original is None or np.float32(original) != np.float32(values[position]):
                return 0
            if mode == "BRANCH_LEQ" and not np.isnan(original):
                new_values[position] = float(floor32(original))
        changed += sum(a != b for a, b in zip(values, new_values))
        attributes["nodes_values"].CopyFrom(helper.make_attribute("nodes_values", new_values))
    return changed
