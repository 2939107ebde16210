"""The range a generator's outputs live in, as recorded in bundle.json: every PSNR takes its peak
(hi - lo) from it. How a range is decided for a model (declared, inferred from the final
activation, measured) lives in ``edgegan.models.output_range``; this module is only the record,
so the bundle reads it without importing the model code."""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from .config import JsonConfig
from .errors import ConfigError

ASSUMED = (-1.0, 1.0)
SOURCES = ("declared", "inferred", "measured", "assumed")


@dataclasses.dataclass
class OutputRange(JsonConfig):
    """[lo, hi] of the model's outputs and how that was decided (``source`` one of SOURCES;
    ``detail`` says by what, e.g. "final Tanh" or "zoo entry dcgan-tiny")."""

    lo: float
    hi: float
    source: str
    detail: str = ""

    def validate(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.hi > self.lo):
            raise ConfigError(f"output range [{self.lo}, {self.hi}] must be two finite numbers with LO < HI, "
                              "e.g. --output-range 0,1", field="output_range")
        if self.source not in SOURCES:
            raise ConfigError(f"output range source {self.source!r} is not one of {SOURCES}")

    @property
    def peak(self) -> float:
        """The PSNR peak signal: the width of the range."""
        return float(self.hi - self.lo)

    def describe(self) -> str:
        return f"[{self.lo:g}, {self.hi:g}] ({self.source}{': ' + self.detail if self.detail else ''})"


def parse_range(value: Any) -> tuple[float, float]:
    """``"0,1"`` / ``[0, 1]`` -> (0.0, 1.0); ConfigError naming --output-range otherwise."""
    parts = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
    try:
        lo, hi = (float(p) for p in parts)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ConfigError(f"--output-range must be LO,HI (two numbers, e.g. 0,1 or -1,1), got {value!r}",
                          field="output_range") from None
    OutputRange(lo, hi, "declared").validate()
    return lo, hi


def assumed_range() -> OutputRange:
    return OutputRange(*ASSUMED, "assumed", "bundle written before output ranges were recorded")
