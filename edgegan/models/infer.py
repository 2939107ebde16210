"""Infer a user generator's per-sample input from its first layer, where that is unambiguous.

A user model (``module:factory``, an ``nn.Module`` object, a TorchScript file) carries no input
spec. Its first parametrised layer (definition order) often says what it takes:

* ``Linear(in_features)``        -> latent vector ``[in_features]`` (normal)
* ``ConvTranspose2d(in_channels)`` -> latent ``[in_channels, 1, 1]`` (normal; the DCGAN convention)
* ``Conv2d(in_channels)``        -> image ``[in_channels, 64, 64]`` in [-1, 1] (uniform), only if
  a forward pass at 64x64 works (image-to-image generators are usually size-agnostic)

Anything else (an Embedding, an RNN, Conv1d/3d, a norm layer or a bare parameter first, several
forward inputs) cannot be known and is a :class:`ConfigError` asking for ``--input-shape`` (CLI) /
``input_shape=`` (API). Every inferred spec is checked with one forward pass of a batch of 2,
and records how it was inferred in :attr:`InputSpec.inferred` (it lands in bundle.json).
"""
from __future__ import annotations

import inspect
from typing import Any, Optional

from ..errors import ConfigError, InputSpecError, first_line
from .spec import InputSpec

IMAGE_SIZE = 64
ASK = ("pass --input-shape (CLI) / input_shape= (API), e.g. 100 for a [N, 100] latent, 100,1,1 for a [N, 100, 1, 1] "
       "latent or 3,64,64 with --input-kind image")
_LATENT_LAYERS = ("Linear", "ConvTranspose2d")
_KNOWN_LAYERS = (*_LATENT_LAYERS, "Conv2d")


def _class_name(m: Any) -> str:
    """The layer's class name; TorchScript keeps the original one in ``original_name``."""
    import torch

    if isinstance(m, torch.jit.ScriptModule):
        return str(getattr(m, "original_name", type(m).__name__))
    for known in (torch.nn.ConvTranspose2d, torch.nn.Conv2d, torch.nn.Linear):
        if isinstance(m, known):  # subclasses too, e.g. torch's ParametrizedLinear
            return known.__name__
    return type(m).__name__


def _own_params(m: Any) -> dict:
    return dict(m.named_parameters(recurse=False))


def _is_layer(m: Any) -> bool:
    """Owns parameters, or is a known layer whose weight lives in a parametrization
    (``torch.nn.utils.parametrizations.weight_norm`` moves it into a child module)."""
    return bool(_own_params(m)) or (_class_name(m) in _KNOWN_LAYERS and hasattr(m, "parametrizations"))


def first_layer(module: Any) -> tuple[str, Any]:
    """(path, submodule) of the first submodule in definition order that owns parameters."""
    for path, m in module.named_modules():
        if _is_layer(m):
            return path, m
    raise ConfigError(f"{_class_name(module)} has no parameters to infer its input from; {ASK}")


def _required_inputs(module: Any) -> Optional[int]:
    """How many inputs ``forward`` requires (None when it takes ``*args``)."""
    import torch

    if isinstance(module, torch.jit.ScriptModule):
        try:
            args = module.forward.schema.arguments[1:]  # drop self
        except (AttributeError, RuntimeError):
            return 1
        return sum(1 for a in args if not a.has_default_value())
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return 1
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(1 for p in positional if p.default is p.empty)
    return 1 if required == 0 and positional else required  # forward(self, z=None) takes one input


def _in_width(layer: Any, cls: str) -> int:
    """Input features / channels of a Linear / ConvTranspose2d / Conv2d, also for TorchScript
    (which keeps the weight but not always the attributes)."""
    attr = "in_features" if cls == "Linear" else "in_channels"
    value = getattr(layer, attr, None)
    if isinstance(value, int):
        return value
    w = _own_params(layer).get("weight")
    if w is None:
        w = _own_params(layer).get("weight_orig")  # spectral_norm renames it
    if w is None:
        raise ConfigError(f"first layer {cls} has no weight to read its input size from; {ASK}")
    if cls == "ConvTranspose2d":
        return int(w.shape[0])  # [in, out/groups, kh, kw]
    groups = getattr(layer, "groups", 1)
    return int(w.shape[1]) * (groups if isinstance(groups, int) else 1)  # [out, in/groups, ...]


def _forward(module: Any, spec: InputSpec) -> tuple[Optional[str], Optional[str]]:
    """One batch-2 forward pass: (error or None, path of the first parametrised layer that ran,
    or None when unknown, e.g. TorchScript, whose modules take no hooks)."""
    import torch

    ran: list[str] = []
    handles = []
    if not isinstance(module, torch.jit.ScriptModule):
        for path, m in module.named_modules():
            if _is_layer(m) and "parametrizations" not in path.split("."):  # the layer, not its weight's storage
                handles.append(m.register_forward_pre_hook(lambda mod, args, p=path: ran.append(p) if not ran else None))
    try:
        with torch.no_grad():
            out = module(torch.from_numpy(spec.sample(2, 0)))
        if not isinstance(out, torch.Tensor):
            return f"it returns {type(out).__name__}, not a tensor", (ran[0] if ran else None)
        return None, (ran[0] if ran else None)
    except Exception as exc:  # noqa: BLE001 - user code raises anything; it becomes one clear error
        return f"{type(exc).__name__}: {first_line(exc, 160)}", (ran[0] if ran else None)
    finally:
        for h in handles:
            h.remove()


def suggested_shape(module: Any) -> Optional[tuple[str, str]]:
    """(shape as the CLI takes it, why) read off the first layer: ``Linear(100)`` -> "100",
    ``ConvTranspose2d(100)`` -> "100,1,1", ``Conv2d(3)`` -> "3,64,64"; None when it says nothing."""
    try:
        path, layer = first_layer(module)
        cls = _class_name(layer)
        if cls not in _KNOWN_LAYERS:
            return None
        width = _in_width(layer, cls)
    except Exception:  # noqa: BLE001 - only a hint: any failure means no suggestion
        return None
    if width < 1:
        return None
    shape = {"Linear": f"{width}", "ConvTranspose2d": f"{width},1,1"}.get(cls, f"{width},{IMAGE_SIZE},{IMAGE_SIZE}")
    return shape, f"its first layer is {cls}({width}, ...)"


def ask_for(module: Any, unless: Optional[str] = None) -> str:
    """The --input-shape request with the model's own expected shape as the example (the
    generic one when the first layer says nothing, or its suggestion is ``unless``, the shape
    that just failed)."""
    hint = suggested_shape(module)
    if hint is None or hint[0] == unless:
        return ASK
    kind = "image" if hint[0].count(",") == 2 and not hint[0].endswith(",1,1") else "latent"
    return f"pass --input-shape (CLI) / input_shape= (API), e.g. {hint[0]} ({hint[1]}) and --input-kind {kind}"


def infer_input_spec(module: Any, what: str) -> InputSpec:
    """The per-sample input of ``module`` read from its first layer (see the module doc),
    verified with a batch-2 forward pass; ConfigError / InputSpecError when it cannot be known."""
    n = _required_inputs(module)
    if n is None or n > 1:
        takes = "*args" if n is None else f"{n} inputs"
        raise ConfigError(f"{what} takes {takes}; edgegan exports single-input generators, so the input "
                          f"cannot be inferred; {ASK}")
    if n == 0:
        raise ConfigError(f"{what} takes no input; edgegan exports generators that take one tensor")
    path, layer = first_layer(module)
    cls = _class_name(layer)
    where = f"'{path}'" if path else "the model itself"
    if cls not in _KNOWN_LAYERS:
        raise ConfigError(f"{what}: the first layer with parameters is {cls} ({where}), which does not say "
                          f"what input the model takes; {ASK}")
    width = _in_width(layer, cls)
    if width < 1:
        raise ConfigError(f"{what}: the first layer {cls} at {where} is lazy (no input size yet); {ASK}")
    if cls == "Linear":
        spec = InputSpec(shape=[width], kind="latent", distribution="normal")
    elif cls == "ConvTranspose2d":
        spec = InputSpec(shape=[width, 1, 1], kind="latent", distribution="normal")
    else:
        spec = InputSpec(shape=[width, IMAGE_SIZE, IMAGE_SIZE], kind="image", distribution="uniform")
    shape = ", ".join(map(str, spec.shape))
    spec.inferred = f"first layer {cls}({width}, ...) at {where} -> {spec.kind} [{shape}]"
    error, ran_first = _forward(module, spec)
    if ran_first is not None and ran_first != path:
        raise ConfigError(f"{what}: {cls} at {where} is defined first but {ran_first!r} runs first, so the "
                          f"input cannot be read off the first layer; {ASK}")
    if error is not None:
        if cls == "Conv2d":
            raise InputSpecError(f"{what} starts with Conv2d({width}, ...) but a {IMAGE_SIZE}x{IMAGE_SIZE} image "
                                 f"[{shape}] does not run through it ({error}); {ASK}")
        raise InputSpecError(f"{what}: the input [{shape}] inferred from {cls}({width}, ...) at {where} fails "
                             f"a forward pass ({error}); {ASK}")
    return spec
