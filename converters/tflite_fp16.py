"""`tflite-fp16`: TFLite float16 weights (float compute)."""
from __future__ import annotations

from .base import register
from .tflite_common import TFLiteConverterBase


@register
class TFLiteFp16(TFLiteConverterBase):
    format = "tflite-fp16"
    mode = "fp16"
    scheme = "float16 weights"
    filename = "model_fp16.tflite"
    default_order = 3
    description = "TFLite float16 weights (float compute)"
