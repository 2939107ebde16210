"""The CLI as a user runs it: exit codes, one-line errors, nothing left on disk."""
from __future__ import annotations

import json
import os

import pytest
import torch


def _assert_one_line_error(r, *needles):
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip() and "torchvision" not in ln]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("edgegan export: error: ")
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture
def out(tmp_path):
    return tmp_path / "bundle"


def test_unknown_model(cli, out):
    r = cli("export", "dcgan-digitz", "--out", str(out))
    _assert_one_line_error(r, "unknown model 'dcgan-digitz'", "did you mean 'dcgan-digits'")
    assert r.returncode == 2 and not out.exists()


def test_unknown_format(cli, out):
    r = cli("export", "dcgan-tiny", "--formats", "onnx,tflite-int4", "--out", str(out))
    _assert_one_line_error(r, "unknown format 'tflite-int4'", "tflite-int8")
    assert not out.exists()


def test_missing_checkpoint(cli, out, tmp_path):
    r = cli("export", "dcgan-tiny", "--checkpoint", str(tmp_path / "x.pt"), "--out", str(out))
    _assert_one_line_error(r, "does not exist")
    assert r.returncode == 3 and not out.exists()


def test_malicious_checkpoint_not_executed(cli, out, tmp_path):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(_evil_pickle_bytes(str(marker), tmp_path))
    r = cli("export", "dcgan-tiny", "--checkpoint", str(evil), "--out", str(out))
    _assert_one_line_error(r, "would run code")
    assert not marker.exists() and not out.exists()


def _evil_pickle_bytes(marker: str, tmp_path) -> bytes:
    class Payload:
        def __reduce__(self):
            return (os.makedirs, (marker,))

    p = tmp_path / "tmp_evil.pt"
    torch.save({"w": Payload()}, p)
    return p.read_bytes()


def test_state_dict_mismatch(cli, out, tmp_path):
    from edgegan.models.loading import build_family

    m, _, _ = build_family("dcgan", {"width": 8})
    ckpt = tmp_path / "w8.pt"
    torch.save(m.state_dict(), ckpt)
    r = cli("export", "dcgan", "--checkpoint", str(ckpt), "--out", str(out))
    _assert_one_line_error(r, "does not match", "--config")
    assert not out.exists()


def test_bad_config_json(cli, out):
    r = cli("export", "dcgan", "--config", "{width: 8", "--out", str(out))
    _assert_one_line_error(r, "--config is not valid JSON")


def test_wrong_input_shape(cli, out):
    r = cli("export", "support_models:erf_generator", "--input-shape", "100,1,1", "--out", str(out))
    _assert_one_line_error(r, "rejects inputs of shape", "--input-shape")
    assert not out.exists()


def test_unwritable_out(cli, tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    r = cli("export", "dcgan-tiny", "--out", str(f / "b"))
    _assert_one_line_error(r, "cannot create output directory")


def test_existing_out_needs_force(cli, tmp_path):
    (tmp_path / "b").mkdir()
    r = cli("export", "dcgan-tiny", "--out", str(tmp_path / "b"))
    _assert_one_line_error(r, "already exists; pass --force")


def test_export_json_and_failed_row_exit_code(cli, out):
    # Erf has no TFLite builtin; forbidding onnx2tf's replacement keeps the row failing
    r = cli("export", "support_models:erf_generator", "--input-shape", "8,1,1", "--formats", "tflite-fp32",
            "--convert-option", "tflite-fp32.replace_ops=none",
            "--inputs", "4", "--calibration", "4", "--out", str(out), "--json")
    assert r.returncode == 1  # a failed format is a non-zero exit, the bundle is still written
    data = json.loads(r.stdout)
    rows = {a["format"]: a["status"] for a in data["artifacts"]}
    assert rows == {"onnx": "ok", "tflite-fp32": "failed"}
    assert (out / "bundle.json").exists()


def test_models_and_env(cli):
    r = cli("models", "--json")
    assert r.returncode == 0
    names = {m["name"]: m for m in json.loads(r.stdout)}
    assert names["dcgan-digits"]["params"] == 1_098_721 and names["dcgan-digits"]["weights"] == "dcgan_digits.pt"
    r = cli("env", "--json")
    env = json.loads(r.stdout)
    assert all(f["available"] for f in env["formats"]), env["formats"]
    assert env["tools"]["onnx2tf"].startswith("1.29")
