"""Post-training compression sweep: quality vs size (and speed) of `dcgan-digits`.

    .venv/bin/python benchmarks/posttrain_sweep.py [--samples 2000] [--out build/posttrain_sweep]
    .venv/bin/python benchmarks/posttrain_sweep.py --quick --model dcgan-tiny   # smoke run

Settings: k-bit weights (k = 8, 6, 5, 4, 3, 2; per-channel symmetric, with and without
per-layer 99th-percentile clipping, plus per-tensor), global magnitude sparsity 0..90 %
(with and without BatchNorm re-calibration), sparsity + re-calibration + 4-bit combinations,
and structured channel pruning 0..75 % (L1 and norm-scale ranking; norm-scale also with
re-calibration). Re-calibration re-estimates BatchNorm statistics on 1024 latents: no data,
no gradients.
For each: packed size (k bits per weight), the real exported ONNX file size (and gzip of it,
and the ORT static-int8 file it deploys as, converted once per architecture), PSNR vs the float model on the same latents,
LSH and kNN precision/recall of the samples' digits-CNN features against real digits and
against the float model's own samples (other latents), and an 8x8 sample grid. Channel-pruned
models are also timed with onnxruntime (1 thread, batch 1, interleaved rounds, all in this
run) and reported as a latency ratio vs the unpruned float model.

Writes docs/posttrain_sweep.csv and docs/posttrain_tradeoff.png (override with --csv/--plot);
grids, ONNX files and a summary JSON go to --out. Torch and ORT run on one thread.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import gzip
import json
import logging
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

log = logging.getLogger("posttrain_sweep")

CLIP_PERCENTILE = 99.0
BITS = (8, 6, 5, 4, 3, 2)
SPARSITIES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
CHANNEL_RATIOS = (0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75)
COMBOS = ((4, 0.5), (4, 0.75))
RECAL_SAMPLES = 1024


@dataclasses.dataclass
class Setting:
    name: str
    series: str
    pipeline: list
    bits: int = 32
    clip: bool = False
    sparsity: float = 0.0
    channel_ratio: float = 0.0
    criterion: str = ""


def settings(quick: bool) -> list[Setting]:
    """Each setting's pipeline is a list of method configs (edgegan.compress picks the method
    by the config's type)."""
    from edgegan.compress import BNRecalibrateConfig, ChannelPruneConfig, ClipConfig, PruneConfig, QuantConfig

    clip = ClipConfig(percentile=CLIP_PERCENTILE)
    recal = BNRecalibrateConfig(samples=RECAL_SAMPLES)

    def quant(k: int, granularity: str = "per-channel") -> QuantConfig:
        return QuantConfig(bits=k, granularity=granularity)

    def prune(s: float) -> PruneConfig:
        return PruneConfig(sparsity=s, scope="global")

    def channels(r: float, criterion: str) -> ChannelPruneConfig:
        return ChannelPruneConfig(ratio=r, criterion=criterion)

    bits = (8, 4, 2) if quick else BITS
    sparsities = (0.0, 0.5, 0.9) if quick else SPARSITIES
    ratios = (0.0, 0.5, 0.75) if quick else CHANNEL_RATIOS
    out = [Setting("float", "float", []), Setting("clip99", "clip", [clip], clip=True)]
    for k in bits:
        out.append(Setting(f"q{k}", "quant", [quant(k)], bits=k))
        out.append(Setting(f"q{k}-clip99", "quant+clip", [clip, quant(k)], bits=k, clip=True))
        out.append(Setting(f"q{k}-per-tensor", "quant-per-tensor", [quant(k, "per-tensor")], bits=k))
    for s in sparsities:
        out.append(Setting(f"sp{round(100 * s)}", "prune", [prune(s)], sparsity=s))
        if s > 0:
            out.append(Setting(f"sp{round(100 * s)}-bnr", "prune+bnr", [prune(s), recal], sparsity=s))
    for k, s in COMBOS[:1] if quick else COMBOS:
        out.append(Setting(f"sp{round(100 * s)}-bnr-q{k}", "prune+bnr+quant", [prune(s), recal, quant(k)],
                           bits=k, sparsity=s))
    for criterion in ("l1", "norm-scale"):
        for r in ratios:
            out.append(Setting(f"cp{100 * r:g}-{criterion}", f"channel-prune-{criterion}", [channels(r, criterion)],
                               channel_ratio=r, criterion=criterion))
    for r in ratios[1:]:
        out.append(Setting(f"cp{100 * r:g}-norm-scale-bnr", "channel-prune-norm-scale+bnr",
                           [channels(r, "norm-scale"), recal], channel_ratio=r, criterion="norm-scale"))
    return out


# ---------------------------------------------------------------------------- measurements

def generate(model, latents: np.ndarray, batch: int = 250) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.concatenate([model.module(torch.from_numpy(latents[i : i + batch])).numpy()
                               for i in range(0, len(latents), batch)])


def quality_metrics(features: np.ndarray, references: dict[str, np.ndarray]) -> dict[str, float]:
    """LSH-only and exact-kNN precision/recall of ``features`` against each reference feature
    set — all from edgegan.metrics (registered metrics, default configs)."""
    from edgegan.metrics import compute_metric

    out = {}
    for ref_name, ref in references.items():
        for metric in ("lsh", "knn"):
            for key, value in compute_metric(metric, ref, features).items():
                out[f"{key}_vs_{ref_name}"] = round(float(value), 4)
    return out


def export_sizes(model, name: str, out_dir: Path, calibration_seed: int) -> dict:
    """Export with ``edgegan.export`` (ONNX validated against torch, plus ORT static int8);
    real file sizes of this setting's own ONNX, its gzip and its own int8 file. The ONNX is
    kept as ``onnx/<name>.onnx``."""
    import edgegan

    formats = ["onnx", "ort-int8"]
    with tempfile.TemporaryDirectory(prefix="posttrain-export-") as work:
        bundle = edgegan.export(model, out=Path(work) / "bundle", formats=formats, n_inputs=16, input_seed=calibration_seed,
                                calibration=32, calibration_seed=calibration_seed, threads=1, latency_rounds=1,
                                latency_runs=1)
        failed = [r for r in bundle.artifact_records() if r.status == "failed"]
        if failed:
            raise RuntimeError(f"{name}: export of {failed[0].format} failed: {failed[0].reason}")
        onnx_path = out_dir / "onnx" / f"{name}.onnx"
        onnx_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundle.artifact_path(bundle.artifact("onnx")), onnx_path)
        int8_bytes = bundle.artifact("ort-int8").bytes
    return {
        "onnx_path": onnx_path,
        "onnx_exporter": bundle.manifest.export["exporter"],
        "onnx_bytes": onnx_path.stat().st_size,
        "onnx_gzip_bytes": len(gzip.compress(onnx_path.read_bytes(), compresslevel=9, mtime=0)),
        "ort_int8_bytes": int8_bytes,
    }


def measure_latencies(paths: dict[str, Path], x: np.ndarray, rounds: int, runs: int, warmup: int = 30) -> dict[str, float]:
    """Median ms per inference (batch 1, 1 thread); models interleaved round by round and the
    order rotated, so load drift on a shared machine hits all of them alike."""
    from edgegan.export.onnx import onnx_session

    sessions = {n: onnx_session(p, threads=1) for n, p in paths.items()}
    feed = {"input": np.ascontiguousarray(x[:1])}
    for s in sessions.values():
        for _ in range(warmup):
            s.run(None, feed)
    times: dict[str, list[float]] = {n: [] for n in sessions}
    names = list(sessions)
    for r in range(rounds):
        for n in names[r % len(names):] + names[: r % len(names)]:
            s = sessions[n]
            for _ in range(runs):
                t0 = time.perf_counter()
                s.run(None, feed)
                times[n].append((time.perf_counter() - t0) * 1000)
    return {n: statistics.median(t) for n, t in times.items()}


# ---------------------------------------------------------------------------- plot (Pillow)

COLORS = {"lsh_precision": (31, 119, 180), "lsh_recall": (255, 127, 14),
          "knn_precision": (44, 160, 44), "knn_recall": (214, 39, 40)}
LABELS = {"lsh_precision": "LSH precision", "lsh_recall": "LSH recall",
          "knn_precision": "kNN precision", "knn_recall": "kNN recall"}


DASHES = {"solid": None, "dashed": (10, 6), "dotted": (3, 5)}


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
    xs_all = [x for x, _ in xticks]
    xmin, xmax = min(xs_all), max(xs_all)

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
        pts = [(px(x), py(y)) for x, y in zip(xs, ys) if y is not None and np.isfinite(y)]
        if pts:
            _line(draw, pts, color, style)


def _curves(rows: list[dict], x_key: str, ref: str, style: str, x_map=lambda x: x) -> list:
    rows = sorted(rows, key=lambda r: r[x_key])
    return [([x_map(r[x_key]) for r in rows], [r[f"{m}_vs_{ref}"] for r in rows], COLORS[m], style) for m in COLORS]


def plot(rows: list[dict], path: Path) -> None:
    """Two rows (vs real digits, vs float samples) x three panels (bits, sparsity, channels)."""
    from PIL import Image, ImageDraw, ImageFont

    fonts = (ImageFont.load_default(size=13), ImageFont.load_default(size=16), ImageFont.load_default(size=20))
    w, h = 1560, 940
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    series: dict[str, list[dict]] = {}
    for r in rows:
        series.setdefault(r["series"], []).append(r)
    float_rows, clip_rows = series["float"], series.get("clip", [])
    bit_x = {b: b for b in range(2, 9)} | {32: 9.5}
    no_prune = [r for r in series.get("prune", []) if r["sparsity"] == 0]
    no_channel = {c: [r for r in series.get(f"channel-prune-{c}", []) if r["channel_ratio"] == 0]
                  for c in ("l1", "norm-scale")}
    for row_idx, ref in enumerate(("real", "float")):
        top = 60 + row_idx * 430
        ref_label = "real digits" if ref == "real" else "float-model samples"
        bits = (_curves(series.get("quant", []) + float_rows, "bits", ref, "solid", bit_x.get)
                + _curves(series.get("quant+clip", []) + clip_rows, "bits", ref, "dashed", bit_x.get)
                + _curves(series.get("quant-per-tensor", []) + float_rows, "bits", ref, "dotted", bit_x.get))
        prune = (_curves(series.get("prune", []), "sparsity", ref, "solid")
                 + _curves(series.get("prune+bnr", []) + no_prune, "sparsity", ref, "dashed"))
        channels = (_curves(series.get("channel-prune-l1", []), "channel_ratio", ref, "solid")
                    + _curves(series.get("channel-prune-norm-scale", []), "channel_ratio", ref, "dashed")
                    + _curves(series.get("channel-prune-norm-scale+bnr", []) + no_channel["norm-scale"],
                              "channel_ratio", ref, "dotted"))
        panels = [
            (f"vs {ref_label}: k-bit weights", "weight bits k  (solid per-channel, dashed + clip p99, dotted per-tensor)",
             [(b, str(b)) for b in (2, 3, 4, 5, 6, 8)] + [(9.5, "fp32")], bits),
            (f"vs {ref_label}: global magnitude pruning", "sparsity %  (solid plain, dashed + BN re-calibration)",
             [(s, f"{round(100 * s)}") for s in SPARSITIES], prune),
            (f"vs {ref_label}: channel pruning", "channels removed %  (solid L1, dashed norm-scale, dotted + BN re-cal.)",
             [(r, f"{100 * r:g}") for r in CHANNEL_RATIOS], channels),
        ]
        for i, (title, xlabel, ticks, curves) in enumerate(panels):
            _panel(draw, (10 + i * 515, top, 10 + (i + 1) * 515, top + 420), fonts, title, xlabel, ticks, curves)
    draw.text((w / 2, 12), "dcgan-digits post-training compression: precision / recall of digits-CNN features",
              fill="black", font=fonts[2], anchor="ma")
    lx = 420
    for metric, color in COLORS.items():
        draw.line([(lx, 46), (lx + 30, 46)], fill=color, width=4)
        draw.text((lx + 36, 46), LABELS[metric], fill="black", font=fonts[1], anchor="lm")
        lx += 190
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


# ---------------------------------------------------------------------------- main

CSV_COLUMNS = [
    "setting", "series", "bits", "clip", "sparsity", "channel_ratio", "criterion", "params", "macs",
    "float_bytes", "packed_bytes", "int8_container_bytes", "onnx_bytes", "onnx_gzip_bytes", "ort_int8_bytes",
    "weight_sparsity", "psnr_vs_float_db",
    "lsh_precision_vs_real", "lsh_recall_vs_real", "knn_precision_vs_real", "knn_recall_vs_real",
    "lsh_precision_vs_float", "lsh_recall_vs_float", "knn_precision_vs_float", "knn_recall_vs_float",
    "onnx_latency_ms", "latency_ratio_vs_float", "onnx_exporter", "grid",
]


def run(args: argparse.Namespace) -> dict:
    import torch

    import edgegan
    from edgegan.compress import storage_stats
    from edgegan.datasets import digits_images
    from edgegan.metrics import get_extractor
    from edgegan.metrics.paired import psnr_overall
    from edgegan.models.stats import count_macs, parameter_count
    from edgegan.reports.grid import save_grid

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    out_dir = Path(args.out)
    base = edgegan.load_model(args.model)
    latents = base.sample_inputs(args.samples, 1001)        # every setting samples these
    ref_latents = base.sample_inputs(args.samples, 2002)    # the float reference set: other latents
    extractor = get_extractor("digits")
    references = {"real": extractor(digits_images(32)), "float": extractor(generate(base, ref_latents))}
    float_same = generate(base, latents)
    rows, onnx_paths = [], {}
    for s in settings(args.quick):
        t0 = time.perf_counter()
        model = edgegan.compress(base, *s.pipeline) if s.pipeline else base
        samples = generate(model, latents)
        row = {**{k: v for k, v in dataclasses.asdict(s).items() if k != "pipeline"}, "setting": s.name}
        row.update(storage_stats(model.module, model.compression))
        row["params"], row["macs"] = parameter_count(model.module), count_macs(model.module, latents[:1])
        row["psnr_vs_float_db"] = round(psnr_overall(samples, float_same), 2)
        row.update(quality_metrics(extractor(samples), references))
        sizes = export_sizes(model, s.name, out_dir, 3003)
        onnx_paths[s.name] = sizes.pop("onnx_path")
        row.update(sizes)
        row["grid"] = str(save_grid(samples[:64], out_dir / "grids" / f"{s.name}.png", nrow=8, scale=2).relative_to(out_dir))
        rows.append(row)
        log.info("%-24s %5.1fs  packed %8d B  onnx %8d B  P/R real lsh %.3f/%.3f knn %.3f/%.3f", s.name,
                 time.perf_counter() - t0, row["packed_bytes"], row["onnx_bytes"], row["lsh_precision_vs_real"],
                 row["lsh_recall_vs_real"], row["knn_precision_vs_real"], row["knn_recall_vs_real"])
    # every model whose graph differs from the float one is timed itself (each channel-pruned
    # model, whatever its ranking); weight-only settings keep the float graph and are not timed
    timed = ["float"] + [r["setting"] for r in rows if r["series"].startswith("channel-prune") and r["channel_ratio"] > 0]
    latency = measure_latencies({n: onnx_paths[n] for n in timed}, latents, args.latency_rounds, args.latency_runs)
    for r in rows:
        if r["setting"] == "float" or (r["series"].startswith("channel-prune") and r["channel_ratio"] == 0):
            timed_as = "float"
        elif r["series"].startswith("channel-prune"):
            timed_as = r["setting"]
        else:
            continue  # quantized / pruned weights: the same float graph as "float"
        r["onnx_latency_ms"] = round(latency[timed_as], 4)
        r["latency_ratio_vs_float"] = round(latency[timed_as] / latency["float"], 3)
    if not args.keep_onnx:  # 4 MB per setting; keep only the graphs that were timed
        for name, path in onnx_paths.items():
            if name not in timed:
                path.unlink(missing_ok=True)
    csv_path, plot_path = Path(args.csv), Path(args.plot)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k, "") for k in CSV_COLUMNS})
    plot(rows, plot_path)
    summary = {
        "model": args.model, "samples": args.samples, "seconds": round(time.perf_counter() - t_start, 1),
        "torch_threads": 1, "ort_threads": 1, "latency": {"batch": 1, "rounds": args.latency_rounds,
                                                          "runs_per_round": args.latency_runs, "median_ms": latency},
        "csv": str(csv_path), "plot": str(plot_path), "rows": rows,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="dcgan-digits")
    p.add_argument("--samples", type=int, default=2000, help="generated samples per setting (default 2000)")
    p.add_argument("--out", default=str(ROOT / "build" / "posttrain_sweep"), help="grids, ONNX files, summary.json")
    p.add_argument("--csv", default=str(ROOT / "docs" / "posttrain_sweep.csv"))
    p.add_argument("--plot", default=str(ROOT / "docs" / "posttrain_tradeoff.png"))
    p.add_argument("--latency-rounds", type=int, default=9)
    p.add_argument("--latency-runs", type=int, default=60)
    p.add_argument("--quick", action="store_true", help="a few settings only (smoke test)")
    p.add_argument("--keep-onnx", action="store_true", help="keep every setting's ONNX file in --out/onnx")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    summary = run(args)
    print(f"wrote {summary['csv']} and {summary['plot']} in {summary['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
