"""Atomic file writes: a reader (or a crash) never sees half a file, only the old one or the new."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def current_umask() -> int:
    """The process umask (read from /proc where possible: setting it to read it races threads)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def usual_mode(directory: bool = False) -> int:
    """The mode ``open()`` / ``mkdir`` would give a new file / folder (0644 / 0755 under umask
    022), for what mkstemp (0600) and mkdtemp (0700) create privately and then rename into place."""
    return (0o777 if directory else 0o666) & ~current_umask()


def temp_path_beside(path: str | Path, suffix: str = ".tmp") -> Path:
    """A new, unique, empty hidden file in ``path``'s folder (same filesystem, so
    ``os.replace`` onto ``path`` is atomic). The caller replaces or deletes it. Its mode is the
    usual one under the umask (not mkstemp's 0600), so the renamed file reads like any other."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, usual_mode())
    finally:
        os.close(fd)
    return Path(name)


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (str as UTF-8) to ``path`` through a temporary file and a rename."""
    path = Path(path)
    tmp = temp_path_beside(path)
    try:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
