"""Train `resnet-sketch`: the ResNet generator (ngf 16, 6 blocks) that turns photo patches into
pencil sketches (task defined in edgegan.datasets), with an L1 loss.

    python -m edgegan.models.training.sketch [--steps 5000] [--out PATH]

Trained on 32×32 patches (the network is fully convolutional; it is exported at 64×64), Adam
1e-3 with cosine decay, batch 16, seeded, one CPU thread by default.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def train(steps: int, out: Path, seed: int = 0, batch: int = 16, threads: int = 1, grid: Path | None = None) -> dict:
    import torch
    import torch.nn.functional as F

    from ...metrics.paired import psnr_overall as psnr
    from ...datasets import sketch_patches
    from ..loading import build_family, save_checkpoint

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    G, cfg, _ = build_family("resnet", {"ngf": 16, "n_blocks": 6, "image_size": 64}, seed)
    opt = torch.optim.Adam(G.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    val_in, val_gt = sketch_patches(64, 64, 12345, split="val")
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        x, y = sketch_patches(batch, 32, seed * 1_000_003 + step, split="train")
        loss = F.l1_loss(G(torch.from_numpy(x)), torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == steps:
            print(f"step {step}/{steps}  l1 {loss.item():.4f}  {time.perf_counter() - t0:.0f}s", flush=True)
    seconds = time.perf_counter() - t0
    G.eval()
    with torch.no_grad():
        pred = G(torch.from_numpy(val_in)).numpy()
    info = {"steps": steps, "batch": batch, "seed": seed, "threads": threads, "train_seconds": round(seconds, 1),
            "val_psnr_identity_db": round(psnr(val_in, val_gt), 2), "val_psnr_output_db": round(psnr(pred, val_gt), 2)}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, G, "resnet", cfg.to_dict(), "resnet-sketch", base_model="resnet-sketch")
    if grid is not None:
        from ...reports.grid import save_grid

        rows = np.concatenate([val_in[:8], pred[:8], val_gt[:8]])
        save_grid(rows, grid, nrow=8, scale=2)
    return info


def main() -> None:
    from . import run_training_cli

    run_training_cli(__doc__, train, 5000, "resnet_sketch.pt", "resnet_sketch_samples.png")


if __name__ == "__main__":
    main()
