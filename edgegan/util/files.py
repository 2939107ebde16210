"""Atomic file writes: a reader (or a crash) never sees half a file, only the old one or the new."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def temp_path_beside(path: str | Path, suffix: str = ".tmp") -> Path:
    """A new, unique, empty hidden file in ``path``'s folder (same filesystem, so
    ``os.replace`` onto ``path`` is atomic). The caller replaces or deletes it."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
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
