"""Child processes that do not outlive edgegan, nor leave their own children behind.

A converter runs its toolchain (onnx2tf, the TFLiteConverter worker) in a child process; if
edgegan is killed outright (SIGKILL, an OOM kill) nothing can clean up after it. On Linux the
kernel can signal a child when its parent dies (prctl PR_SET_PDEATHSIG, :func:`die_with_parent`),
but only the direct child: onnx2tf's own children (onnxsim) kept running for ~20 s.

:func:`guarded` wraps a command so that its whole process tree dies with edgegan: a small guard
process (``python -m edgegan.util.procs``) starts the tool in a process group of its own and
kills that group when

* the tool exits (leftovers of a finished tool),
* edgegan dies, however (the guard's PDEATHSIG is SIGTERM, which it catches), or SIGINT/SIGTERM/
  SIGHUP reach the guard,
* the guard itself is killed with SIGKILL (e.g. by ``subprocess.run``'s timeout): a forked
  watcher whose PDEATHSIG points at the guard kills the group then.

Elsewhere than Linux the wrapper is the command itself (no PDEATHSIG to build on).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def _prctl_pdeathsig(sig: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def die_with_parent() -> None:
    """``preexec_fn`` for subprocess: SIGKILL this child when the process that started it dies."""
    if not sys.platform.startswith("linux"):
        return
    _prctl_pdeathsig(signal.SIGKILL)


def guarded(argv: list[str]) -> list[str]:
    """``argv`` run under the guard (see the module doc): its whole process tree dies with the
    caller. Use with ``preexec_fn=die_with_parent`` as before; the exit code is the tool's."""
    if not sys.platform.startswith("linux"):
        return list(argv)
    return [sys.executable, "-m", "edgegan.util.procs", str(os.getpid()), "--", *argv]


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _watch(guard_pid: int, pgid: int) -> None:
    """The forked watcher: kill the tool's group when the guard dies (even by SIGKILL)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # hold no pipe of the caller open (it reads them to EOF)
        os.dup2(devnull, fd)
    def fire(*_):
        _kill_group(pgid)
        os._exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, fire)
    _prctl_pdeathsig(signal.SIGTERM)
    if os.getppid() != guard_pid:  # the guard died before the prctl
        fire()
    while True:
        signal.pause()


def guard(parent_pid: int, argv: list[str]) -> int:
    """Run ``argv`` in its own process group; kill the group on every way out. Returns the tool's
    exit code (128 + N when a signal N ended it)."""
    _prctl_pdeathsig(signal.SIGTERM)
    if os.getppid() != parent_pid:  # the caller died before the prctl took effect
        return 128 + signal.SIGKILL
    tool = subprocess.Popen(argv, process_group=0, preexec_fn=die_with_parent)
    watcher = os.fork()
    if watcher == 0:
        try:
            _watch(os.getppid(), tool.pid)
        finally:
            os._exit(0)

    def stop(signum, _frame):
        _kill_group(tool.pid)
        os.kill(watcher, signal.SIGKILL)
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    rc = tool.wait()
    _kill_group(tool.pid)  # what the tool left running
    os.kill(watcher, signal.SIGKILL)
    os.waitpid(watcher, 0)
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":  # python -m edgegan.util.procs PARENT_PID -- ARGV...
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print("usage: python -m edgegan.util.procs PARENT_PID -- COMMAND...", file=sys.stderr)
        sys.exit(2)
    sys.exit(guard(int(sys.argv[1]), sys.argv[3:]))
