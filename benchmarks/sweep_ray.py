"""The post-training sweep as an `edgegan sweep` spec: wall time sequential (one process, job by
job) vs on a local Ray cluster (2 CPUs), both measured in this run, plus the estimated wall time
with N boards from the measured per-job times.

    .venv/bin/python benchmarks/sweep_ray.py [--quick] [--model dcgan-digits] [--boards 1 2 4 8]

The spec: `posttrain_spec()` of benchmarks/posttrain_sweep.py (its compression pipelines,
labelled with series / bits / sparsity / channel ratio, and its host-side quality step), formats
onnx + ort-int8, target local, --runs timed runs; each sweep folder keeps it as spec.json. Both runs start from empty sweep folders.
The N-board estimate: exports and compares spread over the host's workers (total CPU-job time /
workers), profiles over N one-slot boards (total profile time / N, at least the longest one);
the larger of the two bounds the wall time, plus the overhead measured here (the Ray run's wall
time minus that model's value for one board).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def estimate(jobs: list[dict], boards: int, workers: int, overhead_s: float) -> float:
    cpu = sum(j["seconds"] for j in jobs if j["kind"] != "profile")
    prof = [j["seconds"] for j in jobs if j["kind"] == "profile"]
    return round(max(cpu / workers, max(sum(prof) / boards, max(prof, default=0.0))) + overhead_s, 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="dcgan-digits")
    p.add_argument("--quick", action="store_true", help="the quick settings of posttrain_sweep (fewer pipelines)")
    p.add_argument("--limit", type=int, default=0, help="only the first N pipelines (0: all)")
    p.add_argument("--runs", type=int, default=20, help="timed runs per artifact")
    p.add_argument("--num-cpus", type=int, default=2)
    p.add_argument("--boards", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--out", default=None, help="keep the two sweep folders here (default: a temp dir)")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from edgegan.sweep import RayOptions, SweepSpec, run_sweep
    from posttrain_sweep import posttrain_spec

    doc = posttrain_spec(args.model, args.quick, args.runs)
    if args.limit:
        doc["pipelines"] = doc["pipelines"][: args.limit]
    spec = SweepSpec.from_dict(doc)
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="sweep-ray-bench-"))
    for name in ("sequential", "ray"):
        shutil.rmtree(work / name, ignore_errors=True)
    t0 = time.perf_counter()
    seq = run_sweep(spec, work / "sequential", sequential=True)
    t_seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    par = run_sweep(spec, work / "ray", ray_options=RayOptions(num_cpus=args.num_cpus))
    t_ray = time.perf_counter() - t0
    jobs = [json.loads(f.read_text()) for f in (work / "sequential" / "jobs").glob("*/result.json")]
    # what the ideal model misses on this host (Ray start-up, scheduling, two jobs sharing 2 busy cores)
    overhead = round(max(0.0, t_ray - estimate(jobs, 1, args.num_cpus, 0.0)), 1)
    by_kind: dict[str, float] = {}
    for j in jobs:
        by_kind[j["kind"]] = round(by_kind.get(j["kind"], 0.0) + j["seconds"], 1)
    out = {
        "model": args.model, "pipelines": len(spec.pipelines), "formats": spec.formats, "jobs": len(jobs),
        "rows": len(seq.rows), "failed_rows": [len(seq.failed_rows), len(par.failed_rows)],
        "sequential_s": round(t_seq, 1), "ray_s": round(t_ray, 1), "speedup": round(t_seq / t_ray, 2),
        "ray_num_cpus": args.num_cpus, "job_seconds_by_kind": by_kind, "ray_overhead_s": overhead,
        "estimated_s_for_boards": {n: estimate(jobs, n, args.num_cpus, overhead) for n in args.boards},
        "spec": str(work / "ray" / "spec.json"),
        "results_csv": str(work / "ray" / "results.csv"),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
