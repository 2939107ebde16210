"""A converter's tool and everything it starts die with edgegan (edgegan.util.procs.guarded):
real processes, killed with SIGKILL, checked in /proc."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")

# the "tool": starts a grandchild (as onnx2tf starts onnxsim), records both pids, then works
TOOL = textwrap.dedent("""
    import subprocess, sys, time, pathlib
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    pathlib.Path(sys.argv[1]).write_text(f"{__import__('os').getpid()} {grandchild.pid}")
    time.sleep(float(sys.argv[2]))
    sys.exit(int(sys.argv[3]))
""")
# the "edgegan" process: runs the tool as the converters do
CALLER = textwrap.dedent("""
    import subprocess, sys
    from edgegan.util.procs import die_with_parent, guarded
    proc = subprocess.run(guarded([sys.executable, sys.argv[1], *sys.argv[2:]]), capture_output=True,
                          preexec_fn=die_with_parent)
    print(proc.returncode)
""")


def alive(pid: int) -> bool:
    try:
        state = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("State:"))
    except (FileNotFoundError, ProcessLookupError):
        return False
    return " Z " not in state + " "  # a zombie has exited


def wait_for(path: Path, timeout: float = 30) -> list[int]:
    end = time.time() + timeout
    while time.time() < end:
        if path.is_file() and path.read_text().strip():
            return [int(p) for p in path.read_text().split()]
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def gone_within(pids: list[int], seconds: float = 5) -> list[int]:
    end = time.time() + seconds
    while time.time() < end and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


@pytest.fixture
def tool(tmp_path):
    path = tmp_path / "tool.py"
    path.write_text(TOOL)
    caller = tmp_path / "caller.py"
    caller.write_text(CALLER)
    return path, caller


def test_sigkilled_caller_takes_the_tool_and_its_child_along(tool, tmp_path):
    path, caller = tool
    pids = tmp_path / "pids"
    proc = subprocess.Popen([sys.executable, str(caller), str(path), str(pids), "120", "0"])
    tree = wait_for(pids)
    proc.kill()  # SIGKILL: nothing in the caller runs
    proc.wait()
    assert gone_within(tree) == []


def test_sigkilled_guard_takes_the_tool_and_its_child_along(tool, tmp_path):
    """What subprocess.run's timeout does: SIGKILL the guard itself."""
    from edgegan.util.procs import guarded

    path, _ = tool
    pids = tmp_path / "pids"
    proc = subprocess.Popen(guarded([sys.executable, str(path), str(pids), "120", "0"]))
    tree = wait_for(pids)
    proc.kill()
    proc.wait()
    assert gone_within(tree) == []


def test_a_finished_tool_leaves_nothing_and_its_exit_code_passes_through(tool, tmp_path):
    from edgegan.util.procs import guarded

    path, _ = tool
    pids = tmp_path / "pids"
    t0 = time.time()
    proc = subprocess.run(guarded([sys.executable, str(path), str(pids), "0.2", "3"]), capture_output=True, timeout=60)
    assert proc.returncode == 3
    assert time.time() - t0 < 30  # the leftover grandchild does not hold the captured pipes open
    assert gone_within(wait_for(pids)) == []


@pytest.mark.slow
def test_sigkilled_export_leaves_no_onnx2tf_or_onnxsim(tmp_path):
    """A real TFLite export killed with SIGKILL while onnx2tf runs: within a few seconds no
    process of that run (its work folder lives under this test's TMPDIR) remains."""
    pytest.importorskip("onnx2tf")
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "edgegan", "export", "dcgan-tiny", "--formats", "tflite-fp32",
                             "--out", str(tmp_path / "b"), "--json"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def ours() -> list[int]:
        found = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit() and int(d.name) != proc.pid:
                try:
                    cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if str(tmp_path) in cmd and alive(int(d.name)):
                    found.append(int(d.name))
        return found

    def cmdline(pid: int) -> str:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return ""

    # kill edgegan while onnxsim (onnx2tf's child, edgegan's great-grandchild) runs
    end = time.time() + 300
    while not any("/onnxsim " in cmdline(p) for p in ours()):
        assert proc.poll() is None and time.time() < end, "export ended before onnxsim started"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the guard reacts in milliseconds; an orphaned onnxsim would still be importing onnx
    assert gone_within(ours(), 1.0) == []
