"""Float-exact torch-level graph rewrites that let an int8 runtime stay in int8.

ONNX Runtime's CPU provider has no int8 ConvTranspose: in a QDQ model each one is dequantized,
run in float and re-quantized, which makes an all-ConvTranspose DCGAN *slower* in int8 than
in float. A stride-2 transposed convolution is exactly a 2×2 convolution over the zero-padded
input producing 4·C_out channels followed by a pixel shuffle (the "sub-pixel" form): output
pixel (2i+a, 2j+b) only sees a 2×2 window of input pixels whose position depends on the phase
(a, b), and one C_out block per phase holds that phase's taps — the same number of weights and
~the same MACs as the transposed conv, so the int8 file stays 1/4 of float. Phase 1's window
always starts on the same conv-output row as phase 0's or one row later (start_a =
floor((a + p - k) / 2) + 1), so with the phase blocks ordered to match, the interleave is one
DepthToSpace of the whole conv output and a crop, which ONNX Runtime runs on the int8 tensor.
BatchNorm after it folds into the new conv's weights and bias. A transposed conv on a 1×1 input
(a DCGAN's latent layer) becomes a 1×1 conv + reshape + per-channel bias: left as
ConvTranspose, ORT dequantized its large weight on every run and ran it in float (8 % + 8 % of
dcgan-digits' int8 kernel time, `benchmarks/ort_per_op.py`).

The result is checked against the original before use, and used for the int8 artifact only
(the float artifact keeps the graph as exported).
"""
from __future__ import annotations

import copy
import dataclasses
import logging

import numpy as np

log = logging.getLogger(__name__)


@dataclasses.dataclass
class RewriteReport:
    rewrites: list
    max_abs_err: float


def _phase_taps(k: int, p: int) -> dict[int, tuple[int, dict[int, int]]] | None:
    """For a stride-2 transposed conv: phase a -> (window start s_a, {u in 0..1: kernel index})
    meaning output row 2i+a = sum over u of x[i + s_a + u] * W[kernel index]. None when a
    phase needs more than a 2-wide window."""
    phases = {}
    used = []
    for a in (0, 1):
        offs = {d: a + p - 2 * d for d in range(-k, k + 1) if 0 <= a + p - 2 * d < k}
        if not offs or max(offs) - min(offs) > 1:
            return None
        start = min(offs)
        phases[a] = (start, {d - start: kh for d, kh in offs.items()})
        used += list(offs.values())
    return phases if sorted(used) == list(range(k)) else None


def bn_affine(bn, channels: int | None = None) -> tuple | None:
    """(scale, shift) per channel of an eval-mode BatchNorm2d (over ``channels`` channels when
    given), the affine map it applies: y = x * scale + shift. None for anything else (training
    mode, no running statistics, another width), which then stays where it is."""
    import torch
    from torch import nn

    if not (isinstance(bn, nn.BatchNorm2d) and not bn.training and bn.running_mean is not None
            and (channels is None or bn.num_features == channels)):
        return None
    scale = 1.0 / torch.sqrt(bn.running_var.detach() + bn.eps)
    if bn.affine:
        scale = scale * bn.weight.detach()
    shift = -bn.running_mean.detach() * scale + (bn.bias.detach() if bn.affine else 0.0)
    return scale, shift


def _fold_bn(bias, bn):
    """(scale, bias) of a conv output channel followed by the eval BatchNorm ``bn`` (its weight
    is multiplied by scale)."""
    scale, shift = bn_affine(bn)
    return scale, bias * scale + shift


class _ShuffleConvUp(__import__("torch").nn.Module):
    """Stride-2 transposed conv as pad -> 2×2 conv -> pixel shuffle (DepthToSpace) -> crop, the
    phase blocks ordered so output row r is shuffled row r + offset: no per-phase slices and no
    6-D transpose, and ONNX Runtime runs DepthToSpace on the int8 tensor."""

    def __init__(self, conv, pads: tuple[int, int], offset: int) -> None:
        super().__init__()
        self.conv, self.pads, self.offset = conv, pads, offset

    def forward(self, x):
        import torch.nn.functional as F

        h, w = x.shape[-2], x.shape[-1]
        lo, hi = self.pads
        z = F.pixel_shuffle(self.conv(F.pad(x, (lo, hi, lo, hi))), 2)
        o = self.offset
        # a copy, not a view: an in-place ReLU after it would otherwise export as a scatter back
        return z[:, :, o:o + 2 * h, o:o + 2 * w].clone()


class _PointConvUp(__import__("torch").nn.Module):
    """A transposed conv applied to a 1×1 input (a DCGAN's latent layer) as a 1×1 conv
    producing C_out·k² channels, a reshape and a per-channel bias: exact, and an int8 runtime
    without a quantized ConvTranspose runs it as one int8 conv instead of dequantizing its large
    weight every run. The bias is added after the reshape (C_out values, not C_out·k²)."""

    def __init__(self, conv, bias, c_out: int, k: int) -> None:
        super().__init__()
        self.conv, self.c_out, self.k = conv, c_out, k
        self.bias = __import__("torch").nn.Parameter(bias.view(1, c_out, 1, 1))

    def forward(self, x):
        return self.conv(x).reshape(x.shape[0], self.c_out, self.k, self.k) + self.bias


def _pointwise_module(convt, bn):
    import torch
    from torch import nn

    w = convt.weight.detach()  # [C_in, C_out, k, k]
    c_in, c_out, k = w.shape[0], w.shape[1], w.shape[2]
    bias = convt.bias.detach() if convt.bias is not None else torch.zeros(c_out)
    scale = torch.ones(c_out)
    if bn is not None:
        scale, bias = _fold_bn(bias, bn)
    conv = nn.Conv2d(c_in, c_out * k * k, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_((w * scale[None, :, None, None]).permute(1, 2, 3, 0).reshape(c_out * k * k, c_in, 1, 1))
    return _PointConvUp(conv, bias.clone(), c_out, k)


def _subpixel_module(convt, bn):
    import torch
    from torch import nn

    k, p = convt.kernel_size[0], convt.padding[0]
    phases = _phase_taps(k, p)
    w = convt.weight.detach()  # [C_in, C_out, k, k]
    c_in, c_out = w.shape[0], w.shape[1]
    bias = convt.bias.detach() if convt.bias is not None else torch.zeros(c_out)
    scale = torch.ones(c_out)
    if bn is not None:
        scale, bias = _fold_bn(bias, bn)
    kernel = torch.zeros(2, 2, c_out, c_in, 2, 2)
    for a, (_, taps_a) in phases.items():
        for b, (_, taps_b) in phases.items():
            for u, kh in taps_a.items():
                for v, kw in taps_b.items():
                    kernel[a, b, :, :, u, v] = w[:, :, kh, kw].T * scale[:, None]
    starts = (phases[0][0], phases[1][0])
    lo = max(0, -min(starts))
    hi = max(0, max(starts) + 1)
    conv = nn.Conv2d(c_in, 4 * c_out, 2, bias=True)
    step = starts[1] - starts[0]  # 0 or 1 for every kernel _phase_taps accepts (module docstring)
    # shuffled row 2m + slot holds phase (slot XOR step) at conv row m; output row r is shuffled
    # row r + offset; pixel_shuffle wants channel index c*4 + slot_a*2 + slot_b
    order = [1 - a for a in (0, 1)] if step else [0, 1]
    kernel = kernel[order][:, order].permute(2, 0, 1, 3, 4, 5)
    with torch.no_grad():
        conv.weight.copy_(kernel.reshape(4 * c_out, c_in, 2, 2))
        conv.bias.copy_(bias.repeat_interleave(4))
    return _ShuffleConvUp(conv, (lo, hi), 2 * (starts[0] + lo) + step)


def _replacement(convt, bn, hw, latent: bool = True) -> tuple:
    """(new module, what it is) for a transposed conv with input size ``hw``, or (None, "")."""
    k, s, p = convt.kernel_size[0], convt.stride[0], convt.padding[0]
    op = convt.output_padding[0]
    if hw is None:
        return None, ""
    if s == 2 and _phase_taps(k, p) is not None and (hw[0] - 1) * 2 - 2 * p + k + op == 2 * hw[0]:
        return _subpixel_module(convt, bn), f"ConvTranspose k{k} s2 p{p} -> pad + Conv 2x2 (4 phases) + DepthToSpace + crop"
    if latent and tuple(hw) == (1, 1) and p == 0 and op == 0:
        return _pointwise_module(convt, bn), f"ConvTranspose k{k} on a 1x1 input -> Conv 1x1 + reshape"
    return None, ""


def _rewrite_sequential(seq, input_hw: dict, done: list, prefix: str = "", latent: bool = True) -> None:
    from torch import nn

    children = list(seq.named_children())
    i = 0
    while i < len(children):
        name, mod = children[i]
        path = f"{prefix}{name}"
        if isinstance(mod, nn.ConvTranspose2d) and mod.groups == 1 and mod.dilation == (1, 1) \
                and mod.kernel_size[0] == mod.kernel_size[1] and mod.stride[0] == mod.stride[1] \
                and mod.padding[0] == mod.padding[1]:
            nxt = children[i + 1][1] if i + 1 < len(children) else None
            bn = nxt if bn_affine(nxt, mod.out_channels) is not None else None
            new, what = _replacement(mod, bn, input_hw.get(id(mod)), latent)
            what = f"{path}: {what}"
            if new is not None:
                setattr(seq, name, new)
                if bn is not None:
                    setattr(seq, children[i + 1][0], nn.Identity())
                    what += " (BatchNorm folded)"
                    i += 1
                done.append(what)
        elif len(list(mod.children())) > 0:
            _rewrite_sequential(mod, input_hw, done, f"{path}.", latent)
        i += 1


def _attr(gm, node):
    """The tensor a ``get_attr`` node reads (None for anything else, e.g. a computed weight)."""
    if node is None:
        return None
    if getattr(node, "op", None) != "get_attr":
        raise LookupError
    obj = gm
    for part in node.target.split("."):
        obj = getattr(obj, part)
    return obj.detach()


def _transposed_conv_args(node):
    """(input, weight, bias, stride, padding, output_padding, groups, dilation) of an aten
    transposed-convolution node, or None when the node is something else."""
    import torch

    aten = torch.ops.aten
    if node.op != "call_function":
        return None
    a = list(node.args)
    if node.target == aten.conv_transpose2d.input:
        a += [None, 1, 0, 0, 1, 1][len(a) - 2:]
        return a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
    if node.target == aten.convolution.default and len(a) >= 9 and a[6]:
        return a[0], a[1], a[2], a[3], a[4], a[7], a[8], a[5]
    return None


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[-1]))


def _eval_bn_user(node):
    """The single eval-mode ``aten.batch_norm`` consuming ``node`` (foldable), else None."""
    import torch

    users = list(node.users)
    if len(users) == 1 and users[0].op == "call_function" and users[0].target == torch.ops.aten.batch_norm.default \
            and users[0].args[0] is node and users[0].args[5] is False:
        return users[0]
    return None


def _rewrite_graph(gm, input_hw: dict, done: list, latent: bool = True) -> None:
    """The same rewrite on a ``torch.fx.GraphModule`` (a ``torch.export`` program's module),
    whose transposed convolutions are aten calls rather than ``nn.ConvTranspose2d`` modules."""
    from torch import nn

    for node in list(gm.graph.nodes):
        args = _transposed_conv_args(node)
        if args is None:
            continue
        x, w_node, b_node, stride, padding, out_pad, groups, dilation = args
        try:
            weight, bias = _attr(gm, w_node), _attr(gm, b_node)
        except LookupError:
            continue
        k, s, p, op = _pair(weight.shape[2:]), _pair(stride), _pair(padding), _pair(out_pad)
        if groups != 1 or _pair(dilation) != (1, 1) or k[0] != k[1] or s[0] != s[1] or p[0] != p[1] \
                or op[0] != op[1] or weight.dim() != 4:
            continue
        convt = nn.ConvTranspose2d(weight.shape[0], weight.shape[1], k[0], s[0], p[0], output_padding=op[0],
                                   bias=bias is not None)
        convt.weight.data.copy_(weight)
        if bias is not None:
            convt.bias.data.copy_(bias)
        bn_node, bn = _eval_bn_user(node), None
        if bn_node is not None:
            try:
                gamma, beta, mean, var = (_attr(gm, n) for n in bn_node.args[1:5])
            except LookupError:
                bn_node = None
            else:
                bn = nn.BatchNorm2d(weight.shape[1], eps=float(bn_node.args[7])).eval()
                for t, v in ((bn.weight, gamma), (bn.bias, beta), (bn.running_mean, mean), (bn.running_var, var)):
                    if v is not None:
                        t.data.copy_(v)
        module, what = _replacement(convt, bn, input_hw.get(node.name), latent)
        if module is None:
            continue
        name = f"subpixel_{len(done)}"
        gm.add_submodule(name, module.eval())
        last = bn_node if bn_node is not None else node
        with gm.graph.inserting_before(node):
            new = gm.graph.call_module(name, (x,))
        last.replace_all_uses_with(new)
        if bn_node is not None:
            gm.graph.erase_node(bn_node)
        gm.graph.erase_node(node)
        done.append(f"{node.name}: {what}" + (" (BatchNorm folded)" if bn is not None else ""))
    for node in list(gm.graph.nodes):  # weights only the replaced nodes read
        if node.op == "get_attr" and not node.users:
            gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()


def _graph_input_hw(gm, x) -> dict:
    """node name -> input (H, W) of every transposed convolution, from one interpreted run."""
    import torch.fx

    seen: dict = {}

    class _Recorder(torch.fx.Interpreter):
        def run_node(self, n):
            if _transposed_conv_args(n) is not None:
                x_in = self.env[n.args[0]] if isinstance(n.args[0], torch.fx.Node) else None
                if hasattr(x_in, "shape"):
                    seen[n.name] = tuple(x_in.shape[-2:])
            return super().run_node(n)

    _Recorder(gm).run(x)
    return seen


def subpixel_rewrite(module, example: np.ndarray, atol: float = 1e-4, latent: bool = True):
    """A rewritten deep copy of ``module`` (eval mode; an ``nn.Module`` tree or the GraphModule of
    a ``.pt2``) plus what changed and the max error vs the original on ``example``; raises
    ValueError when nothing applies or it is not exact. ``latent=False`` leaves a transposed
    conv on a 1×1 input alone (a runtime with an int8 TRANSPOSE_CONV gains nothing from it and
    pays its C_out·k² per-channel scales in file size)."""
    import torch
    import torch.fx
    from torch import nn

    model = copy.deepcopy(module).eval()
    x = torch.from_numpy(np.ascontiguousarray(example))
    if isinstance(model, torch.fx.GraphModule):  # a torch.export program's module (.pt2)
        with torch.no_grad():
            ref = model(x)
            shapes = _graph_input_hw(model, x)
        rewritten: list = []
        _rewrite_graph(model, shapes, rewritten, latent)
        return _checked(model, x, ref, rewritten, atol)
    input_hw: dict = {}
    hooks = [m.register_forward_pre_hook(lambda m, inp: input_hw.__setitem__(id(m), tuple(inp[0].shape[-2:])))
             for m in model.modules() if isinstance(m, nn.ConvTranspose2d)]
    with torch.no_grad():
        ref = model(x)
    for h in hooks:
        h.remove()
    done: list = []
    _rewrite_sequential(model, input_hw, done, latent=latent)
    return _checked(model, x, ref, done, atol)


def _checked(model, x, ref, done: list, atol: float):
    """(model, report) when something was rewritten and the result matches ``ref``; else ValueError."""
    import torch

    if not done:
        raise ValueError("no ConvTranspose2d that the sub-pixel rewrite handles")
    with torch.no_grad():
        err = float((model(x) - ref).abs().max())
    if not err <= atol:
        raise ValueError(f"sub-pixel rewrite is not exact here (max abs err {err:.3g})")
    return model, RewriteReport(done, err)
