#!/usr/bin/env python3
"""Remake the shipped `resnet-sketch-slim` weights (edgegan/models/pretrained/resnet_sketch_slim.pt):
GAN Slimming at rho 0.65 on the sketch task, then a 4,000-step supervised + distillation
fine-tune (docs/training.md, "The sketch task, complete"), copied into the zoo's weights form.

    .venv/bin/python benchmarks/ship_sketch_student.py [--work runs/ship-sketch] [--out edgegan/models/pretrained/resnet_sketch_slim.pt]

~10 min on one idle core (slim 550 steps + fine-tune 4,000 steps); seeded and single-threaded,
so the same torch build gives the same weights. It runs benchmarks/slim_density.py for the
training and scoring, then writes the checkpoint with the zoo config the entry declares.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="runs/ship-sketch")
    ap.add_argument("--out", default=str(HERE.parent / "edgegan/models/pretrained/resnet_sketch_slim.pt"))
    args = ap.parse_args()
    argv = [sys.executable, str(HERE / "slim_density.py"), "--model", "resnet-sketch", "--rhos", "0.65", "--lr", "2e-4",
            "--scale-lr", "5e-3", "--steps", "400", "--finetune", "150", "--batch", "8", "--n", "64",
            "--no-density", "--no-scratch", "--sup-steps", "4000", "--reuse", "--out", args.work]
    subprocess.run(argv, check=True)

    import edgegan
    from edgegan.models.loading import save_checkpoint
    from edgegan.models.zoo import ZOO

    student = edgegan.load_model(str(Path(args.work) / "supft-slim-rho0.65.pt"))
    entry = ZOO.get("resnet-sketch-slim")
    cfg = {k: v for k, v in student.config.items()}
    want = {k: v for k, v in entry.config.items()}
    if any(cfg.get(k) != v for k, v in want.items()):
        raise SystemExit(f"the student's config {json.dumps(cfg)} differs from the zoo entry's {json.dumps(want)}; "
                         "update the entry in edgegan/models/zoo.py")
    save_checkpoint(args.out, student.module, "resnet", student.config, "resnet-sketch-slim",
                    base_model="resnet-sketch", compression=student.compression)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
