"""Compression by training: a smaller generator trained from the model (kd), on the shared loop
of :mod:`.core` (seeded, checkpointed, resumable, interruptible, with a training.json record).

Importing this package registers the methods in :data:`edgegan.compress.METHODS` (kind
"training"); torch is imported only when a method runs."""
from . import kd  # noqa: F401 - registration
from .core import TrainingConfig, TrainingInterrupted, progress_to
from .kd import KDConfig

__all__ = ["KDConfig", "TrainingConfig", "TrainingInterrupted", "kd", "progress_to"]
