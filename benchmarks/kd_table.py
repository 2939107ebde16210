#!/usr/bin/env python3
"""The KD-GAN table (Aguinaldo et al. 2019) on scikit-learn digits: distilled DCGAN students of
width d (mse, joint) against the same width trained as a plain GAN (regular), same steps.

    .venv/bin/python benchmarks/kd_table.py train [--widths 2,4,8,16] [--steps 600] [--out runs/kd]
    .venv/bin/python benchmarks/kd_table.py table [--out runs/kd] [--n 2000]

`train` writes one edgegan checkpoint per (width, loss) into --out (with its training.json
folder) through the public API (edgegan.compress + save_compressed); it skips checkpoints
that exist, so an interrupted run continues. `table` scores every checkpoint on --n latents
(seed 1) against the 1,797 real digits and prints the markdown table:

d, parameters (= 672 d^2 + 12831 d + 1, the paper's count), compression ratio to the teacher,
IS and FD from the shipped digits CNN (its class probabilities / 64-d features; NOT comparable
to Inception-v3 numbers), LSH precision/recall vs the real digits (digits-CNN features).
IS and FD come from edgegan.metrics.distribution (torch-fidelity's formulas). One 8x8 sample
grid per checkpoint goes to --out/grids.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

LOSSES = ("mse", "joint", "regular")


def train(args: argparse.Namespace) -> None:
    import edgegan
    from edgegan.compress import KDConfig, save_compressed

    teacher = edgegan.load_model(args.teacher)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for d in args.widths:
        for loss in args.losses:
            ckpt = out / f"d{d}-{loss}.pt"
            if ckpt.exists():
                print(f"{ckpt} exists, skipped", flush=True)
                continue
            t0 = time.perf_counter()
            cfg = {"width": d, "loss": loss, "steps": args.steps, "batch": args.batch, "lr": args.lr,
                   "seed": args.seed, "save_every": 100, "work_dir": str(out / f"d{d}-{loss}.training")}
            work = Path(cfg["work_dir"])
            cfg["resume"] = (work / "state.pt").is_file()
            student = edgegan.compress(teacher, KDConfig(**cfg))
            save_compressed(student, ckpt, base=teacher, base_model=args.teacher)
            last = student.compression[-1]["stats"]["training"]["last_20_mean"]
            print(f"d={d} {loss}: {time.perf_counter() - t0:.0f}s, last-20 losses {last}", flush=True)


def digits_scorer():
    """score(samples) -> IS, FD (digits CNN) and LSH precision/recall vs the 1,797 real digits."""
    import numpy as np
    import torch

    from edgegan.datasets import digits_images
    from edgegan.metrics import extract_features, lsh_scores
    from edgegan.metrics.digits_cnn import load_digits_cnn
    from edgegan.metrics.distribution import frechet_distance, inception_score

    real = digits_images(32)
    cnn = load_digits_cnn()
    real_feats = extract_features(real, "digits")

    def score(samples: np.ndarray) -> dict:
        with torch.no_grad():
            probs = torch.softmax(cnn(torch.from_numpy(np.ascontiguousarray(samples))), dim=1).numpy()
        feats = extract_features(samples, "digits")
        row = lsh_scores(real_feats, feats, variants=("lsh",))
        row["is"] = inception_score(probs, splits=10)[0]
        row["fd"] = frechet_distance(real_feats, feats)
        return row

    return score, real


def table(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    import edgegan
    from edgegan.reports.grid import save_grid

    torch.set_num_threads(1)
    out = Path(args.out)
    score, real = digits_scorer()
    rows = []
    teacher = edgegan.load_model(args.teacher)
    latents = teacher.sample_inputs(args.n, 1)

    def generate(model) -> np.ndarray:
        with torch.no_grad():
            return np.concatenate([model.module(torch.from_numpy(latents[i:i + 500])).numpy()
                                   for i in range(0, len(latents), 500)])

    t_params = sum(p.numel() for p in teacher.module.parameters())
    grids = out / "grids"
    rows.append({"name": f"teacher ({args.teacher})", "d": teacher.config["width"], "loss": "-", "params": t_params,
                 "ratio": 1.0, **score(generate(teacher))})
    rows.append({"name": "real digits", "d": None, "loss": "-", "params": None, "ratio": None,
                 **score(real[np.random.default_rng(1).permutation(len(real))])})
    for ckpt in sorted(out.glob("d*-*.pt"), key=lambda p: (int(p.stem.split("-")[0][1:]), LOSSES.index(p.stem.split("-")[1]))):
        model = edgegan.load_model(str(ckpt))
        samples = generate(model)
        save_grid(samples[:64], grids / f"{ckpt.stem}.png", nrow=8, scale=2)
        params = sum(p.numel() for p in model.module.parameters())
        rows.append({"name": ckpt.stem, "d": model.config["width"], "loss": ckpt.stem.split("-")[1], "params": params,
                     "ratio": round(t_params / params, 1), **score(samples)})
    (out / "kd_table.json").write_text(json.dumps(rows, indent=1) + "\n")
    cols = ["d", "loss", "params", "ratio", "is", "fd", "lsh_precision", "lsh_recall"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            cells.append("" if v is None else
                         f"{v:,}" if isinstance(v, int) else f"{v:.3f}" if isinstance(v, float) else str(v))
        if r["name"] in ("real digits",) or r["name"].startswith("teacher"):
            cells[1] = r["name"]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("phase", choices=["train", "table"])
    ap.add_argument("--teacher", default="dcgan-digits")
    ap.add_argument("--widths", type=lambda s: [int(x) for x in s.split(",")], default=[2, 4, 8, 16])
    ap.add_argument("--losses", type=lambda s: s.split(","), default=list(LOSSES))
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--out", default="runs/kd")
    args = ap.parse_args()
    train(args) if args.phase == "train" else table(args)


if __name__ == "__main__":
    main()
