"""DepthToSpace in DCR order for converters that map only that order to one op.

torch's ``pixel_shuffle`` exports as ONNX DepthToSpace in CRD order (input channel c·b² + phase).
TensorFlow's ``depth_to_space`` is DCR (phase·C + c): onnx2tf turns a CRD DepthToSpace into a
6-D reshape + transpose, which TFLite runs as TRANSPOSE version 6 — slower, and refused by older
TFLite runtimes such as the one inside tfjs-tflite ("Didn't find op for builtin opcode
'TRANSPOSE' version '6'"). When the DepthToSpace reads a Conv whose weights are initializers
used by nothing else, permuting that conv's output channels to DCR order and switching the mode
is exact: the same values reach the same output pixels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .graph_index import GraphIndex


def to_dcr(src: Path, dst: Path) -> int:
    """Write ``src`` to ``dst`` with every convertible CRD DepthToSpace switched to DCR (its
    producing conv's output channels permuted to match); returns how many were switched."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    index = GraphIndex.of(graph)
    inits, producer, uses, outputs = index.initializers, index.producer, index.uses, index.outputs
    switched = 0
    for node in graph.node:
        if node.op_type != "DepthToSpace":
            continue
        mode = next((a for a in node.attribute if a.name == "mode"), None)
        block = next((a.i for a in node.attribute if a.name == "blocksize"), 0)
        conv = producer.get(node.input[0])
        if mode is None or mode.s != b"CRD" or block < 2 or conv is None or conv.op_type != "Conv" \
                or uses(conv.output[0]) != 1 or conv.output[0] in outputs:
            continue
        params = [p for p in conv.input[1:3] if p]
        if any(p not in inits or uses(p) != 1 for p in params):
            continue
        weight = numpy_helper.to_array(inits[params[0]])
        channels, phases = weight.shape[0] // (block * block), block * block
        if channels * phases != weight.shape[0]:
            continue
        # DCR position p·C + c takes what CRD held at c·b² + p
        order = np.array([c * phases + p for p in range(phases) for c in range(channels)])
        for p in params:
            inits[p].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(inits[p])[order], p))
        mode.s = b"DCR"
        switched += 1
    onnx.save(model, str(dst))
    return switched
