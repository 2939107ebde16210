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
    from edgegan.pipeline import ExportConfig, run_export

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


@pytest.fixture
def small_tmpfs(tmp_path):
    """``mount(size_kb, name)`` -> a folder on a fresh tmpfs that size, for disk-full tests;
    unmounted at teardown. Skips where mounting is not allowed (it needs root)."""
    mounted: list[Path] = []

    def mount(size_kb: int, name: str = "small") -> Path:
        path = tmp_path / name
        path.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)], capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a {size_kb} KB tmpfs here ({r.stderr.decode().strip()}); needs root")
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", str(path)], check=True)


@pytest.fixture(scope="session")
def report_runs(tmp_path_factory):
    """Real runs for the HTML-report tests (~1 min): `edgegan benchmark dcgan-tiny` on local
    (onnx + ort-int8: export, profile, report), `edgegan compare` of its float samples vs the
    ort-int8 device samples, and an image-to-image bundle (resnet-tiny, onnx)."""
    root = tmp_path_factory.mktemp("reports")
    bench = root / "bench"
    r = run_cli("benchmark", "dcgan-tiny", "--targets", "local", "--formats", "onnx,ort-int8", "--runs", "5",
                "--warmup", "1", "--inputs", "16", "--no-memory", "--out", str(bench))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    compare = root / "compare"
    c = run_cli("compare", str(bench / "bundle"), str(bench / "local" / "ort-int8"), "--out", str(compare))
    assert c.returncode == 0, c.stdout[-2000:] + c.stderr[-3000:]
    i2i = root / "resnet-tiny"
    e = run_cli("export", "resnet-tiny", "--formats", "onnx", "--inputs", "8", "--out", str(i2i))
    assert e.returncode == 0, e.stdout[-2000:] + e.stderr[-3000:]
    return {"root": root, "bench": bench, "bundle": bench / "bundle", "profile": bench / "local", "compare": compare,
            "i2i": i2i, "bench_stdout": r.stdout}


TINY_SWEEP_SPEC = {  # a post-training sweep in miniature: 3 pipelines of dcgan-tiny + a model that cannot load
    "name": "tiny-posttrain",
    "models": [{"name": "dcgan-tiny"}, {"name": "broken", "model": "dcgan-tiny", "checkpoint": "/nonexistent/g.pt"}],
    "pipelines": [
        {"name": "float", "labels": {"series": "float"}},
        {"name": "q4", "steps": [{"method": "quant", "config": {"bits": 4}}], "labels": {"series": "quant", "bits": 4}},
        {"name": "cp50-l1", "steps": [{"method": "channel-prune", "config": {"ratio": 0.5, "criterion": "l1"}}],
         "labels": {"series": "channel-prune-l1", "channel_ratio": 0.5, "criterion": "l1"}},
    ],
    "formats": ["onnx", "ort-int8"], "targets": [{"url": "local"}],
    "runs": {"runs": 5, "warmup": 1},
    "export": {"n_inputs": 8, "input_seed": 3003, "calibration": 16, "calibration_seed": 3003},
    "metrics": ["psnr_db"],
    "quality": {"samples": 64, "seed": 1001, "reference_seed": 2002, "grid": 16},
}


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory):
    """A real sequential `edgegan sweep` (~30 s): TINY_SWEEP_SPEC with --csv/--plot; the broken
    model's rows fail at export (exit 1), the rest are measured on local."""
    import json

    root = tmp_path_factory.mktemp("sweep")
    spec = root / "spec.json"
    spec.write_text(json.dumps(TINY_SWEEP_SPEC))
    out, csv_path, plot = root / "out", root / "post.csv", root / "post.png"
    r = run_cli("sweep", str(spec), "--sequential", "--out", str(out), "--csv", str(csv_path), "--plot", str(plot))
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-3000:]  # the broken model's rows failed, on purpose
    return {"root": root, "spec": spec, "out": out, "csv": csv_path, "plot": plot, "stdout": r.stdout,
            "doc": TINY_SWEEP_SPEC}
