"""CRD -> DCR DepthToSpace (edgegan.export.depth_to_space): exact in ONNX Runtime, and only where
the producing conv's weights can be permuted."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from edgegan.export.depth_to_space import to_dcr
from edgegan.export.onnx import export_onnx


class Shuffle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4 * 5, 3, padding=1)

    def forward(self, x):
        return torch.relu(nn.functional.pixel_shuffle(self.conv(x), 2))


def _run(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def test_dcr_is_exact_and_switches_the_mode(tmp_path):
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 7)).astype(np.float32)
    m = Shuffle().eval()
    export_onnx(m, x, tmp_path / "crd.onnx")
    assert to_dcr(tmp_path / "crd.onnx", tmp_path / "dcr.onnx") == 1
    modes = [a.s for n in onnx.load(str(tmp_path / "dcr.onnx")).graph.node if n.op_type == "DepthToSpace"
             for a in n.attribute if a.name == "mode"]
    assert modes == [b"DCR"]
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()  # torch itself, not the CRD file
    np.testing.assert_allclose(_run(tmp_path / "dcr.onnx", x), want, atol=1e-5, rtol=0)


def test_a_depth_to_space_without_a_private_conv_is_left_alone(tmp_path):
    """A DepthToSpace on the graph input has no conv to permute: the file is written unchanged."""
    x = np.random.default_rng(1).standard_normal((1, 8, 3, 3)).astype(np.float32)
    export_onnx(nn.PixelShuffle(2).eval(), x, tmp_path / "in.onnx")
    assert to_dcr(tmp_path / "in.onnx", tmp_path / "out.onnx") == 0
    np.testing.assert_array_equal(_run(tmp_path / "out.onnx", x), _run(tmp_path / "in.onnx", x))
