"""`executorch-dynamic`: ExecuTorch .pte with XNNPACK's dynamically quantized convolutions
(qd8-f32-qc8w): int8 per-channel weights, each conv's float input quantized to 8 bits on the fly
per row, float output. Nothing is calibrated and everything between the convs (InstanceNorm,
reflect pad, residual adds) stays float inside XNNPACK, so no int8<->fp32 converts surround the
norms. The ExecuTorch counterpart of `tflite-dynamic`: a separate format rather than a mode of
executorch-int8 because it is another artifact with another trade-off (no activation scales,
so nothing for the static-int8 debugger to replay)."""
from __future__ import annotations

from .base import register
from .executorch_common import ExecutorchConverterBase, ExecutorchDynamicOptions


@register
class ExecutorchDynamic(ExecutorchConverterBase):
    format = "executorch-dynamic"
    mode = "dynamic"
    scheme = "PT2E dynamic int8 (XNNPACK qd8: int8 weights, activations quantized per row at run time)"
    filename = "model_dynamic.pte"
    default_order = None
    Options = ExecutorchDynamicOptions
    description = "ExecuTorch dynamic int8 convs via PT2E + XNNPACK (int8 weights, float activations)"
