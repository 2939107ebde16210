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


def test_api_names_exist_lazily():
    """The API functions are attributes of `edgegan` (and in dir/__all__) without importing
    anything heavy; `edgegan.export` / `edgegan.compress` stay callable after their packages'
    modules are imported (the import system rebinds those attributes to the packages)."""
    code = ("import sys, edgegan; names = ['load_model', 'compress', 'export', 'profile', 'compare']; "
            "assert all(callable(getattr(edgegan, n)) for n in names), names; "
            "assert set(names) <= set(dir(edgegan)) and set(names) <= set(edgegan.__all__); "
            "assert edgegan.ProfileResults.__name__ == 'ProfileResults' and edgegan.Comparison; "
            f"heavy = [m for m in {HEAVY!r} if m in sys.modules]; "
            "import edgegan.compress.base, edgegan.export.onnx; "
            "assert callable(edgegan.export) and callable(edgegan.compress); "
            "assert edgegan.export.onnx.INPUT_NAME == 'input' and edgegan.compress.METHODS; "
            "from edgegan import export; assert callable(export); "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
    bad = subprocess.run([sys.executable, "-c", "import edgegan; edgegan.no_such_name"], capture_output=True, text=True)
    assert "has no attribute 'no_such_name'" in bad.stderr


def test_cli_help_lists_verbs(cli):
    r = cli("--help")
    assert r.returncode == 0
    for verb in ("export", "models", "env"):
        assert verb in r.stdout


def test_converters_import_name_is_ours():
    import edgegan.converters as c

    assert c.__name__ == "edgegan.converters" and hasattr(c, "CONVERTERS")
    # the ExecuTorch formats (an optional extra) are default only where it is installed
    import importlib.util

    extra = ["executorch-fp32", "executorch-int8"] if importlib.util.find_spec("executorch") else []
    assert c.default_formats() == ["onnx", "ort-int8", "tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8",
                                   *extra]
    assert set(c.default_formats()) <= set(c.CONVERTERS)
