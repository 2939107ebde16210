"""Relu moved before the sub-pixel interleave and crop (edgegan.export.relu_hoist): exact in ONNX
Runtime, refused where it would change another reader, and what it is for: after ORT's static
int8 quantization the interleave and crop run on the uint8 tensor (no DequantizeLinear left
before them in the graph ORT optimizes)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from edgegan.export.onnx import export_onnx
from edgegan.export.relu_hoist import hoist_relus


class ShuffleCrop(nn.Module):
    """conv -> pixel_shuffle -> crop -> relu, the sub-pixel rewrite's shape; ``tap`` adds a
    second reader of the conv output, ``fill`` a constant pad with a non-zero value."""

    def __init__(self, tap: bool = False, fill: float = 0.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4 * 5, 2, padding=1)
        self.tap, self.fill = tap, fill

    def forward(self, x):
        y = self.conv(x)
        z = nn.functional.pixel_shuffle(y, 2)[:, :, 1:-1, 1:-1]
        if self.fill:
            z = nn.functional.pad(z, (1, 1, 1, 1), value=self.fill)
        out = torch.relu(z)
        return out + y.mean() if self.tap else out


def _export(model, tmp_path, x):
    torch.manual_seed(0)
    path = tmp_path / "f.onnx"
    export_onnx(model.eval(), x, path)
    return path


def _run(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _ops(path):
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def test_relu_moves_to_the_conv_and_the_output_is_unchanged(tmp_path):
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((4, 3, 6, 6)).astype(np.float32)
    src = _export(ShuffleCrop(), tmp_path, x)
    assert hoist_relus(src, tmp_path / "h.onnx") == 1
    ops = _ops(tmp_path / "h.onnx")
    assert ops.index("Relu") == ops.index("Conv") + 1 and ops.index("Relu") < ops.index("DepthToSpace"), ops
    np.testing.assert_array_equal(_run(tmp_path / "h.onnx", x), _run(src, x))


def test_a_second_reader_or_a_nonzero_pad_keeps_the_relu_where_it_is(tmp_path):
    torch.manual_seed(0)
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6)).astype(np.float32)
    for i, model in enumerate((ShuffleCrop(tap=True), ShuffleCrop(fill=-0.5))):
        src = _export(model, tmp_path, x)
        assert hoist_relus(src, tmp_path / f"h{i}.onnx") == 0, _ops(src)
        np.testing.assert_array_equal(_run(tmp_path / f"h{i}.onnx", x), _run(src, x))


def _optimized_ops(path, tmp_path):
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    so.log_severity_level = 3
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    graph = onnx.load(str(tmp_path / "opt.onnx")).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    return [(n.op_type, producer.get(n.input[0])) for n in graph.node]


def test_after_quantization_the_interleave_runs_on_uint8(tmp_path):
    from edgegan.quantdebug.onnx_qdq import quantize_qdq

    torch.manual_seed(0)
    x = np.random.default_rng(2).standard_normal((16, 3, 6, 6)).astype(np.float32)
    src = _export(ShuffleCrop(), tmp_path, x)
    hoist_relus(src, tmp_path / "h.onnx")
    quantize_qdq(tmp_path / "h.onnx", tmp_path / "q.onnx", x)
    ops = _optimized_ops(tmp_path / "q.onnx", tmp_path)
    # the DepthToSpace reads the int8 conv (through at most a layout Transpose), not a DequantizeLinear
    assert ("DepthToSpace", "DequantizeLinear") not in ops and any(op == "DepthToSpace" for op, _ in ops), ops
    assert not any(op == "Slice" and src_op == "DequantizeLinear" for op, src_op in ops), ops
