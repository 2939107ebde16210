"""Which layers a method touches: weight layers by module name, with did-you-mean errors.

Names are the module names of ``model.named_modules()`` (e.g. ``main.0`` for the first
transposed convolution of the DCGAN generator); ``edgegan compress MODEL --list-layers``
prints them.
"""
from __future__ import annotations

import difflib
from typing import Any, Sequence

from ..errors import ConfigError


def weight_layers(module: Any) -> dict[str, Any]:
    """Conv, transposed conv and linear layers by module name, in forward-definition order."""
    from torch import nn

    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)
    return {name: m for name, m in module.named_modules() if isinstance(m, kinds) and getattr(m, "weight", None) is not None}


def output_channel_axis(layer: Any) -> int:
    """Axis of the weight holding output channels: 1 for transposed convs ([in, out, k...])."""
    from torch import nn

    return 1 if isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)) else 0


def check_names(names: Sequence[str], valid: Sequence[str], option: str, what: str = "layer") -> None:
    """Raise ConfigError for the first name not in ``valid``, with a did-you-mean hint."""
    for name in names:
        if name not in valid:
            close = difflib.get_close_matches(name, list(valid), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            shown = ", ".join(list(valid)[:12]) + (" ..." if len(valid) > 12 else "")
            raise ConfigError(f"{option}: no {what} named '{name}' in this model{hint}; {what}s are: {shown}")


def select_layers(module: Any, layers: Sequence[str], exclude: Sequence[str]) -> dict[str, Any]:
    """The weight layers named in ``layers`` (all when empty) minus ``exclude``; unknown
    names are a ConfigError."""
    available = weight_layers(module)
    check_names(layers, list(available), "layers")
    check_names(exclude, list(available), "exclude")
    chosen = {n: m for n, m in available.items() if (not layers or n in layers) and n not in exclude}
    if not chosen:
        raise ConfigError("no weight layers left to compress after layers/exclude; select at least one layer")
    return chosen
