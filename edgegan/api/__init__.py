"""The Python API: the pipeline's stages as functions that take objects (an ``nn.Module``, a
loaded model, a Bundle, profile results) as well as names and paths.

    import edgegan
    bundle = edgegan.export(my_module, out="bundles/mine", formats="onnx,ort-int8")
    results = edgegan.profile(bundle, target="local", runs=20)
    print(edgegan.compare(bundle, results["ort-int8"]))

Everything here is re-exported lazily from ``edgegan``; see docs/python-api.md.
"""
from ..results import ProfileRow
from .results import Comparison, ExportedBundle, ProfileResults
from .stages import compare, compress, export, load_model, profile, report

__all__ = ["Comparison", "ExportedBundle", "ProfileResults", "ProfileRow", "compare", "compress", "export",
           "load_model", "profile", "report"]
