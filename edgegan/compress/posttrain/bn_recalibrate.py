"""BatchNorm re-calibration: re-estimate running statistics after weights changed.

Pruning (and coarse quantization) shifts every downstream activation distribution, but the
BatchNorm layers still normalise with the float model's running mean/variance. Running the
compressed generator forward on inputs from its own input distribution (latents: no data, no
labels, no gradients — still post-training) and replacing those statistics with the exact
averages over the calibration batch undoes much of that shift. It compresses nothing itself;
chain it after the method that changed the weights:
``[{"method": "prune", ...}, {"method": "bn-recalibrate", "config": {"samples": 1024}}]``.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from ...config import JsonConfig
from ...errors import ConfigError
from ..base import copy_module, derive, register_method
from ..storage import storage_stats


@dataclasses.dataclass
class BNRecalibrateConfig(JsonConfig):
    """How many inputs to draw (seeded) from the model's input distribution."""

    # --bn-recalibrate N sets samples; seed and batch are set through --pipeline JSON
    samples: int = dataclasses.field(default=1024, metadata={"flag": None})
    seed: int = dataclasses.field(default=0, metadata={"flag": None})
    batch: int = dataclasses.field(default=128, metadata={"flag": None})

    def validate(self) -> None:
        if self.samples < 2:
            raise ConfigError(f"bn-recalibrate samples must be >= 2 (variance needs two), got {self.samples}", field="samples")
        if self.batch < 2:
            raise ConfigError(f"bn-recalibrate batch must be >= 2, got {self.batch}", field="batch")

    def tag(self) -> str:
        """Short name part for outputs (``dcgan-sp50-bnr``)."""
        return "bnr"


@register_method("bn-recalibrate", BNRecalibrateConfig,
                 "re-estimate BatchNorm running statistics on inputs from the model's input distribution")
def apply(model: Any, config: BNRecalibrateConfig) -> Any:
    import numpy as np
    import torch
    from torch import nn

    module = copy_module(model)
    norms = {name: m for name, m in module.named_modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats}
    if not norms:
        raise ConfigError(f"bn-recalibrate needs BatchNorm layers with running statistics and '{model.name}' has "
                          "none (InstanceNorm normalises each sample itself); drop this step")
    before = {name: m.running_mean.clone() for name, m in norms.items()}
    momenta = {name: m.momentum for name, m in norms.items()}
    for m in norms.values():
        m.reset_running_stats()
        m.momentum = None  # cumulative average: exact mean over all calibration batches
        m.train()
    inputs = model.sample_inputs(config.samples, config.seed)
    try:
        with torch.no_grad():
            for i in range(0, len(inputs), config.batch):
                chunk = inputs[i : i + config.batch]
                if len(chunk) >= 2:
                    module(torch.from_numpy(np.ascontiguousarray(chunk)))
    finally:
        for name, m in norms.items():
            m.momentum = momenta[name]
        module.eval()
    shift = {name: round(float((m.running_mean - before[name]).abs().mean()), 6) for name, m in norms.items()}
    stats = {
        "layers": len(norms), "samples": config.samples,
        "input_source": f"{model.input_source} (seed {config.seed})",
        "mean_abs_running_mean_shift": shift,
        **storage_stats(module, model.compression),
    }
    return derive(model, module, "bn-recalibrate", config, stats)
