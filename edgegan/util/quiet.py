"""Silence what third-party code prints while it runs, at the file-descriptor level: the
TorchScript exporter dumps whole graphs from C++ straight to stdout, torch's dynamo logs guard
failures to stderr; neither passes through ``sys.stdout`` / ``sys.stderr`` alone."""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator


class Captured:
    """The captured bytes' size and the last lines (for debugging), after the block ends."""

    def __init__(self) -> None:
        self.bytes = 0
        self.tail = ""


@contextlib.contextmanager
def captured_output(keep_tail: int = 4000) -> Iterator[Captured]:
    """Run the block with fds 1 and 2 (and sys.stdout / sys.stderr) sent to a temporary file."""
    got = Captured()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stdout(open(os.devnull, "w")) as out, contextlib.redirect_stderr(out):
                try:
                    yield got
                finally:
                    out.close()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            got.bytes = sink.seek(0, os.SEEK_END)
            sink.seek(max(0, got.bytes - keep_tail))
            got.tail = sink.read().decode("utf-8", "replace")
