"""Move a Relu in front of the data-movement ops that precede it (float-exact).

The sub-pixel rewrite exports conv -> DepthToSpace -> crop (Slice) -> Relu. Quantized as is,
the conv's output is calibrated over its full signed range and ORT ran the interleave and the
crop on float tensors between DequantizeLinear and QuantizeLinear (dcgan-digits: that chain was
~40 % of ort-int8's kernel time). ReLU is element-wise and these ops only copy elements, so
conv -> Relu -> DepthToSpace -> Slice computes the same values; the quantizer then fuses the Relu
into the conv's output range and the whole chain stays on the uint8 tensor.
"""
from __future__ import annotations

from pathlib import Path

from .graph_index import GraphIndex

# ops that only copy elements of their first input (or a zero for a constant pad): relu commutes
MOVES = {"DepthToSpace", "SpaceToDepth", "Slice", "Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten",
         "Identity", "Pad"}


def _is_copy(node, index: GraphIndex) -> bool:
    if node.op_type != "Pad":
        return node.op_type in MOVES
    mode = next((a.s for a in node.attribute if a.name == "mode"), b"constant")
    if mode != b"constant":
        return True  # reflect / edge / wrap copy edge elements
    if len(node.input) < 3 or not node.input[2]:
        return True  # constant 0
    from onnx import numpy_helper

    value = index.initializers.get(node.input[2])
    return value is not None and float(numpy_helper.to_array(value).reshape(-1)[0]) == 0.0


def hoist_relus(src: Path, dst: Path) -> int:
    """Write ``src`` to ``dst`` with every Relu that reads a chain of single-use data-movement ops
    moved to the chain's start (when nothing else reads that tensor); returns how many moved."""
    import onnx

    model = onnx.load(str(src))
    graph = model.graph
    index = GraphIndex.of(graph)
    moved = 0
    for relu in [n for n in graph.node if n.op_type == "Relu"]:
        chain, tensor = [], relu.input[0]
        while True:
            node = index.producer.get(tensor)
            if node is None or not _is_copy(node, index) or index.uses(node.output[0]) != 1 \
                    or node.output[0] in index.outputs:
                break
            chain.append(node)
            tensor = node.input[0]
        if not chain or index.uses(tensor) != 1 or tensor in index.initializers or tensor in index.outputs:
            continue
        first, last = chain[-1], chain[0]
        hoisted = f"{tensor}_relu"
        relu.input[0], relu.output[0], first.input[0], last.output[0] = tensor, hoisted, hoisted, relu.output[0]
        # keep the node list topological: the Relu now runs right before the chain
        graph.node.remove(relu)
        graph.node.insert(list(graph.node).index(first), relu)
        index = GraphIndex.of(graph)
        moved += 1
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return moved
