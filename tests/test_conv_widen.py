"""edgegan.export.conv_widen: narrow convs get zero output channels up to 16 and a Slice back.
Checked on real ONNX Runtime sessions: the float graph computes the same values, the int8 graph
quantized from it gives the same output as the unwidened one, and ORT runs the crop on uint8."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from edgegan.export.conv_widen import WIDTH, widen_narrow_convs  # noqa: E402


def _graph(path, grouped: bool = False):
    """x(8ch) -> Conv 8->3 k3 (bias) -> Relu -> Conv 3->3 k1 (no bias, or grouped) -> Tanh,
    plus a wide Conv 8->16 whose output is a second graph output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((3, 8, 3, 3)).astype(np.float32) * 0.3, "w1"),
             numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b1"),
             numpy_helper.from_array(rng.standard_normal((3, 1 if grouped else 3, 1, 1)).astype(np.float32), "w2"),
             numpy_helper.from_array(rng.standard_normal((16, 8, 3, 3)).astype(np.float32) * 0.3, "w3")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="narrow"),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="second", **({"group": 3} if grouped else {})),
             helper.make_node("Tanh", ["c2"], ["y"]),
             helper.make_node("Conv", ["x", "w3"], ["z"], pads=[1, 1, 1, 1], name="wide")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 12, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 12, 12]),
                               helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 16, 12, 12])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _run(path, x):
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [np.concatenate(o) for o in zip(*(s.run(None, {"x": x[i:i + 1]}) for i in range(len(x))))]


def _inputs(n=6):
    return np.random.default_rng(1).standard_normal((n, 8, 12, 12)).astype(np.float32)


def test_float_graph_is_unchanged_and_only_narrow_ungrouped_convs_widen(tmp_path):
    import onnx

    src = _graph(tmp_path / "g.onnx")
    assert widen_narrow_convs(src, tmp_path / "w.onnx") == 2  # narrow 8->3 and 3->3 (no bias); not the wide one
    model = onnx.load(str(tmp_path / "w.onnx"))
    shapes = {i.name: list(i.dims) for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert [shapes[c.input[1]][0] for c in convs] == [WIDTH, WIDTH, 16]
    assert sum(n.op_type == "Slice" for n in model.graph.node) == 2
    x = _inputs()
    for ref, got in zip(_run(src, x), _run(tmp_path / "w.onnx", x)):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)
    # a grouped (depthwise) conv is left alone: its zero channels would need zero input groups
    grouped = _graph(tmp_path / "gg.onnx", grouped=True)
    assert widen_narrow_convs(grouped, tmp_path / "gw.onnx") == 1


def test_int8_output_equals_the_unwidened_int8_and_the_crop_runs_on_uint8(tmp_path):
    import onnx
    import onnxruntime as ort

    from edgegan.quantdebug.onnx_qdq import quantize_qdq

    src = _graph(tmp_path / "g.onnx")
    widen_narrow_convs(src, tmp_path / "w.onnx")
    calib = _inputs(16)
    quantize_qdq(src, tmp_path / "q.onnx", calib, per_channel=True)
    quantize_qdq(tmp_path / "w.onnx", tmp_path / "qw.onnx", calib, per_channel=True)
    x = _inputs()
    ref, got = _run(tmp_path / "q.onnx", x), _run(tmp_path / "qw.onnx", x)
    # the zero channels are exactly 0, inside the calibrated range (which always holds 0): the real
    # channels keep their scales, so the int8 model computes the same integers
    for r, g in zip(ref, got):
        np.testing.assert_array_equal(g, r)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(tmp_path / "qw.onnx"), so, providers=["CPUExecutionProvider"])
    graph = onnx.load(str(tmp_path / "opt.onnx")).graph
    producer = {o: n for n in graph.node for o in n.output}
    slices = [n for n in graph.node if n.op_type == "Slice"]
    assert len(slices) == 2
    # each crop reads the int8 conv's output directly, not a DequantizeLinear of it
    assert all(producer[s.input[0]].op_type == "QLinearConv" for s in slices), [producer[s.input[0]].op_type
                                                                               for s in slices]
