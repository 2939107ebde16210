"""Paired metrics for same-latent pairs (float model vs device output).

When both sides were generated from the same latents, sample i of one should equal sample i
of the other; these metrics measure how far each pair moved and rank the pairs, because
compression does not hurt every sample equally. Images are [N, C, H, W] in [-1, 1]
(``data_range`` 2). PSNR is reported over all pixels (the fidelity number) and per sample;
SSIM follows Wang et al. 2004 (11×11 Gaussian window, σ 1.5, K1 0.01, K2 0.03, valid region),
per channel then averaged. A perfect match has infinite PSNR (``inf``; null in JSON).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..config import JsonConfig
from ..errors import ConfigError, MetricError
from .base import check_finite


@dataclasses.dataclass
class PairedConfig(JsonConfig):
    data_range: float = 2.0   # max - min of the sample values ([-1, 1] -> 2)
    worst: int = 8            # how many worst-affected samples to list

    def validate(self) -> None:
        if not self.data_range > 0:
            raise ConfigError(f"paired data_range must be > 0, got {self.data_range}")
        if self.worst < 0:
            raise ConfigError(f"paired worst must be >= 0, got {self.worst}")


def check_paired(a: np.ndarray, b: np.ndarray, names: tuple[str, str] = ("A", "B")) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise MetricError(f"paired metrics need equal shapes, got {names[0]} {list(a.shape)} and "
                          f"{names[1]} {list(b.shape)}; generate both from the same latents")
    if a.ndim < 2 or len(a) == 0:
        raise MetricError(f"paired metrics need [N, ...] arrays with N >= 1, got shape {list(a.shape)}")
    check_finite(a, names[0])
    check_finite(b, names[1])
    return a.astype(np.float64), b.astype(np.float64)


def psnr_from_mse(mse: np.ndarray | float, data_range: float) -> np.ndarray:
    """PSNR in dB from mean squared error(s); ``inf`` where the error is zero."""
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range**2 / np.asarray(mse, dtype=np.float64))


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 2.0) -> np.ndarray:
    """Per-sample PSNR in dB ([N]); ``inf`` where a sample is reproduced exactly."""
    a, b = check_paired(a, b)
    return psnr_from_mse(((a - b) ** 2).reshape(len(a), -1).mean(axis=1), data_range)


def psnr_overall(a: np.ndarray, b: np.ndarray, data_range: float = 2.0) -> float:
    """PSNR in dB over all pixels of all pairs (the single fidelity number); ``inf`` when equal."""
    a, b = check_paired(a, b)
    return float(psnr_from_mse(float(np.mean((a - b) ** 2)), data_range))


def _gaussian_window(size: int, sigma: float) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable correlation of [..., H, W] with g ⊗ g, 'valid' region only."""
    n = len(g)
    h, w = x.shape[-2:]
    rows = sum(g[i] * x[..., i : h - n + 1 + i, :] for i in range(n))
    return sum(g[i] * rows[..., :, i : w - n + 1 + i] for i in range(n))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 2.0, window: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Per-sample SSIM ([N]) of images [N, C, H, W] (or [N, H, W]).

    Images smaller than the window use the largest odd window that fits, with σ scaled
    in proportion (documented deviation; the standard needs ≥ 11×11 images).
    """
    a, b = check_paired(a, b)
    if a.ndim == 3:
        a, b = a[:, None], b[:, None]
    if a.ndim != 4:
        raise MetricError(f"SSIM needs images [N, C, H, W], got shape {list(a.shape)}")
    size = min(window, a.shape[2], a.shape[3])
    size -= 1 - size % 2
    g = _gaussian_window(size, sigma * size / window)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    saa = _filter_valid(a * a, g) - mu_a**2
    sbb = _filter_valid(b * b, g) - mu_b**2
    sab = _filter_valid(a * b, g) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    return s.reshape(len(a), -1).mean(axis=1)


def _finite_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def paired_metrics(a: np.ndarray, b: np.ndarray, config: PairedConfig | None = None) -> dict:
    """PSNR (overall and per sample), SSIM, max/mean abs error, and the worst / median pairs.

    Returns a dict with scalars ``psnr_db`` (all pixels), ``psnr_db_worst``,
    ``psnr_db_median``, ``ssim``, ``max_abs_err``, ``mean_abs_err``; ``ranking``: sample
    indices from most to least affected (lowest per-sample PSNR first); ``worst``: the first
    ``config.worst`` of them with their numbers; ``median_index``; and ``per_sample`` arrays.
    """
    config = config or PairedConfig()
    a64, b64 = check_paired(a, b)
    diff = np.abs(a64 - b64).reshape(len(a64), -1)
    mse = (diff**2).mean(axis=1)
    per_psnr = psnr_from_mse(mse, config.data_range)
    per_ssim = ssim(a64, b64, config.data_range) if a64.ndim in (3, 4) else None
    ranking = np.argsort(-mse, kind="stable")  # largest error first
    median_index = int(ranking[len(ranking) // 2])
    worst = [{"index": int(i), "psnr_db": _finite_or_none(per_psnr[i]), "max_abs_err": float(diff[i].max()),
              **({"ssim": float(per_ssim[i])} if per_ssim is not None else {})}
             for i in ranking[: config.worst]]
    return {
        "count": int(len(a64)),
        "psnr_db": float(psnr_from_mse(mse.mean(), config.data_range)),
        "psnr_db_worst": float(per_psnr[ranking[0]]),
        "psnr_db_median": float(np.median(per_psnr)),
        "ssim": float(per_ssim.mean()) if per_ssim is not None else None,
        "max_abs_err": float(diff.max()),
        "mean_abs_err": float(diff.mean()),
        "worst": worst,
        "median_index": median_index,
        "ranking": ranking,
        "per_sample": {"psnr_db": per_psnr, "max_abs_err": diff.max(axis=1),
                       **({"ssim": per_ssim} if per_ssim is not None else {})},
    }
