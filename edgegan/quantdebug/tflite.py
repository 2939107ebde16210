"""TFLite side of the debugger: runs tflite_worker (TensorFlow in a subprocess) on an onnx2tf
saved_model and turns its answer into the shared per-op table. Inputs go to the worker in the
float model's NCHW layout; the worker lays them out as the converted model's real input (read
off its shape, as at conversion: converters.tflite_common.io_layout) and reports the I/O
layout it found, which a bundle's artifact must agree with (:func:`check_io_matches`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import ConversionError, strip_ansi
from ..util.procs import die_with_parent, guarded
from .report import DebugReport, OpNumerics

TIMEOUT_S = 1800


def run_tflite_debug(saved_model: Path, calibration: np.ndarray, evals: np.ndarray, workdir: Path, *,
                     per_channel: bool = True, keep_ops: Sequence[str] = (), keep_nodes: Sequence[str] = (),
                     auto: bool = False, target_psnr_db: float = 38.0, max_steps: int = 16,
                     out: Optional[Path] = None, tag: str = "tflite_debug", output_peak: float = 2.0,
                     output_shape: Optional[Sequence[int]] = None) -> dict:
    """The worker's report (rows, output PSNR, kept ops, ``io``: the layout of the model's
    input and, given the float model's batch-1 NCHW ``output_shape``, of its output); writes
    the int8 model to ``out``. ``calibration`` / ``evals`` are NCHW, as the float model takes them."""
    keep_ops, added = list(keep_ops), []
    for attempt in range(MAX_UNRUNNABLE_OPS + 1):
        try:
            rep = _run_worker(saved_model, calibration, evals, workdir, per_channel=per_channel, keep_ops=keep_ops,
                               keep_nodes=keep_nodes, auto=auto, target_psnr_db=target_psnr_db, max_steps=max_steps,
                               out=out, tag=tag, output_peak=output_peak, output_shape=output_shape)
            rep["int8_unrunnable_ops"] = added  # kept float because their int8 kernel refused to run
            return rep
        except ConversionError as exc:
            # an int8 kernel that refuses its inputs (TFLite's DIV by a divisor that quantizes to
            # zero): with auto, keep that op type float and search again, as a user would
            op = unrunnable_op(str(exc))
            if not auto or op is None or op in keep_ops or attempt == MAX_UNRUNNABLE_OPS:
                raise
            keep_ops.append(op)
            added.append(op)
    raise AssertionError("unreachable: the last attempt returns or raises")


MAX_UNRUNNABLE_OPS = 3


def unrunnable_op(message: str) -> Optional[str]:
    """The TFLite op type of "Node number 53 (DIV) failed to invoke", else None."""
    import re

    m = re.search(r"Node number \d+ \(([A-Z0-9_]+)\) failed to invoke", message)
    return m.group(1) if m else None


def _run_worker(saved_model: Path, calibration: np.ndarray, evals: np.ndarray, workdir: Path, *, per_channel: bool,
                keep_ops: Sequence[str], keep_nodes: Sequence[str], auto: bool, target_psnr_db: float, max_steps: int,
                out: Optional[Path], tag: str, output_peak: float, output_shape: Optional[Sequence[int]]) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    cal, ev = workdir / f"{tag}_calibration.npy", workdir / f"{tag}_eval.npy"
    np.save(cal, np.ascontiguousarray(calibration, dtype=np.float32))
    np.save(ev, np.ascontiguousarray(evals, dtype=np.float32))
    job = {"saved_model": str(saved_model), "calibration": str(cal), "eval": str(ev), "per_channel": per_channel,
           "input_shape": [1, *[int(d) for d in np.shape(calibration)[1:]]],
           "output_shape": [int(d) for d in output_shape] if output_shape is not None else None,
           "keep_ops": list(keep_ops), "keep_nodes": list(keep_nodes), "auto": auto,
           "target_psnr_db": target_psnr_db, "max_steps": max_steps, "out": str(out) if out else None,
           "report": str(workdir / f"{tag}.report.json"), "output_peak": output_peak}
    job_path = workdir / f"{tag}.json"
    job_path.write_text(json.dumps(job))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    try:
        proc = subprocess.run(guarded([sys.executable, "-m", "edgegan.quantdebug.tflite_worker", str(job_path)]), env=env,
                              capture_output=True, text=True, timeout=TIMEOUT_S, preexec_fn=die_with_parent)
    except subprocess.TimeoutExpired:
        raise ConversionError(f"the TFLite quantization debugger timed out after {TIMEOUT_S} s") from None
    if proc.returncode != 0:
        lines = [ln for ln in strip_ansi(proc.stderr).splitlines() if ln.strip()]
        raise ConversionError(f"the TFLite quantization debugger failed: {lines[-1][:300] if lines else 'no output'}")
    return json.loads(Path(job["report"]).read_text())


def check_io_matches(found: dict, recorded: dict, fmt: str) -> None:
    """The re-made model must have the artifact's I/O layout, or its per-op table describes
    another model."""
    for side in ("input", "output"):
        want, got = recorded.get(f"{side}_layout"), found.get(f"{side}_layout")
        if want and got and want != got:
            raise ConversionError(f"the re-made {fmt} model takes its {side} as {got} but the bundle's artifact "
                                  f"as {want}; re-export the bundle with this edgegan")


def report_from_worker(rep: dict, fmt: str, float_model: str, quant_model: str, inputs: int,
                       notes: Sequence[str] = ()) -> DebugReport:
    ops = []
    for r in rep["rows"]:
        total = r["sqnr_db"] if r["sqnr_db"] is not None else r["introduced_sqnr_db"]
        ops.append(OpNumerics(
            name=r["name"], op_type=r["op_type"], tensor=r["name"], order=r["order"], sqnr_db=total,
            psnr_db=r["psnr_db"] if r["psnr_db"] is not None else 0.0, introduced_sqnr_db=r["introduced_sqnr_db"], float_min=r["float_min"],
            float_max=r["float_max"], float_std=r["float_std"], quant_min=r["quant_min"], quant_max=r["quant_max"],
            max_abs_err=r["max_abs_err"], scale=r["scale"], zero_point=r["zero_point"]))
    unmatched = [r["name"] for r in rep["rows"] if r["sqnr_db"] is None]
    return DebugReport(format=fmt, backend="TF QuantizationDebugger (LiteRT)", float_model=float_model,
                       quant_model=quant_model, inputs=inputs, output_sqnr_db=rep["output_sqnr_db"],
                       output_psnr_db=rep["output_psnr_db"], ops=ops, unmatched=unmatched, notes=list(notes))
