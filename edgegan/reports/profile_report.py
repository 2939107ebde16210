"""Profile results on disk: results.json (the record), results.csv (one row per format),
report.md (table + sample grid). Every file is written atomically, so a reader never sees a
half-written report, and ``complete`` in results.json says whether the run finished."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from ..results import MEASURED_STATUSES, STATUS_MARKS, ok_psnr_db_of, shown_reason, shown_status
from ..errors import ResultsError
from ..util.files import atomic_write
from ..util.npy import load_npy
from ..util.jsonsafe import json_safe
from ..util.text import fmt_or_dash as _f  # short: it fills many table cells
from .profile_cells import memory_cell, power_cell, quality_cells, summary_metrics

CSV_COLUMNS = [
    "device", "target", "format", "status", "runtime", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms",
    "trimmed_mean_ms", "std_ms", "warmup", "runs", "threads", "model_load_ms", "first_inference_ms",
    "peak_memory_mb", "peak_memory_low_mb", "peak_memory_high_mb", "memory_method", "power_provenance",
    "avg_w", "net_w", "energy_mj_per_inference", "thermal_start_c", "thermal_end_c", "psnr_db",
    "max_abs_err", "vs_host_exact", "vs_host_max_abs_diff", "emulator", "reason",
]


def csv_columns() -> list[str]:
    """CSV_COLUMNS with every registered metric's result keys after ``max_abs_err``."""
    from ..metrics.base import metric_columns

    i = CSV_COLUMNS.index("max_abs_err") + 1
    return CSV_COLUMNS[:i] + [c.key for c in metric_columns()] + CSV_COLUMNS[i:]


def flat_row(r: dict) -> dict:
    lat = r.get("latency_ms") or {}
    pw = r.get("power") or {}
    th = r.get("thermal") or {}
    q = r.get("quality") or {}
    vh = q.get("vs_host") or {}
    rng = r.get("peak_memory_range_mb") or [None, None]
    return {
        "device": r.get("device"), "target": r.get("target"), "format": r.get("format"), "status": r.get("status"),
        "runtime": r.get("runtime"),
        **{f"{k}_ms": lat.get(k) for k in ("p50", "p90", "p95", "p99", "mean", "trimmed_mean", "std")},
        "warmup": r.get("warmup"), "runs": r.get("runs"), "threads": r.get("threads"),
        "model_load_ms": r.get("model_load_ms"), "first_inference_ms": r.get("first_inference_ms"),
        "peak_memory_mb": r.get("peak_memory_mb"), "peak_memory_low_mb": rng[0], "peak_memory_high_mb": rng[1],
        "memory_method": r.get("memory_method"), "power_provenance": pw.get("provenance"),
        "avg_w": pw.get("avg_w"), "net_w": pw.get("net_w"), "energy_mj_per_inference": pw.get("energy_mj_per_inference"),
        "thermal_start_c": th.get("start_c"), "thermal_end_c": th.get("end_c"),
        "psnr_db": q.get("psnr_db"), "max_abs_err": q.get("max_abs_err"),
        **{c.key: q.get(c.key) for c in _metric_columns()},
        "vs_host_exact": vh.get("exact"), "vs_host_max_abs_diff": vh.get("max_abs_diff"),
        "emulator": r.get("emulator"), "reason": r.get("reason"),
    }


def _metric_columns():
    from ..metrics.base import metric_columns

    return metric_columns()


def write_csv(doc: dict, path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=csv_columns(), lineterminator="\n")
    w.writeheader()
    for r in doc["results"]:
        w.writerow(json_safe(flat_row(r)))
    atomic_write(path, buf.getvalue())


def sample_grid(doc: dict, out: Path, bundle, columns: int = 8) -> tuple[Path | None, list[str]]:
    """grid.png: row 1 = float reference, then one row per finished format (same latents)."""
    from .grid import save_grid

    rows, labels = [], []
    try:
        ref = bundle.reference()[:columns]
    except (OSError, ValueError):
        return None, []
    rows.append(ref)
    labels.append("float reference")
    for r in doc["results"]:
        p = out / r["format"] / "samples.npy"
        if r.get("status") not in MEASURED_STATUSES or not p.is_file():
            continue
        try:
            s = load_npy(p, "pulled samples", ResultsError)[:columns]
        except ResultsError:
            continue
        if s.shape != ref.shape:
            continue
        rows.append(s)
        labels.append(r["format"])
    if ref.ndim != 4 or ref.shape[1] not in (1, 3):
        return None, []
    path = save_grid(np.concatenate(rows), out / "grid.png", nrow=len(ref), scale=2)
    return path, labels


def markdown(doc: dict, grid: Path | None, grid_labels: list[str]) -> str:
    dev = doc.get("device") or {}
    st = doc.get("settings", {})
    metrics = summary_metrics()
    ok_psnr_db = ok_psnr_db_of(doc)
    lines = [f"# Profile: {doc['bundle']['model']} on {doc['target']}", ""]
    if not doc.get("complete"):
        lines += ["> **Incomplete run**: the device became unreachable; rows below are the formats that "
                  "finished. Rerun with `--resume`.", ""]
    emu = f" — **emulated** ({dev['emulator']})" if dev.get("emulator") else ""
    mem = f", {dev['memory_mb'] / 1024:.1f} GB RAM" if dev.get("memory_mb") else ""
    lines += [
        f"- device: {dev.get('arch', '?')} · {dev.get('cpu', '?')} · {dev.get('cores', '?')} cores{mem} · "
        f"{dev.get('os', '?')} · python {dev.get('python', '?')}{emu}",
        "- runtimes: " + ", ".join(f"{k} {v}" for k, v in (dev.get("runtimes") or {}).items() if k != "python"),
        f"- settings: batch 1, {st.get('threads')} threads, {st.get('warmup')} warmup + {st.get('runs')} timed runs "
        f"(perf_counter_ns), {doc['bundle']['inputs']} stored inputs; created {doc['created']}",
        "", "| format | status | runtime | p50 ms | p90 ms | p99 ms | mean ± std ms | load ms | first ms | "
        "peak memory | power | mJ / inference | thermal °C | PSNR dB | "
        + "".join(f"{m.short or m.name} | " for m in metrics) + "vs host |",
        "|" + "---|" * (15 + len(metrics)),
    ]
    for r in doc["results"]:
        lat = r.get("latency_ms") or {}
        th = r.get("thermal") or {}
        ok = r.get("status") in MEASURED_STATUSES
        status = STATUS_MARKS[shown_status(r, ok_psnr_db)]
        reason = shown_reason(r, ok_psnr_db)
        psnr, cells, host = quality_cells(r) if ok else ("–", ["–"] * len(metrics), "–")
        thermal = f"{_f(th.get('start_c'), '.1f')} → {_f(th.get('end_c'), '.1f')}" if th.get("start_c") is not None else "–"
        pw = r.get("power") or {}
        lines.append(" | ".join([
            f"| {r['format']}", status + (f" {reason}".replace("|", "/") if reason else ""),
            str(r.get("runtime") or "–"), _f(lat.get("p50")), _f(lat.get("p90")), _f(lat.get("p99")),
            f"{_f(lat.get('mean'))} ± {_f(lat.get('std'))}" if lat else "–", _f(r.get("model_load_ms"), ".1f"),
            _f(r.get("first_inference_ms")), memory_cell(r) if ok else "–", power_cell(r) if ok else "–",
            _f(pw.get("energy_mj_per_inference"), ".4f"), thermal, psnr, *cells, host]) + " |")
    lines += ["", "**How to read it.** Latency: runtime call only, batch 1. Peak memory: a fresh process that loads "
              "the model and runs it — `VmHWM` (/proc/self/status) or `ru_maxrss` (wait4); under an emulator the "
              "emulator's own memory is included, so it is an `emulated-range` [model's increment over an idle runtime "
              "process, whole process], not a device measurement. Power: `measured(<source>)` with the idle baseline "
              "subtracted, or `unavailable` (no number is estimated). PSNR: device outputs vs the float reference "
              "(peak-to-peak 2). LSH/kNN P/R: device samples vs float samples. vs host: the same artifact run on "
              "this host."]
    failed = [r for r in doc["results"] if r.get("status") not in MEASURED_STATUSES]
    if failed:
        lines += ["", "## Failed formats", ""] + [f"- **{r['format']}**: {r.get('reason')}" for r in failed]
    unavailable = {(r.get("power") or {}).get("reason") for r in doc["results"] if r.get("status") in MEASURED_STATUSES} - {None}
    if unavailable:
        lines += ["", f"Power unavailable: {sorted(unavailable)[0]}"]
    if grid is not None:
        lines += ["", "## Samples (same latents)", "", f"Rows: {', '.join(grid_labels)}.", "",
                  f"![samples]({grid.name})"]
    return "\n".join(lines) + "\n"


def write_all(doc: dict, out: Path, bundle, html: bool = False) -> dict[str, Path]:
    """results.json + results.csv + report.md (+ grid.png) into ``out``; ``html``: report.html too."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    doc = json_safe(doc)
    paths = {"json": out / "results.json", "csv": out / "results.csv", "md": out / "report.md"}
    atomic_write(paths["json"], json.dumps(doc, indent=2, allow_nan=False) + "\n")
    write_csv(doc, paths["csv"])
    grid, labels = sample_grid(doc, out, bundle)
    if grid is not None:
        paths["grid"] = grid
    atomic_write(paths["md"], markdown(doc, grid, labels))
    if html:
        paths["html"] = write_html_beside(doc, out)
    return paths


def write_html_beside(doc: dict, out: Path) -> Path | None:
    """report.html in the results folder. The results are complete without it, so a report
    that cannot be drawn is logged, not raised (`edgegan report FOLDER` draws it again)."""
    import logging

    from .html_report import HTML_FILENAME, ReportInputs, write_html

    try:
        return write_html(ReportInputs(profiles=[(Path(out), doc)]), Path(out) / HTML_FILENAME)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        logging.getLogger(__name__).warning("report.html not written for %s: %s", out, exc)
        return None
