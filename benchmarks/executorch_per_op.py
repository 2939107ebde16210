#!/usr/bin/env python3
"""Where an executorch-int8 ResNet's time goes, per op category (the README's per-op split).

    .venv/bin/python benchmarks/executorch_per_op.py [--model resnet-sketch] [--keep DIR]
    .venv/bin/python benchmarks/executorch_per_op.py --results DIR   # split an earlier profile's per_op.json

Runs the two CLI commands the README names, into a temp dir (or --keep DIR):
``edgegan export MODEL --formats onnx,executorch-int8`` then ``edgegan profile BUNDLE --target
local --per-op --formats executorch-int8``, reads ``executorch-int8/per_op.json`` and prints the
ops inside the XNNPACK delegate grouped as int8 conv/deconv, float norm arithmetic, converts,
pad/slice/copy and other, each as % of the mean inference (Method::execute), with the date and
the machine load (`uptime`, /proc/pressure/cpu) before and after. A few minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# XNNPACK operator names (as its profiler reports them) -> category; first match wins
CATEGORIES = (
    ("int8 conv/deconv", ("Convolution", "Deconvolution")),
    ("float norm arithmetic", ("Multiply", "Subtract", "Mean", "Reciprocal Square Root")),
    ("converts", ("Convert",)),
    ("pad/slice/copy", ("Slice", "Copy", "Constant Pad")),
)
OTHER = "other"


def category(op: str) -> str:
    for name, prefixes in CATEGORIES:
        if op.startswith(prefixes):
            return name
    return OTHER


def load() -> str:
    """`uptime`'s load averages and the CPU pressure (% of the last 10 s some task waited)."""
    up = subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        psi = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        psi = "n/a"
    return f"{up} | /proc/pressure/cpu {psi}"


def edgegan(*argv: str) -> None:
    cmd = [sys.executable, "-m", "edgegan", *argv]
    print("$ edgegan " + " ".join(argv), flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)


def split(per_op: dict) -> tuple[dict[str, float], dict[str, int]]:
    """% of the mean inference per category, and op occurrences per category."""
    execute = per_op["execute_ms"]
    pct: dict[str, float] = {name: 0.0 for name, _ in CATEGORIES}
    pct[OTHER] = 0.0
    count = dict.fromkeys(pct, 0)
    for op in per_op["delegated_ops"]:
        c = category(op["op"])
        pct[c] += 100.0 * op["total_ms"] / execute
        count[c] += op["count"]
    return pct, count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet-sketch")
    ap.add_argument("--keep", help="work here instead of a temp dir (bundle/ and results/ are kept)")
    ap.add_argument("--results", help="no new run: split the executorch-int8 per_op.json of this profile folder")
    args = ap.parse_args(argv)

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    before = load()
    with tempfile.TemporaryDirectory(prefix="edgegan-per-op-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        bundle, results = work / "bundle", Path(args.results or work / "results")
        t0 = time.monotonic()
        if not args.results:
            edgegan("export", args.model, "--formats", "onnx,executorch-int8", "--out", str(bundle), "--force")
            edgegan("profile", str(bundle), "--target", "local", "--per-op", "--formats", "executorch-int8",
                    "--out", str(results), "--force")
        elapsed = time.monotonic() - t0
        doc = json.loads((results / "results.json").read_text())
        row = next(r for r in doc["results"] if r["format"] == "executorch-int8")
        if not row.get("per_op") or "file" not in row["per_op"]:
            print(f"no per-op profile: {row.get('per_op')}", file=sys.stderr)
            return 1
        per_op = json.loads((results / row["per_op"]["file"]).read_text())
        if args.results:
            started, elapsed = f"earlier run {doc.get('created', '?')}", 0.0
            before = after = "not measured here (the run was earlier)"
    if not args.results:
        after = load()

    pct, count = split(per_op)
    delegate_calls = sum(o["count"] for o in per_op["ops"] if o["kind"] == "delegate")
    portable = [o["op"] for o in per_op["ops"] if o["kind"] == "portable"]
    print(f"\n{doc['bundle']['model']} executorch-int8, per op ({started}; export + profile {elapsed:.0f} s)")
    print(f"load before: {before}\nload after:  {after}")
    print(f"{per_op['runs']} timed runs, {per_op['threads']} threads, batch 1: {per_op['execute_ms']:.3f} ms per "
          f"inference, {delegate_calls} delegate call(s), portable kernels: {', '.join(portable) or 'none'}")
    print(f"\n{'category':<24}{'ops':>6}{'% of time':>11}")
    for name, share in pct.items():
        print(f"{name:<24}{count[name]:>6}{share:>10.1f}%")
    print(f"{'(sum)':<24}{sum(count.values()):>6}{sum(pct.values()):>10.1f}%")
    print(f"{'(outside named ops)':<24}{'':>6}{100.0 - sum(pct.values()):>10.1f}%  (delegate call overhead, between ops)")
    print("\nops inside the delegate, by time:")
    for op in sorted(per_op["delegated_ops"], key=lambda o: -o["total_ms"]):
        print(f"  {op['op']:<40}{op['count']:>4}  {100.0 * op['total_ms'] / per_op['execute_ms']:5.1f}%  "
              f"[{category(op['op'])}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
