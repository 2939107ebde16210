"""`executorch-fp32`: ExecuTorch .pte, float32, lowered to the XNNPACK delegate where it can."""
from __future__ import annotations

from .base import register
from .executorch_common import ExecutorchConverterBase, ExecutorchFp32Options


@register
class ExecutorchFp32(ExecutorchConverterBase):
    format = "executorch-fp32"
    mode = "fp32"
    scheme = "float32"
    filename = "model_fp32.pte"
    default_order = 6
    Options = ExecutorchFp32Options
    description = "ExecuTorch float32 (XNNPACK delegate)"
