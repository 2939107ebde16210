"""ort-int8-mixed on a real ONNX Runtime quantizer: ops kept float by type, by name, and by the
auto search, checked against the quantized graph itself and against independent measurements."""
from __future__ import annotations

import os

import numpy as np
import pytest

from edgegan.converters.base import CONVERTERS, ConvertContext, ConvertOptions
from edgegan.errors import ConfigError


@pytest.fixture(scope="module")
def resnet_tiny(tmp_path_factory):
    from edgegan.api import load_model
    from edgegan.export.onnx import export_onnx

    tmp = tmp_path_factory.mktemp("mixed")
    model = load_model("resnet-tiny")
    x = np.random.default_rng(1).uniform(-1, 1, (16, *model.input_spec.shape)).astype(np.float32)
    export_onnx(model.module, x[:4], tmp / "model.onnx")
    return model, tmp / "model.onnx", x


def _convert(resnet_tiny, tmp_path, **mixed):
    model, onnx_path, x = resnet_tiny
    ctx = ConvertContext(module=model.module, onnx_path=onnx_path, calibration=x, input_shape=list(x.shape[1:]),
                         workdir=tmp_path, out_dir=tmp_path,
                         options=ConvertOptions(formats={"ort-int8-mixed": mixed}))
    return CONVERTERS.get("ort-int8-mixed").convert(ctx)


def _float_weights(path, op_type: str) -> dict[str, bool]:
    """node name -> whether its weight input is a float initializer (not a DequantizeLinear output)."""
    import onnx

    graph = onnx.load(str(path)).graph
    inits = {i.name for i in graph.initializer}
    return {n.name: n.input[1] in inits for n in graph.node if n.op_type == op_type}


def _psnr_vs_float(float_path, quant_path, x) -> float:
    import onnxruntime as ort

    from edgegan.metrics.paired import psnr_overall

    def run(p):
        s = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        return np.concatenate([s.run(None, {s.get_inputs()[0].name: x[i: i + 1]})[0] for i in range(len(x))])

    return psnr_overall(run(float_path), run(quant_path), 2.0)


def test_is_registered_but_not_a_default_format():
    from edgegan.converters import default_formats

    assert CONVERTERS.get("ort-int8-mixed").Options is not None
    assert "ort-int8-mixed" not in default_formats()
    with pytest.raises(ConfigError, match="target_psnr_db"):
        ConvertOptions(formats={"ort-int8-mixed": {"target_psnr_db": -1}})


def test_both_ort_int8_formats_take_and_check_the_same_integer_types():
    import dataclasses

    fields = {f: {x.name for x in dataclasses.fields(CONVERTERS.get(f).Options)} for f in ("ort-int8", "ort-int8-mixed")}
    assert {"activation_type", "weight_type", "reduce_range"} <= fields["ort-int8"] & fields["ort-int8-mixed"]
    opts = ConvertOptions(formats={"ort-int8-mixed": {"activation_type": "int8", "reduce_range": True}})
    mixed = opts.for_format("ort-int8-mixed")
    assert (mixed.activation_type, mixed.reduce_range, mixed.auto) == ("int8", True, True)
    for fmt, cls in (("ort-int8", "OrtInt8Options"), ("ort-int8-mixed", "OrtInt8MixedOptions")):
        with pytest.raises(ConfigError, match=f"{cls}.weight_type must be 'int8' or 'uint8'"):
            ConvertOptions(formats={fmt: {"weight_type": "int4"}})


def test_keep_float_by_op_type_and_by_name(resnet_tiny, tmp_path):
    by_type = _convert(resnet_tiny, tmp_path, keep_op_types=["Conv"], auto=False)
    convs = _float_weights(by_type.path, "Conv")
    assert convs and all(convs.values())
    # the sub-pixel rewrite (as ort-int8 quantizes it) made every ConvTranspose a Conv
    assert not _float_weights(by_type.path, "ConvTranspose")
    q = by_type.quantization
    assert sorted(k["name"] for k in q["kept_float"]) == sorted(convs)
    assert {k["why"] for k in q["kept_float"]} == {"op type Conv"} and q["search"]["met_target"] is None
    assert q["int8_mac_fraction"] == 0.0  # every MAC op is a Conv, all kept float

    victim = sorted(convs)[0]
    by_name = _convert(resnet_tiny, tmp_path, keep_nodes=[victim], auto=False)
    after = _float_weights(by_name.path, "Conv")
    assert after[victim] and not any(v for k, v in after.items() if k != victim)
    assert by_name.quantization["kept_float"] == [
        {"name": victim, "op_type": "Conv", "macs": by_name.quantization["kept_float"][0]["macs"], "why": "named"}]
    with pytest.raises(ConfigError, match="keep_nodes names no node"):
        _convert(resnet_tiny, tmp_path, keep_nodes=["no_such_node"], auto=False)


def test_auto_meets_a_target_the_plain_int8_misses(resnet_tiny, tmp_path):
    from edgegan.models.stats import count_macs

    model, onnx_path, x = resnet_tiny
    (tmp_path / "plain").mkdir()
    # the graph as exported (no sub-pixel phase convs, no zero channels), so torch counts its MACs
    as_exported = {"subpixel": False, "widen_convs": False}
    plain = _convert(resnet_tiny, tmp_path / "plain", auto=False, **as_exported)
    baseline = _psnr_vs_float(onnx_path, plain.path, x[:8])
    target = baseline + 1.5
    mixed = _convert(resnet_tiny, tmp_path, target_psnr_db=target, max_steps=12, **as_exported)
    q = mixed.quantization
    assert q["search"]["met_target"] is True and q["kept_float"], (baseline, q["search"])
    assert _psnr_vs_float(onnx_path, mixed.path, x[:8]) >= target - 0.01  # re-measured, not trusted
    assert all(k["why"].startswith("auto") for k in q["kept_float"])
    total = count_macs(model.module, x[:1])  # torch's own count of the same model
    assert q["total_macs"] == total
    float_conv_macs = sum(k["macs"] for k in q["kept_float"] if k["op_type"] in ("Conv", "ConvTranspose"))
    assert 0 < q["int8_mac_fraction"] <= 1 - float_conv_macs / total + 1e-4


def test_leaving_a_tensor_float_is_exact_in_float_terms(resnet_tiny, tmp_path):
    """Bypassing a tensor's Q/DQ removes exactly that tensor's rounding (and keeps the Relu the
    quantizer folded into it): with every activation bypassed and the conv weights float, the
    QDQ model computes the float model again."""
    import onnx

    from edgegan.quantdebug.mixed import bypass_tensors, int8_mac_nodes

    model, onnx_path, x = resnet_tiny
    # int8_pad (run after any search) moves Pads between Q and DQ, which the search never sees
    plain = _convert(resnet_tiny, tmp_path, keep_op_types=["Conv", "ConvTranspose"], auto=False, int8_pad=False)
    qdq = onnx.load(str(plain.path))
    graph_out = qdq.graph.output[0].name
    quantized = sorted({n.input[0] for n in qdq.graph.node if n.op_type == "QuantizeLinear"} - {graph_out})
    free = bypass_tensors(qdq, [*quantized, graph_out])
    inits = {i.name for i in free.graph.initializer}
    assert not [n for n in free.graph.node if n.op_type == "QuantizeLinear"]
    assert all(n.input[0] in inits for n in free.graph.node if n.op_type == "DequantizeLinear")
    assert int8_mac_nodes(free) == set() and free.graph.output[0].name == graph_out
    onnx.save(free, str(tmp_path / "free.onnx"))
    free_psnr, plain_psnr = _psnr_vs_float(onnx_path, tmp_path / "free.onnx", x[:4]), _psnr_vs_float(onnx_path, plain.path, x[:4])
    assert free_psnr > 100 and plain_psnr < 60, (free_psnr, plain_psnr)  # folded Relus kept: float again


def test_ort_pre_processing_runs_once_for_both_ort_int8_formats(resnet_tiny, tmp_path):
    """ort-int8 (quantizing the exported graph) and ort-int8-mixed in one export share ORT's
    pre-processed graph: the file is written once and both quantize from it."""
    model, onnx_path, x = resnet_tiny
    ctx = ConvertContext(module=model.module, onnx_path=onnx_path, calibration=x, input_shape=list(x.shape[1:]),
                         workdir=tmp_path, out_dir=tmp_path,
                         options=ConvertOptions(formats={"ort-int8": {"subpixel": False},
                                                         "ort-int8-mixed": {"auto": False, "subpixel": False}}))
    plain = CONVERTERS.get("ort-int8").convert(ctx)
    pre = sorted(tmp_path.glob("ort_pre_*.onnx"))
    assert len(pre) == 1 and "without ORT pre-processing" not in (plain.notes or "")
    written = pre[0].stat().st_mtime_ns
    os.utime(pre[0], ns=(written - 10**9, written - 10**9))  # a rewrite of the file would move this
    mixed = CONVERTERS.get("ort-int8-mixed").convert(ctx)
    assert mixed.quantization["preprocessed"] is True
    assert sorted(tmp_path.glob("ort_pre_*.onnx")) == pre and pre[0].stat().st_mtime_ns == written - 10**9


def test_nothing_float_is_ort_int8_on_an_instance_norm_generator(resnet_tiny, tmp_path):
    """The InstanceNorm generator's whole chain (sub-pixel ConvTranspose, norm rewrite, widened
    last conv, then reflect pads moved onto int8 tensors in the quantized file) is the same for
    both ORT formats: same records, same outputs on ORT."""
    import onnxruntime as ort

    from edgegan.export.qdq_pads import REWRITE as INT8_PAD

    model, onnx_path, x = resnet_tiny
    ctx = ConvertContext(module=model.module, onnx_path=onnx_path, calibration=x, input_shape=list(x.shape[1:]),
                         workdir=tmp_path, out_dir=tmp_path, options=ConvertOptions(formats={"ort-int8-mixed": {"auto": False}}))
    plain = CONVERTERS.get("ort-int8").convert(ctx)
    mixed = CONVERTERS.get("ort-int8-mixed").convert(ctx)
    done = [str(r["rewrite"]) for r in mixed.rewrites]
    assert mixed.rewrites == plain.rewrites and mixed.quantization["kept_float"] == []
    assert any("ConvTranspose" in d for d in done) and any(d.startswith(INT8_PAD) for d in done), done
    assert "instance_norm_bias" in done and mixed.quantization["ops_left_float"] == plain.quantization["ops_left_float"]

    def run(p):
        s = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        return np.concatenate([s.run(None, {s.get_inputs()[0].name: x[i: i + 1]})[0] for i in range(8)])

    np.testing.assert_array_equal(run(mixed.path), run(plain.path))
