"""k-bit uniform post-training quantization (k = 2..8) of weights, optionally activations.

What runs as what: the checkpoint (and the ONNX exported from it) holds float32 weights that
take at most 2^k distinct values per channel/tensor. TFLite and ONNX Runtime have no int-k
kernels for k < 8, so such a generator deploys as int8 (or float) with only 2^k of the 256
int8 levels in use: the *packed* size (k bits per weight) is what k-bit storage would take,
the file size is what the artifact really takes; records keep both.

Activation fake-quant (``activations=true``) is simulated in memory by forward pre-hooks on
the quantized layers; it exports to ONNX as Round/Clip ops when the in-memory model is
exported, but a saved checkpoint holds weights only — after loading one, call
:func:`restore_activation_quant` to re-install the recorded scales.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from ...config import JsonConfig
from ...errors import ConfigError
from ..base import copy_module, derive, register_method
from ..layers import output_channel_axis, select_layers
from ..storage import storage_stats
from . import fakequant

SCHEMES = ("symmetric", "asymmetric")
GRANULARITIES = ("per-tensor", "per-channel")
MIN_BITS, MAX_BITS = 2, 8


@dataclasses.dataclass
class QuantConfig(JsonConfig):
    """Uniform k-bit fake quantization of the selected layers' weights (and inputs)."""

    bits: int = dataclasses.field(default=8, metadata={"help": f"weight bits k, {MIN_BITS}..{MAX_BITS}"})
    scheme: str = dataclasses.field(default="symmetric", metadata={"choices": SCHEMES, "help": "weight grid"})
    granularity: str = dataclasses.field(default="per-channel", metadata={
        "choices": GRANULARITIES, "help": "one scale per tensor or per output channel"})
    layers: list[str] = dataclasses.field(default_factory=list, metadata={"flag": None})
    exclude: list[str] = dataclasses.field(default_factory=list, metadata={"flag": None})
    activations: bool = dataclasses.field(default=False, metadata={
        "help": "also fake-quantize layer inputs (in-memory simulation; not stored in the checkpoint)"})
    activation_bits: int = dataclasses.field(default=8, metadata={"help": "activation bits with --activations"})
    calibration_samples: int = dataclasses.field(default=256, metadata={"help": "inputs for the activation observers"})
    calibration_seed: int = dataclasses.field(default=0, metadata={"help": "seed of the calibration inputs"})

    def validate(self) -> None:
        for key in ("bits", "activation_bits"):
            k = getattr(self, key)
            if not MIN_BITS <= k <= MAX_BITS:
                raise ConfigError(f"quant {key} must be in {MIN_BITS}..{MAX_BITS}, got {k}; "
                                  "above 8 bits use the float or fp16 export instead", field=key)
        if self.scheme not in SCHEMES:
            raise ConfigError(f"quant scheme '{self.scheme}' unknown; use one of {', '.join(SCHEMES)}", field="scheme")
        if self.granularity not in GRANULARITIES:
            raise ConfigError(f"quant granularity '{self.granularity}' unknown; use one of {', '.join(GRANULARITIES)}", field="granularity")
        if self.calibration_samples < 1:
            raise ConfigError(f"quant calibration_samples must be >= 1, got {self.calibration_samples}",
                              field="calibration_samples")

    def tag(self) -> str:
        """Short name part for outputs (``dcgan-q4``, ``dcgan-q4a8``)."""
        return f"q{self.bits}" + (f"a{self.activation_bits}" if self.activations else "")

    @property
    def levels(self) -> int:
        """Grid size: 2^k - 1 for the restricted symmetric range, 2^k for asymmetric."""
        return 2**self.bits - 1 if self.scheme == "symmetric" else 2**self.bits


def deployment_note(bits: int) -> str:
    if bits == 8:
        return "int8 kernels where the runtime quantizes the op (ORT keeps ConvTranspose float)"
    return (f"no int{bits} kernels in TFLite/ONNX Runtime: deploys as int8 (or float) using "
            f"only {2**bits} of 256 levels; packed_bytes is k-bit storage, the file is larger")


@register_method("quant", QuantConfig, "uniform k-bit (2..8) weight quantization, optional activation fake-quant")
def apply(model: Any, config: QuantConfig) -> Any:
    import torch

    module = copy_module(model)
    layers = select_layers(module, config.layers, config.exclude)
    symmetric = config.scheme == "symmetric"
    per_layer = {}
    with torch.no_grad():
        for name, layer in layers.items():
            axis = output_channel_axis(layer) if config.granularity == "per-channel" else None
            deq, codes, scale, _ = fakequant.quantize_tensor(layer.weight, config.bits, symmetric, axis)
            layer.weight.copy_(deq)
            per_layer[name] = {
                "bits": config.bits, "scheme": config.scheme, "granularity": config.granularity,
                "scales": int(scale.numel()), "max_levels_used": fakequant.levels_used(codes, axis),
            }
    activations = {}
    if config.activations:
        inputs = model.sample_inputs(config.calibration_samples, config.calibration_seed)
        ranges = fakequant.observe_input_ranges(module, layers, inputs)
        for name, (lo, hi) in ranges.items():
            scale, zero_point = fakequant.activation_qparams(lo, hi, config.activation_bits)
            activations[name] = {"bits": config.activation_bits, "scale": scale, "zero_point": zero_point,
                                 "observed_min": lo, "observed_max": hi}
        fakequant.install_activation_quant(module, activations)
    stats = {
        "bits": config.bits, "levels": config.levels, "layers": per_layer, "activations": activations,
        "activation_calibration": (f"min/max of {config.calibration_samples} inputs from {model.input_source} "
                                   f"(seed {config.calibration_seed})") if config.activations else None,
        "activation_quant_storage": ("in-memory hooks, not in the checkpoint; "
                                     "edgegan.compress.restore_activation_quant re-installs them") if config.activations else None,
        "deploys_as": deployment_note(config.bits),
    }
    stats.update(storage_stats(module, [*model.compression, {"method": "quant", "stats": stats}]))
    return derive(model, module, "quant", config, stats)


def restore_activation_quant(model: Any) -> Any:
    """Re-install the activation fake-quant recorded by the last quant step that had one
    (a loaded checkpoint holds weights only). Returns a new model; no-op when none."""
    import dataclasses as dc

    for record in reversed(model.compression):
        if record.get("method") == "quant" and record.get("stats", {}).get("activations"):
            module = copy_module(model)
            from ..layers import check_names

            params = record["stats"]["activations"]
            check_names(list(params), [n for n, _ in module.named_modules()], "activation quant record")
            fakequant.install_activation_quant(module, params)
            return dc.replace(model, module=module)
    return model
