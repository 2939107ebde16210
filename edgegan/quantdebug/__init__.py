"""Quantization debugger: float vs quantized model, tensor by tensor.

``report`` holds the typed per-op table (:class:`OpNumerics`, :class:`DebugReport`) that every
backend fills (ORT QDQ today; the same shape serves TFLite and ExecuTorch per-op gaps);
``onnx_qdq`` compares a float ONNX with its QDQ int8 version; ``bundle`` picks the models out
of a bundle. Heavy imports (onnx, onnxruntime) stay inside functions.
"""
from __future__ import annotations

from .report import DebugReport, OpNumerics, sqnr_db

__all__ = ["DebugReport", "OpNumerics", "sqnr_db"]
