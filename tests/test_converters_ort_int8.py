"""The ort-int8 converter tries each candidate graph once."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgegan.converters.base import ConvertContext, ConvertOptions
from edgegan.converters.ort_int8 import OrtInt8
from edgegan.errors import ConversionError
from edgegan.export.onnx import export_onnx


@pytest.fixture
def no_rewrite_context(tmp_path):
    """A generator-like module without ConvTranspose, so the sub-pixel rewrite does not apply."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1), nn.Tanh()).eval()
    x = np.random.default_rng(0).standard_normal((16, 4, 8, 8)).astype(np.float32)
    onnx_path = tmp_path / "model.onnx"
    export_onnx(module, x[:4], onnx_path)

    def make(**options) -> ConvertContext:
        return ConvertContext(module=module, onnx_path=onnx_path, calibration=x, input_shape=[4, 8, 8],
                              workdir=tmp_path, out_dir=tmp_path, options=ConvertOptions(**options))

    return make


@pytest.fixture
def quantize_calls(monkeypatch):
    """The graphs handed to the real onnxruntime quantize_static, in order."""
    import onnxruntime.quantization as q

    real, calls = q.quantize_static, []

    def counting(model_input, *args, **kwargs):
        calls.append(str(model_input))
        return real(model_input, *args, **kwargs)

    monkeypatch.setattr(q, "quantize_static", counting)
    return calls


def test_a_failing_quantizer_is_tried_once_per_graph_and_mode(no_rewrite_context, quantize_calls):
    # int8 activations with uint8 weights: onnxruntime's quantizer refuses this combination
    ctx = no_rewrite_context(formats={"ort-int8": {"activation_type": "int8", "weight_type": "uint8"}})
    with pytest.raises(ConversionError, match="quantize_static failed"):
        OrtInt8().convert(ctx)
    # the exported graph, pre-processed and as exported; the "rewritten" graph is the same file
    assert len(quantize_calls) == len(set(quantize_calls)) == 2, quantize_calls
    assert quantize_calls[1] == str(ctx.onnx_path)


def test_a_working_quantizer_runs_once_and_records_no_rewrite(no_rewrite_context, quantize_calls):
    ctx = no_rewrite_context()
    result = OrtInt8().convert(ctx)
    assert len(quantize_calls) == 1 and result.rewrites == [] and result.path.is_file()
