"""executorch-dynamic (XNNPACK qd8 convs: int8 weights, activations quantized per row at run
time) on a real InstanceNorm / reflect-pad generator: one XNNPACK call with every conv dynamic,
nothing calibrated, run through the real runner and compared with float torch."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("executorch.exir", reason="the [executorch] extra is not installed")
torch = pytest.importorskip("torch")

from edgegan.runner import edgegan_runner as runner  # noqa: E402


def _convert(tmp_path, model, calibration):
    from edgegan.converters import CONVERTERS
    from edgegan.converters.base import ConvertContext, ConvertOptions

    tmp_path.mkdir(parents=True, exist_ok=True)
    ctx = ConvertContext(module=model.module, onnx_path=tmp_path / "unused.onnx", calibration=calibration,
                         input_shape=list(model.input_spec.shape), workdir=tmp_path, out_dir=tmp_path,
                         options=ConvertOptions())
    return CONVERTERS.get("executorch-dynamic").convert(ctx)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from edgegan.models.loading import load_generator

    model = load_generator("resnet-tiny")
    root = tmp_path_factory.mktemp("etdyn")
    a = _convert(root / "a", model, model.sample_inputs(8, 0))
    b = _convert(root / "b", model, model.sample_inputs(8, 5) * 3.0)  # other "calibration" inputs
    return model, a, b


def test_whole_generator_is_one_xnnpack_call_with_dynamic_convs(converted):
    _, res, _ = converted
    q = res.quantization
    assert q["fully_delegated"] and q["delegate_calls"] == 1 and q["ops_portable"] == {}
    assert q["int8_mac_fraction"] == 1.0
    n_convs = q["ops_delegated"]["aten.convolution"]
    # every conv input is quantized at run time: one choose_qparams per conv, no static activation scale
    assert q["quant_ops_delegated"].get("quantized_decomposed.choose_qparams.tensor") == n_convs
    assert "quantized_decomposed.quantize_per_tensor" not in q["quant_ops_delegated"]
    assert {r["rewrite"] for r in res.rewrites} == {"InstanceNorm2d -> two-pass mean/var",
                                                    "ReflectionPad2d -> slices + cat",
                                                    "ConvTranspose2d -> conv with one tap window per phase + crop + interleave"}


def test_nothing_is_calibrated(converted):
    _, a, b = converted
    # the calibration inputs do not enter the program: the same bytes whatever they are
    assert a.path.read_bytes() == b.path.read_bytes()


def test_runs_in_the_runner_close_to_float_but_quantized(converted):
    model, res, _ = converted
    x = model.sample_inputs(6, 11)
    with torch.no_grad():
        ref = model.module(torch.from_numpy(x)).numpy().astype(np.float64)
    art = runner.Artifact(str(res.path), "executorch-dynamic", res.io, threads=1)
    got = art.run_all(x).astype(np.float64)
    psnr = 10 * np.log10(4.0 / np.mean((got - ref) ** 2))  # output range [-1, 1]
    assert 40 < psnr < 90, psnr  # int8 weights and activations (float would read > 100 dB)
