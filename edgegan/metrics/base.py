"""Shared pieces of the metrics: input checks and the metric registry.

Every distribution metric is a :class:`Metric` plugin (a typed config + a compute function on
two feature matrices) registered by name in :data:`METRICS`, so ``compare`` and reports can
run "all metrics" without knowing them.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional

import numpy as np

from ..config import JsonConfig
from ..errors import MetricError
from ..registry import Registry


@dataclasses.dataclass(frozen=True)
class Column:
    """One number a metric reports: its result key, how humans read it, how it is printed."""

    key: str
    label: str                # long label (compare table rows)
    fmt: str = ".4f"          # format spec in the compare table / JSON-facing text
    short_fmt: str = ".2f"    # format spec in the compact profile tables

    def format(self, value, short: bool = False, empty: str = "-") -> str:
        if value is None:
            return empty
        if not isinstance(value, float):
            return str(value)
        if not math.isfinite(value):
            return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
        spec = self.short_fmt if short else self.fmt
        if not short and abs(value) >= 100:
            spec = ".1f"
        return format(value, spec)


@dataclasses.dataclass(frozen=True)
class Metric:
    """A distribution metric: ``compute(real, fake, config) -> {key: value}``.

    ``columns`` declare its result keys with labels and formatting (compare, results.json,
    results.csv and the report tables are built from them); ``config_cls()`` are its defaults;
    ``options`` maps the compare verb's shared settings (``k``, ``k_dc``, ``seed``) to fields
    of its config; ``short`` is its header in the compact profile tables and ``summary`` says
    whether it appears there at all. ``joint``: optional ``fn(real, fake, {name: config})``
    computing several metrics that share work at once (all members must name the same fn).
    """

    name: str
    config_cls: type
    compute: Callable[[np.ndarray, np.ndarray, JsonConfig], dict]
    columns: tuple[Column, ...]
    description: str
    short: str = ""
    summary: bool = True
    options: dict = dataclasses.field(default_factory=dict)
    joint: Optional[Callable[[np.ndarray, np.ndarray, dict], dict]] = None

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.columns)

    def config(self, shared: dict | None = None, override: JsonConfig | dict | None = None) -> JsonConfig:
        """Defaults, then the shared compare settings this metric takes, then ``override``."""
        if isinstance(override, self.config_cls):
            return override
        values = {f: shared[o] for o, f in self.options.items() if shared and shared.get(o) is not None}
        if isinstance(override, dict):
            values.update(override)
        elif override is not None:
            raise MetricError(f"config for metric '{self.name}' is a {type(override).__name__}; "
                              f"pass a {self.config_cls.__name__} or a dict")
        return self.config_cls.from_dict(values)

    def cell(self, quality: dict, empty: str = "–") -> str:
        """The compact-table cell: every column's value joined by ' / ' (``empty`` if absent)."""
        if not any(c.key in quality for c in self.columns):
            return empty
        return " / ".join(c.format(quality.get(c.key), short=True, empty=empty) for c in self.columns)


METRICS: Registry[Metric] = Registry("metric")


def register_metric(name: str, config_cls: type, columns, description: str, **extra):
    """Decorator: register ``fn(real, fake, config)`` as metric ``name``. ``columns``: Column
    objects or ``(key, label)`` pairs; ``extra``: the other :class:`Metric` fields."""

    def deco(fn):
        cols = tuple(c if isinstance(c, Column) else Column(*c) if isinstance(c, tuple) else Column(c, c)
                     for c in columns)
        METRICS.add(name, Metric(name, config_cls, fn, cols, description, **extra))
        return fn

    return deco


def metric_columns(summary_only: bool = False) -> list[Column]:
    """Every registered metric's columns, in registration order (the result keys)."""
    return [c for m in METRICS.values() if m.summary or not summary_only for c in m.columns]


def compute_all(real: np.ndarray, fake: np.ndarray, configs: dict[str, JsonConfig]) -> dict:
    """Every metric named in ``configs`` (name -> config), sharing work where metrics declare
    the same ``joint`` function. Keys: the union of the metrics' result keys (plus any extra
    detail a joint function adds)."""
    out: dict = {}
    done: set[str] = set()
    for name in configs:
        if name in done:
            continue
        m = METRICS.get(name)
        members = [n for n in configs if n not in done and m.joint is not None and METRICS.get(n).joint is m.joint]
        if len(members) > 1:
            out.update(m.joint(real, fake, {n: configs[n] for n in members}))
            done.update(members)
        else:
            out.update(m.compute(real, fake, configs[name]))
            done.add(name)
    return out


def compute_metric(name: str, real: np.ndarray, fake: np.ndarray, config: JsonConfig | dict | None = None) -> dict:
    """Run registered metric ``name`` (config: instance, dict of overrides, or defaults)."""
    m = METRICS.get(name)
    return m.compute(real, fake, m.config(None, config))


def check_finite(x: np.ndarray, what: str) -> None:
    """One-line error naming how many samples hold NaN/inf and the first one."""
    flat = np.asarray(x).reshape(len(x), -1)
    # in row blocks: a [N, D] boolean temporary would be 2 GB at 1M x 2048 (memory-mapped inputs);
    # cache-sized ones (512 KB): 64 MB blocks were page-faulted in afresh (0.5 s vs 0.13 s, 100k x 2048)
    step = max(1, (512 << 10) // max(flat.shape[1], 1))
    bad = np.concatenate([~np.isfinite(flat[s:s + step]).all(axis=1) for s in range(0, len(flat), step)]) \
        if len(flat) else np.zeros(0, dtype=bool)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise MetricError(
            f"{what}: {int(bad.sum())} of {len(x)} samples contain NaN/inf (first at index {first}); "
            "fix the model/runtime output or drop those samples"
        )


def as_features(x: np.ndarray, what: str, min_count: int = 1, finite: bool = True) -> np.ndarray:
    """Validate a feature matrix [N, D]: 2-D, numeric, finite, at least ``min_count`` rows.
    ``finite=False`` leaves the NaN/inf scan to the caller (LSH+kNN's projection finds them
    in its own pass over the data and then calls check_finite for the message)."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise MetricError(f"{what}: features must be 2-D [N, D], got shape {list(x.shape)}; "
                          "run a feature extractor first (edgegan.metrics.extract_features)")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise MetricError(f"{what}: features must be real numbers, got dtype {x.dtype}")
    if len(x) < min_count:
        raise MetricError(f"{what}: need at least {min_count} samples, got {len(x)}; pass more samples")
    if finite:
        check_finite(x, what)
    # float64 stays float64 (so exact references match prdc bit for bit); all else -> float32
    return np.ascontiguousarray(x, dtype=np.float64 if x.dtype == np.float64 else np.float32)


def check_pair(real: np.ndarray, fake: np.ndarray, k: int, names: tuple[str, str] = ("real", "fake"),
               finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Both feature sets valid, same dimension, more than ``k`` samples each (``finite``: see
    as_features)."""
    if k < 1:
        raise MetricError(f"k must be >= 1, got {k}")
    real = as_features(real, names[0], finite=finite)
    fake = as_features(fake, names[1], finite=finite)
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
