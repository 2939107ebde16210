"""The three tables of docs/compression.md ("The sweep"), printed as markdown from the CSV that
`benchmarks/posttrain_sweep.py` writes, so the doc's numbers are the CSV's and nothing is typed.

    .venv/bin/python benchmarks/sweep_tables.py [docs/posttrain_sweep.csv]
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path


def kb(v: str) -> str:
    return f"{round(int(v) / 1000):,}"


def pr(r: dict, kind: str, against: str) -> str:
    return f"{float(r[f'{kind}_precision_vs_{against}']):.3f} / {float(r[f'{kind}_recall_vs_{against}']):.3f}"


def psnr(r: dict) -> str:
    return r["psnr_vs_float_db"]


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else Path(__file__).resolve().parents[1] / "docs" / "posttrain_sweep.csv")
    rows = {r["setting"]: r for r in csv.DictReader(path.open())}
    print("### k-bit weights (per-channel symmetric unless noted; clip = per-layer 99th percentile)\n")
    print("| setting | packed kB | ONNX kB | ONNX gzip kB | ORT int8 kB | PSNR vs float dB | LSH P / R vs real | "
          "kNN P / R vs real | LSH P / R vs float | kNN P / R vs float |")
    print("|---|---:|---:|---:|---:|---:|---|---|---|---|")
    for name in ["float", "clip99"] + [f"q{k}{s}" for k in (8, 6, 5, 4, 3, 2) for s in ("", "-clip99", "-per-tensor")
                                        if f"q{k}{s}" in rows and (k in (4, 3, 2) or s == "")]:
        r = rows[name]
        print(f"| {name} | {kb(r['packed_bytes'])} | {kb(r['onnx_bytes'])} | {kb(r['onnx_gzip_bytes'])} | "
              f"{kb(r['ort_int8_bytes'])} | {psnr(r)} | {pr(r, 'lsh', 'real')} | {pr(r, 'knn', 'real')} | "
              f"{pr(r, 'lsh', 'float')} | {pr(r, 'knn', 'float')} |")
    print("\n### Global magnitude pruning (bnr = + BatchNorm re-calibration)\n")
    print("| setting | packed kB | ONNX gzip kB | PSNR dB | LSH P / R vs real | kNN P / R vs real | kNN P / R vs float |")
    print("|---|---:|---:|---:|---|---|---|")
    for name in [f"sp{p}{s}" for p in (30, 50, 60, 70, 80, 90) for s in ("", "-bnr") if not (p == 30 and s)] + \
            ["sp50-bnr-q4", "sp75-bnr-q4"]:
        r = rows[name]
        print(f"| {name} | {kb(r['packed_bytes'])} | {kb(r['onnx_gzip_bytes'])} | {psnr(r)} | {pr(r, 'lsh', 'real')} | "
              f"{pr(r, 'knn', 'real')} | {pr(r, 'knn', 'float')} |")
    print("\n### Structured channel pruning (every group, uniform ratio)\n")
    print("| channels removed | params | MACs | ONNX kB | ORT int8 kB | ORT latency ms (norm-scale) | vs unpruned: L1 / "
          "norm-scale / + bnr | L1: LSH R / kNN R | norm-scale: LSH R / kNN R | norm-scale + bnr: LSH P / R, kNN P / R |")
    print("|---:|---:|---:|---:|---:|---:|---|---|---|---|")
    for ratio in ("0", "12.5", "25", "37.5", "50", "62.5", "75"):
        l1, ns = rows[f"cp{ratio}-l1"], rows[f"cp{ratio}-norm-scale"]
        bnr = rows.get(f"cp{ratio}-norm-scale-bnr", rows["float"] if ratio == "0" else None)
        ratios = " / ".join(f"{float(x['latency_ratio_vs_float']):.3f}" for x in (l1, ns, bnr))
        r_of = lambda x: f"{float(x['lsh_recall_vs_real']):.3f} / {float(x['knn_recall_vs_real']):.3f}"  # noqa: E731
        print(f"| {ratio} % | {int(ns['params']):,} | {int(ns['macs']) / 1e6:.1f} M | {kb(ns['onnx_bytes'])} | "
              f"{kb(ns['ort_int8_bytes'])} | {float(ns['onnx_latency_ms']):.3f} | {ratios} | {r_of(l1)} | {r_of(ns)} | "
              f"{pr(bnr, 'lsh', 'real')}, {pr(bnr, 'knn', 'real')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
