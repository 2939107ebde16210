"""Uniform k-bit fake quantization: weights (per tensor / per channel) and layer inputs.

Weights are replaced by their dequantized values, so the float graph computes exactly what a
k-bit kernel with these scales would. Activations are fake-quantized by forward pre-hooks on
the quantized layers (round / clamp on the layer input, which export to plain ONNX
Div/Round/Clip/Mul ops); their asymmetric per-tensor ranges come from min/max observers run
on inputs drawn from the model's input distribution.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def quantize_tensor(w: Any, bits: int, symmetric: bool, axis: int | None) -> tuple[Any, Any, Any, Any]:
    """(dequantized, integer codes, scale, zero point) of ``w`` on a uniform k-bit grid.

    Symmetric uses the restricted range ±(2^(k-1) - 1) (2^k - 1 levels, zero exact, as int8
    runtimes do); asymmetric uses 0..2^k - 1 with a zero point, the range widened to include 0
    so pruned zeros stay exactly zero. ``axis`` is the channel axis, None for per tensor."""
    import torch

    dims = tuple(d for d in range(w.dim()) if d != axis) if axis is not None else tuple(range(w.dim()))
    w = w.detach()
    if symmetric:
        qmax = float(2 ** (bits - 1) - 1)
        amax = w.abs().amax(dim=dims, keepdim=True)
        scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
        zero_point = torch.zeros_like(scale)
        codes = torch.clamp(torch.round(w / scale), -qmax, qmax)
    else:
        qmax = float(2**bits - 1)
        lo = w.amin(dim=dims, keepdim=True).clamp(max=0)
        hi = w.amax(dim=dims, keepdim=True).clamp(min=0)
        scale = torch.where(hi > lo, (hi - lo) / qmax, torch.ones_like(hi))
        zero_point = torch.clamp(torch.round(-lo / scale), 0, qmax)
        codes = torch.clamp(torch.round(w / scale) + zero_point, 0, qmax)
    dequantized = (codes - zero_point) * scale
    return dequantized.to(w.dtype), codes, scale, zero_point


def levels_used(codes: Any, axis: int | None) -> int:
    """Most distinct codes taken by any one channel (or by the tensor when ``axis`` is None)."""
    import torch

    if axis is None:
        return int(torch.unique(codes).numel())
    per_channel = codes.movedim(axis, 0).reshape(codes.shape[axis], -1).long()
    offset = per_channel - per_channel.min()
    span = int(offset.max()) + 1
    keys = offset + torch.arange(per_channel.shape[0])[:, None] * span
    channel_of_key = torch.unique(keys) // span
    return int(torch.bincount(channel_of_key).max())


def activation_qparams(lo: float, hi: float, bits: int) -> tuple[float, float]:
    """Asymmetric per-tensor (scale, zero point) for an observed range, widened to include 0."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    qmax = 2**bits - 1
    scale = (hi - lo) / qmax if hi > lo else 1.0
    zero_point = float(np.clip(np.round(-lo / scale), 0, qmax))
    return float(np.float32(scale)), zero_point


class ActivationFakeQuant:
    """Forward pre-hook: fake-quantize a layer's input. Plain floats as state so deep copies
    and ONNX export (dynamo and legacy) see constants."""

    def __init__(self, scale: float, zero_point: float, bits: int) -> None:
        self.scale = float(scale)
        self.inv_scale = float(1.0 / scale)
        self.zero_point = float(zero_point)
        self.qmax = float(2**bits - 1)
        self.bits = bits

    def __call__(self, module: Any, args: tuple) -> tuple:
        import torch

        x = args[0]
        codes = torch.clamp(torch.round(x * self.inv_scale) + self.zero_point, min=0.0, max=self.qmax)
        return ((codes - self.zero_point) * self.scale, *args[1:])


def remove_activation_quant(layer: Any) -> None:
    for key, hook in list(layer._forward_pre_hooks.items()):
        if isinstance(hook, ActivationFakeQuant):
            del layer._forward_pre_hooks[key]


def observe_input_ranges(module: Any, layers: dict[str, Any], inputs: np.ndarray, batch: int = 32) -> dict[str, tuple[float, float]]:
    """Min/max of each layer's input over ``inputs`` (min/max observer)."""
    import torch

    ranges: dict[str, list[float]] = {name: [np.inf, -np.inf] for name in layers}
    handles = []

    def make_observer(name: str):
        def observe(_module: Any, args: tuple) -> None:
            x = args[0].detach()
            r = ranges[name]
            r[0], r[1] = min(r[0], float(x.min())), max(r[1], float(x.max()))

        return observe

    for name, layer in layers.items():
        handles.append(layer.register_forward_pre_hook(make_observer(name)))
    try:
        with torch.no_grad():
            for i in range(0, len(inputs), batch):
                module(torch.from_numpy(np.ascontiguousarray(inputs[i : i + batch])))
    finally:
        for h in handles:
            h.remove()
    return {name: (lo, hi) for name, (lo, hi) in ranges.items()}


def install_activation_quant(module: Any, params: dict[str, dict]) -> None:
    """Install (replacing any earlier) input fake-quant hooks from ``{layer: {scale,
    zero_point, bits}}``."""
    named = dict(module.named_modules())
    for name, p in params.items():
        layer = named[name]
        remove_activation_quant(layer)
        layer.register_forward_pre_hook(ActivationFakeQuant(p["scale"], p["zero_point"], int(p["bits"])))
