"""LSH+kNN's default candidate search: cells in a PCA subspace, exact re-ranking in full dimension.

Why: the LSH bucket-window search found only ~79 % of the true 3 nearest neighbours at 20k x
2048 (manifold data) while ranking ~280 candidates per point, so its radii were inflated and
every point needed ~12 exact 2048-d distances (memory-bound gathers). Here:

* **Subspace**: the top ``dim`` principal directions of a real subsample (randomised range
  finder, 2 power iterations). Every point becomes ``z = [y, rho]``: its coordinates ``y`` in
  the subspace and the norm ``rho`` of its residual off it. Because the projection is
  orthonormal, ``LB = ||z_a - z_b||`` is a *lower* bound of the true distance and
  ``UB = sqrt(LB^2 + 4 rho_a rho_b)`` an upper one (they meet when the data lies in the
  subspace).
* **Cells**: k-means (a few Lloyd steps on a subsample) of both sets together in z-space,
  ~``cell_size`` points per cell. Every point is compared with the points of the ``probe``
  cells whose centroids are nearest to *it* (as faiss's IVF probes; the earlier rule, the cells
  nearest to its cell's centroid, found 0.89 of the true 3 nearest in z at 100k with 32 probes,
  this one 0.99 with 16); the loops are over cells: one small GEMM (centred on the cell) of
  the points probing it against its points, whose survivors (<= the point's current c-th
  best) go to a per-row buffer merged once per round of probe ranks (candidates()). Each
  point keeps its ``candidates`` nearest same-set and other-set points by LB.
* **Exact re-ranking**: radii and ball tests use exact full-dimensional distances of true
  candidates only. A radius is the k-th smallest exact distance among the point's candidates:
  the k best by LB are measured, then every other candidate whose LB is below that k-th
  distance (the rest cannot be nearer). A ball test (d < radius, strict) is decided by the
  bounds when they agree (UB < r: inside; LB >= r: outside) and by the exact distance
  otherwise. So radii are never below the true kNN radii, as with the LSH search, and the
  error estimate in lsh_error.py applies unchanged. With ``exact_rows`` (lsh_scores) radii
  are lazy: bracketed by the k-th smallest LB / UB of the candidates and measured only where
  a ball test's bounds straddle that bracket (same decisions).

Everything is vectorised except two loops over cells (~n / 64 iterations each, the rounds of
probe ranks) and one over groups of cells of similar size (the own-cell stage, own_cells(): one
batched GEMM per group). Large temporaries are blocked to a few MB: fresh 64-270 MB arrays
were page-faulted in on every block, which dominated several stages on this VM.
ann_legacy.cell_candidates() is the earlier per-cell probing, kept for comparison only.
"""
from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

SLACK32 = 1e-5  # BoundsTo: relative slack of its float32 Gram arithmetic (bound: ~4.4e-6)
MARGIN = 1e-3  # relative slack on the float32 bounds before they decide anything alone


@dataclasses.dataclass
class Subspace:
    center: np.ndarray  # [d] float64
    basis: np.ndarray   # [d, m] float32, orthonormal columns


def fit_subspace(real: np.ndarray, dim: int, seed: int, sample: int = 4096, chunk_rows: int = 8192) -> Subspace:
    """Top ``dim`` principal directions of up to ``sample`` random real rows (4,096: half the
    cost of 8,192 and, at 20k x 2048 manifold data, the same P, R and approx_error; the bounds
    are exact for any subspace, its quality only moves which candidates are found)."""
    n, d = real.shape
    rng = np.random.default_rng([seed, 64])
    rows = np.sort(rng.choice(n, min(n, sample), replace=False))
    xs = np.asarray(real[rows], dtype=np.float32)
    if not np.isfinite(xs).all():  # NaN/inf: the MetricError that names them (pca_knn scans the rest)
        _not_finite(real, real)
    center = xs.mean(axis=0, dtype=np.float64)
    xs -= center.astype(np.float32)
    m = min(dim, d, len(rows))
    q = _orthonormal(xs @ rng.standard_normal((d, min(m + 16, d))).astype(np.float32))
    for _ in range(2):  # power iterations sharpen the range for a slowly decaying spectrum
        q = _orthonormal(xs @ (xs.T @ q))
    b = q.T @ xs                         # [m + 16, d]
    _, _, vt = np.linalg.svd(b.astype(np.float64), full_matrices=False)
    return Subspace(center, np.ascontiguousarray(vt[:m].T.astype(np.float32)))


def _not_finite(real: np.ndarray, fake: np.ndarray) -> None:
    """Raise the one-line MetricError of check_finite for the first set holding NaN/inf (the
    message of the input checks, which LSH+kNN leaves to its projection pass), or one for
    finite features whose float32 squares overflow."""
    from ..errors import MetricError
    from .base import check_finite

    check_finite(real, "real")
    check_finite(fake, "fake")
    raise MetricError("features too large for float32 arithmetic (squared norms overflow); rescale them")


def _orthonormal(y: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the columns of a tall ``y`` from the eigenvectors of its small Gram
    matrix (numpy's QR of a tall matrix is ~20x slower here)."""
    w, v = np.linalg.eigh(y.T.astype(np.float64) @ y.astype(np.float64))
    keep = w > w.max() * 1e-10
    return (y @ (v[:, keep] / np.sqrt(w[keep])).astype(np.float32)).astype(np.float32)


def embed(x: np.ndarray, sub: Subspace, chunk_rows: int = 128) -> np.ndarray:
    """``z = [y, rho]`` [n, m + 1] float32, streamed in row chunks (memory-mapped input works;
    1024-row chunks: 1.6x faster than 8192 at 100k x 2048, whose 64 MB temporaries page-fault)."""
    n, d = x.shape
    m = sub.basis.shape[1]
    z = np.empty((n, m + 1), dtype=np.float32)
    c32 = sub.center.astype(np.float32)
    bt = np.ascontiguousarray(sub.basis.T)
    xc = np.empty((min(chunk_rows, n), d), dtype=np.float32)  # reused buffers: no page faults per chunk
    back = np.empty_like(xc)
    for s in range(0, n, chunk_rows):
        rows = min(chunk_rows, n - s)
        a, p = xc[:rows], back[:rows]
        np.subtract(x[s:s + rows], c32, out=a, dtype=np.float32)
        y = z[s:s + rows, :m]
        np.matmul(a, sub.basis, out=y)
        np.matmul(y, bt, out=p)
        a -= p  # the residual, explicitly: ||x||^2 - ||y||^2 would cancel
        # squares summed pairwise in float32 (~1e-7 relative; float64 einsum cast every element:
        # ~30 % of embed's time) then rho in float64
        np.square(a, out=a)
        z[s:s + rows, m] = np.sqrt(a.sum(axis=1, dtype=np.float32).astype(np.float64))
    return z


def _kmeans(z: np.ndarray, cells: int, seed: int, iters: int = 4, sample_per_cell: int = 24) -> np.ndarray:
    """Centroids [cells, m + 1]: Lloyd steps on a random subsample, seeded by random points."""
    rng = np.random.default_rng([seed, 65])
    zs = z[rng.choice(len(z), min(len(z), cells * sample_per_cell), replace=False)]
    cent = zs[rng.choice(len(zs), cells, replace=False)].copy()
    for _ in range(iters):
        a = _assign(zs, cent)
        counts = np.bincount(a, minlength=cells)
        # per-column weighted bincounts (float64): ~10x faster than np.add.at
        sums = np.stack([np.bincount(a, weights=col, minlength=cells) for col in zs.T], axis=1)
        ok = counts > 0
        cent[ok] = (sums[ok] / counts[ok, None]).astype(np.float32)
    return cent


def _assign(z: np.ndarray, cent: np.ndarray, block: int = 256) -> np.ndarray:
    """Nearest centroid of every row: one GEMM of ``[z, 1]`` against ``[-2 c, |c|^2]`` per
    block of rows, small enough that the [block, cells] scores stay in cache (16k-row blocks
    were ~5x slower at 100k x 1563 cells: every block a fresh 100 MB, page-faulted in)."""
    m = z.shape[1]
    b = np.empty((m + 1, len(cent)), dtype=np.float32)
    b[:m] = cent.T
    b[:m] *= -2
    b[m] = np.einsum("ij,ij->i", cent, cent)
    out = np.empty(len(z), dtype=np.int64)
    a = np.ones((block, m + 1), dtype=np.float32)
    g = np.empty((block, len(cent)), dtype=np.float32)
    for s in range(0, len(z), block):
        n = min(block, len(z) - s)
        a[:n, :m] = z[s:s + n]
        np.matmul(a[:n], b, out=g[:n])
        out[s:s + n] = np.argmin(g[:n], axis=1)
    return out


# Python threads for independent stages (each on one BLAS thread; same results with any count).
# Default "auto" (THREADS = None): thread_count()'s load rule. Two threads were ~25 % slower at
# load 6 on this shared 2-core machine and 0.92x the wall time of one on a quiet one (load 1.3;
# docs/metrics.md §6), so two only while a core is idle. EDGEGAN_METRICS_THREADS=N fixes the count.
_ENV_THREADS = os.environ.get("EDGEGAN_METRICS_THREADS", "auto")
THREADS: int | None = int(_ENV_THREADS) if _ENV_THREADS.isdigit() else None


def thread_count() -> int:
    """THREADS if set, else 2 while the 1-minute load average leaves a core idle (load < cores)
    and 1 otherwise: with every core taken by other jobs a second thread only adds GIL
    hand-offs (whole LSH+kNN at 20k: 2.39 s on one thread vs 3.17 s on two, load 6)."""
    if THREADS is not None:
        return max(1, THREADS)
    cores = os.cpu_count() or 1
    try:
        idle = os.getloadavg()[0] < cores
    except OSError:  # no load average on this platform
        idle = True
    return min(2, cores) if idle else 1


def parallel(jobs: list, threads: int | None = None) -> list:
    """Run independent callables on up to ``threads`` (default thread_count()) Python threads; results
    in order, the first exception re-raised. Why threads and not BLAS threads: numpy releases
    the GIL in its kernels, and a Python thread whose core is taken by another job simply waits,
    where threaded OpenBLAS spin-waits for it (§3 item 4 of docs/metrics.md: 4-8x slower).
    One thread (or one job) runs them in the caller's thread, in order."""
    threads = thread_count() if threads is None else threads
    if threads <= 1 or len(jobs) <= 1:
        return [job() for job in jobs]
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(min(threads, len(jobs))) as ex:
        futures = [ex.submit(job) for job in jobs]
        return [f.result() for f in futures]


def _one_blas_thread():
    """Small GEMMs (a cell against its probed cells) run ~5-25x faster on one BLAS thread than
    on a threaded OpenBLAS that spin-waits on a shared machine (measured: 128x33 @ 33x2000 in
    0.6 ms vs 16 ms at load 5); threadpoolctl (a core dependency; skipped if missing)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _around(cent: np.ndarray, wide: int) -> np.ndarray:
    """[cells, wide] each centroid's ``wide`` nearest centroids (itself among them)."""
    cells = len(cent)
    if wide >= cells:
        return np.broadcast_to(np.arange(cells), (cells, cells))
    cc = np.einsum("ij,ij->i", cent, cent)
    cd = cc[:, None] + cc[None, :] - 2 * (cent @ cent.T)
    np.fill_diagonal(cd, -1)
    return np.argpartition(cd, wide - 1, axis=1)[:, :wide]


def _pack(v: np.ndarray, i: np.ndarray) -> np.ndarray:
    """float32 values and int32 ids -> int64 keys ordered as (value, id): the float's bits made
    monotone as a signed integer (negative floats: low 31 bits flipped) above the id's 32 bits;
    -0.0 becomes +0.0 first (equal values tie by id, as in a float sort)."""
    b = (v + np.float32(0)).view(np.int32)
    b = np.where(b < 0, b ^ np.int32(0x7FFFFFFF), b).astype(np.int64)
    b <<= 32
    b |= i.astype(np.int64) & 0xFFFFFFFF
    return b


def _unpack(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hi = (key >> 32).astype(np.int32)
    hi = np.where(hi < 0, hi ^ np.int32(0x7FFFFFFF), hi)
    return hi.view(np.float32), (key & 0xFFFFFFFF).astype(np.uint32).view(np.int32)


class _Best:
    """Each row's ``c`` nearest (value, id) so far, in the first ``c`` columns of a buffer whose
    other ``width`` columns take the next round's survivors (rows with more overflow to a
    list, merged by one sort). A round only offers values <= the row's current c-th best.
    Merges run in row blocks: fresh large temporaries cost page faults (slow on this VM)."""

    def __init__(self, n: int, c: int, width: int, block: int = 4096) -> None:
        self.c, self.width, self.w, self.block = c, width, c + width, block
        self.v = np.full((n, self.w), np.inf, dtype=np.float32)
        self.i = np.full((n, self.w), -1, dtype=np.int32 if n < 2**31 else np.int64)
        self.vf, self.if_ = self.v.reshape(-1), self.i.reshape(-1)
        self.cnt = np.zeros(n, dtype=np.int64)
        self.over: list = []

    def threshold(self) -> np.ndarray:
        return self.v[:, :self.c].max(axis=1)

    def offer(self, q: np.ndarray, r: np.ndarray, ids: np.ndarray, vals: np.ndarray) -> None:
        """Survivors (row ``q[r]``, id, value); ``q`` distinct, ``r`` non-decreasing."""
        rc = np.bincount(r, minlength=len(q))
        c0 = self.cnt[q]
        slot = c0[r] + np.arange(len(r)) - (np.cumsum(rc) - rc)[r]
        self.cnt[q] = c0 + rc
        rows = q[r]
        ok = slot < self.width
        if not ok.all():
            self.over.append((rows[~ok], ids[~ok], vals[~ok]))
            rows, slot, ids, vals = rows[ok], slot[ok], ids[ok], vals[ok]
        at = rows * self.w + self.c + slot
        self.vf[at] = vals
        self.if_[at] = ids

    def merge(self) -> None:
        c = self.c
        packed = self.i.dtype == np.int32
        for s in range(0, len(self.v), self.block):
            if not self.cnt[s:s + self.block].any():
                continue
            v, i = self.v[s:s + self.block], self.i[s:s + self.block]
            if packed:  # (value, id) as one int64, sorted row-wise: SIMD sort, ~2x an argpartition + 2 gathers
                key = _pack(v, i)
                key.sort(axis=1)
                v[:, :c], i[:, :c] = _unpack(key[:, :c])
            else:
                pick = np.argpartition(v, c - 1, axis=1)[:, :c]
                nv, ni = np.take_along_axis(v, pick, axis=1), np.take_along_axis(i, pick, axis=1)
                v[:, :c], i[:, :c] = nv, ni
            v[:, c:] = np.inf
        if self.over:  # rows that overflowed: their best and overflow, sorted by (row, value, id)
            heavy = np.flatnonzero(self.cnt > self.width)
            q = np.concatenate([np.repeat(heavy, c)] + [o[0] for o in self.over])
            ids = np.concatenate([self.i[heavy, :c].ravel()] + [o[1] for o in self.over])
            vals = np.concatenate([self.v[heavy, :c].ravel()] + [o[2] for o in self.over])
            srt = np.lexsort((ids, vals, q))  # equal values by id, as the packed sort
            first = np.searchsorted(q[srt], heavy)
            take = srt[first[:, None] + np.arange(c)]
            self.v[heavy, :c] = vals[take]
            self.i[heavy, :c] = ids[take]
            self.over = []
        self.cnt[:] = 0

    def result(self) -> np.ndarray:
        """[n, c] ids nearest first (-1 where fewer exist)."""
        out = np.empty((len(self.v), self.c), dtype=np.int64)
        for s in range(0, len(self.v), self.block):
            v, i = self.v[s:s + self.block, :self.c], self.i[s:s + self.block, :self.c]
            srt = np.argsort(v, axis=1, kind="stable")
            o = np.take_along_axis(i, srt, axis=1)
            o[~np.isfinite(np.take_along_axis(v, srt, axis=1))] = -1
            out[s:s + self.block] = o
        return out


def _sort_keys(d: np.ndarray, col: np.ndarray, side: np.ndarray) -> np.ndarray:
    """int64 keys ordered as (side, float32 value, column) of d [G, S, S] (columns < 2^20, side
    [G, S] in 0..3): the value's bits made monotone and unsigned (-0.0 as +0.0: equal values
    tie by column, as in a stable float sort)."""
    b = (d + np.float32(0)).view(np.int32)
    b = np.where(b < 0, b ^ np.int32(0x7FFFFFFF), b).astype(np.int64)
    b += 1 << 31
    b <<= 20
    b |= col
    b |= (side << 52)[:, None, :]
    return b


def _from_keys(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float32 values, columns) of _sort_keys keys."""
    u = ((key >> 20) & 0xFFFFFFFF) - (1 << 31)
    v = u.astype(np.int32)
    v = np.where(v < 0, v ^ np.int32(0x7FFFFFFF), v)
    return v.view(np.float32), (key & 0xFFFFF).astype(np.int64)


def own_cells(zs: np.ndarray, cent: np.ndarray, starts: np.ndarray, n_of: np.ndarray, around: np.ndarray,
              P: int, ranks_kth: list, best: list, budget: int = 1 << 19) -> np.ndarray:
    """The own-cell stage of candidates(), batched: returns ``near`` [N, P] (each point's probed
    cells, own cell first, partitioned at ``ranks_kth``) and writes each point's ``c`` nearest
    same-cell points per side (itself excluded) into the first slots of ``best`` (still empty).

    Why batched: one pass per cell cost ~30 small numpy calls (~0.7 ms a cell, ~1 s at 100k for
    ~2 x 10^5 x 128 distances). Cells are sorted by size and cut into groups of similar size,
    padded to the group's largest (<= ``budget`` distances a group) and done with one batched
    GEMM, one sort and one ``flatnonzero`` per group; padded rows and columns are masked."""
    N, m = zs.shape
    c = best[0].c
    sizes = np.diff(starts)
    near = np.empty((N, P), dtype=np.int64)
    cc = np.einsum("ij,ij->i", cent, cent)
    by_size = np.argsort(sizes, kind="stable")
    by_size = by_size[sizes[by_size] > 0]
    g0 = 0
    while g0 < len(by_size):
        S = int(sizes[by_size[g0]])
        g1 = g0 + 1  # grow while the padded group fits the budget
        while g1 < len(by_size) and (g1 + 1 - g0) * int(sizes[by_size[g1]]) ** 2 <= budget:
            g1 += 1
        grp = by_size[g0:g1]
        g0 = g1
        G, S = len(grp), int(sizes[grp[-1]])
        size, s0, nr = sizes[grp], starts[grp], n_of[grp]
        col = np.arange(S)
        valid = col[None, :] < size[:, None]                      # [G, S] real rows / columns
        rows = np.where(valid, s0[:, None] + col[None, :], 0)     # permuted ids (0 on padding)
        zc = zs[rows] - cent[grp][:, None, :]                     # centred on the cell
        zc[~valid] = 0
        # probes: the P nearest centroids among the pool around the cell, own cell first
        pool_c = around[grp]                                      # [G, pool]
        d = np.matmul(zs[rows], cent[pool_c].transpose(0, 2, 1))
        d *= -2
        d += cc[pool_c][:, None, :]
        np.copyto(d, -np.inf, where=(pool_c == grp[:, None])[:, None, :])
        # (value, pool position) packed in int64 and sorted: SIMD sort, ~1.8x an argsort of d and
        # ~6x a 3-kth argpartition ([40k, 96] at load 6)
        key = _pack(d, np.broadcast_to(np.arange(d.shape[2], dtype=np.int32), d.shape))
        key.sort(axis=2)
        pick = key[:, :, :P] & 0xFFFFFFFF
        nb = np.take_along_axis(pool_c[:, None, :], pick, axis=2)
        near[rows[valid]] = nb[valid]
        # own cell, exactly: squared distances as in the per-cell GEMM form
        pp = np.einsum("gij,gij->gi", zc, zc)
        dd = np.matmul(zc, zc.transpose(0, 2, 1))
        dd *= -2
        dd += pp[:, :, None]
        dd += pp[:, None, :]
        dd[:, col, col] = np.inf
        dd[~valid] = np.inf                                       # padded rows
        # each row's c nearest per side in one sort of (side, value, column) keys: the side's
        # block of a sorted row starts where that side's columns start (reals first in a cell),
        # nearest first, itself (inf) last; padded columns form a third side after both
        side_col = np.where(col[None, :] < nr[:, None], 0, np.where(valid, 1, 2)).astype(np.int64)  # [G, S]
        key = _sort_keys(dd, col, side_col)
        key.sort(axis=2)  # SIMD sort of int64 rows
        gi, ri = np.nonzero(valid)
        q = rows[gi, ri]
        is_real = ri < nr[gi]
        t = np.arange(min(c, S))
        for side, base, count in ((0, 0 * nr[gi], nr[gi] - is_real), (1, nr[gi], size[gi] - nr[gi] - ~is_real)):
            at = np.minimum(base[:, None] + t[None, :], S - 1)
            k = key[gi[:, None], ri[:, None], at]
            ok = t[None, :] < count[:, None]
            val, j = _from_keys(k)
            best[side].v[q, :len(t)] = np.where(ok, val, np.inf)
            best[side].i[q, :len(t)] = np.where(ok, s0[gi][:, None] + j, -1)
    return near


def candidates(z: np.ndarray, n_real: int, c: int, probe: int, cell_size: int, seed: int,
               pool: int = 6, rounds: tuple[int, ...] = (3,), timing: dict | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per point of the stacked sets (reals first): [N, c] same-set and [N, c] other-set
    candidate ids (global; -1 where fewer exist), each row nearest first by LB.

    Each point probes the ``probe`` cells nearest to *itself* (as faiss's IVF does: a point near
    its cell's border needs the cells beyond that border, which the cells nearest to its
    centroid often are not), chosen among the ``pool``·probe centroids nearest to its own
    cell's (pool 2 kept 0.91 of the true neighbours' cells at 100k, 6: 0.99). Work runs in
    cell order (points permuted so that a cell is a contiguous slice):

    * own cell: each point's c nearest per set there, exactly (own_cells(): batched by cell size);
    * then the other probed cells in rounds of probe rank (``rounds``: rank boundaries; the
      two nearest other cells first): per cell one GEMM per set of the points probing it
      against its points; only values <= the point's current c-th best survive
      (``flatnonzero``, ~10 of ~64 per row), are written to a per-row buffer, and each round
      ends with one row-wise partition that tightens every threshold for the next round.

    The result is the same as keeping a running best over every probed cell (it was: ~3 top-c
    merges per cell and row, 2-D ``nonzero`` and strided ``min`` over every distance: ~2x
    slower at 100k)."""
    import time

    tt = time.perf_counter()
    N, m = z.shape
    cells = max(1, min(N // 2, int(round(N / cell_size))))
    cent = _kmeans(z, cells, seed) if cells > 1 else z[:1].copy()
    assign = _assign(z, cent) if cells > 1 else np.zeros(N, dtype=np.int64)
    P = min(probe, cells)
    order = np.argsort(assign, kind="stable")  # reals first in every cell (they come first in z)
    starts = np.searchsorted(assign[order], np.arange(cells + 1))
    n_of = np.bincount(assign[:n_real], minlength=cells)
    zs = z[order]
    around = _around(cent, min(cells, pool * P))
    cc = np.einsum("ij,ij->i", cent, cent)
    if timing is not None:
        timing["cells_fit"] = time.perf_counter() - tt
    bounds = [1, *[x for x in rounds if 1 < x < P], P]
    ranks_kth = sorted({0, *[x - 1 for x in bounds if x - 1 < len(around[0])]})
    best = [_Best(N, c, 2 * c) for _ in (0, 1)]  # by side of the columns: 0 real, 1 fake
    near = own_cells(zs, cent, starts, n_of, around, P, ranks_kth, best)
    for b in best:
        b.merge()
    if timing is not None:
        timing["cells_own"] = time.perf_counter() - tt - timing["cells_fit"]
    # every cell's column operand [-2 zp, 1, |zp|^2] (centred on the cell), once for all rounds
    # (rows per point: a cell's operand is a contiguous block, its transpose a BLAS flag)
    bt = np.empty((N, m + 2), dtype=np.float32)
    np.subtract(zs, cent[assign[order]], out=bt[:, :m])
    bt[:, m + 1] = np.einsum("ij,ij->i", bt[:, :m], bt[:, :m])
    bt[:, :m] *= -2
    bt[:, m] = 1
    for lo_rank, hi_rank in zip(bounds[:-1], bounds[1:]):
        # the (point, cell) pairs of these probe ranks, grouped by cell
        flat = near[:, lo_rank:hi_rank].ravel()
        # stable: ascending points within a cell (radix sort for < 2^16 cells)
        srt = np.argsort(flat.astype(np.uint16) if cells < 2**16 else flat, kind="stable")
        qid = srt // (hi_rank - lo_rank)  # ascending within a cell
        qstarts = np.searchsorted(flat[srt], np.arange(cells + 1))
        thr = [b.threshold() for b in best]

        def probe(sides: tuple, qid=qid, qstarts=qstarts) -> None:
            """These sides' columns of every cell (the sides write separate buffers, so each side
            can run on its own thread; one thread does both sides of a cell from one operand)."""
            for cell in range(cells):
                q = qid[qstarts[cell]:qstarts[cell + 1]]
                s0, nr, s1 = starts[cell], n_of[cell], starts[cell + 1]
                if not len(q) or s0 == s1:
                    continue
                # [zq, |zq|^2, 1] @ [-2 zp, 1, |zp|^2]^T: squared distances in one GEMM (centred on the cell)
                a = np.empty((len(q), m + 2), dtype=np.float32)
                np.subtract(zs[q], cent[cell], out=a[:, :m])
                a[:, m] = np.einsum("ij,ij->i", a[:, :m], a[:, :m])
                a[:, m + 1] = 1
                for side in sides:
                    lo, hi = (s0, s0 + nr) if side == 0 else (s0 + nr, s1)
                    if lo == hi:
                        continue
                    d2 = a @ bt[lo:hi].T
                    f = np.flatnonzero(d2 <= thr[side][q, None])
                    if len(f):
                        r, j = np.divmod(f, hi - lo)
                        best[side].offer(q, r, lo + j, d2.ravel()[f])

        if thread_count() > 1:
            parallel([lambda: probe((0,)), lambda: probe((1,))], 2)
        else:
            probe((0, 1))
        for b in best:
            b.merge()
    if timing is not None:
        timing["cells_probe"] = time.perf_counter() - tt - timing["cells_fit"] - timing["cells_own"]
    inv = np.empty(N, dtype=np.int64)
    inv[order] = np.arange(N)
    out = []
    for b in best:
        ids = b.result()
        ids = np.where(ids >= 0, order[np.maximum(ids, 0)], -1)[inv]  # back to global ids and rows
        out.append(ids)
    is_real = (np.arange(N) < n_real)[:, None]
    return np.where(is_real, out[0], out[1]), np.where(is_real, out[1], out[0])


class Exact:
    """Exact distances between rows of the stacked sets without stacking them (float32
    differences, as the LSH search measures them)."""

    def __init__(self, real: np.ndarray, fake: np.ndarray, block: int = 512) -> None:
        self.real, self.fake, self.nr, self.block = real, fake, len(real), block

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.empty(len(a), dtype=np.float64)
        if not len(a):
            return out
        for sa in (True, False):
            for sb in (True, False):
                sel = np.flatnonzero(((a < self.nr) == sa) & ((b < self.nr) == sb))
                if not len(sel):
                    continue
                xa = self.real if sa else self.fake
                xb = self.real if sb else self.fake
                ia = a[sel] - (0 if sa else self.nr)
                ib = b[sel] - (0 if sb else self.nr)
                srt = np.argsort(ia, kind="stable")  # nearer gathers for the first operand
                for s in range(0, len(sel), self.block):
                    part = srt[s:s + self.block]
                    diff = np.asarray(xa[ia[part]], dtype=np.float32)
                    diff -= xb[ib[part]]
                    # float32 squares summed pairwise: within ~2e-7 relative of float64 sums
                    # (tested), ~30 % faster than einsum(dtype=float64), which casts every element
                    np.square(diff, out=diff)
                    out[sel[part]] = np.sqrt(diff.sum(axis=1, dtype=np.float32).astype(np.float64))
        return out


def _bounds(z: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(LB, UB) of the true distance of pairs, from z by float64 differences, with MARGIN."""
    lb2 = np.zeros(len(a))
    for s in range(0, len(a), 65536):
        diff = z[a[s:s + 65536]].astype(np.float64) - z[b[s:s + 65536]]
        lb2[s:s + 65536] = np.einsum("ij,ij->i", diff, diff)
    rho = z[:, -1].astype(np.float64)
    ub2 = lb2 + 4 * rho[a] * rho[b]
    return np.sqrt(lb2) * (1 - MARGIN), np.sqrt(ub2) * (1 + MARGIN) + 1e-12


def lower_bounds(zq: np.ndarray, zb: np.ndarray, cache_bytes: int = 1 << 20) -> np.ndarray:
    """Dense [len(zq), len(zb)] lower bounds of the true distances (BoundsTo(zb)(zq))."""
    return BoundsTo(zb)(zq, cache_bytes)


class BoundsTo:
    """Lower bounds of the true distances from any rows to the rows of ``zb``: float32 Gram
    arithmetic on rows centred on ``zb``'s mean, with a slack for its rounding folded into the
    operand, then MARGIN. ``zb``'s side (the [-2 b, 1 - s, (1 - s) |b|^2] operand) is prepared
    once: the error estimate asks for ~100 query rows at a time against a whole set, and
    rebuilding that side per call was ~40 % of each call at 100k.

    Why float32 (float64 until 2026-12-01): half the memory traffic of the [rows, n] result,
    which the estimate's pruning then scans several times. The GEMM of ``m + 2`` terms rounds by
    at most ~(m + 2) 2^-24 (|q|^2 + |b|^2 + 2|q.b|) <= 4.4e-6 (|q|^2 + |b|^2) for m = 33;
    ``s = SLACK32`` = 1e-5 subtracts s (|q|^2 + |b|^2) per pair inside the GEMM (no extra pass),
    so the squared bound stays below the float32 value of the exact one; MARGIN covers the
    final square root. Tested never above the float64 distance, 0 for duplicates.

    One GEMM of ``[q, |q|^2, 1]`` against that operand per block of columns sized to stay in
    cache (the whole-matrix passes over a fresh [128, 100k] float64 array took ~0.5 s a call at
    100k, most of it page faults and memory traffic)."""

    def __init__(self, zb: np.ndarray) -> None:
        self.c = zb.mean(axis=0, dtype=np.float64) if len(zb) else np.zeros(zb.shape[1])
        b = zb.astype(np.float64) - self.c
        bb = np.einsum("ij,ij->i", b, b)
        m = b.shape[1]
        self.bt = np.empty((m + 2, len(b)), dtype=np.float32)
        self.bt[:m], self.bt[m], self.bt[m + 1] = -2 * b.T, 1 - SLACK32, (1 - SLACK32) * bb

    def __call__(self, zq: np.ndarray, cache_bytes: int = 1 << 20) -> np.ndarray:
        q = zq.astype(np.float64) - self.c
        m = q.shape[1]
        a = np.empty((len(q), m + 2), dtype=np.float32)
        a[:, :m], a[:, m], a[:, m + 1] = q, np.einsum("ij,ij->i", q, q), 1
        n = self.bt.shape[1]
        out = np.empty((len(q), n), dtype=np.float32)
        cols = max(64, cache_bytes // (4 * max(1, len(q))))
        with _one_blas_thread():  # small GEMMs (the error estimate calls this outside pca_knn)
            for s in range(0, n, cols):
                t = out[:, s:s + cols]
                np.matmul(a, self.bt[:, s:s + cols], out=t)
                np.maximum(t, 0, out=t)
                np.sqrt(t, out=t)
                t *= np.float32(1 - MARGIN)
        return out


def radii(z: np.ndarray, cand: np.ndarray, k: int, dist: Exact, rows: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Exact k-th nearest-candidate distance per point (0 with fewer than k candidates; only
    for ``rows`` if given, 0 elsewhere), and the number of exact distances it took."""
    N, c = cand.shape
    rad = np.zeros(N)
    valid = cand >= 0
    ok = valid.sum(axis=1) >= k
    rows = np.flatnonzero(ok) if rows is None else rows[ok[rows]]
    if not len(rows):
        return rad, 0
    ex = np.full((len(rows), c), np.inf)
    first = np.repeat(rows, k), cand[rows, :k].ravel()
    ex[:, :k] = dist(*first).reshape(len(rows), k)
    kth = ex[:, :k].max(axis=1)
    if c > k:
        rest = cand[rows, k:]
        ri, ci = np.nonzero(rest >= 0)
        a, b = rows[ri], rest[ri, ci]
        lb, _ = _bounds(z, a, b)
        need = lb < kth[ri]
        ex[ri[need], k + ci[need]] = dist(a[need], b[need])
        n_exact = len(rows) * k + int(need.sum())
    else:
        n_exact = len(rows) * k
    rad[rows] = np.partition(ex, k - 1, axis=1)[:, k - 1]
    return rad, n_exact


def radius_bounds(z: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) around each point's radius (the k-th smallest exact distance to its
    candidates): the k-th smallest lower and upper bound among them (order statistics keep
    the elementwise order); both 0 with fewer than k candidates, as the radius."""
    N, c = cand.shape
    lo, hi = np.zeros(N), np.zeros(N)
    rows = np.flatnonzero((cand >= 0).sum(axis=1) >= k)
    if not len(rows):
        return lo, hi
    sub = cand[rows]
    ri, ci = np.divmod(np.flatnonzero(sub >= 0), c)
    lb, ub = _bounds(z, rows[ri], sub[ri, ci])
    for out, v in ((lo, lb), (hi, ub)):
        full = np.full((len(rows), c), np.inf)
        full[ri, ci] = v
        out[rows] = np.partition(full, k - 1, axis=1)[:, k - 1]
    return lo, hi


def ball_tests(z: np.ndarray, other: np.ndarray, n_real: int, rad: np.ndarray, dist: Exact,
               rad_hi: np.ndarray | None = None, fill=None) -> tuple[np.ndarray, np.ndarray, int]:
    """(precise [nf], recalled [nr], exact distances measured): every cross candidate pair
    (from either side's list) tests both balls: fake in the real's ball, real in the fake's.

    ``rad``: exact radii; or lower bounds of them, with ``rad_hi`` upper bounds and
    ``fill(rows)`` making both exact for those rows: then only the radii that a pair's own
    bounds cannot decide against [lo, hi] are measured (on data near the subspace: few)."""
    N = len(z)
    qi, ci = np.nonzero(other >= 0)
    a, b = qi, other[qi, ci]
    r, f = np.minimum(a, b), np.maximum(a, b)  # reals come first
    codes = np.sort(r * N + f)  # unique pairs: a sort and a mask (np.unique's hashing was ~20x slower here)
    codes = codes[np.concatenate([[True], codes[1:] != codes[:-1]])]
    r, f = codes // N, codes % N
    lb, ub = _bounds(z, r, f)
    if rad_hi is not None:  # exact radii where [lo, hi] straddles the pair's [lb, ub]
        need = np.concatenate([r[(ub >= rad[r]) & (lb < rad_hi[r])], f[(ub >= rad[f]) & (lb < rad_hi[f])]])
        fill(np.unique(need))
    hi = rad if rad_hi is None else rad_hi
    # fake f in real r's ball, real r in fake f's ball: decided by bounds (inside: ub < lo;
    # outside: lb >= hi) or, with an exact radius (lo == hi), measured
    undecided = ((lb < hi[r]) & (ub >= rad[r])) | ((lb < hi[f]) & (ub >= rad[f]))
    d = np.full(len(r), np.nan)
    d[undecided] = dist(r[undecided], f[undecided])
    in_r = np.where(undecided, d < rad[r], ub < rad[r])
    in_f = np.where(undecided, d < rad[f], ub < rad[f])
    precise = np.zeros(N - n_real, dtype=bool)
    recalled = np.zeros(n_real, dtype=bool)
    precise[f[in_r] - n_real] = True
    recalled[r[in_f]] = True
    return precise, recalled, int(undecided.sum())


def pca_knn(real: np.ndarray, fake: np.ndarray, k: int, c: int, probe: int, dim: int, cell_size: int,
            seed: int, keep: dict | None = None, exact_rows: np.ndarray | None = None, background=None
            ) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray, np.ndarray]:
    """(precise, recalled, stats, real radii, fake radii) with the subspace-cell search (on one
    BLAS thread: faster on this shared 2-core machine even for the projection GEMMs).
    ``keep``: a dict that receives the embedding ``z`` (stacked, reals first) and gives it back
    to the next call with the same sets (a wider step, the error estimate's bounds).
    ``exact_rows`` (stacked ids): lazy radii: exact only for these rows and where a ball test
    needs them, elsewhere an upper bound (never below the exact one); precise/recalled are
    the same either way. Default: every radius exact.
    ``background(z)``: called with the embedding while the candidate search runs (on a second
    thread when thread_count() > 1), joined before the search's result is used; it must not touch the
    search's state (the error estimate prepares its sampled radii and bounds there)."""
    with _one_blas_thread():
        return _pca_knn(real, fake, k, c, probe, dim, cell_size, seed, keep, exact_rows, background)


def _pca_knn(real, fake, k, c, probe, dim, cell_size, seed, keep=None, exact_rows=None, background=None):
    import time

    t = {}
    t0 = time.perf_counter()
    nr = len(real)
    if keep is not None and keep.get("dim") == dim and "z" in keep:
        z = keep["z"]
    else:
        sub = fit_subspace(real, dim, seed)
        def emb(x: np.ndarray) -> np.ndarray:
            with np.errstate(invalid="ignore", over="ignore"):  # (per thread) non-finite rows raise below
                return embed(x, sub)

        z = np.concatenate(parallel([lambda: emb(real), lambda: emb(fake)]))
        if not np.isfinite(z).all():  # a row's residual norm is finite iff all its values are
            _not_finite(real, fake)
        if keep is not None:
            keep.update(z=z, dim=dim)
    t["subspace"] = time.perf_counter() - t0
    pending = None
    if background is not None:  # work that needs only z (the error estimate's), beside the search
        if thread_count() > 1:
            import concurrent.futures

            pool = concurrent.futures.ThreadPoolExecutor(1)
            pending = pool.submit(background, z)
            pool.shutdown(wait=False)
        else:
            background(z)
    try:
        same, other = candidates(z, nr, max(c, k), probe, cell_size, seed)
    finally:
        if pending is not None:  # joined here, inside the one-BLAS-thread limit it runs under
            pending.result()
    t["cells"] = time.perf_counter() - t0 - sum(t.values())
    dist = Exact(real, fake)
    n_rad, t_fill = [0], [0.0]
    if exact_rows is None:
        rad, n_rad[0] = radii(z, same, k, dist)
        rad_hi = fill = None
        n_exact_radii = len(z)
    else:
        rad, rad_hi = radius_bounds(z, same, k)
        done = np.zeros(len(z), dtype=bool)

        def fill(rows):
            ts = time.perf_counter()
            rows = rows[~done[rows]]
            ex, n = radii(z, same, k, dist, rows)
            rad[rows] = rad_hi[rows] = ex[rows]
            done[rows] = True
            n_rad[0] += n
            t_fill[0] += time.perf_counter() - ts

        fill(np.unique(np.asarray(exact_rows, dtype=np.int64)))
    t["radii"] = time.perf_counter() - t0 - sum(t.values())
    precise, recalled, n_ball = ball_tests(z, other, nr, rad, dist, rad_hi, fill)
    t["balls"] = time.perf_counter() - t0 - sum(t.values()) - t_fill[0]
    t["radii"] += t_fill[0]
    if rad_hi is not None:
        rad = rad_hi  # exact where measured, an upper bound elsewhere
        n_exact_radii = int(done.sum())
    stats = {"search": "pca-cells", "subspace_dim": int(z.shape[1] - 1), "probe": probe,
             "cell_size": cell_size, "candidates": int(max(c, k)),
             "measured_pairs": n_rad[0] + n_ball, "exact_radii": n_exact_radii,
             "residual_norm_median": float(np.median(z[:, -1])),
             "real_without_k_candidates": int((rad[:nr] == 0).sum()),
             "fake_without_k_candidates": int((rad[nr:] == 0).sum()),
             "seconds": {key: round(v, 3) for key, v in t.items()}}
    return precise, recalled, stats, rad[:nr], rad[nr:]
