"""Hold back what torch / TensorFlow / ONNX Runtime print during a stage (torch's "torchvision
is not installed" warnings, TF's and LiteRT's C++ INFO lines): they would break the progress
display and say nothing to the user. ``-v`` shows them live instead.

Captured at the file-descriptor level, because much of it comes from C++ code that never
passes through Python's ``sys.stderr``; edgegan's own log records still reach the terminal.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from typing import Iterator


class HeldBack:
    """What was captured: ``lines`` after the block ends (empty with ``-v``)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.stream = None  # the real stderr while the block runs (None: sys.stderr is it)

    def note(self) -> str:
        """A one-line pointer for when the stage failed."""
        return f"({len(self.lines)} lines of third-party output hidden; rerun with -v to see them)"


class _OursOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "edgegan" or record.name.startswith(("edgegan.", "__main__"))


@contextlib.contextmanager
def hold_back_third_party_output(verbose: bool) -> Iterator[HeldBack]:
    held = HeldBack()
    if verbose:
        yield held
        return
    sys.stderr.flush()
    real = os.dup(2)
    real_stream = os.fdopen(os.dup(real), "w", buffering=1, encoding="utf-8", errors="replace")
    held.stream = real_stream
    root = logging.getLogger()
    swapped = []  # edgegan's records keep going to the real stderr; third-party ones are dropped
    for h in root.handlers:
        if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is sys.stderr:
            swapped.append((h, h.setStream(real_stream)))
            h.addFilter(_OursOnly())
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield held
        finally:
            sys.stderr.flush()
            os.dup2(real, 2)
            os.close(real)
            for h, old in swapped:
                h.setStream(old)
                h.filters = [f for f in h.filters if not isinstance(f, _OursOnly)]
            held.stream = None
            real_stream.close()
            sink.seek(0)
            held.lines = sink.read().decode("utf-8", "replace").splitlines()
