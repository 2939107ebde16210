"""Spell a DCR DepthToSpace as a channels-last reshape / transpose so ORT's int8 graph has no
layout transposes around it (float-exact: the same elements are copied to the same places).

Why: ONNX Runtime runs int8 convolutions (QLinearConv) channels-last and wraps each one in
NCHW<->NHWC Transposes; its transpose optimizer cancels such pairs across Slice, Pad and
element-wise ops but not across DepthToSpace, so a sub-pixel generator kept two full-tensor
transposes plus a uint8 DepthToSpace per upsampling layer (dcgan-digits ort-int8: transposes,
interleave and crops took more kernel time than the convs). Written as

    Transpose(NCHW->NHWC) -> Reshape [N*H, W, b, b*C] -> Transpose [0, 2, 1, 3]
        -> Reshape [N, H*b, W*b, C] -> Transpose(NHWC->NCHW)

the outer transposes cancel with ORT's layout ones, and the middle one moves contiguous rows of
b*C bytes. A chain of constant Slices on different axes (the sub-pixel crop: one per spatial
axis) is merged into one Slice so it is one copy, which ORT then runs channels-last too.
"""
from __future__ import annotations

from pathlib import Path

from .graph_index import GraphIndex

# the record on the artifact (``rewrites``), followed by " xN"
REWRITE = "DepthToSpace as channels-last reshape + transpose (ORT's layout transposes cancel)"


def _attr(node, name, default=None):
    return next((a for a in node.attribute if a.name == name), default)


def _const_ints(index: GraphIndex, name: str):
    from onnx import numpy_helper

    if not name:
        return None
    t = index.initializers.get(name)
    return None if t is None else [int(v) for v in numpy_helper.to_array(t).reshape(-1)]


def _merge_slices(graph, index: GraphIndex) -> int:
    """Fold Slice -> Slice (the first read only by the second, constant starts / ends / axes /
    steps on disjoint non-negative axes) into one Slice; returns how many folded."""
    import numpy as np
    from onnx import numpy_helper

    merged = 0
    for second in [n for n in graph.node if n.op_type == "Slice"]:
        first = index.producer.get(second.input[0])
        if first is None or first.op_type != "Slice" or index.uses(first.output[0]) != 1 \
                or first.output[0] in index.outputs:
            continue
        parts = []
        for node in (first, second):
            starts, ends = _const_ints(index, node.input[1]), _const_ints(index, node.input[2])
            axes = _const_ints(index, node.input[3]) if len(node.input) > 3 else None
            steps = _const_ints(index, node.input[4]) if len(node.input) > 4 and node.input[4] else [1] * len(starts or [])
            if starts is None or ends is None or axes is None or steps is None or min(axes) < 0:
                break
            parts.append((starts, ends, axes, steps))
        if len(parts) != 2 or set(parts[0][2]) & set(parts[1][2]):
            continue
        base = f"{second.name}_merged"
        values = [sum((p[i] for p in parts), []) for i in range(4)]
        names = [f"{base}_{k}" for k in ("starts", "ends", "axes", "steps")]
        graph.initializer.extend(numpy_helper.from_array(np.array(v, np.int64), n) for v, n in zip(values, names))
        del second.input[:]
        second.input.extend([first.input[0], *names])
        graph.node.remove(first)
        index = GraphIndex.of(graph)
        merged += 1
    return merged


def interleave_nhwc(src: Path, dst: Path) -> int:
    """Write ``src`` to ``dst`` with every DCR DepthToSpace of known spatial size replaced by the
    channels-last chain above and crop Slices merged; returns how many DepthToSpace were replaced
    (0: ``dst`` is ``src`` with only Slices merged)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper, shape_inference

    model = onnx.load(str(src))
    graph = model.graph
    inferred = shape_inference.infer_shapes(model).graph
    shapes = {v.name: [d.dim_value if d.HasField("dim_value") else 0 for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.value_info, *inferred.input, *inferred.output]}
    nodes, replaced = [], 0
    for node in graph.node:
        mode, block = _attr(node, "mode"), _attr(node, "blocksize")
        shape = shapes.get(node.input[0]) if node.op_type == "DepthToSpace" else None
        if shape is None or (mode is not None and mode.s != b"DCR") or block is None or len(shape) != 4 \
                or not all(shape[1:]) or shape[1] % (block.i * block.i):
            nodes.append(node)
            continue
        b, (_, depth, h, w) = block.i, shape
        c, p = depth // (b * b), node.name or f"depth_to_space_{replaced}"
        graph.initializer.extend([numpy_helper.from_array(np.array([-1, w, b, b * c], np.int64), f"{p}_rows_shape"),
                                  numpy_helper.from_array(np.array([-1, h * b, w * b, c], np.int64), f"{p}_up_shape")])
        nodes += [
            helper.make_node("Transpose", [node.input[0]], [f"{p}_nhwc"], name=f"{p}_to_nhwc", perm=[0, 2, 3, 1]),
            helper.make_node("Reshape", [f"{p}_nhwc", f"{p}_rows_shape"], [f"{p}_rows"], name=f"{p}_rows"),
            helper.make_node("Transpose", [f"{p}_rows"], [f"{p}_interleaved"], name=f"{p}_interleave", perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", [f"{p}_interleaved", f"{p}_up_shape"], [f"{p}_up"], name=f"{p}_up"),
            helper.make_node("Transpose", [f"{p}_up"], [node.output[0]], name=f"{p}_to_nchw", perm=[0, 3, 1, 2]),
        ]
        replaced += 1
    del graph.node[:]
    graph.node.extend(nodes)
    if replaced:
        _merge_slices(graph, GraphIndex.of(graph))
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return replaced
