"""`onnx`: the validated float ONNX itself, run with onnxruntime."""
from __future__ import annotations

import shutil

from .base import ConvertContext, ConvertResult, Converter, missing_modules, module_version, register


@register
class OnnxFloat(Converter):
    format = "onnx"
    runtime = "onnxruntime"
    filename = "model.onnx"
    default_order = 0
    description = "float32 ONNX (torch.onnx, opset 18), reference for the other formats"
    tools = ("onnx", "onnxruntime")

    def missing_dependency(self):
        return missing_modules("onnx", "onnxruntime")

    def convert(self, ctx: ConvertContext) -> ConvertResult:
        out = ctx.out_dir / self.filename
        if ctx.onnx_path.resolve() != out.resolve():
            shutil.copyfile(ctx.onnx_path, out)
        return ConvertResult(out, self.runtime, "torch.onnx", module_version("torch"),
                             quantization={"scheme": "float32"})
