"""Typed config dataclasses that round-trip through JSON.

Every stage config subclasses :class:`JsonConfig`; unknown keys and wrong types are
:class:`~edgegan.errors.ConfigError` with the field name, so a hand-edited JSON fails loudly.
"""
from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, TypeVar

from .errors import ConfigError

T = TypeVar("T", bound="JsonConfig")


def _coerce(name: str, tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(name, arg, value)
            except ConfigError:
                continue
        names = " or ".join("null" if a is type(None) else getattr(a, "__name__", str(a)) for a in args)
        raise ConfigError(f"config field '{name}': expected {names}, got {type(value).__name__} ({value!r})")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config field '{name}': expected a list, got {type(value).__name__}")
        inner = args[0] if args else Any
        items = [_coerce(name, inner, v) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config field '{name}': expected an object, got {type(value).__name__}")
        return dict(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"config field '{name}': expected an object for {tp.__name__}")
        return tp.from_dict(value)  # type: ignore[attr-defined]
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool):
        raise ConfigError(f"config field '{name}': expected int, got bool")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(
            f"config field '{name}': expected {tp.__name__}, got {type(value).__name__} ({value!r})"
        )
    return value


@dataclasses.dataclass
class JsonConfig:
    """Base for config dataclasses: ``to_dict``/``from_dict``/``to_json``/``from_json``."""

    def validate(self) -> None:  # pragma: no cover - overridden where there is something to check
        """Raise ConfigError if the values are inconsistent."""

    def __post_init__(self) -> None:
        # a nested config given as a plain dict (e.g. ExportConfig(convert={...})) becomes its type
        hints = None
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, dict) and f.type not in ("dict", dict) and not str(f.type).startswith("dict"):
                hints = hints or typing.get_type_hints(type(self))
                tp = hints.get(f.name)
                if isinstance(tp, type) and dataclasses.is_dataclass(tp) and issubclass(tp, JsonConfig):
                    setattr(self, f.name, tp.from_dict(v))
        self.validate()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, JsonConfig):
                v = v.to_dict()
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"{cls.__name__}: unknown field(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
            )
        kwargs = {k: _coerce(k, hints[k], v) for k, v in data.items()}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"{cls.__name__}: {exc}") from None

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls: type[T], text: str) -> T:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{cls.__name__}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        except RecursionError:
            raise ConfigError(f"{cls.__name__}: the JSON nests too deeply to be a config") from None
        return cls.from_dict(data)
