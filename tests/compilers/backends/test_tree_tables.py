"""Reading an artifact's tree ensemble into flat tables: which graphs compile (and how), which do not and why,
and the float32 threshold that keeps a float64 threshold's decision exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lightgbm import LGBMRegressor
from onnx import TensorProto, helper
from sklearn.ensemble import IsolationForest, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier

import kepler as kp
from kepler.automl.pipelines import preprocessing
from kepler.compilers.backends import NotCompilable, read_tree_tables
from kepler.compilers.backends.tree_tables import COMPARISONS, to_float32_threshold
from kepler.errors import CompileError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

NUMERIC = ["temperature", "pressure", "vibration", "rpm"]
OPS = {"<=": np.less_equal, "<": np.less, ">=": np.greater_equal, ">": np.greater}


def _graph(model: Any, sample: Any, folder: Path) -> onnx.ModelProto:
    """The ONNX graph of ``model``'s edge artifact (no compiled backend: the edge profile allows none)."""
    artifact = kp.compile(model, target="edge", sample=sample, output=folder, benchmark=False)
    return onnx.load(str(artifact.model_path))


@pytest.fixture(scope="module")
def graphs(industrial, tmp_path_factory) -> dict[str, onnx.ModelProto]:
    folder = tmp_path_factory.mktemp("graphs")
    numeric = industrial.numeric
    made = {
        "xgboost": _graph(
            XGBClassifier(n_estimators=8, max_depth=3).fit(numeric, industrial.grade),
            numeric,
            folder / "xgboost",
        ),
        "lightgbm": _graph(
            LGBMRegressor(n_estimators=8, num_leaves=8, verbose=-1).fit(numeric, industrial.wear),
            numeric,
            folder / "lightgbm",
        ),
        "pipeline": _graph(
            Pipeline(
                [
                    ("preprocessing", preprocessing(NUMERIC, ["line"], scaled=False)),
                    ("model", RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0)),
                ]
            ).fit(industrial.frame, industrial.failure),
            industrial.frame,
            folder / "pipeline",
        ),
        "isolation_forest": _graph(
            IsolationForest(n_estimators=4, random_state=0).fit(industrial.numeric_filled),
            industrial.numeric_filled,
            folder / "isolation_forest",
        ),
        "logistic": _graph(
            LogisticRegression(max_iter=500).fit(industrial.numeric_filled, industrial.failure),
            industrial.numeric_filled,
            folder / "logistic",
        ),
    }
    return made


def test_a_bare_xgboost_classifier_reads_its_graph_input(graphs) -> None:
    model = graphs["xgboost"]
    tables = read_tree_tables(model)
    assert tables.input_name in [i.name for i in model.graph.input]
    assert tables.is_classifier and tables.classes == (0, 1, 2) and not tables.binary
    assert (tables.comparison, tables.input_dtype, tables.post_transform) == ("<", "float32", "SOFTMAX")
    assert tables.n_trees == 8 * 3  # one tree per class and round
    assert tables.n_features <= len(NUMERIC)
    assert tables.missing_true.any()  # XGBoost learns where missing values go
    # A float32 graph's thresholds are float32 numbers, so the kernel's comparison is the graph's.
    branches = tables.leaf_slot < 0
    assert np.array_equal(tables.thresholds[branches].astype(np.float32), tables.thresholds[branches])
    # Every leaf points to itself; every branch to two other nodes of its tree.
    leaves = np.flatnonzero(~branches)
    assert (tables.children[leaves] == leaves[:, None]).all()
    assert (tables.children[branches] != np.flatnonzero(branches)[:, None]).all()
    assert tables.leaf_weights.shape == (len(leaves), 3)


def test_a_lightgbm_graph_reads_float64_with_exact_thresholds(graphs) -> None:
    model = graphs["lightgbm"]
    tables = read_tree_tables(model)
    assert (tables.op, tables.input_dtype, tables.comparison) == ("TreeEnsembleRegressor", "float64", "<=")
    node = next(n for n in model.graph.node if n.op_type == "TreeEnsembleRegressor")
    stored = next(a for a in node.attribute if a.name == "nodes_values_as_tensor")
    expected = onnx.numpy_helper.to_array(stored.t).astype(np.float64)
    branches = tables.leaf_slot < 0
    np.testing.assert_array_equal(tables.thresholds[branches], expected[branches])
    assert tables.finish()["input_dtype"] == "float64"


def test_a_pipeline_with_preprocessing_compiles_behind_a_prefix(graphs) -> None:
    model = graphs["pipeline"]
    tables = read_tree_tables(model)
    inputs = [i.name for i in model.graph.input]
    assert len(inputs) == 2  # numeric and categorical columns
    assert tables.input_name not in inputs  # the trees read what the preprocessing computes
    assert tables.output_names == tuple(o.name for o in model.graph.output)
    assert tables.binary and tables.post_transform == "NONE"
    finish = tables.finish()
    assert finish["input"] == tables.input_name and finish["classes"] == [0, 1]


def test_an_isolation_forest_is_not_compilable(graphs) -> None:
    with pytest.raises(NotCompilable, match="holds 4 tree ensembles, the compiled backend takes one"):
        read_tree_tables(graphs["isolation_forest"])


def test_a_logistic_regression_is_not_compilable(graphs) -> None:
    with pytest.raises(NotCompilable, match="holds 0 tree ensembles"):
        read_tree_tables(graphs["logistic"])


def test_not_compilable_is_a_compile_error() -> None:
    assert issubclass(NotCompilable, CompileError)


# --------------------------------------------------------------------------- hand-built graphs


def _ensemble(
    name: str, *, input_name: str = "X", output: str = "variable", **changes: Any
) -> onnx.NodeProto:
    """A TreeEnsembleRegressor of one tree of depth 1 (root 0, leaves 1 and 2), with ``changes`` applied."""
    attributes: dict[str, Any] = {
        "nodes_treeids": [0, 0, 0],
        "nodes_nodeids": [0, 1, 2],
        "nodes_featureids": [0, 0, 0],
        "nodes_values": [0.5, 0.0, 0.0],
        "nodes_modes": ["BRANCH_LEQ", "LEAF", "LEAF"],
        "nodes_truenodeids": [1, 0, 0],
        "nodes_falsenodeids": [2, 0, 0],
        "target_treeids": [0, 0],
        "target_nodeids": [1, 2],
        "target_ids": [0, 0],
        "target_weights": [1.0, 2.0],
        "n_targets": 1,
        "post_transform": "NONE",
    }
    attributes.update(changes)
    return helper.make_node(
        "TreeEnsembleRegressor", [input_name], [output], domain="ai.onnx.ml", name=name, **attributes
    )


def _model(
    nodes: list[onnx.NodeProto], outputs: list[str], input_type: int = TensorProto.FLOAT
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "hand",
        [helper.make_tensor_value_info("X", input_type, [None, 2])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, 1]) for name in outputs],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 3)]
    )


def test_a_hand_built_tree_reads_as_its_attributes() -> None:
    tables = read_tree_tables(_model([_ensemble("trees")], ["variable"]))
    assert (tables.n_trees, tables.n_nodes, tables.n_outputs, tables.n_features) == (1, 3, 1, 1)
    assert tables.children.tolist() == [[2, 1], [1, 1], [2, 2]]
    assert tables.leaf_weights.tolist() == [[1.0], [2.0]]
    assert tables.depths.tolist() == [1] and tables.base_values == ()


def test_a_double_input_reads_as_float64() -> None:
    assert (
        read_tree_tables(_model([_ensemble("trees")], ["variable"], TensorProto.DOUBLE)).input_dtype
        == "float64"
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"nodes_modes": ["BRANCH_LEQ", "LEAF", "LEAF"], "aggregate_function": "MAX"},
            "aggregate_function MAX",
        ),
        ({"post_transform": "PROBIT"}, "post_transform PROBIT is not compiled"),
        ({"post_transform": "SOFTMAX_ZERO"}, "post_transform SOFTMAX_ZERO"),
        ({"nodes_modes": ["BRANCH_EQ", "LEAF", "LEAF"]}, "compare with BRANCH_EQ"),
        ({"target_nodeids": [0, 2]}, "a weight sits on a branch node"),
    ],
)
def test_what_the_kernel_does_not_cover_is_not_compilable(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(NotCompilable, match=reason):
        read_tree_tables(_model([_ensemble("trees", **changes)], ["variable"]))


def test_mixed_comparisons_are_not_compilable() -> None:
    mixed = {
        "nodes_treeids": [0, 0, 0, 0, 0],
        "nodes_nodeids": [0, 1, 2, 3, 4],
        "nodes_featureids": [0, 1, 0, 0, 0],
        "nodes_values": [0.5, 0.1, 0.0, 0.0, 0.0],
        "nodes_modes": ["BRANCH_LEQ", "BRANCH_LT", "LEAF", "LEAF", "LEAF"],
        "nodes_truenodeids": [1, 3, 0, 0, 0],
        "nodes_falsenodeids": [2, 4, 0, 0, 0],
        "target_treeids": [0, 0, 0],
        "target_nodeids": [2, 3, 4],
        "target_ids": [0, 0, 0],
        "target_weights": [1.0, 2.0, 3.0],
    }
    with pytest.raises(NotCompilable, match="compare with BRANCH_LEQ, BRANCH_LT"):
        read_tree_tables(_model([_ensemble("trees", **mixed)], ["variable"]))


def test_two_ensembles_are_not_compilable() -> None:
    model = _model(
        [
            _ensemble("first", output="a"),
            _ensemble("second", output="b"),
            helper.make_node("Add", ["a", "b"], ["variable"]),
        ],
        ["variable"],
    )
    with pytest.raises(NotCompilable, match="holds 2 tree ensembles"):
        read_tree_tables(model)


def test_an_ensemble_followed_by_other_nodes_is_not_compilable() -> None:
    model = _model(
        [_ensemble("trees", output="raw"), helper.make_node("Neg", ["raw"], ["variable"])], ["variable"]
    )
    with pytest.raises(NotCompilable, match="computes outputs after its tree ensemble"):
        read_tree_tables(model)


def test_an_ensemble_reading_integers_is_not_compilable() -> None:
    with pytest.raises(NotCompilable, match="reads neither float32 nor float64"):
        read_tree_tables(_model([_ensemble("trees")], ["variable"], TensorProto.INT64))


def test_a_binary_classifier_scoring_its_second_class_is_not_compilable() -> None:
    node = helper.make_node(
        "TreeEnsembleClassifier",
        ["X"],
        ["label", "probabilities"],
        domain="ai.onnx.ml",
        nodes_treeids=[0, 0, 0],
        nodes_nodeids=[0, 1, 2],
        nodes_featureids=[0, 0, 0],
        nodes_values=[0.5, 0.0, 0.0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 0, 0],
        nodes_falsenodeids=[2, 0, 0],
        class_treeids=[0, 0],
        class_nodeids=[1, 2],
        class_ids=[1, 1],
        class_weights=[0.2, 0.8],
        classlabels_int64s=[0, 1],
        post_transform="NONE",
    )
    graph = helper.make_graph(
        [node],
        "hand",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2]),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    with pytest.raises(NotCompilable, match=r"scoring classes \[1\] is not compiled"):
        read_tree_tables(model)


# --------------------------------------------------------------------------- float32 thresholds


def _neighbours(center: np.float32, count: int = 6) -> np.ndarray:
    """``count`` float32 numbers on each side of ``center``, and ``center`` itself."""
    below, above, values = center, center, [center]
    with np.errstate(over="ignore"):  # the neighbours of the largest float32 are infinite
        for _ in range(count):
            below = np.nextafter(below, np.float32(-np.inf))
            above = np.nextafter(above, np.float32(np.inf))
            values += [below, above]
    return np.asarray(values, dtype=np.float32)


def _assert_exact(threshold: float) -> None:
    with np.errstate(over="ignore"):
        center = np.float32(threshold)
    if not np.isfinite(center):
        center = np.float32(np.finfo(np.float32).max) * np.float32(np.sign(threshold))
    xs = np.concatenate([_neighbours(center), np.array([-np.inf, np.inf, 0.0, -0.0], dtype=np.float32)])
    for comparison in COMPARISONS.values():
        with np.errstate(over="ignore"):
            t32 = to_float32_threshold(threshold, comparison)
        assert isinstance(t32, np.float32)
        compare = OPS[comparison]
        single = compare(xs, t32)
        double = compare(xs.astype(np.float64), threshold)
        assert np.array_equal(single, double), (threshold, comparison, xs[single != double])


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_a_float32_threshold_decides_as_the_float64_one(threshold: float) -> None:
    _assert_exact(threshold)


@pytest.mark.parametrize("seed", [0, 1])
def test_thresholds_between_and_on_float32_numbers_decide_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    singles = (rng.standard_normal(200) * 10.0 ** rng.integers(-6, 7, 200)).astype(np.float32)
    nexts = np.nextafter(singles, np.float32(np.inf))
    candidates = [
        *singles.astype(np.float64),  # exactly a float32 number
        *((singles.astype(np.float64) + nexts.astype(np.float64)) / 2),  # halfway: rounding ties to even
        *(np.nextafter(singles.astype(np.float64), np.inf)),  # just above a float32 number
        *(np.nextafter(singles.astype(np.float64), -np.inf)),  # just below
        1e-50,
        -1e-50,
        5e-324,
        1e300,
        -1e300,
    ]
    for threshold in candidates:
        _assert_exact(float(threshold))
