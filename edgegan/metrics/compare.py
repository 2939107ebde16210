"""Compare two sample sets (float model vs device output): the API behind ``edgegan compare``.

Inputs are sample files or folders (see :func:`load_samples`). Distribution metrics (LSH P/R
both variants, exact kNN P/R, density/coverage, Frechet distance, KID; Inception Score per set
with the digits classifier) treat A as the reference and B as generated,
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

from ..config import JsonConfig
from ..errors import ConfigError, EdgeganError, MetricError, UnknownNameError, first_line
from ..util.jsonsafe import json_safe
from .base import METRICS, check_finite, compute_all
from .features import get_extractor
from .lsh import LSHConfig
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
    output_range: Optional[Any] = None  # the model's OutputRange, when the samples come from a bundle / profile

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
        if latents is None and files[0] == "samples.npy":
            latents = profiled_inputs(p, len(samples))
        return SampleSet(samples, latents, str(p), _output_range_of(p))
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


def _output_range_of(folder: Path):
    """The OutputRange of the bundle ``folder`` is, or that the profile run ``folder`` belongs
    to was made from (None when that bundle cannot be read)."""
    from ..bundle import Bundle
    from ..results import ProfileRun, ResultsLayout

    try:
        if (folder / "bundle.json").is_file():
            return Bundle.load(folder).manifest.output_range()
        results = folder.parent / ResultsLayout.RESULTS
        if results.is_file():
            bundle = Path(str(ProfileRun.load(results).bundle.get("path") or ""))
            if (bundle / "bundle.json").is_file():
                return Bundle.load(bundle).manifest.output_range()
    except (EdgeganError, OSError, ValueError, KeyError, AttributeError):
        return None
    return None


def paired_config_for(a: SampleSet, b: SampleSet, given: PairedConfig | None) -> tuple[PairedConfig, str]:
    """The paired-metrics config and where its data_range (the PSNR peak) comes from: given,
    else the output range of the model A (else B) was generated by, else the [-1, 1] default."""
    if given is not None:
        return given, "given"
    rng = a.output_range or b.output_range
    if rng is None:
        return PairedConfig(), "assumed [-1, 1] (neither side names its model's output range)"
    return PairedConfig(data_range=rng.peak), f"model output range {rng.describe()}"


def profiled_inputs(folder: Path, count: int) -> Optional[np.ndarray]:
    """The inputs a profile run fed to the samples in ``folder`` (a per-format folder of a
    results folder): the bundle's stored inputs, when the parent's results.json names a
    measured row for this folder and a bundle whose bundle.json still has the sha256 recorded
    at profile time. None when that link cannot be established (then nothing is paired)."""
    from ..results import ProfileRun, ResultsLayout
    from ..util.npy import load_npy

    results = folder.parent / ResultsLayout.RESULTS
    if not results.is_file():
        return None
    try:
        run = ProfileRun.load(results)
        row = run.row(folder.name)
        bundle = Path(str(run.bundle.get("path") or ""))
        want = run.bundle.get("manifest_sha256")
    except (EdgeganError, OSError, ValueError, KeyError, AttributeError):
        return None
    if not (row.measured and want and (bundle / "bundle.json").is_file() and (bundle / "inputs.npy").is_file()):
        return None
    from ..bundle import sha256_file

    if sha256_file(bundle / "bundle.json") != want:
        log.info("%s: bundle %s changed since it was profiled; not pairing", folder, bundle)
        return None
    inputs = load_npy(bundle / "inputs.npy", "bundle inputs", MetricError)
    return inputs if len(inputs) == count else None


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
        if not (np.issubdtype(s.samples.dtype, np.floating) or np.issubdtype(s.samples.dtype, np.integer)):
            raise MetricError(f"{k}: samples must be real numbers, got dtype {s.samples.dtype} "
                              "(complex values would lose their imaginary part); save real-valued images")
        if len(s.samples) == 0:
            raise MetricError(f"{k}: no samples (an empty array); pass the generated images")
        if not np.issubdtype(s.samples.dtype, np.number):
            raise MetricError(f"{k}: samples must be numeric, got dtype {s.samples.dtype}")
        check_finite(s.samples, k)


@dataclasses.dataclass
class CompareConfig(JsonConfig):
    """Settings of one comparison (the ``edgegan compare`` flags; the only source of defaults).

    ``k``, ``k_dc``, ``seed`` and ``lsh_*`` are shared settings that each metric maps onto its
    own config (:attr:`Metric.options`); ``metric_configs`` overrides single metric configs."""

    features: str = dataclasses.field(default="auto", metadata={"help": (
        "feature extractor: auto, digits, pixels, randconv, identity, or a .onnx/.pt file "
        "(auto: identity for 2-D arrays, digits for 1-channel images, else randconv)")})
    paired: Optional[bool] = dataclasses.field(default=None, metadata={"help": (
        "force paired metrics by index (default: only when both sides carry equal latents)")})
    k: int = dataclasses.field(default=3, metadata={"help": "k for kNN and LSH+kNN precision/recall"})
    k_dc: int = dataclasses.field(default=5, metadata={"help": "k for density/coverage"})
    lsh_tables: Optional[int] = dataclasses.field(default=None, metadata={"help": "LSH tables L (default: from n)"})
    lsh_projections: Optional[int] = dataclasses.field(default=None, metadata={
        "help": "projections per table K (default: from n)"})
    lsh_width: Optional[float] = dataclasses.field(default=None, metadata={
        "help": "bucket width w (default: calibrated)"})
    seed: int = dataclasses.field(default=0, metadata={"help": "LSH seed"})
    metrics: list[str] = dataclasses.field(default_factory=list, metadata={
        "help": "distribution metrics to run (default: every registered one)"})
    metric_configs: dict = dataclasses.field(default_factory=dict)

    def validate(self) -> None:
        for name in ("k", "k_dc"):
            if getattr(self, name) < 1:
                raise ConfigError(f"compare {name} must be >= 1, got {getattr(self, name)}", field=name)

    def shared(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("features", "paired", "metrics", "metric_configs")}

    def metric_config_map(self, lsh: Optional[LSHConfig] = None) -> dict[str, JsonConfig]:
        """name -> config of every metric to run (registration order)."""
        names = self.metrics or [m.name for m in METRICS.values()]
        out = {}
        for name in names:
            try:
                m = METRICS.get(name)
            except UnknownNameError as exc:
                raise UnknownNameError(str(exc), field="metrics") from None
            override = self.metric_configs.get(name)
            if override is None and lsh is not None and m.config_cls is LSHConfig:
                override = lsh
            out[name] = m.config(self.shared(), override)
        return out


def distribution_scores(real: np.ndarray, fake: np.ndarray, configs: dict[str, JsonConfig]) -> dict:
    """All distribution metrics (name -> config) of ``fake`` against ``real`` (features)."""
    return compute_all(real, fake, configs)


SIZE_RATIO_LIMIT = 2.0  # beyond this, recall mostly measures the set sizes; the equal-size rescore says how much


def _sizes_differ(n_real: int, n_fake: int) -> bool:
    return max(n_real, n_fake) > SIZE_RATIO_LIMIT * min(n_real, n_fake)


def equal_size_scores(real: np.ndarray, fake: np.ndarray, configs: dict[str, JsonConfig], seed: int = 0) -> dict:
    """The distribution metrics again with the larger set randomly subsampled (seeded) to the
    smaller one's size. Recall asks how much of the *real* set the fake set covers, so 64 samples
    against 1,797 real ones score near 0 even when drawn from the same distribution (LSH-only
    recall needs fake points in a real point's bucket); at equal size the same sets score as
    their distributions warrant. Reported next to the full-set scores, never instead of them."""
    n = min(len(real), len(fake))
    rng = np.random.default_rng(seed)
    sub = {name: (x if len(x) == n else x[np.sort(rng.choice(len(x), n, replace=False))]) for name, x in
           (("real", real), ("fake", fake))}
    return {"counts": [int(len(real)), int(len(fake))], "matched_count": int(n), "seed": int(seed),
            "scores": distribution_scores(sub["real"], sub["fake"], configs)}


def compare_samples(a: Any, b: Any, reference: Any = None, features: Optional[str] = None,
                    feature_config: dict | None = None, paired: Optional[bool] = None,
                    lsh: LSHConfig | None = None, k: Optional[int] = None, k_dc: Optional[int] = None,
                    paired_config: PairedConfig | None = None, config: CompareConfig | None = None) -> dict:
    """Compare sample sets A (reference, e.g. float model) and B (e.g. device output).

    ``a``/``b``/``reference``: arrays, paths or :class:`SampleSet`. Settings come from
    ``config`` (a :class:`CompareConfig`; defaults there), and the keyword shortcuts override
    its fields. Runs every registered metric (or ``config.metrics``). Returns a JSON-ready dict
    (non-finite floats stay floats; :func:`to_json` writes them as null) plus, under
    ``"_arrays"``, the samples and ranking used for the grid (dropped when written).
    """
    given = {"features": features, "paired": paired, "k": k, "k_dc": k_dc}
    config = dataclasses.replace(config or CompareConfig(), **{n: v for n, v in given.items() if v is not None})
    sa, sb = _as_set(a, "A"), _as_set(b, "B")
    sets = {"A": sa, "B": sb}
    sr = _as_set(reference, "reference") if reference is not None else None
    if sr is not None:
        sets["reference"] = sr
    _check_shapes(sets)
    is_paired = decide_paired(sa, sb, config.paired)
    extractor = get_extractor(config.features, feature_config, tuple(sa.samples.shape[1:]))
    feats = {name: extractor(s.samples) for name, s in sets.items()}
    configs = config.metric_config_map(lsh)
    dist = {"B_vs_A": distribution_scores(feats["A"], feats["B"], configs)}
    if sr is not None:
        dist["A_vs_reference"] = distribution_scores(feats["reference"], feats["A"], configs)
        dist["B_vs_reference"] = distribution_scores(feats["reference"], feats["B"], configs)
    pairs = {"B_vs_A": ("A", "B"), "A_vs_reference": ("reference", "A"), "B_vs_reference": ("reference", "B")}
    size_matched = {key: equal_size_scores(feats[pairs[key][0]], feats[pairs[key][1]], configs, config.seed)
                    for key in dist if _sizes_differ(len(feats[pairs[key][0]]), len(feats[pairs[key][1]]))}
    result: dict[str, Any] = {
        "inputs": {name: s.describe() for name, s in sets.items()},
        "features": {**extractor.describe(), "dim": int(feats["A"].shape[1])},
        "k": config.k, "k_density_coverage": config.k_dc,
        "metrics": {name: {"config": cfg.to_dict(), "columns": [c.key for c in METRICS.get(name).columns]}
                    for name, cfg in configs.items()},
        "distribution": dist,
        "size_matched": size_matched,
        "paired": None,
    }
    ranking = None
    if is_paired:
        pconfig, range_source = paired_config_for(sa, sb, paired_config)
        pm = paired_metrics(sa.samples, sb.samples, pconfig)
        ranking = pm.pop("ranking")
        pm.pop("per_sample")
        pm.update(data_range=pconfig.data_range, data_range_source=range_source)
        result["paired"] = pm
    if any(n in configs for n in DISTRIBUTION_METRICS) or extractor.name == "digits":
        from .distribution import features_note

        result["features"]["note"] = features_note(extractor.name, getattr(extractor.config, "path", ""))
    if extractor.name == "digits":
        result["inception_score"] = {name: digits_inception_score(f, getattr(extractor.config, "weights", None))
                                     for name, f in feats.items()}
    q = {c: dist["B_vs_A"].get(c) for name in configs for c in METRICS.get(name).keys}
    if "inception_score" in result:
        q["inception_score"] = result["inception_score"]["B"]["mean"]
    q["psnr_db"] = result["paired"]["psnr_db"] if result["paired"] else None
    result["quality"] = q
    rng = sa.output_range
    result["_arrays"] = {"a": sa.samples, "b": sb.samples, "ranking": ranking,
                         "range": None if rng is None else (float(rng.lo), float(rng.hi))}  # for drawing
    return result


DISTRIBUTION_METRICS = ("frechet", "kid")


def is_splits(n: int) -> int:
    """torch-fidelity's 10 splits when every split keeps >= 50 samples, fewer (>= 1) below."""
    return int(max(1, min(10, n // 50)))


def digits_inception_score(feats: np.ndarray, weights: Optional[str] = None) -> dict:
    """Inception Score of one sample set from its ``digits`` features (the shipped classifier's
    head gives the class probabilities); a digits-classifier score, not Inception-v3's."""
    from .digits_cnn import class_probabilities
    from .distribution import inception_score

    splits = is_splits(len(feats))
    mean, std = inception_score(class_probabilities(feats, weights), splits=splits)
    return {"mean": mean, "std": std, "splits": splits, "classifier": "digits CNN (10 classes)"}


def to_json(result: dict) -> str:
    """Strict JSON (inf/NaN -> null, private keys dropped)."""
    return json.dumps(json_safe(result, drop_private=True), indent=2, sort_keys=False, allow_nan=False)


