"""`ort-int8`: ONNX Runtime static QDQ int8, per-channel weights, calibrated on inputs drawn
from the model's input distribution.

Before quantizing, stride-2 ConvTranspose layers are rewritten (float-exact, checked) into a
2×2 Conv + DepthToSpace + crop, and one on a 1×1 input into a 1×1 Conv + reshape, BatchNorm
folded (edgegan.export.rewrite), because ORT has no int8 ConvTranspose kernel;
``OrtInt8Options.subpixel=False`` quantizes the graph as exported.

Activation/weight types are explicit (onnxruntime >= 1.32 defaults activations to int8 and
then rejects uint8 weights). Ops ORT cannot run in int8 (ConvTranspose, InstanceNorm, reflect
Pad on CPU) stay float between Q/DQ pairs; they are listed in ``quantization.ops_left_float``.
"""
from __future__ import annotations

import collections
import dataclasses
from pathlib import Path

from ..config import JsonConfig
from ..errors import ConfigError, ConversionError, first_line
from ..export.conv_widen import REWRITE as WIDEN, widen_narrow_convs
from ..export.nhwc_interleave import REWRITE as INTERLEAVE, interleave_nhwc
from ..export.norm_rewrite import tanh_input_range
from ..export.qdq_pads import GATHER_REWRITE, REWRITE as INT8_PAD, gather_pads, int8_pads
from .base import ConvertContext, ConvertResult, Converter, missing_modules, module_version, register

# ops that only move or reshape data (they carry int8 through unchanged); everything else that is
# not a QLinear*/Q/DQ node after ORT's own QDQ fusion computes in float
_DATA_MOVEMENT = {"Slice", "Unsqueeze", "Squeeze", "Reshape", "Split", "Transpose", "Concat", "Flatten", "Identity",
                  "Shape", "Gather", "Constant", "DepthToSpace", "SpaceToDepth", "Expand", "Tile"}
_QUANT_NODES = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}


def ops_left_float(path) -> list[str]:
    """Compute op types ORT still runs in float in this QDQ model (sorted by count), read from
    the graph ORT itself optimizes for this CPU: after its QDQ fusions the int8 kernels are
    QLinear*/QGemm/MatMulInteger nodes, and any other compute node runs in float."""
    import tempfile

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgegan-ortopt-") as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED  # fusions, no NCHWc layout
        so.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        so.log_severity_level = 3
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        graph = onnx.load(so.optimized_model_filepath).graph
    int8 = set()  # tensors ORT holds in int8 (a Pad on one copies int8: see edgegan.export.qdq_pads)
    for n in graph.node:  # the optimized graph is topologically sorted
        if n.op_type == "QuantizeLinear" or n.op_type.startswith("QLinear") or n.op_type == "QGemm" \
                or (n.op_type in _DATA_MOVEMENT | {"Pad"} and n.input and n.input[0] in int8):
            int8.update(n.output)
    counts = collections.Counter(
        n.op_type for n in graph.node
        if n.op_type not in _QUANT_NODES | _DATA_MOVEMENT and not n.op_type.startswith("QLinear")
        and n.op_type not in ("QGemm", "MatMulInteger", "ConvInteger")
        and not (n.op_type == "Pad" and n.input and n.input[0] in int8))
    return [f"{op} x{c}" for op, c in counts.most_common()]


def preprocessed_once(ctx: ConvertContext, source: Path) -> Path:
    """ORT's quantization pre-processing of ``source`` (edgegan.quantdebug.onnx_qdq.pre_process),
    run once per export and graph: the result, or the failure, is kept in ``ctx.cache`` for the
    other ORT int8 formats. Raises ConversionError naming ORT's error when it failed."""
    from ..quantdebug.onnx_qdq import pre_process

    key = f"ort_preprocessed:{Path(source).resolve()}"
    if key not in ctx.cache:
        try:
            ctx.cache[key] = pre_process(source, ctx.workdir / f"ort_pre_{Path(source).stem}.onnx")
        except Exception as exc:  # noqa: BLE001 - an optional optimisation; callers fall back
            ctx.cache[key] = ConversionError(f"pre-processing {Path(source).stem}: {type(exc).__name__}")
    if isinstance(ctx.cache[key], ConversionError):
        raise ctx.cache[key]
    return ctx.cache[key]


def norm_rewritten_onnx(ctx: ConvertContext, source: Path, tag: str):
    """``source`` with the InstanceNorm rewrite (edgegan.export.norm_rewrite), checked against
    it on the calibration inputs: (path, rewrite records, None), or (None, [], note) when the
    graph has no Conv -> InstanceNorm pair or the check fails. Cached per source in ctx.cache."""
    from ..export.norm_rewrite import equalize_instance_norms

    key = f"norm_rewrite:{Path(source).resolve()}"
    if key not in ctx.cache:
        out = ctx.workdir / f"{tag}_norm_{Path(source).stem}.onnx"
        try:
            report = equalize_instance_norms(source, out, ctx.calibration)
            ctx.cache[key] = (out, report.records(), None)
        except ValueError:
            ctx.cache[key] = (None, [], None)
        except ConversionError as exc:
            ctx.cache[key] = (None, [], f"no InstanceNorm rewrite: {exc}")
    return ctx.cache[key]


def subpixel_onnx(ctx: ConvertContext, latent: bool = True):
    """ONNX of the sub-pixel rewrite (edgegan.export.rewrite, validated against torch), or the
    exported graph when nothing applies: (path, rewrite records, notes). Exported once per export
    and ``latent`` setting (cached in ctx.cache): ort-int8 quantizes it with the 1×1-input layer
    rewritten, tflite-int8 without (TFLite has an int8 TRANSPOSE_CONV; ORT does not)."""
    key = f"subpixel_onnx:{latent}"
    if key in ctx.cache:
        return ctx.cache[key]
    from ..errors import EdgeganError
    from ..export.onnx import export_onnx
    from ..export.rewrite import subpixel_rewrite

    try:
        model, report = subpixel_rewrite(ctx.module, ctx.calibration[:8], latent=latent)
    except ValueError as exc:
        result = (ctx.onnx_path, [], [f"no rewrite: {exc}"])
    else:
        path = ctx.workdir / ("ort_subpixel.onnx" if latent else "subpixel_keep_latent.onnx")
        try:
            info = export_onnx(model, ctx.calibration[:8], path)
        except EdgeganError as exc:
            result = (ctx.onnx_path, [], [f"sub-pixel rewrite not exported ({exc}); quantized the original graph"])
        else:
            result = (path, [{"rewrite": r, "max_abs_err_vs_original": report.max_abs_err,
                              "onnx_max_abs_err": info.max_abs_err_vs_torch} for r in report.rewrites], [])
    ctx.cache[key] = result
    return result


def graph_pass(ctx: ConvertContext, name: str, source: Path, rewrite) -> tuple:
    """(``source`` rewritten by ``rewrite(src, dst) -> count`` into the workdir, count), once per
    export and source (ctx.cache): the float ONNX passes every int8 format may share."""
    key = f"{name}:{Path(source).resolve()}"
    if key not in ctx.cache:
        out = ctx.workdir / f"{name}_{Path(source).stem}.onnx"
        ctx.cache[key] = (out, rewrite(source, out))
    return ctx.cache[key]


DCR_REWRITE = "DepthToSpace CRD -> DCR (conv channels permuted)"


def dcr_onnx(ctx: ConvertContext, source: Path) -> tuple:
    """(``source`` with its DepthToSpace ops in DCR order, how many were switched). TFLite maps
    only DCR to one builtin; ort-int8 needs DCR for its channels-last interleave
    (edgegan.export.nhwc_interleave: ORT's own DCR DepthToSpace kernel was no cheaper than CRD)."""
    from ..export.depth_to_space import to_dcr

    return graph_pass(ctx, "dcr", source, to_dcr)


RELU_HOIST = "Relu moved before DepthToSpace / crop (runs on the int8 tensor)"


def relu_hoisted_onnx(ctx: ConvertContext, source: Path) -> tuple:
    """(``source`` with each Relu after an interleave / crop moved onto its conv, the rewrite
    record as a list): the same pass, once per export, for ort-int8 and tflite-int8."""
    from ..export.relu_hoist import hoist_relus

    path, moved = graph_pass(ctx, "relu_hoist", source, hoist_relus)
    return path, ([{"rewrite": f"{RELU_HOIST} x{moved}"}] if moved else [])


def _strip_debug_info(path) -> None:
    """Drop exporter stack traces / value_info from the quantized file (no effect on numerics;
    ~6 % of a small model's bytes)."""
    import onnx

    model = onnx.load(str(path))
    del model.graph.value_info[:]
    for node in model.graph.node:
        node.doc_string = ""
        del node.metadata_props[:]
    onnx.save(model, str(path))


@dataclasses.dataclass
class OrtQuantTypeOptions(JsonConfig):
    """The integer types ORT quantizes to: the fields ort-int8 and ort-int8-mixed share."""

    activation_type: str = dataclasses.field(default="uint8", metadata={"help": "int8 or uint8 activations"})
    weight_type: str = dataclasses.field(default="int8", metadata={"help": "int8 or uint8 weights"})
    reduce_range: bool = dataclasses.field(default=False, metadata={"help": "7-bit weights (helps non-VNNI x86)"})

    def validate(self) -> None:
        for key in ("activation_type", "weight_type"):
            if getattr(self, key) not in ("int8", "uint8"):
                raise ConfigError(f"{type(self).__name__}.{key} must be 'int8' or 'uint8', got {getattr(self, key)!r}")


@dataclasses.dataclass
class OrtGraphOptions(OrtQuantTypeOptions):
    """Which float graph ORT quantizes (the rewrites) and how: the fields ort-int8 and
    ort-int8-mixed share, so both quantize the same graph (:func:`quantize_ort_source`)."""

    subpixel: bool = dataclasses.field(default=True, metadata={
        "help": "rewrite stride-2 ConvTranspose into phase convolutions ORT runs in int8"})
    norm_rewrite: bool = dataclasses.field(default=True, metadata={
        "help": "drop the bias of convs feeding an InstanceNorm and equalize their output channels "
                "(checked against float; edgegan.export.norm_rewrite)"})
    float_norm_params: bool = dataclasses.field(default=True, metadata={
        "help": "leave InstanceNormalization's scale and bias float initializers (quantized, ORT "
                "dequantizes them on every run; the norm itself computes in float either way)"})
    relu_hoist: bool = dataclasses.field(default=True, metadata={
        "help": "move a Relu after the sub-pixel interleave and crop onto the conv's output (exact; "
                "edgegan.export.relu_hoist): the interleave then runs on uint8"})
    int8_pad: bool = dataclasses.field(default=True, metadata={
        "help": "run reflect/edge Pad on the int8 tensor instead of between DequantizeLinear and "
                "QuantizeLinear (bit-identical; edgegan.export.qdq_pads)"})
    nhwc_pad: bool = dataclasses.field(default=True, metadata={
        "help": "with int8_pad: each int8 reflect/edge Pad before a conv as channels-last Gathers between "
                "Transposes that ORT's layout transposes cancel (bit-identical; edgegan.export.qdq_pads)"})
    tanh_range: bool = dataclasses.field(default=False, metadata={
        "help": "narrow the int8 range of a Tanh's input to where the Tanh is not saturated"})
    widen_convs: bool = dataclasses.field(default=True, metadata={
        "help": "give convs with < 16 output channels zero channels up to 16 and slice them off "
                "(exact; ORT's int8 conv is slow on narrow outputs: edgegan.export.conv_widen)"})
    nhwc_interleave: bool = dataclasses.field(default=True, metadata={
        "help": "sub-pixel interleave in DCR order spelled channels-last, so ORT's layout transposes around "
                "its int8 convs cancel (exact; edgegan.export.nhwc_interleave)"})


@dataclasses.dataclass
class OrtInt8Options(OrtGraphOptions):
    """ort-int8's own options (``ConvertOptions.formats['ort-int8']``)."""


@dataclasses.dataclass
class OrtSource:
    """The float graph an ORT int8 format quantized: ``graph`` (after ORT pre-processing and the
    conv widening when they apply; its node names are the ones ``keep_nodes`` takes), the
    rewrites that made it from the exported ONNX, and notes."""

    graph: Path
    preprocessed: bool
    rewrites: list
    notes: list


def quantize_ort_source(ctx: ConvertContext, ort: OrtGraphOptions, quantize):
    """Call ``quantize(float_graph)`` on the graph ``ort``'s options ask for: the sub-pixel rewrite
    (DCR order + Relu hoist) of the exported ONNX, then the InstanceNorm rewrite, then ORT's
    pre-processing, the narrow-conv widening and the channels-last interleave. ORT's pre-processing occasionally produces graphs its quantizer
    then rejects (e.g. "shared mode is not supported for weight"), so the graphs are tried in
    order of preference until ``quantize`` does not raise ConversionError. Returns
    (:class:`OrtSource`, ``quantize``'s result); the plain and the mixed format both call it."""
    rewritten, rewrites, notes = subpixel_onnx(ctx) if ort.subpixel else (None, [], [])
    rewrites, notes = [dict(r) for r in rewrites], list(notes)
    if ort.nhwc_interleave and rewritten is not None and rewritten != ctx.onnx_path:
        rewritten, switched = dcr_onnx(ctx, rewritten)
        rewrites += [{"rewrite": f"{DCR_REWRITE} x{switched}"}] if switched else []
    if ort.relu_hoist and rewritten is not None and rewritten != ctx.onnx_path:
        rewritten, hoisted = relu_hoisted_onnx(ctx, rewritten)
        rewrites += hoisted
    # each graph (the sub-pixel rewrite, then the exported one) with the InstanceNorm rewrite
    # first when it applies: graph -> (its base graph, its norm rewrite records)
    graphs: dict = {}
    for g in dict.fromkeys(g for g in (rewritten, ctx.onnx_path) if g is not None):
        if ort.norm_rewrite:
            normed, norm_rewrites, note = norm_rewritten_onnx(ctx, g, "ort")
            notes += [note] if note and note not in notes else []
            if normed is not None:
                graphs[normed] = (g, norm_rewrites)
        graphs[g] = (g, [])
    # each graph once: without a rewrite, ``rewritten`` is the exported graph itself
    errors = []
    for source, preprocess in [(g, preprocess) for g in graphs for preprocess in (True, False)]:
        graph = source
        if preprocess:
            try:
                graph = preprocessed_once(ctx, source)  # shared by the ORT int8 formats: before the widening
            except ConversionError as exc:
                errors.append(str(exc))
                continue
        applied = []  # the exact passes after pre-processing, in order: (record, count)
        for on, name, rewrite, record in ((ort.widen_convs, "widen", widen_narrow_convs, WIDEN),
                                          (ort.nhwc_interleave, "nhwc", interleave_nhwc, INTERLEAVE)):
            path, count = graph_pass(ctx, name, graph, rewrite) if on else (graph, 0)
            graph = path if count else graph
            applied += [(record, count)] if count else []
        try:
            result = quantize(graph)
            break
        except ConversionError as exc:  # report any quantizer failure as this row's reason
            reason = first_line(exc, 200).removeprefix("onnxruntime quantize_static failed: ")
            errors.append(f"{source.stem}{' (pre-processed)' if preprocess else ''}: {reason}")
    else:
        raise ConversionError("onnxruntime quantize_static failed: " + " | ".join(errors))
    base, norm_rewrites = graphs[source]
    rewrites = (rewrites if base == rewritten else []) + norm_rewrites
    rewrites += [{"rewrite": f"{record} x{count}"} for record, count in applied]
    if errors:
        notes.append("fell back after: " + " | ".join(errors))
    if not preprocess:
        notes.append("quantized without ORT pre-processing")
    return OrtSource(graph, preprocess, rewrites, notes), result


def finish_qdq(out: Path, ort: OrtGraphOptions, source: OrtSource) -> bool:
    """The passes on the quantized file itself (Tanh input range, pads onto int8 tensors, then
    channels-last), their records appended to ``source``: True when the numerics changed
    (tanh_range narrowed)."""
    narrowed = tanh_input_range(out) if ort.tanh_range else []
    source.rewrites += [{"rewrite": "tanh_input_range", **n} for n in narrowed]
    if ort.tanh_range and not narrowed:
        source.notes.append("tanh_range: no Tanh input range to narrow")
    if ort.int8_pad:
        moved = int8_pads(out)
        if moved:
            source.rewrites.append({"rewrite": f"{INT8_PAD} x{moved}"})
        gathered = gather_pads(out) if ort.nhwc_pad else 0
        if gathered:
            source.rewrites.append({"rewrite": f"{GATHER_REWRITE} x{gathered}"})
    return bool(narrowed)


@register
class OrtInt8(Converter):
    format = "ort-int8"
    runtime = "onnxruntime"
    filename = "model_ort_int8.onnx"
    default_order = 1
    description = "ONNX Runtime static QDQ int8 (per-channel weights)"
    tools = ("onnxruntime",)
    Options = OrtInt8Options

    def missing_dependency(self):
        return missing_modules("onnx", "onnxruntime")

    def convert(self, ctx: ConvertContext) -> ConvertResult:
        from ..quantdebug.onnx_qdq import quantize_qdq

        opts, ort = ctx.options, ctx.options_for(self)
        out = ctx.out_dir / self.filename
        # (quantize_qdq quantizes a copy with no shared float initializer: edgegan.export.unshare)
        source, _ = quantize_ort_source(ctx, ort, lambda graph: quantize_qdq(
            graph, out, ctx.calibration, per_channel=opts.per_channel, activation_type=ort.activation_type,
            weight_type=ort.weight_type, reduce_range=ort.reduce_range, calibration_method=opts.calibration_method,
            op_types_to_exclude=("InstanceNormalization",) if ort.float_norm_params else ()))
        finish_qdq(out, ort, source)
        rewrites, notes = source.rewrites, source.notes
        _strip_debug_info(out)
        return ConvertResult(
            out, self.runtime, "onnxruntime.quantization", module_version("onnxruntime"),
            quantization={
                "scheme": "static QDQ int8", "activations": ort.activation_type,
                "weights": ort.weight_type, "per_channel": opts.per_channel,
                "reduce_range": ort.reduce_range, "calibration_method": opts.calibration_method,
                "ops_left_float": ops_left_float(out),
                "op_types_not_quantized": ["InstanceNormalization"] if ort.float_norm_params else [],
            },
            rewrites=rewrites, notes="; ".join(notes) or None,
        )
