"""The compiled tree kernel's runtime: its answers finished as ONNX's TreeEnsemble operators finish them, and the
machine check that refuses a library this machine cannot run.

The unit tests walk hand-built TreeEnsemble graphs in Python (the kernel's contract: summed leaf weights) and
finish the scores with :func:`finish_scores`, against ``onnx.reference`` and onnxruntime on the same graph. The
integration tests build the real kernel with the C compiler (a subprocess) for the comparisons converters never
emit (``<``, ``>=``, ``>``) and for averaged ensembles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from kepler.compilers.backends.tree_tables import TreeTables, read_tree_tables
from kepler.runtimes.compiled_trees import BackendUnavailable, CompiledTrees, finish_scores, machine_problem
from kepler.targets import load_profile

OPS = {"<=": np.less_equal, "<": np.less, ">=": np.greater_equal, ">": np.greater}


# --------------------------------------------------------------------------- hand-built graphs


def _forest(n_trees: int, mode: str = "BRANCH_LEQ") -> dict[str, list[Any]]:
    """``n_trees`` trees of depth 2 over features 0 and 1 (node 0 the root, 1 and 2 branches, 3-6 leaves);
    thresholds differ per tree, and missing values go both ways."""
    nodes: dict[str, list[Any]] = {
        key: []
        for key in (
            "nodes_treeids",
            "nodes_nodeids",
            "nodes_featureids",
            "nodes_values",
            "nodes_modes",
            "nodes_truenodeids",
            "nodes_falsenodeids",
            "nodes_missing_value_tracks_true",
        )
    }
    for tree in range(n_trees):
        spec = [
            (0, 0, 0.1 * tree, mode, 1, 2, 1),
            (1, 1, -0.2, mode, 3, 4, 0),
            (2, 1, 0.3 + 0.1 * tree, mode, 5, 6, 1),
            *((leaf, 0, 0.0, "LEAF", 0, 0, 0) for leaf in range(3, 7)),
        ]
        for node_id, feature, value, node_mode, true_id, false_id, missing in spec:
            nodes["nodes_treeids"].append(tree)
            nodes["nodes_nodeids"].append(node_id)
            nodes["nodes_featureids"].append(feature)
            nodes["nodes_values"].append(value)
            nodes["nodes_modes"].append(node_mode)
            nodes["nodes_truenodeids"].append(true_id)
            nodes["nodes_falsenodeids"].append(false_id)
            nodes["nodes_missing_value_tracks_true"].append(missing)
    return nodes


def _model(op: str, attributes: dict[str, Any], outputs: list[onnx.ValueInfoProto]) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])
    node = helper.make_node(op, ["X"], [o.name for o in outputs], domain="ai.onnx.ml", **attributes)
    graph = helper.make_graph([node], "trees", [x], outputs)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    onnx.checker.check_model(model)
    return model


def _weights(n_trees: int, ids: list[int], positive: bool, seed: int) -> dict[str, list[Any]]:
    rng = np.random.default_rng(seed)
    trees, nodes, classes, weights = [], [], [], []
    for tree in range(n_trees):
        for leaf in range(3, 7):
            for k in ids:
                trees.append(tree)
                nodes.append(leaf)
                classes.append(k)
                weight = float(rng.normal())
                weights.append(abs(weight) / n_trees if positive else weight)
    return {"treeids": trees, "nodeids": nodes, "ids": classes, "weights": weights}


def classifier(
    *,
    n_trees: int = 2,
    ids: list[int],
    classes: list[Any],
    post: str,
    base: list[float] | None = None,
    positive: bool = False,
    mode: str = "BRANCH_LEQ",
) -> onnx.ModelProto:
    """A TreeEnsembleClassifier whose leaves score the class ids ``ids``."""
    attributes: dict[str, Any] = _forest(n_trees, mode)
    attributes.update({f"class_{k}": v for k, v in _weights(n_trees, ids, positive, seed=1).items()})
    attributes["post_transform"] = post
    texts = isinstance(classes[0], str)
    attributes["classlabels_strings" if texts else "classlabels_int64s"] = classes
    if base is not None:
        attributes["base_values"] = base
    label = helper.make_tensor_value_info("label", TensorProto.STRING if texts else TensorProto.INT64, [None])
    probabilities = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, len(classes)])
    return _model("TreeEnsembleClassifier", attributes, [label, probabilities])


def regressor(
    *,
    n_trees: int = 3,
    targets: int = 1,
    base: list[float] | None = None,
    aggregate: str = "SUM",
    mode: str = "BRANCH_LEQ",
) -> onnx.ModelProto:
    """A TreeEnsembleRegressor of ``targets`` targets."""
    attributes: dict[str, Any] = _forest(n_trees, mode)
    weights = _weights(n_trees, list(range(targets)), positive=False, seed=2)
    attributes.update({f"target_{k}": v for k, v in weights.items()})
    attributes.update(n_targets=targets, aggregate_function=aggregate, post_transform="NONE")
    if base is not None:
        attributes["base_values"] = base
    return _model(
        "TreeEnsembleRegressor",
        attributes,
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, targets])],
    )


def walk(tables: TreeTables, rows: np.ndarray) -> np.ndarray:
    """The kernel's raw scores, computed in Python: every row through every tree, leaf weights summed."""
    compare = OPS[tables.comparison]
    out = np.zeros((len(rows), tables.n_outputs))
    for r, row in enumerate(rows):
        for root, depth in zip(tables.roots, tables.depths, strict=True):
            node = int(root)
            for _ in range(int(depth)):
                value = row[tables.features[node]]
                taken = bool(compare(value, tables.thresholds[node])) or (
                    bool(np.isnan(value)) and bool(tables.missing_true[node])
                )
                node = int(tables.children[node, int(taken)])
            out[r] += tables.leaf_weights[tables.leaf_slot[node]]
    if tables.aggregate == "AVERAGE":
        out /= tables.n_trees
    return out


def rows_with_missing(count: int = 60) -> np.ndarray:
    rng = np.random.default_rng(0)
    rows = rng.normal(scale=0.5, size=(count, 2)).astype(np.float32)
    rows[::7, 0] = np.nan
    rows[3::9, 1] = np.nan
    return rows


def assert_same_outputs(ours: list[np.ndarray], theirs: list[Any], labels: bool) -> None:
    if labels:
        assert [str(v) for v in ours[0]] == [str(v) for v in theirs[0]]
        ours, theirs = ours[1:], theirs[1:]
    np.testing.assert_allclose(ours[0], np.asarray(theirs[0]), rtol=1e-6, atol=1e-6)


# Each case: the graph, and whether onnxruntime 1.32 answers as onnx.reference does on it. It does not for a
# two-class ensemble scoring one class with leaf weights of both signs and no post transform: it writes
# (-score, score) where the ONNX reference writes (1 - score, score). Converters emit that case only with
# weights that are probabilities (all positive), where both agree.
CASES = {
    "binary-none-probabilities": (classifier(ids=[0], classes=[0, 1], post="NONE", positive=True), True),
    "binary-none-mixed-signs": (classifier(ids=[0], classes=[0, 1], post="NONE"), False),
    "binary-logistic-one-base": (
        classifier(ids=[0], classes=[0, 1], post="LOGISTIC", base=[0.3]),
        True,
    ),
    "binary-logistic-no-base": (classifier(ids=[0], classes=[0, 1], post="LOGISTIC"), True),
    "multiclass-softmax-base": (
        classifier(n_trees=3, ids=[0, 1, 2], classes=[0, 1, 2], post="SOFTMAX", base=[0.1, 0.2, -0.3]),
        True,
    ),
    "multiclass-none": (classifier(ids=[0, 1, 2], classes=[3, 5, 7], post="NONE", positive=True), True),
    "string-labels": (classifier(ids=[0, 1, 2], classes=["ok", "warn", "fail"], post="SOFTMAX"), True),
    "string-labels-binary": (
        classifier(ids=[0], classes=["fail", "ok"], post="LOGISTIC", base=[-0.2]),
        True,
    ),
    "regressor-base": (regressor(base=[1.5]), True),
    "regressor-two-targets-average": (regressor(targets=2, base=[0.5, -2.0], aggregate="AVERAGE"), True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_finished_scores_answer_as_the_onnx_reference(case: str) -> None:
    model, _ = CASES[case]
    tables = read_tree_tables(model)
    rows = rows_with_missing()
    finished = finish_scores(walk(tables, rows), tables.finish())
    ours = [finished[name] for name in tables.output_names]
    reference = ReferenceEvaluator(model).run(None, {"X": rows})
    assert_same_outputs(ours, reference, labels=tables.is_classifier)
    assert ours[-1].dtype == np.float32


@pytest.mark.parametrize("case", [name for name, (_, same) in CASES.items() if same])
def test_finished_scores_answer_as_onnxruntime(case: str) -> None:
    model, _ = CASES[case]
    tables = read_tree_tables(model)
    rows = rows_with_missing()
    finished = finish_scores(walk(tables, rows), tables.finish())
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert_same_outputs(
        [finished[name] for name in tables.output_names],
        session.run(None, {"X": rows}),
        labels=tables.is_classifier,
    )


def test_labels_keep_the_type_of_the_classes() -> None:
    scores = np.array([[0.2, 0.5, 0.3], [0.9, 0.05, 0.05]])
    finish = {
        "op": "TreeEnsembleClassifier",
        "outputs": ["label", "probabilities"],
        "post_transform": "NONE",
        "base_values": [],
        "binary": False,
    }
    numbers = finish_scores(scores, {**finish, "classes": [3, 5, 7]})
    assert numbers["label"].dtype == np.int64 and numbers["label"].tolist() == [5, 3]
    texts = finish_scores(scores, {**finish, "classes": ["a", "b", "c"]})
    assert texts["label"].tolist() == ["b", "a"]
    np.testing.assert_array_equal(texts["probabilities"], scores.astype(np.float32))


# --------------------------------------------------------------------------- what refuses to load


def _record(**changes: Any) -> dict[str, Any]:
    import platform

    record = {
        "name": "c-trees",
        "library": "trees.so",
        "machine": platform.machine().lower(),
        "cpu_flags": [],
        "finish": {"input": "X", "outputs": ["variable"], "input_dtype": "float32"},
    }
    record.update(changes)
    return record


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_a_library_built_for_another_machine_is_refused(tmp_path: Path) -> None:
    other = "aarch64" if _record()["machine"] != "aarch64" else "x86_64"
    with pytest.raises(BackendUnavailable) as refused:
        CompiledTrees(tmp_path, _record(machine=other), load_profile("cloud"))
    message = _one_line(refused)
    assert f"built for {other}" in message and "'c-trees'" in message


def test_a_library_needing_a_cpu_flag_this_cpu_lacks_is_refused(tmp_path: Path) -> None:
    record = _record(cpu_flags=["sse2", "kepler_test_no_such_flag"])
    with pytest.raises(BackendUnavailable) as refused:
        CompiledTrees(tmp_path, record, load_profile("cloud"))
    assert "lacks kepler_test_no_such_flag" in _one_line(refused)
    assert machine_problem(record["machine"], ()) is None


def test_a_file_the_loader_refuses_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "trees.so").write_bytes(b"\x7fELF not really a library")
    with pytest.raises(BackendUnavailable) as refused:
        CompiledTrees(tmp_path, _record(), load_profile("cloud"))
    assert "cannot load here" in _one_line(refused)


def test_a_missing_library_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable) as refused:
        CompiledTrees(tmp_path, _record(), load_profile("cloud"))
    assert "cannot load here" in _one_line(refused)


def test_a_shared_library_that_is_not_a_kernel_is_unavailable() -> None:
    # numpy's own extension module: a real shared library this process can load, without the kernel's symbols.
    library = next(Path(np.__file__).parent.rglob("_multiarray_umath*.so"))
    with pytest.raises(BackendUnavailable) as refused:
        CompiledTrees(library.parent, _record(library=library.name), load_profile("cloud"))
    assert "kepler_abi" in _one_line(refused)


# --------------------------------------------------------------------------- the real kernel (C compiler)


def _build(model: onnx.ModelProto, folder: Path) -> dict[str, Any]:
    from kepler.compilers.backends.build import build_c_trees

    folder.mkdir()
    return build_c_trees(model, folder).to_dict()


KERNEL_CASES = {
    "less": classifier(n_trees=3, ids=[0, 1, 2], classes=[0, 1, 2], post="SOFTMAX", mode="BRANCH_LT"),
    "greater-or-equal": classifier(ids=[0], classes=[0, 1], post="LOGISTIC", base=[0.3], mode="BRANCH_GTE"),
    "greater": regressor(targets=2, base=[0.5, -2.0], mode="BRANCH_GT"),
    "average": regressor(aggregate="AVERAGE", base=[1.5]),
}


@pytest.mark.integration
@pytest.mark.parametrize("case", list(KERNEL_CASES))
def test_the_kernel_answers_as_the_onnx_reference(case: str, tmp_path: Path) -> None:
    model = KERNEL_CASES[case]
    record = _build(model, tmp_path / "artifact")
    trees = CompiledTrees(tmp_path / "artifact", record, load_profile("cloud"))
    # Rows on the thresholds themselves decide the comparison's direction; NaNs take both missing directions.
    rows = np.concatenate(
        [
            rows_with_missing(),
            np.array([[0.0, -0.2], [0.1, 0.3], [0.2, 0.4], [np.nan, 0.3]], dtype=np.float32),
        ]
    )
    ours = trees.run(None, {"X": rows})
    reference = ReferenceEvaluator(model).run(None, {"X": rows})
    assert_same_outputs(ours, reference, labels=model.graph.node[0].op_type == "TreeEnsembleClassifier")
    np.testing.assert_allclose(
        trees.scores(rows), walk(read_tree_tables(model), rows), rtol=1e-12, atol=1e-12
    )


@pytest.mark.integration
def test_a_library_answering_another_input_type_than_its_record_is_unavailable(tmp_path: Path) -> None:
    record = _build(KERNEL_CASES["average"], tmp_path / "artifact")
    assert record["finish"]["input_dtype"] == "float32"
    record["finish"]["input_dtype"] = "float64"
    with pytest.raises(BackendUnavailable) as refused:
        CompiledTrees(tmp_path / "artifact", record, load_profile("cloud"))
    assert "another input type" in _one_line(refused)


@pytest.mark.integration
def test_a_library_of_another_abi_is_unavailable(tmp_path: Path) -> None:
    from kepler.compilers.backends.toolchain import build_library, find_toolchain

    build_library(
        "#include <stdint.h>\nint32_t kepler_abi(void) { return 99; }\n",
        tmp_path / "trees.so",
        find_toolchain(),
    )
    with pytest.raises(BackendUnavailable) as refused:
        CompiledTrees(tmp_path, _record(), load_profile("cloud"))
    assert "ABI 99" in _one_line(refused)


@pytest.mark.integration
def test_a_kernel_refuses_an_array_narrower_than_its_features(tmp_path: Path) -> None:
    from kepler.errors import KeplerError

    record = _build(KERNEL_CASES["average"], tmp_path / "artifact")
    trees = CompiledTrees(tmp_path / "artifact", record, load_profile("cloud"))
    with pytest.raises(KeplerError, match="reads 2 columns"):
        trees.scores(np.zeros((3, 1), dtype=np.float32))


@pytest.mark.integration
def test_every_kernel_this_cpu_runs_gives_the_same_bits(tmp_path: Path) -> None:
    """The portable, AVX2 and AVX-512 kernels (each forced in turn, where this CPU runs it) answer the same
    bits on complete trees (XGBoost depth 5), padded ones (a forest of depth 8) and explicit ones (an unlimited
    forest), on blocks with and without missing values; and they equal a walk of the tables."""
    import dataclasses

    from sklearn.ensemble import RandomForestClassifier
    from xgboost import XGBClassifier

    import kepler as kp

    rng = np.random.default_rng(7)
    x = rng.normal(size=(1500, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int)
    rows = x.copy()
    rows[::37, 2] = np.nan
    profile = dataclasses.replace(load_profile("cloud"), threads=1)
    models = {
        "complete": XGBClassifier(n_estimators=8, max_depth=5, random_state=0),
        "padded": RandomForestClassifier(n_estimators=6, max_depth=8, random_state=0),
        "explicit": RandomForestClassifier(n_estimators=4, random_state=0),
    }
    for name, model in models.items():
        artifact = kp.compile(model.fit(x, y), profile, x[:500], output=tmp_path / name, benchmark=False)
        plan = artifact.manifest.backends
        assert plan is not None and plan.compiled, (name, plan)
        trees = CompiledTrees(artifact.path, plan.compiled[0].to_dict(), profile)
        library = trees._library
        ran = {}
        for kernel in (0, 1, 2):
            if library.kepler_use_kernel(kernel) != 0:
                continue  # this CPU lacks the instructions; the portable kernel always runs
            assert library.kepler_kernel() == kernel
            ran[kernel] = trees.scores(rows)
        library.kepler_use_kernel(-1)
        assert 0 in ran, name
        for kernel, scores in ran.items():
            assert np.array_equal(scores, ran[0]), (name, kernel)
        tables = read_tree_tables(onnx.load(artifact.model_path))
        np.testing.assert_allclose(ran[0], walk(tables, rows), rtol=1e-9, atol=1e-9, err_msg=name)
