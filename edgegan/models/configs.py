"""The zoo families' config dataclasses, torch-free: listing the zoo (`edgegan models`),
reading a bundle's or checkpoint's config and validating overrides need no torch. The modules
that build the generators (dcgan, resnet, unet) import them from here."""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

from ..config import JsonConfig
from ..errors import ConfigError


@dataclasses.dataclass
class DCGANConfig(JsonConfig):
    width: int = 64
    latent_dim: int = 100
    channels: int = 1
    # output channels of the four transposed convolutions; None = [8d, 4d, 2d, d]. Set by
    # structured channel pruning (edgegan.compress) so a pruned generator is family + config.
    hidden_channels: Optional[list[int]] = None

    def validate(self) -> None:
        for key in ("width", "latent_dim", "channels"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"dcgan {key} must be positive, got {getattr(self, key)}")
        if self.hidden_channels is not None and (
            len(self.hidden_channels) != 4 or any(c <= 0 for c in self.hidden_channels)
        ):
            raise ConfigError(f"dcgan hidden_channels must be 4 positive ints, got {self.hidden_channels}")

    def hidden_widths(self) -> list[int]:
        d = self.width
        return list(self.hidden_channels) if self.hidden_channels is not None else [8 * d, 4 * d, 2 * d, d]

    def width_fields(self) -> dict[str, list[int]]:
        """Current widths of every width field (what structured pruning rewrites)."""
        return {"hidden_channels": self.hidden_widths()}

    def to_dict(self) -> dict[str, Any]:
        """Omit ``hidden_channels`` when unset so unpruned configs read exactly as before."""
        out = super().to_dict()
        if out.get("hidden_channels") is None:
            out.pop("hidden_channels", None)
        return out


@dataclasses.dataclass
class ResnetConfig(JsonConfig):
    ngf: int = 64
    n_blocks: int = 9
    in_channels: int = 3
    out_channels: int = 3
    image_size: int = 256
    n_downsampling: int = 2
    # Per-layer widths set by structured channel pruning (edgegan.compress); None = the
    # reference layout. down_channels: outputs of the stem and each downsampling conv (the last
    # one is the residual stream); block_channels: inner width of each residual block;
    # up_channels: outputs of each upsampling transposed conv.
    down_channels: Optional[list[int]] = None
    block_channels: Optional[list[int]] = None
    up_channels: Optional[list[int]] = None
    # InstanceNorm with a learned per-channel scale and shift (False = the CycleGAN reference).
    # GAN Slimming (edgegan.compress --method slim) turns it on: its L1 step acts on the scales.
    affine_norm: bool = False

    def validate(self) -> None:
        if self.ngf <= 0 or self.n_blocks < 0 or self.in_channels <= 0 or self.out_channels <= 0:
            raise ConfigError("resnet ngf/channels must be positive and n_blocks >= 0")
        if self.image_size % (2**self.n_downsampling):
            raise ConfigError(
                f"resnet image_size {self.image_size} must be divisible by 2**n_downsampling={2**self.n_downsampling}"
            )
        for key, n in (("down_channels", self.n_downsampling + 1), ("block_channels", self.n_blocks),
                       ("up_channels", self.n_downsampling)):
            v = getattr(self, key)
            if v is not None and (len(v) != n or any(c <= 0 for c in v)):
                raise ConfigError(f"resnet {key} must be {n} positive ints, got {v}")

    def widths(self) -> tuple[list[int], list[int], list[int]]:
        """(down, block, up) channel widths, filling in the reference layout where unset."""
        nd = self.n_downsampling
        down = self.down_channels or [self.ngf * 2**i for i in range(nd + 1)]
        block = self.block_channels or [down[-1]] * self.n_blocks
        up = self.up_channels or [self.ngf * 2 ** (nd - i - 1) for i in range(nd)]
        return list(down), list(block), list(up)

    def width_fields(self) -> dict[str, list[int]]:
        """Current widths of every width field (what structured pruning rewrites)."""
        down, block, up = self.widths()
        return {"down_channels": down, "block_channels": block, "up_channels": up}

    def to_dict(self) -> dict[str, Any]:
        """Omit unset width fields and ``affine_norm: false`` so reference configs read exactly as before."""
        out = super().to_dict()
        for key in ("down_channels", "block_channels", "up_channels"):
            if out.get(key) is None:
                out.pop(key, None)
        if not out.get("affine_norm"):
            out.pop("affine_norm", None)
        return out


@dataclasses.dataclass
class UnetConfig(JsonConfig):
    ngf: int = 64
    num_downs: int = 8
    in_channels: int = 3
    out_channels: int = 3
    image_size: int = 256
    # Per-level widths set by structured channel pruning (edgegan.compress); None = the
    # reference layout. down_channels[l]: output of the down conv at level l (0 = outermost,
    # num_downs entries); up_channels[l-1]: output of the up conv at level l >= 1
    # (num_downs - 1 entries; level 0's up conv gives out_channels).
    down_channels: Optional[list[int]] = None
    up_channels: Optional[list[int]] = None

    def validate(self) -> None:
        if self.ngf <= 0 or self.num_downs < 5:
            raise ConfigError("unet ngf must be positive and num_downs >= 5 (the pix2pix layout)")
        if self.image_size % (2**self.num_downs):
            raise ConfigError(
                f"unet image_size {self.image_size} must be divisible by 2**num_downs={2**self.num_downs}"
            )
        for key, n in (("down_channels", self.num_downs), ("up_channels", self.num_downs - 1)):
            v = getattr(self, key)
            if v is not None and (len(v) != n or any(c <= 0 for c in v)):
                raise ConfigError(f"unet {key} must be {n} positive ints, got {v}")

    def widths(self) -> tuple[list[int], list[int]]:
        """(down, up) widths per level, filling in the reference layout where unset."""
        down = self.down_channels or [self.ngf * min(2**level, 8) for level in range(self.num_downs)]
        up = self.up_channels or list(down[:-1])
        return list(down), list(up)

    def width_fields(self) -> dict[str, list[int]]:
        """Current widths of every width field (what structured pruning rewrites)."""
        down, up = self.widths()
        return {"down_channels": down, "up_channels": up}

    def to_dict(self) -> dict[str, Any]:
        """Omit unset width fields so unpruned configs read exactly as before."""
        out = super().to_dict()
        for key in ("down_channels", "up_channels"):
            if out.get(key) is None:
                out.pop(key, None)
        return out
