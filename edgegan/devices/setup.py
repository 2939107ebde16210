"""`edgegan device setup`: a venv on the device with numpy + the runtimes the runner needs.

Online boards install from the package index; offline boards get wheels the host downloads
for the device's platform (``--download-wheels``: pip download with the device's python
version and the manylinux tags of its architecture — aarch64 needs all three tags, or pip
picks an ancient ai-edge-litert) or from a folder (``--wheels DIR``). Versions default to this
host's, so device and host run the same runtime and their outputs can be compared bit for bit.
Idempotent: a marker in the venv records what was installed; a matching rerun does nothing.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import posixpath
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

from ..config import JsonConfig
from ..errors import ConfigError, DeviceError
from .errors import RemoteCommandError
from .local import local_cache
from .runtime_fit import board_requirements
from .session import DeviceInfo, DeviceSession
from .targets import open_target
from .transport import TargetOptions, stderr_tail

log = logging.getLogger(__name__)

MARKER = "edgegan-setup.json"
PLATFORM_TAGS = {
    "aarch64": ["manylinux2014_aarch64", "manylinux_2_27_aarch64", "manylinux_2_28_aarch64"],
    "arm64": ["manylinux2014_aarch64", "manylinux_2_27_aarch64", "manylinux_2_28_aarch64"],
    "x86_64": ["manylinux2014_x86_64", "manylinux_2_27_x86_64", "manylinux_2_28_x86_64"],
}


def host_version(dist: str) -> Optional[str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def default_requirements(runtimes: list[str]) -> list[str]:
    """numpy + the runtimes, pinned to this host's versions where the host has them."""
    reqs = []
    for dist in ["numpy", *runtimes]:
        v = host_version(dist)
        reqs.append(f"{dist}=={v}" if v else dist)
    return reqs


def platform_tags(arch: str) -> list[str]:
    tags = PLATFORM_TAGS.get(arch.lower())
    if not tags:
        raise ConfigError(f"no wheel platform tags known for arch {arch!r}; download wheels yourself and pass --wheels DIR")
    return tags


def download_wheels(reqs: list[str], arch: str, python_version: str, dest: Path | None = None) -> Path:
    """pip download ``reqs`` for the device's platform (cached per platform + requirement set)."""
    pyver = ".".join(python_version.split(".")[:2])
    key = f"{arch}-cp{pyver.replace('.', '')}"
    dest = dest or local_cache() / "wheels" / key
    stamp = dest / ".requirements.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == sorted(reqs):
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "--only-binary=:all:",
            "--python-version", pyver, "--implementation", "cp", "-d", str(dest)]
    for tag in platform_tags(arch):
        argv += ["--platform", tag]
    proc = subprocess.run(argv + reqs, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise DeviceError(f"pip download for {key} failed: {stderr_tail(proc.stderr)}; check the versions exist "
                          "for that platform (`pip index versions NAME`) or pass --wheels DIR")
    stamp.write_text(json.dumps(sorted(reqs)))
    return dest


def _runtime_table() -> dict:
    from ..runner.edgegan_runner import RUNTIMES

    return RUNTIMES


def resolve_runtimes(names: list[str], machine: str = "") -> tuple[list[str], list[str]]:
    """(runtime names, pip distributions) for ``--runtimes`` entries: a runtime name from the
    runner's table installs its default distribution for the device's machine; a distribution
    name (e.g. tflite-runtime) installs that implementation."""
    from ..runner.edgegan_runner import RunnerError, runtime_named

    runtimes, dists = [], []
    for n in names:
        try:
            rt = runtime_named(n)
        except RunnerError as exc:
            raise ConfigError(f"SetupConfig.runtimes: {exc}", field="runtimes") from None
        runtimes.append(rt.name)
        dists += rt.pip_requirements(machine) if n == rt.name else [n]
    return list(dict.fromkeys(runtimes)), list(dict.fromkeys(dists))


# Which implementation of a runtime fits a board (measured 2026-11 on PyPI for aarch64):
# implementations whose wheels start at a Python version, and implementations a board does not
# get by default because they drag in far more than the runtime.
def runtime_plan(names: list[str], machine: str, python: str) -> tuple[list[str], list[str], dict[str, str]]:
    """(runtimes to install, pip distributions, {runtime: why it is skipped}) for a device."""
    from ..runner.edgegan_runner import runtime_named

    resolve_runtimes(names, machine)  # unknown names: the one ConfigError
    runtimes, dists, skipped = [], [], {}
    for name in names:
        rt = runtime_named(name).name
        picked, why = board_requirements(name, machine, python)
        if why:
            skipped.setdefault(rt, why)
            continue
        runtimes.append(rt)
        dists += picked
    for rt in runtimes:
        skipped.pop(rt, None)  # another entry installed it
    return list(dict.fromkeys(runtimes)), list(dict.fromkeys(dists)), skipped


@dataclasses.dataclass
class SetupConfig(JsonConfig):
    target: str
    runtimes: list[str] = dataclasses.field(default_factory=lambda: list(_runtime_table()))
    requirements: Optional[list[str]] = None
    wheels: Optional[str] = None
    download_wheels: bool = False
    index_url: Optional[str] = None
    system_python: str = "python3"
    force: bool = False
    timeout_s: float = 1800.0
    target_options: TargetOptions = dataclasses.field(default_factory=TargetOptions)

    def validate(self) -> None:
        resolve_runtimes(self.runtimes)
        if self.wheels and self.download_wheels:
            raise ConfigError("pass either --wheels DIR or --download-wheels, not both")
        if self.wheels and not Path(self.wheels).is_dir():
            raise ConfigError(f"--wheels {self.wheels} is not a directory of .whl files")
        if self.wheels and not any(Path(self.wheels).glob("*.whl")):
            raise ConfigError(f"--wheels {self.wheels} holds no .whl files; download them first "
                              "(or use --download-wheels); nothing on the device was changed")


def setup_device(cfg: SetupConfig, progress: Callable[[str], None] | None = None) -> dict:
    """Create/refresh the device venv; returns {"status", "device" (DeviceInfo dict), ...}."""
    say = progress or (lambda msg: None)
    opts = cfg.target_options
    t0 = time.monotonic()
    with open_target(cfg.target, opts) as t:
        s = DeviceSession(t, opts.workdir, opts.python)
        say(f"reading device info with {cfg.system_python}")
        base = s.info(python=cfg.system_python)
        runtimes, dists, skipped = runtime_plan(cfg.runtimes, base.arch, base.python)
        for why in skipped.values():
            say(why)
        if not runtimes and not cfg.requirements:
            raise DeviceError(" / ".join(skipped.values()) or "no runtime to install")
        reqs = cfg.requirements or default_requirements(dists)
        venv = s.path("venv")
        spec = {"requirements": sorted(reqs), "python": base.python, "arch": base.arch}
        if not cfg.force and _marker(t, venv) == spec:
            try:
                info = s.info(python=s.venv_python)
                if all(info.has_runtime_for(p) is None for p in _probe_paths(runtimes)):
                    return {"status": "already set up", "device": info.to_dict(), "venv": venv, "requirements": reqs,
                            "skipped": skipped, "seconds": round(time.monotonic() - t0, 1)}
            except DeviceError:
                pass  # broken venv: rebuild it
        pip_source: list[str] = []
        wheel_dir = Path(cfg.wheels) if cfg.wheels else None
        if cfg.download_wheels:
            say(f"downloading wheels on this host for {base.arch} / python {base.python}")
            wheel_dir = download_wheels(reqs, base.arch, base.python)
        files = sorted(wheel_dir.glob("*.whl")) if wheel_dir is not None else []
        if wheel_dir is not None and not files:  # checked before anything on the device changes
            raise ConfigError(f"no .whl files in {wheel_dir}; nothing on the device was changed")
        # the new venv is built beside the working one and swapped in only once it runs the runner
        new = venv + ".new"
        say(f"creating {new} with {cfg.system_python} ({base.python}, {base.arch})")
        t.remove(new)
        t.mkdir(s.workdir)
        res = t.run([cfg.system_python, "-m", "venv", new], timeout=600)
        if res.exit_code != 0:
            t.remove(new)
            hint = ("install the venv module (Debian/Raspberry Pi OS: apt install python3-venv)"
                    if "ensurepip" in res.stderr or "venv" in res.stderr else "check the device's python3")
            raise RemoteCommandError(f"`{cfg.system_python} -m venv` failed on {t.target}: {stderr_tail(res.stderr)}; {hint}",
                                     res.exit_code, res.stderr)
        new_python = posixpath.join(new, "bin", "python")
        pip = [new_python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--no-compile", "-q"]
        if wheel_dir is not None:
            remote_wheels = s.path("wheels")
            t.mkdir(remote_wheels)
            say(f"pushing {len(files)} wheels ({sum(f.stat().st_size for f in files) / 1e6:.0f} MB)")
            for f in files:
                remote = posixpath.join(remote_wheels, f.name)
                if t.size(remote) != f.stat().st_size:
                    t.push(f, remote)
            pip_source = ["--no-index", "--find-links", remote_wheels]
        elif cfg.index_url:
            pip_source = ["--index-url", cfg.index_url]
        say("installing " + " ".join(reqs) + (" (offline wheels)" if wheel_dir else " from the package index"))
        res = t.run(pip + pip_source + reqs, timeout=cfg.timeout_s)
        if res.exit_code != 0:
            t.remove(new)
            raise RemoteCommandError(f"pip install on {t.target} failed: {stderr_tail(res.stderr)}; "
                                     + ("the device may be offline: use --download-wheels" if wheel_dir is None else
                                        "the wheels may not match the device's platform/python")
                                     + f"; the previous {venv} was left as it was", res.exit_code, res.stderr)
        info = s.info(python=new_python)
        missing = [m for m in (info.has_runtime_for(p) for p in _probe_paths(runtimes)) if m]
        if missing:
            t.remove(new)
            raise DeviceError(f"setup finished but the runner still reports: {missing[0]}; "
                              f"the previous {venv} was left as it was")
        _write_marker(t, new, spec)
        _swap(t, new, venv)
        info = s.info(python=s.venv_python)
        return {"status": "installed", "device": info.to_dict(), "venv": venv, "requirements": reqs, "skipped": skipped,
                "offline_wheels": str(wheel_dir) if wheel_dir else None, "seconds": round(time.monotonic() - t0, 1)}


def _swap(t, new: str, venv: str) -> None:
    """Put the finished venv ``new`` in place of ``venv`` (the old one is removed only after)."""
    old = venv + ".old"
    t.remove(old)
    if t.run(["test", "-e", venv], timeout=60).exit_code == 0:
        t.checked(["mv", venv, old], f"mv {venv} {old}", timeout=120)
    t.checked(["mv", new, venv], f"mv {new} {venv}", timeout=120)
    t.remove(old)


def _probe_paths(runtimes: list[str]) -> list[str]:
    """One artifact name per runtime, to ask DeviceInfo.has_runtime_for about."""
    table = _runtime_table()
    return ["x" + table[r].suffixes[0] for r in runtimes]


def _marker(t, venv: str) -> Optional[dict]:
    remote = posixpath.join(venv, MARKER)
    if t.size(remote) is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            return json.loads(t.pull(remote, Path(tmp), MARKER).read_text())
        except (DeviceError, json.JSONDecodeError):
            return None


def _write_marker(t, venv: str, spec: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / MARKER
        p.write_text(json.dumps(spec, indent=1))
        t.push(p, posixpath.join(venv, MARKER))


def device_info(target: str, options: TargetOptions | None = None) -> DeviceInfo:
    """DeviceInfo of ``target`` (with the setup venv's python when it exists)."""
    options = options or TargetOptions()
    with open_target(target, options) as t:
        return DeviceSession(t, options.workdir, options.python).info()
