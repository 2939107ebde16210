"""`ort-int8`: ONNX Runtime static QDQ int8, per-channel weights, calibrated on inputs drawn
from the model's input distribution.

Activation/weight types are explicit (onnxruntime >= 1.32 defaults activations to int8 and
then rejects uint8 weights). Ops ORT cannot run in int8 (ConvTranspose, InstanceNorm, reflect
Pad on CPU) stay float between Q/DQ pairs; they are listed in ``quantization.ops_left_float``.
"""
from __future__ import annotations

import collections

import numpy as np

from ..errors import ConversionError
from .base import ConvertContext, ConvertResult, Converter, missing_modules, module_version, register

# op types onnxruntime's CPU provider executes as integer kernels in QDQ form
_INT8_CAPABLE = {"Conv", "MatMul", "Gemm", "Add", "Mul", "Relu", "Clip", "LeakyRelu", "Sigmoid",
                 "Concat", "MaxPool", "AveragePool", "GlobalAveragePool", "Reshape", "Transpose",
                 "Resize", "Squeeze", "Unsqueeze", "Flatten", "Split", "Gather", "Slice", "DepthToSpace",
                 "SpaceToDepth", "Tanh", "Softmax", "Where"}
_STRUCTURAL = {"QuantizeLinear", "DequantizeLinear", "Constant", "Identity", "Shape"}


def _calibration_reader(inputs: np.ndarray, input_name: str):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(range(len(inputs)))

        def get_next(self):
            i = next(self._it, None)
            return None if i is None else {input_name: inputs[i : i + 1]}

        def rewind(self) -> None:
            self._it = iter(range(len(inputs)))

    return Reader()


def ops_left_float(path) -> list[str]:
    """Compute op types in a QDQ model that ORT will run in float (sorted by count)."""
    import onnx

    g = onnx.load(str(path)).graph
    counts = collections.Counter(n.op_type for n in g.node if n.op_type not in _STRUCTURAL | _INT8_CAPABLE)
    return [f"{op} x{c}" for op, c in counts.most_common()]


@register
class OrtInt8(Converter):
    format = "ort-int8"
    runtime = "onnxruntime"
    filename = "model_ort_int8.onnx"
    description = "ONNX Runtime static QDQ int8 (per-channel weights)"

    def missing_dependency(self):
        return missing_modules("onnx", "onnxruntime")

    def convert(self, ctx: ConvertContext) -> ConvertResult:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        opts = ctx.options
        pre = ctx.workdir / "ort_preprocessed.onnx"
        try:
            quant_pre_process(str(ctx.onnx_path), str(pre), skip_symbolic_shape=True)
        except Exception as exc:  # noqa: BLE001 - optional optimisation step; fall back to the raw graph
            pre = ctx.onnx_path
            note = f"pre-processing skipped ({type(exc).__name__})"
        else:
            note = None
        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[opts.calibration_method]
        qtype = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
        out = ctx.out_dir / self.filename
        try:
            quantize_static(
                str(pre), str(out), _calibration_reader(ctx.calibration, "input"),
                quant_format=QuantFormat.QDQ, per_channel=opts.per_channel,
                activation_type=qtype[opts.ort_activation_type], weight_type=qtype[opts.ort_weight_type],
                reduce_range=opts.ort_reduce_range, calibrate_method=method,
                extra_options={"CalibTensorRangeSymmetric": False},
            )
        except Exception as exc:  # noqa: BLE001 - report any quantizer failure as this row's reason
            out.unlink(missing_ok=True)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ConversionError(f"onnxruntime quantize_static failed: {type(exc).__name__}: {first}") from None
        return ConvertResult(
            out, self.runtime, "onnxruntime.quantization", module_version("onnxruntime"),
            quantization={
                "scheme": "static QDQ int8", "activations": opts.ort_activation_type,
                "weights": opts.ort_weight_type, "per_channel": opts.per_channel,
                "reduce_range": opts.ort_reduce_range, "calibration_method": opts.calibration_method,
                "ops_left_float": ops_left_float(out),
            },
            notes=note,
        )
