#!/usr/bin/env python3
"""Which of ort-int8's rewrites pay? One run, one model, batch 1, 2 threads: the float ONNX,
ort-int8 with its defaults and with each rewrite switched off in turn (sub-pixel, InstanceNorm
rewrite, Relu hoist, float norm parameters, int8 pads, narrow-conv widening, channels-last
interleave), all quantized from the same export and
calibration, timed round-robin in segments kept only while /proc/pressure/cpu is quiet
(benchmarks/int8_wins.py's gate; round-robin keeps the ratios within a run meaningful even when
no segment was quiet).

    .venv/bin/python benchmarks/ort_int8_rewrites.py [--model resnet-sketch] [--segments 3]
                                                      [--max-tries 40] [--out DIR]

PSNR is vs the float ONNX on the bundle's stored inputs; "x onnx" is the latency ratio within
this run. The machine is shared: report the kept segments with the numbers.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = {"ort-int8 (defaults)": {},
            "ort-int8 subpixel=false": {"subpixel": False},
            "ort-int8 norm_rewrite=false": {"norm_rewrite": False},
            "ort-int8 relu_hoist=false": {"relu_hoist": False},
            "ort-int8 float_norm_params=false": {"float_norm_params": False},
            "ort-int8 int8_pad=false": {"int8_pad": False},
            "ort-int8 widen_convs=false": {"widen_convs": False},
            "ort-int8 nhwc_interleave=false": {"nhwc_interleave": False}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet-sketch")
    ap.add_argument("--segments", type=int, default=3)
    ap.add_argument("--max-pressure", type=float, default=15.0)
    ap.add_argument("--max-tries", type=int, default=40)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import edgegan
    from edgegan.converters.base import ConvertContext, ConvertOptions
    from edgegan.converters.ort_int8 import OrtInt8
    from int8_wins import gated_latencies

    root = Path(args.out or tempfile.mkdtemp(prefix="edgegan-ortrw-"))
    bundle = edgegan.export(args.model, out=root / "bundle", formats=["onnx"], n_inputs=32, calibration=64,
                            overwrite=True, threads=2, latency_rounds=1, latency_runs=2)
    rec = {r.format: r for r in bundle.artifact_records()}["onnx"]
    onnx_path, x = bundle.artifact_path(rec), bundle.inputs()
    calibration = np.load(bundle.root / "calibration.npy")
    module = edgegan.load_model(args.model).module
    import onnxruntime as ort

    def outputs(path):
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return np.concatenate([s.run(None, {s.get_inputs()[0].name: x[i:i + 1]})[0] for i in range(len(x))])

    ref = outputs(onnx_path)
    peak = float(bundle.manifest.output_range().peak)
    runnable, rows = {"onnx": (onnx_path, rec.io)}, {}
    for i, (label, opts) in enumerate(VARIANTS.items()):
        d = root / f"variant{i}"
        d.mkdir(parents=True, exist_ok=True)
        ctx = ConvertContext(module=module, onnx_path=onnx_path, calibration=calibration,
                             input_shape=list(calibration.shape[1:]), workdir=d, out_dir=d,
                             options=ConvertOptions(formats={"ort-int8": opts}))
        res = OrtInt8().convert(ctx)
        got = outputs(res.path)
        psnr = 10 * np.log10(peak ** 2 / np.mean((ref.astype(np.float64) - got) ** 2))
        rows[label] = (psnr, res.quantization["ops_left_float"], res.notes)
        runnable[label] = (res.path, rec.io)
    lat, kept, tries = gated_latencies(runnable, x, args.segments, args.max_pressure, args.max_tries)
    gate = (f"{kept} of {tries} segments kept at CPU pressure <= {args.max_pressure}%" if kept else
            f"UNGATED: never quiet in {tries} tries")
    print(f"\n### {args.model} ort-int8 rewrites (latency: {gate})\n")
    print("| artifact | PSNR dB vs float | median ms | x onnx | ops left float |")
    print("|---|---|---|---|---|")
    print(f"| onnx | | {lat['onnx']:.3f} | 1.00x | |")
    for label, (psnr, left, notes) in rows.items():
        print(f"| {label} | {psnr:.2f} | {lat[label]:.3f} | {lat[label] / lat['onnx']:.2f}x | "
              f"{', '.join(left)}{' (notes: ' + notes + ')' if notes else ''} |")


if __name__ == "__main__":
    main()
