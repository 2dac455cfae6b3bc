"""Backend candidates for tree ensembles at batch 10,000: onnxruntime settings, rewritten graphs, TL2cgen, c-trees.

Issue 14 asks which backend serves a tree ensemble fastest at large batches. On the model set of
``benchmarks/compile_vs_native.py`` (its table; XGBoost 100 trees of depth 6 and RandomForest 100 trees
of depth 10, 20 features) this script times, in one run, at batch 10,000 on 1 and on 2 threads:

- the native library's ``predict_proba`` (``n_jobs`` = threads);
- the Kepler artifact's ONNX graph in onnxruntime with the profile's session settings, and variants:
  optimization level ``extended`` instead of ``all``, ``ORT_PARALLEL`` execution with ``inter_op`` threads;
- the ensemble rewritten as K TreeEnsembleRegressor nodes over disjoint sets of trees (K = 1, 2, 4) whose raw
  scores are summed before the post transform, run in ``ORT_PARALLEL`` mode with ``inter_op`` = threads
  (K = 1 isolates the cost of the rewrite itself);
- the ensemble as one ai.onnx.ml opset-5 ``TreeEnsemble`` node (the successor of TreeEnsembleClassifier);
- hummingbird's perfect-tree traversal for trees of depth <= 10 (hummingbird's own bound): every tree padded
  to a perfect tree, one level at a time for all rows and trees with GatherElements, leaves likewise, summed
  over trees;
- TL2cgen (gcc, ``parallel_comp`` 8) as the compiled-code baseline, in its own virtualenv (a child process
  that takes its turn in every round);
- Kepler's ``c-trees`` backend, forced, on the cloud profile with 1 (and 2) threads.

Every candidate takes its turn in every round and each figure is the median over rounds of its p50, so drift
on a shared machine hits every candidate alike. Parity is each candidate's largest absolute difference from
the native ``predict_proba`` on the timed batch.

Usage:
    python benchmarks/backend_candidates.py                  # full run, writes benchmarks/results/
    python benchmarks/backend_candidates.py --quick          # small models, short timings, no TL2cgen
    python benchmarks/backend_candidates.py --tl2cgen-venv /tmp/tl2venv   # where TL2cgen lives (made if absent)
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compile_vs_native import dataset, models

import kepler as kp
from kepler.compilers.backends.tree_tables import TreeTables, read_tree_tables
from kepler.runtimes.benchmark import limit_native_threads, machine, time_calls
from kepler.runtimes.session import session_options

RESULTS = Path(__file__).parent / "results"
THREADS = (1, 2)
SPLITS = (1, 2, 4)
# A perfect tree holds 2^depth leaves; hummingbird pads trees up to depth 10 (deeper ones: plain walks).
PTT_MAX_DEPTH = 10
ML_OPSET = 3
DEFAULT_OPSET = 17
DEFAULT_OPSET_WITH_ML5 = 21  # ai.onnx.ml 5 (TreeEnsemble) was released with the default domain's opset 21
DEFAULT_TL2CGEN_VENV = Path("/tmp/tl2venv")
# The opposite of each TreeEnsemble comparison: "the row goes to the false child", the bit a level adds.
GOES_FALSE = {"<": "GreaterOrEqual", "<=": "Greater", ">=": "Less", ">": "LessOrEqual"}


# --- timing ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Candidate:
    """One backend on one thread count: how to time it, and its answer on the timed batch."""

    model: str
    name: str
    threads: int
    measure: Callable[[float], float]  # seconds -> p50 ms
    proba: np.ndarray | None
    note: str = ""
    samples: list[float] = dataclasses.field(default_factory=list)


def local_measure(call: Callable[[], Any], warmup_s: float) -> Callable[[float], float]:
    """A candidate measured in this process: p50 (ms) of ``call`` over ``seconds``."""

    def measure(seconds: float) -> float:
        return float(
            time_calls(call, min_iters=3, min_time_s=seconds, max_time_s=seconds * 4, warmup_s=warmup_s)[
                "p50_ms"
            ]
        )

    return measure


def run_rounds(candidates: list[Candidate], rounds: int, seconds: float) -> None:
    """Every candidate takes its turn in every round; each keeps its p50 per round."""
    for number in range(rounds):
        for candidate in candidates:
            candidate.samples.append(candidate.measure(seconds))
        print(f"  round {number + 1}/{rounds} done", file=sys.stderr)


# --- onnxruntime sessions -------------------------------------------------------------------------------


def ort_session(
    model: bytes, profile: Any, *, level: str | None = None, parallel: int = 0, intra: int | None = None
) -> ort.InferenceSession:
    """A session with the profile's settings, changed where asked: optimization level, ORT_PARALLEL with
    ``parallel`` inter-op threads, intra-op threads."""
    options = session_options(profile)
    if level is not None:
        options.graph_optimization_level = {
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[level]
    if parallel:
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        options.inter_op_num_threads = parallel
    if intra is not None:
        options.intra_op_num_threads = intra
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


# --- rewriting the ensemble -----------------------------------------------------------------------------


def ensemble_node(model: onnx.ModelProto) -> tuple[onnx.NodeProto, dict[str, Any]]:
    """The graph's one TreeEnsemble node (reading the graph input) and its attributes as plain values."""
    nodes = [n for n in model.graph.node if n.op_type in ("TreeEnsembleClassifier", "TreeEnsembleRegressor")]
    if len(nodes) != 1 or nodes[0].input[0] != model.graph.input[0].name:
        raise ValueError("the rewrites read one tree ensemble that takes the graph input directly")
    values: dict[str, Any] = {}
    for attribute in nodes[0].attribute:
        value = helper.get_attribute_value(attribute)
        values[attribute.name] = numpy_helper.to_array(value) if isinstance(value, TensorProto) else value
    return nodes[0], values


def finish(
    graph_nodes: list[onnx.NodeProto], initializers: list[TensorProto], raw: str, tables: TreeTables
) -> str:
    """Nodes that turn the summed raw scores ``raw`` [N, outputs] into probabilities, as the ensemble's
    aggregate, base values and post transform do; returns the output's name."""
    name = raw
    if tables.aggregate == "AVERAGE":
        initializers.append(numpy_helper.from_array(np.array(1.0 / tables.n_trees, np.float32), "inv_trees"))
        graph_nodes.append(helper.make_node("Mul", [name, "inv_trees"], ["averaged"]))
        name = "averaged"
    if any(tables.base_values):
        base = np.asarray(tables.base_values, np.float32).reshape(1, -1)
        initializers.append(numpy_helper.from_array(base, "base_values"))
        graph_nodes.append(helper.make_node("Add", [name, "base_values"], ["based"]))
        name = "based"
    if tables.post_transform == "LOGISTIC":
        graph_nodes.append(helper.make_node("Sigmoid", [name], ["transformed"]))
        name = "transformed"
    elif tables.post_transform == "SOFTMAX":
        graph_nodes.append(helper.make_node("Softmax", [name], ["transformed"], axis=1))
        name = "transformed"
    if tables.binary:  # ONNX's binary case: the one score is the second class's; the first is its complement
        initializers.append(numpy_helper.from_array(np.array(1.0, np.float32), "one"))
        graph_nodes.append(helper.make_node("Sub", ["one", name], ["complement"]))
        graph_nodes.append(helper.make_node("Concat", ["complement", name], ["probabilities"], axis=1))
    else:
        graph_nodes.append(helper.make_node("Identity", [name], ["probabilities"]))
    return "probabilities"


def make_model(
    source: onnx.ModelProto,
    nodes: list[onnx.NodeProto],
    initializers: list[TensorProto],
    outputs: int,
    ml_opset: int = ML_OPSET,
) -> bytes:
    """A model reading the source graph's input and answering ``probabilities`` [N, outputs]."""
    graph = helper.make_graph(
        nodes,
        "candidate",
        [source.graph.input[0]],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, outputs])],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[
            helper.make_opsetid("", DEFAULT_OPSET if ml_opset == ML_OPSET else DEFAULT_OPSET_WITH_ML5),
            helper.make_opsetid("ai.onnx.ml", ml_opset),
        ],
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


def split_ensemble(source: onnx.ModelProto, parts: int) -> bytes:
    """The ensemble as ``parts`` TreeEnsembleRegressor nodes over consecutive trees (post transform NONE,
    no base values), their raw scores summed, then the aggregate, base values and post transform."""
    tables = read_tree_tables(source)
    node, a = ensemble_node(source)
    prefix = "class_" if node.op_type == "TreeEnsembleClassifier" else "target_"
    node_trees = np.asarray(a["nodes_treeids"])
    weight_trees = np.asarray(a[f"{prefix}treeids"])
    node_keys = [k for k in a if k.startswith("nodes_")]
    weight_keys = {f"{prefix}ids": "target_ids", f"{prefix}nodeids": "target_nodeids"}
    weight_keys.update({f"{prefix}weights{s}": f"target_weights{s}" for s in ("", "_as_tensor")})
    graph_nodes: list[onnx.NodeProto] = []
    initializers: list[TensorProto] = []
    for part, trees in enumerate(np.array_split(np.unique(node_trees), parts)):
        renumber = {int(t): i for i, t in enumerate(trees)}
        at_nodes, at_weights = np.isin(node_trees, trees), np.isin(weight_trees, trees)
        attributes: dict[str, Any] = {}
        for key in node_keys:
            kept = [v for v, keep in zip(a[key], at_nodes, strict=True) if keep]
            attributes[key] = [renumber[int(t)] for t in kept] if key == "nodes_treeids" else kept
        for key, new in weight_keys.items():
            if key in a:
                attributes[new] = [v for v, keep in zip(a[key], at_weights, strict=True) if keep]
        attributes["target_treeids"] = [renumber[int(t)] for t in weight_trees[at_weights]]
        for key in [k for k in attributes if k.endswith("_as_tensor")]:
            attributes[key] = numpy_helper.from_array(np.asarray(attributes[key]))
        graph_nodes.append(
            helper.make_node(
                "TreeEnsembleRegressor",
                [source.graph.input[0].name],
                [f"raw_{part}"],
                domain="ai.onnx.ml",
                n_targets=tables.n_outputs,
                aggregate_function="SUM",
                post_transform="NONE",
                **attributes,
            )
        )
    if parts > 1:
        graph_nodes.append(helper.make_node("Sum", [f"raw_{p}" for p in range(parts)], ["raw"]))
    else:
        graph_nodes.append(helper.make_node("Identity", ["raw_0"], ["raw"]))
    finish(graph_nodes, initializers, "raw", tables)
    return make_model(source, graph_nodes, initializers, 2 if tables.binary else tables.n_outputs)


def tree_ensemble_v5(source: onnx.ModelProto) -> bytes:
    """The ensemble as ai.onnx.ml opset 5's ``TreeEnsemble`` (branches and leaves in separate arrays, modes as
    a uint8 tensor, no base values), post transform NONE, then the base values and post transform."""
    tables = read_tree_tables(source)
    if tables.n_outputs != 1 or (tables.depths == 0).any():
        raise ValueError(
            "TreeEnsemble v5 holds one target per leaf and a branch at each root; not this ensemble"
        )
    branch = np.flatnonzero(tables.leaf_slot < 0)
    position = np.full(len(tables.leaf_slot), -1, np.int64)
    position[branch] = np.arange(len(branch))

    def child(side: int) -> tuple[list[int], list[int]]:
        targets = tables.children[branch, side]
        is_leaf = tables.leaf_slot[targets] >= 0
        ids = np.where(is_leaf, tables.leaf_slot[targets], position[targets])
        return ids.astype(int).tolist(), is_leaf.astype(int).tolist()

    true_ids, true_leafs = child(1)
    false_ids, false_leafs = child(0)
    split_type = np.float32 if tables.input_dtype == "float32" else np.float64
    modes = {"<=": 0, "<": 1, ">=": 2, ">": 3}[tables.comparison]
    ensemble = helper.make_node(
        "TreeEnsemble",
        [source.graph.input[0].name],
        ["raw"],
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function={"AVERAGE": 0, "SUM": 1}[tables.aggregate],
        post_transform=0,
        tree_roots=position[tables.roots].astype(int).tolist(),
        nodes_featureids=tables.features[branch].astype(int).tolist(),
        nodes_splits=numpy_helper.from_array(tables.thresholds[branch].astype(split_type)),
        nodes_modes=numpy_helper.from_array(np.full(len(branch), modes, np.uint8)),
        nodes_missing_value_tracks_true=tables.missing_true[branch].astype(int).tolist(),
        nodes_truenodeids=true_ids,
        nodes_trueleafs=true_leafs,
        nodes_falsenodeids=false_ids,
        nodes_falseleafs=false_leafs,
        leaf_targetids=[0] * len(tables.leaf_weights),
        leaf_weights=numpy_helper.from_array(tables.leaf_weights[:, 0].astype(split_type)),
    )
    graph_nodes: list[onnx.NodeProto] = [ensemble]
    initializers: list[TensorProto] = []
    # the averaging is the op's own here, so finish() must not divide again
    finish(graph_nodes, initializers, "raw", dataclasses.replace(tables, aggregate="SUM"))
    return make_model(source, graph_nodes, initializers, 2 if tables.binary else 1, ml_opset=5)


def perfect_tree_traversal(source: onnx.ModelProto) -> bytes:
    """Hummingbird's perfect-tree traversal: every tree padded to a perfect tree of the deepest tree's depth
    (a leaf above the bottom sends both ways to copies of itself); per level, for all rows and trees at
    once, look up the node's feature and threshold, GatherElements the row's value, compare, and step to
    child ``2 * index + went_false``; then look up the leaves and sum over trees.

    A level's nodes of every tree sit in one array, tree ``t``'s ``2^level`` nodes at ``t * 2^level``, so
    the next level's index is ``2 * index + bit`` with no per-tree offset. A missing value compares false,
    which sends it to the true child whatever the tree says: the rewrite is for tables without gaps.
    """
    tables = read_tree_tables(source)
    depth = int(tables.depths.max())
    trees = tables.n_trees
    if depth > PTT_MAX_DEPTH:
        raise ValueError(f"trees of depth {depth} (> {PTT_MAX_DEPTH}) are not padded to perfect trees")
    features = [np.zeros((trees, 2**level), np.int64) for level in range(depth)]
    thresholds = [np.zeros((trees, 2**level), np.float32) for level in range(depth)]
    leaves = np.zeros((trees, 2**depth, tables.n_outputs), np.float32)
    for t, root in enumerate(tables.roots):
        stack = [(int(root), 0, 0)]  # node, level, position in the level
        while stack:
            node, level, position = stack.pop()
            if level == depth:
                leaves[t, position] = tables.leaf_weights[tables.leaf_slot[node]]
                continue
            false_child, true_child = (int(c) for c in tables.children[node])
            if tables.leaf_slot[node] < 0:
                features[level][t, position] = tables.features[node]
                thresholds[level][t, position] = tables.thresholds[node]
            # a leaf's children are itself (see TreeTables), so it is copied down to the bottom level
            stack.append((true_child, level + 1, 2 * position))
            stack.append((false_child, level + 1, 2 * position + 1))
    x = source.graph.input[0].name
    compare = GOES_FALSE[tables.comparison]
    graph_nodes: list[onnx.NodeProto] = []
    # Indices stay int32 (half the memory traffic of int64), and the per-node tables are read with
    # GatherElements on the flattened index: onnxruntime's Gather copies element by element and took 5x
    # longer for the same lookups.
    initializers = [
        numpy_helper.from_array(np.arange(trees, dtype=np.int32).reshape(1, -1), "index_0"),
        numpy_helper.from_array(np.array([-1], np.int64), "flat"),
        numpy_helper.from_array(np.array([-1, trees], np.int64), "rows_by_trees"),
        numpy_helper.from_array(np.array([trees], np.int64), "trees"),
        numpy_helper.from_array(features[0].reshape(1, -1).astype(np.int32), "feature_0_row"),
    ]

    flattened: set[str] = set()

    def lookup(table: str, index: str, out: str) -> None:
        if index not in flattened:
            flattened.add(index)
            graph_nodes.append(helper.make_node("Reshape", [index, "flat"], [f"{index}_flat"]))
        graph_nodes.append(
            helper.make_node("GatherElements", [table, f"{index}_flat"], [f"{out}_flat"], axis=0)
        )
        graph_nodes.append(helper.make_node("Reshape", [f"{out}_flat", "rows_by_trees"], [out]))

    for level in range(depth):
        if level > 0:
            initializers.append(
                numpy_helper.from_array(features[level].reshape(-1).astype(np.int32), f"feature_{level}")
            )
        initializers.append(numpy_helper.from_array(thresholds[level].reshape(-1), f"threshold_{level}"))
        index = f"index_{level}"
        if (
            level == 0
        ):  # the roots: one feature per tree, the same for every row (Gather on axis 1 was slower)
            graph_nodes.append(helper.make_node("Shape", [x], ["x_shape"], end=1))
            graph_nodes.append(helper.make_node("Concat", ["x_shape", "trees"], ["rows_trees_shape"], axis=0))
            graph_nodes.append(helper.make_node("Expand", ["feature_0_row", "rows_trees_shape"], ["feat_0"]))
            graph_nodes.append(helper.make_node("GatherElements", [x, "feat_0"], ["value_0"], axis=1))
            graph_nodes.append(helper.make_node(compare, ["value_0", "threshold_0"], ["bit_0"]))
        else:
            lookup(f"feature_{level}", index, f"feat_{level}")
            graph_nodes.append(
                helper.make_node("GatherElements", [x, f"feat_{level}"], [f"value_{level}"], axis=1)
            )
            lookup(f"threshold_{level}", index, f"thr_{level}")
            graph_nodes.append(
                helper.make_node(compare, [f"value_{level}", f"thr_{level}"], [f"bit_{level}"])
            )
        graph_nodes.append(
            helper.make_node("Cast", [f"bit_{level}"], [f"step_{level}"], to=TensorProto.INT32)
        )
        graph_nodes.append(helper.make_node("Add", [index, index], [f"double_{level}"]))
        graph_nodes.append(
            helper.make_node("Add", [f"double_{level}", f"step_{level}"], [f"index_{level + 1}"])
        )
    initializers.append(numpy_helper.from_array(np.array([1], np.int64), "tree_axis"))
    if tables.n_outputs == 1:
        initializers.append(numpy_helper.from_array(leaves.reshape(-1), "leaves"))
        lookup("leaves", f"index_{depth}", "leaf_values")
        graph_nodes.append(helper.make_node("ReduceSum", ["leaf_values", "tree_axis"], ["raw"], keepdims=1))
    else:
        initializers.append(numpy_helper.from_array(leaves.reshape(trees * 2**depth, -1), "leaves"))
        graph_nodes.append(helper.make_node("Gather", ["leaves", f"index_{depth}"], ["leaf_values"]))
        graph_nodes.append(helper.make_node("ReduceSum", ["leaf_values", "tree_axis"], ["raw"], keepdims=0))
    finish(graph_nodes, initializers, "raw", tables)
    return make_model(source, graph_nodes, initializers, 2 if tables.binary else tables.n_outputs)


# --- TL2cgen, in its own virtualenv ---------------------------------------------------------------------

# The child builds the library, saves its answer on the batch, then times the batch whenever the parent asks,
# so that TL2cgen takes its turn in every round like the candidates timed in this process.
_TL2CGEN_CHILD = r"""
import json, pickle, sys, time
import numpy as np
import tl2cgen, treelite

job = json.loads(sys.argv[1])
if job["kind"] == "xgboost":
    import xgboost
    booster = xgboost.Booster()
    booster.load_model(job["model"])
    model = treelite.frontend.from_xgboost(booster)
else:
    with open(job["model"], "rb") as handle:
        model = treelite.sklearn.import_model(pickle.load(handle))
library = job["workdir"] + "/tl2cgen-model.so"
started = time.perf_counter()
tl2cgen.export_lib(model, toolchain="gcc", libpath=library, params={"parallel_comp": 8})
compile_s = time.perf_counter() - started
x = np.load(job["rows"])
predictors = {t: tl2cgen.Predictor(library, nthread=t) for t in job["threads"]}
np.save(job["workdir"] + "/tl2cgen-proba.npy", np.asarray(predictors[1].predict(tl2cgen.DMatrix(x))))
versions = {"tl2cgen": tl2cgen.__version__, "treelite": treelite.__version__}
print("@@" + json.dumps({"compile_s": compile_s, "versions": versions}), flush=True)
for line in sys.stdin:
    ask = json.loads(line)
    predictor, seconds = predictors[ask["threads"]], ask["seconds"]
    call = lambda: predictor.predict(tl2cgen.DMatrix(x))
    deadline = time.perf_counter() + ask["warmup_s"]
    while time.perf_counter() < deadline:
        call()
    samples, start = [], time.perf_counter()
    while True:
        t0 = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - t0) / 1e6)
        elapsed = time.perf_counter() - start
        if (len(samples) >= 3 and elapsed >= seconds) or elapsed >= 4 * seconds:
            break
    print("@@" + json.dumps({"p50_ms": float(np.percentile(samples, 50))}), flush=True)
"""


def tl2cgen_python(venv: Path) -> tuple[Path | None, dict[str, Any]]:
    """The virtualenv's Python with TL2cgen, made if absent; else ``None`` and the command that failed."""
    import shutil

    import sklearn
    import xgboost

    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import tl2cgen, treelite, xgboost, sklearn"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python, {"venv": str(venv), "made": False}
    commands = [
        [shutil.which("python3") or sys.executable, "-m", "venv", str(venv)],
        [
            str(venv / "bin" / "pip"),
            "install",
            "tl2cgen",
            f"xgboost=={xgboost.__version__}",
            "numpy",
            f"scikit-learn=={sklearn.__version__}",  # the RandomForest travels pickled
        ],
        probe,
    ]
    for command in commands:
        print(f"  $ {' '.join(command)}", file=sys.stderr)
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            return None, {
                "failed_command": " ".join(command),
                "error": lines[-1] if lines else str(done.returncode),
            }
    return python, {"venv": str(venv), "made": True}


class TL2cgenChild:
    """A TL2cgen child process for one model: built at start, timed on request."""

    def __init__(self, python: Path, kind: str, model_path: Path, rows: Path, workdir: Path, warmup_s: float):
        job = {
            "kind": kind,
            "model": str(model_path),
            "rows": str(rows),
            "workdir": str(workdir),
            "threads": list(THREADS),
        }
        self.workdir, self.warmup_s = workdir, warmup_s
        self._stderr = open(workdir / "tl2cgen-stderr.txt", "w")
        self.process = subprocess.Popen(
            [str(python), "-c", _TL2CGEN_CHILD, json.dumps(job)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=workdir,
        )
        self.ready = self._answer()
        self.proba = np.load(workdir / "tl2cgen-proba.npy")

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("@@"):
                return dict(json.loads(line[2:]))
        self.close()
        errors = (self.workdir / "tl2cgen-stderr.txt").read_text().strip().splitlines()
        raise RuntimeError(f"the TL2cgen child ended: {errors[-1] if errors else 'no message'}")

    def measure(self, threads: int) -> Callable[[float], float]:
        """A candidate timed by the child on ``threads`` threads."""

        def measure(seconds: float) -> float:
            assert self.process.stdin is not None
            ask = {"threads": threads, "seconds": seconds, "warmup_s": self.warmup_s}
            self.process.stdin.write(json.dumps(ask) + "\n")
            self.process.stdin.flush()
            return float(self._answer()["p50_ms"])

        return measure

    def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr.close()


def tl2cgen_proba(raw: np.ndarray, rows: int) -> np.ndarray:
    """TL2cgen's answer as ``predict_proba``: (rows, 1) is the second class of a binary model."""
    flat = raw.reshape(rows, -1).astype(np.float64)
    return np.hstack([1.0 - flat, flat]) if flat.shape[1] == 1 else flat


# --- one model ------------------------------------------------------------------------------------------


def cloud_profile(threads: int) -> Any:
    """The cloud profile on ``threads`` threads (``cloud-1t``, ``cloud-2t``)."""
    from kepler.targets import load_profile

    return dataclasses.replace(load_profile("cloud"), name=f"cloud-{threads}t", threads=threads)


def candidates_for(
    name: str,
    model: Any,
    frame: Any,
    batch: int,
    workdir: Path,
    tl2cgen: Path | None,
    warmup_s: float,
    skipped: list[dict[str, str]],
    children: list[TL2cgenChild],
    compile_seconds: dict[str, float],
) -> tuple[list[Candidate], np.ndarray]:
    """Every candidate for one fitted model on every thread count, and the native answer on the batch."""
    native_rows = frame.to_numpy()
    started = time.perf_counter()
    artifact = kp.compile(
        model, cloud_profile(1), native_rows[:2000], output=workdir / f"{name}-cloud-1t", benchmark=False
    )
    compile_seconds[name] = round(time.perf_counter() - started, 1)
    source = onnx.load(str(Path(artifact.path) / "model.onnx"))
    graph_bytes = source.SerializeToString()
    big = native_rows[np.resize(np.arange(len(native_rows)), batch)]
    feed = {source.graph.input[0].name: big.astype(np.float32)}
    reference = model.predict_proba(big)

    rewrites: dict[str, bytes] = {}
    try:
        rewrites["TreeEnsemble (ai.onnx.ml 5)"] = tree_ensemble_v5(source)
    except ValueError as why:
        skipped.append({"model": name, "candidate": "TreeEnsemble (ai.onnx.ml 5)", "reason": str(why)})
    for parts in SPLITS:
        rewrites[f"split K={parts}"] = split_ensemble(source, parts)
    try:
        rewrites["perfect-tree traversal"] = perfect_tree_traversal(source)
    except ValueError as why:
        skipped.append({"model": name, "candidate": "perfect-tree traversal", "reason": str(why)})

    child = None
    if tl2cgen is not None:
        np.save(workdir / f"{name}-rows.npy", feed[source.graph.input[0].name])
        if name == "xgboost":
            model_path = workdir / f"{name}.json"
            model.get_booster().save_model(str(model_path))
        else:
            import pickle

            model_path = workdir / f"{name}.pkl"
            model_path.write_bytes(pickle.dumps(model))
        child_dir = workdir / f"{name}-tl2cgen"
        child_dir.mkdir()
        print(f"{name}: building the TL2cgen library", file=sys.stderr)
        try:
            child = TL2cgenChild(tl2cgen, name, model_path, workdir / f"{name}-rows.npy", child_dir, warmup_s)
            children.append(child)
        except RuntimeError as why:
            skipped.append({"model": name, "candidate": "TL2cgen", "reason": str(why)})

    candidates: list[Candidate] = []
    for threads in THREADS:
        profile = cloud_profile(threads)
        native = copy.deepcopy(model)
        limit_native_threads(native, threads)

        def add(candidate: str, call: Callable[[], Any], note: str, threads: int = threads) -> None:
            candidates.append(
                Candidate(name, candidate, threads, local_measure(call, warmup_s), np.asarray(call()), note)
            )

        add(
            "native predict_proba",
            lambda m=native: m.predict_proba(big),
            note=f"n_jobs={threads}, float64 in",
        )
        sessions = {
            "onnxruntime (profile)": (
                ort_session(graph_bytes, profile),
                f"level all, sequential, intra_op={threads}",
            ),
            "onnxruntime level extended": (
                ort_session(graph_bytes, profile, level="extended"),
                f"sequential, intra_op={threads}",
            ),
            "onnxruntime ORT_PARALLEL": (
                ort_session(graph_bytes, profile, parallel=threads),
                f"level all, inter_op={threads}, intra_op={threads}",
            ),
        }
        for rewrite, graph in rewrites.items():
            if rewrite.startswith("split"):
                sessions[rewrite] = (
                    ort_session(graph, profile, parallel=threads, intra=1),
                    f"Sum of raw scores, ORT_PARALLEL, inter_op={threads}, intra_op=1",
                )
            elif rewrite.startswith("perfect"):
                sessions[rewrite] = (ort_session(graph, profile), f"float32, sequential, intra_op={threads}")
            else:
                sessions[rewrite] = (
                    ort_session(graph, profile),
                    f"level all, sequential, intra_op={threads}",
                )
        for candidate, (session, note) in sessions.items():
            add(candidate, lambda s=session: s.run(["probabilities"], feed)[0], note=note)
        if child is not None:
            candidates.append(
                Candidate(
                    name,
                    "TL2cgen",
                    threads,
                    child.measure(threads),
                    tl2cgen_proba(child.proba, batch),
                    f"gcc, parallel_comp 8, nthread={threads}, DMatrix per call",
                )
            )
        forced = kp.runtimes.load(artifact.path, profile, backend="c-trees")
        rows = forced.fastest_form(big)
        add(
            "Kepler c-trees",
            lambda p=forced, r=rows: p.predict_proba(r),
            note=f"forced, profile cloud-{threads}t",
        )
    return candidates, reference


# --- report ---------------------------------------------------------------------------------------------


def summarize(candidates: list[Candidate], references: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """One record per candidate and thread count: median p50, rows/s, against native, parity."""
    native = {
        (c.model, c.threads): statistics.median(c.samples) for c in candidates if c.name.startswith("native")
    }
    records = []
    for c in candidates:
        ms = statistics.median(c.samples)
        diff = (
            float(np.abs(np.asarray(c.proba, np.float64) - references[c.model]).max())
            if c.proba is not None
            else None
        )
        records.append(
            {
                "model": c.model,
                "candidate": c.name,
                "threads": c.threads,
                "p50_ms": ms,
                "rounds_p50_ms": c.samples,
                "rows_s": len(references[c.model]) / (ms / 1e3),
                "vs_native": native[(c.model, c.threads)] / ms,
                "max_abs_diff_vs_native": diff,
                "note": c.note,
            }
        )
    return records


def table(records: list[dict[str, Any]], batch: int) -> str:
    """The records as a Markdown table: one row per model and candidate, the thread counts side by side."""
    threads_columns = [f"{t} thread{'s' if t > 1 else ''}: ms / ×native" for t in THREADS]
    columns = [
        "model",
        "candidate",
        *threads_columns,
        "max abs diff vs native",
        f"settings at {max(THREADS)} threads",
    ]
    lines = [
        f"Batch {batch:,}, median over rounds of each call's p50; ×native > 1 is faster than native.",
        "",
    ]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    seen: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for r in records:
        seen.setdefault((r["model"], r["candidate"]), {})[r["threads"]] = r
    for (model, candidate), by_threads in seen.items():
        cells = [
            f"{by_threads[t]['p50_ms']:.2f} / {by_threads[t]['vs_native']:.2f}×" if t in by_threads else "—"
            for t in THREADS
        ]
        diffs = [
            r["max_abs_diff_vs_native"]
            for r in by_threads.values()
            if r["max_abs_diff_vs_native"] is not None
        ]
        last = by_threads[max(by_threads)]
        lines.append(f"| {model} | {candidate} | {' | '.join(cells)} | {max(diffs):.1e} | {last['note']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small models, short timings, no TL2cgen (a smoke test)"
    )
    parser.add_argument("--output", type=Path, default=None, help="folder for the JSON and Markdown results")
    parser.add_argument(
        "--tl2cgen-venv",
        type=Path,
        default=DEFAULT_TL2CGEN_VENV,
        help="virtualenv with TL2cgen (made if absent)",
    )
    parser.add_argument(
        "--models", default="xgboost,random_forest", help="comma-separated: xgboost, random_forest"
    )
    args = parser.parse_args(argv)
    started = time.time()
    load_start = round(os.getloadavg()[0], 2)  # other work on the machine shows most in the 2-thread figures
    rows = 4000 if args.quick else 20_000
    batch = 1000 if args.quick else 10_000
    rounds, seconds, warmup_s = (2, 0.02, 0.01) if args.quick else (5, 0.2, 0.05)
    frame, labels = dataset(rows)
    skipped: list[dict[str, str]] = []
    tl2cgen: dict[str, Any]
    if args.quick:
        python, tl2cgen = None, {"skipped": "--quick leaves TL2cgen out"}
    else:
        python, tl2cgen = tl2cgen_python(args.tl2cgen_venv)
    if python is None:
        skipped.append({"model": "all", "candidate": "TL2cgen", "reason": json.dumps(tl2cgen)})
    candidates: list[Candidate] = []
    references: dict[str, np.ndarray] = {}
    children: list[TL2cgenChild] = []
    kepler_compile: dict[str, float] = {}  # kp.compile with its c-trees build and parity check
    wanted = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        with tempfile.TemporaryDirectory(prefix="kepler-candidates-") as scratch:
            for name, (model, _) in models(args.quick).items():
                if name not in wanted:
                    continue
                print(f"{name}: fitting and compiling", file=sys.stderr)
                model.fit(frame.to_numpy(), labels)
                found, references[name] = candidates_for(
                    name,
                    model,
                    frame,
                    batch,
                    Path(scratch),
                    python,
                    warmup_s,
                    skipped,
                    children,
                    kepler_compile,
                )
                candidates += found
            for child in children:
                tl2cgen.setdefault("compile_s", {})[child.workdir.name] = round(child.ready["compile_s"], 1)
                tl2cgen["versions"] = child.ready["versions"]
            print(f"timing {len(candidates)} candidates, {rounds} rounds", file=sys.stderr)
            run_rounds(candidates, rounds, seconds)
    finally:
        for child in children:
            child.close()
    records = summarize(candidates, references)
    report = {
        "machine": machine(),
        "load_average_start_end": [load_start, round(os.getloadavg()[0], 2)],
        "batch": batch,
        "rounds": rounds,
        "seconds_per_turn": seconds,
        "quick": args.quick,
        "seconds": round(time.time() - started, 1),
        "libraries": dict(kp.compilers.environment.library_versions()),
        "kepler_compile_s": kepler_compile,
        "tl2cgen": tl2cgen,
        "skipped": skipped,
        "results": records,
    }
    markdown = table(records, batch)
    if skipped:
        markdown += "\n\nSkipped: " + "; ".join(
            f"{s['model']} {s['candidate']}: {s['reason']}" for s in skipped
        )
    print(markdown)
    output = args.output or (None if args.quick else RESULTS)
    if output:
        output.mkdir(parents=True, exist_ok=True)
        m = report["machine"]
        write_atomic(output / "backend_candidates.json", json.dumps(report, indent=2))
        write_atomic(
            output / "backend_candidates.md",
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}, Python {m['python']}; "
            f"1-minute load average {load_start} at the start, {report['load_average_start_end'][1]} at the end"
            f"\n\n{markdown}\n",
        )
    return 0


def write_atomic(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file, so a failed run leaves no half-written result."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    temporary.replace(path)


if __name__ == "__main__":
    sys.exit(main())
