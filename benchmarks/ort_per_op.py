#!/usr/bin/env python3
"""Where an ORT artifact's time goes, per op type (the per-op shares docs/export.md quotes).

    .venv/bin/python benchmarks/ort_per_op.py BUNDLE [--format ort-int8] [--runs 300] [--threads 2]

Runs the bundle's artifact of FORMAT (an ONNX Runtime format) on its first stored input with
ORT's own profiler on, after a warm-up, and prints the kernel time per op type (and the five
slowest nodes) as % of all kernel time, the op types of the graph ORT optimized for this CPU,
and the date and machine load (`uptime`, /proc/pressure/cpu) before and after. Shares are
within one run; on a busy machine the absolute times move, the shares much less.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _load() -> str:
    cpu = Path("/proc/pressure/cpu")
    pressure = cpu.read_text().split("\n")[0] if cpu.exists() else "n/a"
    return f"loadavg {os.getloadavg()[0]:.2f}, cpu pressure: {pressure}"


def profile(path: Path, x, runs: int, threads: int) -> tuple[dict, dict, collections.Counter]:
    """(kernel µs per op type, kernel µs per (op type, node), op types of ORT's optimized graph)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgegan-ortprof-") as tmp:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        so.log_severity_level = 3
        warm = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        graph_ops = collections.Counter(n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node)
        name = warm.get_inputs()[0].name
        for _ in range(50):
            warm.run(None, {name: x})
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "prof")
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        for _ in range(50):
            sess.run(None, {name: x})
        for _ in range(runs):
            sess.run(None, {name: x})
        events = json.loads(Path(sess.end_profiling()).read_text())
    by_type: dict = collections.Counter()
    by_node: dict = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e["args"].get("op_name", "?")
            by_type[op] += e["dur"]
            by_node[(op, e["name"][: -len("_kernel_time")])] += e["dur"]
    return by_type, by_node, graph_ops


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bundle")
    ap.add_argument("--format", default="ort-int8")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from edgegan.bundle import Bundle

    bundle = Bundle.load(args.bundle)
    rec = bundle.artifact(args.format)
    x = bundle.inputs()[:1].astype("float32")
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; before: {_load()}")
    by_type, by_node, graph_ops = profile(bundle.artifact_path(rec), x, args.runs, args.threads)
    total = sum(by_type.values()) or 1
    print(f"\n{args.format} of {args.bundle}: {args.runs} profiled runs, {args.threads} threads, "
          f"{total / 1e3 / (args.runs + 50):.3f} ms kernel time per run\n")
    print("| op type | share of kernel time |\n|---|---|")
    for op, us in by_type.most_common():
        print(f"| {op} | {100 * us / total:.1f} % |")
    print("\nslowest nodes: " + "; ".join(f"{node} ({op}) {100 * us / total:.1f} %"
                                         for (op, node), us in by_node.most_common(5)))
    print(f"optimized graph: {dict(graph_ops.most_common())}")
    print(f"after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
