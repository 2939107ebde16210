"""What `profile` checks and clears in its results folder before it connects to anything.

* ``--formats`` names are checked up front (did-you-mean for a near name), so a typo is one line
  and exit 2, not a ``failed`` row after minutes of pushing.
* A results folder holding an earlier run is never silently mixed with this one: without
  ``--force`` (replace) or ``--resume`` (continue) profile refuses; with either, the earlier
  run's per-format folders that this run does not reuse are removed before it starts, so a
  format that fails this time cannot leave last run's samples looking like this run's.
* Only what a profile run writes is ever removed; a folder that is not a results folder is
  refused even with ``--force`` (nothing of the user's is deleted).
"""
from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Iterable, Optional

from ..errors import ConfigError, OutputError
from ..results import ResultsLayout

# files a profile run writes at the top of its folder and inside each per-format folder
TOP_FILES = (ResultsLayout.RESULTS, ResultsLayout.CSV, ResultsLayout.REPORT, ResultsLayout.GRID)
FORMAT_FILES = (ResultsLayout.SAMPLES, ResultsLayout.DEVICE_RESULTS)


def check_formats(wanted: Optional[Iterable[str]], bundle_formats: Iterable[str]) -> None:
    """ConfigError for a ``--formats`` name that is neither a registered format nor in the bundle."""
    if not wanted:
        return
    from ..converters import CONVERTERS

    known = sorted(set(CONVERTERS) | set(bundle_formats))
    for name in wanted:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(f"--formats: unknown format '{name}'; {hint}known formats: {', '.join(known)}",
                              field="formats")


def _only_profile_files(folder: Path) -> bool:
    """``folder`` holds nothing but what a profile run writes into a per-format folder (or the
    hidden temp files of its atomic writes and pulls)."""
    try:
        return all(p.is_file() and (p.name in FORMAT_FILES or p.name.startswith(".")) for p in folder.iterdir())
    except OSError:
        return False


def earlier_formats(out: Path) -> Optional[list[str]]:
    """The per-format folders of an earlier run in ``out`` (None: ``out`` holds no earlier run).
    An earlier run has a results.json, or (killed before its first save) only per-format folders
    with nothing but profile's own files in them."""
    try:
        entries = [p for p in out.iterdir() if not p.name.startswith(".")]
    except OSError:
        return None
    if not (out / ResultsLayout.RESULTS).is_file():
        if entries and all(p.is_dir() and not p.is_symlink() and _only_profile_files(p) for p in entries):
            return sorted(p.name for p in entries)
        return None
    try:
        rows = json.loads((out / ResultsLayout.RESULTS).read_text()).get("results") or []
        named = {r["format"] for r in rows if isinstance(r, dict) and isinstance(r.get("format"), str)}
    except (OSError, ValueError, AttributeError):
        named = set()
    found = [p.name for p in entries if p.is_dir() and not p.is_symlink()
             and (p.name in named or (p / ResultsLayout.SAMPLES).is_file() or (p / ResultsLayout.DEVICE_RESULTS).is_file())]
    return sorted(found)


def check_earlier_run(out: Path, force: bool, resume: bool) -> None:
    """Refuse (before connecting) an ``out`` that holds an earlier run without --force/--resume,
    or that holds files that are not a results folder's."""
    if not out.is_dir() or not any(out.iterdir()):
        return
    if earlier_formats(out) is None:
        raise OutputError(f"--out '{out}' is a folder that holds no profile results; choose another --out "
                          "(profile writes only into an empty or earlier results folder; nothing was changed)")
    if not (force or resume):
        raise OutputError(f"--out '{out}' holds an earlier profile run; pass --force to replace it, --resume to "
                          "reuse its finished formats, or choose another --out")


def clear_earlier_run(out: Path, keep: Iterable[str] = ()) -> list[str]:
    """Remove the earlier run's per-format folders not in ``keep`` (only the files a profile run
    writes; a folder that then still holds something else is left) and its top-level report
    files (rewritten by this run). Returns the formats cleared."""
    cleared = []
    for fmt in earlier_formats(out) or []:
        if fmt in keep:
            continue
        folder = out / fmt
        for name in FORMAT_FILES:
            (folder / name).unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:  # something else lives there: not ours to delete
            pass
        cleared.append(fmt)
    if not keep:
        for name in TOP_FILES:
            (out / name).unlink(missing_ok=True)
    return cleared


__all__ = ["check_formats", "check_earlier_run", "clear_earlier_run", "earlier_formats"]
