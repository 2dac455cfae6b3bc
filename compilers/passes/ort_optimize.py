"""Pass: onnxruntime's offline graph optimization, saved back as an ONNX graph."""

from __future__ import annotations

import os
import tempfile

import onnx
import onnxruntime as ort

from kepler.compilers.passes.base import PassContext, register_pass


@register_pass("ort_optimize")
def ort_optimize(model: onnx.ModelProto, context: PassContext) -> onnx.ModelProto:
    """Runs onnxruntime's graph optimizer offline and returns the optimized graph.

    Uses the ``extended`` level at most: onnxruntime's documentation warns that
    ``all`` adds layout transforms tied to the machine that ran them, and an
    artifact must run on the target, not the build host.
    """
    level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    if context.profile.graph_optimization in ("disabled", "basic"):
        level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    with tempfile.TemporaryDirectory(prefix="kepler-ortopt-") as folder:
        out_path = os.path.join(folder, "optimized.onnx")
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        options.optimized_model_filepath = out_path
        options.log_severity_level = 3
        ort.InferenceSession(
            model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
        )
        optimized = onnx.load(out_path)
    # ORT rewrites metadata and producer; keep the original ones so the pass is idempotent.
    optimized.producer_name = model.producer_name
    optimized.producer_version = model.producer_version
    optimized.doc_string = model.doc_string
    del optimized.metadata_props[:]
    optimized.metadata_props.extend(model.metadata_props)
    return optimized
