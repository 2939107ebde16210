"""Real training images for the methods that need them (``data``: 'digits', an .npz, a folder).

Whatever the source, the result is float32 [N, C, H, W] in [-1, 1] with exactly the shape the
model produces; a source that does not fit is a one-line ConfigError naming the file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import ConfigError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
MAX_IMAGES = 100_000


def _to_unit_range(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 127.5 - 1.0
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ConfigError(f"{what} contains NaN/inf; give images in [-1, 1] or uint8", field="data")
    if arr.min() < -1.0001 or arr.max() > 1.0001:
        raise ConfigError(f"{what} has float values in [{arr.min():.3g}, {arr.max():.3g}], outside [-1, 1]; scale them "
                          "or store uint8", field="data")
    return arr


def _check_shape(arr: np.ndarray, shape: tuple[int, int, int], what: str) -> np.ndarray:
    c, h, w = shape
    if arr.ndim == 4 and arr.shape[1:] != (c, h, w) and arr.shape[1:] == (h, w, c):
        arr = arr.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    if arr.ndim == 3 and c == 1 and arr.shape[1:] == (h, w):
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1:] != (c, h, w):
        raise ConfigError(f"{what} holds images of shape {list(arr.shape[1:])}, the model makes {[c, h, w]}; "
                          "resize them or choose another --data", field="data")
    if len(arr) == 0:
        raise ConfigError(f"{what} holds no images; choose another --data", field="data")
    return np.ascontiguousarray(arr)


def _from_npz(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as npz:
            key = "images" if "images" in npz.files else (npz.files[0] if npz.files else None)
            if key is None:
                raise ConfigError(f"--data '{path}' holds no arrays; save images as np.savez(path, images=...)",
                                  field="data")
            arr = npz[key]
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--data '{path}' is not a readable .npz ({type(exc).__name__}); save it with np.savez",
                          field="data") from None
    what = f"--data '{path}' ({key})"
    return _to_unit_range(_check_shape(arr, shape, what), what)


def _from_folder(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    c, h, w = shape
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ConfigError(f"--data folder '{path}' has no images ({', '.join(IMAGE_SUFFIXES)}); choose another --data",
                          field="data")
    if len(files) > MAX_IMAGES:
        raise ConfigError(f"--data folder '{path}' has {len(files):,} images, above {MAX_IMAGES:,}; use an .npz subset",
                          field="data")
    mode = {1: "L", 3: "RGB"}.get(c)
    if mode is None:
        raise ConfigError(f"the model makes {c}-channel images; a folder gives 1 or 3 channels, use an .npz", field="data")
    out = np.empty((len(files), c, h, w), np.uint8)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as img:
                bands = len(img.getbands())
                if bands != c and not (c == 3 and img.mode == "P"):
                    raise ConfigError(f"--data image '{f}' has {bands} channel(s) ({img.mode}), the model makes {c}; "
                                      "convert it or remove it", field="data")
                if img.size != (w, h):
                    raise ConfigError(f"--data image '{f}' is {img.size[0]}x{img.size[1]}, the model makes {w}x{h}; "
                                      "resize it or remove it", field="data")
                arr = np.asarray(img.convert(mode))
        except (UnidentifiedImageError, OSError):
            raise ConfigError(f"--data image '{f}' cannot be read as an image; remove it", field="data") from None
        out[i] = arr[None] if c == 1 else arr.transpose(2, 0, 1)
    return _to_unit_range(out, f"--data folder '{path}'")


def load_images(spec: str, shape: tuple[int, int, int]) -> np.ndarray:
    """Images [N, *shape] float32 in [-1, 1] from 'digits', an .npz file or a folder."""
    shape = tuple(int(s) for s in shape)
    if spec == "digits":
        from ...datasets import digits_images

        if shape[0] != 1 or shape[1] != shape[2]:
            raise ConfigError(f"--data digits gives 1-channel square images, the model makes {list(shape)}; "
                              "give an .npz or a folder", field="data")
        return digits_images(shape[1])
    path = Path(spec)
    if path.is_dir():
        return _from_folder(path, shape)
    if path.is_file() and path.suffix == ".npz":
        return _from_npz(path, shape)
    if path.is_file():
        raise ConfigError(f"--data '{path}' is neither an .npz nor a folder of images; pass one of those or 'digits'",
                          field="data")
    raise ConfigError(f"--data '{spec}' does not exist; pass 'digits', an .npz file or a folder of images", field="data")
