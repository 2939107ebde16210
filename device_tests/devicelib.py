"""Helpers shared by the device tests (a module of its own, so it never collides with
tests/conftest.py when both suites run in one session)."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from typing import Iterator, Optional


@dataclasses.dataclass
class Target:
    url: str
    identity: Optional[str] = None
    known_hosts: Optional[str] = None
    board: object = None  # the emulated Board, when we own the device

    @property
    def emulated(self) -> bool:
        return self.board is not None

    def args(self) -> list[str]:
        out = []
        if self.identity:
            out += ["--identity", self.identity]
        if self.known_hosts:
            out += ["--known-hosts", self.known_hosts]
        return out

    def options(self, **kw):
        from edgegan.devices.transport import TargetOptions

        return TargetOptions(identity=self.identity, known_hosts=self.known_hosts, **kw)


def edgegan(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """The CLI as a user runs it."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "edgegan", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, stdin=subprocess.DEVNULL)


def board_target(request, suite: Optional[str] = None) -> Iterator[Target]:
    """The device under test for a fixture to yield from: the --target given, else the emulated
    board of ``suite`` (the default bookworm board when None), started and stopped here."""
    import pytest

    url = request.config.getoption("--target")
    if url != "emulated":
        yield Target(url, request.config.getoption("--identity"), request.config.getoption("--known-hosts"))
        return
    if os.geteuid() != 0:
        pytest.skip("the emulated board needs root (chroot, binfmt_misc, mount namespaces); pass --target")
    from board import Board

    board = (Board(suite=suite) if suite else Board()).build()
    st = board.start()
    yield Target(st["target"], st["identity"], st["known_hosts"], board)
    board.stop()
