"""Structured-pruning mechanism: look a model family's channel layout up, check it, and cut.

Each model family declares its own layout (``Family.channel_layout``, built from the module
structure in dcgan.py / resnet.py / unet.py; the types are in :mod:`edgegan.models.layout`).
Here: the registry lookup, a check of the layout against the real module and the config's
width fields, and the surgery: it builds the narrower architecture from family + config (new
width fields) and copies the kept slices of every tensor, so the pruned generator is an
ordinary zoo-family model.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from ...errors import ConfigError

if TYPE_CHECKING:  # the types live with the model families; importing them imports torch
    from ...models.layout import ChannelLayout, Segment


def prunable_families() -> list[str]:
    """Registered model families that declare a channel layout."""
    from ...models.zoo import FAMILIES

    return [name for name, fam in FAMILIES.items() if fam.channel_layout is not None]


def channel_layout(family: Optional[str], cfg: Any, module: Any) -> ChannelLayout:
    """The layout ``family`` declares for ``module``, checked against the module's real channel
    counts and the config's width fields, so a layout bug fails here instead of producing a
    broken model."""
    from ...models.zoo import FAMILIES

    fam = FAMILIES.get(family) if family in FAMILIES else None
    if fam is None or fam.channel_layout is None:
        raise ConfigError(
            f"channel pruning needs a model of a family that declares a channel layout "
            f"({', '.join(prunable_families())}) so the pruned widths can be rebuilt; this model's family is "
            f"{family or 'unknown'}"
        )
    try:
        lay = fam.channel_layout(module, cfg)
    except (AttributeError, IndexError, ValueError, TypeError) as exc:
        raise ConfigError(f"{family} layout does not fit this module ({type(exc).__name__}: {exc}); "
                          "is this model built from a different config?") from None
    named = dict(module.named_modules())
    if not callable(getattr(cfg, "width_fields", None)):
        raise ConfigError(f"{family} declares a channel layout but its config {type(cfg).__name__} has no "
                          "width_fields(); add one naming the config fields that hold the layer widths")
    widths = cfg.width_fields()
    for layer, group in lay.layer_out.items():
        m = named.get(layer)
        if m is None or not hasattr(m, "out_channels"):
            raise ConfigError(f"{family} layout names '{layer}' but the module has no such conv; "
                              "is this model built from a different config?")
        if group is not None and m.out_channels != lay.groups[group].width:
            raise ConfigError(f"{family} layout: '{layer}' has {m.out_channels} output channels, "
                              f"expected {lay.groups[group].width}; the config does not match the weights")
    for name, group in lay.groups.items():
        field = widths.get(group.config_field) or []
        if group.config_index >= len(field) or field[group.config_index] != group.width:
            raise ConfigError(f"{family} layout: group '{name}' has {group.width} channels but the config's "
                              f"{group.config_field} says {field}; the config does not match the weights",
                              field=group.config_field)
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
