"""Converters: one registered module per target format (import name ``edgegan.converters``).

Each module registers a :class:`~edgegan.converters.base.Converter` under its format name.
Heavy toolchains (onnxruntime.quantization, tensorflow, onnx2tf) are imported inside
``convert`` so listing formats stays cheap.
"""
from __future__ import annotations

from .base import CONVERTERS, ConvertContext, ConvertOptions, ConvertResult, Converter

from . import onnx_fp32, ort_int8, tflite_dynamic, tflite_fp16, tflite_fp32, tflite_int8  # noqa: F401,E402  (registration)

DEFAULT_FORMATS = ["onnx", "ort-int8", "tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8"]

__all__ = ["CONVERTERS", "DEFAULT_FORMATS", "ConvertContext", "ConvertOptions", "ConvertResult", "Converter"]
