"""Loading user models safely: every bad checkpoint is a one-line CheckpointError and nothing
in the file is executed."""
from __future__ import annotations

import os

import pytest
import torch

from edgegan.errors import CheckpointError, ConfigError
from edgegan.models import load_generator, save_checkpoint
from edgegan.models.loading import build_family, read_checkpoint


class _Payload:
    """Unpickling this would create a marker directory (stand-in for arbitrary code)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and len(msg) < 400
    return msg


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist") as e:
        load_generator("dcgan-tiny", checkpoint=tmp_path / "nope.pt")
    _one_line(e)


def test_empty_and_truncated_files(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_checkpoint(empty)
    module, _, _ = build_family("dcgan", {"width": 2})
    good = tmp_path / "good.pt"
    torch.save(module.state_dict(), good)
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as e:
        load_generator("dcgan-tiny", checkpoint=trunc)
    _one_line(e)


def test_not_a_checkpoint(tmp_path):
    txt = tmp_path / "notes.pt"
    txt.write_text("this is not a checkpoint\n" * 10)
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint") as e:
        load_generator("dcgan-tiny", checkpoint=txt)
    _one_line(e)


def test_code_executing_pickle_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": _Payload(str(marker))}, evil)
    with pytest.raises(CheckpointError, match="would run code") as e:
        load_generator("dcgan-tiny", checkpoint=evil)
    _one_line(e)
    assert not marker.exists()
    # also as a model file given directly
    with pytest.raises(CheckpointError, match="would run code"):
        load_generator(str(evil))
    assert not marker.exists()


def test_state_dict_mismatch_names_the_keys(tmp_path):
    module, _, _ = build_family("dcgan", {"width": 4})
    ckpt = tmp_path / "w4.pt"
    torch.save(module.state_dict(), ckpt)
    with pytest.raises(CheckpointError, match=r"shape mismatch \(e.g. main.0.weight: file \[100, 32, 4, 4\] vs model \[100, 16, 4, 4\]\)") as e:
        load_generator("dcgan-tiny", checkpoint=ckpt)
    _one_line(e)
    # the right --config makes it load
    m = load_generator("dcgan", checkpoint=ckpt, config={"width": 4})
    assert torch.equal(m.module.state_dict()["main.0.weight"], module.state_dict()["main.0.weight"])


def test_missing_and_unexpected_keys(tmp_path):
    module, _, _ = build_family("dcgan", {"width": 2})
    sd = module.state_dict()
    sd.pop("main.1.weight")
    sd["extra.weight"] = torch.zeros(1)
    ckpt = tmp_path / "bad.pt"
    torch.save(sd, ckpt)
    with pytest.raises(CheckpointError, match="1 missing .*1 unexpected"):
        load_generator("dcgan-tiny", checkpoint=ckpt)


def test_wrapped_and_prefixed_state_dicts_load(tmp_path):
    module, _, _ = build_family("dcgan", {"width": 2}, seed=3)
    ckpt = tmp_path / "wrapped.pt"
    torch.save({"epoch": 3, "netG": {f"module.{k}": v for k, v in module.state_dict().items()}}, ckpt)
    m = load_generator("dcgan-tiny", checkpoint=ckpt)
    assert torch.equal(m.module.state_dict()["main.0.weight"], module.state_dict()["main.0.weight"])


def test_edgegan_checkpoint_round_trip(tmp_path):
    module, cfg, _ = build_family("resnet", {"ngf": 4, "n_blocks": 1, "image_size": 32}, seed=5)
    ckpt = tmp_path / "r.pt"
    save_checkpoint(ckpt, module, "resnet", cfg.to_dict(), "my-resnet", compression=[{"method": "clip"}])
    m = load_generator(str(ckpt))
    assert m.family == "resnet" and m.name == "my-resnet" and m.compression == [{"method": "clip"}]
    assert torch.equal(m.module.state_dict()["model.1.weight"], module.state_dict()["model.1.weight"])


def test_bare_state_dict_as_model_asks_for_architecture(tmp_path):
    module, _, _ = build_family("dcgan", {"width": 2})
    ckpt = tmp_path / "bare.pt"
    torch.save(module.state_dict(), ckpt)
    with pytest.raises(CheckpointError, match="a bare state_dict but no architecture; name it"):
        load_generator(str(ckpt))


def test_torchscript_and_exported_program(tmp_path):
    module, _, spec = build_family("dcgan", {"width": 2})
    module.eval()
    x = torch.from_numpy(spec.sample(1, 0))
    ts = tmp_path / "g.ts"
    torch.jit.save(torch.jit.trace(module, x), ts)
    ep_path = tmp_path / "g.pt2"
    torch.export.save(torch.export.export(module, (x,)), ep_path)
    inferred = load_generator(str(ts))  # its first layer is ConvTranspose2d(100, ...): a DCGAN latent
    assert inferred.input_spec.shape == [100, 1, 1] and inferred.input_spec.inferred
    from edgegan.models.spec import InputSpec

    m_ts = load_generator(str(ts), input_spec=InputSpec(shape=[100, 1, 1]))
    m_ep = load_generator(str(ep_path))  # the ExportedProgram carries its input shape
    assert m_ep.input_spec.shape == [100, 1, 1]
    with torch.no_grad():
        ref = module(x)
        assert torch.allclose(m_ts.module(x), ref, atol=1e-6)
        assert torch.allclose(m_ep.module(x), ref, atol=1e-6)
    with pytest.raises(CheckpointError, match="not a state_dict; pass it as the MODEL"):
        load_generator("dcgan-tiny", checkpoint=ts)


def test_factory_spec_and_bad_factory():
    from edgegan.models.spec import InputSpec

    m = load_generator("support_models:erf_generator", input_spec=InputSpec(shape=[8, 1, 1]))
    assert m.name == "erf_generator"
    with pytest.raises(ConfigError, match="cannot import model factory"):
        load_generator("support_models:nope", input_spec=InputSpec(shape=[8, 1, 1]))


def test_zoo_weights_refuse_config_override():
    with pytest.raises(ConfigError, match="ships trained weights"):
        load_generator("resnet-sketch", config={"ngf": 8})
