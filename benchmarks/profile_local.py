#!/usr/bin/env python3
"""Profile dcgan-digits on the `local` target, every format, twice back to back.

Prints, from the same run: p50 int8 / fp32 per runtime (ort-int8 / onnx, tflite-int8 /
tflite-fp32), and the p50 of the two back-to-back runs per format with their difference
(repeatability goal: within 5 %). Writes both runs' results under benchmarks/out/.

    .venv/bin/python benchmarks/profile_local.py [--bundle DIR] [--runs 1000] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

INT8_OF_RUNTIME = {"onnxruntime": "ort-int8", "litert": "tflite-int8"}  # float side: the runtime table


def ensure_bundle(path: Path, model: str):
    import edgegan

    if (path / "bundle.json").is_file():
        return edgegan.Bundle.load(path)
    print(f"exporting {model} -> {path} (all formats, ~1-2 min)", flush=True)
    return edgegan.export(model, out=path, overwrite=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default=str(ROOT / "bundles" / "dcgan-digits"))
    ap.add_argument("--model", default="dcgan-digits")
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "profile_local"))
    args = ap.parse_args(argv)

    import edgegan
    from edgegan.runner.edgegan_runner import RUNTIMES

    bundle = ensure_bundle(Path(args.bundle), args.model)
    docs = []
    for i in (1, 2):
        t0 = time.monotonic()
        res = edgegan.profile(bundle, target="local", runs=args.runs, warmup=args.warmup, threads=args.threads,
                              out=f"{args.out}/run{i}", force=True, compare=False, power_baseline_s=0.2, power_min_s=0.5)
        print(f"run {i}: {len(res)} formats in {time.monotonic() - t0:.0f} s", flush=True)
        docs.append(res.to_dict())
    pairs = {rt: (q, RUNTIMES[rt].float_format) for rt, q in INT8_OF_RUNTIME.items()}

    p50 = [{r["format"]: r["latency_ms"]["p50"] for r in d["results"] if r["status"] in ("ok", "degraded")} for d in docs]
    dev = docs[0]["device"]
    print(f"\n{docs[0]['bundle']['model']} on local: {dev['cpu']} ({dev['cores']} cores), {args.threads} threads, "
          f"batch 1, {args.warmup} warmup + {args.runs} timed runs per format")
    print(f"\n{'format':<16}{'runtime':<16}{'p50 run1 ms':>12}{'p50 run2 ms':>12}{'diff':>8}  repeatable")
    worst = 0.0
    for fmt in p50[0]:
        a, b = p50[0][fmt], p50[1].get(fmt)
        rt = next(r["runtime"] for r in docs[0]["results"] if r["format"] == fmt)
        diff = abs(b - a) / a * 100 if b else float("nan")
        worst = max(worst, diff)
        print(f"{fmt:<16}{rt:<16}{a:>12.4f}{b:>12.4f}{diff:>7.1f}%  {'yes' if diff <= 5 else 'NO (> 5 %)'}")
    print("\np50 int8 / fp32, same runtime, same run:")
    for rt, (q, f) in pairs.items():
        ratios = [f"run{i + 1} {p[q] / p[f]:.2f}x" for i, p in enumerate(p50) if q in p and f in p]
        print(f"  {rt:<12} {q} / {f}: " + (", ".join(ratios) if ratios else "n/a (format missing)"))
    fastest_float = min((p50[0][rt.float_format] for rt in RUNTIMES.values() if rt.float_format in p50[0]), default=None)
    if fastest_float:
        print("p50 vs the fastest float artifact (run1): " +
              ", ".join(f"{fmt} {v / fastest_float:.2f}x" for fmt, v in p50[0].items()))
    print(f"\nrepeatability: worst p50 difference between the two runs {worst:.1f}% (goal <= 5 %)")
    summary = {"p50_ms": p50, "worst_repeat_diff_pct": worst, "device": dev,
               "settings": {"runs": args.runs, "warmup": args.warmup, "threads": args.threads}}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
