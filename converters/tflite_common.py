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

import dataclasses
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..config import JsonConfig
from ..errors import ConfigError, ConversionError
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


def saved_model(ctx: ConvertContext, replace: tuple = (), source: Path | None = None) -> Path:
    """Run onnx2tf once per export, source graph (``source``: a rewritten ONNX, default the
    exported one) and set of op replacements (``replace``: onnx2tf ``-rtpo`` names); cache the
    saved_model (or the failure) in ctx.cache."""
    tag = "" if source is None else f"_{Path(source).stem}"
    key_ok, key_err = ("saved_model", replace, tag), ("saved_model_error", replace, tag)
    if key_err in ctx.cache:
        raise ConversionError(ctx.cache[key_err])
    if key_ok in ctx.cache:
        return ctx.cache[key_ok]
    work = ctx.workdir / ("onnx2tf" + tag + "".join(f"_{r}" for r in replace))
    work.mkdir(parents=True, exist_ok=True)
    src = work / "model_static.onnx"
    static_batch_copy(ctx.onnx_path if source is None else Path(source), src)
    _provide_sample_data(ctx, work)
    out = work / "saved_model"
    argv = [sys.executable, "-m", "onnx2tf", "-i", str(src), "-o", str(out), "-osd", "-v", "error"]
    if replace:
        argv += ["-rtpo", *replace]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(guarded(argv), cwd=work, env=tool_env(), capture_output=True, text=True, timeout=ONNX2TF_TIMEOUT_S,
                              preexec_fn=die_with_parent)
    except subprocess.TimeoutExpired:
        ctx.cache[key_err] = f"onnx2tf timed out after {ONNX2TF_TIMEOUT_S} s"
        raise ConversionError(ctx.cache[key_err]) from None
    ctx.cache["onnx2tf_seconds"] = round(time.perf_counter() - t0, 2)
    if proc.returncode != 0 or not (out / "saved_model.pb").exists():
        reason = last_error(proc.stdout + "\n" + proc.stderr)
        ctx.cache[key_err] = f"onnx2tf failed (exit {proc.returncode}): {reason}"
        raise ConversionError(ctx.cache[key_err])
    ctx.cache[key_ok] = out
    return out


# ONNX op type (lower case) -> onnx2tf's --replace_to_pseudo_operators (-rtpo) name: ops TFLite
# has no builtin for, which onnx2tf can rebuild from builtins (e.g. Erf of GELU)
PSEUDO_OPS = {"asin": "asin", "acos": "acos", "atan": "atan", "abs": "abs", "prelu": "prelu",
              "leakyrelu": "leakyrelu", "pow": "power", "power": "power", "gathernd": "gathernd", "neg": "neg",
              "hardswish": "hardswish", "erf": "erf", "gelu": "gelu", "matmulinteger": "matmulinteger"}


@dataclasses.dataclass
class TFLiteOptions(JsonConfig):
    """Options of every TFLite format (``--convert-option tflite-fp32.replace_ops=...``)."""

    replace_ops: str = dataclasses.field(default="auto", metadata={
        "help": "onnx2tf op replacements (-rtpo): auto = retry with them when conversion fails on an op that has "
                "one (e.g. Erf of GELU); none = never; or op names to always replace, e.g. Erf"})
    reflect_slices: bool = dataclasses.field(default=True, metadata={
        "help": "reflect Pad as edge slices + concatenations (exact; edgegan.export.xnnpack_ops): XNNPACK has "
                "no MIRROR_PAD, so each reflect pad left a TFLite reference kernel between two partitions"})

    def validate(self) -> None:
        forced = self.forced_ops()
        unknown = [op for op in forced if op.lower() not in PSEUDO_OPS]
        if unknown:
            raise ConfigError(f"replace_ops: {', '.join(unknown)} has no onnx2tf replacement; use auto, none or "
                              f"some of: Erf, GeLU, PRelu, LeakyRelu, Pow, Abs, Neg, HardSwish, Asin, Acos, Atan, "
                              "GatherND, MatMulInteger")

    def forced_ops(self) -> list:
        if self.replace_ops.strip().lower() in ("auto", "none", ""):
            return []
        return [op.strip() for op in self.replace_ops.split(",") if op.strip()]


@dataclasses.dataclass
class TFLiteInt8Options(TFLiteOptions):
    """Options of the int8 TFLite formats: which float graph is quantized. tflite-int8 and
    tflite-int8-mixed both take them, and both get their graph from :func:`norm_source`, so
    with nothing kept float they quantize the same graph."""

    norm_rewrite: bool = dataclasses.field(default=True, metadata={
        "help": "convert the InstanceNorm-rewritten graph (conv bias dropped, channels equalized; checked "
                "against float; edgegan.export.norm_rewrite): its own onnx2tf run"})
    subpixel: bool = dataclasses.field(default=True, metadata={
        "help": "convert the sub-pixel rewrite of stride-2 ConvTranspose layers (as ort-int8 does; "
                "edgegan.export.rewrite): TFLite's int8 TRANSPOSE_CONV is slow; its own onnx2tf run"})
    relu_hoist: bool = dataclasses.field(default=True, metadata={
        "help": "with subpixel: move the Relu after each interleave and crop onto the conv (exact; "
                "edgegan.export.relu_hoist): TFLite fuses it into the CONV_2D, and XNNPACK, which "
                "left each int8 RELU to TFLite's own kernels, takes the whole graph in one partition"})


@dataclasses.dataclass
class TFLiteFullInt8Options(TFLiteInt8Options):
    """tflite-int8's options (the int8 graph options; nothing of its own)."""


def norm_source(ctx: ConvertContext, options) -> tuple:
    """(ONNX to convert or None for the exported one, rewrite records, note): the one place that
    decides which float graph a TFLite format converts (tflite-int8 and tflite-int8-mixed alike):
    the sub-pixel rewrite (ConvTranspose on a 1×1 latent kept) with DepthToSpace in DCR order and
    the Relu hoist when the options ask for them, then the InstanceNorm rewrite, then the
    XNNPACK-friendly pads / norms (:func:`xnnpack_source`)."""
    from .ort_int8 import DCR_REWRITE, dcr_onnx, norm_rewritten_onnx, relu_hoisted_onnx, subpixel_onnx

    base, rewrites, notes = ctx.onnx_path, [], []
    if getattr(options, "subpixel", False) and ctx.module is not None:
        base, rewrites, notes = subpixel_onnx(ctx, latent=False)
        rewrites, notes = [dict(r) for r in rewrites], [n for n in notes if not n.startswith("no rewrite:")]
        if base != ctx.onnx_path:  # TF's DEPTH_TO_SPACE is DCR: one builtin op, no 6-D TRANSPOSE
            base, switched = dcr_onnx(ctx, base)
            if switched:
                rewrites.append({"rewrite": f"{DCR_REWRITE} x{switched}"})
            if getattr(options, "relu_hoist", False):
                base, hoisted = relu_hoisted_onnx(ctx, base)
                rewrites += hoisted
    if getattr(options, "norm_rewrite", False):
        normed, norm_rewrites, note = norm_rewritten_onnx(ctx, base, "tflite")
        if normed is not None:
            base, rewrites = normed, rewrites + list(norm_rewrites)
        notes += [note] if note else []
    base, more, note = xnnpack_source(ctx, base, getattr(options, "reflect_slices", False),
                                      getattr(options, "float_norms", False))
    rewrites += more
    notes += [note] if note else []
    return (None if base == ctx.onnx_path else base), rewrites, "; ".join(notes) or None


# the op types the two-pass InstanceNorm becomes in TFLite (tflite-int8-mixed's float_norms keeps
# them float; in this graph family MUL / ADD are also the residual adds and the Relu-fused scale)
FLOAT_NORM_OPS = ("MEAN", "SUB", "MUL", "ADD", "SQRT", "DIV")
# the rewrites copy values (pads) or only reorder float arithmetic (norms): checked against the
# graph before them on ORT with a bound far below any int8 error (two-pass on resnet-sketch:
# 147 dB, max abs 8.6e-7)
XNNPACK_MIN_PSNR_DB = 100.0
XNNPACK_MAX_ERR_OF_RANGE = 1e-4


def xnnpack_source(ctx: ConvertContext, source: Path, pads: bool, norms: bool) -> tuple:
    """(``source`` with reflect pads as slices + concat and / or InstanceNorms in two-pass form,
    rewrite records, note): checked against ``source`` on ORT (calibration inputs); on a failed
    check ``source`` itself with the reason as the note. Cached per source and choice."""
    from ..export.norm_rewrite import check_rewrite
    from ..export.xnnpack_ops import NORM_REWRITE, PAD_REWRITE, reflect_pads_to_slices, two_pass_instance_norms

    if not (pads or norms):
        return source, [], None
    key = f"xnnpack:{Path(source).resolve()}:{pads}:{norms}"
    if key not in ctx.cache:
        cur, counts = Path(source), []
        for on, what, rewrite in ((pads, PAD_REWRITE, reflect_pads_to_slices), (norms, NORM_REWRITE, two_pass_instance_norms)):
            if not on:
                continue
            out = ctx.workdir / f"{cur.stem}_{'pads' if rewrite is reflect_pads_to_slices else 'norms2p'}.onnx"
            n = rewrite(cur, out)
            if n:
                cur = out
                counts.append((what, n))
        if not counts:
            ctx.cache[key] = (Path(source), [], None)
        else:
            try:
                err, psnr, atol = check_rewrite(source, cur, ctx.calibration[:16], XNNPACK_MIN_PSNR_DB, XNNPACK_MAX_ERR_OF_RANGE)
            except ConversionError as exc:
                ctx.cache[key] = (Path(source), [], f"no XNNPACK rewrite: {exc}")
            else:
                ctx.cache[key] = (cur, [{"rewrite": f"{what} x{n}", "max_abs_err_vs_original": err, "psnr_db_vs_original": psnr,
                                         "tolerance_abs": atol, "checked_with": "onnxruntime, calibration inputs"}
                                        for what, n in counts], None)
    return ctx.cache[key]


def _graph_ops(ctx: ConvertContext) -> set:
    if "onnx_op_types" not in ctx.cache:
        import onnx

        ctx.cache["onnx_op_types"] = {n.op_type.lower() for n in onnx.load(str(ctx.onnx_path)).graph.node}
    return ctx.cache["onnx_op_types"]


def replacements_for(ctx: ConvertContext, error: str) -> tuple:
    """The -rtpo names to retry with after ``error``: the graph's replaceable ops the error
    names (empty: the failure is not about such an op, nothing to retry)."""
    present = sorted({PSEUDO_OPS[op] for op in _graph_ops(ctx) if op in PSEUDO_OPS})
    low = error.lower()
    named = [r for r in present if re.search(rf"\b(tf\.)?{r}\b", low)]
    return tuple(named)


def with_replacements(ctx: ConvertContext, options: "TFLiteOptions", attempt, source: Path | None = None):
    """``attempt(saved_model_path)`` on onnx2tf's saved_model of ``source`` (default the exported
    ONNX); with ``replace_ops`` auto a failure is retried once with onnx2tf's pseudo-op
    replacements. Returns (result, replaced -rtpo names, the first attempt's error or None)."""
    forced = tuple(PSEUDO_OPS[op.lower()] for op in options.forced_ops())
    if forced:
        return attempt(saved_model(ctx, forced, source)), forced, None
    try:
        return attempt(saved_model(ctx, (), source)), (), None
    except ConversionError as exc:
        first = str(exc)
        ops = replacements_for(ctx, first) if options.replace_ops.strip().lower() == "auto" else ()
        if not ops:
            raise
    try:
        return attempt(saved_model(ctx, ops, source)), ops, first
    except ConversionError as exc:
        raise ConversionError(f"{first}; retried with onnx2tf -rtpo {' '.join(ops)}: {exc}") from None


def replacement_note(ops: tuple, first_error) -> str:
    if not ops:
        return ""
    why = f" after the plain conversion failed ({first_error})" if first_error else " (replace_ops option)"
    return f"onnx2tf replaced {', '.join(ops)} by builtin-op equivalents (-rtpo {' '.join(ops)}){why}"


NCHW_TO_NHWC = [0, 2, 3, 1]
NHWC_TO_NCHW = [0, 3, 1, 2]


def layout_of(nchw: list, actual: list, what: str) -> str:
    """"NCHW" or "NHWC": which layout the converted model's tensor ``actual`` has, given the
    float model's NCHW shape (batch 1). Read off the real shape, never the rank: onnx2tf keeps
    some outputs NCHW (e.g. a net ending in PixelShuffle). When both fit (C == H == W) onnx2tf's
    own convention, NHWC, is taken."""
    nchw, actual = [int(d) for d in nchw], [int(d) for d in actual]
    if len(nchw) == 4 and actual == [nchw[i] for i in NCHW_TO_NHWC]:
        return "NHWC"
    if actual == nchw:
        return "NCHW"
    raise ConversionError(f"the TFLite {what} has shape {actual}, which is neither the float model's {nchw} "
                          "nor its NHWC form; the converter changed the model's shape")


def io_layout(input_nchw: list, output_nchw: list, tflite_input: list, tflite_output: list) -> dict:
    """The I/O convention of a TFLite model (the permutations the runner applies), decided
    from its real input/output shapes against the float model's."""
    io: dict = {"batch": 1, "layout_from": "tflite tensor shapes"}
    if layout_of(input_nchw, tflite_input, "input") == "NHWC":
        io.update(input_layout="NHWC", input_perm=NCHW_TO_NHWC)
    else:
        io.update(input_layout="NCHW" if len(input_nchw) == 4 else "as-is")
    if layout_of(output_nchw, tflite_output, "output") == "NHWC":
        io.update(output_layout="NHWC", output_perm=NHWC_TO_NCHW)
    else:
        io.update(output_layout="NCHW" if len(output_nchw) == 4 else "as-is")
    return io


def tflite_io_shapes(path: Path) -> tuple[list, list]:
    """(input shape, output shape) of a single-input, single-output .tflite."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    ins, outs = interp.get_input_details(), interp.get_output_details()
    if len(ins) != 1 or len(outs) != 1:
        raise ConversionError(f"the TFLite model has {len(ins)} inputs and {len(outs)} outputs; edgegan expects one each")
    return [int(d) for d in ins[0]["shape"]], [int(d) for d in outs[0]["shape"]]


def xnnpack_partitions(path: Path, threads: int = 2) -> dict:
    """How LiteRT's default XNNPACK delegate splits a .tflite, read from the real interpreter:
    the number of delegate partitions and the op types it leaves to TFLite's own kernels (found
    by re-loading with node fusion off, so each delegated op is its own delegate node and is
    matched by its outputs). A file the interpreter cannot prepare gets ``None`` and the error:
    the host run then fails the row with LiteRT's reason."""
    import collections

    from ai_edge_litert.interpreter import Interpreter

    def nodes(**kw):
        interp = Interpreter(model_path=str(path), num_threads=threads, **kw)
        interp.allocate_tensors()
        ops = interp._get_ops_details()  # noqa: SLF001 - LiteRT's only op listing
        return [o for o in ops if o["op_name"] != "DELEGATE"], [o for o in ops if o["op_name"] == "DELEGATE"]

    try:
        _, fused = nodes()
        model_ops, single = nodes(experimental_disable_delegate_node_fusion=True)
    except (RuntimeError, ValueError) as exc:  # a file LiteRT cannot prepare: verification fails the row
        return {"xnnpack_partitions": None, "ops_outside_xnnpack": [],
                "xnnpack_partitions_error": str(exc).splitlines()[0][:200]}
    taken = {tuple(o["outputs"]) for o in single}
    outside = collections.Counter(o["op_name"] for o in model_ops if tuple(o["outputs"]) not in taken)
    return {"xnnpack_partitions": len(fused), "ops_outside_xnnpack": [f"{k} x{v}" for k, v in outside.most_common()]}


def float_io_shapes(ctx: ConvertContext) -> tuple[list, list]:
    """The float model's batch-1 NCHW input and output shapes (output from one ORT run of the
    float ONNX; cached)."""
    if "float_io_shapes" not in ctx.cache:
        from ..export.onnx import INPUT_NAME, onnx_session

        x = np.ascontiguousarray(ctx.calibration[:1], dtype=np.float32)
        y = onnx_session(ctx.onnx_path).run(None, {INPUT_NAME: x})[0]
        ctx.cache["float_io_shapes"] = ([1, *ctx.input_shape], list(y.shape))
    return ctx.cache["float_io_shapes"]


def artifact_io(ctx: ConvertContext, path: Path) -> dict:
    """io record of a written .tflite: its layout against the float model's shapes."""
    fin, fout = float_io_shapes(ctx)
    tin, tout = tflite_io_shapes(path)
    return io_layout(fin, fout, tin, tout)


class TFLiteConverterBase(Converter):
    """A TFLite format = one TFLiteConverter mode on the shared saved_model."""

    runtime = "litert"
    mode = ""
    tools = ("tensorflow-cpu", "onnx2tf", "onnxsim", "tf-keras", "ai-edge-litert")

    def missing_dependency(self):
        return missing_modules("tensorflow", "onnx2tf", "onnxsim", "ai_edge_litert")

    Options = TFLiteOptions

    def convert(self, ctx: ConvertContext) -> ConvertResult:
        calib = ctx.workdir / "calibration_nchw.npy"  # the worker lays it out as the saved_model's input
        if not calib.exists():
            np.save(calib, np.ascontiguousarray(ctx.calibration, dtype=np.float32))
        out = ctx.out_dir / self.filename

        def attempt(sm: Path) -> dict:
            job = {"saved_model": str(sm), "mode": self.mode, "out": str(out), "calibration": str(calib),
                   "per_channel": ctx.options.per_channel, "int8_io": ctx.options.int8_io}
            return run_worker("edgegan.converters.tflite_worker", job, ctx.workdir / f"tflite_{self.mode}.json",
                              f"TFLiteConverter ({self.mode})", TFLITE_TIMEOUT_S)

        source, rewrites, note = norm_source(ctx, ctx.options_for(self))
        report, replaced, first_error = with_replacements(ctx, ctx.options_for(self), attempt, source)
        io = artifact_io(ctx, out)
        if self.mode == "int8" and ctx.options.int8_io:
            io["int8_io"] = True
        quant = {"scheme": self.scheme, **report.get("quantization", {}), **xnnpack_partitions(out)}
        if self.mode == "int8":
            quant.update(per_channel=ctx.options.per_channel, calibration="representative dataset",
                         calibration_count=int(len(ctx.calibration)))
        tool_version = f"onnx2tf {module_version('onnx2tf')} + tensorflow {module_version('tensorflow-cpu')}"
        if replaced:
            quant["onnx2tf_replaced_ops"] = list(replaced)
        notes = "; ".join(filter(None, [f"onnx2tf {ctx.cache.get('onnx2tf_seconds')} s (shared by TFLite formats)",
                                        replacement_note(replaced, first_error), note]))
        return ConvertResult(out, self.runtime, "onnx2tf+TFLiteConverter", tool_version,
                             quantization=quant, io=io, notes=notes, rewrites=rewrites)

    scheme = ""

