"""``kd``: knowledge distillation of a DCGAN generator into a DCGAN student of width d
(Aguinaldo et al. 2019, "Compressing GANs using Knowledge Distillation").

The student gets the teacher's latent and learns the teacher's image for it:

* ``mse``: loss = MSE(student(z), teacher(z));
* ``joint``: loss = MSE + alpha * adversarial, where a small conv critic learns to tell teacher
  images (real) from student images (fake) with the non-saturating BCE loss and the student is
  trained to fool it. Using the teacher's outputs as the critic's "real" set (not the training
  data) is our choice: the whole method then needs no data, like the MSE variant;
* ``regular``: the baseline of the paper's table: the same student architecture trained as a
  plain GAN (same critic, same loss, same optimizer and step budget) on real images
  (``data``, default 'digits'), never seeing the teacher's outputs.

The result is a plain ``dcgan`` of width d (a zoo family + config, no teacher inside), whose
parameter count is 672 d^2 + 12831 d + 1 for one output channel and a 100-d latent.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from ...errors import ConfigError
from ..base import derive, register_method
from .core import TrainingConfig, frozen, params_and_macs, run_training
from ...util.torch_threads import torch_threads

LOSSES = ("mse", "joint", "regular")


@dataclasses.dataclass
class KDConfig(TrainingConfig):
    """Student width and loss; the training fields come from TrainingConfig."""

    width: int = dataclasses.field(default=4, metadata={"help": "student DCGAN width d (channels 8d-4d-2d-d)"})
    loss: str = dataclasses.field(default="mse", metadata={
        "choices": LOSSES, "help": "mse: pixel MSE to the teacher; joint: MSE + alpha * adversarial (critic: teacher "
        "images real); regular: plain GAN on --data, the baseline"})
    alpha: float = dataclasses.field(default=0.05, metadata={"help": "weight of the adversarial term of --loss joint"})
    critic_width: int = dataclasses.field(default=16, metadata={"help": "width of the conv critic (joint, regular)"})

    def validate(self) -> None:
        super().validate()
        if self.width < 1:
            raise ConfigError(f"kd width must be >= 1 (the student's channels are 8d-4d-2d-d), got {self.width}",
                              field="width")
        if self.loss not in LOSSES:
            raise ConfigError(f"kd loss '{self.loss}' unknown; use one of {', '.join(LOSSES)}", field="loss")
        if self.alpha < 0:
            raise ConfigError(f"kd alpha must be >= 0, got {self.alpha}", field="alpha")
        if self.critic_width < 1:
            raise ConfigError(f"kd critic_width must be >= 1, got {self.critic_width}", field="critic_width")

    def tag(self) -> str:
        """Short name part for outputs (``kd-d4-mse``)."""
        return f"kd-d{self.width}-{self.loss}"


def init_dcgan_weights(module: Any) -> None:
    """The DCGAN initialisation: convs N(0, 0.02), BatchNorm scales N(1, 0.02), shifts 0."""
    from torch import nn

    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _teacher_geometry(model: Any) -> tuple[int, int]:
    """(latent_dim, output channels) of a teacher a DCGAN student can copy, else ConfigError."""
    import numpy as np
    import torch

    spec = model.input_spec
    if spec.kind != "latent" or len(spec.shape) != 3 or spec.shape[1:] != [1, 1]:
        raise ConfigError(f"kd needs a latent->image teacher taking [N, nz, 1, 1]; '{model.name}' takes "
                          f"{spec.kind} {spec.shape}; use a dcgan model")
    with torch.no_grad():
        out = model.module(torch.from_numpy(np.ascontiguousarray(spec.sample(1, 0))))
    if out.ndim != 4 or tuple(out.shape[2:]) != (32, 32):
        raise ConfigError(f"kd students are 32x32 DCGANs; '{model.name}' makes {list(out.shape[1:])}; use a 32x32 teacher")
    return int(spec.shape[0]), int(out.shape[1])


class _KDTask:
    """One step of kd (mse/joint) or of the regular baseline; see the module docstring."""

    def __init__(self, teacher: Any, student: Any, critic: Any, config: KDConfig, latent_dim: int, real: Any) -> None:
        import torch

        self.teacher, self.student, self.critic = teacher, student, critic
        self.config, self.latent_dim, self.real = config, latent_dim, real
        betas = (0.5, 0.999)
        self.modules = {"student": student}
        self.optimizers = {"student": torch.optim.Adam(student.parameters(), lr=config.lr, betas=betas)}
        if critic is not None:
            self.modules["critic"] = critic
            self.optimizers["critic"] = torch.optim.Adam(critic.parameters(), lr=config.lr, betas=betas)

    def _critic_step(self, real: Any, fake: Any) -> float:
        import torch
        import torch.nn.functional as F

        d_real, d_fake = self.critic(real), self.critic(fake.detach())
        loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
            F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        opt = self.optimizers["critic"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    def _fool(self, fake: Any) -> Any:
        import torch
        import torch.nn.functional as F

        out = self.critic(fake)
        return F.binary_cross_entropy_with_logits(out, torch.ones_like(out))

    def step(self, generator: Any) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        cfg = self.config
        z = torch.randn(cfg.batch, self.latent_dim, 1, 1, generator=generator)
        fake = self.student(z)
        row: dict[str, float] = {}
        if cfg.loss == "regular":
            idx = torch.randint(0, len(self.real), (cfg.batch,), generator=generator)
            row["critic"] = self._critic_step(self.real[idx], fake)
            loss = self._fool(fake)
            row["adv"] = float(loss.detach())
        else:
            with torch.no_grad():
                target = self.teacher(z)
            mse = F.mse_loss(fake, target)
            row["mse"] = float(mse.detach())
            loss = mse
            if cfg.loss == "joint":
                row["critic"] = self._critic_step(target, fake)
                adv = self._fool(fake)
                row["adv"] = float(adv.detach())
                loss = mse + cfg.alpha * adv
        row["loss"] = float(loss.detach())
        opt = self.optimizers["student"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return row


@register_method("kd", KDConfig, "train a DCGAN student of width d from the teacher (knowledge distillation), "
                 "or the same width as a plain GAN on real data (--loss regular)", kind="training")
def apply(model: Any, config: KDConfig) -> Any:
    with torch_threads(config.threads):
        return _distil(model, config)


def _distil(model: Any, config: KDConfig) -> Any:
    import copy

    import torch

    from ...models.configs import DCGANConfig
    from ...models.dcgan import DCGANGenerator
    from ...models.training.digits import build_discriminator
    from .data import load_images

    latent_dim, channels = _teacher_geometry(model)
    teacher = frozen(copy.deepcopy(model.module))
    family_config = DCGANConfig(width=config.width, latent_dim=latent_dim, channels=channels)
    torch.manual_seed(config.seed)
    student = DCGANGenerator(family_config)
    init_dcgan_weights(student)
    critic = None
    if config.loss in ("joint", "regular"):
        critic = build_discriminator(config.critic_width, channels)
        init_dcgan_weights(critic)
    real = None
    if config.loss == "regular":
        real = torch.from_numpy(load_images(config.data or "digits", (channels, 32, 32)))
    elif config.data is not None:
        raise ConfigError("--data is only read by --loss regular (mse and joint learn from the teacher's outputs); "
                          "drop it or use --loss regular", field="data")
    example = model.sample_inputs(1, 0)
    models_info = {"teacher": {"name": model.name, **params_and_macs(teacher, example)},
                   "student": {"family": "dcgan", "config": family_config.to_dict(), **params_and_macs(student, example)}}
    result = run_training("kd", config, _KDTask(teacher, student, critic, config, latent_dim, real), models_info)
    student.eval()
    for p in student.parameters():
        p.requires_grad_(False)
    t, s = models_info["teacher"], models_info["student"]
    stats = {
        "teacher": t, "student": s,
        "compression_ratio_params": round(t["params"] / s["params"], 3),
        "compression_ratio_macs": round(t["macs"] / s["macs"], 3) if s["macs"] else None,
        "data": (config.data or "digits") if config.loss == "regular" else "teacher outputs",
        "training": result.summary(),
    }
    return derive(model, student, "kd", config, stats, family_config=family_config.to_dict())
