"""Shared pieces of the metrics: input checks and the metric registry.

Every distribution metric is a :class:`Metric` plugin (a typed config + a compute function on
two feature matrices) registered by name in :data:`METRICS`, so ``compare`` and reports can
run "all metrics" without knowing them.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from ..config import JsonConfig
from ..errors import MetricError
from ..registry import Registry


@dataclasses.dataclass(frozen=True)
class Metric:
    """A distribution metric: ``compute(real, fake, config) -> {key: value}``."""

    name: str
    config_cls: type
    compute: Callable[[np.ndarray, np.ndarray, JsonConfig], dict]
    keys: tuple[str, ...]
    description: str


METRICS: Registry[Metric] = Registry("metric")


def register_metric(name: str, config_cls: type, keys: tuple[str, ...], description: str):
    """Decorator: register ``fn(real, fake, config)`` as metric ``name``."""

    def deco(fn):
        METRICS.add(name, Metric(name, config_cls, fn, keys, description))
        return fn

    return deco


def compute_metric(name: str, real: np.ndarray, fake: np.ndarray, config: JsonConfig | dict | None = None) -> dict:
    """Run registered metric ``name`` (config: instance, dict of overrides, or defaults)."""
    m = METRICS.get(name)
    if config is None:
        config = m.config_cls()
    elif isinstance(config, dict):
        config = m.config_cls.from_dict(config)
    return m.compute(real, fake, config)


def check_finite(x: np.ndarray, what: str) -> None:
    """One-line error naming how many samples hold NaN/inf and the first one."""
    flat = np.asarray(x).reshape(len(x), -1)
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise MetricError(
            f"{what}: {int(bad.sum())} of {len(x)} samples contain NaN/inf (first at index {first}); "
            "fix the model/runtime output or drop those samples"
        )


def as_features(x: np.ndarray, what: str, min_count: int = 1) -> np.ndarray:
    """Validate a feature matrix [N, D]: 2-D, numeric, finite, at least ``min_count`` rows."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise MetricError(f"{what}: features must be 2-D [N, D], got shape {list(x.shape)}; "
                          "run a feature extractor first (edgegan.metrics.extract_features)")
    if not np.issubdtype(x.dtype, np.number):
        raise MetricError(f"{what}: features must be numeric, got dtype {x.dtype}")
    if len(x) < min_count:
        raise MetricError(f"{what}: need at least {min_count} samples, got {len(x)}; pass more samples")
    check_finite(x, what)
    # float64 stays float64 (so exact references match prdc bit for bit); all else -> float32
    return np.ascontiguousarray(x, dtype=np.float64 if x.dtype == np.float64 else np.float32)


def check_pair(real: np.ndarray, fake: np.ndarray, k: int, names: tuple[str, str] = ("real", "fake")) -> tuple[np.ndarray, np.ndarray]:
    """Both feature sets valid, same dimension, more than ``k`` samples each."""
    if k < 1:
        raise MetricError(f"k must be >= 1, got {k}")
    real = as_features(real, names[0])
    fake = as_features(fake, names[1])
    if real.shape[1] != fake.shape[1]:
        raise MetricError(
            f"feature dimensions differ: {names[0]} has {real.shape[1]}, {names[1]} has {fake.shape[1]}; "
            "extract both with the same feature extractor"
        )
    for what, x in zip(names, (real, fake)):
        if len(x) <= k:
            raise MetricError(
                f"{what}: k={k} nearest neighbours need more than {k} samples, got {len(x)}; "
                f"pass more samples or lower k"
            )
    return real, fake
