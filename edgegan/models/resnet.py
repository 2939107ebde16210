"""CycleGAN ResNet generator: reflect pad, InstanceNorm, n residual blocks, transposed-conv
upsampling, tanh. Layout and defaults follow the CycleGAN reference (instance norm without
affine parameters, convolutions with bias)."""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import torch
from torch import nn

from ..config import JsonConfig
from ..errors import ConfigError
from .layout import ChannelLayout, convs_of


@dataclasses.dataclass
class ResnetConfig(JsonConfig):
    ngf: int = 64
    n_blocks: int = 9
    in_channels: int = 3
    out_channels: int = 3
    image_size: int = 256
    n_downsampling: int = 2
    # Per-layer widths set by structured channel pruning (edgegan.compress); None = the
    # reference layout. down_channels: outputs of the stem and each downsampling conv (the last
    # one is the residual stream); block_channels: inner width of each residual block;
    # up_channels: outputs of each upsampling transposed conv.
    down_channels: Optional[list[int]] = None
    block_channels: Optional[list[int]] = None
    up_channels: Optional[list[int]] = None

    def validate(self) -> None:
        if self.ngf <= 0 or self.n_blocks < 0 or self.in_channels <= 0 or self.out_channels <= 0:
            raise ConfigError("resnet ngf/channels must be positive and n_blocks >= 0")
        if self.image_size % (2**self.n_downsampling):
            raise ConfigError(
                f"resnet image_size {self.image_size} must be divisible by 2**n_downsampling={2**self.n_downsampling}"
            )
        for key, n in (("down_channels", self.n_downsampling + 1), ("block_channels", self.n_blocks),
                       ("up_channels", self.n_downsampling)):
            v = getattr(self, key)
            if v is not None and (len(v) != n or any(c <= 0 for c in v)):
                raise ConfigError(f"resnet {key} must be {n} positive ints, got {v}")

    def widths(self) -> tuple[list[int], list[int], list[int]]:
        """(down, block, up) channel widths, filling in the reference layout where unset."""
        nd = self.n_downsampling
        down = self.down_channels or [self.ngf * 2**i for i in range(nd + 1)]
        block = self.block_channels or [down[-1]] * self.n_blocks
        up = self.up_channels or [self.ngf * 2 ** (nd - i - 1) for i in range(nd)]
        return list(down), list(block), list(up)

    def width_fields(self) -> dict[str, list[int]]:
        """Current widths of every width field (what structured pruning rewrites)."""
        down, block, up = self.widths()
        return {"down_channels": down, "block_channels": block, "up_channels": up}

    def to_dict(self) -> dict[str, Any]:
        """Omit unset width fields so unpruned configs read exactly as before."""
        out = super().to_dict()
        for key in ("down_channels", "block_channels", "up_channels"):
            if out.get(key) is None:
                out.pop(key, None)
        return out


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, inner: int | None = None) -> None:
        super().__init__()
        inner = dim if inner is None else inner
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, inner, 3, bias=True),
            nn.InstanceNorm2d(inner),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(inner, dim, 3, bias=True),
            nn.InstanceNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """image [N, Cin, H, W] in [-1, 1] -> image [N, Cout, H, W] in [-1, 1]."""

    def __init__(self, config: ResnetConfig) -> None:
        super().__init__()
        down, block, up = config.widths()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(config.in_channels, down[0], 7, bias=True),
            nn.InstanceNorm2d(down[0]),
            nn.ReLU(True),
        ]
        for i in range(config.n_downsampling):
            layers += [
                nn.Conv2d(down[i], down[i + 1], 3, stride=2, padding=1, bias=True),
                nn.InstanceNorm2d(down[i + 1]),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(down[-1], inner) for inner in block]
        ups_in = [down[-1], *up[:-1]]
        for cin, cout in zip(ups_in, up):
            layers += [
                nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=True),
                nn.InstanceNorm2d(cout),
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
    (block_channels)."""
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
