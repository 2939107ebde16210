"""Text helpers for tables and command-line values."""
from __future__ import annotations

import json
from typing import Any

from ..errors import ConfigError


def fmt_or_dash(value: Any, spec: str = ".3f", empty: str = "–") -> str:
    """``format(value, spec)``, or ``empty`` for a missing (None) value."""
    return empty if value is None else format(value, spec)


def split_csv(value: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (comma-separated option values, blanks dropped)."""
    return [v.strip() for v in value.split(",") if v.strip()]


def json_object_option(value: str, flag: str = "--config", example: str = '{"width": 16}') -> dict:
    """A command-line value that must be a JSON object, or a one-line ConfigError naming ``flag``."""
    try:
        obj = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{flag} is not valid JSON ({exc.msg}); pass e.g. '{example}'") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{flag} must be a JSON object, e.g. '{example}'")
    return obj
