"""Give a narrow convolution zero output channels up to a width ORT's int8 kernels run fast, and
slice them off again (float-exact).

Why: a generator's last conv has 1-4 output channels (an image, or its sub-pixel phases). ONNX
Runtime's int8 conv (QLinearConv, MLAS) is slow there: a 64->3 7x7 conv on 64x64 took 7.8 ms in
int8 and 2.2 ms with 13 zero output channels added (then sliced off); 16->3 7x7 1.09 -> 0.89 ms;
32->4 3x3 0.31 -> 0.27 ms (benchmarks/narrow_conv.py, 2 threads; zero channels up to 8 gained
little in a one-off check, so the width is 16). Float convs do not gain, so only the int8 path uses it. The
added channels have zero weights and bias: their outputs are exactly 0, inside any calibrated
range (ORT's calibration always includes 0), so the real channels' quantization is unchanged and
the Slice runs on the uint8 tensor.
"""
from __future__ import annotations

from pathlib import Path

from .graph_index import GraphIndex

WIDTH = 16
# the record on the artifact (``rewrites``), followed by " xN"
REWRITE = f"conv with < {WIDTH} output channels widened to {WIDTH} (zero channels, sliced off)"


def widen_narrow_convs(src: Path, dst: Path, width: int = WIDTH) -> int:
    """Write ``src`` to ``dst`` with every ungrouped Conv of fewer than ``width`` output channels
    (weights an initializer) widened to ``width`` with zero channels and followed (after its Relu /
    Clip, if one alone reads it) by a Slice back to its real channels; returns how many widened."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    index = GraphIndex.of(graph)
    widened = 0
    for conv in [n for n in graph.node if n.op_type == "Conv"]:
        if any(a.name == "group" and a.i != 1 for a in conv.attribute) or conv.input[1] not in index.initializers:
            continue
        weight = numpy_helper.to_array(index.initializers[conv.input[1]])
        channels = weight.shape[0]
        if channels >= width or index.uses(conv.input[1]) != 1:
            continue
        bias = None
        if len(conv.input) > 2 and conv.input[2]:
            if conv.input[2] not in index.initializers or index.uses(conv.input[2]) != 1:
                continue
            bias = numpy_helper.to_array(index.initializers[conv.input[2]])
        wide_w = np.concatenate([weight, np.zeros((width - channels, *weight.shape[1:]), weight.dtype)])
        wide_b = np.zeros(width, weight.dtype) if bias is None else np.concatenate(
            [bias, np.zeros(width - channels, bias.dtype)])
        # the crop goes after a Relu / Clip that alone reads the conv (elementwise, so they commute):
        # the quantizer then still folds the activation into the conv's output range
        last = conv
        readers = index.consumers.get(conv.output[0], [])
        if len(readers) == 1 and readers[0].op_type in ("Relu", "Clip") and conv.output[0] not in index.outputs:
            last = readers[0]
        name = last.output[0]
        stem = f"{conv.name or conv.output[0]}_wide"
        inits = [numpy_helper.from_array(wide_w, f"{stem}_w"), numpy_helper.from_array(wide_b, f"{stem}_b"),
                 numpy_helper.from_array(np.array([0], np.int64), f"{stem}_start"),
                 numpy_helper.from_array(np.array([channels], np.int64), f"{stem}_end"),
                 numpy_helper.from_array(np.array([1], np.int64), f"{stem}_axis")]
        for old in {conv.input[1], *(conv.input[2:3] if bias is not None else [])}:
            graph.initializer.remove(index.initializers[old])
        graph.initializer.extend(inits)
        data = conv.input[0]
        del conv.input[:]
        conv.input.extend([data, f"{stem}_w", f"{stem}_b"])
        last.output[0] = f"{stem}_out"
        crop = helper.make_node("Slice", [last.output[0], f"{stem}_start", f"{stem}_end", f"{stem}_axis"], [name],
                                name=f"{stem}_slice")
        graph.node.insert(list(graph.node).index(last) + 1, crop)
        widened += 1
        index = GraphIndex.of(graph)
    if widened:
        del graph.value_info[:]  # the conv's output shape changed; shapes are re-inferred downstream
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return widened

