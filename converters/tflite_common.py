"""Shared TFLite route: ONNX -> (onnx2tf) saved_model -> TFLiteConverter.

onnx2tf runs once per export and is shared by every TFLite format (ctx.cache). It runs in a
subprocess because it overwrites its input file, prints thousands of lines, needs onnxsim on
PATH and may crash TensorFlow; we hand it a static batch-1 copy of the ONNX (the dynamo
exporter's symbolic batch dim breaks its ConvTranspose lowering) and, for image inputs, our own
sample images so it never tries to download its own. Calibration for int8 uses our own
representative dataset (onnx2tf's -oiqt would try to download sample images).
The TFLiteConverter step also runs in a subprocess (tflite_worker) so TensorFlow never loads
into the process that holds torch.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import ConversionError
from ..util.procs import die_with_parent, guarded
from .tool_process import last_error, run_worker, tool_env
from .base import ConvertContext, ConvertResult, Converter, missing_modules, module_version

ONNX2TF_TIMEOUT_S = 1800
TFLITE_TIMEOUT_S = 900


def static_batch_copy(src: Path, dst: Path) -> None:
    """Copy of the ONNX with batch fixed to 1 and stale value_info dropped."""
    import onnx

    model = onnx.load(str(src))
    for v in list(model.graph.input) + list(model.graph.output):
        dim = v.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_param")
        dim.dim_value = 1
    del model.graph.value_info[:]
    onnx.save(onnx.shape_inference.infer_shapes(model), str(dst))


# onnx2tf validates 3-channel image models on sample images it DOWNLOADS from GitHub unless
# this file is in its working directory; we put the model's own calibration inputs there.
ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"


def _provide_sample_data(ctx: ConvertContext, work: Path) -> None:
    cal = ctx.calibration
    if cal.ndim == 4:
        np.save(work / ONNX2TF_SAMPLE_FILE, np.ascontiguousarray(cal[:20].transpose(0, 2, 3, 1)).astype(np.float32))


def saved_model(ctx: ConvertContext) -> Path:
    """Run onnx2tf once per export; cache the saved_model (or the failure) in ctx.cache."""
    if "saved_model_error" in ctx.cache:
        raise ConversionError(ctx.cache["saved_model_error"])
    if "saved_model" in ctx.cache:
        return ctx.cache["saved_model"]
    work = ctx.workdir / "onnx2tf"
    work.mkdir(parents=True, exist_ok=True)
    src = work / "model_static.onnx"
    static_batch_copy(ctx.onnx_path, src)
    _provide_sample_data(ctx, work)
    out = work / "saved_model"
    argv = [sys.executable, "-m", "onnx2tf", "-i", str(src), "-o", str(out), "-osd", "-v", "error"]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(guarded(argv), cwd=work, env=tool_env(), capture_output=True, text=True, timeout=ONNX2TF_TIMEOUT_S,
                              preexec_fn=die_with_parent)
    except subprocess.TimeoutExpired:
        ctx.cache["saved_model_error"] = f"onnx2tf timed out after {ONNX2TF_TIMEOUT_S} s"
        raise ConversionError(ctx.cache["saved_model_error"]) from None
    ctx.cache["onnx2tf_seconds"] = round(time.perf_counter() - t0, 2)
    if proc.returncode != 0 or not (out / "saved_model.pb").exists():
        reason = last_error(proc.stdout + "\n" + proc.stderr)
        ctx.cache["saved_model_error"] = f"onnx2tf failed (exit {proc.returncode}): {reason}"
        raise ConversionError(ctx.cache["saved_model_error"])
    ctx.cache["saved_model"] = out
    return out


def io_layout(input_rank: int, output_rank: int) -> dict:
    """onnx2tf turns NCHW tensors into NHWC; record the permutations the runner applies."""
    io: dict = {"batch": 1}
    if input_rank == 4:
        io.update(input_layout="NHWC", input_perm=[0, 2, 3, 1])
    if output_rank == 4:
        io.update(output_layout="NHWC", output_perm=[0, 3, 1, 2])
    return io


class TFLiteConverterBase(Converter):
    """A TFLite format = one TFLiteConverter mode on the shared saved_model."""

    runtime = "litert"
    mode = ""
    tools = ("tensorflow-cpu", "onnx2tf", "onnxsim", "tf-keras", "ai-edge-litert")

    def missing_dependency(self):
        return missing_modules("tensorflow", "onnx2tf", "onnxsim", "ai_edge_litert")

    def convert(self, ctx: ConvertContext) -> ConvertResult:
        sm = saved_model(ctx)
        io = io_layout(len(ctx.input_shape) + 1, 4)
        calib = ctx.workdir / "calibration_nhwc.npy"
        if not calib.exists():
            perm = io.get("input_perm")
            np.save(calib, np.ascontiguousarray(ctx.calibration.transpose(perm) if perm else ctx.calibration))
        out = ctx.out_dir / self.filename
        job = {"saved_model": str(sm), "mode": self.mode, "out": str(out), "calibration": str(calib),
               "per_channel": ctx.options.per_channel, "int8_io": ctx.options.int8_io}
        report = run_worker("edgegan.converters.tflite_worker", job, ctx.workdir / f"tflite_{self.mode}.json",
                            f"TFLiteConverter ({self.mode})", TFLITE_TIMEOUT_S)
        if self.mode == "int8" and ctx.options.int8_io:
            io["int8_io"] = True
        quant = {"scheme": self.scheme, **report.get("quantization", {})}
        if self.mode == "int8":
            quant.update(per_channel=ctx.options.per_channel, calibration="representative dataset",
                         calibration_count=int(len(ctx.calibration)))
        tool_version = f"onnx2tf {module_version('onnx2tf')} + tensorflow {module_version('tensorflow-cpu')}"
        return ConvertResult(out, self.runtime, "onnx2tf+TFLiteConverter", tool_version,
                             quantization=quant, io=io,
                             notes=f"onnx2tf {ctx.cache.get('onnx2tf_seconds')} s (shared by TFLite formats)")

    scheme = ""

