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

import json
import os
import subprocess
import sys

import numpy as np

from ..errors import ConversionError, first_line
from ..util.procs import die_with_parent
from .base import ConvertContext, ConvertResult, Converter, missing_modules, module_version
from .tflite_common import _last_error

EXECUTORCH_TIMEOUT_S = 900
PROGRAM_FILE = "executorch_program.pt2"


def exported_program(ctx: ConvertContext):
    """``torch.export`` the module at batch 1 once per export; the saved .pt2 (or the failure)
    is cached in ctx.cache for the other ExecuTorch format."""
    if "executorch_program_error" in ctx.cache:
        raise ConversionError(ctx.cache["executorch_program_error"])
    if "executorch_program" in ctx.cache:
        return ctx.cache["executorch_program"]
    import torch

    example = torch.from_numpy(np.ascontiguousarray(ctx.calibration[:1], dtype=np.float32))
    path = ctx.workdir / PROGRAM_FILE
    try:
        ep = torch.export.export(ctx.module, (example,))
        torch.export.save(ep, str(path))
    except Exception as exc:  # noqa: BLE001 - the exporter's reason is the row's reason
        ctx.cache["executorch_program_error"] = (f"torch.export cannot capture the model: {type(exc).__name__}: "
                                                 f"{first_line(exc, 240)}")
        raise ConversionError(ctx.cache["executorch_program_error"]) from None
    ctx.cache["executorch_program"] = path
    return path


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    return env


class ExecutorchConverterBase(Converter):
    """An ExecuTorch format = one lowering mode of the shared exported program."""

    runtime = "executorch"
    tools = ("executorch", "torchao")
    optional_extra = "executorch"
    mode = ""
    scheme = ""

    def missing_dependency(self):
        return missing_modules("torch", "executorch", "torchao")

    def convert(self, ctx: ConvertContext) -> ConvertResult:
        program = exported_program(ctx)
        out = ctx.out_dir / self.filename
        calib = ctx.workdir / "executorch_calibration.npy"
        if self.mode == "int8" and not calib.exists():
            np.save(calib, np.ascontiguousarray(ctx.calibration, dtype=np.float32))
        job = {"program": str(program), "mode": self.mode, "out": str(out), "calibration": str(calib),
               "per_channel": ctx.options.per_channel}
        job_path = ctx.workdir / f"executorch_{self.mode}.json"
        job_path.write_text(json.dumps(job))
        argv = [sys.executable, "-m", "edgegan.converters.executorch_worker", str(job_path)]
        try:
            proc = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=EXECUTORCH_TIMEOUT_S,
                                  preexec_fn=die_with_parent)
        except subprocess.TimeoutExpired:
            raise ConversionError(f"ExecuTorch lowering ({self.mode}) timed out after {EXECUTORCH_TIMEOUT_S} s") from None
        report_path = job_path.with_suffix(".report.json")
        if proc.returncode != 0 or not out.exists() or not report_path.exists():
            out.unlink(missing_ok=True)
            raise ConversionError(f"ExecuTorch lowering ({self.mode}) failed: {_last_error(proc.stderr + proc.stdout)}")
        report = json.loads(report_path.read_text())
        version = module_version("executorch")
        quant = {"scheme": self.scheme, **report}
        if self.mode == "int8":
            quant.update(per_channel=ctx.options.per_channel, calibration="PT2E observers (min/max)",
                         calibration_count=int(len(ctx.calibration)), torchao=module_version("torchao"))
        notes = None
        if report.get("ops_portable"):
            notes = "left on portable kernels: " + ", ".join(f"{k} x{v}" for k, v in report["ops_portable"].items())
        return ConvertResult(out, self.runtime, "torch.export + executorch (XNNPACK)", version, quantization=quant,
                             io={"batch": 1, "exported_with": f"executorch {version}"}, notes=notes)
