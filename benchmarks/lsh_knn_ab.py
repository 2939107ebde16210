"""LSH+kNN of two code versions, alternating back to back: one ``lsh_scores(variants=("lsh_knn",))``
call per run, each in a fresh process, on metrics_speed.py's manifold data (2048-d, real seed 1,
fake seed 2). On the shared 2-core machine a whole run moves by +-25 % from one minute to the
next, so versions are compared run by run (old, new, old, new, ...), and the ratio new / old
is reported per pair and as the median of the pairs.

``--old`` is a git ref: its ``edgegan/`` is exported (``git archive``) into a temporary
directory and put first on PYTHONPATH; "new" is this checkout. ``--threads`` sets
EDGEGAN_METRICS_THREADS for the new runs ("": its default, "auto": two threads while a core is
idle; "1"; "2"; code before 2026-12-01 ignores it).
Prints one line per run (wall s, CPU s, the search's own phase seconds, P, R, approx_error)
and the ratios.

    .venv/bin/python benchmarks/lsh_knn_ab.py --old 0368b0d --sizes 20000 --reps 8
    .venv/bin/python benchmarks/lsh_knn_ab.py --old HEAD --old-threads 1 --threads 2 --reps 5
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]

CHILD = r'''
import json, os, sys, time
import numpy as np
from edgegan.metrics import LSHConfig, lsh_scores
real, fake = np.load(sys.argv[1]), np.load(sys.argv[2])
lsh_scores(real[:2000], fake[:2000], LSHConfig(), variants=("lsh_knn",))  # imports, first calls
t0, c0 = time.perf_counter(), os.times()
out = lsh_scores(real, fake, LSHConfig(), variants=("lsh_knn",), details=True)
wall, c1 = time.perf_counter() - t0, os.times()
ap = out["lsh_knn_approx"]
print(json.dumps(dict(wall=wall, cpu=c1.user - c0.user + c1.system - c0.system, P=out["lsh_knn_precision"],
                      R=out["lsh_knn_recall"], err=ap["approx_error"], steps=len(ap["steps"]),
                      phases=out["parameters"]["seconds"], load=os.getloadavg()[0])))
'''


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="git ref of the other version")
    p.add_argument("--sizes", type=int, nargs="+", default=[20000])
    p.add_argument("--reps", type=int, default=6)
    p.add_argument("--threads", default="", help='EDGEGAN_METRICS_THREADS for the new runs ("": default, auto)')
    p.add_argument("--old-threads", default="", help="the same for the old runs (with --old HEAD: threads vs one thread)")
    args = p.parse_args(argv)
    import numpy as np

    from edgegan.metrics.synthetic import Manifold

    with tempfile.TemporaryDirectory() as tmp:
        old_dir = pathlib.Path(tmp) / "old"
        old_dir.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.old, "edgegan"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(old_dir)], input=archive.stdout, check=True)
        print(f"# lsh_knn_ab: old {args.old}, new {ROOT} (EDGEGAN_METRICS_THREADS={args.threads!r}, old: {args.old_threads!r}), "
              f"load avg at start {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
        for n in args.sizes:
            m = Manifold(dim=2048, latent_dim=8, modes=10)
            files = []
            for name, seed in (("real", 1), ("fake", 2)):
                files.append(str(pathlib.Path(tmp) / f"{name}{n}.npy"))
                np.save(files[-1], m.sample(n, seed=seed))
            runs: dict[str, list] = {"old": [], "new": []}
            for rep in range(args.reps):
                for name, path, threads in (("old", old_dir, args.old_threads), ("new", ROOT, args.threads)):
                    env = {**os.environ, "PYTHONPATH": str(path), "EDGEGAN_METRICS_THREADS": threads}
                    out = subprocess.run([sys.executable, "-c", CHILD, *files], capture_output=True, text=True,
                                         env=env, check=True)
                    r = json.loads(out.stdout.strip().splitlines()[-1])
                    runs[name].append(r)
                    print(f"n {n:,} {name} {rep + 1}: wall {r['wall']:.2f} s, cpu {r['cpu']:.2f} s, P {r['P']:.4f}, "
                          f"R {r['R']:.4f}, approx_error {r['err']:.3f} ({r['steps']} step(s)), phases {r['phases']}, "
                          f"load {r['load']:.2f}", flush=True)
            for key in ("wall", "cpu"):
                old = [r[key] for r in runs["old"]]
                new = [r[key] for r in runs["new"]]
                pairs = [b / a for a, b in zip(old, new)]
                print(f"n {n:,} {key}: median old {statistics.median(old):.2f} s, new {statistics.median(new):.2f} s; "
                      f"new/old per pair {', '.join(f'{x:.2f}' for x in pairs)}; median {statistics.median(pairs):.3f}",
                      flush=True)
    print(f"# load avg at end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
