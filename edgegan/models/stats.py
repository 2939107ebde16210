"""Parameter counts, MACs and a content hash of a generator's weights."""
from __future__ import annotations

import hashlib

import numpy as np


def parameter_count(module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def weights_sha256(module) -> str:
    """sha256 over the state_dict tensors in key order: same weights -> same hash,
    whatever file they came from."""
    h = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        h.update(key.encode())
        arr = value.detach().cpu().contiguous().numpy()
        h.update(str(arr.dtype).encode())
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def count_macs(module, example: np.ndarray) -> int:
    """Multiply-accumulates of one forward pass on a single sample: torch's own FLOP counter
    (every convolution, transposed convolution, matmul/linear, bmm and attention op, whether
    called through a module or a functional), halved — it counts a MAC as two FLOPs."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    # parameters used directly in forward (a StyleGAN constant input) trip the counter's module
    # tracker when they require grad ("Expected gradient function to be set"); count without it
    params = [p for p in module.parameters() if p.requires_grad]
    try:
        for p in params:
            p.requires_grad_(False)
        with torch.no_grad(), counter:
            module(torch.from_numpy(np.ascontiguousarray(example[:1])))
    finally:
        for p in params:
            p.requires_grad_(True)
    return int(counter.get_total_flops()) // 2
