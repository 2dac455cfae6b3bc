"""Pass: embed Kepler's provenance (version, source model, target) in the model's metadata."""

from __future__ import annotations

import onnx

from kepler.compilers.passes.base import PassContext, register_pass


@register_pass("embed_metadata")
def embed_metadata(model: onnx.ModelProto, context: PassContext) -> onnx.ModelProto:
    """Sets ``producer_name`` and one metadata entry per key of ``context.metadata``,
    replacing earlier values so that running it twice changes nothing."""
    tagged = onnx.ModelProto()
    tagged.CopyFrom(model)
    tagged.producer_name = "kepler"
    tagged.producer_version = context.metadata.get("kepler_version", "")
    entries = {p.key: p.value for p in tagged.metadata_props}
    entries.update({k: str(v) for k, v in context.metadata.items()})
    del tagged.metadata_props[:]
    for key in sorted(entries):
        tagged.metadata_props.add(key=key, value=entries[key])
    return tagged
