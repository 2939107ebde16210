"""The post-training trade-off plot (Pillow only, no matplotlib): precision / recall of the
samples' features vs real data and vs the float model's samples, against weight bits, magnitude
sparsity and channels removed — one curve per metric, line style per variant. Drawn from the
rows of :func:`edgegan.sweep.posttrain.posttrain_rows` (the columns of docs/posttrain_sweep.csv)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

COLORS = {"lsh_precision": (31, 119, 180), "lsh_recall": (255, 127, 14),
          "knn_precision": (44, 160, 44), "knn_recall": (214, 39, 40)}
LABELS = {"lsh_precision": "LSH precision", "lsh_recall": "LSH recall",
          "knn_precision": "kNN precision", "knn_recall": "kNN recall"}
DASHES = {"solid": None, "dashed": (10, 6), "dotted": (3, 5)}
FP32_X = 9.5  # where the unquantized model sits on the bits axis


def _num(v) -> Optional[float]:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _line(draw, pts, color, style: str, width: int = 3) -> None:
    """Polyline with markers; ``style`` solid | dashed | dotted (on/off pattern in pixels)."""
    pattern = DASHES[style]
    for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
        if pattern is None:
            draw.line([(x0, y0), (x1, y1)], fill=color, width=width)
            continue
        length, pos = math.hypot(x1 - x0, y1 - y0), 0.0
        while length and pos < length:
            a, b = pos / length, min(1.0, (pos + pattern[0]) / length)
            draw.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)],
                      fill=color, width=width)
            pos += pattern[0] + pattern[1]
    for x, y in pts:
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)


def _panel(draw, box, fonts, title: str, xlabel: str, xticks: list[tuple[float, str]], series: list) -> None:
    """One chart: y in [0, 1]; ``series`` = [(xs, ys, color, style)]; xticks = [(x, label)]."""
    x0, y0, x1, y1 = box
    left, right, top, bottom = x0 + 55, x1 - 15, y0 + 30, y1 - 45
    xs_all = [x for x, _ in xticks] or [0.0, 1.0]
    xmin, xmax = min(xs_all), max(xs_all)
    if xmax == xmin:
        xmin, xmax = xmin - 0.5, xmax + 0.5

    def px(x):
        return left + (x - xmin) / (xmax - xmin) * (right - left)

    def py(y):
        return bottom - y * (bottom - top)

    draw.text(((left + right) / 2, y0 + 6), title, fill="black", font=fonts[1], anchor="ma")
    for v in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        draw.line([(left, py(v)), (right, py(v))], fill=(225, 225, 225), width=1)
        draw.text((left - 6, py(v)), f"{v:.1f}", fill="black", font=fonts[0], anchor="rm")
    for x, label in xticks:
        draw.line([(px(x), bottom), (px(x), bottom + 4)], fill="black")
        draw.text((px(x), bottom + 7), label, fill="black", font=fonts[0], anchor="ma")
    draw.rectangle([left, top, right, bottom], outline="black")
    draw.text(((left + right) / 2, bottom + 24), xlabel, fill="black", font=fonts[0], anchor="ma")
    for xs, ys, color, style in series:
        pts = [(px(x), py(y)) for x, y in zip(xs, ys) if x is not None and y is not None]
        if pts:
            _line(draw, pts, color, style)


def _curves(rows: list[dict], x_key: str, ref: str, style: str, x_map=lambda x: x) -> list:
    rows = sorted((r for r in rows if _num(r.get(x_key)) is not None), key=lambda r: _num(r[x_key]))
    return [([x_map(_num(r[x_key])) for r in rows], [_num(r.get(f"{m}_vs_{ref}")) for r in rows], COLORS[m], style)
            for m in COLORS]


def _ticks(rows: list[dict], key: str, fmt) -> list[tuple[float, str]]:
    vals = sorted({v for v in (_num(r.get(key)) for r in rows) if v is not None})
    return [(v, fmt(v)) for v in vals]


def plot_posttrain(rows: list[dict], path: str | Path, model: str = "", features: str = "digits-CNN") -> Path:
    """Two rows (vs real data, vs float samples; a reference missing from the rows is skipped)
    x three panels (bits, sparsity, channels). ``rows`` need series / bits / sparsity /
    channel_ratio and the ``<metric>_vs_<ref>`` columns."""
    from PIL import Image, ImageDraw, ImageFont

    fonts = (ImageFont.load_default(size=13), ImageFont.load_default(size=16), ImageFont.load_default(size=20))
    refs = [ref for ref in ("real", "float") if any(_num(r.get(f"{m}_vs_{ref}")) is not None for r in rows for m in COLORS)]
    refs = refs or ["float"]
    w, h = 1560, 80 + 430 * len(refs)
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    series: dict[str, list[dict]] = {}
    for r in rows:
        series.setdefault(str(r.get("series") or ""), []).append(r)
    float_rows, clip_rows = series.get("float", []), series.get("clip", [])
    no_prune = [r for r in series.get("prune", []) if _num(r.get("sparsity")) == 0]
    no_channel = [r for r in series.get("channel-prune-norm-scale", []) if _num(r.get("channel_ratio")) == 0]

    def bit_x(b: float) -> float:
        return FP32_X if b >= 32 else b

    quant_rows = series.get("quant", []) + series.get("quant+clip", []) + series.get("quant-per-tensor", [])
    bit_ticks = [(b, f"{b:g}") for b, _ in _ticks(quant_rows, "bits", str) if b < 32] + [(FP32_X, "fp32")]
    prune_ticks = _ticks(series.get("prune", []) + series.get("prune+bnr", []), "sparsity", lambda s: f"{round(100 * s)}")
    channel_rows = [r for k, v in series.items() if k.startswith("channel-prune") for r in v]
    channel_ticks = _ticks(channel_rows, "channel_ratio", lambda c: f"{100 * c:g}")
    for row_idx, ref in enumerate(refs):
        top = 60 + row_idx * 430
        ref_label = "real data" if ref == "real" else "float-model samples"
        bits = (_curves(series.get("quant", []) + float_rows, "bits", ref, "solid", bit_x)
                + _curves(series.get("quant+clip", []) + clip_rows, "bits", ref, "dashed", bit_x)
                + _curves(series.get("quant-per-tensor", []) + float_rows, "bits", ref, "dotted", bit_x))
        prune = (_curves(series.get("prune", []), "sparsity", ref, "solid")
                 + _curves(series.get("prune+bnr", []) + no_prune, "sparsity", ref, "dashed"))
        channels = (_curves(series.get("channel-prune-l1", []), "channel_ratio", ref, "solid")
                    + _curves(series.get("channel-prune-norm-scale", []), "channel_ratio", ref, "dashed")
                    + _curves(series.get("channel-prune-norm-scale+bnr", []) + no_channel, "channel_ratio", ref, "dotted"))
        panels = [
            (f"vs {ref_label}: k-bit weights", "weight bits k  (solid per-channel, dashed + clip p99, dotted per-tensor)",
             bit_ticks, bits),
            (f"vs {ref_label}: global magnitude pruning", "sparsity %  (solid plain, dashed + BN re-calibration)",
             prune_ticks, prune),
            (f"vs {ref_label}: channel pruning", "channels removed %  (solid L1, dashed norm-scale, dotted + BN re-cal.)",
             channel_ticks, channels),
        ]
        for i, (title, xlabel, ticks, curves) in enumerate(panels):
            _panel(draw, (10 + i * 515, top, 10 + (i + 1) * 515, top + 420), fonts, title, xlabel, ticks, curves)
    draw.text((w / 2, 12), f"{model or 'model'} post-training compression: precision / recall of {features} features",
              fill="black", font=fonts[2], anchor="ma")
    lx = 420
    for metric, color in COLORS.items():
        draw.line([(lx, 46), (lx + 30, 46)], fill=color, width=4)
        draw.text((lx + 36, 46), LABELS[metric], fill="black", font=fonts[1], anchor="lm")
        lx += 190
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
