"""executorch-int8's norm-input equalization (converters/executorch_rewrite.py): exact through
the InstanceNorm, every channel brought to one range, and what it is for — a per-tensor int8
quantizer on the conv output no longer leaves a narrow channel a handful of levels."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from edgegan.converters.executorch_rewrite import (EQUALIZE, TwoPassInstanceNorm2d,  # noqa: E402
                                                   delegation_rewrite, equalize_norm_inputs)


def _model() -> nn.Module:
    """conv -> InstanceNorm -> ReLU -> convT -> InstanceNorm, with channel ranges 1e3 apart and offsets."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(3, 4, 3), nn.InstanceNorm2d(4, affine=True), nn.ReLU(),
                          nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1),
                          nn.InstanceNorm2d(3)).eval()
    with torch.no_grad():
        model[1].weight.mul_(torch.tensor([1.0, 1e-3, 3.0, 0.05]).view(-1, 1, 1, 1))
        model[1].bias.copy_(torch.tensor([5.0, -2.0, 0.0, 1.0]))
        model[2].weight.uniform_(0.5, 2)
        model[2].bias.uniform_(-0.5, 0.5)
    return model


def _conv_outputs(model, x):
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    out = {}
    hooks = [c.register_forward_hook(lambda m, i, o, k=k: out.__setitem__(k, o.detach())) for k, c in enumerate(convs)]
    with torch.no_grad():
        y = model(x)
    for h in hooks:
        h.remove()
    return y, out


def test_equalized_model_matches_and_every_channel_has_one_range():
    model = _model()
    x = torch.randn(6, 3, 10, 10)
    done = delegation_rewrite(model, x.numpy(), equalize=x.numpy())
    assert done.counts[EQUALIZE] == 2
    ref, _ = _conv_outputs(model, x)
    got, outs = _conv_outputs(done.module, x)
    assert (got - ref).abs().max() < 1e-4  # the norm divides the per-channel shift and scale out
    for y in outs.values():
        spread = (y - y.mean((0, 2, 3), keepdim=True)).abs().amax((0, 2, 3))
        assert torch.allclose(spread, spread.max().expand_as(spread), rtol=1e-4)
        assert y.mean((0, 2, 3)).abs().max() < 1e-3 * spread.max()  # centred by the bias
    norms = [m for m in done.module.modules() if isinstance(m, TwoPassInstanceNorm2d)]
    assert all(torch.is_tensor(n.eps) and n.eps.numel() == n_c for n, n_c in zip(norms, (4, 3)))
    assert not isinstance(model[2], TwoPassInstanceNorm2d)  # the caller's module is left alone


def _per_tensor_int8_error_after_norm(model, x) -> float:
    """Fake-quantize the first conv's output per tensor (symmetric int8, min/max scale, as the
    XNNPACK quantizer does), normalize it, and return the SQNR (dB) of the norm's output."""
    conv, norm = model[1], model[2]
    with torch.no_grad():
        y = conv(model[0](x))
        scale = float(y.abs().max()) / 127
        q = torch.fake_quantize_per_tensor_affine(y, scale, 0, -128, 127)
        ref, got = norm(y), norm(q)
    return float(10 * torch.log10(ref.pow(2).mean() / (got - ref).pow(2).mean()))


def test_equalization_removes_the_error_a_narrow_channel_brings_through_the_norm():
    model = _model()
    x = torch.randn(6, 3, 10, 10)
    plain = delegation_rewrite(model, x.numpy()).module
    equal = delegation_rewrite(model, x.numpy(), equalize=x.numpy()).module
    before = _per_tensor_int8_error_after_norm(plain, x)
    after = _per_tensor_int8_error_after_norm(equal, x)
    assert before < 25  # the 1e-3 channel sits on a few int8 levels, the norm blows its error up
    assert after > 35 and after > before + 15


def test_a_model_without_norms_is_left_as_it_is():
    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU()).eval()
    assert equalize_norm_inputs(model, np.zeros((1, 3, 4, 4), np.float32)) == 0
