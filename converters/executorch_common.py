"""Shared ExecuTorch route: torch module -> ``torch.export`` (here, once per export) -> saved
ExportedProgram -> lowering to a .pte with the XNNPACK partitioner (and PT2E int8) in a child
process (``executorch_worker``), so executorch/torchao never load into this process.

The program is captured at batch 1 (recorded as ``io.batch``; the runner runs batch 1 anyway):
ExecuTorch plans its memory for a dynamic dimension's upper bound, so a dynamic batch of N would
make every device hold N activation arenas. A model ``torch.export`` cannot capture (data-dependent
control flow, unsupported Python) fails both ExecuTorch formats with the exporter's one-line
reason; other formats are unaffected.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..config import JsonConfig
from ..errors import ConversionError, first_line
from ..util.deps import missing_message
from .base import ConvertContext, ConvertResult, Converter, missing_modules, module_version
from .tool_process import run_worker

EXECUTORCH_TIMEOUT_S = 900


REWRITE_HELP = ("rewrite InstanceNorm2d (two-pass) / ReflectionPad2d (slices + cat) into ops XNNPACK runs, "
                "checked against the model")


SUBPIXEL_HELP = ("with the rewrite: each ConvTranspose2d that feeds an InstanceNorm and fills exactly stride outputs "
                 "per input pixel becomes zero pad + conv + pixel_shuffle (exact), since XNNPACK's int8 "
                 "Deconvolution is ~3x slower per MAC than its convolution")


PHASE_HELP = ("with the rewrite: each ConvTranspose2d that fills exactly stride outputs per input pixel becomes one "
              "conv with a tap window per output phase + crop + interleave, and one on a 1x1 input (stride 1, "
              "unpadded) a linear layer (both exact): XNNPACK's fp32 Deconvolution ran ~2x slower")


LATENT_HELP = ("with the rewrite: a stride-1 unpadded ConvTranspose2d on a 1x1 input (a DCGAN's latent layer) becomes "
               "a linear layer (exact): XNNPACK ran it as an int8 Deconvolution over k*k zero-padded taps")


@dataclasses.dataclass
class ExecutorchFp32Options(JsonConfig):
    """executorch-fp32's own options (``ConvertOptions.formats['executorch-fp32']``). The rewrite
    is on: measured on resnet-sketch it brings the .pte from 94.6 dB to ~129 dB vs torch (the
    portable InstanceNorm kernel loses float32 precision) and lowers the whole model in one
    XNNPACK call. Its transposed convs become convs (``phase_deconv``): dcgan-digits' fp32 .pte
    1.10 -> 0.59 ms at 1 thread, 0.55 -> 0.35 ms at 2 (benchmarks/executorch_deconv_forms.py)."""

    rewrite: bool = dataclasses.field(default=True, metadata={"help": REWRITE_HELP})
    phase_deconv: bool = dataclasses.field(default=True, metadata={"help": PHASE_HELP})


@dataclasses.dataclass
class ExecutorchInt8Options(JsonConfig):
    """executorch-int8's own options. The rewrite is on, its norm kept float inside XNNPACK
    (edgegan.quantdebug.pt2e), the convs feeding the norms equalized, the transposed convs in
    sub-pixel form. Measured on resnet-sketch (benchmarks/executorch_vs.py --rounds 3 --runs 30,
    CPU-gated, 2026-12-01): rewritten + equalized 40.05 dB, one XNNPACK call, 1.43 ms (0.65x ORT
    fp32); as exported 38.11 dB, 31 calls between portable InstanceNorm / reflect-pad kernels,
    2.85 ms. Sub-pixel on top, then the ReLUs folded into the quantize after them and the
    sub-pixel conv's pad done by the conv + an int8 crop: README, ExecuTorch section
    (benchmarks/alternating_ab.py --cpu-time). A DCGAN's latent layer as an int8 linear
    (``linear_latent``): dcgan-digits 0.88x / 0.91x the time at 1 / 2 threads
    (benchmarks/executorch_deconv_forms.py). The sub-pixel interleave spelled channels-last
    (``subpixel_nhwc``): resnet-sketch 0.97x the time at 2 threads, 0.96x the CPU time at 1
    (benchmarks/alternating_ab.py, 2026-12-02 15:27 UTC), 40.1 dB either way."""

    rewrite: bool = dataclasses.field(default=True, metadata={"help": REWRITE_HELP})
    equalize_norm_inputs: bool = dataclasses.field(default=True, metadata={"help": (
        "with the rewrite: rescale each conv feeding an InstanceNorm so its output channels share one "
        "calibrated range (exact through the norm); measured on resnet-sketch 38.2 -> 40.1 dB")})
    subpixel_deconv: bool = dataclasses.field(default=True, metadata={"help": SUBPIXEL_HELP})
    subpixel_crop: bool = dataclasses.field(default=True, metadata={"help": (
        "with subpixel_deconv: the sub-pixel conv pads symmetrically itself and an int8 slice crops "
        "its output, instead of a zero pad op (XNNPACK runs that pad in fp32, a convert on each side)")})
    subpixel_nhwc: bool = dataclasses.field(default=True, metadata={"help": (
        "with subpixel_deconv: the sub-pixel conv's phases interleaved channels-last (to NHWC, one 6-D "
        "permute, back), which XNNPACK runs in int8, instead of pixel_shuffle (fp32 transposes with a "
        "convert on each side); resnet-sketch 0.97x the time at 2 threads, same PSNR")})
    linear_latent: bool = dataclasses.field(default=True, metadata={"help": LATENT_HELP})
    fold_relu: bool = dataclasses.field(default=True, metadata={"help": (
        "drop each ReLU that a quantize with its zero point at the int8 minimum follows: the quantize "
        "clamps negatives to 0 already (exact); after the float InstanceNorm XNNPACK ran it as an "
        "fp32 clamp over the whole tensor")})


@dataclasses.dataclass
class ExecutorchDynamicOptions(JsonConfig):
    """executorch-dynamic's own options. The rewrite (norm two-pass, reflect pad as slices) lets
    XNNPACK take the whole generator; nothing needs equalizing (no calibrated activation scale).
    The transposed convs become convs (``phase_deconv``), which XNNPACK's dynamic quantization
    takes: as exported, dcgan-digits' .pte stayed float (no int8 MACs)."""

    rewrite: bool = dataclasses.field(default=True, metadata={"help": REWRITE_HELP})
    phase_deconv: bool = dataclasses.field(default=True, metadata={"help": PHASE_HELP})


@dataclasses.dataclass
class Program:
    """The saved ``torch.export`` program plus what was rewritten on the way."""

    path: Path
    rewrites: list
    notes: list


def exported_program(ctx: ConvertContext, rewrite: bool, equalize: bool = False, subpixel: bool = False,
                     crop: bool = False, phase: bool = False, latent: bool = False, nhwc: bool = False) -> Program:
    """``torch.export`` the module (rewritten for delegation when asked, its norm inputs
    equalized on the calibration inputs when ``equalize``, its transposed convs in sub-pixel
    form when ``subpixel``, cropping instead of padding when ``crop``, the other transposed convs in
    their fp32 forms when ``phase``, the one on a 1x1 input as a linear layer when ``latent``) at batch 1, once per export
    and setting; the saved .pt2 (or the failure) is cached in ctx.cache for the other format."""
    crop, nhwc = crop and subpixel, nhwc and subpixel
    tag = ("rewritten" + ("_equalized" if equalize else "") + ("_subpixel" if subpixel else "")
           + ("_crop" if crop else "") + ("_nhwc" if nhwc else "") + ("_phase" if phase else "")
           + ("_latent" if latent and not phase else "")) if rewrite else "as_is"
    key = f"executorch_program:{tag}"
    if key + ":error" in ctx.cache:
        raise ConversionError(ctx.cache[key + ":error"])
    if key in ctx.cache:
        return ctx.cache[key]
    import torch

    module, rewrites, notes = ctx.module, [], []
    if rewrite:
        from .executorch_rewrite import delegation_rewrite

        try:
            done = delegation_rewrite(ctx.module, ctx.calibration[:8],
                                      equalize=ctx.calibration if equalize else None, deconvs=subpixel,
                                      crop=crop, phase=phase, latent=latent, nhwc=nhwc)
        except ValueError as exc:
            done, notes = None, [f"no delegation rewrite: {exc}"]
        except Exception as exc:  # noqa: BLE001 - an unusual module: lower it as it is
            done, notes = None, [f"no delegation rewrite: {type(exc).__name__}: {first_line(exc, 160)}"]
        if done is not None:
            module = done.module
            # the keyword arguments too, so debug-quant replays exactly this rewrite
            options = {"equalize": equalize, "deconvs": subpixel, "crop": crop, "phase": phase, "latent": latent,
                       "nhwc": nhwc}
            rewrites = [{"rewrite": name, "count": n, "max_abs_err_vs_original": done.max_abs_err, "options": options}
                        for name, n in done.counts.items()]
    example = torch.from_numpy(np.ascontiguousarray(ctx.calibration[:1], dtype=np.float32))
    path = ctx.workdir / f"executorch_program_{tag}.pt2"
    try:
        ep = torch.export.export(module, (example,))
        torch.export.save(ep, str(path))
    except Exception as exc:  # noqa: BLE001 - the exporter's reason is the row's reason
        ctx.cache[key + ":error"] = (f"torch.export cannot capture the model: {type(exc).__name__}: "
                                     f"{first_line(exc, 240)}")
        raise ConversionError(ctx.cache[key + ":error"]) from None
    ctx.cache[key] = Program(path, rewrites, notes)
    return ctx.cache[key]


class ExecutorchConverterBase(Converter):
    """An ExecuTorch format = one lowering mode of the shared exported program."""

    runtime = "executorch"
    tools = ("executorch", "torchao")
    optional_extra = "executorch"
    mode = ""
    scheme = ""

    def missing_dependency(self):
        import importlib.util

        missing = missing_modules("torch", "executorch", "torchao")
        if missing is None and importlib.util.find_spec("executorch.exir") is None:
            # `executorch` is a namespace package: any folder of that name on sys.path "finds" it
            missing = missing_message(["executorch"])
        return missing

    def convert(self, ctx: ConvertContext) -> ConvertResult:
        opts = ctx.options_for(self)
        program = exported_program(ctx, opts.rewrite, getattr(opts, "equalize_norm_inputs", False),
                                   getattr(opts, "subpixel_deconv", False), getattr(opts, "subpixel_crop", False),
                                   getattr(opts, "phase_deconv", False), getattr(opts, "linear_latent", False),
                                   getattr(opts, "subpixel_nhwc", False))
        out = ctx.out_dir / self.filename
        calib = ctx.workdir / "executorch_calibration.npy"
        if self.mode in ("int8", "dynamic") and not calib.exists():
            np.save(calib, np.ascontiguousarray(ctx.calibration, dtype=np.float32))
        job = {"program": str(program.path), "mode": self.mode, "out": str(out), "calibration": str(calib),
               "per_channel": ctx.options.per_channel, "fold_relu": bool(getattr(opts, "fold_relu", False))}
        report = run_worker("edgegan.converters.executorch_worker", job, ctx.workdir / f"executorch_{self.mode}.json",
                            f"ExecuTorch lowering ({self.mode})", EXECUTORCH_TIMEOUT_S, require_report=True)
        version = module_version("executorch")
        quant = {"scheme": self.scheme, **report}
        if self.mode == "dynamic":
            quant.update(per_channel=True, calibration="none (activations quantized at run time)",
                         torchao=module_version("torchao"))
        if self.mode == "int8":
            quant.update(per_channel=ctx.options.per_channel, calibration="PT2E observers (min/max)",
                         calibration_count=int(len(ctx.calibration)), torchao=module_version("torchao"))
        notes = list(program.notes)
        if report.get("ops_portable"):
            notes.append("left on portable kernels: " + ", ".join(f"{k} x{v}" for k, v in report["ops_portable"].items()))
        return ConvertResult(out, self.runtime, "torch.export + executorch (XNNPACK)", version, quantization=quant,
                             io={"batch": 1, "exported_with": f"executorch {version}"}, rewrites=program.rewrites,
                             notes="; ".join(notes) or None)
