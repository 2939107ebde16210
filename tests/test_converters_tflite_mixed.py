"""tflite-int8-mixed and the TFLite debugger on a real onnx2tf saved_model, TF's quantization
debugger and the LiteRT interpreter (one small InstanceNorm generator-like model)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("onnx2tf")
pytest.importorskip("ai_edge_litert")

from edgegan.converters.base import CONVERTERS, ConvertContext, ConvertOptions  # noqa: E402

NORM_OPS = ["MEAN", "SQUARED_DIFFERENCE", "RSQRT", "SUB", "MUL", "ADD"]


@pytest.fixture(scope="module")
def norm_model(tmp_path_factory):
    """Conv -> InstanceNorm -> ReLU -> Conv -> Tanh, exported, with its saved_model made once."""
    import torch
    from torch import nn

    from edgegan.converters.tflite_common import saved_model
    from edgegan.export.onnx import export_onnx

    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.InstanceNorm2d(8, affine=True), nn.ReLU(),
                           nn.Conv2d(8, 3, 3, padding=1), nn.Tanh()).eval()
    with torch.no_grad():  # an uneven channel scale, as trained generators have: the norm's int8 hurts
        module[0].weight.mul_(torch.linspace(0.05, 3.0, 8).view(8, 1, 1, 1))
    tmp = tmp_path_factory.mktemp("tflmixed")
    x = np.random.default_rng(0).uniform(-1, 1, (24, 3, 16, 16)).astype(np.float32)
    export_onnx(module, x[:4], tmp / "model.onnx")
    cache: dict = {}

    def context(workdir, **mixed) -> ConvertContext:
        workdir.mkdir(exist_ok=True)
        ctx = ConvertContext(module=module, onnx_path=tmp / "model.onnx", calibration=x[:16], input_shape=[3, 16, 16],
                             workdir=workdir, out_dir=workdir, options=ConvertOptions(formats={"tflite-int8-mixed": mixed}),
                             cache=cache)
        return ctx

    saved_model(context(tmp / "sm"))
    return module, tmp / "model.onnx", x, context


def _psnr_vs_onnx(onnx_path, tflite_path, x) -> float:
    """The TFLite model's output (NHWC) against onnxruntime's float output, computed here."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    from edgegan.metrics.paired import psnr_overall

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ref = np.concatenate([sess.run(None, {sess.get_inputs()[0].name: x[i: i + 1]})[0] for i in range(len(x))])
    interp = Interpreter(model_path=str(tflite_path))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    got = []
    for i in range(len(x)):
        interp.set_tensor(inp["index"], x[i: i + 1].transpose(0, 2, 3, 1).copy())
        interp.invoke()
        got.append(interp.get_tensor(out["index"]).transpose(0, 3, 1, 2))
    return psnr_overall(ref, np.concatenate(got), 2.0)


def test_norm_ops_kept_float_by_type(norm_model, tmp_path):
    from edgegan.models.stats import count_macs

    module, onnx_path, x, context = norm_model
    res = CONVERTERS.get("tflite-int8-mixed").convert(context(tmp_path, keep_op_types=NORM_OPS, auto=False,
                                                               float_norms=False))  # as onnx2tf decomposes it
    q = res.quantization
    left = {entry.split(" x")[0] for entry in q["ops_left_float"]}
    assert left and left <= set(NORM_OPS) and "CONV_2D" not in left, q["ops_left_float"]
    assert q["int8_mac_fraction"] == 1.0 and q["total_macs"] == count_macs(module, x[:1])
    assert q["search"]["met_target"] is None and {k["why"] for k in q["kept_float"]} == {f"op type {o}" for o in NORM_OPS}
    assert _psnr_vs_onnx(onnx_path, res.path, x[16:]) > 20


def test_auto_reaches_a_target_plain_int8_misses(norm_model, tmp_path):
    from edgegan.converters.tflite_common import saved_model
    from edgegan.quantdebug.tflite import report_from_worker, run_tflite_debug

    module, onnx_path, x, context = norm_model
    ctx = context(tmp_path)  # saved_model(ctx): the onnx2tf output the fixture cached
    plain = run_tflite_debug(saved_model(ctx), x[:16], x[:8], tmp_path, tag="plain", out=tmp_path / "p.tflite")
    table = report_from_worker(plain, "tflite-int8", "f", "q", 8)
    assert table.ops and all(op.introduced_sqnr_db is not None for op in table.ops)
    assert sum(op.sqnr_db is not None for op in table.ops) >= len(table.ops) // 2  # totals matched by tensor name
    target = plain["output_psnr_db"] + 1.5
    res = CONVERTERS.get("tflite-int8-mixed").convert(context(tmp_path / "m", target_psnr_db=target, float_norms=False))
    q = res.quantization
    assert q["search"]["met_target"] is True and q["kept_float"], q["search"]
    assert all(k["why"].startswith("auto") for k in q["kept_float"])
    # re-measured independently on the inputs auto saw, against onnxruntime's float model
    assert _psnr_vs_onnx(onnx_path, res.path, x[:8]) >= target - 0.5
    assert _psnr_vs_onnx(onnx_path, tmp_path / "p.tflite", x[:8]) < target - 1.0
