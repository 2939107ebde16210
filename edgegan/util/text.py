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


def one_line(text: str, limit: int = 1200) -> str:
    """``text`` on one line (whitespace collapsed), whole when it fits in ``limit`` characters,
    else cut at a word boundary and marked with " [...]" -- never mid-word."""
    flat = " ".join(str(text).split())
    if len(flat) <= limit:
        return flat
    cut = flat.rfind(" ", 0, limit)
    return flat[: cut if cut > 0 else limit] + " [...]"
