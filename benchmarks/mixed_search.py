#!/usr/bin/env python3
"""Fidelity of the mixed-precision searches on an existing bundle (no latency: see
int8_wins.py for that).

    .venv/bin/python benchmarks/mixed_search.py BUNDLE [--target 38] [--no-tflite]

Takes the bundle's float ONNX and calibration inputs, runs the ort-int8-mixed and (unless
--no-tflite, which skips onnx2tf) tflite-int8-mixed converters with `auto`, and prints for each:
search time, steps, ops kept float, int8 share of MACs, PSNR on the calibration inputs the search
saw, and PSNR on the bundle's stored inputs against onnxruntime's float output (the same
measure export uses), next to the plain int8 artifacts' recorded fidelity.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("--target", type=float, default=38.0)
    ap.add_argument("--no-tflite", action="store_true")
    args = ap.parse_args(argv)

    import numpy as np
    import onnxruntime as ort

    from edgegan.bundle import Bundle
    from edgegan.converters.base import CONVERTERS, ConvertContext, ConvertOptions
    from edgegan.verify.host import fidelity, run_artifact

    bundle = Bundle.load(args.bundle)
    cal = np.load(bundle.file(bundle.manifest.calibration.file)).astype(np.float32)
    x = bundle.inputs().astype(np.float32)
    work = Path(tempfile.mkdtemp(prefix="edgegan-mixed-search-"))
    onnx_path = work / "model.onnx"
    shutil.copy(bundle.artifact_path(bundle.artifact("onnx")), onnx_path)  # onnx2tf overwrites its input
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ref = np.concatenate([sess.run(None, {sess.get_inputs()[0].name: x[i: i + 1]})[0] for i in range(len(x))])
    print(f"{bundle.manifest.model.name}: {len(x)} stored inputs, {len(cal)} calibration inputs, target {args.target} dB\n")
    print("| format | PSNR on stored inputs | search PSNR (calibration) | met | steps | ops kept float | int8 MACs | search s |")
    print("|---|---|---|---|---|---|---|---|")
    for plain in ("ort-int8", "tflite-int8"):
        try:
            rec = bundle.artifact(plain)
        except Exception:  # noqa: BLE001 - not in this bundle
            continue
        print(f"| {plain} (bundle) | {rec.fidelity.get('psnr_db')} | | | | | | |")
    formats = ["ort-int8-mixed"] + ([] if args.no_tflite else ["tflite-int8-mixed"])
    kept_lists = {}
    for fmt in formats:
        out = work / fmt
        out.mkdir()
        ctx = ConvertContext(module=None, onnx_path=onnx_path, calibration=cal, input_shape=list(cal.shape[1:]),
                             workdir=work, out_dir=out, options=ConvertOptions(
                                 formats={fmt: {"target_psnr_db": args.target}}))
        t0 = time.perf_counter()
        res = CONVERTERS.get(fmt).convert(ctx)
        seconds = time.perf_counter() - t0
        got = run_artifact(res.path, fmt, res.io, x)
        q = res.quantization
        s = q["search"]
        print(f"| {fmt} | {fidelity(got, ref)['psnr_db']} | {s['psnr_db_on_calibration']} | {s['met_target']} | "
              f"{s['steps']} | {q['kept_float_count']} | {q['int8_mac_fraction']:.1%} | {seconds:.0f} |")
        kept_lists[fmt] = q["kept_float"]
    for fmt, kept in kept_lists.items():
        print(f"\n{fmt} kept float: " + ", ".join(f"{k['name']} ({k['op_type']})" for k in kept))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
