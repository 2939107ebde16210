"""`run_profile` end to end on the session's real dcgan-tiny bundle (every format): local target, loopback-ssh target, and the
faults — unknown format, failed export row, missing runtime, runner crash, sshd killed mid-run
(+ --resume), disk full on the device."""
from __future__ import annotations

import csv
import json
import shutil
import stat
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from edgegan.devices.errors import DeviceConnectionError, DeviceDiskFullError
from edgegan.devices.profile import ProfileConfig, run_profile
from support_sshd import LoopbackSSHD, sshd_missing
from edgegan.devices.transport import TargetOptions

needs_sshd = pytest.mark.skipif(sshd_missing() is not None, reason=f"no loopback sshd: {sshd_missing()}")
FAST = dict(runs=5, warmup=1, power_baseline_s=0.05, power_min_s=0.05)


@pytest.fixture(scope="module")
def bundle(tiny_bundle) -> Path:
    """The session's dcgan-tiny bundle (every format; tests/conftest.py)."""
    return tiny_bundle[0]


TWO = ["onnx", "ort-int8"]


def fake_python(path: Path, body: str) -> Path:
    """A 'device python' wrapper around this interpreter (the runner sees a different device)."""
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def test_local_profile_writes_results_csv_report_and_grid(bundle, tmp_path):
    formats = [a["format"] for a in json.loads((bundle / "bundle.json").read_text())["artifacts"] if a["status"] != "failed"]
    assert {"onnx", "ort-int8", "tflite-int8"} <= set(formats)
    out, doc = run_profile(ProfileConfig(bundle=str(bundle), target="local", out=str(tmp_path / "r"), **FAST))
    assert doc["complete"] is True and doc["schema"] == "edgegan.profile/1"
    assert [r["format"] for r in doc["results"]] == formats
    for r in doc["results"]:
        assert r["status"] == "ok", r["reason"]
        assert set(r["latency_ms"]) >= {"p50", "p90", "p95", "p99", "mean", "trimmed_mean", "std"}
        assert r["runs"] == 5 and r["warmup"] == 1 and r["model_load_ms"] > 0 and r["first_inference_ms"] > 0
        assert r["memory_method"] in ("VmHWM", "ru_maxrss") and r["peak_memory_mb"] > 0
        pw = r["power"]["provenance"]
        assert pw == "unavailable" or pw.startswith("measured(")
        assert set(r["thermal"]) >= {"start_c", "end_c"}
        q = r["quality"]
        assert q["samples"] == 16 and (q["psnr_db"] is None or q["psnr_db"] > 30)
        assert "distribution_error" not in q and 0 <= q["knn_precision"] <= 1
        assert np.load(out / r["samples"]).shape == (16, 1, 32, 32)
    onnx_q = doc["results"][0]["quality"]
    assert onnx_q["psnr_db"] > 100  # onnx == float torch
    # the same samples as the float ones: every one is inside the other set's kNN balls
    assert onnx_q["knn_precision"] == 1.0 and onnx_q["knn_recall"] == 1.0
    assert doc["device"]["arch"] and doc["device"]["runtimes"]["onnxruntime"]
    saved = json.loads((out / "results.json").read_text())
    assert saved["complete"] is True and len(saved["results"]) == len(formats)
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["format"] for r in rows] == formats and rows[0]["memory_method"] in ("VmHWM", "ru_maxrss")
    md = (out / "report.md").read_text()
    assert "| onnx | ✔ ok |" in md and "![samples](grid.png)" in md and (out / "grid.png").is_file()


def test_missing_format_and_failed_export_rows_do_not_crash(bundle, tmp_path):
    b2 = tmp_path / "b2"
    shutil.copytree(bundle, b2)
    m = json.loads((b2 / "bundle.json").read_text())
    m["artifacts"][1].update(status="failed", reason="quantizer exploded", path=None)
    (b2 / "bundle.json").write_text(json.dumps(m))
    _, doc = run_profile(ProfileConfig(bundle=str(b2), target="local", out=str(tmp_path / "r"),
                                       formats=["onnx", "ort-int8", "tflite-int4-fictional"], **FAST))
    st = {r["format"]: (r["status"], r["reason"]) for r in doc["results"]}
    assert st["onnx"] == ("ok", None)
    assert st["ort-int8"] == ("failed", "export failed: quantizer exploded")
    assert st["tflite-int4-fictional"][0] == "failed" and "not in the bundle" in st["tflite-int4-fictional"][1]
    assert "✘ failed" in (tmp_path / "r" / "report.md").read_text()


def test_a_device_without_the_runtime_gives_a_failed_row(bundle, tmp_path):
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "onnxruntime.py").write_text("raise ImportError('not on this board')\n")
    py = fake_python(tmp_path / "py", f'PYTHONPATH={hide} exec {sys.executable} "$@"')
    _, doc = run_profile(ProfileConfig(bundle=str(bundle), target="local", out=str(tmp_path / "r"), formats=TWO,
                                       target_options=TargetOptions(python=str(py)), **FAST))
    assert all(r["status"] == "failed" and "no onnxruntime runtime on the device" in r["reason"] for r in doc["results"])
    assert doc["complete"] is True


def ssh_options(d: LoopbackSSHD, tmp_path: Path, **kw) -> TargetOptions:
    return TargetOptions(identity=str(d.identity), known_hosts=str(d.known_hosts), python=kw.pop("python", sys.executable),
                         workdir=str(tmp_path / "device"), connect_timeout_s=5, retries=kw.pop("retries", 1), **kw)


@needs_sshd
def test_ssh_profile_matches_the_host_bit_for_bit(bundle, tmp_path):
    with LoopbackSSHD(tmp_path / "sshd") as d:
        out, doc = run_profile(ProfileConfig(bundle=str(bundle), target=d.url, out=str(tmp_path / "r"), formats=TWO,
                                             target_options=ssh_options(d, tmp_path), **FAST))
    assert doc["complete"] and doc["target"] == d.url
    for r in doc["results"]:
        assert r["status"] == "ok", r["reason"]
        assert r["quality"]["vs_host"]["exact"] is True
    assert not list((tmp_path / "device" / "runs").iterdir())  # the run directory was cleaned up
    assert len(list((tmp_path / "device" / "artifacts").iterdir())) == 2


@needs_sshd
def test_runner_crash_on_the_device_reports_its_stderr(bundle, tmp_path):
    py = fake_python(tmp_path / "crashy", f'if [ "$2" = --info ]; then exec {sys.executable} "$@"; fi\n'
                                          'echo "Fatal Python error: Segmentation fault in the runtime" >&2\nkill -SEGV $$')
    with LoopbackSSHD(tmp_path / "sshd") as d:
        _, doc = run_profile(ProfileConfig(bundle=str(bundle), target=d.url, out=str(tmp_path / "r"), formats=["onnx"],
                                           target_options=ssh_options(d, tmp_path, python=str(py)), **FAST))
    (row,) = doc["results"]
    assert row["status"] == "failed"
    assert "crashed on the device (signal 11)" in row["reason"] and "Segmentation fault in the runtime" in row["reason"]


@needs_sshd
def test_sshd_killed_mid_run_then_resume(bundle, tmp_path):
    out = tmp_path / "r"
    with LoopbackSSHD(tmp_path / "sshd") as d:
        port = d.port
        timers = []

        def progress(stage, fmt, row):
            if stage == "run" and fmt == "ort-int8":  # the device dies while ort-int8 runs
                timers.append(threading.Timer(0.3, d.kill_all))
                timers[-1].start()

        # a long warmup keeps ort-int8 busy on the "device" when the kill lands
        cfg = ProfileConfig(bundle=str(bundle), target=d.url, out=str(out), formats=TWO, runs=5, warmup=10000,
                            power_baseline_s=0.05, power_min_s=0.05, target_options=ssh_options(d, tmp_path, retries=0))
        with pytest.raises(DeviceConnectionError, match=r"1 of 2 formats finished.*complete=false.*--resume"):
            run_profile(cfg, progress=progress)
        for t in timers:
            t.join()
        saved = json.loads((out / "results.json").read_text())
        assert saved["complete"] is False
        st = {r["format"]: r["status"] for r in saved["results"]}
        assert st == {"onnx": "ok", "ort-int8": "incomplete"}
        assert "Incomplete run" in (out / "report.md").read_text()
        d.start(port=port)  # the device comes back
        resumed = dataclass_replace(cfg, resume=True, warmup=1)
        _, doc = run_profile(resumed)
    assert doc["complete"] is True
    rows = {r["format"]: r for r in doc["results"]}
    assert rows["onnx"].get("resumed") is True and rows["ort-int8"]["status"] == "ok"


def dataclass_replace(cfg, **kw):
    import dataclasses

    return dataclasses.replace(cfg, **kw)


@needs_sshd
def test_disk_full_on_the_device_is_a_clear_error(bundle, tmp_path, small_tmpfs):
    small = small_tmpfs(16, "device")
    with LoopbackSSHD(tmp_path / "sshd") as d:
        with pytest.raises(DeviceDiskFullError, match=r"disk full on ssh://.*free space on the device or pass --workdir"):
            run_profile(ProfileConfig(bundle=str(bundle), target=d.url, out=str(tmp_path / "r"), formats=TWO,
                                      target_options=ssh_options(d, tmp_path), **FAST))
    assert not list(small.rglob("*.part"))
    assert not (tmp_path / "r" / "results.json").exists()


def test_a_tampered_artifact_is_never_run_and_a_poisoned_device_cache_is_caught(bundle, tmp_path):
    b2 = tmp_path / "b2"
    shutil.copytree(bundle, b2)
    onnx = b2 / "artifacts" / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[-5] ^= 0x01  # one flipped bit in the last initializer
    onnx.write_bytes(bytes(data))
    _, doc = run_profile(ProfileConfig(bundle=str(b2), target="local", out=str(tmp_path / "r"), formats=TWO,
                                       target_options=TargetOptions(workdir=str(tmp_path / "wd")), **FAST))
    st = {r["format"]: r for r in doc["results"]}
    assert st["onnx"]["status"] == "failed" and "does not match its sha256" in st["onnx"]["reason"]
    assert st["ort-int8"]["status"] == "ok"
    assert not list((tmp_path / "wd" / "artifacts").glob("*.onnx")) or all(
        p.stat().st_size != onnx.stat().st_size or p.read_bytes() != bytes(data)
        for p in (tmp_path / "wd" / "artifacts").glob("*.onnx"))

    # the device cache is keyed on the file's hash; a file swapped in behind that name is detected
    wd = tmp_path / "wd2"
    _, ok = run_profile(ProfileConfig(bundle=str(bundle), target="local", out=str(tmp_path / "r2"), formats=["ort-int8"],
                                      target_options=TargetOptions(workdir=str(wd)), **FAST))
    assert ok["results"][0]["status"] == "ok"
    cached = next((wd / "artifacts").glob("*.onnx"))
    other = (bundle / "artifacts" / "model.onnx").read_bytes()
    fake = other if len(other) == cached.stat().st_size else None
    if fake is None:  # same size is what the cache checks: make a same-size impostor of the int8 file
        raw = bytearray(cached.read_bytes())
        raw[-5] ^= 0x01
        fake = bytes(raw)
    cached.write_bytes(fake)
    _, doc = run_profile(ProfileConfig(bundle=str(bundle), target="local", out=str(tmp_path / "r3"), formats=["ort-int8"],
                                       target_options=TargetOptions(workdir=str(wd)), **FAST))
    row = doc["results"][0]
    assert row["status"] == "failed" and "cache was modified" in row["reason"]  # refused on the device


def test_the_bundle_threshold_marks_degraded_rows_and_device_samples_are_checked(bundle, tmp_path):
    b2 = tmp_path / "b2"
    shutil.copytree(bundle, b2)
    m = json.loads((b2 / "bundle.json").read_text())
    int8_psnr = next(a for a in m["artifacts"] if a["format"] == "ort-int8")["fidelity"]["psnr_db"]
    m["thresholds"] = {"ok_psnr_db": int8_psnr + 5}  # int8 now falls below the bundle's bar; fp32 does not
    (b2 / "bundle.json").write_text(json.dumps(m))
    _, doc = run_profile(ProfileConfig(bundle=str(b2), target="local", out=str(tmp_path / "r"), formats=TWO, **FAST))
    st = {r["format"]: r for r in doc["results"]}
    assert st["onnx"]["status"] == "ok"
    assert st["ort-int8"]["status"] == "degraded" and "the bundle's threshold" in st["ort-int8"]["reason"]
    assert st["ort-int8"]["latency_ms"]["p50"] > 0  # still measured
    md = (tmp_path / "r" / "report.md").read_text()
    assert "▲ degraded" in md

    m["output"]["shape"] = [1, 16, 16]  # the device's (correct) 32x32 samples no longer match what the bundle promises
    (b2 / "bundle.json").write_text(json.dumps(m))
    _, doc = run_profile(ProfileConfig(bundle=str(b2), target="local", out=str(tmp_path / "r2"), formats=["onnx"], **FAST))
    row = doc["results"][0]
    assert row["status"] == "failed" and "expected [16, 1, 16, 16]" in row["reason"]
