"""The on-device runner as a program: job -> results.json + samples.npy, memory methods,
exit codes, atomicity. Uses a tiny hand-built ONNX model (no torch, runs in milliseconds)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgegan.runner import RUNNER_PATH
from edgegan.runner import edgegan_runner as r


def tiny_onnx(path: Path) -> Path:
    """latent [1, 4, 1, 1] -> ConvTranspose(k4) -> Tanh -> image [1, 1, 4, 4]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).normal(size=(4, 1, 4, 4)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("ConvTranspose", ["z", "w"], ["h"], kernel_shape=[4, 4]),
         helper.make_node("Tanh", ["h"], ["y"])],
        "tiny", [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4, 1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4])],
        initializer=[numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture
def job(tmp_path):
    art = tiny_onnx(tmp_path / "tiny.onnx")
    np.save(tmp_path / "inputs.npy", np.random.default_rng(1).normal(size=(8, 4, 1, 1)).astype(np.float32))
    return {"artifact": str(art), "format": "onnx", "io": {}, "inputs": str(tmp_path / "inputs.npy"),
            "warmup": 2, "runs": 10, "threads": 1, "out": str(tmp_path / "out"),
            "sysfs_root": str(tmp_path / "sysfs"), "power": {"probe": "auto", "baseline_s": 0.05, "min_s": 0.05}}


def run_runner(args, env=None, cwd=None):
    return subprocess.run([sys.executable, str(RUNNER_PATH), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def test_job_writes_complete_results_and_samples(job, tmp_path):
    res = r.run_job(job)
    out = Path(job["out"])
    data = json.loads((out / "results.json").read_text())
    samples = np.load(out / "samples.npy")
    assert data == json.loads(json.dumps(res))
    assert data["complete"] is True and samples.shape == (8, 1, 4, 4) == tuple(data["samples_shape"])
    import hashlib

    assert hashlib.sha256((out / "samples.npy").read_bytes()).hexdigest() == data["samples_sha256"]
    assert set(data["latency_ms"]) >= {"p50", "p90", "p95", "p99", "mean", "trimmed_mean", "std"}
    assert data["runs"] == 10 and data["warmup"] == 2 and data["timer"] == "perf_counter_ns"
    assert data["model_load_ms"] > 0 and data["first_inference_ms"] > 0
    assert data["memory_method"] in ("VmHWM", "ru_maxrss") and data["peak_memory_mb"] > 0
    # loading the model and running it costs memory over an idle runtime process (ORT allocates its arena)
    assert data["memory"]["model_mb"] > 0 and data["peak_memory_range_mb"] is None
    assert data["peak_memory_mb"] > data["memory"]["baseline_mb"] > 0
    assert data["power"]["provenance"] == "unavailable" and data["power"]["avg_w"] is None
    assert data["versions"]["onnxruntime"] and "ai-edge-litert" not in data["versions"]
    assert data["runtime"] == "onnxruntime" and data["implementation"] == "onnxruntime"
    # same outputs as the host verification path (same file, same code)
    ref = r.Artifact(job["artifact"], "onnx", {}, 1).run_all(np.load(job["inputs"]))
    np.testing.assert_array_equal(samples, ref)
    assert not list(out.glob("*.tmp"))


def test_power_and_thermal_come_from_the_sysfs_root(job, tmp_path):
    sysfs = Path(job["sysfs_root"])
    (sysfs / "sys/class/hwmon/hwmon0").mkdir(parents=True)
    (sysfs / "sys/class/hwmon/hwmon0/name").write_text("ina226\n")
    (sysfs / "sys/class/hwmon/hwmon0/power1_input").write_text("2500000\n")
    (sysfs / "sys/class/thermal/thermal_zone0").mkdir(parents=True)
    (sysfs / "sys/class/thermal/thermal_zone0/type").write_text("cpu-thermal\n")
    (sysfs / "sys/class/thermal/thermal_zone0/temp").write_text("51000\n")
    job["memory"] = False
    data = r.run_job(job)
    pw = data["power"]
    assert pw["provenance"] == "measured(hwmon:ina226:hwmon0:power1_input)"
    assert pw["avg_w"] == pytest.approx(2.5) and pw["idle_w"] == pytest.approx(2.5)
    assert pw["net_w"] == pytest.approx(0.0) and pw["energy_mj_per_inference"] == pytest.approx(0.0)
    assert data["thermal"]["start_c"] == 51.0 and data["thermal"]["zones_end"] == {"cpu-thermal": 51.0}
    assert data["peak_memory_mb"] is None and data["memory_method"] is None


def test_emulated_memory_is_a_range_not_a_measurement(job):
    job["memory"] = True
    code = run_runner([_write_job(job)], env={"EDGEGAN_EMULATOR": "qemu-user test"})
    assert code.returncode == 0, code.stderr
    data = json.loads((Path(job["out"]) / "results.json").read_text())
    assert data["memory_method"] == "emulated-range" and data["peak_memory_mb"] is None
    lo, hi = data["peak_memory_range_mb"]
    assert 0 <= lo <= hi
    assert data["emulator"] == "qemu-user test" and "emulator" in data["memory"]["note"]


def _write_job(job) -> str:
    p = Path(job["out"]).parent / "job.json"
    p.write_text(json.dumps(job))
    return str(p)


def test_missing_artifact_is_one_line_exit_3_and_no_result(job):
    job["artifact"] = job["artifact"] + ".missing"
    job["memory"] = False
    proc = run_runner([_write_job(job)])
    assert proc.returncode == 3
    assert proc.stderr.strip().count("\n") == 0 and "not found on this device" in proc.stderr
    assert not (Path(job["out"]) / "results.json").exists()


def test_a_failed_rerun_leaves_no_stale_result(job):
    job["memory"] = False
    r.run_job(job)
    job["artifact"] = job["artifact"] + ".gone"
    with pytest.raises(r.RunnerError):
        r.run_job(job)
    assert not (Path(job["out"]) / "results.json").exists()
    assert not (Path(job["out"]) / "samples.npy").exists()


def test_corrupt_model_reports_the_runtime_error(job, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    job.update(artifact=str(bad), memory=False)
    proc = run_runner([_write_job(job)])
    assert proc.returncode == 3 and "onnxruntime" in proc.stderr and "cannot load bad.onnx" in proc.stderr


def test_usage_errors_exit_2():
    assert run_runner([]).returncode == 2
    assert run_runner(["--bogus"]).returncode == 2


def test_info_works_without_numpy(tmp_path):
    (tmp_path / "numpy.py").write_text("raise ImportError('no numpy on this board')\n")
    proc = run_runner(["--info"], env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert "numpy" not in info["runtimes"] and info["arch"] and info["runner_version"] == r.RUNNER_VERSION
    job_proc = run_runner([str(tmp_path / "job.json")], env={"PYTHONPATH": str(tmp_path)})
    assert job_proc.returncode == 3 and "edgegan device setup" in job_proc.stderr


def test_disk_full_on_the_device_is_exit_4(job, tmp_path, small_tmpfs):
    small = small_tmpfs(8)
    big = np.random.default_rng(0).normal(size=(512, 4, 1, 1)).astype(np.float32)  # 32 KB of samples
    np.save(tmp_path / "inputs.npy", big)
    job.update(out=str(small / "out"), memory=False, runs=2, warmup=0)
    proc = run_runner([_write_job({**job, "out": str(small / "out")})])
    assert proc.returncode == 4, proc.stderr
    assert "disk full on the device" in proc.stderr
    assert not (small / "out" / "results.json").exists()


def test_cpu_model_names_arm_parts_and_x86():
    arm = "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n\nprocessor\t: 1\nCPU part\t: 0xd05\n" \
          "Model\t\t: Raspberry Pi 5 Model B Rev 1.0\n"
    assert r.cpu_model(arm) == "Cortex-A55 + Cortex-A76 (Raspberry Pi 5 Model B Rev 1.0)"
    assert r.cpu_model("model name\t: AMD EPYC 7B13\n") == "AMD EPYC 7B13"


def test_emulator_detection(monkeypatch):
    monkeypatch.setenv("EDGEGAN_EMULATOR", "qemu-user 7.2")
    assert r.emulator() == "qemu-user 7.2"
    monkeypatch.delenv("EDGEGAN_EMULATOR")
    monkeypatch.setattr(r.platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(r, "_read", lambda p: "cpu:type:x86,ven0002fam0019:feature:,0000" if "modalias" in p else None)
    assert r.emulator().startswith("qemu-user (detected")


def test_latency_stats_percentiles_and_trimmed_mean():
    s = r.latency_stats([1.0] * 8 + [100.0, 0.5])
    assert s["p50"] == 1.0 and s["min"] == 0.5 and s["max"] == 100.0
    assert s["trimmed_mean"] == 1.0  # the 10 % tails are dropped
    assert s["mean"] == pytest.approx(10.85)


def test_the_runner_enforces_its_own_deadline(job):
    job.update(memory=False, runs=10**7, warmup=0, timeout_s=1)
    proc = run_runner([_write_job(job)])
    assert proc.returncode == 3 and "ran over its 1 s limit on the device" in proc.stderr
    assert not (Path(job["out"]) / "results.json").exists()


def test_runner_refuses_an_artifact_whose_hash_differs_from_the_job(job):
    import hashlib

    job["memory"] = False
    good = hashlib.sha256(Path(job["artifact"]).read_bytes()).hexdigest()
    assert r.run_job({**job, "artifact_sha256": good})["artifact_sha256"] == good
    with pytest.raises(r.RunnerError, match="cache was modified"):
        r.run_job({**job, "artifact_sha256": "0" * 64})
    assert not (Path(job["out"]) / "results.json").exists()


@pytest.mark.parametrize("bad,match", [({"runs": "5"}, "runs"), ({"threads": 100000}, "threads"),
                                       ({"power": {"probe": 3}}, "probe"), ({"surprise": 1}, "unknown field"),
                                       ({"io": {"input_perm": [0, 0, 1]}}, "permutation")])
def test_a_malformed_job_is_a_usage_error_naming_the_field(job, bad, match):
    proc = run_runner([_write_job({**job, **bad, "memory": False})])
    assert proc.returncode == r.ExitCode.USAGE == 2
    assert match in proc.stderr and proc.stderr.strip().count("\n") == 0


def _npy_header(shape, descr="<f4") -> bytes:
    """A version-1.0 .npy header (magic + padded dict), written by hand so it can lie."""
    text = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode()
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text


def _truncated(path: Path) -> None:
    path.write_bytes(_npy_header((8, 4, 1, 1)) + b"\0" * 20)  # 128 bytes claimed, 20 held


def _claims_a_tebibyte(path: Path) -> None:
    path.write_bytes(_npy_header((1 << 38, 4)) + b"\0" * 64)


def _huge_header(path: Path) -> None:  # a 60 KB header: numpy's own limit is 10,000 bytes
    text = b"{'descr': '<f4', 'fortran_order': False, 'shape': (" + b"1, " * 20000 + b")}\n"
    path.write_bytes(b"\x93NUMPY\x02\x00" + len(text).to_bytes(4, "little") + text)


def _pickled(path: Path) -> None:
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


@pytest.mark.parametrize("make, words", [
    (_truncated, "truncated: its header claims 128 bytes of data, the file holds 20"),
    (_claims_a_tebibyte, "above the 1,073,741,824-byte limit"),
    (_huge_header, "is not a .npy array"),
    (_pickled, "holds Python objects"),
])
def test_bad_inputs_npy_is_one_line_runner_error_before_any_work(job, make, words):
    """The device reads inputs.npy as untrusted: header, dtype and size checked before numpy
    allocates (a 100-byte file may claim a terabyte; a pickle would run code with allow_pickle)."""
    make(Path(job["inputs"]))
    job["memory"] = True  # refused before the memory children are spawned
    proc = run_runner([_write_job(job)])
    assert proc.returncode == r.ExitCode.RUNNER_ERROR == 3, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("edgegan-runner: error: inputs inputs.npy ")
    assert words in proc.stderr
    assert not (Path(job["out"]) / "results.json").exists()


def test_inputs_npy_symlink_is_refused(job, tmp_path):
    real = tmp_path / "elsewhere.npy"
    Path(job["inputs"]).rename(real)
    Path(job["inputs"]).symlink_to(real)
    with pytest.raises(r.RunnerError, match="cannot read inputs inputs.npy"):
        r.run_job({**job, "memory": False})
