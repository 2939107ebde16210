#!/usr/bin/env python3
"""Transposed convs in an ExecuTorch .pte: XNNPACK's Deconvolution (as exported) against the
phase / linear forms (``converters/executorch_rewrite.py``), in fp32, dynamic int8 and int8.

    .venv/bin/python benchmarks/executorch_deconv_forms.py [--model dcgan-digits] [--runs 400] [--out DIR]

Lowers the zoo model seven ways (as exported / ``delegation_rewrite(phase=True)``, each as fp32,
dynamic and static int8, and ``delegation_rewrite(latent=True)``, only the 1x1-input layer as a
linear layer with its BatchNorm folded in, as int8: executorch-int8's choice; the converters' own
worker and PT2E settings; calibration: 64 of the model's sample inputs), prints each .pte's size,
int8 MAC share and max error / PSNR vs float torch on 16 other inputs, then times all seven in
strict alternation (``benchmarks/alternating_ab.py``) at 1 and at 2 threads. The int8 rows are
the product's executorch-int8 only for a model without InstanceNorm (the DCGANs): for the ResNets
the product adds the norm rewrite, equalization and its sub-pixel form. ``--tried`` adds two int8
forms of the stride-2 layers that were measured and not kept (``tried_forms``). A few minutes on
2 cores.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODES = ("fp32", "dynamic", "int8")


def tried_forms(latent_module, calibration: np.ndarray) -> dict:
    """``--tried``: the int8 forms measured against executorch-int8's and not kept, built on its
    latent form (so only the stride-2 layers differ): ``shuffle``, the ORT / TFLite route's
    sub-pixel form (``edgegan.export.rewrite``: pad, one 2x2 conv with the BatchNorm folded in,
    pixel_shuffle, crop), and ``shuffle-nhwc``, the same conv padding itself with its phase
    blocks reordered so the interleave is spelled channels-last (permute to NHWC, a 6-D permute
    that moves whole phase x channel rows, permute back), every op of it int8 in XNNPACK."""
    import copy

    import torch
    from torch import nn

    from edgegan.export.rewrite import _ShuffleConvUp, subpixel_rewrite

    class ChannelsLastShuffle(nn.Module):
        def __init__(self, up: _ShuffleConvUp) -> None:
            super().__init__()
            lo, hi = up.pads
            if lo != hi:
                raise SystemExit(f"--tried: asymmetric sub-pixel padding {up.pads} is not handled")
            c4 = up.conv.out_channels
            # pixel_shuffle's channel c*4 + phase -> phase-major phase*C + c
            order = torch.arange(c4).view(c4 // 4, 4).t().reshape(-1)
            self.conv = nn.Conv2d(up.conv.in_channels, c4, 2, padding=lo)
            with torch.no_grad():
                self.conv.weight.copy_(up.conv.weight[order])
                self.conv.bias.copy_(up.conv.bias[order])
            self.c, self.offset = c4 // 4, up.offset

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h, w, o = x.shape[2], x.shape[3], self.offset
            y = self.conv(x)
            n, _, hh, ww = y.shape
            t = y.permute(0, 2, 3, 1).reshape(n, hh, ww, 2, 2, self.c).permute(0, 1, 3, 2, 4, 5)
            z = t.reshape(n, 2 * hh, 2 * ww, self.c).permute(0, 3, 1, 2)
            return z[:, :, o: o + 2 * h, o: o + 2 * w]

    shuffle, _ = subpixel_rewrite(latent_module, calibration[:8], latent=False)
    nhwc = copy.deepcopy(shuffle)
    for mod in list(nhwc.modules()):
        for name, child in list(mod.named_children()):
            if isinstance(child, _ShuffleConvUp):
                setattr(mod, name, ChannelsLastShuffle(child))
    return {"shuffle": (shuffle, ("int8",)), "shuffle-nhwc": (nhwc, ("int8",))}


def main() -> int:
    import torch

    from edgegan.converters import executorch_worker as worker
    from edgegan.converters.executorch_rewrite import delegation_rewrite
    from edgegan.metrics.paired import psnr_overall
    from edgegan.models.loading import load_generator
    from edgegan.runner.edgegan_runner import Artifact

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="dcgan-digits")
    ap.add_argument("--runs", type=int, default=400)
    ap.add_argument("--out", help="keep the .pte files here (default: a temp dir)")
    ap.add_argument("--tried", action="store_true", help="add the int8 forms tried and not kept (tried_forms)")
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="edgegan-deconv-forms-"))
    out.mkdir(parents=True, exist_ok=True)

    model = load_generator(args.model)
    module = model.module.eval()
    calibration = np.ascontiguousarray(model.sample_inputs(64, 0), np.float32)
    inputs = np.ascontiguousarray(model.sample_inputs(16, 1), np.float32)
    np.save(out / "calibration.npy", calibration)
    np.save(out / "inputs.npy", inputs)
    with torch.no_grad():
        reference = module(torch.from_numpy(inputs)).numpy()
    peak = float(np.abs(reference).max()) or 1.0

    done = delegation_rewrite(module, calibration[:8], phase=True)
    latent = delegation_rewrite(module, calibration[:8], latent=True)
    # form -> (module, modes it is lowered in): the latent-only form is executorch-int8's choice
    forms = {"as-exported": (module, MODES), "phase": (done.module if done else module, MODES),
             "latent": (latent.module if latent else module, ("int8",))}
    if args.tried:
        forms.update(tried_forms(forms["latent"][0], calibration))
    print(f"# {args.model}: transposed convs as XNNPACK Deconvolutions vs the phase / linear forms\n")
    for name, rewrite in (("phase", done), ("latent", latent)):
        if rewrite:
            print(f"{name} rewrites: " + ", ".join(f"{k} x{v}" for k, v in rewrite.counts.items())
                  + f" (max abs err {rewrite.max_abs_err:.1e})\n")
    print("| .pte | bytes | int8 MAC share | max abs err vs torch | PSNR dB (peak-to-peak range) |")
    print("|---|---|---|---|---|")
    paths = []
    for form, (mod, modes) in forms.items():
        ep = torch.export.export(mod, (torch.from_numpy(calibration[:1]),))
        program = out / f"{form}.pt2"
        torch.export.save(ep, str(program))
        for mode in modes:
            pte = out / f"{form}_{mode}.pte"
            report = worker.convert({"program": str(program), "mode": mode, "out": str(pte),
                                     "calibration": str(out / "calibration.npy"), "per_channel": True,
                                     "fold_relu": mode == "int8"})
            got = Artifact(str(pte), f"executorch-{mode}", {}, 1).run_all(inputs)
            err = float(np.abs(got - reference).max())
            psnr = psnr_overall(got, reference, data_range=2 * peak)
            print(f"| {pte.name} | {pte.stat().st_size:,} | {report['int8_mac_fraction']} | {err:.2g} | {psnr:.2f} |")
            paths.append(pte)
    print()
    for threads in (1, 2):
        print(f"## strict alternation, {threads} thread(s), {args.runs} runs each (ratios to the first row)\n", flush=True)
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "alternating_ab.py"), *map(str, paths),
                        "--inputs", str(out / "inputs.npy"), "--runs", str(args.runs), "--threads", str(threads)],
                       check=True)
        print()
    print(f"files in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
