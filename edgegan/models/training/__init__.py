"""Scripts that train the zoo's shipped weights here, reproducibly (CPU, seeded)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable


def run_training_cli(doc: str, train: Callable[..., dict], steps: int, weights: str, grid: str) -> None:
    """The shared command line of the training scripts (``--steps --seed --threads --out --grid``)."""
    from ..zoo import PRETRAINED_DIR

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=PRETRAINED_DIR / weights)
    ap.add_argument("--grid", type=Path, default=Path("docs/img") / grid)
    args = ap.parse_args()
    info = train(args.steps, args.out, args.seed, threads=args.threads, grid=args.grid)
    print(f"wrote {args.out}: {info}")
