"""LSH+kNN's default candidate search (edgegan/metrics/ann.py): cells in a PCA subspace with
exact full-dimensional re-ranking. Checked against exact kNN (knn.py, itself equal to prdc)."""
import numpy as np
import pytest

from edgegan.metrics import ann
from edgegan.metrics.knn import exact_scores, knn_radii
from edgegan.metrics.lsh import LSHConfig, lsh_scores
from edgegan.metrics.synthetic import Manifold

K = 3


def manifold_pair(n=3000, dim=512):
    m = Manifold(dim=dim, latent_dim=6, modes=6)
    return m.sample(n, seed=1), m.sample(n, seed=2)


def prototypes_pair(n=1500, dim=256, sigma=0.15):
    rng = np.random.default_rng(7)
    protos = rng.uniform(-1, 1, (10, dim))
    draw = lambda: (protos[rng.integers(0, 10, n)] + rng.normal(0, sigma, (n, dim))).astype(np.float32)  # noqa: E731
    return draw(), draw()


def run(real, fake, **kw):
    args = dict(k=K, c=8, probe=16, dim=32, cell_size=128, seed=0)
    args.update(kw)
    return ann.pca_knn(real, fake, **args)


@pytest.mark.parametrize("make", [manifold_pair, prototypes_pair], ids=["manifold", "prototypes"])
def test_bounds_hold_for_random_pairs(make):
    """LB <= exact distance <= UB on every pair (the bounds decide ball tests on their own)."""
    real, fake = make()
    sub = ann.fit_subspace(real, 32, 0)
    z = np.concatenate([ann.embed(real, sub), ann.embed(fake, sub)])
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, len(z), 20000), rng.integers(0, len(z), 20000)
    x = np.concatenate([real, fake]).astype(np.float64)
    exact = np.linalg.norm(x[a] - x[b], axis=1)
    lb, ub = ann._bounds(z, a, b)
    assert (lb <= exact * (1 + 1e-6) + 1e-9).all()
    assert (exact <= ub).all()
    assert np.allclose(ann.Exact(real, fake)(a, b), exact, rtol=1e-5, atol=1e-6)


def test_radii_are_true_distances_never_below_exact_and_mostly_equal():
    """Each radius is an exact full-dimensional distance to a candidate: never below the exact
    kNN radius (a projected, lower-bound distance would be) and equal to it for almost all
    points on low-dimensional data."""
    real, fake = manifold_pair()
    _, _, stats, r_rad, f_rad = run(real, fake)
    for x, rad in ((real, r_rad), (fake, f_rad)):
        exact = knn_radii(x, K)
        assert (rad >= exact * (1 - 1e-6)).all()
        assert np.mean(np.isclose(rad, exact, rtol=1e-5)) >= 0.99
    assert stats["measured_pairs"] <= 2 * len(real) * 2 * 8


def test_first_search_matches_exact_knn_on_structured_data():
    """Without adaptation, the default search reaches exact kNN P/R within 0.01 on a
    low-dimensional manifold in 512-d, and its estimate says so."""
    real, fake = manifold_pair()
    fake = np.concatenate([fake[:2000], Manifold(dim=512, latent_dim=6, modes=6).sample(1000, 3, modes=[0, 1])])
    exact = exact_scores(real, fake, K, K)
    s = lsh_scores(real, fake, LSHConfig(adapt_budget_s=0), variants=("lsh_knn",), details=True)
    assert s["parameters"]["search"] == "pca-cells"
    assert abs(s["lsh_knn_precision"] - exact["knn_precision"]) <= 0.01
    assert abs(s["lsh_knn_recall"] - exact["knn_recall"]) <= 0.01
    assert s["lsh_knn_approx_error"] <= 0.03


def test_wider_probe_recovers_neighbours_the_cells_hid():
    """With one probed cell the search misses true neighbours (radii inflated); the default
    probe finds them: the adaptation's knob does what it is for."""
    real, fake = manifold_pair()
    exact = knn_radii(real, K)
    narrow = run(real, fake, probe=1, cell_size=32)[3]
    wide = run(real, fake)[3]
    assert np.mean(np.isclose(narrow, exact, rtol=1e-5)) < 0.9
    assert np.mean(np.isclose(wide, exact, rtol=1e-5)) > np.mean(np.isclose(narrow, exact, rtol=1e-5))


def test_lsh_search_still_available_and_close():
    real, fake = manifold_pair(1500)
    exact = exact_scores(real, fake, K, K)
    s = lsh_scores(real, fake, LSHConfig(search="lsh"), variants=("lsh_knn",), details=True)
    assert "candidate_pairs" in s["parameters"]
    gap = max(abs(s["lsh_knn_precision"] - exact["knn_precision"]), abs(s["lsh_knn_recall"] - exact["knn_recall"]))
    assert gap <= max(0.03, s["lsh_knn_approx_error"])


def test_memory_mapped_input(tmp_path):
    real, fake = manifold_pair(1200, 256)
    np.save(tmp_path / "r.npy", real)
    np.save(tmp_path / "f.npy", fake)
    mm = run(np.load(tmp_path / "r.npy", mmap_mode="r"), np.load(tmp_path / "f.npy", mmap_mode="r"))
    mem = run(real, fake)
    assert (mm[0] == mem[0]).all() and (mm[1] == mem[1]).all() and np.array_equal(mm[3], mem[3])


def test_candidates_with_every_cell_probed_are_the_nearest_by_bound():
    """Probing all cells, each point's candidates are exactly its c nearest same-set and
    other-set points in the embedding (brute force, float64), itself excluded; with few probes
    per point the per-point probing still finds most of them."""
    real, fake = manifold_pair(700, 128)
    sub = ann.fit_subspace(real, 32, 0)
    z = np.concatenate([ann.embed(real, sub), ann.embed(fake, sub)])
    nr, c = len(real), 8
    same, other = ann.candidates(z, nr, c, probe=1000, cell_size=32, seed=0)
    z64 = z.astype(np.float64)
    d2 = ((z64[:, None, :] - z64[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    is_real = np.arange(len(z)) < nr
    agree = []
    for cand, mine in ((same, True), (other, False)):
        for i in range(len(z)):
            cols = np.flatnonzero(is_real == (is_real[i] if mine else not is_real[i]))
            truth = cols[np.argsort(d2[i, cols])[:c]]
            agree.append(len(set(truth) & set(cand[i])) / c)
            assert i not in cand[i]
    assert np.mean(agree) >= 0.995
    few, _ = ann.candidates(z, nr, c, probe=4, cell_size=32, seed=0)
    hit = np.mean([len(set(few[i, :3]) & set(same[i, :3])) / 3 for i in range(len(z))])
    assert 0.5 < hit < 1.0


def test_round_merges_keep_each_rows_nearest_with_overflow():
    """The candidate search's per-row buffer (ann._Best): survivors offered over several rounds,
    some rows far over the buffer width (overflow path), end as each row's c smallest values,
    as a brute-force sort of everything offered says."""
    rng = np.random.default_rng(3)
    n, c = 50, 4
    best = ann._Best(n, c, width=3)
    offered = [[] for _ in range(n)]
    for _ in range(3):  # rounds
        for _ in range(5):  # cells: distinct rows each, rows ascending in r
            q = np.sort(rng.choice(n, 20, replace=False))
            per = rng.integers(0, 9, len(q))  # up to 8 survivors a row in one cell: overflows width 3
            r = np.repeat(np.arange(len(q)), per)
            ids = rng.integers(0, 10**6, len(r))
            vals = rng.random(len(r)).astype(np.float32)
            best.offer(q, r, ids, vals)
            for row, i, v in zip(q[r], ids, vals):
                offered[row].append((v, i))
        best.merge()
    got = best.result()
    for row in range(n):
        want = [i for _, i in sorted(offered[row])[:c]]
        want += [-1] * (c - len(want))
        assert list(got[row]) == want


@pytest.mark.parametrize("make", [manifold_pair, prototypes_pair], ids=["manifold", "prototypes"])
def test_rounds_do_not_change_candidates(make):
    """Thresholds tightened between probe-rank rounds only skip work: one round or many give
    the same candidates."""
    real, fake = make(1500)
    sub = ann.fit_subspace(real, 32, 0)
    z = np.concatenate([ann.embed(real, sub), ann.embed(fake, sub)])
    one = ann.candidates(z, len(real), 8, 16, 64, 0, rounds=())
    many = ann.candidates(z, len(real), 8, 16, 64, 0, rounds=(2, 3, 5, 9))
    for a, b in zip(one, many):
        assert np.mean([set(u) == set(v) for u, v in zip(a, b)]) >= 0.999


@pytest.mark.parametrize("make", [manifold_pair, prototypes_pair], ids=["manifold", "prototypes"])
def test_lazy_radii_same_decisions_as_exact_radii(make):
    """Radii measured only where a ball test's bounds cannot decide (and for the requested
    rows) give the same precise/recalled points as every radius measured; the radii returned
    are exact at the requested rows and never below the exact ones elsewhere."""
    real, fake = make()
    full = run(real, fake)
    rows = np.arange(0, 2 * len(real), 13)
    lazy = run(real, fake, exact_rows=rows)
    assert np.array_equal(full[0], lazy[0]) and np.array_equal(full[1], lazy[1])
    rf, rl = np.concatenate(full[3:]), np.concatenate(lazy[3:])
    assert np.array_equal(rf[rows], rl[rows])
    assert (rl >= rf).all()
    if make is manifold_pair:  # near the subspace the bounds decide most ball tests alone
        assert lazy[2]["exact_radii"] < 0.5 * len(rf)
        assert lazy[2]["measured_pairs"] < full[2]["measured_pairs"]


@pytest.mark.parametrize("budget", [1 << 19, 3000], ids=["default-groups", "many-small-groups"])
def test_batched_own_cell_stage_matches_a_per_cell_reference(budget):
    """ann.own_cells (cells grouped by size, padded, one batched GEMM per group) gives every
    point the same own-cell candidates and probed cells as a plain loop over cells in float64:
    per cell and side, the c nearest other points of that side; probes: the own cell, then
    the P - 1 nearest other centroids of the cell's pool. Cell sizes 1..300 and cells with
    no reals / no fakes / fewer than c points of a side cover the padding and masking."""
    rng = np.random.default_rng(3)
    sizes = [1, 2, 3, 5, 8, 9, 12, 17, 31, 40, 64, 100, 129, 300, 0, 7]
    n_real = [1, 0, 3, 2, 8, 1, 6, 9, 15, 40, 0, 50, 64, 151, 0, 3]
    cells, m, c, P = len(sizes), 6, 8, 5
    cent = rng.normal(0, 3, (cells, m)).astype(np.float32)
    parts, n_of = [], np.array(n_real)
    for k, s in enumerate(sizes):
        parts.append(cent[k] + rng.normal(0, 1, (s, m)).astype(np.float32))
    zs = np.concatenate(parts)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    around = ann._around(cent, 9)
    best = [ann._Best(len(zs), c, 2 * c) for _ in (0, 1)]
    near = ann.own_cells(zs, cent, starts, n_of, around, P, [0, 2, P - 1], best, budget=budget)
    for b in best:
        b.merge()
    got = [b.result() for b in best]
    z64, c64 = zs.astype(np.float64), cent.astype(np.float64)
    for k in range(cells):
        s0, s1 = starts[k], starts[k + 1]
        sides = (np.arange(s0, s0 + n_of[k]), np.arange(s0 + n_of[k], s1))
        dc = ((z64[s0:s1, None, :] - c64[around[k]][None]) ** 2).sum(-1)
        for i in range(s0, s1):
            others = [j for j in np.argsort(dc[i - s0]) if around[k][j] != k][:P - 1]
            assert near[i, 0] == k
            assert set(near[i]) == {k, *around[k][others]}
            for side in (0, 1):
                cols = sides[side][sides[side] != i]
                d = ((z64[cols] - z64[i]) ** 2).sum(-1)
                want = list(cols[np.argsort(d)[:c]]) + [-1] * max(0, c - len(cols))
                assert list(got[side][i]) == want, (k, i, side)


def test_round_merges_order_negative_zero_and_tied_values():
    """The per-row buffer sorts (value, id) packed into one int64: squared distances just
    below 0 (float rounding of near-duplicates), -0.0 / +0.0, exact ties and inf must come out
    as a plain sort of (value, id) pairs says."""
    rng = np.random.default_rng(5)
    n, c = 40, 5
    best = ann._Best(n, c, width=4)
    pool = np.array([-3e-7, -2e-7, -1e-8, -1e-9, -0.0, 0.0, 1e-30, 0.25, 0.25, np.inf], dtype=np.float32)
    offered = [[] for _ in range(n)]
    for _ in range(3):
        q = np.sort(rng.choice(n, 25, replace=False))
        per = rng.integers(0, 9, len(q))
        r = np.repeat(np.arange(len(q)), per)
        ids = rng.integers(0, 2**31 - 1, len(r))
        vals = pool[rng.integers(0, len(pool), len(r))]
        best.offer(q, r, ids, vals)
        for row, i, v in zip(q[r], ids, vals):
            if np.isfinite(v):
                offered[row].append((float(v), int(i)))
        best.merge()
    got = best.result()
    for row in range(n):
        want = [i for _, i in sorted(offered[row])[:c]]  # -0.0 == 0.0: ties by id
        want += [-1] * (c - len(want))
        assert list(got[row]) == want, row


@pytest.mark.parametrize("offset", [0.0, 300.0], ids=["centred", "far-from-origin"])
def test_exact_distances_and_lower_bounds_against_float64(offset):
    """ann.Exact (float32 differences, float32 pairwise sums) stays within 1e-6 relative of
    float64 distances, also for features far from the origin; BoundsTo's lower bounds (set
    side prepared once, centred on the set) never exceed the float64 distance, 0 for
    duplicates included."""
    real, fake = manifold_pair(800, 256)
    real, fake = real + np.float32(offset), fake + np.float32(offset)
    fake[:50] = real[:50]  # duplicates across the sets
    x = np.concatenate([real, fake]).astype(np.float64)
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, len(x), 5000), rng.integers(0, len(x), 5000)
    a[:50], b[:50] = np.arange(50), len(real) + np.arange(50)
    want = np.linalg.norm(x[a] - x[b], axis=1)
    got = ann.Exact(real, fake)(a, b)
    assert np.allclose(got, want, rtol=1e-6, atol=0)
    sub = ann.fit_subspace(real, 32, 0)
    z = np.concatenate([ann.embed(real, sub), ann.embed(fake, sub)])
    rows = rng.choice(len(z), 300, replace=False)
    lb = ann.BoundsTo(z[:len(real)])(np.concatenate([z[rows], z[len(real):len(real) + 50]]))
    true = np.linalg.norm(np.concatenate([x[rows], x[len(real):len(real) + 50]])[:, None, :] - x[None, :len(real)], axis=2)
    assert (lb <= true * (1 + 1e-9) + 1e-12).all()
    assert (lb[300 + np.arange(50), np.arange(50)] == 0).all()


def test_own_cell_stage_keeps_the_nearest_under_exact_ties():
    """Duplicated points tie exactly at a row's c-th distance while a strictly nearer point
    sits in a later column: own_cells keeps the c smallest by (distance, column) (until
    2026-12-01 it kept the first c columns at or below the c-th distance and lost it)."""
    c = 2
    row = np.zeros((1, 3), dtype=np.float32)
    far = np.array([[2.0, 0, 0]], dtype=np.float32)
    near_pt = np.array([[1.0, 0, 0]], dtype=np.float32)
    zs = np.concatenate([row, far, far, far, near_pt])  # one cell, all reals: 0 is the query
    cent = zs.mean(axis=0, keepdims=True)
    starts, n_of = np.array([0, len(zs)]), np.array([len(zs)])
    best = [ann._Best(len(zs), c, 2 * c) for _ in (0, 1)]
    ann.own_cells(zs, cent, starts, n_of, np.zeros((1, 1), dtype=np.int64), 1, [0], best)
    for b in best:
        b.merge()
    assert list(best[0].result()[0]) == [4, 1]
    assert list(best[1].result()[0]) == [-1, -1]  # no fakes in the cell


def test_threads_do_not_change_results(monkeypatch):
    """Two Python threads (the sets' projections, the probe rounds' two sides, the error
    estimate's preparation beside the search and its two sides) give the same per-sample
    decisions, radii-derived numbers and error record as one thread."""
    real, fake = manifold_pair(2500, 256)
    out = {}
    for n in (1, 2):
        monkeypatch.setattr(ann, "THREADS", n)
        out[n] = lsh_scores(real, fake, LSHConfig(exhaustive_fallback=False), variants=("lsh_knn",), details=True)
    for key in ("lsh_knn_precise", "lsh_knn_recalled"):
        assert (out[1]["per_sample"][key] == out[2]["per_sample"][key]).all()
    a, b = out[1]["lsh_knn_approx"], out[2]["lsh_knn_approx"]
    for key in ("approx_error", "precision_error", "recall_error", "exact_precision_estimate",
                "exact_recall_estimate", "radius_match", "exact_radii_computed"):
        assert a[key] == b[key], key
    assert out[1]["parameters"]["measured_pairs"] == out[2]["parameters"]["measured_pairs"]


@pytest.mark.parametrize("where", ["real-nan", "fake-inf", "fake-neg-inf-not-in-subspace-sample"])
def test_non_finite_features_found_by_the_projection_pass(where):
    """LSH+kNN alone skips the input checks' NaN/inf scan (its projection reads every value
    anyway): a NaN or inf anywhere still gives check_finite's one-line error, naming the set,
    the count and the first index."""
    from edgegan.errors import MetricError

    real, fake = manifold_pair(600, 64)
    if where == "real-nan":
        real[[5, 300], 7] = np.nan
        msg = r"real: 2 of 600 samples contain NaN/inf \(first at index 5\)"
    elif where == "fake-inf":
        fake[42, 0] = np.inf
        msg = r"fake: 1 of 600 samples contain NaN/inf \(first at index 42\)"
    else:
        fake[599, 63] = -np.inf
        msg = r"fake: 1 of 600 samples contain NaN/inf \(first at index 599\)"
    with pytest.raises(MetricError, match=msg) as ei:
        lsh_scores(real, fake, variants=("lsh_knn",))
    assert "\n" not in str(ei.value)
