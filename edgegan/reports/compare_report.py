"""What `edgegan compare` writes: compare.json and the A / B / |A-B| sample grid.

Kept out of edgegan.metrics (which computes, never draws) so metrics stays below reports.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import OutputError
from ..metrics.compare import to_json
from ..util.files import atomic_write
from .grid import save_grid


def grid_selection(result: dict, columns: int = 8) -> tuple[np.ndarray, list[str]]:
    """Indices for the A-vs-B grid: worst pairs then the median pair when paired, else the
    first samples; with labels."""
    arrays = result["_arrays"]
    ranking = arrays["ranking"]
    if ranking is not None:
        worst = [int(i) for i in ranking[: max(columns - 1, 1)]]
        med = int(result["paired"]["median_index"])
        idx = worst + ([med] if med not in worst else [])
        labels = [f"worst {r + 1}: #{i}" for r, i in enumerate(worst)] + ([f"median: #{med}"] if med not in worst else [])
        return np.asarray(idx), labels
    n = min(columns, len(arrays["a"]), len(arrays["b"]))
    return np.arange(n), [f"#{i}" for i in range(n)]


def write_grid(result: dict, path: str | Path, columns: int = 8) -> Optional[Path]:
    """PNG: row 1 = A, row 2 = B, row 3 = |A - B| scaled to full range (paired only).
    Returns None when the samples are not images (1 or 3 channels)."""
    a, b = result["_arrays"]["a"], result["_arrays"]["b"]
    if a.ndim != 4 or a.shape[1] not in (1, 3):
        return None
    idx, _ = grid_selection(result, columns)
    if result["_arrays"]["ranking"] is not None:
        diff = np.abs(a[idx].astype(np.float32) - b[idx].astype(np.float32))
        diff = diff / max(float(diff.max()), 1e-12) * 2 - 1
        rows = [a[idx], b[idx], diff]
    else:
        rows = [a[idx], b[idx]]
    scale = max(1, 96 // max(a.shape[2], 1))
    return save_grid(np.concatenate(rows).astype(np.float32), path, nrow=len(idx), scale=min(scale, 4))


def write_outputs(result: dict, out_dir: str | Path, command: Optional[str] = None) -> dict[str, Path]:
    """Write compare.json, compare_grid.png and report.html into ``out_dir``; return their paths.
    ``command``: the command line that made the result (recorded, shown in the report)."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        grid = write_grid(result, out / "compare_grid.png")
        result["grid"] = grid.name if grid else None
        if grid:
            _, labels = grid_selection(result)
            result["grid_columns"] = labels
        if command:
            result["command"] = command
        atomic_write(out / "compare.json", to_json(result) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write compare outputs to '{out}' ({exc.strerror}); pass a writable --out") from None
    paths = {"json": out / "compare.json"}
    if grid:
        paths["grid"] = grid
    html = _write_html(result, out)
    if html is not None:
        paths["html"] = html
    return paths


def _write_html(result: dict, out: Path) -> Optional[Path]:
    """report.html from the in-memory result (its samples included). compare.json is complete
    without it, so a report that cannot be drawn is logged, not raised."""
    import json
    import logging

    from .html_report import HTML_FILENAME, ReportInputs, write_html

    try:
        doc = json.loads(to_json(result))
        return write_html(ReportInputs(compares=[(out, doc, result.get("_arrays"))]), out / HTML_FILENAME)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        logging.getLogger(__name__).warning("report.html not written for %s: %s", out, exc)
        return None
