"""Train `resnet-sketch`: the ResNet generator (ngf 16, 6 blocks) that turns photo patches into
pencil sketches (task defined in edgegan.models.data), with an L1 loss.

    python -m edgegan.models.training.sketch [--steps 5000] [--out PATH]

Trained on 32×32 patches (the network is fully convolutional; it is exported at 64×64), Adam
1e-3 with cosine decay, batch 16, seeded, one CPU thread by default.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 2.0) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


def train(steps: int, out: Path, seed: int = 0, batch: int = 16, threads: int = 1, grid: Path | None = None) -> dict:
    import torch
    import torch.nn.functional as F

    from ..data import sketch_patches
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
    from ..zoo import PRETRAINED_DIR

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=PRETRAINED_DIR / "resnet_sketch.pt")
    ap.add_argument("--grid", type=Path, default=Path("docs/img/resnet_sketch_samples.png"))
    args = ap.parse_args()
    info = train(args.steps, args.out, args.seed, threads=args.threads, grid=args.grid)
    print(f"wrote {args.out}: {info}")


if __name__ == "__main__":
    main()
