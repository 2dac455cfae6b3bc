"""Pass: remove outputs the artifact does not serve, then nodes and initializers nothing reads."""

from __future__ import annotations

import onnx

from kepler.compilers.passes.base import PassContext, register_pass


@register_pass("prune_unused")
def prune_unused(model: onnx.ModelProto, context: PassContext) -> onnx.ModelProto:
    """Drops graph outputs not in ``context.keep_outputs`` and every node, initializer
    and value_info that no kept output depends on."""
    pruned = onnx.ModelProto()
    pruned.CopyFrom(model)
    graph = pruned.graph
    if context.keep_outputs:
        kept = [o for o in graph.output if o.name in context.keep_outputs]
        del graph.output[:]
        graph.output.extend(kept)
    needed = {o.name for o in graph.output}
    live_nodes = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            live_nodes.append(node)
            needed.update(name for name in node.input if name)
    live_nodes.reverse()
    del graph.node[:]
    graph.node.extend(live_nodes)
    initializers = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    infos = [v for v in graph.value_info if v.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(infos)
    return pruned
