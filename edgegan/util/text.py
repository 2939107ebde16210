"""Text helpers for tables and command-line values."""
from __future__ import annotations

from typing import Any


def fmt_or_dash(value: Any, spec: str = ".3f", empty: str = "–") -> str:
    """``format(value, spec)``, or ``empty`` for a missing (None) value."""
    return empty if value is None else format(value, spec)


def split_csv(value: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (comma-separated option values, blanks dropped)."""
    return [v.strip() for v in value.split(",") if v.strip()]
