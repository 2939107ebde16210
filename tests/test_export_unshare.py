"""Unsharing float initializers before ORT quantizes (edgegan.export.unshare), on a real
onnxruntime.quantization run of a graph built to hit the name clash that broke resnet-sketch."""
from __future__ import annotations

import numpy as np
import pytest

from edgegan.export.unshare import unshare_float_initializers, unshared_copy


def _clash_graph(path):
    """Two convs share bias ``b``; a Transpose output is named ``b0``, the name ORT gives its copy
    of ``b`` (the dynamo exporter's ``val_25`` / ``val_255`` in resnet-sketch's sub-pixel graph)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w2"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "w2", "b"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("Transpose", ["c1"], ["b0"], name="t", perm=[0, 1, 3, 2]),
             helper.make_node("Add", ["b0", "c2"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "clash", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _quantize(src, dst, x):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(x)

        def get_next(self):
            v = next(self.it, None)
            return None if v is None else {"x": v[None]}

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def _run(path, x):
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {"x": v[None]})[0] for v in x])


def test_unsharing_lets_ort_quantize_a_graph_whose_bias_copy_clashes(tmp_path):
    import onnx

    _clash_graph(tmp_path / "f.onnx")
    x = np.random.default_rng(1).uniform(-1, 1, (16, 3, 8, 8)).astype(np.float32)
    # the ORT bug itself (a canary: when onnxruntime fixes its copy naming this raise goes away)
    with pytest.raises(ValueError, match="shared mode is not supported for weight"):
        _quantize(tmp_path / "f.onnx", tmp_path / "bad.onnx", x)
    fixed = unshared_copy(tmp_path / "f.onnx", tmp_path / "u.onnx")
    assert fixed == tmp_path / "u.onnx"
    ref, same = _run(tmp_path / "f.onnx", x), _run(fixed, x)
    assert np.array_equal(ref, same)  # copies are the same numbers: float-exact
    g = onnx.load(str(fixed)).graph
    readers = [i for n in g.node for i in n.input if i in {t.name for t in g.initializer}]
    assert len(readers) == len(set(readers)) == 4  # w1, w2, b and b's copy, each read once
    _quantize(fixed, tmp_path / "q.onnx", x)
    q = _run(tmp_path / "q.onnx", x)
    peak = float(ref.max() - ref.min())
    assert 10 * np.log10(peak ** 2 / np.mean((q - ref) ** 2)) > 30  # an int8 graph, not a broken one
    qg = onnx.load(str(tmp_path / "q.onnx")).graph
    producer = {o: n.op_type for n in qg.node for o in n.output}
    convs = [n for n in qg.node if n.op_type == "Conv"]
    assert len(convs) == 2 and all(producer.get(n.input[i]) == "DequantizeLinear" for n in convs for i in (0, 1, 2))


def test_unshare_leaves_an_unshared_graph_and_integer_constants_alone(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    shape = numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "shape")
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["a"]), helper.make_node("Reshape", ["a", "shape"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [shape])
    model = helper.make_model(graph)
    assert unshare_float_initializers(model) == [] and len(model.graph.initializer) == 1
    onnx.save(model, str(tmp_path / "m.onnx"))
    assert unshared_copy(tmp_path / "m.onnx", tmp_path / "o.onnx") == tmp_path / "m.onnx"
    assert not (tmp_path / "o.onnx").exists()
