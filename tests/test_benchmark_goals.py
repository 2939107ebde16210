"""The benchmarks' shared goal lines: the format every script prints, and the scripts that use
the helper still start (their goal code imports it from benchmarks/)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_goal_lines_say_met_or_not_met(capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from goals import Goals
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    goals = Goals()
    assert goals.check("resnet executorch-int8", "40.2 dB, 0.45x", ">= 40 dB, <= 0.5x", True) is True
    assert goals.check("dcgan ort-int8", "44.9 dB", ">= 45 dB", False) is False
    goals.print(Path("/tmp/b"))
    assert capsys.readouterr().out.splitlines() == [
        "resnet executorch-int8: 40.2 dB, 0.45x -> goal (>= 40 dB, <= 0.5x) MET",
        "dcgan ort-int8: 44.9 dB -> goal (>= 45 dB) NOT MET", "", "bundles in /tmp/b"]


@pytest.mark.parametrize("script", ["executorch_vs.py", "export_fidelity.py"])
def test_scripts_using_the_goal_helper_start(script):
    # as the docs run them: python benchmarks/X.py (the script's folder is on sys.path)
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--help"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-400:]
    assert "usage" in done.stdout
