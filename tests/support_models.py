"""User-style model factories for tests (`module:factory` specs); importable because pytest
puts tests/ on sys.path and the CLI tests set PYTHONPATH."""
from __future__ import annotations

import torch
from torch import nn


class ErfGenerator(nn.Module):
    """A tiny latent->image generator with an Erf, which TFLite cannot convert to a builtin
    op: the TFLite conversions must fail for it while every other format still completes."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(8, channels, 4, 1, 0)
        self.out = nn.Conv2d(channels, 1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(torch.erf(self.up(z))))


def erf_generator(channels: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return ErfGenerator(channels)


class Unexportable(nn.Module):
    """Data-dependent Python control flow on a tensor value that no ONNX exporter can trace
    faithfully, plus an op (torch.linalg.eigvals -> complex) ONNX has no mapping for."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        m = z.reshape(z.shape[0], 2, 2)
        ev = torch.linalg.eigvals(m).real
        return torch.tanh(ev.reshape(z.shape[0], 1, 1, 2))


def unexportable() -> nn.Module:
    return Unexportable()


def exported_zoo_model(tmp, name: str, n: int, seed: int):
    """(loaded zoo model, its ONNX exported into ``tmp``, ``n`` inputs uniform in [-1, 1], tmp):
    the start of the ONNX graph-pass tests."""
    import numpy as np

    from edgegan.api import load_model
    from edgegan.export.onnx import export_onnx

    model = load_model(name)
    x = np.random.default_rng(seed).uniform(-1, 1, (n, *model.input_spec.shape)).astype(np.float32)
    export_onnx(model.module, x[:4], tmp / "model.onnx")
    return model, tmp / "model.onnx", x, tmp
