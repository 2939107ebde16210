"""Which implementation of a runtime fits a device: per-distribution Python floors and the
implementations not worth putting on a board. Read by device setup (what to install) and by the
session (why an artifact cannot run there); a leaf module so neither imports the other."""
from __future__ import annotations

from typing import Optional

MIN_PYTHON = {"executorch-numpy-runtime": (3, 12)}
NOT_FOR_BOARDS = {
    "executorch": "the full executorch runtime (a 17.8 MB aarch64 wheel) loads libtorch at import, so it needs "
                  "torch as well (torch 2.13.0 for aarch64/cp311: a 427 MB wheel)",
}


def _python_tuple(version: str) -> tuple[int, ...]:
    """(3, 11) from "3.11.2"; an unknown version passes every floor (nothing is claimed about it)."""
    try:
        return tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        return (99,)


def board_requirements(name: str, machine: str, python: str) -> tuple[list[str], Optional[str]]:
    """(pip distributions, None) for the implementation of runtime ``name`` (a runtime or one of
    its distributions) that fits a device with ``python``, or ([], one line saying why none
    does and what happens then)."""
    from ..runner.edgegan_runner import runtime_named

    rt = runtime_named(name)
    py = _python_tuple(python)
    if name != rt.name:  # the user named an implementation
        floor = MIN_PYTHON.get(name)
        if floor and py < floor:
            return [], (f"{name} has wheels only for Python >= {'.'.join(map(str, floor))}; this device has "
                        f"{python}: not installed, so {rt.name} artifacts fail there as 'no {rt.name} runtime'")
        return [name], None
    default = rt.pip_requirements(machine)
    if not any(d in NOT_FOR_BOARDS for d in default):
        return default, None
    for dist in rt.distributions():  # the lighter implementations, first that fits
        if dist not in NOT_FOR_BOARDS and py >= MIN_PYTHON.get(dist, (0, 0)):
            return [dist], None
    lighter = [d for d in rt.distributions() if d not in NOT_FOR_BOARDS]
    floors = ", ".join(f"{d} needs Python >= {'.'.join(map(str, MIN_PYTHON[d]))}" for d in lighter if d in MIN_PYTHON)
    why = "; ".join(NOT_FOR_BOARDS[d] for d in default if d in NOT_FOR_BOARDS)
    return [], (f"{rt.name}: not installed on this device (Python {python}): {floors or 'no lighter implementation'}, "
                f"and {why}; its artifacts fail there as 'no {rt.name} runtime' — use a Python >= 3.12 on the device "
                f"(e.g. Debian 13), or install it anyway with --requirements {' '.join(default)} torch numpy")
