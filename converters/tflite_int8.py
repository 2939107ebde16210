"""`tflite-int8`: TFLite full-integer int8 (float I/O by default)."""
from __future__ import annotations

from .base import register
from .tflite_common import TFLiteConverterBase, TFLiteFullInt8Options


@register
class TFLiteInt8(TFLiteConverterBase):
    format = "tflite-int8"
    mode = "int8"
    scheme = "full integer int8"
    filename = "model_int8.tflite"
    default_order = 5
    description = "TFLite full-integer int8 (float I/O by default)"
    Options = TFLiteFullInt8Options
