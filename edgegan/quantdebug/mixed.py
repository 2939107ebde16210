"""Selective precision for ORT QDQ: keep chosen ops float, or search for the fewest.

``auto``: quantize everything (minus the ops named by type or name), measure the output PSNR vs
float; while it is below the target, run the debugger on the current model and return to float
the op with the most introduced noise per MAC it would take out of int8 (ops without MACs --
norms, pads, adds -- cost nothing in int8 MAC share and go first when they are as bad), then
re-quantize and re-measure; a step that does not raise the output PSNR is undone (the ranking
is a guess: e.g. an op whose output a quantized consumer requantizes anyway gains nothing).
Each step is one quantization + one debugger run, so the search stops after ``max_steps``
tries; whether the target was met is recorded, never assumed.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import ConfigError
from .onnx_qdq import _QdqGraph, _run, debug_onnx_qdq, quantize_qdq

log = logging.getLogger(__name__)

MAC_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
# op types ORT's CPU provider runs in int8 once quantized (ConvTranspose stays float between Q/DQ)
ORT_INT8_MAC_OPS = ("Conv", "Gemm", "MatMul")
# a step of the search that gains less than this is undone (the op stays int8)
MIN_GAIN_DB = 0.05


@dataclasses.dataclass
class KeptFloat:
    name: str
    op_type: str
    macs: int
    why: str


@dataclasses.dataclass
class MixedResult:
    path: Path
    kept_float: list[KeptFloat]
    psnr_db: float
    target_psnr_db: Optional[float]
    met_target: Optional[bool]
    steps: int
    int8_mac_fraction: float
    total_macs: int
    float_tensors: list[str] = dataclasses.field(default_factory=list)

    def quantization_record(self) -> dict:
        """What bundle.json records: exactly which ops stayed float and the int8 share of MACs."""
        return {
            "kept_float": [dataclasses.asdict(k) for k in self.kept_float],
            "kept_float_count": len(self.kept_float),
            "float_tensors": list(self.float_tensors),
            "int8_mac_fraction": round(self.int8_mac_fraction, 4),
            "total_macs": self.total_macs,
            "search": {"target_psnr_db": self.target_psnr_db, "psnr_db_on_calibration": round(self.psnr_db, 2),
                       "met_target": self.met_target, "steps": self.steps},
        }


def node_macs(float_path: Path, sample: np.ndarray) -> dict[str, tuple[str, int]]:
    """node name -> (op type, MACs per sample) for every named compute node (one float run
    with every intermediate as an output, so shapes are real, not inferred)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(float_path))
    declared = {o.name for o in model.graph.output}
    for n in model.graph.node:
        for o in n.output:
            if o and o not in declared:
                model.graph.output.append(helper.make_empty_tensor_value_info(o))
    names = [o.name for o in model.graph.output]
    vals = _run(model.SerializeToString(), sample[:1], names, threads=1)
    shapes = {k: v.shape for k, v in vals.items()}
    shapes[next(i.name for i in model.graph.input)] = sample[:1].shape
    weights = {i.name: tuple(numpy_helper.to_array(i).shape) for i in model.graph.initializer}
    out = {}
    for n in model.graph.node:
        macs = 0
        w = weights.get(n.input[1]) if n.op_type in MAC_OPS and len(n.input) > 1 else None
        if w is not None and n.output[0] in shapes:
            if n.op_type == "Conv":
                macs = int(np.prod(shapes[n.output[0]][1:]) * np.prod(w[1:]))
            elif n.op_type == "ConvTranspose" and n.input[0] in shapes:
                macs = int(np.prod(shapes[n.input[0]][1:]) * np.prod(w[1:]))
            else:
                macs = int(np.prod(shapes[n.output[0]][1:]) * w[0])
        out[n.name] = (n.op_type, macs)
    return out


def output_psnr(float_path: Path, quant_path: Path, inputs: np.ndarray, threads: int = 2, peak: float = 2.0) -> float:
    """Output PSNR of the quantized model vs float, as export's verification measures it
    (``peak``: the model's output range hi - lo)."""
    from ..verify.host import fidelity

    import onnx

    name = onnx.load(str(float_path)).graph.output[0].name
    ref = _run(str(float_path), inputs, [name], threads)[name]
    got = _run(str(quant_path), inputs, [name], threads)[name]
    p = fidelity(got, ref, peak)["psnr_db"]
    return float("inf") if p is None else float(p)


def bypass_tensors(model, tensors: Sequence[str]):
    """Copy of a QDQ model where each tensor in ``tensors`` (its pre-Q name, or the float name a
    graph output keeps) is no longer quantized: its QuantizeLinear -> DequantizeLinear pairs
    are removed and their readers read the float tensor. The quantizer folds a Relu into the
    Q of its producer (zero point at the bottom of the range, so the Q clamps at 0); such a Q
    is replaced by a Relu, so the clamp stays and only the rounding goes."""
    import copy

    from onnx import helper, numpy_helper

    m = copy.deepcopy(model)
    graph = m.graph
    outputs = {o.name for o in graph.output}
    inits = {i.name: i for i in graph.initializer}
    for tensor in tensors:
        by_out = {o: n for n in graph.node for o in n.output}
        if not any(n.op_type == "QuantizeLinear" and n.input[0] == tensor for n in graph.node):
            dq = by_out.get(tensor)
            q = by_out.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is None or q.op_type != "QuantizeLinear":
                continue
            tensor = q.input[0]
        qs = [n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] == tensor]
        dqs = [n for n in graph.node if n.op_type == "DequantizeLinear" and any(n.input[0] == q.output[0] for q in qs)]
        new, src = [], tensor
        zp = qs[0].input[2] if qs and len(qs[0].input) > 2 else ""
        if zp in inits:
            z = numpy_helper.to_array(inits[zp])
            if z.size == 1 and int(z.ravel()[0]) == int(np.iinfo(z.dtype).min):
                src = f"{tensor}/float_relu"
                new.append(helper.make_node("Relu", [tensor], [src], name=src))
        rename = {}
        for dq in dqs:
            if dq.output[0] in outputs:
                new.append(helper.make_node("Identity", [src], [dq.output[0]], name=f"{dq.output[0]}/float"))
            else:
                rename[dq.output[0]] = src
        drop = {id(n) for n in qs + dqs}
        nodes = []
        for n in graph.node:
            if id(n) in drop:
                continue
            for k, i in enumerate(n.input):
                if i in rename:
                    n.input[k] = rename[i]
            nodes.append(n)
            if tensor in n.output:  # the new nodes right after the producer keep the order topological
                nodes.extend(new)
                new = []
        nodes.extend(new)  # a graph input has no producer
        del graph.node[:]
        graph.node.extend(nodes)
    return m


def int8_mac_nodes(model) -> set[str]:
    """Names of the MAC nodes ORT's CPU provider can fuse into an int8 kernel: activation and
    weight from DequantizeLinear, output read only by QuantizeLinear."""
    producer = {o: n.op_type for n in model.graph.node for o in n.output}
    readers: dict[str, list[str]] = {}
    for n in model.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n.op_type)
    out = set()
    for n in model.graph.node:
        if n.op_type in ORT_INT8_MAC_OPS and len(n.input) > 1 \
                and producer.get(n.input[0]) == "DequantizeLinear" and producer.get(n.input[1]) == "DequantizeLinear" \
                and readers.get(n.output[0]) and set(readers[n.output[0]]) == {"QuantizeLinear"}:
            out.add(n.name)
    return out


def quantize_mixed(float_path: Path, out_path: Path, calibration: np.ndarray, *, keep_op_types: Sequence[str] = (),
                   keep_nodes: Sequence[str] = (), auto: bool = True, target_psnr_db: float = 38.0,
                   max_steps: int = 16, eval_inputs: int = 8, threads: int = 2, workdir: Optional[Path] = None,
                   output_peak: float = 2.0, **quant_options) -> MixedResult:
    """QDQ int8 of ``float_path`` with ops kept float by type and by name (ORT's own exclusion:
    the op is not quantized), then, with ``auto``, tensors taken out of int8 one at a time
    (worst introduced noise per int8 MAC lost first, each step re-measured and undone when it
    does not raise the output PSNR) until ``target_psnr_db`` is met."""
    import onnx

    macs = node_macs(float_path, calibration)
    unknown = [n for n in keep_nodes if n not in macs]
    if unknown:
        raise ConfigError(f"keep_nodes names no node of the graph: {', '.join(unknown)} (nodes are e.g. "
                          f"{', '.join(sorted(macs)[:6])}); `edgegan debug-quant` lists them")
    kept: dict[str, KeptFloat] = {}
    for name, (op, m) in macs.items():
        if op in keep_op_types:
            kept[name] = KeptFloat(name, op, m, f"op type {op}")
    for name in keep_nodes:
        kept[name] = KeptFloat(name, macs[name][0], macs[name][1], "named")
    evals = calibration[:eval_inputs]
    workdir = Path(workdir or Path(out_path).parent)
    trial = workdir / (Path(out_path).stem + ".trial.onnx")
    quantize_qdq(float_path, out_path, calibration, nodes_to_exclude=sorted(kept), **quant_options)
    model = onnx.load(str(out_path))
    psnr = output_psnr(float_path, out_path, evals, threads, output_peak)
    total = max(1, sum(m for _, m in macs.values()))
    float_tensors: list[str] = []
    steps, tried = 0, set()

    while auto and psnr < target_psnr_db and steps < max_steps:
        report = debug_onnx_qdq(float_path, out_path, evals[:4], threads=threads)
        before = int8_mac_nodes(model)
        candidates = [op for op in report.ops if op.name not in tried and op.introduced_sqnr_db is not None]
        if not candidates:
            break

        def options(op) -> list[list[str]]:
            """What to take out of int8 for this op: its output; else the activations it reads
            (an InstanceNorm amplifies the rounding of its input); else both."""
            node = next((n for n in model.graph.node if n.name == op.name), None)
            inputs = [] if node is None else [src[1] for i in node.input if i
                                              and (src := _QdqGraph(model).dequantized_source(i)) and src[0] == "act"]
            return [t for t in ([op.tensor], inputs, [op.tensor, *inputs]) if t]

        def lost_macs(tensors: list[str]) -> int:
            return sum(macs.get(n, ("", 0))[1] for n in before - int8_mac_nodes(bypass_tensors(model, tensors)))

        # cost only for the few worst: each costs a graph copy
        shortlist = sorted(candidates, key=lambda op: op.introduced_sqnr_db)[:6]
        pick = max(shortlist, key=lambda op: 10 ** (-op.introduced_sqnr_db / 10.0)
                   / (0.02 + min(lost_macs(t) for t in options(op)) / total))
        tried.add(pick.name)
        for tensors in options(pick):
            if steps >= max_steps:
                break
            steps += 1
            candidate = bypass_tensors(model, tensors)
            onnx.save(candidate, str(trial))
            got = output_psnr(float_path, trial, evals, threads, output_peak)
            log.info("mixed step %d: %s float -> %.2f dB (was %.2f)", steps, tensors, got, psnr)
            if got <= psnr + MIN_GAIN_DB:  # the ranking's guess did not pay: the tensors stay int8
                continue
            model, psnr = candidate, got
            float_tensors.extend(t for t in tensors if t not in float_tensors)
            trial.replace(out_path)
            break
    trial.unlink(missing_ok=True)
    # ops that lost int8 to the search: MAC ops no longer fusable, plus the producers of float tensors
    int8_nodes = int8_mac_nodes(model)
    producers = {o: n for n in model.graph.node for o in n.output}
    for tensor in float_tensors:
        node = producers.get(tensor)
        if node is not None and node.name not in kept:
            kept[node.name] = KeptFloat(node.name, node.op_type, macs.get(node.name, ("", 0))[1],
                                        f"auto: output {tensor} left float")
    for name, (op, m) in macs.items():
        if op in ORT_INT8_MAC_OPS and name not in int8_nodes and name not in kept:
            kept[name] = KeptFloat(name, op, m, "auto: reads or writes a tensor left float")
    int8 = sum(macs[n][1] for n in int8_nodes if n in macs)
    return MixedResult(Path(out_path), list(kept.values()), psnr, target_psnr_db if auto else None,
                       (psnr >= target_psnr_db) if auto else None, steps, int8 / total, int(total),
                       float_tensors)
