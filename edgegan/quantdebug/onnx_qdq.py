"""Float ONNX vs its QDQ int8 version (onnxruntime.quantization), tensor by tensor.

Matching: the QDQ quantizer keeps the float tensor names; an op output ``Y`` it quantizes
becomes ``Y -> QuantizeLinear -> DequantizeLinear -> Y'``, so float ``Y`` is compared with
``Y'`` (the same pairing onnxruntime.quantization.qdq_loss_debug makes; we build the graphs
ourselves because we also need the "shadow" ops below, and its helpers rewrite the models in
place on disk).

Introduced vs inherited error: beside every quantized op of the float graph we add a shadow
copy of that op alone in int8 -- its activation inputs taken from the FLOAT graph and passed
through the op's own Q/DQ, its weights through the QDQ model's quantized weights, its output
through its output Q/DQ. The shadow's SQNR vs float is the error the op introduces by itself;
everything else in the QDQ model's SQNR at that point is inherited from upstream. One float
run computes every shadow at once.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from ..errors import ConversionError, EdgeganError
from .report import DebugReport, OpNumerics, psnr_db, sqnr_db

log = logging.getLogger(__name__)

_Q, _DQ = "QuantizeLinear", "DequantizeLinear"
SHADOW = "qdbg"
# ops whose output the quantizer never requantizes on its own (they only move int8 data)
_MOVEMENT = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Slice", "Split", "Gather",
             "Concat", "DepthToSpace", "SpaceToDepth", "Shape", "Constant", "Expand", "Tile"}


def _input_name(model) -> str:
    inits = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    if len(names) != 1:
        raise EdgeganError(f"the quantization debugger handles models with one input; this one has {len(names)}")
    return names[0]


def _run(path_or_bytes, inputs: np.ndarray, names: Sequence[str], threads: int = 2) -> dict[str, np.ndarray]:
    """Every named output for every input (one sample at a time: tiny models, any batch dim)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    # no fusions: a fused graph may drop the intermediate outputs asked for
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path_or_bytes, so, providers=["CPUExecutionProvider"])
    feed_name = sess.get_inputs()[0].name
    runs = [sess.run(list(names), {feed_name: inputs[i: i + 1]}) for i in range(len(inputs))]
    return {n: np.concatenate([r[k] for r in runs]) for k, n in enumerate(names)}


class _QdqGraph:
    """Index of a QDQ graph: who produces what, which Q/DQ pair wraps which float tensor."""

    def __init__(self, model) -> None:
        from onnx import numpy_helper

        self.model = model
        self.inits = {i.name: i for i in model.graph.initializer}
        self.arrays = {}  # lazily converted initializers
        self._np = numpy_helper
        self.producer = {o: n for n in model.graph.node for o in n.output}
        self.consumers: dict[str, list] = {}
        for n in model.graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)

    def array(self, name: str) -> Optional[np.ndarray]:
        if name not in self.inits:
            return None
        if name not in self.arrays:
            self.arrays[name] = self._np.to_array(self.inits[name])
        return self.arrays[name]

    def output_qdq(self, tensor: str):
        """(Q node, DQ node) that requantize ``tensor``, or None."""
        for q in self.consumers.get(tensor, []):
            if q.op_type == _Q:
                for dq in self.consumers.get(q.output[0], []):
                    if dq.op_type == _DQ:
                        return q, dq
        return None

    def dequantized_source(self, tensor: str):
        """For a compute node's input: ('act', float tensor, Q node, DQ node) when it is a
        Q/DQ'd activation, ('weight', DQ node) when it is a dequantized initializer, else None."""
        dq = self.producer.get(tensor)
        if dq is None or dq.op_type != _DQ:
            return None
        if dq.input[0] in self.inits:
            return ("weight", dq)
        q = self.producer.get(dq.input[0])
        if q is not None and q.op_type == _Q:
            return ("act", q.input[0], q, dq)
        return None


def _macs(node, shapes: dict[str, tuple], qg: _QdqGraph) -> int:
    """Multiply-accumulates per sample of a Conv / ConvTranspose / Gemm / MatMul node."""
    def weight_shape(name):
        src = qg.dequantized_source(name)
        w = qg.array(src[1].input[0]) if src and src[0] == "weight" else qg.array(name)
        return None if w is None else w.shape

    if node.op_type not in ("Conv", "ConvTranspose", "Gemm", "MatMul") or len(node.input) < 2:
        return 0
    w = weight_shape(node.input[1])
    out = shapes.get(node.output[0])
    if w is None or out is None:
        return 0
    if node.op_type == "Conv":
        return int(np.prod(out[1:]) * np.prod(w[1:]))
    if node.op_type == "ConvTranspose":
        inp = shapes.get(node.input[0]) or shapes.get(_float_name(node.input[0], qg))
        return int(np.prod(inp[1:]) * np.prod(w[1:])) if inp else 0
    return int(np.prod(out[1:]) * w[0])  # Gemm / MatMul: outputs x K


def _float_name(tensor: str, qg: _QdqGraph) -> str:
    src = qg.dequantized_source(tensor)
    return src[1] if src and src[0] == "act" else tensor


def _scalar(qg: _QdqGraph, name: str) -> Optional[np.ndarray]:
    return qg.array(name) if name else None


def _shadowable(node, qg: _QdqGraph, float_tensors: set[str]) -> bool:
    """Every input of ``node`` can be had from the float graph (or is a quantized weight)."""
    for name in node.input:
        if not name:
            continue
        src = qg.dequantized_source(name)
        if src is None and name not in float_tensors and name not in qg.inits:
            return False
        if src is not None and src[0] == "act" and src[1] not in float_tensors:
            return False
    return True


def _build_probe_models(float_model, qg: _QdqGraph, matched: list[tuple]):
    """(float graph + every intermediate as an output + shadow ops, QDQ graph + the matched
    DQ outputs as outputs)."""
    import copy

    from onnx import helper

    fm = copy.deepcopy(float_model)
    have = {i.name for i in fm.graph.initializer}
    float_tensors = have | {o for n in fm.graph.node for o in n.output} | {i.name for i in fm.graph.input}
    shadow_outputs = {}
    new_nodes = []
    for node, qdq_out, tensor, q, dq in matched:
        prefix = f"{SHADOW}/{node.name or tensor}"
        inputs = []
        if not _shadowable(node, qg, float_tensors):
            continue
        for k, name in enumerate(node.input):
            src = qg.dequantized_source(name) if name else None
            if src is None:
                if name in qg.inits and name not in have:
                    fm.graph.initializer.append(qg.inits[name])
                    have.add(name)
                inputs.append(name)
            elif src[0] == "weight":
                wdq = src[1]
                for i in wdq.input:
                    if i and i not in have:
                        fm.graph.initializer.append(qg.inits[i])
                        have.add(i)
                out = f"{prefix}/w{k}"
                new_nodes.append(helper.make_node(_DQ, list(wdq.input), [out], name=out, domain=wdq.domain,
                                                  **{a.name: helper.get_attribute_value(a) for a in wdq.attribute}))
                inputs.append(out)
            else:
                _, float_tensor, aq, adq = src
                for i in list(aq.input[1:]) + list(adq.input[1:]):
                    if i and i not in have:
                        fm.graph.initializer.append(qg.inits[i])
                        have.add(i)
                qo, do = f"{prefix}/in{k}_q", f"{prefix}/in{k}"
                new_nodes.append(helper.make_node(_Q, [float_tensor, *aq.input[1:]], [qo], name=qo, domain=aq.domain,
                                                  **{a.name: helper.get_attribute_value(a) for a in aq.attribute}))
                new_nodes.append(helper.make_node(_DQ, [qo, *adq.input[1:]], [do], name=do, domain=adq.domain,
                                                  **{a.name: helper.get_attribute_value(a) for a in adq.attribute}))
                inputs.append(do)
        for i in list(q.input[1:]) + list(dq.input[1:]):
            if i and i not in have:
                fm.graph.initializer.append(qg.inits[i])
                have.add(i)
        outs = [f"{prefix}/out{j}" if o else "" for j, o in enumerate(node.output)]
        new_nodes.append(helper.make_node(node.op_type, inputs, outs, name=f"{prefix}/op", domain=node.domain,
                                          **{a.name: helper.get_attribute_value(a) for a in node.attribute}))
        j = list(node.output).index(qdq_out)
        yq, yd = f"{prefix}/y_q", f"{prefix}/y"
        new_nodes.append(helper.make_node(_Q, [outs[j], *q.input[1:]], [yq], name=yq, domain=q.domain,
                                          **{a.name: helper.get_attribute_value(a) for a in q.attribute}))
        new_nodes.append(helper.make_node(_DQ, [yq, *dq.input[1:]], [yd], name=yd, domain=dq.domain,
                                          **{a.name: helper.get_attribute_value(a) for a in dq.attribute}))
        shadow_outputs[tensor] = yd
    fm.graph.node.extend(new_nodes)
    float_outputs = {o for n in float_model.graph.node for o in n.output if o}
    declared = {o.name for o in fm.graph.output}
    for name in sorted(float_outputs | set(shadow_outputs.values())):
        if name not in declared:
            fm.graph.output.append(helper.make_empty_tensor_value_info(name))
    qm = copy.deepcopy(qg.model)
    declared = {o.name for o in qm.graph.output}
    for *_, dq in matched:
        if dq.output[0] not in declared:
            qm.graph.output.append(helper.make_empty_tensor_value_info(dq.output[0]))
    return fm, qm, shadow_outputs


def match_ops(float_model, qdq_model) -> tuple[list[tuple], list[str]]:
    """[(QDQ compute node, its quantized output, the float tensor, output Q, output DQ)] in
    network order, and the quantized outputs with no float tensor of the same name (a Relu
    the quantizer folded into the output Q is matched to the Relu's float output). The graph
    output is renamed by the quantizer (``output_QuantizeLinear_Input -> Q -> DQ -> output``):
    its DQ output carries the float name then."""
    qg = _QdqGraph(qdq_model)
    float_tensors = {o for n in float_model.graph.node for o in n.output}
    qdq_tensors = {o for n in qdq_model.graph.node for o in n.output}
    # the quantizer removes a Relu after an op and lets the op's output Q clamp at zero: the
    # quantized tensor then stands for the Relu's output, not for the op's own
    folded = {n.input[0]: n.output[0] for n in float_model.graph.node
              if n.op_type == "Relu" and n.output[0] not in qdq_tensors}
    matched, unmatched = [], []
    for node in qdq_model.graph.node:
        if node.op_type in (_Q, _DQ) or node.op_type in _MOVEMENT:
            continue
        for out in node.output:
            pair = qg.output_qdq(out) if out else None
            if pair is None:
                continue
            float_name = out if out in float_tensors else pair[1].output[0] if pair[1].output[0] in float_tensors \
                else None
            float_name = folded.get(float_name, float_name)
            if float_name is None:
                unmatched.append(out)
            else:
                matched.append((node, out, float_name, *pair))
    return matched, unmatched


def debug_onnx_qdq(float_path: Path, qdq_path: Path, inputs: np.ndarray, *, fmt: str = "ort-int8",
                   threads: int = 2, notes: Iterable[str] = (), output_peak: float | None = None) -> DebugReport:
    """Compare every matchable quantized op output of ``qdq_path`` with ``float_path``;
    ``output_peak``: the model output's PSNR peak (bundle output range hi - lo)."""
    import onnx

    float_model = onnx.load(str(float_path))
    qdq_model = onnx.load(str(qdq_path))
    qg = _QdqGraph(qdq_model)
    matched, unmatched = match_ops(float_model, qdq_model)
    if not matched:
        raise EdgeganError(f"no quantized tensor of '{Path(qdq_path).name}' has a float tensor of the same name in "
                           f"'{Path(float_path).name}'; debug a QDQ model made from that float ONNX")
    fm, qm, shadows = _build_probe_models(float_model, qg, matched)
    float_names = sorted({o.name for o in fm.graph.output})
    try:
        fvals = _run(fm.SerializeToString(), inputs, float_names, threads)
        qnames = [m[-1].output[0] for m in matched] + [o.name for o in qdq_model.graph.output]
        qvals = _run(qm.SerializeToString(), inputs, list(dict.fromkeys(qnames)), threads)
    except EdgeganError:
        raise
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
        raise ConversionError(f"onnxruntime could not run the probe models: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200]}") from None
    shapes = {k: v.shape for k, v in fvals.items()}
    shapes[_input_name(float_model)] = inputs.shape
    order = {id(n): i for i, n in enumerate(qdq_model.graph.node)}
    ops = []
    for node, _, tensor, q, dq in matched:
        ref, got = fvals[tensor], qvals[dq.output[0]]
        if ref.shape != got.shape:  # same name, another tensor: not a match
            unmatched.append(tensor)
            continue
        scale = _scalar(qg, q.input[1])
        zp = _scalar(qg, q.input[2]) if len(q.input) > 2 else None
        s = float(np.ravel(scale)[0]) if scale is not None and scale.size == 1 else None
        z = int(np.ravel(zp)[0]) if zp is not None and zp.size == 1 else None
        clipped = 0.0
        if s is not None and zp is not None:
            info = np.iinfo(zp.dtype)
            lo, hi = (info.min - (z or 0)) * s, (info.max - (z or 0)) * s
            clipped = float(np.mean((ref < lo - s / 2) | (ref > hi + s / 2)))
        wscales = [qg.array(src[1].input[1]) for i in node.input[1:2]
                   if (src := qg.dequantized_source(i)) is not None and src[0] == "weight"]
        shadow = fvals.get(shadows.get(tensor, ""))
        ops.append(OpNumerics(
            name=node.name or tensor, op_type=node.op_type, tensor=tensor, order=order[id(node)],
            sqnr_db=sqnr_db(ref, got), psnr_db=psnr_db(ref, got),
            introduced_sqnr_db=None if shadow is None else sqnr_db(ref, shadow),
            float_min=float(ref.min()), float_max=float(ref.max()), float_std=float(ref.std()),
            quant_min=float(got.min()), quant_max=float(got.max()),
            max_abs_err=float(np.max(np.abs(ref.astype(np.float64) - got))),
            scale=s, zero_point=z,
            weight_scale_min=float(wscales[0].min()) if wscales else None,
            weight_scale_max=float(wscales[0].max()) if wscales else None,
            clipped_fraction=clipped, macs=_macs(node, shapes, qg)))
    out_name = qdq_model.graph.output[0].name
    fout = fvals.get(out_name)
    qout = qvals[out_name]
    return DebugReport(
        format=fmt, backend="onnxruntime QDQ", float_model=str(float_path), quant_model=str(qdq_path),
        inputs=int(len(inputs)), output_sqnr_db=sqnr_db(fout, qout) if fout is not None else 0.0,
        output_psnr_db=psnr_db(fout, qout, output_peak) if fout is not None else 0.0, ops=ops, unmatched=unmatched,
        notes=list(notes))


def pre_process(float_path: Path, out_path: Path) -> Path:
    """ORT's quantization pre-processing (``quant_pre_process``, no symbolic shape inference) of
    ``float_path`` into ``out_path``: the one definition of the step ort-int8, ort-int8-mixed and
    the debugger quantize from. Raises whatever ORT raises."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(float_path), str(out_path), skip_symbolic_shape=True)
    return Path(out_path)


def preprocessed(float_path: Path, out_path: Path) -> Path:
    """:func:`pre_process`, or the graph itself when pre-processing fails (the converters then
    fall back the same way)."""
    try:
        return pre_process(float_path, out_path)
    except Exception:  # noqa: BLE001 - an optional optimisation, as in the converter
        return Path(float_path)


def calibration_reader(inputs: np.ndarray, input_name: str):
    """ORT's calibration reader over ``inputs``, one sample per batch (as the converter calibrates)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.rewind()

        def get_next(self):
            i = next(self._it, None)
            return None if i is None else {input_name: inputs[i: i + 1]}

        def rewind(self) -> None:
            self._it = iter(range(len(inputs)))

    return Reader()


def quantize_qdq(float_path: Path, out_path: Path, calibration: np.ndarray, *, per_channel: bool = True,
                 activation_type: str = "uint8", weight_type: str = "int8", reduce_range: bool = False,
                 calibration_method: str = "minmax", nodes_to_exclude: Sequence[str] = (),
                 op_types_to_exclude: Sequence[str] = ()) -> Path:
    """Static QDQ int8 of ``float_path`` with named nodes / op types left float (no ORT
    pre-processing, so every float tensor keeps its name and the debugger can match it)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = onnx.load(str(float_path))
    input_name = _input_name(model)
    excluded_types = set(op_types_to_exclude)
    op_types = sorted({n.op_type for n in model.graph.node} - excluded_types - {_Q, _DQ})

    qtype = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[calibration_method]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer warns through the root logger
    from ..export.unshare import unshared_copy

    unshared = Path(out_path).with_name(Path(out_path).stem + "_float_unshared.onnx")
    try:  # see edgegan.export.unshare: ORT's copies of shared biases can clash with activation names
        quantize_static(str(unshared_copy(float_path, unshared)), str(out_path),
                        calibration_reader(calibration, input_name), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=qtype[activation_type],
                        weight_type=qtype[weight_type], reduce_range=reduce_range, calibrate_method=method,
                        op_types_to_quantize=op_types, nodes_to_exclude=list(nodes_to_exclude),
                        extra_options={"CalibTensorRangeSymmetric": False})
    except Exception as exc:  # noqa: BLE001 - any quantizer failure becomes one line
        Path(out_path).unlink(missing_ok=True)
        raise ConversionError(f"onnxruntime quantize_static failed: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200] if str(exc) else ''}") from None
    finally:
        root.setLevel(level)
        unshared.unlink(missing_ok=True)
    return Path(out_path)
