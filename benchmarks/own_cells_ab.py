"""The candidate search's stages (fit, own cell, probe rounds) of two versions of ann.py,
alternating in one process on the same embedding (metrics_speed.py's manifold data, 2048-d,
real seed 1, fake seed 2): whole-pipeline runs move by +-2 s at 100k on the shared machine,
more than one stage's change. Also counts candidate rows that differ between the versions.

    git show ba3673c:edgegan/metrics/ann.py > /tmp/old_ann.py
    .venv/bin/python benchmarks/own_cells_ab.py --old /tmp/old_ann.py [--n 100000] [--reps 3]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="path of the other ann.py")
    p.add_argument("--n", type=int, default=100000)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args(argv)
    import numpy as np

    from edgegan.metrics import ann
    from edgegan.metrics.lsh import LSHConfig
    from edgegan.metrics.synthetic import Manifold

    spec = importlib.util.spec_from_file_location("old_ann", args.old)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    cfg = LSHConfig()
    m = Manifold(dim=2048, latent_dim=8, modes=10)
    real, fake = m.sample(args.n, seed=1), m.sample(args.n, seed=2)
    with ann._one_blas_thread():
        sub = ann.fit_subspace(real, cfg.subspace_dim, cfg.seed)
        z = np.concatenate([ann.embed(real, sub), ann.embed(fake, sub)])
        del real, fake
        c = max(cfg.max_candidates, cfg.k)
        print(f"# own_cells_ab: n {args.n:,} each, z {z.shape}, load avg at start "
              f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        print("| version | rep | total s | fit | own cell | probe rounds |")
        print("|---|---|---|---|---|---|")
        out = {}
        for rep in range(args.reps):
            for name, mod in (("old", old), ("new", ann)):
                t = {}
                t0 = time.perf_counter()
                out[name] = mod.candidates(z, args.n, c, cfg.probe, cfg.cell_size, cfg.seed, timing=t)
                print(f"| {name} | {rep + 1} | {time.perf_counter() - t0:.2f} | {t['cells_fit']:.2f} | "
                      f"{t['cells_own']:.2f} | {t['cells_probe']:.2f} |", flush=True)
    for side, a, b in zip(("same-set", "other-set"), out["old"], out["new"]):
        print(f"# {side} candidate rows differing: {int((a != b).any(axis=1).sum())} of {len(a):,} "
              f"(as sets: {sum(set(u) != set(v) for u, v in zip(a, b))})")
    print(f"# load avg at end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
