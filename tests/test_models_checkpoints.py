"""Checkpoint layouts other projects save (issue 18, item 7): each one written here from a small
real generator, loaded with --checkpoint, and checked to carry exactly the weights it should."""
from __future__ import annotations

import pytest
import torch

from edgegan.errors import CheckpointError
from edgegan.models import load_generator
from edgegan.models.loading import build_family

ZOO = "dcgan-tiny"  # dcgan width 2 (the architecture the checkpoints below are saved from)


def _generator(seed: int):
    module, _, _ = build_family("dcgan", {"width": 2}, seed=seed)
    return module


def _discriminator():
    torch.manual_seed(9)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 4, 2, 1), torch.nn.LeakyReLU(0.2), torch.nn.Conv2d(4, 1, 4))


def _optimizer_state(module) -> dict:
    """A real Adam state after one step (tensors under int keys, plus param_groups)."""
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    module(torch.randn(2, 100, 1, 1)).mean().backward()
    opt.step()
    return opt.state_dict()


def _same_weights(loaded, expected) -> bool:
    got, want = loaded.module.state_dict(), expected.state_dict()
    return got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)


def _save(tmp_path, name, obj):
    path = tmp_path / name
    torch.save(obj, path)
    return path


@pytest.mark.parametrize("key", ["state_dict", "model", "netG", "generator", "model_state_dict"])
def test_single_wrapped_state_dict_loads(tmp_path, key):
    g = _generator(1)
    path = _save(tmp_path, f"{key}.pt", {"epoch": 7, key: g.state_dict(), "args": {"lr": 2e-4}})
    m = load_generator(ZOO, checkpoint=path)
    assert _same_weights(m, g)
    assert f"key '{key}'" in m.source


def test_pytorch_dcgan_tutorial_layout(tmp_path):
    """netG_state_dict beside netD_state_dict, both optimizers and the losses (the tutorial's save)."""
    g, d = _generator(1), _discriminator()
    path = _save(tmp_path, "tutorial.pt", {
        "epoch": 5, "netG_state_dict": g.state_dict(), "netD_state_dict": d.state_dict(),
        "optimizerG_state_dict": _optimizer_state(_generator(4)), "optimizerD_state_dict": {"state": {}, "param_groups": []},
        "G_losses": [1.0, 0.5], "D_losses": [0.7]})
    m = load_generator(ZOO, checkpoint=path)
    assert _same_weights(m, g)
    assert "netG_state_dict" in m.source
    # given as the MODEL, the file is described as what it is, not "a bare state_dict"
    with pytest.raises(CheckpointError, match=r"holds state_dicts under 'netG_state_dict', 'netD_state_dict' but no "
                                              r"architecture; name it") as e:
        load_generator(str(path))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("ema_key", ["g_ema", "params_ema", "ema"])
def test_ema_copy_is_preferred_and_recorded(tmp_path, ema_key):
    live, ema, d = _generator(1), _generator(2), _discriminator()
    path = _save(tmp_path, "ema.pt", {"generator": live.state_dict(), ema_key: ema.state_dict(),
                                      "discriminator": d.state_dict(), "step": 1000})
    m = load_generator(ZOO, checkpoint=path)
    assert _same_weights(m, ema) and not _same_weights(m, live)
    assert f"key '{ema_key}' (EMA weights)" in m.source and "preferred over 'generator'" in m.source
    # the live weights when asked for
    m2 = load_generator(ZOO, checkpoint=path, checkpoint_key="generator")
    assert _same_weights(m2, live)


def test_dataparallel_and_compiled_prefixes_are_stripped(tmp_path):
    g = _generator(1)
    dp = torch.nn.DataParallel(g)  # real wrapper: its state_dict keys start with "module."
    assert all(k.startswith("module.") for k in dp.state_dict())
    m = load_generator(ZOO, checkpoint=_save(tmp_path, "dp.pt", dp.state_dict()))
    assert _same_weights(m, g)
    doubled = {f"module._orig_mod.{k}": v for k, v in g.state_dict().items()}  # DDP around torch.compile
    m = load_generator(ZOO, checkpoint=_save(tmp_path, "ddp.pt", {"model": doubled}))
    assert _same_weights(m, g)


def test_nested_dicts(tmp_path):
    g, d = _generator(1), _discriminator()
    path = _save(tmp_path, "nested.pt", {"models": {"G": g.state_dict(), "D": d.state_dict()},
                                        "optim": {"G": _optimizer_state(_generator(5))}})
    m = load_generator(ZOO, checkpoint=path)
    assert _same_weights(m, g) and "key 'models.G'" in m.source


def test_safetensors_file(tmp_path):
    from safetensors.torch import save_file

    g = _generator(1)
    path = tmp_path / "g.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in g.state_dict().items()}, str(path))
    m = load_generator(ZOO, checkpoint=path)
    assert _same_weights(m, g)
    corrupt = tmp_path / "bad.safetensors"
    corrupt.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt safetensors"):
        load_generator(ZOO, checkpoint=corrupt)


def test_ambiguous_checkpoint_lists_candidates_and_key_chooses(tmp_path):
    a, b = _generator(1), _generator(2)
    path = _save(tmp_path, "two.pt", {"gen_a": a.state_dict(), "gen_b": b.state_dict()})
    with pytest.raises(CheckpointError) as e:
        load_generator(ZOO, checkpoint=path)
    msg = str(e.value)
    assert "\n" not in msg and "several state_dicts (gen_a, gen_b)" in msg and "--checkpoint-key" in msg
    assert _same_weights(load_generator(ZOO, checkpoint=path, checkpoint_key="gen_b"), b)
    with pytest.raises(CheckpointError, match=r"no state_dict under --checkpoint-key 'gen_c' \(state_dicts found "
                                              r"under: gen_a, gen_b\)"):
        load_generator(ZOO, checkpoint=path, checkpoint_key="gen_c")


def test_candidate_matching_the_architecture_wins(tmp_path):
    """Two generator-like entries, only one of which fits the named architecture."""
    g = _generator(1)
    other, _, _ = build_family("dcgan", {"width": 4})
    path = _save(tmp_path, "two_sizes.pt", {"small": g.state_dict(), "big": other.state_dict()})
    assert _same_weights(load_generator(ZOO, checkpoint=path), g)


def test_no_state_dict_names_what_is_there(tmp_path):
    path = _save(tmp_path, "meta.pt", {"epoch": 3, "losses": [1.0]})
    with pytest.raises(CheckpointError, match=r"does not contain a state_dict .*keys \['epoch', 'losses'\]"):
        load_generator(ZOO, checkpoint=path)


def test_checkpoint_key_through_export_cli(tmp_path, monkeypatch):
    """--checkpoint-key reaches the loader from the command line (and the bundle records the key)."""
    import json

    from edgegan.cli.main import main

    live, ema = _generator(1), _generator(2)
    path = _save(tmp_path, "ema.pt", {"generator": live.state_dict(), "g_ema": ema.state_dict()})
    out = tmp_path / "b"
    code = main(["export", ZOO, "--checkpoint", str(path), "--checkpoint-key", "generator", "--formats", "onnx",
                 "--inputs", "4", "--calibration", "4", "--out", str(out), "--json"])
    assert code == 0
    manifest = json.loads((out / "bundle.json").read_text())
    assert "key 'generator'" in manifest["model"]["source"]
    assert manifest["export_config"]["checkpoint_key"] == "generator"


class _GANModule(torch.nn.Module):
    """What a LightningModule for a GAN is: both networks as attributes of one module, so its
    state_dict prefixes every key with the attribute's name."""

    def __init__(self, g, d, g_name="generator", d_name="discriminator"):
        super().__init__()
        self.add_module(g_name, g)
        self.add_module(d_name, d)


def test_lightning_checkpoint_is_split_by_prefix(tmp_path):
    g, d = _generator(1), _discriminator()
    gan = _GANModule(g, d)
    assert any(k.startswith("generator.") for k in gan.state_dict())  # a real prefixed state_dict
    path = _save(tmp_path, "lightning.ckpt", {
        "epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.4.0", "state_dict": gan.state_dict(),
        "optimizer_states": [_optimizer_state(_generator(4))], "lr_schedulers": [], "hyper_parameters": {"lr": 2e-4}})
    m = load_generator(ZOO, checkpoint=path)
    assert _same_weights(m, g)
    assert "key 'state_dict', keys prefixed 'generator.'" in m.source
    # the discriminator's group is there by name, as is the whole state_dict
    with pytest.raises(CheckpointError, match="does not match"):
        load_generator(ZOO, checkpoint=path, checkpoint_key="state_dict:discriminator.")
    with pytest.raises(CheckpointError, match="does not match"):
        load_generator(ZOO, checkpoint=path, checkpoint_key="state_dict")


@pytest.mark.parametrize("g_name,d_name", [("G", "D"), ("netG", "netD"), ("gen", "disc")])
def test_bare_prefixed_state_dict_other_names(tmp_path, g_name, d_name):
    g = _generator(1)
    path = _save(tmp_path, "gan.pt", _GANModule(g, _discriminator(), g_name, d_name).state_dict())
    m = load_generator(ZOO, checkpoint=path)
    assert _same_weights(m, g) and f"keys prefixed '{g_name}.'" in m.source


def test_prefix_that_fits_the_architecture_is_chosen(tmp_path):
    """Two generator-named prefixes; only one has the named architecture's keys and shapes."""
    g = _generator(1)
    big, _, _ = build_family("dcgan", {"width": 4})
    gan = _GANModule(g, big, "gen", "G")
    path = _save(tmp_path, "two.ckpt", {"state_dict": gan.state_dict()})
    m = load_generator(ZOO, checkpoint=path)
    assert _same_weights(m, g) and "keys prefixed 'gen.'" in m.source


def test_ambiguous_prefixes_are_listed(tmp_path):
    a, b = _generator(1), _generator(2)
    path = _save(tmp_path, "ab.ckpt", {"state_dict": _GANModule(a, b, "generator", "gen").state_dict()})
    with pytest.raises(CheckpointError) as e:
        load_generator(ZOO, checkpoint=path)
    msg = str(e.value)
    assert "\n" not in msg and "several state_dicts (state_dict:generator., state_dict:gen.)" in msg
    assert "KEY:PREFIX" in msg and "--checkpoint-key state_dict:generator." in msg
    m = load_generator(ZOO, checkpoint=path, checkpoint_key="state_dict:gen.")
    assert _same_weights(m, b) and "keys prefixed 'gen.'" in m.source
