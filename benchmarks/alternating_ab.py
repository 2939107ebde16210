#!/usr/bin/env python3
"""Two or more artifacts of one runtime timed in strict alternation in one process: A B A B ...
one inference each, so a busy machine slows them alike and the ratios stay readable when the
absolute times do not (the quick check behind the A/B remarks in README / docs/export.md).

    .venv/bin/python benchmarks/alternating_ab.py A.onnx B.onnx [C.onnx ...] [--runs 300]
    .venv/bin/python benchmarks/alternating_ab.py A.tflite B.tflite [--runs 300]
    .venv/bin/python benchmarks/alternating_ab.py A.pte B.pte A.onnx [--inputs BUNDLE/inputs.npy]

ONNX files run in ONNX Runtime (2 intra-op threads, spinning off: ORT's threads keep spinning
after a run and take the cores from the next artifact, so alternation with spinning measures
the order, not the models; ``--spin`` turns it back on), .tflite files in ai-edge-litert's
interpreter with its default XNNPACK delegate (2 threads), .pte files through edgegan's runner
(the full ``executorch`` runtime, its XNNPACK threadpool resized to ``--threads``; runtimes can be
mixed in one run, e.g. a .pte against the ORT fp32 baseline). The input is the first sample of
``--inputs FILE.npy`` (a bundle's inputs.npy) or zeros of the model's input shape. Prints
min / p25 / median ms per artifact, each median's ratio to the first artifact's, and the load.

``--cpu-time`` measures the work instead of the wall time: one thread (ORT without spinning),
so each inference runs on the calling thread, and the thread's own CPU time (``time.thread_time``)
per inference, averaged over ``--batch`` inferences. Other jobs on the machine delay an inference
but barely change its CPU time, so this ratio holds at load averages where wall times do not
(cache sharing still moves it a little). It says nothing about how well 2 threads scale. A
.pte runs with the runner's ExecuTorch threadpool set to 1 thread.

``--processes R`` times each artifact alone in a fresh process instead (R rounds, A B A B ...,
each process: ``--warmup`` runs, then the median of ``--runs``), with ORT's spinning on as a
deployed session has it (nothing else runs beside it to lose the cores to): the setting closest
to a device running one model, and the one to use for ORT at 2 threads, whose int8 graphs of
~100 small ops pay a thread wake-up per op when spinning is off. Prints each round's medians, the
per-round ratios to the first artifact and their median.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def _load() -> str:
    cpu = Path("/proc/pressure/cpu")
    pressure = cpu.read_text().split("\n")[0] if cpu.exists() else "n/a"
    return f"loadavg {os.getloadavg()[0]:.2f}, cpu pressure: {pressure}"


def _ort_runner(path: Path, x, threads: int, spin: bool):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    feed = {inp.name: (x[:1] if x is not None else np.zeros(shape, np.float32)).astype(np.float32)}
    return lambda: sess.run(None, feed)


def _tflite_runner(path: Path, x, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    if x is None or tuple(x.shape[1:]) != tuple(d["shape"][1:]):
        data = np.zeros(d["shape"], d["dtype"])  # zeros: an NHWC artifact needs no layout guess
    elif d["dtype"] != np.float32:
        scale, zero = d["quantization"]
        data = np.clip(np.round(x[:1] / scale + zero), np.iinfo(d["dtype"]).min, np.iinfo(d["dtype"]).max).astype(d["dtype"])
    else:
        data = x[:1].astype(np.float32)

    def run():
        it.set_tensor(d["index"], data)
        it.invoke()
    return run


def _pte_runner(path: Path, x, threads: int):
    from edgegan.runner.edgegan_runner import Artifact

    art = Artifact(str(path), "executorch", {}, threads)  # the runner's own adapter: threads, version checks
    if x is None:
        raise SystemExit(f"{path}: a .pte needs --inputs (a bundle's inputs.npy); its input shape is not read here")
    data = np.ascontiguousarray(x[:1], np.float32)
    return lambda: art.run_one(data)


def _runner(p: Path, x, args):
    if p.suffix == ".tflite":
        return _tflite_runner(p, x, args.threads)
    if p.suffix == ".pte":
        return _pte_runner(p, x, args.threads)
    return _ort_runner(p, x, args.threads, not args.no_spin)


def _child(args) -> None:
    """--child: one artifact alone in this process; prints its median ms."""
    x = np.load(args.inputs, allow_pickle=False) if args.inputs else None
    run = _runner(args.artifacts[0], x, args)
    for _ in range(args.warmup):
        run()
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    print(f"{np.median(times) * 1e3:.4f}")


def child_median(path: Path, runs: int, warmup: int, threads: int, inputs: Path | None, spin: bool) -> float:
    """Median ms of ``path`` alone in a fresh process (this script's --child); also used by
    executorch_vs.py --isolated."""
    import subprocess
    import sys

    cmd = [sys.executable, __file__, str(path), "--child", "--runs", str(runs), "--warmup", str(warmup),
           "--threads", str(threads)] + (["--spin"] if spin else []) + (["--inputs", str(inputs)] if inputs else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _processes(args) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC; before: {_load()}")
    med = [[] for _ in args.artifacts]
    for r in range(args.processes):
        for i, p in enumerate(args.artifacts):
            med[i].append(child_median(p, args.runs, args.warmup, args.threads, args.inputs, args.spin))
        print(f"round {r + 1}: " + ", ".join(f"{m[-1]:.3f}" for m in med) + " ms", flush=True)
    print("| artifact | median ms per process (rounds) | median | ratio to first per round | median ratio |")
    print("|---|---|---|---|---|")
    for p, m in zip(args.artifacts, med):
        ratios = [a / b for a, b in zip(m, med[0])]
        print(f"| {p} | {', '.join(f'{v:.3f}' for v in m)} | {np.median(m):.3f} | "
              f"{', '.join(f'{v:.2f}' for v in ratios)} | {np.median(ratios):.2f}x |")
    print(f"after: {_load()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("artifacts", nargs="+", type=Path)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--inputs", type=Path, default=None, help="a .npy of inputs (first sample used)")
    # 2026-12-02 00:19 UTC, load 0.8, resnet-sketch model.onnx vs model_ort_int8.onnx, 1000 runs each:
    # with spinning the fp32 median read 7.00 ms (p25 4.13) and the ratio 0.41x; without, 3.51 ms
    # (p25 3.27) and 0.66x; every artifact of another runtime timed after an ORT one slowed too
    ap.add_argument("--spin", action="store_true", help="ORT: intra-op threads spin between runs (biased in alternation)")
    ap.add_argument("--no-spin", action="store_true", help="(the default; kept for old command lines)")
    ap.add_argument("--cpu-time", action="store_true", help="1 thread, CPU time of the calling thread")
    ap.add_argument("--batch", type=int, default=10, help="--cpu-time: inferences per timed step")
    ap.add_argument("--processes", type=int, default=0,
                    help="rounds of one fresh process per artifact (ORT spinning on unless --no-spin)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.no_spin = not args.spin
        return _child(args)
    if args.processes:
        if len(args.artifacts) < 2:
            ap.error("give at least two artifacts")
        args.spin = args.spin or not args.no_spin
        return _processes(args)
    if args.cpu_time:
        args.threads = 1
    args.no_spin = args.cpu_time or not args.spin
    if len(args.artifacts) < 2:
        ap.error("give at least two artifacts")
    x = np.load(args.inputs, allow_pickle=False) if args.inputs else None
    runners = [_runner(p, x, args) for p in args.artifacts]
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC; before: {_load()}")
    for run in runners:
        for _ in range(args.warmup):
            run()
    clock, per_step = (time.thread_time, max(1, args.batch)) if args.cpu_time else (time.perf_counter, 1)
    times = [[] for _ in runners]
    for _ in range(max(1, args.runs // per_step)):
        for i, run in enumerate(runners):
            t0 = clock()
            for _ in range(per_step):
                run()
            times[i].append((clock() - t0) / per_step)
    base = float(np.median(times[0]))
    unit = "CPU ms (1 thread)" if args.cpu_time else "ms"
    print(f"| artifact | min {unit} | p25 {unit} | median {unit} | median / first |")
    print("|---|---|---|---|---|")
    for p, t in zip(args.artifacts, times):
        t = np.asarray(t) * 1e3
        print(f"| {p} | {t.min():.3f} | {np.percentile(t, 25):.3f} | {np.median(t):.3f} | "
              f"{np.median(t) / (base * 1e3):.2f}x |")
    print(f"after: {_load()}")


if __name__ == "__main__":
    main()
