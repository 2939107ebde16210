"""edgegan.export.nhwc_interleave: a DCR DepthToSpace spelled channels-last so ORT's layout
transposes around its int8 convs cancel. Checked on real ONNX Runtime sessions: the float graph
computes what ORT's own DepthToSpace computes, the int8 graph quantized from it gives the same
integers as the one quantized from the original, and ORT's optimized int8 graph keeps one
transpose per interleave instead of a DepthToSpace between two layout transposes."""
from __future__ import annotations

import collections

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from edgegan.export.nhwc_interleave import interleave_nhwc  # noqa: E402

C, H, W, B = 6, 5, 7, 2


def _graph(path, mode: str = "DCR"):
    """x(4ch, HxW) -> Conv 3x3 pad 1 -> C*B*B channels -> Relu -> DepthToSpace(B, mode) -> crop one
    pixel off each border (two Slices, one per axis, as the sub-pixel rewrite exports) -> Conv 3x3."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    ints = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)  # noqa: E731
    inits = [numpy_helper.from_array(rng.standard_normal((C * B * B, 4, 3, 3)).astype(np.float32) * 0.3, "w1"),
             numpy_helper.from_array(rng.standard_normal(C * B * B).astype(np.float32) * 0.1, "b1"),
             numpy_helper.from_array(rng.standard_normal((5, C, 3, 3)).astype(np.float32) * 0.3, "w2"),
             ints("one", [1]), ints("end_h", [H * B - 1]), ints("end_w", [W * B - 1]), ints("ax2", [2]), ints("ax3", [3])]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="phases"),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("DepthToSpace", ["r1"], ["up"], blocksize=B, mode=mode, name="shuffle"),
             helper.make_node("Slice", ["up", "one", "end_h", "ax2", "one"], ["crop_h"], name="crop_h"),
             helper.make_node("Slice", ["crop_h", "one", "end_w", "ax3", "one"], ["crop"], name="crop_w"),
             helper.make_node("Conv", ["crop", "w2"], ["y"], pads=[1, 1, 1, 1], name="next")]
    out = [1, 5, H * B - 2, W * B - 2]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, H, W])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _run(path, x):
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])


def _inputs(n=6):
    return np.random.default_rng(1).standard_normal((n, 4, H, W)).astype(np.float32)


def _optimized_ops(path) -> collections.Counter:
    """Op types of the graph ORT runs (all optimizations, channels-last layout for int8 convs)."""
    import tempfile
    from pathlib import Path

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return collections.Counter(n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node)


def test_float_graph_computes_what_depth_to_space_computes(tmp_path):
    import onnx

    src = _graph(tmp_path / "g.onnx")
    assert interleave_nhwc(src, tmp_path / "n.onnx") == 1
    ops = collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "n.onnx")).graph.node)
    assert ops["DepthToSpace"] == 0 and ops["Slice"] == 1  # the two crops merged into one
    x = _inputs()
    np.testing.assert_array_equal(_run(tmp_path / "n.onnx", x), _run(src, x))  # copies only: bit-equal


def test_crd_order_is_left_alone(tmp_path):
    import onnx

    src = _graph(tmp_path / "g.onnx", mode="CRD")
    assert interleave_nhwc(src, tmp_path / "n.onnx") == 0
    ops = collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "n.onnx")).graph.node)
    assert ops["DepthToSpace"] == 1 and ops["Slice"] == 2


def test_int8_integers_unchanged_and_layout_transposes_cancel(tmp_path):
    from edgegan.quantdebug.onnx_qdq import quantize_qdq

    src = _graph(tmp_path / "g.onnx")
    interleave_nhwc(src, tmp_path / "n.onnx")
    calib = _inputs(16)
    quantize_qdq(src, tmp_path / "q.onnx", calib, per_channel=True)
    quantize_qdq(tmp_path / "n.onnx", tmp_path / "qn.onnx", calib, per_channel=True)
    x = _inputs()
    # reshape / transpose / slice keep their input's scale: the same uint8 values move to the same places
    np.testing.assert_array_equal(_run(tmp_path / "qn.onnx", x), _run(tmp_path / "q.onnx", x))
    before, after = _optimized_ops(tmp_path / "q.onnx"), _optimized_ops(tmp_path / "qn.onnx")
    assert before["QLinearConv"] == after["QLinearConv"] == 2
    # before: input->NHWC, NHWC->NCHW after the first conv, DepthToSpace, NCHW->NHWC before the second,
    # NHWC->NCHW at the output. After: the input / output transposes and the interleave itself.
    assert before["DepthToSpace"] == 1 and before["Transpose"] == 4
    assert after["DepthToSpace"] == 0 and after["Transpose"] == 3
    assert after["Slice"] == 1
