"""Sample grids as PNG (Pillow only, no matplotlib)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] -> [N, H, W, C] uint8."""
    x = np.clip((np.asarray(images, np.float32) + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    return x.transpose(0, 2, 3, 1)


def grid_image(images: np.ndarray, nrow: int = 8, pad: int = 2, scale: int = 1) -> np.ndarray:
    """Tile [N, C, H, W] images into one [H', W', 3] uint8 array."""
    x = to_uint8(images)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    n, h, w, _ = x.shape
    ncol = min(nrow, n)
    rows = (n + ncol - 1) // ncol
    out = np.full((rows * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, ncol)
        y0, x0 = pad + r * (h + pad), pad + c * (w + pad)
        out[y0 : y0 + h, x0 : x0 + w] = x[i]
    if scale > 1:
        out = out.repeat(scale, axis=0).repeat(scale, axis=1)
    return out


def save_grid(images: np.ndarray, path: str | Path, nrow: int = 8, scale: int = 1) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid_image(images, nrow=nrow, scale=scale)).save(path)
    return path
