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
    """Options for the converters: the ones several formats share, plus ``formats``: per-format
    options, each validated against that converter's own ``Options`` dataclass (so a new
    converter brings its options with it and nothing here changes)."""

    calibration_method: str = dataclasses.field(
        default="minmax", metadata={"help": "int8 calibration: " + ", ".join(CALIBRATION_METHODS)})
    per_channel: bool = dataclasses.field(default=True, metadata={"help": "per-channel weight scales"})
    int8_io: bool = dataclasses.field(default=False, metadata={"help": "int8 input/output tensors where supported"})
    formats: dict = dataclasses.field(default_factory=dict, metadata={"help": "{format: {option: value}}"})

    def validate(self) -> None:
        if self.calibration_method not in CALIBRATION_METHODS:
            raise ConfigError(
                f"ConvertOptions.calibration_method '{self.calibration_method}' unknown; use one of "
                f"{', '.join(CALIBRATION_METHODS)}"
            )
        for fmt in self.formats:
            self.for_format(fmt)

    def for_format(self, fmt: str) -> JsonConfig:
        """The typed options of one format (its converter's defaults where not given)."""
        conv = CONVERTERS.get(fmt)
        given = self.formats.get(fmt, {})
        if conv.Options is None:
            if given:
                raise ConfigError(f"ConvertOptions.formats['{fmt}']: the {fmt} converter takes no options")
            return JsonConfig()
        if isinstance(given, conv.Options):
            return given
        try:
            return conv.Options.from_dict(given)
        except ConfigError as exc:
            raise ConfigError(f"ConvertOptions.formats['{fmt}']: {exc}") from None


@dataclasses.dataclass
class MixedPrecisionOptions(JsonConfig):
    """What every mixed-precision format takes: ops kept float by type or by name, or ``auto``
    (the debugger's worst ops back to float, one re-measured step at a time, until the output
    reaches ``target_psnr_db``). Each ``*-mixed`` converter subclasses it with its own fields."""

    keep_op_types: list = dataclasses.field(default_factory=list, metadata={
        "help": "op types left float, as `edgegan debug-quant` names them (ONNX op types / TFLite op names)"})
    keep_nodes: list = dataclasses.field(default_factory=list, metadata={
        "help": "node / output tensor names left float, as `edgegan debug-quant` lists them"})
    auto: bool = dataclasses.field(default=True, metadata={
        "help": "return the worst ops to float until target_psnr_db is met"})
    target_psnr_db: float = dataclasses.field(default=38.0, metadata={"help": "auto's PSNR target vs float"})
    max_steps: int = dataclasses.field(default=16, metadata={"help": "auto: most steps of the search"})

    def validate(self) -> None:
        name = type(self).__name__
        for key in ("keep_op_types", "keep_nodes"):
            if not all(isinstance(v, str) for v in getattr(self, key)):
                raise ConfigError(f"{name}.{key} must be a list of names")
        if not 0 < self.target_psnr_db < 200:
            raise ConfigError(f"{name}.target_psnr_db must be in (0, 200), got {self.target_psnr_db}")
        if self.max_steps < 0:
            raise ConfigError(f"{name}.max_steps must be >= 0, got {self.max_steps}")


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
    output_peak: float = 2.0  # PSNR peak of the model's outputs (its output range's hi - lo) for PSNR targets

    def options_for(self, converter: "Converter"):
        return self.options.for_format(converter.format)


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
    """Base class: subclasses set ``format``/``runtime``/``filename`` and implement ``convert``.

    ``runtime`` must name an entry of the runner's runtime table and ``filename`` end in one of
    its suffixes (checked at registration); ``tools`` are the pip distributions of the
    toolchain (reported by `edgegan env` and recorded in bundles); ``Options`` is the
    converter's own JsonConfig dataclass, or None; ``default_order`` places it in the
    default format set."""

    format: str = ""
    runtime: str = ""
    filename: str = ""
    description: str = ""
    tools: tuple = ()
    Options: Optional[type] = None
    default_order: Optional[int] = None  # position in the default --formats set; None = only on request
    # the pyproject extra of a toolchain kept out of the base install: such a format is in the
    # default set only when installed, and asking for it without the extra is a missing-extra error
    optional_extra: Optional[str] = None

    def missing_dependency(self) -> Optional[str]:
        """None when the toolchain is importable, else a one-line reason with the fix."""
        return None

    def convert(self, ctx: ConvertContext) -> ConvertResult:
        raise NotImplementedError


CONVERTERS: Registry[Converter] = Registry("format")


def register(cls: type[Converter]) -> type[Converter]:
    """Register a converter after checking it against the runner's runtime table."""
    from ..runner.edgegan_runner import RUNTIMES

    rt = RUNTIMES.get(cls.runtime)
    if rt is None:
        raise ValueError(f"converter {cls.format!r}: runtime {cls.runtime!r} is not in the runner's table "
                         f"({', '.join(RUNTIMES)})")
    if not cls.filename.endswith(rt.suffixes):
        raise ValueError(f"converter {cls.format!r}: {cls.filename!r} does not end in {'/'.join(rt.suffixes)}")
    CONVERTERS.add(cls.format, cls())
    return cls


BASE_TOOLS = ("torch", "onnx", "onnxscript", "numpy")


def tool_distributions() -> list[str]:
    """Every distribution whose version matters for a bundle: the export toolchain, each
    registered converter's tools and each runtime's probe-able implementations."""
    from ..runner.edgegan_runner import RUNTIMES

    dists = list(BASE_TOOLS)
    for _, conv in CONVERTERS.items():
        dists += conv.tools
    for rt in RUNTIMES.values():
        dists += [m.distribution for m in rt.modules if m.probe]
    return list(dict.fromkeys(dists))


def module_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def missing_modules(*modules: str) -> Optional[str]:
    import importlib.util

    from ..util.deps import missing_message

    absent = [m for m in modules if importlib.util.find_spec(m) is None]  # cheap: `env` asks for every format
    return missing_message(absent) if absent else None
