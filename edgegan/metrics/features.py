"""Feature extractors: samples [N, C, H, W] in [-1, 1] -> features [N, D] float32.

Precision/recall live in a feature space. Registered by name in :data:`EXTRACTORS`:

* ``digits``   — penultimate layer (64-d) of a small CNN trained here on scikit-learn's digits
  (weights shipped), the MNIST-paper substitute for Inception. 1-channel input.
* ``pixels``   — box-downsampled (default 16×16) and flattened; no model at all.
* ``randconv`` — a fixed random-weights conv net (seeded numpy init, no download) for RGB or
  any-channel generators. Random conv features keep local image statistics but carry no
  learned semantics: good for "did compression change the samples", weaker than a trained
  network for absolute quality.
* ``identity`` — flatten as is (for arrays that already are features).
* ``file``     — a user-supplied TorchScript (.pt/.ts/.pth) or ONNX (.onnx) model read from a
  local path (e.g. an Inception feature network whose weights the user has). Never a
  download. Any path ending in one of those suffixes is accepted in place of a name.

``auto`` picks ``identity`` for 2-D arrays, ``digits`` for 1-channel images, else
``randconv``. torch / onnxruntime are imported only inside the extractors that need them.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..config import JsonConfig
from ..errors import CheckpointError, ConfigError, MetricError, first_line
from ..registry import Registry
from .base import check_finite

log = logging.getLogger(__name__)

MODEL_SUFFIXES = {".onnx": "onnx", ".pt": "torchscript", ".pth": "torchscript", ".ts": "torchscript"}


@dataclasses.dataclass(frozen=True)
class ExtractorSpec:
    """A registered extractor: its config class and a builder returning ``fn(samples)``."""

    name: str
    config_cls: type
    build: Callable[[JsonConfig], Callable[[np.ndarray], np.ndarray]]
    description: str


EXTRACTORS: Registry[ExtractorSpec] = Registry("feature extractor")


def register_extractor(name: str, config_cls: type, description: str):
    def deco(build):
        EXTRACTORS.add(name, ExtractorSpec(name, config_cls, build, description))
        return build

    return deco


def _images(samples: np.ndarray, what: str = "samples") -> np.ndarray:
    x = np.asarray(samples)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise MetricError(f"{what}: expected images [N, C, H, W], got shape {list(x.shape)}; "
                          "use --features identity for arrays that already are features")
    check_finite(x, what)
    return np.ascontiguousarray(x, dtype=np.float32)


def _batched(fn: Callable, x: np.ndarray, batch: int) -> np.ndarray:
    outs = [fn(x[i : i + batch]) for i in range(0, len(x), batch)]
    return np.concatenate(outs).astype(np.float32) if outs else np.zeros((0, 0), np.float32)


def _resize_torch(t, size: int):
    import torch.nn.functional as F

    if t.shape[-1] == size and t.shape[-2] == size:
        return t
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)


# --- identity / pixels -------------------------------------------------------------------

@dataclasses.dataclass
class IdentityConfig(JsonConfig):
    pass


@register_extractor("identity", IdentityConfig, "flatten as is (arrays that already are features)")
def _build_identity(config: IdentityConfig):
    def run(samples: np.ndarray) -> np.ndarray:
        x = np.asarray(samples)
        if x.ndim < 2:
            raise MetricError(f"samples: expected [N, ...], got shape {list(x.shape)}")
        check_finite(x, "samples")
        return np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)

    return run


@dataclasses.dataclass
class PixelsConfig(JsonConfig):
    size: int = 16  # output is at most size × size per channel (never upsampled)

    def validate(self) -> None:
        if self.size < 1:
            raise ConfigError(f"pixels size must be >= 1, got {self.size}")


def box_downsample(x: np.ndarray, size: int) -> np.ndarray:
    """Average over size×size near-equal bins (handles sizes that do not divide H, W)."""
    _, _, h, w = x.shape
    oh, ow = min(size, h), min(size, w)
    rows = (np.arange(oh) * h) // oh
    cols = (np.arange(ow) * w) // ow
    sums = np.add.reduceat(np.add.reduceat(x, rows, axis=2), cols, axis=3)
    counts = np.diff(np.append(rows, h))[:, None] * np.diff(np.append(cols, w))[None, :]
    return sums / counts


@register_extractor("pixels", PixelsConfig, "box-downsampled pixels, flattened (no model)")
def _build_pixels(config: PixelsConfig):
    def run(samples: np.ndarray) -> np.ndarray:
        x = _images(samples)
        return box_downsample(x, config.size).reshape(len(x), -1).astype(np.float32)

    return run


# --- digits CNN --------------------------------------------------------------------------

@dataclasses.dataclass
class DigitsConfig(JsonConfig):
    weights: Optional[str] = None  # default: the shipped edgegan/metrics/weights/digits_cnn.pt
    batch: int = 512


@register_extractor("digits", DigitsConfig, "64-d penultimate layer of the shipped digits CNN (1-channel)")
def _build_digits(config: DigitsConfig):
    import torch

    from .digits_cnn import IMAGE_SIZE, load_digits_cnn

    model = load_digits_cnn(config.weights)

    def one(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.features(_resize_torch(torch.from_numpy(x), IMAGE_SIZE)).numpy()

    def run(samples: np.ndarray) -> np.ndarray:
        x = _images(samples)
        if x.shape[1] != 1:
            raise MetricError(f"the digits extractor takes 1-channel images, got {x.shape[1]} channels; "
                              "use --features randconv (or pixels) for RGB samples")
        return _batched(one, x, config.batch)

    return run


# --- fixed random conv net ---------------------------------------------------------------

@dataclasses.dataclass
class RandomConvConfig(JsonConfig):
    seed: int = 0
    width: int = 32      # channels of the first conv; doubles per stage
    stages: int = 4      # 3×3 stride-2 convs with ReLU
    size: int = 64       # inputs are resized to size × size first
    batch: int = 128

    def validate(self) -> None:
        if self.width < 1 or self.stages < 1 or self.size < 2 ** self.stages:
            raise ConfigError("randconv needs width >= 1, stages >= 1 and size >= 2**stages "
                              f"(got width={self.width}, stages={self.stages}, size={self.size})")


def random_conv_weights(in_channels: int, config: RandomConvConfig) -> list[np.ndarray]:
    """He-normal conv kernels from numpy's seeded generator (stable across torch versions)."""
    rng = np.random.default_rng([config.seed, in_channels])
    weights, cin = [], in_channels
    for s in range(config.stages):
        cout = config.width * 2 ** s
        weights.append((rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))).astype(np.float32))
        cin = cout
    return weights


@register_extractor("randconv", RandomConvConfig,
                    "fixed random-weights conv net (seeded, no download), mean+std pooled; any channels")
def _build_randconv(config: RandomConvConfig):
    import torch
    import torch.nn.functional as F

    cache: dict[int, list] = {}

    def one(x: np.ndarray) -> np.ndarray:
        c = x.shape[1]
        if c not in cache:
            cache[c] = [torch.from_numpy(w) for w in random_conv_weights(c, config)]
        with torch.no_grad():
            t = _resize_torch(torch.from_numpy(x), config.size)
            for w in cache[c]:
                t = F.relu(F.conv2d(t, w, stride=2, padding=1))
            flat = t.flatten(2)
            return torch.cat([flat.mean(2), flat.std(2)], dim=1).numpy()

    def run(samples: np.ndarray) -> np.ndarray:
        return _batched(one, _images(samples), config.batch)

    return run


# --- user-supplied model file ------------------------------------------------------------

@dataclasses.dataclass
class FileConfig(JsonConfig):
    path: str = ""
    input_size: Optional[int] = None   # resize to this square size first (Inception: 299)
    value_range: str = "-1,1"          # "-1,1" | "0,1" | "0,255": what the model expects
    channels: Optional[int] = None     # repeat 1-channel input to this many (ONNX: read from model)
    batch: int = 64

    def validate(self) -> None:
        if self.value_range not in ("-1,1", "0,1", "0,255"):
            raise ConfigError(f"file extractor value_range must be '-1,1', '0,1' or '0,255', got '{self.value_range}'")


def _prepare(x: np.ndarray, config: FileConfig, channels: Optional[int]) -> np.ndarray:
    if config.input_size:
        import torch

        x = _resize_torch(torch.from_numpy(x), config.input_size).numpy()
    if channels and x.shape[1] == 1 and channels > 1:
        x = np.repeat(x, channels, axis=1)
    if config.value_range == "0,1":
        x = (x + 1) / 2
    elif config.value_range == "0,255":
        x = (x + 1) * 127.5
    return np.ascontiguousarray(x, dtype=np.float32)


@register_extractor("file", FileConfig, "user TorchScript (.pt/.ts/.pth) or ONNX (.onnx) file, local only")
def _build_file(config: FileConfig):
    path = Path(config.path)
    kind = MODEL_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"feature model '{path}' must end in {', '.join(sorted(MODEL_SUFFIXES))}")
    if not path.is_file():
        raise CheckpointError(f"feature model '{path}' does not exist; pass a local TorchScript or ONNX file")
    if kind == "onnx":
        import onnxruntime as ort

        try:
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises many types
            raise CheckpointError(f"cannot load ONNX feature model '{path}': {first_line(exc, 160)}") from None
        inp = sess.get_inputs()[0]
        shape = inp.shape
        channels = config.channels or (shape[1] if len(shape) == 4 and isinstance(shape[1], int) else None)

        def one(x: np.ndarray) -> np.ndarray:
            out = sess.run(None, {inp.name: _prepare(x, config, channels)})[0]
            return np.asarray(out).reshape(len(x), -1)
    else:
        import torch

        try:
            model = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(f"cannot load TorchScript feature model '{path}' ({type(exc).__name__}); "
                                  "save it with torch.jit.script/trace(...).save()") from None
        channels = config.channels

        def one(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                out = model(torch.from_numpy(_prepare(x, config, channels)))
            if isinstance(out, (tuple, list)):
                out = out[0]
            return out.detach().float().numpy().reshape(len(x), -1)

    def run(samples: np.ndarray) -> np.ndarray:
        try:
            return _batched(one, _images(samples), config.batch)
        except MetricError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's model failed on our input
            raise MetricError(f"feature model '{path}' failed on input {list(np.shape(samples))}: "
                              f"{first_line(exc, 160)}; check input_size/channels") from None

    return run


# --- resolution --------------------------------------------------------------------------

@dataclasses.dataclass
class Extractor:
    """A ready extractor: call it on samples; ``describe()`` goes into compare.json."""

    name: str
    config: JsonConfig
    fn: Callable[[np.ndarray], np.ndarray]

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        feats = self.fn(samples)
        check_finite(feats, f"{self.name} features")
        return feats

    def describe(self) -> dict:
        return {"name": self.name, "config": self.config.to_dict()}


def auto_name(sample_shape: tuple[int, ...]) -> str:
    """identity for feature vectors, digits for 1-channel images, randconv otherwise."""
    if len(sample_shape) == 1:
        return "identity"
    channels = sample_shape[0] if len(sample_shape) == 3 else 1
    return "digits" if channels == 1 else "randconv"


def get_extractor(name: str = "auto", config: JsonConfig | dict | None = None,
                  sample_shape: tuple[int, ...] | None = None) -> Extractor:
    """Resolve a name, ``auto`` (needs ``sample_shape`` = one sample's shape) or a model path."""
    if name == "auto":
        if sample_shape is None:
            raise ConfigError("feature extractor 'auto' needs the sample shape; pass a name instead")
        name = auto_name(tuple(sample_shape))
        log.info("features: auto -> %s", name)
    if name not in EXTRACTORS and Path(name).suffix.lower() in MODEL_SUFFIXES:
        config = {**(config if isinstance(config, dict) else {}), "path": name}
        name = "file"
    spec = EXTRACTORS.get(name)  # UnknownNameError lists the names
    if config is None:
        config = spec.config_cls()
    elif isinstance(config, dict):
        config = spec.config_cls.from_dict(config)
    if name == "file" and not getattr(config, "path", ""):
        raise ConfigError("the file extractor needs a path: pass --features path/to/model.onnx (or .pt)")
    return Extractor(name, config, spec.build(config))


def extract_features(samples: np.ndarray, name: str = "auto", config: JsonConfig | dict | None = None) -> np.ndarray:
    """Features [N, D] of ``samples`` with extractor ``name`` (see module doc)."""
    samples = np.asarray(samples)
    return get_extractor(name, config, tuple(samples.shape[1:]))(samples)
