"""Post-training compression methods do what they claim, on real tiny generators.

Clipped weights lie within ±c, k-bit weights take at most 2^k values per channel/tensor,
magnitude pruning reaches exactly the requested sparsity, records are plain JSON, and every
bad option is a one-line ConfigError.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgegan.compress import (  # noqa: E402
    METHODS, ClipConfig, PipelineConfig, PruneConfig, QuantConfig, apply_method, compress, method_config,
    restore_activation_quant, save_compressed,
)
from edgegan.compress.layers import weight_layers  # noqa: E402
from edgegan.errors import ConfigError, UnknownNameError  # noqa: E402
from edgegan.models import load_generator  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dcgan():
    return load_generator("dcgan-tiny")


@pytest.fixture(scope="module")
def resnet():
    return load_generator("resnet-tiny")


def weights(model) -> dict[str, np.ndarray]:
    return {n: m.weight.detach().numpy().copy() for n, m in weight_layers(model.module).items()}


def outputs(model, n: int = 4) -> np.ndarray:
    with torch.no_grad():
        return model.module(torch.from_numpy(model.sample_inputs(n, 123))).numpy()


# ---------------------------------------------------------------- registry and configs

def test_import_does_not_pull_heavy_runtimes():
    code = ("import sys, edgegan.compress; "
            "bad = [m for m in ('torch', 'tensorflow', 'onnxruntime') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_config_round_trips_through_json(name):
    method = METHODS.get(name)
    cfg = method.config_cls(**({"value": 0.5} if name == "clip" else {}))
    again = method.config_cls.from_json(cfg.to_json())
    assert again == cfg
    assert method_config(name, cfg.to_dict()) == cfg


def test_pipeline_json_accepts_a_list_and_round_trips():
    text = json.dumps([{"method": "clip", "config": {"percentile": 99.0}},
                       {"method": "quant", "config": {"bits": 4}}])
    pipe = PipelineConfig.from_json(text)
    assert [s.method for s in pipe.steps] == ["clip", "quant"]
    assert PipelineConfig.from_json(pipe.to_json()) == pipe
    assert PipelineConfig.from_dict({"steps": json.loads(text)}) == pipe


def test_pipeline_equals_applying_steps_in_order(dcgan):
    pipe = PipelineConfig.of(("prune", PruneConfig(sparsity=0.3)), ("quant", {"bits": 5}))
    piped = compress(dcgan, pipe)
    by_hand = apply_method(apply_method(dcgan, "prune", {"sparsity": 0.3}), "quant", {"bits": 5})
    np.testing.assert_array_equal(outputs(piped), outputs(by_hand))
    assert [r["method"] for r in piped.compression] == ["prune", "quant"]
    json.dumps(piped.compression)


def test_methods_never_modify_their_input(dcgan):
    before = weights(dcgan)
    for name, cfg in [("clip", {"value": 0.01}), ("quant", {"bits": 2}), ("prune", {"sparsity": 0.9}),
                      ("channel-prune", {"ratio": 0.5})]:
        apply_method(dcgan, name, cfg)
    after = weights(dcgan)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert dcgan.compression == []


# ---------------------------------------------------------------- clipping

def test_clip_value_bounds_selected_layers_only(dcgan):
    out = apply_method(dcgan, "clip", ClipConfig(value=0.02, exclude=["main.12"]))
    w0, w1 = weights(dcgan), weights(out)
    for name, w in w1.items():
        if name == "main.12":
            np.testing.assert_array_equal(w, w0[name])
        else:
            assert np.abs(w).max() <= np.float32(0.02)
            inside = np.abs(w0[name]) <= 0.02
            np.testing.assert_array_equal(w[inside], w0[name][inside])
    assert out.compression[-1]["stats"]["clipped_fraction"] > 0.1


def test_clip_percentile_is_per_layer(dcgan):
    out = apply_method(dcgan, "clip", ClipConfig(percentile=95.0))
    stats = out.compression[-1]["stats"]["layers"]
    for name, w in weights(out).items():
        c = stats[name]["c"]
        assert c == pytest.approx(np.percentile(np.abs(weights(dcgan)[name]), 95.0), rel=1e-6)
        assert np.abs(w).max() <= c
        if w.size >= 100:  # the 1x1 output conv of dcgan-tiny has 2 weights
            assert stats[name]["clipped_fraction"] == pytest.approx(0.05, abs=0.02)
    assert len({round(s["c"], 9) for s in stats.values()}) == len(stats)  # one bound per layer


# ---------------------------------------------------------------- quantization

@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("scheme", ["symmetric", "asymmetric"])
@pytest.mark.parametrize("granularity", ["per-tensor", "per-channel"])
def test_k_bit_weights_take_at_most_2_to_the_k_values(dcgan, bits, scheme, granularity):
    out = apply_method(dcgan, "quant", QuantConfig(bits=bits, scheme=scheme, granularity=granularity))
    limit = 2**bits - (1 if scheme == "symmetric" else 0)
    layers = weight_layers(out.module)
    stats = out.compression[-1]["stats"]["layers"]
    original = weights(dcgan)
    for name, layer in layers.items():
        w = layer.weight.detach().numpy()
        axis = 1 if isinstance(layer, torch.nn.ConvTranspose2d) else 0
        groups = [w] if granularity == "per-tensor" else [np.take(w, i, axis=axis) for i in range(w.shape[axis])]
        used = max(len(np.unique(g)) for g in groups)
        assert used <= limit
        assert stats[name]["max_levels_used"] == used
        # uniform grid: error at most half a step of that tensor/channel's range
        step = (np.abs(original[name]).max() / (2 ** (bits - 1) - 1) if scheme == "symmetric"
                else (max(original[name].max(), 0) - min(original[name].min(), 0)) / (2**bits - 1))
        assert np.abs(w - original[name]).max() <= step / 2 + 1e-6
    if bits >= 6 and granularity == "per-channel":
        assert any(stats[n]["max_levels_used"] > 2 ** (bits - 1) for n in stats)  # the grid is really used


def test_quant_error_shrinks_with_bits(dcgan):
    ref = outputs(dcgan)
    errs = [np.abs(outputs(apply_method(dcgan, "quant", {"bits": k})) - ref).mean() for k in (2, 4, 8)]
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 0.01


def test_quant_record_reports_packed_and_real_sizes(dcgan):
    out = apply_method(dcgan, "quant", QuantConfig(bits=8, granularity="per-tensor"))
    stats = out.compression[-1]["stats"]
    layers = weight_layers(dcgan.module)
    n_weights = sum(m.weight.numel() for m in layers.values())
    n_float = sum(t.numel() for k, t in dcgan.module.state_dict().items() if not k.endswith("num_batches_tracked"))
    assert stats["float_bytes"] == 4 * n_float
    expected_bits = 8 * n_weights + 32 * len(layers) + 32 * (n_float - n_weights)
    assert stats["weight_sparsity"] < 1 / 8  # so dense storage is the smaller one
    assert stats["packed_bytes"] == -(-expected_bits // 8)
    assert stats["int8_container_bytes"] == stats["packed_bytes"]
    four = apply_method(dcgan, "quant", QuantConfig(bits=4, granularity="per-tensor")).compression[-1]["stats"]
    assert four["packed_bytes"] < stats["packed_bytes"] < stats["float_bytes"]
    assert four["int8_container_bytes"] == stats["int8_container_bytes"]  # int4 still runs in int8 containers
    assert "deploys as int8" in four["deploys_as"]


def test_pruned_zeros_survive_quantization(dcgan):
    for scheme in ("symmetric", "asymmetric"):
        pruned = apply_method(dcgan, "prune", {"sparsity": 0.6})
        q = apply_method(pruned, "quant", {"bits": 3, "scheme": scheme})
        for name, w in weights(pruned).items():
            assert np.all(weights(q)[name][w == 0] == 0)


def test_activation_fake_quant_is_calibrated_exported_and_restorable(dcgan, tmp_path):
    from edgegan.export.onnx import export_onnx

    weight_only = apply_method(dcgan, "quant", {"bits": 8})
    with_acts = apply_method(dcgan, "quant", {"bits": 8, "activations": True, "activation_bits": 4,
                                              "calibration_samples": 64})
    acts = with_acts.compression[-1]["stats"]["activations"]
    assert set(acts) == set(weight_layers(dcgan.module))
    assert all(a["observed_min"] >= 0 for n, a in acts.items() if n != "main.0")  # after ReLU
    eight = apply_method(dcgan, "quant", {"bits": 8, "activations": True, "calibration_samples": 64})
    diff4 = np.abs(outputs(with_acts) - outputs(weight_only)).mean()
    diff8 = np.abs(outputs(eight) - outputs(weight_only)).mean()
    assert diff4 > 4 * diff8 > 0  # activations really are on a 2^k grid: coarser grid, larger error
    onnx_path = tmp_path / "actq.onnx"
    export_onnx(with_acts.module, with_acts.sample_inputs(4, 0), onnx_path)
    import onnx

    assert "Round" in {n.op_type for n in onnx.load(str(onnx_path)).graph.node}
    ckpt, _, _ = save_compressed(with_acts, tmp_path / "q.pt", base_model="dcgan-tiny")
    loaded = load_generator(str(ckpt))
    np.testing.assert_array_equal(outputs(loaded), outputs(weight_only))  # checkpoint = weights only
    np.testing.assert_allclose(outputs(restore_activation_quant(loaded)), outputs(with_acts), atol=1e-6)


# ---------------------------------------------------------------- magnitude pruning

@pytest.mark.parametrize("sparsity", [0.0, 0.25, 0.5, 0.9])
def test_layerwise_pruning_hits_the_requested_sparsity_in_every_layer(dcgan, sparsity):
    out = apply_method(dcgan, "prune", PruneConfig(sparsity=sparsity, exclude=["main.12"]))
    original = weights(dcgan)
    for name, w in weights(out).items():
        if name == "main.12":
            np.testing.assert_array_equal(w, original[name])
            continue
        assert (w == 0).sum() == round(sparsity * w.size)
        kept = w != 0
        if sparsity > 0:  # the survivors are the largest magnitudes
            assert np.abs(original[name][kept]).min() >= np.abs(original[name][~kept]).max()
        np.testing.assert_array_equal(w[kept], original[name][kept])


def test_global_pruning_hits_the_total_and_prunes_layers_unevenly(dcgan):
    out = apply_method(dcgan, "prune", PruneConfig(sparsity=0.7, scope="global"))
    w = weights(out)
    total = sum(a.size for a in w.values())
    assert sum((a == 0).sum() for a in w.values()) == round(0.7 * total)
    per_layer = out.compression[-1]["stats"]["layer_sparsity"]
    assert max(per_layer.values()) - min(per_layer.values()) > 0.1
    assert out.compression[-1]["stats"]["sparsity"] == pytest.approx(0.7, abs=1e-5)


def test_pruning_is_exact_even_with_tied_magnitudes(dcgan):
    q = apply_method(dcgan, "quant", {"bits": 3})  # seven values per channel: massive ties
    out = apply_method(q, "prune", {"sparsity": 0.8})
    before = weights(q)
    for name, a in weights(out).items():
        already = (before[name] == 0).sum()
        assert already < round(0.8 * a.size)  # so the exact count below is a real check
        assert (a == 0).sum() == round(0.8 * a.size)


def test_sparse_packing_pays_off_above_one_over_bits(dcgan):
    dense = apply_method(dcgan, "prune", {"sparsity": 0.0}).compression[-1]["stats"]
    sparse = apply_method(dcgan, "prune", {"sparsity": 0.9}).compression[-1]["stats"]
    assert dense["packed_bytes"] == dense["float_bytes"]
    assert sparse["packed_bytes"] < 0.25 * sparse["float_bytes"]
    assert sparse["float_bytes"] == dense["float_bytes"]  # the float file does not shrink


# ---------------------------------------------------------------- bad input: one-line errors

@pytest.mark.parametrize("name, cfg, fragment", [
    ("prune", {"sparsity": 1.0}, "sparsity must be in [0, 1)"),
    ("prune", {"sparsity": 1.5}, "sparsity must be in [0, 1)"),
    ("prune", {"sparsity": -0.1}, "sparsity must be in [0, 1)"),
    ("prune", {"scope": "everything"}, "scope 'everything' unknown"),
    ("quant", {"bits": 1}, "bits must be in 2..8"),
    ("quant", {"bits": 9}, "bits must be in 2..8"),
    ("quant", {"bits": 16}, "bits must be in 2..8"),
    ("quant", {"activation_bits": 12}, "activation_bits must be in 2..8"),
    ("quant", {"scheme": "log"}, "scheme 'log' unknown"),
    ("quant", {"bits": "4"}, "expected int"),
    ("clip", {}, "exactly one of value"),
    ("clip", {"value": 0.1, "percentile": 99.0}, "exactly one of value"),
    ("clip", {"value": -1.0}, "must be > 0"),
    ("clip", {"percentile": 150.0}, "percentile must be in (0, 100]"),
    ("channel-prune", {"ratio": 1.0}, "ratio must be in [0, 1)"),
    ("channel-prune", {"criterion": "random"}, "criterion 'random' unknown"),
    ("quant", {"bitz": 4}, "unknown field(s) bitz"),
])
def test_bad_options_are_one_line_config_errors(dcgan, name, cfg, fragment):
    with pytest.raises(ConfigError) as exc:
        apply_method(dcgan, name, cfg)
    assert fragment in str(exc.value)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("name", ["clip", "quant", "prune"])
def test_unknown_layer_names_suggest_the_closest(dcgan, name):
    extra = {"value": 0.1} if name == "clip" else {}
    with pytest.raises(ConfigError, match=r"no layer named 'main\.99'.*layers are: main\.0") as exc:
        apply_method(dcgan, name, {**extra, "layers": ["main.99"]})
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match=r"did you mean 'main\.12'"):
        apply_method(dcgan, name, {**extra, "exclude": ["main.12x"]})


def test_unknown_method_name_has_did_you_mean(dcgan):
    with pytest.raises(UnknownNameError, match=r"did you mean 'quant'"):
        apply_method(dcgan, "qaunt", {})
    with pytest.raises(ConfigError, match=r"unknown compression method 'prun'"):
        PipelineConfig.from_dict([{"method": "prun", "config": {}}])
    with pytest.raises(ConfigError, match="no steps"):
        PipelineConfig.from_dict([])


def test_norm_scale_on_a_model_without_affine_norms_is_a_config_error(resnet):
    with pytest.raises(ConfigError, match="norm-scale needs affine norm layers.*use --criterion l1") as exc:
        apply_method(resnet, "channel-prune", {"criterion": "norm-scale", "ratio": 0.5})
    assert "\n" not in str(exc.value)


# ---------------------------------------------------------------- BatchNorm re-calibration

def test_bn_recalibration_sets_running_stats_to_the_calibration_statistics(dcgan):
    pruned = apply_method(dcgan, "prune", {"sparsity": 0.6, "scope": "global"})
    recal = apply_method(pruned, "bn-recalibrate", {"samples": 256, "batch": 64, "seed": 3})
    z = torch.from_numpy(dcgan.sample_inputs(256, 3))
    with torch.no_grad():
        first_bn_input = recal.module.main[0](z)  # the weights are the pruned ones, unchanged by recal
    bn = recal.module.main[1]
    np.testing.assert_allclose(bn.running_mean.numpy(), first_bn_input.mean(dim=(0, 2, 3)).numpy(), atol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), first_bn_input.var(dim=(0, 2, 3)).numpy(), rtol=0.05)
    assert bn.momentum == 0.1 and not recal.module.training
    np.testing.assert_array_equal(weights(recal)["main.3"], weights(pruned)["main.3"])
    assert [r["method"] for r in recal.compression] == ["prune", "bn-recalibrate"]
    assert recal.compression[-1]["stats"]["layers"] == 4


def test_bn_recalibration_needs_batchnorm(resnet):
    with pytest.raises(ConfigError, match="needs BatchNorm layers") as exc:
        apply_method(resnet, "bn-recalibrate", {})
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="samples must be >= 2"):
        apply_method(resnet, "bn-recalibrate", {"samples": 1})
