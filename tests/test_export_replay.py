"""`edgegan export --from-bundle BUNDLE` replays the export_config recorded in bundle.json: the
same config (but --out), hence the same stored inputs and the same ONNX bytes; options given on
the command line override the recorded ones."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli

pytest.importorskip("torch")


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "bundle.json").read_text())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_replay_gives_the_same_config_inputs_and_onnx(tmp_path):
    first = tmp_path / "first"
    proc = run_cli("export", "dcgan-tiny", "--formats", "onnx", "--inputs", "6", "--calibration", "5", "--seed", "7",
                   "--config", '{"width": 3}', "--convert-option", "ort-int8.reduce_range=true",
                   "--out", str(first), "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    again = tmp_path / "again"
    proc = run_cli("export", "--from-bundle", str(first), "--out", str(again), "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    a, b = _manifest(first), _manifest(again)
    assert {**a["export_config"], "out": None} == {**b["export_config"], "out": None}
    assert b["export_config"]["model_config"] == {"width": 3} and b["export_config"]["input_seed"] == 7
    assert b["export_config"]["convert"]["formats"] == {"ort-int8": {"reduce_range": True}}
    np.testing.assert_array_equal(np.load(first / "inputs.npy"), np.load(again / "inputs.npy"))
    assert np.load(again / "inputs.npy").shape[0] == 6
    (art_a,), (art_b,) = a["artifacts"], b["artifacts"]
    assert art_a["format"] == art_b["format"] == "onnx"
    assert _sha(first / art_a["path"]) == _sha(again / art_b["path"]) == art_b["sha256"]

    # a flag given with --from-bundle overrides the recording
    third = tmp_path / "third"
    proc = run_cli("export", "--from-bundle", str(first), "--seed", "8", "--out", str(third), "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    c = _manifest(third)["export_config"]
    assert (c["input_seed"], c["calibration_seed"], c["n_inputs"]) == (8, 9, 6)
    assert not np.array_equal(np.load(first / "inputs.npy"), np.load(third / "inputs.npy"))


def test_replay_errors_are_one_line(tmp_path):
    proc = run_cli("export", "--from-bundle", str(tmp_path))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0
    proc = run_cli("export")
    assert proc.returncode == 2 and "MODEL" in proc.stderr and "--from-bundle" in proc.stderr
