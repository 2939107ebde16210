"""Compression of trained generators (post-training: clip, k-bit quant, magnitude and channel
pruning, BatchNorm re-calibration; by training: kd, slim, density), as registered methods that compose in a pipeline.

    from edgegan.compress import compress, PipelineConfig
    small = compress(load_generator("dcgan-digits"), [{"method": "quant", "config": {"bits": 4}}])

Every method returns a new LoadedModel whose ``compression`` list records what was done;
:func:`save_compressed` writes the checkpoint + compression.json that ``edgegan export`` reads.
Importing this package does not import torch.
"""
from . import posttrain, training
from .base import METHODS, Method, PipelineConfig, PipelineStep, apply_method, compress, method_config, register_method
from .io import RECORD_FILENAME, compression_record, model_summary, record_path_for, save_compressed
from .posttrain import BNRecalibrateConfig, ChannelPruneConfig, ClipConfig, PruneConfig, QuantConfig, restore_activation_quant
from .storage import storage_stats
from .training import DensityConfig, KDConfig, SlimConfig, TrainingConfig, TrainingInterrupted

__all__ = [
    "BNRecalibrateConfig", "DensityConfig", "KDConfig", "METHODS", "RECORD_FILENAME", "ChannelPruneConfig", "SlimConfig", "ClipConfig", "Method", "PipelineConfig", "PipelineStep",
    "PruneConfig", "QuantConfig", "apply_method", "compress", "compression_record", "method_config",
    "model_summary", "posttrain", "record_path_for", "register_method", "restore_activation_quant", "save_compressed", "storage_stats", "TrainingConfig",
    "TrainingInterrupted", "training",
]

