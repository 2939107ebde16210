"""torch -> ONNX export and its validation."""
