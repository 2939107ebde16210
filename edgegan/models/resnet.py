"""CycleGAN ResNet generator: reflect pad, InstanceNorm, n residual blocks, transposed-conv
upsampling, tanh. Layout and defaults follow the CycleGAN reference (instance norm without
affine parameters, convolutions with bias); ``affine_norm`` gives every InstanceNorm a learned
per-channel scale and shift (what GAN Slimming's L1 step needs)."""
from __future__ import annotations


import torch
from torch import nn

from .configs import ResnetConfig  # noqa: F401 - torch-free, re-exported here
from .layout import ChannelLayout, convs_of


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, inner: int | None = None, affine: bool = False) -> None:
        super().__init__()
        inner = dim if inner is None else inner
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, inner, 3, bias=True),
            nn.InstanceNorm2d(inner, affine=affine),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(inner, dim, 3, bias=True),
            nn.InstanceNorm2d(dim, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """image [N, Cin, H, W] in [-1, 1] -> image [N, Cout, H, W] in [-1, 1]."""

    def __init__(self, config: ResnetConfig) -> None:
        super().__init__()
        down, block, up = config.widths()
        affine = config.affine_norm
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(config.in_channels, down[0], 7, bias=True),
            nn.InstanceNorm2d(down[0], affine=affine),
            nn.ReLU(True),
        ]
        for i in range(config.n_downsampling):
            layers += [
                nn.Conv2d(down[i], down[i + 1], 3, stride=2, padding=1, bias=True),
                nn.InstanceNorm2d(down[i + 1], affine=affine),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(down[-1], inner, affine) for inner in block]
        ups_in = [down[-1], *up[:-1]]
        for cin, cout in zip(ups_in, up):
            layers += [
                nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=True),
                nn.InstanceNorm2d(cout, affine=affine),
                nn.ReLU(True),
            ]
        last = up[-1] if up else down[-1]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(last, config.out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.config = config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def channel_layout(module: ResnetGenerator, cfg: ResnetConfig) -> ChannelLayout:
    """Down convs (down_channels) -> residual blocks -> up transposed convs (up_channels) -> output
    conv. The last down conv and every block's second conv feed one residual stream (the skip
    adds them), so they form one group; each block's first conv is its own group
    (block_channels). Each group lists the InstanceNorm after each of its producers (with
    ``affine_norm`` their scale and shift are sliced with the channels)."""
    convs = convs_of(module.model, "model")
    blocks = [(f"model.{name}.conv_block", m) for name, m in module.model.named_children() if isinstance(m, ResnetBlock)]
    block_convs = [convs_of(m.conv_block, path) for path, m in blocks]
    final = convs[-1]
    down = [c for c in convs[:-1] if not isinstance(c.module, nn.ConvTranspose2d)]
    up = [c for c in convs[:-1] if isinstance(c.module, nn.ConvTranspose2d)]
    lay = ChannelLayout()
    previous = (None, down[0].in_channels)
    for j, conv in enumerate(down):
        lay.layer_in[conv.path] = [previous]
        stream_adds = tuple(second for _, second in block_convs) if j == len(down) - 1 else ()
        previous = lay.conv_group(conv, "down_channels", j, stream_adds)
    stream = previous
    for b, (first, second) in enumerate(block_convs):
        lay.layer_in[first.path] = [stream]
        lay.layer_in[second.path] = [lay.conv_group(first, "block_channels", b)]
    for i, conv in enumerate(up):
        lay.layer_in[conv.path] = [previous]
        previous = lay.conv_group(conv, "up_channels", i)
    lay.layer_in[final.path] = [previous]
    lay.output_conv(final)
    return lay
