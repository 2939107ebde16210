"""Give every node its own copy of a float initializer that several nodes read.

Why: onnxruntime.quantization (1.32) copies a bias that two nodes share, naming the copy
``<name><largest numeric suffix + 1>`` among *initializer* names only. The dynamo exporter shares
one ``val_21`` (ones) / ``val_25`` (zeros) scale/bias across every non-affine InstanceNorm and names
node outputs ``val_<n>`` too, so on resnet-sketch's sub-pixel graph the 5th copy ``val_255`` is
also the output of an Unsqueeze: the quantizer then treats that activation as a weight and stops
with "Quantization parameter shared mode is not supported for weight yet". With no shared float
initializer left, the quantizer never copies and the name clash cannot happen. The copies are
numerically identical (float-exact); the few duplicated bytes are scales/biases or per-channel
quantized weights anyway.
"""
from __future__ import annotations

from pathlib import Path


def unshare_float_initializers(model) -> list[str]:
    """Rewrite ``model`` (an ``onnx.ModelProto``, in place) so each float initializer feeds one
    node input; return the names of the initializers that were shared. New names are
    ``<name>__<node>_<input index>``, made unique against every name in the graph."""
    import onnx

    graph = model.graph
    floats = {i.name: i for i in graph.initializer
              if i.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)}
    uses: dict[str, list] = {}
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name in floats:
                uses.setdefault(name, []).append((node, k))
    shared = [name for name, at in uses.items() if len(at) > 1]
    if not shared:
        return []
    taken = {i.name for i in graph.initializer} | {i.name for i in graph.input} | {o.name for o in graph.output}
    taken |= {o for n in graph.node for o in n.output} | {v.name for v in graph.value_info}
    for name in shared:
        for j, (node, k) in enumerate(uses[name][1:]):  # the first reader keeps the original
            base = f"{name}__{node.name or f'node{j}'}_{k}"
            new, n = base, 0
            while new in taken:
                n += 1
                new = f"{base}_{n}"
            taken.add(new)
            copy = onnx.TensorProto()
            copy.CopyFrom(floats[name])
            copy.name = new
            graph.initializer.append(copy)
            node.input[k] = new
    return shared


def unshared_copy(src: Path, dst: Path) -> Path:
    """``src`` itself when no float initializer is shared, else ``dst`` written with copies."""
    import onnx

    model = onnx.load(str(src))
    if not unshare_float_initializers(model):
        return Path(src)
    onnx.save(model, str(dst))
    return Path(dst)
