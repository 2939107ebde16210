"""Plots of the HTML reports (matplotlib, Agg backend, PNG bytes to inline as data URIs).

matplotlib is the ``[report]`` extra: without it every plot function returns None and the
report says how to get the plots; tables and sample grids (Pillow) are drawn either way.
"""
from __future__ import annotations

import io
import math
from typing import Optional

DPI = 96
MARKERS = "osD^vP*Xh<>"
NO_MATPLOTLIB = "plots need matplotlib: pip install 'edgegan[report]'"


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(w: float, h: float):
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=DPI, layout="constrained")
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def tradeoff(points: list[dict], title: str) -> Optional[bytes]:
    """Quality vs latency, marker area ~ artifact size. ``points``: {label, group, latency_ms,
    psnr_db, bytes, exact}; an exact (infinite-PSNR) point is drawn at the top edge, labelled."""
    pts = [p for p in points if p.get("latency_ms") and p.get("psnr_db") is not None]
    if not pts or not available():
        return None
    fig = _figure(7.2, 4.2)
    ax = fig.add_subplot()
    finite = [p["psnr_db"] for p in pts if math.isfinite(p["psnr_db"])]
    top = (max(finite) if finite else 60.0) + 8.0
    biggest = max((p.get("bytes") or 0) for p in pts) or 1
    groups = list(dict.fromkeys(p.get("group") or "" for p in pts))
    import matplotlib

    colours = matplotlib.colormaps["tab10"]
    labels = list(dict.fromkeys(p["label"] for p in pts))
    for p in pts:
        y = p["psnr_db"] if math.isfinite(p["psnr_db"]) else top
        size = 40 + 460 * ((p.get("bytes") or 0) / biggest)
        ax.scatter([p["latency_ms"]], [y], s=size, alpha=0.75, color=colours(labels.index(p["label"]) % 10),
                   marker=MARKERS[groups.index(p.get("group") or "") % len(MARKERS)], edgecolors="black", linewidths=0.6)
        text = p["label"] + ("" if len(groups) == 1 else f" @ {p.get('group')}") + ("" if math.isfinite(p["psnr_db"]) else " (exact)")
        ax.annotate(text, (p["latency_ms"], y), textcoords="offset points", xytext=(6, 5), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("p50 latency, ms (log scale; left is faster)")
    ax.set_ylabel("PSNR vs float, dB (up is closer)")
    ax.set_title(title + "\nmarker area ~ artifact size", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    xs = [p["latency_ms"] for p in pts]
    ax.set_xlim(min(xs) / 1.6, max(xs) * 2.2)
    return _png(fig)


QUANTILES = (("min", 0.0), ("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
# the y axis in "nines" (-log10(1 - q)) so the tail gets room; max is drawn one step above p99
NINES = {"min": 0.0, "p50": 0.301, "p90": 1.0, "p95": 1.301, "p99": 2.0, "max": 2.5}


def latency_cdf(series: list[dict], title: str) -> Optional[bytes]:
    """Latency distribution as a CDF through the recorded quantiles (min, p50, p90, p95, p99,
    max) of each (format, device), p50/p90/p99 marked; the y axis in nines so the tail shows.
    ``series``: {label, latency_ms}."""
    rows = [s for s in series if s.get("latency_ms") and s["latency_ms"].get("p50") is not None]
    if not rows or not available():
        return None
    import matplotlib

    colours = matplotlib.colormaps["tab10"]
    fig = _figure(7.2, 3.6 + 0.12 * len(rows))
    ax = fig.add_subplot()
    for i, s in enumerate(rows):
        lat = s["latency_ms"]
        qs = [(lat[k], NINES[k]) for k, _ in QUANTILES if isinstance(lat.get(k), (int, float))]
        if not qs:
            continue
        xs, ys = zip(*qs)
        c = colours(i % 10)
        ax.plot(xs, ys, "-", color=c, lw=1.6, label=s["label"])
        for k, marker in (("p50", "o"), ("p90", "s"), ("p99", "^")):
            if lat.get(k) is not None:
                ax.plot([lat[k]], [NINES[k]], marker, color=c, ms=6, mec="black", mew=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("latency per inference, ms (log scale)")
    ax.set_ylabel("share of runs ≤ x")
    ax.set_yticks([NINES[k] for k in ("min", "p50", "p90", "p95", "p99", "max")],
                  ["min", "50% (p50 ●)", "90% (p90 ■)", "95%", "99% (p99 ▲)", "max"])
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def bars(groups: dict[str, dict[str, Optional[float]]], title: str, ylabel: str, ylim: Optional[tuple] = None) -> Optional[bytes]:
    """Grouped bars: ``groups`` = {series name: {metric label: value}} (None values skipped)."""
    if not available() or not groups:
        return None
    metrics = list(dict.fromkeys(k for g in groups.values() for k, v in g.items() if v is not None and math.isfinite(v)))
    if not metrics:
        return None
    import matplotlib

    colours = matplotlib.colormaps["tab10"]
    fig = _figure(max(4.0, 1.0 + 1.1 * len(metrics) * max(1, len(groups)) / 2), 3.2)
    ax = fig.add_subplot()
    width = 0.8 / len(groups)
    for i, (name, vals) in enumerate(groups.items()):
        xs = [j + i * width for j in range(len(metrics))]
        ys = [vals.get(m) if vals.get(m) is not None and math.isfinite(vals[m]) else 0.0 for m in metrics]
        bars_ = ax.bar(xs, ys, width=width, label=name, color=colours(i % 10))
        ax.bar_label(bars_, fmt="%.3g", fontsize=7)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(metrics))], metrics, fontsize=8)
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_title(title, fontsize=10)
    if len(groups) > 1:
        ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return _png(fig)


def sweep_tradeoff(points: list[dict], title: str, ylabel: str) -> Optional[bytes]:
    """A sweep's grid in one plot: quality vs p50 latency, colour by format, marker by target,
    marker area ~ artifact size. ``points``: {format, target, pipeline, latency_ms, quality, bytes};
    pipeline names are written next to the points when there are few of them."""
    pts = [p for p in points if p.get("latency_ms") and p.get("quality") is not None]
    if not pts or not available():
        return None
    import matplotlib
    from matplotlib.lines import Line2D

    colours = matplotlib.colormaps["tab10"]
    formats = list(dict.fromkeys(p["format"] for p in pts))
    targets = list(dict.fromkeys(p["target"] for p in pts))
    finite = [p["quality"] for p in pts if math.isfinite(p["quality"])]
    top = (max(finite) if finite else 60.0) + 8.0
    biggest = max((p.get("bytes") or 0) for p in pts) or 1
    fig = _figure(7.6, 4.6)
    ax = fig.add_subplot()
    for p in pts:
        y = p["quality"] if math.isfinite(p["quality"]) else top
        ax.scatter([p["latency_ms"]], [y], s=30 + 300 * ((p.get("bytes") or 0) / biggest), alpha=0.7,
                   color=colours(formats.index(p["format"]) % 10),
                   marker=MARKERS[targets.index(p["target"]) % len(MARKERS)], edgecolors="black", linewidths=0.5)
        if len(pts) <= 16:
            ax.annotate(p["pipeline"], (p["latency_ms"], y), textcoords="offset points", xytext=(5, 4), fontsize=7)
    handles = [Line2D([], [], ls="", marker="o", color=colours(i % 10), mec="black", label=f) for i, f in enumerate(formats)]
    handles += [Line2D([], [], ls="", marker=MARKERS[i % len(MARKERS)], color="grey", mec="black", label=f"@ {t}")
                for i, t in enumerate(targets)]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="colour: format\nmarker: target",
              title_fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("p50 latency on the target, ms (log scale; left is faster)")
    ax.set_ylabel(ylabel)
    ax.set_title(title + "\nmarker area ~ artifact size; exact points drawn at the top", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    xs = [p["latency_ms"] for p in pts]
    ax.set_xlim(min(xs) / 1.6, max(xs) * 1.8)
    return _png(fig)
