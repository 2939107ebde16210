"""`slim` (GAN Slimming): the proximal step zeroes whole channels, the extracted subnet computes
exactly what the masked model computes, fake-quant puts weights on the grid with straight-through
gradients, and the result is a plain smaller zoo-family model; bad input is a one-line error."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgegan.cli.main import main  # noqa: E402
from edgegan.compress import apply_method, save_compressed  # noqa: E402
from edgegan.compress.posttrain.channel_layout import channel_layout, copy_kept, pruned_config  # noqa: E402
from edgegan.compress.training import slim  # noqa: E402
from edgegan.errors import ConfigError  # noqa: E402
from edgegan.models import load_generator  # noqa: E402
from edgegan.models.loading import build_family  # noqa: E402
from edgegan.models.zoo import FAMILIES  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_proximal_step_is_the_soft_threshold_and_kills_the_shift_too():
    bn = torch.nn.BatchNorm2d(5)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([-0.5, -0.05, 0.0, 0.03, 0.2]))
        bn.bias.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    slim.proximal_step({"g": [bn]}, 0.1)
    assert torch.allclose(bn.weight, torch.tensor([-0.4, 0.0, 0.0, 0.0, 0.1]))
    assert bn.bias.tolist() == [1.0, 0.0, 0.0, 0.0, 5.0]
    assert slim.kept_channels({"g": [bn]})["g"].tolist() == [0, 4]


def _extract(family, config, module):
    cfg = FAMILIES.get(family).config_cls.from_dict(config)
    layout = channel_layout(family, cfg, module)
    norms = slim.slimmable_norms(module, layout)
    keep = slim.kept_channels(norms)
    small, small_cfg, _ = build_family(family, pruned_config(config, layout, keep, cfg.width_fields()))
    copy_kept(module, small, layout, keep)
    return small.eval(), small_cfg, norms


@pytest.mark.parametrize("name", ["dcgan-tiny", "unet-tiny", "resnet-tiny"])
def test_extracted_subnet_computes_what_the_masked_model_computes(name):
    model = load_generator(name)
    module, cfg, config = slim.affine_student(model.family, model.config, model.module)
    norms = slim.slimmable_norms(module, channel_layout(model.family, cfg, module))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # give the shifts weight, so a channel left with its shift would show
        for layers in norms.values():
            for n in layers:
                n.weight.copy_(torch.rand(n.weight.shape, generator=gen) * 0.2)
                n.bias.copy_(torch.rand(n.bias.shape, generator=gen) + 0.5)
    slim.proximal_step(norms, 0.1)  # about half the channels reach exactly zero
    small, small_cfg, _ = _extract(model.family, config, module)
    before = sum(len(ls[0].weight) for ls in norms.values())
    after = sum(int(v) for vs in small_cfg.width_fields().values() for v in vs) - \
        sum(int(v) for k, vs in cfg.width_fields().items() for v in vs) + before
    assert after < 0.75 * before
    x = torch.from_numpy(model.sample_inputs(4, 3))
    with torch.no_grad():
        masked, extracted = module.eval()(x), small(x)
    torch.testing.assert_close(extracted, masked, rtol=1e-5, atol=1e-6)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in module.parameters())


def test_slim_end_to_end_extracts_the_trained_masked_student(tmp_path):
    teacher = load_generator("dcgan-tiny")
    out = apply_method(teacher, "slim", {"steps": 20, "batch": 8, "lr": 1e-2, "rho": 5.0, "bits": 0,
                                         "finetune_steps": 0, "work_dir": str(tmp_path)})
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    masked = build_family("dcgan", teacher.config)[0]
    masked.load_state_dict(state["modules"]["student"])
    masked.eval()
    hidden = out.config["hidden_channels"]
    assert hidden != [16, 8, 4, 2] and all(h >= 1 for h in hidden)
    stats = out.compression[-1]["stats"]
    assert [g["after"] for g in stats["groups"].values()] == hidden
    assert stats["student"]["params"] == sum(p.numel() for p in out.module.parameters()) < stats["teacher"]["params"]
    z = torch.from_numpy(teacher.sample_inputs(8, 5))
    with torch.no_grad():
        torch.testing.assert_close(out.module(z), masked(z), rtol=1e-5, atol=1e-6)


def test_fake_quant_puts_weights_on_the_grid_with_straight_through_gradients():
    conv = torch.nn.Conv2d(3, 4, 3)
    handles = slim.install_fake_quant(conv, 4)
    seen = conv.weight
    scale = conv.parametrizations.weight.original.detach().abs().max() / 7
    codes = seen.detach() / scale
    assert torch.allclose(codes, codes.round(), atol=1e-4) and codes.abs().max() <= 7 + 1e-4
    conv.parametrizations.weight.original.grad = None
    seen.sum().backward()
    assert torch.equal(conv.parametrizations.weight.original.grad, torch.ones_like(seen))
    x = torch.linspace(-1, 1, 3 * 8 * 8).reshape(1, 3, 8, 8).requires_grad_(True)
    conv(x).sum().backward()  # the input hook quantizes, the gradient still reaches x
    assert x.grad is not None and x.grad.abs().sum() > 0
    slim.remove_fake_quant(conv, handles)
    assert not hasattr(conv, "parametrizations") or "weight" not in conv.parametrizations


def test_slimmed_student_is_a_plain_zoo_model_on_the_8bit_grid(tmp_path):
    teacher = load_generator("unet-tiny")
    out = apply_method(teacher, "slim", {"steps": 10, "batch": 4, "lr": 1e-2, "rho": 12.0, "bits": 8,
                                         "finetune_steps": 3, "work_dir": str(tmp_path)})
    assert out.family == "unet" and "down_channels" in out.config
    for m in out.module.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            w = m.weight.detach()
            codes = w / (w.abs().max() / 127)
            assert torch.allclose(codes, codes.round(), atol=1e-3)
    assert (tmp_path / "finetune" / "training.json").is_file()
    ckpt, _, record = save_compressed(out, tmp_path / "s.pt", base=teacher, base_model="unet-tiny")
    obj = torch.load(ckpt, weights_only=True)
    assert obj["family"] == "unet" and obj["config"] == out.config
    again = load_generator(str(ckpt))
    x = torch.from_numpy(teacher.sample_inputs(2, 1))
    with torch.no_grad():
        assert torch.equal(again.module(x), out.module(x))
    assert record["summary"]["params"] < record["base_summary"]["params"]


@pytest.mark.parametrize("model,config,fragment", [
    ("dcgan-tiny", {"rho": -0.1}, "rho must be >= 0"),
    ("dcgan-tiny", {"bits": 1}, r"bits must be 0 \(float\) or 2..16"),
])
def test_bad_input_is_a_one_line_error(model, config, fragment):
    with pytest.raises(ConfigError, match=fragment) as info:
        apply_method(load_generator(model), "slim", {"steps": 1, **config})
    assert "\n" not in str(info.value)


def test_cli_slim_errors_name_the_flag(tmp_path, capsys):
    code = main(["compress", "dcgan-tiny", "--method", "slim", "--rho", "-1", "--out", str(tmp_path / "s.pt")])
    err = capsys.readouterr().err
    assert code == 2 and "(flag --rho)" in err and err.count("\n") == 1
    assert not (tmp_path / "s.pt").exists()
    np.testing.assert_equal(list(tmp_path.iterdir()), [])


# --- the zoo's ResNet: InstanceNorm without affine parameters -> slimming-time affine scales ---

def _instance_norms(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.InstanceNorm2d)]


def test_resnet_affine_student_computes_exactly_what_the_non_affine_teacher_computes():
    teacher = load_generator("resnet-tiny", config={"n_blocks": 2})
    assert "affine_norm" not in teacher.config and all(n.weight is None for n in _instance_norms(teacher.module))
    student, cfg, config = slim.affine_student("resnet", teacher.config, teacher.module)
    assert cfg.affine_norm and config == {**teacher.config, "affine_norm": True}
    assert type(cfg).from_json(cfg.to_json()) == cfg and type(cfg).from_dict(teacher.config).affine_norm is False
    norms = _instance_norms(student)
    assert len(norms) == 1 + 2 + 2 * 2 + 2  # stem, two downs, two per block, two ups
    assert all(torch.equal(n.weight, torch.ones_like(n.weight)) and torch.equal(n.bias, torch.zeros_like(n.bias))
               for n in norms)
    x = torch.from_numpy(teacher.sample_inputs(3, 2))
    with torch.no_grad():
        assert torch.equal(student(x), teacher.module(x))


def test_resnet_residual_stream_is_cut_only_where_every_writer_is_dead():
    """The last down conv and both blocks' second convs write the same stream channels: a
    channel goes only when its scale is zero in all three norms; one still alive in one norm
    stays, and cutting it anyway would change the output (so the tie is needed)."""
    model = load_generator("resnet-tiny", config={"n_blocks": 2})
    module, cfg, config = slim.affine_student("resnet", model.config, model.module)
    layout = channel_layout("resnet", cfg, module)
    norms = slim.slimmable_norms(module, layout)
    stream = [g for g, group in layout.groups.items() if len(group.producers) == 3]
    assert stream == ["model.7"] and len(norms["model.7"]) == 3
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layers in norms.values():
            for n in layers:
                n.weight.copy_(torch.rand(n.weight.shape, generator=gen) + 0.5)
                n.bias.copy_(torch.rand(n.bias.shape, generator=gen) + 0.5)
        for n in norms["model.7"]:
            n.weight[[1, 5]] = 0.0
        norms["model.7"][1].weight[3] = 0.0  # dead in one block only
    slim.proximal_step(norms, 0.0)  # zero scale -> zero shift, nothing else moves
    keep = slim.kept_channels(norms)
    assert keep["model.7"].tolist() == [c for c in range(16) if c not in (1, 5)]
    small, small_cfg, _ = _extract("resnet", config, module)
    assert small_cfg.down_channels == [4, 8, 14] and small_cfg.block_channels == [16, 16] and small_cfg.affine_norm
    x = torch.from_numpy(model.sample_inputs(3, 4))
    with torch.no_grad():
        masked = module.eval()(x)
        torch.testing.assert_close(small(x), masked, rtol=1e-5, atol=1e-6)
        keep["model.7"] = torch.tensor([c for c in range(16) if c not in (1, 3, 5)])
        untied, _, _ = build_family("resnet", pruned_config(config, layout, keep, cfg.width_fields()))
        copy_kept(module, untied, layout, keep)
        assert (untied.eval()(x) - masked).abs().max() > 1e-3


def test_resnet_slim_end_to_end_extracts_the_trained_masked_student(tmp_path):
    teacher = load_generator("resnet-tiny")
    out = apply_method(teacher, "slim", {"steps": 6, "batch": 2, "lr": 1e-2, "rho": 16.0, "bits": 0, "pool": 8,
                                         "finetune_steps": 0, "work_dir": str(tmp_path)})
    assert out.family == "resnet" and out.config["affine_norm"] is True
    widths = [v for vs in FAMILIES.get("resnet").config_cls.from_dict(out.config).width_fields().values() for v in vs]
    assert widths != [4, 8, 16, 16, 8, 4] and all(w >= 1 for w in widths)
    stats = out.compression[-1]["stats"]
    assert stats["affine_norm_added"] is True and stats["student"]["params"] < stats["teacher"]["params"]
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    masked = build_family("resnet", {**teacher.config, "affine_norm": True})[0]
    masked.load_state_dict(state["modules"]["student"])
    x = torch.from_numpy(teacher.sample_inputs(4, 5))
    with torch.no_grad():
        torch.testing.assert_close(out.module(x), masked.eval()(x), rtol=1e-5, atol=1e-6)


def test_cli_slim_resnet_then_export(tmp_path, capsys):
    ckpt = tmp_path / "s.pt"
    code = main(["compress", "resnet-tiny", "--method", "slim", "--steps", "4", "--finetune-steps", "2", "--batch",
                 "2", "--rho", "16", "--lr", "1e-2", "--out", str(ckpt), "--json"])
    record = json.loads(capsys.readouterr().out)
    assert code == 0 and record["records"][-1]["method"] == "slim"
    obj = torch.load(ckpt, weights_only=True)
    assert obj["family"] == "resnet" and obj["config"]["affine_norm"] is True and "down_channels" in obj["config"]
    assert any(k.endswith(".weight") and v.dim() == 1 for k, v in obj["state_dict"].items())  # the norm scales
    bundle = tmp_path / "bundle"
    code = main(["export", str(ckpt), "--formats", "onnx", "--out", str(bundle), "--inputs", "4",
                 "--calibration", "4", "--json"])
    capsys.readouterr()
    assert code == 0
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["model"]["config"] == obj["config"] and manifest["compression"] == record["records"]
    assert manifest["model"]["params"] == sum(v.numel() for k, v in obj["state_dict"].items())
    onnx = [a for a in manifest["artifacts"] if a["format"] == "onnx"][0]
    assert onnx["status"] == "ok"


def test_old_non_affine_resnet_checkpoints_still_load(tmp_path):
    from edgegan.models.loading import save_checkpoint

    shipped = load_generator("resnet-sketch")  # weights trained before affine_norm existed, loaded strictly
    assert "affine_norm" not in shipped.config and all(n.weight is None for n in _instance_norms(shipped.module))
    teacher = load_generator("resnet-tiny")
    save_checkpoint(tmp_path / "old.pt", teacher.module, "resnet", teacher.config, "old-resnet")
    obj = torch.load(tmp_path / "old.pt", weights_only=True)
    assert "affine_norm" not in obj["config"]
    again = load_generator(str(tmp_path / "old.pt"))
    assert again.config == teacher.config and all(n.weight is None for n in _instance_norms(again.module))
    x = torch.from_numpy(teacher.sample_inputs(2, 0))
    with torch.no_grad():
        assert torch.equal(again.module(x), teacher.module(x))


def test_scale_lr_drives_the_norm_scales_and_the_proximal_threshold(tmp_path):
    """One step, lr ~ 0 for the convs, scale_lr 0.1, rho 1: Adam's first step moves every scale
    by exactly scale_lr * sign(grad) (1 -> 0.9 or 1.1), then the threshold rho * scale_lr = 0.1
    takes 0.1 off: every scale ends at 0.8 or 1.0, and the conv weights stay where they were."""
    teacher = load_generator("resnet-tiny")
    apply_method(teacher, "slim", {"steps": 1, "batch": 2, "lr": 1e-9, "scale_lr": 0.1, "rho": 1.0, "bits": 0,
                                   "pool": 4, "finetune_steps": 0, "work_dir": str(tmp_path)})
    state = torch.load(tmp_path / "state.pt", weights_only=True)["modules"]["student"]
    before = teacher.module.state_dict()
    scales = torch.cat([v for k, v in state.items() if k not in before and k.endswith("weight")])
    assert len(scales) == 4 + 8 + 16 + 16 + 16 + 8 + 4
    near = torch.minimum((scales - 0.8).abs(), (scales - 1.0).abs())
    assert near.max() < 0.01 and (scales - 0.8).abs().min() < 0.01  # (Adam eps blurs tiny gradients)
    assert max(float((state[k] - v).abs().max()) for k, v in before.items()) < 1e-6
    with pytest.raises(ConfigError, match="scale_lr must be > 0"):
        slim.SlimConfig(scale_lr=0.0)
