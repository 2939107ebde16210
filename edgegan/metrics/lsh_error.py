"""How far LSH+kNN precision/recall is from exact kNN, measured on a random subsample, and
the adaptation that widens the candidate search until that estimate is small enough.

LSH+kNN takes a point's kNN radius among its LSH candidates only, so a missed true neighbour
*inflates* the radius (the k-th candidate distance is never below the true k-th distance) and
a missed pair can hide a ball that contains a query. Which way the score moves depends on the
data; on clustered, noisy, high-dimensional features (near-equal distances) the inflation
dominates (issue #21: +0.15 to +0.2). Nothing about that is visible from the LSH side alone,
so it is measured:

* draw ``s`` random fake points (for precision) and ``s`` random real points (for recall);
* compute each one's exact distances to the whole other set (s x n, BLAS, the same arithmetic
  as the exact kNN reference), and the exact kNN radius of every ball that could decide it:
  the balls that contain it under the LSH radii (exact radii are never larger, so no other
  ball with an LSH radius can contain it) and the points the LSH search left without k
  candidates (radius 0: unknown; all of them up to MAX_ZERO, else those among the sampled
  point's NEAR nearest);
* the exact decision of each sampled point follows, hence the disagreement with the LSH+kNN
  decision. ``precision_error`` is ``|mean(LSH - exact)|`` plus twice its standard error
  (variance bounded by the disagreement rate, taken as (x + 1) / (s + 2) so that 0 of 128
  disagreeing still reports 0.015): an estimated 95 % upper bound on |LSH+kNN - exact kNN|
  over the full set.

Adaptation: while the bound is above ``error_tolerance`` and the time budget allows, rerun the
candidate search with twice the window and per-point candidates and 8 more tables (a new
index), and estimate again on the same sample (exact radii are cached across steps). When the
exhaustive exact search is predicted to cost less than the next wider step (small sets), it
is run instead and the error is 0 by construction.

Arithmetic: float32 GEMMs (no float64 copy of a set) only *screen* which pairs matter; every
distance that decides something is recomputed exactly by float64 differences (a radius from
the k + REFINE screened nearest, a ball test from the pair itself). Candidate balls are
checked nearest first and a point stops at its first hit, so most exact radii are spent on
the points outside every ball.

With the default candidate search its subspace embedding gives lower bounds of every true
distance (ann.py): then a radius is found by measuring the k + REFINE nearest by bound and
every point whose bound is below their k-th distance (no other point can be nearer), and the
candidate balls are those whose bound is below their LSH radius. Exact all the same; it falls
back to the screen for rows where the bounds leave more than PRUNE_SHARE of a set (isotropic
noise far off the subspace).

Cost of the estimate: a few exact radii per sampled point, each a pass over its set;
the sample shrinks (to >= 100 per set) to keep that near EXACT_FLOPS multiply-adds, and the
sample sizes are reported, so the bound is wide when the sample is small.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Callable

import numpy as np

from .ann import BoundsTo
from .knn import distance_blocks  # exhaustive(): the prdc arithmetic

log = logging.getLogger(__name__)

NEAR = 8                # radius-0 points checked among each sampled point's nearest, when many
EXACT_FLOPS = 6e10      # the estimate's exact searches stay near this many multiply-adds (sample shrinks)
MAX_ZERO = 512          # radius-0 points checked exhaustively up to this count
CROSS_BYTES = 256 << 20  # the s x n exact distance block of one side stays below this
REFINE = 8              # float32 screening keeps k + REFINE nearest per row for the exact recheck
MARGIN = 1e-3           # relative margin of the float32 screen (its error is ~1e-5 relative here)
PRUNE_SHARE = 1 / 16     # bound-pruned exact search while at most this share of a set survives the bound
EXHAUSTIVE_SLOWDOWN = 2.5  # exhaustive search (float64, prdc's arithmetic) vs the screen's float32 rate


def _exact_dist(x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray, block: int = 4096) -> np.ndarray:
    """||x[a] - y[b]|| by differences in float64, rounded to float32 as the exact reference
    (the ~few-ulp difference from its Gram-matrix arithmetic is far below the sampling error)."""
    out = np.empty(len(a), dtype=np.float64)
    for s in range(0, len(a), block):
        diff = x[a[s:s + block]].astype(np.float64)
        diff -= y[b[s:s + block]]
        out[s:s + block] = np.einsum("ij,ij->i", diff, diff)
    return np.sqrt(out.astype(np.float32)).astype(np.float64)


class _Screen:
    """Approximate squared distances to all rows of ``x`` by float32 GEMM on centred data
    (no float64 copy of the set, blocks of ``x`` streamed, so memory-mapped input works);
    used only to choose which pairs get an exact distance."""

    def __init__(self, x: np.ndarray, center: np.ndarray, chunk_mb: int) -> None:
        self.x, self.center, self.chunk_mb = x, center.astype(np.float32), chunk_mb
        self.rows_per_block = max(1024, int((chunk_mb << 20) // (4 * x.shape[1])))
        self._sq: np.ndarray | None = None

    def _blocks(self):
        for s in range(0, len(self.x), self.rows_per_block):
            yield s, np.asarray(self.x[s:s + self.rows_per_block], dtype=np.float32) - self.center

    @property
    def sq(self) -> np.ndarray:
        if self._sq is None:
            self._sq = np.concatenate([np.einsum("ij,ij->i", b, b, dtype=np.float64) for _, b in self._blocks()])
        return self._sq

    def sqdist(self, q: np.ndarray, centred: bool = True) -> np.ndarray:
        """[len(q), len(x)] float32 approximate squared distances (q: raw rows). ``centred``
        subtracts the centre from every block of ``x`` (one pass of copies, accurate to ~1e-5
        relative: the candidate-ball filter); otherwise ``(x - c)·q' = x·q' - c·q'`` with the
        raw blocks (no copies, less accurate: enough to pick each row's nearest few)."""
        q = np.asarray(q, dtype=np.float32) - self.center
        qq = np.einsum("ij,ij->i", q, q, dtype=np.float64).astype(np.float32)[:, None]
        cq = (q.astype(np.float64) @ self.center.astype(np.float64)).astype(np.float32)[:, None]
        sq = self.sq.astype(np.float32)
        out = np.empty((len(q), len(self.x)), dtype=np.float32)
        blocks = self._blocks() if centred else (
            (s, np.asarray(self.x[s:s + self.rows_per_block], dtype=np.float32))
            for s in range(0, len(self.x), self.rows_per_block))
        for s, b in blocks:
            blk = out[:, s:s + len(b)]
            np.matmul(q, b.T, out=blk)
            if not centred:
                blk -= cq
            blk *= -2
            blk += qq
            blk += sq[None, s:s + len(b)]
        np.maximum(out, 0, out=out)
        return out


class ExactRadii:
    """Exact k-th-nearest-other-point radii of rows of ``x``, computed on demand and cached:
    a float32 screen picks each row's k + REFINE nearest, their distances are then exact."""

    def __init__(self, x: np.ndarray, k: int, chunk_mb: int = 256, screen: _Screen | None = None) -> None:
        self.x, self.k, self.chunk_mb = x, k, chunk_mb
        self.screen = screen or _Screen(x, np.asarray(x[:1], dtype=np.float32)[0] * 0, chunk_mb)
        self.values = np.full(len(x), np.nan)
        self.seconds, self.madds = 0.0, 0.0   # measured rate of the exact search
        self.z: np.ndarray | None = None      # the search's embedding of x: lower bounds (set_bounds)
        self.pruned = 0                       # radii found with the bounds alone (no screen)
        self._bounds: tuple | None = None     # (z it was built for, BoundsTo(z))

    def bounds(self, zq: np.ndarray) -> np.ndarray:
        """Lower bounds from rows ``zq`` to all of ``self.z`` (its side prepared once per z)."""
        if self._bounds is None or self._bounds[0] is not self.z:
            self._bounds = (self.z, BoundsTo(self.z))
        return self._bounds[1](zq)

    def _fill_pruned(self, todo: np.ndarray) -> np.ndarray:
        """Exact radii of ``todo`` from lower bounds: the k + REFINE nearest by bound are
        measured, their k-th distance bounds the radius from above, and only points whose
        lower bound is below it can be nearer (measured too). Rows where more than
        PRUNE_SHARE of the set survives are returned for the screen (bounds too loose)."""
        n = len(self.x)
        kk = min(self.k + REFINE, n - 1)
        cap = max(4 * kk, int(n * PRUNE_SHARE))
        left = []
        # row blocks of <= 16 MB: larger fresh temporaries (the bounds, argpartition's int64
        # indices) are page-faulted in on every block, slow on this VM
        step = max(1, int(min(self.chunk_mb, 16) * (1 << 20) // (8 * n)))
        for s in range(0, len(todo), step):
            part = todo[s:s + step]
            lb = self.bounds(self.z[part])
            lb[np.arange(len(part)), part] = np.inf  # self is not a neighbour
            # any kk points give an upper bound r_up below; the bounds are float32 (BoundsTo):
            # argpartition of float64 rows was ~9x slower (no SIMD path), ~1.5 s at 100k
            near = np.argpartition(lb, kk - 1, axis=1)[:, :kk]
            ex = _exact_dist(self.x, self.x, np.repeat(part, kk), near.ravel()).reshape(len(part), kk)
            r_up = np.partition(ex, self.k - 1, axis=1)[:, self.k - 1]
            np.put_along_axis(lb, near, np.inf, axis=1)  # measured already
            surv = lb <= r_up[:, None]
            count = surv.sum(axis=1)
            ok = count <= cap
            left.append(part[~ok])
            qi, bj = np.nonzero(surv[ok])
            rows = part[ok]
            dex = _exact_dist(self.x, self.x, rows[qi], bj)
            allq = np.concatenate([np.repeat(np.arange(len(rows)), kk), qi])
            alld = np.concatenate([ex[ok].ravel(), dex])
            order = np.lexsort((alld, allq))
            allq, alld = allq[order], alld[order]
            first = np.searchsorted(allq, np.arange(len(rows)))
            self.values[rows] = alld[first + self.k - 1]
            self.pruned += len(rows)
        return np.concatenate(left) if left else todo[:0]

    def fill(self, rows: np.ndarray) -> np.ndarray:
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        todo = rows[np.isnan(self.values[rows])]
        if len(todo) and self.z is not None:
            todo = self._fill_pruned(todo)
        if len(todo):
            t0 = time.perf_counter()
            n = len(self.x)
            kk = min(self.k + REFINE, n - 1)
            step = max(1, int((self.chunk_mb << 20) // (4 * n)))
            for s in range(0, len(todo), step):
                part = todo[s:s + step]
                d2 = self.screen.sqdist(self.x[part], centred=False)
                d2[np.arange(len(part)), part] = -1  # self first, as knn_radii's 0
                near = np.argpartition(d2, kk, axis=1)[:, :kk + 1]
                ex = _exact_dist(self.x, self.x, np.repeat(part, kk + 1), near.ravel()).reshape(len(part), kk + 1)
                ex[near == part[:, None]] = 0
                self.values[part] = np.sort(ex, axis=1)[:, self.k]
            self.seconds += time.perf_counter() - t0
            self.madds += float(len(todo)) * self.x.shape[0] * self.x.shape[1]
        return self.values

    @property
    def computed(self) -> int:
        return int(np.isfinite(self.values).sum())


def _side(query: np.ndarray, rows: np.ndarray, approx_hit: np.ndarray, balls: ExactRadii,
          ball_radius: np.ndarray, crosses: list[Callable[[], np.ndarray]]) -> dict:
    """Exact decision (inside some ball of the other set) of the sampled ``rows`` of ``query``
    against the LSH+kNN decision ``approx_hit[rows]``; ``crosses`` give their squared distances
    to the other set, lower bounds first (from the search's embedding) or screened (float32
    GEMM; computed once per estimator): the first that leaves few candidate balls is used."""
    n_ball = len(ball_radius)
    # exact radii never exceed the LSH ones (a k-th candidate distance is >= the true k-th; with
    # lazy radii, ann.pca_knn(exact_rows=...), an upper bound of it where not measured), so
    # only balls holding the point under the LSH radii, or with LSH radius 0, can hold it
    limit = (ball_radius * (1 + MARGIN)) ** 2 + 1e-12
    for i, get in enumerate(crosses):
        cross = get()
        cand = cross < limit[None, :]
        if i == len(crosses) - 1 or cand.sum() <= PRUNE_SHARE * cand.size:
            break
    zero = np.flatnonzero(ball_radius == 0)
    if len(zero) > MAX_ZERO:  # too many to check all: those among each point's NEAR nearest
        near = min(NEAR, n_ball - 1)
        zero = np.intersect1d(zero, np.argpartition(cross, near, axis=1)[:, :near + 1].ravel())
    cand[:, zero] = True
    qi, bj = np.nonzero(cand)
    dex = _exact_dist(query, balls.x, rows[qi], bj)
    # lazily: each point's nearest candidate balls first (1, 2, 4, ... per round); a point is
    # decided at its first hit, so exact radii are needed mostly for the points outside all balls
    order = np.lexsort((dex, qi))
    qi, bj, dex = qi[order], bj[order], dex[order]
    rank = np.arange(len(qi)) - np.searchsorted(qi, qi, side="left")
    exact_hit = np.zeros(len(rows), dtype=bool)
    lo, width, end = 0, 1, (int(rank.max()) + 1 if len(rank) else 0)
    while lo < end:
        sel = np.flatnonzero((rank >= lo) & (rank < lo + width) & ~exact_hit[qi])
        if len(sel):
            r = balls.fill(bj[sel])[bj[sel]]
            exact_hit[qi[sel][dex[sel] < r]] = True
        lo, width = lo + width, width * 2
    return {"approx": approx_hit[rows], "exact": exact_hit}


def _bound(approx: np.ndarray, exact: np.ndarray) -> tuple[float, float]:
    """(signed gap estimate, 95 % upper bound on |gap|)."""
    s = len(approx)
    diff = approx.astype(np.float64) - exact.astype(np.float64)
    # var(diff) <= disagreement rate; Laplace's (x + 1) / (s + 2) keeps it above 0 at x = 0
    p = (float(np.abs(diff).sum()) + 1) / (s + 2)
    return float(diff.mean()), float(abs(diff.mean()) + 2 * math.sqrt(p / s))


def sample_rows(n: int, other: int, dim: int, size: int, rng: np.random.Generator,
                exact_flops: float = EXACT_FLOPS) -> np.ndarray:
    """Up to ``size`` random rows; fewer (>= 100) when the s x other exact block would pass
    CROSS_BYTES or the exact radii behind it (~8 per row) ``exact_flops``."""
    cap = min(CROSS_BYTES // (8 * max(other, 1)), exact_flops / (8 * max(other, 1) * max(dim, 1)))
    s = int(min(size, n, max(100, cap)))
    return np.sort(rng.choice(n, s, replace=False))


class ErrorEstimator:
    """The fixed subsample and cached exact radii of one (real, fake) pair."""

    def __init__(self, real: np.ndarray, fake: np.ndarray, k: int, size: int, seed: int, chunk_mb: int = 256,
                 bounded: bool = False) -> None:
        """``bounded``: set_bounds() will follow, so most exact radii are cheap (pruned): the
        sample may be 4x larger before it shrinks for cost."""
        rng = np.random.default_rng([seed, 21])
        flops = EXACT_FLOPS * (4 if bounded else 1)
        self.real_rows = sample_rows(len(real), len(fake), real.shape[1], size, rng, flops)
        self.fake_rows = sample_rows(len(fake), len(real), real.shape[1], size, rng, flops)
        self.real, self.fake, self.chunk_mb = real, fake, chunk_mb
        center = np.asarray(real[self.real_rows], dtype=np.float64).mean(axis=0)  # numerics only
        self.real_radii = ExactRadii(real, k, chunk_mb, _Screen(real, center, chunk_mb))
        self.fake_radii = ExactRadii(fake, k, chunk_mb, _Screen(fake, center, chunk_mb))
        self._cross: dict[str, np.ndarray] = {}  # the samples' screened distances, fixed across steps

    def set_bounds(self, z: np.ndarray) -> None:
        """Use the candidate search's embedding (stacked, reals first; ann.embed) for lower
        bounds: exact radii and ball candidates by pruning instead of a pass over the set."""
        nr = len(self.real)
        self.z = z
        self.real_radii.z, self.fake_radii.z = z[:nr], z[nr:]

    def crosses(self, side: str) -> list:
        screen = [lambda: self.cross(side)]
        if getattr(self, "z", None) is None:
            return screen
        return [lambda: self.bound_cross(side)] + screen

    def bound_cross(self, side: str) -> np.ndarray:
        """Squared lower bounds of the sample's distances to the other set."""
        key = "bound-" + side
        if key not in self._cross:
            nr = len(self.real)
            if side == "fake":
                lb = self.real_radii.bounds(self.z[nr + self.fake_rows])
            else:
                lb = self.fake_radii.bounds(self.z[self.real_rows])
            self._cross[key] = np.square(lb, out=lb)
        return self._cross[key]

    def cross(self, side: str) -> np.ndarray:
        if side not in self._cross:
            t0 = time.perf_counter()
            if side == "fake":
                self._cross[side] = self.real_radii.screen.sqdist(self.fake[self.fake_rows])
            else:
                self._cross[side] = self.fake_radii.screen.sqdist(self.real[self.real_rows])
            radii = self.real_radii if side == "fake" else self.fake_radii
            radii.seconds += time.perf_counter() - t0
            radii.madds += float(self._cross[side].size) * self.real.shape[1]
        return self._cross[side]

    def prepare(self) -> None:
        """What the estimate needs whatever the search finds: the sampled points' own exact
        radii and their bounds to the other set (run beside the search on a second thread:
        ann.pca_knn's ``background``; it touches only the estimator's own caches)."""
        for radii, rows, cross in ((self.real_radii, self.real_rows, "fake"), (self.fake_radii, self.fake_rows, "real")):
            radii.fill(rows)
            self.crosses(cross)[0]()  # "fake": the fake sample's bounds to the reals (real_radii's)

    def estimate(self, precise: np.ndarray, recalled: np.ndarray, r_rad: np.ndarray, f_rad: np.ndarray,
                 radius_tolerance: float) -> dict:
        from .ann import _one_blas_thread, parallel

        # precision's side needs only the real radii cache, recall's only the fake one: in
        # parallel, under one BLAS limit taken here (threads entering and leaving their own
        # limits concurrently could otherwise leave the process on one BLAS thread)
        with _one_blas_thread():
            prec, rec = parallel([
                lambda: _side(self.fake, self.fake_rows, precise, self.real_radii, r_rad, self.crosses("fake")),
                lambda: _side(self.real, self.real_rows, recalled, self.fake_radii, f_rad, self.crosses("real"))])
        gap_p, err_p = _bound(prec["approx"], prec["exact"])
        gap_r, err_r = _bound(rec["approx"], rec["exact"])
        # radius check on the sampled points themselves
        er = self.real_radii.fill(self.real_rows)[self.real_rows]
        ef = self.fake_radii.fill(self.fake_rows)[self.fake_rows]
        ar, af = r_rad[self.real_rows], f_rad[self.fake_rows]
        ok = np.concatenate([(ar > 0) & (ar <= er * (1 + radius_tolerance) + 1e-12),
                             (af > 0) & (af <= ef * (1 + radius_tolerance) + 1e-12)])
        return {"precision_error": err_p, "recall_error": err_r, "precision_gap": gap_p, "recall_gap": gap_r,
                "exact_precision_estimate": float(prec["exact"].mean()),
                "exact_recall_estimate": float(rec["exact"].mean()),
                "radius_match": float(ok.mean()), "radius_tolerance": radius_tolerance,
                "sample_fake": int(len(self.fake_rows)), "sample_real": int(len(self.real_rows))}

    def exact_seconds(self) -> float:
        """Predicted time of exhaustive exact kNN P/R at the rate measured so far."""
        madds = self.real_radii.madds + self.fake_radii.madds
        if madds == 0:  # all exact work so far was bound-pruned: time one small GEMM block
            t0 = time.perf_counter()
            block = np.asarray(self.real[:8192], dtype=np.float32)
            np.matmul(block, block[:16].T)
            self.real_radii.seconds += time.perf_counter() - t0
            self.real_radii.madds += 16.0 * len(block) * self.real.shape[1]
            madds = self.real_radii.madds
        rate = (self.real_radii.seconds + self.fake_radii.seconds) / madds
        nr, nf, d = len(self.real), len(self.fake), self.real.shape[1]
        return EXHAUSTIVE_SLOWDOWN * rate * d * float(nr * nr + nf * nf + nr * nf)


def exhaustive(real: np.ndarray, fake: np.ndarray, k: int, chunk_mb: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample exact kNN decisions (precise fakes, recalled reals), as knn.exact_scores."""
    from .knn import knn_radii

    r_rad, f_rad = knn_radii(real, k, chunk_mb), knn_radii(fake, k, chunk_mb)
    precise = np.zeros(len(fake), dtype=bool)
    recalled = np.zeros(len(real), dtype=bool)
    for start, d in distance_blocks(real, fake, chunk_mb):
        precise |= (d < r_rad[start:start + len(d), None]).any(axis=0)
        recalled[start:start + len(d)] = (d < f_rad[None, :]).any(axis=1)
    return precise, recalled


def adapt(run: Callable[[int], tuple], estimator: ErrorEstimator, tolerance: float, radius_tolerance: float,
          budget_s: float, max_steps: int = 6, allow_exhaustive: bool = True) -> tuple[tuple, dict]:
    """``run(step)`` -> (precise, recalled, r_rad, f_rad, stats, params) for step 0, 1, ...
    (each a wider search). Stops at the first step whose error bound is <= ``tolerance``;
    switches to exhaustive exact search when that is predicted (from the measured speed of the
    estimate's own exact searches) to be cheaper than the next wider step and to fit the
    budget (then the error is 0); stops when the next step would pass ``budget_s`` (its time
    guessed as 2.5x the last) or after ``max_steps``. Returns the last run and the record."""
    t0 = time.perf_counter()
    steps = []
    step = 0
    while True:
        ts = time.perf_counter()
        out = run(step)
        t_run = time.perf_counter() - ts
        est = estimator.estimate(out[0], out[1], out[2], out[3], radius_tolerance)
        err = max(est["precision_error"], est["recall_error"])
        steps.append({"step": step, **out[5], "approx_error": err, "radius_match": est["radius_match"],
                      "seconds": round(time.perf_counter() - ts, 3), "search_seconds": round(t_run, 3)})
        elapsed = time.perf_counter() - t0
        if err <= tolerance:
            reason = "within tolerance"
            break
        remaining, next_step = budget_s - elapsed, 2.5 * t_run
        exact_s = estimator.exact_seconds()
        last = step + 1 >= max_steps or next_step > remaining
        if allow_exhaustive and max_steps > 1 and exact_s <= remaining and (exact_s <= next_step or last):
            ts = time.perf_counter()
            p, r = exhaustive(estimator.real, estimator.fake, estimator.real_radii.k, estimator.chunk_mb)
            out = (p, r, None, None, {**out[4], "exhaustive": True}, {**out[5], "exhaustive": True})
            steps.append({"step": step + 1, "exhaustive": True, "approx_error": 0.0,
                          "predicted_seconds": round(exact_s, 3), "seconds": round(time.perf_counter() - ts, 3)})
            err, reason = 0.0, "exhaustive exact search (predicted cheaper than widening the LSH search)"
            break
        if last:
            reason = "step limit" if step + 1 >= max_steps else "time budget"
            break
        step += 1
    record = {**est, "approx_error": err, "tolerance": tolerance, "stopped": reason, "steps": steps,
              "budget_s": budget_s, "seconds": round(time.perf_counter() - t0, 3),
              "exact_radii_computed": estimator.real_radii.computed + estimator.fake_radii.computed}
    if err == 0.0 and reason.startswith("exhaustive"):
        record.update(precision_error=0.0, recall_error=0.0, precision_gap=0.0, recall_gap=0.0)
    log.debug("lsh+knn: approx error %.3f after %d step(s) (%s)", err, len(steps), reason)
    return out, record
