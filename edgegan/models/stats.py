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
    """Multiply-accumulates of one forward pass on a single sample (conv, transposed conv,
    linear), counted with forward hooks."""
    import torch
    from torch import nn

    total = 0

    def conv_hook(m, inp, out):
        nonlocal total
        k = int(np.prod(m.kernel_size)) * (m.in_channels // m.groups)
        total += out.numel() // out.shape[0] * k

    def convt_hook(m, inp, out):
        nonlocal total
        x = inp[0]
        k = int(np.prod(m.kernel_size)) * (m.out_channels // m.groups)
        total += x.numel() // x.shape[0] * k

    def linear_hook(m, inp, out):
        nonlocal total
        total += out.numel() // out.shape[0] * m.in_features

    handles = []
    for m in module.modules():
        if isinstance(m, nn.ConvTranspose2d):
            handles.append(m.register_forward_hook(convt_hook))
        elif isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            module(torch.from_numpy(np.ascontiguousarray(example[:1])))
    finally:
        for h in handles:
            h.remove()
    return int(total)
