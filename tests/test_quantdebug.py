"""The quantization debugger on real ONNX Runtime sessions: per-op matching, introduced vs
inherited error, the injected-fault ranking, debug.json round trip, the CLI verb."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgegan.quantdebug.report import DebugReport, OpNumerics, sqnr_db


@pytest.fixture(scope="module")
def resnet_tiny_qdq(tmp_path_factory):
    """resnet-tiny (InstanceNorm, reflect pad, ConvTranspose) exported and QDQ-quantized."""
    from edgegan.api import load_model
    from edgegan.export.onnx import export_onnx
    from edgegan.quantdebug.onnx_qdq import quantize_qdq

    tmp = tmp_path_factory.mktemp("qdbg")
    model = load_model("resnet-tiny")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (24, *model.input_spec.shape)).astype(np.float32)
    float_path = tmp / "model.onnx"
    export_onnx(model.module, x[:4], float_path)
    qdq_path = quantize_qdq(float_path, tmp / "model_qdq.onnx", x[:16])
    return float_path, qdq_path, x[16:]


def _conv_weight_dq(model, node_name: str):
    by_output = {o: n for n in model.graph.node for o in n.output}
    node = next(n for n in model.graph.node if n.name == node_name)
    return by_output[node.input[1]]


def break_weight_quantization(src, dst, node_name: str, factor: float = 24.0) -> None:
    """Re-quantize one conv's weights with scales ``factor`` x too coarse (≈ 3-bit weights)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    dq = _conv_weight_dq(model, node_name)
    inits = {i.name: i for i in model.graph.initializer}
    wq, scale = numpy_helper.to_array(inits[dq.input[0]]), numpy_helper.to_array(inits[dq.input[1]])
    axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
    shape = [1] * wq.ndim
    shape[axis] = -1
    zp = numpy_helper.to_array(inits[dq.input[2]]).astype(np.float32).reshape(shape) if len(dq.input) > 2 else 0
    w = (wq.astype(np.float32) - zp) * scale.reshape(shape)
    coarse = scale * factor
    info = np.iinfo(wq.dtype)
    new_wq = np.clip(np.round(w / coarse.reshape(shape) + zp), info.min, info.max).astype(wq.dtype)
    inits[dq.input[0]].CopyFrom(numpy_helper.from_array(new_wq, dq.input[0]))
    inits[dq.input[1]].CopyFrom(numpy_helper.from_array(coarse.astype(scale.dtype), dq.input[1]))
    onnx.save(model, str(dst))


def test_sqnr_reference_values():
    ref = np.array([1.0, -1.0, 1.0, -1.0])
    assert sqnr_db(ref, ref) == 200.0
    assert sqnr_db(ref, ref * 1.1) == pytest.approx(20.0)  # noise 0.01 vs signal 1
    assert sqnr_db(ref, ref + 0.1) == pytest.approx(20.0)


def test_every_quantized_op_is_matched_and_shadowed(resnet_tiny_qdq):
    import onnx

    from edgegan.quantdebug.onnx_qdq import debug_onnx_qdq

    float_path, qdq_path, x = resnet_tiny_qdq
    report = debug_onnx_qdq(float_path, qdq_path, x[:4])
    convs = [n.name for n in onnx.load(str(float_path)).graph.node if n.op_type in ("Conv", "ConvTranspose")]
    assert sorted(o.name for o in report.ops if o.op_type in ("Conv", "ConvTranspose")) == sorted(convs)
    assert report.unmatched == []
    for op in report.ops:
        assert op.introduced_sqnr_db is not None, op.name
        # an op quantized on float inputs is never worse than the chain that also carries upstream noise
        # (small slack: two noise sources can partly cancel)
        assert op.introduced_sqnr_db >= op.sqnr_db - 1.0, op
        assert op.scale and op.scale > 0
    first = min(report.ops, key=lambda o: o.order)
    assert first.introduced_sqnr_db == pytest.approx(first.sqnr_db, abs=0.05)  # nothing to inherit
    conv = next(o for o in report.ops if o.op_type == "Conv")
    assert conv.macs > 0 and conv.weight_scale_min is not None
    assert 5 < report.output_psnr_db < 80


def test_the_injected_fault_is_ranked_first(resnet_tiny_qdq, tmp_path):
    """One conv in the middle gets weight scales 24x too coarse: it must rank first, and the ops
    after it must show the error as inherited, not introduced."""
    import onnx

    from edgegan.quantdebug.onnx_qdq import debug_onnx_qdq

    float_path, qdq_path, x = resnet_tiny_qdq
    convs = [n for n in onnx.load(str(qdq_path)).graph.node if n.op_type == "Conv"]
    victim = convs[len(convs) // 2].name
    broken = tmp_path / "broken.onnx"
    break_weight_quantization(qdq_path, broken, victim)
    healthy = debug_onnx_qdq(float_path, qdq_path, x[:4])
    report = debug_onnx_qdq(float_path, broken, x[:4])
    assert healthy.ranked[0].name != victim  # the fault, not the model, puts it first
    assert report.ranked[0].name == victim, [(o.name, o.introduced_sqnr_db) for o in report.ranked[:3]]
    assert report.output_psnr_db < healthy.output_psnr_db - 3
    bad = next(o for o in report.ops if o.name == victim)
    downstream = [o for o in report.ops if o.order > bad.order and o.op_type == "Conv"]
    assert downstream and all(o.introduced_sqnr_db > bad.introduced_sqnr_db + 6 for o in downstream)
    assert all(o.sqnr_db < o.introduced_sqnr_db for o in downstream)


def test_debug_json_round_trips(tmp_path):
    op = OpNumerics(name="c", op_type="Conv", tensor="t", order=3, sqnr_db=20.0, psnr_db=30.0,
                    introduced_sqnr_db=23.0, scale=0.1, zero_point=128, macs=10)
    rep = DebugReport(format="ort-int8", backend="b", float_model="f", quant_model="q", inputs=2,
                      output_sqnr_db=18.0, output_psnr_db=25.0, ops=[op], notes=["n"])
    back = DebugReport.load(rep.save(tmp_path / "debug.json"))
    assert back == rep and isinstance(back.ops[0], OpNumerics)
    assert op.introduced_noise_fraction == pytest.approx(10 ** (-0.3))
    data = json.loads((tmp_path / "debug.json").read_text())
    data["schema_version"] = 99
    from edgegan.errors import ConfigError

    with pytest.raises(ConfigError, match="schema_version"):
        DebugReport.from_dict(data)


def _export(tmp_path, model: str, export_formats=("onnx", "ort-int8"), **convert):
    from edgegan.pipeline import ExportConfig, run_export

    path, _ = run_export(ExportConfig(model=model, out=str(tmp_path / model), n_inputs=6, calibration=16,
                                      formats=list(export_formats), latency_rounds=1, latency_runs=2, convert=convert))
    return path


def test_cli_debugs_the_artifact_itself(tmp_path, cli):
    """Without a rewrite the artifact is compared with ORT's pre-processed float graph (the graph
    the converter quantized): every quantized tensor matches, nothing is re-quantized."""
    bundle = _export(tmp_path, "resnet-tiny", ("onnx", "ort-int8", "ort-int8-mixed"),
                     formats={"ort-int8": {"subpixel": False}, "ort-int8-mixed": {"subpixel": False}})
    r = cli("debug-quant", str(bundle), "--format", "ort-int8", "--inputs", "3", "--out", str(tmp_path / "dq"))
    assert r.returncode == 0, r.stderr
    assert "ranked by the error they introduce" in r.stdout and "node_conv2d" in r.stdout
    report = DebugReport.load(tmp_path / "dq" / "debug.json")
    assert report.inputs == 3 and report.notes == [] and report.unmatched == []
    assert report.quant_model.endswith("model_ort_int8.onnx")
    # the debugger's own end-to-end figure agrees with export's verification of the artifact
    from edgegan.bundle import Bundle

    recorded = Bundle.load(bundle).artifact("ort-int8").fidelity
    assert report.ops and report.output_psnr_db > 0 and recorded
    from PIL import Image

    assert Image.open(tmp_path / "dq" / "sqnr.png").size == (900, 420)
    mixed = cli("debug-quant", str(bundle), "--format", "ort-int8-mixed", "--inputs", "2", "--json",
                "--out", str(tmp_path / "dqm"))
    assert mixed.returncode == 0, mixed.stderr
    as_json = DebugReport.from_dict(json.loads(mixed.stdout))
    assert as_json == DebugReport.load(tmp_path / "dqm" / "debug.json") and as_json.unmatched == [] and as_json.ops
    bad = cli("debug-quant", str(bundle), "--format", "ort-int8", "--inputs", "0", "--out", str(tmp_path / "dq"))
    assert bad.returncode == 2 and "--inputs must be at least 1" in bad.stderr and "Traceback" not in bad.stderr


def test_a_rewritten_artifact_is_debugged_through_a_requantization(tmp_path):
    """ort-int8 and ort-int8-mixed both quantize the sub-pixel rewrite, which the bundle does not
    hold: both are debugged through a re-quantization of the float ONNX, and say so."""
    from edgegan.quantdebug.bundle import debug_bundle

    bundle = _export(tmp_path, "dcgan-tiny", ("onnx", "ort-int8", "ort-int8-mixed"),
                     formats={"ort-int8-mixed": {"keep_op_types": ["Tanh"], "auto": False}})
    for fmt in ("ort-int8", "ort-int8-mixed"):
        report = debug_bundle(bundle, fmt, n_inputs=2)
        assert "rewritten graph" in report.notes[0] and "re-quantized" in report.quant_model
        assert [o.op_type for o in sorted(report.ops, key=lambda o: o.order)][:4] == ["ConvTranspose"] * 4
    assert "kept float are nodes of the rewritten graph" in report.notes[1]
