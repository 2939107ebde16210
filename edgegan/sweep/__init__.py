"""Sweeps: many models x compression pipelines x formats x targets as one job graph, run on
Ray (or sequentially), resumable by content-hashed job keys, into one results table.

Importing this package imports neither Ray nor torch; :func:`run_sweep` imports Ray when it
runs on it."""
from __future__ import annotations

from .graph import Job, content_key, expand, slot_resource
from .runner import RayOptions, SweepResult, run_sweep
from .spec import (ExportSettings, ModelEntry, PipelineEntry, QualitySettings, RunSettings, SweepSpec, TargetEntry,
                   load_spec)

__all__ = ["ExportSettings", "Job", "ModelEntry", "PipelineEntry", "QualitySettings", "RayOptions", "RunSettings", "SweepResult",
           "SweepSpec", "TargetEntry", "content_key", "expand", "load_spec", "run_sweep", "slot_resource"]
