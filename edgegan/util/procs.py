"""Child processes that do not outlive edgegan.

A converter runs its toolchain (onnx2tf, the TFLiteConverter worker) in a child process; if
edgegan is killed outright (SIGKILL, an OOM kill) nothing can clean up after it, and the child
kept converting for tens of seconds. On Linux the kernel can deliver a signal to a child when
its parent dies (prctl PR_SET_PDEATHSIG); elsewhere this is a no-op.
"""
from __future__ import annotations

import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for subprocess: SIGKILL this child when the process that started it dies."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
