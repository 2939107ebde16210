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
import difflib
import logging
from typing import Callable, Generic, Iterator, TypeVar

from .errors import UnknownNameError, first_line

T = TypeVar("T")

PLUGIN_GROUP = "edgegan.plugins"
log = logging.getLogger("edgegan.plugins")

_plugins_state = {"loaded": False}
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
        try:
            obj = ep.load()
            if ep.attr and callable(obj):
                obj()
        except Exception as exc:  # noqa: BLE001 - a third-party bug is a warning, not a crash
            reason = f"{type(exc).__name__}: {first_line(exc)}"
            LOADED_PLUGINS[ep.name] = reason
            log.warning("plugin '%s' (%s) failed to load and is skipped: %s", ep.name, ep.value, reason)
            continue
        LOADED_PLUGINS[ep.name] = "ok"
    return LOADED_PLUGINS


class Registry(Generic[T]):
    """Name -> object map with a decorator and helpful unknown-name errors. Listing or looking
    up any registry first loads the installed plugins (once)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

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

    def remove(self, name: str) -> T:
        """Unregister ``name`` (tests, or a plugin replacing a built-in on purpose)."""
        try:
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
