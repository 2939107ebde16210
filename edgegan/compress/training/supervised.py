"""Supervised training on (input, ground truth) pairs, on the shared loop of :mod:`.core`.

Two uses, both for image-to-image tasks that have ground truth (the zoo's sketch task):

* :func:`from_scratch`: the baseline GAN Slimming and density pruning are judged against, "the
  same small architecture trained from scratch for the same steps": a randomly initialised
  model with exactly a student's family config (its channel widths), trained on the task's
  pairs with a plain L1 (or MSE) loss to the ground truth; it never sees the teacher;
* :func:`finetune`: a compressed student trained further on the pairs, optionally with a
  distillation term (``distill`` x the same loss to the teacher's output), so it can learn from
  the ground truth what its teacher got wrong and from the teacher what the pairs are too few
  to show.

Recipe (ours, after the script that trained the zoo's ``resnet-sketch``): Adam (betas 0.9,
0.999), cosine decay of ``lr`` to 0 over ``steps`` (the step counter travels in the training
state, so ``resume`` stays exact), batches drawn from the pairs with the run's seeded generator,
optionally a random ``crop`` (same place in input and truth, one per sample: the teacher was
trained on 32x32 crops, 4x cheaper than 64x64 and fully convolutional).
"""
from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, Optional

from ...errors import ConfigError
from ..base import derive
from .core import TrainingConfig, TrainingResult, params_and_macs, run_training
from ...util.torch_threads import torch_threads

LOSSES = ("l1", "mse")


@dataclasses.dataclass
class SupervisedConfig(TrainingConfig):
    """Loss to the ground truth, distillation weight, crop size and learning-rate schedule."""

    loss: str = dataclasses.field(default="l1", metadata={"help": "loss to the ground truth: l1 or mse"})
    distill: float = dataclasses.field(default=0.0, metadata={
        "help": "weight of the same loss to the teacher's output (0: ground truth only)"})
    crop: Optional[int] = dataclasses.field(default=None, metadata={
        "help": "random square crop of each pair per step (default: whole images)"})
    cosine: bool = dataclasses.field(default=True, metadata={"help": "cosine decay of lr to 0 over the steps"})

    def validate(self) -> None:
        super().validate()
        if self.loss not in LOSSES:
            raise ConfigError(f"supervised loss must be one of {', '.join(LOSSES)}, got {self.loss!r}", field="loss")
        if not self.distill >= 0:
            raise ConfigError(f"supervised distill must be >= 0, got {self.distill}", field="distill")
        if self.crop is not None and self.crop < 4:
            raise ConfigError(f"supervised crop must be >= 4 pixels, got {self.crop}", field="crop")


def _clock() -> Any:
    """A module holding the step counter, so the lr schedule is restored with the state."""
    import torch
    from torch import nn

    class Clock(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("step", torch.zeros((), dtype=torch.long))

    return Clock()


class _SupervisedTask:
    def __init__(self, module: Any, inputs: Any, targets: Any, config: SupervisedConfig, teacher: Any = None) -> None:
        import torch

        self.module, self.inputs, self.targets, self.config, self.teacher = module, inputs, targets, config, teacher
        self.clock = _clock()
        self.modules = {"student": module, "clock": self.clock}
        self.optimizers = {"student": torch.optim.Adam(module.parameters(), lr=config.lr)}

    def _batch(self, generator: Any) -> tuple[Any, Any]:
        import torch

        cfg = self.config
        idx = torch.randint(0, len(self.inputs), (cfg.batch,), generator=generator)
        x, y = self.inputs[idx], self.targets[idx]
        if cfg.crop is None:
            return x, y
        h, w = x.shape[-2:]
        top = torch.randint(0, h - cfg.crop + 1, (cfg.batch,), generator=generator).tolist()
        left = torch.randint(0, w - cfg.crop + 1, (cfg.batch,), generator=generator).tolist()
        c = cfg.crop
        xs = torch.stack([x[i, :, t:t + c, s:s + c] for i, (t, s) in enumerate(zip(top, left))])
        ys = torch.stack([y[i, :, t:t + c, s:s + c] for i, (t, s) in enumerate(zip(top, left))])
        return xs, ys

    def step(self, generator: Any) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        cfg = self.config
        lossfn = F.l1_loss if cfg.loss == "l1" else F.mse_loss
        opt = self.optimizers["student"]
        t = int(self.clock.step)
        lr = cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(t, cfg.steps) / cfg.steps)) if cfg.cosine else cfg.lr
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = self._batch(generator)
        out = self.module(x)
        truth = lossfn(out, y)
        loss = truth
        row = {"truth": float(truth.detach())}
        if self.teacher is not None and cfg.distill > 0:
            with torch.no_grad():
                target = self.teacher(x)
            distill = lossfn(out, target)
            loss = truth + cfg.distill * distill
            row["teacher"] = float(distill.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        self.clock.step += 1
        row.update(loss=float(loss.detach()), lr=lr)
        return row


def _pairs(inputs: Any, targets: Any, module: Any, config: SupervisedConfig) -> tuple[Any, Any]:
    import numpy as np
    import torch

    x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    y = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
    if x.ndim != 4 or y.ndim != 4 or len(x) != len(y) or len(x) == 0 or x.shape[-2:] != y.shape[-2:]:
        raise ConfigError(f"supervised training needs N (input, truth) image pairs [N, C, H, W] of one size; got "
                          f"inputs {list(x.shape)} and targets {list(y.shape)}", field="data")
    if config.crop is not None and config.crop > min(x.shape[-2:]):
        raise ConfigError(f"supervised crop {config.crop} is larger than the images ({x.shape[-2]}x{x.shape[-1]})",
                          field="crop")
    with torch.no_grad():
        was = module.training
        module.eval()
        out = module(x[:1])
        module.train(was)
    if out.shape[1:] != y.shape[1:]:
        raise ConfigError(f"the model makes {list(out.shape[1:])} from these inputs, the targets are "
                          f"{list(y.shape[1:])}", field="data")
    return x, y


def train_supervised(module: Any, inputs: Any, targets: Any, config: SupervisedConfig,
                     teacher: Any = None, info: Optional[dict] = None) -> TrainingResult:
    """Train ``module`` in place on the pairs (numpy [N, C, H, W]); ``teacher``: a frozen module
    for the ``distill`` term. Leaves the module in eval mode with gradients off."""
    x, y = _pairs(inputs, targets, module, config)
    if teacher is not None:
        teacher = copy.deepcopy(teacher).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    for p in module.parameters():
        p.requires_grad_(True)
    with torch_threads(config.threads):
        result = run_training("supervised", config, _SupervisedTask(module, x, y, config, teacher), info)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return result


def from_scratch(student: Any, inputs: Any, targets: Any, config: SupervisedConfig, teacher: Any = None) -> Any:
    """A LoadedModel with ``student``'s family and config (same widths), initialised at random
    (``config.seed``) and trained on the pairs. ``teacher`` (a LoadedModel) is only the base the
    record hangs from and the distillation target when ``config.distill`` > 0."""
    import torch

    from ...models.loading import build_family

    if student.family is None or student.config is None:
        raise ConfigError(f"from-scratch needs a zoo-family student to copy the architecture of; '{student.name}' "
                          f"was loaded from {student.source}")
    rng = torch.get_rng_state()
    try:
        module, cfg, _ = build_family(student.family, dict(student.config), config.seed)
    finally:
        torch.set_rng_state(rng)
    example = student.sample_inputs(1, 0)
    result = train_supervised(module, inputs, targets, config, teacher.module if teacher is not None and config.distill
                              else None, {"student": {"family": student.family, "config": cfg.to_dict(),
                                                      **params_and_macs(module, example)}})
    base = teacher if teacher is not None else student
    stats = {"architecture_of": student.name, "student": {"family": student.family, "config": cfg.to_dict(),
                                                           **params_and_macs(module, example)},
             "training": result.summary()}
    return derive(base, module, "scratch", config, stats, family_config=cfg.to_dict())


def finetune(student: Any, inputs: Any, targets: Any, config: SupervisedConfig, teacher: Any = None) -> Any:
    """A copy of ``student`` (a LoadedModel) trained further on the pairs (+ distillation from
    ``teacher``, a LoadedModel, when ``config.distill`` > 0); the record says so."""
    module = copy.deepcopy(student.module)
    example = student.sample_inputs(1, 0)
    result = train_supervised(module, inputs, targets, config, teacher.module if teacher is not None and config.distill
                              else None, {"student": {"family": student.family, **params_and_macs(module, example)}})
    return derive(student, module, "supervised-finetune", config, {"training": result.summary()})


__all__ = ["SupervisedConfig", "finetune", "from_scratch", "train_supervised"]
