"""Building blocks of the self-contained HTML reports: escaping, tables, images as data URIs,
sample grids with row/column labels and a stated |diff| scale, and the page shell (inline CSS,
no script, nothing fetched at view time)."""
from __future__ import annotations

import base64
import html
import io
import math
from typing import Any, Iterable, Optional, Sequence

import numpy as np

CSS = """
:root { --fg:#1d2430; --muted:#5b6472; --line:#d9dee6; --bg:#ffffff; --band:#f5f7fa; --ok:#1a7f37;
        --warn:#9a6700; --bad:#cf222e; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg);
       background: var(--bg); margin: 0 auto; padding: 12px 16px 40px; max-width: 1200px; }
h1 { font-size: 1.45em; margin: .4em 0 .2em; } h2 { font-size: 1.2em; margin: 1.6em 0 .4em; border-bottom:
     1px solid var(--line); padding-bottom: .2em; } h3 { font-size: 1.02em; margin: 1.1em 0 .3em; }
p, li { max-width: 75em; } .muted { color: var(--muted); } code, pre { font-family: "DejaVu Sans Mono", monospace;
     font-size: .92em; } pre { background: var(--band); padding: 8px 10px; overflow-x: auto; white-space: pre-wrap;
     word-break: break-all; border-radius: 4px; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: .4em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: var(--band); font-weight: 600; } td.l, th.l { text-align: left; }
td.reason { white-space: normal; min-width: 14em; text-align: left; color: var(--muted); }
td.wrap { white-space: normal; min-width: 10em; text-align: left; }
.ok { color: var(--ok); font-weight: 600; } .degraded, .incomplete { color: var(--warn); font-weight: 600; }
.failed { color: var(--bad); font-weight: 600; }
img.plot { max-width: 100%; height: auto; display: block; margin: .4em 0; border: 1px solid var(--line); }
table.grid td, table.grid th { padding: 2px; border: none; text-align: center; vertical-align: middle; }
table.grid th.row { text-align: right; padding-right: 6px; font-weight: 600; background: none; max-width: 11em;
     white-space: normal; } table.grid th.col { font-weight: 400; color: var(--muted); background: none;
     font-size: .85em; } table.grid img { image-rendering: pixelated; display: block; } table.grid td.gap { width: 14px; }
.scale { display: inline-block; width: 140px; height: 12px; vertical-align: middle;
     background: linear-gradient(to right, #000, #fff); border: 1px solid var(--line); }
.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; }
.kv div:nth-child(odd) { color: var(--muted); }
.kv div { overflow-wrap: anywhere; }
nav a { margin-right: 1em; }
"""

STATUS_CLASS = {"ok": "ok", "degraded": "degraded", "failed": "failed", "incomplete": "incomplete"}


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def num(value: Any, spec: str = ".3f", dash: str = "–") -> str:
    """A number for a table cell (dash for missing / not finite)."""
    if value is None or isinstance(value, bool):
        return dash
    try:
        v = float(value)
    except (TypeError, ValueError):
        return esc(value)
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    if math.isnan(v):
        return dash
    return format(v, spec)


def status_cell(status: str, mark: str) -> str:
    return f'<td class="l {STATUS_CLASS.get(status, "failed")}">{esc(mark)}</td>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], left: int = 1) -> str:
    """An HTML table; cells are pre-rendered HTML (escape text with :func:`esc` first). A cell that
    already starts with ``<td`` is used as is. The first ``left`` columns are left-aligned."""
    head = "".join(f'<th class="l">{esc(h)}</th>' if i < left else f"<th>{esc(h)}</th>" for i, h in enumerate(headers))
    body = []
    for r in rows:
        cells = []
        for i, c in enumerate(r):
            c = str(c)
            cells.append(c if c.startswith("<td") else (f'<td class="l">{c}</td>' if i < left else f"<td>{c}</td>"))
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def kv(pairs: Iterable[tuple[str, Any]]) -> str:
    """Key/value list (environment, settings)."""
    return '<div class="kv">' + "".join(f"<div>{esc(k)}</div><div>{esc(v)}</div>" for k, v in pairs
                                       if v not in (None, "", {})) + "</div>"


def png_data_uri(pixels: np.ndarray) -> str:
    """[H, W, 3] or [H, W] uint8 -> data:image/png;base64 (Pillow, optimised)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def bytes_data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def img(uri: str, alt: str, cls: str = "plot", width: Optional[int] = None) -> str:
    w = f' width="{width}"' if width else ""
    return f'<img class="{cls}" src="{uri}" alt="{esc(alt)}"{w}>'


def is_image_batch(x: Any) -> bool:
    """[N, C, H, W] with 1 or 3 channels: drawable as pictures."""
    return isinstance(x, np.ndarray) and x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[2] >= 2 and x.shape[3] >= 2


def sample_pixels(x: np.ndarray, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """One [C, H, W] sample in [lo, hi] -> [H, W, 3] uint8."""
    span = max(hi - lo, 1e-12)
    a = np.clip((np.asarray(x, np.float32) - lo) / span * 255.0, 0, 255).round().astype(np.uint8).transpose(1, 2, 0)
    return np.repeat(a, 3, axis=-1) if a.shape[-1] == 1 else a


def diff_pixels(d: np.ndarray, scale: float) -> np.ndarray:
    """|A - B| of one sample, averaged over channels, black 0 -> white at ``scale`` (clipped)."""
    m = np.abs(np.asarray(d, np.float32)).mean(axis=0)
    a = np.clip(m / max(scale, 1e-12) * 255.0, 0, 255).round().astype(np.uint8)
    return np.repeat(a[..., None], 3, axis=-1)


def nice_scale(value: float) -> float:
    """Round up to 1, 2 or 5 times a power of ten (a scale people can read)."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    p = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 5, 10):
        if value <= m * p * (1 + 1e-9):
            return m * p
    return 10 * p


def diff_scale(diffs: list[np.ndarray], peak: float) -> float:
    """The |diff| value drawn white: the 99.5th percentile of the shown channel-mean |diff|s,
    rounded up to 1-2-5, at least peak/1000 (so a near-exact artifact shows black, not noise)."""
    vals = np.concatenate([np.abs(np.asarray(d, np.float32)).mean(axis=1).ravel() for d in diffs]) if diffs else np.zeros(1)
    return nice_scale(max(float(np.percentile(vals, 99.5)), peak / 1000.0))


def display_px(h: int, w: int) -> int:
    """On-page width of one sample: small images upscaled (pixelated) to about 48-64 px."""
    return int(w * max(1, min(8, 64 // max(h, w, 1))))


def labelled_grid(columns: list[str], rows: list, width_px: int, left_title: str = "",
                  right_title: str = "") -> str:
    """A table of sample images with labelled rows and columns. ``rows``: (label, left pictures,
    right pictures or None), pictures [H, W, 3] uint8, one per column; the right block (e.g.
    |diff|) repeats the columns beside the left one."""
    has_right = any(r[2] for r in rows)
    n = len(columns)
    head = ""
    if has_right:
        head = (f'<tr><th></th><th class="col" colspan="{n}"><b>{esc(left_title)}</b></th><td></td>'
                f'<th class="col" colspan="{n}"><b>{esc(right_title)}</b></th></tr>')
    cols = "".join(f'<th class="col">{esc(c).replace(chr(10), "<br>")}</th>' for c in columns)
    head += f"<tr><th></th>{cols}" + (f'<td></td>{cols}' if has_right else "") + "</tr>"
    body = []
    for label, left, right in rows:
        cells = "".join(f"<td>{img(png_data_uri(p), f'{label} {c}', cls='sample', width=width_px)}</td>"
                        for p, c in zip(left, columns))
        if has_right:
            cells += '<td class="gap"></td>' + ("".join(
                f"<td>{img(png_data_uri(p), f'|diff| {label} {c}', cls='sample', width=width_px)}</td>"
                for p, c in zip(right, columns)) if right else f'<td colspan="{n}"></td>')
        body.append(f'<tr><th class="row">{esc(label)}</th>{cells}</tr>')
    return f'<div class="scroll"><table class="grid">{head}{"".join(body)}</table></div>'


def scale_note(scale: float, peak: float, reference: str = "float") -> str:
    pct = 100.0 * scale / peak if peak else float("nan")
    return (f'<p class="muted">|diff| columns: channel-mean |{esc(reference)} − row| per pixel, <span class="scale"></span> '
            f"black = 0, white ≥ {scale:g} ({pct:.2g}% of the output range {peak:g}); "
            "values above are clipped. The same scale for every |diff| image.</p>")


def page(title: str, body: str, generated: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            # nothing may be fetched at view time: inline style and data: images only
            f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
            f'style-src \'unsafe-inline\'">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{esc(title)}</h1><p class=\"muted\">{esc(generated)}</p>{body}</body></html>\n")
