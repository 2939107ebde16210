"""The model's output range sets every PSNR's peak (issue 18, item 9): declared, inferred from the
final activation, or measured; recorded in bundle.json; older bundles load as "assumed" [-1, 1]."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from edgegan.errors import ConfigError
from edgegan.models.output_range import final_activation_range
from edgegan.output_range import parse_range


class SigmoidHead(nn.Module):
    """A [0, 1]-output generator (a super-resolution / mask style head)."""

    def __init__(self, affine: bool = False) -> None:
        super().__init__()
        self.affine = affine
        self.fc = nn.Linear(16, 3 * 4 * 8 * 8)
        self.conv = nn.Conv2d(12, 12, 3, padding=1)

    def forward(self, z):
        h = self.conv(self.fc(z).view(-1, 12, 8, 8))
        if self.affine:  # (tanh + 1) / 4: outputs in [0, 0.5], which no final op states
            return (torch.tanh(h) + 1) / 4
        return nn.functional.pixel_shuffle(torch.sigmoid(h), 2)


def _model(affine: bool = False) -> nn.Module:
    torch.manual_seed(0)
    return SigmoidHead(affine).eval()


def _psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """Independent of edgegan: PSNR over all pixels."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(peak ** 2 / mse)


def _ort_outputs(path, inputs):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: inputs[i:i + 1]})[0] for i in range(len(inputs))])


def _export(tmp_path, module, **options):
    import edgegan

    return edgegan.export(module, tmp_path / "b", formats=["onnx", "ort-int8"], input_shape=[16],
                          input_kind="latent", n_inputs=8, calibration=16, latency_rounds=1, latency_runs=2, **options)


def test_final_activation_is_read_through_reshapes():
    x = np.random.default_rng(0).standard_normal((2, 16), dtype=np.float32)
    assert final_activation_range(_model(), x) == (0.0, 1.0, "sigmoid")  # sigmoid -> pixel_shuffle
    assert final_activation_range(_model(affine=True), x) is None       # an affine after tanh: unknown
    assert final_activation_range(nn.Sequential(nn.Linear(16, 4), nn.Tanh()), x)[:2] == (-1.0, 1.0)
    assert final_activation_range(nn.Sequential(nn.Linear(16, 4), nn.Hardtanh(0.0, 255.0)), x)[:2] == (0.0, 255.0)
    assert parse_range("0,1") == (0.0, 1.0)
    for bad in ("1,0", "0", "a,b", "0,inf"):
        with pytest.raises(ConfigError, match="--output-range"):
            parse_range(bad)


def test_zero_one_model_psnr_uses_peak_one_and_is_recorded(tmp_path):
    from edgegan.bundle import Bundle
    from edgegan.metrics.compare import compare_samples

    bundle = _export(tmp_path, _model())
    b = Bundle.load(bundle.root)
    m = b.manifest
    assert m.model.output_range == {"lo": 0.0, "hi": 1.0, "source": "inferred", "detail": "final sigmoid"}
    assert m.output["range"] == [0.0, 1.0] and m.output["range_source"] == "inferred"
    rec = m.artifact("ort-int8")
    inputs, ref = b.inputs(), b.reference()
    got = _ort_outputs(b.artifact_path(rec), inputs)
    want = _psnr(got, ref, peak=1.0)
    assert rec.fidelity["psnr_db"] == pytest.approx(want, abs=0.011)
    assert abs(rec.fidelity["psnr_db"] - _psnr(got, ref, peak=2.0)) > 6  # not the old fixed peak

    # edgegan compare: a bundle folder against samples from the same latents gets the same peak
    npz = tmp_path / "int8.npz"
    np.savez(npz, samples=got, latents=inputs)
    result = compare_samples(str(bundle.root), str(npz), features="pixels")
    assert result["paired"]["data_range"] == 1.0 and "model output range [0, 1]" in result["paired"]["data_range_source"]
    assert result["paired"]["psnr_db"] == pytest.approx(want, abs=1e-6)


def test_measured_and_declared_ranges(tmp_path):
    from edgegan.bundle import Bundle

    measured = Bundle.load(_export(tmp_path / "m", _model(affine=True)).root)
    r = measured.manifest.model.output_range
    ref = measured.reference()
    assert r["source"] == "measured" and (r["lo"], r["hi"]) == (float(ref.min()), float(ref.max()))
    assert 0.0 <= r["lo"] < r["hi"] <= 0.5

    declared = Bundle.load(_export(tmp_path / "d", _model(affine=True), output_range=[0, 0.5]).root)
    m = declared.manifest
    assert m.model.output_range == {"lo": 0.0, "hi": 0.5, "source": "declared", "detail": "--output-range"}
    rec = m.artifact("ort-int8")
    got = _ort_outputs(declared.artifact_path(rec), declared.inputs())
    assert rec.fidelity["psnr_db"] == pytest.approx(_psnr(got, declared.reference(), peak=0.5), abs=0.011)


def test_schema_1_bundle_loads_with_assumed_range(tmp_path):
    from edgegan.bundle import Bundle

    bundle = _export(tmp_path, _model())
    mf = bundle.root / "bundle.json"
    data = json.loads(mf.read_text())
    data["schema_version"] = 1
    del data["model"]["output_range"]
    mf.write_text(json.dumps(data))
    r = Bundle.load(bundle.root).manifest.output_range()
    assert (r.lo, r.hi, r.source) == (-1.0, 1.0, "assumed") and r.peak == 2.0


def test_cli_output_range_flag_is_checked(cli, tmp_path):
    r = cli("export", "dcgan-tiny", "--output-range", "1,0", "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "--output-range" in r.stderr and "LO < HI" in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1


def test_debug_quant_output_psnr_uses_the_bundle_peak(tmp_path):
    from edgegan.bundle import Bundle
    from edgegan.quantdebug.bundle import debug_bundle

    bundle = _export(tmp_path, _model())
    report = debug_bundle(bundle.root, "ort-int8", n_inputs=8)
    b = Bundle.load(bundle.root)
    x = b.inputs()[:8]
    fout = _ort_outputs(b.artifact_path(b.manifest.artifact("onnx")), x)
    qout = _ort_outputs(b.artifact_path(b.manifest.artifact("ort-int8")), x)
    assert report.output_psnr_db == pytest.approx(_psnr(qout, fout, peak=1.0), abs=0.05)


def test_mixed_precision_search_measures_with_the_model_peak(tmp_path):
    """ort-int8-mixed searches toward a PSNR target: measured with the same peak as everything else."""
    import edgegan
    from edgegan.bundle import Bundle

    bundle = edgegan.export(_model(), tmp_path / "b", formats=["onnx", "ort-int8-mixed"], input_shape=[16],
                            input_kind="latent", n_inputs=8, calibration=16, latency_rounds=1, latency_runs=2)
    b = Bundle.load(bundle.root)
    rec = b.manifest.artifact("ort-int8-mixed")
    evals = np.load(b.root / "calibration.npy")[:8]
    fout = _ort_outputs(b.artifact_path(b.manifest.artifact("onnx")), evals)
    qout = _ort_outputs(b.artifact_path(rec), evals)
    assert rec.quantization["search"]["psnr_db_on_calibration"] == pytest.approx(_psnr(qout, fout, peak=1.0), abs=0.02)


def test_device_profile_quality_uses_the_bundle_peak(tmp_path):
    """`edgegan profile` (local target, the real runner) scores pulled samples with the bundle's peak."""
    from edgegan.bundle import Bundle
    from edgegan.devices.profile import ProfileConfig, run_profile

    bundle = _export(tmp_path, _model())
    out, doc = run_profile(ProfileConfig(bundle=str(bundle.root), target="local", out=str(tmp_path / "r"),
                                         formats=["ort-int8"], runs=2, warmup=1, memory=False, power_probe="none",
                                         power_baseline_s=0.0, power_min_s=0.0, compare=False))
    samples = np.load(out / "ort-int8" / "samples.npy")
    ref = Bundle.load(bundle.root).reference()
    row = next(r for r in doc["results"] if r["format"] == "ort-int8")
    assert row["status"] == "ok", row.get("reason")
    assert row["quality"]["psnr_db"] == pytest.approx(_psnr(samples, ref, peak=1.0), abs=0.011)
