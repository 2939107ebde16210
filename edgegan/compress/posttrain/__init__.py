"""Post-training compression methods (no retraining): clip, quant, prune, channel-prune, and
bn-recalibrate (re-estimates BatchNorm statistics after one of them).

Importing this package registers them in :data:`edgegan.compress.METHODS`."""
from . import bn_recalibrate, channel_prune, clip, prune, quant
from .bn_recalibrate import BNRecalibrateConfig
from .channel_prune import ChannelPruneConfig
from .clip import ClipConfig
from .prune import PruneConfig
from .quant import QuantConfig, restore_activation_quant

__all__ = ["BNRecalibrateConfig", "ChannelPruneConfig", "ClipConfig", "PruneConfig", "QuantConfig", "bn_recalibrate",
           "channel_prune", "clip", "prune", "quant", "restore_activation_quant"]
