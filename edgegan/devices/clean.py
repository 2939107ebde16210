"""`edgegan device clean TARGET`: remove what profiling leaves in edgegan's folder on a target.

Every profiled artifact is pushed once into ``artifacts/`` (content-addressed, so it is reused
by later runs, and never removed by them); ``runs/`` holds the folders of runs that were killed
before their cleanup; ``runner/`` one copy per runner version. All three are caches: the next
profile pushes again what it needs. The venv made by ``edgegan device setup`` stays unless
``all_`` is given. Only these known entries are removed, never the whole folder blindly: a
mistaken ``--workdir`` cannot delete anything edgegan did not put there.
"""
from __future__ import annotations

from typing import Optional

from .session import DeviceSession
from .targets import open_target
from .transport import TargetOptions

CACHES = ("artifacts", "runs", "runner")
SETUP = ("venv",)


def _kib(t, path: str) -> Optional[int]:
    """Size of ``path`` in bytes (POSIX ``du -sk``), None when unknown or absent."""
    try:
        res = t.run(["du", "-sk", path], timeout=120)
    except Exception:  # noqa: BLE001 - only for the summary
        return None
    try:
        return int(res.stdout.split()[0]) * 1024 if res.exit_code == 0 else None
    except (IndexError, ValueError):
        return None


def _exists(t, path: str) -> bool:
    return t.run(["test", "-e", path], timeout=30).exit_code == 0


def clean_device(target: str, options: TargetOptions | None = None, all_: bool = False) -> dict:
    """Remove the caches (and with ``all_`` the setup venv, then the folder itself if nothing else
    is in it) from edgegan's workdir on ``target``. Returns what was removed and the bytes freed."""
    options = options or TargetOptions()
    with open_target(target, options) as t:
        session = DeviceSession(t, options.workdir, options.python)
        removed, freed = [], 0
        for name in CACHES + (SETUP if all_ else ()):
            path = session.path(name)
            if not _exists(t, path):
                continue
            size = _kib(t, path)
            t.remove(path)
            removed.append({"path": path, "bytes": size})
            freed += size or 0
        workdir_removed = False
        if all_:  # rmdir only succeeds on an empty folder: anything else in it is left alone
            workdir_removed = t.run(["rmdir", session.workdir], timeout=30).exit_code == 0
        kept = [session.path(n) for n in SETUP if not all_ and _exists(t, session.path(n))]
        return {"target": t.target, "workdir": session.workdir, "removed": removed, "bytes_freed": freed,
                "kept": kept, "workdir_removed": workdir_removed}
