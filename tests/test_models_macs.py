"""MACs come from torch's FlopCounterMode: the same counts as counting conv/linear layers by hand
on the zoo, and ops the hand counter never saw (functional convs, matmul, Conv1d) are counted."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from edgegan.models import load_generator  # noqa: E402
from edgegan.models.stats import count_macs  # noqa: E402


def macs_by_hand(module, example: np.ndarray) -> int:
    """The counter edgegan used before: forward hooks on Conv2d / ConvTranspose2d / Linear,
    output positions x kernel x input channels per group (an independent expectation)."""
    total = 0

    def conv(m, inp, out):
        nonlocal total
        total += out[0].numel() * int(np.prod(m.kernel_size)) * (m.in_channels // m.groups)

    def convt(m, inp, out):
        nonlocal total
        total += inp[0][0].numel() * int(np.prod(m.kernel_size)) * (m.out_channels // m.groups)

    def linear(m, inp, out):
        nonlocal total
        total += out[0].numel() * m.in_features

    handles = []
    for m in module.modules():
        hook = {nn.ConvTranspose2d: convt, nn.Conv2d: conv, nn.Linear: linear}.get(type(m))
        if hook is not None:
            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            module(torch.from_numpy(example[:1]))
    finally:
        for h in handles:
            h.remove()
    return total


@pytest.mark.parametrize("name", ["dcgan-tiny", "resnet-tiny", "unet-tiny"])
def test_flop_counter_agrees_with_counting_layers_on_the_zoo(name):
    model = load_generator(name)
    x = model.sample_inputs(2, 0)
    expected = macs_by_hand(model.module, x)
    assert expected > 0
    assert count_macs(model.module, x) == expected


def test_ops_outside_conv_and_linear_modules_are_counted():
    class Mixed(nn.Module):
        """A functional conv, a matmul (e.g. attention scores) and a Conv1d: none is a
        Conv2d/ConvTranspose2d/Linear module, so the hand counter saw 0 MACs."""

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 3, 3, 3))
            self.seq = nn.Conv1d(4, 2, 5)

        def forward(self, x):
            y = F.conv2d(x, self.w, padding=1)           # 4 out ch, 3x3x3 kernel, 8x8 positions
            flat = y.flatten(2)                          # (1, 4, 64)
            attn = flat @ flat.transpose(1, 2)           # (1, 4, 4) from a 64-long inner product
            return self.seq(flat) + attn.sum()           # Conv1d: 2 out ch x 60 positions x 4 x 5

    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    model = Mixed()
    assert macs_by_hand(model, x) == 0
    expected = 4 * 64 * 3 * 9 + 4 * 4 * 64 + 2 * 60 * 4 * 5
    assert count_macs(model, x) == expected
