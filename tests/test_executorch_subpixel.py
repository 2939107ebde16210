"""executorch-int8's sub-pixel rewrite of ConvTranspose2d (converters/executorch_rewrite.py):
exact against torch's own transposed conv wherever it claims to fit, refused where it does not,
and equalizable through the norm that follows it (the 4 phases of a channel scaled together)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from edgegan.converters.executorch_rewrite import (DECONV, DECONV_NHWC, EQUALIZE,  # noqa: E402
                                                   SubPixelConvTranspose2d, delegation_rewrite)


@pytest.mark.parametrize("nhwc", [False, True])
@pytest.mark.parametrize("crop", [False, True])
@pytest.mark.parametrize("k,s,p,op", [(3, 2, 1, 1), (4, 2, 1, 0), (2, 2, 0, 0), (5, 3, 1, 0), (6, 3, 2, 1)])
def test_subpixel_form_equals_the_transposed_conv(k, s, p, op, crop, nhwc):
    """``crop``: the conv pads symmetrically itself and slices its output, no pad op; ``nhwc``:
    phase-major channels interleaved channels-last instead of pixel_shuffle."""
    torch.manual_seed(k * 10 + s)
    deconv = nn.ConvTranspose2d(5, 3, k, stride=s, padding=p, output_padding=op)
    assert SubPixelConvTranspose2d.fits(deconv)
    x = torch.randn(2, 5, 6, 7)
    with torch.no_grad():
        ref = deconv.double()(x.double())
        got = SubPixelConvTranspose2d(deconv.float(), crop=crop, nhwc=nhwc)(x)
    assert got.shape == ref.shape == (2, 3, 6 * s, 7 * s)
    assert (got.double() - ref).abs().max() < 1e-5


@pytest.mark.parametrize("kwargs", [dict(stride=2, padding=1),  # output 2H-1: not a whole number of phases
                                    dict(stride=1, padding=1),  # no upsampling: nothing to gain
                                    dict(stride=2, padding=1, output_padding=1, groups=2),
                                    dict(stride=2, padding=1, output_padding=1, dilation=2)])
def test_transposed_convs_it_does_not_fit_are_left_alone(kwargs):
    deconv = nn.ConvTranspose2d(4, 4, 3, **kwargs)
    assert not SubPixelConvTranspose2d.fits(deconv)
    model = nn.Sequential(deconv, nn.InstanceNorm2d(4)).eval()
    done = delegation_rewrite(model, torch.randn(2, 4, 5, 5).numpy(), deconvs=True)
    assert DECONV not in done.counts and isinstance(done.module[0], nn.ConvTranspose2d)


def test_a_fitting_transposed_conv_without_an_instance_norm_after_it_is_left_alone():
    """Only the measured case is rewritten: a DCGAN-style convT -> BatchNorm keeps XNNPACK's own
    int8 Deconvolution (faster there than the sub-pixel or the phase form, on dcgan-digits)."""
    model = nn.Sequential(nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.ReflectionPad2d(1)).eval()
    done = delegation_rewrite(model, torch.randn(2, 4, 5, 5).numpy(), deconvs=True)
    assert DECONV not in done.counts and isinstance(done.module[0], nn.ConvTranspose2d)


@pytest.mark.parametrize("nhwc", [False, True])
def test_rewritten_generator_with_equalization_matches_the_original(nhwc):
    """CycleGAN's upsampling (convT -> InstanceNorm -> ReLU) twice: rewritten, equalized on the
    inputs, the module's output is the original's, and each norm's input channels (all 4 phases
    of each) share one range."""
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1), nn.InstanceNorm2d(4), nn.ReLU(),
        nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), nn.InstanceNorm2d(3, affine=True),
        nn.ReLU()).eval()
    with torch.no_grad():
        model[0].weight.mul_(torch.tensor([1.0, 1e-2, 5.0, 0.2]).view(1, -1, 1, 1))
        model[0].bias.copy_(torch.tensor([3.0, -1.0, 0.0, 0.5]))
    x = torch.randn(6, 6, 5, 5)
    done = delegation_rewrite(model, x.numpy(), equalize=x.numpy(), deconvs=True, nhwc=nhwc)
    assert done.counts[DECONV_NHWC if nhwc else DECONV] == 2 and done.counts[EQUALIZE] == 2
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in done.module.modules())
    with torch.no_grad():
        ref, got = model(x), done.module(x)
        first = done.module[0](x)  # the first norm's input, after the pixel shuffle
    assert (got - ref).abs().max() < 1e-4
    spread = (first - first.mean((0, 2, 3), keepdim=True)).abs().amax((0, 2, 3))
    assert torch.allclose(spread, spread.max().expand_as(spread), rtol=1e-4)


def test_pt2e_quantizes_the_pixel_shuffle_on_its_input_scale():
    """The sub-pixel form's pixel_shuffle stays int8 (the scale of the conv before it) even when
    what follows is kept float (the InstanceNorm): after PT2E it reads a dequantize of the
    conv's output and its result is quantized again with the same scale; left alone, the
    quantizer had it read the dequantize and run in fp32."""
    pytest.importorskip("executorch.exir", reason="the [executorch] extra is not installed")
    import numpy as np

    from edgegan.converters.executorch_rewrite import KEEP_FLOAT, TwoPassInstanceNorm2d
    from edgegan.quantdebug.pt2e import pt2e_quantize

    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.PixelShuffle(2),
                          TwoPassInstanceNorm2d(nn.InstanceNorm2d(2))).eval()
    x = np.random.default_rng(0).standard_normal((4, 3, 6, 6)).astype(np.float32)
    ep = torch.export.export(model, (torch.from_numpy(x[:1]),))
    graph = pt2e_quantize(ep.module(), x, keep_float=KEEP_FLOAT).converted.graph
    shuffle = next(n for n in graph.nodes if n.target == torch.ops.aten.pixel_shuffle.default)
    src = shuffle.args[0]
    assert "dequantize_per_tensor" in str(src.target)
    (user,) = shuffle.users
    assert "quantize_per_tensor" in str(user.target) and "dequantize" not in str(user.target)
    assert user.args[1:3] == src.args[1:3]  # same scale and zero point: a permutation of int8 values


def test_cropped_subpixel_lowers_without_a_pad_op_and_matches_float(tmp_path):
    """The real lowering: with ``crop`` the .pte has no constant_pad_nd (XNNPACK runs it only in
    fp32, between two converts) but int8 slices, is one XNNPACK call, and the real ExecuTorch
    runtime's output is as close to the float model as the padded form's."""
    pytest.importorskip("executorch.exir", reason="the [executorch] extra is not installed")
    import numpy as np
    from executorch.runtime import Runtime

    from edgegan.converters.executorch_worker import convert

    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.InstanceNorm2d(8), nn.ReLU(),
                          nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1), nn.InstanceNorm2d(6),
                          nn.ReLU(), nn.Conv2d(6, 3, 1), nn.Tanh()).eval()
    x = np.random.default_rng(1).uniform(-1, 1, (12, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "cal.npy", x)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    psnr, reports = {}, {}
    for crop in (False, True, "nhwc"):
        done = delegation_rewrite(model, x[:4], equalize=x, deconvs=True, crop=bool(crop), nhwc=crop == "nhwc")
        program, pte = tmp_path / f"p{crop}.pt2", tmp_path / f"m{crop}.pte"
        torch.export.save(torch.export.export(done.module, (torch.from_numpy(x[:1]),)), str(program))
        reports[crop] = convert({"program": str(program), "mode": "int8", "out": str(pte),
                                 "calibration": str(tmp_path / "cal.npy"), "fold_relu": True})
        method = Runtime.get().load_program(str(pte)).load_method("forward")
        got = np.concatenate([method.execute([torch.from_numpy(x[i: i + 1])])[0].numpy() for i in range(len(x))])
        psnr[crop] = 10 * np.log10(4 / np.mean((got - ref) ** 2))
    assert reports[False]["ops_delegated"].get("aten.constant_pad_nd") == 1
    assert "aten.constant_pad_nd" not in reports[True]["ops_delegated"]
    assert reports[True]["ops_delegated"]["aten.slice_copy"] == 2  # the crop, H then W
    assert reports[True]["fully_delegated"] and reports[True]["delegate_calls"] == 1
    assert reports[True]["int8_mac_fraction"] == 1.0
    assert psnr[True] > 30 and abs(psnr[True] - psnr[False]) < 1.5, psnr
    # the interleave spelled channels-last: 3 permutes instead of pixel_shuffle's one, still one
    # XNNPACK call, the same int8 values in another order (PSNR as close)
    nhwc = reports["nhwc"]
    assert nhwc["ops_delegated"]["aten.permute_copy"] == 3 and reports[True]["ops_delegated"]["aten.permute_copy"] == 1
    assert nhwc["fully_delegated"] and nhwc["delegate_calls"] == 1 and abs(psnr["nhwc"] - psnr[True]) < 1.5, psnr
