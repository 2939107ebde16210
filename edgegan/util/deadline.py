"""Give up on a call that does not return (a user's model factory that hangs, a huge load).

Python cannot kill a thread, so a worker thread with a timeout would leave the hung call
running; instead the call runs in the calling thread under ``SIGALRM`` (POSIX, main thread),
whose handler raises into it. This stops Python code (loops, sleeps, I/O waits); a single C
call that never returns to the interpreter is interrupted only when it does. Elsewhere (other
threads, Windows) the call runs without a deadline.
"""
from __future__ import annotations

import math
import signal
import threading
from typing import Callable, TypeVar

T = TypeVar("T")


class DeadlineExceeded(BaseException):
    """Raised inside the call when its time is up (a BaseException, so a factory's own
    ``except Exception`` cannot swallow it)."""


def can_enforce() -> bool:
    return hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()


def call_with_deadline(fn: Callable[[], T], seconds: float | None) -> T:
    """``fn()``, or DeadlineExceeded after ``seconds`` (None/inf: no deadline)."""
    if seconds is None or not math.isfinite(seconds) or not can_enforce():
        return fn()

    def _alarm(signum, frame):
        raise DeadlineExceeded(f"did not finish within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _alarm)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay:  # someone else's timer was running: give it back what is left of it
            signal.setitimer(signal.ITIMER_REAL, old_delay, old_interval)
