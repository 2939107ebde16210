"""Packages that are also API functions: ``edgegan.export`` and ``edgegan.compress``.

``edgegan.export(model, ...)`` is the API function, but ``edgegan.export`` is also a package
(``edgegan.export.pipeline``); Python binds the package to that attribute whenever any of its
modules is imported, so a plain function would be silently replaced. Instead the package's
module object itself is callable and forwards to ``edgegan.api``: both meanings stay valid
whatever was imported first, and nothing heavy is imported until the call.
"""
from __future__ import annotations

import sys
import types


class CallableModule(types.ModuleType):
    """A package module whose call runs ``edgegan.api.<last part of its name>``."""

    def __call__(self, *args, **kwargs):
        from . import api

        return getattr(api, self.__name__.rsplit(".", 1)[-1])(*args, **kwargs)

    def __repr__(self) -> str:
        short = self.__name__.rsplit(".", 1)[-1]
        return f"<package {self.__name__}; calling it runs edgegan.api.{short}()>"


def make_callable(module_name: str) -> None:
    sys.modules[module_name].__class__ = CallableModule
