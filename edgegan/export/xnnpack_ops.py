"""ONNX rewrites that let TFLite's XNNPACK delegate take a CycleGAN-style int8 graph whole.

onnx2tf turns a reflect ``Pad`` into MIRROR_PAD (often between two TRANSPOSEs) and an
``InstanceNormalization`` into MEAN / SQUARED_DIFFERENCE / MEAN / ADD / RSQRT / SUB / MUL. In a
full-integer model XNNPACK (LiteRT 2.3) leaves MIRROR_PAD, SQUARED_DIFFERENCE, RSQRT and the
eps ADD to TFLite's own single-threaded kernels: resnet-sketch's tflite-int8 ran as 49 XNNPACK
partitions with reference kernels in between, slower than its fp32 model. The float graph
rewritten with ops XNNPACK runs in int8 computes the same values:

- ``reflect_pads_to_slices``: a reflect Pad is a gather of edge rows/columns: width-1 Slices and
  Concats (at most :data:`MAX_CAT` inputs each; XNNPACK's limit), W then H. Exact: the values
  are copied, and TFLite quantizes SLICE / CONCATENATION with the input's scale.
- ``two_pass_instance_norms``: ``d = x - mean(x); y = d * (1 / sqrt(mean(d * d) + eps))`` (mean over
  H, W; scale and bias when they are not 1 and 0), so the large tensors only see SUB / MUL /
  MEAN; equal to the original within float rounding (checked on ONNX Runtime by the caller).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .graph_index import GraphIndex

MAX_CAT = 5  # XNNPACK concatenates 2..5 tensors per node
STEP = (MAX_CAT - 1) // 2  # edge slices per side per Concat
PAD_REWRITE = "reflect Pad -> edge slices + concat"
NORM_REWRITE = "InstanceNorm -> two-pass mean / sub / mul / sqrt / reciprocal"


def _mode(node) -> bytes:
    return next((a.s for a in node.attribute if a.name == "mode"), b"constant")


def _const(name: str, index: GraphIndex):
    """The value of an initializer or Constant node output, else None."""
    from onnx import numpy_helper

    if name in index.initializers:
        return numpy_helper.to_array(index.initializers[name])
    node = index.producer.get(name)
    if node is not None and node.op_type == "Constant":
        for a in node.attribute:
            if a.name == "value":
                return numpy_helper.to_array(a.t)
    return None


class _Builder:
    """New nodes and int64 constants with unique names."""

    def __init__(self, graph, prefix: str) -> None:
        self.graph, self.prefix, self.nodes, self.count = graph, prefix, [], 0

    def name(self, what: str) -> str:
        self.count += 1
        return f"{self.prefix}_{what}_{self.count}"

    def const(self, values, dtype=np.int64) -> str:
        from onnx import numpy_helper

        name = self.name("c")
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list, out: str | None = None, **attrs) -> str:
        from onnx import helper

        out = out or self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.name(op), **attrs))
        return out


def _reflect(b: _Builder, x: str, size: int, before: int, after: int, axis: int, out: str | None) -> str:
    """Reflect-pad ``x`` (``size`` long on ``axis``) by concatenating edge slices, at most
    :data:`STEP` per side per Concat (so each has <= MAX_CAT inputs); each step slices the
    previous step's tensor, which then has several readers, so TF's converter cannot fold the
    concatenations back into one too wide for XNNPACK."""
    if not before and not after:
        return x if out is None else b.node("Identity", [x], out)
    ax = b.const([axis])
    cur, done_l, done_r = x, 0, 0  # cur holds original positions -done_l .. size - 1 + done_r
    while done_l < before or done_r < after:
        k_l, k_r = min(STEP, before - done_l), min(STEP, after - done_r)

        def col(orig: int) -> str:
            i = orig + done_l  # the original position's index in cur
            return b.node("Slice", [cur, b.const([i]), b.const([i + 1]), ax])

        # left positions -(done_l + k_l) .. -(done_l + 1) reflect to done_l + k_l .. done_l + 1
        left = [col(p) for p in range(done_l + k_l, done_l, -1)]
        # right positions size + done_r .. reflect to size - 2 - done_r ..
        right = [col(size - 2 - p) for p in range(done_r, done_r + k_r)]
        done_l, done_r = done_l + k_l, done_r + k_r
        last = done_l == before and done_r == after
        cur = b.node("Concat", left + [cur] + right, out if last else None, axis=axis)
    return cur


def reflect_pads_to_slices(src: Path, dst: Path) -> int:
    """Write ``src`` with every 4-D reflect Pad of H / W only (static pads, known shape) as edge
    slices + concatenations to ``dst``; returns how many were rewritten."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(src)))
    graph = model.graph
    index = GraphIndex.of(graph)
    shapes = {v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
              for v in [*graph.value_info, *graph.input, *graph.output]}
    b = _Builder(graph, "reflect")
    replaced = {}
    for node in graph.node:
        if node.op_type != "Pad" or _mode(node) != b"reflect" or len(node.input) < 2:
            continue
        if len(node.input) > 3 and node.input[3]:
            continue  # an axes input: leave it
        pads = _const(node.input[1], index)
        shape = shapes.get(node.input[0])
        if pads is None or shape is None or len(shape) != 4 or pads.size != 8:
            continue
        pads = [int(p) for p in pads.reshape(-1)]
        h, w = shape[2], shape[3]
        if any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0 or h is None or w is None \
                or max(pads[2], pads[6]) >= h or max(pads[3], pads[7]) >= w:
            continue
        start = len(b.nodes)
        wide = _reflect(b, node.input[0], w, pads[3], pads[7], 3, None)
        _reflect(b, wide, h, pads[2], pads[6], 2, node.output[0])
        replaced[id(node)] = b.nodes[start:]
    _splice(graph, replaced)
    if replaced:
        del graph.value_info[:]
        used = {i for n in graph.node for i in n.input}
        pad_consts = {n.input[1] for n in index.producer.values() if id(n) in replaced}
        dead = [t for t in graph.initializer if t.name in pad_consts and t.name not in used]
        for t in dead:
            graph.initializer.remove(t)
        onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return len(replaced)


def _splice(graph, replaced: dict) -> None:
    """Replace each node whose id is in ``replaced`` by its list of new nodes, in place."""
    nodes = []
    for n in graph.node:
        nodes += replaced.get(id(n), [n])
    del graph.node[:]
    graph.node.extend(nodes)


def two_pass_instance_norms(src: Path, dst: Path) -> int:
    """Write ``src`` with every InstanceNormalization of a 4-D tensor (constant scale / bias)
    as mean / sub / mul / mean / add / sqrt / reciprocal / mul to ``dst``; returns the count."""
    import onnx

    model = onnx.load(str(src))
    graph = model.graph
    index = GraphIndex.of(graph)
    b = _Builder(graph, "in2p")
    replaced = {}
    for node in graph.node:
        if node.op_type != "InstanceNormalization":
            continue
        scale, bias = _const(node.input[1], index), _const(node.input[2], index)
        if scale is None or bias is None:
            continue
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        start = len(b.nodes)
        x, axes = node.input[0], b.const([2, 3])
        mean = b.node("ReduceMean", [x, axes], keepdims=1)
        d = b.node("Sub", [x, mean])
        var = b.node("ReduceMean", [b.node("Mul", [d, d]), axes], keepdims=1)
        std = b.node("Sqrt", [b.node("Add", [var, b.const(np.float32(eps), np.float32)])])
        affine = not (np.all(scale == 1) and np.all(bias == 0))
        y = b.node("Mul", [d, b.node("Reciprocal", [std])], None if affine else node.output[0])
        if affine:
            c = (1, -1, 1, 1)
            y = b.node("Mul", [y, b.const(scale.reshape(c), np.float32)])
            b.node("Add", [y, b.const(bias.reshape(c), np.float32)], node.output[0])
        replaced[id(node)] = b.nodes[start:]
    _splice(graph, replaced)
    if replaced:
        onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return len(replaced)
