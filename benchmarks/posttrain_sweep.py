"""Post-training compression sweep: quality vs size (and speed) of `dcgan-digits`, run as an
`edgegan sweep` spec (one export + profile + compare chain per setting).

    .venv/bin/python benchmarks/posttrain_sweep.py [--samples 2000] [--out build/posttrain_sweep] [--sequential]
    .venv/bin/python benchmarks/posttrain_sweep.py --quick --model dcgan-tiny --sequential   # smoke run

Settings: k-bit weights (k = 8, 6, 5, 4, 3, 2; per-channel symmetric, with and without
per-layer 99th-percentile clipping, plus per-tensor), global magnitude sparsity 0..90 %
(with and without BatchNorm re-calibration), sparsity + re-calibration + 4-bit combinations,
and structured channel pruning 0..75 % (L1 and norm-scale ranking; norm-scale also with
re-calibration). Re-calibration re-estimates BatchNorm statistics on 1024 latents: no data,
no gradients.
For each: packed size (k bits per weight), the real exported ONNX file size (and gzip of it,
and the ORT static-int8 file it deploys as), PSNR vs the float model on the same latents,
LSH and kNN precision/recall of the samples' digits-CNN features against real digits and
against the float model's own samples (other latents), and an 8x8 sample grid (the spec's
`quality`, computed in torch by each export job). Every artifact is profiled on `local` (1
thread, batch 1, rounds x runs timed runs); the float and channel-pruned models' onnx p50 is
reported with its ratio vs the unpruned float model (weight-only settings keep the float graph).

The spec is `posttrain_spec()` (benchmarks/suites/posttrain_sweep.json); the table and plot come
from the sweep's results table (edgegan.sweep.posttrain), so
`edgegan sweep benchmarks/suites/posttrain_sweep.json --csv F --plot F` writes the same files.
Writes docs/posttrain_sweep.csv and docs/posttrain_tradeoff.png (override with --csv/--plot);
the sweep folder (resumable), grids, the timed ONNX files and a summary JSON go to --out.
Default: a local Ray (--num-cpus); --sequential runs the jobs one by one without Ray.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

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


# ---------------------------------------------------------------------------- the spec

def posttrain_spec(model: str, quick: bool, runs: int = 540, samples: int = 2000, warmup: int = 30,
                   quality: bool = True) -> dict:
    """The sweep spec (a dict for edgegan.sweep.SweepSpec.from_dict): one pipeline per setting,
    labelled with its series / bits / clip / sparsity / channel ratio / criterion."""
    from edgegan.api.stages import _method_of

    pipelines = []
    for s in settings(quick):
        steps = [{"method": _method_of(cfg), "config": cfg.to_dict()} for cfg in s.pipeline]
        pipelines.append({"name": s.name, "steps": steps,
                          "labels": {"series": s.series, "bits": s.bits, "clip": s.clip, "sparsity": s.sparsity,
                                     "channel_ratio": s.channel_ratio, "criterion": s.criterion}})
    doc = {"name": "posttrain-sweep" + ("-quick" if quick else ""), "models": [{"name": model}],
           "pipelines": pipelines, "formats": ["onnx", "ort-int8"], "targets": [{"url": "local"}],
           "runs": {"runs": runs, "warmup": warmup, "threads": 1},
           "export": {"n_inputs": 16, "input_seed": 3003, "calibration": 32, "calibration_seed": 3003},
           "metrics": ["psnr_db"]}
    if quality:
        doc["quality"] = {"samples": samples, "seed": 1001, "reference_seed": 2002, "extractor": "digits",
                          "real": "digits", "metrics": ["lsh", "knn"], "grid": 64}
    return doc


# ---------------------------------------------------------------------------- main

def run(args: argparse.Namespace) -> dict:
    from edgegan.sweep import RayOptions, SweepSpec, run_sweep
    from edgegan.sweep.posttrain import posttrain_rows

    t_start = time.perf_counter()
    out_dir = Path(args.out)
    spec = SweepSpec.from_dict(posttrain_spec(args.model, args.quick, args.latency_rounds * args.latency_runs,
                                              args.samples))

    def progress(job, res) -> None:
        log.info("%-6s %-7s %-28s %6.1fs%s", res["status"], job.kind, job.pipeline, res.get("seconds") or 0,
                 "" if res["status"] == "ok" else f"  {res.get('reason')}")

    result = run_sweep(spec, out_dir / "sweep", sequential=args.sequential, progress=progress,
                       ray_options=RayOptions(num_cpus=args.num_cpus))
    # the grids and the timed graphs beside the table, named by setting (as the CSV refers to them)
    rows = posttrain_rows(spec, result.rows)
    onnx_rows = {r["pipeline"]: r for r in result.rows if r["format"] == "onnx" and r.get("export_key")}
    for r in rows:
        if r.get("grid"):
            dst = out_dir / "grids" / f"{r['setting']}.png"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(result.out / r["grid"], dst)
            r["grid"] = str(dst.relative_to(out_dir))
        src = result.out / "jobs" / (onnx_rows.get(r["setting"]) or {}).get("export_key", "-") / "bundle"
        if (args.keep_onnx or r.get("onnx_latency_ms") is not None) and src.is_dir():
            from edgegan.bundle import Bundle

            b = Bundle.load(src)
            dst = out_dir / "onnx" / f"{r['setting']}.onnx"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(b.artifact_path(b.artifact("onnx")), dst)
    from edgegan.reports.posttrain_plot import plot_posttrain
    from edgegan.sweep.posttrain import csv_text

    csv_path, plot_path = Path(args.csv), Path(args.plot)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    csv_path.write_text(csv_text(rows), newline="")
    plot_posttrain(rows, plot_path, args.model)
    summary = {
        "model": args.model, "samples": args.samples, "seconds": round(time.perf_counter() - t_start, 1),
        "executor": "sequential" if args.sequential else f"ray ({args.num_cpus} CPUs)",
        "jobs_run": result.ran, "jobs_skipped": result.skipped, "failed_rows": len(result.failed_rows),
        "torch_threads": 1, "ort_threads": 1, "latency": {"batch": 1, "runs": spec.runs.runs, "warmup": spec.runs.warmup},
        "sweep": str(result.out), "csv": str(csv_path), "plot": str(plot_path), "rows": rows,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="dcgan-digits")
    p.add_argument("--samples", type=int, default=2000, help="generated samples per setting (default 2000)")
    p.add_argument("--out", default=str(ROOT / "build" / "posttrain_sweep"),
                   help="the sweep folder (resumable), grids, ONNX files, summary.json")
    p.add_argument("--csv", default=str(ROOT / "docs" / "posttrain_sweep.csv"))
    p.add_argument("--plot", default=str(ROOT / "docs" / "posttrain_tradeoff.png"))
    p.add_argument("--latency-rounds", type=int, default=9, help="timed runs per artifact = rounds x runs")
    p.add_argument("--latency-runs", type=int, default=60)
    p.add_argument("--quick", action="store_true", help="a few settings only (smoke test)")
    p.add_argument("--keep-onnx", action="store_true", help="copy every setting's ONNX file to --out/onnx")
    p.add_argument("--sequential", action="store_true", help="no Ray: one job at a time in this process")
    p.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray (default 2)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    summary = run(args)
    print(f"wrote {summary['csv']} and {summary['plot']} in {summary['seconds']} s "
          f"({summary['jobs_run']} jobs run, {summary['jobs_skipped']} skipped, {summary['failed_rows']} failed rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
