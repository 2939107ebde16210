"""`edgegan compare A B`: sample-quality and fidelity of B (e.g. device output) against A
(e.g. float model), optionally both against real data; table + compare.json + PNG grid."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A", help="reference samples: .npy, .npz, bundle folder or folder with samples.npy")
    p.add_argument("b", metavar="B", help="samples to judge (same kinds as A)")
    p.add_argument("--reference", metavar="REAL", default=None,
                   help="real samples to score A and B against (same kinds, or 'digits' for scikit-learn digits)")
    p.add_argument("--features", default="auto",
                   help="feature extractor: auto, digits, pixels, randconv, identity, or a .onnx/.pt file "
                        "(auto: identity for 2-D arrays, digits for 1-channel images, else randconv)")
    p.add_argument("--paired", action=argparse.BooleanOptionalAction, default=None,
                   help="force paired metrics by index (default: only when both sides carry equal latents)")
    p.add_argument("--k", type=int, default=3, help="k for kNN and LSH+kNN precision/recall (default 3)")
    p.add_argument("--k-dc", type=int, default=5, help="k for density/coverage (default 5)")
    p.add_argument("--lsh-tables", type=int, default=None, help="LSH tables L (default: from n)")
    p.add_argument("--lsh-projections", type=int, default=None, help="projections per table K (default: from n)")
    p.add_argument("--lsh-width", type=float, default=None, help="bucket width w (default: calibrated)")
    p.add_argument("--seed", type=int, default=0, help="LSH seed")
    p.add_argument("--out", type=Path, default=Path("compare"), help="folder for compare.json and the grid (default ./compare)")
    p.add_argument("--json", action="store_true", help="print compare.json to stdout instead of the table")


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return "inf" if v == float("inf") else str(v)
        return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


ROWS = [
    ("lsh_precision", "LSH precision (LSH-only)"), ("lsh_recall", "LSH recall (LSH-only)"),
    ("lsh_knn_precision", "LSH+kNN precision"), ("lsh_knn_recall", "LSH+kNN recall"),
    ("knn_precision", "kNN precision (exact)"), ("knn_recall", "kNN recall (exact)"),
    ("density", "density"), ("coverage", "coverage"),
]


def _print_table(result: dict, paths: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    inp = result["inputs"]
    dist = result["distribution"]
    table = Table(title=f"edgegan compare — features: {result['features']['name']} ({result['features']['dim']}-d)")
    table.add_column("metric")
    for col in dist:
        table.add_column(col.replace("_", " "), justify="right")
    for key, label in ROWS:
        table.add_row(label, *[_fmt(dist[c][key]) for c in dist])
    console.print(table)
    for name, d in inp.items():
        console.print(f"  {name}: {d['source']}  n={d['count']}  shape={d['shape']}  latents={'yes' if d['has_latents'] else 'no'}")
    counts = [d["count"] for d in inp.values()]
    if max(counts) > 2 * min(counts):
        console.print(f"  [yellow]note:[/] set sizes differ ({min(counts)} vs {max(counts)}); LSH bucket statistics "
                      "and recall depend on set size — compare sets of equal size (see docs/metrics.md)")
    pm = result["paired"]
    if pm:
        t = Table(title="paired (same latents): B vs A")
        for col in ("PSNR dB (all)", "PSNR worst", "PSNR median", "SSIM", "max |err|", "mean |err|"):
            t.add_column(col, justify="right")
        t.add_row(*[_fmt(pm[k]) for k in ("psnr_db", "psnr_db_worst", "psnr_db_median", "ssim", "max_abs_err", "mean_abs_err")])
        console.print(t)
        worst = ", ".join(f"#{w['index']} ({_fmt(w['psnr_db'])} dB)" for w in pm["worst"][:5])
        console.print(f"  most affected samples: {worst}; median sample #{pm['median_index']}")
    else:
        console.print("  paired metrics: skipped (latents missing on a side; pass --paired if the samples are index-aligned)")
    console.print(f"  wrote {paths['json']}" + (f" and {paths['grid']}" if "grid" in paths else ""))


def run(args: argparse.Namespace) -> int:
    from ..metrics.compare import compare_samples, to_json, write_outputs
    from ..metrics.lsh import LSHConfig

    lsh = LSHConfig(tables=args.lsh_tables, projections=args.lsh_projections,
                    bucket_width=args.lsh_width, seed=args.seed, k=args.k)
    result = compare_samples(args.a, args.b, reference=args.reference, features=args.features,
                             paired=args.paired, lsh=lsh, k=args.k, k_dc=args.k_dc)
    paths = write_outputs(result, args.out)
    if args.json:
        print(json.dumps(json.loads(to_json(result)), indent=2))
    else:
        _print_table(result, paths)
    return 0
