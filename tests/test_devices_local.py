"""The local transport, the target registry, DeviceInfo and the setup helpers (no network)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edgegan.devices import setup as dsetup
from edgegan.devices.errors import DeviceTimeoutError, UnsafePathError
from edgegan.devices.local import LocalTransport
from edgegan.devices.session import DeviceInfo, DeviceSession
from edgegan.devices.targets import TARGETS, open_target, scheme_of
from edgegan.devices.transport import TargetOptions
from edgegan.errors import ConfigError, DeviceError, UnknownNameError


def test_registry_has_local_ssh_adb_and_rejects_others():
    assert list(TARGETS) == ["adb", "local", "ssh"]
    assert isinstance(open_target("local"), LocalTransport)
    with pytest.raises(UnknownNameError, match="unknown target scheme 'fastboot'"):
        open_target("fastboot://emulator-5554")
    with pytest.raises(ConfigError, match="not a URL"):
        scheme_of("raspberrypi")


def test_local_run_is_argv_with_exit_codes_and_timeouts(tmp_path):
    t = LocalTransport()
    res = t.run(["sh", "-c", 'printf "%s" "$1"; echo oops >&2; exit 3', "sh", "$(touch x) ; *"])
    assert (res.exit_code, res.stdout, res.stderr) == (3, "$(touch x) ; *", "oops\n")
    assert t.run(["no-such-binary-here"]).exit_code == 127
    with pytest.raises(DeviceTimeoutError, match="ran over"):
        t.run(["sleep", "5"], timeout=0.2)
    assert t.run(["cat"], stdin=b"abc").stdout == "abc"


def test_local_push_pull_are_atomic_and_confined(tmp_path):
    t = LocalTransport()
    src = tmp_path / "a.bin"
    src.write_bytes(b"x" * 1000)
    t.push(src, str(tmp_path / "dev" / "a.bin"))
    assert t.size(str(tmp_path / "dev" / "a.bin")) == 1000 and t.size(str(tmp_path / "nope")) is None
    got = t.pull(str(tmp_path / "dev" / "a.bin"), tmp_path / "results", "b.bin")
    assert got.read_bytes() == b"x" * 1000 and not list((tmp_path / "results").glob(".*part"))
    with pytest.raises(UnsafePathError):
        t.pull(str(src), tmp_path / "results", "../escape")
    with pytest.raises(DeviceError, match="does not exist"):
        t.pull(str(tmp_path / "missing"), tmp_path / "results", "m.bin")


def test_session_pushes_the_runner_once_and_reads_device_info(tmp_path):
    t = LocalTransport(TargetOptions())
    s = DeviceSession(t, str(tmp_path / "wd"))
    assert s.python == sys.executable  # no setup venv in this workdir
    r1 = s.ensure_runner()
    assert Path(r1).is_file() and s.ensure_runner() == r1
    info = s.info()
    assert info.target == "local" and info.arch and "numpy" in info.runtimes
    assert info.has_runtime_for("m.onnx") is None and info.has_runtime_for("m.tflite") is None
    bare = DeviceInfo(runtimes={"python": "3.11", "numpy": "2"})
    assert "no litert runtime" in bare.has_runtime_for("m.tflite")
    assert "ai-edge-litert or tflite-runtime or tensorflow" in bare.has_runtime_for("m.tflite")
    assert "no onnxruntime runtime" in bare.has_runtime_for("m.onnx")
    assert DeviceInfo(runtimes={"numpy": "2", "tflite-runtime": "2.14"}).has_runtime_for("m.tflite") is None
    assert "unknown artifact suffix" in bare.has_runtime_for("m.engine")
    assert "aarch64" in DeviceInfo(arch="aarch64", cpu="Cortex-A76", cores=4, python="3.11", emulator="qemu").summary()


def test_info_with_a_missing_python_names_the_fix(tmp_path):
    s = DeviceSession(LocalTransport(), str(tmp_path / "wd"))
    with pytest.raises(DeviceError, match="install python3 on the device"):
        s.info(python=str(tmp_path / "no-python"))


def test_wheel_platform_tags_and_pins():
    assert dsetup.platform_tags("aarch64") == ["manylinux2014_aarch64", "manylinux_2_27_aarch64", "manylinux_2_28_aarch64"]
    with pytest.raises(ConfigError, match="no wheel platform tags"):
        dsetup.platform_tags("mips")
    reqs = dsetup.default_requirements(["onnxruntime", "ai-edge-litert"])
    assert reqs[0].startswith("numpy==") and any(r.startswith("onnxruntime==") for r in reqs)


def test_setup_config_validation(tmp_path):
    with pytest.raises(ConfigError, match="unknown runtime"):
        dsetup.SetupConfig(target="local", runtimes=["tensorrt"])
    with pytest.raises(ConfigError, match="not both"):
        dsetup.SetupConfig(target="local", wheels=str(tmp_path), download_wheels=True)
    with pytest.raises(ConfigError, match="not a directory"):
        dsetup.SetupConfig(target="local", wheels=str(tmp_path / "nope"))


def test_setup_runtimes_come_from_the_runner_table():
    from edgegan.runner.edgegan_runner import RUNTIMES

    assert dsetup.SetupConfig(target="local").runtimes == list(RUNTIMES)
    assert dsetup.resolve_runtimes(["litert"]) == (["litert"], ["ai-edge-litert"])
    # an implementation name picks that implementation of its runtime
    assert dsetup.resolve_runtimes(["tflite-runtime", "onnxruntime"]) == (["litert", "onnxruntime"],
                                                                         ["tflite-runtime", "onnxruntime"])
    assert dsetup._probe_paths(["onnxruntime", "litert"]) == ["x.onnx", "x.tflite"]
