"""The per-op numerics table: one row per quantized op output, ranked by the error the op
introduces itself (not the error it inherits from upstream), written as ``debug.json``."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..config import JsonConfig
from ..errors import ConfigError, OutputError

DEBUG_SCHEMA_VERSION = 1
# a tensor matched exactly (no noise at all) reads as this many dB instead of infinity (JSON has no inf)
SQNR_CAP_DB = 200.0


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio of ``test`` against ``reference`` in dB (capped at
    SQNR_CAP_DB for an exact match; a silent reference with any noise reads -SQNR_CAP_DB)."""
    ref = np.asarray(reference, np.float64)
    noise = float(np.mean((ref - np.asarray(test, np.float64)) ** 2))
    signal = float(np.mean(ref ** 2))
    if noise == 0.0:
        return SQNR_CAP_DB
    if signal == 0.0:
        return -SQNR_CAP_DB
    return float(min(SQNR_CAP_DB, max(-SQNR_CAP_DB, 10.0 * math.log10(signal / noise))))


def psnr_db(reference: np.ndarray, test: np.ndarray, peak: float | None = None) -> float:
    """PSNR with the peak taken from the reference's own range (a fixed peak overstates
    fidelity on narrow tensors), or ``peak`` (the model output's: its output range's hi - lo)."""
    ref = np.asarray(reference, np.float64)
    peak = float(ref.max() - ref.min()) if peak is None else float(peak)
    mse = float(np.mean((ref - np.asarray(test, np.float64)) ** 2))
    if mse == 0.0:
        return SQNR_CAP_DB
    if peak == 0.0:
        return -SQNR_CAP_DB
    return float(min(SQNR_CAP_DB, 10.0 * math.log10(peak * peak / mse)))


@dataclasses.dataclass
class OpNumerics(JsonConfig):
    """One quantized op output compared with float.

    ``sqnr_db``/``psnr_db``: the quantized model's tensor vs float (total error at this point);
    ``introduced_sqnr_db``: this op alone quantized, fed the FLOAT model's inputs, vs float (the
    error the op adds by itself); ``inherited`` is what remains of the total. ``order`` is the
    op's position along the network (topological), used for the plot."""

    name: str
    op_type: str
    tensor: str
    order: int
    sqnr_db: float
    psnr_db: float
    introduced_sqnr_db: Optional[float] = None
    float_min: float = 0.0
    float_max: float = 0.0
    float_std: float = 0.0
    quant_min: float = 0.0
    quant_max: float = 0.0
    max_abs_err: float = 0.0
    scale: Optional[float] = None
    zero_point: Optional[int] = None
    weight_scale_min: Optional[float] = None
    weight_scale_max: Optional[float] = None
    clipped_fraction: float = 0.0
    macs: int = 0

    @property
    def introduced_noise_fraction(self) -> Optional[float]:
        """Share of this tensor's total noise power the op adds itself (1 = all its own)."""
        if self.introduced_sqnr_db is None:
            return None
        return float(min(1.0, 10 ** ((self.sqnr_db - self.introduced_sqnr_db) / 10.0)))


@dataclasses.dataclass
class DebugReport(JsonConfig):
    """debug.json: which model pair was compared, on how many inputs, and the per-op table
    ranked worst-introducing first (``ranked``); ``ops`` keeps network order."""

    format: str
    backend: str
    float_model: str
    quant_model: str
    inputs: int
    output_sqnr_db: float
    output_psnr_db: float
    ops: list[OpNumerics] = dataclasses.field(default_factory=list)
    unmatched: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    schema_version: int = DEBUG_SCHEMA_VERSION

    def validate(self) -> None:
        if self.schema_version != DEBUG_SCHEMA_VERSION:
            raise ConfigError(f"debug.json schema_version {self.schema_version} is not supported "
                              f"(expected {DEBUG_SCHEMA_VERSION}); re-run edgegan debug-quant")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def ranked(self) -> list[OpNumerics]:
        """Worst error-introducing ops first (ops without an introduced figure rank by total)."""
        def key(op: OpNumerics):
            return op.introduced_sqnr_db if op.introduced_sqnr_db is not None else op.sqnr_db
        return sorted(self.ops, key=lambda op: (key(op), op.order))

    def save(self, path: Path) -> Path:
        from ..util.files import atomic_write

        try:
            atomic_write(path, self.to_json().encode())
        except OSError as exc:
            raise OutputError(f"cannot write '{path}' ({exc.strerror or exc}); choose a writable --out") from None
        return path

    @classmethod
    def load(cls, path: Path) -> "DebugReport":
        try:
            return cls.from_json(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read '{path}' ({exc.strerror or exc})") from None
