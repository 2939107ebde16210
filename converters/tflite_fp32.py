"""`tflite-fp32`: TFLite float32."""
from __future__ import annotations

from .base import register
from .tflite_common import TFLiteConverterBase


@register
class TFLiteFp32(TFLiteConverterBase):
    format = "tflite-fp32"
    mode = "fp32"
    scheme = "float32"
    filename = "model_fp32.tflite"
    default_order = 2
    description = "TFLite float32"
