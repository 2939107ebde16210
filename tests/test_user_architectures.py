"""Generators shaped like the ones users bring (tests/support_user_archs.py) through edgegan export:
TFLite layout read off the real tensor shapes, onnx2tf op replacements, the batch-1 fallback,
fixed extra inputs, random models and --noise fixed; and, marked slow, every architecture to
every installed format (each row ok, or failed with a one-line reason)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from support_user_archs import ARCHS, build  # noqa: E402

import edgegan  # noqa: E402
from edgegan.errors import ConfigError, ConversionError, ExportError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _latents(n: int, shape) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, *shape)).astype(np.float32)


def _has_tflite() -> bool:
    from edgegan.converters import CONVERTERS

    return CONVERTERS.get("tflite-fp32").missing_dependency() is None


needs_tflite = pytest.mark.skipif(not _has_tflite(), reason="TFLite toolchain not installed")


# ------------------------------------------------------------------ item 1: TFLite I/O layout
def test_layout_is_read_off_the_real_shapes_not_the_rank():
    from edgegan.converters.tflite_common import io_layout

    # a PixelShuffle SR net: NHWC input, output left NCHW by onnx2tf -> no output permutation
    io = io_layout([1, 3, 8, 8], [1, 3, 16, 16], [1, 8, 8, 3], [1, 3, 16, 16])
    assert io["input_perm"] == [0, 2, 3, 1] and "output_perm" not in io and io["output_layout"] == "NCHW"
    # the usual DCGAN case: latent as-is, NHWC image out
    io = io_layout([1, 16, 1, 1], [1, 3, 16, 16], [1, 1, 1, 16], [1, 16, 16, 3])
    assert io["input_perm"] == [0, 2, 3, 1] and io["output_perm"] == [0, 3, 1, 2]
    io = io_layout([1, 16], [1, 3, 16, 16], [1, 16], [1, 16, 16, 3])
    assert "input_perm" not in io and io["output_perm"] == [0, 3, 1, 2]


def test_layout_refuses_a_shape_that_is_neither_layout():
    from edgegan.converters.tflite_common import io_layout

    with pytest.raises(ConversionError, match=r"neither the float model's \[1, 3, 16, 16\]"):
        io_layout([1, 3, 8, 8], [1, 3, 16, 16], [1, 8, 8, 3], [1, 16, 3, 16])


def test_worker_lays_calibration_out_as_the_model_input():
    from edgegan.converters.tflite_worker import calibration_in_model_layout

    cal = _latents(4, [3, 8, 6])
    assert calibration_in_model_layout(cal, [1, 8, 6, 3]).shape == (4, 8, 6, 3)
    assert np.array_equal(calibration_in_model_layout(cal, [1, 3, 8, 6]), cal)


@pytest.mark.slow
@needs_tflite
def test_pixelshuffle_sr_tflite_output_stays_nchw_and_matches(tmp_path):
    _, kw = ARCHS["pixelshuffle-sr"]
    b = edgegan.export(build("pixelshuffle-sr"), tmp_path / "b", ["onnx", "tflite-fp32"], n_inputs=4,
                       calibration=8, **kw)
    rec = {a["format"]: a for a in b.manifest.to_dict()["artifacts"]}["tflite-fp32"]
    assert rec["status"] == "ok", rec.get("reason")
    assert rec["io"]["output_layout"] == "NCHW" and "output_perm" not in rec["io"]
    assert rec["fidelity"]["max_abs_err"] < 1e-4


# ------------------------------------------------------------------ item 2: op replacements, whole messages
def test_replace_ops_option_is_per_format_and_validated():
    from edgegan.converters.base import ConvertOptions

    opts = ConvertOptions(formats={"tflite-fp32": {"replace_ops": "Erf,GeLU"}, "tflite-int8": {"replace_ops": "none"}})
    assert opts.for_format("tflite-fp32").forced_ops() == ["Erf", "GeLU"]
    assert opts.for_format("tflite-int8").forced_ops() == []
    assert opts.for_format("tflite-dynamic").replace_ops == "auto"
    assert opts.for_format("tflite-int8-mixed").replace_ops == "auto"
    with pytest.raises(ConfigError, match="Softmax has no onnx2tf replacement"):
        ConvertOptions(formats={"tflite-fp32": {"replace_ops": "Softmax"}})


def test_replacements_are_the_graph_ops_the_error_names(tmp_path):
    from edgegan.converters.base import ConvertContext, ConvertOptions
    from edgegan.converters.tflite_common import replacements_for
    from edgegan.export.onnx import export_onnx

    x = _latents(4, [16])
    onnx_path = tmp_path / "gelu.onnx"
    export_onnx(build("gelu-attention"), x, onnx_path)
    ctx = ConvertContext(module=None, onnx_path=onnx_path, calibration=x, input_shape=[16], workdir=tmp_path,
                         out_dir=tmp_path, options=ConvertOptions())
    err = "ConverterError: Could not translate MLIR to FlatBuffer: 'tf.Erf' op is neither a custom op nor a flex op"
    assert replacements_for(ctx, err) == ("erf",)
    assert replacements_for(ctx, "Depth of input (8) is not a multiple of input depth of filter (3)") == ()
    ctx2 = ConvertContext(module=None, onnx_path=onnx_path, calibration=x, input_shape=[16], workdir=tmp_path,
                          out_dir=tmp_path, options=ConvertOptions(), cache={"onnx_op_types": {"conv", "relu"}})
    assert replacements_for(ctx2, err) == ()


def test_tool_errors_stay_whole_never_cut_mid_word():
    from edgegan.converters.tool_process import last_error
    from edgegan.converters.tflite_worker import converter_message

    words = " ".join(f"word{i}" for i in range(60))  # ~500 characters: kept whole
    assert last_error(f"noise\nValueError: {words}\n") == f"ValueError: {words}"
    long = " ".join(f"token{i}" for i in range(400))
    cut = last_error(f"ValueError: {long}")
    assert cut.endswith(" [...]") and cut[: -len(" [...]")].split()[-1] in long.split()
    tf_text = ("Could not translate MLIR to FlatBuffer.<unknown>:0: error: loc(callsite(fused[\"Erf:\", \"m/Erf\"] at "
               "fused[\"S:\", \"S\"])): 'tf.Erf' op is neither a custom op nor a flex op <unknown>:0: note: loc(x): "
               "called from <unknown>:0: error: failed while converting: 'main'")
    onnx2tf_out = ("ERROR: The trace log is below.\nTraceback (most recent call last):\n  File \"x.py\", line 1\n"
                   "ValueError: Exception encountered when calling layer \"tf.nn.convolution\" (type TFOpLambda).\n\n"
                   "Depth of input (8) is not a multiple of input depth of filter (3) for '{{node conv}} = Conv2D[T]'\n"
                   "\nCall arguments received by layer\nERROR: onnx_op_name: node_Conv_111\n")
    assert last_error(onnx2tf_out) == ("ValueError: Exception encountered when calling layer \"tf.nn.convolution\" "
                                       "(type TFOpLambda): Depth of input (8) is not a multiple of input depth of "
                                       "filter (3) (ONNX node node_Conv_111)")
    assert converter_message(tf_text) == ("Could not translate MLIR to FlatBuffer: 'tf.Erf' op is neither a custom "
                                          "op nor a flex op")


@pytest.mark.slow
@needs_tflite
def test_gelu_converts_with_the_erf_replacement_and_records_it(tmp_path):
    _, kw = ARCHS["gelu-attention"]
    b = edgegan.export(build("gelu-attention"), tmp_path / "auto", ["onnx", "tflite-fp32"], n_inputs=4,
                       calibration=8, **kw)
    rec = {a["format"]: a for a in b.manifest.to_dict()["artifacts"]}["tflite-fp32"]
    assert rec["status"] == "ok", rec.get("reason")
    assert rec["quantization"]["onnx2tf_replaced_ops"] == ["erf"]
    assert "-rtpo erf" in rec["notes"] and "'tf.Erf' op is neither a custom op nor a flex op" in rec["notes"]
    b = edgegan.export(build("gelu-attention"), tmp_path / "never", ["onnx", "tflite-fp32"], n_inputs=4,
                       calibration=8, convert={"formats": {"tflite-fp32": {"replace_ops": "none"}}}, **kw)
    rec = {a["format"]: a for a in b.manifest.to_dict()["artifacts"]}["tflite-fp32"]
    assert rec["status"] == "failed" and "'tf.Erf' op is neither a custom op nor a flex op" in rec["reason"]
    assert "\n" not in rec["reason"]


def test_unrunnable_int8_op_is_read_off_tflites_message():
    from edgegan.quantdebug.tflite import unrunnable_op

    msg = ("the TFLite quantization debugger failed: RuntimeError: tflite/kernels/div.cc:262 data[i] != zero_point "
           "was not true.Node number 53 (DIV) failed to invoke.")
    assert unrunnable_op(msg) == "DIV"
    assert unrunnable_op("Node number 7 (SQUARED_DIFFERENCE) failed to invoke") == "SQUARED_DIFFERENCE"
    assert unrunnable_op("ConverterError: Could not translate MLIR to FlatBuffer") is None


@pytest.mark.slow  # ~1 min of auto-search conversions
@needs_tflite
def test_mixed_auto_keeps_an_int8_op_float_when_its_kernel_refuses_to_run(tmp_path):
    """gelu-attention's all-int8 model cannot run (TFLite's int8 DIV refuses a divisor that
    quantizes to zero): the auto search keeps DIV float and goes on; the artifact, run here by
    ai-edge-litert directly, matches the float torch model."""
    from ai_edge_litert.interpreter import Interpreter

    _, kw = ARCHS["gelu-attention"]
    model = build("gelu-attention")
    b = edgegan.export(model, tmp_path / "b", ["onnx", "tflite-int8-mixed"], n_inputs=4, calibration=16, **kw)
    rec = {a["format"]: a for a in b.manifest.to_dict()["artifacts"]}["tflite-int8-mixed"]
    assert rec["status"] == "ok", rec.get("reason")
    assert rec["quantization"]["int8_unrunnable_ops"] == ["DIV"]
    assert "DIV" in [k["op_type"] for k in rec["quantization"]["kept_float"]]
    assert "kept DIV float" in rec["notes"]
    x = _latents(4, kw["input_shape"])
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    it = Interpreter(model_path=str(tmp_path / "b" / rec["path"]))
    it.allocate_tensors()
    i_det, o_det = it.get_input_details()[0], it.get_output_details()[0]
    got = []
    for xi in x:
        it.set_tensor(i_det["index"], xi[None].reshape(i_det["shape"]).astype(np.float32))
        it.invoke()
        y = it.get_tensor(o_det["index"])[0]
        got.append(y if y.shape == want.shape[1:] else np.transpose(y, (2, 0, 1)))  # NHWC -> NCHW
    got = np.stack(got)
    mse = float(np.mean((got - want) ** 2))
    peak = float(want.max() - want.min())
    assert 10 * np.log10(peak ** 2 / mse) > 35.0  # int8 with DIV float; an all-garbage model reads < 15


# ------------------------------------------------------------------ item 3: dynamic batch, batch-1 fallback
def test_modulated_conv_falls_back_to_a_static_batch_1_graph(capfd, tmp_path):
    import onnx

    from edgegan.export.onnx import export_onnx, torch_outputs

    m = build("modulated-conv")
    x = _latents(6, [16])
    info = export_onnx(m, x, tmp_path / "m.onnx")
    assert info.batch == "static-1" and "fixed the batch" in info.batch_reason
    dim = onnx.load(str(tmp_path / "m.onnx")).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_value == 1
    assert info.max_abs_err_vs_torch < 1e-4
    out, err = capfd.readouterr()
    assert len(out) + len(err) < 2000, (out + err)[:500]  # no exporter graph dumps, no guard tracebacks
    ref = torch_outputs(m, x)
    single = np.concatenate([torch_outputs(m, x[i : i + 1]) for i in range(len(x))])
    assert np.abs(ref - single).max() < 1e-5  # the float model itself is per-sample


def test_dcgan_keeps_a_dynamic_batch(tmp_path):
    from edgegan.export.onnx import export_onnx

    info = export_onnx(build("tutorial-dcgan"), _latents(4, [16, 1, 1]), tmp_path / "d.onnx")
    assert info.batch == "dynamic" and info.batch_reason is None


def test_export_records_the_batch_and_verifies_at_batch_1(tmp_path):
    _, kw = ARCHS["modulated-conv"]
    b = edgegan.export(build("modulated-conv"), tmp_path / "b", ["onnx", "ort-int8"], n_inputs=4, calibration=8, **kw)
    m = b.manifest.to_dict()
    assert m["export"]["batch"] == "static-1" and m["export"]["batch_reason"]
    arts = {a["format"]: a for a in m["artifacts"]}
    assert arts["onnx"]["status"] == "ok" and arts["onnx"]["io"]["batch"] == 1
    assert arts["ort-int8"]["status"] in ("ok", "degraded"), arts["ort-int8"].get("reason")


# ------------------------------------------------------------------ item 4: fixed extra inputs
def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT / "tests"), "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "edgegan", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_missing_forward_argument_is_a_one_line_usage_error(tmp_path):
    r = _cli("export", "support_user_archs:conditional", "--input-shape", "16,1,1", "--formats", "onnx",
             "--out", str(tmp_path / "b"), cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    lines = [ln for ln in r.stderr.splitlines() if "error" in ln]
    assert len(lines) == 1 and "y is missing" in lines[0] and "--fixed-input" in lines[0], r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "b").exists()


def test_fixed_input_becomes_a_graph_constant_and_is_recorded(tmp_path):
    r = _cli("export", "support_user_archs:conditional", "--input-shape", "16,1,1", "--formats", "onnx",
             "--fixed-input", "y=3", "--inputs", "4", "--calibration", "4", "--out", str(tmp_path / "b"), "--json",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads(r.stdout)
    assert m["export"]["fixed_inputs"]["y"] == {"value": 3, "file": None, "dtype": "int64", "shape": []}
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "b" / m["artifacts"][0]["path"]))
    assert [i.name for i in sess.get_inputs()] == ["input"]
    z = np.load(tmp_path / "b" / "inputs.npy") if (tmp_path / "b" / "inputs.npy").exists() else None
    z = _latents(2, [16, 1, 1]) if z is None else z[:2]
    expect = build("conditional")(torch.from_numpy(z), torch.full((len(z),), 3, dtype=torch.long)).detach().numpy()
    assert np.abs(sess.run(None, {"input": z})[0] - expect).max() < 1e-5
    other = build("conditional")(torch.from_numpy(z), torch.full((len(z),), 4, dtype=torch.long)).detach().numpy()
    assert np.abs(other - expect).max() > 1e-3  # the label matters: the constant is really y=3


def test_fixed_input_from_npy_and_unknown_names(tmp_path):
    from edgegan.export.user_inputs import check_arguments, parse_fixed_input, with_fixed_inputs

    np.save(tmp_path / "y.npy", np.array(7))
    name, value = parse_fixed_input(f"y={tmp_path / 'y.npy'}")
    m = with_fixed_inputs(build("conditional"), {name: value})
    z = torch.from_numpy(_latents(2, [16, 1, 1]))
    expect = build("conditional")(z, torch.full((2,), 7, dtype=torch.long))
    assert torch.allclose(m(z), expect)
    with pytest.raises(ConfigError, match="forward\\(\\) takes no such argument"):
        check_arguments(build("conditional"), {"y": 1, "label": 2})
    with pytest.raises(ConfigError, match="not NAME=VALUE"):
        parse_fixed_input("y")


# ------------------------------------------------------------------ item 8: random models, --noise fixed
def test_random_model_is_refused_with_the_reason(tmp_path):
    _, kw = ARCHS["noise-injection"]
    kw = {k: v for k, v in kw.items() if k != "noise"}
    with pytest.raises(ExportError, match=r"^the model is random: two float runs on the same input differ by .*"
                                          r"--noise fixed"):
        edgegan.export(build("noise-injection"), tmp_path / "b", ["onnx"], n_inputs=4, calibration=4, **kw)
    assert not (tmp_path / "b").exists()


def test_noise_fixed_is_seeded_recorded_and_per_sample(tmp_path):
    from edgegan.export.onnx import torch_outputs
    from edgegan.export.user_inputs import randomness, with_fixed_noise

    x = _latents(6, [16])
    a, rec_a = with_fixed_noise(build("noise-injection"), x, seed=5)
    b, _ = with_fixed_noise(build("noise-injection"), x, seed=5)
    c, _ = with_fixed_noise(build("noise-injection"), x, seed=6)
    assert randomness(a, x) == 0.0
    assert np.array_equal(torch_outputs(a, x), torch_outputs(b, x))
    assert np.abs(torch_outputs(a, x) - torch_outputs(c, x)).max() > 1e-3
    assert rec_a["seed"] == 5 and rec_a["draws"] == [
        {"call": 1, "function": "randn", "shape": [1, 1, 8, 8], "per_sample": True}]
    single = np.concatenate([torch_outputs(a, x[i : i + 1]) for i in range(len(x))])
    assert np.abs(torch_outputs(a, x) - single).max() < 1e-6  # batch-independent: runtimes run batch 1

    _, kw = ARCHS["noise-injection"]
    bundle = edgegan.export(build("noise-injection"), tmp_path / "b", ["onnx", "ort-int8"], n_inputs=4, calibration=8,
                            noise_seed=5, **kw)
    m = bundle.manifest.to_dict()
    assert m["export"]["noise"]["mode"] == "fixed" and m["export"]["noise"]["seed"] == 5
    assert m["export"]["noise"]["random_before"] is True
    assert m["export_config"]["noise"] == "fixed"
    assert all(r["status"] in ("ok", "degraded") for r in m["artifacts"]), m["artifacts"]


# ------------------------------------------------------------------ every architecture, every format
@pytest.mark.slow
@pytest.mark.parametrize("name", list(ARCHS))
def test_architecture_exports_to_every_format(name, tmp_path):
    """Each row ok, or failed with a one-line reason; onnx and ort-int8 ok for all."""
    _, kw = ARCHS[name]
    b = edgegan.export(build(name), tmp_path / name, None, n_inputs=4, calibration=16, **kw)
    arts = {a["format"]: a for a in b.manifest.to_dict()["artifacts"]}
    for fmt, rec in arts.items():
        assert rec["status"] in ("ok", "degraded", "failed"), fmt
        if rec["status"] == "failed":
            assert rec["reason"] and "\n" not in rec["reason"] and "Traceback" not in rec["reason"], (fmt, rec["reason"])
    assert arts["onnx"]["status"] == "ok"
    assert arts["ort-int8"]["status"] in ("ok", "degraded"), arts["ort-int8"].get("reason")
    if "tflite-fp32" in arts and name != "modulated-conv":  # onnx2tf cannot lower a conv with computed weights
        assert arts["tflite-fp32"]["status"] == "ok", arts["tflite-fp32"].get("reason")
