"""ExecuTorch formats: export (torch.export -> XNNPACK, PT2E int8), host runs through the real
runner, the delegation record, the delegation rewrite, bad models and a missing extra.

The dcgan-tiny rows come from the session's ``tiny_bundle`` (every default format, so the
ExecuTorch ones too when the extra is installed): no extra export for most of these tests."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

executorch = pytest.importorskip("executorch.exir", reason="the [executorch] extra is not installed")

from edgegan.converters.executorch_rewrite import DECONV_PHASE  # noqa: E402
from edgegan.runner import edgegan_runner as runner  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(4.0 / mse) if mse else float("inf")


def _rows(manifest: dict) -> dict:
    return {a["format"]: a for a in manifest["artifacts"]}


def _host_outputs(bundle: Path, row: dict, inputs: np.ndarray) -> np.ndarray:
    art = runner.Artifact(str(bundle / row["path"]), row["format"], row["io"], threads=1)
    assert art.runtime == "executorch"
    return art.run_all(inputs)


# ------------------------------------------------------------------- dcgan-tiny, both formats
def test_both_formats_are_in_the_default_export_and_run_on_the_host(tiny_bundle):
    bundle, manifest = tiny_bundle
    rows = _rows(manifest)
    assert rows["executorch-fp32"]["status"] == "ok" and rows["executorch-int8"]["status"] == "ok"
    inputs = np.load(bundle / manifest["inputs"]["file"])
    reference = np.load(bundle / manifest["reference"]["file"])
    fp32 = _host_outputs(bundle, rows["executorch-fp32"], inputs)
    int8 = _host_outputs(bundle, rows["executorch-int8"], inputs)
    assert fp32.shape == int8.shape == reference.shape
    assert np.abs(fp32 - reference).max() < 1e-4
    # int8 is close but not the float model: a converter that skipped quantization reads > 100 dB
    assert 30 < _psnr(int8, reference) < 100
    assert rows["executorch-fp32"]["io"]["batch"] == 1
    assert rows["executorch-int8"]["io"]["exported_with"].startswith("executorch 1.5")


def test_int8_file_is_much_smaller_than_fp32(tiny_bundle):
    _, manifest = tiny_bundle
    rows = _rows(manifest)
    # the fp32 weights are 4 bytes each; int8 1 (+ per-channel scales): tiny models carry fixed overhead
    assert rows["executorch-int8"]["bytes"] < 0.4 * rows["executorch-fp32"]["bytes"]
    assert rows["executorch-int8"]["size_ratio"] == pytest.approx(
        rows["executorch-int8"]["bytes"] / rows["executorch-fp32"]["bytes"], abs=1e-3)


def test_a_dcgan_is_fully_delegated_and_int8_covers_every_mac(tiny_bundle):
    import torch

    from edgegan.models.loading import load_generator

    _, manifest = tiny_bundle
    rows = _rows(manifest)
    module = load_generator("dcgan-tiny").module
    convs = sum(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) for m in module.modules())
    q = rows["executorch-int8"]["quantization"]
    assert q["delegate_calls"] == 1 and q["fully_delegated"] and q["ops_portable"] == {}, q
    # int8: the latent layer (1x1 input) a linear layer, the other transposed convs XNNPACK's
    assert q["ops_delegated"]["aten.convolution"] == convs - 1 and q["ops_delegated"]["aten.linear"] == 1
    assert q["int8_mac_fraction"] == 1.0
    # the record's MAC count agrees with edgegan's own torch-side count of the model
    assert q["macs"] == pytest.approx(manifest["model"]["macs"], rel=0.02)
    # fp32: the first transposed conv (1x1 input) is a linear layer, the three stride-2 ones convs
    # with a 2x2 window per output phase over the input padded by 1: (H+1)^2 positions x 4 phases
    q = rows["executorch-fp32"]["quantization"]
    assert q["delegate_calls"] == 1 and q["fully_delegated"] and q["ops_portable"] == {}, q
    assert q["ops_delegated"]["aten.convolution"] == convs - 1 and q["ops_delegated"]["aten.linear"] == 1
    assert q["int8_mac_fraction"] == 0.0
    sizes = {}
    hooks = [m.register_forward_hook(lambda m, i, o, sizes=sizes: sizes.__setitem__(m, i[0].shape[2]))
             for m in module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    with torch.no_grad():
        module(torch.zeros(1, *load_generator("dcgan-tiny").input_spec.shape))
    for h in hooks:
        h.remove()
    expected = 0
    for m, h in sizes.items():
        cin, cout = m.in_channels, m.out_channels
        if isinstance(m, torch.nn.Conv2d):
            expected += h * h * cin * cout * m.kernel_size[0] ** 2
        elif m.stride[0] == 1:
            expected += cin * cout * m.kernel_size[0] ** 2
        else:
            expected += (h + 1) ** 2 * 4 * cout * cin * 4
    assert q["macs"] == expected
    assert rows["executorch-int8"]["quantization"]["quant_ops_delegated"]["quantized_decomposed.dequantize_per_channel"] == convs


# ------------------------------------------------------------------- the runner's error lines
def test_a_truncated_or_foreign_pte_is_one_line_naming_the_runtime_version(tiny_bundle, tmp_path):
    bundle, manifest = tiny_bundle
    good = (bundle / _rows(manifest)["executorch-fp32"]["path"]).read_bytes()
    cut = tmp_path / "cut.pte"
    cut.write_bytes(good[:3000])
    with pytest.raises(runner.RunnerError) as exc:
        runner.Artifact(str(cut), "executorch-fp32", {"exported_with": "executorch 9.9"}, 1)
    msg = str(exc.value)
    assert "\n" not in msg and "executorch 1.5" in msg
    assert f"truncated (3,000 of the {len(good):,} bytes" in msg and msg.endswith("(the file was written by executorch 9.9)")
    other = tmp_path / "other.pte"
    other.write_bytes(b"\0" * 4096)
    with pytest.raises(runner.RunnerError, match="no ExecuTorch program identifier"):
        runner.Artifact(str(other), "executorch-fp32", {}, 1)


def test_the_requested_thread_count_sizes_xnnpack_threadpool(tiny_bundle):
    from executorch.extension.pybindings import portable_lib

    bundle, manifest = tiny_bundle
    path = str(bundle / _rows(manifest)["executorch-fp32"]["path"])
    for threads in (1, 2):
        runner.ExecutorchModel(path, threads)
        assert portable_lib._threadpool_get_thread_count() == threads


# ------------------------------------------------------------------- the delegation rewrite
def test_delegation_rewrite_is_exact_for_pads_and_close_for_norms():
    import torch
    from torch import nn

    from edgegan.converters.executorch_rewrite import (SliceReflectionPad2d, TwoPassInstanceNorm2d,
                                                       delegation_rewrite)

    x = torch.randn(2, 3, 9, 7)
    for pad in ((1, 1, 1, 1), (3, 3, 3, 3), (0, 2, 4, 1), (6, 6, 6, 6)):  # 6: a concatenation tree (> 5 inputs)
        assert torch.equal(SliceReflectionPad2d(nn.ReflectionPad2d(pad))(x), nn.ReflectionPad2d(pad)(x))
    norm = nn.InstanceNorm2d(3, affine=True)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2)
        norm.bias.uniform_(-1, 1)
    exact = norm.double()(x.double())  # float64: the reference both float32 forms approximate
    norm.float()
    assert torch.allclose(TwoPassInstanceNorm2d(norm)(x).double(), exact, atol=1e-5)
    model = nn.Sequential(nn.ReflectionPad2d(2), nn.Conv2d(3, 4, 3), nn.InstanceNorm2d(4), nn.ReLU()).eval()
    done = delegation_rewrite(model, x.numpy())
    kinds = {type(m) for m in done.module.modules()}
    assert nn.InstanceNorm2d not in kinds and nn.ReflectionPad2d not in kinds
    assert done.max_abs_err < 1e-4 and sum(done.counts.values()) == 2
    assert type(model[0]) is nn.ReflectionPad2d  # the caller's module is left alone
    assert delegation_rewrite(nn.Sequential(nn.Conv2d(3, 3, 1)), x.numpy()) is None


def test_resnet_fp32_lowers_in_one_xnnpack_call_and_matches_torch(tmp_path):
    """The rewrite takes InstanceNorm and reflect pad into XNNPACK (as exported they stay on
    portable kernels, whose InstanceNorm is what cost the fp32 .pte its precision)."""
    import torch

    from edgegan.converters import CONVERTERS
    from edgegan.converters.base import ConvertContext, ConvertOptions
    from edgegan.models.loading import load_generator

    model = load_generator("resnet-tiny")
    x = model.sample_inputs(4, 0)
    ctx = ConvertContext(module=model.module, onnx_path=tmp_path / "unused.onnx", calibration=x,
                         input_shape=list(model.input_spec.shape), workdir=tmp_path, out_dir=tmp_path,
                         options=ConvertOptions())
    res = CONVERTERS.get("executorch-fp32").convert(ctx)
    assert res.quantization["fully_delegated"] and res.quantization["delegate_calls"] == 1
    assert {r["rewrite"] for r in res.rewrites} == {"InstanceNorm2d -> two-pass mean/var",
                                                    "ReflectionPad2d -> slices + cat", DECONV_PHASE}
    with torch.no_grad():
        reference = model.module(torch.from_numpy(x)).numpy()
    out = runner.Artifact(str(res.path), "executorch-fp32", res.io, 1).run_all(x)
    assert np.abs(out - reference).max() < 1e-4


# ------------------------------------------------------------------- bad models, missing extra
def test_a_model_torch_export_cannot_capture_fails_only_the_executorch_rows(tmp_path):
    import torch
    from torch import nn

    import edgegan

    class DataDependent(nn.Module):
        """Picks a branch from a tensor's value: fine for ONNX tracing, not for torch.export."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            return torch.tanh(y) if float(y.mean()) > 0 else -torch.tanh(y)

    b = edgegan.export(DataDependent().eval(), tmp_path / "b", formats=["executorch-fp32", "executorch-int8"],
                       input_shape=[3, 8, 8], input_kind="image", n_inputs=4, calibration=4)
    rows = {a.format: a for a in b.artifact_records()}
    assert rows["onnx"].status == "ok"
    for fmt in ("executorch-fp32", "executorch-int8"):
        assert rows[fmt].status == "failed"
        assert rows[fmt].reason.startswith("torch.export cannot capture the model: ") and "\n" not in rows[fmt].reason


def _hidden(tmp_path: Path, code: str, *argv: str) -> subprocess.CompletedProcess:
    """Run python with ``executorch`` made absent (as if the extra were not installed)."""
    site = tmp_path / "hide"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text("import sys\nsys.modules['executorch'] = None\n")
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "edgegan", *argv]
    return subprocess.run(cmd, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "COLUMNS": "200"},
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_without_the_extra_defaults_skip_it_and_asking_for_it_is_one_line(tmp_path):
    r = _hidden(tmp_path, "import edgegan.converters as c; print(c.default_formats()); print(c.skipped_default_formats())")
    assert r.returncode == 0, r.stderr
    defaults, skipped = r.stdout.splitlines()
    assert "executorch" not in defaults and "onnx" in defaults
    assert "executorch-fp32" in skipped and "edgegan[executorch]" in skipped
    r = _hidden(tmp_path, "from edgegan.cli.export import _note_skipped_defaults; _note_skipped_defaults()")
    assert r.returncode == 0 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("edgegan export: note: executorch-fp32, executorch-int8 skipped: executorch not installed")
    r = _hidden(tmp_path, "", "export", "dcgan-tiny", "--formats", "executorch-int8")
    assert r.returncode == 9, r.stderr[-2000:]
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "executorch-int8: executorch not installed" in r.stderr and "pip install 'edgegan[executorch]'" in r.stderr
    assert not (tmp_path / "bundles").exists()


def test_the_extra_is_pinned_once_and_kept_out_of_all():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pinned = [ln.split("#")[0].strip() for ln in (ROOT / "requirements/executorch.txt").read_text().splitlines()]
    assert extras["executorch"] == [p for p in pinned if p] == ["executorch==1.5.1"]
    assert "executorch" not in extras["all"][0]
    assert "requirements/executorch.txt" in (ROOT / "Makefile").read_text()


def test_resnet_int8_is_rewritten_by_default_and_lowers_in_one_xnnpack_call(tmp_path):
    """executorch-int8's default: the delegation rewrite with its norm kept float, so the whole
    InstanceNorm / reflect-pad generator is one XNNPACK call with every conv in int8."""
    from edgegan.converters import CONVERTERS
    from edgegan.converters.base import ConvertContext, ConvertOptions
    from edgegan.models.loading import load_generator

    model = load_generator("resnet-tiny")
    x = model.sample_inputs(8, 0)
    ctx = ConvertContext(module=model.module, onnx_path=tmp_path / "unused.onnx", calibration=x,
                         input_shape=list(model.input_spec.shape), workdir=tmp_path, out_dir=tmp_path,
                         options=ConvertOptions())
    res = CONVERTERS.get("executorch-int8").convert(ctx)
    q = res.quantization
    assert q["fully_delegated"] and q["delegate_calls"] == 1 and q["ops_portable"] == {}
    assert q["int8_mac_fraction"] == 1.0
    assert {r["rewrite"] for r in res.rewrites} == {"InstanceNorm2d -> two-pass mean/var",
                                                    "ReflectionPad2d -> slices + cat",
                                                    "conv before InstanceNorm -> channels equalized",
                                                    "ConvTranspose2d -> conv + crop + channels-last interleave (sub-pixel)"}
    assert all(r["max_abs_err_vs_original"] < 1e-4 for r in res.rewrites)  # float-equal to the model
    assert "aten.pixel_shuffle" not in q["ops_portable"] and q["ops_delegated"]["aten.convolution"] >= 4
    # fold_relu (default): the ReLUs after the float norms are left to the quantize's clamp
    assert q["relus_folded_into_quantize"] >= 4 and "aten.relu" not in q["ops_delegated"]
    # subpixel_crop (default): the sub-pixel convs pad themselves, no (fp32-only) pad op is left
    assert "aten.constant_pad_nd" not in q["ops_delegated"]
    # subpixel_nhwc (default): each interleave is 3 permutes (to NHWC, phases, back), no pixel_shuffle
    assert q["ops_delegated"]["aten.permute_copy"] == 3 * 2
