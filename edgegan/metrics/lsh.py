"""LSH precision and recall: robust to isolated outliers, near-constant work per query.

Hashing (p-stable, Euclidean; Datar et al. 2004): a table is K projections
``h_j(x) = floor(a_j·x / w_t + u_j)`` with ``a_j ~ N(0, I_d)``, ``u_j ~ U[0, 1)``; the K
integers are folded to one 64-bit bucket key. L independent tables. Two points at distance r
share a bucket of one table with probability ``p(w/r)^K`` — near points often, far ones
almost never. Buckets are counted by sorting keys (``np.unique``/``searchsorted``), so there
is no Python loop over points; memory is O(n·L) integers plus the feature matrices.

Both variants (definitions with reasoning in docs/metrics.md):

* **LSH-only** (``lsh_precision``/``lsh_recall``): a fake point is *supported* in a table
  when its bucket holds at least ``min_count`` (m, default 2) real points; it is *precise*
  when supported in at least ``vote`` (default half) of the L tables. Recall swaps the roles.
  Constant work per query after hashing; a real outlier alone in its bucket never supports
  anything, which is what makes it robust where kNN balls are not.
* **LSH+kNN** (``lsh_knn_precision``/``lsh_knn_recall``): improved precision/recall with the
  neighbour search restricted to candidates. The default candidate search (``search="pca"``)
  is ann.py's subspace cells with exact re-ranking (faster and finds the true neighbours on
  low-dimensional data); with ``search="lsh"``, per table the points of both sets are sorted
  by (bucket, position along the table's first projection) and each point's candidates are
  the ``window`` points before and after it in the same bucket; the ``max_candidates`` best
  of them per set (ranked by distance in the projected space) are measured exactly. A
  point's radius is the distance to its k-th nearest same-set candidate (0 if it has fewer
  than k: an isolated outlier covers nothing); a fake point is precise if some real
  candidate's ball holds it.

Parameters (overridable in :class:`LSHConfig`): L from n and K from d (see
:func:`auto_parameters`), and each table's width w_t calibrated on the reference set so that
the median number of other reference points in a reference point's bucket equals
``occupancy`` — this adapts w to the data's scale and intrinsic dimension, and to each table's
random geometry, without a single O(n²) distance.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from typing import Optional

import numpy as np

from ..config import JsonConfig
from ..errors import ConfigError
from .base import check_pair, register_metric

log = logging.getLogger(__name__)

_MIX = np.uint64(0x9E3779B97F4A7C15)


@dataclasses.dataclass
class LSHConfig(JsonConfig):
    """LSH parameters; ``None`` means chosen automatically (documented rule)."""

    tables: Optional[int] = None          # L
    projections: Optional[int] = None     # K per table
    bucket_width: Optional[float] = None  # w, in feature units
    occupancy: float = 8.0                # target median bucket occupancy for calibrating w
    min_count: int = 2                    # m: real points a bucket needs to support a query
    vote: float = 0.5                     # share of tables that must support a query
    window: int = 16                      # LSH+kNN: candidates per table on each side
    max_candidates: int = 8               # LSH+kNN: partners per point and set measured exactly
    k: int = 3                            # LSH+kNN: k of the kNN radius
    seed: int = 0
    error_sample: int = 128               # LSH+kNN: points per set checked by exact search (0: no estimate)
    error_tolerance: float = 0.03         # LSH+kNN: widen the search until the error bound is below this
    radius_tolerance: float = 0.01        # LSH+kNN: a sampled radius "matches" within this relative margin
    adapt_budget_s: float = 30.0          # LSH+kNN: time for the search + its adaptation (0: no adaptation)
    exhaustive_fallback: bool = True      # LSH+kNN: run exact search when predicted cheaper than widening
    search: str = "pca"                   # LSH+kNN candidate search: "pca" (subspace cells, ann.py) or "lsh" (bucket windows)
    subspace_dim: int = 32                # search="pca": principal directions of the candidate search
    probe: int = 16                       # search="pca": nearest cells each point is compared with
    cell_size: int = 128                  # search="pca": points (both sets) per cell

    def validate(self) -> None:
        for name in ("tables", "projections"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"lsh {name} must be >= 1, got {v}", field=name)
        if self.bucket_width is not None and not (self.bucket_width > 0 and math.isfinite(self.bucket_width)):
            raise ConfigError(f"lsh bucket_width must be a positive number, got {self.bucket_width}", field="bucket_width")
        if not self.occupancy >= 1:
            raise ConfigError(f"lsh occupancy must be >= 1, got {self.occupancy}", field="occupancy")
        if self.min_count < 1:
            raise ConfigError(f"lsh min_count must be >= 1, got {self.min_count}", field="min_count")
        if not 0 < self.vote <= 1:
            raise ConfigError(f"lsh vote must be in (0, 1], got {self.vote}", field="vote")
        if self.window < 1:
            raise ConfigError(f"lsh window must be >= 1, got {self.window}", field="window")
        if self.search not in ("pca", "lsh"):
            raise ConfigError(f"lsh search must be 'pca' or 'lsh', got {self.search!r}", field="search")
        for name in ("subspace_dim", "probe", "cell_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"lsh {name} must be >= 1, got {getattr(self, name)}", field=name)
        if self.k < 1:
            raise ConfigError(f"lsh k must be >= 1, got {self.k}", field="k")
        if self.max_candidates < 1:
            raise ConfigError(f"lsh max_candidates must be >= 1, got {self.max_candidates}", field="max_candidates")
        if self.error_sample < 0:
            raise ConfigError(f"lsh error_sample must be >= 0, got {self.error_sample}", field="error_sample")
        if not 0 < self.error_tolerance < 1:
            raise ConfigError(f"lsh error_tolerance must be in (0, 1), got {self.error_tolerance}",
                              field="error_tolerance")
        if not self.radius_tolerance >= 0:
            raise ConfigError(f"lsh radius_tolerance must be >= 0, got {self.radius_tolerance}", field="radius_tolerance")
        if not self.adapt_budget_s >= 0:
            raise ConfigError(f"lsh adapt_budget_s must be >= 0, got {self.adapt_budget_s}", field="adapt_budget_s")


def auto_parameters(n: int, d: int) -> tuple[int, int]:
    """(L, K) from the reference size n and the feature dimension d.

    K = min(4, d). With per-table calibrated widths K no longer sets the bucket *size* (the
    occupancy target does) but its shape: more projections bound the bucket in more
    directions, making the support test stricter and less stable (measured on synthetic data:
    same-distribution precision 0.95 / 0.92 / 0.88 at K = 3 / 4 / 6, n = 20k), and cost
    n·d·L·K in the projection GEMM. L = clip(round(1.5 · log2 n), 16, 24): more tables as n
    grows for the vote and the LSH+kNN candidate search, capped for cost.
    """
    logn = math.log2(max(n, 2))
    k = int(min(4, max(d, 1)))
    L = int(min(max(round(1.5 * logn), 16), 24))
    return L, k


@dataclasses.dataclass
class LSHIndex:
    """Hash functions fitted to a reference set (the calibrated widths are part of the fit)."""

    tables: int
    projections: int
    widths: np.ndarray       # [L] bucket width w_t of each table
    center: np.ndarray       # [d] subtracted before projecting (numerics only)
    directions: np.ndarray   # [d, L*K] float32
    offsets: np.ndarray      # [L*K] in [0, 1)
    multipliers: np.ndarray  # [K] odd uint64, folds K integers into one key

    def project(self, x: np.ndarray, scaled: bool = True) -> np.ndarray:
        """Projections ``a·(x - c)`` [n, L*K] in float32, divided by the table widths when
        ``scaled``: one GEMM, the dominant cost of LSH-only (float32 rounding moves a point
        across a bucket boundary only within ~1e-6 w of it, which is as good as random)."""
        out = x @ self.directions
        out -= (self.center.astype(np.float64) @ self.directions.astype(np.float64)).astype(np.float32)[None, :]
        if scaled:
            out *= np.repeat(1.0 / self.widths, self.projections).astype(np.float32)[None, :]
        return out

    def keys(self, proj: np.ndarray) -> np.ndarray:
        """Bucket keys [n, L] (uint64) from scaled projections."""
        return _fold(np.floor(proj + self.offsets), self.tables, self.projections, self.multipliers)


def _fold(cells: np.ndarray, tables: int, k: int, multipliers: np.ndarray) -> np.ndarray:
    """K integer cell coordinates per table -> one 64-bit key (multiply-add mod 2^64, then a
    xor-shift mix); distinct cells collide with probability ~2^-64."""
    h = cells.astype(np.int64).view(np.uint64).reshape(len(cells), tables, k)
    with np.errstate(over="ignore"):
        # K multiply-adds on [n, L] slices: the same sum mod 2^64 as (h * m).sum(axis=2), ~4x
        # faster than numpy's reduction over a length-K inner axis (measured at 200k x 24 x 4)
        key = h[:, :, 0] * multipliers[0]
        for j in range(1, k):
            key += h[:, :, j] * multipliers[j]
        key ^= key >> np.uint64(29)
        key *= _MIX
        key ^= key >> np.uint64(32)
    return key


def _median_occupancy(proj1: np.ndarray, offsets: np.ndarray, width: float, multipliers: np.ndarray) -> float:
    """One table: median over points of how many *other* points share their bucket."""
    key = _fold(np.floor(proj1 * np.float32(1.0 / width) + offsets), 1, len(offsets), multipliers)[:, 0]
    key.sort()
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    counts = np.sort(np.diff(np.append(starts, len(key))))  # bucket sizes, ascending
    # a point in a bucket of size c has c - 1 others: weighted median of c - 1 with weight c
    half = np.searchsorted(np.cumsum(counts), (len(key) + 1) / 2)
    return float(counts[half] - 1)


def _bisect_width(occupancy, target: float, lo: float, hi: float, tol: float, accept: float = 1.15) -> float:
    """A width (to ``tol`` in log) whose median occupancy reaches ``target``; stops early at
    one within [target, accept · target]."""
    lo, hi = math.log(lo), math.log(hi)
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        occ = occupancy(math.exp(mid))
        if occ >= target:
            hi = mid
            if occ <= accept * target:
                break
        else:
            lo = mid
    return math.exp(hi)


def calibrate_widths(index: LSHIndex, proj1: np.ndarray, target: float) -> np.ndarray:
    """Per-table widths so that every table's median own-bucket occupancy is ``target``
    (to within 15 %).

    Tables differ a lot at the same w (the K random directions cut the data's intrinsic
    subspace into cells of very different volume), so each table gets its own w_t: a coarse
    bisection on table 0 gives w0, then a bisection per table within [w0/4, 4·w0] (widened
    when a table falls outside).
    """
    n, K = len(proj1), index.projections
    target = min(target, (n - 1) / 2)
    spread = float(np.max(proj1.max(axis=0) - proj1.min(axis=0)))
    if spread <= 0:
        return np.ones(index.tables)  # all points identical: any width gives one bucket

    def occ(t: int):
        sl = slice(t * K, (t + 1) * K)
        cols = np.ascontiguousarray(proj1[:, sl])
        return lambda w: _median_occupancy(cols, index.offsets[sl], w, index.multipliers)

    w0 = _bisect_width(occ(0), target, spread * 1e-7, spread * 4, tol=0.1)
    widths = np.empty(index.tables)
    for t in range(index.tables):
        o = occ(t)
        lo, hi = w0 / 4, w0 * 4
        w = _bisect_width(o, target, lo, hi, tol=0.05)
        if w >= hi * 0.999 and o(hi) < target:  # rare: the table needs wider buckets
            w = _bisect_width(o, target, hi, spread * 64, tol=0.05)
        elif w <= lo * 1.06 and o(lo) >= target:  # or narrower ones
            w = _bisect_width(o, target, spread * 1e-7, lo, tol=0.05)
        widths[t] = w
    log.debug("lsh: widths %.4g..%.4g for median occupancy %.1f", widths.min(), widths.max(), target)
    return widths


def fit_index(real: np.ndarray, config: LSHConfig) -> tuple[LSHIndex, np.ndarray]:
    """Draw the hash functions, calibrate widths on ``real``; return the index and the real
    set's scaled projections."""
    n, d = real.shape
    L_auto, K_auto = auto_parameters(n, d)
    L = config.tables or L_auto
    K = config.projections or K_auto
    rng = np.random.default_rng(config.seed)
    directions = rng.standard_normal((d, L * K)).astype(np.float32)
    offsets = rng.random(L * K).astype(np.float32)
    multipliers = (rng.integers(1, 2**62, size=K, dtype=np.int64).astype(np.uint64) << np.uint64(1)) | np.uint64(1)
    center = real.mean(axis=0, dtype=np.float64).astype(real.dtype)
    index = LSHIndex(L, K, np.ones(L), center, directions, offsets, multipliers)
    proj = index.project(real, scaled=False)
    if config.bucket_width is not None:
        index.widths = np.full(L, float(config.bucket_width))
    else:
        index.widths = calibrate_widths(index, proj, config.occupancy)
    proj *= np.repeat(1.0 / index.widths, K).astype(np.float32)[None, :]
    return index, proj


def _cross_counts(keys_r: np.ndarray, keys_f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per table: how many real points share each fake point's bucket, and how many fake
    points share each real point's bucket ([nf, L], [nr, L]); one sort per table."""
    nr, L = keys_r.shape
    real_in_f = np.empty(keys_f.shape, dtype=np.int32)
    fake_in_r = np.empty(keys_r.shape, dtype=np.int32)
    for t in range(L):
        ks = np.concatenate([keys_r[:, t], keys_f[:, t]])
        order = np.argsort(ks)
        s = ks[order]
        group_sorted = np.concatenate([[0], np.cumsum(s[1:] != s[:-1])])
        group = np.empty_like(group_sorted)
        group[order] = group_sorted
        n_groups = int(group_sorted[-1]) + 1
        per_real = np.bincount(group[:nr], minlength=n_groups)
        per_fake = np.bincount(group[nr:], minlength=n_groups)
        real_in_f[:, t] = per_real[group[nr:]]
        fake_in_r[:, t] = per_fake[group[:nr]]
    return real_in_f, fake_in_r


def _supported(counts: np.ndarray, config: LSHConfig) -> np.ndarray:
    """Supported (>= m points of the other set) in at least ``vote`` of the tables."""
    votes = (counts >= config.min_count).sum(axis=1)
    return votes >= config.vote * counts.shape[1] - 1e-9


def _candidate_pairs(keys: np.ndarray, order_values: np.ndarray, window: int) -> np.ndarray:
    """Unique unordered pairs (i < j) sharing a bucket within ``window`` sorted positions."""
    n, L = keys.shape
    codes = []
    for t in range(L):
        order = np.lexsort((order_values[:, t], keys[:, t]))
        ks = keys[order, t]
        for o in range(1, window + 1):
            same = ks[:-o] == ks[o:]
            a, b = order[:-o][same], order[o:][same]
            codes.append(np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b))
    if not codes:
        return np.empty((0, 2), np.int64)
    codes = np.concatenate(codes)
    codes.sort()
    codes = codes[np.concatenate([[True], codes[1:] != codes[:-1]])]
    return np.stack([codes // n, codes % n], axis=1)


def _shortlist(pairs: np.ndarray, approx: np.ndarray, n_first: int, keep_per_set: int) -> np.ndarray:
    """Keep, for every point, its ``keep_per_set`` candidates from each set (rows below /
    from ``n_first``) with the smallest approximate distance; a pair stays if either end
    keeps it."""
    i, j = pairs[:, 0], pairs[:, 1]
    n = int(pairs.max()) + 1 if len(pairs) else 1
    owner = np.concatenate([i * 2 + (j >= n_first), j * 2 + (i >= n_first)])  # (point, partner set)
    partner = np.concatenate([j, i])
    # the float32 bit pattern is monotone for non-negative floats; its top 20 bits rank to
    # ~2.4e-4 relative, plenty for choosing candidates
    dist = (approx.astype(np.float32).view(np.int32) >> 11).astype(np.int64)
    dist = np.concatenate([dist, dist])
    bits_p, bits_o = max(n - 1, 1).bit_length(), max(2 * n - 1, 1).bit_length()
    if bits_p + bits_o + 20 <= 63:  # one packed int64 sort: ~2x faster than argsort
        packed = np.sort((owner << (20 + bits_p)) | (dist << bits_p) | partner)
        owner, partner = packed >> (20 + bits_p), packed & ((1 << bits_p) - 1)
    else:
        order = np.lexsort((dist, owner))
        owner, partner = owner[order], partner[order]
    rank = np.arange(len(owner)) - np.searchsorted(owner, owner, side="left")
    keep = rank < keep_per_set
    a, b = owner[keep] >> 1, partner[keep]
    codes = np.unique(np.minimum(a, b) * n + np.maximum(a, b))
    return np.stack([codes // n, codes % n], axis=1)


def _pair_distances(x: np.ndarray, pairs: np.ndarray, block: int = 2048) -> np.ndarray:
    """Euclidean distance per pair; small blocks + in-place ops keep the gathers in cache."""
    out = np.empty(len(pairs), dtype=np.float64)
    for s in range(0, len(pairs), block):
        p = pairs[s : s + block]
        diff = x[p[:, 0]]
        diff -= x[p[:, 1]]
        out[s : s + block] = np.einsum("ij,ij->i", diff, diff)
    return np.sqrt(out, out=out)


def _kth_radius(n: int, owner: np.ndarray, dist: np.ndarray, k: int) -> np.ndarray:
    """k-th smallest candidate distance per owner; 0 for owners with fewer than k candidates."""
    radius = np.zeros(n, dtype=np.float64)
    if len(owner) == 0:
        return radius
    order = np.lexsort((dist, owner))
    o, d = owner[order], dist[order]
    starts = np.searchsorted(o, np.arange(n), side="left")
    counts = np.bincount(o, minlength=n)
    ok = counts >= k
    radius[ok] = d[starts[ok] + k - 1]
    return radius


def _lsh_knn(real: np.ndarray, fake: np.ndarray, proj_r: np.ndarray, proj_f: np.ndarray,
             keys_r: np.ndarray, keys_f: np.ndarray, index: LSHIndex, config: LSHConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    nr, nf = len(real), len(fake)
    keys = np.concatenate([keys_r, keys_f])
    # secondary order inside a bucket: position along each table's first projection
    first = np.arange(index.tables) * index.projections
    order_values = np.concatenate([proj_r[:, first], proj_f[:, first]])
    pairs = _candidate_pairs(keys, order_values, config.window)
    n_all = len(pairs)
    if n_all:
        # rank candidates by their distance in the L*K projected dims (a Johnson-Lindenstrauss
        # estimate at ~K*L/d of the cost), measure exactly only each point's best ones
        p = np.concatenate([proj_r, proj_f])
        pairs = _shortlist(pairs, _pair_distances(p, pairs), nr, max(config.max_candidates, config.k))
    x = np.concatenate([real, fake]) - index.center
    dist = _pair_distances(x, pairs)
    i, j = pairs[:, 0], pairs[:, 1]  # i < j, so a mixed pair is always (real, fake)
    rr = j < nr
    ff = i >= nr
    rf = (i < nr) & (j >= nr)
    r_rad = _kth_radius(nr, np.concatenate([i[rr], j[rr]]), np.concatenate([dist[rr], dist[rr]]), config.k)
    f_rad = _kth_radius(nf, np.concatenate([i[ff], j[ff]]) - nr, np.concatenate([dist[ff], dist[ff]]), config.k)
    ri, fi, dd = i[rf], j[rf] - nr, dist[rf]
    precise = np.zeros(nf, dtype=bool)
    precise[fi[dd < r_rad[ri]]] = True
    recalled = np.zeros(nr, dtype=bool)
    recalled[ri[dd < f_rad[fi]]] = True
    stats = {"candidate_pairs": n_all, "measured_pairs": int(len(pairs)),
             "real_without_k_candidates": int((r_rad == 0).sum()),
             "fake_without_k_candidates": int((f_rad == 0).sum())}
    return precise, recalled, stats, r_rad, f_rad


def _adaptive_lsh_knn(real: np.ndarray, fake: np.ndarray, proj_r: np.ndarray, proj_f: np.ndarray,
                      keys_r: np.ndarray, keys_f: np.ndarray, index: LSHIndex,
                      config: LSHConfig) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """LSH+kNN, then its error against exact kNN estimated on a subsample (lsh_error.py);
    while that is above ``error_tolerance`` and time allows, the search is rerun wider:
    step i uses window and max_candidates x 2^i and 8·i more tables."""
    keep: dict = {}  # the subspace embedding: reused by wider steps and the error estimate's bounds

    def run(step: int) -> tuple:
        if config.search == "pca":
            from .ann import pca_knn

            c, probe = config.max_candidates * 2 ** step, config.probe * 2 ** step
            # lazy radii: exact for the error estimate's sampled points and where a ball test needs them
            rows = (np.concatenate([estimator.real_rows, len(real) + estimator.fake_rows])
                    if estimator is not None else np.zeros(0, dtype=np.int64))
            warm = None
            if estimator is not None and step == 0:
                def warm(z: np.ndarray) -> None:  # beside the candidate search: needs only the embedding
                    estimator.set_bounds(z)
                    estimator.prepare()
            p, r, stats, r_rad, f_rad = pca_knn(real, fake, config.k, c, probe, config.subspace_dim,
                                                config.cell_size, config.seed, keep, exact_rows=rows, background=warm)
            return p, r, r_rad, f_rad, stats, {"search": "pca", "probe": probe, "max_candidates": c}
        if step == 0:
            cfg, idx, pr, pf, kr, kf = config, index, proj_r, proj_f, keys_r, keys_f
        else:
            cfg = dataclasses.replace(config, window=config.window * 2 ** step,
                                      max_candidates=config.max_candidates * 2 ** step,
                                      tables=index.tables + 8 * step, projections=index.projections)
            idx, pr = fit_index(real, cfg)
            pf = idx.project(fake)
            kr, kf = idx.keys(pr), idx.keys(pf)
        p, r, stats, r_rad, f_rad = _lsh_knn(real, fake, pr, pf, kr, kf, idx, cfg)
        params = {"tables": idx.tables, "window": cfg.window, "max_candidates": cfg.max_candidates}
        return p, r, r_rad, f_rad, stats, params

    estimator = None
    if config.error_sample == 0:
        p, r, _, _, stats, _ = run(0)
        return p, r, stats, {"approx_error": None, "stopped": "not estimated (error_sample=0)"}
    from .lsh_error import ErrorEstimator, adapt

    estimator = ErrorEstimator(real, fake, config.k, config.error_sample, config.seed, bounded=config.search == "pca")
    max_steps = 6 if config.adapt_budget_s > 0 else 1
    (p, r, _, _, stats, params), record = adapt(run, estimator, config.error_tolerance, config.radius_tolerance,
                                                config.adapt_budget_s, max_steps, config.exhaustive_fallback)
    record["search"] = params
    return p, r, stats, record


def lsh_scores(real: np.ndarray, fake: np.ndarray, config: LSHConfig | None = None,
               variants: tuple[str, ...] = ("lsh", "lsh_knn"), details: bool = False) -> dict:
    """LSH-only and/or LSH+kNN precision and recall of ``fake`` against ``real`` features.

    Returns lsh_precision, lsh_recall, lsh_knn_precision, lsh_knn_recall (for the requested
    variants) and, with ``details``, the parameters used and per-sample boolean arrays.
    """
    config = config or LSHConfig()
    for v in variants:
        if v not in ("lsh", "lsh_knn"):
            raise ConfigError(f"unknown LSH variant '{v}'; choose from lsh, lsh_knn")
    # LSH+kNN alone with the subspace search scans for NaN/inf in its projection pass (ann.pca_knn):
    # one read of both sets less (~0.1 s at 20k x 2048, ~0.4 s at 100k)
    scan = not (tuple(variants) == ("lsh_knn",) and config.search == "pca")
    real, fake = check_pair(real, fake, max(config.k, config.min_count), finite=scan)
    real = real.astype(np.float32, copy=False)
    fake = fake.astype(np.float32, copy=False)
    index = proj_r = proj_f = keys_r = keys_f = None
    if "lsh" in variants or config.search == "lsh":  # the subspace search needs no hash tables
        index, proj_r = fit_index(real, config)
        proj_f = index.project(fake)
        keys_r, keys_f = index.keys(proj_r), index.keys(proj_f)
    out: dict = {}
    per_sample: dict = {}
    if "lsh" in variants:
        real_in_f, fake_in_r = _cross_counts(keys_r, keys_f)
        p, r = _supported(real_in_f, config), _supported(fake_in_r, config)
        out.update(lsh_precision=float(p.mean()), lsh_recall=float(r.mean()))
        per_sample.update(lsh_precise=p, lsh_recalled=r)
    if "lsh_knn" in variants:
        p, r, stats, approx = _adaptive_lsh_knn(real, fake, proj_r, proj_f, keys_r, keys_f, index, config)
        out.update(lsh_knn_precision=float(p.mean()), lsh_knn_recall=float(r.mean()),
                   lsh_knn_approx_error=approx["approx_error"])
        per_sample.update(lsh_knn_precise=p, lsh_knn_recalled=r)
    if details:
        out["parameters"] = {"min_count": config.min_count, "vote": config.vote, "occupancy": config.occupancy,
                             "window": config.window, "max_candidates": config.max_candidates, "k": config.k,
                             "seed": config.seed, "search": config.search}
        if index is not None:
            out["parameters"].update(tables=index.tables, projections=index.projections,
                                     bucket_width=float(np.median(index.widths)),
                                     bucket_width_range=[float(index.widths.min()), float(index.widths.max())])
        if "lsh_knn" in variants:
            out["parameters"].update(stats)
            out["lsh_knn_approx"] = approx
        out["per_sample"] = per_sample
    return out


def _lsh_joint(real: np.ndarray, fake: np.ndarray, configs: dict) -> dict:
    """Both LSH variants from one index when they share a config (compare's default)."""
    cfgs = list(configs.values())
    if any(c != cfgs[0] for c in cfgs[1:]):
        out: dict = {}
        for name, cfg in configs.items():
            out.update(lsh_scores(real, fake, cfg, variants=(name,)))
        return out
    out = lsh_scores(real, fake, cfgs[0], variants=tuple(configs), details=True)
    out.pop("per_sample")
    out["lsh_parameters"] = out.pop("parameters")
    return out


_LSH_OPTIONS = {"k": "k", "seed": "seed", "lsh_tables": "tables", "lsh_projections": "projections",
                "lsh_width": "bucket_width"}


@register_metric("lsh", LSHConfig, [("lsh_precision", "LSH precision (LSH-only)"), ("lsh_recall", "LSH recall (LSH-only)")],
                 "LSH-only precision/recall: bucket statistics, constant work per query",
                 short="LSH P / R", options=_LSH_OPTIONS, joint=_lsh_joint)
def lsh_precision_recall(real: np.ndarray, fake: np.ndarray, config: LSHConfig | None = None) -> dict[str, float]:
    return lsh_scores(real, fake, config, variants=("lsh",))


@register_metric("lsh_knn", LSHConfig, [("lsh_knn_precision", "LSH+kNN precision"), ("lsh_knn_recall", "LSH+kNN recall"),
                                         ("lsh_knn_approx_error", "LSH+kNN approx. error (est. 95% bound vs exact kNN)")],
                 "LSH+kNN precision/recall: LSH candidates, then a kNN-radius test",
                 short="LSH+kNN P / R", summary=False, options=_LSH_OPTIONS, joint=_lsh_joint)
def lsh_knn_precision_recall(real: np.ndarray, fake: np.ndarray, config: LSHConfig | None = None) -> dict:
    out = lsh_scores(real, fake, config, variants=("lsh_knn",), details=True)
    out.pop("per_sample")
    out.pop("parameters")
    return out
