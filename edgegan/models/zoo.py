"""The model zoo: architecture families and named entries (random-init, tiny test variants,
and generators trained here with shipped weights)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..config import JsonConfig
from ..registry import Registry
from .spec import InputSpec

PRETRAINED_DIR = Path(__file__).parent / "pretrained"


@dataclasses.dataclass(frozen=True)
class Family:
    """An architecture: its config class, how to build it and what input it takes.

    ``channel_layout(module, config)`` (optional) declares which channels structured pruning
    may remove (see :mod:`edgegan.models.layout`); the config class then also has
    ``width_fields() -> {field: [widths]}`` naming the config fields the pruned widths go to."""

    name: str
    config_cls: type
    build: Callable[[JsonConfig], object]
    input_spec: Callable[[JsonConfig], InputSpec]
    channel_layout: Optional[Callable[[object, JsonConfig], object]] = None
    description: str = ""


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """A named model: family + config (+ shipped weights, + real input data)."""

    name: str
    family: str
    config: dict
    description: str
    weights: Optional[str] = None
    real_inputs: Optional[Callable[[int, int], np.ndarray]] = None
    input_source: str = "spec"
    tiny: bool = False
    output_range: tuple = (-1.0, 1.0)  # every zoo generator ends in Tanh (the PSNR peak is hi - lo)

    @property
    def weights_path(self) -> Optional[Path]:
        return PRETRAINED_DIR / self.weights if self.weights else None


FAMILIES: Registry[Family] = Registry("model family")
ZOO: Registry[ZooEntry] = Registry("model")


def _dcgan_build(cfg):
    from .dcgan import DCGANGenerator

    return DCGANGenerator(cfg)


def _resnet_build(cfg):
    from .resnet import ResnetGenerator

    return ResnetGenerator(cfg)


def _unet_build(cfg):
    from .unet import UnetGenerator

    return UnetGenerator(cfg)


def _image_spec(channels: int, size: int) -> InputSpec:
    return InputSpec(shape=[channels, size, size], kind="image", distribution="uniform", low=-1.0, high=1.0)


def _layout_of(family: str) -> Callable[[object, JsonConfig], object]:
    """``family``'s channel_layout, imported when called (its module needs torch; listing does not)."""
    def layout(module: object, cfg: JsonConfig) -> object:
        import importlib

        return importlib.import_module(f"{__package__}.{family}").channel_layout(module, cfg)

    return layout


def _register_families() -> None:
    from .configs import DCGANConfig, ResnetConfig, UnetConfig  # torch-free: `edgegan models` needs no torch

    FAMILIES.add("dcgan", Family(
        "dcgan", DCGANConfig, _dcgan_build, lambda c: InputSpec(shape=[c.latent_dim, 1, 1], kind="latent"),
        _layout_of("dcgan"), "KD-GAN DCGAN generator (latent -> 32x32 image)"))
    FAMILIES.add("resnet", Family(
        "resnet", ResnetConfig, _resnet_build, lambda c: _image_spec(c.in_channels, c.image_size),
        _layout_of("resnet"), "CycleGAN ResNet generator (image -> image)"))
    FAMILIES.add("unet", Family(
        "unet", UnetConfig, _unet_build, lambda c: _image_spec(c.in_channels, c.image_size),
        _layout_of("unet"), "pix2pix U-Net generator (image -> image)"))


def _sketch_inputs(n: int, seed: int) -> np.ndarray:
    from ..datasets import sketch_patches

    return sketch_patches(n, 64, seed, split="val")[0]


def _register_zoo() -> None:
    entries = [
        ZooEntry("dcgan", "dcgan", {"width": 64}, "KD-GAN DCGAN generator, width 64 (random init)"),
        ZooEntry("resnet", "resnet", {"ngf": 64, "n_blocks": 9, "image_size": 256},
                 "CycleGAN ResNet generator ngf 64, 9 blocks, 256x256 (random init)"),
        ZooEntry("unet", "unet", {"ngf": 64, "num_downs": 8, "image_size": 256},
                 "pix2pix U-Net ngf 64, 8 downs, 256x256 (random init)"),
        ZooEntry("dcgan-tiny", "dcgan", {"width": 2}, "DCGAN width 2 for tests (random init)", tiny=True),
        ZooEntry("resnet-tiny", "resnet", {"ngf": 4, "n_blocks": 1, "image_size": 40},
                 "ResNet ngf 4, 1 block, 40x40 for tests (random init)", tiny=True),
        ZooEntry("unet-tiny", "unet", {"ngf": 4, "num_downs": 5, "image_size": 32},
                 "U-Net ngf 4, 5 downs, 32x32 for tests (random init)", tiny=True),
        ZooEntry("dcgan-digits", "dcgan", {"width": 32},
                 "DCGAN width 32 trained as a GAN on scikit-learn digits (32x32, 1 channel)",
                 weights="dcgan_digits.pt"),
        ZooEntry("resnet-sketch", "resnet", {"ngf": 16, "n_blocks": 6, "image_size": 64},
                 "ResNet ngf 16, 6 blocks, trained to turn 64x64 photo patches into pencil sketches",
                 weights="resnet_sketch.pt", real_inputs=_sketch_inputs,
                 input_source="sketch task, held-out photo patches (edgegan.datasets)"),
        ZooEntry("resnet-sketch-slim", "resnet",
                 {"ngf": 16, "n_blocks": 6, "image_size": 64, "down_channels": [10, 21, 64],
                  "block_channels": [15, 8, 2, 3, 2, 4], "up_channels": [18, 16], "affine_norm": True},
                 "resnet-sketch slimmed (rho 0.65) + fine-tuned: 0.24 of its MACs, same PSNR "
                 "(benchmarks/ship_sketch_student.py)",
                 weights="resnet_sketch_slim.pt", real_inputs=_sketch_inputs,
                 input_source="sketch task, held-out photo patches (edgegan.datasets)"),
    ]
    for e in entries:
        ZOO.add(e.name, e)


_register_families()
_register_zoo()
