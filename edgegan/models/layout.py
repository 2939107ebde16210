"""Channel layouts: which channels of a generator are coupled, declared by each model family.

A *channel group* is a set of feature-map channels that must be kept or removed together: the
output channels of its producer convolution(s), the norm layers over them, and the input
channels of every consumer. Each family module (dcgan.py, resnet.py, unet.py) builds its
layout by walking its own module structure and names the config width field each group is
stored in; structured pruning (:mod:`edgegan.compress.posttrain.channel_layout`) looks the
layout up by family and does the surgery. No torch import here.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

Segment = tuple[Optional[str], int]  # (group name or None for a fixed input, channel count)


@dataclasses.dataclass
class ChannelGroup:
    name: str
    width: int
    producers: list[str]
    norms: list[str]
    config_field: str
    config_index: int


@dataclasses.dataclass
class ChannelLayout:
    """Groups plus, per conv layer, which group its output is and which segments its input is."""

    groups: dict[str, ChannelGroup] = dataclasses.field(default_factory=dict)
    layer_out: dict[str, Optional[str]] = dataclasses.field(default_factory=dict)
    layer_in: dict[str, list[Segment]] = dataclasses.field(default_factory=dict)
    norm_group: dict[str, str] = dataclasses.field(default_factory=dict)

    def add_group(self, group: ChannelGroup) -> ChannelGroup:
        self.groups[group.name] = group
        for p in group.producers:
            self.layer_out[p] = group.name
        for n in group.norms:
            self.norm_group[n] = group.name
        return group

    def conv_group(self, conv: "Conv", field: str, index: int, extra: tuple["Conv", ...] = ()) -> Segment:
        """Make ``conv`` (plus ``extra`` producers feeding the same channels, e.g. a residual
        stream) one group stored at ``field[index]``; returns the segment it outputs."""
        producers = [conv, *extra]
        self.add_group(ChannelGroup(conv.path, conv.out_channels, [p.path for p in producers],
                                    [p.norm for p in producers if p.norm], field, index))
        return (conv.path, conv.out_channels)

    def output_conv(self, conv: "Conv") -> None:
        """``conv`` writes the model output: its output channels are fixed."""
        self.layer_out[conv.path] = None


@dataclasses.dataclass
class Conv:
    """A convolution found in a Sequential: dotted path, channels, the norm right after it."""

    path: str
    module: Any
    norm: Optional[str]

    @property
    def out_channels(self) -> int:
        return int(self.module.out_channels)

    @property
    def in_channels(self) -> int:
        return int(self.module.in_channels)


def is_conv(m: Any) -> bool:
    return hasattr(m, "in_channels") and hasattr(m, "out_channels") and hasattr(m, "weight")


def is_norm(m: Any) -> bool:
    return hasattr(m, "num_features")


def convs_of(seq: Any, prefix: str) -> list[Conv]:
    """The convolutions that are direct children of Sequential ``seq`` (at dotted ``prefix``;
    "" when ``seq`` is the model itself), each with the norm layer that directly follows it."""
    children = list(seq.named_children())
    at = (lambda name: f"{prefix}.{name}") if prefix else (lambda name: name)
    out = []
    for i, (name, m) in enumerate(children):
        if is_conv(m):
            nxt = children[i + 1] if i + 1 < len(children) else None
            norm = at(nxt[0]) if nxt is not None and is_norm(nxt[1]) else None
            out.append(Conv(at(name), m, norm))
    return out
