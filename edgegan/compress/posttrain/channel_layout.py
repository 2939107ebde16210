"""Which channels are coupled in each zoo family, and the surgery that removes them.

A *channel group* is a set of feature-map channels that must be kept or removed together: the
output channels of its producer convolution(s), the norm layers over them, and the input
channels of every consumer. ResNet's residual stream is one group produced by the last
downsampling conv *and* every block's second conv (the skip adds them); a U-Net down conv's
output is read by the next down conv and, through the skip concatenation, by its own level's
up conv, whose input is [down output, inner up output] in that order.

Surgery builds the narrower architecture from family + config (new width fields) and copies
the kept slices of every tensor, so the pruned generator is an ordinary zoo-family model.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

from ...errors import ConfigError

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

    groups: dict[str, ChannelGroup]
    layer_out: dict[str, Optional[str]]
    layer_in: dict[str, list[Segment]]
    norm_group: dict[str, str]

    def add_group(self, group: ChannelGroup) -> ChannelGroup:
        self.groups[group.name] = group
        for p in group.producers:
            self.layer_out[p] = group.name
        for n in group.norms:
            self.norm_group[n] = group.name
        return group


def _dcgan_layout(cfg: Any) -> ChannelLayout:
    widths = cfg.hidden_widths()
    lay = ChannelLayout({}, {}, {}, {})
    previous: Segment = (None, cfg.latent_dim)
    for i, w in enumerate(widths):
        conv = f"main.{3 * i}"
        lay.add_group(ChannelGroup(conv, w, [conv], [f"main.{3 * i + 1}"], "hidden_channels", i))
        lay.layer_in[conv] = [previous]
        previous = (conv, w)
    lay.layer_in["main.12"] = [previous]
    lay.layer_out["main.12"] = None
    return lay


def _resnet_layout(cfg: Any) -> ChannelLayout:
    down, block, up = cfg.widths()
    nd = cfg.n_downsampling
    lay = ChannelLayout({}, {}, {}, {})
    down_convs = ["model.1"] + [f"model.{4 + 3 * i}" for i in range(nd)]
    first_block = 4 + 3 * nd
    blocks = [f"model.{first_block + b}.conv_block" for b in range(len(block))]
    first_up = first_block + len(block)
    up_convs = [f"model.{first_up + 3 * i}" for i in range(nd)]
    final = f"model.{first_up + 3 * nd + 1}"
    previous: Segment = (None, cfg.in_channels)
    for j, conv in enumerate(down_convs):
        is_stream = j == nd
        producers = [conv] + ([f"{b}.5" for b in blocks] if is_stream else [])
        norms = [_next(conv)] + ([f"{b}.6" for b in blocks] if is_stream else [])
        lay.add_group(ChannelGroup(conv, down[j], producers, norms, "down_channels", j))
        lay.layer_in[conv] = [previous]
        previous = (conv, down[j])
    stream = previous
    for b, (prefix, inner) in enumerate(zip(blocks, block)):
        lay.add_group(ChannelGroup(f"{prefix}.1", inner, [f"{prefix}.1"], [f"{prefix}.2"], "block_channels", b))
        lay.layer_in[f"{prefix}.1"] = [stream]
        lay.layer_in[f"{prefix}.5"] = [(f"{prefix}.1", inner)]
    for i, conv in enumerate(up_convs):
        lay.add_group(ChannelGroup(conv, up[i], [conv], [_next(conv)], "up_channels", i))
        lay.layer_in[conv] = [previous]
        previous = (conv, up[i])
    lay.layer_in[final] = [previous]
    lay.layer_out[final] = None
    return lay


def _unet_layout(cfg: Any) -> ChannelLayout:
    down, up = cfg.widths()
    last = cfg.num_downs - 1
    # Sequential of each level's block: outermost [down, sub, relu, up, tanh]; middle [lrelu,
    # down, BN, sub, relu, up, BN]; innermost [lrelu, down, relu, up, BN]
    prefixes = ["model.model"]
    for level in range(1, last + 1):
        prefixes.append(prefixes[-1] + (".1.model" if level == 1 else ".3.model"))
    down_convs = [f"{p}.{0 if level == 0 else 1}" for level, p in enumerate(prefixes)]
    up_convs = [f"{p}.{3 if level in (0, last) else 5}" for level, p in enumerate(prefixes)]
    lay = ChannelLayout({}, {}, {}, {})
    previous: Segment = (None, cfg.in_channels)
    for level, conv in enumerate(down_convs):
        norms = [f"{prefixes[level]}.2"] if 0 < level < last else []
        lay.add_group(ChannelGroup(conv, down[level], [conv], norms, "down_channels", level))
        lay.layer_in[conv] = [previous]
        previous = (conv, down[level])
    for level, conv in enumerate(up_convs):
        skip: Segment = (down_convs[level], down[level])
        lay.layer_in[conv] = [skip] if level == last else [skip, (up_convs[level + 1], up[level])]
        if level == 0:
            lay.layer_out[conv] = None
        else:
            lay.add_group(ChannelGroup(conv, up[level - 1], [conv], [_next(conv)], "up_channels", level - 1))
    return lay


def _next(name: str) -> str:
    """The module right after ``name`` in its Sequential (the norm after a conv)."""
    head, _, idx = name.rpartition(".")
    return f"{head}.{int(idx) + 1}"


LAYOUTS: dict[str, Callable[[Any], ChannelLayout]] = {
    "dcgan": _dcgan_layout, "resnet": _resnet_layout, "unet": _unet_layout,
}


def channel_layout(family: Optional[str], cfg: Any, module: Any) -> ChannelLayout:
    """The layout of ``module`` (built from ``family`` + ``cfg``), checked against the module's
    real channel counts so a layout bug fails here instead of producing a broken model."""
    if family not in LAYOUTS:
        raise ConfigError(
            f"channel pruning needs a model of a zoo family ({', '.join(LAYOUTS)}) so the pruned "
            f"widths can be rebuilt; this model's family is {family or 'unknown'}"
        )
    lay = LAYOUTS[family](cfg)
    named = dict(module.named_modules())
    for layer, group in lay.layer_out.items():
        m = named.get(layer)
        if m is None or not hasattr(m, "out_channels"):
            raise ConfigError(f"{family} layout names '{layer}' but the module has no such conv; "
                              "is this model built from a different config?")
        if group is not None and m.out_channels != lay.groups[group].width:
            raise ConfigError(f"{family} layout: '{layer}' has {m.out_channels} output channels, "
                              f"expected {lay.groups[group].width}; the config does not match the weights")
    for layer, segments in lay.layer_in.items():
        if named[layer].in_channels != sum(n for _, n in segments):
            raise ConfigError(f"{family} layout: '{layer}' reads {named[layer].in_channels} channels, expected "
                              f"{sum(n for _, n in segments)}; the config does not match the weights")
    for norm, group in lay.norm_group.items():
        if getattr(named.get(norm), "num_features", None) != lay.groups[group].width:
            raise ConfigError(f"{family} layout: norm '{norm}' does not cover group '{group}'")
    return lay


def pruned_config(cfg_dict: dict, layout: ChannelLayout, keep: dict[str, Any], defaults: dict[str, list[int]]) -> dict:
    """The family config with the width fields set to the kept channel counts."""
    out = dict(cfg_dict)
    fields = {g.config_field for g in layout.groups.values()}
    for field in fields:
        out[field] = list(defaults[field])
    for name, group in layout.groups.items():
        if name in keep:
            out[group.config_field][group.config_index] = int(len(keep[name]))
    return out


def _indices(segments: list[Segment], keep: dict[str, Any]) -> Any:
    import torch

    parts, offset = [], 0
    for group, size in segments:
        idx = keep.get(group) if group is not None else None
        parts.append((idx if idx is not None else torch.arange(size)) + offset)
        offset += size
    return torch.cat(parts)


def copy_kept(old: Any, new: Any, layout: ChannelLayout, keep: dict[str, Any]) -> None:
    """Fill ``new`` (the narrower model) with the kept slices of ``old``'s tensors."""
    import torch
    from torch import nn

    old_state = old.state_dict()
    new_state = {}
    for mname, m in new.named_modules():
        for pname, tensor in [*m.named_parameters(recurse=False), *m.named_buffers(recurse=False)]:
            key = f"{mname}.{pname}" if mname else pname
            value = old_state[key]
            if value.dim() > 0:
                out_group = layout.layer_out.get(mname) if mname in layout.layer_out else layout.norm_group.get(mname)
                transposed = isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
                out_axis = 1 if (transposed and pname == "weight") else 0
                if out_group is not None and out_group in keep:
                    value = value.index_select(out_axis, keep[out_group])
                if pname == "weight" and mname in layout.layer_in and value.dim() > 1:
                    value = value.index_select(1 - out_axis, _indices(layout.layer_in[mname], keep))
            if tuple(value.shape) != tuple(tensor.shape):
                raise ConfigError(f"channel surgery: '{key}' sliced to {list(value.shape)} but the pruned "
                                  f"model wants {list(tensor.shape)}")
            new_state[key] = value.clone()
    with torch.no_grad():
        new.load_state_dict(new_state, strict=True)
