"""LSH precision/recall vs exact kNN (`prdc`): speed and agreement, measured in one run.

    .venv/bin/python benchmarks/metrics_speed.py [--sizes 5000 10000 20000] [--big 100000]
                                                 [--dim 2048] [--repeats 3] [--skip-prdc]

Data: edgegan.metrics.synthetic.Manifold(dim=2048, latent_dim=8, modes=10) — two independent
samples of the same distribution (real: seed 1, fake: seed 2); each size uses the first n
rows of the same two arrays. For every n the script times LSH-only, LSH+kNN (median of
``--repeats`` runs, hashing and width calibration included) and ``prdc.compute_prdc`` (k=3,
once), and prints speed ratios and |ΔP|, |ΔR| against prdc's exact kNN precision/recall.
Then LSH (both variants) at ``--big`` × dim. Prints measured numbers only; asserts nothing.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import time

import numpy as np


def _timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000])
    p.add_argument("--big", type=int, default=100000, help="n for the LSH-only large run (0 to skip)")
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--latent-dim", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-prdc", action="store_true")
    args = p.parse_args(argv)

    from edgegan.metrics import LSHConfig, lsh_scores
    from edgegan.metrics.synthetic import Manifold

    manifold = Manifold(dim=args.dim, latent_dim=args.latent_dim, modes=10)
    n_max = max(args.sizes)
    real_all, fake_all = manifold.sample(n_max, seed=1), manifold.sample(n_max, seed=2)
    print(f"# metrics_speed: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"numpy {np.__version__}, load avg at start {_load()}")
    print(f"# data: Manifold(dim={args.dim}, latent_dim={args.latent_dim}, modes=10), real seed 1, fake seed 2\n")
    print("| n | LSH-only s | LSH+kNN s | prdc s | prdc / LSH-only | prdc / LSH+kNN "
          "| LSH+kNN P, R | kNN P, R (prdc) | abs diff LSH+kNN P, R | LSH-only P, R |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    cfg = LSHConfig()
    for n in args.sizes:
        real, fake = real_all[:n], fake_all[:n]
        t_lsh, lsh = _timed(lambda: lsh_scores(real, fake, cfg, variants=("lsh",)), args.repeats)
        t_knn, lk = _timed(lambda: lsh_scores(real, fake, cfg, variants=("lsh_knn",)), args.repeats)
        if args.skip_prdc:
            t_prdc, ref = float("nan"), {"precision": float("nan"), "recall": float("nan")}
        else:
            from prdc import compute_prdc

            with contextlib.redirect_stdout(io.StringIO()):
                t_prdc, ref = _timed(lambda: compute_prdc(real, fake, 3), 1)
        dp = abs(lk["lsh_knn_precision"] - float(ref["precision"]))
        dr = abs(lk["lsh_knn_recall"] - float(ref["recall"]))
        print(f"| {n:,} | {t_lsh:.2f} | {t_knn:.2f} | {t_prdc:.1f} | {t_prdc / t_lsh:.0f}x | {t_prdc / t_knn:.0f}x "
              f"| {lk['lsh_knn_precision']:.4f}, {lk['lsh_knn_recall']:.4f} "
              f"| {float(ref['precision']):.4f}, {float(ref['recall']):.4f} | {dp:.4f}, {dr:.4f} "
              f"| {lsh['lsh_precision']:.4f}, {lsh['lsh_recall']:.4f} |", flush=True)
    del real_all, fake_all
    if args.big:
        real, fake = manifold.sample(args.big, seed=3), manifold.sample(args.big, seed=4)
        t_lsh, lsh = _timed(lambda: lsh_scores(real, fake, cfg, variants=("lsh",), details=True), args.repeats)
        t_knn, lk = _timed(lambda: lsh_scores(real, fake, cfg, variants=("lsh_knn",)), 1)
        par = lsh["parameters"]
        print(f"\n| n (each set) x d | LSH-only s (median of {args.repeats}) | LSH+kNN s | LSH-only P, R | LSH+kNN P, R | L, K, w |")
        print("|---|---|---|---|---|---|")
        print(f"| {args.big:,} x {args.dim} | {t_lsh:.2f} | {t_knn:.2f} | {lsh['lsh_precision']:.4f}, {lsh['lsh_recall']:.4f} "
              f"| {lk['lsh_knn_precision']:.4f}, {lk['lsh_knn_recall']:.4f} "
              f"| {par['tables']}, {par['projections']}, {par['bucket_width']:.3g} |")
    print(f"\n# load avg at end {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
