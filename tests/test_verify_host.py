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
