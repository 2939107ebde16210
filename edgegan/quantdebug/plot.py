"""SQNR along the network as a PNG (Pillow only: matplotlib is not a dependency)."""
from __future__ import annotations

from pathlib import Path

from .report import DebugReport

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 900, 420, 60, 20, 30, 50
TOTAL, INTRODUCED = (31, 119, 180), (214, 39, 40)


def plot_sqnr(report: DebugReport, path: Path) -> Path:
    """Total SQNR (blue) and introduced SQNR (red) of every op, in network order."""
    from PIL import Image, ImageDraw

    ops = sorted(report.ops, key=lambda o: o.order)
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    vals = [o.sqnr_db for o in ops] + [o.introduced_sqnr_db for o in ops if o.introduced_sqnr_db is not None]
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    lo, hi = min(lo, 0.0), max(hi, lo + 1.0)
    hi = min(hi, 120.0)  # an exact op (capped at 200 dB) must not squash the rest

    def xy(i: int, v: float) -> tuple[float, float]:
        x = PAD_L + (W - PAD_L - PAD_R) * (i / max(1, len(ops) - 1))
        y = PAD_T + (H - PAD_T - PAD_B) * (1 - (min(v, hi) - lo) / (hi - lo))
        return x, y

    d.rectangle([PAD_L, PAD_T, W - PAD_R, H - PAD_B], outline=(160, 160, 160))
    for k in range(6):
        v = lo + (hi - lo) * k / 5
        _, y = xy(0, v)
        d.line([PAD_L, y, W - PAD_R, y], fill=(230, 230, 230))
        d.text((4, y - 6), f"{v:.0f} dB", fill="black")
    for series, color in (([o.sqnr_db for o in ops], TOTAL), ([o.introduced_sqnr_db for o in ops], INTRODUCED)):
        pts = [xy(i, v) for i, v in enumerate(series) if v is not None]
        if len(pts) > 1:
            d.line(pts, fill=color, width=2)
        for x, y in pts:
            d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
    d.text((PAD_L, 8), f"{report.format}: SQNR vs float along the network (blue: total, red: introduced by the op)",
           fill="black")
    d.text((PAD_L, H - PAD_B + 8), f"op 1 .. {len(ops)} in network order; output {report.output_psnr_db:.1f} dB PSNR",
           fill="black")
    img.save(path)
    return path
