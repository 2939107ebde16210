"""The sub-pixel rewrite of stride-2 transposed convolutions is float-exact and weight-neutral."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from edgegan.export.rewrite import _phase_taps, subpixel_rewrite
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


@pytest.mark.parametrize("k,p,op", [(4, 1, 0), (3, 1, 1), (2, 0, 0)])
def test_rewrite_matches_random_transposed_convs(k, p, op):
    torch.manual_seed(k)
    seq = nn.Sequential(nn.ConvTranspose2d(5, 3, k, 2, p, output_padding=op, bias=True), nn.BatchNorm2d(3)).eval()
    seq[1].running_mean.uniform_(-1, 1)
    seq[1].running_var.uniform_(0.5, 2)
    x = torch.randn(2, 5, 6, 7)
    new, report = subpixel_rewrite(seq, x.numpy())
    assert report.max_abs_err < 1e-5
    assert isinstance(new[1], nn.Identity)  # BatchNorm folded
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
