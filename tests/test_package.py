"""Packaging and import hygiene."""
from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "tensorflow", "onnxruntime", "onnx2tf", "paramiko", "ai_edge_litert")


def test_import_edgegan_stays_light():
    code = ("import sys, edgegan, edgegan.bundle, edgegan.errors, edgegan.config, edgegan.converters, "
            "edgegan.cli.main, edgegan.verify; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_help_lists_verbs(cli):
    r = cli("--help")
    assert r.returncode == 0
    for verb in ("export", "models", "env"):
        assert verb in r.stdout


def test_converters_import_name_is_ours():
    import edgegan.converters as c

    assert c.__name__ == "edgegan.converters" and hasattr(c, "CONVERTERS")
    assert set(c.DEFAULT_FORMATS) <= set(c.CONVERTERS)
