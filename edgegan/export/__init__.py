"""torch -> ONNX export and its validation."""
from .._callable import make_callable

make_callable(__name__)  # edgegan.export(model, ...) is the API function (edgegan.api.export)
