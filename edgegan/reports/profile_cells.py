"""Table cells of a profile row (memory, power, quality), shared by the markdown, terminal and
HTML reports."""
from __future__ import annotations

from ..util.text import fmt_or_dash as _f  # short: it fills many table cells


def memory_cell(r: dict) -> str:
    if r.get("peak_memory_mb") is not None:
        return f"{r['peak_memory_mb']:.1f} MB ({r.get('memory_method')})"
    rng = r.get("peak_memory_range_mb")
    if rng:
        return f"{rng[0]:.0f}–{rng[1]:.0f} MB (emulated-range)"
    return "–"


def power_cell(r: dict) -> str:
    pw = r.get("power") or {}
    if pw.get("avg_w") is None:
        return pw.get("provenance", "–")
    return f"{pw['avg_w']:.2f} W (net {pw['net_w']:.2f}) {pw['provenance']}"


def summary_metrics() -> list:
    """The registered metrics shown in the compact tables (``Metric.summary``)."""
    from ..metrics.base import METRICS

    return [m for m in METRICS.values() if m.summary]


def quality_cells(r: dict) -> tuple[str, list[str], str]:
    """(PSNR cell, one cell per summary metric, vs-host cell)."""
    q = r.get("quality") or {}
    psnr = "exact" if q.get("exact") else _f(q.get("psnr_db"), ".1f")
    cells = [m.cell(q) for m in summary_metrics()]
    vh = q.get("vs_host")
    if not vh:
        host = "–"
    elif not vh.get("available"):
        host = "n/a"
    else:
        host = "bit-exact" if vh.get("exact") else f"max Δ {_f(vh.get('max_abs_diff'), '.2e')}"
    return psnr, cells, host
