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
    """A generator-like module without ConvTranspose, so the sub-pixel rewrite does not apply, and
    no conv narrower than 16 output channels (edgegan.export.conv_widen does not apply either)."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(4, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.Tanh()).eval()
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


def _psnr(ref: np.ndarray, got: np.ndarray, peak: float = 2.0) -> float:
    return float(10 * np.log10(peak ** 2 / np.mean((ref.astype(np.float64) - got) ** 2)))


def _ort_outputs(path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


def test_instance_norm_resnet_gets_both_rewrites_and_int8_upsampling(tmp_path):
    """resnet-tiny (InstanceNorm, ConvTranspose k3 s2 p1 op1) through the product's export: the
    artifact records the sub-pixel and the InstanceNorm rewrites, fell back on nothing, and ORT
    runs no ConvTranspose; its output is checked here against the float ONNX independently."""
    import json

    import onnx

    from edgegan.api import export

    out = tmp_path / "b"
    export("resnet-tiny", out, ["onnx", "ort-int8"], n_inputs=16)
    manifest = json.loads((out / "bundle.json").read_text())
    art = {a["format"]: a for a in manifest["artifacts"]}
    q = art["ort-int8"]
    names = [r["rewrite"] for r in q["rewrites"]]
    assert sum("ConvTranspose k3 s2 p1 -> pad + Conv 2x2" in n for n in names) == 2, names
    assert {"instance_norm_bias", "instance_norm_equalize"} <= set(names), names
    graph = onnx.load(str(out / q["path"])).graph
    norms = sum(n.op_type == "InstanceNormalization" for n in graph.node)
    # every norm of this ResNet follows a conv, the two up-sampling ones through the sub-pixel interleave
    assert all(r["instance_norms"] == norms == 7 for r in q["rewrites"] if r["rewrite"].startswith("instance_norm"))
    assert not q.get("notes"), q.get("notes")  # no fallback, no refused rewrite
    assert not any(op.startswith("ConvTranspose") for op in q["quantization"]["ops_left_float"])
    producer = {o: n.op_type for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert "ConvTranspose" not in {n.op_type for n in graph.node}
    assert convs and all(producer.get(n.input[1]) == "DequantizeLinear" for n in convs)  # int8 weights everywhere
    # the norms' scale and bias stay float initializers: quantized, ORT dequantized them on every run
    inits = {t.name for t in graph.initializer}
    ins = [n for n in graph.node if n.op_type == "InstanceNormalization"]
    assert all(i in inits for n in ins for i in n.input[1:]), [producer.get(i) for n in ins for i in n.input[1:]]
    x = np.load(out / "inputs.npy")
    ref, got = _ort_outputs(out / art["onnx"]["path"], x), _ort_outputs(out / q["path"], x)
    assert _psnr(ref, got) > 35  # the random-init tiny ResNet: ~41 dB measured


@pytest.mark.slow
def test_resnet_sketch_ort_int8_quantizes_the_rewritten_graph(tmp_path):
    """The shipped resnet-sketch (issue #25): the sub-pixel graph quantizes (no "shared mode"
    fallback), the InstanceNorm rewrite passes its budget, and int8 reaches the goal's 38 dB
    region (37.6-38.5 dB measured, 35.3 dB before); the bound here is independent of the bundle."""
    import json

    from edgegan.api import export

    out = tmp_path / "rs"
    export("resnet-sketch", out, ["onnx", "ort-int8"])
    art = {a["format"]: a for a in json.loads((out / "bundle.json").read_text())["artifacts"]}
    q = art["ort-int8"]
    names = [r["rewrite"] for r in q["rewrites"]]
    assert sum("ConvTranspose k3 s2 p1" in n for n in names) == 2 and "instance_norm_equalize" in names, names
    assert not q.get("notes"), q["notes"]
    assert all(r["instance_norms"] == 17 and r["psnr_db_vs_original"] >= 60
               for r in q["rewrites"] if r["rewrite"].startswith("instance_norm"))
    x = np.load(out / "inputs.npy")
    ref, got = _ort_outputs(out / art["onnx"]["path"], x), _ort_outputs(out / q["path"], x)
    assert _psnr(ref, got) > 37
