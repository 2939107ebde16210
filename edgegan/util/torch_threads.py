"""A block run on a fixed number of torch CPU threads.

Why: multi-threaded torch CPU kernels are not reproducible on a loaded machine (the BLAS
re-splits a reduction when it gets fewer threads: two float runs of a deterministic model once
differed by 2.5e-5), while one thread gives the same bits on every run. Quality numbers that
must be reproducible (the sweep's per-pipeline quality, the random-model check) run on one."""
from __future__ import annotations

import contextlib
from typing import Iterator


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads, then restore the previous count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
