"""executorch-fp32 / executorch-dynamic's forms of ConvTranspose2d (converters/executorch_rewrite.py):
the phase form (one conv, a tap window per output phase, crops, one interleave) and the linear
form of a stride-1 transposed conv on a 1x1 input, each checked against torch's own transposed
conv, and chosen by delegation_rewrite only where they fit."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from edgegan.converters.executorch_rewrite import (BN_FOLD, DECONV_LINEAR, DECONV_PHASE,  # noqa: E402
                                                   LinearConvTranspose2d, PhaseConvTranspose2d, delegation_rewrite)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("k,s,p,op", [(4, 2, 1, 0), (3, 2, 1, 1), (2, 2, 0, 0), (5, 3, 1, 0), (6, 3, 2, 1),
                                      (4, 4, 0, 0), (5, 2, 2, 1)])
def test_phase_form_equals_the_transposed_conv(k, s, p, op, bias):
    torch.manual_seed(k * 10 + s + p)
    deconv = nn.ConvTranspose2d(5, 3, k, stride=s, padding=p, output_padding=op, bias=bias)
    assert PhaseConvTranspose2d.fits(deconv)
    x = torch.randn(2, 5, 6, 7)
    with torch.no_grad():
        ref = deconv.double()(x.double())
        got = PhaseConvTranspose2d(deconv.float())(x)
    assert got.shape == ref.shape == (2, 3, 6 * s, 7 * s)
    assert (got.double() - ref).abs().max() < 1e-5


def test_phase_form_of_a_dcgan_layer_keeps_the_transposed_convs_mac_count_per_phase():
    """k=4, s=2, p=1: output row 2m takes input rows m-1, m and row 2m+1 rows m, m+1, so each
    phase needs a 2x2 window (the sub-pixel form's one shared window is their 3x3 union): the
    conv holds exactly the transposed kernel's 16 taps per channel pair, no zeros."""
    deconv = nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1, bias=False)
    conv = PhaseConvTranspose2d(deconv).conv
    assert conv.kernel_size == (2, 2) and conv.out_channels == 4 * 6 and conv.padding == (1, 1)
    assert conv.weight.numel() == deconv.weight.numel()
    assert sorted(conv.weight.detach().abs().flatten().tolist()) == sorted(deconv.weight.detach().abs().flatten().tolist())


def test_linear_form_equals_the_transposed_conv_on_1x1_and_falls_back_elsewhere():
    torch.manual_seed(3)
    deconv = nn.ConvTranspose2d(7, 5, 4, bias=True)
    assert LinearConvTranspose2d.fits(deconv)
    lin = LinearConvTranspose2d(deconv)
    with torch.no_grad():
        for size in (1, 3):  # 1x1: the linear layer; 3x3: the transposed conv on the same weights
            x = torch.randn(2, 7, size, size)
            assert (lin(x) - deconv(x)).abs().max() < 1e-5
    assert not LinearConvTranspose2d.fits(nn.ConvTranspose2d(7, 5, 4, padding=1))
    assert not LinearConvTranspose2d.fits(nn.ConvTranspose2d(7, 5, 4, stride=2))


def _dcgan_like(bias: bool = False) -> nn.Module:
    """A DCGAN's layer pattern, its BatchNorms with trained-looking statistics (so folding them
    is not the identity), the second transposed conv with or without a bias."""
    model = nn.Sequential(nn.ConvTranspose2d(8, 6, 4, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
                          nn.ConvTranspose2d(6, 4, 4, 2, 1, bias=bias), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Conv2d(4, 1, 1), nn.Tanh())
    with torch.no_grad():
        for bn in (model[1], model[4]):
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.3, 3.0)
            bn.weight.normal_()
            bn.bias.normal_()
    return model.eval()


def _max_gap(a: nn.Module, b: nn.Module, x: np.ndarray) -> float:
    """max |a(x) - b(x)|, ``a`` (the original) in double precision, ``b`` in float32."""
    import copy

    with torch.no_grad():
        t = torch.from_numpy(x)
        return float((copy.deepcopy(a).double()(t.double()) - b(t).double()).abs().max())


@pytest.mark.parametrize("bias", [False, True])
def test_rewrite_takes_a_dcgans_transposed_convs_and_the_linear_form_only_on_a_1x1_input(bias):
    torch.manual_seed(0)
    model = _dcgan_like(bias)
    x = np.random.default_rng(0).standard_normal((4, 8, 1, 1)).astype(np.float32)
    done = delegation_rewrite(model, x, phase=True)
    assert done.counts == {DECONV_LINEAR: 1, DECONV_PHASE: 1}
    assert isinstance(done.module[0], LinearConvTranspose2d) and isinstance(done.module[3], PhaseConvTranspose2d)
    assert isinstance(done.module[1], nn.BatchNorm2d)  # fp32 / dynamic: not folded (XNNPACK runs it as is)
    assert done.module[0].entry is None  # that BatchNorm separates the linear from the ReLU already
    # against the original in double precision (the rewrite's own check is float32)
    assert _max_gap(model, done.module, x) < 1e-5
    # the same stride-1 layer on a 2x2 input: not a linear layer, left as it is, its BatchNorm too
    x2 = np.random.default_rng(0).standard_normal((4, 8, 2, 2)).astype(np.float32)
    done = delegation_rewrite(model, x2, phase=True)
    assert done.counts == {DECONV_PHASE: 1} and isinstance(done.module[0], nn.ConvTranspose2d)
    assert isinstance(done.module[1], nn.BatchNorm2d) and _max_gap(model, done.module, x2) < 1e-5
    # off by default: the int8 format keeps XNNPACK's int8 Deconvolution for these
    assert delegation_rewrite(model, np.zeros((2, 8, 1, 1), np.float32)) is None


def _latent_then_relu() -> nn.Module:
    """A generator whose latent layer feeds its ReLU directly (no BatchNorm between)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.ConvTranspose2d(16, 32, 4, bias=True), nn.ReLU(),
                         nn.ConvTranspose2d(32, 16, 4, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 1, 1), nn.Tanh()).eval()


def test_batchnorm_in_training_mode_or_a_relu_after_the_latent_layer_is_not_folded():
    model = _dcgan_like()
    model[1].train()  # batch statistics: not an affine map of fixed coefficients
    x = np.random.default_rng(1).standard_normal((4, 8, 1, 1)).astype(np.float32)
    done = delegation_rewrite(model, x, latent=True)
    assert done.counts == {DECONV_LINEAR: 1} and isinstance(done.module[1], nn.BatchNorm2d)
    model = _latent_then_relu()
    x = np.random.default_rng(1).standard_normal((4, 16, 1, 1)).astype(np.float32)
    done = delegation_rewrite(model, x, latent=True)
    assert done.counts == {DECONV_LINEAR: 1} and isinstance(done.module[1], nn.ReLU)
    assert _max_gap(model, done.module, x) < 1e-5 and done.module[0].entry is None
    # the fp32 / dynamic form: an exact identity BatchNorm between the reshape and the ReLU
    done = delegation_rewrite(model, x, phase=True)
    assert isinstance(done.module[0].entry, nn.BatchNorm2d) and _max_gap(model, done.module, x) < 1e-6


def _convert(tmp_path, module: nn.Module, calibration: np.ndarray, fmt: str, format_options: dict):
    """ConvertResult of ``module`` through the real ``fmt`` converter with these options."""
    pytest.importorskip("executorch.exir", reason="the [executorch] extra is not installed")
    from edgegan.converters import CONVERTERS
    from edgegan.converters.base import ConvertContext, ConvertOptions

    ctx = ConvertContext(module=module, onnx_path=tmp_path / "unused.onnx", calibration=calibration,
                         input_shape=list(calibration.shape[1:]), workdir=tmp_path, out_dir=tmp_path,
                         options=ConvertOptions(formats={fmt: format_options}))
    return CONVERTERS.get(fmt).convert(ctx)


def _convert_dcgan_tiny(tmp_path, fmt: str, format_options: dict, n_calibration: int):
    """(model, ConvertResult): dcgan-tiny through the real ``fmt`` converter with these options,
    calibrated on its first ``n_calibration`` sample inputs."""
    from edgegan.models.loading import load_generator

    model = load_generator("dcgan-tiny")
    return model, _convert(tmp_path, model.module, model.sample_inputs(n_calibration, 0), fmt, format_options)


@pytest.mark.parametrize("fmt", ["executorch-dynamic", "executorch-int8"])
def test_pte_of_a_latent_layer_feeding_its_relu_runs(tmp_path, fmt):
    """The linear form's reshape feeding a ReLU and a dynamically quantized conv lowered but failed
    XNNPACK's shape propagation when run (executorch 1.5.1) until the fp32 / dynamic form put an
    identity BatchNorm after it: converted and run here, one XNNPACK call, every MAC int8, output
    close to torch's (the int8 form, which folds a following BatchNorm instead, too)."""
    from edgegan.runner import edgegan_runner as runner

    model = _latent_then_relu()
    x = np.random.default_rng(2).standard_normal((16, 16, 1, 1)).astype(np.float32)
    res = _convert(tmp_path, model, x, fmt, {})
    names = [r["rewrite"] for r in res.rewrites]
    assert names == ([DECONV_LINEAR, DECONV_PHASE] if fmt == "executorch-dynamic" else [DECONV_LINEAR])
    q = res.quantization
    assert q["fully_delegated"] and q["delegate_calls"] == 1 and q["int8_mac_fraction"] == 1.0
    out = runner.Artifact(str(res.path), fmt, res.io, 1).run_all(x)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert out.shape == ref.shape == (16, 1, 8, 8) and 1e-5 < np.abs(out - ref).max() < 0.2


@pytest.mark.parametrize("phase", [True, False])
def test_dcgan_dynamic_int8_quantizes_every_mac_only_with_the_phase_form(tmp_path, phase):
    """XNNPACK's dynamic quantization takes convs and linears, not transposed convs: as exported
    the DCGAN's executorch-dynamic stayed float (int8 MAC share < 2 %, output within 1e-4 of
    torch); in the phase / linear forms every MAC is int8 and the output visibly quantized."""
    from edgegan.runner import edgegan_runner as runner

    model, res = _convert_dcgan_tiny(tmp_path, "executorch-dynamic", {"phase_deconv": phase}, 6)
    x = model.sample_inputs(6, 0)
    q = res.quantization
    assert q["fully_delegated"] and q["delegate_calls"] == 1
    # dcgan-tiny's MACs: 25,600 (latent layer) + 3 x 32,768 (transposed convs) + 2,048 (1x1 conv)
    assert (q["int8_mac_fraction"] == 1.0) if phase else (q["int8_mac_fraction"] < 0.02)
    with torch.no_grad():
        ref = model.module(torch.from_numpy(x)).numpy()
    out = runner.Artifact(str(res.path), "executorch-dynamic", res.io, 1).run_all(x)
    err = np.abs(out - ref).max()
    assert (1e-5 < err < 0.2) if phase else (err < 1e-4)  # quantized, but close / float as exported


def test_int8_rewrite_takes_only_the_latent_layer():
    """executorch-int8 keeps XNNPACK's int8 Deconvolution for the stride-2 layers (faster than
    the phase form in int8) and takes only the 1x1-input layer as a linear layer."""
    torch.manual_seed(0)
    model = _dcgan_like()
    x = np.random.default_rng(0).standard_normal((4, 8, 1, 1)).astype(np.float32)
    done = delegation_rewrite(model, x, latent=True)
    assert done.counts == {DECONV_LINEAR: 1, BN_FOLD: 1}
    assert isinstance(done.module[0], LinearConvTranspose2d) and isinstance(done.module[3], nn.ConvTranspose2d)
    assert isinstance(done.module[4], nn.BatchNorm2d) and _max_gap(model, done.module, x) < 1e-5
    assert delegation_rewrite(model, np.zeros((2, 8, 2, 2), np.float32), latent=True) is None


@pytest.mark.parametrize("latent", [True, False])
def test_dcgan_int8_latent_layer_lowers_as_an_int8_linear(tmp_path, latent):
    """dcgan-tiny's executorch-int8 with and without ``linear_latent``: the same MACs, all int8,
    one XNNPACK call; with it the delegated graph holds one linear and 3 transposed convs (of 4),
    the rewrite is recorded, and the two .pte agree with torch alike (same int8 scheme)."""
    from edgegan.metrics.paired import psnr_overall
    from edgegan.runner import edgegan_runner as runner

    model, res = _convert_dcgan_tiny(tmp_path, "executorch-int8", {"linear_latent": latent}, 32)
    x = model.sample_inputs(8, 1)
    q = res.quantization
    assert q["fully_delegated"] and q["delegate_calls"] == 1 and q["int8_mac_fraction"] == 1.0
    assert q["macs"] == 25_600 + 3 * 32_768 + 2_048  # dcgan-tiny's MACs, either form
    deconvs = sum(v for k, v in q["ops_delegated"].items() if "convolution" in k)
    linears = sum(v for k, v in q["ops_delegated"].items() if "linear" in k or "addmm" in k)
    names = [r["rewrite"] for r in res.rewrites or []]
    if latent:
        assert names == [DECONV_LINEAR, BN_FOLD] and linears == 1 and deconvs == 4  # 3 transposed + the 1x1 conv
    else:
        assert names == [] and linears == 0 and deconvs == 5
    with torch.no_grad():
        ref = model.module(torch.from_numpy(x)).numpy()
    out = runner.Artifact(str(res.path), "executorch-int8", res.io, 1).run_all(x)
    assert 30.0 < psnr_overall(out, ref, data_range=2.0) < 80.0
