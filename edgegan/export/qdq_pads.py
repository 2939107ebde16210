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
        _save_with_nodes(model, [n for n in graph.node if id(n) not in drop], path)
    return moved


def _save_with_nodes(model, nodes: list, path: Path) -> None:
    """Replace the graph's nodes, check the model and write it over ``path`` atomically."""
    import onnx

    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.checker.check_model(model)
    tmp = Path(str(path) + ".rewrite.tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)


GATHER_REWRITE = "int8 reflect/edge Pad as channels-last Gathers"  # record: f"{GATHER_REWRITE} x{count}"
MIN_CHANNELS = 8  # below this a channels-last row is a few bytes: no gain measured (3-channel input pad)


def _indices(n: int, before: int, after: int, mode: bytes) -> list[int]:
    """Source index along one axis for each padded position (numpy's reflect / edge)."""
    if mode == b"edge":
        return [min(max(i, 0), n - 1) for i in range(-before, n + after)]
    return [-i if i < 0 else (2 * (n - 1) - i if i > n - 1 else i) for i in range(-before, n + after)]


def gather_pads(path: Path, min_channels: int = MIN_CHANNELS) -> int:
    """Rewrite ``path`` in place: each reflect/edge Pad of a quantized NCHW tensor (after
    :func:`int8_pads`) whose only readers dequantize for a Conv becomes Transpose(NHWC) ->
    Gather(H) -> Gather(W) -> Transpose(NCHW). Bit-identical (a pad is an index copy).

    Why: ONNX Runtime runs its int8 convs channels-last and puts the layout Transpose *after*
    the Pad, which it runs on the NCHW tensor, rows of W bytes at a time; its transpose optimizer
    pushes a Transpose written before a Pad back through it, but not through a Gather. Here the
    trailing Transpose cancels the one ORT inserts before the conv, and the Gathers copy
    whole channels-last rows and pixels (resnet-sketch, 13 pads: ort-int8 0.71x -> 0.58x of ORT
    fp32 at 2 threads, README run K). Returns how many pads were rewritten (0: file untouched)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    index = GraphIndex.of(graph)
    shapes = {}
    for v in list(onnx.shape_inference.infer_shapes(model).graph.value_info) + list(graph.input):
        dims = v.type.tensor_type.shape.dim
        shapes[v.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    new_nodes, done = [], 0
    taken = {t for n in graph.node for t in (n.name, *n.input, *n.output)} | set(index.initializers)
    for node in graph.node:
        plan = _gather_plan(node, index, shapes, min_channels, numpy_helper)
        if plan is None:
            new_nodes.append(node)
            continue
        ih, iw = plan
        name = _fresh(node.name or "pad", taken)  # every added node, tensor and initializer name starts with it
        cur = f"{name}_to_nhwc"
        new_nodes.append(helper.make_node("Transpose", [node.input[0]], [cur], perm=[0, 2, 3, 1], name=cur))
        for axis, idx in ((1, ih), (2, iw)):
            if idx is None:
                continue
            gather = f"{name}_gather{axis}"
            graph.initializer.append(numpy_helper.from_array(np.asarray(idx, dtype=np.int64), f"{gather}_indices"))
            new_nodes.append(helper.make_node("Gather", [cur, f"{gather}_indices"], [gather], axis=axis, name=gather))
            cur = gather
        new_nodes.append(helper.make_node("Transpose", [cur], [node.output[0]], perm=[0, 3, 1, 2],
                                          name=f"{name}_to_nchw"))
        done += 1
    if done:
        _save_with_nodes(model, new_nodes, path)
    return done


def _gather_plan(node, index: GraphIndex, shapes: dict, min_channels: int, numpy_helper):
    """(H indices or None, W indices or None) when ``node`` is a Pad gather_pads rewrites."""
    if node.op_type != "Pad" or _mode(node) not in MODES or node.output[0] in index.outputs:
        return None
    src = index.producer.get(node.input[0])
    if src is None or src.op_type != "QuantizeLinear" or len(node.input) < 2:
        return None
    if (len(node.input) > 2 and node.input[2]) or (len(node.input) > 3 and node.input[3]):
        return None  # a constant_value or an axes input
    pads_init = index.initializers.get(node.input[1])
    shape = shapes.get(node.input[0])
    if pads_init is None or shape is None or len(shape) != 4 or any(d is None for d in shape[1:]):
        return None
    pads = numpy_helper.to_array(pads_init).tolist()
    if len(pads) != 8 or any(p < 0 for p in pads) or pads[0] or pads[1] or pads[4] or pads[5]:
        return None
    _, c, h, w = shape
    if c < min_channels or (_mode(node) == b"reflect" and max(pads[2], pads[6]) >= h) \
            or (_mode(node) == b"reflect" and max(pads[3], pads[7]) >= w):
        return None
    readers = index.consumers.get(node.output[0], [])
    if not readers or any(r.op_type != "DequantizeLinear" or r.output[0] in index.outputs
                          or not index.consumers.get(r.output[0])
                          or any(not _int8_conv(u, r.output[0], index) for u in index.consumers[r.output[0]])
                          for r in readers):
        return None  # only where ORT's channels-last int8 conv reads it: the trailing Transpose cancels
    ih = _indices(h, pads[2], pads[6], _mode(node)) if pads[2] or pads[6] else None
    iw = _indices(w, pads[3], pads[7], _mode(node)) if pads[3] or pads[7] else None
    return (ih, iw) if (ih or iw) else None


def _int8_conv(node, x: str, index: GraphIndex) -> bool:
    """``node`` is a Conv ORT fuses into its channels-last QLinearConv, reading ``x`` as its
    input: dequantized weights, every output quantized (a conv a mixed format kept float runs
    NCHW, and the Transposes around the Gathers would stay)."""
    if node.op_type != "Conv" or node.input[0] != x or len(node.input) < 2:
        return False
    w = index.producer.get(node.input[1])
    users = index.consumers.get(node.output[0], [])
    return (w is not None and w.op_type == "DequantizeLinear" and bool(users)
            and all(u.op_type == "QuantizeLinear" for u in users) and node.output[0] not in index.outputs)


def _fresh(base: str, taken: set) -> str:
    """A prefix for the nodes, tensors and initializers replacing one pad (``base``, else
    ``base_1``, ...) none of whose names is already in the graph (then reserved)."""
    k = 0
    while True:
        prefix = base if k == 0 else f"{base}_{k}"
        names = {f"{prefix}_to_nhwc", f"{prefix}_to_nchw", *(f"{prefix}_gather{a}{s}" for a in (1, 2) for s in ("", "_indices"))}
        if not names & taken:
            taken |= names
            return prefix
        k += 1
