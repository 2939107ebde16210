"""The sub-pixel rewrite of stride-2 transposed convolutions is float-exact and weight-neutral."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from edgegan.export.rewrite import _phase_taps, _PointConvUp, _ShuffleConvUp, subpixel_rewrite
from edgegan.models import load_generator
from edgegan.models.stats import parameter_count


@pytest.mark.parametrize("name", ["dcgan-tiny", "unet-tiny", "resnet-tiny"])
def test_rewrite_is_exact_on_zoo_models(name):
    m = load_generator(name)
    x = m.sample_inputs(3, 1)
    new, report = subpixel_rewrite(m.module, x)
    assert report.rewrites and report.max_abs_err < 1e-5
    # independent of the rewrite's own report: fresh inputs, both modules run here
    fresh = torch.from_numpy(m.sample_inputs(4, 99))
    with torch.no_grad():
        torch.testing.assert_close(new.eval()(fresh), m.module.eval()(fresh), atol=1e-5, rtol=0)
    assert not any(isinstance(mod, nn.ConvTranspose2d) and mod.stride == (2, 2) for mod in new.modules())
    # same weights up to per-phase bias copies / zero taps of odd kernels
    assert parameter_count(new) <= 1.35 * parameter_count(m.module)
    # the original is untouched
    assert any(isinstance(mod, nn.ConvTranspose2d) and mod.stride == (2, 2) for mod in m.module.modules())


@pytest.mark.parametrize("affine", [True, False])  # a BatchNorm without weight and bias folds too
@pytest.mark.parametrize("k,p,op", [(4, 1, 0), (3, 1, 1), (2, 0, 0)])
def test_rewrite_matches_random_transposed_convs(k, p, op, affine):
    torch.manual_seed(k)
    seq = nn.Sequential(nn.ConvTranspose2d(5, 3, k, 2, p, output_padding=op, bias=True),
                        nn.BatchNorm2d(3, affine=affine)).eval()
    seq[1].running_mean.uniform_(-1, 1)
    seq[1].running_var.uniform_(0.5, 2)
    x = torch.randn(2, 5, 6, 7)
    new, report = subpixel_rewrite(seq, x.numpy())
    assert report.max_abs_err < 1e-5
    assert isinstance(new[1], nn.Identity)  # BatchNorm folded
    assert isinstance(new[0], _ShuffleConvUp)  # these kernels interleave by one DepthToSpace
    fresh = torch.randn(3, 5, 9, 4)  # another shape than the example: the rewrite is not fitted to it
    with torch.no_grad():
        torch.testing.assert_close(new(fresh), seq(fresh), atol=1e-5, rtol=0)


def test_kernels_needing_a_wider_window_are_left_alone():
    assert _phase_taps(6, 2) is None
    seq = nn.Sequential(nn.ConvTranspose2d(2, 2, 6, 2, 2)).eval()
    with pytest.raises(ValueError, match="no ConvTranspose2d"):
        subpixel_rewrite(seq, torch.zeros(1, 2, 4, 4).numpy())


def test_unsupported_models_are_refused():
    with pytest.raises(ValueError, match="no ConvTranspose2d"):
        subpixel_rewrite(nn.Sequential(nn.Conv2d(1, 1, 3)), torch.zeros(1, 1, 4, 4).numpy())


def test_latent_layer_on_a_1x1_input_becomes_a_pointwise_conv():
    """A DCGAN head: k4 transposed conv on the 1x1 latent, BatchNorm, then a stride-2 layer."""
    torch.manual_seed(3)
    seq = nn.Sequential(nn.ConvTranspose2d(6, 4, 4, 1, 0, bias=False), nn.BatchNorm2d(4), nn.ReLU(True),
                        nn.ConvTranspose2d(4, 3, 4, 2, 1)).eval()
    seq[1].running_mean.uniform_(-1, 1)
    seq[1].running_var.uniform_(0.5, 2)
    seq[1].weight.data.uniform_(0.5, 2)
    new, report = subpixel_rewrite(seq, torch.randn(2, 6, 1, 1).numpy())
    assert isinstance(new[0], _PointConvUp) and isinstance(new[1], nn.Identity)
    assert "on a 1x1 input -> Conv 1x1 + reshape (BatchNorm folded)" in report.rewrites[0]
    fresh = torch.randn(5, 6, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(new(fresh), seq(fresh), atol=1e-5, rtol=0)


def test_rewritten_dcgan_exports_to_plain_onnx_ops(tmp_path):
    """The int8-facing graph: 1x1 conv + Reshape, Conv + DepthToSpace + Slice per up-layer; no
    ConvTranspose left and no scatter (an in-place ReLU on a sliced view would export one);
    ONNX Runtime's float run of it equals torch's run of the original model."""
    import onnx
    import onnxruntime as ort

    from edgegan.export.onnx import export_onnx

    m = load_generator("dcgan-tiny")
    x = m.sample_inputs(4, 5)
    new, _ = subpixel_rewrite(m.module, x)
    export_onnx(new, x, tmp_path / "r.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "r.onnx")).graph.node]
    assert "ConvTranspose" not in ops and "ScatterND" not in ops and "Range" not in ops
    assert ops.count("DepthToSpace") == sum(isinstance(mod, _ShuffleConvUp) for mod in new.modules()) >= 2
    sess = ort.InferenceSession(str(tmp_path / "r.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        want = m.module.eval()(torch.from_numpy(x)).numpy()
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert abs(got - want).max() < 1e-5
