"""DCGAN generator with the width parameterisation of KD-GAN (width d).

Parameter count is exactly 672·d² + 12831·d + 1 for one output channel: a 100-d latent, four
4×4 transposed convolutions nz→8d→4d→2d→d without bias, each followed by affine BatchNorm and
ReLU, then a 1×1 convolution to the output channels with bias, and tanh. Output is 32×32.
"""
from __future__ import annotations


import torch
from torch import nn

from .configs import DCGANConfig  # noqa: F401 - torch-free, re-exported here
from .layout import ChannelLayout, convs_of


class DCGANGenerator(nn.Module):
    """z [N, nz, 1, 1] -> image [N, C, 32, 32] in [-1, 1]."""

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        widths = [config.latent_dim, *config.hidden_widths()]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            stride, pad = (1, 0) if i == 0 else (2, 1)
            layers += [
                nn.ConvTranspose2d(cin, cout, 4, stride, pad, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.Conv2d(widths[-1], config.channels, 1, bias=True), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.config = config

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


def channel_layout(module: DCGANGenerator, cfg: DCGANConfig) -> ChannelLayout:
    """A chain: every transposed conv's outputs are one group (hidden_channels[i]), read by the
    next conv; the final 1×1 conv writes the image."""
    convs = convs_of(module.main, "main")
    lay = ChannelLayout()
    previous = (None, convs[0].in_channels)
    for i, conv in enumerate(convs[:-1]):
        lay.layer_in[conv.path] = [previous]
        previous = lay.conv_group(conv, "hidden_channels", i)
    lay.layer_in[convs[-1].path] = [previous]
    lay.output_conv(convs[-1])
    return lay


def dcgan_param_count(width: int, channels: int = 1, latent_dim: int = 100) -> int:
    """Closed form used by the tests and `edgegan models`."""
    d = width
    convs = latent_dim * 8 * d * 16 + (8 * d * 4 * d + 4 * d * 2 * d + 2 * d * d) * 16
    norms = 2 * (8 * d + 4 * d + 2 * d + d)
    return convs + norms + d * channels + channels
