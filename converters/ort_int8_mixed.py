"""`ort-int8-mixed`: ONNX Runtime static QDQ int8 with chosen ops kept float -- by op type, by
node name, or ``auto``: the fewest ops (weighted by their MACs) returned to float until the
output PSNR vs float reaches a target, found with the quantization debugger's ranking
(edgegan.quantdebug.mixed). bundle.json records exactly which ops stayed float and why, and
the share of MACs ORT runs in int8.

The graph quantized is ORT's pre-processed float ONNX (as ort-int8 quantizes it) without the
sub-pixel rewrite, so `edgegan debug-quant --format ort-int8-mixed` matches it tensor by tensor.
Opt-in (not in the default formats): the search re-quantizes once per step.
"""
from __future__ import annotations

import dataclasses

from .base import ConvertContext, ConvertResult, Converter, MixedPrecisionOptions, missing_modules, module_version, register
from .ort_int8 import OrtQuantTypeOptions, norm_rewritten_onnx, _strip_debug_info, ops_left_float, preprocessed_once


@dataclasses.dataclass
class OrtInt8MixedOptions(MixedPrecisionOptions, OrtQuantTypeOptions):
    """ort-int8-mixed's own options (``ConvertOptions.formats['ort-int8-mixed']``): what to keep
    float, and ORT's integer types as ort-int8 takes them."""

    norm_rewrite: bool = dataclasses.field(default=True, metadata={
        "help": "quantize the InstanceNorm-rewritten graph (as ort-int8 does; edgegan.export.norm_rewrite)"})

    def validate(self) -> None:
        MixedPrecisionOptions.validate(self)
        OrtQuantTypeOptions.validate(self)


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
        from ..errors import ConversionError
        from ..quantdebug.mixed import quantize_mixed

        opts, mine = ctx.options, ctx.options_for(self)
        graph, rewrites, note = ctx.onnx_path, [], None
        if mine.norm_rewrite:
            normed, rewrites, note = norm_rewritten_onnx(ctx, ctx.onnx_path, "ort")
            graph = normed or ctx.onnx_path
        try:  # shared with ort-int8 (once per export); the graph itself when it fails, as there
            source = preprocessed_once(ctx, graph)
        except ConversionError:
            source = graph
        out = ctx.out_dir / self.filename
        result = quantize_mixed(
            source, out, ctx.calibration, keep_op_types=mine.keep_op_types, keep_nodes=mine.keep_nodes,
            auto=mine.auto, target_psnr_db=mine.target_psnr_db, max_steps=mine.max_steps,
            per_channel=opts.per_channel, activation_type=mine.activation_type, weight_type=mine.weight_type,
            reduce_range=mine.reduce_range, calibration_method=opts.calibration_method, workdir=ctx.workdir,
            output_peak=ctx.output_peak)
        _strip_debug_info(out)
        notes = [note] if note else []
        if result.met_target is False:
            notes.append(f"auto stopped at {result.psnr_db:.1f} dB after {result.steps} step(s), below the "
                         f"{mine.target_psnr_db} dB target; raise max_steps or keep more ops float by type")
        return ConvertResult(
            out, self.runtime, "onnxruntime.quantization + edgegan.quantdebug", module_version("onnxruntime"),
            quantization={
                "scheme": "static QDQ int8, mixed precision", "activations": mine.activation_type,
                "weights": mine.weight_type, "per_channel": opts.per_channel, "reduce_range": mine.reduce_range,
                "calibration_method": opts.calibration_method, "preprocessed": source != graph,
                **result.quantization_record(), "ops_left_float": ops_left_float(out),
            },
            rewrites=rewrites, notes="; ".join(notes) or None,
        )
