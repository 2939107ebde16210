"""Reflect / edge padding on the int8 tensor of a QDQ model.

onnxruntime.quantization wraps a reflect-mode Pad in DequantizeLinear -> Pad -> QuantizeLinear
with the same scale and zero point on both sides (padding only copies values), but ONNX
Runtime's graph optimizer fuses that triple only for constant-mode Pad: a CycleGAN-style
generator's 14 reflect pads then each dequantize a whole activation, pad it in float and
quantize it again. Padding by reflection commutes with any per-tensor quantization, so the
triple is exactly one Pad on the quantized tensor (ORT's CPU Pad takes uint8 / int8 in every
mode): the outputs are bit-identical and the float round trips go.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .graph_index import GraphIndex

MODES = (b"reflect", b"edge")
REWRITE = "reflect/edge Pad on the int8 tensor"  # bundle.json rewrite record: f"{REWRITE} x{count}"


def _mode(node) -> bytes:
    for a in node.attribute:
        if a.name == "mode":
            return a.s
    return b"constant"


def int8_pads(path: Path) -> int:
    """Rewrite ``path`` in place: every DequantizeLinear -> Pad(reflect|edge) -> QuantizeLinear
    whose two quantization parameters are equal initializers becomes one Pad on the int8 tensor.
    Returns how many pads were moved (0 leaves the file untouched)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    index = GraphIndex.of(graph)
    init = {name: numpy_helper.to_array(t) for name, t in index.initializers.items()}
    producer, consumers, outputs = index.producer, index.consumers, index.outputs
    drop: set = set()
    moved = 0
    for pad in graph.node:
        if pad.op_type != "Pad" or _mode(pad) not in MODES:
            continue
        dq = producer.get(pad.input[0])
        users = consumers.get(pad.output[0], [])
        if dq is None or dq.op_type != "DequantizeLinear" or len(users) != 1 or users[0].op_type != "QuantizeLinear" \
                or pad.output[0] in outputs or len(dq.input) < 3 or len(users[0].input) < 3 \
                or (len(pad.input) > 2 and pad.input[2]):  # a float constant_value input
            continue
        q = users[0]
        params = [(init.get(a), init.get(b)) for a, b in zip(dq.input[1:3], q.input[1:3])]
        if any(a is None or b is None or a.shape != b.shape or a.dtype != b.dtype or not np.array_equal(a, b)
               for a, b in params) or any(a.size != 1 for a, _ in params):
            continue  # per-axis or differing parameters: not a pure copy
        pad.input[0] = dq.input[0]
        pad.output[0] = q.output[0]
        drop.add(id(q))
        if len(consumers[dq.output[0]]) == 1 and dq.output[0] not in outputs:
            drop.add(id(dq))
        moved += 1
    if moved:
        kept = [n for n in graph.node if id(n) not in drop]
        del graph.node[:]
        graph.node.extend(kept)
        onnx.checker.check_model(model)
        tmp = Path(str(path) + ".pads.tmp")
        onnx.save(model, str(tmp))
        tmp.replace(path)
    return moved
