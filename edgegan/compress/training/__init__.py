"""Compression by training: a smaller generator trained from the model (kd, slim), on the shared loop
of :mod:`.core` (seeded, checkpointed, resumable, interruptible, with a training.json record).

Importing this package registers the methods in :data:`edgegan.compress.METHODS` (kind
"training"); torch is imported only when a method runs."""
from . import kd, slim  # noqa: F401 - registration (order of `edgegan compress --help`)
from .core import TrainingConfig, TrainingInterrupted, progress_to
from .kd import KDConfig
from .slim import SlimConfig

__all__ = ["KDConfig", "SlimConfig", "TrainingConfig", "TrainingInterrupted", "kd", "progress_to", "slim"]
