"""Reading an artifact's tree ensemble out of its ONNX graph into flat arrays a generated kernel walks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from kepler.compilers.labels import RESTORE_LABELS_NODE
from kepler.errors import CompileError

ENSEMBLE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
# The comparisons a kernel compiles in; the kernel holds one per ensemble (a mixed ensemble stays on ONNX).
COMPARISONS = {"BRANCH_LEQ": "<=", "BRANCH_LT": "<", "BRANCH_GTE": ">=", "BRANCH_GT": ">"}
POST_TRANSFORMS = ("NONE", "LOGISTIC", "SOFTMAX")
AGGREGATES = ("SUM", "AVERAGE")
# The input types a kernel reads: float32 (most converters) and float64 (Kepler's exact LightGBM graphs).
INPUT_TYPES: dict[int, str] = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64"}


class NotCompilable(CompileError):
    """The graph is not one the compiled tree backend covers; the artifact keeps ONNX alone (the reason is
    recorded, never raised to the user)."""


@dataclass(frozen=True)
class TreeTables:
    """A tree ensemble as flat arrays, with what the runtime needs to finish its answers.

    Every node is one entry: a branch compares ``x[feature]`` with ``threshold`` and goes to
    ``children[i, 1]`` when the comparison holds (or the value is missing and ``missing_true`` is set),
    ``children[i, 0]`` otherwise. A leaf points to itself twice, so every row can take exactly
    ``depths[t]`` steps in tree ``t`` without a branch on the node kind; its weights are
    ``leaf_weights[leaf_slot[i]]``.

    Attributes:
        op: ``TreeEnsembleClassifier`` or ``TreeEnsembleRegressor``.
        input_name: The tensor the ensemble reads (a graph input, or what a prefix computes).
        output_names: The ensemble's outputs: (label, probabilities) or (values,).
        n_features: Columns of the ensemble's input the trees read (the input may be wider).
        comparison: The C comparison every branch uses (``<=``, ``<``, ``>=``, ``>``).
        input_dtype: ``float32`` or ``float64``: what the ensemble reads.
        thresholds: float64 per node; for a float32 input, rounded to float32 so that ``float32 x OP
            threshold`` equals ONNX's comparison.
        features: int32 per node (0 for leaves).
        children: int32 (nodes, 2): false child, true child.
        missing_true: uint8 per node: a missing value takes the true branch.
        leaf_slot: int32 per node: the row of ``leaf_weights`` (-1 for branches).
        leaf_weights: float64 (leaves, outputs).
        roots: int32 per tree.
        depths: int32 per tree: the longest path from its root to a leaf.
        aggregate: ``SUM`` or ``AVERAGE``.
        post_transform: ``NONE``, ``LOGISTIC`` or ``SOFTMAX``.
        base_values: Added to the outputs before the post transform.
        n_outputs: Score columns the kernel writes (classes with weights, or regression targets).
        classes: A classifier's labels (ints or texts), in the graph's order.
        binary: A two-class classifier whose weights all score class 0: ONNX's binary case, where that
            score stands for the second class.
    """

    op: str
    input_name: str
    output_names: tuple[str, ...]
    n_features: int
    comparison: str
    input_dtype: str
    thresholds: np.ndarray
    features: np.ndarray
    children: np.ndarray
    missing_true: np.ndarray
    leaf_slot: np.ndarray
    leaf_weights: np.ndarray
    roots: np.ndarray
    depths: np.ndarray
    aggregate: str
    post_transform: str
    base_values: tuple[float, ...]
    n_outputs: int
    classes: tuple[Any, ...] = field(default=())
    binary: bool = False

    @property
    def is_classifier(self) -> bool:
        """Whether the ensemble is a classifier."""
        return self.op == "TreeEnsembleClassifier"

    @property
    def n_trees(self) -> int:
        """How many trees the ensemble holds."""
        return len(self.roots)

    @property
    def n_nodes(self) -> int:
        """How many nodes (branches and leaves) the ensemble holds."""
        return len(self.features)

    def finish(self) -> dict[str, Any]:
        """What the runtime needs to turn the kernel's raw scores into the graph's outputs (JSON values)."""
        return {
            "op": self.op,
            "input": self.input_name,
            "outputs": list(self.output_names),
            "n_features": self.n_features,
            "input_dtype": self.input_dtype,
            "n_outputs": self.n_outputs,
            "post_transform": self.post_transform,
            "base_values": list(self.base_values),
            "classes": list(self.classes),
            "binary": self.binary,
        }


def _attributes(node: onnx.NodeProto) -> dict[str, Any]:
    """A node's attributes as Python values; ``*_as_tensor`` attributes (double precision) replace the float ones."""
    values: dict[str, Any] = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        if isinstance(value, onnx.TensorProto):
            values[attribute.name.removesuffix("_as_tensor")] = numpy_helper.to_array(value).astype(
                np.float64
            )
        else:
            values.setdefault(attribute.name, value)
    return values


def _texts(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def to_float32_threshold(threshold: float, comparison: str) -> np.float32:
    """The float32 threshold ``t32`` with ``x OP t32 == (double(x) OP threshold)`` for every float32 ``x``.

    A double threshold (LightGBM's) rounds to the nearest float32, which may sit on the wrong side of it;
    moving one float32 step toward the comparison's open side restores the exact decision.
    """
    rounded = np.float32(threshold)
    if comparison in ("<=", ">") and float(rounded) > threshold:
        return np.float32(np.nextafter(rounded, np.float32(-np.inf)))
    if comparison in ("<", ">=") and float(rounded) < threshold:
        return np.float32(np.nextafter(rounded, np.float32(np.inf)))
    return rounded


def _ensemble_node(model: onnx.ModelProto) -> tuple[onnx.NodeProto, dict[str, Any]]:
    """The graph's one tree ensemble, and the labels a ``restore_labels`` Gather maps its label codes to.

    Returns:
        The node, and ``{"label": graph label output, "labels": [label per code]}`` when the graph restores
        labels (empty otherwise).
    """
    ensembles = [n for n in model.graph.node if n.op_type in ENSEMBLE_OPS and n.domain == "ai.onnx.ml"]
    if len(ensembles) != 1:
        raise NotCompilable(
            f"the graph holds {len(ensembles)} tree ensembles, the compiled backend takes one"
        )
    node: onnx.NodeProto = ensembles[0]
    after = list(model.graph.node)[list(model.graph.node).index(node) + 1 :]
    restored: dict[str, Any] = {}
    if len(after) == 1 and after[0].name == RESTORE_LABELS_NODE and after[0].input[1] == node.output[0]:
        constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        labels = constants.get(after[0].input[0])
        if labels is None or labels.ndim != 1 or labels.dtype.kind not in "iuUSO":
            raise NotCompilable("the graph restores labels of a type the compiled backend does not answer")
        restored = {"label": after[0].output[0], "labels": [_plain(v) for v in labels.tolist()]}
        after = []
    produced = [restored["label"], *node.output[1:]] if restored else list(node.output)
    if after or sorted(o.name for o in model.graph.output) != sorted(produced):
        raise NotCompilable(
            "the graph computes outputs after its tree ensemble (only an ensemble whose outputs are the "
            "graph's outputs compiles)"
        )
    return node, restored


def _plain(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _input_type(model: onnx.ModelProto, name: str) -> int | None:
    """The element type of tensor ``name`` when the graph or its shape inference knows it."""
    inferred = onnx.shape_inference.infer_shapes(model)
    for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        if value.name == name:
            return int(value.type.tensor_type.elem_type)
    return None


def read_tree_tables(model: onnx.ModelProto) -> TreeTables:
    """The tree ensemble of ``model`` as :class:`TreeTables`.

    Raises:
        NotCompilable: the graph is not one tree ensemble reading a float tensor and answering the graph's
            outputs, or it uses what the kernel does not cover (mixed or equality comparisons, MIN/MAX
            aggregation, PROBIT or SOFTMAX_ZERO), with the reason.
    """
    node, restored = _ensemble_node(model)
    input_dtype = INPUT_TYPES.get(_input_type(model, node.input[0]) or 0)
    if input_dtype is None:
        raise NotCompilable("the tree ensemble reads neither float32 nor float64")
    a = _attributes(node)
    classifier = node.op_type == "TreeEnsembleClassifier"
    modes = _texts(a["nodes_modes"])
    branch_modes = sorted({m for m in modes if m != "LEAF"})
    if len(branch_modes) != 1 or branch_modes[0] not in COMPARISONS:
        raise NotCompilable(
            f"the trees compare with {', '.join(branch_modes) or 'nothing'}; one of "
            f"{', '.join(COMPARISONS)} compiles"
        )
    comparison = COMPARISONS[branch_modes[0]]
    post_transform = _texts([a.get("post_transform", b"NONE")])[0]
    if post_transform not in POST_TRANSFORMS:
        raise NotCompilable(
            f"post_transform {post_transform} is not compiled ({', '.join(POST_TRANSFORMS)} are)"
        )
    aggregate = _texts([a.get("aggregate_function", b"SUM")])[0]
    if aggregate not in AGGREGATES:
        raise NotCompilable(f"aggregate_function {aggregate} is not compiled ({', '.join(AGGREGATES)} are)")

    tree_ids = np.asarray(a["nodes_treeids"], dtype=np.int64)
    node_ids = np.asarray(a["nodes_nodeids"], dtype=np.int64)
    index = {(int(t), int(n)): i for i, (t, n) in enumerate(zip(tree_ids, node_ids, strict=True))}
    count = len(tree_ids)
    prefix = "class_" if classifier else "target_"
    weight_trees = np.asarray(a[f"{prefix}treeids"], dtype=np.int64)
    weight_nodes = np.asarray(a[f"{prefix}nodeids"], dtype=np.int64)
    weight_ids = np.asarray(a[f"{prefix}ids"], dtype=np.int64)
    weights = np.asarray(a[f"{prefix}weights"], dtype=np.float64)
    n_outputs = int(weight_ids.max()) + 1 if len(weight_ids) else 1
    if not classifier:
        n_outputs = max(n_outputs, int(a.get("n_targets", 1)))

    is_leaf = np.array([m == "LEAF" for m in modes])
    leaf_slot = np.full(count, -1, dtype=np.int32)
    leaf_slot[is_leaf] = np.arange(int(is_leaf.sum()), dtype=np.int32)
    leaf_weights = np.zeros((int(is_leaf.sum()), n_outputs), dtype=np.float64)
    for tree, node_id, output, weight in zip(weight_trees, weight_nodes, weight_ids, weights, strict=True):
        slot = leaf_slot[index[(int(tree), int(node_id))]]
        if slot < 0:
            raise NotCompilable("a weight sits on a branch node, which the kernel does not add up")
        leaf_weights[slot, int(output)] += weight

    thresholds_in = np.asarray(a.get("nodes_values", np.zeros(count)), dtype=np.float64)
    features_in = np.asarray(a["nodes_featureids"], dtype=np.int64)
    true_ids = np.asarray(a["nodes_truenodeids"], dtype=np.int64)
    false_ids = np.asarray(a["nodes_falsenodeids"], dtype=np.int64)
    missing_in = np.asarray(a.get("nodes_missing_value_tracks_true") or np.zeros(count), dtype=np.int64)
    children = np.empty((count, 2), dtype=np.int32)
    features = np.zeros(count, dtype=np.int32)
    thresholds = np.zeros(count, dtype=np.float64)
    missing_true = np.zeros(count, dtype=np.uint8)
    for i in range(count):
        if is_leaf[i]:
            children[i] = (i, i)
            continue
        tree = int(tree_ids[i])
        children[i] = (index[(tree, int(false_ids[i]))], index[(tree, int(true_ids[i]))])
        features[i] = int(features_in[i])
        threshold = float(thresholds_in[i])
        thresholds[i] = to_float32_threshold(threshold, comparison) if input_dtype == "float32" else threshold
        missing_true[i] = 1 if missing_in[i] else 0

    trees = sorted(set(tree_ids.tolist()))
    roots = np.array([index[(t, 0)] for t in trees], dtype=np.int32)
    depths = np.array([_depth(children, int(root)) for root in roots], dtype=np.int32)
    n_features = int(features.max()) + 1
    base = a.get("base_values")
    classes: tuple[Any, ...] = ()
    binary = False
    if classifier:
        classes = tuple(a.get("classlabels_int64s") or _texts(a.get("classlabels_strings") or []))
        ids = set(weight_ids.tolist())
        binary = len(ids) == 1
        if len(classes) < 2 or (binary and (ids != {0} or len(classes) != 2)):
            raise NotCompilable(
                f"a classifier of {len(classes)} classes scoring classes {sorted(ids)} is not compiled"
            )
        if restored:
            labels = restored["labels"]
            if not all(isinstance(c, int) and 0 <= c < len(labels) for c in classes):
                raise NotCompilable("the graph restores labels from codes that are not its classes' indices")
            classes = tuple(labels[c] for c in classes)
    return TreeTables(
        op=node.op_type,
        input_name=node.input[0],
        output_names=(restored["label"], *node.output[1:]) if restored else tuple(node.output),
        n_features=n_features,
        comparison=comparison,
        input_dtype=input_dtype,
        thresholds=thresholds,
        features=features,
        children=children,
        missing_true=missing_true,
        leaf_slot=leaf_slot,
        leaf_weights=leaf_weights,
        roots=roots,
        depths=depths,
        aggregate=aggregate,
        post_transform=post_transform,
        base_values=tuple(float(v) for v in (base if base is not None else ())),
        n_outputs=n_outputs,
        classes=classes,
        binary=binary,
    )


def _depth(children: np.ndarray, root: int) -> int:
    deepest, stack = 0, [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if children[node, 0] == node:
            deepest = max(deepest, depth)
            continue
        stack.append((int(children[node, 0]), depth + 1))
        stack.append((int(children[node, 1]), depth + 1))
    return deepest
