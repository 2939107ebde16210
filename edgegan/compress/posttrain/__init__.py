"""Post-training compression methods (no retraining): clip, quant, prune, channel-prune, and
bn-recalibrate (re-estimates BatchNorm statistics after one of them).

Importing this package registers them in :data:`edgegan.compress.METHODS`, in this order
(the order of ``edgegan compress --help``)."""
from . import clip, quant, prune, channel_prune, bn_recalibrate  # noqa: I001 - registration order
from .bn_recalibrate import BNRecalibrateConfig
from .channel_prune import ChannelPruneConfig
from .clip import ClipConfig
from .prune import PruneConfig
from .quant import QuantConfig, restore_activation_quant

__all__ = ["BNRecalibrateConfig", "ChannelPruneConfig", "ClipConfig", "PruneConfig", "QuantConfig", "bn_recalibrate",
           "channel_prune", "clip", "prune", "quant", "restore_activation_quant"]
