"""Pick the float and quantized models of one format out of a bundle and debug them."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from ..bundle import Bundle
from ..errors import ConfigError
from ..export.conv_widen import REWRITE as WIDEN
from ..export.nhwc_interleave import REWRITE as INTERLEAVE
from ..export.qdq_pads import GATHER_REWRITE, REWRITE as INT8_PAD
from .report import DebugReport

# format -> float format it is compared with
DEBUGGABLE = {"ort-int8": "onnx", "ort-int8-mixed": "onnx"}


def stored_inputs(bundle: Bundle, n: int) -> np.ndarray:
    """The first ``n`` stored inputs, topped up with calibration inputs when asked for more."""
    x = bundle.inputs().astype(np.float32)
    if n > len(x) and bundle.manifest.calibration is not None:
        cal = np.load(bundle.file(bundle.manifest.calibration.file), allow_pickle=False).astype(np.float32)
        x = np.concatenate([x, cal])
    return x[:n]


def calibration_inputs(bundle: Bundle) -> np.ndarray:
    if bundle.manifest.calibration is None:
        return bundle.inputs().astype(np.float32)
    return np.load(bundle.file(bundle.manifest.calibration.file), allow_pickle=False).astype(np.float32)


def debug_bundle(bundle_dir: str | Path, fmt: str, n_inputs: int = 8, threads: int = 2,
                 workdir: Optional[Path] = None) -> DebugReport:
    """Per-op float-vs-int8 numerics of ``fmt``'s artifact in the bundle at ``bundle_dir``."""
    from ..export.norm_rewrite import NORM_REWRITES, equalize_instance_norms
    from .onnx_qdq import debug_onnx_qdq, preprocessed, quantize_qdq

    if fmt not in DEBUGGABLE:
        raise ConfigError(f"debug-quant handles {', '.join(DEBUGGABLE)}; '{fmt}' is not one of them", field="format")
    if n_inputs < 1:
        raise ConfigError("--inputs must be at least 1", field="inputs")
    bundle = Bundle.load(bundle_dir)
    float_path = bundle.artifact_path(bundle.artifact(DEBUGGABLE[fmt]))
    rec = bundle.artifact(fmt)
    quant_path = bundle.artifact_path(rec)
    x = stored_inputs(bundle, n_inputs)
    peak = bundle.manifest.output_range().peak
    q = rec.quantization
    with tempfile.TemporaryDirectory(prefix="edgegan-qdbg-", dir=workdir) as tmp:
        # pads moved onto int8 tensors (and as channels-last Gathers) change only the quantized graph
        # (bit-identical, names kept)
        done = {r.get("rewrite") for r in rec.rewrites
                if not str(r.get("rewrite", "")).startswith((INT8_PAD, GATHER_REWRITE))}
        # narrow convs widened after pre-processing: zero channels + a Slice, names kept; rebuilt below
        widened = any(str(r).startswith(WIDEN) for r in done)
        interleaved = any(str(r).startswith(INTERLEAVE) for r in done)  # the same after widening: rebuilt too
        done = {r for r in done if not str(r).startswith((WIDEN, INTERLEAVE))}
        if done and done <= set(NORM_REWRITES):
            # the InstanceNorm rewrite only rescales initializers and is deterministic: rebuild the
            # float graph the converter quantized, so tensor names and values line up
            normed = Path(tmp) / "float_normed.onnx"
            equalize_instance_norms(float_path, normed, calibration_inputs(bundle),
                                    drop_bias="instance_norm_bias" in done, equalize="instance_norm_equalize" in done)
            float_path, rewritten_note = normed, f" (with {', '.join(sorted(done))} rebuilt)"
        else:
            rewritten_note = ""
        if done and not rewritten_note:
            # quantized from a rewritten graph the bundle does not hold: quantize the float
            # ONNX the same way and debug that
            names = ", ".join(sorted(done))
            ref = preprocessed(float_path, Path(tmp) / "float_pre.onnx")
            requant = quantize_qdq(ref, Path(tmp) / "requantized.onnx", calibration_inputs(bundle),
                                   per_channel=bool(q.get("per_channel", True)),
                                   activation_type=q.get("activations", "uint8"), weight_type=q.get("weights", "int8"),
                                   reduce_range=bool(q.get("reduce_range", False)),
                                   calibration_method=q.get("calibration_method", "minmax"))
            notes = [f"the artifact was quantized from a rewritten graph ({names}); debugged a re-quantization of the "
                     "bundle's float ONNX with the artifact's settings instead"]
            if q.get("kept_float"):  # ort-int8-mixed: its kept ops are nodes of the rewritten graph
                notes.append(f"the {len(q['kept_float'])} op(s) the artifact kept float are nodes of the rewritten "
                             "graph and were not kept float in the re-quantization")
            report = debug_onnx_qdq(ref, requant, x, fmt=fmt, threads=threads, output_peak=peak, notes=notes)
            report.quant_model = f"{quant_path} (re-quantized from {float_path.name})"
        else:
            # the converter quantized ORT's pre-processed graph unless its notes say otherwise:
            # rebuild that graph (deterministic) so tensor names line up with the artifact's
            raw = "without ORT pre-processing" in (rec.notes or "") or q.get("preprocessed") is False
            ref = float_path if raw else preprocessed(float_path, Path(tmp) / "float_pre.onnx")
            if widened:
                from ..export.conv_widen import widen_narrow_convs

                widen_narrow_convs(ref, Path(tmp) / "float_widened.onnx")
                ref, rewritten_note = Path(tmp) / "float_widened.onnx", rewritten_note + " (narrow convs widened)"
            if interleaved:
                from ..export.nhwc_interleave import interleave_nhwc

                interleave_nhwc(ref, Path(tmp) / "float_nhwc.onnx")
                ref, rewritten_note = Path(tmp) / "float_nhwc.onnx", rewritten_note + " (interleave channels-last)"
            report = debug_onnx_qdq(ref, quant_path, x, fmt=fmt, threads=threads, output_peak=peak)
            report.float_model = str(float_path) + rewritten_note + (
                "" if raw else " (ORT pre-processed, as the converter saw it)")
    return report
