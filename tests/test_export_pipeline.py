"""`edgegan export` end to end on tiny models: all formats, manifest, verification, failures."""
from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest

from edgegan.bundle import Bundle, sha256_file
from edgegan.errors import ExportError, InputSpecError, OutputError, UnknownNameError
from edgegan.pipeline import ExportConfig, run_export

ALL = ["onnx", "ort-int8", "tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8"]
if importlib.util.find_spec("executorch") is not None:  # the optional [executorch] extra's formats
    ALL += ["executorch-fp32", "executorch-int8"]


def test_tiny_bundle_has_every_format_verified(tiny_bundle):
    path, manifest = tiny_bundle
    b = Bundle.load(path)
    assert [r.format for r in b.artifact_records()] == ALL
    assert b.verify_hashes() == []
    for rec in b.artifact_records():
        assert rec.status == "ok", (rec.format, rec.reason)  # every format of dcgan-tiny clears 30 dB
        assert (path / rec.path).stat().st_size == rec.bytes
        fid = rec.fidelity
        assert fid["samples"] == 16 and fid["mean_abs_err"] <= fid["max_abs_err"]
        if rec.quantization.get("scheme") != "float32":  # a reduced format really differs from float
            assert 0 < fid["max_abs_err"] < 0.5, (rec.format, fid)
        assert rec.host_latency_ms["median"] > 0 and rec.host_latency_ms["runs"] == 20
        assert rec.tool and rec.tool_version
    recs = {r.format: r for r in b.artifact_records()}
    assert recs["onnx"].fidelity["max_abs_err"] < 1e-4
    assert recs["tflite-fp32"].fidelity["max_abs_err"] < 1e-4
    assert recs["tflite-fp32"].io["input_perm"] == [0, 2, 3, 1]
    assert recs["ort-int8"].size_ratio < 0.5 and recs["tflite-int8"].size_ratio < 0.5
    assert recs["ort-int8"].quantization["per_channel"] is True
    # the three stride-2 transposed convs and the 1x1-input first one were rewritten so ORT runs
    # them in int8; read from ORT's own optimized graph, only the output Tanh stays float
    assert recs["ort-int8"].quantization["ops_left_float"] == ["Tanh x1"]
    ort_rewrites = recs["ort-int8"].rewrites
    assert all(r["max_abs_err_vs_original"] < 1e-4 for r in ort_rewrites[:4])
    assert all("ConvTranspose" in r["rewrite"] for r in ort_rewrites[:4])
    others = sorted(r["rewrite"] for r in ort_rewrites[4:])
    assert len(others) == 4, others
    dcr, channels_last, relu, widen = others
    # the three interleaves in DCR order, each spelled channels-last so ORT's layout transposes cancel
    assert dcr == "DepthToSpace CRD -> DCR (conv channels permuted) x3", others
    assert channels_last.startswith("DepthToSpace as channels-last") and channels_last.endswith("x3"), others
    # the ReLUs after the interleaves moved onto the convs, so the interleaves run on uint8
    assert relu.startswith("Relu moved before DepthToSpace") and relu.endswith("x3"), others
    # dcgan-tiny's two narrow convs (the last phase conv, 2 channels x 4 phases, and the final
    # 1-channel conv) get zero channels up to 16 for ORT's int8 conv
    assert widen.startswith("conv with < 16 output channels widened") and widen.endswith("x2"), others
    assert recs["tflite-int8"].quantization["ops_left_float"] == []  # full integer
    # tflite-int8 converts the same rewrite: TFLite's own op list has no TRANSPOSE_CONV left
    from ai_edge_litert.interpreter import Interpreter

    def tflite_ops(fmt):
        return {o["op_name"] for o in Interpreter(model_path=str(path / recs[fmt].path))._get_ops_details()}

    assert "TRANSPOSE_CONV" in tflite_ops("tflite-fp32") and "TRANSPOSE_CONV" in tflite_ops("tflite-int8")
    assert "DEPTH_TO_SPACE" not in tflite_ops("tflite-fp32")
    # the same stride-2 rewrites; the 1x1-input first layer stays a (fast, int8) TRANSPOSE_CONV there;
    # DCR order, so TFLite gets its DEPTH_TO_SPACE builtin rather than a 6-D TRANSPOSE (which
    # older TFLite runtimes, e.g. tfjs-tflite's, refuse)
    tfl = [r["rewrite"] for r in recs["tflite-int8"].rewrites]
    assert tfl[:-2] == [r["rewrite"] for r in ort_rewrites][1:4] and tfl[-2] == dcr, tfl
    assert tfl[-1] == relu  # the ReLUs moved onto the convs, as for ORT
    # so TFLite fuses them into the convs: no int8 RELU after an interleave's crop (XNNPACK left
    # each such RELU to TFLite's own kernels and split the graph there)
    int8_ops = [o["op_name"] for o in Interpreter(model_path=str(path / recs["tflite-int8"].path))._get_ops_details()]
    assert int8_ops.count("DEPTH_TO_SPACE") == 3, int8_ops
    assert not any(a == "STRIDED_SLICE" and b == "RELU" for a, b in zip(int8_ops, int8_ops[1:])), int8_ops
    assert "DEPTH_TO_SPACE" in tflite_ops("tflite-int8")
    interp = Interpreter(model_path=str(path / recs["tflite-int8"].path))
    details = interp.get_tensor_details()
    assert all(len(details[o["inputs"][0]]["shape"]) <= 4 for o in interp._get_ops_details() if o["op_name"] == "TRANSPOSE")
    assert recs["tflite-int8"].host_latency_ms["ratio_vs_float_same_runtime"] > 0


def test_manifest_records_model_inputs_and_tools(tiny_bundle):
    path, m = tiny_bundle
    assert m["schema_version"] == 2
    assert m["model"]["output_range"] == {"lo": -1.0, "hi": 1.0, "source": "declared", "detail": "zoo entry dcgan-tiny"}
    assert m["output"]["range"] == [-1.0, 1.0]
    assert m["model"]["params"] == 28_351 and m["model"]["macs"] > 0 and len(m["model"]["weights_sha256"]) == 64
    assert m["input"]["shape"] == [100, 1, 1] and m["input"]["kind"] == "latent"
    b = Bundle.load(path)
    x, ref = b.inputs(), b.reference()
    assert x.shape == (16, 100, 1, 1) and ref.shape == (16, 1, 32, 32)
    assert np.load(path / "calibration.npy").shape == (32, 100, 1, 1)
    assert not np.array_equal(np.load(path / "calibration.npy")[:16], x)  # calibration != test inputs
    assert m["tools"]["onnxruntime"] != "not installed" and m["tools"]["torch"].startswith("2.13")
    assert json.loads((path / "bundle.json").read_text())["export_config"]["model"] == "dcgan-tiny"


def test_stored_reference_is_the_float_model(tiny_bundle):
    import torch

    from edgegan.models import load_generator

    path, _ = tiny_bundle
    b = Bundle.load(path)
    m = load_generator("dcgan-tiny")
    with torch.no_grad():
        out = m.module(torch.from_numpy(b.inputs())).numpy()
    np.testing.assert_allclose(out, b.reference(), atol=1e-6)


def test_same_config_gives_same_onnx(tmp_path, tiny_bundle):
    path, m = tiny_bundle
    _, m2 = run_export(ExportConfig(model="dcgan-tiny", out=str(tmp_path / "again"), formats=["onnx"],
                                    n_inputs=16, calibration=32, latency_rounds=1, latency_runs=2))
    assert m2["model"]["weights_sha256"] == m["model"]["weights_sha256"]
    assert m2["artifacts"][0]["sha256"] == m["artifacts"][0]["sha256"]
    assert np.array_equal(np.load(tmp_path / "again" / "inputs.npy"), np.load(path / "inputs.npy"))


def test_one_failing_converter_does_not_stop_the_others(tmp_path):
    """Erf has no TFLite builtin: with onnx2tf's replacement forbidden those rows fail with the
    reason, ONNX + ORT still verify (test_user_architectures covers the automatic replacement)."""
    never = {"replace_ops": "none"}
    path, m = run_export(ExportConfig(model="support_models:erf_generator", input_shape=[8, 1, 1], out=str(tmp_path / "b"),
                                      formats=["ort-int8", "tflite-fp32", "tflite-int8"], n_inputs=8,
                                      calibration=16, latency_rounds=1, latency_runs=2,
                                      convert={"formats": {"tflite-fp32": never, "tflite-int8": never}}))
    rows = {a["format"]: a for a in m["artifacts"]}
    assert rows["onnx"]["status"] == "ok" and rows["ort-int8"]["status"] == "ok"
    for fmt in ("tflite-fp32", "tflite-int8"):
        assert rows[fmt]["status"] == "failed"
        assert "Erf" in rows[fmt]["reason"] and "\n" not in rows[fmt]["reason"]
        assert rows[fmt]["path"] is None
    assert Bundle.load(path).verify_hashes() == []


@pytest.mark.parametrize("name,formats", [("resnet-tiny", ["ort-int8", "tflite-fp32"]), ("unet-tiny", ["ort-int8"])])
def test_image_to_image_tiny_models_export(tmp_path, name, formats):
    """3-channel image inputs: onnx2tf must not try to download its sample images (no network)."""
    _, m = run_export(ExportConfig(model=name, out=str(tmp_path / "b"), formats=formats, n_inputs=4,
                                   calibration=8, latency_rounds=1, latency_runs=2))
    rows = {a["format"]: a for a in m["artifacts"]}
    assert all(a["status"] != "failed" for a in rows.values()), {f: a["reason"] for f, a in rows.items()}
    if "tflite-fp32" in rows:
        assert rows["tflite-fp32"]["fidelity"]["max_abs_err"] < 1e-4
    assert rows["onnx"]["fidelity"]["max_abs_err"] < 1e-4
    assert rows["ort-int8"]["status"] in ("ok", "degraded") and math.isfinite(rows["ort-int8"]["fidelity"]["psnr_db"])
    assert m["input"]["kind"] == "image"
    left = {e.split(" x")[0] for e in rows["ort-int8"]["quantization"]["ops_left_float"]}
    assert "ConvTranspose" not in left and "Pad" not in left, left  # up-convs rewritten, pads on int8


def test_unknown_format_fails_before_writing(tmp_path):
    with pytest.raises(UnknownNameError, match="unknown format 'tflite-int4'"):
        run_export(ExportConfig(model="dcgan-tiny", out=str(tmp_path / "b"), formats=["tflite-int4"]))
    assert not (tmp_path / "b").exists()


def test_wrong_input_shape_file(tmp_path):
    bad = tmp_path / "x.npy"
    np.save(bad, np.zeros((4, 64), np.float32))
    with pytest.raises(InputSpecError, match=r"shape \[4, 64\] but the model takes \[N, 100, 1, 1\]"):
        run_export(ExportConfig(model="dcgan-tiny", out=str(tmp_path / "b"), inputs_file=str(bad)))
    assert not (tmp_path / "b").exists()


def test_wrong_input_shape_for_user_model(tmp_path):
    with pytest.raises(InputSpecError, match="rejects inputs of shape"):
        run_export(ExportConfig(model="support_models:erf_generator", input_shape=[3, 1, 1], out=str(tmp_path / "b")))
    assert not (tmp_path / "b").exists()


def test_unexportable_model_leaves_no_bundle(tmp_path):
    with pytest.raises(ExportError, match="every exporter") as e:
        run_export(ExportConfig(model="support_models:unexportable", input_shape=[4, 1, 1], out=str(tmp_path / "b"),
                                formats=["onnx"]))
    assert "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_disk_full_during_export(small_tmpfs):
    mnt = small_tmpfs(96)
    with pytest.raises(OutputError, match="disk full"):
        run_export(ExportConfig(model="dcgan-tiny", out=str(mnt / "b"), formats=["onnx"]))
    assert list(mnt.iterdir()) == []


def test_verification_catches_a_broken_converter_output(tmp_path):
    """onnx2tf's NCHW->NHWC heuristics mis-handle tensors whose channel count equals their
    spatial size ([1, 8, 8, 8] here): the TFLite file is written but cannot run. Verification
    must turn that into a failed row instead of shipping it."""
    _, m = run_export(ExportConfig(model="resnet", model_config={"ngf": 4, "n_blocks": 1, "image_size": 32},
                                   out=str(tmp_path / "b"), formats=["tflite-fp32"], n_inputs=2, calibration=4,
                                   latency_rounds=1, latency_runs=2))
    row = {a["format"]: a for a in m["artifacts"]}["tflite-fp32"]
    assert row["status"] == "failed" and row["reason"].startswith("host run failed")
