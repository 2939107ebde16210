"""Shared fixtures for the host-side tests (tiny models, one exported tiny bundle)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """dcgan-tiny exported to every format once per session (~1 min)."""
    from edgegan.export.pipeline import ExportConfig, run_export

    out = tmp_path_factory.mktemp("bundles") / "dcgan-tiny"
    path, manifest = run_export(ExportConfig(model="dcgan-tiny", out=str(out), n_inputs=16, calibration=32,
                                             latency_rounds=2, latency_runs=10))
    return path, manifest


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest (and deterministically) on one thread on a shared 2-core box."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run `python -m edgegan ...` as a user would; tests/ is importable for factory specs."""
    env = dict(os.environ, PYTHONPATH=str(TESTS) + os.pathsep + os.environ.get("PYTHONPATH", ""), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "edgegan", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def cli():
    return run_cli
