"""The TFLite int8 debugger (edgegan.quantdebug.tflite, behind tflite-int8-mixed and
`edgegan debug-quant --format tflite-int8`) lays its inputs out as the converted model's real
input and reads its output layout off the real shape, as conversion does (issue 18, item 1):
a pixel-shuffle super-resolution net, whose TFLite output stays NCHW, through both."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from support_user_archs import ARCHS, build  # noqa: E402

import edgegan  # noqa: E402
from edgegan.errors import ConversionError  # noqa: E402


def test_inputs_follow_the_layout_not_the_rank():
    from edgegan.quantdebug.tflite_worker import in_model_layout

    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    assert np.array_equal(in_model_layout(x, {"input_layout": "NCHW"}), x)  # an input onnx2tf kept NCHW
    assert np.array_equal(in_model_layout(x, {"input_layout": "NHWC"}), x.transpose(0, 2, 3, 1))


def test_worker_reads_the_layout_as_conversion_does():
    """The worker's own copy of the rule (quantdebug may not import converters) agrees with it."""
    from edgegan.converters.tflite_common import layout_of as converter_rule
    from edgegan.quantdebug.tflite_worker import layout_of

    cases = [([1, 3, 8, 8], [1, 8, 8, 3]), ([1, 3, 16, 16], [1, 3, 16, 16]), ([1, 4, 4, 4], [1, 4, 4, 4]),
             ([1, 16, 1, 1], [1, 1, 1, 16])]
    for nchw, actual in cases:
        assert layout_of(nchw, actual, "output") == converter_rule(nchw, actual, "output")
    assert layout_of([1, 16], [1, 16], "input") == "as-is"
    with pytest.raises(ValueError, match="neither"):
        layout_of([1, 3, 16, 16], [1, 16, 3, 16], "output")


def test_a_remade_model_with_another_layout_is_refused():
    from edgegan.quantdebug.tflite import check_io_matches

    check_io_matches({"input_layout": "NHWC", "output_layout": "NCHW"},
                     {"input_layout": "NHWC", "output_layout": "NCHW", "input_perm": [0, 2, 3, 1]}, "tflite-int8")
    with pytest.raises(ConversionError, match=r"takes its output as NHWC but the bundle's artifact as NCHW"):
        check_io_matches({"input_layout": "NHWC", "output_layout": "NHWC"}, {"output_layout": "NCHW"}, "tflite-int8")


@pytest.fixture(scope="module")
def sr_bundle(tmp_path_factory):
    from edgegan.converters import CONVERTERS

    if CONVERTERS.get("tflite-int8-mixed").missing_dependency() is not None:
        pytest.skip("TFLite toolchain not installed")
    _, kw = ARCHS["pixelshuffle-sr"]
    out = tmp_path_factory.mktemp("sr") / "b"
    edgegan.export(build("pixelshuffle-sr"), out, ["onnx", "tflite-int8"], n_inputs=4, calibration=8, **kw)
    return out


def test_int8_converts_a_net_whose_output_stays_nchw(sr_bundle):
    rec = {a["format"]: a for a in json.loads((sr_bundle / "bundle.json").read_text())["artifacts"]}["tflite-int8"]
    assert rec["status"] == "ok", rec.get("reason")
    assert rec["io"]["output_layout"] == "NCHW" and "output_perm" not in rec["io"]
    assert rec["io"]["input_perm"] == [0, 2, 3, 1]
    assert rec["fidelity"]["psnr_db"] > 25, rec["fidelity"]  # against torch, in the float model's layout


@pytest.mark.slow  # the auto search's conversions (~40 s); the layout itself is checked above
def test_mixed_int8_converts_a_net_whose_output_stays_nchw(tmp_path):
    from edgegan.converters import CONVERTERS

    if CONVERTERS.get("tflite-int8-mixed").missing_dependency() is not None:
        pytest.skip("TFLite toolchain not installed")
    _, kw = ARCHS["pixelshuffle-sr"]
    edgegan.export(build("pixelshuffle-sr"), tmp_path / "b", ["onnx", "tflite-int8", "tflite-int8-mixed"], n_inputs=4,
                   calibration=8, **kw)
    arts = {a["format"]: a for a in json.loads((tmp_path / "b" / "bundle.json").read_text())["artifacts"]}
    for fmt in ("tflite-int8", "tflite-int8-mixed"):
        rec = arts[fmt]
        assert rec["status"] == "ok", f"{fmt}: {rec.get('reason')}"
        assert rec["io"]["output_layout"] == "NCHW" and "output_perm" not in rec["io"]
        assert rec["io"]["input_perm"] == [0, 2, 3, 1]
        assert rec["fidelity"]["psnr_db"] > 25, rec["fidelity"]  # against torch, in the float model's layout
    q = arts["tflite-int8-mixed"]["quantization"]
    assert q["int8_mac_fraction"] > 0 and q["search"]["psnr_db_on_calibration"] > 25

    from edgegan.converters.tflite_int8_mixed import debug_tflite_bundle

    mixed = debug_tflite_bundle(tmp_path / "b", "tflite-int8-mixed", n_inputs=2)
    assert mixed.ops and mixed.output_psnr_db > 25


def test_debug_quant_on_a_net_whose_output_stays_nchw(sr_bundle, tmp_path, cli):
    from edgegan.quantdebug.report import DebugReport

    r = cli("debug-quant", str(sr_bundle), "--format", "tflite-int8", "--inputs", "3", "--json",
            "--out", str(tmp_path / "dq"))
    assert r.returncode == 0, r.stderr
    report = DebugReport.from_dict(json.loads(r.stdout))
    assert report.inputs == 3 and report.ops and report.output_psnr_db > 25
    assert any(op.op_type == "CONV_2D" for op in report.ops)
