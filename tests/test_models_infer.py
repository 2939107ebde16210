"""Input inference for user models (edgegan/models/infer.py): real torch modules of each kind,
through load_generator as a user reaches it (nn.Module object, module:factory, TorchScript)."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from edgegan.errors import ConfigError, InputSpecError
from edgegan.models.loading import load_generator
from edgegan.models.spec import InputSpec


class LinearFirst(nn.Module):
    """latent [24] -> Linear -> 4x4 feature map -> ConvTranspose -> image [1, 8, 8]."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(24, 8 * 4 * 4)
        self.up = nn.ConvTranspose2d(8, 1, 4, 2, 1)

    def forward(self, z):
        return torch.tanh(self.up(self.fc(z).view(-1, 8, 4, 4)))


def dcgan_like(latent: int = 12) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.ConvTranspose2d(latent, 8, 4, 1, 0, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.ConvTranspose2d(8, 1, 4, 2, 1), nn.Tanh())


class ImageToImage(nn.Module):
    """A size-agnostic image-to-image net: Conv2d(3, ...) first."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))

    def forward(self, x):
        return torch.tanh(self.body(x))


class FixedSizeImageNet(nn.Module):
    """Conv2d first but a Linear that only fits 28x28 inputs: 64x64 cannot be assumed."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 28 * 28, 16)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1)).view(-1, 1, 4, 4)


class EmbeddingFirst(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 16)
        self.up = nn.ConvTranspose2d(16, 1, 4)

    def forward(self, labels):
        return self.up(self.emb(labels)[:, :, None, None])


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(16, 1, 4)

    def forward(self, z, labels):
        return self.up(z + labels)


class RNNFirst(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(8, 16, batch_first=True)

    def forward(self, x):
        return self.rnn(x)[0][:, None, :, :]


class DefinedOutOfOrder(nn.Module):
    """The Linear is defined first but the ConvTranspose runs first."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(4, 4)
        self.up = nn.ConvTranspose2d(10, 1, 4)

    def forward(self, z):
        return self.head(self.up(z))


class ConvTransposeNeeds4x4(nn.Module):
    """ConvTranspose2d first, but the model reshapes to [C, 4, 4]: the 1x1 convention fails."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(6, 1, 4, 2, 1)

    def forward(self, z):
        return self.up(z.view(-1, 6, 4, 4))


def test_linear_first_gives_a_latent_vector():
    m = load_generator(LinearFirst())
    assert m.input_spec.shape == [24] and m.input_spec.kind == "latent" and m.input_spec.distribution == "normal"
    assert "Linear(24, ...)" in m.input_spec.inferred and "'fc'" in m.input_spec.inferred
    assert m.input_spec.to_dict()["inferred"] == m.input_spec.inferred  # it reaches bundle.json
    with torch.no_grad():
        assert m.module(torch.from_numpy(m.sample_inputs(3, 0))).shape == (3, 1, 8, 8)


def test_conv_transpose_first_gives_a_dcgan_latent():
    module = dcgan_like(12)
    module.train()
    m = load_generator(module)
    assert m.input_spec.shape == [12, 1, 1] and m.input_spec.kind == "latent"
    assert m.input_spec.inferred.startswith("first layer ConvTranspose2d(12, ...)")
    assert module.training, "the caller's module must not be switched to eval (load_generator copies it)"
    assert m.source == "in-memory Sequential" and not m.module.training


def test_conv_first_gives_a_64px_image_when_it_runs():
    m = load_generator(ImageToImage())
    spec = m.input_spec
    assert (spec.shape, spec.kind, spec.distribution, spec.low, spec.high) == ([3, 64, 64], "image", "uniform", -1.0, 1.0)
    x = m.sample_inputs(4, 0)
    assert x.min() >= -1 and x.max() <= 1 and x.min() < -0.5  # uniform in [-1, 1], not normal


def test_conv_first_that_rejects_64px_asks_for_the_shape():
    with pytest.raises(InputSpecError, match=r"Conv2d\(1, \.\.\.\).*64x64.*input_shape="):
        load_generator(FixedSizeImageNet())
    m = load_generator(FixedSizeImageNet(), input_spec=InputSpec(shape=[1, 28, 28], kind="image"))
    assert m.input_spec.inferred is None and "inferred" not in m.input_spec.to_dict()


@pytest.mark.parametrize("module, pattern", [
    (EmbeddingFirst(), r"first layer with parameters is Embedding \('emb'\).*--input-shape \(CLI\) / input_shape= \(API\)"),
    (TwoInputs(), r"takes 2 inputs.*--input-shape"),
    (RNNFirst(), r"GRU.*--input-shape"),
    (DefinedOutOfOrder(), r"Linear at 'head' is defined first but 'up' runs first"),
])
def test_ambiguous_models_ask_for_the_input_shape(module, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_generator(module)


def test_wrapped_layers_and_in_memory_torchscript():
    from torch.nn.utils.parametrizations import weight_norm

    normed = nn.Sequential(weight_norm(nn.Linear(10, 16, bias=False)), nn.Unflatten(1, (1, 4, 4)))
    assert load_generator(normed).input_spec.shape == [10]  # ParametrizedLinear is still a Linear
    scripted = torch.jit.script(dcgan_like(7).eval())
    assert load_generator(scripted).input_spec.shape == [7, 1, 1]
    with pytest.raises(ConfigError, match="lazy"):
        load_generator(nn.Sequential(nn.LazyLinear(16), nn.Unflatten(1, (1, 4, 4))))


def test_inferred_spec_that_fails_forward_is_a_clear_error():
    with pytest.raises(InputSpecError, match=r"\[6, 1, 1\] inferred from ConvTranspose2d\(6, \.\.\.\).*fails a forward pass"):
        load_generator(ConvTransposeNeeds4x4())


def test_factory_spec_and_torchscript_file_are_inferred(tmp_path):
    m = load_generator("support_models:erf_generator")  # ConvTranspose2d(8, ...) first
    assert m.input_spec.shape == [8, 1, 1] and "ConvTranspose2d(8" in m.input_spec.inferred
    module = dcgan_like(10).eval()
    ts = tmp_path / "g.ts"
    torch.jit.save(torch.jit.trace(module, torch.zeros(1, 10, 1, 1)), ts)
    t = load_generator(str(ts))
    assert t.input_spec.shape == [10, 1, 1] and "ConvTranspose2d(10" in t.input_spec.inferred
    x = torch.from_numpy(t.sample_inputs(2, 0))
    with torch.no_grad():
        assert torch.allclose(t.module(x), module(x), atol=1e-6)
    lin = tmp_path / "lin.ts"
    torch.jit.save(torch.jit.script(LinearFirst().eval()), lin)
    assert load_generator(str(lin)).input_spec.shape == [24]


def test_cli_export_of_a_factory_without_input_shape_records_the_inference(cli, tmp_path):
    out = tmp_path / "b"
    r = cli("export", "support_models:erf_generator", "--formats", "onnx", "--inputs", "4", "--calibration", "4",
            "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "inferred; pass --input-shape" in r.stdout
    manifest = json.loads((out / "bundle.json").read_text())
    assert manifest["input"]["shape"] == [8, 1, 1]
    assert manifest["input"]["inferred"] == "first layer ConvTranspose2d(8, ...) at 'up' -> latent [8, 1, 1]"
    assert manifest["export_config"]["input_shape"] is None
