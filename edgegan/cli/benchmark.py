"""`edgegan benchmark MODEL --targets local,ssh://...`: export -> profile on each target ->
compare -> report.html, then one table of format x target."""
from __future__ import annotations

import argparse
import sys

from ..util.text import split_csv
from .device import add_target_arguments, target_options
from .options import flag_errors

BENCHMARK_FLAGS = {"model": "MODEL", "targets": "--targets", "formats": "--formats", "runs": "--runs",
                   "warmup": "--warmup", "threads": "--threads", "out": "--out"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo name (see `edgegan models`), anything `edgegan export` takes, or a bundle folder")
    p.add_argument("--targets", type=split_csv, default=None, help="comma-separated targets (default: local)")
    p.add_argument("--formats", type=split_csv, default=None, help="comma-separated formats (default: all)")
    p.add_argument("--runs", type=int, help="timed runs per format and target (default 50)")
    p.add_argument("--warmup", type=int, help="untimed warmup runs (default 10)")
    p.add_argument("--threads", type=int, help="runtime threads (default 2)")
    p.add_argument("--inputs", type=int, dest="n_inputs", help="stored inputs of a new export (default 64)")
    p.add_argument("--no-memory", action="store_true", default=None, help="skip the peak-memory child processes")
    p.add_argument("--out", help="benchmark folder (default benchmarks-out/<model>)")
    p.add_argument("--force", action="store_true", default=None, help="re-export even when OUT/bundle fits")
    p.add_argument("--json", action="store_true", help="print the final rows as JSON instead of the table")
    add_target_arguments(p)


def run(args: argparse.Namespace) -> int:
    import json

    from ..benchmark import BenchmarkConfig, run_benchmark
    from ..devices.targets import require_target_packages
    from .render import given

    for t in args.targets or ["local"]:
        require_target_packages(t, args.ssh_config)
    kwargs = given(model=args.model, targets=args.targets, formats=args.formats, runs=args.runs, warmup=args.warmup,
                   threads=args.threads, out=args.out, force=args.force,
                   memory=None if args.no_memory is None else not args.no_memory)
    if args.n_inputs is not None:
        kwargs["export_options"] = {"n_inputs": args.n_inputs}
    with flag_errors(BENCHMARK_FLAGS):
        cfg = BenchmarkConfig(**kwargs)

    def say(stage: str, message: str) -> None:
        print(f"edgegan benchmark: {message}", file=sys.stderr, flush=True)

    from .third_party_output import hold_back_third_party_output

    with hold_back_third_party_output(getattr(args, "verbose", False)):
        report, rows = run_benchmark(cfg, progress=say, target_options=target_options(args))
    if args.json:
        print(json.dumps({"report": str(report), "rows": [r.to_dict() for r in rows]}, indent=2))
    else:
        print_benchmark_table(rows, report)
    return 0 if all(r.status in ("ok", "degraded") for r in rows) else 1


def print_benchmark_table(rows, report, console=None) -> None:
    from rich.markup import escape

    from ..util.text import fmt_or_dash as f
    from .render import STATUS_MARK, fitted_table, print_dropped, table_console

    console = table_console(console)
    columns = [("format", "left", 0), ("target", "left", 0), ("status", "left", 0), ("PSNR dB", "right", 0),
               ("size MB", "right", 0), ("p50 ms", "right", 0), ("vs fastest float", "right", 0),
               ("reason", "left", 1)]
    body = [[escape(r.format), escape(r.target), STATUS_MARK.get(r.status, escape(r.status)),
             "exact" if r.exact else f(r.psnr_db, ".1f"), f(r.bytes and r.bytes / 1e6, ".3f"), f(r.p50_ms, ".3f"),
             f(r.vs_fastest_float, ".2f") + ("×" if r.vs_fastest_float else ""), escape(r.reason or "")] for r in rows]
    table, dropped = fitted_table("edgegan benchmark: format x target", columns, body, console.width)
    console.print(table)
    print_dropped(console, dropped)
    console.print(f"report: [bold]{escape(str(report))}[/]")
