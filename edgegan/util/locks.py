"""Advisory locks that die with their process, and cleaning what a killed process left behind.

A lock is ``fcntl.flock`` on a small file: the kernel drops it when the holder exits, however it
exits (SIGKILL included), so a lock can never go stale. The same property tells a leftover
working folder of a dead run from one a live run is still using: the live run holds the lock
file inside it.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

OWNER_LOCK = ".owner.lock"


class LockBusy(Exception):
    """Someone else holds the lock (``holder``: the pid written in the lock file, if readable)."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is locked by pid {holder or '?'}")
        self.path, self.holder = path, holder


class FileLock:
    """Non-blocking exclusive flock on ``path`` (created if missing). No-op where fcntl does
    not exist."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.fd: Optional[int] = None

    def acquire(self) -> "FileLock":
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks, no serialisation
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                os.close(fd)
                raise LockBusy(self.path, holder) from None
            try:  # the holder before us may have unlinked the file: then lock the new one
                same = os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def release(self, unlink: bool = False) -> None:
        """Drop the lock; ``unlink``: also delete the file (done while still holding it, so a
        waiting process re-checks and locks a fresh file instead of the deleted one)."""
        if self.fd is not None:
            if unlink:
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def is_locked(path: Path) -> bool:
    """True if a live process holds ``path``'s flock (False if it is free or missing)."""
    try:
        probe = FileLock(path)
        probe.acquire()
    except LockBusy:
        return True
    except OSError:
        return False
    probe.release()
    return False


class OwnedTempDir:
    """``tempfile.mkdtemp`` whose owner holds a lock file inside it for its lifetime, so
    :func:`remove_dead_temp_dirs` can remove it after its owner is killed."""

    def __init__(self, prefix: str, dir: Optional[str | Path] = None) -> None:
        self.prefix, self.dir = prefix, dir
        self.path: Optional[Path] = None
        self.lock: Optional[FileLock] = None

    def __enter__(self) -> str:
        self.path = Path(tempfile.mkdtemp(prefix=self.prefix, dir=self.dir))
        # locked under another name, then renamed: the owner file is never seen unlocked
        lock = FileLock(self.path / (OWNER_LOCK + ".new")).acquire()
        os.replace(lock.path, self.path / OWNER_LOCK)
        lock.path = self.path / OWNER_LOCK
        self.lock = lock
        return str(self.path)

    def __exit__(self, *exc) -> None:
        if self.lock is not None:
            self.lock.release()
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)


def remove_dead_temp_dirs(prefix: str, dir: Optional[str | Path] = None) -> list[Path]:
    """Remove ``prefix*`` folders (made by :class:`OwnedTempDir`) whose owner is gone; folders
    without an owner lock file are not ours and are left alone. Returns what was removed."""
    base = Path(dir or tempfile.gettempdir())
    removed = []
    try:
        candidates = [p for p in base.glob(prefix + "*") if p.is_dir() and not p.is_symlink()]
    except OSError:
        return removed
    for p in candidates:
        lock = p / OWNER_LOCK
        if lock.is_file() and not lock.is_symlink() and not is_locked(lock):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed
