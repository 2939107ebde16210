"""Small generators shaped like the ones users bring from other projects, written here (tiny
widths, small spatial sizes) so every export path a real architecture takes is exercised fast.

Each builder returns an ``nn.Module`` in eval mode; ``ARCHS`` maps a name to (builder, export
keyword arguments a user would pass: input shape, fixed inputs, noise mode).
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class PixelShuffleSR(nn.Module):
    """Compact super-resolution net: a few 3x3 convs then Conv -> PixelShuffle(2) upsampling, a
    [0, 1] image in and out (the output stays NCHW after onnx2tf)."""

    def __init__(self, ch: int = 8, scale: int = 2) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, ch, 3, padding=1)
        self.body = nn.Sequential(nn.PReLU(ch), nn.Conv2d(ch, ch, 3, padding=1), nn.PReLU(ch))
        self.up = nn.Conv2d(ch, 3 * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)
        self.scale = scale

    def forward(self, x):
        y = self.shuffle(self.up(self.body(self.head(x))))
        return y + F.interpolate(x, scale_factor=self.scale, mode="nearest")


class GeluAttentionGenerator(nn.Module):
    """Latent -> 4x4 -> 16x16 with a self-attention block whose MLP uses exact GELU (ONNX Erf)."""

    def __init__(self, nz: int = 16, ch: int = 16) -> None:
        super().__init__()
        self.fc = nn.Linear(nz, ch * 16)
        self.ch = ch
        self.norm = nn.LayerNorm(ch)
        self.qkv = nn.Linear(ch, 3 * ch)
        self.mlp = nn.Sequential(nn.Linear(ch, 2 * ch), nn.GELU(), nn.Linear(2 * ch, ch))
        self.up = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(ch, ch // 2, 3, padding=1), nn.ReLU(),
                                nn.Upsample(scale_factor=2), nn.Conv2d(ch // 2, 3, 3, padding=1), nn.Tanh())

    def forward(self, z):
        h = self.fc(z).view(-1, 16, self.ch)  # 16 tokens of a 4x4 map
        q, k, v = self.qkv(self.norm(h)).chunk(3, dim=-1)
        att = torch.softmax(q @ k.transpose(1, 2) / self.ch ** 0.5, dim=-1)
        h = h + att @ v
        h = h + self.mlp(self.norm(h))
        return self.up(h.transpose(1, 2).reshape(-1, self.ch, 4, 4))


class ModulatedConv(nn.Module):
    """StyleGAN2-style modulated convolution: per-sample weights, one conv group per batch item."""

    def __init__(self, cin: int, cout: int, wdim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3) * 0.2)
        self.affine = nn.Linear(wdim, cin)

    def forward(self, x, w):
        b, cin, h, wd = x.shape
        s = self.affine(w) + 1.0
        weight = self.weight[None] * s[:, None, :, None, None]
        demod = torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4)) + 1e-8)
        weight = weight * demod[:, :, None, None, None]
        out = F.conv2d(x.reshape(1, b * cin, h, wd), weight.reshape(-1, cin, 3, 3), padding=1, groups=b)
        return out.reshape(b, -1, h, wd)


class ModulatedGenerator(nn.Module):
    """Latent -> mapping MLP -> constant 4x4 -> modulated convs with upsampling -> 16x16 RGB."""

    def __init__(self, nz: int = 16, ch: int = 8) -> None:
        super().__init__()
        self.mapping = nn.Sequential(nn.Linear(nz, nz), nn.LeakyReLU(0.2), nn.Linear(nz, nz))
        self.const = nn.Parameter(torch.randn(1, ch, 4, 4))
        self.conv1 = ModulatedConv(ch, ch, nz)
        self.conv2 = ModulatedConv(ch, ch, nz)
        self.to_rgb = ModulatedConv(ch, 3, nz)

    def forward(self, z):
        w = self.mapping(z)
        x = self.const.expand(z.shape[0], -1, -1, -1)
        x = F.leaky_relu(self.conv1(x, w), 0.2)
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = F.leaky_relu(self.conv2(x, w), 0.2)
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return torch.tanh(self.to_rgb(x, w))


class ConditionalGenerator(nn.Module):
    """Two inputs: a latent and a class label (embedded and concatenated), DCGAN upsampling."""

    def __init__(self, nz: int = 16, n_classes: int = 10, ch: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_classes, nz)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * nz, ch, 4, 1, 0), nn.BatchNorm2d(ch), nn.ReLU(),
            nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1), nn.BatchNorm2d(ch // 2), nn.ReLU(),
            nn.ConvTranspose2d(ch // 2, 1, 4, 2, 1), nn.Tanh())

    def forward(self, z, y):
        e = self.embed(y).view(z.shape[0], -1, 1, 1)
        return self.net(torch.cat([z, e], dim=1))


class NoiseInjectionGenerator(nn.Module):
    """Per-pixel noise injection (torch.randn inside forward, as StyleGAN-family models do)."""

    def __init__(self, nz: int = 16, ch: int = 8) -> None:
        super().__init__()
        self.fc = nn.Linear(nz, ch * 16)
        self.ch = ch
        self.noise_strength = nn.Parameter(torch.full((1, ch, 1, 1), 0.5))
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)
        self.out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, z):
        x = self.fc(z).view(-1, self.ch, 4, 4)
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device)
        x = F.leaky_relu(self.conv(x + self.noise_strength * noise), 0.2)
        return torch.tanh(self.out(x))


class SigmoidGenerator(nn.Module):
    """A decoder whose outputs are in [0, 1] (final sigmoid), as VAE-style decoders have."""

    def __init__(self, nz: int = 16, ch: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(nz, ch, 4, 1, 0), nn.ReLU(),
            nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(ch // 2, 3, 4, 2, 1), nn.Sigmoid())

    def forward(self, z):
        return self.net(z)


class TutorialDCGAN(nn.Module):
    """The shape of the PyTorch DCGAN tutorial's generator (self.main Sequential, bias-free
    ConvTranspose + BatchNorm + ReLU, Tanh), with tiny widths and a 16x16 output."""

    def __init__(self, nz: int = 16, ngf: int = 8, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 2, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, input):  # noqa: A002 - the tutorial's argument name
        return self.main(input)


def _seeded(cls, **kw):
    def build():
        torch.manual_seed(0)
        m = cls(**kw)
        for mod in m.modules():  # BatchNorm statistics that are not the identity
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
        return m.eval()
    return build


# name -> (builder, export keyword arguments of edgegan.export / ExportConfig)
ARCHS = {
    "pixelshuffle-sr": (_seeded(PixelShuffleSR), {"input_shape": [3, 8, 8], "input_kind": "image"}),
    "gelu-attention": (_seeded(GeluAttentionGenerator), {"input_shape": [16]}),
    "modulated-conv": (_seeded(ModulatedGenerator), {"input_shape": [16]}),
    "conditional": (_seeded(ConditionalGenerator), {"input_shape": [16, 1, 1], "fixed_inputs": {"y": 3}}),
    "noise-injection": (_seeded(NoiseInjectionGenerator), {"input_shape": [16], "noise": "fixed"}),
    "sigmoid-output": (_seeded(SigmoidGenerator), {"input_shape": [16, 1, 1]}),
    "tutorial-dcgan": (_seeded(TutorialDCGAN), {"input_shape": [16, 1, 1]}),
}


def build(name: str) -> nn.Module:
    return ARCHS[name][0]()


# `edgegan export tests.user_archs:NAME` factories (package.module:factory)
def pixelshuffle_sr(**kw):
    return _seeded(PixelShuffleSR, **kw)()


def gelu_attention(**kw):
    return _seeded(GeluAttentionGenerator, **kw)()


def modulated_conv(**kw):
    return _seeded(ModulatedGenerator, **kw)()


def conditional(**kw):
    return _seeded(ConditionalGenerator, **kw)()


def noise_injection(**kw):
    return _seeded(NoiseInjectionGenerator, **kw)()
