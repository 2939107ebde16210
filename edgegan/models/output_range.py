"""The range a generator's outputs live in, which every PSNR takes its peak (hi - lo) from.

A fixed peak of 2 (outputs in [-1, 1]) overstates PSNR by 6 dB for a model with outputs in
[0, 1] and by more for narrower ranges. The range is, in order of preference:

1. ``declared``: ``--output-range LO,HI`` (API ``output_range=``) or the zoo entry's own;
2. ``inferred``: the op that produces the output (through reshapes, permutes, pixel shuffles)
   is tanh -> [-1, 1], sigmoid / hardsigmoid -> [0, 1], hardtanh / clamp(lo, hi) -> [lo, hi],
   read by running the model once under a dispatch mode (works for modules, functional
   calls, TorchScript and ``torch.export`` graphs alike);
3. ``measured``: min / max of the float reference outputs;
4. ``assumed`` [-1, 1]: bundles written before the range was recorded.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..output_range import OutputRange


def final_activation_range(module: Any, example: np.ndarray) -> Optional[tuple[float, float, str]]:
    """(lo, hi, op) when the model's output comes straight from a bounded activation, else None."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    aten = torch.ops.aten
    bounded = {aten.tanh.default: (-1.0, 1.0), aten.sigmoid.default: (0.0, 1.0), aten.hardsigmoid.default: (0.0, 1.0)}
    keeps_values = {aten.view.default, aten._unsafe_view.default, aten.reshape.default, aten.permute.default,
                    aten.transpose.int, aten.clone.default, aten.contiguous.default, aten.squeeze.dim,
                    aten.squeeze.default, aten.unsqueeze.default, aten.pixel_shuffle.default, aten.alias.default,
                    aten.detach.default, aten.slice.Tensor, aten.expand.default, aten.flatten.using_ints,
                    aten._to_copy.default}

    class _Ranges(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ranges: dict[int, tuple] = {}
            self.alive: list = []  # keeps results alive, so an id is never reused within the run

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            packet = getattr(func, "overloadpacket", None)
            rng = None
            if func in bounded:
                rng = (*bounded[func], packet.__name__ if packet else str(func))
            elif packet in (aten.hardtanh, aten.clamp) and isinstance(out, torch.Tensor):
                lo, hi = (list(args[1:3]) + [None, None])[:2]
                lo, hi = kwargs.get("min", lo) if kwargs else lo, kwargs.get("max", hi) if kwargs else hi
                if packet is aten.hardtanh:
                    lo, hi = (-1.0 if lo is None else lo), (1.0 if hi is None else hi)
                if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
                    rng = (float(lo), float(hi), packet.__name__)
            elif func in keeps_values and args and isinstance(args[0], torch.Tensor):
                rng = self.ranges.get(id(args[0]))
            if rng is not None and isinstance(out, torch.Tensor):
                self.ranges[id(out)] = rng
                self.alive.append(out)
            return out

    mode = _Ranges()
    x = torch.from_numpy(np.ascontiguousarray(example[:1]))
    try:
        with torch.no_grad(), mode:
            out = module(x)
    except Exception:  # noqa: BLE001 - an op the mode cannot follow: fall back to measuring
        return None
    if isinstance(out, (tuple, list)) and len(out) == 1:
        out = out[0]
    rng = mode.ranges.get(id(out)) if isinstance(out, torch.Tensor) else None
    if rng is None or not rng[1] > rng[0]:
        return None
    return rng


def resolve_output_range(declared: Optional[tuple], declared_by: str, module: Any, example: np.ndarray,
                         reference: np.ndarray) -> OutputRange:
    """The model's OutputRange by the rules of the module doc."""
    if declared is not None:
        r = OutputRange(float(declared[0]), float(declared[1]), "declared", declared_by)
        r.validate()
        return r
    found = final_activation_range(module, example)
    if found is not None:
        return OutputRange(found[0], found[1], "inferred", f"final {found[2]}")
    lo, hi = float(np.min(reference)), float(np.max(reference))
    if not hi > lo:  # a constant output: any positive peak gives the same (infinite or zero-error) PSNR
        hi = lo + 1.0
    return OutputRange(lo, hi, "measured", f"min/max of the {len(reference)} float reference outputs")
