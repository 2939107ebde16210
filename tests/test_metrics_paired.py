"""Paired metrics (PSNR, SSIM, errors, worst-sample ranking) on constructed pairs."""
from __future__ import annotations

import math

import numpy as np
import pytest

from edgegan.errors import ConfigError, MetricError
from edgegan.metrics import PairedConfig, paired_metrics, psnr, ssim


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (12, 1, 32, 32)).astype(np.float32)
    # smooth them a little so SSIM has structure to compare
    return ((x + np.roll(x, 1, 2) + np.roll(x, 1, 3)) / 3).astype(np.float32)


def test_psnr_known_values(images):
    b = images + 0.02  # MSE = 4e-4, range 2 -> 10 log10(4 / 4e-4) = 40 dB
    np.testing.assert_allclose(psnr(images, b), 40.0, atol=1e-4)
    assert np.all(np.isinf(psnr(images, images)))
    assert psnr(images, images + 0.02, data_range=1.0)[0] == pytest.approx(40.0 - 20 * math.log10(2), abs=1e-4)


def test_psnr_overall_pools_all_pixels(images):
    from edgegan.metrics.paired import psnr_overall

    b = images.copy()
    b[0] += 0.1  # only sample 0 moves: overall MSE = 0.01 / 12 -> 10 log10(4 * 12 / 0.01)
    assert psnr_overall(images, b) == pytest.approx(10 * math.log10(4 * 12 / 0.01), abs=1e-3)
    assert math.isinf(psnr_overall(images, images))
    with pytest.raises(MetricError):
        psnr_overall(images, images[:3])


def _ssim_direct(a, b, win=11, sigma=1.5, L=2.0):
    """Straightforward double loop over window positions (independent of the vectorised one)."""
    x = np.arange(win) - (win - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    vals = []
    for i in range(a.shape[0] - win + 1):
        for j in range(a.shape[1] - win + 1):
            pa, pb = a[i : i + win, j : j + win], b[i : i + win, j : j + win]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va, vb = (w * pa * pa).sum() - ma**2, (w * pb * pb).sum() - mb**2
            cov = (w * pa * pb).sum() - ma * mb
            vals.append(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def test_ssim_matches_direct_definition(images):
    noisy = images + np.random.default_rng(1).normal(0, 0.1, images.shape).astype(np.float32)
    ours = ssim(images[:3], noisy[:3])
    direct = [_ssim_direct(images[i, 0].astype(np.float64), noisy[i, 0].astype(np.float64)) for i in range(3)]
    np.testing.assert_allclose(ours, direct, atol=1e-10)


def test_ssim_identity_and_monotone(images):
    np.testing.assert_allclose(ssim(images, images), 1.0, atol=1e-12)
    rng = np.random.default_rng(2)
    s = [ssim(images, images + rng.normal(0, sd, images.shape)).mean() for sd in (0.01, 0.05, 0.2)]
    assert s[0] > s[1] > s[2]
    assert 0.2 < s[2] < 0.9


def test_ssim_small_images_shrink_window():
    rng = np.random.default_rng(3)
    a = rng.uniform(-1, 1, (4, 3, 8, 8))
    assert np.allclose(ssim(a, a), 1.0)
    assert ssim(a, a + 0.3 * rng.normal(size=a.shape)).mean() < 0.95


def test_paired_metrics_rank_the_most_affected_samples(images):
    b = images.copy()
    b[7] += 0.3   # worst
    b[2] += 0.1   # second worst
    b[5] += 0.01
    out = paired_metrics(images, b, PairedConfig(worst=3))
    assert [w["index"] for w in out["worst"]] == [7, 2, 5]
    assert list(out["ranking"][:3]) == [7, 2, 5]
    assert out["worst"][0]["psnr_db"] == pytest.approx(10 * math.log10(4 / 0.09), abs=1e-3)
    assert out["max_abs_err"] == pytest.approx(0.3, abs=1e-6)
    assert out["mean_abs_err"] == pytest.approx((0.3 + 0.1 + 0.01) / 12, abs=1e-6)
    assert out["psnr_db"] == pytest.approx(10 * math.log10(4 / ((0.09 + 0.01 + 0.0001) / 12)), abs=1e-3)
    assert out["median_index"] not in (7, 2, 5)  # 9 of 12 samples are untouched
    assert out["ssim"] < 1.0 and out["count"] == 12
    assert math.isinf(out["psnr_db_median"])


def test_identical_pairs():
    x = np.zeros((3, 1, 16, 16), np.float32)
    out = paired_metrics(x, x)
    assert math.isinf(out["psnr_db"]) and out["max_abs_err"] == 0.0 and out["ssim"] == pytest.approx(1.0)


def test_paired_on_feature_vectors_skips_ssim():
    a = np.random.default_rng(0).normal(size=(10, 5))
    out = paired_metrics(a, a + 0.1)
    assert out["ssim"] is None and out["max_abs_err"] == pytest.approx(0.1)


def test_bad_inputs(images):
    with pytest.raises(MetricError, match="equal shapes"):
        paired_metrics(images, images[:5])
    nan = images.copy()
    nan[3, 0, 0, 0] = np.nan
    with pytest.raises(MetricError, match=r"B: 1 of 12 samples contain NaN/inf \(first at index 3\)"):
        paired_metrics(images, nan)
    with pytest.raises(MetricError, match="N >= 1"):
        paired_metrics(images[:0], images[:0])
    with pytest.raises(ConfigError):
        PairedConfig(data_range=0)
