"""The one definition of executorch-int8's PT2E quantization, used by the converter's lowering
worker (``edgegan.converters.executorch_worker``) and by the debugger's torch replay
(``quantdebug.executorch.quantize_twin``), so the replay's scales are the artifact's by
construction, not by keeping two copies in step.

Settings: the XNNPACK quantizer, symmetric, per-channel weights unless asked otherwise, min/max
observers calibrated on every calibration input one at a time (the program is batch 1). Nodes
traced from a module whose class name is in ``keep_float`` (read from each node's
``nn_module_stack``) lose their quantization annotation after the quantizer has annotated the
graph, so they stay float (XNNPACK runs them in fp32 between the int8 ops). The quantizer's own
``set_module_type(T, None)`` is not enough: its ``propagate_annotation`` step ignores module
filters and shares a ``mean``'s observer with its quantized input, so on the rewritten
resnet-sketch all 17 norms' ``mean(x)`` were requantized on the previous conv's output scale.

Heavy imports (torch, executorch, torchao) stay inside functions.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

ANNOTATION_KEY = "quantization_annotation"  # torchao.quantization.pt2e Q_ANNOTATION_KEY


def in_module_of(node, class_names: Sequence[str]) -> bool:
    """True when ``node`` was traced inside a module whose class is one of ``class_names``
    (matched on the class name without its module path)."""
    wanted = {name.rsplit(".", 1)[-1] for name in class_names}
    for entry in (node.meta.get("nn_module_stack") or {}).values():
        kind = entry[1] if isinstance(entry, (tuple, list)) and len(entry) > 1 else entry
        kind = kind if isinstance(kind, str) else f"{kind.__module__}.{kind.__qualname__}"
        if kind.rsplit(".", 1)[-1] in wanted:
            return True
    return False


def xnnpack_quantizer(per_channel: bool = True, keep_float: Sequence[str] = (), dynamic: bool = False):
    """The XNNPACK quantizer with executorch-int8's settings; nodes inside ``keep_float``
    modules end up unannotated (float). ``dynamic``: executorch-dynamic's (convs / linears only,
    their inputs quantized at run time; per-channel weights, which XNNPACK requires for it)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    names = tuple(keep_float)

    class KeepFloatQuantizer(XNNPACKQuantizer):
        def annotate(self, model):
            model = super().annotate(model)
            # after the quantizer's own propagation, which ignores module filters: it gives a
            # `mean` the observer of its (quantized) input, so a norm's mean was requantized
            for node in model.graph.nodes:
                if in_module_of(node, names):
                    node.meta.pop(ANNOTATION_KEY, None)
            share_layout_ops(model, names)
            return model

    if dynamic:
        return XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True))
    return KeepFloatQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=per_channel))


def _layout_op(node) -> bool:
    """pixel_shuffle, and a zero constant pad: exact in int8 on their input's scale."""
    import torch

    aten = torch.ops.aten
    if node.target == aten.pixel_shuffle.default:
        return True
    if node.target == aten.constant_pad_nd.default:
        return len(node.args) < 3 or node.args[2] == 0
    if node.target == aten.pad.default:
        mode = node.args[2] if len(node.args) > 2 else node.kwargs.get("mode", "constant")
        value = node.args[3] if len(node.args) > 3 else node.kwargs.get("value", None)
        return mode == "constant" and not value
    return False


def share_layout_ops(model, keep_float: Sequence[str] = ()) -> int:
    """Give pixel_shuffle and zero constant pads their input's int8 scale (the quantizer's own
    propagation skips them), so XNNPACK runs them on int8 data instead of converting to fp32
    and back around them (the sub-pixel ConvTranspose rewrite's pad and shuffle). Exact: a
    permutation, and a pad with the zero point. Returns how many were annotated."""
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, SharedQuantizationSpec

    n = 0
    for node in model.graph.nodes:
        if node.op != "call_function" or not _layout_op(node) or in_module_of(node, keep_float):
            continue
        prev = node.args[0]
        ann = getattr(prev, "meta", {}).get(ANNOTATION_KEY)
        if ann is None or ann.output_qspec is None or node.meta.get(ANNOTATION_KEY) is not None:
            continue
        shared = SharedQuantizationSpec(prev)
        node.meta[ANNOTATION_KEY] = QuantizationAnnotation(input_qspec_map={prev: shared}, output_qspec=shared,
                                                           _annotated=True)
        n += 1
    return n


def fold_relus(graph_module) -> int:
    """Drop each ReLU whose every user is a quantize with zero point == quant_min: quantizing
    already clamps a negative value to qmin, which dequantizes to 0.0, so ``q(relu(v)) ==
    q(v)`` for every v (exact). Where the ReLU follows float arithmetic (the InstanceNorm kept
    float) XNNPACK otherwise runs it as an fp32 clamp over the whole tensor before the convert.
    Returns how many were dropped."""
    import torch

    aten, n = torch.ops.aten, 0
    relus = (aten.relu.default, aten.relu_.default)
    for node in list(graph_module.graph.nodes):
        if node.op != "call_function" or node.target not in relus or not node.users:
            continue
        if not all("quantize_per_tensor" in str(u.target) and "dequantize" not in str(u.target)
                   and len(u.args) >= 5 and int(u.args[2]) == int(u.args[3]) for u in node.users):
            continue  # args: (x, scale, zero_point, quant_min, quant_max, dtype)
        node.replace_all_uses_with(node.args[0])
        graph_module.graph.erase_node(node)
        n += 1
    if n:
        graph_module.graph.lint()
        graph_module.recompile()
    return n


@dataclasses.dataclass
class Pt2eResult:
    """``converted``: the quantize/dequantize graph; ``reference``: a copy of the calibrated
    float graph (observers pass values through) when asked for, else None."""

    converted: Any
    reference: Any = None
    relus_folded: int = 0


def pt2e_quantize(graph_module, calibration: np.ndarray, *, per_channel: bool = True,
                  keep_float: Sequence[str] = (), keep_reference: bool = False, dynamic: bool = False,
                  fold_relu: bool = False) -> Pt2eResult:
    """PT2E int8 of an exported program's module (``ExportedProgram.module()``) exactly as
    executorch-int8 makes it; ``fold_relu``: ReLUs before a clamping quantize dropped
    (``fold_relus``)."""
    import copy

    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    calibration = np.ascontiguousarray(calibration, dtype=np.float32)
    prepared = prepare_pt2e(graph_module, xnnpack_quantizer(per_channel, keep_float, dynamic))
    with torch.no_grad():
        for i in range(len(calibration)):
            prepared(torch.from_numpy(calibration[i: i + 1]))
    reference = copy.deepcopy(prepared) if keep_reference else None
    converted = convert_pt2e(prepared)
    folded = fold_relus(converted) if fold_relu else 0
    return Pt2eResult(converted=converted, reference=reference, relus_folded=folded)
