"""Faults against the real sshd of the target: unknown host key, runner crash on the device,
and — on the emulated board, whose sshd and disk we own — sshd killed mid-run and disk full."""
from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from devicelib import edgegan

pytestmark = pytest.mark.device


def ssh_only(target):
    if not target.url.startswith("ssh://"):
        pytest.skip("needs an ssh:// target")


def test_unknown_host_key_is_refused(target, tmp_path):
    ssh_only(target)
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    args = ["--identity", target.identity] if target.identity else []
    proc = edgegan("device", "info", target.url, *args, "--known-hosts", str(empty))
    assert proc.returncode == 7
    assert "is not in" in proc.stderr and "refused" in proc.stderr and "--accept-new-host-key" in proc.stderr
    assert empty.read_text() == ""


def test_runner_crash_on_the_device_reports_its_stderr(target, setup_result, bundle, tmp_path):
    """A 'python' on the device that dies by SIGSEGV once it is asked to run a job."""
    ssh_only(target)
    from edgegan.devices.session import DeviceSession
    from edgegan.devices.targets import open_target

    with open_target(target.url, target.options()) as t:
        s = DeviceSession(t)
        script = tmp_path / "crashing-python"
        script.write_text(f'#!/bin/sh\nif [ "$2" = --info ]; then exec {s.python} "$@"; fi\n'
                          'echo "Fatal Python error: Segmentation fault (injected by device_tests)" >&2\nkill -SEGV $$\n')
        remote = s.path("crashing-python")
        t.mkdir(s.workdir)
        t.push(script, remote)
        t.checked(["chmod", "+x", remote], "chmod")
    proc = edgegan("profile", str(bundle), "--target", target.url, *target.args(), "--formats", "tflite-int8",
                   "--python", remote, "--runs", "2", "--warmup", "0", "--no-memory", "--out", str(tmp_path / "r"), "--json")
    assert proc.returncode == 1, proc.stderr
    (row,) = json.loads(proc.stdout)["results"]
    assert row["status"] == "failed" and "signal 11" in row["reason"] and "injected by device_tests" in row["reason"]


def emulated_only(target):
    if not target.emulated:
        pytest.skip("needs the emulated board (we must own its sshd / disk)")


def test_sshd_killed_mid_run_is_a_clear_error_and_resume_finishes(target, setup_result, bundle, tmp_path):
    emulated_only(target)
    board = target.board
    out = tmp_path / "r"
    port = int(target.url.rsplit(":", 1)[1])
    cmd = ["profile", str(bundle), "--target", target.url, *target.args(), "--formats", "onnx,tflite-int8",
           "--runs", "3", "--warmup", "3000", "--no-compare", "--retries", "0", "--out", str(out)]
    proc = subprocess.Popen([os.sys.executable, "-m", "edgegan", *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "COLUMNS": "200"})
    # kill the board's sshd + sessions once the second format is running on the device
    killer = threading.Thread(target=_kill_when_running, args=(board, out, proc))
    killer.start()
    stdout, stderr = proc.communicate(timeout=900)
    killer.join()
    try:
        assert proc.returncode == 7, stderr
        assert "complete=false" in stderr and "--resume" in stderr
        saved = json.loads((out / "results.json").read_text())
        assert saved["complete"] is False
        assert [r["format"] for r in saved["results"] if r["status"] == "ok"] == ["onnx"]
    finally:
        board.start(port=port)  # the board comes back on the same address
    cmd[cmd.index("3000")] = "1"
    proc2 = edgegan(*cmd, "--resume", "--json")
    assert proc2.returncode == 0, proc2.stderr
    doc = json.loads(proc2.stdout)
    assert doc["complete"] is True
    assert [(r["format"], r["status"], r.get("resumed", False)) for r in doc["results"]] == \
        [("onnx", "ok", True), ("tflite-int8", "ok", False)]


def _kill_when_running(board, out: Path, proc) -> None:
    """Wait for the tflite-int8 runner to be running on the board (its qemu process is visible
    here), then SIGKILL the board's sshd and every session."""
    import time

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"tflite-int8/job.json" in cmdline:
                time.sleep(1.0)
                board.kill_all()
                return
        time.sleep(0.1)


def test_disk_full_on_the_device(target, setup_result, bundle, tmp_path):
    emulated_only(target)
    small = Path(target.board.rootfs) / "root" / "small-disk"
    small.mkdir(exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24k", "tmpfs", str(small)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tiny tmpfs ({mounted.stderr.decode().strip()})")
    try:
        proc = edgegan("profile", str(bundle), "--target", target.url, *target.args(), "--workdir", "/root/small-disk",
                       "--python", "/root/.edgegan/venv/bin/python", "--formats", "onnx", "--out", str(tmp_path / "r"))
        assert proc.returncode == 7, proc.stderr
        assert "disk full on ssh://" in proc.stderr and "--workdir" in proc.stderr
        assert not list(small.rglob("*.part"))
    finally:
        subprocess.run(["umount", str(small)], check=True)
