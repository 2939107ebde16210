"""The stages as Python functions that take objects as well as names and paths.

``load_model`` -> ``compress`` -> ``export`` -> ``profile`` -> ``compare``; each is a thin layer
over the library call the CLI verb uses (same configs, same files on disk), so a notebook and
the command line produce the same bundles and results. Heavy imports stay inside the functions.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from ..bundle import Bundle
from ..errors import ConfigError
from ..results import ProfileRow
from .results import Comparison, ExportedBundle, ProfileResults


def _is_loaded(obj: Any) -> bool:
    from ..models.loading import LoadedModel

    return isinstance(obj, LoadedModel)


def _input_spec(input_shape: Optional[Sequence[int]], input_kind: Optional[str]):
    """The InputSpec ``--input-shape`` / ``--input-kind`` describe (None: infer or use the model's)."""
    from ..models.spec import InputSpec

    if input_shape is None:
        if input_kind is not None:
            raise ConfigError("input_kind= needs input_shape= too (e.g. input_shape=(100, 1, 1))")
        return None
    return InputSpec.from_shape(list(input_shape), input_kind)


def load_model(spec: Any, checkpoint: Optional[str | Path] = None, config: Optional[dict] = None,
               input_shape: Optional[Sequence[int]] = None, input_kind: Optional[str] = None,
               checkpoint_key: Optional[str] = None):
    """A generator ready for compress/export: a zoo name, ``package.module:factory``, an edgegan
    checkpoint, a TorchScript / ExportedProgram file, or an in-memory ``torch.nn.Module``
    (copied; its input is inferred from its first layer unless ``input_shape`` is given).
    ``checkpoint_key``: which state_dict of a checkpoint holding several (see models.checkpoints)."""
    from ..models.loading import load_generator

    if _is_loaded(spec):
        if checkpoint is not None or config is not None or input_shape is not None:
            raise ConfigError("the model is already loaded; pass checkpoint/config/input_shape to load_model instead")
        return spec
    if isinstance(spec, Path):
        spec = str(spec)
    return load_generator(spec, checkpoint, config, _input_spec(input_shape, input_kind),
                          checkpoint_key=checkpoint_key)


def _method_of(config: Any) -> str:
    """The registered compression method whose config class ``config`` is (torchao-style)."""
    from ..compress import METHODS

    names = [name for name, m in METHODS.items() if type(config) is m.config_cls]
    if not names:
        known = ", ".join(m.config_cls.__name__ for _, m in METHODS.items())
        raise ConfigError(f"{type(config).__name__} is not a compression method config; pass one of: {known}")
    return names[0]


def compress(model: Any, *configs: Any):
    """Apply compression methods in order, each given by its config dataclass instance, e.g.
    ``compress(model, ClipConfig(percentile=99), QuantConfig(bits=4))``; a PipelineConfig or a
    list of configs works too. Returns a new loaded model (the input is left untouched) whose
    ``compression`` records travel into the bundle."""
    from ..compress import PipelineConfig, apply_method
    from ..compress import compress as run_pipeline

    if not configs:
        raise ConfigError("say how to compress: compress(model, QuantConfig(bits=8)) (see edgegan.compress)")
    loaded = load_model(model)
    flat: list[Any] = []
    for c in configs:
        flat.extend(c if isinstance(c, (list, tuple)) else [c])
    for c in flat:
        if isinstance(c, PipelineConfig):
            loaded = run_pipeline(loaded, c)
        else:
            loaded = apply_method(loaded, _method_of(c), c)
    return loaded


def _formats(formats: Optional[str | Iterable[str]]) -> Optional[list[str]]:
    if formats is None:
        return None
    if isinstance(formats, str):
        return [f.strip() for f in formats.split(",") if f.strip()]
    return list(formats)


def export(model_or_spec: Any, out: Optional[str | Path] = None, formats: Optional[str | Iterable[str]] = None,
           *, checkpoint: Optional[str | Path] = None, config: Optional[dict] = None,
           input_shape: Optional[Sequence[int]] = None, input_kind: Optional[str] = None,
           progress: Optional[Callable] = None, **options: Any) -> ExportedBundle:
    """Export to every format in ``formats`` (default: all), verify on this host, write the
    bundle to ``out`` and return it. ``model_or_spec``: an ``nn.Module`` (input inferred or
    ``input_shape=``), a loaded model, or anything ``load_model`` takes. ``options``: fields of
    :class:`edgegan.pipeline.ExportConfig` (``n_inputs``, ``calibration``, ``overwrite``,
    ``threads``, ``convert={...}``, ``thresholds={...}``, ...)."""
    from ..pipeline import ExportConfig, run_export

    if "model" in options or "model_config" in options:
        raise ConfigError("export() takes the model as its first argument and its config as config=")
    fields: dict[str, Any] = dict(options)
    if out is not None:
        fields["out"] = str(out)
    if _formats(formats) is not None:
        fields["formats"] = _formats(formats)
    if isinstance(model_or_spec, (str, Path)):
        fields.update(model=str(model_or_spec), checkpoint=None if checkpoint is None else str(checkpoint),
                      model_config=config or {}, input_shape=None if input_shape is None else list(input_shape),
                      input_kind=input_kind)
        loaded = None
    else:
        loaded = load_model(model_or_spec, checkpoint, config, input_shape, input_kind,
                            checkpoint_key=options.pop("checkpoint_key", None))
        fields.pop("checkpoint_key", None)
        fields["model"] = loaded.name
    cfg = ExportConfig.from_dict(fields)
    path, _ = run_export(cfg, progress=progress, model=loaded)
    return ExportedBundle.load(Path(path).resolve())  # absolute: valid after a chdir


def _bundle_path(bundle: Any) -> Path:
    if isinstance(bundle, Bundle):
        return Path(bundle.root)
    if isinstance(bundle, (str, Path)):
        return Path(bundle)
    raise ConfigError(f"profile() takes a Bundle or a bundle directory, got {type(bundle).__name__}")


def profile(bundle: Any, target: str = "local", *, progress: Optional[Callable] = None,
            **options: Any) -> ProfileResults:
    """Run every artifact of ``bundle`` on ``target`` (``local``, ``ssh://user@host``, ``adb://SERIAL``), pull the
    results and samples back and score them. ``options``: fields of
    :class:`edgegan.devices.profile.ProfileConfig` (``runs``, ``warmup``, ``threads``, ``out``,
    ``formats``, ``memory``, ``compare``, ...)."""
    from ..devices.profile import ProfileConfig, run_profile

    for key in ("bundle", "target"):
        if key in options:
            raise ConfigError(f"profile() takes {key} as an argument, not in its options")
    fields: dict[str, Any] = {"bundle": str(_bundle_path(bundle)), "target": target, **options}
    if fields.get("out") is not None:
        fields["out"] = str(fields["out"])
    if fields.get("formats") is not None:
        fields["formats"] = _formats(fields["formats"])
    cfg = ProfileConfig.from_dict(fields)
    out, doc = run_profile(cfg, progress=progress)
    loaded = bundle if isinstance(bundle, Bundle) else Bundle.load(Path(cfg.bundle).resolve())
    return ProfileResults(Path(out).resolve(), doc, loaded)


def _sample_set(x: Any, fmt: Optional[str], name: str):
    """Anything compare() takes -> (SampleSet, label). Bundles and profile rows carry their
    inputs, so float-vs-format comparisons are paired automatically."""
    from ..metrics.compare import SampleSet, load_samples

    if isinstance(x, SampleSet):
        return x, x.source
    if isinstance(x, Bundle):
        return SampleSet(x.reference(), x.inputs(), f"bundle {x.root} (float reference)"), f"{x.root} float reference"
    if isinstance(x, ProfileResults):
        if fmt is None:
            raise ConfigError(f"{name} is a ProfileResults; pick its samples with format= "
                              f"(one of {', '.join(x.formats)}) or pass results['<format>']")
        x = x[fmt]
    if isinstance(x, ProfileRow):
        if x.samples_path is None:
            raise ConfigError(f"{name}: '{x.format}' has no samples ({x.status}: {x.reason})")
        bundle = getattr(x, "_bundle", None)  # set by ProfileResults: the bundle holds the rows' inputs
        latents = bundle.inputs() if bundle is not None else None
        return SampleSet(x.load_samples(), latents, f"{x.format} samples ({x.samples_path})"), f"{x.format} samples"
    if isinstance(x, (str, Path)):
        s = load_samples(x)
        return s, str(x)
    arr = np.asarray(x)
    return SampleSet(arr, None, f"array {list(arr.shape)}"), f"array {list(arr.shape)}"


def compare(a: Any, b: Any, *, format: Optional[str] = None, reference: Any = None,
            **options: Any) -> Comparison:
    """Samples ``b`` against samples ``a`` (the reference, e.g. the float model): paired metrics
    (PSNR, SSIM) when both come from the same inputs, and LSH / kNN precision-recall, density,
    coverage. ``a``/``b``: arrays, .npy/.npz paths, bundle or result folders, a Bundle (its float
    reference), ProfileResults (with ``format=``) or one of its rows (``results['ort-int8']``).
    ``options``: ``features``, ``paired``, ``k``, ``k_dc``, ``lsh``, ``paired_config``, ..."""
    from ..metrics.compare import compare_samples

    sa, la = _sample_set(a, format, "a")
    sb, lb = _sample_set(b, format, "b")
    ref = None if reference is None else _sample_set(reference, format, "reference")[0]
    return Comparison(compare_samples(sa, sb, reference=ref, **options), la, lb)


def report(*items: Any, out: str | Path = "report.html", title: Optional[str] = None) -> Path:
    """One self-contained report.html for any mix of bundles (a Bundle or its folder), profile
    results (ProfileResults or a results folder; several = devices side by side),
    comparisons (a Comparison or a compare output folder) and sweeps (a SweepResult or a sweep
    folder), as `edgegan report` writes it."""
    import json
    import os

    from ..metrics.compare import to_json
    from ..reports.html_report import ReportInputs, read_paths, write_html

    got = ReportInputs()
    for x in items:
        if isinstance(x, Bundle):
            got.bundles.append((x, None))
        elif isinstance(x, ProfileResults):
            got.profiles.append((x.out, x.document))
        elif isinstance(x, Comparison):
            got.compares.append((Path(out).parent, json.loads(to_json(x.result)), x.result.get("_arrays")))
        elif isinstance(x, (str, os.PathLike)):  # a folder, or a SweepResult (its folder)
            more = read_paths([Path(x)])
            got.bundles += more.bundles
            got.profiles += more.profiles
            got.compares += more.compares
            got.sweeps += more.sweeps
        else:
            raise ConfigError(f"report() takes bundles, profile results, comparisons, sweeps or their folders, "
                              f"got {type(x).__name__}")
    return write_html(got, out, title)
