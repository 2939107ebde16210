"""One converter from result dicts (numpy scalars and arrays, inf/NaN, paths) to strict JSON data."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np


def json_safe(obj: Any, drop_private: bool = False) -> Any:
    """A copy that ``json.dumps(..., allow_nan=False)`` accepts: numpy scalars and arrays ->
    Python, inf/NaN -> None, paths -> str, dict keys -> str; ``drop_private`` leaves out keys
    starting with ``_`` (in-memory extras such as sample arrays)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v, drop_private) for k, v in obj.items()
                if not (drop_private and str(k).startswith("_"))}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, drop_private) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist(), drop_private)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj
