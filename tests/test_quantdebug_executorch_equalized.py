"""`edgegan debug-quant --format executorch-int8` on a bundle whose .pte was lowered from the
rewritten AND equalized ResNet (executorch-int8's default for InstanceNorm generators).

The debugger cannot look inside the XNNPACK delegate; it replays the .pte's quantization in torch
(same rewrite, same equalization on the bundle's calibration inputs, same PT2E settings). Checked
against things measured without the debugger: the .pte run directly by the ExecuTorch runtime
(PSNR vs the bundle's float reference, computed here with numpy), the artifact's recorded
fidelity, and the model's own convolutions (every one must have a matched per-op row)."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("executorch.exir")
pytest.importorskip("torchao")

N = 4  # stored inputs: the bundle's, the debugger's and the direct run's


@pytest.fixture(scope="module")
def resnet_bundle(tmp_path_factory):
    import edgegan

    root = tmp_path_factory.mktemp("etdbg_eq") / "b"
    edgegan.export("resnet-tiny", root, formats=["executorch-int8"], n_inputs=N, calibration=16,
                   latency_rounds=1, latency_runs=1)
    return root


@pytest.fixture(scope="module")
def debugged(resnet_bundle, tmp_path_factory):
    from edgegan.cli.main import main
    from edgegan.quantdebug.report import DebugReport

    out = tmp_path_factory.mktemp("etdbg_eq_out") / "dbg"
    assert main(["debug-quant", str(resnet_bundle), "--format", "executorch-int8", "--inputs", str(N),
                 "--out", str(out)]) == 0
    return DebugReport.load(out / "debug.json"), json.loads((out / "debug.json").read_text())


def _direct_pte_psnr(bundle_dir) -> tuple[float, float]:
    """(PSNR of the .pte vs the float reference, the artifact's recorded PSNR): the .pte run by
    executorch.runtime here, one input at a time, PSNR with the output range's peak."""
    import torch
    from executorch.runtime import Runtime

    manifest = json.loads((bundle_dir / "bundle.json").read_text())
    row = next(a for a in manifest["artifacts"] if a["format"] == "executorch-int8")
    x = np.load(bundle_dir / manifest["inputs"]["file"])[:N]
    ref = np.load(bundle_dir / manifest["reference"]["file"])[:N].astype(np.float64)
    method = Runtime.get().load_program(str(bundle_dir / row["path"])).load_method("forward")
    got = np.concatenate([method.execute([torch.from_numpy(np.ascontiguousarray(x[i: i + 1]))])[0].numpy()
                          for i in range(N)]).astype(np.float64)
    rng = manifest["model"]["output_range"]
    lo, hi = rng["lo"], rng["hi"]
    return float(10 * np.log10((hi - lo) ** 2 / np.mean((got - ref) ** 2))), row["fidelity"]["psnr_db"]


def test_bundle_records_the_equalization(resnet_bundle):
    manifest = json.loads((resnet_bundle / "bundle.json").read_text())
    row = next(a for a in manifest["artifacts"] if a["format"] == "executorch-int8")
    assert "conv before InstanceNorm -> channels equalized" in {r["rewrite"] for r in row["rewrites"]}


def test_debugger_output_psnr_is_the_pte_measured_directly(resnet_bundle, debugged):
    report, raw = debugged
    direct, recorded = _direct_pte_psnr(resnet_bundle)
    assert report.inputs == N
    # the debugger's reference is the rewritten float graph (<= 1e-4 from torch): same PSNR to ~0.05 dB
    assert report.output_psnr_db == pytest.approx(direct, abs=0.05)
    assert recorded == pytest.approx(direct, abs=0.05)
    # and its torch replay is the .pte's quantization: the replay's own PSNR vs float agrees with the .pte's
    note = next(n for n in report.notes if n.startswith("the .pte vs its torch twin"))
    twin_psnr = float(note.split("twin vs float")[1].split("dB")[0])
    assert twin_psnr == pytest.approx(direct, abs=0.5), note
    # output by output the replay tracks the .pte: measured 31 dB SQNR with the equalization
    # replayed, 25 dB when the replay skips it (same output PSNR: only this catches it)
    twin_vs_pte = float(note.split(":")[1].split("dB")[0])
    assert twin_vs_pte > 28.0, note
    assert any("channels equalized" in n for n in report.notes)
    assert raw["backend"].startswith("PT2E")


def test_every_convolution_has_a_matched_row(resnet_bundle, debugged):
    import torch
    from torch import nn

    from edgegan.models.loading import load_generator

    from edgegan.converters.executorch_rewrite import DECONV_CROP_NHWC, delegation_rewrite

    report, _ = debugged
    manifest = json.loads((resnet_bundle / "bundle.json").read_text())
    x = np.load(resnet_bundle / manifest["inputs"]["file"])[:1]
    rec = next(a for a in manifest["artifacts"] if a["format"] == "executorch-int8")
    subpixel = any("sub-pixel" in r["rewrite"] for r in rec["rewrites"])
    crop = any(r["rewrite"] == DECONV_CROP_NHWC for r in rec["rewrites"])
    assert subpixel and crop  # the default: the upsampling convT run as sub-pixel convs, cropped, channels-last
    # the convs of the module the .pte was lowered from (equalization changes no shape)
    module = delegation_rewrite(load_generator("resnet-tiny").module, x, deconvs=subpixel, crop=crop, nhwc=crop).module
    convs = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    rows = [o for o in report.ops if o.macs > 0]
    assert report.unmatched == []
    assert len(rows) == len(convs)  # one requantized row per conv, none missing, none doubled
    assert sum(o.op_type.count("conv_transpose2d") for o in rows) == \
        sum(isinstance(m, nn.ConvTranspose2d) for m in convs)
    macs = []  # per conv from its real tensors (hooks on the float module), one sample

    def count(m, i, o):
        k = m.kernel_size[0] * m.kernel_size[1]
        if isinstance(m, nn.ConvTranspose2d):  # every input element meets Cout * k taps
            macs.append(i[0][0].numel() * m.out_channels * k)
        else:
            macs.append(o[0].numel() * m.in_channels // m.groups * k)

    hooks = [m.register_forward_hook(count) for m in convs]
    with torch.no_grad():
        module(torch.from_numpy(x))
    for hk in hooks:
        hk.remove()
    want_macs = sum(macs)
    assert sum(o.macs for o in rows) == want_macs
    for op in rows:
        assert op.introduced_sqnr_db is not None and op.scale and op.scale > 0, op
