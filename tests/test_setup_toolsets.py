"""`edgegan setup tflite` and the pins a pip user gets.

The end-to-end pip route (wheel[all] into a fresh venv, setup, a six-format export) is
`make test-pip` (tests/pip_install_route.sh); here: the pins agree across the files that hold
them, the --no-deps list ships inside the package, and `install` really runs pip into a fresh
venv (from a locally built wheel: no network), is a no-op when satisfied and fails in one line.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines) -> dict[str, str | None]:
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("edgegan["):
            name, _, ver = line.partition("==")
            out[name.strip().lower().replace("_", "-")] = ver.strip() or None
    return out


def test_pyproject_extras_pin_exactly_what_the_makefile_installs():
    """`pip install 'edgegan[all]'` resolves to requirements/base.txt (what `make install` and the
    tests use); torch in particular must be ==2.13.0 or pip picks a multi-GB CUDA build."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = meta["optional-dependencies"]
    assert extras["all"] == ["edgegan[torch,ort,tflite,ssh,report]"]
    from_pyproject = _pins(meta["dependencies"] + [r for k in ("torch", "ort", "tflite", "ssh", "report") for r in extras[k]])
    base = _pins((ROOT / "requirements/base.txt").read_text().splitlines())
    base.pop("pytest")  # the test extra, not part of [all]
    assert from_pyproject == base
    assert from_pyproject["torch"] == "2.13.0"


def test_nodeps_list_is_read_from_the_package():
    from edgegan.util.toolsets import requirements

    reqs = requirements("tflite")
    text = (ROOT / "edgegan/requirements/nodeps.txt").read_text()
    assert [str(r) for r in reqs] == [ln.split("#")[0].strip() for ln in text.splitlines()
                                      if ln.split("#")[0].strip()]
    pinned = {r.name: r.version for r in reqs}
    assert pinned["onnx2tf"].startswith("1.29.") and pinned["onnxsim"] == "0.4.36"
    assert not (ROOT / "requirements/nodeps.txt").exists()  # one list, not two
    assert "edgegan setup tflite" in (ROOT / "Makefile").read_text()
    assert re.search(r'"edgegan" = \["requirements/\*\.txt"\]', (ROOT / "pyproject.toml").read_text())


def test_unknown_toolset_is_a_config_error():
    from edgegan.errors import ConfigError
    from edgegan.util.toolsets import plan

    with pytest.raises(ConfigError, match="unknown tool set 'tflit'; known: tflite"):
        plan("tflit")


def test_setup_in_the_project_venv_is_idempotent(cli):
    """`make install` ran `edgegan setup tflite`: running it again installs nothing."""
    r = cli("setup", "tflite")
    assert r.returncode == 0, r.stderr
    assert "already installed; nothing to do" in r.stdout and "installing" not in r.stdout
    r = cli("setup", "tflite", "--check")
    assert r.returncode == 0 and "all 9 installed" in r.stdout, r.stdout + r.stderr


def test_missing_tools_hint_names_the_setup_command():
    from edgegan.util.deps import missing_message

    assert missing_message(["onnx2tf"]) == ("onnx2tf not installed; install with: `edgegan setup tflite` "
                                            "(or `make install` in a checkout)")
    assert "pip install 'edgegan[tflite]' and run `edgegan setup tflite`" in missing_message(["tensorflow", "onnx2tf"])


def _fake_wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal valid wheel holding one module, so pip installs something real without network;
    its dependency exists nowhere, so only a --no-deps install succeeds."""
    mod = name.replace("-", "_")
    path = folder / f"{mod}-{version}-py3-none-any.whl"
    info = f"{mod}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{mod}.py", f"VERSION = {version!r}\n")
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                   "Requires-Dist: edgegan-no-such-dependency\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", f"{mod}.py,,\n{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n")
    return path


def _venv(tmp: Path, name: str, with_pip: bool) -> Path:
    venv = tmp / name
    subprocess.run([sys.executable, "-m", "venv", *([] if with_pip else ["--without-pip"]), venv], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # edgegan from this checkout and its one hard dependency, numpy (linked from the project
    # venv); not tensorflow or the tflite tools
    deps = tmp / f"{name}-deps"
    deps.mkdir()
    np_dir = Path(importlib.util.find_spec("numpy").origin).parent
    for p in np_dir.parent.glob("numpy*"):
        (deps / p.name).symlink_to(p)
    Path(purelib, "checkout.pth").write_text(f"{ROOT}\n{deps}\n")
    return py


SCRIPT = """
import sys
from edgegan.errors import InstallError
from edgegan.util.toolsets import Plan, Requirement, install
wheels, version = sys.argv[1], sys.argv[2]
req = Requirement("edgegan-fake-tool", version)
p = Plan("tflite", ((req, req.installed_version()),), (), "tflite")
try:
    done = install(p, pip_args=["--no-index", "--find-links", wheels])
except InstallError as e:
    print("ERR", e); sys.exit(9)
import edgegan_fake_tool
print("DONE", [str(r) for r in done], edgegan_fake_tool.VERSION)
"""


def test_install_runs_pip_no_deps_into_this_environment_once(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _fake_wheel(wheels, "edgegan-fake-tool", "1.0")
    py = _venv(tmp_path, "venv", with_pip=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_FIND_LINKS")}

    def run(version):
        return subprocess.run([py, "-c", SCRIPT, wheels, version], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=300)

    r = run("1.0")
    assert r.returncode == 0 and r.stdout.strip() == "DONE ['edgegan-fake-tool==1.0'] 1.0", r.stdout + r.stderr
    assert list((tmp_path / "venv/lib").glob("python*/site-packages/edgegan_fake_tool.py"))
    r = run("1.0")  # satisfied now: pip does not run, nothing installed
    assert r.returncode == 0 and r.stdout.strip() == "DONE [] 1.0", r.stdout + r.stderr
    r = run("2.0")  # no such version: pip's reason in one line
    assert r.returncode == 9, r.stdout + r.stderr
    line = r.stdout.strip()
    assert "\n" not in line and line.startswith("ERR pip could not install the tflite tools: ERROR:")
    assert "edgegan-fake-tool==2.0" in line


def test_install_without_pip_or_without_tensorflow_is_one_line(tmp_path):
    py = _venv(tmp_path, "bare", with_pip=False)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([py, "-c", SCRIPT, tmp_path, "1.0"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 9 and "pip is not available in this environment" in r.stdout, r.stdout + r.stderr
    # the CLI in a venv without the [tflite] extra: names the extra, installs nothing, exit 9
    r = subprocess.run([py, "-m", "edgegan", "setup", "tflite"], capture_output=True, text=True, env=env,
                       cwd=tmp_path)
    assert r.returncode == 9, r.stdout + r.stderr
    assert r.stderr.strip().splitlines() == [
        "edgegan setup: error: tensorflow, ai_edge_litert not installed, which the tflite tools need first; "
        "install with: pip install 'edgegan[tflite]' (then run `edgegan setup tflite`)"]
    r = subprocess.run([py, "-m", "edgegan", "setup", "tflite", "--check"], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert r.returncode == 9, r.stdout + r.stderr
    assert r.stderr.startswith("edgegan setup: error: tflite tools incomplete here (") and r.stderr.rstrip().endswith(
        "missing tensorflow, ai_edge_litert, onnx2tf==1.29.24, tf-keras==2.21.0, onnx-graphsurgeon==0.6.1, "
        "sng4onnx==2.0.1, sne4onnx==2.0.1, onnxsim==0.4.36, psutil, h5py, flatbuffers; install with: "
        "pip install 'edgegan[tflite]' and run `edgegan setup tflite`"), r.stderr
    assert r.stdout == ""
