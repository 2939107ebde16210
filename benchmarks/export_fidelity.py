#!/usr/bin/env python3
"""Export fidelity benchmark: the shipped trained generators through every format.

    .venv/bin/python benchmarks/export_fidelity.py [--models dcgan-digits,resnet-sketch] [--out DIR]

Prints, per model and format: size ratio to the same runtime's fp32 artifact, PSNR vs float
torch, host latency and its ratio to the same runtime's fp32 artifact (measured round-robin in
the same run), and conversion time. Goals (issue #3): DCGAN int8 in both runtimes >= 45 dB and
size ratio <= 0.27. Nothing here asserts time; it prints what it measured.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> int:
    import edgegan
    from goals import Goals

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="dcgan-digits,resnet-sketch")
    ap.add_argument("--out", default=None, help="keep the bundles here (default: a temp dir)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="edgegan-bench-"))
    print(f"# export fidelity ({time.strftime('%Y-%m-%d')}, {args.threads} threads, batch 1)\n")
    goals = Goals()
    for name in args.models.split(","):
        t0 = time.perf_counter()
        bundle = edgegan.export(name, out=root / name, overwrite=True, threads=args.threads,
                                latency_rounds=7, latency_runs=30)
        total = time.perf_counter() - t0
        m = bundle.to_dict()
        print(f"## {name}: {m['model']['params']:,} params, {m['model']['macs'] / 1e6:.1f} M MACs, "
              f"export total {total:.0f} s on {m['host']['cpu']}\n")
        print("| format | status | size ratio | PSNR dB | max abs err | latency ms | int8-or-reduced/fp32 (same runtime) | vs fastest float | convert s |")
        print("|---|---|---|---|---|---|---|---|---|")
        for a in m["artifacts"]:
            fid, lat = a.get("fidelity") or {}, a.get("host_latency_ms") or {}
            conv = a.get("convert_seconds")
            print(f"| {a['format']} | {a['status']} | {a.get('size_ratio') or '–'} | {fid.get('psnr_db', '–')} | "
                  f"{fid.get('max_abs_err', float('nan')):.3g} | {lat.get('median', '–')} | "
                  f"{lat.get('ratio_vs_float_same_runtime', '–')} | {lat.get('ratio_vs_fastest_float', '–')} | "
                  f"{conv if conv is not None else '–'} |")
            if a["format"] in ("ort-int8", "tflite-int8") and name.startswith("dcgan"):
                ok = a["status"] != "failed" and fid.get("psnr_db", 0) >= 45 and (a.get("size_ratio") or 1) <= 0.27
                goals.check(f"{name} {a['format']}", f"PSNR {fid.get('psnr_db')} dB, size ratio {a.get('size_ratio')}",
                            ">= 45 dB, <= 0.27", ok)
        notes = {a["format"]: a.get("notes") for a in m["artifacts"] if a.get("notes")}
        if notes:
            print("\nnotes: " + "; ".join(f"{k}: {v}" for k, v in notes.items()))
        left = {a["format"]: a["quantization"].get("ops_left_float") for a in m["artifacts"]
                if a["format"] in ("ort-int8", "tflite-int8") and a["quantization"].get("ops_left_float")}
        if left:
            print("ops computed in float inside int8 models: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in left.items()))
        print()
    goals.print(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
