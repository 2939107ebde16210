"""The mixed-precision formats quantize the same rewritten float graph as their plain siblings
(issue #25): with nothing kept float, ort-int8-mixed / tflite-int8-mixed compute what ort-int8 /
tflite-int8 compute, on a real ONNX Runtime and a real LiteRT, and the DCGAN's ConvTranspose
MACs run in int8 (sub-pixel rewrite) in one XNNPACK partition."""
from __future__ import annotations

import numpy as np
import pytest

from edgegan.converters.base import CONVERTERS, ConvertContext, ConvertOptions


@pytest.fixture(scope="module")
def dcgan_tiny(tmp_path_factory):
    from edgegan.api import load_model
    from edgegan.export.onnx import export_onnx

    tmp = tmp_path_factory.mktemp("mixedsame")
    model = load_model("dcgan-tiny")
    x = np.random.default_rng(3).standard_normal((24, *model.input_spec.shape)).astype(np.float32)
    export_onnx(model.module, x[:4], tmp / "model.onnx")
    return model, tmp / "model.onnx", x


def _context(dcgan_tiny, workdir, formats: dict, cache=None) -> ConvertContext:
    model, onnx_path, x = dcgan_tiny
    workdir.mkdir(exist_ok=True)
    return ConvertContext(module=model.module, onnx_path=onnx_path, calibration=x[:16], input_shape=list(x.shape[1:]),
                          workdir=workdir, out_dir=workdir, options=ConvertOptions(formats=formats),
                          cache={} if cache is None else cache)


def _ort_outputs(path, x) -> np.ndarray:
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {s.get_inputs()[0].name: x[i: i + 1]})[0] for i in range(len(x))])


def _ort_optimized_ops(path) -> list[str]:
    """Op types of the graph ORT itself runs after its QDQ fusions (independent of edgegan's
    own int8 bookkeeping)."""
    import tempfile
    from pathlib import Path

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node]


def test_ort_mixed_with_nothing_float_is_ort_int8(dcgan_tiny, tmp_path):
    import onnx

    from edgegan.models.stats import count_macs

    model, onnx_path, x = dcgan_tiny
    assert "ConvTranspose" in {n.op_type for n in onnx.load(str(onnx_path)).graph.node}  # the export has them
    ctx = _context(dcgan_tiny, tmp_path, {"ort-int8-mixed": {"auto": False}})
    plain = CONVERTERS.get("ort-int8").convert(ctx)
    mixed = CONVERTERS.get("ort-int8-mixed").convert(ctx)
    q = mixed.quantization
    assert q["kept_float"] == [] and q["preprocessed"] is True
    # same graph, same quantizer settings: the same model, bit for bit on ORT
    np.testing.assert_array_equal(_ort_outputs(mixed.path, x[16:]), _ort_outputs(plain.path, x[16:]))
    assert mixed.rewrites == plain.rewrites
    assert any("ConvTranspose" in str(r["rewrite"]) for r in mixed.rewrites), mixed.rewrites
    # ORT has no int8 ConvTranspose: the rewrite replaced every one, and ORT runs every conv in int8
    ops = _ort_optimized_ops(mixed.path)
    assert "ConvTranspose" not in ops and "Conv" not in ops and ops.count("QLinearConv") >= 4, ops
    assert not [e for e in q["ops_left_float"] if e.split(" x")[0] in ("Conv", "ConvTranspose")], q["ops_left_float"]
    assert q["int8_mac_fraction"] >= 0.999
    # the rewritten graph does at least the torch model's MACs (phase convs add zero taps)
    assert q["total_macs"] >= count_macs(model.module, x[:1])


def test_ort_mixed_auto_searches_the_rewritten_graph(dcgan_tiny, tmp_path):
    """With an unreachable target auto keeps ops float; the ops it names are nodes of the
    rewritten graph (no ConvTranspose among them), and keep_nodes takes those names."""
    ctx = _context(dcgan_tiny, tmp_path, {"ort-int8-mixed": {"target_psnr_db": 150.0, "max_steps": 2}})
    mixed = CONVERTERS.get("ort-int8-mixed").convert(ctx)
    q = mixed.quantization
    assert q["search"]["met_target"] is False and q["search"]["steps"] >= 1
    assert "ConvTranspose" not in {k["op_type"] for k in q["kept_float"]}
    import onnx

    convs = [n.name for n in onnx.load(str(mixed.path)).graph.node if n.op_type == "Conv"]
    named = CONVERTERS.get("ort-int8-mixed").convert(
        _context(dcgan_tiny, tmp_path / "named", {"ort-int8-mixed": {"auto": False, "keep_nodes": convs[-1:]}}))
    assert [k["name"] for k in named.quantization["kept_float"]] == convs[-1:]
    assert 0 < named.quantization["int8_mac_fraction"] < 1


def _litert_outputs(path, x) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    got = []
    for i in range(len(x)):
        interp.set_tensor(inp["index"], x[i: i + 1].reshape(inp["shape"]))  # a 1×1 latent: NCHW = NHWC order
        interp.invoke()
        got.append(interp.get_tensor(out["index"]).copy())
    return np.concatenate(got)


def test_tflite_mixed_with_nothing_float_is_tflite_int8(dcgan_tiny, tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("onnx2tf")
    pytest.importorskip("ai_edge_litert")
    model, onnx_path, x = dcgan_tiny
    ctx = _context(dcgan_tiny, tmp_path, {"tflite-int8-mixed": {"auto": False}})  # one onnx2tf run for both
    plain = CONVERTERS.get("tflite-int8").convert(ctx)
    mixed = CONVERTERS.get("tflite-int8-mixed").convert(ctx)
    q = mixed.quantization
    assert q["kept_float"] == [] and mixed.rewrites == plain.rewrites
    assert any("ConvTranspose" in str(r["rewrite"]) for r in mixed.rewrites), mixed.rewrites
    # the same saved_model, calibration and per-channel setting through TF's debugger: the same
    # int8 model (measured: bit-identical outputs on LiteRT)
    np.testing.assert_array_equal(_litert_outputs(mixed.path, x[16:]), _litert_outputs(plain.path, x[16:]))
    from edgegan.converters.tflite_worker import op_summary

    ops = op_summary(str(mixed.path))["op_counts"]
    assert ops == op_summary(str(plain.path))["op_counts"]
    # only the 1×1-latent layer stays a TRANSPOSE_CONV (TFLite runs it in int8); the stride-2 ones are phase convs
    assert ops.get("TRANSPOSE_CONV") == 1 and ops.get("DEPTH_TO_SPACE") == 3, ops
    assert q["int8_mac_fraction"] >= 0.999 and q["ops_left_float"] == [], q["ops_left_float"]
    # XNNPACK partitions read off the real interpreter: the ReLUs after the interleaves are fused
    # into the convs (before: RELU x3 outside, 4 partitions). At width 2 the latent layer's RELU
    # stays outside (dcgan-digits, width 32: 1 partition, benchmarks/int8_wins.py)
    part = {k: q[k] for k in ("xnnpack_partitions", "ops_outside_xnnpack")}
    assert part == {k: plain.quantization[k] for k in part} and part["xnnpack_partitions"] <= 2, part
    assert part["ops_outside_xnnpack"] in ([], ["RELU x1"]), part
