"""Converting a native model into one ONNX graph with plain tensor outputs.

Precision policy: preprocessing runs in float64, as in scikit-learn. The final
estimator computes in the precision of its native library: float32 for
scikit-learn trees and forests, GradientBoosting, IsolationForest and XGBoost
(they cast their input to float32), float64 for LightGBM and HistGradientBoosting
(float64 thresholds, see ``float64_thresholds``) and for linear models. A Pipeline
is therefore converted in two parts joined by one Cast.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import onnx
import onnx.numpy_helper
from onnx import TensorProto, compose, helper

from kepler.compilers.converters import CLASSIFIER, OUTLIER, install_backends
from kepler.compilers.converters.double_precision import repair_constant_of_shape
from kepler.compilers.converters.float64_thresholds import use_native_thresholds
from kepler.compilers.converters.spec import ConverterSpec
from kepler.compilers.inspection import ModelInfo
from kepler.compilers.schema import by_position, estimator_dtype, graph_column_name, onnx_initial_types
from kepler.errors import CompileError
from kepler.runtimes.manifest import InputSchema, OutputSchema

# onnxmltools' XGBoost converter accepts main opsets up to 15; ai.onnx.ml 3 is what both converters emit.
TARGET_OPSET = {"": 15, "ai.onnx.ml": 3}
FEATURES = "kepler_features"
_ELEM = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}


def _classes(final: Any) -> list[Any] | None:
    classes = getattr(final, "classes_", None)
    if classes is None:
        return None
    return [c.item() if hasattr(c, "item") else c for c in classes]


def _convert(
    model: Any, initial_types: list[tuple[str, Any]], options: dict[int, dict[str, Any]] | None
) -> onnx.ModelProto:
    from skl2onnx import convert_sklearn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph: onnx.ModelProto = convert_sklearn(
            model, initial_types=initial_types, options=options, target_opset=TARGET_OPSET
        )
    return graph


def _set_opsets(model: onnx.ModelProto) -> None:
    versions: dict[str, int] = {}
    for entry in model.opset_import:
        versions[entry.domain] = max(versions.get(entry.domain, 0), entry.version)
    versions.update(TARGET_OPSET)
    del model.opset_import[:]
    for domain, version in sorted(versions.items()):
        model.opset_import.add(domain=domain, version=version)


def _joined(
    preprocessing: onnx.ModelProto, estimator: onnx.ModelProto, dtype: str, width: int
) -> onnx.ModelProto:
    """Feeds the preprocessing graph's output, cast to ``dtype``, into the estimator graph."""
    preprocessing = compose.add_prefix(preprocessing, "pre_", rename_inputs=False)
    produced = preprocessing.graph.output[0].name
    cast = f"{FEATURES}_cast"
    preprocessing.graph.node.append(
        helper.make_node("Cast", [produced], [cast], to=_ELEM[dtype], name="kepler_cast_features")
    )
    del preprocessing.graph.output[:]
    preprocessing.graph.output.append(helper.make_tensor_value_info(cast, _ELEM[dtype], [None, width]))
    estimator = compose.add_prefix(estimator, "est_", rename_inputs=False, rename_outputs=False)
    _set_opsets(preprocessing)
    _set_opsets(estimator)
    estimator.ir_version = preprocessing.ir_version = max(preprocessing.ir_version, estimator.ir_version)
    return compose.merge_models(preprocessing, estimator, io_map=[(cast, FEATURES)])


def group_inputs(model: onnx.ModelProto, schema: InputSchema) -> onnx.ModelProto:
    """Replaces per-column graph inputs by one numeric and one categorical matrix, split inside the graph.

    Two inputs instead of one per column keep the caller's work per request flat.
    """
    if not schema.by_name:
        return model
    graph = model.graph
    graph_names = {spec.name: graph_column_name(i) for i, spec in enumerate(schema.columns)}
    front = []
    inputs = []
    for key, group, elem in (
        ("numeric", schema.numeric, _ELEM.get(schema.numeric.dtype or "", 0) if schema.numeric else 0),
        ("categorical", schema.categorical, TensorProto.STRING),
    ):
        if not group:
            continue
        names = [graph_names[name] for name in group.columns]
        inputs.append(helper.make_tensor_value_info(group.input, elem, [None, len(names)]))
        if len(names) == 1:
            front.append(helper.make_node("Identity", [group.input], names, name=f"kepler_split_{key}"))
        else:
            sizes = f"kepler_split_{key}_sizes"
            graph.initializer.append(onnx.numpy_helper.from_array(np.ones(len(names), dtype=np.int64), sizes))
            front.append(
                helper.make_node("Split", [group.input, sizes], names, axis=1, name=f"kepler_split_{key}")
            )
    del graph.input[:]
    graph.input.extend(inputs)
    nodes = front + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def to_onnx(info: ModelInfo, input_schema: InputSchema, frame: Any) -> tuple[onnx.ModelProto, OutputSchema]:
    """Converts the model and describes its outputs.

    Args:
        info: The inspected model.
        input_schema: The graph's input schema.
        frame: Sample rows, used to size the features between preprocessing and estimator.

    Returns:
        The ONNX model and the output schema: task, output names, classes.

    Raises:
        CompileError: a converter failed.
    """
    from sklearn.pipeline import Pipeline

    install_backends()
    native, final = (
        info.spec.prepare(info.model, info.final) if info.spec.prepare else (info.model, info.final)
    )
    options = {id(final): {"zipmap": False}} if info.role == CLASSIFIER else None
    try:
        steps = native.steps if type(native).__name__ == "Pipeline" else []
        if len(steps) >= 2:
            preprocessing = Pipeline(steps[:-1])
            rows = frame if info.feature_names is not None else frame.to_numpy()
            width = int(
                preprocessing.transform(rows.iloc[:2] if hasattr(rows, "iloc") else rows[:2]).shape[1]
            )
            names = list(input_schema.names)
            pre_graph = repair_constant_of_shape(
                _convert(by_position(preprocessing, names), onnx_initial_types(input_schema), None)
            )
            dtype = estimator_dtype(info)
            est_graph = _convert(
                final, [(FEATURES, _tensor_type(info.spec.input_float)([None, width]))], options
            )
            model = _joined(pre_graph, _native_splits(est_graph, final, info.spec), dtype, width)
        else:
            model = _native_splits(
                _convert(native, onnx_initial_types(input_schema, for_converter=True), options),
                final,
                info.spec,
            )
        model = group_inputs(model, input_schema)
        _set_opsets(model)
        onnx.checker.check_model(model)
    except CompileError:
        raise
    except Exception as exc:  # the converters raise bare Exceptions of many types
        raise CompileError(
            f"converting {type(info.final).__name__} to ONNX failed: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:300] if str(exc) else ''}; check that every step is supported "
            f"(kepler.compilers.supported())"
        ) from exc
    _check_runnable(model, info)
    outputs = tuple(o.name for o in model.graph.output)
    classes = _classes(info.final)
    schema = OutputSchema(
        task=info.role, outputs=outputs, classes=tuple(classes) if classes is not None else None
    )
    if info.role == CLASSIFIER:
        schema = dataclasses.replace(schema, label=outputs[0], probabilities=outputs[1])
    elif info.role == OUTLIER:
        schema = dataclasses.replace(
            schema, label=outputs[0], scores=outputs[1] if len(outputs) > 1 else None
        )
    else:
        schema = dataclasses.replace(schema, prediction=outputs[0])
    return model, schema


def _check_runnable(model: onnx.ModelProto, info: ModelInfo) -> None:
    """Fails the compile when onnxruntime cannot load the converted graph (an op or type it lacks)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        ort.InferenceSession(
            model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise CompileError(
            f"onnxruntime cannot run the graph converted from {type(info.final).__name__}: "
            f"{str(exc).splitlines()[0][:300]}; this combination of steps is not supported yet, "
            f"so replace the step the message names"
        ) from exc


def _native_splits(model: onnx.ModelProto, final: Any, spec: ConverterSpec) -> onnx.ModelProto:
    if spec.native_thresholds is not None:
        use_native_thresholds(model, spec.native_thresholds(final))
    return model


def _tensor_type(dtype: str) -> Any:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    return DoubleTensorType if dtype == "float64" else FloatTensorType
