"""The ``local`` target: this machine, through the same protocol as a remote board, so
``edgegan profile --target local`` exercises exactly the code path a device does."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from .errors import DeviceError, DeviceTimeoutError
from .transport import BaseTransport, RunResult, TargetOptions, confined_path


def local_cache() -> Path:
    base = os.environ.get("EDGEGAN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "edgegan")
    return Path(base)


class LocalTransport(BaseTransport):
    """Runs argv with subprocess (no shell), copies files with shutil."""

    def __init__(self, options: TargetOptions | None = None) -> None:
        self.options = options or TargetOptions()
        self.target = "local"

    def run(self, argv: list, timeout: float = 600.0, stdin: bytes | None = None) -> RunResult:
        argv = [str(a) for a in argv]
        t0 = time.monotonic()
        try:
            proc = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=timeout, stdin=None if stdin is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DeviceTimeoutError(f"`{argv[0]}` ran over {timeout:.0f} s on local and was killed; "
                                     "raise --timeout or use fewer --runs") from None
        except FileNotFoundError:
            return RunResult(argv, 127, "", f"{argv[0]}: command not found", time.monotonic() - t0)
        return RunResult(argv, proc.returncode, proc.stdout.decode(errors="replace"),
                         proc.stderr.decode(errors="replace"), time.monotonic() - t0)

    def push(self, local: Path, remote: str) -> None:
        part = remote + ".part"
        try:
            os.makedirs(os.path.dirname(remote) or ".", exist_ok=True)
            shutil.copyfile(local, part)
            os.replace(part, remote)
        except OSError as exc:
            Path(part).unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise self.disk_full_error(remote, os.path.getsize(local)) or DeviceError(
                    f"disk full writing {remote}; free space or pass --workdir elsewhere") from None
            raise DeviceError(f"cannot copy {local} to {remote} ({exc.strerror}); pass a writable --workdir") from None

    def pull(self, remote: str, local_dir: Path, name: str | None = None) -> Path:
        dest = confined_path(Path(local_dir), os.path.basename(remote) if name is None else name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name("." + dest.name + ".part")
        try:
            shutil.copyfile(remote, part)
            os.replace(part, dest)
        except FileNotFoundError:
            part.unlink(missing_ok=True)
            raise DeviceError(f"{remote} does not exist on local; the runner did not write it") from None
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise DeviceError(f"cannot copy {remote} to {dest} ({exc.strerror}); check --out") from None
        return dest

    def size(self, remote: str) -> Optional[int]:
        try:
            return os.path.getsize(remote)
        except OSError:
            return None

    def home(self) -> str:
        return os.path.expanduser("~")

    def default_workdir(self) -> str:
        return str(local_cache() / "local-target")

    def default_python(self) -> str:
        return sys.executable

    def close(self) -> None:
        pass
