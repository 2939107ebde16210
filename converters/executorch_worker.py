"""Subprocess entry: lower a saved ExportedProgram to an ExecuTorch .pte and describe it.

    python -m edgegan.converters.executorch_worker JOB.json

The job names the ``torch.export`` program (.pt2, saved by the parent), the mode (``fp32`` or
``int8`` or ``dynamic``), the calibration inputs (.npy) and the output path. int8 is PT2E: the XNNPACK
quantizer (symmetric, per-channel weights unless the job says per-tensor), calibrated on every
calibration input, converted, re-exported, then lowered like fp32 with the XNNPACK partitioner.
Writes the .pte atomically and ``<job>.report.json`` (what ran where, int8 share of the MACs).
Exit 1 with a one-line reason on stderr when a step refuses the model.

It runs in a child so that executorch/torchao (their imports print, register global ops and
start thread pools) never load into the process that holds the user's model.
"""
from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

import numpy as np

from ..util.files import atomic_write

DELEGATE_CALL = "executorch_call_delegate"
# graph plumbing that is neither computed by XNNPACK nor by a portable kernel
_PLUMBING = {"getitem", DELEGATE_CALL}
_CONVS = ("convolution", "conv2d", "conv_transpose2d")
_LINEARS = ("linear", "addmm", "mm")


def op_name(target) -> str:
    """``aten.convolution.default`` -> ``aten.convolution`` (overload names add nothing here)."""
    name = getattr(target, "__name__", None) or str(target)
    name = str(getattr(target, "_name", name))  # OpOverload/EdgeOpOverload: "aten::convolution" style
    name = name.replace("::", ".")
    for suffix in (".default", ".Tensor", ".out"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _shape(node) -> list:
    val = node.meta.get("val") if hasattr(node, "meta") else None
    return list(getattr(val, "shape", []) or [])


def _numel(shape) -> int:
    return int(np.prod([int(d) for d in shape])) if shape else 0


def _is_dequant(node) -> bool:
    return getattr(node, "op", "") == "call_function" and "dequantize" in op_name(node.target)


def node_macs(node) -> int:
    """Multiply-accumulates of one convolution / linear node (0 for anything else)."""
    name = op_name(node.target).split(".")[-1]
    if name in _CONVS and len(node.args) >= 2:
        weight = _shape(node.args[1])
        if len(weight) < 2:
            return 0
        transposed = bool(node.args[6]) if name == "convolution" and len(node.args) > 6 else name == "conv_transpose2d"
        if transposed:  # weight [Cin, Cout/groups, k...]: every input element meets Cout/groups * k taps
            return _numel(_shape(node.args[0])) * _numel(weight[1:])
        return _numel(_shape(node)) * _numel(weight[1:])  # weight [Cout, Cin/groups, k...]
    if name in _LINEARS:
        out = _shape(node)
        # linear(x, W[out, in][, b]) / mm(x, W[in, out]) / addmm(b, x, W)
        inner = _shape(node.args[1] if name == "linear" else node.args[-1])
        k = inner[-1] if name == "linear" else (inner[0] if inner else 0)
        return _numel(out) * int(k)
    return 0


def _weight_source(node):
    """The node a conv/linear weight comes from (through a dequantize, if any)."""
    name = op_name(node.target).split(".")[-1]
    idx = 1 if name in _CONVS or name == "linear" else len(node.args) - 1
    return node.args[idx] if len(node.args) > idx else None


def describe(edge_program) -> dict:
    """Ops XNNPACK runs vs ops left on portable kernels (counts by op name), delegate calls, and
    the share of conv/linear MACs XNNPACK runs in int8 (both operands dequantized from int8:
    XNNPACK fuses dq -> op -> q into an int8 kernel; on portable kernels the same pattern runs
    in float between the dequantize and the quantize, so it does not count)."""
    gm = edge_program.graph_module
    delegated, portable = collections.Counter(), collections.Counter()
    calls = 0
    macs = {"int8": 0, "float": 0}

    def visit(graph, on_xnnpack: bool) -> None:
        for node in graph.nodes:
            if node.op != "call_function":
                continue
            name = op_name(node.target)
            if name.split(".")[-1] in _PLUMBING:
                continue
            (delegated if on_xnnpack else portable)[name] += 1
            m = node_macs(node)
            if m:
                w = _weight_source(node)
                int8 = on_xnnpack and _is_dequant(node.args[0]) and w is not None and _is_dequant(w)
                macs["int8" if int8 else "float"] += m

    for node in gm.graph.nodes:
        if node.op == "call_function" and op_name(node.target).split(".")[-1] == DELEGATE_CALL:
            calls += 1
            lowered = getattr(gm, node.args[0].target)
            visit(lowered.original_module.graph_module.graph, True)
    visit(gm.graph, False)
    total = macs["int8"] + macs["float"]
    # quantize/dequantize nodes are conversions, not compute: listed apart from the op counts
    qdq = lambda c: {k: v for k, v in c.items() if "quantize" in k}  # noqa: E731
    comp = lambda c: dict(sorted(((k, v) for k, v in c.items() if "quantize" not in k), key=lambda kv: -kv[1]))  # noqa: E731
    return {
        "delegate_calls": calls,
        "ops_delegated": comp(delegated),
        "ops_portable": comp(portable),
        "quant_ops_delegated": qdq(delegated),
        "quant_ops_portable": qdq(portable),
        "fully_delegated": calls > 0 and not comp(portable),
        "macs": total,
        "int8_mac_fraction": round(macs["int8"] / total, 4) if total else 0.0,
    }


def _quantize(ep, calibration: np.ndarray, per_channel: bool, dynamic: bool = False, fold_relu: bool = False):
    """PT2E int8 with executorch-int8's settings (one definition, shared with the debugger's
    replay); a rewritten InstanceNorm stays float inside XNNPACK. Returns the re-exported
    program and how many ReLUs were folded into the quantize after them."""
    import torch

    from ..quantdebug.pt2e import pt2e_quantize
    from .executorch_rewrite import KEEP_FLOAT

    if dynamic:  # only the convs / linears are annotated; one pass to trace the observers
        done = pt2e_quantize(ep.module(), calibration[:1], dynamic=True)
    else:
        done = pt2e_quantize(ep.module(), calibration, per_channel=per_channel, keep_float=KEEP_FLOAT,
                             fold_relu=fold_relu)
    example = torch.from_numpy(np.ascontiguousarray(calibration[:1]))
    return torch.export.export(done.converted, (example,)), done.relus_folded


def convert(job: dict) -> dict:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    ep = torch.export.load(job["program"])
    folded = 0
    if job["mode"] in ("int8", "dynamic"):  # per_channel: static int8 only (dynamic is always per channel)
        calibration = np.load(job["calibration"], allow_pickle=False).astype(np.float32)
        ep, folded = _quantize(ep, calibration, job.get("per_channel", True), dynamic=job["mode"] == "dynamic",
                               fold_relu=bool(job.get("fold_relu", False)))
    elif job["mode"] != "fp32":
        raise ValueError(f"unknown mode {job['mode']}")
    edge = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])
    report = describe(edge.exported_program())
    if job.get("fold_relu"):
        report["relus_folded_into_quantize"] = folded
    atomic_write(job["out"], edge.to_executorch().buffer)
    return report


def main() -> int:
    job_path = Path(sys.argv[1])
    job = json.loads(job_path.read_text())
    try:
        report = convert(job)
    except Exception as exc:  # noqa: BLE001 - everything becomes one line for the parent
        msg = " ".join(str(exc).split())[:400]
        print(f"{type(exc).__name__}: {msg}", file=sys.stderr)
        return 1
    job_path.with_suffix(".report.json").write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
