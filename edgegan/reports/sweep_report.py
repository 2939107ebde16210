"""The sweep part of report.html: the sweep's results table (status marks, the stage and
reason of each failure), the quality-vs-latency-vs-size plot across the whole grid (colour by
format, marker by target), the jobs that ran, the post-training plot when the sweep wrote one,
and the command that reproduces it. Read from the sweep folder (spec.json + results.json, as
:mod:`edgegan.sweep.table` writes them); the folder's files are data, validated here."""
from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Optional

from ..errors import ResultsError
from ..results import STATUS_MARKS
from . import html as H
from . import plots

TABLE_ID = "sweep-results"


def is_sweep(folder: Path) -> bool:
    """A sweep folder: its results.json is a sweep table (``sweep`` + ``rows``) beside spec.json."""
    folder = Path(folder)
    if not ((folder / "spec.json").is_file() and (folder / "results.json").is_file()):
        return False
    try:
        doc = json.loads((folder / "results.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and "sweep" in doc and isinstance(doc.get("rows"), list)


def load_sweep(folder: Path) -> dict:
    """{folder, spec, rows, columns, events} of a sweep folder (types checked once here)."""
    folder = Path(folder)
    try:
        doc = json.loads((folder / "results.json").read_text())
        spec = json.loads((folder / "spec.json").read_text())
    except (OSError, ValueError) as exc:
        raise ResultsError(f"'{folder}' is not a readable sweep folder ({exc}); rerun the sweep") from None
    rows = doc.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows) or not isinstance(spec, dict):
        raise ResultsError(f"'{folder / 'results.json'}' holds no list of result rows; rerun the sweep")
    events = []
    try:
        for line in (folder / "events.jsonl").read_text().splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue  # a line cut by a killed driver
            if isinstance(e, dict):
                events.append(e)
    except OSError:
        pass
    return {"folder": folder, "spec": spec, "rows": rows, "columns": doc.get("columns") or [], "events": events}


def _num(v) -> Optional[float]:
    if isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def quality_axis(rows: list[dict]) -> tuple[str, str]:
    """(column, axis label) of the plot's quality: vs the uncompressed model when the sweep
    measured it (post-training view), else the device output vs the bundle's float reference,
    else the export fidelity on the host."""
    for col, label in (("psnr_vs_float_db", "PSNR of the compressed model vs the float model, dB"),
                       ("psnr_db", "PSNR on the target vs the bundle's float output, dB"),
                       ("fidelity_psnr_db", "PSNR of the artifact vs float on the host, dB")):
        if any(_num(r.get(col)) is not None for r in rows if r.get("status") != "failed"):
            return col, label
    return "fidelity_psnr_db", "PSNR vs float, dB"


def tradeoff_points(rows: list[dict]) -> tuple[list[dict], str]:
    col, label = quality_axis(rows)
    pts = []
    for r in rows:
        q, lat = _num(r.get(col)), _num(r.get("p50_ms"))
        if r.get("status") in ("ok", "degraded") and q is not None and lat and lat > 0 and not math.isnan(q):
            pts.append({"format": str(r.get("format")), "target": str(r.get("target")), "pipeline": str(r.get("pipeline")),
                        "latency_ms": lat, "quality": q, "bytes": _num(r.get("bytes"))})
    return pts, label


def _row_cells(r: dict, metrics: list[str]) -> list[str]:
    status = str(r.get("status") or "failed")
    size = _num(r.get("bytes"))
    cells = [H.esc(r.get("model")), H.esc(r.get("pipeline")), H.esc(r.get("format")), H.esc(r.get("target")),
             H.status_cell(status, STATUS_MARKS.get(status, status)), H.esc(r.get("stage")),
             H.num(size and size / 1e6, ".3f"), H.num(r.get("fidelity_psnr_db"), ".2f"), H.num(r.get("p50_ms")),
             H.num(r.get("p90_ms"))]
    cells += [H.num(r.get(m), ".3f" if not m.endswith("_db") else ".2f") for m in metrics]
    return cells + [f'<td class="reason">{H.esc(r.get("reason") or "")}</td>']


def sweep_section(sweep: dict) -> str:
    folder, spec, rows = sweep["folder"], sweep["spec"], sweep["rows"]
    extra = [m for m in (spec.get("metrics") or []) if isinstance(m, str)]
    if rows and "psnr_vs_float_db" in rows[0]:
        extra.append("psnr_vs_float_db")
    counts = {s: sum(1 for r in rows if r.get("status") == s) for s in ("ok", "degraded", "failed")}
    name = spec.get("name") or folder.name
    parts = [f'<h2 id="sweep">Sweep: {H.esc(name)}</h2>']
    lens = {k: len(spec.get(k) or []) for k in ("models", "pipelines", "formats", "targets")}
    parts.append(H.kv([("folder", folder),
                       ("grid", f"{lens['models']} models × {lens['pipelines']} pipelines × {lens['formats']} formats × "
                                f"{lens['targets']} targets"),
                       ("rows", f"{len(rows)}: {counts['ok']} ✔ ok, {counts['degraded']} ▲ degraded, {counts['failed']} ✘ failed"),
                       ("formats", ", ".join(str(f) for f in spec.get("formats") or [])),
                       ("targets", ", ".join(str(t.get("name") or t.get("url")) for t in spec.get("targets") or []
                                             if isinstance(t, dict)))]))
    parts.append("<h3>Results</h3>")
    headers = ["model", "pipeline", "format", "target", "status", "stage", "MB", "export PSNR dB", "p50 ms", "p90 ms",
               *extra, "reason"]
    table = H.table(headers, [_row_cells(r, extra) for r in rows], left=6)
    parts.append(table.replace("<table>", f'<table id="{TABLE_ID}">', 1))
    parts.append('<p class="muted">One row per (model, pipeline, format, target). stage: where a failed row stopped '
                 "(export | profile | compare); done = every stage ran. export PSNR: the artifact vs the (compressed) "
                 "float model on the host.</p>")
    pts, ylabel = tradeoff_points(rows)
    parts.append("<h3>Quality vs latency vs size across the grid</h3>")
    png = plots.sweep_tradeoff(pts, f"{name}: {len(pts)} measured rows", ylabel)
    if png is not None:
        parts.append(H.img(H.bytes_data_uri(png), "sweep trade-off: quality vs latency vs size"))
    elif not plots.available():
        parts.append(f'<p class="muted">({H.esc(plots.NO_MATPLOTLIB)})</p>')
    else:
        parts.append('<p class="muted">No measured rows to plot yet.</p>')
    post = folder / "posttrain_tradeoff.png"
    if post.is_file():
        parts.append("<h3>Post-training view: precision / recall per compression setting</h3>"
                     + H.img(H.bytes_data_uri(post.read_bytes()), "post-training trade-off")
                     + '<p class="muted">From posttrain.csv in the sweep folder (one row per pipeline).</p>')
    if sweep["events"]:
        by_kind: dict[str, list] = {}
        for e in sweep["events"]:
            by_kind.setdefault(str(e.get("kind")), []).append(e)
        body = [[H.esc(k), str(len(es)), str(sum(1 for e in es if e.get("status") != "ok")),
                 H.num(sum(_num(e.get("seconds")) or 0.0 for e in es), ".1f"),
                 H.esc(", ".join(sorted({str(e.get("host")) for e in es if e.get("host")})))] for k, es in by_kind.items()]
        parts.append("<h3>Jobs</h3>" + H.table(["kind", "runs", "failed", "seconds (sum)", "hosts"], body)
                     + '<p class="muted">Every job run in this folder (events.jsonl), retries and resumes included.</p>')
    spec_path = folder / "spec.json"
    parts.append("<h3>Reproduce</h3><pre>"
                 + H.esc(shlex.join(["edgegan", "sweep", str(spec_path), "--out", str(folder.parent / (folder.name + "-rerun"))]))
                 + "\n" + H.esc("# add --sequential to run without Ray, --ray-address ADDR for a cluster; the same --out "
                                "resumes (finished jobs are skipped)")
                 + "\n" + H.esc(shlex.join(["edgegan", "report", str(folder)])) + "</pre>")
    return "\n".join(parts)
