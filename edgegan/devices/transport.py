"""The Transport protocol: how edgegan reaches a target (run argv, push, pull) + the registry.

A transport never builds shell strings from pieces: commands are argv lists (the SSH
transport quotes them with :func:`shlex.join`, the one form an SSH server accepts), every exit
code comes back in a :class:`RunResult`, and files pulled from a device can only land inside
the directory the caller names (a device cannot write elsewhere on the host by choosing a
file name).
"""
from __future__ import annotations

import dataclasses
import os
import re
import time
from pathlib import Path
from typing import Optional, Protocol, runtime_checkable

from ..config import JsonConfig
from ..errors import ConfigError
from .errors import DeviceDiskFullError, RemoteCommandError, UnsafePathError

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")


@dataclasses.dataclass
class RunResult:
    """Outcome of one command on the target."""

    argv: list
    exit_code: int
    stdout: str
    stderr: str
    seconds: float

    def check(self, what: str) -> "RunResult":
        """Raise RemoteCommandError (with the stderr tail) unless the command exited 0."""
        if self.exit_code != 0:
            tail = stderr_tail(self.stderr) or stderr_tail(self.stdout) or "(no output)"
            raise RemoteCommandError(f"{what} failed on the device (exit {self.exit_code}): {tail}",
                                     self.exit_code, self.stderr)
        return self


def stderr_tail(text: str, lines: int = 3, chars: int = 600) -> str:
    """The last meaningful lines of a program's stderr, joined on one line."""
    keep = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    errors = [ln for ln in keep if "error" in ln.lower()]
    pick = errors[-1:] if errors else keep[-lines:]
    return " | ".join(pick)[-chars:]


@dataclasses.dataclass
class TargetOptions(JsonConfig):
    """How to reach a target: ssh identity, known_hosts policy, timeouts, device paths."""

    identity: Optional[str] = None
    known_hosts: Optional[str] = None
    accept_new_host_key: bool = False
    connect_timeout_s: float = 15.0
    retries: int = 2
    workdir: Optional[str] = None
    python: Optional[str] = None
    ssh_config: Optional[str] = None  # None: $EDGEGAN_SSH_CONFIG, else ~/.ssh/config

    def validate(self) -> None:
        if self.connect_timeout_s <= 0:
            raise ConfigError(f"connect timeout must be > 0, got {self.connect_timeout_s}")
        if self.retries < 0:
            raise ConfigError(f"retries must be >= 0, got {self.retries}")


@runtime_checkable
class Transport(Protocol):
    """What profile/setup need from a target."""

    target: str

    def run(self, argv: list, timeout: float = 600.0, stdin: bytes | None = None) -> RunResult: ...

    def push(self, local: Path, remote: str) -> None: ...

    def pull(self, remote: str, local_dir: Path, name: str | None = None) -> Path: ...

    def size(self, remote: str) -> Optional[int]: ...

    def home(self) -> str: ...

    def default_workdir(self) -> str: ...

    def default_python(self) -> str: ...

    def close(self) -> None: ...


def confined_path(local_dir: Path, name: str) -> Path:
    """``local_dir/name`` if ``name`` is a plain file name; UnsafePathError otherwise."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name) or ".." in name:
        raise UnsafePathError(f"refusing device file name {name!r}: only plain names (letters, digits, . _ -) "
                              f"may be pulled into '{local_dir}'")
    base = Path(local_dir).resolve()
    dest = (base / name).resolve()
    if dest.parent != base:
        raise UnsafePathError(f"refusing device file name {name!r}: it resolves outside '{base}'")
    return dest


class BaseTransport:
    """Helpers shared by transports, written only in terms of run/push/pull."""

    target = ""

    def run(self, argv: list, timeout: float = 600.0, stdin: bytes | None = None) -> RunResult:
        raise NotImplementedError

    def checked(self, argv: list, what: str, timeout: float = 600.0) -> RunResult:
        return self.run(argv, timeout=timeout).check(what)

    def mkdir(self, remote: str) -> None:
        self.checked(["mkdir", "-p", remote], f"mkdir {remote}", timeout=60)

    def remove(self, remote: str) -> None:
        self.checked(["rm", "-rf", remote], f"rm -rf {remote}", timeout=120)

    def free_bytes(self, remote_dir: str) -> Optional[int]:
        """Free bytes on the filesystem holding ``remote_dir`` (POSIX `df -Pk`), None if unknown."""
        try:
            res = self.run(["df", "-Pk", remote_dir], timeout=30)
        except Exception:  # noqa: BLE001 - best effort, only used to explain a failure
            return None
        lines = res.stdout.strip().splitlines()
        if res.exit_code != 0 or len(lines) < 2:
            return None
        try:
            return int(lines[-1].split()[3]) * 1024
        except (IndexError, ValueError):
            return None

    def disk_full_error(self, remote: str, need: int) -> Optional[DeviceDiskFullError]:
        free = self.free_bytes(os.path.dirname(remote) or ".")
        if free is not None and free < max(need, 1) + 4096:
            return DeviceDiskFullError(
                f"disk full on {self.target}: writing {remote} needs {need:,} bytes, {free:,} free; "
                "free space on the device or pass --workdir on a bigger disk")
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()  # type: ignore[attr-defined]


def backoff(attempt: int) -> None:
    time.sleep(min(0.5 * 2 ** attempt, 5.0))
