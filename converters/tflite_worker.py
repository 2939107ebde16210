"""Subprocess entry: run TFLiteConverter on a saved_model in one mode and describe the result.

    python -m edgegan.converters.tflite_worker JOB.json

Writes the .tflite and ``<job>.report.json`` (op types, which ops compute in float). Exit 1
with the converter's message on stderr when TensorFlow refuses the model."""
from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

import numpy as np

from ..util.files import atomic_write
from ..util.text import one_line


def op_summary(path: str) -> dict:
    """Count ops and list those whose inputs are float32 (i.e. not computed in int8)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=path)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()  # noqa: SLF001 - the only public-enough op listing in LiteRT
    counts = collections.Counter(op["op_name"] for op in ops)
    left_float = collections.Counter()
    for op in ops:
        dtypes = {tensors[i]["dtype"] for i in op["inputs"] if i in tensors and i >= 0}
        if np.float32 in dtypes and op["op_name"] not in ("QUANTIZE", "DEQUANTIZE"):
            left_float[op["op_name"]] += 1
    return {"op_counts": dict(counts), "ops_left_float": [f"{k} x{v}" for k, v in left_float.most_common()]}


def saved_model_input_shape(tf, saved_model: str) -> list:
    """The batch-1 shape of the saved_model's (single) serving input."""
    sig = tf.saved_model.load(saved_model).signatures["serving_default"]
    specs = list(sig.structured_input_signature[1].values())
    return [1 if d is None else int(d) for d in specs[0].shape] if len(specs) == 1 else []


def calibration_in_model_layout(calib: np.ndarray, model_shape: list) -> np.ndarray:
    """The NCHW calibration inputs laid out as the model's input (NHWC when onnx2tf made it so,
    as read off the real shape by tflite_common.layout_of)."""
    from .tflite_common import NCHW_TO_NHWC, layout_of

    if not model_shape:
        return calib
    if layout_of([1, *calib.shape[1:]], model_shape, "input") == "NHWC":
        return np.ascontiguousarray(calib.transpose(NCHW_TO_NHWC))
    return calib


def convert(job: dict) -> None:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(job["saved_model"])
    mode = job["mode"]
    if mode == "fp16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "int8":
        calib = np.load(job["calibration"], allow_pickle=False).astype(np.float32)
        calib = calibration_in_model_layout(calib, saved_model_input_shape(tf, job["saved_model"]))

        def representative():
            for i in range(len(calib)):
                yield [calib[i : i + 1]]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv._experimental_disable_per_channel = not job.get("per_channel", True)  # noqa: SLF001
        io_type = tf.int8 if job.get("int8_io") else tf.float32
        conv.inference_input_type = io_type
        conv.inference_output_type = io_type
    elif mode != "fp32":
        raise ValueError(f"unknown mode {mode}")
    data = conv.convert()
    atomic_write(job["out"], data)


def converter_message(text: str) -> str:
    """TF's ConverterError on one line: its headline plus each distinct "'tf.Op' op ..." reason
    (the MLIR location dumps between them name nothing a user can act on); else the whole text."""
    import re

    flat = " ".join(text.split())
    reasons = list(dict.fromkeys(m.strip() for m in re.findall(r"'tf\.\w+' op [^<]+?(?= <unknown>|$)", flat)))
    if not reasons:
        return one_line(flat)
    head = flat.split("<unknown>")[0].strip().rstrip(".")
    return one_line(f"{head}: {'; '.join(reasons)}")


def main() -> int:
    job_path = Path(sys.argv[1])
    job = json.loads(job_path.read_text())
    try:
        convert(job)
    except Exception as exc:  # noqa: BLE001 - everything becomes one line for the parent
        print(f"{type(exc).__name__}: {converter_message(str(exc))}", file=sys.stderr)
        return 1
    report = {"quantization": op_summary(job["out"])}
    job_path.with_suffix(".report.json").write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
