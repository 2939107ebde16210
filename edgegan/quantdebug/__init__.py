"""Quantization debugger: float vs quantized model, tensor by tensor.

``report`` holds the typed per-op table (:class:`OpNumerics`, :class:`DebugReport`) that every
backend fills; ``onnx_qdq`` compares a float ONNX with its QDQ int8 version; ``tflite`` runs TF's
debugger; ``executorch`` replays an executorch-int8 .pte's PT2E quantization in torch and
checks the .pte against it; ``bundle`` picks the models out of a bundle. Heavy imports (onnx,
onnxruntime, torch, executorch) stay inside functions.
"""
from __future__ import annotations

from .report import DebugReport, OpNumerics, sqnr_db

__all__ = ["DebugReport", "OpNumerics", "sqnr_db"]
