#!/usr/bin/env python3
"""Why ort-int8 widens narrow convs: one conv on 64x64, int8 as quantized vs widened to 16 output
channels (edgegan.export.conv_widen), and fp32, timed in strict alternation in one process.

    .venv/bin/python benchmarks/narrow_conv.py [--runs 100] [--threads 2]

For each shape (in -> out channels, kernel) prints the median ms of fp32, int8 and widened int8
and their ratios to fp32, with the date and machine load (docs/quantization-debugging.md,
"Narrow convs", quotes it). Random weights and inputs; int8 per-channel QDQ via the converter's
own quantize_qdq.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHAPES = [(64, 3, 7), (16, 3, 7), (32, 4, 3)]


def _conv(cin: int, cout: int, k: int, hw: int, path: Path) -> np.ndarray:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((cout, cin, k, k)).astype(np.float32) * 0.05, "w")
    b = numpy_helper.from_array(np.zeros(cout, np.float32), "b")
    side = hw + k - 1
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[k, k], name="conv")],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, side, side])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, hw, hw])], [w, b])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return rng.standard_normal((8, cin, side, side)).astype(np.float32)


def _session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import logging
    import os

    from edgegan.export.conv_widen import widen_narrow_convs
    from edgegan.quantdebug.onnx_qdq import quantize_qdq

    logging.disable(logging.WARNING)
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC; loadavg {os.getloadavg()[0]:.2f}; "
          f"{args.threads} threads, {args.runs} alternating runs each")
    print("| conv (64x64 out) | fp32 ms | int8 ms | int8 widened ms | int8 / fp32 | widened / fp32 |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="edgegan-narrow-") as tmp:
        for cin, cout, k in SHAPES:
            d = Path(tmp)
            x = _conv(cin, cout, k, 64, d / "f.onnx")
            widen_narrow_convs(d / "f.onnx", d / "w.onnx")
            quantize_qdq(d / "f.onnx", d / "q.onnx", x, per_channel=True)
            quantize_qdq(d / "w.onnx", d / "qw.onnx", x, per_channel=True)
            sessions = [_session(d / n, args.threads) for n in ("f.onnx", "q.onnx", "qw.onnx")]
            feed = {"x": x[:1]}
            for s in sessions:
                for _ in range(10):
                    s.run(None, feed)
            times = [[] for _ in sessions]
            for _ in range(args.runs):
                for i, s in enumerate(sessions):
                    t0 = time.perf_counter()
                    s.run(None, feed)
                    times[i].append(time.perf_counter() - t0)
            f, q, qw = (float(np.median(t)) * 1e3 for t in times)
            print(f"| {cin}->{cout} {k}x{k} | {f:.3f} | {q:.3f} | {qw:.3f} | {q / f:.2f}x | {qw / f:.2f}x |")


if __name__ == "__main__":
    main()
