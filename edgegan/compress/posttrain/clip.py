"""Weight clipping: every selected weight into [-c, c].

c is either one fixed value or, per layer, a percentile of that layer's |w|. Clipping before
k-bit quantization trades a few saturated outliers for a finer grid for all the other weights.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

from ...config import JsonConfig
from ...errors import ConfigError
from ..base import copy_module, derive, register_method
from ..layers import select_layers
from ..storage import storage_stats


@dataclasses.dataclass
class ClipConfig(JsonConfig):
    """Exactly one of ``value`` (c for every layer) or ``percentile`` (c per layer = that
    percentile of the layer's |w|, e.g. 99.9)."""

    value: Optional[float] = dataclasses.field(default=None, metadata={"flag": "--clip-value", "help": "clip weights to ±C"})
    percentile: Optional[float] = dataclasses.field(default=None, metadata={
        "flag": "--clip-percentile", "help": "clip each layer at this percentile of |w| (e.g. 99.9)"})
    layers: list[str] = dataclasses.field(default_factory=list, metadata={"flag": None})
    exclude: list[str] = dataclasses.field(default_factory=list, metadata={"flag": None})

    def validate(self) -> None:
        if (self.value is None) == (self.percentile is None):
            raise ConfigError("clip needs exactly one of value (e.g. 0.1) or percentile (e.g. 99.9)", field="value")
        if self.value is not None and not self.value > 0:
            raise ConfigError(f"clip value must be > 0, got {self.value}", field="value")
        if self.percentile is not None and not 0 < self.percentile <= 100:
            raise ConfigError(f"clip percentile must be in (0, 100], got {self.percentile}", field="percentile")

    def tag(self) -> str:
        """Short name part for outputs (``dcgan-clip``)."""
        return "clip"


def clip_bound(weight: Any, config: ClipConfig) -> float:
    """The clipping bound c for one weight tensor, as a float32 value so that clipped weights
    are exactly within ±c."""
    import numpy as np

    if config.value is not None:
        c = config.value
    else:
        c = float(np.percentile(weight.detach().abs().cpu().numpy(), config.percentile))
    return float(np.float32(c))


@register_method("clip", ClipConfig, "clip weights to ±c (fixed c or a per-layer |w| percentile)")
def apply(model: Any, config: ClipConfig) -> Any:
    import torch

    module = copy_module(model)
    layers = select_layers(module, config.layers, config.exclude)
    per_layer = {}
    clipped = total = 0
    with torch.no_grad():
        for name, layer in layers.items():
            w = layer.weight
            c = clip_bound(w, config)
            n_out = int((w.abs() > c).sum())
            w.clamp_(-c, c)
            per_layer[name] = {"c": c, "clipped_fraction": round(n_out / w.numel(), 6)}
            clipped += n_out
            total += w.numel()
    stats = {
        "layers": per_layer,
        "clipped_fraction": round(clipped / total, 6),
        **storage_stats(module, model.compression),
    }
    return derive(model, module, "clip", config, stats)
