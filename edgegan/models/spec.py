"""What a generator takes as input: shape, dtype, distribution — enough to draw inputs
without torch (the device runner reads the same record from bundle.json)."""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import numpy as np

from ..config import JsonConfig
from ..errors import ConfigError, InputSpecError

KINDS = ("latent", "image")
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
