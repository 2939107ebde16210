"""What a generator takes as input: shape, dtype, distribution — enough to draw inputs
without torch (the device runner reads the same record from bundle.json)."""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import numpy as np

from ..config import JsonConfig
from ..errors import ConfigError, InputSpecError

KINDS = ("latent", "image")
IMAGE_CHANNELS = (1, 3, 4)
MIN_IMAGE_SIDE = 8


def looks_like_image(shape: list[int]) -> bool:
    """[C, H, W] with C in 1/3/4 (grey, RGB, RGBA) and H, W >= 8."""
    return (len(shape) == 3 and shape[0] in IMAGE_CHANNELS and shape[1] >= MIN_IMAGE_SIDE
            and shape[2] >= MIN_IMAGE_SIDE)
DISTRIBUTIONS = ("normal", "uniform")


@dataclasses.dataclass
class InputSpec(JsonConfig):
    """Per-sample input shape (no batch axis) and how to draw inputs from the model's input
    distribution when no real data is supplied."""

    shape: list[int]
    kind: str = "latent"
    dtype: str = "float32"
    distribution: str = "normal"
    low: float = -1.0
    high: float = 1.0
    name: str = "input"
    inferred: Optional[str] = None  # how it was read off the model (edgegan.models.infer), None if given

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if out["inferred"] is None:
            out.pop("inferred")  # given specs keep the manifest's input section as it always was
        return out

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"input kind '{self.kind}' unknown; use one of {', '.join(KINDS)}")
        if self.distribution not in DISTRIBUTIONS:
            raise ConfigError(
                f"input distribution '{self.distribution}' unknown; use one of {', '.join(DISTRIBUTIONS)}"
            )
        if not self.shape or any((not isinstance(s, int)) or s <= 0 for s in self.shape):
            raise ConfigError(f"input shape {self.shape} must be a non-empty list of positive ints")
        if self.dtype != "float32":
            raise ConfigError(f"input dtype '{self.dtype}' unsupported; generators take float32")

    def sample(self, n: int, seed: int) -> np.ndarray:
        """Draw ``n`` inputs deterministically from the spec's distribution."""
        rng = np.random.default_rng(seed)
        shape = (n, *self.shape)
        if self.distribution == "normal":
            return rng.standard_normal(shape, dtype=np.float32)
        return rng.uniform(self.low, self.high, size=shape).astype(np.float32)

    @classmethod
    def from_shape(cls, shape: list[int], kind: Optional[str] = None) -> "InputSpec":
        """The spec ``--input-shape`` / ``--input-kind`` describe: latents are standard normal,
        images uniform in [-1, 1]. An image-like shape (C in 1/3/4, H and W >= 8) without a kind
        is refused: drawing normal "images" (or uniform latents) silently skews every number."""
        shape = [int(s) for s in shape]
        if kind is None:
            if looks_like_image(shape):
                dims = ",".join(map(str, shape))
                raise ConfigError(f"--input-shape {dims} looks like an image ({shape[0]} channels, {shape[1]}x{shape[2]}); "
                                  "say what the model takes: --input-kind image (uniform in [-1, 1]; pass --inputs-file "
                                  "for real images) or --input-kind latent (standard normal) (API: input_kind=)",
                                  field="input_kind")
            kind = "latent"
        return cls(shape=shape, kind=kind, distribution="normal" if kind == "latent" else "uniform")

    def check(self, x: Any) -> np.ndarray:
        """Return ``x`` as float32 [N, *shape] or raise InputSpecError naming the mismatch."""
        arr = np.asarray(x)
        if arr.ndim == len(self.shape):
            arr = arr[None]
        if tuple(arr.shape[1:]) != tuple(self.shape):
            raise InputSpecError(
                f"inputs have shape {list(arr.shape)} but the model takes [N, {', '.join(map(str, self.shape))}]; "
                "reshape them or pass the matching --input-shape"
            )
        if not np.issubdtype(arr.dtype, np.floating):
            raise InputSpecError(f"inputs have dtype {arr.dtype}; the model takes float32")
        arr = arr.astype(np.float32, copy=False)
        if not np.isfinite(arr).all():
            raise InputSpecError("inputs contain NaN or inf; clean them before exporting")
        return arr
