"""Making a user's generator exportable as one input -> one image: extra forward() arguments
fixed as constants (``--fixed-input NAME=VALUE|file.npy``), and noise drawn inside forward()
(torch.randn per call, as StyleGAN-family noise injection does) either refused with the reason
or fixed to seeded buffers (``--noise fixed``), so torch, ONNX and every runtime compute the same
function. What was fixed is recorded in bundle.json."""
from __future__ import annotations

import inspect
import math
from typing import Any, Optional

import numpy as np

from ..errors import ConfigError, ExportError, InputSpecError

NOISE_MODES = ("fixed",)
FIXED_INPUT_HELP = "--fixed-input NAME=VALUE (a number, a JSON list or a .npy file: one sample's value)"


def parse_fixed_input(item: str) -> tuple[str, Any]:
    """``"y=3"`` -> ("y", 3); ``"noise=n.npy"`` -> ("noise", "n.npy"); ``"c=[0, 1]"`` -> list."""
    import json

    name, sep, raw = item.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not name.isidentifier() or not raw:
        raise ConfigError(f"--fixed-input {item!r} is not NAME=VALUE; e.g. --fixed-input y=3 or noise=noise.npy")
    if raw.endswith(".npy"):
        return name, raw
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigError(f"--fixed-input {name}: {raw!r} is not a number, a JSON list or a .npy file") from None


def _value_tensor(name: str, value: Any):
    """One sample's value as a tensor: ints stay int64 (labels, indices), floats are float32."""
    import torch

    if isinstance(value, str):
        from ..util.npy import load_npy

        arr = load_npy(value, f"--fixed-input {name} (a .npy with one sample's value)", InputSpecError)
    else:
        arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ConfigError(f"--fixed-input {name}: the value must be numeric, got {arr.dtype}")
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        return torch.from_numpy(np.array(arr, dtype=np.int64))  # np.array keeps a scalar 0-d
    return torch.from_numpy(np.array(arr, dtype=np.float32))


def forward_arguments(module) -> Optional[tuple[list[str], list[str], bool]]:
    """(required names after the first, optional names after the first, takes **kwargs) of
    ``module.forward``; None when its signature cannot be read (TorchScript, C++)."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    if params and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        params = params[1:]
    named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    required = [p.name for p in named if p.default is p.empty]
    optional = [p.name for p in named if p.default is not p.empty]
    return required, optional, any(p.kind is p.VAR_KEYWORD for p in params)


def check_arguments(module, fixed: dict) -> None:
    """ConfigError naming forward() arguments that are neither given nor defaulted, and fixed
    names forward() does not take."""
    args = forward_arguments(module)
    if args is None:
        return
    required, optional, var_kw = args
    missing = [n for n in required if n not in fixed]
    if missing:
        listed = ", ".join(missing)
        raise ConfigError(f"the model's forward() needs {len(missing) + 1} inputs; edgegan feeds the first and "
                          f"{listed} {'is' if len(missing) == 1 else 'are'} missing: fix "
                          f"{'it' if len(missing) == 1 else 'each'} with {FIXED_INPUT_HELP}")
    unknown = [n for n in fixed if n not in required + optional and not var_kw]
    if unknown:
        raise ConfigError(f"--fixed-input {', '.join(unknown)}: forward() takes no such argument "
                          f"(it takes {', '.join(required + optional) or 'only its first input'})")


def with_fixed_inputs(module, fixed: dict):
    """A module taking the first input only, calling ``module(x, NAME=value, ...)`` with each
    value (one sample's) repeated over the batch; the values are buffers, i.e. graph constants."""
    import torch

    class FixedInputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module
            self.names = list(fixed)
            for i, name in enumerate(self.names):
                self.register_buffer(f"fixed_{i}", _value_tensor(name, fixed[name]))

        def forward(self, x):
            kw = {}
            for i, name in enumerate(self.names):
                v = getattr(self, f"fixed_{i}")
                kw[name] = v.unsqueeze(0).expand(x.shape[0], *v.shape)
            return self.inner(x, **kw)

    wrapped = FixedInputs()
    wrapped.eval()
    return wrapped


def fixed_inputs_record(fixed: dict) -> dict:
    """bundle.json's record of the fixed inputs: the value (or file) and its dtype/shape."""
    out = {}
    for name, value in fixed.items():
        t = _value_tensor(name, value)
        out[name] = {"value": value if not isinstance(value, str) else None, "file": value if isinstance(value, str) else None,
                     "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)}
    return out


# ----------------------------------------------------------------------------- noise
def randomness(module, x: np.ndarray) -> float:
    """max |run1 - run2| of two float runs on the same inputs (0.0 for a deterministic model)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x))

    def twice() -> float:
        with torch.no_grad():
            a, b = module(t), module(t)
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.shape != b.shape:
            return 0.0
        return float((a - b).abs().max())

    diff = twice()
    if 0 < diff < 1e-3:
        # A tiny gap can be the work split of a multi-threaded reduction changing between runs on a
        # loaded machine (seen once: 2.5e-5); one thread is deterministic, drawn noise still differs.
        from ..util.torch_threads import torch_threads

        with torch_threads(1):
            diff = twice()
    return diff


def refuse_random(diff: float) -> ExportError:
    return ExportError(f"the model is random: two float runs on the same input differ by {diff:.3g} (noise drawn "
                       "inside forward()); use --noise fixed (seeded, recorded), or make the noise an argument of "
                       "forward() and fix it with --fixed-input NAME=noise.npy")


_RANDOM_FACTORIES = {"randn": "normal", "rand": "uniform", "randn_like": "normal", "rand_like": "uniform"}
_RANDOM_INPLACE = {"normal_": "normal", "uniform_": "uniform"}


def _size_of(name: str, args: tuple, kwargs: dict) -> list:
    if name.endswith("_like") or name in _RANDOM_INPLACE:
        return list(args[0].shape)
    size = kwargs.get("size", args)
    if len(size) == 1 and isinstance(size[0], (list, tuple)) or (len(size) == 1 and hasattr(size[0], "__iter__")):
        size = size[0]
    return list(size)


def with_fixed_noise(module, example: np.ndarray, seed: int):
    """A module whose random draws (torch.randn / rand / *_like, Tensor.normal_ / uniform_ in
    forward, in call order) are replaced by buffers drawn once from ``seed``. A draw whose first
    dimension is the batch gets one sample's noise repeated over the batch, so each output
    depends on its own input only (runtimes run batch 1). Returns (module, record)."""
    import torch
    from torch.overrides import TorchFunctionMode

    class Replay(TorchFunctionMode):
        def __init__(self, owner, recording: bool) -> None:
            super().__init__()
            self.owner, self.recording, self.i = owner, recording, 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = getattr(func, "__name__", "")
            kind = _RANDOM_FACTORIES.get(name) or _RANDOM_INPLACE.get(name)
            if kind is None:
                return func(*args, **kwargs)
            size = _size_of(name, args, kwargs)
            i, self.i = self.i, self.i + 1
            if self.recording:
                self.owner.record(i, kind, size, name, args, kwargs)
            buf = getattr(self.owner, f"noise_{i}", None)
            if buf is None:
                raise ExportError(f"--noise fixed: forward() drew noise #{i + 1} that the recording run did not; "
                                  "the model's random calls depend on its input")
            if name in _RANDOM_INPLACE:
                with torch.no_grad():
                    return args[0].copy_(buf.expand(size))
            return buf.expand(size)

    class FixedNoise(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module
            self.draws: list = []
            self._batch = 0

        def record(self, i, kind, size, name, args, kwargs) -> None:
            per_sample = len(size) > 0 and size[0] == self._batch
            shape = [1, *size[1:]] if per_sample else list(size)
            gen = torch.Generator().manual_seed(seed * 1009 + i)
            if kind == "normal":
                t = torch.randn(shape, generator=gen)
                if name == "normal_":
                    mean, std = (list(args[1:]) + [kwargs.get("mean", 0.0), kwargs.get("std", 1.0)])[:2] if len(args) > 1 else (kwargs.get("mean", 0.0), kwargs.get("std", 1.0))
                    t = t * std + mean
            else:
                t = torch.rand(shape, generator=gen)
                if name == "uniform_":
                    lo, hi = (list(args[1:]) + [0.0, 1.0])[:2] if len(args) > 1 else (kwargs.get("from", 0.0), kwargs.get("to", 1.0))
                    t = t * (hi - lo) + lo
            self.register_buffer(f"noise_{i}", t)
            self.draws.append({"call": i + 1, "function": name, "shape": shape, "per_sample": per_sample})

        def forward(self, x):
            with Replay(self, recording=False):
                return self.inner(x)

    wrapped = FixedNoise()
    wrapped.eval()
    t = torch.from_numpy(np.ascontiguousarray(example[:2] if len(example) >= 2 else np.concatenate([example] * 2)))
    wrapped._batch = int(t.shape[0])
    with torch.no_grad(), Replay(wrapped, recording=True):
        module(t)
    record = {"mode": "fixed", "seed": seed, "draws": wrapped.draws}
    if not wrapped.draws:
        record["note"] = "no torch.randn / rand / normal_ / uniform_ call seen in forward(); the randomness is elsewhere"
    return wrapped, record


def prepare(model, fixed: dict, noise: Optional[str], noise_seed: int, example: np.ndarray) -> dict:
    """Apply fixed inputs and the noise mode to ``model`` (a LoadedModel, module replaced in
    place); returns the bundle.json record ({} when nothing was done). Raises ConfigError for
    missing forward() arguments, ExportError when the model is random and no noise mode is set."""
    record: dict = {}
    check_arguments(model.module, fixed)
    if fixed:
        model.module = with_fixed_inputs(model.module, fixed)
        record["fixed_inputs"] = fixed_inputs_record(fixed)
    if noise is not None and noise not in NOISE_MODES:
        raise ConfigError(f"--noise {noise!r} unknown; use one of {', '.join(NOISE_MODES)}", field="noise")
    x = example[:2]
    try:
        diff = randomness(model.module, x)
    except Exception:  # noqa: BLE001 - a model that cannot run is reported by the forward check after this
        return record
    if noise == "fixed":
        model.module, record["noise"] = with_fixed_noise(model.module, example, noise_seed)
        after = randomness(model.module, x)
        if after > 0 or not math.isfinite(after):
            raise ExportError(f"--noise fixed: the model still differs run to run by {after:.3g}; its randomness is "
                              "not drawn with torch.randn/rand/normal_/uniform_ in forward(); fix it in the model")
        record["noise"]["random_before"] = diff > 0
    elif diff > 0 or not math.isfinite(diff):
        raise refuse_random(diff)
    return record
