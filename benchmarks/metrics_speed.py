"""Precision/recall backends measured in one run: exact kNN (prdc) vs LSH-only vs LSH+kNN vs a
maintained nearest-neighbour library (faiss, when installed): time, peak memory, |P,R - exact|.

    .venv/bin/python benchmarks/metrics_speed.py [--sizes 5000 20000] [--big 100000]
        [--million 1000000] [--dim 2048] [--structure manifold|prototypes] [--skip-prdc] [--skip-faiss]

Data: ``manifold`` = edgegan.metrics.synthetic.Manifold(dim, latent_dim=8, modes=10), real seed
1, fake seed 2 (the structure LSH was tuned on); ``prototypes`` = the issue #21 case (10
random prototypes in [-1, 1]^dim plus N(0, 0.15^2) noise, clustered with near-equal distances).

Per size n (each set): exact kNN P/R by ``prdc.compute_prdc(real, fake, 3)`` (or, with
--skip-prdc / for ``--big``, the exact decisions of LSH+kNN's error sample: exact search for a
random subsample, its size printed); LSH-only; LSH+kNN (default config: error estimate and
adaptation included) with the default subspace-cell candidate search and, up to --lsh-search-max,
with the LSH bucket search (search="lsh"); faiss ``IndexFlatL2`` (exact radii by BLAS search, ball test over each
query's 16 nearest) and ``IndexHNSWFlat`` (M=32, efSearch=128; at --big only with --faiss-big);
with --candidates-compare, LSH+kNN's candidate search alone against faiss IndexIVFFlat in the
same subspace (every size, --big included). Time is one run each; peak
memory is tracemalloc's peak of numpy/Python allocations during a second, traced call (inputs
excluded; time comes from the untraced first call) and the process's ru_maxrss after it. ``--million``: LSH-only on two memory-mapped .npy feature
files of that many rows (written in chunks to --tmp, removed after). Prints numbers only.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np


MEMORY_RERUN_MAX_S = 60.0  # the traced memory run is skipped after a timed run longer than this


def measure(fn):
    """(seconds, peak MB of numpy/Python allocations during fn, ru_maxrss MB after, result).

    Time and memory come from two runs: tracemalloc hooks every allocation, which slowed
    LSH+kNN's per-cell loop (many small arrays) ~2x and prdc (a few huge ones) hardly at all,
    so a traced time would skew the ratios. The traced run is skipped (peak NaN) when the
    timed one took longer than MEMORY_RERUN_MAX_S (prdc at 20k: 4,578 MB in earlier runs)."""
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    peak = float("nan")
    if seconds <= MEMORY_RERUN_MAX_S:
        tracemalloc.start()
        tracemalloc.reset_peak()
        fn()
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return seconds, peak, rss, out


def prototypes(n: int, dim: int, seed: int) -> np.ndarray:
    protos = np.random.default_rng(0).uniform(-1, 1, (10, dim))
    rng = np.random.default_rng([seed, 21])
    return (protos[rng.integers(0, 10, n)] + rng.normal(0, 0.15, (n, dim))).astype(np.float32)


def make(structure: str, n: int, dim: int, seed: int) -> np.ndarray:
    if structure == "prototypes":
        return prototypes(n, dim, seed)
    from edgegan.metrics.synthetic import Manifold

    return Manifold(dim=dim, latent_dim=8, modes=10).sample(n, seed=seed)


def faiss_pr(real: np.ndarray, fake: np.ndarray, k: int = 3, kind: str = "flat", near: int = 16) -> dict:
    """Improved P/R with faiss doing the neighbour search: kNN radii from a (k+1)-NN self
    search, then each query tested against the balls of its ``near`` nearest other-set points."""
    import faiss

    def index(x):
        if kind == "flat":
            ix = faiss.IndexFlatL2(x.shape[1])
        else:
            ix = faiss.IndexHNSWFlat(x.shape[1], 32)
            ix.hnsw.efConstruction = 80
            ix.hnsw.efSearch = 128
        ix.add(x)
        return ix

    ir, iff = index(real), index(fake)
    r_rad = np.sqrt(np.maximum(ir.search(real, k + 1)[0][:, k], 0))
    f_rad = np.sqrt(np.maximum(iff.search(fake, k + 1)[0][:, k], 0))
    d, i = ir.search(fake, near)
    precise = (np.sqrt(np.maximum(d, 0)) < r_rad[np.maximum(i, 0)]).any(axis=1)
    d, i = iff.search(real, near)
    recalled = (np.sqrt(np.maximum(d, 0)) < f_rad[np.maximum(i, 0)]).any(axis=1)
    return {"precision": float(precise.mean()), "recall": float(recalled.mean())}


def candidate_search_compare(real: np.ndarray, fake: np.ndarray, n: int, probe: int = 16, c: int = 8) -> None:
    """LSH+kNN's candidate search alone, in its subspace embedding z: ann.candidates (ours,
    per-point probing of ``probe`` k-means cells) against faiss IndexIVFFlat (one index per set,
    nlist = n / 64, nprobe = ``probe``, 4 k-means iterations: the same cells) and, for
    reference, ann_legacy.cell_candidates (the earlier per-cell probing, probe 32). Recall = share of
    the true 3 nearest in z (faiss IndexFlatL2 on 400 random points) among the c candidates."""
    import faiss

    from edgegan.metrics import ann, ann_legacy

    with ann._one_blas_thread():
        sub = ann.fit_subspace(real, 32, 0)
        z = np.concatenate([ann.embed(real, sub), ann.embed(fake, sub)])
    nr, m = len(real), z.shape[1]
    zr, zf = np.ascontiguousarray(z[:nr]), np.ascontiguousarray(z[nr:])
    qs = np.random.default_rng(0).choice(len(z), 400, replace=False)

    def truth(data, base):
        fl = faiss.IndexFlatL2(m)
        fl.add(data)
        return fl.search(z[qs], 4)[1] + base

    tr = (truth(zr, 0), truth(zf, nr))

    def recall(cand_r, cand_f):
        hit = 0
        for j, q in enumerate(qs):
            for t, cand in zip(tr, (cand_r, cand_f)):
                hit += len(set([x for x in t[j] if x != q][:3]) & set(cand[j]))
        return hit / (6 * len(qs))

    def ours(fn, pr):
        def go():
            with ann._one_blas_thread():
                same, other = fn(z, nr, c, pr, 128, 0)
            is_real = (qs < nr)[:, None]
            return np.where(is_real, same[qs], other[qs]), np.where(is_real, other[qs], same[qs])
        return go

    def ivf():
        out = []
        for base, data in ((0, zr), (nr, zf)):
            nlist = max(1, len(data) // 64)
            ix = faiss.IndexIVFFlat(faiss.IndexFlatL2(m), m, nlist)
            ix.cp.niter = 4
            train = data[np.random.default_rng(1).choice(len(data), min(len(data), 64 * nlist), replace=False)]
            ix.train(train)
            ix.add(data)
            ix.nprobe = probe
            out.append(ix.search(z, c + 1)[1] + base)
        # drop the point itself from its own set's list
        cand = [np.array([[x for x in row if x != i][:c] for row, i in zip(o[qs], qs)]) for o in out]
        return cand[0], cand[1]

    for name, fn in ((f"candidate search only: ours, per-point probe {probe}", ours(ann.candidates, probe)),
                     ("candidate search only: ours, earlier per-cell probe 32", ours(ann_legacy.cell_candidates, 32)),
                     (f"candidate search only: faiss IndexIVFFlat, nprobe {probe}", ivf)):
        t, peak, rss, (cr, cf) = measure(fn)
        print(f"| {n:,} | {name} | {t:.2f} | {peak:,.0f} | {rss:,.0f} | – | – | recall of the true 3 nearest in z "
              f"({m}-d): {recall(cr, cf):.3f} (faiss threads: {faiss.omp_get_max_threads()}) |", flush=True)


def row(name, n, t, peak, rss, p, r, ref, extra=""):
    dp = "–" if ref is None else f"{abs(p - ref[0]):.4f}"
    dr = "–" if ref is None else f"{abs(r - ref[1]):.4f}"
    print(f"| {n:,} | {name} | {t:.2f} | {peak:,.0f} | {rss:,.0f} | {p:.4f}, {r:.4f} | {dp}, {dr} | {extra} |",
          flush=True)


def run_size(n: int, args, have_faiss: bool) -> None:
    from edgegan.metrics import LSHConfig, lsh_scores

    real, fake = make(args.structure, n, args.dim, 1), make(args.structure, n, args.dim, 2)
    cfg = LSHConfig()
    ref, ref_note = None, ""
    if not args.skip_prdc and n <= args.prdc_max:
        from prdc import compute_prdc

        def exact():
            with contextlib.redirect_stdout(io.StringIO()):
                return compute_prdc(real, fake, 3)

        t, peak, rss, out = measure(exact)
        ref = (float(out["precision"]), float(out["recall"]))
        row("exact kNN (prdc)", n, t, peak, rss, *ref, ref)
    t, peak, rss, out = measure(lambda: lsh_scores(real, fake, cfg, variants=("lsh",)))
    row("LSH-only", n, t, peak, rss, out["lsh_precision"], out["lsh_recall"], ref,
        "its own definition (bucket support), not an estimate of kNN P/R")
    searches = ["pca"] + (["lsh"] if n <= args.lsh_search_max else [])
    for search in searches:
        c = LSHConfig(search=search)
        t, peak, rss, out = measure(lambda: lsh_scores(real, fake, c, variants=("lsh_knn",), details=True))
        ap = out["lsh_knn_approx"]
        if ref is None:
            ref = (ap["exact_precision_estimate"], ap["exact_recall_estimate"])
            ref_note = f"; exact reference: exact search on {ap['sample_fake']} + {ap['sample_real']} sampled points"
        split = sum(st.get("search_seconds", 0) for st in ap["steps"])
        row(f"LSH+kNN (search={search})", n, t, peak, rss, out["lsh_knn_precision"], out["lsh_knn_recall"], ref,
            f"approx_error {ap['approx_error']:.3f} ({ap['stopped']}, {len(ap['steps'])} step(s)); "
            f"candidate search {split:.2f} s, rest (estimate, exhaustive) {t - split:.2f} s{ref_note}")
    if have_faiss and not args.skip_faiss and args.candidates_compare:
        candidate_search_compare(real, fake, n)
    if have_faiss and not args.skip_faiss:
        for kind in ("flat", "hnsw"):
            if n > (args.faiss_flat_max if kind == "flat" else args.hnsw_max):
                continue
            t, peak, rss, out = measure(lambda: faiss_pr(real, fake, 3, kind))
            row(f"faiss {'IndexFlatL2' if kind == 'flat' else 'HNSW32'}", n, t, peak, rss, out["precision"],
                out["recall"], ref)


def run_million(n: int, args) -> None:
    """LSH-only on memory-mapped feature files written in chunks (never whole in memory)."""
    from edgegan.metrics import LSHConfig, lsh_scores

    tmp = Path(tempfile.mkdtemp(dir=args.tmp))
    paths = [tmp / "real.npy", tmp / "fake.npy"]
    chunk = 50_000
    t0 = time.perf_counter()
    for p, seed in zip(paths, (1, 2)):
        mm = np.lib.format.open_memmap(p, mode="w+", dtype=np.float32, shape=(n, args.dim))
        for s in range(0, n, chunk):
            mm[s:s + chunk] = make(args.structure, min(chunk, n - s), args.dim, seed * 100_000 + s // chunk)
        mm.flush()
        del mm
    t_write = time.perf_counter() - t0
    real, fake = (np.load(p, mmap_mode="r") for p in paths)
    try:
        t, peak, rss, out = measure(lambda: lsh_scores(real, fake, LSHConfig(), variants=("lsh",)))
        row("LSH-only (memory-mapped)", n, t, peak, rss, out["lsh_precision"], out["lsh_recall"], None,
            f"2 x {n * args.dim * 4 / 2**30:.1f} GiB float32 files (written in {t_write:.0f} s)")
    finally:
        for p in paths:
            p.unlink(missing_ok=True)
        tmp.rmdir()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    p.add_argument("--big", type=int, default=100000, help="n without prdc / faiss flat (0 to skip)")
    p.add_argument("--million", type=int, default=0, help="n for LSH-only on memory-mapped files (0 to skip)")
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--structure", choices=("manifold", "prototypes"), default="manifold")
    p.add_argument("--prdc-max", type=int, default=20000)
    p.add_argument("--faiss-flat-max", type=int, default=20000)
    p.add_argument("--hnsw-max", type=int, default=20000)
    p.add_argument("--lsh-search-max", type=int, default=20000, help="largest n for the LSH bucket search row")
    p.add_argument("--skip-prdc", action="store_true")
    p.add_argument("--skip-faiss", action="store_true")
    p.add_argument("--faiss-big", action="store_true", help="faiss HNSW at --big too (index build takes minutes)")
    p.add_argument("--candidates-compare", action="store_true",
                   help="also time LSH+kNN's candidate search alone against faiss IVF in its subspace (needs faiss)")
    p.add_argument("--tmp", default=tempfile.gettempdir())
    args = p.parse_args(argv)
    try:
        import faiss

        have_faiss, faiss_v = True, faiss.__version__
    except ImportError:
        have_faiss, faiss_v = False, "not installed"
    print(f"# metrics_speed: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, numpy "
          f"{np.__version__}, faiss {faiss_v}, load avg at start {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"# data: {args.structure}, dim {args.dim}, real seed 1, fake seed 2\n")
    print("| n (each set) | method | s | peak MB (numpy) | max RSS MB (process) | P, R | abs diff vs exact P, R | notes |")
    print("|---|---|---|---|---|---|---|---|")
    if args.million:  # before the long runs: a missing --tmp folder failed only at the end
        Path(args.tmp).mkdir(parents=True, exist_ok=True)
    for n in args.sizes:
        run_size(n, args, have_faiss)
    if args.big:
        if have_faiss and not args.skip_faiss and args.candidates_compare:
            run_size(args.big, argparse.Namespace(**{**vars(args), "faiss_flat_max": 0, "hnsw_max": 0}), True)
        else:
            run_size(args.big, args, have_faiss and args.faiss_big)
    if args.million:
        run_million(args.million, args)
    print(f"\n# load avg at end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
