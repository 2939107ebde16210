"""Frechet distance, KID and Inception Score: equal to torch-fidelity on the same features, and to
closed forms / independent scipy computations."""
import importlib
import sys
import types

import numpy as np
import pytest
import scipy.linalg

from edgegan.errors import MetricError
from edgegan.metrics.distribution import (feature_statistics, frechet_distance, frechet_distance_from_statistics,
                                          inception_score, kernel_inception_distance)


@pytest.fixture(scope="module")
def torch_fidelity():
    """torch-fidelity's metric modules (installed --no-deps from requirements/test-nodeps.txt). Its
    package __init__ imports torchvision for image datasets and feature networks; the only
    torchvision wheel for torch 2.13 here is a CUDA build that cannot load beside the CPU torch,
    so an empty stand-in is put in its place while importing: the formula functions tested here
    never touch it."""
    class _Any(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return type(name, (), {})

    names = ["torchvision", "torchvision.datasets", "torchvision.transforms", "torchvision.transforms.functional",
             "torchvision.models", "torchvision.io"]
    saved = {n: sys.modules.get(n) for n in names}
    real_tv = importlib.util.find_spec("torchvision")
    assert real_tv is None, "a real torchvision is installed: drop the stand-in"
    for n in names:
        sys.modules[n] = _Any(n)
        parent, _, child = n.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, sys.modules[n])
    try:
        mods = {m: importlib.import_module(f"torch_fidelity.{m}") for m in ("metric_fid", "metric_kid", "metric_isc")}
    finally:
        for n, old in saved.items():
            if old is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = old
    return types.SimpleNamespace(**mods)


def _two_sets(seed=0, n=600, m=500, d=24):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    a = rng.normal(size=(n, d)) @ mix
    b = (rng.normal(size=(m, d)) * np.linspace(0.5, 1.5, d)) @ mix + 0.3
    return a, b


def _rel(x, y):
    return abs(x - y) / max(abs(y), 1e-300)


def test_fd_kid_equal_torch_fidelity(torch_fidelity):
    import torch
    fid_features_to_statistics = torch_fidelity.metric_fid.fid_features_to_statistics
    fid_statistics_to_metric = torch_fidelity.metric_fid.fid_statistics_to_metric
    kid_features_to_metric = torch_fidelity.metric_kid.kid_features_to_metric

    a, b = _two_sets()
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    ref_fd = fid_statistics_to_metric(fid_features_to_statistics(ta), fid_features_to_statistics(tb), False)
    fd = frechet_distance(a, b)
    assert _rel(fd, ref_fd["frechet_inception_distance"]) < 1e-6
    ref = kid_features_to_metric(ta, tb, kid_subsets=20, kid_subset_size=200, verbose=False)
    mean, std = kernel_inception_distance(a, b, subsets=20, subset_size=200)
    assert _rel(mean, ref["kernel_inception_distance_mean"]) < 1e-6
    assert _rel(std, ref["kernel_inception_distance_std"]) < 1e-6
    # another seed draws other subsets: a different number (the seed is really used)
    other, _ = kernel_inception_distance(a, b, subsets=20, subset_size=200, seed=1)
    ref1 = kid_features_to_metric(ta, tb, kid_subsets=20, kid_subset_size=200, rng_seed=1, verbose=False)
    assert other != mean and _rel(other, ref1["kernel_inception_distance_mean"]) < 1e-6


def test_fd_equals_torch_fidelity_on_float32_features(torch_fidelity):
    import torch
    fid_features_to_statistics = torch_fidelity.metric_fid.fid_features_to_statistics
    fid_statistics_to_metric = torch_fidelity.metric_fid.fid_statistics_to_metric

    rng = np.random.default_rng(3)
    a = rng.normal(size=(3000, 512)).astype(np.float32)
    b = (rng.normal(size=(2500, 512)) * 1.1 + 0.05).astype(np.float32)
    ref = fid_statistics_to_metric(fid_features_to_statistics(torch.from_numpy(a.astype(np.float64))),
                                   fid_features_to_statistics(torch.from_numpy(b.astype(np.float64))), False)
    assert _rel(frechet_distance(a, b), ref["frechet_inception_distance"]) < 1e-6


def test_is_equals_torch_fidelity(torch_fidelity):
    import torch
    isc_features_to_metric = torch_fidelity.metric_isc.isc_features_to_metric

    rng = np.random.default_rng(1)
    logits = rng.normal(size=(1000, 10)) * 3
    ref = isc_features_to_metric(torch.from_numpy(logits), splits=10)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    mean, std = inception_score(probs, splits=10)
    assert _rel(mean, ref["inception_score_mean"]) < 1e-6
    assert _rel(std, ref["inception_score_std"]) < 1e-6


def test_fd_against_scipy_sqrtm_and_closed_form():
    rng = np.random.default_rng(2)
    d = 16
    m1, m2 = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = m1 @ m1.T + 0.1 * np.eye(d), m2 @ m2.T + 0.1 * np.eye(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    expected = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)
    assert _rel(frechet_distance_from_statistics(mu1, s1, mu2, s2), expected) < 1e-8
    # diagonal covariances: W2^2 = |mu1-mu2|^2 + sum (sqrt(v1) - sqrt(v2))^2
    v1, v2 = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    closed = float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2))
    assert _rel(frechet_distance_from_statistics(mu1, np.diag(v1), mu2, np.diag(v2)), closed) < 1e-9
    # same statistics: zero
    assert abs(frechet_distance_from_statistics(mu1, s1, mu1, s1)) < 1e-8


def test_fd_on_samples_tracks_the_true_gaussians():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(20000, 4))
    b = rng.normal(size=(20000, 4)) * 2 + 1  # true W2^2 = 4*1 + 4*(2-1)^2 = 8
    assert abs(frechet_distance(a, b) - 8.0) < 0.25
    assert frechet_distance(a, a) < 1e-9


def test_feature_statistics_streams_memmap(tmp_path):
    a, b = _two_sets(seed=5)
    np.save(tmp_path / "a.npy", a.astype(np.float32))
    mm = np.load(tmp_path / "a.npy", mmap_mode="r")
    mu, cov = feature_statistics(mm, chunk=77)
    np.testing.assert_allclose(mu, a.astype(np.float32).astype(np.float64).mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cov, np.cov(a.astype(np.float32).astype(np.float64), rowvar=False), rtol=1e-9,
                               atol=1e-12)
    assert _rel(frechet_distance(mm, b), frechet_distance(a.astype(np.float32), b)) < 1e-9


def _kid_by_definition(x, y):
    """Unbiased MMD^2 written out pair by pair (independent of the vectorised code)."""
    d = x.shape[1]
    k = lambda u, v: (u @ v / d + 1) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_definition_and_orders_distances():
    a, b = _two_sets(seed=6, n=30, m=30, d=5)
    mean, std = kernel_inception_distance(a, b, subsets=1, subset_size=30)
    assert std == 0.0
    assert _rel(mean, _kid_by_definition(a, b)) < 1e-10
    rng = np.random.default_rng(7)
    x = rng.normal(size=(1500, 8))
    same = kernel_inception_distance(x[:700], x[700:], subsets=30, subset_size=300)[0]
    near = kernel_inception_distance(x, x + 0.2, subsets=30, subset_size=300)[0]
    far = kernel_inception_distance(x, x + 1.0, subsets=30, subset_size=300)[0]
    assert abs(same) < 0.01 < near < far


def test_inception_score_extremes():
    c = 10
    one_hot = np.eye(c)[np.arange(1000) % c]
    assert abs(inception_score(one_hot, splits=5, shuffle=False)[0] - c) < 1e-9  # confident, all classes: C
    assert abs(inception_score(np.eye(c)[np.zeros(1000, int)], splits=5)[0] - 1) < 1e-12  # one class: 1
    assert abs(inception_score(np.full((1000, c), 1 / c), splits=5)[0] - 1) < 1e-12    # unsure: 1


def test_errors_are_typed_and_say_the_fix():
    a, b = _two_sets()
    with pytest.raises(MetricError, match="dimensions differ"):
        frechet_distance(a, b[:, :5])
    with pytest.raises(MetricError, match="subset_size"):
        kernel_inception_distance(a[:50], b, subset_size=100)
    with pytest.raises(MetricError, match="softmax"):
        inception_score(a)
    with pytest.raises(MetricError, match="NaN"):
        frechet_distance(np.full((5, 3), np.nan), b[:, :3])
