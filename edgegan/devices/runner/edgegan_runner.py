#!/usr/bin/env python3
"""edgegan on-device runner: load one artifact, run the stored inputs, time it, write results.

Runs on the device with python3 + numpy + one runtime (onnxruntime for .onnx; ai-edge-litert,
tflite-runtime or tensorflow for .tflite). No torch, no edgegan. Usage:

    python3 edgegan_runner.py JOB.json

JOB.json: {"artifact": path, "format": "tflite-int8", "io": {...}, "inputs": "inputs.npy",
           "warmup": 10, "runs": 50, "threads": 2, "out": dir}
Writes DIR/samples.npy (outputs for every stored input, NCHW float32) and DIR/results.json.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time

import numpy as np

RUNNER_VERSION = 1


class RunnerError(Exception):
    """A problem the runner reports as one line on stderr (exit code 3)."""


def runtime_versions() -> dict:
    """Versions of the inference runtimes importable here (absent ones are left out)."""
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for mod, name in (("onnxruntime", "onnxruntime"), ("ai_edge_litert", "ai-edge-litert"),
                      ("tflite_runtime", "tflite-runtime")):
        try:
            m = __import__(mod)
            out[name] = getattr(m, "__version__", "unknown")
        except Exception:  # noqa: BLE001 - any import failure means "not available"
            continue
    if "ai-edge-litert" in out and out["ai-edge-litert"] == "unknown":
        try:
            from importlib.metadata import version

            out["ai-edge-litert"] = version("ai-edge-litert")
        except Exception:  # noqa: BLE001
            pass
    return out


def _tflite_interpreter_cls():
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite-runtime"
    except ImportError:
        pass
    try:
        import tensorflow as tf

        return tf.lite.Interpreter, "tensorflow"
    except ImportError:
        raise RunnerError("no TFLite runtime here; install ai-edge-litert (or tflite-runtime)") from None


class OnnxModel:
    runtime = "onnxruntime"

    def __init__(self, path: str, threads: int) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise RunnerError("onnxruntime is not installed here; install it to run .onnx artifacts") from None
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.input_name = self.sess.get_inputs()[0].name

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.sess.run(None, {self.input_name: x})[0]


class TFLiteModel:
    def __init__(self, path: str, threads: int) -> None:
        cls, self.runtime = _tflite_interpreter_cls()
        self.interp = cls(model_path=path, num_threads=threads)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]

    def run(self, x: np.ndarray) -> np.ndarray:
        d = self.inp
        if d["dtype"] in (np.int8, np.uint8):
            scale, zp = d["quantization"]
            info = np.iinfo(d["dtype"])
            x = np.clip(np.round(x / scale + zp), info.min, info.max).astype(d["dtype"])
        self.interp.set_tensor(d["index"], np.ascontiguousarray(x))
        self.interp.invoke()
        y = self.interp.get_tensor(self.out["index"])
        if self.out["dtype"] in (np.int8, np.uint8):
            scale, zp = self.out["quantization"]
            y = (y.astype(np.float32) - zp) * scale
        return y


class Artifact:
    """One artifact plus its I/O convention: inputs/outputs are NCHW float32 outside, the
    model may want NHWC (``io.input_perm`` / ``io.output_perm``) and batch 1."""

    def __init__(self, path: str, fmt: str, io: dict | None = None, threads: int = 1) -> None:
        if not os.path.exists(path):
            raise RunnerError(f"artifact {path} not found on this device")
        self.io = io or {}
        self.model = TFLiteModel(path, threads) if path.endswith(".tflite") else OnnxModel(path, threads)
        self.runtime = self.model.runtime
        self.fmt = fmt

    def prepare(self, x: np.ndarray) -> np.ndarray:
        perm = self.io.get("input_perm")
        x = np.asarray(x, np.float32)
        return np.ascontiguousarray(x.transpose(perm)) if perm else x

    def finish(self, y: np.ndarray) -> np.ndarray:
        perm = self.io.get("output_perm")
        y = np.asarray(y, np.float32)
        return np.ascontiguousarray(y.transpose(perm)) if perm else y

    def run_one(self, x: np.ndarray) -> np.ndarray:
        return self.finish(self.model.run(self.prepare(x)))

    def run_all(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs for every input, one at a time (batch 1, as on a device)."""
        return np.concatenate([self.run_one(inputs[i : i + 1]) for i in range(len(inputs))])


def latency_stats(ms: list) -> dict:
    a = np.sort(np.asarray(ms, np.float64))
    trim = int(len(a) * 0.1)
    core = a[trim : len(a) - trim] if len(a) - 2 * trim > 0 else a
    return {
        "p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
        "p95": float(np.percentile(a, 95)), "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()), "trimmed_mean": float(core.mean()), "std": float(a.std()),
        "min": float(a[0]), "max": float(a[-1]),
    }


def time_latency(artifact: Artifact, x: np.ndarray, warmup: int, runs: int) -> tuple[float, list]:
    """First-inference ms and per-run ms for ``runs`` timed runs after ``warmup`` untimed ones.
    Times the runtime call only (layout conversion done once, outside the timer)."""
    xin = artifact.prepare(x)
    t0 = time.perf_counter_ns()
    artifact.model.run(xin)
    first = (time.perf_counter_ns() - t0) / 1e6
    for _ in range(warmup):
        artifact.model.run(xin)
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        artifact.model.run(xin)
        ms.append((time.perf_counter_ns() - t0) / 1e6)
    return first, ms


def run_job(job: dict) -> dict:
    """Execute one job dict and write its outputs; returns the results record."""
    out_dir = job["out"]
    os.makedirs(out_dir, exist_ok=True)
    inputs = np.load(job["inputs"], allow_pickle=False)
    t0 = time.perf_counter_ns()
    art = Artifact(job["artifact"], job.get("format", ""), job.get("io"), int(job.get("threads", 1)))
    load_ms = (time.perf_counter_ns() - t0) / 1e6
    first, ms = time_latency(art, inputs[:1], int(job.get("warmup", 10)), int(job.get("runs", 50)))
    samples = art.run_all(inputs)
    tmp = os.path.join(out_dir, "samples.npy.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, samples)
    os.replace(tmp, os.path.join(out_dir, "samples.npy"))
    result = {
        "runner_version": RUNNER_VERSION, "format": art.fmt, "runtime": art.runtime,
        "artifact": os.path.basename(job["artifact"]), "threads": int(job.get("threads", 1)),
        "warmup": int(job.get("warmup", 10)), "runs": len(ms), "model_load_ms": load_ms,
        "first_inference_ms": first, "latency_ms": latency_stats(ms),
        "versions": runtime_versions(), "samples": "samples.npy", "samples_shape": list(samples.shape),
    }
    tmp = os.path.join(out_dir, "results.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(result, fh, indent=2)
    os.replace(tmp, os.path.join(out_dir, "results.json"))
    return result


def main(argv: list | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: edgegan_runner.py JOB.json", file=sys.stderr)
        return 2
    try:
        with open(argv[0]) as fh:
            job = json.load(fh)
        run_job(job)
    except RunnerError as exc:
        print(f"edgegan-runner: error: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
