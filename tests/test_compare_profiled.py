"""`edgegan compare BUNDLE RESULTS/FORMAT` pairs automatically: the results folder's
results.json names the bundle (path + bundle.json sha256) whose stored inputs produced the
samples, so the paired metrics (PSNR, SSIM, worst samples) come without --paired."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FAST = ["--runs", "2", "--warmup", "0", "--power-baseline", "0", "--power-min-seconds", "0", "--no-memory",
        "--no-compare"]


def edgegan(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgegan", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "COLUMNS": "200"}, timeout=600)


@pytest.fixture(scope="module")
def profiled(tiny_bundle, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("profiled")
    bundle = tmp / "b"
    shutil.copytree(tiny_bundle[0], bundle)
    proc = edgegan("profile", bundle, "--formats", "onnx", "--out", tmp / "r", "--json", *FAST)
    assert proc.returncode == 0, proc.stderr
    return bundle, tmp / "r"


def test_a_profiled_folder_pairs_with_its_bundle_without_flags(profiled, tmp_path):
    bundle, results = profiled
    proc = edgegan("compare", bundle, results / "onnx", "--json", "--out", tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["inputs"]["B"]["has_latents"] is True
    # the onnx artifact reproduces the float reference the bundle stores (same latents): > 100 dB
    assert doc["paired"] and doc["paired"]["psnr_db"] > 100


def test_no_pairing_when_the_bundle_changed_since_profiling(profiled, tmp_path):
    bundle, results = profiled
    other = tmp_path / "r"
    shutil.copytree(results, other)
    doc = json.loads((other / "results.json").read_text())
    doc["bundle"]["manifest_sha256"] = "0" * 64  # not the bundle these samples came from
    (other / "results.json").write_text(json.dumps(doc))
    proc = edgegan("compare", bundle, other / "onnx", "--json", "--out", tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["inputs"]["B"]["has_latents"] is False and not out["paired"]
