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
