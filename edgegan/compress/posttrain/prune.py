"""Unstructured magnitude pruning: set the smallest-|w| weights to zero.

``scope="layer"`` removes the same fraction from every selected layer; ``scope="global"``
ranks all selected weights together, so layers with many small weights lose more. Exactly
round(sparsity * n) weights become zero (ties broken by position), so the achieved sparsity
is what was asked even when many weights share a magnitude (e.g. after quantization).
Zeros only shrink a file in a sparse format; a dense runtime still multiplies them — use
channel-prune for a faster graph.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from ...config import JsonConfig
from ...errors import ConfigError
from ..base import copy_module, derive, register_method
from ..layers import select_layers
from ..storage import storage_stats

SCOPES = ("layer", "global")


@dataclasses.dataclass
class PruneConfig(JsonConfig):
    """Fraction of weights to zero, per layer or over all selected layers at once."""

    sparsity: float = dataclasses.field(default=0.5, metadata={"help": "fraction of weights set to zero, in [0, 1)"})
    scope: str = dataclasses.field(default="layer", metadata={
        "choices": SCOPES, "help": "same sparsity per layer, or one global threshold"})
    layers: list[str] = dataclasses.field(default_factory=list, metadata={"flag": None})
    exclude: list[str] = dataclasses.field(default_factory=list, metadata={"flag": None})

    def validate(self) -> None:
        if not 0.0 <= self.sparsity < 1.0:
            raise ConfigError(f"prune sparsity must be in [0, 1) (a fraction, e.g. 0.5), got {self.sparsity}; "
                              "sparsity 1 would zero every weight", field="sparsity")
        if self.scope not in SCOPES:
            raise ConfigError(f"prune scope '{self.scope}' unknown; use one of {', '.join(SCOPES)}", field="scope")

    def tag(self) -> str:
        """Short name part for outputs (``dcgan-sp50``)."""
        return f"sp{round(100 * self.sparsity)}"


def _zero_smallest(flat_abs: Any, count: int) -> Any:
    """Boolean mask of the ``count`` smallest entries (stable: ties broken by position)."""
    import torch

    mask = torch.zeros_like(flat_abs, dtype=torch.bool)
    if count > 0:
        order = torch.sort(flat_abs, stable=True).indices
        mask[order[:count]] = True
    return mask


@register_method("prune", PruneConfig, "magnitude pruning to a layer-wise or global sparsity")
def apply(model: Any, config: PruneConfig) -> Any:
    import torch

    module = copy_module(model)
    layers = select_layers(module, config.layers, config.exclude)
    per_layer = {}
    with torch.no_grad():
        if config.scope == "global":
            flat = torch.cat([layer.weight.detach().abs().flatten() for layer in layers.values()])
            mask = _zero_smallest(flat, round(config.sparsity * flat.numel()))
            start = 0
            for name, layer in layers.items():
                n = layer.weight.numel()
                layer.weight.view(-1)[mask[start : start + n]] = 0.0
                start += n
        else:
            for layer in layers.values():
                w = layer.weight.view(-1)
                w[_zero_smallest(w.abs(), round(config.sparsity * w.numel()))] = 0.0
        zeros = total = 0
        for name, layer in layers.items():
            z = int((layer.weight == 0).sum())
            per_layer[name] = round(z / layer.weight.numel(), 6)
            zeros += z
            total += layer.weight.numel()
    stats = {
        "sparsity": round(zeros / total, 6),
        "layer_sparsity": per_layer,
        **storage_stats(module, model.compression),
    }
    return derive(model, module, "prune", config, stats)
