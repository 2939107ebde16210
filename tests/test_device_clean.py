"""`edgegan device clean`: the caches profiling leaves on a target go, the setup venv stays
(unless --all), and nothing edgegan did not put there is ever removed."""
from __future__ import annotations

import json
from pathlib import Path

from edgegan.devices.clean import clean_device
from edgegan.devices.transport import TargetOptions


def fill(workdir: Path) -> dict[str, int]:
    """A workdir as profile + setup leave it; returns the bytes written per top-level entry."""
    files = {"artifacts/0123456789abcdef-model.onnx": 5000, "artifacts/fedcba9876543210-model.tflite": 3000,
             "runs/20261130-1/inputs.npy": 2000, "runner/edgegan_runner-abcdef123456.py": 1000,
             "venv/bin/python": 10, "venv/edgegan-setup.json": 10}
    for rel, size in files.items():
        p = workdir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * size)
    return files


def test_clean_removes_caches_and_keeps_the_venv(tmp_path):
    work = tmp_path / "local-target"
    fill(work)
    result = clean_device("local", TargetOptions(workdir=str(work)))
    assert sorted(p.name for p in work.iterdir()) == ["venv"]
    assert (work / "venv" / "bin" / "python").is_file()
    assert sorted(Path(r["path"]).name for r in result["removed"]) == ["artifacts", "runner", "runs"]
    assert result["bytes_freed"] >= 11000  # du counts whole blocks
    assert result["kept"] == [str(work / "venv")]
    again = clean_device("local", TargetOptions(workdir=str(work)))
    assert again["removed"] == [] and again["bytes_freed"] == 0


def test_clean_all_removes_the_venv_but_never_foreign_files(tmp_path):
    work = tmp_path / "w"
    fill(work)
    (work / "notes.txt").write_text("mine")
    result = clean_device("local", TargetOptions(workdir=str(work)), all_=True)
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt"]
    assert result["workdir_removed"] is False
    (work / "notes.txt").unlink()
    fill(work)
    assert clean_device("local", TargetOptions(workdir=str(work)), all_=True)["workdir_removed"] is True
    assert not work.exists() and tmp_path.exists()


def test_cli_device_clean(cli, tmp_path):
    work = tmp_path / "w"
    fill(work)
    proc = cli("device", "clean", "local", "--workdir", str(work), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["kept"] == [str(work / "venv")]
    assert sorted(p.name for p in work.iterdir()) == ["venv"]
    proc = cli("device", "clean", "local", "--workdir", str(work))
    assert proc.returncode == 0 and "nothing to clean" in proc.stdout and "--all" in proc.stdout


def test_clean_after_a_real_local_profile(tmp_path):
    """The growth the command exists for: a profile leaves its artifact in the cache."""
    import pytest

    pytest.importorskip("torch")
    from edgegan.devices.profile import ProfileConfig, run_profile
    from edgegan.pipeline import ExportConfig, run_export

    bundle, _ = run_export(ExportConfig(model="dcgan-tiny", out=str(tmp_path / "b"), formats=["onnx"], n_inputs=4,
                                        calibration=4, latency_rounds=1, latency_runs=2))
    work = tmp_path / "device"
    opts = TargetOptions(python=__import__("sys").executable, workdir=str(work))
    _, doc = run_profile(ProfileConfig(bundle=str(bundle), target="local", out=str(tmp_path / "r"), formats=["onnx"],
                                       target_options=opts, runs=3, warmup=1, power_baseline_s=0.05,
                                       power_min_s=0.05))
    assert doc["results"][0]["status"] == "ok"
    cached = list((work / "artifacts").iterdir())
    assert len(cached) == 1
    size = cached[0].stat().st_size
    result = clean_device("local", opts)
    assert result["bytes_freed"] >= size and not (work / "runner").exists()
    assert not (work / "artifacts").exists()
