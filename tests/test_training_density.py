"""`density` (density-structure pruning): neighbourhoods are true nearest neighbours, the kernel
weights are what they claim, the MACs model is torch's FLOP count, the budget term drives the
MACs to the target, the extracted subnet computes what the masked model computes, the agents
exchange feedback, resume is exact, the result exports, bad input is a one-line error."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgegan.cli.main import main  # noqa: E402
from edgegan.compress import apply_method  # noqa: E402
from edgegan.compress.posttrain.channel_layout import channel_layout, copy_kept, pruned_config  # noqa: E402
from edgegan.compress.training import density, slim  # noqa: E402
from edgegan.errors import ConfigError  # noqa: E402
from edgegan.models import load_generator  # noqa: E402
from edgegan.models.loading import build_family  # noqa: E402
from edgegan.models.stats import count_macs  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAST = {"batch": 8, "lr": 1e-3, "pool": 24, "critic_width": 4, "finetune_steps": 0}


def test_neighbourhoods_are_the_true_nearest_neighbours():
    gen = torch.Generator().manual_seed(0)
    points = torch.randn(40, 3, 4, 4, generator=gen)
    points[7] = points[3]  # a duplicate: distance 0, must be first for 3 and for 7, never itself
    idx, dist = density.nearest_neighbours(points, 5)
    flat = points.reshape(40, -1).numpy().astype(np.float64)
    for i in range(40):
        d = np.sqrt(((flat - flat[i]) ** 2).sum(1))
        d[i] = np.inf
        expect = np.argsort(d, kind="stable")[:5]
        assert idx[i].tolist() == expect.tolist()
        np.testing.assert_allclose(dist[i].numpy(), d[expect], rtol=1e-5, atol=1e-5)
    assert idx[3, 0] == 7 and idx[7, 0] == 3 and float(dist[3, 0]) == pytest.approx(0.0, abs=1e-3)


def test_kernel_weights_favour_the_closest_and_sum_to_the_neighbourhood_size():
    dist = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])
    w = density.kernel_weights(dist, bandwidth=1.0)
    torch.testing.assert_close(w.sum(1), torch.tensor([4.0, 4.0]))
    assert w[0].tolist() == sorted(w[0].tolist(), reverse=True)  # centre first, then by distance
    raw = torch.exp(-torch.tensor([0.0, 1.0, 4.0, 9.0]) / 2)
    torch.testing.assert_close(w[0], raw * 4 / raw.sum())
    assert torch.allclose(density.kernel_weights(torch.zeros(2, 3), 1.0), torch.ones(2, 4))


def _layout(name):
    model = load_generator(name)
    module, cfg, config = slim.affine_student(model.family, model.config, model.module)
    layout = channel_layout(model.family, cfg, module)
    return model, module, cfg, config, layout, slim.slimmable_norms(module, layout)


@pytest.mark.parametrize("name", ["resnet-tiny", "unet-tiny"])
def test_macs_model_equals_the_flop_counter_on_extracted_subnets(name):
    model, module, cfg, config, layout, norms = _layout(name)
    example = model.sample_inputs(1, 0)
    macs = density.MacsModel(module, layout, example, list(norms))
    assert macs.full == count_macs(module, example) == count_macs(model.module, example)
    gen = torch.Generator().manual_seed(2)
    for _ in range(3):
        keep = {g: torch.randperm(len(ls[0].weight), generator=gen)[:int(torch.randint(1, len(ls[0].weight) + 1, (1,),
                                                                                     generator=gen))].sort().values
                for g, ls in norms.items()}
        small = build_family(model.family, pruned_config(config, layout, keep, cfg.width_fields()))[0]
        assert macs.macs({g: len(v) for g, v in keep.items()}) == count_macs(small, example)


def test_projection_keeps_the_highest_logits_and_meets_the_budget():
    model, module, cfg, config, layout, norms = _layout("resnet-tiny")
    macs = density.MacsModel(module, layout, model.sample_inputs(1, 0), list(norms))
    gen = torch.Generator().manual_seed(3)
    logits = {g: torch.randn(len(ls[0].weight), generator=gen) for g, ls in norms.items()}
    for target in (0.2, 0.5, 0.8):
        keep = density.project_to_budget(logits, macs, target)
        widths = {g: len(v) for g, v in keep.items()}
        assert macs.ratio(widths) <= target
        kept = [float(logits[g][c]) for g, v in keep.items() for c in v.tolist()]
        dropped = [(float(logits[g][c]), g) for g in keep for c in range(len(logits[g])) if c not in keep[g].tolist()]
        # every dropped channel ranks below every kept one, except where its group is at its 1-channel floor
        assert all(lg <= min(kept) or widths[g] == 1 for lg, g in dropped)
        # and the budget is tight: the best dropped channel back in (if its group allows) breaks it
        best = max(dropped)
        assert macs.ratio({**widths, best[1]: widths[best[1]] + 1}) > target


@pytest.mark.parametrize("name", ["resnet-tiny", "unet-tiny"])
def test_extracted_subnet_computes_what_the_hard_masked_model_computes(name):
    model, module, cfg, config, layout, norms = _layout(name)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():  # non-trivial scales and shifts, so a channel left half-alive would show
        for layers in norms.values():
            for n in layers:
                n.weight.copy_(torch.rand(n.weight.shape, generator=gen) + 0.5)
                n.bias.copy_(torch.rand(n.bias.shape, generator=gen) + 0.5)
    macs = density.MacsModel(module, layout, model.sample_inputs(1, 0), list(norms))
    logits = {g: torch.randn(len(ls[0].weight), generator=gen) for g, ls in norms.items()}
    keep = density.project_to_budget(logits, macs, 0.4)
    hard = {}
    for g, ls in norms.items():
        hard[g] = torch.zeros(len(ls[0].weight))
        hard[g][keep[g]] = 1.0
    x = torch.from_numpy(model.sample_inputs(3, 5))
    handles = density.gate_norms(norms, hard)
    module.eval()
    with torch.no_grad():
        masked = module(x)
    for h in handles:
        h.remove()
    density.fold_masks(norms, keep)
    with torch.no_grad():  # folding the masks into the norms (no hooks) is the same function
        torch.testing.assert_close(module(x), masked, rtol=1e-5, atol=1e-6)
    small = build_family(model.family, pruned_config(config, layout, keep, cfg.width_fields()))[0]
    copy_kept(module, small, layout, keep)
    with torch.no_grad():
        torch.testing.assert_close(small.eval()(x), masked, rtol=1e-5, atol=1e-6)
    assert count_macs(small, model.sample_inputs(1, 0)) / macs.full <= 0.4


def test_budget_term_drives_the_macs_to_the_target(tmp_path):
    """Tolerance: the gates' expected MACs ratio over the last 10 of 60 steps is within 0.05 of
    the target (0.3 and 0.6); without the budget term (weight 0) it drifts only to ~0.6 (gate
    noise), far from 0.3. The result is <= target."""
    teacher = load_generator("resnet-tiny")
    for target in (0.6, 0.3):
        out = apply_method(teacher, "density", {**FAST, "steps": 60, "target_macs": target,
                                                "work_dir": str(tmp_path / f"t{target}")})
        rows = json.loads((tmp_path / f"t{target}" / "training.json").read_text())["losses"]
        assert rows[0]["macs_ratio"] > 0.9
        assert abs(np.mean([r["macs_ratio"] for r in rows[-10:]]) - target) < 0.05
    stats = out.compression[-1]["stats"]
    assert stats["macs_ratio"] <= 0.3 and stats["macs_ratio"] == pytest.approx(
        count_macs(out.module, teacher.sample_inputs(1, 0)) / count_macs(teacher.module, teacher.sample_inputs(1, 0)),
        abs=1e-4)
    apply_method(teacher, "density", {**FAST, "steps": 60, "target_macs": 0.3, "budget_weight": 0.0,
                                      "work_dir": str(tmp_path / "b")})
    rows = json.loads((tmp_path / "b" / "training.json").read_text())["losses"]
    assert np.mean([r["macs_ratio"] for r in rows[-10:]]) > 0.5


def _agent_logits(state: dict, prefix: str) -> torch.Tensor:
    s = state["modules"][prefix]
    return s["logits"] + s["mix.weight"] @ s["feedback"] + s["mix.bias"]


def test_end_to_end_result_is_the_extracted_trained_masked_student_and_agents_exchange_feedback(tmp_path):
    teacher = load_generator("unet-tiny")
    out = apply_method(teacher, "density", {**FAST, "steps": 12, "target_macs": 0.45, "work_dir": str(tmp_path)})
    assert out.family == "unet" and out.config != teacher.config
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    model, module, cfg, config, layout, norms = _layout("unet-tiny")
    module.load_state_dict(state["modules"]["student"])
    logits = dict(zip(norms, torch.split(_agent_logits(state, "agent_g"), [len(ls[0].weight) for ls in norms.values()])))
    keep = density.project_to_budget(logits, density.MacsModel(module, layout, teacher.sample_inputs(1, 0),
                                                               list(norms)), 0.45)
    density.fold_masks(norms, keep)
    x = torch.from_numpy(teacher.sample_inputs(4, 6))
    with torch.no_grad():
        torch.testing.assert_close(out.module(x), module.eval()(x), rtol=1e-5, atol=1e-6)
    # feedback: the generator agent holds the critic's kept fractions and loss of the last step,
    # the critic agent the generator's kept fractions, adversarial loss and MACs ratio
    last = json.loads((tmp_path / "training.json").read_text())["losses"][-1]
    fb_g, fb_d = state["modules"]["agent_g"]["feedback"], state["modules"]["agent_d"]["feedback"]
    assert len(fb_g) == 3 + 1 and float(fb_g[-1]) == pytest.approx(last["critic"], rel=1e-5)
    assert ((fb_g[:3] > 0) & (fb_g[:3] <= 1)).all()
    assert len(fb_d) == len(norms) + 2 and float(fb_d[-2]) == pytest.approx(last["adv"], rel=1e-5)
    assert float(fb_d[-1]) == pytest.approx(last["macs_ratio"], rel=1e-5)
    for agent in ("agent_g", "agent_d"):  # the feedback map learned (it starts at zero)
        assert state["modules"][agent]["mix.weight"].abs().sum() > 0


def test_resumed_run_ends_bit_identical_to_an_uninterrupted_one(tmp_path):
    teacher = load_generator("resnet-tiny")
    base = {**FAST, "target_macs": 0.5, "save_every": 3}
    full = apply_method(teacher, "density", {**base, "steps": 8, "work_dir": str(tmp_path / "full")})
    apply_method(teacher, "density", {**base, "steps": 5, "work_dir": str(tmp_path / "part")})
    resumed = apply_method(teacher, "density", {**base, "steps": 8, "work_dir": str(tmp_path / "part"), "resume": True})
    assert resumed.config == full.config
    for (k, a), (_, b) in zip(full.module.state_dict().items(), resumed.module.state_dict().items()):
        assert torch.equal(a, b), k
    a = json.loads((tmp_path / "full" / "training.json").read_text())
    b = json.loads((tmp_path / "part" / "training.json").read_text())
    assert a["losses"] == b["losses"] and b["resumed_from"] == 5


@pytest.mark.parametrize("config,fragment", [
    ({"target_macs": 0.0}, r"target_macs must be in \(0, 1\)"),
    ({"target_macs": 1.0}, r"target_macs must be in \(0, 1\)"),
    ({"target_macs": 1.5}, r"target_macs must be in \(0, 1\)"),
    ({"target_macs": -0.2}, r"target_macs must be in \(0, 1\)"),
    ({"target_macs": 0.01}, "below the smallest ratio"),
    ({"neighbours": 0}, "neighbours must be >= 1"),
    ({"neighbours": 8, "batch": 8}, "batch must hold at least one neighbourhood"),
    ({"gate_lr": 0.0}, "gate_lr must be > 0"),
])
def test_bad_input_is_a_one_line_error(config, fragment):
    with pytest.raises(ConfigError, match=fragment) as info:
        apply_method(load_generator("resnet-tiny"), "density", {"steps": 1, **config})
    assert "\n" not in str(info.value)


def test_dcgan_and_compressed_teachers_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="density prunes the zoo's resnet and unet") as info:
        apply_method(load_generator("dcgan-tiny"), "density", {"steps": 1})
    assert "\n" not in str(info.value)
    pruned = apply_method(load_generator("resnet-tiny"), "channel-prune", {"ratio": 0.5})
    with pytest.raises(ConfigError, match="already compressed"):
        apply_method(pruned, "density", {"steps": 1})


def test_cli_density_bad_target_names_the_flag(tmp_path, capsys):
    code = main(["compress", "resnet-tiny", "--method", "density", "--target-macs", "1.5", "--out",
                 str(tmp_path / "d.pt")])
    err = capsys.readouterr().err
    assert code == 2 and "(flag --target-macs)" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_density_then_export(tmp_path, capsys):
    ckpt = tmp_path / "d.pt"
    code = main(["compress", "resnet-tiny", "--method", "density", "--target-macs", "0.5", "--steps", "4",
                 "--finetune-steps", "2", "--batch", "8", "--out", str(ckpt), "--json"])
    record = json.loads(capsys.readouterr().out)
    assert code == 0 and record["records"][-1]["method"] == "density"
    obj = torch.load(ckpt, weights_only=True)
    assert obj["family"] == "resnet" and obj["config"]["affine_norm"] is True
    stats = record["records"][-1]["stats"]
    assert stats["macs_ratio"] <= 0.5 and stats["finetune"]["steps"] == 2
    bundle = tmp_path / "bundle"
    code = main(["export", str(ckpt), "--formats", "onnx", "--out", str(bundle), "--inputs", "4",
                 "--calibration", "4", "--json"])
    capsys.readouterr()
    assert code == 0
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["model"]["config"] == obj["config"] and manifest["compression"] == record["records"]
    assert [a for a in manifest["artifacts"] if a["format"] == "onnx"][0]["status"] == "ok"


def test_full_res_floor_keeps_the_stem_and_last_up_conv_wide(tmp_path):
    model, module, cfg, config, layout, norms = _layout("resnet-tiny")
    macs = density.MacsModel(module, layout, model.sample_inputs(1, 0), list(norms))
    assert macs.full_res_groups() == ["model.1", "model.14"]  # the stem and the last up conv write at 40x40
    sizes = {g: len(ls[0].weight) for g, ls in norms.items()}
    assert density.floors(macs, sizes, 0.5) == {g: 2 if g in ("model.1", "model.14") else 1 for g in sizes}
    # a floored gate vector: the 2 highest logits are on whatever was sampled; the others unchanged
    gates = density.floor_gates(torch.tensor([0.0, 1.0, 0.0, 0.0]), torch.tensor([3.0, -1.0, 2.0, -5.0]), 2)
    assert gates.tolist() == [1.0, 1.0, 1.0, 0.0]
    # end to end at a tight budget: without the floor the full-res groups fall to 1 channel, with it they keep 2 of 4
    teacher = load_generator("resnet-tiny")
    widths = {}
    for floor in (0.0, 0.5):
        out = apply_method(teacher, "density", {**FAST, "steps": 30, "target_macs": 0.36, "full_res_floor": floor,
                                                "work_dir": str(tmp_path / f"f{floor}")})
        stats = out.compression[-1]["stats"]
        assert stats["macs_ratio"] <= 0.36
        widths[floor] = (stats["groups"]["model.1"]["after"], stats["groups"]["model.14"]["after"])
    assert min(widths[0.5]) >= 2 and min(widths[0.0]) < 2, widths
