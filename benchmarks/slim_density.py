#!/usr/bin/env python3
"""GAN Slimming on the shipped dcgan-digits (BatchNorm scales) or resnet-sketch (slimming-time
affine InstanceNorm scales) against post-training channel pruning at about the same MACs.

    .venv/bin/python benchmarks/slim_density.py [--rhos 0.9,0.7] [--lr 5e-3] [--steps 300] [--finetune 150] [--out runs/slim]

For each rho: `slim` (8-bit fake-quant, beta 10) -> a plain smaller dcgan; then channel-prune
(L1, uniform ratio chosen so its MACs are closest to the slimmed model's, plus BatchNorm
re-calibration on 1,024 latents) of the teacher. Every model is scored on --n latents (seed 1):
IS / FD (digits CNN; not comparable to Inception-v3 numbers), LSH precision/recall vs the real
digits, PSNR vs the teacher's image for the same latent. Prints a markdown table and writes
slim_density.json and the slimmed checkpoints to --out. (Density-structure pruning runs in the
resnet-sketch mode only: it prunes image-to-image generators.)

    .venv/bin/python benchmarks/slim_density.py --model resnet-sketch --rhos 0.8,0.6 --lr 2e-4 --scale-lr 5e-3
        --steps 400 --finetune 150 --batch 8 --n 64 --out runs/slim-resnet

the same on the shipped ResNet sketch task (the student gets affine InstanceNorms, scale 1 /
shift 0): slim trains on 512 photo patches of the task's train split (an .npz in --out); every
model is scored on --n held-out patches (seed 1): PSNR and SSIM vs the ground-truth sketch and
PSNR vs the teacher; after each slim, `density` (density-structure pruning, same steps, batch,
lr and data) with --target-macs = the slimmed model's MACs ratio + 0.002 (it lands at or just
under it); channel-prune L1 (no fine-tune, nothing to re-calibrate: InstanceNorm) at the
closest MACs is the post-training baseline.

With --sup-steps N each slim/density student is also fine-tuned N steps on 4,096 train pairs
(L1 to the truth + --sup-distill x L1 to the teacher, 32x32 crops, cosine lr) and scored; the
from-scratch baseline (the slimmed widths, random init, L1 to the truth on the same 512 pairs,
steps + finetune steps, same batch) is scored unless --no-scratch; LSH precision/recall on
--lsh-n held-out patches (randconv features vs the true sketches). --reuse loads checkpoints
already in --out; --density-target / --density-floor set density's budget and full-res floor.

    .venv/bin/python benchmarks/slim_density.py --export-only [--model resnet-sketch] [--reuse] [--out runs/slim]
    .venv/bin/python benchmarks/slim_density.py --latency-only --out runs/slim

exports the teacher and every slim-*.pt (resnet-sketch: also density-*, scratch-*, supft-*) in
--out to onnx, ort-int8 and tflite-int8 (256 latents / 64 held-out patches, 128 calibration
inputs) and prints each artifact's PSNR vs its own float model and its host latency;
--latency-only re-times every bundle in --out round-robin across models (fair ratios on a busy
machine).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rhos", type=lambda s: [float(x) for x in s.split(",")], default=[0.9, 0.7])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--finetune", type=int, default=150)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--scale-lr", type=float, default=None, help="slim scale_lr (norm scales/shifts; default: --lr)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--out", default="runs/slim")
    ap.add_argument("--export-only", action="store_true", help="export the teacher and the slimmed checkpoints")
    ap.add_argument("--latency-only", action="store_true",
                    help="re-time every bundle-* in --out, interleaved round-robin across models and formats")
    ap.add_argument("--model", choices=["dcgan-digits", "resnet-sketch"], default="dcgan-digits")
    ap.add_argument("--no-density", action="store_true", help="resnet-sketch: skip density at each slim's MACs")
    ap.add_argument("--density-target", type=float, default=None,
                    help="resnet-sketch: density target_macs (default: the slimmed model's MACs ratio + 0.002)")
    ap.add_argument("--density-floor", type=float, default=0.0,
                    help="resnet-sketch: density full_res_floor (channels the stem / last up conv keep)")
    ap.add_argument("--reuse", action="store_true",
                    help="resnet-sketch: load slim-rhoR.pt / density-at-rhoR.pt already in --out instead of training")
    ap.add_argument("--no-scratch", action="store_true", help="resnet-sketch: skip the from-scratch baseline")
    ap.add_argument("--scratch-lr", type=float, default=1e-3, help="from-scratch Adam lr (cosine decay)")
    ap.add_argument("--lsh-n", type=int, default=512, help="resnet-sketch: held-out patches for LSH P/R (seed 2)")
    ap.add_argument("--sup-steps", type=int, default=0,
                    help="resnet-sketch: supervised + distillation fine-tune of every slim/density student (0: none)")
    ap.add_argument("--sup-batch", type=int, default=16)
    ap.add_argument("--sup-lr", type=float, default=5e-4)
    ap.add_argument("--sup-distill", type=float, default=1.0, help="weight of L1 to the teacher in the fine-tune")
    ap.add_argument("--sup-crop", type=int, default=32, help="random crop of the fine-tune's pairs (teacher: 32)")
    ap.add_argument("--sup-pairs", type=int, default=4096, help="train-split pairs of the fine-tune (seed 7)")
    args = ap.parse_args()
    if args.latency_only:
        return latency_all(Path(args.out))
    if args.export_only:
        return export_all(Path(args.out), args.model, args.reuse)
    if args.model == "resnet-sketch":
        return main_resnet(args)

    import numpy as np
    import torch

    import edgegan
    from edgegan.compress import BNRecalibrateConfig, ChannelPruneConfig, SlimConfig, save_compressed
    from edgegan.metrics.paired import psnr_overall
    from edgegan.models.stats import count_macs
    from kd_table import digits_scorer

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    score, _ = digits_scorer()
    teacher = edgegan.load_model("dcgan-digits")
    latents = teacher.sample_inputs(args.n, 1)
    example = teacher.sample_inputs(1, 0)

    def generate(model) -> np.ndarray:
        with torch.no_grad():
            return model.module(torch.from_numpy(latents)).numpy()

    ref = generate(teacher)
    t_macs = count_macs(teacher.module, example)
    t_params = sum(p.numel() for p in teacher.module.parameters())

    def row(name: str, model, seconds: float | None = None) -> dict:
        samples = generate(model)
        macs = count_macs(model.module, example)
        params = sum(p.numel() for p in model.module.parameters())
        r = {"model": name, "widths": model.config.get("hidden_channels", [256, 128, 64, 32]), "params": params,
             "params_ratio": round(params / t_params, 4), "macs_ratio": round(macs / t_macs, 4),
             "psnr_vs_teacher": round(psnr_overall(samples, ref), 2), **score(samples)}
        if seconds is not None:
            r["train_seconds"] = round(seconds, 1)
        print(json.dumps(r), flush=True)
        return r

    rows = [row("teacher dcgan-digits", teacher)]
    for rho in args.rhos:
        t0 = time.perf_counter()
        cfg = SlimConfig(rho=rho, steps=args.steps, finetune_steps=args.finetune, batch=args.batch, lr=args.lr,
                         bits=8, work_dir=str(out / f"slim-rho{rho:g}.training"))
        slimmed = edgegan.compress(teacher, cfg)
        save_compressed(slimmed, out / f"slim-rho{rho:g}.pt", base=teacher, base_model="dcgan-digits")
        r = row(f"slim rho={rho:g}", slimmed, time.perf_counter() - t0)
        rows.append(r)
        best = None
        for ratio in np.arange(0.0, 0.97, 0.025):
            pruned = edgegan.compress(teacher, ChannelPruneConfig(ratio=float(ratio)))
            gap = abs(count_macs(pruned.module, example) / t_macs - r["macs_ratio"])
            if best is None or gap < best[0]:
                best = (gap, float(ratio))
        pruned = edgegan.compress(teacher, ChannelPruneConfig(ratio=best[1]), BNRecalibrateConfig(samples=1024))
        rows.append(row(f"channel-prune L1 {best[1]:.3f} + bn-recalibrate", pruned))
    (out / "slim_density.json").write_text(json.dumps(rows, indent=1) + "\n")
    cols = ["model", "widths", "params_ratio", "macs_ratio", "psnr_vs_teacher", "is", "fd", "lsh_precision", "lsh_recall"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")


def main_resnet(args: argparse.Namespace) -> None:
    """Slim, density, from-scratch and channel pruning on the sketch task, scored against its ground truth."""
    import numpy as np
    import torch

    import edgegan
    from edgegan.compress import ChannelPruneConfig, DensityConfig, SlimConfig, save_compressed
    from edgegan.compress.training.supervised import SupervisedConfig, finetune, from_scratch
    from edgegan.datasets import sketch_patches
    from edgegan.metrics import extract_features, lsh_scores
    from edgegan.metrics.paired import psnr_overall, ssim
    from edgegan.models.stats import count_macs
    from edgegan.models.zoo import FAMILIES

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    teacher = edgegan.load_model("resnet-sketch")
    train = out / "sketch_train.npz"
    train_x, train_y = sketch_patches(512, 64, 0, split="train")
    np.savez(train, images=train_x)
    inputs, truth = sketch_patches(args.n, 64, 1, split="val")
    lsh_inputs, lsh_truth = sketch_patches(args.lsh_n, 64, 2, split="val")
    real_feats = extract_features(lsh_truth, "randconv")  # 3-channel sepia sketches: the seeded random conv net
    example = inputs[:1]

    def generate(model, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return np.concatenate([model.module(torch.from_numpy(x[i:i + 16])).numpy() for i in range(0, len(x), 16)])

    ref = generate(teacher, inputs)
    t_macs = count_macs(teacher.module, example)
    t_params = sum(p.numel() for p in teacher.module.parameters())

    def row(name: str, model, seconds: float | None = None) -> dict:
        samples = generate(model, inputs)
        macs = count_macs(model.module, example)
        params = sum(p.numel() for p in model.module.parameters())
        cfg = FAMILIES.get("resnet").config_cls.from_dict(model.config)
        lsh = lsh_scores(real_feats, extract_features(generate(model, lsh_inputs), "randconv"), variants=("lsh",))
        r = {"model": name, "widths": cfg.width_fields(), "params": params, "macs": macs,
             "params_ratio": round(params / t_params, 4), "macs_ratio": round(macs / t_macs, 4),
             "psnr_vs_truth": round(psnr_overall(samples, truth), 2),
             "ssim_vs_truth": round(float(np.mean(ssim(samples, truth))), 4),
             "psnr_vs_teacher": round(psnr_overall(samples, ref), 2) if model is not teacher else None,
             "lsh_precision": round(float(lsh["lsh_precision"]), 3), "lsh_recall": round(float(lsh["lsh_recall"]), 3)}
        if seconds is not None:
            r["train_seconds"] = round(seconds, 1)
        print(json.dumps(r), flush=True)
        return r

    def trained(path: Path, make):
        """(model, seconds or None): the checkpoint in --out with --reuse, else trained and saved."""
        if args.reuse and path.is_file():
            return edgegan.load_model(str(path)), None
        t0 = time.perf_counter()
        model = make()
        save_compressed(model, path, base=teacher, base_model="resnet-sketch")
        return model, time.perf_counter() - t0

    sup_pairs = sketch_patches(args.sup_pairs, 64, 7, split="train") if args.sup_steps else None

    def supervised_rows(tag: str, student, label: str) -> None:
        if not args.sup_steps:
            return
        cfg = SupervisedConfig(steps=args.sup_steps, batch=args.sup_batch, lr=args.sup_lr, distill=args.sup_distill,
                               crop=args.sup_crop, work_dir=str(out / f"supft-{tag}.training"))
        tuned, sec = trained(out / f"supft-{tag}.pt", lambda: finetune(student, *sup_pairs, cfg, teacher=teacher))
        rows.append(row(f"{label} + supervised fine-tune {args.sup_steps}", tuned, sec))

    rows = [row("teacher resnet-sketch", teacher)]
    for rho in args.rhos:
        cfg = SlimConfig(rho=rho, steps=args.steps, finetune_steps=args.finetune, batch=args.batch, lr=args.lr,
                         scale_lr=args.scale_lr, bits=8, data=str(train), work_dir=str(out / f"slim-rho{rho:g}.training"))
        slimmed, sec = trained(out / f"slim-rho{rho:g}.pt", lambda: edgegan.compress(teacher, cfg))
        r = row(f"slim rho={rho:g}", slimmed, sec)
        rows.append(r)
        if not args.no_scratch:  # the same widths from random init, supervised on the pairs, same steps and batch
            scfg = SupervisedConfig(steps=args.steps + args.finetune, batch=args.batch, lr=args.scratch_lr, loss="l1",
                                    work_dir=str(out / f"scratch-rho{rho:g}.training"))
            scratch, sec = trained(out / f"scratch-rho{rho:g}.pt",
                                   lambda: from_scratch(slimmed, train_x, train_y, scfg, teacher=teacher))
            rows.append(row(f"from scratch (slim rho={rho:g} widths), L1 to truth", scratch, sec))
        supervised_rows(f"slim-rho{rho:g}", slimmed, f"slim rho={rho:g}")
        if not args.no_density:  # density-structure pruning at the slimmed model's MACs
            target = args.density_target or min(0.999, r["macs_ratio"] + 0.002)
            dcfg = DensityConfig(target_macs=target, steps=args.steps,
                                 finetune_steps=args.finetune, batch=args.batch, lr=args.lr, data=str(train),
                                 full_res_floor=args.density_floor, work_dir=str(out / f"density-at-rho{rho:g}.training"))
            dense, sec = trained(out / f"density-at-rho{rho:g}.pt", lambda: edgegan.compress(teacher, dcfg))
            floor = f" floor {args.density_floor:g}" if args.density_floor else ""
            rows.append(row(f"density target={dcfg.target_macs:.3f}{floor}", dense, sec))
            supervised_rows(f"density-at-rho{rho:g}", dense, f"density target={dcfg.target_macs:.3f}")
        best = None
        for ratio in np.arange(0.0, 0.97, 0.025):
            pruned = edgegan.compress(teacher, ChannelPruneConfig(ratio=float(ratio)))
            gap = abs(count_macs(pruned.module, example) / t_macs - r["macs_ratio"])
            if best is None or gap < best[0]:
                best = (gap, float(ratio), pruned)
        rows.append(row(f"channel-prune L1 {best[1]:.3f}", best[2]))
    (out / "slim_density.json").write_text(json.dumps(rows, indent=1) + "\n")
    cols = ["model", "params_ratio", "macs_ratio", "psnr_vs_truth", "ssim_vs_truth", "psnr_vs_teacher",
            "lsh_precision", "lsh_recall", "train_seconds"]
    print("| " + " | ".join(cols) + " | widths |")
    print("|" + "---|" * (len(cols) + 1))
    for r in rows:
        print("| " + " | ".join(str(r.get(c, "")) for c in cols) + " | " + json.dumps(r["widths"]) + " |")


def export_all(out: Path, model: str = "dcgan-digits", reuse: bool = False) -> None:
    """Every student in --out and the teacher to onnx, ort-int8 and tflite-int8 (edgegan's default
    rewrites), one after another in this run: PSNR of each artifact vs its own float model and
    host latency (median, batch 1, one thread), with the ratio to the teacher's onnx latency."""
    import edgegan

    formats = ["onnx", "ort-int8", "tflite-int8"]
    image = model != "dcgan-digits"  # image models: held-out task patches (the zoo entry's inputs), 64 of them
    globs = ["slim-*.pt", "density-*.pt", "scratch-*.pt", "supft-*.pt"] if image else ["slim-*.pt"]
    specs = [("teacher", model), *((p.stem, str(p)) for g in globs for p in sorted(out.glob(g)))]
    rows, base = [], None
    print("| model | " + " | ".join(f"{f} PSNR dB / ms" for f in formats) + " | onnx ms / teacher's |", flush=True)
    print("|---|" + "---|" * (len(formats) + 1), flush=True)
    for name, spec in specs:
        done = out / f"bundle-{name}"
        if reuse and (done / "bundle.json").is_file():  # exported by an earlier run: reuse it
            from edgegan.bundle import Bundle
            bundle = Bundle.load(done)
        else:
            bundle = edgegan.export(spec, out=done, formats=formats, n_inputs=64 if image else 256, calibration=128,
                                    overwrite=True, threads=1, latency_rounds=2, latency_runs=20)
        r = {"model": name}
        cells = []
        for f in formats:
            rec = bundle.artifact(f)
            psnr = (rec.fidelity or {}).get("psnr_db", float("nan"))
            ms = rec.host_latency_ms.get("median", float("nan"))
            r[f] = {"psnr_db": psnr, "median_ms": ms, "status": rec.status}
            cells.append(f"{psnr:.1f} / {ms:.3f}")
        base = base or r["onnx"]["median_ms"]
        r["onnx_vs_teacher"] = round(r["onnx"]["median_ms"] / base, 3)
        rows.append(r)
        print(f"| {name} | " + " | ".join(cells) + f" | {r['onnx_vs_teacher']:.2f} |", flush=True)
    (out / "exports.json").write_text(json.dumps(rows, indent=1) + "\n")


def latency_all(out: Path, rounds: int = 5, runs: int = 20) -> None:
    """Median batch-1 host latency (one thread) of every artifact of every bundle-* in ``out``,
    measured round-robin over all (model, format) pairs in one run, so machine noise hits every
    model alike; ratios to the teacher's onnx."""
    import statistics
    import time as _time

    from edgegan.bundle import Bundle
    from edgegan.runner import edgegan_runner as r

    formats = ["onnx", "ort-int8", "tflite-int8"]
    arts = {}
    for d in sorted(out.glob("bundle-*")):
        b = Bundle.load(d)
        x = b.inputs()[:1]
        for f in formats:
            rec = b.artifact(f)
            arts[(d.name[len("bundle-"):], f)] = (r.Artifact(str(b.artifact_path(rec)), f, rec.io, 1), x)
    samples = {k: [] for k in arts}
    for k, (art, x) in arts.items():
        r.time_latency(art, x, 5, 5)  # warm
    for _ in range(rounds):
        for k, (art, x) in arts.items():
            _time.sleep(0.05)
            samples[k].extend(r.time_latency(art, x, 5, runs)[1])
    med = {k: statistics.median(v) for k, v in samples.items()}
    base = med[("teacher", "onnx")]
    print("| model | " + " | ".join(f"{f} ms (x teacher onnx)" for f in formats) + " |")
    print("|---|" + "---|" * len(formats))
    for name in dict.fromkeys(n for n, _ in arts):
        print(f"| {name} | " + " | ".join(f"{med[(name, f)]:.3f} ({med[(name, f)] / base:.2f})" for f in formats) + " |")
    (out / "latency.json").write_text(json.dumps({f"{n}/{f}": v for (n, f), v in med.items()}, indent=1) + "\n")


if __name__ == "__main__":
    main()
