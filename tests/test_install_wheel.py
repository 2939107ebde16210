"""A regular (non-editable) install works: build the wheel, install it into a fresh venv and run
the installed `edgegan` console script.

The project's editable install hides packaging mistakes (a missing ``import importlib.util``
crashed every command of a regular install, ``--help`` included; a package or data file left
out of the wheel only shows there). The fresh venv sees the project venv's dependencies through
a plain ``.pth`` line (no network, nothing downloaded) but not the editable checkout: ``.pth``
files inside that added folder (the editable finder) are not processed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from edgegan.cli.main import VERBS

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".git", ".venv", ".venv-*", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                              "bundles", "results", "tests", "device_tests", "benchmarks", "docs")


def _run(argv, cwd, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(COLUMNS="100", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=600, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel path, venv bin dir, a working dir outside the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=SKIP)  # build from a copy: no build/ or egg-info in the checkout
    r = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
              "--disable-pip-version-check", "-w", tmp / "dist", src], cwd=tmp)
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("edgegan-*.whl")
    venv = tmp / "venv"
    r = _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp)
    assert r.returncode == 0, r.stderr
    bin_dir = venv / "bin"
    purelib = _run([bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   cwd=tmp).stdout.strip()
    # the project's dependencies, as a plain path line (no .pth processing inside it)
    Path(purelib, "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = _run([sys.executable, "-m", "pip", "--python", bin_dir / "python", "install", "--no-deps", "-q",
              "--disable-pip-version-check", wheel], cwd=tmp)
    assert r.returncode == 0, r.stderr[-3000:]
    work = tmp / "work"
    work.mkdir()
    return wheel, bin_dir, work


def test_wheel_carries_the_mapped_packages_the_runner_and_the_weights(installed):
    wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"edgegan/converters/__init__.py", "edgegan/converters/base.py", "edgegan/converters/ort_int8.py",
                "edgegan/converters/tflite_worker.py", "edgegan/runner/edgegan_runner.py",
                "edgegan/models/pretrained/dcgan_digits.pt", "edgegan/models/pretrained/resnet_sketch.pt",
                "edgegan/metrics/weights/digits_cnn.pt", "edgegan/cli/main.py", "edgegan/requirements/nodeps.txt"}
    assert expected <= names, sorted(expected - names)
    assert not any(n.startswith(("converters/", "tests/")) for n in names)  # not the unrelated top-level name
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "edgegan = edgegan.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_copy_is_the_one_that_runs(installed):
    _, bin_dir, work = installed
    r = _run([bin_dir / "python", "-c", "import edgegan, edgegan.converters as c, edgegan.runner.edgegan_runner as rr; "
              "print(edgegan.__file__); print(c.__file__); print(rr.__file__)"], cwd=work)
    assert r.returncode == 0, r.stderr
    venv = bin_dir.parent.resolve()
    for line in r.stdout.split():
        assert Path(line).resolve().is_relative_to(venv), line
        assert not Path(line).resolve().is_relative_to(ROOT), line


def test_console_script_version_help_and_env(installed):
    from edgegan import __version__

    _, bin_dir, work = installed
    edgegan = bin_dir / "edgegan"
    r = _run([edgegan, "--version"], cwd=work)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, f"edgegan {__version__}", "")
    r = _run([edgegan, "--help"], cwd=work)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert all(verb in r.stdout for verb in VERBS)
    for verb in VERBS:
        r = _run([edgegan, verb, "--help"], cwd=work)
        assert r.returncode == 0, (verb, r.stderr[-2000:])
        assert r.stdout.startswith(f"usage: edgegan {verb}"), (verb, r.stdout[:200])
    r = _run([edgegan, "env", "--json"], cwd=work)
    assert r.returncode == 0, r.stderr[-2000:]
    assert '"format": "tflite-int8"' in r.stdout and '"onnx"' in r.stdout
    # the --no-deps list is read from the installed package (the project venv has the tools)
    r = _run([edgegan, "setup", "tflite", "--check"], cwd=work)
    assert r.returncode == 0 and r.stdout.startswith("tflite tools: all 9 installed"), r.stdout + r.stderr


def test_console_script_exports_a_tiny_bundle(installed):
    import json

    _, bin_dir, work = installed
    r = _run([bin_dir / "edgegan", "export", "dcgan-tiny", "--formats", "onnx", "--inputs", "4", "--json",
              "--out", work / "tiny"], cwd=work)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(r.stdout)
    assert [a["format"] for a in doc["artifacts"]] == ["onnx"] and doc["artifacts"][0]["status"] == "ok"
    assert (work / "tiny" / "bundle.json").is_file()
