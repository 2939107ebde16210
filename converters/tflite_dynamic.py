"""`tflite-dynamic`: TFLite dynamic-range quantization (int8 weights, float activations)."""
from __future__ import annotations

from .base import register
from .tflite_common import TFLiteConverterBase


@register
class TFLiteDynamic(TFLiteConverterBase):
    format = "tflite-dynamic"
    mode = "dynamic"
    scheme = "dynamic-range int8 weights"
    filename = "model_dynamic.tflite"
    default_order = 4
    description = "TFLite dynamic-range quantization (int8 weights, float activations)"
