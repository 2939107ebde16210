"""A tiny generic registry used for models, converters, targets, metrics and methods, plus the
loading of third-party plugins from the ``edgegan.plugins`` entry-point group.

A plugin distribution declares, in its metadata::

    [edgegan.plugins]
    my_metric = my_package.edgegan_plugin            # a module: importing it registers
    my_family = my_package.models:register           # or a zero-argument function to call

and registers itself with the usual decorators / ``Registry.add`` (a converter in
``edgegan.converters.CONVERTERS``, a target in ``edgegan.devices.targets.TARGETS``, a metric
in ``edgegan.metrics.METRICS``, a compression method in ``edgegan.compress.METHODS``, a model
family in ``edgegan.models.FAMILIES``). Plugins load once, lazily, the first time any registry
is listed or looked up, so ``import edgegan`` stays light; a broken plugin is a one-line
warning naming it, never a crash.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import inspect
import logging
from typing import Callable, Generic, Iterator, TypeVar

from .errors import UnknownNameError, first_line

T = TypeVar("T")

PLUGIN_GROUP = "edgegan.plugins"
log = logging.getLogger("edgegan.plugins")

_plugins_state: dict = {"loaded": False, "current": None}
LOADED_PLUGINS: dict[str, str] = {}   # entry-point name -> "ok" | one-line reason it failed


def load_plugins(force: bool = False) -> dict[str, str]:
    """Import every ``edgegan.plugins`` entry point once (``force``: look again, e.g. after
    installing one at run time). Returns entry-point name -> "ok" or why it failed."""
    if _plugins_state["loaded"] and not force:
        return LOADED_PLUGINS
    _plugins_state["loaded"] = True  # set first: plugins look registries up while loading
    from importlib.metadata import entry_points

    try:
        eps = list(entry_points(group=PLUGIN_GROUP))
    except Exception as exc:  # noqa: BLE001 - broken metadata on sys.path must not break edgegan
        log.warning("cannot list %s entry points (%s); no plugins loaded", PLUGIN_GROUP, first_line(exc))
        return LOADED_PLUGINS
    seen = set()
    for ep in eps:
        if ep.name in LOADED_PLUGINS or ep.name in seen:
            continue  # the same distribution seen twice on sys.path, or already loaded
        seen.add(ep.name)
        _plugins_state["current"] = ep.name
        try:
            obj = ep.load()
            if ep.attr and callable(obj):
                obj()
        except Exception as exc:  # noqa: BLE001 - a third-party bug is a warning, not a crash
            reason = f"{type(exc).__name__}: {first_line(exc)}"
            LOADED_PLUGINS[ep.name] = reason
            log.warning("plugin '%s' (%s) failed to load and is skipped: %s", ep.name, ep.value, reason)
            continue
        finally:
            _plugins_state["current"] = None
        LOADED_PLUGINS[ep.name] = "ok"
    return LOADED_PLUGINS


_BUILTIN_PACKAGES = ("edgegan", "converters")


def _module_of(obj: object) -> str:
    """Where a registered object comes from: its own module, or for a record dataclass
    (Metric, Method, Family, Converter) the module of its first function field."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if inspect.isfunction(value) or inspect.ismethod(value):
                return value.__module__
    return getattr(obj, "__module__", "") or ""


class Registry(Generic[T]):
    """Name -> object map with a decorator and helpful unknown-name errors. Listing or looking
    up any registry first loads the installed plugins (once)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._origin: dict[str, str] = {}

    def _all(self) -> dict[str, T]:
        if not _plugins_state["loaded"]:
            load_plugins()
        return self._items

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' registered twice")
        self._items[name] = obj
        current = _plugins_state["current"]
        # a plugin may import edgegan modules that register built-ins while it loads
        builtin = _module_of(obj).split(".")[0] in _BUILTIN_PACKAGES
        self._origin[name] = f"plugin {current}" if current and not builtin else "built-in"

    def origin(self, name: str) -> str:
        """'built-in', or 'plugin <entry-point name>' for what a plugin registered."""
        return self._origin.get(name, "built-in")

    def remove(self, name: str) -> T:
        """Unregister ``name`` (tests, or a plugin replacing a built-in on purpose)."""
        try:
            self._origin.pop(name, None)
            return self._items.pop(name)
        except KeyError:
            raise UnknownNameError(f"cannot remove unknown {self.kind} '{name}'") from None

    @contextlib.contextmanager
    def temporarily(self, name: str, obj: T) -> Iterator[T]:
        """``with REG.temporarily(name, obj):`` registered inside the block only."""
        self.add(name, obj)
        try:
            yield obj
        finally:
            self._items.pop(name, None)
            self._origin.pop(name, None)

    def get(self, name: str) -> T:
        items = self._all()
        try:
            return items[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(items), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} '{name}'{hint}; choose one of: {', '.join(sorted(items))}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._all()))

    def __len__(self) -> int:
        return len(self._all())

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._all().items())

    def values(self) -> list[T]:
        """Objects in registration order (built-ins first, then plugins)."""
        return list(self._all().values())
