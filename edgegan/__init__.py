"""edgegan: take a compressed GAN generator to validated edge artifacts and measure them.

The stages are plain functions here, imported on first use so ``import edgegan`` stays light
(no torch / TensorFlow / onnxruntime): ``load_model``, ``compress``, ``export``, ``profile``,
``compare`` (see ``edgegan.api`` and docs/python-api.md).
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it (imported on first attribute access)
_LAZY = {
    "load_model": "edgegan.api", "profile": "edgegan.api", "compare": "edgegan.api",
    "Comparison": "edgegan.api", "ExportedBundle": "edgegan.api", "ProfileResults": "edgegan.api",
    "ProfileRow": "edgegan.api", "Bundle": "edgegan.bundle", "EdgeganError": "edgegan.errors",
}
# these names are also packages: their module object is callable (edgegan/_callable.py)
_CALLABLE_PACKAGES = ("export", "compress")

__all__ = ["__version__", *_CALLABLE_PACKAGES, *_LAZY]


def __getattr__(name: str):
    if name in _CALLABLE_PACKAGES:
        return importlib.import_module(f"{__name__}.{name}")  # binds the attribute too
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edgegan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
