"""The quantization-friendly InstanceNorm and Tanh-range rewrites (edgegan.export.norm_rewrite),
run on real ONNX Runtime sessions of a tiny zoo ResNet and a tiny Conv -> Tanh graph."""
from __future__ import annotations

import numpy as np
import pytest

from edgegan.converters.base import ConvertContext, ConvertOptions
from edgegan.converters.ort_int8 import OrtInt8
from edgegan.errors import ConversionError
from edgegan.export.norm_rewrite import check_rewrite, equalize_instance_norms, tanh_input_range


def _run(path, x, names=None):
    """Outputs of the graph at ``path`` on ``x`` (``names``: intermediate tensors made outputs)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    if names:
        del model.graph.output[:]
        model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names)
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = [s.run(names, {s.get_inputs()[0].name: x[i:i + 1]}) for i in range(len(x))]
    return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]


def _psnr(a, b, peak=2.0) -> float:
    return float(10 * np.log10(peak ** 2 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.fixture(scope="module")
def resnet_tiny(tmp_path_factory):
    from support_models import exported_zoo_model

    return exported_zoo_model(tmp_path_factory.mktemp("normrw"), "resnet-tiny", 16, 3)


def _conv_into_norm(path):
    import onnx
    from onnx import numpy_helper

    g = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    convs = [producer[n.input[0]] for n in g.node if n.op_type == "InstanceNormalization"]
    return [(c, inits) for c in convs if c.op_type in ("Conv", "ConvTranspose")]


def test_equalized_graph_matches_the_original_and_equalizes_channel_ranges(resnet_tiny):
    _, src, x, tmp = resnet_tiny
    report = equalize_instance_norms(src, tmp / "eq.onnx", x)
    assert report.rewrites == ["instance_norm_bias", "instance_norm_equalize"]
    pairs = _conv_into_norm(tmp / "eq.onnx")
    assert report.norms == len(pairs) > 0
    # independent of the module's own check: both graphs in fresh sessions
    ref, got = _run(src, x)[0], _run(tmp / "eq.onnx", x)[0]
    assert np.abs(ref - got).max() <= 5e-3 and _psnr(ref, got) > 60
    assert report.max_gain > 1.0
    for conv, inits in pairs:  # biases gone
        assert len(conv.input) < 3 or not conv.input[2] or not inits[conv.input[2]].any()
    # every conv feeding a norm now spans the same range in each output channel (gains below the cap)
    acts = _run(tmp / "eq.onnx", x, [c.output[0] for c, _ in pairs])
    for a in acts:
        rng = np.abs(a).max(axis=(0, 2, 3))
        assert rng.min() >= 0.95 * rng.max() or rng.max() / rng.min() > 60, rng


def test_bias_drop_alone_is_exact(resnet_tiny):
    _, src, x, tmp = resnet_tiny
    report = equalize_instance_norms(src, tmp / "bias.onnx", x, equalize=False)
    assert report.rewrites == ["instance_norm_bias"] and report.max_abs_err < 1e-4


def test_the_check_rejects_a_wrong_rewrite(resnet_tiny):
    import onnx
    from onnx import numpy_helper

    _, src, x, tmp = resnet_tiny
    equalize_instance_norms(src, tmp / "eq2.onnx", x)
    model = onnx.load(str(tmp / "eq2.onnx"))
    conv, _ = _conv_into_norm(tmp / "eq2.onnx")[0]
    init = next(i for i in model.graph.initializer if i.name == conv.input[1])
    w = numpy_helper.to_array(init).copy()
    w[0] *= -1  # IN(-x) = -IN(x): a negative channel gain is not a valid equalization
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(model, str(tmp / "broken.onnx"))
    with pytest.raises(ConversionError, match="changed the float output too much"):
        check_rewrite(src, tmp / "broken.onnx", x)
    ref, got = _run(src, x)[0], _run(tmp / "broken.onnx", x)[0]
    assert _psnr(ref, got, float(ref.max() - ref.min())) < 60  # independent: it is a real fault


def test_the_check_rejects_a_bias_dropped_where_no_norm_follows(resnet_tiny):
    """The rewrite's premise (a norm removes the bias) does not hold for the output conv: dropping
    its bias is the bug a wrong pairing would make, and the PSNR bound catches it."""
    import onnx
    from onnx import numpy_helper

    _, src, x, tmp = resnet_tiny
    model = onnx.load(str(src))
    paired = {c.name for c, _ in _conv_into_norm(src)}
    last = [n for n in model.graph.node if n.op_type == "Conv" and n.name not in paired][-1]
    init = next(i for i in model.graph.initializer if i.name == last.input[2])
    init.CopyFrom(numpy_helper.from_array(np.zeros_like(numpy_helper.to_array(init)), init.name))
    onnx.save(model, str(tmp / "nobias.onnx"))
    with pytest.raises(ConversionError, match="too much"):
        check_rewrite(src, tmp / "nobias.onnx", x)
    # ... while the same drop on convs that feed a norm passes, exactly
    equalize_instance_norms(src, tmp / "bias_only.onnx", x, equalize=False)
    err, psnr, atol = check_rewrite(src, tmp / "bias_only.onnx", x)
    assert err < 1e-4 and psnr > 100 and atol > err


def test_a_graph_without_instance_norm_is_left_alone(tmp_path):
    import torch
    from torch import nn

    from edgegan.export.onnx import export_onnx

    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    x = np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32)
    export_onnx(module, x, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="no Conv -> InstanceNormalization"):
        equalize_instance_norms(tmp_path / "m.onnx", tmp_path / "o.onnx", x)
    del torch


def _ctx(model, onnx_path, x, tmp, **ort):
    return ConvertContext(module=model.module, onnx_path=onnx_path, calibration=x, input_shape=list(x.shape[1:]),
                          workdir=tmp, out_dir=tmp, options=ConvertOptions(formats={"ort-int8": ort}))


def test_ort_int8_records_the_rewrite_and_gains_db(resnet_tiny, tmp_path):
    model, src, x, _ = resnet_tiny
    (tmp_path / "on").mkdir(), (tmp_path / "off").mkdir()
    on = OrtInt8().convert(_ctx(model, src, x, tmp_path / "on"))
    off = OrtInt8().convert(_ctx(model, src, x, tmp_path / "off", norm_rewrite=False))
    names = [r["rewrite"] for r in on.rewrites]
    assert "instance_norm_equalize" in names and "instance_norm_bias" in names
    assert all(r["max_abs_err_vs_original"] <= r["tolerance_abs"] for r in on.rewrites if "tolerance_abs" in r)
    assert not any(r["rewrite"].startswith("instance_norm") for r in off.rewrites)
    ref = _run(src, x)[0]
    db_on, db_off = _psnr(ref, _run(on.path, x)[0]), _psnr(ref, _run(off.path, x)[0])
    assert db_on > db_off + 0.5, (db_on, db_off)


def test_tanh_input_range_narrows_a_saturating_output_layer(tmp_path):
    import torch
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from torch import nn

    from edgegan.quantdebug.onnx_qdq import calibration_reader
    from edgegan.export.onnx import export_onnx

    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(4, 3, 3, padding=1), nn.Tanh()).eval()
    with torch.no_grad():
        module[0].weight.mul_(8.0)  # pre-Tanh values far beyond +-3: most of the int8 range is wasted
    x = np.random.default_rng(0).standard_normal((32, 4, 8, 8)).astype(np.float32)
    export_onnx(module, x[:4], tmp_path / "f.onnx")
    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), calibration_reader(x, "input"),
                    quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    before = _run(tmp_path / "q.onnx", x)[0]
    done = tanh_input_range(tmp_path / "q.onnx")
    assert len(done) == 1
    t = float(np.arctanh(1 - 1 / 256))
    assert done[0]["range_before"][1] > 2 * t and -t - 0.05 <= done[0]["range_after"][0] < done[0]["range_after"][1] <= t + 0.05
    ref, after = _run(tmp_path / "f.onnx", x)[0], _run(tmp_path / "q.onnx", x)[0]
    assert _psnr(ref, after) > _psnr(ref, before) + 2
    assert tanh_input_range(tmp_path / "q.onnx") == []  # already narrow: nothing more to do
