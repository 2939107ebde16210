"""The shared small helpers: atomic writes, strict-JSON conversion, table/option text."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from edgegan.util.files import atomic_write, temp_path_beside
from edgegan.util.jsonsafe import json_safe
from edgegan.errors import ConfigError
from edgegan.util.text import fmt_or_dash, json_object_option, split_csv


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "results.json"
    atomic_write(target, "old")
    atomic_write(target, b"new bytes")
    assert target.read_bytes() == b"new bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_a_failed_atomic_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "report.md"
    atomic_write(target, "old")
    with pytest.raises(TypeError):
        atomic_write(target, 12345)  # not str/bytes: fails while writing the temp file
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def test_temp_paths_are_unique_hidden_and_beside_the_target(tmp_path):
    a, b = temp_path_beside(tmp_path / "model.pt"), temp_path_beside(tmp_path / "model.pt")
    assert a != b and a.parent == b.parent == tmp_path and a.name.startswith(".model.pt.")


def test_json_safe_gives_strict_json():
    data = {"a": np.float32(1.5), "b": np.int64(3), "c": [np.inf, float("nan"), np.bool_(True)],
            "d": np.arange(3), "p": Path("x/y"), 7: (1, 2), "_arrays": np.zeros(2)}
    out = json_safe(data)
    assert out == {"a": 1.5, "b": 3, "c": [None, None, True], "d": [0, 1, 2], "p": "x/y", "7": [1, 2],
                   "_arrays": [0.0, 0.0]}
    assert type(out["b"]) is int and type(out["c"][2]) is bool
    json.dumps(out, allow_nan=False)
    assert "_arrays" not in json_safe(data, drop_private=True)
    assert math.isnan(data["c"][1])  # the input is not modified


def test_text_helpers():
    assert split_csv(" onnx, ort-int8,,tflite-int8 ,") == ["onnx", "ort-int8", "tflite-int8"]
    assert split_csv("") == []
    assert fmt_or_dash(None) == "–" and fmt_or_dash(None, empty="-") == "-"
    assert fmt_or_dash(1.23456) == "1.235" and fmt_or_dash(0.5, ".1f") == "0.5"


def test_json_object_option_names_the_flag():
    assert json_object_option('{"width": 16}') == {"width": 16}
    with pytest.raises(ConfigError, match="--config is not valid JSON"):
        json_object_option("{width: 16}")
    with pytest.raises(ConfigError, match="--model-config must be a JSON object"):
        json_object_option("[1]", "--model-config")


def test_a_child_started_with_die_with_parent_does_not_outlive_a_killed_parent(tmp_path):
    """The parent is SIGKILLed (no cleanup can run); the kernel kills its child (Linux)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only")
    pidfile = tmp_path / "child.pid"
    parent_code = (
        "import subprocess, sys, time\n"
        "from edgegan.util.procs import die_with_parent\n"
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], preexec_fn=die_with_parent)\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pidfile.read_text())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    for _ in range(100):  # the kernel delivers SIGKILL to the child; it is reaped by init
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{child}/stat") as fh:
            if fh.read().split(")")[-1].split()[0] == "Z":
                break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the child outlived its killed parent")
