"""Exact kNN references: improved precision/recall (Kynkäänniemi et al. 2019) and
density/coverage (Naeem et al. 2020).

Definitions (the ones the ``prdc`` package implements; strict ``<`` as there):
  radius_k(x) = distance from x to its k-th nearest *other* point of its own set;
  precision   = share of fake points inside at least one real ball B(r, radius_k(r));
  recall      = share of real points inside at least one fake ball B(f, radius_k(f));
  density     = (1/k) · mean over fake points of the number of real balls that contain it;
  coverage    = share of real points whose nearest fake point lies inside its own ball.

Distances are computed the way scikit-learn computes them for ``prdc`` (float32 inputs are
upcast to float64 per block, the squared distance rounded to float32, then the square root),
so results equal ``prdc.compute_prdc`` exactly. Blocks of rows keep memory at
``chunk_mb``: 50k × 2048 never allocates an n² matrix. Cost is O(n²·d): this is the
reference the LSH metrics are measured against, not the fast path.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

from ..config import JsonConfig
from ..errors import ConfigError
from .base import check_pair, register_metric


@dataclasses.dataclass
class KNNConfig(JsonConfig):
    """k for the kNN balls; ``chunk_mb`` bounds the distance block held at once."""

    k: int = 3
    chunk_mb: int = 256

    def validate(self) -> None:
        if self.k < 1:
            raise ConfigError(f"knn k must be >= 1, got {self.k}", field="k")
        if self.chunk_mb < 1:
            raise ConfigError(f"knn chunk_mb must be >= 1, got {self.chunk_mb}", field="chunk_mb")


@dataclasses.dataclass
class DensityCoverageConfig(KNNConfig):
    """Naeem et al. recommend k=5 for density/coverage."""

    k: int = 5


def _rows_per_chunk(n_cols: int, chunk_mb: int) -> int:
    return max(1, int(chunk_mb * 2**20 // (8 * max(n_cols, 1))))


def distance_blocks(x: np.ndarray, y: np.ndarray | None = None, chunk_mb: int = 256) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(row_start, D)`` with ``D = ||x[rows] - y||`` (scikit-learn's arithmetic).

    ``y=None`` means distances within ``x``; the self-distance is set to exactly 0.
    """
    same = y is None
    y = x if same else y
    upcast = x.dtype == np.float32 or y.dtype == np.float32
    y64 = y.astype(np.float64) if upcast else y
    yy = np.einsum("ij,ij->i", y64, y64)[None, :]
    step = _rows_per_chunk(len(y), chunk_mb)
    for start in range(0, len(x), step):
        xb = x[start : start + step]
        xb64 = xb.astype(np.float64) if upcast else xb
        d = -2.0 * (xb64 @ y64.T)
        d += np.einsum("ij,ij->i", xb64, xb64)[:, None]
        d += yy
        if upcast:
            d = d.astype(np.float32)
        np.maximum(d, 0, out=d)
        if same:
            rows = np.arange(len(xb))
            d[rows, start + rows] = 0
        yield start, np.sqrt(d, out=d)


def knn_radii(x: np.ndarray, ks: int | list[int], chunk_mb: int = 256) -> np.ndarray:
    """Distance to the k-th nearest other point, for each row of ``x`` and each k.

    Returns [len(ks), N] for a list, [N] for an int. Self (distance 0) is excluded by taking
    the (k+1)-th smallest, exactly as ``prdc`` does.
    """
    single = isinstance(ks, (int, np.integer))
    klist = [int(ks)] if single else [int(k) for k in ks]
    out = np.empty((len(klist), len(x)), dtype=np.float64)
    for start, d in distance_blocks(x, None, chunk_mb):
        part = np.partition(d, klist, axis=1)
        out[:, start : start + len(d)] = part[:, klist].T
    return out[0] if single else out


def exact_scores(real: np.ndarray, fake: np.ndarray, k: int = 3, k_dc: int | None = 5,
                 chunk_mb: int = 256) -> dict[str, float]:
    """Precision/recall with ``k`` and density/coverage with ``k_dc`` (None: same as ``k``),
    all from one pass over the real-fake distances.

    Keys: knn_precision, knn_recall, density, coverage.
    """
    k_dc = k if k_dc is None else k_dc
    real, fake = check_pair(real, fake, max(k, k_dc))
    if real.dtype != fake.dtype:  # sklearn upcasts mixed inputs to float64
        real, fake = real.astype(np.float64), fake.astype(np.float64)
    r_rad = knn_radii(real, sorted({k, k_dc}), chunk_mb)
    r_pr = r_rad[0 if k <= k_dc else 1]
    r_dc = r_rad[0 if k_dc <= k else 1]
    f_pr = knn_radii(fake, k, chunk_mb)
    inside_any = np.zeros(len(fake), dtype=bool)   # precision: fake inside some real ball
    inside_count = np.zeros(len(fake), dtype=np.int64)  # density numerator
    recalled = np.zeros(len(real), dtype=bool)
    covered = np.zeros(len(real), dtype=bool)
    for start, d in distance_blocks(real, fake, chunk_mb):  # d: [real block, fake]
        sl = slice(start, start + len(d))
        inside_any |= (d < r_pr[sl, None]).any(axis=0)
        inside_count += (d < r_dc[sl, None]).sum(axis=0)
        recalled[sl] = (d < f_pr[None, :]).any(axis=1)
        covered[sl] = d.min(axis=1) < r_dc[sl]
    return {
        "knn_precision": float(inside_any.mean()),
        "knn_recall": float(recalled.mean()),
        "density": float(inside_count.mean() / k_dc),
        "coverage": float(covered.mean()),
    }


def prdc(real: np.ndarray, fake: np.ndarray, nearest_k: int = 5, chunk_mb: int = 256) -> dict[str, float]:
    """Same call and keys as ``prdc.compute_prdc`` (precision, recall, density, coverage)."""
    s = exact_scores(real, fake, nearest_k, nearest_k, chunk_mb)
    return {"precision": s["knn_precision"], "recall": s["knn_recall"],
            "density": s["density"], "coverage": s["coverage"]}


def _exact_joint(real: np.ndarray, fake: np.ndarray, configs: dict) -> dict:
    """kNN P/R and density/coverage from one pass over the distances (compare's default)."""
    pr, dc = configs.get("knn"), configs.get("density_coverage")
    out = exact_scores(real, fake, pr.k, dc.k, min(pr.chunk_mb, dc.chunk_mb))
    return out


@register_metric("knn", KNNConfig, [("knn_precision", "kNN precision (exact)"), ("knn_recall", "kNN recall (exact)")],
                 "improved precision/recall, exact kNN balls (Kynkäänniemi et al. 2019)",
                 short="kNN P / R", options={"k": "k"}, joint=_exact_joint)
def knn_precision_recall(real: np.ndarray, fake: np.ndarray, config: KNNConfig | None = None) -> dict[str, float]:
    config = config or KNNConfig()
    s = exact_scores(real, fake, config.k, config.k, config.chunk_mb)
    return {"knn_precision": s["knn_precision"], "knn_recall": s["knn_recall"]}


@register_metric("density_coverage", DensityCoverageConfig, [("density", "density"), ("coverage", "coverage")],
                 "density/coverage, exact kNN balls (Naeem et al. 2020)",
                 short="density / coverage", summary=False, options={"k_dc": "k"}, joint=_exact_joint)
def density_coverage(real: np.ndarray, fake: np.ndarray, config: DensityCoverageConfig | None = None) -> dict[str, float]:
    config = config or DensityCoverageConfig()
    s = exact_scores(real, fake, config.k, config.k, config.chunk_mb)
    return {"density": s["density"], "coverage": s["coverage"]}
