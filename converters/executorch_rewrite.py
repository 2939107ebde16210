"""Torch-level rewrites that let ExecuTorch's XNNPACK partitioner take a whole generator.

Lowered as exported, a CycleGAN-style generator leaves two layers on ExecuTorch's portable
kernels, between XNNPACK calls:

* ``nn.InstanceNorm2d`` becomes ``_native_batch_norm_legit.no_stats``, which XNNPACK does not
  take, and whose portable kernel is also the reason the fp32 .pte read ~94 dB vs torch (max
  error ~1.3e-3 on resnet-sketch; portable-only lowering reads the same, the two-pass form
  below ~130 dB): its variance loses precision in float32. Rewritten as the two-pass
  ``d = x - mean(x); d * rsqrt(mean(d*d) + eps)`` (mean over H, W), all ops XNNPACK runs.
* ``nn.ReflectionPad2d`` decomposes into arange / abs / sub / index (portable). Reflection is
  only a gather of edge columns/rows: rewritten as width-1 slices and concatenations (at most 5
  tensors per concatenation, XNNPACK's limit), exact.

* ``nn.ConvTranspose2d`` runs in XNNPACK as an int8 Deconvolution that took ~3x the time per MAC
  of its convolutions on resnet-sketch (2 deconvolutions, 6 % of the MACs, 9 % of the time).
  Where the transposed conv fills exactly ``stride`` outputs per input pixel (kernel +
  output_padding - 2 * padding == stride) and feeds an InstanceNorm (the CycleGAN upsampling;
  the measured case), it is rewritten as the
  sub-pixel form: a zero pad, one ordinary conv with ``stride**2`` phases per output channel,
  ``pixel_shuffle`` (exact up to float rounding; more MACs, 16/9 for kernel 3, in a faster kernel).
  With ``crop`` the zero pad (which XNNPACK runs only in fp32, with a convert on each side) is
  the conv's own symmetric padding and an int8 slice of its output instead.

For int8 (``equalize``), each convolution feeding a rewritten norm is rescaled per output
channel to the same calibrated range and its bias shifted to centre the channel, with the norm's
eps scaled to match (the norm divides both out: exact up to float rounding). PT2E quantizes that
convolution's output per tensor before the norm; un-equalized, narrow channels kept a few int8
levels and the norm amplified their error (resnet-sketch: 38.2 -> 40.1 dB).

All rewrites are checked against the original module before use (max abs error recorded).
Imports torch at module level: only the ExecuTorch converters import it, inside ``convert``.
"""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch
from torch import nn

from ..export.rewrite import bn_affine

MAX_CAT = 5  # XNNPACK concatenates 2..5 tensors per node
TOLERANCE = 1e-4  # max abs error vs the original module beyond which the rewrite is not used


class TwoPassInstanceNorm2d(nn.Module):
    """InstanceNorm2d (no running stats) as mean / sub / mul / rsqrt / add, with the variance
    taken from centred values (two passes), so float32 keeps its precision."""

    def __init__(self, src: nn.InstanceNorm2d) -> None:
        super().__init__()
        self.eps = float(src.eps)  # a [1, C, 1, 1] tensor once equalize_norm_inputs has run
        self.weight = None if src.weight is None else nn.Parameter(src.weight.detach().clone().view(1, -1, 1, 1))
        self.bias = None if src.bias is None else nn.Parameter(src.bias.detach().clone().view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x - x.mean((2, 3), keepdim=True)
        y = d * torch.rsqrt((d * d).mean((2, 3), keepdim=True) + self.eps)
        if self.weight is not None:
            y = y * self.weight
        if self.bias is not None:
            y = y + self.bias
        return y


def _cat(pieces: list, dim: int) -> torch.Tensor:
    """torch.cat in nodes of at most MAX_CAT inputs (a balanced tree, so it stays shallow)."""
    while len(pieces) > 1:
        groups = [pieces[i : i + MAX_CAT] for i in range(0, len(pieces), MAX_CAT)]
        pieces = [g[0] if len(g) == 1 else torch.cat(g, dim) for g in groups]
    return pieces[0]


def _reflect(x: torch.Tensor, before: int, after: int, dim: int) -> torch.Tensor:
    if not before and not after:
        return x
    n = x.shape[dim]
    left = [x.narrow(dim, i, 1) for i in range(before, 0, -1)]
    right = [x.narrow(dim, n - 1 - i, 1) for i in range(1, after + 1)]
    side = lambda p: [_cat(p, dim)] if p else []  # noqa: E731
    return _cat(side(left) + [x] + side(right), dim)


class SliceReflectionPad2d(nn.Module):
    """ReflectionPad2d as edge slices + concatenations (exact; XNNPACK runs slice and cat)."""

    def __init__(self, src: nn.ReflectionPad2d) -> None:
        super().__init__()
        self.padding = tuple(int(p) for p in src.padding)  # (left, right, top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right, top, bottom = self.padding
        return _reflect(_reflect(x, left, right, 3), top, bottom, 2)


def _phase_taps(src: nn.ConvTranspose2d) -> dict:
    """Per axis, output phase a -> [(tap t of the transposed kernel, input offset d)]: output
    s*m + a takes tap t from input m + d, d = (a + padding - t) / s."""
    s, k, p = src.stride[0], src.kernel_size[0], src.padding[0]
    return {a: [(t, (a + p - t) // s) for t in range(k) if (a + p - t) % s == 0] for a in range(s)}


def _phase_kernels(src: nn.ConvTranspose2d, taps: dict, first: dict, n: int) -> torch.Tensor:
    """[s, s, cout, cin, n, n]: phase (a, b)'s conv kernel, its window starting at input offset
    ``first[a]`` (rows) / ``first[b]`` (columns); taps a phase does not use stay zero."""
    s, src_w = src.stride[0], src.weight.detach()  # [cin, cout, k, k]
    w = torch.zeros(s, s, src_w.shape[1], src_w.shape[0], n, n)
    for a in range(s):
        for b in range(s):
            for ta, da in taps[a]:
                for tb, db in taps[b]:
                    w[a, b, :, :, da - first[a], db - first[b]] = src_w[:, :, ta, tb].t()
    return w


class SubPixelConvTranspose2d(nn.Module):
    """ConvTranspose2d as zero pad + Conv2d + pixel_shuffle: output phase (a, b) of output
    channel c is conv output channel c * s * s + a * s + b (pixel_shuffle's order), holding the
    taps of the transposed kernel that reach that phase. ``crop``: the conv pads symmetrically
    itself and the extra row/column is sliced off its output instead (no pad op, which XNNPACK
    runs only in fp32, with a convert on each side). ``nhwc``: the conv's output channels ordered
    phase-major (phase * C + c) and the interleave spelled channels-last (to NHWC, one 6-D
    permute of whole channel rows, back), which XNNPACK runs on the int8 tensor; pixel_shuffle ran
    as fp32 transposes with a convert on each side."""

    def __init__(self, src: nn.ConvTranspose2d, crop: bool = False, nhwc: bool = False) -> None:
        super().__init__()
        self.nhwc = nhwc
        s, taps = src.stride[0], _phase_taps(src)
        self.stride = s
        cin, cout = src.weight.shape[0], src.weight.shape[1]
        ds = [d for pairs in taps.values() for _, d in pairs]
        lo, hi = min(ds), max(ds)
        n = hi - lo + 1
        w = _phase_kernels(src, taps, {a: lo for a in range(s)}, n)  # [a, b, cout, cin, n, n]
        if not nhwc:
            w = w.permute(2, 0, 1, 3, 4, 5)  # [cout, a, b, ...]: pixel_shuffle's order
        self.crop = max(-lo, hi) if crop and -lo != hi else None
        padding = self.crop if self.crop is not None else 0
        self.conv = nn.Conv2d(cin, cout * s * s, n, bias=src.bias is not None, padding=padding)
        with torch.no_grad():
            self.conv.weight.copy_(w.reshape(cout * s * s, cin, n, n))
            if src.bias is not None:
                self.conv.bias.copy_(self.per_conv_channel(src.bias.detach()))
        self.pad = (-lo, hi, -lo, hi)
        if self.crop is not None:  # output i of the pad form is output i + lo + P of the symmetric conv
            self.crop_start = lo + self.crop

    def per_conv_channel(self, v: torch.Tensor) -> torch.Tensor:
        """A per-output-channel vector laid out over the conv's s * s * C output channels."""
        phases = self.stride ** 2
        return v.repeat(phases) if self.nhwc else v.repeat_interleave(phases)

    @staticmethod
    def fits(m: nn.ConvTranspose2d) -> bool:
        """Square, ungrouped, undilated, and exactly ``stride`` outputs per input pixel."""
        (sh, sw), (kh, kw), (ph, pw), (oh, ow) = m.stride, m.kernel_size, m.padding, m.output_padding
        return (sh == sw and kh == kw and ph == pw and oh == ow and m.groups == 1 and tuple(m.dilation) == (1, 1)
                and sh > 1 and kh + oh - 2 * ph == sh and isinstance(m.padding, tuple) and kh > ph)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.crop is None:
            y = self.conv(torch.nn.functional.pad(x, self.pad) if any(self.pad) else x)
        else:
            h, w, c = x.shape[2], x.shape[3], self.crop_start
            y = self.conv(x)[:, :, c: c + h, c: c + w]
        if not self.nhwc:
            return torch.nn.functional.pixel_shuffle(y, self.stride)
        n, _, hh, ww = y.shape
        s = self.stride
        t = y.permute(0, 2, 3, 1).reshape(n, hh, ww, s, s, -1).permute(0, 1, 3, 2, 4, 5)
        return t.reshape(n, hh * s, ww * s, -1).permute(0, 3, 1, 2)


class PhaseConvTranspose2d(nn.Module):
    """ConvTranspose2d (the sub-pixel fit: exactly ``stride`` outputs per input pixel) as one
    Conv2d whose ``stride**2`` blocks of output channels are the output phases, each phase with
    its own smallest tap window (k=4, s=2: 2x2, where the sub-pixel form's one shared window is
    3x3), then a crop per phase and one interleaving permute (exact up to float rounding).

    For fp32 and dynamic int8: XNNPACK's fp32 Deconvolution ran ~2x slower than this form on
    dcgan-digits (1.10 -> 0.59 ms at 1 thread, benchmarks/executorch_deconv_forms.py), and its
    dynamic quantization skips transposed convs (the DCGAN's executorch-dynamic stayed float)."""

    def __init__(self, src: nn.ConvTranspose2d) -> None:
        super().__init__()
        s, taps = src.stride[0], _phase_taps(src)
        cin, cout = src.weight.shape[0], src.weight.shape[1]
        start = {a: min(d for _, d in taps[a]) for a in range(s)}
        n = max(max(d for _, d in taps[a]) - start[a] + 1 for a in range(s))
        pad = max(0, -min(start.values()), n - 1 + max(start.values()))
        w = _phase_kernels(src, taps, start, n)
        self.conv = nn.Conv2d(cin, s * s * cout, n, bias=src.bias is not None, padding=pad)
        with torch.no_grad():
            self.conv.weight.copy_(w.reshape(s * s * cout, cin, n, n))
            if src.bias is not None:
                self.conv.bias.copy_(src.bias.detach().repeat(s * s))
        # conv output position q covers inputs q - pad ...: phase a of input row m sits at m + start[a] + pad
        self.crops = [start[a] + pad for a in range(s)]
        self.stride, self.out_channels = s, cout

    fits = staticmethod(SubPixelConvTranspose2d.fits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        n, h, w, s, c = x.shape[0], x.shape[2], x.shape[3], self.stride, self.out_channels
        if len(set(self.crops)) == 1:  # one shared crop: a single slice
            o = self.crops[0]
            y = y[:, :, o: o + h, o: o + w]
        else:
            y = torch.cat([y[:, (a * s + b) * c: (a * s + b + 1) * c, self.crops[a]: self.crops[a] + h,
                             self.crops[b]: self.crops[b] + w] for a in range(s) for b in range(s)], 1)
        # channel (a, b, c) of pixel (m, j) -> pixel (m * s + a, j * s + b) of channel c
        return y.reshape(n, s, s, c, h, w).permute(0, 3, 4, 1, 5, 2).reshape(n, c, h * s, w * s)


class LinearConvTranspose2d(nn.Module):
    """A stride-1, unpadded ConvTranspose2d (a DCGAN's first layer) as Linear + reshape when its
    input is 1x1 (decided at trace time; other inputs run the transposed conv, same weights).
    On a 1x1 input XNNPACK ran it as an indirect GEMM over the zero padding, k*k times the MACs
    (dcgan-digits fp32: 75 us of a 915 us inference at 1 thread; int8: ~40 us as a Deconvolution,
    ~6 us as a Fully Connected, benchmarks/executorch_layers.py)."""

    def __init__(self, src: nn.ConvTranspose2d) -> None:
        super().__init__()
        cin, cout, k = src.weight.shape[0], src.weight.shape[1], src.kernel_size[0]
        # nn.Linear's layout [out, in], so the graph holds aten.linear, which dynamic int8 quantizes;
        # the bias per output (channel c repeated k*k times) inside it: one op, no broadcast add
        self.weight = nn.Parameter(src.weight.detach().reshape(cin, cout * k * k).t().contiguous())
        self.bias = None if src.bias is None else nn.Parameter(src.bias.detach().repeat_interleave(k * k))
        self.shape = (cout, k, k)
        # set by the fp32 / dynamic forms when no BatchNorm follows: XNNPACK (executorch 1.5.1)
        # lowered a dynamically quantized linear whose reshape fed a dynamically quantized conv
        # (with or without a ReLU between) but failed its shape propagation when run; a float
        # per-channel op between them (the BatchNorm a DCGAN has there, ~1 us as XNNPACK's
        # depthwise op) made it run, an elementwise multiply or a channels-last copy did not
        # (the copy runs outside the delegate), so here it is an identity BatchNorm
        self.entry: nn.Module | None = None

    @staticmethod
    def fits(m: nn.ConvTranspose2d) -> bool:
        return (tuple(m.stride) == (1, 1) and tuple(m.padding) == (0, 0) and tuple(m.output_padding) == (0, 0)
                and m.groups == 1 and tuple(m.dilation) == (1, 1) and m.kernel_size[0] == m.kernel_size[1]
                and isinstance(m.padding, tuple))

    def fold(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        """Take a per-channel affine map that follows (an eval BatchNorm) into the weight and
        bias (rows / entries c * k * k ... belong to channel c)."""
        k2 = self.shape[1] * self.shape[2]
        scale, shift = scale.repeat_interleave(k2), shift.repeat_interleave(k2)
        with torch.no_grad():
            self.weight.mul_(scale.view(-1, 1))
            self.bias = nn.Parameter((self.bias.detach() if self.bias is not None else 0.0) * scale + shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cout, k, _ = self.shape
        if x.shape[2] != 1 or x.shape[3] != 1:
            bias = None if self.bias is None else self.bias[:: k * k]
            return torch.nn.functional.conv_transpose2d(x, self.weight.t().reshape(-1, cout, k, k), bias)
        y = torch.nn.functional.linear(x.flatten(1), self.weight, self.bias).view(x.shape[0], cout, k, k)
        return y if self.entry is None else self.entry(y)

    def add_identity_entry(self) -> None:
        """An eval BatchNorm2d that is exactly the identity (mean 0, variance 1, eps 0)."""
        self.entry = nn.BatchNorm2d(self.shape[0], eps=0.0).eval()


@dataclasses.dataclass
class DelegationRewrite:
    module: object
    counts: dict
    max_abs_err: float


NORM = "InstanceNorm2d -> two-pass mean/var"
# module classes executorch-int8 keeps float (by class name: edgegan.quantdebug.pt2e): the
# rewritten norm's mean/variance arithmetic in int8 read 12 dB on resnet-sketch
KEEP_FLOAT = ("TwoPassInstanceNorm2d",)
PAD = "ReflectionPad2d -> slices + cat"
DECONV = "ConvTranspose2d -> pad + conv + pixel_shuffle (sub-pixel)"
DECONV_CROP = "ConvTranspose2d -> conv + crop + pixel_shuffle (sub-pixel)"
DECONV_NHWC = "ConvTranspose2d -> pad + conv + channels-last interleave (sub-pixel)"
DECONV_CROP_NHWC = "ConvTranspose2d -> conv + crop + channels-last interleave (sub-pixel)"
DECONV_PHASE = "ConvTranspose2d -> conv with one tap window per phase + crop + interleave"
DECONV_LINEAR = "ConvTranspose2d on a 1x1 input -> linear + reshape"
BN_FOLD = "BatchNorm2d after the linear form (int8) -> folded into it"


EQUALIZE = "conv before InstanceNorm -> channels equalized"


def _conv_norm_pairs(module: nn.Module) -> list:
    """(conv, TwoPassInstanceNorm2d) pairs where the norm directly follows the conv in a Sequential."""
    pairs = []
    for mod in module.modules():
        kids = list(mod.children()) if isinstance(mod, nn.Sequential) else []
        for conv, norm in zip(kids, kids[1:]):
            if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d, SubPixelConvTranspose2d)) \
                    and isinstance(norm, TwoPassInstanceNorm2d):
                pairs.append((conv, norm))
    return pairs


def equalize_norm_inputs(module: nn.Module, inputs: np.ndarray) -> int:
    """Rescale (in place) each conv feeding a TwoPassInstanceNorm2d so that every output channel
    has the same range on ``inputs`` (max |y - channel mean|), its bias shifted by the channel's
    calibrated mean, the norm's eps multiplied by the square of the scale. InstanceNorm removes
    a per-channel shift and scale, so the module's output is unchanged; returns the pair count."""
    pairs = _conv_norm_pairs(module)
    seen = {id(c): [] for c, _ in pairs}
    hooks = [c.register_forward_hook(lambda m, i, o: seen[id(m)].append(o.detach())) for c, _ in pairs]
    try:
        with torch.no_grad():
            for i in range(0, len(inputs), 16):
                module(torch.from_numpy(np.ascontiguousarray(inputs[i: i + 16], dtype=np.float32)))
    finally:
        for h in hooks:
            h.remove()
    with torch.no_grad():
        for conv, norm in pairs:
            y = torch.cat(seen[id(conv)])
            shift = y.mean((0, 2, 3))
            spread = (y - shift.view(1, -1, 1, 1)).abs().amax((0, 2, 3))
            scale = torch.where(spread > 0, spread.max() / spread.clamp_min(1e-30), torch.ones_like(spread))
            norm.eps = (norm.eps * scale * scale).view(1, -1, 1, 1)
            if isinstance(conv, SubPixelConvTranspose2d):  # output channel c = s*s conv channels
                conv, scale, shift = conv.conv, conv.per_conv_channel(scale), conv.per_conv_channel(shift)
            axis = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)
            conv.weight.mul_(scale.view(axis))
            if conv.bias is None:
                conv.bias = nn.Parameter(-shift * scale)
            else:
                conv.bias.sub_(shift).mul_(scale)
    return len(pairs)


def _deconvs_before_norms(module: nn.Module) -> set:
    """ids of the ConvTranspose2d that fit the sub-pixel form and feed an InstanceNorm2d in a
    Sequential: the measured case (CycleGAN upsampling). A DCGAN's BatchNorm'd stride-2 transposed
    convs stay XNNPACK int8 Deconvolutions: on dcgan-digits the sub-pixel form read 0.32x the fp32
    .pte where they read 0.21-0.28x, the phase form 1.3x (1 thread) to 1.75x (2 threads) their
    time, the export route's 2x2 sub-pixel form slower too (benchmarks/executorch_deconv_forms.py
    --tried)."""
    found = set()
    for mod in module.modules():
        kids = list(mod.children()) if isinstance(mod, nn.Sequential) else []
        for conv, norm in zip(kids, kids[1:]):
            if isinstance(conv, nn.ConvTranspose2d) and isinstance(norm, nn.InstanceNorm2d) \
                    and SubPixelConvTranspose2d.fits(conv):
                found.add(id(conv))
    return found


def _phase_targets(module: nn.Module, x: torch.Tensor) -> dict:
    """id -> rewrite class for every ConvTranspose2d of ``module`` the fp32 forms take: the
    sub-pixel fit (phase form), or stride 1 unpadded on the 1x1 input ``x`` gives it (linear)."""
    sizes: dict = {}
    deconvs = [m for m in module.modules() if isinstance(m, nn.ConvTranspose2d)]

    def seen(mod, args, out) -> None:  # a hook that returned a value would replace the output
        sizes.setdefault(id(mod), tuple(args[0].shape[2:]))

    hooks = [m.register_forward_hook(seen) for m in deconvs]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for h in hooks:
            h.remove()
    targets = {}
    for m in deconvs:
        if PhaseConvTranspose2d.fits(m):
            targets[id(m)] = PhaseConvTranspose2d
        elif LinearConvTranspose2d.fits(m) and sizes.get(id(m)) == (1, 1):
            targets[id(m)] = LinearConvTranspose2d
    return targets


def _replace(module: nn.Module, counts: dict, norms: bool, pads: bool, deconvs: set, crop: bool = False,
             phase: dict | None = None, fold_bn: bool = False, nhwc: bool = False) -> None:
    phase = phase or {}
    kids = list(module.named_children())
    for i, (name, child) in enumerate(kids):
        if norms and isinstance(child, nn.InstanceNorm2d) and not child.track_running_stats:
            setattr(module, name, TwoPassInstanceNorm2d(child))
            counts[NORM] = counts.get(NORM, 0) + 1
        elif pads and isinstance(child, nn.ReflectionPad2d):
            setattr(module, name, SliceReflectionPad2d(child))
            counts[PAD] = counts.get(PAD, 0) + 1
        elif id(child) in deconvs:
            setattr(module, name, SubPixelConvTranspose2d(child, crop=crop, nhwc=nhwc))
            key = ((DECONV_CROP_NHWC if crop else DECONV_NHWC) if nhwc else (DECONV_CROP if crop else DECONV))
            counts[key] = counts.get(key, 0) + 1
        elif id(child) in phase:
            new = phase[id(child)](child)
            setattr(module, name, new)
            key = DECONV_PHASE if phase[id(child)] is PhaseConvTranspose2d else DECONV_LINEAR
            counts[key] = counts.get(key, 0) + 1
            # int8: the linear form's BatchNorm no longer follows a conv that XNNPACK fuses it into
            # and became its own requantized op: folded into it. Not with the phase forms (fp32 /
            # dynamic): there XNNPACK runs it as a float depthwise op of ~1 us.
            nxt = kids[i + 1][1] if isinstance(module, nn.Sequential) and i + 1 < len(kids) else None
            affine = bn_affine(nxt, child.out_channels) if fold_bn else None
            if affine is not None:
                new.fold(*affine)
                setattr(module, kids[i + 1][0], nn.Identity())
                counts[BN_FOLD] = counts.get(BN_FOLD, 0) + 1
            elif isinstance(new, LinearConvTranspose2d) and not fold_bn and not isinstance(nxt, nn.BatchNorm2d):
                new.add_identity_entry()
        else:
            _replace(child, counts, norms, pads, deconvs, crop, phase, fold_bn, nhwc)


def delegation_rewrite(module, inputs: np.ndarray, norms: bool = True, pads: bool = True,
                       equalize: np.ndarray | None = None, deconvs: bool = False,
                       crop: bool = False, phase: bool = False, latent: bool = False,
                       nhwc: bool = False) -> DelegationRewrite | None:
    """A copy of ``module`` with its InstanceNorm2d (``norms``) / ReflectionPad2d (``pads``) /
    ConvTranspose2d feeding an InstanceNorm2d (``deconvs``, sub-pixel form; ``crop``, ``nhwc``:
    see SubPixelConvTranspose2d) rewritten, the other
    transposed convs in their fp32 forms (``phase``: PhaseConvTranspose2d, LinearConvTranspose2d;
    ``latent``: only the LinearConvTranspose2d, with a BatchNorm after it folded in, the int8
    choice), the convs
    before the norms equalized on the calibration inputs ``equalize`` when given, checked on
    ``inputs``; None when there is nothing to rewrite. ValueError when the copy disagrees with
    the original by more than TOLERANCE (the caller then lowers the module as it is)."""
    if not isinstance(module, nn.Module):
        return None
    counts: dict = {}
    new = copy.deepcopy(module)
    x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    targets = _phase_targets(new, x[:1]) if phase or latent else {}
    if not phase:
        targets = {k: v for k, v in targets.items() if v is LinearConvTranspose2d}
    _replace(new, counts, norms, pads, _deconvs_before_norms(new) if deconvs else set(), crop, targets,
             fold_bn=not phase, nhwc=nhwc)
    if not counts:
        return None
    if equalize is not None and norms:
        n = equalize_norm_inputs(new, equalize)
        if n:
            counts[EQUALIZE] = n
    with torch.no_grad():
        err = float((new(x) - module(x)).abs().max())
    if not err <= TOLERANCE:
        raise ValueError(f"rewritten module differs from the original by {err:.2e} (> {TOLERANCE:g})")
    return DelegationRewrite(new.eval(), counts, err)
