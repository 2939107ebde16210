"""The adb:// target against a real adb server and a real adbd: the transport's shell / push /
pull / exit codes, device info + setup, a full profile, and adbd killed mid-run (the run is
saved complete=false; `--resume` finishes it).

The device is the emulated board's rootfs served by Debian's arm64 adbd under qemu in its own
network namespace (board/adb_device.py): the real adb protocol, but Linux, not Android (no
getprop, no battery). A real phone or board: EDGEGAN_DEVICE_ADB_TARGET=adb://SERIAL (it needs
python3 + `edgegan device setup`; see docs/devices.md)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.device

ADB_TARGET_ENV = "EDGEGAN_DEVICE_ADB_TARGET"


class AdbTarget:
    def __init__(self, url: str, env: dict, device=None) -> None:
        self.url, self.env, self.device = url, env, device

    def cli(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "edgegan", *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "COLUMNS": "200", **self.env}, stdin=subprocess.DEVNULL)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "edgegan", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, "COLUMNS": "200", **self.env}, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def adb_target(request):
    """The adb device: $EDGEGAN_DEVICE_ADB_TARGET (set up here over adb), else adbd on the
    emulated board (whose venv ``setup_result`` makes over ssh: the same rootfs)."""
    url = os.environ.get(ADB_TARGET_ENV)
    if url:
        real = AdbTarget(url, {})
        proc = real.cli("device", "setup", url, "--json")
        assert proc.returncode == 0, f"device setup over adb failed: {proc.stderr[-2000:]}"
        yield real
        return
    target = request.getfixturevalue("target")
    if not target.emulated:
        pytest.skip(f"no adb device: set {ADB_TARGET_ENV}=adb://SERIAL (or run on the emulated board)")
    request.getfixturevalue("setup_result")
    from adb_device import AdbDevice

    dev = AdbDevice(target.board).build()
    st = dev.start()
    try:
        yield AdbTarget(st["target"], st["env"], dev)
    finally:
        dev.stop()


@pytest.fixture
def transport(adb_target, monkeypatch):
    from edgegan.devices.targets import open_target

    for k, v in adb_target.env.items():
        monkeypatch.setenv(k, v)
    with open_target(adb_target.url) as t:
        yield t


def test_shell_exit_codes_quoting_and_files(transport, tmp_path):
    from edgegan.devices.errors import DeviceError

    t = transport
    res = t.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (res.exit_code, res.stdout, res.stderr) == (3, "out\n", "err\n")
    assert t.run(["sh", "-c", "kill -9 $$"]).exit_code == 137
    assert t.run(["no-such-program-here"]).exit_code == 127
    hostile = ["it's", "$(touch /tmp/edgegan-pwned)", "`id`", "a;b", "*", ""]
    res = t.run(["printf", r"%s\0", *hostile]).check("printf")
    assert res.stdout.split("\0")[:-1] == hostile
    assert t.run(["test", "-e", "/tmp/edgegan-pwned"]).exit_code == 1
    # files: pushed via NAME.part + rename, pulled byte-exact, a missing file is a one-line error
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(300_000))
    remote = "/tmp/edgegan-adb-test/blob.bin"
    t.mkdir("/tmp/edgegan-adb-test")
    t.push(blob, remote)
    assert t.size(remote) == 300_000 and t.size(remote + ".part") is None
    back = t.pull(remote, tmp_path / "back")
    assert back.read_bytes() == blob.read_bytes()
    with pytest.raises(DeviceError, match="does not exist on adb://"):
        t.pull("/tmp/edgegan-adb-test/missing.npy", tmp_path / "back")
    t.remove("/tmp/edgegan-adb-test")
    assert t.size(remote) is None


def test_device_info_and_setup_over_adb(adb_target, transport):
    proc = adb_target.cli("device", "info", adb_target.url, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["target"] == adb_target.url and info["python"] and info["arch"]
    shell_info = transport.device_info()  # read over the shell, no python
    assert shell_info.arch == info["arch"] and shell_info.cores == info["cores"]
    if adb_target.device is not None:  # Linux adbd: no getprop -> what Linux reports
        assert transport.properties() == {}
        assert info["arch"] == "aarch64" and "Cortex-A76" in info["cpu"] and "qemu" in info["emulator"]
        assert info["os"].startswith("Debian") and shell_info.os == info["os"]
        again = adb_target.cli("device", "setup", adb_target.url, "--download-wheels", "--json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["status"] == "already set up"


def test_profile_over_adb_end_to_end(adb_target, bundle, tmp_path):
    out = tmp_path / "r"
    proc = adb_target.cli("profile", str(bundle), "--target", adb_target.url, "--formats", "onnx,tflite-int8",
                          "--runs", "5", "--warmup", "2", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["complete"] is True and doc["target"] == adb_target.url
    rows = {r["format"]: r for r in doc["results"]}
    for fmt in ("onnx", "tflite-int8"):
        r = rows[fmt]
        assert r["status"] == "ok", r["reason"]
        assert r["latency_ms"]["p50"] > 0 and r["runs"] == 5 and r["target"] == adb_target.url
        assert r["quality"]["exact"] or r["quality"]["psnr_db"] > 25
        assert (out / fmt / "samples.npy").is_file()
    saved = json.loads((out / "results.json").read_text())
    assert saved["complete"] is True


def test_adbd_killed_mid_run_is_saved_incomplete_and_resume_finishes(adb_target, bundle, tmp_path):
    dev = adb_target.device
    if dev is None:
        pytest.skip("needs the emulated adb device (we must own its adbd to kill it)")
    out = tmp_path / "r"
    cmd = ["profile", str(bundle), "--target", adb_target.url, "--formats", "onnx,tflite-int8", "--runs", "3",
           "--warmup", "3000", "--no-compare", "--retries", "0", "--out", str(out)]
    proc = adb_target.popen(*cmd)
    killer = threading.Thread(target=_kill_when_running, args=(dev, proc))
    killer.start()
    stdout, stderr = proc.communicate(timeout=900)
    killer.join()
    try:
        assert proc.returncode == 7, stderr
        assert "adb://" in stderr and "complete=false" in stderr and "--resume" in stderr
        saved = json.loads((out / "results.json").read_text())
        assert saved["complete"] is False
        assert [r["format"] for r in saved["results"] if r["status"] == "ok"] == ["onnx"]
    finally:
        dev.start_adbd()  # the device comes back under the same serial
    cmd[cmd.index("3000")] = "1"
    proc2 = adb_target.cli(*cmd, "--resume", "--json")
    assert proc2.returncode == 0, proc2.stderr[-2000:]
    doc = json.loads(proc2.stdout)
    assert doc["complete"] is True
    assert [(r["format"], r["status"], r.get("resumed", False)) for r in doc["results"]] == \
        [("onnx", "ok", True), ("tflite-int8", "ok", False)]


def _kill_when_running(dev, proc) -> None:
    """Once the tflite-int8 runner runs under this adbd (its qemu process is visible here),
    SIGKILL adbd and every shell under it."""
    from board import descendants

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        for pid in map(str, descendants(dev.adbd.pid) if dev.adbd else []):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"tflite-int8/job.json" in cmdline:
                time.sleep(1.0)
                dev.kill_adbd()
                return
        time.sleep(0.1)
