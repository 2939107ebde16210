"""Compare two sample sets (float model vs device output): the API behind ``edgegan compare``.

Inputs are sample files or folders (see :func:`load_samples`). Distribution metrics (LSH P/R
both variants, exact kNN P/R, density/coverage) treat A as the reference and B as generated,
and, with a real reference set, score A and B against it as well. Paired metrics (PSNR, SSIM,
errors, worst samples) run when the two sets come from the same latents.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import MetricError, first_line
from ..util.files import atomic_write
from ..util.jsonsafe import json_safe
from .base import check_finite
from .features import get_extractor
from .knn import exact_scores
from .lsh import LSHConfig, lsh_scores
from .paired import PairedConfig, paired_metrics

log = logging.getLogger(__name__)

LATENT_KEYS = ("latents", "inputs")
BUILTIN_REFERENCES = ("digits",)


@dataclasses.dataclass
class SampleSet:
    """Samples [N, ...] plus the latents that produced them, when known."""

    samples: np.ndarray
    latents: Optional[np.ndarray] = None
    source: str = "array"

    def describe(self) -> dict:
        return {"source": self.source, "count": int(len(self.samples)),
                "shape": list(self.samples.shape[1:]), "has_latents": self.latents is not None}


def _load_npy(path: Path) -> np.ndarray:
    from ..util.npy import load_npy

    return load_npy(path, "samples", MetricError)


def load_samples(path: str | Path) -> SampleSet:
    """Read samples from a .npy file, a .npz (``samples`` + optional ``latents``/``inputs``),
    a bundle folder (``reference.npy`` + ``inputs.npy``), a folder with ``samples.npy``
    (+ optional ``inputs.npy``), or the built-in real set ``digits`` (scikit-learn digits)."""
    p = Path(path)
    if not p.exists() and str(path) in BUILTIN_REFERENCES:
        from ..datasets import digits_images

        return SampleSet(digits_images(32), None, "digits (scikit-learn, 1797 real images)")
    if not p.exists():
        raise MetricError(f"'{p}' does not exist; pass a .npy/.npz file or a bundle/result folder")
    if p.is_dir():
        if (p / "bundle.json").is_file():
            files = ("reference.npy", "inputs.npy")
        elif (p / "samples.npy").is_file():
            files = ("samples.npy", "inputs.npy")
        else:
            nested = sorted(str(q.parent.relative_to(p)) for q in p.glob("*/samples.npy"))
            hint = f" (it has per-format folders: {', '.join(nested)}; pass one of them)" if nested else ""
            raise MetricError(f"folder '{p}' has neither bundle.json nor samples.npy{hint}")
        if not (p / files[0]).is_file():
            raise MetricError(f"bundle '{p}' has no {files[0]}; re-export it")
        samples = _load_npy(p / files[0])
        latents = _load_npy(p / files[1]) if (p / files[1]).is_file() else None
        return SampleSet(samples, latents, str(p))
    if p.suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as z:
                if "samples" not in z:
                    raise MetricError(f"'{p}' has keys {sorted(z.files)} but no 'samples'; save it with "
                                      "np.savez(path, samples=..., latents=...)")
                latents = next((z[k] for k in LATENT_KEYS if k in z), None)
                return SampleSet(z["samples"], latents, str(p))
        except (OSError, ValueError) as exc:
            raise MetricError(f"cannot read '{p}' as .npz ({first_line(exc, 120)})") from None
    return SampleSet(_load_npy(p), None, str(p))


def _as_set(x: Any, name: str) -> SampleSet:
    if isinstance(x, SampleSet):
        return x
    if isinstance(x, (str, Path)):
        return load_samples(x)
    return SampleSet(np.asarray(x), None, name)


def decide_paired(a: SampleSet, b: SampleSet, paired: Optional[bool]) -> bool:
    """Paired when both carry equal latents, or when asked explicitly; differing latents
    are an error (the pairing would be meaningless)."""
    if a.latents is not None and b.latents is not None:
        if a.latents.shape != b.latents.shape or not np.array_equal(a.latents, b.latents):
            raise MetricError(
                f"latents differ between A ({list(a.latents.shape)}) and B ({list(b.latents.shape)}); "
                "paired metrics need samples generated from the same latents (or drop --paired)"
            )
        return paired is not False
    if paired:
        if a.samples.shape != b.samples.shape:
            raise MetricError(f"--paired needs equal shapes, got A {list(a.samples.shape)} and "
                              f"B {list(b.samples.shape)}")
        return True
    return False


def _check_shapes(sets: dict[str, SampleSet]) -> None:
    shapes = {k: tuple(s.samples.shape[1:]) for k, s in sets.items()}
    if len(set(shapes.values())) > 1:
        desc = ", ".join(f"{k} {list(v)}" for k, v in shapes.items())
        raise MetricError(f"sample shapes differ ({desc}); compare samples of the same model / image size")
    for k, s in sets.items():
        if s.samples.ndim < 2:
            raise MetricError(f"{k}: expected samples [N, ...], got shape {list(s.samples.shape)}")
        if not np.issubdtype(s.samples.dtype, np.number):
            raise MetricError(f"{k}: samples must be numeric, got dtype {s.samples.dtype}")
        check_finite(s.samples, k)


def distribution_scores(real: np.ndarray, fake: np.ndarray, lsh: LSHConfig, k: int, k_dc: int) -> dict:
    """All distribution metrics of ``fake`` against ``real`` (features)."""
    out = lsh_scores(real, fake, lsh, details=True)
    out.pop("per_sample")
    params = out.pop("parameters")
    out.update(exact_scores(real, fake, k, k_dc))
    out["lsh_parameters"] = params
    return out


def compare_samples(a: Any, b: Any, reference: Any = None, features: str = "auto",
                    feature_config: dict | None = None, paired: Optional[bool] = None,
                    lsh: LSHConfig | None = None, k: int = 3, k_dc: int = 5,
                    paired_config: PairedConfig | None = None) -> dict:
    """Compare sample sets A (reference, e.g. float model) and B (e.g. device output).

    ``a``/``b``/``reference``: arrays, paths or :class:`SampleSet`. Returns a JSON-ready dict
    (non-finite floats stay floats; :func:`to_json` writes them as null) plus, under
    ``"_arrays"``, the samples and ranking used for the grid (dropped when written).
    """
    sa, sb = _as_set(a, "A"), _as_set(b, "B")
    sets = {"A": sa, "B": sb}
    sr = _as_set(reference, "reference") if reference is not None else None
    if sr is not None:
        sets["reference"] = sr
    _check_shapes(sets)
    is_paired = decide_paired(sa, sb, paired)
    extractor = get_extractor(features, feature_config, tuple(sa.samples.shape[1:]))
    feats = {name: extractor(s.samples) for name, s in sets.items()}
    lsh = lsh or LSHConfig(k=k)
    dist = {"B_vs_A": distribution_scores(feats["A"], feats["B"], lsh, k, k_dc)}
    if sr is not None:
        dist["A_vs_reference"] = distribution_scores(feats["reference"], feats["A"], lsh, k, k_dc)
        dist["B_vs_reference"] = distribution_scores(feats["reference"], feats["B"], lsh, k, k_dc)
    result: dict[str, Any] = {
        "inputs": {name: s.describe() for name, s in sets.items()},
        "features": {**extractor.describe(), "dim": int(feats["A"].shape[1])},
        "k": k, "k_density_coverage": k_dc,
        "distribution": dist,
        "paired": None,
    }
    ranking = None
    if is_paired:
        pm = paired_metrics(sa.samples, sb.samples, paired_config)
        ranking = pm.pop("ranking")
        pm.pop("per_sample")
        result["paired"] = pm
    q = {key: dist["B_vs_A"][key] for key in ("lsh_precision", "lsh_recall", "lsh_knn_precision",
                                               "lsh_knn_recall", "knn_precision", "knn_recall",
                                               "density", "coverage")}
    q["psnr_db"] = result["paired"]["psnr_db"] if result["paired"] else None
    result["quality"] = q
    result["_arrays"] = {"a": sa.samples, "b": sb.samples, "ranking": ranking}
    return result


def to_json(result: dict) -> str:
    """Strict JSON (inf/NaN -> null, private keys dropped)."""
    return json.dumps(json_safe(result, drop_private=True), indent=2, sort_keys=False, allow_nan=False)


def grid_selection(result: dict, columns: int = 8) -> tuple[np.ndarray, list[str]]:
    """Indices for the A-vs-B grid: worst pairs then the median pair when paired, else the
    first samples; with labels."""
    arrays = result["_arrays"]
    ranking = arrays["ranking"]
    if ranking is not None:
        worst = [int(i) for i in ranking[: max(columns - 1, 1)]]
        med = int(result["paired"]["median_index"])
        idx = worst + ([med] if med not in worst else [])
        labels = [f"worst {r + 1}: #{i}" for r, i in enumerate(worst)] + ([f"median: #{med}"] if med not in worst else [])
        return np.asarray(idx), labels
    n = min(columns, len(arrays["a"]), len(arrays["b"]))
    return np.arange(n), [f"#{i}" for i in range(n)]


def write_grid(result: dict, path: str | Path, columns: int = 8) -> Optional[Path]:
    """PNG: row 1 = A, row 2 = B, row 3 = |A - B| scaled to full range (paired only).
    Returns None when the samples are not images (1 or 3 channels)."""
    from ..reports.grid import save_grid

    a, b = result["_arrays"]["a"], result["_arrays"]["b"]
    if a.ndim != 4 or a.shape[1] not in (1, 3):
        return None
    idx, _ = grid_selection(result, columns)
    if result["_arrays"]["ranking"] is not None:
        diff = np.abs(a[idx].astype(np.float32) - b[idx].astype(np.float32))
        diff = diff / max(float(diff.max()), 1e-12) * 2 - 1
        rows = [a[idx], b[idx], diff]
    else:
        rows = [a[idx], b[idx]]
    scale = max(1, 96 // max(a.shape[2], 1))
    return save_grid(np.concatenate(rows).astype(np.float32), path, nrow=len(idx), scale=min(scale, 4))


def write_outputs(result: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write compare.json and compare_grid.png into ``out_dir``; return their paths."""
    from ..errors import OutputError

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        grid = write_grid(result, out / "compare_grid.png")
        result["grid"] = grid.name if grid else None
        if grid:
            _, labels = grid_selection(result)
            result["grid_columns"] = labels
        atomic_write(out / "compare.json", to_json(result) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write compare outputs to '{out}' ({exc.strerror}); pass a writable --out") from None
    paths = {"json": out / "compare.json"}
    if grid:
        paths["grid"] = grid
    return paths
