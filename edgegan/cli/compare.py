"""`edgegan compare A B`: sample-quality and fidelity of B (e.g. device output) against A
(e.g. float model), optionally both against real data; table + compare.json + PNG grid."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .options import add_config_arguments, config_from_args, flag_errors


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..metrics.compare import CompareConfig

    p.add_argument("a", metavar="A", help="reference samples: .npy, .npz, bundle folder or folder with samples.npy")
    p.add_argument("b", metavar="B", help="samples to judge (same kinds as A)")
    p.add_argument("--reference", metavar="REAL", default=None,
                   help="real samples to score A and B against (same kinds, or 'digits' for scikit-learn digits)")
    p.set_defaults(config_dests=add_config_arguments(p, CompareConfig))
    p.add_argument("--out", type=Path, default=None, help="folder for compare.json and the grid (default ./compare)")
    p.add_argument("--json", action="store_true", help="print compare.json to stdout instead of the table")


DEFAULT_OUT = Path("compare")


def _fmt(v) -> str:
    from ..metrics.base import Column

    return Column("", "").format(v)


def _print_table(result: dict, paths: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..metrics.base import METRICS

    console = Console()
    inp = result["inputs"]
    dist = result["distribution"]
    table = Table(title=f"edgegan compare — features: {result['features']['name']} ({result['features']['dim']}-d)")
    table.add_column("metric")
    for col in dist:
        table.add_column(col.replace("_", " "), justify="right")
    for column in [c for name in result["metrics"] for c in METRICS.get(name).columns]:
        table.add_row(column.label, *[column.format(dist[c].get(column.key)) for c in dist])
    console.print(table)
    _print_approx(console, dist)
    iscore = result.get("inception_score")
    if iscore:
        parts = ", ".join(f"{name} {_fmt(v['mean'])} ± {_fmt(v['std'])}" for name, v in iscore.items())
        console.print(f"  Inception Score ({next(iter(iscore.values()))['classifier']}, "
                      f"{next(iter(iscore.values()))['splits']} splits): {parts}")
    note = result["features"].get("note")
    if note:
        console.print(f"  [yellow]note[/]: {note}")
    for name, d in inp.items():
        console.print(f"  {name}: {d['source']}  n={d['count']}  shape={d['shape']}  latents={'yes' if d['has_latents'] else 'no'}")
    matched = result.get("size_matched") or {}
    if matched:
        _print_size_matched(console, result, matched)
    pm = result["paired"]
    if pm:
        t = Table(title="paired (same latents): B vs A")
        for col in ("PSNR dB (all)", "PSNR worst", "PSNR median", "SSIM", "max |err|", "mean |err|"):
            t.add_column(col, justify="right")
        t.add_row(*[_fmt(pm[k]) for k in ("psnr_db", "psnr_db_worst", "psnr_db_median", "ssim", "max_abs_err", "mean_abs_err")])
        console.print(t)
        worst = ", ".join(f"#{w['index']} ({_fmt(w['psnr_db'])} dB)" for w in pm["worst"][:5])
        console.print(f"  most affected samples: {worst}; median sample #{pm['median_index']}")
        if pm.get("data_range_source"):
            console.print(f"  PSNR peak {_fmt(pm['data_range'])}: {pm['data_range_source']}")
    else:
        console.print("  paired metrics: skipped (latents missing on a side; pass --paired if the samples are index-aligned)")
    console.print(f"  wrote {paths['json']}" + (f", {paths['grid']}" if "grid" in paths else "")
                  + (f" and {paths['html']}" if "html" in paths else ""))


def _print_approx(console, dist: dict) -> None:
    """How far LSH+kNN may be from exact kNN, and how that was estimated."""
    parts = []
    for col, scores in dist.items():
        rec = scores.get("lsh_knn_approx")
        if not rec or rec.get("approx_error") is None:
            continue
        parts.append(f"{col.replace('_', ' ')} ±{rec['approx_error']:.3f} (P ±{rec['precision_error']:.3f}, "
                     f"R ±{rec['recall_error']:.3f}; exact search on {rec['sample_fake']} + {rec['sample_real']} "
                     f"sampled points; {rec['stopped']})")
    if parts:
        console.print("  LSH+kNN approx_error (estimated 95% bound on |LSH+kNN - exact kNN|): " + "; ".join(parts))


def _print_size_matched(console, result: dict, matched: dict) -> None:
    """Why recall is low when one set is much smaller, with the scores at equal size beside it."""
    from rich.table import Table

    from ..metrics.base import METRICS

    sizes = "; ".join(f"{key.replace('_', ' ')}: {m['counts'][1]:,} vs {m['counts'][0]:,} samples"
                      for key, m in matched.items())
    console.print(f"  [yellow]set sizes differ[/] ({sizes}). Recall counts how much of the larger set the other "
                  "covers, so a small set scores low even when drawn from the same distribution (LSH-only recall "
                  "needs a sample in each real sample's bucket). Below: the same metrics with the larger set "
                  "randomly subsampled to the smaller one's size (seed "
                  f"{next(iter(matched.values()))['seed']}); to judge the full sets, draw as many samples as the "
                  "reference has (see docs/metrics.md).")
    t = Table(title="at equal set size (larger set subsampled)")
    t.add_column("metric")
    for key, m in matched.items():
        t.add_column(f"{key.replace('_', ' ')} (n={m['matched_count']:,})", justify="right")
    for column in [c for name in result["metrics"] for c in METRICS.get(name).columns]:
        t.add_row(column.label, *[column.format(m["scores"].get(column.key)) for m in matched.values()])
    console.print(t)


def run(args: argparse.Namespace) -> int:
    from ..metrics.base import METRICS
    from ..metrics.compare import CompareConfig, compare_samples, to_json
    from ..reports.compare_report import write_outputs

    config = config_from_args(CompareConfig, args, args.config_dests)
    flags = {f: "--" + d.replace("_", "-") for d, f in args.config_dests.items()}
    # a metric's own config field set through a shared compare flag (--lsh-tables -> LSHConfig.tables)
    flags.update({field: flags[option] for m in METRICS.values() for option, field in m.options.items()
                  if option in flags and field not in flags})
    with flag_errors(flags):
        result = compare_samples(args.a, args.b, reference=args.reference, config=config)
    paths = write_outputs(result, args.out or DEFAULT_OUT, command=getattr(args, "command_line", None))
    if args.json:
        print(json.dumps(json.loads(to_json(result)), indent=2))
    else:
        _print_table(result, paths)
    return 0
