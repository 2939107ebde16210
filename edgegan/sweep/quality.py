"""The export job's host-side quality measure (spec ``quality``): what a compression pipeline
does to the model itself, before any format — PSNR of the compressed model's samples vs the
uncompressed model's on the same latents, and precision/recall of their features against real
data and against the uncompressed model's own samples on other latents. These are the numbers
of the post-training sweep (``benchmarks/posttrain_sweep.py``), computed in torch.

The references (real features, float samples) depend only on the model and the settings, so a
worker process computes them once and reuses them for every pipeline of that model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

_REFS: dict[str, dict] = {}  # per process: reference key -> {"same": float samples, "features": {ref: feats}}


def generate(model, latents: np.ndarray, batch: int = 250) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.concatenate([model.module(torch.from_numpy(latents[i:i + batch])).numpy()
                               for i in range(0, len(latents), batch)])


def _references(base, q: dict, key: str, extractor) -> dict:
    if key not in _REFS:
        from ..datasets import digits_images

        feats = {}
        if q["real"] == "digits":
            feats["real"] = extractor(digits_images(32))
        feats["float"] = extractor(generate(base, base.sample_inputs(q["samples"], q["reference_seed"])))
        _REFS.clear()  # one model's references at a time: bounded memory on a long-lived worker
        _REFS[key] = {"same": generate(base, base.sample_inputs(q["samples"], q["seed"])), "features": feats}
    return _REFS[key]


def measure(base, model, q: dict, model_params: dict, work: Path) -> dict:
    """Quality columns of one compressed ``model`` (``base``: the uncompressed one), computed on
    one torch thread: the same bits on every run and machine load (multi-threaded kernels re-split
    their reductions under load, and one changed feature bit can move a sample across an LSH
    bucket boundary), and the same thread count as a Ray worker (one CPU per job)."""
    from ..util.torch_threads import torch_threads

    with torch_threads(1):
        return _measure(base, model, q, model_params, work)


def _measure(base, model, q: dict, model_params: dict, work: Path) -> dict:
    from ..metrics import compute_metric, get_extractor
    from ..metrics.paired import psnr_overall
    from ..models.stats import count_macs
    from ..reports.grid import save_grid

    extractor = get_extractor(q["extractor"])
    refs = _references(base, q, json.dumps([model_params, q], sort_keys=True, default=str), extractor)
    latents = base.sample_inputs(q["samples"], q["seed"])
    samples = generate(model, latents) if model is not base else refs["same"]
    out = {"macs": count_macs(model.module, latents[:1]),
           "psnr_vs_float_db": round(psnr_overall(samples, refs["same"]), 2)}
    feats = extractor(samples)
    for ref_name, ref in refs["features"].items():
        for metric in q["metrics"]:
            for k, v in compute_metric(metric, ref, feats).items():
                out[f"{k}_vs_{ref_name}"] = round(float(v), 4)
    if q["grid"]:
        save_grid(samples[:q["grid"]], work / "grid.png", nrow=8, scale=2)
        out["grid"] = "grid.png"  # relative to the job's folder
    return out
