"""A working session on a target: where edgegan keeps things there, which python runs the
runner, and :class:`DeviceInfo` read by the runner itself (so local and remote agree).

Device layout (``WORKDIR``, default ``~/.edgegan`` on a board)::

    venv/                       made by `edgegan device setup` (numpy + runtimes)
    runner/edgegan_runner-<sha>.py
    artifacts/<sha16>-<name>    pushed once per artifact content
    runs/<run-id>/              inputs, per-format jobs + results; removed after the pull
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import posixpath
from typing import Optional

from ..config import JsonConfig
from .errors import DeviceError, RemoteCommandError
from ..runner import RUNNER_PATH
from .transport import Transport, stderr_tail

VENV_PYTHON = "venv/bin/python"


@dataclasses.dataclass
class DeviceInfo(JsonConfig):
    """What the runner reports about the machine it runs on."""

    arch: str = ""
    cpu: str = ""
    cores: Optional[int] = None
    memory_mb: Optional[float] = None
    os: str = ""
    kernel: str = ""
    hostname: str = ""
    python: str = ""
    python_executable: str = ""
    runtimes: dict = dataclasses.field(default_factory=dict)
    emulator: Optional[str] = None
    thermal_zones: int = 0
    power_sources: list = dataclasses.field(default_factory=list)
    runner_version: int = 0
    target: str = ""

    def has_runtime_for(self, artifact_path: str) -> Optional[str]:
        """None if a runtime for this artifact is installed, else the reason it is not
        (looked up in the runner's runtime table)."""
        from ..runner.edgegan_runner import RunnerError, runtime_for

        try:
            rt = runtime_for(artifact_path)
        except RunnerError as exc:
            return str(exc)
        if rt.installed(self.runtimes) is None:
            from .runtime_fit import board_requirements

            _, why = board_requirements(rt.name, self.arch or "", self.python or "")
            if why:  # setup would not install it here either: say why, not "run setup"
                return f"no {rt.name} runtime on the device: {why}"
            return (f"no {rt.name} runtime on the device (install {' or '.join(rt.distributions())}: "
                    f"`edgegan device setup --runtimes {rt.name}`)")
        if "numpy" not in self.runtimes:
            return "no numpy on the device (`edgegan device setup`)"
        return None

    def summary(self) -> str:
        mem = f", {self.memory_mb / 1024:.1f} GB" if self.memory_mb else ""
        emu = f", emulated by {self.emulator}" if self.emulator else ""
        return f"{self.arch} {self.cpu} ({self.cores} cores{mem}), {self.os}, python {self.python}{emu}"


class DeviceSession:
    """A transport plus the device paths edgegan uses on it."""

    def __init__(self, transport: Transport, workdir: str | None = None, python: str | None = None) -> None:
        self.t = transport
        self.workdir = workdir or transport.default_workdir()
        if not posixpath.isabs(self.workdir):
            self.workdir = posixpath.join(transport.home(), self.workdir)
        self._python = python
        self._runner: Optional[str] = None

    @property
    def venv_python(self) -> str:
        return posixpath.join(self.workdir, VENV_PYTHON)

    @property
    def python(self) -> str:
        """--python, else the setup venv if present, else the transport's default python."""
        if self._python is None:
            self._python = self.venv_python if self.t.size(self.venv_python) is not None else self.t.default_python()
        return self._python

    def path(self, *parts: str) -> str:
        return posixpath.join(self.workdir, *parts)

    def ensure_runner(self) -> str:
        """Push the runner (content-addressed, so a changed runner is never stale)."""
        if self._runner is None:
            data = RUNNER_PATH.read_bytes()
            remote = self.path("runner", f"edgegan_runner-{hashlib.sha256(data).hexdigest()[:12]}.py")
            if self.t.size(remote) != len(data):
                self.t.mkdir(posixpath.dirname(remote))
                self.t.push(RUNNER_PATH, remote)
            self._runner = remote
        return self._runner

    def runner_argv(self, *args: str) -> list:
        return [self.python, self.ensure_runner(), *args]

    def info(self, python: str | None = None, timeout: float = 300.0) -> DeviceInfo:
        """DeviceInfo from ``runner --info`` under ``python`` (default: the session's)."""
        py = python or self.python
        res = self.t.run([py, self.ensure_runner(), "--info"], timeout=timeout)
        if res.exit_code == 127 or "not found" in res.stderr and res.exit_code != 0:
            raise DeviceError(f"no {py} on {self.t.target}: install python3 on the device "
                              "(Debian/Raspberry Pi OS: apt install python3 python3-venv)")
        try:
            res.check(f"{py} edgegan_runner.py --info")
        except RemoteCommandError:
            raise
        try:
            data = json.loads(res.stdout)
        except json.JSONDecodeError:
            raise DeviceError(f"the runner's --info output on {self.t.target} is not JSON: "
                              f"{stderr_tail(res.stdout + res.stderr)}") from None
        known = {f.name for f in dataclasses.fields(DeviceInfo)}
        info = DeviceInfo.from_dict({k: v for k, v in data.items() if k in known})
        info.target = self.t.target
        describe = getattr(self.t, "describe_device", None)  # adb: Android's getprop on top of what Linux reports
        if callable(describe):
            describe(info)
        return info
