"""pix2pix U-Net generator with skip concatenations.

Built from the innermost block outwards like the reference: each block is
down(conv 4×4 s2) -> submodule -> up(transposed conv 4×4 s2), and its output is concatenated
with its input (except the outermost block, which ends in tanh)."""
from __future__ import annotations


import torch
from torch import nn

from .configs import UnetConfig  # noqa: F401 - torch-free, re-exported here
from .layout import ChannelLayout, convs_of


class UnetSkipBlock(nn.Module):
    def __init__(
        self,
        outer: int,
        inner: int,
        in_channels: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        up_in: int | None = None,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        in_channels = outer if in_channels is None else in_channels
        # channels the up conv reads: this block's down output (+ the submodule's up output)
        up_in = (inner if innermost else inner * 2) if up_in is None else up_in
        down = [nn.Conv2d(in_channels, inner, 4, 2, 1, bias=False)]
        if outermost:
            up_conv = nn.ConvTranspose2d(up_in, outer, 4, 2, 1)
            seq = down + [submodule, nn.ReLU(True), up_conv, nn.Tanh()]
        elif innermost:
            up_conv = nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=False)
            seq = [nn.LeakyReLU(0.2, True)] + down + [nn.ReLU(True), up_conv, nn.BatchNorm2d(outer)]
        else:
            up_conv = nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=False)
            seq = (
                [nn.LeakyReLU(0.2, True)]
                + down
                + [nn.BatchNorm2d(inner), submodule, nn.ReLU(True), up_conv, nn.BatchNorm2d(outer)]
            )
        self.model = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        # clone: the leaky ReLU is in-place and x is also the skip path
        return torch.cat([x, self.model(x.clone())], 1)


class UnetGenerator(nn.Module):
    """image [N, Cin, H, W] -> image [N, Cout, H, W]; H, W divisible by 2**num_downs."""

    def __init__(self, config: UnetConfig) -> None:
        super().__init__()
        down, up = config.widths()
        last = config.num_downs - 1
        block = UnetSkipBlock(up[last - 1], down[last], in_channels=down[last - 1], innermost=True)
        for level in range(last - 1, 0, -1):
            block = UnetSkipBlock(up[level - 1], down[level], in_channels=down[level - 1], submodule=block,
                                  up_in=down[level] + up[level])
        self.model = UnetSkipBlock(
            config.out_channels, down[0], in_channels=config.in_channels, submodule=block, outermost=True,
            up_in=down[0] + up[0],
        )
        self.config = config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def channel_layout(module: UnetGenerator, cfg: UnetConfig) -> ChannelLayout:
    """Walks the nested skip blocks (level 0 = outermost). A level's down conv output
    (down_channels[l]) is read by the next level's down conv and, through the skip
    concatenation, by its own up conv, whose input is [down output, inner up output] in that
    order; each up conv below the outermost is a group (up_channels[l-1])."""
    levels = []
    block, prefix = module.model, "model"
    while block is not None:
        path = f"{prefix}.model"
        down, up = convs_of(block.model, path)  # the Conv2d, then the ConvTranspose2d
        levels.append((down, up))
        inner = [(name, m) for name, m in block.model.named_children() if isinstance(m, UnetSkipBlock)]
        block, prefix = (inner[0][1], f"{path}.{inner[0][0]}") if inner else (None, "")
    lay = ChannelLayout()
    previous = (None, levels[0][0].in_channels)
    for level, (down, _) in enumerate(levels):
        lay.layer_in[down.path] = [previous]
        previous = lay.conv_group(down, "down_channels", level)
    last = len(levels) - 1
    for level, (down, up) in enumerate(levels):
        skip = (down.path, down.out_channels)
        inner_up = levels[level + 1][1] if level < last else None
        lay.layer_in[up.path] = [skip] + ([(inner_up.path, inner_up.out_channels)] if inner_up else [])
        if level == 0:
            lay.output_conv(up)
        else:
            lay.conv_group(up, "up_channels", level - 1)
    return lay
