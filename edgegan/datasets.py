"""Datasets built from images that installed packages ship (no downloads). A top-level module
because both models (training) and metrics (the real reference set) use it.

* digits: scikit-learn's 1,797 8×8 handwritten digits, upsampled to 32×32 in [-1, 1].
* sketch: photo -> pencil-sketch translation on patches of scikit-learn's two sample photos.
  The target is computed from the patch after per-patch luminance normalisation (dark lines
  where the blurred normalised luminance has strong gradients, soft shading elsewhere, a sepia
  tint). Normalising per patch matters: a CycleGAN ResNet generator starts with conv +
  InstanceNorm, which makes it exactly invariant to any global brightness/contrast change of
  its input, so a target that depends on absolute brightness (e.g. denoising) cannot be
  learned by it. The left 80 % of each photo is for training, the right 20 % is held out.
"""
from __future__ import annotations

import functools

import numpy as np

SKETCH_BLUR_SIGMA = 1.0
TRAIN_FRACTION = 0.8
SEPIA = np.array([[1.0, 0.0], [0.95, -0.03], [0.85, -0.10]], np.float32)  # per-channel gain, offset


def digits_images(size: int = 32) -> np.ndarray:
    """All digits as float32 [1797, 1, size, size] in [-1, 1] (bilinear upsampling)."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    imgs = load_digits().images.astype(np.float32) / 16.0
    t = torch.from_numpy(imgs)[:, None]
    t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    return (t.clamp(0, 1) * 2 - 1).numpy().astype(np.float32)


def digits_labels() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().target.astype(np.int64)


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = int(np.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of [N, C, H, W] with reflect padding."""
    k = _gaussian_kernel(sigma)
    r = len(k) // 2
    out = images
    for axis in (2, 3):
        pad = [(0, 0)] * 4
        pad[axis] = (r, r)
        padded = np.pad(out, pad, mode="reflect")
        acc = np.zeros_like(out)
        for i, w in enumerate(k):
            sl = [slice(None)] * 4
            sl[axis] = slice(i, i + out.shape[axis])
            acc += w * padded[tuple(sl)]
        out = acc
    return out.astype(np.float32)


def sketch(photos: np.ndarray) -> np.ndarray:
    """The sketch task's target for photo patches [N, 3, H, W] in [-1, 1]."""
    gray = 0.299 * photos[:, :1] + 0.587 * photos[:, 1:2] + 0.114 * photos[:, 2:3]
    mean = gray.mean(axis=(2, 3), keepdims=True)
    std = gray.std(axis=(2, 3), keepdims=True)
    g = blur((gray - mean) / (std + 0.1), SKETCH_BLUR_SIGMA)
    gp = np.pad(g, [(0, 0), (0, 0), (1, 1), (1, 1)], mode="reflect")
    gx = (gp[:, :, 1:-1, 2:] - gp[:, :, 1:-1, :-2]) / 2
    gy = (gp[:, :, 2:, 1:-1] - gp[:, :, :-2, 1:-1]) / 2
    mag = np.sqrt(gx**2 + gy**2)
    base = 0.55 + 0.3 * np.tanh(g) - 2.0 * mag
    out = base * SEPIA[None, :, 0, None, None] + SEPIA[None, :, 1, None, None]
    return np.clip(out, -1, 1).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _photos() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images

    return [img.astype(np.float32) / 127.5 - 1.0 for img in load_sample_images().images]


def sketch_patches(n: int, size: int, seed: int, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``n`` random (photo, sketch) patch pairs [n, 3, size, size] from one split."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    rng = np.random.default_rng(seed)
    photos = _photos()
    clean = np.empty((n, 3, size, size), np.float32)
    for i in range(n):
        img = photos[rng.integers(len(photos))]
        h, w, _ = img.shape
        cut = int(w * TRAIN_FRACTION)
        x0, x1 = (0, cut - size) if split == "train" else (cut, w - size)
        x = int(rng.integers(x0, x1 + 1))
        y = int(rng.integers(0, h - size + 1))
        patch = img[y : y + size, x : x + size].transpose(2, 0, 1)
        if split == "train" and rng.random() < 0.5:
            patch = patch[:, :, ::-1]
        clean[i] = patch
    return clean, sketch(clean)
