"""DCGAN generator with the width parameterisation of KD-GAN (width d).

Parameter count is exactly 672·d² + 12831·d + 1 for one output channel: a 100-d latent, four
4×4 transposed convolutions nz→8d→4d→2d→d without bias, each followed by affine BatchNorm and
ReLU, then a 1×1 convolution to the output channels with bias, and tanh. Output is 32×32.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import torch
from torch import nn

from ..config import JsonConfig
from ..errors import ConfigError
from .layout import ChannelLayout, convs_of


@dataclasses.dataclass
class DCGANConfig(JsonConfig):
    width: int = 64
    latent_dim: int = 100
    channels: int = 1
    # output channels of the four transposed convolutions; None = [8d, 4d, 2d, d]. Set by
    # structured channel pruning (edgegan.compress) so a pruned generator is family + config.
    hidden_channels: Optional[list[int]] = None

    def validate(self) -> None:
        for key in ("width", "latent_dim", "channels"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"dcgan {key} must be positive, got {getattr(self, key)}")
        if self.hidden_channels is not None and (
            len(self.hidden_channels) != 4 or any(c <= 0 for c in self.hidden_channels)
        ):
            raise ConfigError(f"dcgan hidden_channels must be 4 positive ints, got {self.hidden_channels}")

    def hidden_widths(self) -> list[int]:
        d = self.width
        return list(self.hidden_channels) if self.hidden_channels is not None else [8 * d, 4 * d, 2 * d, d]

    def width_fields(self) -> dict[str, list[int]]:
        """Current widths of every width field (what structured pruning rewrites)."""
        return {"hidden_channels": self.hidden_widths()}

    def to_dict(self) -> dict[str, Any]:
        """Omit ``hidden_channels`` when unset so unpruned configs read exactly as before."""
        out = super().to_dict()
        if out.get("hidden_channels") is None:
            out.pop("hidden_channels", None)
        return out


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
