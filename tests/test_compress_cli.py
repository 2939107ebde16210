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
