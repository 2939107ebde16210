"""LSH+kNN against exact kNN on data structures other than the ones it was tuned on (issue #21):
either within 0.03 of exact improved precision/recall, or its reported ``approx_error`` covers
the true gap; the adaptation brings the error under the tolerance when time allows."""
import numpy as np
import pytest

from edgegan.metrics.knn import exact_scores
from edgegan.metrics.lsh import LSHConfig, lsh_scores

NO_ADAPT = LSHConfig(adapt_budget_s=0)                      # first search only, error estimated
WIDEN_ONLY = LSHConfig(adapt_budget_s=120, exhaustive_fallback=False)


def prototypes(n_a, n_b, dim, modes_b=10, seed=0, sigma=0.15):
    """The issue's case: 10 random prototypes in [-1, 1]^dim plus isotropic noise."""
    rng = np.random.default_rng(seed)
    protos = rng.uniform(-1, 1, (10, dim))
    a = protos[rng.integers(0, 10, n_a)] + rng.normal(0, sigma, (n_a, dim))
    b = protos[rng.integers(0, modes_b, n_b)] + rng.normal(0, sigma, (n_b, dim))
    return a.astype(np.float32), b.astype(np.float32)


def manifold(n_a, n_b, dim=512, seed=1):
    """A 3-d manifold (smooth random features of 3 latent coordinates) embedded in ``dim``-d;
    B's latents are shifted so part of A is not covered."""
    rng = np.random.default_rng(seed)
    w, phase = rng.normal(size=(3, dim)), rng.uniform(0, 2 * np.pi, dim)
    embed = lambda t: np.cos(t @ w + phase)  # noqa: E731
    a = embed(rng.uniform(0, 1, (n_a, 3)))
    b = embed(rng.uniform(0.2, 1.2, (n_b, 3)))
    return a.astype(np.float32), b.astype(np.float32)


def heavy_tailed(n_a, n_b, dim=128, seed=2):
    """8 clusters with Student-t (df 2) noise: a few points far out in every cluster."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 4, (8, dim))
    draw = lambda n: centers[rng.integers(0, 8, n)] + rng.standard_t(2, (n, dim))  # noqa: E731
    return draw(n_a).astype(np.float32), draw(n_b).astype(np.float32)


def unequal(seed=3):
    """2,000 real against 150 generated samples (recall is small, precision large)."""
    return prototypes(2000, 150, 256, seed=seed)


def duplicates(seed=4):
    """A third of each set are exact copies of other rows (radius 0 for k below the copy count)."""
    a, b = prototypes(1200, 1200, 256, seed=seed, sigma=0.3)
    rng = np.random.default_rng(seed)
    a[800:] = a[rng.integers(0, 800, 400)]
    b[800:] = b[rng.integers(0, 800, 400)]
    return a, b


STRUCTURES = {
    "prototypes-256d-same": lambda: prototypes(1500, 1500, 256),
    "prototypes-256d-3-of-10-modes": lambda: prototypes(1500, 1500, 256, modes_b=3),
    "prototypes-1024d-same": lambda: prototypes(1500, 1500, 1024, seed=5),
    "manifold-3d-in-512d": lambda: manifold(1500, 1500),
    "heavy-tailed-clusters": lambda: heavy_tailed(1500, 1500),
    "unequal-sizes": unequal,
    "duplicates": duplicates,
}


@pytest.fixture(scope="module", params=sorted(STRUCTURES))
def case(request):
    a, b = STRUCTURES[request.param]()
    return request.param, a, b, exact_scores(a, b, 3, 3)


def _gaps(s, exact):
    return (abs(s["lsh_knn_precision"] - exact["knn_precision"]), abs(s["lsh_knn_recall"] - exact["knn_recall"]))


def test_reported_error_covers_the_true_gap_without_adaptation(case):
    name, a, b, exact = case
    s = lsh_scores(a, b, NO_ADAPT, variants=("lsh_knn",), details=True)
    approx = s["lsh_knn_approx"]
    gp, gr = _gaps(s, exact)
    assert gp <= approx["precision_error"] and gr <= approx["recall_error"], (name, gp, gr, approx)
    assert s["lsh_knn_approx_error"] == max(approx["precision_error"], approx["recall_error"])
    assert approx["sample_fake"] == min(128, len(b)) and approx["sample_real"] == min(128, len(a))
    assert len(approx["steps"]) == 1


def test_default_is_within_tolerance_or_says_how_far(case):
    name, a, b, exact = case
    s = lsh_scores(a, b, details=True)
    err = s["lsh_knn_approx_error"]
    gp, gr = _gaps(s, exact)
    assert max(gp, gr) <= max(0.03, err), (name, gp, gr, s["lsh_knn_approx"])
    # at these sizes the adaptation has the time to reach the tolerance (widening or exact search)
    assert err <= 0.03, (name, s["lsh_knn_approx"]["steps"])


def test_widening_the_search_shrinks_the_error_on_the_issue_case():
    a, b = prototypes(1500, 1500, 256)
    exact = exact_scores(a, b, 3, 3)
    first = lsh_scores(a, b, NO_ADAPT, variants=("lsh_knn",), details=True)
    wide = lsh_scores(a, b, WIDEN_ONLY, variants=("lsh_knn",), details=True)
    steps = wide["lsh_knn_approx"]["steps"]
    assert len(steps) > 1 and not any(st.get("exhaustive") for st in steps)
    assert max(_gaps(first, exact)) > 0.05  # the failure the issue reports, visible at the first search
    assert wide["lsh_knn_approx_error"] < first["lsh_knn_approx_error"]
    assert max(_gaps(wide, exact)) < max(_gaps(first, exact))
    assert max(_gaps(wide, exact)) <= max(wide["lsh_knn_approx"]["precision_error"],
                                          wide["lsh_knn_approx"]["recall_error"])
    assert steps[-1]["probe"] > steps[0]["probe"] and steps[-1]["max_candidates"] > steps[0]["max_candidates"]


def test_no_estimate_when_asked():
    a, b = prototypes(400, 400, 64)
    s = lsh_scores(a, b, LSHConfig(error_sample=0), variants=("lsh_knn",))
    assert s["lsh_knn_approx_error"] is None


def test_memory_mapped_features_give_the_same_scores(tmp_path):
    """Features streamed from .npy files opened with mmap_mode='r' (the 1M-sample route):
    same LSH-only and FD numbers as in memory, and the input is not copied into memory."""
    import tracemalloc

    from edgegan.metrics import frechet_distance

    a, b = prototypes(2000, 2000, 2048, seed=9)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    ma, mb = np.load(tmp_path / "a.npy", mmap_mode="r"), np.load(tmp_path / "b.npy", mmap_mode="r")
    cfg = LSHConfig()
    in_memory = lsh_scores(a, b, cfg, variants=("lsh",))
    tracemalloc.start()
    mapped = lsh_scores(ma, mb, cfg, variants=("lsh",))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert mapped == in_memory
    assert peak < 0.5 * a.nbytes  # the LSH state is O(n L), far below one 16 MB input: nothing loaded whole
    assert frechet_distance(ma, mb) == pytest.approx(frechet_distance(a, b), rel=1e-9)


def _check_estimate_against_exact(a, b, est, seed: int) -> None:
    """The estimator's decisions and radii for its sampled points equal brute-force exact kNN
    (knn_radii: prdc's arithmetic; exhaustive search), whatever LSH radii it starts from: never
    below the exact ones, some far above, some 0 (fewer than k candidates)."""
    from edgegan.metrics.knn import knn_radii
    from edgegan.metrics.lsh_error import exhaustive

    precise, recalled = exhaustive(a, b, 3)
    ref_a, ref_b = knn_radii(a, 3), knn_radii(b, 3)
    rng = np.random.default_rng(seed)
    r_a = ref_a * rng.choice([1.0, 1.05, 1.5], len(a)) * (rng.random(len(a)) > 0.05)
    r_b = ref_b * rng.choice([1.0, 1.05, 1.5], len(b)) * (rng.random(len(b)) > 0.05)
    out = est.estimate(np.zeros(len(b), bool), np.zeros(len(a), bool), r_a, r_b, 0.01)
    assert out["exact_precision_estimate"] == pytest.approx(precise[est.fake_rows].mean(), abs=1e-12)
    assert out["exact_recall_estimate"] == pytest.approx(recalled[est.real_rows].mean(), abs=1e-12)
    for radii, ref in ((est.real_radii, ref_a), (est.fake_radii, ref_b)):
        done = np.flatnonzero(np.isfinite(radii.values))
        assert len(done) >= 128
        np.testing.assert_allclose(radii.values[done], ref[done], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["prototypes-256d-3-of-10-modes", "heavy-tailed-clusters", "duplicates"])
def test_estimate_sees_the_exact_decisions_and_radii(name):
    """The estimate's float32 screen + exact recheck gives the exact radii and decisions."""
    from edgegan.metrics.lsh_error import ErrorEstimator

    a, b = STRUCTURES[name]()
    _check_estimate_against_exact(a, b, ErrorEstimator(a, b, 3, 128, seed=0), seed=0)


@pytest.mark.parametrize("name", ["manifold-3d-in-512d", "prototypes-256d-3-of-10-modes", "heavy-tailed-clusters",
                                  "duplicates"])
def test_bound_pruned_estimate_equals_brute_force(name):
    """With the candidate search's subspace bounds (ann.embed), the estimate's exact radii and
    decisions come from pruning (only points whose lower bound is below a measured k-th
    distance are measured) and still equal brute-force exact kNN for every sampled point; on
    low-dimensional data the pruning, not the screen, finds the radii."""
    from edgegan.metrics import ann
    from edgegan.metrics.lsh_error import ErrorEstimator

    a, b = STRUCTURES[name]()
    sub = ann.fit_subspace(a, 32, 0)
    est = ErrorEstimator(a, b, 3, 128, seed=0)
    est.set_bounds(np.concatenate([ann.embed(a, sub), ann.embed(b, sub)]))
    _check_estimate_against_exact(a, b, est, seed=1)
    if name.startswith("manifold"):
        assert est.real_radii.pruned + est.fake_radii.pruned >= 256
