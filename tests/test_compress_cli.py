"""`edgegan compress`: checkpoint + NAME.compression.json, pipelines, one-line errors with exit
codes, nothing written on failure, and the record carried by `edgegan export` into bundle.json."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgegan.cli.main import main  # noqa: E402
from edgegan.compress import apply_method, compress  # noqa: E402
from edgegan.models import load_generator  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def outputs(model) -> np.ndarray:
    with torch.no_grad():
        return model.module(torch.from_numpy(model.sample_inputs(4, 5))).numpy()


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["compress", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_compress_writes_checkpoint_and_record_matching_the_api(tmp_path, capsys):
    ckpt = tmp_path / "q.pt"
    code, out, _ = run_cli(capsys, "dcgan-tiny", "--method", "quant", "--bits", "4", "--granularity",
                           "per-tensor", "--out", str(ckpt), "--json")
    assert code == 0
    record = json.loads(out)
    assert record == json.loads((tmp_path / "q.compression.json").read_text())
    assert record["name"] == "dcgan-tiny-q4" and record["base_model"] == "dcgan-tiny"
    assert record["pipeline"] == [{"method": "quant", "config": record["records"][0]["config"]}]
    assert record["records"][0]["config"]["bits"] == 4
    assert record["summary"]["packed_bytes"] < record["base_summary"]["packed_bytes"] / 4
    assert record["checkpoint"]["bytes"] == ckpt.stat().st_size
    loaded = load_generator(str(ckpt))
    assert loaded.compression == record["records"]
    api = apply_method(load_generator("dcgan-tiny"), "quant", {"bits": 4, "granularity": "per-tensor"})
    np.testing.assert_array_equal(outputs(loaded), outputs(api))
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def test_pipeline_json_inline_file_and_dry_run_replay(tmp_path, capsys):
    steps = [{"method": "clip", "config": {"percentile": 99.0}}, {"method": "quant", "config": {"bits": 3}}]
    code, out, _ = run_cli(capsys, "dcgan-tiny", "--pipeline", json.dumps(steps), "--dry-run")
    assert code == 0
    full = json.loads(out)
    assert [s["method"] for s in full] == ["clip", "quant"] and full[1]["config"]["scheme"] == "symmetric"
    pipe_file = tmp_path / "pipe.json"
    pipe_file.write_text(out)
    code, out, _ = run_cli(capsys, "dcgan-tiny", "--pipeline", str(pipe_file), "--out", str(tmp_path / "a.pt"),
                           "--json")
    assert code == 0
    record = json.loads(out)
    assert record["name"] == "dcgan-tiny-clip-q3"
    expected = compress(load_generator("dcgan-tiny"), steps)
    np.testing.assert_array_equal(outputs(load_generator(str(tmp_path / "a.pt"))), outputs(expected))


def test_compressing_a_compressed_checkpoint_keeps_the_history(tmp_path, capsys):
    first, second = tmp_path / "cp.pt", tmp_path / "cpq.pt"
    assert run_cli(capsys, "unet-tiny", "--method", "channel-prune", "--ratio", "0.5", "--out", str(first))[0] == 0
    code, out, _ = run_cli(capsys, str(first), "--method", "quant", "--bits", "6", "--out", str(second),
                           "--record", str(tmp_path / "second.json"), "--json")
    assert code == 0
    record = json.loads(out)
    assert [s["method"] for s in record["pipeline"]] == ["channel-prune", "quant"]
    assert record["base_model"] == "unet-tiny"
    assert record["config"]["down_channels"] == [2, 4, 8, 16, 16]
    assert load_generator(str(second)).real_inputs is None  # unet-tiny has none; base found anyway


@pytest.mark.parametrize("argv, fragment", [
    (["--method", "prune", "--sparsity", "1"], "sparsity must be in [0, 1)"),
    (["--method", "quant", "--bits", "9"], "bits must be in 2..8"),
    (["--method", "quant", "--bits", "1"], "bits must be in 2..8"),
    (["--method", "prune", "--layers", "main.7"], "no layer named 'main.7'"),
    (["--method", "prune", "--bits", "4"], "--bits belongs to --method quant"),
    (["--method", "channel-prune", "--criterion", "norm-scale"], "needs affine norm layers"),
    (["--pipeline", "[{\"method\": \"quantize\"}]"], "did you mean 'quant'"),
    (["--pipeline", "missing.json"], "neither JSON nor an existing file"),
    (["--pipeline", "[]", "--bits", "4"], "cannot be combined with --pipeline"),
    ([], "--method clip|quant|prune|channel-prune"),
    (["--method", "quant", "--config", "[16]"], "--config must be a JSON object"),
])
def test_bad_input_is_one_line_with_exit_code_2_and_writes_nothing(tmp_path, capsys, argv, fragment):
    model = "resnet-tiny" if "norm-scale" in argv else "dcgan-tiny"
    out = tmp_path / "never.pt"
    code, _, err = run_cli(capsys, model, *argv, "--out", str(out))
    assert code == 2
    assert fragment in err
    assert err.count("\n") == 1 and err.startswith("edgegan compress: error:")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_force(tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert run_cli(capsys, "dcgan-tiny", "--method", "clip", "--clip-value", "0.05", "--out", str(out))[0] == 0
    code, _, err = run_cli(capsys, "dcgan-tiny", "--method", "clip", "--clip-value", "0.05", "--out", str(out))
    assert code != 0 and "--force" in err
    assert run_cli(capsys, "dcgan-tiny", "--method", "clip", "--clip-value", "0.05", "--out", str(out), "--force")[0] == 0


def test_export_carries_the_compression_record_into_bundle_json(tmp_path, capsys):
    ckpt = tmp_path / "cp.pt"
    assert run_cli(capsys, "dcgan-tiny", "--method", "channel-prune", "--ratio", "0.5", "--out", str(ckpt))[0] == 0
    record = json.loads((tmp_path / "cp.compression.json").read_text())
    bundle = tmp_path / "bundle"
    code = main(["export", str(ckpt), "--formats", "onnx", "--out", str(bundle), "--inputs", "8",
                 "--calibration", "8", "--json"])
    capsys.readouterr()
    assert code == 0
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["compression"] == record["records"]
    assert manifest["model"]["config"]["hidden_channels"] == [8, 4, 2, 1]
    assert manifest["model"]["params"] == record["summary"]["params"]


def test_bn_recalibrate_flag_appends_a_step(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "dcgan-tiny", "--method", "prune", "--sparsity", "0.5", "--scope", "global",
                           "--bn-recalibrate", "128", "--dry-run")
    assert code == 0
    steps = json.loads(out)
    assert [s["method"] for s in steps] == ["prune", "bn-recalibrate"] and steps[1]["config"]["samples"] == 128
    code, out, _ = run_cli(capsys, "dcgan-tiny", "--method", "bn-recalibrate", "--bn-recalibrate", "64", "--dry-run")
    assert json.loads(out) == [{"method": "bn-recalibrate", "config": {"samples": 64, "seed": 0, "batch": 128}}]


DRY_RUN_REFUSALS = [
    ("dcgan-tiny", ["--method", "prune", "--layers", "main.7"], "no layer named 'main.7'"),
    ("dcgan-tiny", ["--method", "quant", "--exclude", "main.12x"], "did you mean 'main.12'"),
    ("dcgan-tny", ["--method", "quant"], "dcgan-tiny"),
    ("dcgan-tiny", ["--method", "channel-prune", "--layers", "nope"], "nope"),
    ("resnet-tiny", ["--method", "channel-prune", "--criterion", "norm-scale"], "needs affine norm layers"),
    ("dcgan-tiny", ["--pipeline", '[{"method": "quant", "config": {"bits": 4, "layers": ["x"]}}]'], "no layer named 'x'"),
]


@pytest.mark.parametrize("model, argv, fragment", DRY_RUN_REFUSALS)
def test_dry_run_validates_model_layers_and_configs(tmp_path, capsys, model, argv, fragment):
    """--dry-run used to print the JSON for anything; now it is the real check, minus the writing."""
    code, out, err = run_cli(capsys, model, *argv, "--dry-run")
    assert code != 0 and out == ""
    assert fragment in err
    assert err.count("\n") == 1 and err.startswith("edgegan compress: error:")


def test_dry_run_of_a_valid_command_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "dcgan-tiny", "--method", "quant", "--layers", "main.0", "--dry-run",
                           "--out", str(tmp_path / "q.pt"))
    assert code == 0 and json.loads(out)[0]["config"]["layers"] == ["main.0"]
    assert list(tmp_path.iterdir()) == []


def test_list_layers_prints_pytorch_constructor_order(capsys):
    """Conv2d(3, 16, kernel_size=(7, 7)) is (in, out, kernel); the weight shape is (16, 3, 7, 7)."""
    from torch import nn

    from edgegan.compress.layers import weight_layers

    model = load_generator("resnet-tiny")
    code, out, _ = run_cli(capsys, "resnet-tiny", "--list-layers")
    assert code == 0
    for name, layer in weight_layers(model.module).items():
        if isinstance(layer, nn.Conv2d):
            cin, cout = layer.in_channels, layer.out_channels
            k = layer.kernel_size
            line = next(ln for ln in out.splitlines() if ln.split()[:1] == [name])
            assert f"Conv2d({cin}, {cout}, kernel_size=({k[0]}, {k[1]})" in line
            if cin != cout:
                assert f"({cout}, {cin}," not in line  # not the weight shape


def test_list_layers_json(capsys):
    code, out, _ = run_cli(capsys, "dcgan-tiny", "--list-layers", "--json")
    assert code == 0
    listing = json.loads(out)
    from edgegan.compress.layers import weight_layers

    layers = weight_layers(load_generator("dcgan-tiny").module)
    assert [entry["name"] for entry in listing["layers"]] == list(layers)
    first = listing["layers"][0]
    layer = layers[first["name"]]
    assert first["type"] == "ConvTranspose2d"
    assert first["description"].startswith(f"ConvTranspose2d({layer.in_channels}, {layer.out_channels},")
    assert first["weight_shape"] == list(layer.weight.shape)
    assert listing["channel_groups"] and all(g["channels"] > 0 for g in listing["channel_groups"])


def test_checkpoint_and_record_get_the_usual_modes_under_umask_022(tmp_path, capsys):
    """mkstemp's 0600 used to survive the rename into place: a shared checkpoint was unreadable."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        ckpt = tmp_path / "q.pt"
        assert run_cli(capsys, "dcgan-tiny", "--method", "quant", "--bits", "4", "--out", str(ckpt))[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(ckpt).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "q.compression.json").st_mode) == 0o644
