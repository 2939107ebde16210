"""Which ExecuTorch implementation `edgegan device setup` gives a board, from the runner's real
runtime table and the board's Python: the torch-free executorch-numpy-runtime where it has
wheels (Python >= 3.12), else nothing and one line saying why (the full executorch runtime loads
libtorch, so it would need torch too)."""
from __future__ import annotations

import pytest

from edgegan.devices import setup as dsetup
from edgegan.devices.session import DeviceInfo
from edgegan.errors import ConfigError

ALL = ["onnxruntime", "litert", "executorch"]


def test_python_3_13_board_gets_the_numpy_runtime():
    runtimes, dists, skipped = dsetup.runtime_plan(ALL, "aarch64", "3.13.5")
    assert runtimes == ALL and skipped == {}
    assert dists == ["onnxruntime", "ai-edge-litert", "executorch-numpy-runtime"]  # never the torch-linked one


def test_python_3_11_board_skips_executorch_with_one_line_why():
    runtimes, dists, skipped = dsetup.runtime_plan(ALL, "aarch64", "3.11.2")
    assert runtimes == ["onnxruntime", "litert"] and dists == ["onnxruntime", "ai-edge-litert"]
    why = skipped["executorch"]
    assert "\n" not in why and "Python 3.11.2" in why and "executorch-numpy-runtime needs Python >= 3.12" in why
    assert "libtorch" in why and "--requirements" in why  # what happens, and the way to install it anyway


def test_naming_an_implementation_is_checked_against_the_python_too():
    assert dsetup.runtime_plan(["executorch-numpy-runtime"], "aarch64", "3.12.1")[1] == ["executorch-numpy-runtime"]
    runtimes, _, skipped = dsetup.runtime_plan(["executorch-numpy-runtime"], "aarch64", "3.11.2")
    assert runtimes == [] and "only for Python >= 3.12" in skipped["executorch"]
    # the runtime by name on a 3.11 board: skipped too (never the torch-linked wheel by default)
    assert dsetup.runtime_plan(["executorch"], "x86_64", "3.11.7")[0] == []
    with pytest.raises(ConfigError, match="unknown runtime"):
        dsetup.runtime_plan(["tensorrt"], "aarch64", "3.11.2")


def test_an_unknown_python_version_claims_nothing():
    assert dsetup.runtime_plan(["executorch"], "aarch64", "")[1] == ["executorch-numpy-runtime"]


def test_missing_runtime_reason_says_why_setup_cannot_help_on_3_11():
    old = DeviceInfo(arch="aarch64", python="3.11.2", runtimes={"numpy": "2.1.0"})
    assert "executorch-numpy-runtime needs Python >= 3.12" in old.has_runtime_for("m.pte")
    new = DeviceInfo(arch="aarch64", python="3.13.5", runtimes={"numpy": "2.1.0"})
    assert "edgegan device setup --runtimes executorch" in new.has_runtime_for("m.pte")
    assert DeviceInfo(arch="aarch64", python="3.13.5",
                      runtimes={"numpy": "2.1.0", "executorch-numpy-runtime": "1.4.0"}).has_runtime_for("m.pte") is None
