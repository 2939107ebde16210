"""Structured channel pruning: remove whole channels so the graph itself gets smaller.

Each channel group (see :mod:`.channel_layout`) keeps the ``1 - ratio`` fraction of its
channels with the highest score and loses the rest, in its producers, its norm layers and
every consumer's input. Scores: ``norm-scale`` = |gamma| of the group's norm layers (network
slimming; needs affine norms), ``l1`` = L1 norm of each output filter of the producer convs
(normalised by each producer's mean when several producers share a group, as the ResNet skip
stream does). The result is a zoo-family model with width fields in its config, so it saves,
loads, exports and converts like any other.
"""
from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from ...config import JsonConfig
from ...errors import ConfigError
from ..base import copy_module, derive, records_of, register_method
from ..layers import check_names, output_channel_axis
from ..storage import storage_stats
from .channel_layout import channel_layout, copy_kept, pruned_config

if TYPE_CHECKING:
    from ...models.layout import ChannelLayout

CRITERIA = ("norm-scale", "l1")


@dataclasses.dataclass
class ChannelPruneConfig(JsonConfig):
    """Remove ``ratio`` of the channels of every selected group (at least ``min_channels``
    stay). ``layers`` names groups by their producer conv (empty = every group the criterion
    can rank)."""

    ratio: float = dataclasses.field(default=0.25, metadata={
        "help": "fraction of channels removed per group, in [0, 1)"})
    criterion: str = dataclasses.field(default="l1", metadata={
        "choices": CRITERIA, "help": "filter L1 norm or norm-layer |gamma|"})
    layers: list[str] = dataclasses.field(default_factory=list, metadata={"flag": None})
    exclude: list[str] = dataclasses.field(default_factory=list, metadata={"flag": None})
    min_channels: int = dataclasses.field(default=1, metadata={"help": "channels every group keeps at least"})

    def validate(self) -> None:
        if not 0.0 <= self.ratio < 1.0:
            raise ConfigError(f"channel-prune ratio must be in [0, 1) (fraction of channels removed), got {self.ratio}", field="ratio")
        if self.criterion not in CRITERIA:
            raise ConfigError(f"channel-prune criterion '{self.criterion}' unknown; use one of {', '.join(CRITERIA)}", field="criterion")
        if self.min_channels < 1:
            raise ConfigError(f"channel-prune min_channels must be >= 1, got {self.min_channels}", field="min_channels")

    def tag(self) -> str:
        """Short name part for outputs (``dcgan-cp25``)."""
        return f"cp{round(100 * self.ratio)}"


def _norm_scale(layer: Any) -> Any:
    weight = getattr(layer, "weight", None)
    return None if weight is None else weight.detach().abs()


def group_scores(module: Any, layout: ChannelLayout, criterion: str) -> dict[str, Any]:
    """Per-channel importance of every group the criterion can rank (others are absent)."""
    named = dict(module.named_modules())
    scores = {}
    for name, group in layout.groups.items():
        if criterion == "norm-scale":
            parts = [s for s in (_norm_scale(named[n]) for n in group.norms) if s is not None]
        else:
            parts = []
            for p in group.producers:
                w = named[p].weight.detach().abs()
                axis = output_channel_axis(named[p])
                per_channel = w.movedim(axis, 0).reshape(w.shape[axis], -1).sum(dim=1)
                mean = per_channel.mean()
                parts.append(per_channel / mean if len(group.producers) > 1 and mean > 0 else per_channel)
        if parts:
            scores[name] = sum(parts[1:], parts[0])
    return scores


def keep_indices(scores: Any, ratio: float, min_channels: int) -> Any:
    """Sorted indices of the highest-scoring channels (ties: lower index wins)."""
    import torch

    width = scores.numel()
    n_keep = max(min(min_channels, width), width - math.floor(ratio * width + 1e-9))
    order = torch.sort(-scores, stable=True).indices
    return torch.sort(order[:n_keep]).values


def _selected_groups(layout: ChannelLayout, scores: dict, config: ChannelPruneConfig, family: str) -> list[str]:
    names = list(layout.groups)
    check_names(config.layers, names, "layers", "prunable channel group")
    check_names(config.exclude, names, "exclude", "prunable channel group")
    wanted = [n for n in names if (not config.layers or n in config.layers) and n not in config.exclude]
    unrankable = [n for n in wanted if n not in scores]
    if config.criterion == "norm-scale" and not scores:
        raise ConfigError(f"criterion norm-scale needs affine norm layers (BatchNorm/affine InstanceNorm) and this "
                          f"{family} model has none; use --criterion l1")
    if config.layers and unrankable:
        raise ConfigError(f"criterion {config.criterion} cannot rank group '{unrankable[0]}' (no affine norm layer "
                          "over its channels); use --criterion l1 or drop it from layers")
    return [n for n in wanted if n in scores]


@register_method("channel-prune", ChannelPruneConfig,
                 "structured pruning: remove whole channels (norm-scale or L1 ranking) for a smaller, faster graph")
def apply(model: Any, config: ChannelPruneConfig) -> Any:
    import torch

    from ...models.loading import build_family
    from ...models.stats import count_macs, parameter_count
    from . import fakequant

    module = copy_module(model)
    family_cfg = _family_config(model)
    layout = channel_layout(model.family, family_cfg, module)
    scores = group_scores(module, layout, config.criterion)
    selected = _selected_groups(layout, scores, config, model.family)
    keep = {name: keep_indices(scores[name], config.ratio, config.min_channels) for name in selected}
    new_cfg = pruned_config(model.config, layout, keep, family_cfg.width_fields())
    rng = torch.get_rng_state()
    try:
        new_module, new_cfg_obj, _ = build_family(model.family, new_cfg)
    finally:
        torch.set_rng_state(rng)
    copy_kept(module, new_module, layout, keep)
    new_module.eval()
    for record in records_of(model, "quant")[-1:]:
        if record["stats"].get("activations"):
            fakequant.install_activation_quant(new_module, record["stats"]["activations"])
    example = model.sample_inputs(1, 0)
    stats = {
        "criterion": config.criterion,
        "groups": {name: {"before": layout.groups[name].width, "after": int(len(keep[name]))} for name in selected},
        "skipped_groups": [n for n in layout.groups if n not in selected],
        "params_before": parameter_count(module), "params_after": parameter_count(new_module),
        "macs_before": count_macs(module, example), "macs_after": count_macs(new_module, example),
        **storage_stats(new_module, model.compression),
    }
    return derive(model, new_module, "channel-prune", config, stats, family_config=new_cfg_obj.to_dict())


def _family_config(model: Any) -> Any:
    from ...models.zoo import FAMILIES
    from .channel_layout import prunable_families

    if model.family not in FAMILIES or model.config is None:
        raise ConfigError(
            f"channel pruning needs a model of a zoo family ({', '.join(prunable_families())}) with its config so "
            f"the pruned widths can be rebuilt; '{model.name}' was loaded from {model.source}"
        )
    return FAMILIES.get(model.family).config_cls.from_dict(model.config)
