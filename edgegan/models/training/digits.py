"""Train `dcgan-digits`: the width-32 DCGAN as a GAN on scikit-learn's digits (32×32).

    python -m edgegan.models.training.digits [--steps 3000] [--out PATH]

Standard DCGAN recipe (Adam 2e-4, β1 0.5, N(0, 0.02) init, one-sided label smoothing 0.9)
with a small conv discriminator. Seeded; one CPU thread by default so reruns match.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def build_discriminator(width: int, channels: int = 1):
    from torch import nn

    d = width
    return nn.Sequential(
        nn.Conv2d(channels, d, 4, 2, 1), nn.LeakyReLU(0.2, True),  # 16
        nn.Conv2d(d, 2 * d, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * d), nn.LeakyReLU(0.2, True),  # 8
        nn.Conv2d(2 * d, 4 * d, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * d), nn.LeakyReLU(0.2, True),  # 4
        nn.Conv2d(4 * d, 1, 4, 1, 0), nn.Flatten(),
    )


def _init(m) -> None:
    from torch import nn

    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def train(steps: int, out: Path, seed: int = 0, batch: int = 64, threads: int = 1, grid: Path | None = None) -> dict:
    import torch
    import torch.nn.functional as F

    from ...datasets import digits_images
    from ..loading import build_family, save_checkpoint

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data = torch.from_numpy(digits_images(32))
    G, cfg, _ = build_family("dcgan", {"width": 32}, seed)
    D = build_discriminator(32)
    G.apply(_init)
    D.apply(_init)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        real = data[torch.from_numpy(rng.integers(0, len(data), batch))]
        z = torch.randn(batch, 100, 1, 1)
        fake = G(z)
        d_real, d_fake = D(real), D(fake.detach())
        loss_d = F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, 0.9)) + \
            F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        d_gen = D(fake)
        loss_g = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        if step % 250 == 0 or step == steps:
            print(f"step {step}/{steps}  loss_d {loss_d.item():.3f}  loss_g {loss_g.item():.3f}  "
                  f"{time.perf_counter() - t0:.0f}s", flush=True)
    seconds = time.perf_counter() - t0
    G.eval()
    info = {"steps": steps, "batch": batch, "seed": seed, "threads": threads, "train_seconds": round(seconds, 1)}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, G, "dcgan", cfg.to_dict(), "dcgan-digits", base_model="dcgan-digits")
    if grid is not None:
        from ...reports.grid import save_grid

        with torch.no_grad():
            samples = G(torch.from_numpy(np.random.default_rng(1).standard_normal((64, 100, 1, 1), dtype=np.float32)))
        save_grid(samples.numpy(), grid, nrow=8, scale=2)
    return info


def main() -> None:
    from . import run_training_cli

    run_training_cli(__doc__, train, 3000, "dcgan_digits.pt", "dcgan_digits_samples.png")


if __name__ == "__main__":
    main()
