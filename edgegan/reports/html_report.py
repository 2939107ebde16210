"""report.html: one self-contained page for a bundle, one or more profile result folders (several
devices side by side) and compare results; `edgegan report PATH...` and the stages call
:func:`write_html_report`.

What a page holds, per kind: the table with status marks and the threshold, the quality-vs-
latency-vs-size plot, the latency distribution, labelled sample grids (inputs for image models,
float, artifact, |diff| on a stated scale; worst and median samples), precision/recall and
Frechet-distance panels, per-op tables, environment and tool versions, and the command that
reproduces the numbers. Images are PNG data URIs and the CSS is inline, so the file opens
offline anywhere (its Content-Security-Policy forbids fetching anything).
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import OutputError, ResultsError
from ..results import MEASURED_STATUSES, STATUS_MARKS, ok_psnr_db_of, shown_reason, shown_status
from . import html as H
from . import plots

log = logging.getLogger(__name__)

HTML_FILENAME = "report.html"
GRID_COLUMNS = 6  # worst samples + the median one


# ---------------------------------------------------------------------------- inputs
@dataclass
class ReportInputs:
    """What one page is made of (paths already read)."""

    bundles: list = field(default_factory=list)  # (Bundle, {format: outputs} or None)
    profiles: list = field(default_factory=list)  # (folder, results.json dict)
    compares: list = field(default_factory=list)  # (folder, compare.json dict, arrays or None)
    benchmark: list = field(default_factory=list)  # edgegan.benchmark.BenchmarkRow: the final table
    benchmark_command: str = ""
    sweeps: list = field(default_factory=list)  # sweep folders read by sweep_report.load_sweep


def kind_of(path: Path) -> str:
    """bundle | profile | compare | sweep, from the file a stage wrote into the folder."""
    from .sweep_report import is_sweep

    p = Path(path)
    if is_sweep(p if p.is_dir() else p.parent) and (p.is_dir() or p.name in ("results.json", "spec.json")):
        return "sweep"
    if p.is_file():
        names = {"bundle.json": "bundle", "results.json": "profile", "compare.json": "compare"}
        if p.name in names:
            return names[p.name]
        p = p.parent
    for name, kind in (("bundle.json", "bundle"), ("results.json", "profile"), ("compare.json", "compare")):
        if (p / name).is_file():
            return kind
    raise ResultsError(f"'{path}' holds no bundle.json, results.json or compare.json; pass a bundle, a profile "
                       "results folder, a compare output folder or a sweep folder")


def read_paths(paths: list) -> ReportInputs:
    from ..bundle import Bundle
    from ..results import ProfileRun

    got = ReportInputs()
    for raw in paths:
        p = Path(raw)
        kind = kind_of(p)
        folder = p.parent if p.is_file() else p
        if kind == "sweep":
            from .sweep_report import load_sweep

            got.sweeps.append(load_sweep(folder))
        elif kind == "bundle":
            got.bundles.append((Bundle.load(folder), None))
        elif kind == "profile":
            got.profiles.append((folder, ProfileRun.load(folder).to_dict()))
        else:
            try:
                doc = json.loads((folder / "compare.json").read_text())
            except (OSError, ValueError) as exc:
                raise ResultsError(f"'{folder / 'compare.json'}' is not readable JSON ({exc}); rerun compare") from None
            got.compares.append((folder, doc, None))
    return got


# ---------------------------------------------------------------------------- samples
def _per_sample_mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return (d.reshape(len(d), -1) ** 2).mean(axis=1)


def pick_columns(reference: np.ndarray, outputs: dict[str, np.ndarray], n: int = GRID_COLUMNS) -> tuple[list[int], list[str], str]:
    """The worst samples (largest error) of the lowest-fidelity output, then its median sample."""
    if not outputs:
        k = min(n, len(reference))
        return list(range(k)), [f"#{i}" for i in range(k)], "the first samples"
    errs = {name: _per_sample_mse(reference, o) for name, o in outputs.items()}
    worst_name = max(errs, key=lambda k: float(errs[k].mean()))
    order = np.argsort(-errs[worst_name], kind="stable")
    worst = [int(i) for i in order[: max(1, n - 1)]]
    median = int(order[len(order) // 2])
    idx = worst + ([median] if median not in worst else [])
    labels = [f"worst {r + 1}\n#{i}" for r, i in enumerate(worst)] + ([f"median\n#{median}"] if median not in worst else [])
    return idx, labels, f"the {len(worst)} worst samples of {worst_name} (the largest mean error) and its median sample"


def sample_grid_html(reference: np.ndarray, outputs: dict[str, np.ndarray], out_range: tuple[float, float],
                     inputs: Optional[np.ndarray] = None, float_label: str = "float (torch)") -> str:
    """Rows: input (image models), float, then per output: output and |diff|; labelled columns."""
    if not H.is_image_batch(reference):
        return '<p class="muted">Outputs are not images (1 or 3 channels); no sample grid.</p>'
    outputs = {k: v for k, v in outputs.items() if v is not None and v.shape == reference.shape}
    lo, hi = out_range
    peak = hi - lo
    idx, labels, why = pick_columns(reference, outputs)
    rows = []
    if inputs is not None and H.is_image_batch(inputs) and len(inputs) == len(reference):
        rows.append(("input", [H.sample_pixels(inputs[i]) for i in idx], None))
    rows.append((float_label, [H.sample_pixels(reference[i], lo, hi) for i in idx], None))
    diffs = {name: o[idx] - reference[idx] for name, o in outputs.items()}
    scale = H.diff_scale(list(diffs.values()), peak)
    for name, o in outputs.items():
        rows.append((name, [H.sample_pixels(o[i], lo, hi) for i in idx], [H.diff_pixels(d, scale) for d in diffs[name]]))
    width = H.display_px(reference.shape[2], reference.shape[3])
    note = f'<p class="muted">Columns: {H.esc(why)} (same inputs in every row).</p>'
    grid = H.labelled_grid(labels, rows, width, "output", f"|diff| vs {float_label} (white ≥ {scale:g})")
    return note + grid + (H.scale_note(scale, peak, float_label) if outputs else "")


def _range_of(manifest: dict) -> tuple[float, float]:
    r = (manifest.get("output") or {}).get("range") or [-1.0, 1.0]
    return float(r[0]), float(r[1])


def _image_inputs(bundle) -> Optional[np.ndarray]:
    """The stored inputs when the model takes images (image-to-image), else None."""
    if (bundle.manifest.input or {}).get("kind") != "image":
        return None
    try:
        return bundle.inputs()
    except (OSError, ValueError):
        return None


def host_outputs(bundle) -> dict[str, np.ndarray]:
    """Every usable artifact of ``bundle`` run on this host on the stored inputs (for a report of
    a bundle written earlier); a format whose runtime is missing here is left out."""
    from ..verify.host import run_artifact

    inputs = bundle.inputs()
    out = {}
    for rec in bundle.artifact_records():
        if rec.status == "failed" or not rec.path:
            continue
        try:
            out[rec.format] = run_artifact(bundle.artifact_path(rec), rec.format, rec.io, inputs, 1)
        except Exception as exc:  # noqa: BLE001 - a missing runtime only drops this row of the grid
            log.info("report: %s not run on this host (%s)", rec.format, exc)
    return out


def _cmd_block(cmds: list[str]) -> str:
    return "<pre>" + "\n".join(H.esc(c) for c in cmds) + "</pre>"


# ---------------------------------------------------------------------------- bundle
def bundle_section(bundle, outputs: Optional[dict]) -> str:
    m = bundle.manifest.to_dict()
    model = m["model"]
    thr = (m.get("thresholds") or {}).get("ok_psnr_db")
    parts = [f'<h2 id="bundle">Export: {H.esc(model["name"])}</h2>']
    params = f"{model['params']:,}" if model.get("params") is not None else "–"
    macs = f"{model['macs']:,}" if model.get("macs") is not None else "–"
    parts.append(H.kv([("bundle", bundle.root), ("model", f"{model['name']} ({model.get('source') or '?'})"),
                       ("parameters / MACs", f"{params} / {macs}"),
                       ("input", f"{(m.get('input') or {}).get('kind')} {(m.get('input') or {}).get('shape')}"),
                       ("reference", f"{(m.get('reference') or {}).get('source')} "
                                     f"({(m.get('reference') or {}).get('producer')}), {(m.get('inputs') or {}).get('count')} stored inputs"),
                       ("output range", f"{_range_of(m)} ({(m.get('output') or {}).get('range_source') or '?'})"),
                       ("threshold", f"ok when PSNR ≥ {thr:g} dB vs the float reference, else ▲ degraded" if thr is not None else None),
                       ("created", m.get("created"))]))
    rows, points = [], []
    for a in m["artifacts"]:
        fid, lat = a.get("fidelity") or {}, a.get("host_latency_ms") or {}
        psnr = "exact" if fid.get("exact") else H.num(fid.get("psnr_db"), ".2f")
        rows.append([H.esc(a["format"]), H.status_cell(a["status"], STATUS_MARKS.get(a["status"], a["status"])),
                     H.num(a.get("bytes") and a["bytes"] / 1e6, ".3f"), H.num(a.get("size_ratio"), ".3f"), psnr,
                     H.num(fid.get("max_abs_err"), ".2e"), H.num(lat.get("median"), ".3f"),
                     H.num(lat.get("ratio_vs_fastest_float"), ".2f"),
                     f'<td class="wrap">{H.esc(" ".join(x for x in (a.get("tool"), a.get("tool_version")) if x) or "–")}</td>',
                     f'<td class="reason">{H.esc(a.get("reason") or "")}</td>'])
        if a["status"] != "failed" and lat.get("median"):
            points.append({"label": a["format"], "group": "host", "latency_ms": lat["median"], "bytes": a.get("bytes"),
                           "psnr_db": float("inf") if fid.get("exact") else fid.get("psnr_db")})
    parts.append("<h3>Fidelity vs float on this host</h3>")
    parts.append(H.table(["format", "status", "MB", "size / fp32", "PSNR dB", "max abs err", "host p50 ms",
                          "vs fastest float", "tool", "reason"], rows))
    parts.append(_plot(plots.tradeoff(points, f"{model['name']}: quality vs host latency vs size"),
                       "quality vs latency vs size"))
    lo_hi = _range_of(m)
    if outputs is None:
        outputs = host_outputs(bundle)
    try:
        reference = bundle.reference()
    except (OSError, ValueError) as exc:
        reference = None
        parts.append(f'<p class="muted">No float reference to draw ({H.esc(exc)}).</p>')
    if reference is not None:
        parts.append("<h3>Samples: float vs each artifact (host)</h3>")
        parts.append(sample_grid_html(reference, outputs, lo_hi, _image_inputs(bundle)))
    tools = m.get("tools") or {}
    host = m.get("host") or {}
    parts.append("<h3>Environment</h3>")
    parts.append(H.kv([("host", f"{host.get('arch')} · {host.get('cpu')} · {host.get('cores')} cores · {host.get('os')}"),
                       *((k, v) for k, v in tools.items() if v)]))
    parts.append("<h3>Reproduce</h3>")
    cfg = m.get("export_config") or {}
    cmds = [f"edgegan export --from-bundle {shlex.quote(str(bundle.root))} --out NEW_BUNDLE"]
    if cfg.get("model"):
        fmts = ",".join(a["format"] for a in m["artifacts"])
        cmds.append(f"edgegan export {shlex.quote(str(cfg['model']))} --formats {fmts} --out {shlex.quote(str(bundle.root))} --force")
    parts.append(_cmd_block(cmds) + '<p class="muted">The first replays every recorded setting '
                 "(seeds, counts, converter options); the second is the short form with defaults.</p>")
    return "\n".join(parts)


def _plot(png: Optional[bytes], alt: str) -> str:
    if png is None:
        return "" if plots.available() else f'<p class="muted">({H.esc(plots.NO_MATPLOTLIB)})</p>'
    return H.img(H.bytes_data_uri(png), alt)


# ---------------------------------------------------------------------------- profile
def _device_name(doc: dict) -> str:
    dev = doc.get("device") or {}
    return f"{doc.get('target')} ({dev.get('arch', '?')}{', emulated' if dev.get('emulator') else ''})"


def _load_bundle(doc: dict):
    from ..bundle import Bundle
    from ..errors import EdgeganError

    path = (doc.get("bundle") or {}).get("path")
    if not path:
        return None
    try:
        return Bundle.load(path)
    except EdgeganError:
        return None


def profile_table(doc: dict) -> str:
    from .profile_cells import memory_cell, power_cell, quality_cells, summary_metrics

    metrics = summary_metrics()
    thr = ok_psnr_db_of(doc)
    rows = []
    for r in doc["results"]:
        lat = r.get("latency_ms") or {}
        ok = r.get("status") in MEASURED_STATUSES
        status = shown_status(r, thr)
        psnr, cells, host = quality_cells(r) if ok else ("–", ["–"] * len(metrics), "–")
        rows.append([H.esc(r["format"]), H.status_cell(status, STATUS_MARKS.get(status, status)),
                     H.esc(r.get("runtime") or "–"), H.num(lat.get("p50")), H.num(lat.get("p90")), H.num(lat.get("p99")),
                     H.num(r.get("model_load_ms"), ".1f"), H.esc(memory_cell(r) if ok else "–"),
                     H.esc(power_cell(r) if ok else "–"), H.esc(psnr), *(H.esc(c) for c in cells), H.esc(host),
                     f'<td class="reason">{H.esc(shown_reason(r, thr))}</td>'])
    headers = ["format", "status", "runtime", "p50 ms", "p90 ms", "p99 ms", "load ms", "peak memory", "power",
               "PSNR dB", *(m.short or m.name for m in metrics), "vs host", "reason"]
    note = (f'<p class="muted">Status: ✔ ok when PSNR ≥ {thr:g} dB vs the float reference (the bundle\'s threshold), '
            "▲ degraded below it. Latency: runtime call only, batch 1.</p>" if thr is not None else "")
    return H.table(headers, rows) + note


def _load_per_op(path: Path) -> dict:
    """per_op.json as a dict (edgegan.devices.per_op.PerOpProfile's file; read here without
    importing devices, which imports reports). Every value is escaped when shown."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ResultsError(f"'{path}' is not a valid per-op profile ({exc}); rerun profile --per-op") from None
    if not isinstance(data, dict) or not isinstance(data.get("ops"), list):
        raise ResultsError(f"'{path}' is not a valid per-op profile (no ops list); rerun profile --per-op")
    return data


def _op_row(rank: str, o: dict, where: str) -> list[str]:
    share = o.get("share")
    return [rank, H.esc(o.get("op")), H.esc(where), H.esc(o.get("count")), H.num(o.get("total_ms"), ".4f"),
            H.num(share * 100 if isinstance(share, (int, float)) else None, ".0f")]


def per_op_html(folder: Path, doc: dict, top: int = 12) -> str:
    parts = []
    for r in doc["results"]:
        info = r.get("per_op")
        if not info:
            continue
        if info.get("reason"):
            parts.append(f"<p><b>{H.esc(r['format'])}</b> per-op: none ({H.esc(info['reason'])})</p>")
            continue
        try:
            prof = _load_per_op(Path(folder) / str(info["file"]))
        except ResultsError as exc:
            parts.append(f"<p><b>{H.esc(r['format'])}</b> per-op: unreadable ({H.esc(exc)})</p>")
            continue
        ops = [o for o in prof["ops"] if isinstance(o, dict)]
        inside = [o for o in prof.get("delegated_ops") or [] if isinstance(o, dict)]
        rows = [_op_row(str(i + 1), o, o.get("kind", "")) for i, o in enumerate(ops[:top])]
        rows += [_op_row("·", o, f"in delegate ({o['backend']})" if o.get("backend") else "in delegate") for o in inside[:5]]
        program = prof.get("program") or {}
        calls = {k: sum(v for v in (program.get(k) or {}).values() if isinstance(v, int))
                 for k in ("delegate_calls", "kernel_calls")}
        parts.append(f"<h3>{H.esc(r['format'])} per op ({H.num(prof.get('execute_ms'))} ms per inference, "
                     f"{calls['delegate_calls']} delegate calls, {calls['kernel_calls']} portable kernel calls, "
                     f"captured on {H.esc(prof.get('captured_on'))})</h3>")
        parts.append(H.table(["#", "op", "where", "count", "ms / inference", "share %"], rows, left=3))
        if len(ops) > top:
            parts.append(f'<p class="muted">... {len(ops) - top} more ops in {H.esc(info["file"])}</p>')
    return "\n".join(parts)


def profile_command(doc: dict, folder: Path) -> str:
    st = doc.get("settings") or {}
    fmts = ",".join(r["format"] for r in doc["results"])
    cmd = ["edgegan", "profile", str((doc.get("bundle") or {}).get("path", "BUNDLE")), "--target", str(doc.get("target")),
           "--formats", fmts]
    for key, flag in (("runs", "--runs"), ("warmup", "--warmup"), ("threads", "--threads")):
        if st.get(key) is not None:
            cmd += [flag, str(st[key])]
    if st.get("memory") is False:
        cmd.append("--no-memory")
    if st.get("power_probe") not in (None, "auto"):
        cmd += ["--power", str(st["power_probe"])]
    return shlex.join(cmd + ["--out", str(folder), "--force"])


def profiles_section(profiles: list) -> str:
    """One or several profile runs (devices side by side)."""
    first = profiles[0][1]
    title = first["bundle"].get("model", "?")
    parts = [f'<h2 id="profile">Profile: {H.esc(title)} on {H.esc(", ".join(_device_name(d) for _, d in profiles))}</h2>']
    points, series = [], []
    multi = len(profiles) > 1
    for folder, doc in profiles:
        if not doc.get("complete"):
            parts.append('<p class="incomplete">Incomplete run: the device became unreachable; rows are the formats '
                         "that finished (rerun with --resume).</p>")
        parts.append(f"<h3>{H.esc(_device_name(doc))}</h3>")
        parts.append(profile_table(doc))
        for r in doc["results"]:
            if r.get("status") not in MEASURED_STATUSES:
                continue
            q = r.get("quality") or {}
            lat = r.get("latency_ms") or {}
            points.append({"label": r["format"], "group": doc.get("target"), "latency_ms": lat.get("p50"),
                           "bytes": (r.get("artifact") or {}).get("bytes"),
                           "psnr_db": float("inf") if q.get("exact") else q.get("psnr_db")})
            series.append({"label": r["format"] + (f" @ {doc.get('target')}" if multi else ""), "latency_ms": lat})
    parts.append("<h3>Quality vs latency vs size</h3>")
    parts.append(_plot(plots.tradeoff(points, f"{title}: PSNR vs p50 on the device" + ("s" if multi else "")),
                       "quality vs latency vs size"))
    parts.append("<h3>Latency distribution</h3>")
    parts.append(_plot(plots.latency_cdf(series, "CDF through the recorded quantiles (min, p50, p90, p95, p99, max)"),
                       "latency distribution") + '<p class="muted">Each line joins the run\'s recorded quantiles; '
                 "markers: ● p50, ■ p90, ▲ p99.</p>")
    if multi:
        parts.append("<h3>Device vs device (p50 ms; ratio to the first device)</h3>")
        fmts = list(dict.fromkeys(r["format"] for _, d in profiles for r in d["results"]))
        base = {r["format"]: (r.get("latency_ms") or {}).get("p50") for r in profiles[0][1]["results"]}
        rows = []
        for f in fmts:
            cells = [H.esc(f)]
            for _, d in profiles:
                p50 = next(((r.get("latency_ms") or {}).get("p50") for r in d["results"] if r["format"] == f), None)
                ratio = f" ({p50 / base[f]:.2f}×)" if p50 and base.get(f) else ""
                cells.append(H.num(p50) + ratio)
            rows.append(cells)
        parts.append(H.table(["format", *(_device_name(d) for _, d in profiles)], rows))
    for folder, doc in profiles:
        bundle = _load_bundle(doc)
        outputs = {}
        for r in doc["results"]:
            p = Path(folder) / r["format"] / "samples.npy"
            if r.get("status") in MEASURED_STATUSES and p.is_file():
                try:
                    from ..util.npy import load_npy

                    outputs[r["format"]] = load_npy(p, "pulled samples", ResultsError)
                except ResultsError:
                    continue
        parts.append(f"<h3>Samples on {H.esc(_device_name(doc))}: float vs device output</h3>")
        if bundle is None:
            parts.append('<p class="muted">The bundle this run profiled is not at its recorded path; no float '
                         "reference to draw against.</p>")
            continue
        parts.append(sample_grid_html(bundle.reference(), outputs, _range_of(bundle.manifest.to_dict()),
                                      _image_inputs(bundle)))
    per_op = "".join(per_op_html(f, d) for f, d in profiles)
    if per_op:
        parts.append("<h3>Per-op tables</h3>" + per_op)
    parts.append("<h3>Environment</h3>")
    for folder, doc in profiles:
        dev = doc.get("device") or {}
        st = doc.get("settings") or {}
        parts.append(H.kv([("target", _device_name(doc)),
                           ("device", f"{dev.get('arch')} · {dev.get('cpu')} · {dev.get('cores')} cores · {dev.get('os')} · "
                                      f"python {dev.get('python')}" + (f" · emulated ({dev['emulator']})" if dev.get("emulator") else "")),
                           ("runtimes", ", ".join(f"{k} {v}" for k, v in (dev.get("runtimes") or {}).items())),
                           ("settings", f"batch 1, {st.get('threads')} threads, {st.get('warmup')} warmup + "
                                        f"{st.get('runs')} timed runs"),
                           ("edgegan", doc.get("edgegan")), ("created", doc.get("created")), ("results", folder)]))
    parts.append("<h3>Reproduce</h3>" + _cmd_block([profile_command(d, f) for f, d in profiles]))
    return "\n".join(parts)


# ---------------------------------------------------------------------------- compare
def compare_section(folder: Path, doc: dict, arrays: Optional[dict]) -> str:
    from ..metrics.base import METRICS

    inputs = doc.get("inputs") or {}
    feats = doc.get("features") or {}
    parts = [f'<h2 id="compare">Compare: B = {H.esc((inputs.get("B") or {}).get("source"))} vs '
             f'A = {H.esc((inputs.get("A") or {}).get("source"))}</h2>']
    parts.append(H.kv([(name, f"{d.get('source')} · n={d.get('count')} · shape {d.get('shape')}") for name, d in inputs.items()]
                      + [("features", f"{feats.get('name')} ({feats.get('dim')}-d)"), ("k", doc.get("k")),
                         ("note", feats.get("note"))]))
    dist = doc.get("distribution") or {}
    metric_cols = [c for name in (doc.get("metrics") or {}) if name in METRICS for c in METRICS.get(name).columns]
    rows = [[H.esc(c.label), *(H.esc(c.format(dist[k].get(c.key))) for k in dist)] for c in metric_cols]
    parts.append("<h3>Distribution metrics</h3>" + H.table(["metric", *(k.replace("_", " ") for k in dist)], rows))
    pr_keys = [("lsh_precision", "LSH P"), ("lsh_recall", "LSH R"), ("knn_precision", "kNN P"), ("knn_recall", "kNN R"),
               ("lsh_knn_precision", "LSH-kNN P"), ("lsh_knn_recall", "LSH-kNN R"), ("density", "density"),
               ("coverage", "coverage")]
    pr = {k.replace("_", " "): {label: v.get(key) for key, label in pr_keys} for k, v in dist.items()}
    parts.append(_plot(plots.bars(pr, "precision / recall / density / coverage (1 = same distribution)", "score"),
                       "precision and recall"))
    fd = {k.replace("_", " "): {"Frechet distance": v.get("frechet_distance")} for k, v in dist.items()}
    if any(g["Frechet distance"] is not None for g in fd.values()):
        parts.append(_plot(plots.bars(fd, f"Frechet distance in {feats.get('name')} features (0 = same)", "FD"),
                           "Frechet distance"))
    pm = doc.get("paired")
    if pm:
        parts.append("<h3>Paired (same inputs): B vs A</h3>")
        parts.append(H.table(["PSNR dB (all)", "PSNR worst", "PSNR median", "SSIM", "max |err|", "mean |err|"],
                             [[H.num(pm.get(k), f) for k, f in (("psnr_db", ".2f"), ("psnr_db_worst", ".2f"),
                                                                ("psnr_db_median", ".2f"), ("ssim", ".4f"),
                                                                ("max_abs_err", ".2e"), ("mean_abs_err", ".2e"))]], left=0))
    parts.append("<h3>Samples</h3>")
    if arrays is not None and H.is_image_batch(arrays.get("a")):
        a, b = arrays["a"], arrays["b"]
        if arrays.get("range") is not None:  # the model's declared output range (bundle / profile sources)
            lo, hi = arrays["range"]
        elif float(np.min(a)) >= 0.0:
            lo, hi = 0.0, (1.0 if float(np.max(a)) <= 1.0 else 255.0)
        else:
            lo, hi = -1.0, 1.0
        if arrays.get("ranking") is not None and a.shape == b.shape:
            parts.append(f'<p class="muted">Drawn with the output range [{lo:g}, {hi:g}].</p>'
                         + sample_grid_html(a, {"B": b}, (lo, hi), float_label="A"))
        else:
            n = min(GRID_COLUMNS * 2, len(a), len(b))
            width = H.display_px(a.shape[2], a.shape[3])
            parts.append('<p class="muted">Unpaired: the first samples of each set.</p>' + H.labelled_grid(
                [f"#{i}" for i in range(n)], [("A", [H.sample_pixels(x, lo, hi) for x in a[:n]], None),
                                              ("B", [H.sample_pixels(x, lo, hi) for x in b[:n]], None)], width))
    elif doc.get("grid") and (Path(folder) / doc["grid"]).is_file():
        cols = ", ".join(doc.get("grid_columns") or [])
        parts.append(H.img(H.bytes_data_uri((Path(folder) / doc["grid"]).read_bytes()), "compare grid")
                     + f'<p class="muted">Rows: A, B, |A − B| (stretched to its own maximum). Columns: {H.esc(cols)}.</p>')
    else:
        parts.append('<p class="muted">No sample images (not image-shaped, or the grid is missing).</p>')
    parts.append("<h3>Reproduce</h3>" + _cmd_block([doc.get("command") or
                                                      shlex.join(["edgegan", "compare", str((inputs.get("A") or {}).get("source")),
                                                                  str((inputs.get("B") or {}).get("source")),
                                                                  "--out", str(folder)])]))
    return "\n".join(parts)


# ---------------------------------------------------------------------------- benchmark
def benchmark_section(rows: list, command: str) -> str:
    body = [[H.esc(r.format), H.esc(r.target), H.status_cell(r.status, STATUS_MARKS.get(r.status, r.status)),
             "exact" if r.exact else H.num(r.psnr_db, ".1f"), H.num(r.bytes and r.bytes / 1e6, ".3f"), H.num(r.p50_ms),
             H.num(r.vs_fastest_float, ".2f") + ("×" if r.vs_fastest_float else ""),
             f'<td class="reason">{H.esc(r.reason)}</td>'] for r in rows]
    return ('<h2 id="benchmark">Benchmark: format × target</h2>'
            + H.table(["format", "target", "status", "PSNR dB (device)", "size MB", "p50 ms", "vs fastest float", "reason"],
                      body, left=2)
            + '<p class="muted">vs fastest float: p50 over the fastest float artifact (onnx, tflite-fp32, '
              "executorch-fp32 ...) on the same target. Details per stage below.</p>"
            + (_cmd_block([command]) if command else ""))


# ---------------------------------------------------------------------------- page
def render(got: ReportInputs, title: Optional[str] = None) -> str:
    from .. import __version__

    sections = [benchmark_section(got.benchmark, got.benchmark_command)] if got.benchmark else []
    if got.sweeps:
        from .sweep_report import sweep_section

        sections += [sweep_section(s) for s in got.sweeps]
    sections += [bundle_section(b, o) for b, o in got.bundles]
    if got.profiles:
        sections.append(profiles_section(got.profiles))
    sections += [compare_section(f, d, a) for f, d, a in got.compares]
    if not sections:
        raise ResultsError("nothing to report; pass a bundle, profile results, compare output or a sweep folder")
    if title is None:
        names = [f"sweep {s['spec'].get('name')}" for s in got.sweeps] + [b.manifest.model.name for b, _ in got.bundles] + [d["bundle"].get("model") for _, d in got.profiles]
        title = f"edgegan report: {', '.join(dict.fromkeys(str(n) for n in names))}" if names else "edgegan compare report"
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return H.page(title, "\n".join(sections), f"edgegan {__version__} · generated {now} · self-contained, works offline")


def write_html(got: ReportInputs, out: str | Path, title: Optional[str] = None) -> Path:
    from ..util.files import atomic_write

    out = Path(out)
    text = render(got, title)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, text)
    except OSError as exc:
        raise OutputError(f"cannot write '{out}' ({exc.strerror}); pass a writable --out") from None
    return out


def write_html_report(paths: list, out: str | Path, title: Optional[str] = None) -> Path:
    """report.html for bundle / profile / compare / sweep folders (any mix)."""
    return write_html(read_paths(list(paths)), out, title)
