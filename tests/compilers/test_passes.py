"""Pass tests: the graph before and after each registered pass, and a second run changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import kepler as kp
from kepler.compilers import list_passes, register_pass
from kepler.compilers.passes import PASSES, PassContext, check_pass_names, run_passes
from kepler.errors import CompileError, ProfileError, RegistryError
from kepler.targets import load_profile

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _no_pass_profile(tmp_path: Path) -> Path:
    path = tmp_path / "raw.toml"
    path.write_text(
        'name = "raw"\nthreads = 1\nmemory_mb = 256\nlatency_p99_ms = 50\nsize_mb = 10\n'
        'batch_sizes = [1]\nartifact_format = "onnx"\npasses = []\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def converted(industrial, full_preprocessing, tmp_path_factory) -> dict[str, Any]:
    """Graphs as the converters emit them (a profile with no passes), with their models and rows."""
    folder = tmp_path_factory.mktemp("passes")
    graphs = {}
    for name, estimator in (
        ("linear", LogisticRegression(max_iter=2000)),
        ("forest", RandomForestClassifier(n_estimators=11, max_depth=5, random_state=0)),
    ):
        model = Pipeline(full_preprocessing("classifier") + [("model", estimator)]).fit(
            industrial.frame, industrial.failure
        )
        artifact = kp.compile(
            model,
            target=_no_pass_profile(folder),
            sample=industrial.frame,
            output=folder / name,
            benchmark=False,
        )
        assert artifact.manifest.passes == ()
        graphs[name] = {
            "graph": onnx.load(str(artifact.model_path)),
            "feed": artifact.predictor().feed(industrial.frame),
        }
    return graphs


def _context(**kwargs: Any) -> PassContext:
    return PassContext(profile=load_profile("edge"), **kwargs)


def _run(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feed), strict=False))


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copied = onnx.ModelProto()
    copied.CopyFrom(model)
    return copied


# --- the registry -------------------------------------------------------------------------------


def test_registered_passes_are_listed():
    assert list_passes() == ["embed_metadata", "ort_optimize", "prune_unused"]
    for name in list_passes():
        assert callable(PASSES.get(name))


def test_registering_a_taken_pass_name_raises():
    with pytest.raises(RegistryError, match="prune_unused"):
        register_pass("prune_unused")(lambda model, context: model)
    assert PASSES.get("prune_unused").__module__ == "kepler.compilers.passes.prune_unused"


def test_a_new_pass_registers_and_runs_in_profile_order(monkeypatch):
    monkeypatch.setattr(PASSES, "_entries", dict(PASSES._entries))  # restored after the test
    calls = []

    @register_pass("test_rename_graph")
    def rename(model: onnx.ModelProto, context: PassContext) -> onnx.ModelProto:
        calls.append(context.profile.name)
        out = _copy(model)
        out.graph.name = "renamed"
        return out

    assert "test_rename_graph" in list_passes()
    graph = helper.make_model(
        helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        )
    )
    result, applied = run_passes(
        graph, ["test_rename_graph", "embed_metadata"], _context(metadata={"a": "b"})
    )
    assert calls == ["edge"]
    assert result.graph.name == "renamed" and result.producer_name == "kepler"
    assert applied == [
        {"name": "test_rename_graph", "nodes_before": 1, "nodes_after": 1},
        {"name": "embed_metadata", "nodes_before": 1, "nodes_after": 1},
    ]


def test_a_failing_pass_raises_compile_error_naming_it(monkeypatch):
    monkeypatch.setattr(PASSES, "_entries", dict(PASSES._entries))

    @register_pass("test_broken")
    def broken(model: onnx.ModelProto, context: PassContext) -> onnx.ModelProto:
        raise ValueError("boom")

    with pytest.raises(CompileError, match="test_broken.*boom"):
        run_passes(onnx.ModelProto(), ["test_broken"], _context())


def test_unknown_pass_names_fail_naming_the_profile_and_the_known_ones():
    with pytest.raises(ProfileError) as caught:
        check_pass_names(["prune_unused", "quantize_everything"], "my.toml")
    message = str(caught.value)
    assert "my.toml" in message and "'passes'" in message and "quantize_everything" in message
    assert all(name in message for name in list_passes())


# --- prune_unused ---------------------------------------------------------------------------------


def _graph_with_dead_parts() -> onnx.ModelProto:
    """y = x + a (served), z = x * b (an extra output), and a node and initializer nothing reads."""
    a = numpy_helper.from_array(np.array([[1.0, 2.0]], dtype=np.float32), "a")
    b = numpy_helper.from_array(np.array([[3.0, 4.0]], dtype=np.float32), "b")
    unused = numpy_helper.from_array(np.array([[5.0, 6.0]], dtype=np.float32), "unused")
    nodes = [
        helper.make_node("Add", ["x", "a"], ["y"], name="add"),
        helper.make_node("Mul", ["x", "b"], ["z"], name="mul"),
        helper.make_node("Neg", ["x"], ["dead"], name="dead_end"),
        helper.make_node("Sub", ["dead", "unused"], ["deader"], name="dead_chain"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, [None, 2]),
        ],
        initializer=[a, b, unused],
        value_info=[helper.make_tensor_value_info("dead", TensorProto.FLOAT, [None, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_prune_unused_drops_unserved_outputs_dead_nodes_and_initializers():
    before = _graph_with_dead_parts()
    original = before.SerializeToString()
    x = np.array([[1.0, 1.0], [2.0, -1.0]], dtype=np.float32)

    after = PASSES.get("prune_unused")(before, _context(keep_outputs=["y"]))

    assert before.SerializeToString() == original  # the input is not modified
    assert [o.name for o in after.graph.output] == ["y"]
    assert [n.name for n in after.graph.node] == ["add"]
    assert [t.name for t in after.graph.initializer] == ["a"]
    assert list(after.graph.value_info) == []
    onnx.checker.check_model(after)
    np.testing.assert_array_equal(_run(after, {"x": x})["y"], _run(before, {"x": x})["y"])


def test_prune_unused_without_keep_list_keeps_outputs_and_drops_only_dead_nodes():
    after = PASSES.get("prune_unused")(_graph_with_dead_parts(), _context())

    assert [o.name for o in after.graph.output] == ["y", "z"]
    assert [n.name for n in after.graph.node] == ["add", "mul"]
    assert sorted(t.name for t in after.graph.initializer) == ["a", "b"]


def test_prune_unused_twice_changes_nothing():
    context = _context(keep_outputs=["y"])
    once = PASSES.get("prune_unused")(_graph_with_dead_parts(), context)
    twice = PASSES.get("prune_unused")(once, context)
    assert twice.SerializeToString() == once.SerializeToString()


@pytest.mark.parametrize("name", ["linear", "forest"])
def test_prune_unused_on_a_converted_graph(name, converted):
    graph, feed = converted[name]["graph"], converted[name]["feed"]
    full = _run(graph, feed)

    labels_only = PASSES.get("prune_unused")(graph, _context(keep_outputs=["label"]))
    both = PASSES.get("prune_unused")(graph, _context(keep_outputs=["label", "probabilities"]))

    assert [o.name for o in labels_only.graph.output] == ["label"]
    assert len(labels_only.graph.node) <= len(graph.graph.node)
    np.testing.assert_array_equal(_run(labels_only, feed)["label"], full["label"])
    assert [o.name for o in both.graph.output] == ["label", "probabilities"]
    assert len(both.graph.node) == len(graph.graph.node)  # the converters leave no dead nodes
    np.testing.assert_array_equal(_run(both, feed)["probabilities"], full["probabilities"])


# --- embed_metadata -------------------------------------------------------------------------------


def test_embed_metadata_sets_producer_and_sorted_metadata():
    before = _graph_with_dead_parts()
    before.metadata_props.add(key="owner", value="plant-7")
    before.metadata_props.add(key="kepler.target", value="stale")
    context = _context(metadata={"kepler_version": "9.9.9", "kepler.target": "edge", "kepler.estimator": "X"})

    after = PASSES.get("embed_metadata")(before, context)

    assert after.producer_name == "kepler"
    assert after.producer_version == "9.9.9"
    props = [(p.key, p.value) for p in after.metadata_props]
    assert props == sorted(props)
    assert dict(props) == {
        "owner": "plant-7",
        "kepler.target": "edge",
        "kepler.estimator": "X",
        "kepler_version": "9.9.9",
    }
    assert before.producer_name != "kepler"  # the input is not modified
    assert after.graph.SerializeToString() == before.graph.SerializeToString()


def test_embed_metadata_twice_changes_nothing():
    context = _context(metadata={"kepler_version": "1.0", "kepler.target": "edge"})
    once = PASSES.get("embed_metadata")(_graph_with_dead_parts(), context)
    twice = PASSES.get("embed_metadata")(once, context)
    assert twice.SerializeToString() == once.SerializeToString()


def test_compiled_artifact_carries_the_metadata(industrial, compile_edge):
    from sklearn.linear_model import Ridge

    model = Ridge().fit(industrial.numeric_filled, industrial.wear)
    artifact = compile_edge(model, industrial.numeric_filled)
    graph = onnx.load(str(artifact.model_path))
    props = {p.key: p.value for p in graph.metadata_props}
    assert graph.producer_name == "kepler"
    assert props["kepler.estimator"] == "Ridge"
    assert props["kepler.target"] == "edge"
    assert props["kepler.source"] == "sklearn.linear_model._ridge.Ridge"
    assert [p.name for p in artifact.manifest.passes] == [
        "ort_optimize",
        "prune_unused",
        "embed_metadata",
    ]


# --- ort_optimize ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["linear", "forest"])
def test_ort_optimize_gives_a_valid_graph_with_the_same_outputs(name, converted):
    graph, feed = converted[name]["graph"], converted[name]["feed"]
    graph = PASSES.get("embed_metadata")(graph, _context(metadata={"kepler_version": "1.0", "k": "v"}))

    optimized = PASSES.get("ort_optimize")(graph, _context())

    onnx.checker.check_model(optimized)
    assert len(optimized.graph.node) <= len(graph.graph.node)
    assert [o.name for o in optimized.graph.output] == [o.name for o in graph.graph.output]
    assert [i.name for i in optimized.graph.input] == [i.name for i in graph.graph.input]
    assert optimized.producer_name == "kepler"
    assert {p.key: p.value for p in optimized.metadata_props} == {"kepler_version": "1.0", "k": "v"}
    before, after = _run(graph, feed), _run(optimized, feed)
    np.testing.assert_array_equal(after["label"], before["label"])
    np.testing.assert_allclose(after["probabilities"], before["probabilities"], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("level", ["disabled", "basic", "extended", "all"])
def test_ort_optimize_twice_changes_nothing(level, converted):
    from kepler.targets import profile_from_dict

    edge = load_profile("edge").to_dict()
    edge.pop("source")
    edge["graph_optimization"] = level
    context = PassContext(profile=profile_from_dict(edge, "test"))
    once = PASSES.get("ort_optimize")(converted["linear"]["graph"], context)
    twice = PASSES.get("ort_optimize")(once, context)
    assert twice.SerializeToString() == once.SerializeToString()


def test_ort_optimize_fuses_nodes_of_a_converted_pipeline(converted):
    graph = converted["linear"]["graph"]
    optimized = PASSES.get("ort_optimize")(graph, _context())
    assert len(optimized.graph.node) < len(graph.graph.node)
