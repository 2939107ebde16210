"""The small CNN behind the ``digits`` feature extractor.

MNIST-style papers replace Inception with a classifier trained on the dataset itself; this is
that classifier for scikit-learn's digits at 32×32 in [-1, 1]. Its 64-d penultimate layer
(after ReLU) is the feature space. ~40k parameters, so the shipped state_dict stays ~170 kB.
torch is imported inside the functions so that ``import edgegan.metrics`` stays light.
"""
from __future__ import annotations

from pathlib import Path

WEIGHTS_PATH = Path(__file__).parent / "weights" / "digits_cnn.pt"
FEATURE_DIM = 64
IMAGE_SIZE = 32


def build_digits_cnn():
    """Return an untrained ``DigitsCNN`` (a torch ``nn.Module`` with ``features()``)."""
    import torch
    from torch import nn

    class DigitsCNN(nn.Module):
        """[N, 1, 32, 32] in [-1, 1] -> logits [N, 10]; ``features`` -> [N, 64]."""

        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),   # 16
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 8
                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(inplace=True),
                nn.AdaptiveAvgPool2d(2), nn.Flatten(),                                    # 256
                nn.Linear(256, FEATURE_DIM), nn.ReLU(inplace=True),
            )
            self.head = nn.Linear(FEATURE_DIM, 10)

        def features(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.body(x))

    return DigitsCNN()


def load_digits_cnn(path: str | Path | None = None):
    """The shipped (or a given) classifier in eval mode; weights read with weights_only=True."""
    import torch

    from ..errors import CheckpointError

    p = Path(path) if path is not None else WEIGHTS_PATH
    if not p.is_file():
        raise CheckpointError(
            f"digits classifier weights '{p}' are missing; run `python -m edgegan.metrics.train_digits_classifier`"
        )
    model = build_digits_cnn()
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - any load failure is one checkpoint error
        raise CheckpointError(
            f"cannot load digits classifier '{p}' ({type(exc).__name__}); retrain it with "
            "`python -m edgegan.metrics.train_digits_classifier`"
        ) from None
    return model.eval()


def class_probabilities(features, path: str | Path | None = None):
    """Softmax of the classifier head on 64-d ``digits`` features [N, 64] -> [N, 10] (numpy,
    float64): the class probabilities the Inception Score needs, without a second pass
    through the network."""
    import numpy as np
    import torch

    head = load_digits_cnn(path).head
    w = head.weight.detach().to(torch.float64).numpy()
    b = head.bias.detach().to(torch.float64).numpy()
    logits = np.asarray(features, dtype=np.float64) @ w.T + b
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)
