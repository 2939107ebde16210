"""The XNNPACK-friendly rewrites (edgegan.export.xnnpack_ops) on a tiny zoo ResNet: float-equal
on real ONNX Runtime sessions, and the TFLite int8 artifacts they make read from the real LiteRT
interpreter (no MIRROR_PAD; tflite-int8-mixed in one XNNPACK partition)."""
from __future__ import annotations

import numpy as np
import pytest

from edgegan.export.xnnpack_ops import MAX_CAT, NORM_REWRITE, PAD_REWRITE, reflect_pads_to_slices, two_pass_instance_norms


def _run(path, x):
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {s.get_inputs()[0].name: x[i:i + 1]})[0] for i in range(len(x))])


def _ops(path):
    import onnx

    return list(onnx.load(str(path)).graph.node)


@pytest.fixture(scope="module")
def resnet_tiny(tmp_path_factory):
    from support_models import exported_zoo_model

    return exported_zoo_model(tmp_path_factory.mktemp("xnnops"), "resnet-tiny", 24, 5)


def test_reflect_pads_become_slices_with_the_same_values(resnet_tiny):
    _, src, x, tmp = resnet_tiny
    pads = [n for n in _ops(src) if n.op_type == "Pad"]
    assert len(pads) == 4  # 7x7 in, two in the block, 7x7 out
    n = reflect_pads_to_slices(src, tmp / "pads.onnx")
    ops = _ops(tmp / "pads.onnx")
    assert n == 4 and not any(o.op_type == "Pad" for o in ops)
    assert max(len(o.input) for o in ops if o.op_type == "Concat") <= MAX_CAT  # XNNPACK's concat width
    assert np.array_equal(_run(src, x), _run(tmp / "pads.onnx", x))  # a copy of values: bit-equal


def test_two_pass_norms_match_the_original_within_float_rounding(resnet_tiny):
    _, src, x, tmp = resnet_tiny
    norms = sum(o.op_type == "InstanceNormalization" for o in _ops(src))
    assert two_pass_instance_norms(src, tmp / "norms.onnx") == norms > 0
    ops = [o.op_type for o in _ops(tmp / "norms.onnx")]
    assert "InstanceNormalization" not in ops and ops.count("Sqrt") == norms
    ref, got = _run(src, x), _run(tmp / "norms.onnx", x)
    assert np.abs(ref - got).max() < 1e-5
    # independent expectation: the same formula in numpy on the norm's input, for one norm
    import onnx

    m = onnx.load(str(src))
    first = next(n for n in m.graph.node if n.op_type == "InstanceNormalization")
    del m.graph.output[:]
    m.graph.output.extend([onnx.helper.make_empty_tensor_value_info(t) for t in (first.input[0], first.output[0])])
    onnx.save(m, str(tmp / "probe.onnx"))
    import onnxruntime as ort

    a, y = ort.InferenceSession(str(tmp / "probe.onnx"), providers=["CPUExecutionProvider"]).run(None, {"input": x[:2]})
    d = a - a.mean((2, 3), keepdims=True)
    np.testing.assert_allclose(d / np.sqrt((d * d).mean((2, 3), keepdims=True) + 1e-5), y, atol=1e-4)


def test_a_wrong_reflection_is_not_equal(resnet_tiny, monkeypatch):
    """The equality check above can fail: an edge slice taken one column off changes values."""
    import edgegan.export.xnnpack_ops as xo

    _, src, x, tmp = resnet_tiny
    real = xo._reflect

    def off_by_one(b, t, size, before, after, axis, out):
        return real(b, t, size, before, after, axis, out) if axis == 2 else real(b, t, size - 1, before, after, axis, out)

    monkeypatch.setattr(xo, "_reflect", off_by_one)
    xo.reflect_pads_to_slices(src, tmp / "bad.onnx")
    assert not np.allclose(_run(src, x), _run(tmp / "bad.onnx", x), atol=1e-3)


@pytest.mark.slow
def test_tflite_int8_artifacts_stay_in_xnnpack(resnet_tiny, tmp_path):
    """tflite-int8 has no MIRROR_PAD; tflite-int8-mixed (float_norms) runs as ONE XNNPACK
    partition with every conv int8, read from the real interpreter, and stays close to float."""
    pytest.importorskip("onnx2tf")
    from ai_edge_litert.interpreter import Interpreter

    from edgegan.converters.base import CONVERTERS, ConvertContext, ConvertOptions
    from edgegan.converters.tflite_common import xnnpack_partitions
    from edgegan.metrics.paired import psnr_overall

    model, src, x, _ = resnet_tiny
    ctx = ConvertContext(module=model.module, onnx_path=src, calibration=x[:16], input_shape=list(x.shape[1:]),
                         workdir=tmp_path, out_dir=tmp_path,
                         options=ConvertOptions(formats={"tflite-int8-mixed": {"auto": False}}))
    plain = CONVERTERS.get("tflite-int8").convert(ctx)
    ops = {o["op_name"] for o in Interpreter(model_path=str(plain.path))._get_ops_details()}
    assert "MIRROR_PAD" not in ops and "STRIDED_SLICE" in ops and "CONCATENATION" in ops
    assert any(r["rewrite"] == f"{PAD_REWRITE} x4" for r in plain.rewrites), plain.rewrites
    assert plain.quantization["xnnpack_partitions"] == xnnpack_partitions(plain.path)["xnnpack_partitions"]

    mixed = CONVERTERS.get("tflite-int8-mixed").convert(ctx)
    done = [r["rewrite"] for r in mixed.rewrites]
    assert f"{PAD_REWRITE} x4" in done and any(d.startswith(NORM_REWRITE) for d in done), done
    part = xnnpack_partitions(mixed.path)
    assert part == {"xnnpack_partitions": 1, "ops_outside_xnnpack": []}, part
    assert mixed.quantization["xnnpack_partitions"] == 1 and mixed.quantization["int8_mac_fraction"] == 1.0
    interp = Interpreter(model_path=str(mixed.path))
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    convs = [o for o in interp._get_ops_details() if o["op_name"] == "CONV_2D"]
    assert convs and all(tensors[o["inputs"][0]]["dtype"] == np.int8 for o in convs)
    ref = _run(src, x[16:])
    got = []
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    for i in range(16, len(x)):
        interp.set_tensor(inp["index"], x[i:i + 1].transpose(0, 2, 3, 1).copy())
        interp.invoke()
        got.append(interp.get_tensor(out["index"]).transpose(0, 3, 1, 2))
    assert psnr_overall(ref, np.concatenate(got), 2.0) > 35.0
