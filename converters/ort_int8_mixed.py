"""`ort-int8-mixed`: ONNX Runtime static QDQ int8 with chosen ops kept float -- by op type, by
node name, or ``auto``: the fewest ops (weighted by their MACs) returned to float until the
output PSNR vs float reaches a target, found with the quantization debugger's ranking
(edgegan.quantdebug.mixed). bundle.json records exactly which ops stayed float and why, and
the share of MACs ORT runs in int8.

The graph quantized is the one ort-int8 quantizes, made by the same code with the same options
(:func:`converters.ort_int8.quantize_ort_source`: sub-pixel ConvTranspose rewrite, Relu hoist,
InstanceNorm rewrite, ORT pre-processing, narrow convs widened, channels-last interleave), so with nothing kept float the
two artifacts are the same model. ``keep_nodes`` names nodes of THAT graph (after the rewrites
and ORT's pre-processing): `edgegan debug-quant` lists them for an artifact made without the
sub-pixel rewrite (``subpixel=False``); with it, an unknown name is refused with examples of
the graph's names. Opt-in (not in the default formats): the search re-quantizes once per step.
"""
from __future__ import annotations

import dataclasses

from .base import ConvertContext, ConvertResult, Converter, MixedPrecisionOptions, missing_modules, module_version, register
from .ort_int8 import OrtGraphOptions, _strip_debug_info, finish_qdq, ops_left_float, quantize_ort_source


@dataclasses.dataclass
class OrtInt8MixedOptions(MixedPrecisionOptions, OrtGraphOptions):
    """ort-int8-mixed's own options (``ConvertOptions.formats['ort-int8-mixed']``): what to keep
    float, and which graph to quantize and ORT's integer types exactly as ort-int8 takes them."""

    def validate(self) -> None:
        MixedPrecisionOptions.validate(self)
        OrtGraphOptions.validate(self)


@register
class OrtInt8Mixed(Converter):
    format = "ort-int8-mixed"
    runtime = "onnxruntime"
    filename = "model_ort_int8_mixed.onnx"
    description = "ONNX Runtime QDQ int8 with the ops that lose accuracy kept float (auto search to a PSNR target)"
    tools = ("onnxruntime",)
    Options = OrtInt8MixedOptions

    def missing_dependency(self):
        return missing_modules("onnx", "onnxruntime")

    def convert(self, ctx: ConvertContext) -> ConvertResult:
        from ..quantdebug.mixed import output_psnr, quantize_mixed

        opts, mine = ctx.options, ctx.options_for(self)
        out = ctx.out_dir / self.filename
        source, result = quantize_ort_source(ctx, mine, lambda graph: quantize_mixed(
            graph, out, ctx.calibration, keep_op_types=mine.keep_op_types, keep_nodes=mine.keep_nodes,
            auto=mine.auto, target_psnr_db=mine.target_psnr_db, max_steps=mine.max_steps,
            per_channel=opts.per_channel, activation_type=mine.activation_type, weight_type=mine.weight_type,
            reduce_range=mine.reduce_range, calibration_method=opts.calibration_method, workdir=ctx.workdir,
            output_peak=ctx.output_peak,
            op_types_to_exclude=("InstanceNormalization",) if mine.float_norm_params else ()))
        if finish_qdq(out, mine, source):  # the Tanh range moved after the search: re-measure, as the search did
            result.psnr_db = output_psnr(source.graph, out, ctx.calibration[:8], peak=ctx.output_peak)
            result.met_target = (result.psnr_db >= mine.target_psnr_db) if mine.auto else None
        _strip_debug_info(out)
        notes = list(source.notes)
        if result.met_target is False:
            notes.append(f"auto stopped at {result.psnr_db:.1f} dB after {result.steps} step(s), below the "
                         f"{mine.target_psnr_db} dB target; raise max_steps or keep more ops float by type")
        return ConvertResult(
            out, self.runtime, "onnxruntime.quantization + edgegan.quantdebug", module_version("onnxruntime"),
            quantization={
                "scheme": "static QDQ int8, mixed precision", "activations": mine.activation_type,
                "weights": mine.weight_type, "per_channel": opts.per_channel, "reduce_range": mine.reduce_range,
                "calibration_method": opts.calibration_method, "preprocessed": source.preprocessed,
                **result.quantization_record(), "ops_left_float": ops_left_float(out),
                "op_types_not_quantized": ["InstanceNormalization"] if mine.float_norm_params else [],
            },
            rewrites=source.rewrites, notes="; ".join(notes) or None,
        )
