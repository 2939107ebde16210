"""`executorch-int8`: ExecuTorch .pte, int8 by PT2E from the torch graph (XNNPACK quantizer,
symmetric, per-channel weights), calibrated on the bundle's calibration inputs."""
from __future__ import annotations

from .base import register
from .executorch_common import ExecutorchConverterBase, ExecutorchInt8Options


@register
class ExecutorchInt8(ExecutorchConverterBase):
    format = "executorch-int8"
    mode = "int8"
    scheme = "PT2E static int8 (XNNPACK quantizer)"
    filename = "model_int8.pte"
    default_order = 7
    Options = ExecutorchInt8Options
    description = "ExecuTorch int8 via PT2E + XNNPACK quantizer (per-channel weights)"
