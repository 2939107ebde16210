"""``slim``: GAN Slimming (Wang et al. 2020): distillation, channel pruning and quantization in
one objective, then physical channel removal and a fine-tune.

The student starts as a copy of the teacher. Each step:

* generator loss = beta * MSE(student(x), teacher(x)) + LSGAN loss 0.5 (D(student(x)) - 1)^2,
  where the critic D learns 0.5 (D(teacher(x)) - 1)^2 + 0.5 D(student(x))^2 (teacher outputs
  are its "real" set, so no data is needed);
* after the Adam step, the L1 proximal step on every affine norm scale of a prunable channel
  group: gamma <- sign(gamma) * max(|gamma| - rho * lr, 0) (lr: ``scale_lr``, the norms' own Adam
  learning rate, when set). Our addition: where gamma reaches
  zero the norm's shift beta is zeroed too, so the channel's output is exactly 0 and removing it
  changes nothing (with beta left, a "dead" channel would still feed relu(beta) onward);
* with ``bits`` > 0, conv weights are fake-quantized per layer (symmetric, 2^(bits-1)-1 levels)
  and every conv input per tensor (asymmetric, min/max of the batch) with straight-through
  gradients.

Then channels whose scale is zero are cut out of the float weights with the same surgery as
post-training channel-prune (:mod:`..posttrain.channel_layout`), giving a plain zoo-family model
with new widths in its config; it is fine-tuned for ``finetune_steps`` under the same loss
(without the proximal step) and its weights are finally rounded onto the ``bits`` grid.

Needs affine norm layers: DCGAN and U-Net (BatchNorm) have them. The zoo's ResNet uses
InstanceNorm without affine parameters; as GAN Slimming does for CycleGAN, the student is its
``affine_norm`` variant with every scale 1 and shift 0 (the same function as the teacher,
tested), and the result keeps the affine norms (folding them away is not exact: a ReLU or the
residual add follows every norm; ONNX's InstanceNormalization carries scale and shift anyway).
The residual stream's channels are one group (the last down conv and every block's second conv
write them); a stream channel is removed only when its scale is zero in all of those norms
(tied masks), which makes the cut exact: each writer then adds exactly 0 to it.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, Optional

from ...errors import ConfigError
from ..base import derive, register_method
from .core import TrainingConfig, finetune_config, frozen, params_and_macs, run_training
from ...util.torch_threads import torch_threads


@dataclasses.dataclass
class SlimConfig(TrainingConfig):
    """Sparsity, distillation weight, bits and fine-tune length; training fields as for kd."""

    rho: float = dataclasses.field(default=0.01, metadata={"help": "L1 weight on the norm scales (channel sparsity)"})
    beta: float = dataclasses.field(default=10.0, metadata={"help": "weight of the distillation (MSE) term"})
    bits: int = dataclasses.field(default=8, metadata={"help": "fake-quantization bits of weights and conv inputs "
                                                                "(0: float)"})
    finetune_steps: int = dataclasses.field(default=100, metadata={
        "help": "steps of fine-tuning after the zero channels are removed"})
    scale_lr: Optional[float] = dataclasses.field(default=None, metadata={
        "help": "Adam learning rate of the norm scales and shifts, which the proximal step uses too "
                "(default: lr); lets a trained model keep a small lr for its convs"})
    critic_width: int = dataclasses.field(default=16, metadata={"help": "width of the PatchGAN critic"})
    pool: int = dataclasses.field(default=512, metadata={
        "flag": None, "help": "inputs drawn once (seeded) for image models; batches are sampled from them"})

    def validate(self) -> None:
        super().validate()
        if self.rho < 0:
            raise ConfigError(f"slim rho must be >= 0 (it is an L1 weight), got {self.rho}", field="rho")
        if self.beta < 0:
            raise ConfigError(f"slim beta must be >= 0, got {self.beta}", field="beta")
        if self.bits != 0 and not 2 <= self.bits <= 16:
            raise ConfigError(f"slim bits must be 0 (float) or 2..16, got {self.bits}", field="bits")
        if self.finetune_steps < 0:
            raise ConfigError(f"slim finetune_steps must be >= 0, got {self.finetune_steps}", field="finetune_steps")
        if self.scale_lr is not None and not self.scale_lr > 0:
            raise ConfigError(f"slim scale_lr must be > 0, got {self.scale_lr}", field="scale_lr")
        if self.critic_width < 1 or self.pool < 2:
            raise ConfigError("slim critic_width must be >= 1 and pool >= 2", field="critic_width")

    def tag(self) -> str:
        return f"slim{self.bits}" if self.bits else "slim"


def _fake_quant_weight(w: Any, bits: int) -> Any:
    import torch

    qmax = 2 ** (bits - 1) - 1
    scale = w.detach().abs().max().clamp(min=1e-12) / qmax
    return torch.clamp(torch.round(w / scale), -qmax, qmax) * scale


def _fake_quant_activation(x: Any, bits: int) -> Any:
    import torch

    qmax = 2**bits - 1
    lo, hi = x.detach().min().clamp(max=0.0), x.detach().max().clamp(min=0.0)
    scale = ((hi - lo) / qmax).clamp(min=1e-12)
    zero = torch.round(-lo / scale)
    q = (torch.clamp(torch.round(x / scale) + zero, 0, qmax) - zero) * scale
    return x + (q - x).detach()  # straight-through


def weight_fake_quant(bits: int) -> Any:
    """A parametrization module: the conv sees its weight on the bits grid, gradients pass straight."""
    from torch import nn

    class WeightFakeQuant(nn.Module):
        def forward(self, w):
            return w + (_fake_quant_weight(w, bits) - w).detach()

    return WeightFakeQuant()


def _convs(module: Any) -> list:
    from torch import nn

    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def install_fake_quant(module: Any, bits: int) -> list:
    """Weight parametrizations and input hooks on every conv; returns the hook handles."""
    from torch.nn.utils import parametrize

    handles = []
    for conv in _convs(module):
        parametrize.register_parametrization(conv, "weight", weight_fake_quant(bits))
        handles.append(conv.register_forward_pre_hook(lambda _m, args: (_fake_quant_activation(args[0], bits), *args[1:])))
    return handles


def remove_fake_quant(module: Any, handles: list) -> None:
    """Back to the float weights (the parametrization's original) and unhooked inputs."""
    from torch.nn.utils import parametrize

    for h in handles:
        h.remove()
    for conv in _convs(module):
        if parametrize.is_parametrized(conv, "weight"):
            parametrize.remove_parametrizations(conv, "weight", leave_parametrized=False)


def round_weights(module: Any, bits: int) -> None:
    """Store every conv weight on its per-layer symmetric ``bits`` grid (the exported values)."""
    import torch

    with torch.no_grad():
        for conv in _convs(module):
            conv.weight.copy_(_fake_quant_weight(conv.weight, bits))


def slimmable_norms(module: Any, layout: Any) -> dict[str, list]:
    """group -> its norm layers, for groups whose every producer has an affine norm."""
    named = dict(module.named_modules())
    out = {}
    for name, group in layout.groups.items():
        norms = [named[n] for n in group.norms]
        if norms and len(norms) == len(group.producers) and all(getattr(n, "weight", None) is not None for n in norms):
            out[name] = norms
    return out


def proximal_step(norms: dict[str, list], threshold: float) -> None:
    """gamma <- sign(gamma) max(|gamma| - threshold, 0); beta <- 0 where gamma is 0."""
    import torch

    with torch.no_grad():
        for layers in norms.values():
            for n in layers:
                g = n.weight
                g.copy_(torch.sign(g) * torch.clamp(g.abs() - threshold, min=0.0))
                n.bias.mul_((g != 0).to(n.bias.dtype))


def kept_channels(norms: dict[str, list]) -> dict[str, Any]:
    """group -> sorted indices of channels with a non-zero scale in any of its norms (at least
    one channel is kept; a group whose scales are all zero outputs zeros, so any one is exact)."""
    import torch

    keep = {}
    for name, layers in norms.items():
        alive = torch.zeros_like(layers[0].weight, dtype=torch.bool)
        for n in layers:
            alive |= n.weight.detach() != 0
        idx = torch.nonzero(alive).flatten()
        keep[name] = idx if len(idx) else torch.zeros(1, dtype=torch.long)
    return keep


def patch_critic(channels: int, width: int) -> Any:
    """A small PatchGAN critic (3 stride-2 convs, then one logit per patch), any size >= 16."""
    from torch import nn

    w = width
    return nn.Sequential(
        nn.Conv2d(channels, w, 4, 2, 1), nn.LeakyReLU(0.2, True),
        nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2, True),
        nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.LeakyReLU(0.2, True),
        nn.Conv2d(4 * w, 1, 3, 1, 1),
    )


class _SlimTask:
    def __init__(self, teacher: Any, student: Any, critic: Any, config: SlimConfig, draw: Any, norms: dict | None,
                 critic_opt_state: Any = None) -> None:
        import torch

        self.teacher, self.student, self.critic, self.config, self.draw, self.norms = teacher, student, critic, config, \
            draw, norms
        betas = (0.5, 0.999)
        self.modules = {"student": student, "critic": critic}
        self.scale_lr = config.scale_lr or config.lr
        scaled = {id(p) for ls in (norms or {}).values() for n in ls for p in (n.weight, n.bias)}
        separate = scaled if config.scale_lr is not None else set()
        groups = [{"params": [p for p in student.parameters() if id(p) not in separate]}]
        if scaled and config.scale_lr is not None:
            groups.append({"params": [p for p in student.parameters() if id(p) in scaled], "lr": self.scale_lr})
        self.optimizers = {"student": torch.optim.Adam(groups, lr=config.lr, betas=betas),
                           "critic": torch.optim.Adam(critic.parameters(), lr=config.lr, betas=betas)}

    def step(self, generator: Any) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        cfg = self.config
        x = self.draw(generator)
        with torch.no_grad():
            target = self.teacher(x)
        fake = self.student(x)
        d_real, d_fake = self.critic(target), self.critic(fake.detach())
        loss_d = 0.5 * ((d_real - 1) ** 2).mean() + 0.5 * (d_fake ** 2).mean()
        opt = self.optimizers["critic"]
        opt.zero_grad(set_to_none=True)
        loss_d.backward()
        opt.step()
        mse = F.mse_loss(fake, target)
        adv = 0.5 * ((self.critic(fake) - 1) ** 2).mean()
        loss = cfg.beta * mse + adv
        opt = self.optimizers["student"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        row = {"mse": float(mse.detach()), "adv": float(adv.detach()), "critic": float(loss_d.detach()),
               "loss": float(loss.detach())}
        if self.norms is not None:
            proximal_step(self.norms, cfg.rho * self.scale_lr)
            row["zero_channels"] = float(sum(int((n.weight == 0).sum()) for ls in self.norms.values() for n in ls[:1]))
        return row


def _input_sampler(model: Any, config: SlimConfig) -> Any:
    """draw(generator) -> a batch of inputs: latents drawn fresh, images sampled from a pool."""
    import numpy as np
    import torch

    spec = model.input_spec
    if spec.kind == "latent":
        shape = tuple(spec.shape)
        return lambda g: torch.randn(config.batch, *shape, generator=g)
    if config.data is not None:
        from .data import load_images

        pool = torch.from_numpy(load_images(config.data, tuple(spec.shape)))
    else:
        pool = torch.from_numpy(np.ascontiguousarray(model.sample_inputs(config.pool, config.seed)))
    return lambda g: pool[torch.randint(0, len(pool), (config.batch,), generator=g)]


def affine_student(family: str, config: dict, module: Any) -> tuple[Any, Any, dict]:
    """(student module, its family config, config dict): a trainable copy of ``module``; for a
    family whose config has an ``affine_norm`` switch that is off (the zoo's ResNet), the
    affine variant with the same weights, every norm scale 1 and shift 0, so it computes
    exactly what ``module`` computes and the L1 step has scales to act on."""
    import torch

    from ...models.loading import build_family
    from ...models.zoo import FAMILIES

    cfg = FAMILIES.get(family).config_cls.from_dict(config)
    if getattr(cfg, "affine_norm", True):
        return copy.deepcopy(module), cfg, dict(config)
    rng = torch.get_rng_state()
    try:
        student, cfg, _ = build_family(family, {**config, "affine_norm": True})
    finally:
        torch.set_rng_state(rng)
    missing, unexpected = student.load_state_dict(module.state_dict(), strict=False)
    named = dict(student.named_modules())
    added = [k for k in missing if k.rsplit(".", 1)[-1] in ("weight", "bias")
             and hasattr(named.get(k.rsplit(".", 1)[0]), "num_features")]
    if unexpected or len(added) != len(missing):
        raise ConfigError(f"{family} with affine_norm does not take this model's weights (missing "
                          f"{sorted(set(missing) - set(added))[:3]}, unexpected {unexpected[:3]}); is it built from "
                          "another config?")
    with torch.no_grad():
        for key in added:
            param = student.get_parameter(key)
            param.fill_(1.0 if key.endswith("weight") else 0.0)
    return student, cfg, cfg.to_dict()


def _check_teacher(model: Any) -> tuple[Any, Any, dict, dict]:
    """(student, its family config, config dict, its slimmable norms) for a slimmable teacher."""
    from ..posttrain.channel_layout import channel_layout, prunable_families

    if model.family not in prunable_families() or model.config is None:
        raise ConfigError(f"slim needs a zoo-family model ({', '.join(prunable_families())}) so the slimmed widths "
                          f"can be rebuilt; '{model.name}' was loaded from {model.source}")
    if model.compression:
        raise ConfigError(f"slim starts from an uncompressed model and '{model.name}' is already compressed "
                          f"({', '.join(r.get('method', '?') for r in model.compression)}); slim the original")
    student, cfg, cfg_dict = affine_student(model.family, model.config, model.module)
    norms = slimmable_norms(student, channel_layout(model.family, cfg, student))
    if not norms:
        raise ConfigError(f"slim prunes channels through affine norm scales and this {model.family} model has no "
                          "affine norm layer over any channel group; use --method channel-prune --criterion l1 or kd")
    return student, cfg, cfg_dict, norms


@register_method("slim", SlimConfig, "GAN Slimming: distillation + LSGAN + L1 on norm scales + fake-quant, then "
                 "the zero channels are removed and the smaller model fine-tuned", kind="training")
def apply(model: Any, config: SlimConfig) -> Any:
    with torch_threads(config.threads):
        return _slim(model, config)


def _slim(model: Any, config: SlimConfig) -> Any:
    import torch

    from ...models.loading import build_family
    from ..posttrain.channel_layout import channel_layout, copy_kept, pruned_config

    student, family_cfg, student_cfg, norms = _check_teacher(model)
    teacher = frozen(copy.deepcopy(model.module))
    student.train(model.module.training)  # as the teacher was (BatchNorm's mode matters)
    for p in student.parameters():
        p.requires_grad_(True)
    example = model.sample_inputs(1, 0)
    channels = int(teacher(torch.from_numpy(example)).shape[1])
    torch.manual_seed(config.seed)
    critic = patch_critic(channels, config.critic_width)
    draw = _input_sampler(model, config)
    handles = install_fake_quant(student, config.bits) if config.bits else []
    info = {"teacher": {"name": model.name, **params_and_macs(teacher, example)}}
    phase1 = run_training("slim", config, _SlimTask(teacher, student, critic, config, draw, norms), info)
    # physical extraction from the float weights
    remove_fake_quant(student, handles)
    student.eval()
    keep = kept_channels(norms)
    new_cfg = pruned_config(student_cfg, channel_layout(model.family, family_cfg, student), keep,
                            family_cfg.width_fields())
    rng = torch.get_rng_state()
    try:
        small, small_cfg, _ = build_family(model.family, new_cfg)
    finally:
        torch.set_rng_state(rng)
    copy_kept(student, small, channel_layout(model.family, family_cfg, student), keep)
    groups = {name: {"before": len(ls[0].weight), "after": int(len(keep[name]))} for name, ls in norms.items()}
    phase2 = None
    if config.finetune_steps:
        ft = finetune_config(config)
        small_handles = install_fake_quant(small, config.bits) if config.bits else []
        info_small = {**info, "student": {"family": model.family, "config": small_cfg.to_dict(),
                                          **params_and_macs(small, example)}}
        phase2 = run_training("slim-finetune", ft, _SlimTask(teacher, small, critic, ft, draw, None), info_small)
        remove_fake_quant(small, small_handles)
    if config.bits:
        round_weights(small, config.bits)
    frozen(small)
    s = params_and_macs(small, example)
    t = info["teacher"]
    stats = {
        "teacher": t, "student": {"family": model.family, "config": small_cfg.to_dict(), **s},
        "groups": groups, "affine_norm_added": student_cfg != dict(model.config), "compression_ratio_params": round(t["params"] / s["params"], 3),
        "compression_ratio_macs": round(t["macs"] / s["macs"], 3) if s["macs"] else None,
        "weights_on_grid_bits": config.bits or None,
        "training": phase1.summary(), "finetune": phase2.summary() if phase2 else None,
    }
    return derive(model, small, "slim", config, stats, family_config=small_cfg.to_dict())
