"""Exact kNN references equal the `prdc` package (test-only dependency) on the same arrays."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from edgegan.errors import ConfigError, MetricError
from edgegan.metrics import DensityCoverageConfig, KNNConfig, compute_metric, exact_scores, knn_radii, prdc
from edgegan.metrics.knn import distance_blocks

compute_prdc = pytest.importorskip("prdc").compute_prdc


def _reference(real, fake, k):
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        return {key: float(v) for key, v in compute_prdc(real, fake, k).items()}


def _data(n_real, n_fake, dim, dtype, seed):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n_real, dim)).astype(dtype)
    fake = (rng.normal(size=(n_fake, dim)) * 1.2 + 0.3).astype(dtype)
    return real, fake


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_real,n_fake,dim,k", [(500, 400, 16, 3), (700, 900, 64, 5), (300, 300, 2, 1), (400, 350, 128, 10)])
def test_equals_prdc(dtype, n_real, n_fake, dim, k):
    real, fake = _data(n_real, n_fake, dim, dtype, seed=dim + k)
    ref = _reference(real, fake, k)
    # a tiny chunk budget forces many row blocks: results must not depend on chunking
    for chunk_mb in (256, 1):
        ours = prdc(real, fake, k, chunk_mb=chunk_mb)
        for key in ref:
            assert ours[key] == pytest.approx(ref[key], abs=1e-6), (key, ours[key], ref[key])


def test_equals_prdc_on_offset_data_with_large_norms():
    """Large common offset: distances must not lose precision (float32 inputs are upcast)."""
    real, fake = _data(400, 400, 32, np.float32, seed=1)
    real += 50
    fake += 50
    ref = _reference(real, fake, 3)
    ours = prdc(real, fake, 3)
    assert all(ours[key] == pytest.approx(ref[key], abs=1e-6) for key in ref)


def test_exact_scores_mixes_k_for_pr_and_dc():
    real, fake = _data(600, 500, 24, np.float32, seed=5)
    both = exact_scores(real, fake, k=3, k_dc=5)
    pr3 = _reference(real, fake, 3)
    dc5 = _reference(real, fake, 5)
    assert both["knn_precision"] == pytest.approx(pr3["precision"], abs=1e-6)
    assert both["knn_recall"] == pytest.approx(pr3["recall"], abs=1e-6)
    assert both["density"] == pytest.approx(dc5["density"], abs=1e-6)
    assert both["coverage"] == pytest.approx(dc5["coverage"], abs=1e-6)
    assert compute_metric("knn", real, fake) == {"knn_precision": both["knn_precision"], "knn_recall": both["knn_recall"]}
    assert compute_metric("density_coverage", real, fake) == {"density": both["density"], "coverage": both["coverage"]}


def test_radii_match_brute_force():
    x = np.random.default_rng(0).normal(size=(200, 8))
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    brute = np.sort(d, axis=1)[:, [1, 3, 5]].T  # column 0 is self
    np.testing.assert_allclose(knn_radii(x, [1, 3, 5], chunk_mb=1), brute, rtol=1e-9)


def test_distance_blocks_bound_memory():
    x = np.random.default_rng(0).normal(size=(3000, 16)).astype(np.float32)
    rows = [len(d) for _, d in distance_blocks(x, None, chunk_mb=1)]
    # 1 MB of float64 per block: 1 MiB / (8 B × 3000 columns) = 43 rows
    assert max(rows) == 43 and sum(rows) == 3000


def test_identical_sets():
    real, _ = _data(300, 300, 8, np.float32, seed=2)
    s = exact_scores(real, real.copy())
    assert s["knn_precision"] == 1.0 and s["knn_recall"] == 1.0 and s["coverage"] == 1.0


@pytest.mark.parametrize("k", [0, -2])
def test_config_validation(k):
    with pytest.raises(ConfigError):
        KNNConfig(k=k)
    assert DensityCoverageConfig().k == 5 and KNNConfig().k == 3


def test_bad_inputs():
    real, fake = _data(50, 50, 8, np.float32, seed=3)
    bad = fake.copy()
    bad[4, 0] = np.inf
    with pytest.raises(MetricError, match=r"1 of 50 samples contain NaN/inf \(first at index 4\)"):
        exact_scores(real, bad)
    with pytest.raises(MetricError, match="k=5 nearest neighbours need more than 5 samples, got 5"):
        exact_scores(real[:5], fake, k=5)
    with pytest.raises(MetricError, match="feature dimensions differ"):
        exact_scores(real, fake[:, :4])
    with pytest.raises(MetricError, match="real numbers"):
        exact_scores(real.astype(str), fake)


def test_complex_features_are_refused():
    real, fake = _data(50, 50, 8, np.float32, seed=3)
    with pytest.raises(MetricError, match="real numbers, got dtype complex64"):
        exact_scores(real, fake.astype(np.complex64))
