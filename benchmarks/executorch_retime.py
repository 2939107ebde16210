#!/usr/bin/env python3
"""Re-time a bundle that executorch_vs.py kept (``--out``) without exporting again, gated the same
way: for a second look at the latency ratios when the export run could not get the CPU gate.

    .venv/bin/python benchmarks/executorch_retime.py BUNDLE_DIR [--formats onnx,...] [--rounds 3] [--runs 30]

Prints median and fastest-run ms per artifact with ratios to the fastest float artifact of the
run (PSNR from the bundle), and how many timed blocks started without the gate.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import executorch_vs as ev

FLOATS = ("onnx", "tflite-fp32", "executorch-fp32")


def main() -> int:
    import numpy as np

    from edgegan.runner import edgegan_runner as r

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--formats", default="onnx,ort-int8,executorch-fp32,executorch-int8,executorch-dynamic")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--gate", type=float, default=5.0)
    ap.add_argument("--gate-wait", type=float, default=60.0)
    args = ap.parse_args()
    manifest = json.loads((args.bundle / "bundle.json").read_text())
    want = args.formats.split(",")
    rows = {a["format"]: a for a in manifest["artifacts"] if a["format"] in want and a["status"] != "failed"}
    arts = {k: r.Artifact(str(args.bundle / a["path"]), k, a["io"], args.threads) for k, a in rows.items()}
    x = np.load(args.bundle / manifest["inputs"]["file"])
    print(f"# {manifest['model']['name']} re-timed {time.strftime('%Y-%m-%d %H:%M')}, {args.threads} threads, "
          f"{args.rounds}x{args.runs} runs, CPU stall at start {ev.cpu_stall_pct()}%\n")
    lat, ungated = ev.time_round_robin(arts, x, args.rounds, args.runs, args.gate, args.gate_wait)
    floats = [f for f in FLOATS if f in lat]
    ff, fm = min(lat[f] for f in floats), min(ev.MIN_MS[f] for f in floats)
    print("| artifact | PSNR dB | median ms | vs fastest float | min ms | vs fastest float's min |")
    print("|---|---|---|---|---|---|")
    for k, a in rows.items():
        print(f"| {k} | {(a.get('fidelity') or {}).get('psnr_db', '–')} | {lat[k]:.3f} | {lat[k] / ff:.2f} | "
              f"{ev.MIN_MS[k]:.3f} | {ev.MIN_MS[k] / fm:.2f} |")
    print(f"\n{ungated} of {args.rounds * len(arts)} timed blocks started without the CPU gate; "
          f"stall at the end {ev.cpu_stall_pct()}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
