"""Where LSH+kNN's time goes: one ``lsh_scores(variants=("lsh_knn",))`` call on the
metrics_speed.py manifold data (2048-d, real seed 1, fake seed 2), its phases timed by
ann.pca_knn itself (subspace, cells, radii, balls) plus the error estimate and input checks.
No profiler (cProfile slowed the per-cell loops noticeably). Prints one markdown row per n.
``cpu s`` is the process's user + system time over the call: on the shared 2-core machine the
wall time doubles when other jobs take a core, the CPU time moves much less (cache sharing).

    .venv/bin/python benchmarks/lsh_knn_phases.py [--sizes 20000 100000]
"""
from __future__ import annotations

import argparse
import os
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[20000, 100000])
    p.add_argument("--dim", type=int, default=2048)
    args = p.parse_args(argv)
    from edgegan.metrics import LSHConfig, lsh_scores
    from edgegan.metrics.synthetic import Manifold

    print(f"# lsh_knn_phases: load avg at start {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| n | total s | cpu s | subspace | cells | radii | balls | error estimate | rest (input checks) | P, R | approx_error |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        m = Manifold(dim=args.dim, latent_dim=8, modes=10)
        real, fake = m.sample(n, seed=1), m.sample(n, seed=2)
        t0, c0 = time.perf_counter(), os.times()
        out = lsh_scores(real, fake, LSHConfig(), variants=("lsh_knn",), details=True)
        total, c1 = time.perf_counter() - t0, os.times()
        cpu = c1.user - c0.user + c1.system - c0.system
        ap, sec = out["lsh_knn_approx"], out["parameters"]["seconds"]
        step = ap["steps"][0]
        estimate = sum(s["seconds"] - s.get("search_seconds", s["seconds"]) for s in ap["steps"])
        rest = total - sum(s["seconds"] for s in ap["steps"])
        print(f"| {n:,} | {total:.2f} | {cpu:.2f} | {sec['subspace']:.2f} | {sec['cells']:.2f} | {sec['radii']:.2f} | "
              f"{sec['balls']:.2f} | {estimate:.2f} | {rest:.2f} | {out['lsh_knn_precision']:.4f}, "
              f"{out['lsh_knn_recall']:.4f} | {ap['approx_error']:.3f} ({len(ap['steps'])} step(s), "
              f"search {step['search_seconds']:.2f} s) |", flush=True)
    print(f"# load avg at end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
