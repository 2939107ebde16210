"""Structured channel pruning: smaller models that compute the same thing when the removed
channels were dead, through DCGAN chains, ResNet skip additions and U-Net concatenations,
and that save, reload, export and convert like any zoo model."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgegan.compress import ChannelPruneConfig, apply_method, save_compressed  # noqa: E402
from edgegan.compress.posttrain.channel_layout import channel_layout  # noqa: E402
from edgegan.compress.posttrain.channel_prune import _family_config  # noqa: E402
from edgegan.errors import ConfigError  # noqa: E402
from edgegan.models import ZOO, load_generator  # noqa: E402
from edgegan.models.stats import count_macs, parameter_count  # noqa: E402

FAMILIES = ["dcgan-tiny", "resnet-tiny", "unet-tiny"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def outputs(model, n: int = 4) -> np.ndarray:
    with torch.no_grad():
        return model.module(torch.from_numpy(model.sample_inputs(n, 7))).numpy()


def with_running_stats(name: str):
    """A zoo model whose BatchNorm running statistics are not the init values, so slicing
    them wrongly would show in the outputs."""
    model = load_generator(name)
    model.module.train()
    with torch.no_grad():
        for seed in range(3):
            model.module(torch.from_numpy(model.sample_inputs(16, seed)))
    model.module.eval()
    return model


def kill_channels(model, ratio: float, seed: int = 0) -> dict[str, list[int]]:
    """Make floor(ratio * width) random channels of every group exactly zero everywhere
    (producer filters and biases, norm scale and shift): removing them must not change the
    output. Returns the killed channels per group."""
    module = model.module
    layout = channel_layout(model.family, _family_config(model), module)
    named = dict(module.named_modules())
    rng = np.random.default_rng(seed)
    killed = {}
    with torch.no_grad():
        for name, group in layout.groups.items():
            n_kill = int(np.floor(ratio * group.width + 1e-9))
            idx = sorted(rng.choice(group.width, size=n_kill, replace=False).tolist())
            killed[name] = idx
            for p in group.producers:
                conv = named[p]
                axis = 1 if isinstance(conv, torch.nn.ConvTranspose2d) else 0
                conv.weight.index_fill_(axis, torch.tensor(idx, dtype=torch.long), 0.0)
                if conv.bias is not None:
                    conv.bias[idx] = 0.0
            for n in group.norms:
                norm = named[n]
                if getattr(norm, "weight", None) is not None:
                    norm.weight[idx] = 0.0
                    norm.bias[idx] = 0.0
    return killed


@pytest.mark.parametrize("name, criterion", [
    ("dcgan-tiny", "l1"), ("dcgan-tiny", "norm-scale"), ("resnet-tiny", "l1"), ("unet-tiny", "l1"),
])
def test_removing_dead_channels_keeps_the_output_exactly(name, criterion):
    model = with_running_stats(name)
    killed = kill_channels(model, 0.5, seed=1)
    pruned = apply_method(model, "channel-prune", ChannelPruneConfig(ratio=0.5, criterion=criterion))
    stats = pruned.compression[-1]["stats"]
    for group, info in stats["groups"].items():
        assert info["after"] == info["before"] - len(killed[group])
    assert stats["skipped_groups"] == []
    np.testing.assert_allclose(outputs(pruned), outputs(model), atol=2e-6)


def test_norm_scale_on_unet_prunes_the_batchnorm_groups_and_keeps_the_output():
    model = with_running_stats("unet-tiny")
    layout = channel_layout("unet", _family_config(model), model.module)
    no_norm = [n for n, g in layout.groups.items() if not g.norms]
    assert len(no_norm) == 2  # outermost and innermost down convs have no norm after them
    kill_channels(model, 0.5, seed=2)
    pruned = apply_method(model, "channel-prune", {"ratio": 0.5, "criterion": "norm-scale"})
    assert sorted(pruned.compression[-1]["stats"]["skipped_groups"]) == sorted(no_norm)
    np.testing.assert_allclose(outputs(pruned), outputs(model), atol=2e-6)
    with pytest.raises(ConfigError, match="cannot rank group") as exc:
        apply_method(model, "channel-prune", {"ratio": 0.5, "criterion": "norm-scale", "layers": [no_norm[0]]})
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("name", FAMILIES)
def test_channel_pruned_model_is_smaller_in_params_and_macs_and_runs(name):
    model = load_generator(name)
    example = model.sample_inputs(1, 0)
    previous_params, previous_macs = parameter_count(model.module), count_macs(model.module, example)
    for ratio in (0.25, 0.5, 0.75):
        pruned = apply_method(model, "channel-prune", {"ratio": ratio})
        params, macs = parameter_count(pruned.module), count_macs(pruned.module, example)
        assert params < previous_params and macs < previous_macs
        stats = pruned.compression[-1]["stats"]
        assert (stats["params_after"], stats["macs_after"]) == (params, macs)
        out = outputs(pruned)
        assert out.shape == outputs(model).shape and np.isfinite(out).all()
        previous_params, previous_macs = params, macs


def test_ratio_zero_is_the_identity():
    model = load_generator("unet-tiny")
    same = apply_method(model, "channel-prune", {"ratio": 0.0})
    assert parameter_count(same.module) == parameter_count(model.module)
    np.testing.assert_array_equal(outputs(same), outputs(model))


def test_groups_can_be_selected_by_producer_name_and_unknown_names_fail():
    model = load_generator("dcgan-tiny")
    pruned = apply_method(model, "channel-prune", {"ratio": 0.5, "layers": ["main.3"]})
    assert pruned.config["hidden_channels"] == [16, 4, 4, 2]
    with pytest.raises(ConfigError, match=r"no prunable channel group named 'main\.4'.*did you mean"):
        apply_method(model, "channel-prune", {"ratio": 0.5, "layers": ["main.4"]})
    with pytest.raises(ConfigError, match="min_channels"):
        apply_method(model, "channel-prune", {"ratio": 0.5, "min_channels": 0})
    kept = apply_method(model, "channel-prune", {"ratio": 0.75, "min_channels": 2})
    assert min(kept.config["hidden_channels"]) == 2


def test_resnet_skip_stream_is_pruned_as_one_group():
    model = load_generator("resnet-tiny")
    pruned = apply_method(model, "channel-prune", {"ratio": 0.5, "layers": ["model.7"]})
    assert pruned.config["down_channels"] == [4, 8, 8]
    named = dict(pruned.module.named_modules())
    assert named["model.10.conv_block.5"].out_channels == 8  # the block's second conv writes the stream
    assert named["model.10.conv_block.1"].in_channels == 8
    assert named["model.11"].in_channels == 8  # the first up conv reads it


def test_quantized_then_channel_pruned_keeps_the_grid_and_the_record():
    model = load_generator("dcgan-tiny")
    q = apply_method(model, "quant", {"bits": 3})
    pruned = apply_method(q, "channel-prune", {"ratio": 0.5})
    for layer in pruned.module.modules():
        if isinstance(layer, torch.nn.ConvTranspose2d):
            w = layer.weight.detach().numpy()
            assert max(len(np.unique(w[:, c])) for c in range(w.shape[1])) <= 7
    assert [r["method"] for r in pruned.compression] == ["quant", "channel-prune"]
    assert pruned.compression[-1]["stats"]["packed_bytes"] < q.compression[-1]["stats"]["packed_bytes"]


@pytest.mark.parametrize("name", FAMILIES)
def test_pruned_checkpoint_reloads_from_family_and_config(name, tmp_path):
    model = load_generator(name)
    pruned = apply_method(model, "channel-prune", {"ratio": 0.5})
    ckpt, record_path, record = save_compressed(pruned, tmp_path / "p.pt", base_model=name, base=model)
    loaded = load_generator(str(ckpt))
    assert loaded.config == pruned.config
    assert loaded.compression == pruned.compression
    np.testing.assert_array_equal(outputs(loaded), outputs(pruned))
    assert record["summary"]["params"] < record["base_summary"]["params"]
    assert record["summary"]["macs"] < record["base_summary"]["macs"]
    assert record_path.name == "p.compression.json"


@pytest.mark.parametrize("name", FAMILIES)
def test_pruned_model_exports_a_smaller_onnx_and_converts_to_int8(name, tmp_path):
    import onnx

    from edgegan.converters.base import ConvertContext, ConvertOptions
    from edgegan.converters.ort_int8 import OrtInt8
    from edgegan.export.onnx import export_onnx, onnx_session

    model = load_generator(name)
    pruned = apply_method(model, "channel-prune", {"ratio": 0.5})
    inputs = pruned.sample_inputs(8, 0)
    full_path, pruned_path = tmp_path / "full.onnx", tmp_path / "pruned.onnx"
    export_onnx(model.module, inputs, full_path, prefer="legacy")
    info = export_onnx(pruned.module, inputs, pruned_path)  # validated against torch inside
    assert info.max_abs_err_vs_torch <= 1e-4

    def weight_count(path):
        return sum(int(np.prod(t.dims)) for t in onnx.load(str(path)).graph.initializer)

    assert weight_count(pruned_path) < 0.5 * weight_count(full_path)
    assert pruned_path.stat().st_size < full_path.stat().st_size
    ctx = ConvertContext(module=pruned.module, onnx_path=pruned_path, calibration=pruned.sample_inputs(32, 1),
                         input_shape=list(pruned.input_spec.shape), workdir=tmp_path, out_dir=tmp_path,
                         options=ConvertOptions())
    result = OrtInt8().convert(ctx)
    out = onnx_session(result.path).run(None, {"input": inputs})[0]
    ref = outputs_of(pruned, inputs)
    assert out.shape == ref.shape
    assert np.abs(out - ref).mean() < 0.05


def outputs_of(model, inputs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.module(torch.from_numpy(inputs)).numpy()


@pytest.mark.parametrize("name", list(ZOO))
def test_channel_layout_matches_every_zoo_architecture(name):
    """Generated from the zoo: the layout's channel counts agree with the built module, so
    every family and size (not only the tiny ones) can be channel-pruned."""
    from edgegan.models.loading import build_family

    entry = ZOO.get(name)
    module, cfg, _ = build_family(entry.family, entry.config)
    layout = channel_layout(entry.family, cfg, module)  # raises on any mismatch
    assert sum(len(g.producers) for g in layout.groups.values()) >= len(layout.groups) >= 4
