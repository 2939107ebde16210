"""What every converter gets and returns."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..config import JsonConfig
from ..errors import ConfigError
from ..registry import Registry

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


@dataclasses.dataclass
class ConvertOptions(JsonConfig):
    """Options shared by the converters (each reads the ones it understands)."""

    calibration_method: str = "minmax"
    per_channel: bool = True
    ort_activation_type: str = "uint8"
    ort_weight_type: str = "int8"
    ort_reduce_range: bool = False
    ort_subpixel: bool = True
    int8_io: bool = False

    def validate(self) -> None:
        if self.calibration_method not in CALIBRATION_METHODS:
            raise ConfigError(
                f"calibration method '{self.calibration_method}' unknown; use one of {', '.join(CALIBRATION_METHODS)}"
            )
        for key in ("ort_activation_type", "ort_weight_type"):
            if getattr(self, key) not in ("int8", "uint8"):
                raise ConfigError(f"{key} must be 'int8' or 'uint8', got {getattr(self, key)!r}")


@dataclasses.dataclass
class ConvertContext:
    """The whole export context: torch model, validated float ONNX, calibration inputs.

    ``cache`` lets converters share expensive intermediate steps (e.g. the onnx2tf
    saved_model used by all TFLite formats); ``workdir`` is scratch space outside the bundle."""

    module: Any
    onnx_path: Path
    calibration: np.ndarray
    input_shape: list[int]
    workdir: Path
    out_dir: Path
    options: ConvertOptions
    cache: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ConvertResult:
    path: Path
    runtime: str
    tool: str
    tool_version: str
    quantization: dict = dataclasses.field(default_factory=dict)
    io: dict = dataclasses.field(default_factory=dict)
    rewrites: list = dataclasses.field(default_factory=list)
    notes: Optional[str] = None


class Converter:
    """Base class: subclasses set ``format``/``runtime``/``filename`` and implement ``convert``."""

    format: str = ""
    runtime: str = ""
    filename: str = ""
    description: str = ""

    def missing_dependency(self) -> Optional[str]:
        """None when the toolchain is importable, else a one-line reason with the fix."""
        return None

    def convert(self, ctx: ConvertContext) -> ConvertResult:
        raise NotImplementedError


CONVERTERS: Registry[Converter] = Registry("format")


def register(cls: type[Converter]) -> type[Converter]:
    CONVERTERS.add(cls.format, cls())
    return cls


def module_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def missing_modules(*modules: str) -> Optional[str]:
    import importlib.util

    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    if absent:
        return f"{', '.join(absent)} not installed; install edgegan with the [all] extra (make install)"
    return None
