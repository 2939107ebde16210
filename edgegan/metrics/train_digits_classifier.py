"""Train the ``digits`` feature extractor's CNN on scikit-learn's digits (32×32, [-1, 1]).

    python -m edgegan.metrics.train_digits_classifier [--epochs 40] [--out PATH]

Seeded, CPU, one thread (so reruns give the same weights), about a minute. A stratified 20 %
of the 1,797 images is held out; its accuracy is printed and recorded in docs/metrics.md.
Training uses random ±2-pixel shifts so that features stay stable on slightly off-centre
generated digits.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

HELD_OUT_FRACTION = 0.2


def split_indices(labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train / held-out split (same per class fraction), deterministic."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_held = int(round(len(idx) * HELD_OUT_FRACTION))
        held.append(idx[:n_held])
        train.append(idx[n_held:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


def _shift(batch, rng: np.random.Generator, max_shift: int = 2):
    """Random integer translations with -1 (background) fill."""
    import torch

    out = torch.full_like(batch, -1.0)
    n, _, h, w = batch.shape
    dy, dx = rng.integers(-max_shift, max_shift + 1, size=2)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[:, :, yd, xd] = batch[:, :, ys, xs]
    return out


def accuracy(model, images: np.ndarray, labels: np.ndarray) -> float:
    import torch

    with torch.no_grad():
        pred = model(torch.from_numpy(images)).argmax(1).numpy()
    return float((pred == labels).mean())


def train(epochs: int = 40, out: Path | None = None, seed: int = 0, batch: int = 64, threads: int = 1) -> dict:
    import torch
    import torch.nn.functional as F

    from ..datasets import digits_images, digits_labels
    from .digits_cnn import WEIGHTS_PATH, build_digits_cnn

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images, labels = digits_images(32), digits_labels()
    tr, held = split_indices(labels, seed)
    x_tr, y_tr = torch.from_numpy(images[tr]), torch.from_numpy(labels[tr])
    model = build_digits_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = torch.from_numpy(rng.permutation(len(tr)))
        for i in range(0, len(tr), batch):
            idx = perm[i : i + batch]
            loss = F.cross_entropy(model(_shift(x_tr[idx], rng)), y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    model.eval()
    out = Path(out) if out is not None else WEIGHTS_PATH
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, out)
    return {
        "train_accuracy": accuracy(model, images[tr], labels[tr]),
        "held_out_accuracy": accuracy(model, images[held], labels[held]),
        "held_out_count": int(len(held)),
        "epochs": epochs,
        "seconds": round(time.perf_counter() - t0, 1),
        "path": str(out),
        "bytes": out.stat().st_size,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="default: edgegan/metrics/weights/digits_cnn.pt")
    args = p.parse_args(argv)
    info = train(args.epochs, args.out, args.seed, threads=args.threads)
    for k, v in info.items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
