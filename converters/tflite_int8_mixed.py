"""`tflite-int8-mixed`: TFLite int8 with chosen ops kept float -- by TFLite op name (e.g. the
MEAN / SQUARED_DIFFERENCE / RSQRT / SUB / MUL chain onnx2tf makes of an InstanceNorm), by
output tensor name, or ``auto``: TF's QuantizationDebugger ranks the ops by the error each
introduces (float op on the int8 model's dequantized inputs) and the worst are denylisted until
the output PSNR vs the fp32 TFLite model meets the target (edgegan.quantdebug.tflite_worker).
bundle.json records exactly which ops stayed float and the per-op table of the final model.

The float graph converted is tflite-int8's, chosen by the same function with the same options
(tflite_common.norm_source: sub-pixel rewrite with DCR DepthToSpace and the Relu hoist, the
InstanceNorm rewrite, reflect pads as slices), so with nothing kept float both quantize one
graph; ``float_norms`` (on by default) adds the two-pass InstanceNorm kept float. ``keep_nodes``
are output tensor names of the TFLite model made from THAT graph, as TF's debugger names them.
Opt-in: not in the default formats.
"""
from __future__ import annotations

import dataclasses

from ..errors import ConfigError
from .base import ConvertContext, ConvertResult, MixedPrecisionOptions, register
from ..export.xnnpack_ops import NORM_REWRITE, PAD_REWRITE
from .tflite_common import (FLOAT_NORM_OPS, TFLiteConverterBase, TFLiteInt8Options, artifact_io, float_io_shapes, module_version,
                           norm_source, replacement_note, saved_model, with_replacements, xnnpack_partitions,
                           xnnpack_source)


@dataclasses.dataclass
class TFLiteInt8MixedOptions(MixedPrecisionOptions, TFLiteInt8Options):
    """tflite-int8-mixed's own options (``ConvertOptions.formats['tflite-int8-mixed']``); its
    op types are TFLite op names, e.g. ["MEAN", "SQUARED_DIFFERENCE", "RSQRT"], and its PSNR
    target is against the fp32 TFLite model."""

    eval_inputs: int = dataclasses.field(default=8, metadata={"help": "calibration inputs auto measures PSNR on"})
    float_norms: bool = dataclasses.field(default=True, metadata={
        "help": "InstanceNorm in two-pass form (mean / sub / mul / sqrt / div; edgegan.export.xnnpack_ops) with its "
                "arithmetic op types (MEAN SUB MUL ADD SQRT DIV) kept float and the convs int8: XNNPACK runs every "
                "op, float or int8, so the graph stays in one partition; auto then starts from this set"})

    def validate(self) -> None:
        super().validate()
        TFLiteInt8Options.validate(self)
        if self.eval_inputs < 1:
            raise ConfigError(f"TFLiteInt8MixedOptions.eval_inputs must be >= 1, got {self.eval_inputs}")


@register
class TFLiteInt8Mixed(TFLiteConverterBase):
    format = "tflite-int8-mixed"
    mode = "int8-mixed"
    scheme = "int8, mixed precision"
    filename = "model_int8_mixed.tflite"
    description = "TFLite int8 with the ops that lose accuracy kept float (TF quantization debugger, auto search)"
    Options = TFLiteInt8MixedOptions

    def convert(self, ctx: ConvertContext) -> ConvertResult:
        from ..quantdebug.tflite import run_tflite_debug

        mine = ctx.options_for(self)
        out = ctx.out_dir / self.filename
        source, rewrites, note = norm_source(ctx, mine)
        keep_ops = list(mine.keep_op_types)
        if any(str(r.get("rewrite", "")).startswith(NORM_REWRITE) for r in rewrites):
            keep_ops += [op for op in FLOAT_NORM_OPS if op not in keep_ops]
        rep, replaced, first_error = with_replacements(ctx, mine, lambda sm: run_tflite_debug(
            sm, ctx.calibration, ctx.calibration[: mine.eval_inputs], ctx.workdir,
            per_channel=ctx.options.per_channel, keep_ops=keep_ops,
            keep_nodes=mine.keep_nodes, auto=mine.auto, target_psnr_db=mine.target_psnr_db,
            max_steps=mine.max_steps, out=out, tag="tflite_int8_mixed", output_peak=ctx.output_peak,
            output_shape=float_io_shapes(ctx)[1]), source)
        met = rep["output_psnr_db"] >= mine.target_psnr_db if mine.auto else None
        quant = {
            "scheme": self.scheme, "per_channel": ctx.options.per_channel,
            "calibration": "representative dataset", "calibration_count": int(len(ctx.calibration)),
            "kept_float": rep["kept_float"], "kept_float_count": len(rep["kept_float"]),
            "search": {"target_psnr_db": mine.target_psnr_db if mine.auto else None,
                       "psnr_db_on_calibration": round(rep["output_psnr_db"], 2), "met_target": met,
                       "steps": rep["steps"]},
            "int8_mac_fraction": rep["int8_mac_fraction"], "total_macs": rep["total_macs"],
            "ops_left_float": rep["ops_left_float"], **xnnpack_partitions(out),
        }
        if rep.get("int8_unrunnable_ops"):
            quant["int8_unrunnable_ops"] = rep["int8_unrunnable_ops"]
        notes = note
        if rep.get("int8_unrunnable_ops"):
            notes = "; ".join(filter(None, [notes, f"kept {', '.join(rep['int8_unrunnable_ops'])} float: its int8 kernel "
                                                    "refused to run (e.g. a divisor that quantizes to zero)"]))
        if met is False:
            notes = "; ".join(filter(None, [notes, f"auto stopped at {rep['output_psnr_db']:.1f} dB after {rep['steps']} step(s), below the "
                     f"{mine.target_psnr_db} dB target; raise max_steps or keep op types float"]))
        if replaced:
            quant["onnx2tf_replaced_ops"] = list(replaced)
            notes = "; ".join(filter(None, [notes, replacement_note(replaced, first_error)]))
        tool_version = f"onnx2tf {module_version('onnx2tf')} + tensorflow {module_version('tensorflow-cpu')}"
        return ConvertResult(out, self.runtime, "onnx2tf+TF QuantizationDebugger", tool_version,
                             quantization=quant, io=artifact_io(ctx, out), notes=notes, rewrites=rewrites)


def debug_tflite_bundle(bundle_dir, fmt: str, n_inputs: int = 8, workdir=None):
    """Per-op table of a bundle's tflite-int8 / tflite-int8-mixed artifact. The bundle holds no
    saved_model, so onnx2tf re-runs on its float ONNX and the int8 model is re-made with the
    artifact's settings (and its kept-float ops) before TF's debugger compares it with float."""
    import tempfile
    from pathlib import Path

    import numpy as np

    from ..bundle import Bundle
    from ..quantdebug.bundle import calibration_inputs, stored_inputs
    from ..quantdebug.tflite import check_io_matches, report_from_worker, run_tflite_debug
    from .base import ConvertOptions

    bundle = Bundle.load(bundle_dir)
    rec = bundle.artifact(fmt)
    bundle.artifact_path(rec)  # the artifact must exist even though it is re-made
    onnx_path = bundle.artifact_path(bundle.artifact("onnx"))
    q = rec.quantization
    kept = q.get("kept_float", [])
    keep_ops = [k["op_type"] for k in kept if str(k.get("why", "")).startswith("op type")]
    keep_nodes = [k["name"] for k in kept if not str(k.get("why", "")).startswith("op type")]
    subpixel = [r["rewrite"] for r in rec.rewrites if "ConvTranspose" in str(r.get("rewrite", ""))]
    # tensors named in the sub-pixel graph do not exist in the graph as exported, debugged below
    keep_nodes, dropped = ([], keep_nodes) if subpixel else (keep_nodes, [])
    cal = calibration_inputs(bundle)
    x = stored_inputs(bundle, n_inputs)
    with tempfile.TemporaryDirectory(prefix="edgegan-qdbg-tflite-", dir=workdir) as tmp:
        ctx = ConvertContext(module=None, onnx_path=onnx_path, calibration=cal, input_shape=list(x.shape[1:]),
                             workdir=Path(tmp), out_dir=Path(tmp),
                             options=ConvertOptions(per_channel=bool(q.get("per_channel", True))))
        source = None
        if any(str(r.get("rewrite", "")).startswith("instance_norm") for r in rec.rewrites):
            from .ort_int8 import norm_rewritten_onnx

            source = norm_rewritten_onnx(ctx, onnx_path, "tflite")[0]  # deterministic: as the converter made it
        done = [str(r.get("rewrite", "")) for r in rec.rewrites]
        pads, norms = (any(d.startswith(w) for d in done) for w in (PAD_REWRITE, NORM_REWRITE))
        if pads or norms:  # the same exact passes, so the debugged graph has the artifact's op types
            source = xnnpack_source(ctx, source or onnx_path, pads, norms)[0]
        rep = run_tflite_debug(saved_model(ctx, (), source), cal, np.asarray(x), Path(tmp), per_channel=ctx.options.per_channel,
                               keep_ops=keep_ops, keep_nodes=keep_nodes, tag="debug",
                               output_peak=bundle.manifest.output_range().peak, output_shape=float_io_shapes(ctx)[1])
    check_io_matches(rep["io"], rec.io or {}, fmt)
    extra = [f"the artifact was converted from a sub-pixel rewrite ({len(subpixel)} ConvTranspose layer(s)) that "
             "needs the torch model; debugged the graph as exported instead"] if subpixel else []
    if subpixel and dropped:
        extra.append(f"the {len(dropped)} tensor(s) it kept float by name belong to the rewritten graph and were not "
                     "applied: " + ", ".join(dropped[:6]))
    return report_from_worker(rep, fmt, str(onnx_path) + (" (InstanceNorm rewrite rebuilt)" if source else "")
                              + " (onnx2tf fp32)", str(bundle.artifact_path(rec)), len(x),
                              notes=["re-made the int8 model from the bundle's float ONNX with the artifact's settings "
                                     "(the bundle holds no saved_model); ops as TF's debugger names them", *extra])
