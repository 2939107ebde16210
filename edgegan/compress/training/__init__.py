"""Compression by training: a smaller generator trained from the model (kd, slim, density), on the shared loop
of :mod:`.core` (seeded, checkpointed, resumable, interruptible, with a training.json record).

Importing this package registers the methods in :data:`edgegan.compress.METHODS` (kind
"training"); torch is imported only when a method runs."""
from . import density, kd, slim  # noqa: F401 - registration (order of `edgegan compress --help`)
from .core import TrainingConfig, TrainingInterrupted, progress_to
from .density import DensityConfig
from .kd import KDConfig
from .slim import SlimConfig
from .supervised import SupervisedConfig

__all__ = ["DensityConfig", "KDConfig", "SlimConfig", "SupervisedConfig", "TrainingConfig", "TrainingInterrupted", "density", "kd", "progress_to", "slim"]
