#!/usr/bin/env python3
"""docs/metrics.md section 5: dcgan-digits float vs ORT-int8 on N latents, scored against each
other (paired) and against scikit-learn's real digits.

    .venv/bin/python benchmarks/compare_digits.py [--n 1000] [--seed 0] [--out DIR]

Exports dcgan-digits (onnx + ort-int8, N stored latents, 128 calibration latents) with
edgegan.export, runs the int8 artifact on the stored latents with the device runner's code,
and prints `edgegan compare float int8 --reference digits` as a table. Deterministic for a
given onnxruntime version and CPU (quantization calibrates on fixed latents).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="keep the bundle and compare outputs here")
    args = ap.parse_args(argv)

    import edgegan
    from edgegan.metrics.compare import SampleSet
    from edgegan.verify.host import run_artifact

    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="edgegan-compare-digits-"))
    bundle = edgegan.export("dcgan-digits", out=root / "bundle", formats=["onnx", "ort-int8"], n_inputs=args.n,
                            input_seed=args.seed, calibration=128, overwrite=True, threads=1, latency_rounds=1,
                            latency_runs=2)
    rec = bundle.artifact("ort-int8")
    latents = bundle.inputs()
    int8 = run_artifact(bundle.artifact_path(rec), rec.format, rec.io, latents, threads=1)
    float_set = SampleSet(bundle.reference(), latents, "float (torch)")
    int8_set = SampleSet(int8, latents, "ort-int8 (onnxruntime)")
    cmp = edgegan.compare(float_set, int8_set, reference="digits")
    cmp.write(root / "compare")
    res = cmp.to_dict()
    print(f"dcgan-digits, {args.n} latents (seed {args.seed}); int8 = {rec.quantization.get('scheme')}, "
          f"{rec.quantization.get('activations')} activations / {rec.quantization.get('weights')} weights, "
          f"features {res['features']['name']} ({res['features']['dim']}-d)\n")
    dist = res["distribution"]
    cols = ["B vs A", "A vs real digits", "B vs real digits"]
    print("| metric | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for key, value in res["quality"].items():
        if key == "psnr_db":
            continue
        ra = (dist.get("A_vs_reference") or {}).get(key)
        rb = (dist.get("B_vs_reference") or {}).get(key)
        cells = [value, ra, rb]
        print(f"| {key} | " + " | ".join("–" if c is None else f"{c:.4f}" for c in cells) + " |")
    p = res.get("paired") or {}
    if p:
        print(f"\nPaired (B vs A, same latents): PSNR {p['psnr_db']:.2f} dB over all pixels, worst sample "
              f"{p['psnr_db_worst']:.2f} dB (#{p['worst'][0]['index']}), median {p['psnr_db_median']:.2f} dB; "
              f"SSIM {p['ssim']:.4f}; max |err| {p['max_abs_err']:.3f}, mean |err| {p['mean_abs_err']:.4f}")
    print(f"\noutputs in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
