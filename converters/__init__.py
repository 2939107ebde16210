"""Converters: one registered module per target format (import name ``edgegan.converters``).

Every module in this folder is imported here, and each registers its
:class:`~edgegan.converters.base.Converter` under its format name: adding a format is one new
file. Heavy toolchains (onnxruntime.quantization, tensorflow, onnx2tf) are imported inside
``convert`` so listing formats stays cheap.
"""
from __future__ import annotations

import importlib
import pkgutil

from .base import CONVERTERS, ConvertContext, ConvertOptions, ConvertResult, Converter

# helpers that register nothing: the shared TFLite / ExecuTorch code and the subprocesses they run
_NOT_CONVERTERS = {"base", "tflite_common", "tflite_worker", "executorch_common", "executorch_rewrite",
                   "executorch_worker"}
for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _mod not in _NOT_CONVERTERS:
        importlib.import_module(f"{__name__}.{_mod}")


def default_formats() -> list[str]:
    """Formats exported when --formats is not given: converters with a ``default_order``, minus
    those of an optional extra that is not installed (:func:`skipped_default_formats`)."""
    chosen = [(c.default_order, name) for name, c in CONVERTERS.items() if c.default_order is not None]
    skipped = dict(skipped_default_formats())
    return [name for _, name in sorted(chosen) if name not in skipped]


def skipped_default_formats() -> list[tuple[str, str]]:
    """(format, why) of default formats left out because their optional extra is not installed."""
    return [(name, c.missing_dependency()) for name, c in CONVERTERS.items()
            if c.default_order is not None and c.optional_extra and c.missing_dependency()]


__all__ = ["CONVERTERS", "ConvertContext", "ConvertOptions", "ConvertResult", "Converter",
           "default_formats", "skipped_default_formats"]
