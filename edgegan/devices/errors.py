"""Device errors: every one is a :class:`~edgegan.errors.DeviceError` (exit code 7) with a
one-line message naming the problem and the fix; subclasses let callers (and tests) react to
the kind of failure without parsing messages."""
from __future__ import annotations

from ..errors import DeviceError


class HostKeyError(DeviceError):
    """The SSH host key is unknown or differs from known_hosts: refused."""


class DeviceConnectionError(DeviceError):
    """The target cannot be reached, refused authentication, or the connection dropped."""


class DeviceTimeoutError(DeviceError):
    """A command on the target ran past its timeout (it was stopped)."""


class RemoteCommandError(DeviceError):
    """A command on the target exited non-zero; ``stderr`` holds its tail."""

    def __init__(self, message: str, exit_code: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.remote_exit_code = exit_code
        self.stderr = stderr


class DeviceDiskFullError(DeviceError):
    """The target's disk filled up while receiving files or writing results."""


class UnsafePathError(DeviceError):
    """A file name coming from the device would land outside the results directory."""
