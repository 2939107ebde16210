#!/usr/bin/env python3
"""Each op occurrence of a .pte at 1 and at 2 threads, and what the second thread buys per op.

    .venv/bin/python benchmarks/executorch_layers.py BUNDLE/artifacts/model_int8.pte --inputs BUNDLE/inputs.npy
        [--runs 300] [--min-us 5]

For the ops that take at least ``--min-us`` at one thread: median us at 1 and 2 threads
(ETDump, ``edgegan.devices.per_op.instance_times``, each in its own child process), the speed-up,
and the part a second thread does not share if the op is ``serial + parallel`` with the parallel
part halved (serial = 2 * t2 - t1; noisy per op, read it across ops). Then the inference
(Method::execute) at both counts. Why: the ranked per-op profile folds an op kind's occurrences
together, but whether a graph gains from the second core is decided per layer. Run it more than
once: on this 2-vCPU host dcgan-digits' int8 .pte read 1.0x in two runs and 2.2x in a third at
2 threads under ETDump (2026-12-02 08:03-08:04), while its fp32 convs read 1.8-2.0x in all
three. Seconds per .pte.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def main() -> int:
    from edgegan.devices.per_op import instance_times

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pte", nargs="+", type=Path)
    ap.add_argument("--inputs", type=Path, required=True, help="a bundle's inputs.npy (its first sample is used)")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--min-us", type=float, default=5.0, help="list ops at least this long at 1 thread")
    args = ap.parse_args()
    x = np.load(args.inputs, allow_pickle=False)[:1]
    print(f"# per-op times at 1 and 2 threads ({time.strftime('%Y-%m-%d %H:%M')}, loadavg "
          f"{os.getloadavg()[0]:.2f}, {args.runs} timed runs, medians)\n")
    for pte in args.pte:
        one = instance_times(pte, x, runs=args.runs, threads=1)
        two = dict((n, med) for n, _, med in instance_times(pte, x, runs=args.runs, threads=2))
        print(f"## {pte}\n")
        print("| op | 1 thread us | 2 threads us | speed-up | serial part us (2*t2 - t1) |")
        print("|---|---|---|---|---|")
        for name, _, t1 in one:
            t2 = two.get(name)
            if t2 is None or name == "DELEGATE_CALL" or t1 * 1e3 < args.min_us:
                continue
            print(f"| {name} | {t1 * 1e3:.1f} | {t2 * 1e3:.1f} | {t1 / t2 if t2 else float('inf'):.2f}x | "
                  f"{max(0.0, 2 * t2 - t1) * 1e3:.1f} |")
        total = [med for n, _, med in one if n == "DELEGATE_CALL"]
        if total and "DELEGATE_CALL" in two:
            print(f"| (delegate call, whole) | {total[0] * 1e3:.1f} | {two['DELEGATE_CALL'] * 1e3:.1f} | "
                  f"{total[0] / two['DELEGATE_CALL']:.2f}x | |")
        print()
    print(f"loadavg after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
