"""`edgegan export` as a library call: model -> ONNX -> every format -> verify -> bundle.

One format failing never stops the others: its row is recorded as ``failed`` with the reason.
Only problems with the model itself (unloadable, inputs wrong, ONNX export impossible) or the
output location abort the export, and then no bundle directory is left behind.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import math
import os
import platform
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from . import __version__
from .bundle import (ARTIFACTS_DIR, CALIBRATION, INPUTS, REFERENCE, SCHEMA_VERSION, ArtifactRecord,
                      BundleWriter, Manifest, ModelInfo, StoredArray, sha256_file)
from .config import JsonConfig
from .converters.base import ConvertOptions
from .errors import (ConfigError, ConversionError, EdgeganError, ExportError, InputSpecError, MissingDependencyError,
                     first_line)
from .models.spec import InputSpec
from .results import below_threshold
from .util.locks import OwnedTempDir, remove_dead_temp_dirs
from .verify.host import FidelityThresholds

log = logging.getLogger(__name__)

MAX_COUNT = 100_000            # stored / calibration inputs
MAX_THREADS = 256
MAX_ARRAYS_BYTES = 4 << 30     # inputs + reference + calibration held in memory at once
WORKDIR_PREFIX = "edgegan-export-"


def float_of_runtime() -> dict[str, str]:
    """runtime name -> the format that is its own fp32 baseline (from the runner's table)."""
    from .runner.edgegan_runner import RUNTIMES

    return {name: rt.float_format for name, rt in RUNTIMES.items()}

# optional packages every export needs (each converter checks its own on top)
PACKAGES = ("torch", "onnx", "onnxruntime")

ProgressFn = Callable[[str, Optional[str], Optional[ArtifactRecord]], None]


def _default_formats() -> list[str]:
    from .converters import default_formats, skipped_default_formats

    for fmt, why in skipped_default_formats():
        log.info("default format %s skipped: %s", fmt, why)
    return default_formats()


@dataclasses.dataclass
class ExportConfig(JsonConfig):
    """Everything that determines a bundle (written into bundle.json as ``export_config``)."""

    model: str
    checkpoint: Optional[str] = None
    checkpoint_key: Optional[str] = None
    model_config: dict = dataclasses.field(default_factory=dict)
    formats: list[str] = dataclasses.field(default_factory=_default_formats)
    n_inputs: int = 64
    calibration: int = 128
    input_seed: int = 0
    calibration_seed: int = 1
    inputs_file: Optional[str] = None
    calibration_file: Optional[str] = None
    output_range: Optional[list[float]] = None
    input_shape: Optional[list[int]] = None
    input_kind: Optional[str] = None
    out: Optional[str] = None
    overwrite: bool = False
    threads: int = 2
    load_timeout_s: float = 600.0
    latency_rounds: int = 5
    latency_runs: int = 20
    convert: ConvertOptions = dataclasses.field(default_factory=ConvertOptions)
    # extra forward() arguments fixed as constants {name: number | list | "file.npy"} and the
    # handling of noise drawn inside forward() (None: refuse a random model; "fixed": seeded buffers)
    fixed_inputs: dict = dataclasses.field(default_factory=dict)
    noise: Optional[str] = None
    noise_seed: int = 0
    thresholds: FidelityThresholds = dataclasses.field(default_factory=FidelityThresholds)

    def validate(self) -> None:
        for name, value in (("n_inputs", self.n_inputs), ("calibration", self.calibration)):
            if not 1 <= value <= MAX_COUNT:
                raise ConfigError(f"ExportConfig.{name} must be in 1..{MAX_COUNT:,}, got {value:,}", field=name)
        if not 1 <= self.threads <= MAX_THREADS:
            raise ConfigError(f"ExportConfig.threads must be in 1..{MAX_THREADS}, got {self.threads:,}", field="threads")
        for name, seed in (("input_seed", self.input_seed), ("calibration_seed", self.calibration_seed),
                           ("noise_seed", self.noise_seed)):
            if not 0 <= seed < 2**32:
                raise ConfigError(f"ExportConfig.{name} must be in 0..{2**32 - 1} (a numpy seed), got {seed}", field=name)
        if not (math.isfinite(self.load_timeout_s) and self.load_timeout_s > 0):
            raise ConfigError(f"ExportConfig.load_timeout_s must be a number of seconds > 0, got {self.load_timeout_s}",
                              field="load_timeout_s")
        if self.output_range is not None:
            from .output_range import parse_range

            self.output_range = list(parse_range(self.output_range))
        if self.noise not in (None, "fixed"):
            raise ConfigError(f"ExportConfig.noise must be 'fixed' or unset, got {self.noise!r}", field="noise")
        if not self.formats:
            raise ConfigError("ExportConfig.formats is empty; name at least one format (see `edgegan env`)",
                              field="formats")

    def bundle_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        stem = Path(self.model).stem if os.sep in self.model or self.model.endswith((".pt", ".pt2")) else self.model
        return Path("bundles") / stem.replace(":", "_")


def _versions() -> dict:
    from .converters.base import module_version, tool_distributions

    out = {"edgegan": __version__, "python": platform.python_version()}
    for dist in tool_distributions():
        out[dist] = module_version(dist)
    return out


def _input_spec_override(cfg: ExportConfig) -> Optional[InputSpec]:
    from .models.zoo import ZOO

    if cfg.input_shape is None or cfg.model in ZOO:  # a zoo entry knows its input (the override is unused)
        return None
    return InputSpec.from_shape(list(cfg.input_shape), cfg.input_kind)


def _load_inputs(cfg: ExportConfig, model) -> np.ndarray:
    if cfg.inputs_file:
        from .util.npy import load_npy

        shape = ", ".join(map(str, model.input_spec.shape))
        arr = load_npy(cfg.inputs_file, f"inputs file (a .npy of shape [N, {shape}])", InputSpecError)
        return model.input_spec.check(arr)
    return model.sample_inputs(cfg.n_inputs, cfg.input_seed)


def _calibration_inputs(cfg: ExportConfig, model, inputs: np.ndarray) -> tuple[np.ndarray, str]:
    """int8 calibration inputs and where they come from: --calibration-file, else the
    --inputs-file data (the model's real input distribution; up to --calibration of its rows,
    seeded), else drawn like the stored inputs with the calibration seed."""
    if cfg.calibration_file:
        from .util.npy import load_npy

        shape = ", ".join(map(str, model.input_spec.shape))
        arr = load_npy(cfg.calibration_file, f"calibration file (a .npy of shape [N, {shape}])", InputSpecError)
        return model.input_spec.check(arr), f"calibration file {cfg.calibration_file}"
    if cfg.inputs_file:
        if len(inputs) > cfg.calibration:
            rows = np.sort(np.random.default_rng(cfg.calibration_seed).choice(len(inputs), cfg.calibration, replace=False))
            return inputs[rows], f"inputs file {cfg.inputs_file} ({cfg.calibration} of its {len(inputs)} rows)"
        return inputs, f"inputs file {cfg.inputs_file}"
    return model.sample_inputs(cfg.calibration, cfg.calibration_seed), model.input_source


def _check_memory(cfg: ExportConfig, model) -> None:
    """Refuse, before drawing a single input, counts whose arrays would not fit the bound
    (output size from one forward pass)."""
    from .export.onnx import torch_outputs

    per_input = 4 * math.prod(model.input_spec.shape)
    try:
        per_output = torch_outputs(model.module, model.sample_inputs(1, 0)).nbytes
    except Exception:  # noqa: BLE001 - a model that cannot run is reported by _run_forward
        per_output = 0
    n = cfg.n_inputs if not cfg.inputs_file else 0
    need = n * (per_input + per_output) + cfg.calibration * per_input
    if need > MAX_ARRAYS_BYTES:
        raise ConfigError(f"--inputs {cfg.n_inputs:,} / --calibration {cfg.calibration:,} need about {need / 2**30:.1f} GiB "
                          f"of arrays for this model (limit {MAX_ARRAYS_BYTES / 2**30:.0f} GiB); pass smaller counts")


def _load_model(cfg: ExportConfig):
    """load_generator under --timeout (a factory or load that never returns is stopped)."""
    from .errors import CheckpointError
    from .models.loading import load_generator
    from .util.deadline import DeadlineExceeded, call_with_deadline

    try:
        return call_with_deadline(lambda: load_generator(cfg.model, cfg.checkpoint, cfg.model_config or None,
                                                         _input_spec_override(cfg), checkpoint_key=cfg.checkpoint_key),
                                  cfg.load_timeout_s)
    except DeadlineExceeded:
        raise CheckpointError(f"loading '{cfg.model}' did not finish within {cfg.load_timeout_s:g} s; fix the model "
                              "factory/file or raise --timeout") from None


def _run_forward(module, inputs: np.ndarray) -> np.ndarray:
    from .export.onnx import torch_outputs

    try:
        out = torch_outputs(module, inputs)
    except RuntimeError as exc:
        from .models.infer import ask_for

        given = ",".join(map(str, inputs.shape[1:]))
        raise InputSpecError(f"the model rejects inputs of shape [N, {', '.join(map(str, inputs.shape[1:]))}]: {first_line(exc, default='?')}; "
                             f"{ask_for(module, unless=given)}") from None
    if out.ndim != 4:
        raise ExportError(f"the model returns shape {list(out.shape)}; edgegan expects images [N, C, H, W]")
    if not np.isfinite(out).all():
        raise ExportError("the float model produces NaN/inf on the stored inputs; fix the model before exporting")
    return out


def _record_from(fmt: str, res, bundle_root: Path, seconds: float) -> ArtifactRecord:
    rel = res.path.relative_to(bundle_root).as_posix()
    return ArtifactRecord(
        format=fmt, status="ok", path=rel, sha256=sha256_file(res.path), bytes=res.path.stat().st_size,
        runtime=res.runtime, tool=res.tool, tool_version=res.tool_version, convert_seconds=round(seconds, 2),
        quantization=res.quantization, rewrites=res.rewrites, io=res.io, notes=res.notes,
    )


def _base_reference(model, inputs: np.ndarray, reference: np.ndarray,
                    peak: float) -> tuple[Optional[np.ndarray], dict]:
    """Outputs of the uncompressed base model of a compressed checkpoint on ``inputs``, and the
    record of it for bundle.json (why not, when the base cannot be used). The status and the
    main PSNR stay vs the compressed float model (what the artifact was converted from)."""
    if not model.compression:
        return None, {}
    info: dict = {"model": model.base_model}
    from .models.zoo import ZOO

    if not model.base_model or model.base_model not in ZOO:
        return None, {**info, "used": False, "reason": "the checkpoint names no zoo base model"}
    if not model.base_weights_sha256:
        return None, {**info, "used": False,
                      "reason": "the checkpoint does not record its base weights (re-compress with this edgegan)"}
    from .models.loading import load_generator
    from .models.stats import weights_sha256

    try:
        base = load_generator(model.base_model)
    except EdgeganError as exc:
        return None, {**info, "used": False, "reason": f"cannot load it: {first_line(exc)}"}
    if weights_sha256(base.module) != model.base_weights_sha256:
        return None, {**info, "used": False,
                      "reason": "its weights differ from the ones this checkpoint was compressed from"}
    out = _run_forward(base.module, inputs)
    if out.shape != reference.shape:
        return None, {**info, "used": False, "reason": f"its output shape {list(out.shape[1:])} differs"}
    from .verify.host import fidelity

    return out, {**info, "used": True, "float_psnr_db": fidelity(reference, out, peak)["psnr_db"]}


def _verify(rec: ArtifactRecord, root: Path, inputs: np.ndarray, reference: np.ndarray,
            thresholds: FidelityThresholds, threads: int, base_reference: Optional[np.ndarray] = None,
            peak: float = 2.0) -> Optional[np.ndarray]:
    """Run the artifact on the stored inputs and fill its fidelity / status; returns its outputs
    (None when it could not run), which the HTML report draws."""
    from .verify.host import fidelity, run_artifact

    try:
        outputs = run_artifact(root / rec.path, rec.format, rec.io, inputs, threads)
    except Exception as exc:  # noqa: BLE001 - any runtime failure becomes this row's reason
        rec.status, rec.reason = "failed", f"host run failed: {first_line(exc)}"
        return None
    if outputs.shape != reference.shape:
        rec.status, rec.reason = "failed", f"output shape {list(outputs.shape)} != float {list(reference.shape)}"
        return None
    if not np.isfinite(outputs).all():
        rec.status, rec.reason = "failed", "outputs contain NaN/inf"
        return None
    rec.fidelity = fidelity(outputs, reference, peak)
    if base_reference is not None:
        vs_base = fidelity(outputs, base_reference, peak)
        rec.fidelity["vs_base"] = {k: vs_base[k] for k in ("psnr_db", "exact", "max_abs_err", "mean_abs_err")}
    reason = below_threshold(rec.fidelity["psnr_db"], thresholds.ok_psnr_db)
    if reason:
        rec.status, rec.reason = "degraded", reason
    return outputs


def _output_range(cfg: ExportConfig, model, inputs: np.ndarray, reference: np.ndarray):
    """--output-range, else the zoo entry's, else the final activation's, else measured (models.output_range)."""
    from .models.output_range import resolve_output_range

    declared, by = ((cfg.output_range, "--output-range") if cfg.output_range is not None
                    else (model.output_range, model.output_range_by))
    return resolve_output_range(declared, by, model.module, inputs, reference)


def _add_ratios(records: list[ArtifactRecord]) -> None:
    by_fmt = {r.format: r for r in records if r.status != "failed"}
    floats = float_of_runtime()
    float_lat = {rt: by_fmt[f].host_latency_ms.get("median") for rt, f in floats.items() if f in by_fmt}
    fastest_float = min((v for v in float_lat.values() if v), default=None)
    for r in records:
        if r.status == "failed" or r.bytes is None:
            continue
        base = by_fmt.get(floats.get(r.runtime or "", ""), by_fmt.get("onnx"))
        if base is not None and base.bytes:
            r.size_ratio = round(r.bytes / base.bytes, 4)
        med = r.host_latency_ms.get("median")
        if med and float_lat.get(r.runtime or ""):
            r.host_latency_ms["ratio_vs_float_same_runtime"] = round(med / float_lat[r.runtime], 3)
        if med and fastest_float:
            r.host_latency_ms["ratio_vs_fastest_float"] = round(med / fastest_float, 3)


def run_export(cfg: ExportConfig, progress: Optional[ProgressFn] = None, model=None) -> tuple[Path, dict]:
    """Build the bundle described by ``cfg``; returns (bundle dir, manifest). ``model``: an
    already-loaded LoadedModel (the Python API's in-memory modules) used instead of loading
    ``cfg.model``, which then only names the bundle."""
    from .util.deps import require

    require(*PACKAGES, purpose="export")  # before anything is created
    from .converters import CONVERTERS
    from .converters.base import ConvertContext
    from .models.stats import count_macs, parameter_count, weights_sha256
    from .export.onnx import export_onnx

    say = progress or (lambda stage, fmt, rec: None)
    formats = list(dict.fromkeys(["onnx", *cfg.formats]))
    converters = {f: CONVERTERS.get(f) for f in formats}  # unknown format -> UnknownNameError now
    for conv in converters.values():  # a format of an optional extra, asked for without it
        missing = conv.optional_extra and conv.missing_dependency()
        if missing:
            raise MissingDependencyError(f"{conv.format}: {missing}")
    options = cfg.convert
    thresholds = cfg.thresholds
    out_dir = cfg.bundle_dir()

    BundleWriter(out_dir, overwrite=cfg.overwrite).precheck()  # a refused --out costs no model load
    say("load", None, None)
    if model is None:
        model = _load_model(cfg)
    from .export.user_inputs import prepare as prepare_inputs

    user_inputs = prepare_inputs(model, cfg.fixed_inputs, cfg.noise, cfg.noise_seed, model.sample_inputs(2, cfg.input_seed))
    _check_memory(cfg, model)
    inputs = _load_inputs(cfg, model)
    calibration, calibration_source = _calibration_inputs(cfg, model, inputs)
    reference = _run_forward(model.module, inputs)
    out_range = _output_range(cfg, model, inputs, reference)
    base_reference, base_info = _base_reference(model, inputs, reference, out_range.peak)

    remove_dead_temp_dirs(WORKDIR_PREFIX)  # work folders of exports that were killed
    with BundleWriter(out_dir, overwrite=cfg.overwrite) as writer, OwnedTempDir(WORKDIR_PREFIX) as work:
        root = writer.tmp
        assert root is not None
        say("onnx", "onnx", None)
        t0 = time.perf_counter()
        onnx_path = writer.artifacts / converters["onnx"].filename
        onnx_info = export_onnx(model.module, inputs, onnx_path, reference)
        ctx = ConvertContext(module=model.module, onnx_path=onnx_path, calibration=calibration,
                             input_shape=list(model.input_spec.shape), workdir=Path(work),
                             out_dir=writer.artifacts, options=options, output_peak=out_range.peak)
        records: list[ArtifactRecord] = []
        host_outputs: dict[str, Optional[np.ndarray]] = {}
        for fmt in formats:
            conv = converters[fmt]
            say("convert", fmt, None)
            if fmt != "onnx":
                t0 = time.perf_counter()
            missing = conv.missing_dependency()
            if missing:
                rec = ArtifactRecord(format=fmt, status="failed", reason=missing, runtime=conv.runtime)
            else:
                try:
                    res = conv.convert(ctx)
                    rec = _record_from(fmt, res, root, time.perf_counter() - t0)
                    if fmt == "onnx":
                        rec.quantization.update(exporter=onnx_info.exporter, opset=onnx_info.opset,
                                                fallback_reason=onnx_info.fallback_reason)
                        if onnx_info.batch != "dynamic":
                            rec.io["batch"] = 1
                except ConversionError as exc:
                    rec = ArtifactRecord(format=fmt, status="failed", reason=str(exc), runtime=conv.runtime)
                except EdgeganError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a converter bug must not sink the other formats
                    log.debug("converter %s crashed", fmt, exc_info=True)
                    rec = ArtifactRecord(format=fmt, status="failed", runtime=conv.runtime,
                                         reason=f"{type(exc).__name__}: {first_line(exc, default='')}")
                if rec.status == "ok":
                    say("verify", fmt, None)
                    host_outputs[fmt] = _verify(rec, root, inputs, reference, thresholds, cfg.threads,
                                                base_reference, out_range.peak)
            records.append(rec)
            say("done", fmt, rec)

        say("latency", None, None)
        from .verify.host import measure_latencies

        runnable = {r.format: (root / r.path, r.io) for r in records if r.status != "failed"}
        if runnable:
            lat = measure_latencies(runnable, inputs, cfg.threads, cfg.latency_rounds, cfg.latency_runs)
            for r in records:
                if r.format in lat:
                    r.host_latency_ms = lat[r.format]
        _add_ratios(records)

        writer.save_array(INPUTS, inputs)
        writer.save_array(REFERENCE, reference)
        writer.save_array(CALIBRATION, calibration)
        from .runner.edgegan_runner import device_info

        versions = _versions()
        manifest = Manifest(
            schema_version=SCHEMA_VERSION,
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            model=ModelInfo(
                name=model.name, source=model.source, family=model.family, config=model.config,
                weights_sha256=weights_sha256(model.module), params=parameter_count(model.module),
                macs=count_macs(model.module, inputs), output_range=out_range.to_dict(),
            ),
            input={**model.input_spec.to_dict(), "source": model.input_source if not cfg.inputs_file else cfg.inputs_file},
            output={"shape": list(reference.shape[1:]), "dtype": "float32", "range": [out_range.lo, out_range.hi],
                    "range_source": out_range.source},
            seeds={"inputs": cfg.input_seed, "calibration": cfg.calibration_seed},
            inputs=StoredArray(file=INPUTS, count=int(len(inputs))),
            reference=StoredArray(file=REFERENCE, producer=f"torch {versions['torch']} float32",
                                  source=f"float model {model.name}"),
            calibration=StoredArray(file=CALIBRATION, source=calibration_source, count=int(len(calibration)),
                                    method=options.calibration_method),
            compression=model.compression,
            export={"exporter": onnx_info.exporter, "opset": onnx_info.opset,
                    "max_abs_err_vs_torch": onnx_info.max_abs_err_vs_torch,
                    "fallback_reason": onnx_info.fallback_reason,
                    "batch": onnx_info.batch, "batch_reason": onnx_info.batch_reason, **user_inputs,
                    **({"base_reference": base_info} if base_info else {})},
            thresholds=thresholds.to_dict(),
            export_config=cfg.to_dict(),
            tools=versions,
            host=device_info(with_runtimes=False),
            artifacts_dir=ARTIFACTS_DIR,
            artifacts=records,
        )
        from .reports.bundle_report import REPORT_FILENAME, bundle_report_markdown

        writer.write_text(REPORT_FILENAME, bundle_report_markdown(manifest.to_dict()))
        writer.write_manifest(manifest)
    _write_html_report(out_dir, {k: v for k, v in host_outputs.items() if v is not None})
    return out_dir, manifest.to_dict()


def _write_html_report(out_dir: Path, outputs: dict) -> None:
    """report.html beside bundle.json, from the outputs verification already computed. The
    bundle is complete and valid without it, so a report that cannot be drawn is logged, not
    raised (`edgegan report BUNDLE` draws it again)."""
    from .bundle import Bundle
    from .reports.html_report import HTML_FILENAME, ReportInputs, write_html

    try:
        write_html(ReportInputs(bundles=[(Bundle.load(out_dir), outputs)]), Path(out_dir) / HTML_FILENAME)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.warning("report.html not written for %s: %s", out_dir, exc)
