"""Host-side verification: the same runner code the devices use, on this machine.

Status rules (documented in docs/export.md):
* ``failed``   – conversion or execution failed, wrong output shape, or non-finite outputs;
* ``degraded`` – runs, but PSNR vs float torch is below ``ok_psnr_db`` (default 30 dB);
* ``ok``       – PSNR >= ``ok_psnr_db``.
PSNR's peak is the width of the model's output range (bundle.json model.output_range; 2.0 for
[-1, 1], the default for bundles that do not record one).
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import time
from pathlib import Path

import numpy as np

from ..config import JsonConfig
from ..errors import ArtifactRunError, ConfigError, first_line
from ..metrics.paired import psnr_from_mse

PEAK = 2.0


@dataclasses.dataclass
class FidelityThresholds(JsonConfig):
    ok_psnr_db: float = 30.0

    def validate(self) -> None:
        if not 0 < self.ok_psnr_db < 200:
            raise ConfigError(f"ok_psnr_db must be in (0, 200), got {self.ok_psnr_db}")


def fidelity(outputs: np.ndarray, reference: np.ndarray, peak: float = PEAK) -> dict:
    """PSNR (peak ``peak``: hi - lo of the model's output range) / max / mean abs error of
    ``outputs`` vs the float reference, plus the worst sample."""
    diff = np.abs(np.asarray(outputs, np.float64) - np.asarray(reference, np.float64))
    per_sample = psnr_from_mse((diff**2).reshape(len(diff), -1).mean(axis=1), peak)
    p = float(psnr_from_mse(float(np.mean(diff**2)), peak))
    return {
        "psnr_db": round(p, 2) if math.isfinite(p) else None,
        "exact": not math.isfinite(p),
        "max_abs_err": float(diff.max()),
        "mean_abs_err": float(diff.mean()),
        "worst_sample_psnr_db": round(float(per_sample.min()), 2) if math.isfinite(per_sample.min()) else None,
        "worst_sample": int(np.argmin(per_sample)),
        "samples": int(len(outputs)),
    }


def _runner():
    from ..runner import edgegan_runner

    return edgegan_runner


def run_artifact(path: Path, fmt: str, io: dict, inputs: np.ndarray, threads: int = 2) -> np.ndarray:
    """Outputs of one artifact for every input (batch 1), via the device runner's code;
    ArtifactRunError when this host cannot load or run it."""
    r = _runner()
    try:
        art = r.Artifact(str(path), fmt, io, threads)
    except r.RunnerError as exc:
        raise ArtifactRunError(f"cannot load {fmt} artifact '{Path(path).name}' on this host: {first_line(exc, 300)}; "
                               "install its runtime (see `edgegan env`) or re-export the bundle") from None
    try:
        return art.run_all(inputs)
    except r.RunnerError as exc:  # loaded, so the runtime is there: the artifact's graph failed in it
        raise ArtifactRunError(f"{fmt} artifact '{Path(path).name}' loaded but failed when run: {first_line(exc, 300)}; "
                               f"re-export without the option that produced it (see `edgegan export --help`, "
                               f"--convert-option) or leave {fmt} out") from None


# Runtimes' worker threads keep spinning for tens of ms after a run and steal the cores from
# the next artifact (measured: tflite-fp32 timed right after ort-int8 read 1.44 ms instead of
# 0.71 ms). So each timed block starts after a pause that lets them park, then untimed runs
# for WARM_SECONDS of wall time. With both, the round-robin medians match one-artifact-per-
# process runs of the device runner within ~1 %.
PAUSE_SECONDS = 0.05
WARM_SECONDS = 0.08


def measure_latencies(artifacts: dict[str, tuple[Path, dict]], x: np.ndarray, threads: int = 2,
                      rounds: int = 5, runs_per_round: int = 20, warmup: int = 5) -> dict[str, dict]:
    """Median batch-1 latency per artifact, measured round-robin in one run so that machine
    noise hits every format alike (that is what makes the ratios comparable)."""
    import math

    r = _runner()
    loaded = {fmt: r.Artifact(str(p), fmt, io, threads) for fmt, (p, io) in artifacts.items()}
    samples: dict[str, list[float]] = {fmt: [] for fmt in loaded}
    per_run: dict[str, float] = {}
    for fmt, art in loaded.items():
        _, ms = r.time_latency(art, x[:1], warmup, 5)
        per_run[fmt] = max(statistics.median(ms), 1e-3)
    for _ in range(rounds):
        for fmt, art in loaded.items():
            time.sleep(PAUSE_SECONDS)
            warm = max(warmup, math.ceil(WARM_SECONDS * 1000 / per_run[fmt]))
            _, ms = r.time_latency(art, x[:1], min(warm, 2000), runs_per_round)
            samples[fmt].extend(ms)
    return {
        fmt: {"median": round(statistics.median(ms), 4), "runs": len(ms), "threads": threads,
              "runtime": loaded[fmt].runtime}
        for fmt, ms in samples.items()
    }
