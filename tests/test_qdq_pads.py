"""Reflect / edge Pad moved onto the int8 tensor of a QDQ model: bit-identical to ORT's run of
the quantized graph as the quantizer wrote it, and only where the move is a pure copy."""
from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from edgegan.converters.ort_int8 import ops_left_float
from edgegan.export.qdq_pads import int8_pads


class PadNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(2), nn.Conv2d(3, 8, 5), nn.ReLU(),
                                  nn.ReplicationPad2d(1), nn.Conv2d(8, 8, 3), nn.ReLU(),
                                  nn.ReflectionPad2d(1), nn.Conv2d(8, 3, 3))

    def forward(self, x):
        return self.body(x)


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from edgegan.export.onnx import export_onnx

    tmp = tmp_path_factory.mktemp("pads")
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((16, 3, 12, 12)).astype(np.float32)
    export_onnx(PadNet().eval(), x, tmp / "f.onnx")
    name = onnx.load(str(tmp / "f.onnx")).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{name: x[i:i + 1]} for i in range(len(x))])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(tmp / "f.onnx"), str(tmp / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    return tmp / "q.onnx", x, name


def _run(path, x, name):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


def _float_pads(path) -> int:
    g = onnx.load(str(path)).graph
    producer = {o: n.op_type for n in g.node for o in n.output}
    return sum(n.op_type == "Pad" and producer.get(n.input[0]) == "DequantizeLinear" for n in g.node)


def test_pads_move_to_int8_bit_identically(quantized, tmp_path):
    q, x, name = quantized
    assert _float_pads(q) == 3  # what the quantizer wrote: DQ -> Pad -> Q for each pad
    moved = tmp_path / "m.onnx"
    shutil.copy(q, moved)
    assert int8_pads(moved) == 3
    assert _float_pads(moved) == 0
    np.testing.assert_array_equal(_run(moved, x, name), _run(q, x, name))
    assert not any(e.startswith("Pad") for e in ops_left_float(moved))
    assert any(e.startswith("Pad") for e in ops_left_float(q))


def test_differing_scales_are_left_alone(quantized, tmp_path):
    """A Q after the Pad with another scale is a requantization, not a copy: not moved."""
    from onnx import numpy_helper

    q, x, name = quantized
    m = onnx.load(str(q))
    g = m.graph
    consumers = {i: n for n in g.node for i in n.input}
    pad = next(n for n in g.node if n.op_type == "Pad")
    requant = consumers[pad.output[0]]
    scale = numpy_helper.from_array(np.array(0.5, np.float32), "other_scale")
    g.initializer.append(scale)
    requant.input[1] = "other_scale"
    path = tmp_path / "r.onnx"
    onnx.save(m, str(path))
    before = _run(path, x, name)
    assert int8_pads(path) == 2
    np.testing.assert_array_equal(_run(path, x, name), before)


def _op_count(path, op) -> int:
    return sum(n.op_type == op for n in onnx.load(str(path)).graph.node)


def test_int8_pads_become_channels_last_gathers_bit_identically(quantized, tmp_path):
    """The two pads of >= 8 channels that feed a conv become Transpose -> Gather -> Gather ->
    Transpose (reflect and edge indices), the 3-channel input pad stays a Pad; ORT's outputs
    are bit-identical, and in ORT's optimized graph the Gathers read a channels-last tensor and
    feed ORT's channels-last int8 conv directly (both layout Transposes cancelled)."""
    import onnxruntime as ort

    from edgegan.export.qdq_pads import gather_pads

    q, x, name = quantized
    moved = tmp_path / "m.onnx"
    shutil.copy(q, moved)
    int8_pads(moved)
    before = _run(moved, x, name)
    assert gather_pads(moved) == 2
    assert _op_count(moved, "Pad") == 1 and _op_count(moved, "Gather") == 4
    np.testing.assert_array_equal(_run(moved, x, name), before)
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(moved), so, providers=["CPUExecutionProvider"])
    g = onnx.load(str(tmp_path / "opt.onnx")).graph
    consumers = {i: n for n in g.node for i in n.input}
    producer = {o: n for n in g.node for o in n.output}
    gathers = [n for n in g.node if n.op_type == "Gather"]
    assert len(gathers) == 4
    for second in (n for n in gathers if producer[n.input[0]].op_type == "Gather"):
        first = producer[second.input[0]]
        src = producer[first.input[0]]  # channels-last: a layout Transpose or ORT's NHWC int8 conv
        assert (src.op_type == "Transpose" and list(src.attribute[0].ints) == [0, 2, 3, 1]) or \
            (src.op_type == "QLinearConv" and src.domain == "com.microsoft"), src
        assert consumers[second.output[0]].op_type == "QLinearConv"
        assert consumers[second.output[0]].domain == "com.microsoft"  # ORT's channels-last kernel


@pytest.mark.parametrize("reader", ["relu", "float-conv"])
def test_pads_not_read_by_an_int8_conv_are_left_alone(quantized, tmp_path, reader):
    """A pad whose dequantized output feeds something other than a conv ORT runs in int8 (a
    Relu; a conv with float weights, as a mixed format keeps) would keep its trailing Transpose:
    not rewritten, and nothing else changes."""
    from onnx import numpy_helper

    from edgegan.export.qdq_pads import gather_pads

    q, x, name = quantized
    m = onnx.load(str(q))
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    int8_pads(path)
    m = onnx.load(str(path))
    g = m.graph
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    pads = [n for n in g.node if n.op_type == "Pad"]
    dq = consumers[pads[1].output[0]][0]
    conv = consumers[dq.output[0]][0]
    if reader == "relu":
        relu = onnx.helper.make_node("Relu", [dq.output[0]], [dq.output[0] + "_r"])
        conv.input[0] = relu.output[0]
        g.node.insert(list(g.node).index(conv), relu)
    else:
        wdq = next(n for n in g.node if conv.input[1] in n.output)  # the weights' DequantizeLinear
        shape = next(t for t in g.initializer if t.name == wdq.input[0]).dims
        w = np.random.default_rng(1).standard_normal(list(shape)).astype(np.float32) * 0.1
        g.initializer.append(numpy_helper.from_array(w, "float_weight"))
        conv.input[1] = "float_weight"
    onnx.save(m, str(path))
    before = _run(path, x, name)
    assert gather_pads(path) == 1
    np.testing.assert_array_equal(_run(path, x, name), before)
