"""Device tests: the full export -> setup -> profile -> compare flow on a REAL target.

    pytest device_tests -m device                              # the emulated aarch64 board (CI)
    pytest device_tests -m device --target ssh://pi@raspberrypi.local --identity ~/.ssh/id_ed25519
    pytest device_tests -m device --target local

Without --target (and without $EDGEGAN_DEVICE_TARGET) the emulated board is built (cached under
~/.cache/edgegan/board; cold ~1 min, warm seconds) and its sshd started for the session.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "board"))
sys.path.insert(0, str(HERE))

from devicelib import board_target, edgegan  # noqa: E402


def pytest_addoption(parser):
    g = parser.getgroup("edgegan device tests")
    g.addoption("--target", default=os.environ.get("EDGEGAN_DEVICE_TARGET", "emulated"),
                help="emulated (build + start the emulated aarch64 board), local, or ssh://user@host[:port]")
    g.addoption("--identity", default=os.environ.get("EDGEGAN_DEVICE_IDENTITY"), help="ssh private key")
    g.addoption("--known-hosts", default=os.environ.get("EDGEGAN_DEVICE_KNOWN_HOSTS"), help="known_hosts file")
    g.addoption("--device-model", default=os.environ.get("EDGEGAN_DEVICE_MODEL", "dcgan-tiny"),
                help="zoo model to export and profile (default dcgan-tiny; dcgan-digits on a real board)")
    g.addoption("--device-bundle", default=None, help="use this bundle instead of exporting one")
    g.addoption("--device-runs", type=int, default=int(os.environ.get("EDGEGAN_DEVICE_RUNS", "20")))
    g.addoption("--setup-args", default=os.environ.get("EDGEGAN_DEVICE_SETUP_ARGS"),
                help="extra args for `edgegan device setup` (default on the emulated board: --download-wheels)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.device)


@pytest.fixture(scope="session")
def target(request):
    yield from board_target(request)


@pytest.fixture(scope="session")
def setup_result(target, request):
    """`edgegan device setup` (idempotent: a warm board reports 'already set up')."""
    extra = request.config.getoption("--setup-args")
    extra = extra.split() if extra else (["--download-wheels"] if target.emulated else [])
    proc = edgegan("device", "setup", target.url, *target.args(), *extra, "--json")
    assert proc.returncode == 0, f"device setup failed: {proc.stderr}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def bundle(request, tmp_path_factory) -> Path:
    given = request.config.getoption("--device-bundle")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("bundle") / request.config.getoption("--device-model")
    proc = edgegan("export", request.config.getoption("--device-model"), "--out", str(out), timeout=1200)
    assert proc.returncode == 0, f"export failed: {proc.stderr[-2000:]}"
    return out


@pytest.fixture(scope="session")
def profile_doc(target, setup_result, bundle, request, tmp_path_factory) -> tuple[Path, dict]:
    """One full profile of every format on the target (shared by the assertions)."""
    out = tmp_path_factory.mktemp("profile")
    runs = str(request.config.getoption("--device-runs"))
    proc = edgegan("profile", str(bundle), "--target", target.url, *target.args(), "--runs", runs, "--warmup", "3",
                   "--out", str(out), "--json")
    assert proc.returncode in (0, 1), f"profile crashed: {proc.stderr[-2000:]}"
    return out, json.loads(proc.stdout)
