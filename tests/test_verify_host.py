"""Host verification reports artifacts it cannot run as a typed, one-line edgegan error."""
from __future__ import annotations

import numpy as np
import pytest

from edgegan.errors import ArtifactRunError, EdgeganError
from edgegan.verify.host import run_artifact

X = np.zeros((2, 4, 1, 1), np.float32)


def test_a_corrupt_onnx_file_is_a_typed_one_line_error(tmp_path):
    path = tmp_path / "model_ort_int8.onnx"
    path.write_bytes(b"this is not a protobuf")
    with pytest.raises(ArtifactRunError) as err:
        run_artifact(path, "ort-int8", {}, X)  # the real onnxruntime refuses to load it
    msg = str(err.value)
    assert isinstance(err.value, EdgeganError) and not isinstance(err.value, RuntimeError)
    assert "\n" not in msg and "ort-int8" in msg and "model_ort_int8.onnx" in msg
    assert "onnxruntime" in msg and "re-export" in msg  # what failed, and the fix


def test_a_missing_artifact_is_a_typed_error(tmp_path):
    with pytest.raises(ArtifactRunError, match="not found"):
        run_artifact(tmp_path / "gone.tflite", "tflite-fp32", {}, X)


def test_an_artifact_that_loads_but_fails_when_run_does_not_ask_to_install_the_runtime(tmp_path):
    """A valid ONNX graph whose Reshape cannot hold the input (4 channels, a width the graph leaves
    open, into rows of 3): the real onnxruntime loads it and fails running it, so the fix named is
    the export, not an install."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "bad_reshape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "c", 1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 3])])
    path = tmp_path / "model_ort_fp32.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ArtifactRunError) as err:
        run_artifact(path, "ort-fp32", {}, X)
    msg = str(err.value)
    assert "\n" not in msg and "loaded but failed when run" in msg and "model_ort_fp32.onnx" in msg
    assert "install" not in msg and "--convert-option" in msg
