"""Distribution-level scores on feature matrices: Frechet distance, KID and Inception Score.

Plain numpy functions with torch-fidelity's formulas and defaults (its ``fid``, ``kid``
and ``isc`` metrics on precomputed features), so a number from here equals that library's on the
same features (the tests check it to 1e-6 relative). They are only *comparable to published
FID/KID/IS* when the features are Inception-v3 pool3 (2048-d) / logits of the same network;
on any other extractor they rank generators against each other and nothing more.
"""
from __future__ import annotations

import numpy as np

from ..errors import MetricError
from .base import as_features

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
KID_DEGREE = 3
KID_COEF0 = 1.0
RNG_SEED = 2020          # torch-fidelity's default seed for KID subsets and the IS shuffle


def feature_statistics(feats: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (``np.cov(rowvar=False)``) in float64, accumulated over row
    chunks so a memory-mapped matrix is never loaded whole."""
    n, d = feats.shape
    if n < 2:
        raise MetricError(f"covariance needs at least 2 samples, got {n}; pass more samples")
    total = np.zeros(d, dtype=np.float64)
    for s in range(0, n, chunk):
        total += np.asarray(feats[s:s + chunk], dtype=np.float64).sum(axis=0)
    mu = total / n
    cov = np.zeros((d, d), dtype=np.float64)
    for s in range(0, n, chunk):
        block = np.asarray(feats[s:s + chunk], dtype=np.float64) - mu
        cov += block.T @ block
    return mu, cov / (n - 1)


def frechet_distance_from_statistics(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                                     sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2)), the last trace as the sum of the
    square roots of the eigenvalues of S1 S2 (real parts), as torch-fidelity computes it: no
    matrix square root, so no imaginary residue to discard on near-singular covariances."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise MetricError(f"statistics shapes differ: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs "
                          f"{sigma2.shape}; compute both with the same feature extractor")
    diff = mu1 - mu2
    tr_covmean = np.sum(np.sqrt(np.linalg.eigvals(sigma1.dot(sigma2)).astype(np.complex128)).real)
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (FID on Inception
    features). Accepts memory-mapped arrays (statistics are accumulated in chunks)."""
    a = _features(feats_a, "feats_a", 2)
    b = _features(feats_b, "feats_b", 2)
    _same_dim(a, b)
    return frechet_distance_from_statistics(*feature_statistics(a), *feature_statistics(b))


def _poly_kernel(x: np.ndarray, y: np.ndarray, degree: int, gamma: float, coef0: float) -> np.ndarray:
    return (x @ y.T * gamma + coef0) ** degree


def _mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    m = k_xx.shape[0]
    within = (k_xx.sum() - np.trace(k_xx)) + (k_yy.sum() - np.trace(k_yy))
    return float(within / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


def kernel_inception_distance(feats_a: np.ndarray, feats_b: np.ndarray, subsets: int = KID_SUBSETS,
                              subset_size: int = KID_SUBSET_SIZE, seed: int = RNG_SEED,
                              degree: int = KID_DEGREE, gamma: float | None = None,
                              coef0: float = KID_COEF0) -> tuple[float, float]:
    """Unbiased MMD^2 with the cubic polynomial kernel ``(x.y/d + 1)^3``, averaged over
    ``subsets`` random subsets of ``subset_size`` rows from each set (drawn without
    replacement by ``np.random.RandomState(seed)``, A's rows then B's, per subset). Returns
    (mean, std over subsets, ddof 0). ``subset_size`` larger than a set raises, as in
    torch-fidelity; pass ``min(subset_size, len(a), len(b))`` to use what there is."""
    a = _features(feats_a, "feats_a", 2)
    b = _features(feats_b, "feats_b", 2)
    _same_dim(a, b)
    if subsets < 1:
        raise MetricError(f"KID needs subsets >= 1, got {subsets}")
    if subset_size < 2:
        raise MetricError(f"KID needs subset_size >= 2, got {subset_size}")
    for what, x in (("feats_a", a), ("feats_b", b)):
        if len(x) < subset_size:
            raise MetricError(f"KID: {what} has {len(x)} samples, fewer than subset_size={subset_size}; "
                              "pass more samples or a smaller subset_size")
    g = 1.0 / a.shape[1] if gamma is None else float(gamma)
    rng = np.random.RandomState(seed)
    mmds = np.zeros(subsets, dtype=np.float64)
    for i in range(subsets):
        x = np.asarray(a[rng.choice(len(a), subset_size, replace=False)], dtype=np.float64)
        y = np.asarray(b[rng.choice(len(b), subset_size, replace=False)], dtype=np.float64)
        mmds[i] = _mmd2_unbiased(_poly_kernel(x, x, degree, g, coef0), _poly_kernel(x, y, degree, g, coef0),
                                 _poly_kernel(y, y, degree, g, coef0))
    return float(mmds.mean()), float(mmds.std())


def inception_score(class_probs: np.ndarray, splits: int = 10, shuffle: bool = True,
                    seed: int = RNG_SEED) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) per split of the (shuffled) samples; (mean, std over splits,
    ddof 0). ``class_probs``: [N, C] rows of class probabilities (softmax of the classifier's
    logits). Split i holds rows ``i*N//splits`` to ``(i+1)*N//splits``, as in torch-fidelity."""
    p = _features(class_probs, "class_probs", 1).astype(np.float64)
    if p.shape[1] < 2:
        raise MetricError(f"Inception Score needs class probabilities over >= 2 classes, got {p.shape[1]}")
    if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise MetricError("Inception Score: rows of class_probs must be probabilities (>= 0, summing to 1); "
                          "apply softmax to the classifier's logits")
    n = len(p)
    if not 1 <= splits <= n:
        raise MetricError(f"Inception Score: splits must be between 1 and the sample count {n}, got {splits}")
    if shuffle:
        p = p[np.random.RandomState(seed).permutation(n)]
    scores = []
    for i in range(splits):
        chunk = p[i * n // splits:(i + 1) * n // splits]
        q = chunk.mean(axis=0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(chunk > 0, chunk * (np.log(chunk) - np.log(q)), 0.0)
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def _features(x, what: str, min_count: int) -> np.ndarray:
    """Validated [N, D]; a memory-mapped array stays mapped (checked in chunks, not copied)."""
    if isinstance(x, np.memmap) or (isinstance(x, np.ndarray) and isinstance(x.base, np.memmap)):
        if x.ndim != 2:
            raise MetricError(f"{what}: features must be 2-D [N, D], got shape {list(x.shape)}")
        if len(x) < min_count:
            raise MetricError(f"{what}: need at least {min_count} samples, got {len(x)}; pass more samples")
        for s in range(0, len(x), 65536):
            as_features(np.asarray(x[s:s + 65536]), what)
        return x
    return as_features(x, what, min_count)


def _same_dim(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        raise MetricError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}; "
                          "extract both sets with the same feature extractor")
