"""Tool sets that pip cannot install through an extra, installed into the running environment.

The TFLite route needs onnx2tf 1.29.x and a few tools around it whose package metadata pins old
TensorFlow/numpy/onnx: installed the normal way, pip would downgrade the pinned stack. So they
go in with ``pip install --no-deps``, from a list shipped inside the package
(``edgegan/requirements/nodeps.txt``) — the same list ``make install`` uses, through the same
code (``edgegan setup tflite``), the way ``playwright install`` fetches what pip cannot.
"""
from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Sequence
from importlib import resources

from ..errors import ConfigError, InstallError

# tool set -> (requirement file inside edgegan/requirements, import names the set needs already
# installed by the normal extra, that extra)
TOOLSETS = {"tflite": ("nodeps.txt", ("tensorflow", "ai_edge_litert"), "tflite")}

_REQ = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*([A-Za-z0-9.+!_-]+))?$")


@dataclass(frozen=True)
class Requirement:
    """One line of a tool set: a distribution name, optionally pinned to one exact version."""

    name: str
    version: str | None = None

    def __str__(self) -> str:
        return f"{self.name}=={self.version}" if self.version else self.name

    def installed_version(self) -> str | None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(self.name)
        except PackageNotFoundError:
            return None

    def satisfied_by(self, installed: str | None) -> bool:
        return installed is not None and (self.version is None or installed == self.version)


def _toolset(name: str) -> tuple[str, tuple[str, ...], str]:
    if name not in TOOLSETS:
        raise ConfigError(f"unknown tool set {name!r}; known: {', '.join(TOOLSETS)}")
    return TOOLSETS[name]


def requirements(name: str) -> list[Requirement]:
    """The pinned requirements of tool set ``name``, read from the file shipped in the package."""
    filename, _, _ = _toolset(name)
    text = resources.files("edgegan").joinpath("requirements", filename).read_text(encoding="utf-8")
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _REQ.match(line)
        if m is None:  # a packaging mistake, caught by the tests
            raise ConfigError(f"edgegan/requirements/{filename}: cannot read {line!r} (use NAME or NAME==VERSION)")
        out.append(Requirement(m.group(1), m.group(2)))
    return out


@dataclass(frozen=True)
class Plan:
    """What installing a tool set would change: each requirement with the version found now."""

    toolset: str
    rows: tuple[tuple[Requirement, str | None], ...]
    missing_prerequisites: tuple[str, ...]
    extra: str

    @property
    def to_install(self) -> list[Requirement]:
        return [r for r, have in self.rows if not r.satisfied_by(have)]


def plan(name: str) -> Plan:
    """Compare tool set ``name`` with what this interpreter has installed (no side effects)."""
    import importlib.util

    _, prereqs, extra = _toolset(name)
    rows = tuple((r, r.installed_version()) for r in requirements(name))
    absent = tuple(m for m in prereqs if importlib.util.find_spec(m) is None)
    return Plan(name, rows, absent, extra)


def install(p: Plan, pip_args: Sequence[str] = (), timeout: float = 900) -> list[Requirement]:
    """Install the unsatisfied requirements of ``p`` with ``python -m pip install --no-deps``
    into this interpreter's environment (``pip_args``: e.g. ``--no-index --find-links DIR`` for
    an offline machine). Returns what was installed (empty when everything was already there:
    pip does not run). Raises :class:`InstallError`."""
    if p.missing_prerequisites:
        raise InstallError(f"{', '.join(p.missing_prerequisites)} not installed, which the {p.toolset} tools need "
                           f"first; install with: pip install 'edgegan[{p.extra}]' (then run `edgegan setup {p.toolset}`)")
    todo = p.to_install
    if not todo:
        return []
    argv = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
            "--no-input", "-q", *pip_args, *map(str, todo)]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise InstallError(f"pip did not finish installing the {p.toolset} tools within {timeout:.0f} s; "
                           f"retry, or run: {' '.join(argv[1:])}") from None
    if r.returncode != 0:
        raise InstallError(f"pip could not install the {p.toolset} tools: {_pip_reason(r.stderr)} "
                           f"(command: python {' '.join(argv[1:])})")
    import importlib

    importlib.invalidate_caches()  # the new dist-info folders must be seen
    still = [r for r in todo if not r.satisfied_by(r.installed_version())]
    if still:
        raise InstallError(f"pip finished but {', '.join(map(str, still))} is still not installed in this "
                           f"environment ({argv[0]})")
    return todo


def _pip_reason(stderr: str) -> str:
    """The line of pip's output that says why (its ERROR line, else its last line)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("WARNING: Location")]
    if any("No module named pip" in ln for ln in lines):
        return "pip is not available in this environment (add it with: python -m ensurepip)"
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    return (errors[0] if errors else lines[-1] if lines else "no output")[:300]
