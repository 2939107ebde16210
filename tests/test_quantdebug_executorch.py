"""The quantization debugger for executorch-int8 on real components: a real PT2E quantization
(XNNPACK quantizer) of a tiny zoo generator, a fault injected into one layer's int8 weights that
must rank first, and a real bundle whose .pte is run by the ExecuTorch runtime through the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("executorch.exir")
pytest.importorskip("torchao")

FAULTY = "conv_transpose2d_1"  # the second layer of dcgan-tiny's generator (not the first, not the last)


@pytest.fixture(scope="module")
def dcgan_tiny():
    from edgegan.api import load_model

    model = load_model("dcgan-tiny")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, *model.input_spec.shape)).astype(np.float32)
    return model.module, x[:16], x[16:]


def break_weight_quantization(gm, conv_name: str, factor: float = 24.0) -> None:
    """Re-quantize one conv's int8 weights in the converted graph with per-channel scales
    ``factor`` x too coarse (about 3-bit weights): that layer's quantization broken on purpose."""
    import torch

    node = next(n for n in gm.graph.nodes if n.name == conv_name)
    dq = node.args[1]
    wq, scale = getattr(gm, dq.args[0].target), getattr(gm, dq.args[1].target)
    shape = [1] * wq.ndim
    shape[dq.args[3]] = -1
    w = wq.float() * scale.reshape(shape)
    coarse = scale * factor
    new_wq = torch.clamp(torch.round(w / coarse.reshape(shape)), dq.args[4], dq.args[5]).to(wq.dtype)
    setattr(gm, dq.args[0].target, new_wq)
    setattr(gm, dq.args[1].target, coarse)


def test_every_requantized_op_is_matched_and_introduced_never_worse_than_total(dcgan_tiny):
    from edgegan.quantdebug.executorch import debug_twin, quantize_twin

    module, cal, x = dcgan_tiny
    report = debug_twin(quantize_twin(module, cal), x)
    # dcgan-tiny: 4 ConvTranspose (+ fused ReLU) and the last Conv, each requantized
    convs = sorted(o.name for o in report.ops)
    assert convs == ["conv2d", "conv_transpose2d", "conv_transpose2d_1", "conv_transpose2d_2", "conv_transpose2d_3"]
    assert report.unmatched == []
    for op in report.ops:
        assert op.introduced_sqnr_db is not None and op.scale and op.scale > 0, op
        assert op.introduced_sqnr_db >= op.sqnr_db - 1.0, op
        assert op.macs > 0 and op.weight_scale_min is not None
    assert [o.op_type for o in sorted(report.ops, key=lambda o: o.order)][:2] == ["conv_transpose2d+relu_"] * 2
    # the first op's inputs are the model's own (float-equal): introduced and total coincide
    first = min(report.ops, key=lambda o: o.order)
    assert first.introduced_sqnr_db == pytest.approx(first.sqnr_db, abs=1e-6)
    assert 15.0 < report.output_psnr_db < 90.0


def test_injected_fault_is_ranked_first(dcgan_tiny):
    from edgegan.quantdebug.executorch import debug_twin, quantize_twin

    module, cal, x = dcgan_tiny
    clean = debug_twin(quantize_twin(module, cal), x)
    assert clean.ranked[0].name != FAULTY  # the fault, not the layer's nature, must put it first
    twin = quantize_twin(module, cal)
    break_weight_quantization(twin.converted, FAULTY)
    broken = debug_twin(twin, x)
    assert broken.ranked[0].name == FAULTY
    before = {o.name: o for o in clean.ops}
    after = {o.name: o for o in broken.ops}
    assert after[FAULTY].introduced_sqnr_db < before[FAULTY].introduced_sqnr_db - 6.0
    # downstream layers inherit the fault (total drops) but do not introduce it (introduced unchanged)
    down = "conv_transpose2d_2"
    assert after[down].sqnr_db < before[down].sqnr_db - 6.0
    assert after[down].introduced_sqnr_db == pytest.approx(before[down].introduced_sqnr_db, abs=1.0)
    assert broken.output_psnr_db < clean.output_psnr_db


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    import edgegan

    root = tmp_path_factory.mktemp("etdbg") / "b"
    bundle = edgegan.export("dcgan-tiny", root, formats=["executorch-int8"], n_inputs=4, calibration=16)
    assert bundle.artifact("executorch-int8").status in ("ok", "degraded")
    return root


def test_cli_on_a_real_bundle_runs_the_pte_and_writes_debug_json(bundle_dir, tmp_path):
    from edgegan.bundle import Bundle
    from edgegan.cli.main import main
    from edgegan.quantdebug.report import DebugReport

    bundle = Bundle.load(bundle_dir)
    out = tmp_path / "dbg"
    assert main(["debug-quant", str(bundle_dir), "--format", "executorch-int8", "--inputs", "4",
                 "--out", str(out)]) == 0
    report = DebugReport.load(out / "debug.json")
    assert (out / "sqnr.png").stat().st_size > 1000
    assert report.format == "executorch-int8" and report.inputs == 4 and len(report.ops) == 5
    assert report.quant_model.endswith(".pte")
    # the rebuilt twin is the .pte's quantization: the .pte run on the same inputs stays close to it
    gap = next(n for n in report.notes if n.startswith("the .pte vs its torch twin"))
    twin_vs_pte = float(gap.split(":")[1].split("dB")[0])
    assert twin_vs_pte > 25.0, gap
    assert json.loads((out / "debug.json").read_text())["backend"].startswith("PT2E")
    assert report.quant_model == str(bundle.artifact_path(bundle.artifact("executorch-int8")))


def test_fp32_and_other_weights_are_refused_with_a_reason(bundle_dir, tmp_path):
    import shutil

    from edgegan.errors import ConfigError
    from edgegan.quantdebug.executorch import debug_executorch_bundle

    with pytest.raises(ConfigError, match="executorch-int8"):
        debug_executorch_bundle(bundle_dir, "executorch-fp32")
    # a bundle whose recorded weights are not the ones the export config rebuilds
    other = tmp_path / "other"
    shutil.copytree(bundle_dir, other)
    manifest = json.loads((other / "bundle.json").read_text())
    manifest["model"]["weights_sha256"] = "0" * 64
    (other / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="other weights"):
        debug_executorch_bundle(other, "executorch-int8")


def _quantized_means(gm) -> list[str]:
    """``mean`` nodes of a converted PT2E graph whose output is requantized."""
    return [n.name for n in gm.graph.nodes if n.op == "call_function" and "mean" in str(n.target)
            and any("quantize_per" in str(u.target) and "dequantize" not in str(u.target) for u in n.users)]


def test_rewritten_norm_stays_float_in_the_shared_pt2e_settings():
    """The converter and the debugger quantize through one function; the rewritten InstanceNorm
    it keeps float must have no requantized statistic (the XNNPACK quantizer's propagation step
    gives a ``mean`` its quantized input's observer unless the annotation is removed)."""
    import torch
    from torch import nn

    from edgegan.converters.executorch_rewrite import KEEP_FLOAT, delegation_rewrite
    from edgegan.quantdebug.executorch import quantize_twin
    from edgegan.quantdebug.pt2e import pt2e_quantize

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.InstanceNorm2d(8, affine=True), nn.ReLU(),
                          nn.Conv2d(8, 3, 3, padding=1)).eval()
    cal = np.random.default_rng(0).standard_normal((8, 3, 12, 12)).astype(np.float32)
    rewritten = delegation_rewrite(model, cal).module
    ep = torch.export.export(rewritten, (torch.from_numpy(cal[:1]),))
    kept = pt2e_quantize(ep.module(), cal, keep_float=KEEP_FLOAT).converted
    quantized = pt2e_quantize(torch.export.export(rewritten, (torch.from_numpy(cal[:1]),)).module(), cal).converted
    assert len(_quantized_means(quantized)) == 2  # without keep_float both statistics are int8
    assert _quantized_means(kept) == []
    # the convs around the norm are still int8 (weights dequantized per channel)
    assert sum("dequantize_per_channel" in str(n.target) for n in kept.graph.nodes) == 2
    # the debugger's replay is the same graph as the converter's
    twin = quantize_twin(rewritten, cal, keep_float=KEEP_FLOAT)
    x = torch.from_numpy(cal[:2])
    with torch.no_grad():
        assert torch.equal(twin.converted(x), kept(x))


def test_replay_takes_the_recorded_rewrite_switches_and_reads_old_bundles_by_name():
    from edgegan.converters.executorch_rewrite import BN_FOLD, DECONV_CROP, DECONV_LINEAR, EQUALIZE, NORM
    from edgegan.quantdebug.executorch import _rewrite_options

    opts = {"equalize": False, "deconvs": False, "crop": False, "phase": False, "latent": True}
    recorded = [{"rewrite": DECONV_LINEAR, "count": 1, "options": opts}, {"rewrite": BN_FOLD, "count": 1, "options": opts}]
    assert _rewrite_options(recorded) == (False, {"latent": True})
    # the switches as recorded, not guessed from a name (a name says sub-pixel, the switches do not)
    assert _rewrite_options([{"rewrite": DECONV_CROP, "options": opts}]) == (False, {"latent": True})
    # booleans only: a file's "yes" or 1 switches nothing on
    assert _rewrite_options([{"rewrite": NORM, "options": {"equalize": "yes", "deconvs": 1}}]) == (False, {})
    # bundles written before the switches were recorded
    old = [{"rewrite": NORM}, {"rewrite": EQUALIZE}, {"rewrite": DECONV_CROP}, {"rewrite": DECONV_LINEAR}]
    assert _rewrite_options(old) == (True, {"deconvs": True, "crop": True, "latent": True})
