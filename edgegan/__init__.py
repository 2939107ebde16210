"""edgegan: take a compressed GAN generator to validated edge artifacts and measure them.

The stages are plain functions here, imported on first use so ``import edgegan`` stays light
(no torch / TensorFlow / onnxruntime): ``load_model``, ``compress``, ``export``, ``profile``,
``compare``, ``report`` (see ``edgegan.api`` and docs/python-api.md).
"""
from __future__ import annotations

import importlib
import types

__version__ = "0.1.0"

# public name -> module that defines it (imported on first attribute access)
_LAZY = {
    "load_model": "edgegan.api", "profile": "edgegan.api", "compare": "edgegan.api", "report": "edgegan.api",
    "Comparison": "edgegan.api", "ExportedBundle": "edgegan.api", "ProfileResults": "edgegan.api",
    "ProfileRow": "edgegan.api", "Bundle": "edgegan.bundle", "EdgeganError": "edgegan.errors",
}
# ``edgegan.export(model, ...)`` is the API function, but ``edgegan.export`` is also a package
# (``edgegan.export.onnx``), and Python rebinds that attribute to the package whenever one
# of its modules is imported, so a plain function would silently disappear. Instead the two
# packages' module objects are callable and forward to ``edgegan.api``: both meanings hold
# whatever is imported first. Their __init__ files are light (no torch), so this is done here,
# once, before anything else can import them.
_CALLABLE_PACKAGES = ("export", "compress")


class _CallablePackage(types.ModuleType):
    """A package whose call runs ``edgegan.api.<its last name part>``."""

    def __call__(self, *args, **kwargs):
        api = importlib.import_module("edgegan.api")
        return getattr(api, self.__name__.rsplit(".", 1)[-1])(*args, **kwargs)

    def __repr__(self) -> str:
        short = self.__name__.rsplit(".", 1)[-1]
        return f"<package {self.__name__}; calling it runs edgegan.api.{short}()>"


for _name in _CALLABLE_PACKAGES:
    importlib.import_module(f"{__name__}.{_name}").__class__ = _CallablePackage

__all__ = ["__version__", *_CALLABLE_PACKAGES, *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edgegan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
