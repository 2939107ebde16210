"""Optional heavy packages: which extra installs each, and a check a stage runs first.

A stage calls :func:`require` before it creates anything, so a missing package is one line
naming the extra (``pip install 'edgegan[ort]'``), with no traceback and no half-made output.
The CLI also turns a stray ``ModuleNotFoundError`` for one of these packages into the same line
(:func:`missing_message`).
"""
from __future__ import annotations

import importlib

from ..errors import MissingDependencyError

# import name -> the pyproject extra that installs it
EXTRA_OF = {
    "torch": "torch", "sklearn": "torch",
    "onnx": "ort", "onnxruntime": "ort", "onnxscript": "ort",
    "tensorflow": "tflite", "ai_edge_litert": "tflite",
    "paramiko": "ssh",
    "matplotlib": "report",
    "playwright": "browser",
    "executorch": "executorch", "torchao": "executorch",
}
# the onnx2tf set is not installable through an extra (its metadata pins old TF/numpy/onnx):
# `edgegan setup tflite` installs it with --no-deps (edgegan.util.toolsets)
NODEPS_SET = ("onnx2tf", "onnxsim", "onnx_graphsurgeon", "sng4onnx", "sne4onnx", "tf_keras")


def install_hint(modules: list[str]) -> str:
    """How a user without the Makefile installs ``modules`` (import names)."""
    roots = [m.split(".")[0] for m in modules]
    extras = list(dict.fromkeys(EXTRA_OF[r] for r in roots if r in EXTRA_OF))
    steps = [f"pip install 'edgegan[{','.join(extras)}]'"] if extras else []
    if any(r in NODEPS_SET for r in roots):
        steps.append("run `edgegan setup tflite`" if steps else "`edgegan setup tflite`")
    if not steps:
        steps = ["pip install 'edgegan[all]'"]
    return " and ".join(steps) + " (or `make install` in a checkout)"


def missing_message(modules: list[str], purpose: str = "") -> str:
    """``onnx, onnxruntime not installed (needed for export); install with: pip install
    'edgegan[ort]' (or `make install` in a checkout)`` — one line."""
    need = f" (needed for {purpose})" if purpose else ""
    return f"{', '.join(modules)} not installed{need}; install with: {install_hint(modules)}"


def missing(*modules: str) -> list[str]:
    """The modules of ``modules`` that cannot be imported. Imports them (a stage that asks is
    about to use them anyway), so a broken install counts as missing too."""
    absent = []
    for m in modules:
        try:
            importlib.import_module(m)
        except ImportError:
            absent.append(m)
    return absent


def require(*modules: str, purpose: str = "") -> None:
    """Raise :class:`MissingDependencyError` naming the extra(s) unless every module imports."""
    absent = missing(*modules)
    if absent:
        raise MissingDependencyError(missing_message(absent, purpose))


def optional_module_of(exc: ImportError) -> str | None:
    """The optional package a ``ModuleNotFoundError`` is about (``torch`` for ``torch.nn``), or
    None when it is about anything else (a bug, not a missing extra)."""
    name = getattr(exc, "name", None) or ""
    root = name.split(".")[0]
    return root if root in EXTRA_OF or root in NODEPS_SET else None
