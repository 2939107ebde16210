"""``density``: density-structure pruning (after Ganjdanesh et al., AAAI 2024, arXiv 2312.14776)
for the zoo's ``resnet`` and ``unet`` with a MACs budget (``target_macs``: fraction of the
teacher's MACs).

The paper's stated principles, and the concrete choice made here for each (the published text
we could read states the principles, not these details; every choice below is ours):

1. *Neighbourhoods around generated samples on the original generator's manifold.*
   Ours: the training inputs form a fixed pool (``pool`` inputs, seeded, or ``data``); the teacher's
   outputs on the pool are computed once, and every pool sample is a centre whose neighbourhood
   is itself plus its ``neighbours`` (k) nearest pool samples by Euclidean distance between the
   flattened teacher outputs (exact brute force, :func:`nearest_neighbours`). A step draws
   ``batch // (k + 1)`` centres and trains on their whole neighbourhoods.
2. *The pruned generator's distribution matched to the original's neighbourhood by
   neighbourhood with an adversarial objective, akin to kernel density estimation.*
   Ours: a neighbourhood-conditioned PatchGAN critic D(y | c) sees an image concatenated with
   its centre's teacher output; "real" pairs are (teacher(x_j), teacher(x_c)), "fake" pairs
   (student(x_j), teacher(x_c)) for every j in c's neighbourhood; LSGAN losses, each sample
   weighted by a Gaussian kernel exp(-d_cj^2 / 2h^2) of its teacher-output distance to the centre
   (h: median k-NN distance of the pool; the centre has weight 1), normalised per neighbourhood
   (:func:`kernel_weights`). Plus ``beta`` * the same kernel-weighted pixel MSE to the teacher
   (a distillation anchor, as in slim).
3. *Channel masks from two pruning agents, one for the generator and one for the discriminator,
   exchanging feedback.* Ours: each agent (:class:`PruningAgent`) holds one gate logit per
   prunable channel plus a linear map (initialised to zero) from its peer's feedback to those
   logits. While training, gates are sampled: hard 0/1 = (logit + logistic noise > 0), i.e. a
   Gumbel-sigmoid at temperature 1 (on with probability sigmoid(logit)), with the sigmoid's
   gradient (straight-through); the noise comes from the run's seeded generator. Feedback,
   from the previous step: the generator agent reads the critic's kept fraction per layer and
   the critic's loss; the critic agent reads the generator's kept fraction per channel group,
   its adversarial loss and its MACs ratio. The generator's masks act after the affine norm of
   each prunable group (the ResNet's tied residual stream shares one mask over all its norms,
   as in slim), so a masked channel outputs exactly 0; the critic's masks act on its three
   hidden conv outputs.
4. *MACs budget.* Ours: MACs are bilinear in each conv's input and output widths, so the
   generator's MACs with w_g channels kept in group g are
   sum_l base_l * (in_l(w) / in_l) * (out_l(w) / out_l) (:class:`MacsModel`; equals torch's
   FLOP counter on the extracted model, tested). The budget term is
   ``budget_weight`` * log(r / target)^2 with r the *expected* ratio, w_g = sum of
   sigmoid(logits) (smooth, never 0); the critic's agent has the same term with target = the
   generator's current r (the two stay balanced). The final masks rank all channels by their
   gate logit and drop the lowest until the MACs ratio is <= target
   (:func:`project_to_budget`), so the result always meets the budget (within one channel).

Then the masks are folded into the norms (scale and shift zeroed), the masked channels cut out
with the channel-prune surgery (a plain smaller zoo-family model: ResNet keeps the affine
InstanceNorms slim adds), and the subnet fine-tuned ``finetune_steps`` under the same
neighbourhood objective (critic agent still active, generator unmasked).
"""
from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, Optional

from ...errors import ConfigError
from ..base import derive, register_method
from .core import TrainingConfig, finetune_config, frozen, params_and_macs, run_training
from ...util.torch_threads import torch_threads

FAMILIES_SUPPORTED = ("resnet", "unet")


@dataclasses.dataclass
class DensityConfig(TrainingConfig):
    """MACs target, neighbourhood size, loss weights, gate learning rate, fine-tune length."""

    target_macs: float = dataclasses.field(default=0.3, metadata={
        "help": "MACs of the pruned generator as a fraction of the teacher's, in (0, 1)"})
    neighbours: int = dataclasses.field(default=3, metadata={
        "help": "k: nearest neighbours (teacher-output space) of each centre sample"})
    beta: float = dataclasses.field(default=10.0, metadata={"help": "weight of the kernel-weighted pixel MSE"})
    budget_weight: float = dataclasses.field(default=5.0, metadata={
        "help": "weight of the MACs budget term log(r / target)^2"})
    gate_lr: float = dataclasses.field(default=0.05, metadata={"help": "Adam learning rate of the pruning agents"})
    gate_init: float = dataclasses.field(default=3.0, metadata={
        "flag": None, "help": "initial gate logit of every channel (> 0: all kept)"})
    finetune_steps: int = dataclasses.field(default=100, metadata={
        "help": "steps of fine-tuning after the masked channels are removed"})
    critic_width: int = dataclasses.field(default=16, metadata={"help": "width of the conditional PatchGAN critic"})
    pool: int = dataclasses.field(default=512, metadata={
        "flag": None, "help": "inputs drawn once (seeded) when no data is given; their neighbourhoods are fixed"})
    full_res_floor: float = dataclasses.field(default=0.0, metadata={
        "help": "fraction of its channels every group at the output's resolution keeps (the stem, the last up "
                "conv), in the gates while training and in the final masks; 0: no floor"})

    def validate(self) -> None:
        super().validate()
        if not (isinstance(self.target_macs, (int, float)) and 0.0 < self.target_macs < 1.0):
            raise ConfigError(f"density target_macs must be in (0, 1) (a fraction of the teacher's MACs), got "
                              f"{self.target_macs}", field="target_macs")
        if self.neighbours < 1:
            raise ConfigError(f"density neighbours must be >= 1, got {self.neighbours}", field="neighbours")
        if self.batch < self.neighbours + 1:
            raise ConfigError(f"density batch must hold at least one neighbourhood (neighbours + 1 = "
                              f"{self.neighbours + 1}), got {self.batch}", field="batch")
        if self.pool < self.neighbours + 1:
            raise ConfigError(f"density pool must be > neighbours, got {self.pool}", field="pool")
        for key in ("beta", "budget_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"density {key} must be >= 0, got {getattr(self, key)}", field=key)
        if not self.gate_lr > 0:
            raise ConfigError(f"density gate_lr must be > 0, got {self.gate_lr}", field="gate_lr")
        if self.finetune_steps < 0:
            raise ConfigError(f"density finetune_steps must be >= 0, got {self.finetune_steps}",
                              field="finetune_steps")
        if self.critic_width < 1:
            raise ConfigError(f"density critic_width must be >= 1, got {self.critic_width}", field="critic_width")
        if not 0.0 <= self.full_res_floor <= 1.0:
            raise ConfigError(f"density full_res_floor must be in [0, 1], got {self.full_res_floor}",
                              field="full_res_floor")

    def tag(self) -> str:
        return f"density{self.target_macs:g}"


# --- neighbourhoods -------------------------------------------------------------------------

def nearest_neighbours(points: Any, k: int) -> tuple[Any, Any]:
    """(indices [N, k], distances [N, k]): each row's k nearest other rows of ``points`` [N, D]
    by Euclidean distance (exact; ties broken by the lower index)."""
    import torch

    flat = points.reshape(len(points), -1).double()
    sq = (flat * flat).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * flat @ flat.T).clamp(min=0.0)
    d2.fill_diagonal_(float("inf"))
    order = torch.argsort(d2, dim=1, stable=True)[:, :k]
    return order, d2.gather(1, order).sqrt().float()


def kernel_weights(dist: Any, bandwidth: float) -> Any:
    """[C, k + 1] weights of (centre, its neighbours): exp(-d^2 / 2h^2), the centre at d = 0,
    normalised so each neighbourhood's weights sum to k + 1 (a plain mean when all are equal)."""
    import torch

    d = torch.cat([torch.zeros(len(dist), 1), dist], 1)
    w = torch.exp(-(d ** 2) / (2.0 * bandwidth ** 2))
    return w * (d.shape[1] / w.sum(1, keepdim=True))


# --- masks, agents, MACs ------------------------------------------------------------------

def straight_through(logits: Any, generator: Any = None) -> Any:
    """Hard 0/1 gates forward, the sigmoid's gradient backward. With ``generator``: stochastic
    (logistic noise, i.e. a Gumbel-sigmoid at temperature 1: a gate with logit l is on with
    probability sigmoid(l)); without: deterministic (l > 0)."""
    import torch

    if generator is not None:
        u = torch.rand(logits.shape, generator=generator).clamp(1e-6, 1 - 1e-6)
        logits = logits + torch.log(u) - torch.log1p(-u)
    soft = torch.sigmoid(logits)
    return (logits > 0).to(soft.dtype) + soft - soft.detach()


def pruning_agent(sizes: list[int], feedback_dim: int, init: float) -> Any:
    """A :class:`PruningAgent` (built lazily: torch is imported only when a method runs)."""
    import torch
    from torch import nn

    class PruningAgent(nn.Module):
        """Gate logits for ``sizes`` channels = own logits + a linear map of the peer's feedback
        (zero at start); the last feedback is a buffer, so it travels in the checkpoint."""

        def __init__(self) -> None:
            super().__init__()
            self.sizes = list(sizes)
            self.logits = nn.Parameter(torch.full((sum(sizes),), float(init)))
            self.mix = nn.Linear(feedback_dim, sum(sizes))
            nn.init.zeros_(self.mix.weight)
            nn.init.zeros_(self.mix.bias)
            self.register_buffer("feedback", torch.zeros(feedback_dim))

        def forward(self) -> list:
            return list(torch.split(self.logits + self.mix(self.feedback), self.sizes))

    return PruningAgent()


class MacsModel:
    """MACs of a conv network as a function of per-group channel counts (differentiable in them).

    A conv's MACs are bilinear in its input and output widths (groups = 1), so
    MACs(widths) = sum_l base_l * in_l(widths) / in_l * out_l(widths) / out_l, with base_l the
    layer's MACs at full width measured once with the same convention as torch's FLOP counter."""

    def __init__(self, module: Any, layout: Any, example: Any, groups: list[str]) -> None:
        import torch
        from torch import nn

        self.groups = list(groups)
        shapes: dict = {}
        hooks = []
        named = dict(module.named_modules())
        convs = {n: m for n, m in named.items() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))}
        for name, m in convs.items():
            if m.groups != 1:
                raise ConfigError(f"density's MACs model needs ungrouped convs; '{name}' has groups={m.groups}")
            hooks.append(m.register_forward_hook(
                lambda mod, args, out, name=name: shapes.__setitem__(name, (args[0].shape, out.shape))))
        was = module.training
        module.eval()
        try:
            with torch.no_grad():
                module(torch.as_tensor(example[:1]))
        finally:
            module.train(was)
            for h in hooks:
                h.remove()
        self.layers = []  # (base macs, in segments [(group|None, n)], out group|None, out channels)
        self.group_pixels: dict = {}  # group -> largest output size (pixels) of the convs writing it
        for name, m in convs.items():
            (xs, ys) = shapes[name]
            kk = m.kernel_size[0] * m.kernel_size[1]
            spatial = (xs[-2] * xs[-1]) if isinstance(m, nn.ConvTranspose2d) else (ys[-2] * ys[-1])
            base = spatial * kk * m.in_channels * m.out_channels
            ins = layout.layer_in.get(name, [(None, m.in_channels)])
            out = layout.layer_out.get(name)
            if out in self.groups:
                self.group_pixels[out] = max(self.group_pixels.get(out, 0), int(ys[-2] * ys[-1]))
            self.layers.append((base, [(g if g in self.groups else None, n) for g, n in ins],
                                out if out in self.groups else None, m.out_channels))
        self.full = sum(b for b, *_ in self.layers)

    def macs(self, widths: dict) -> Any:
        """MACs with ``widths[group]`` channels kept (a number or a 0-d tensor per group)."""
        total = 0.0
        for base, ins, out, n_out in self.layers:
            w_in = sum((widths[g] if g is not None else n) for g, n in ins)
            w_out = widths[out] if out is not None else n_out
            total = total + base * (w_in / sum(n for _, n in ins)) * (w_out / n_out)
        return total

    def ratio(self, widths: dict) -> Any:
        return self.macs(widths) / self.full

    def full_res_groups(self) -> list[str]:
        """The groups written at the largest resolution any group is written at (ResNet: the stem
        and the last up conv; they carry the most MACs per channel and the finest detail)."""
        top = max(self.group_pixels.values(), default=0)
        return [g for g in self.groups if self.group_pixels.get(g) == top]


def floors(model: MacsModel, sizes: dict, fraction: float) -> dict:
    """group -> channels it keeps at least: ceil(fraction * width) for the full-resolution
    groups, 1 for the others (a group always keeps one channel)."""
    full = set(model.full_res_groups()) if fraction > 0 else set()
    return {g: max(1, math.ceil(fraction * n)) if g in full else 1 for g, n in sizes.items()}


def floor_gates(gates: Any, logits: Any, keep: int) -> Any:
    """``gates`` with the ``keep`` highest-logit channels forced on (value 1, no gradient change
    for the others): the gates can never cut a floored group below its floor."""
    import torch

    if keep <= 1:
        return gates
    on = torch.zeros_like(gates)
    on[torch.topk(logits.detach(), keep).indices] = 1.0
    return torch.maximum(gates, on)


def project_to_budget(logits: dict, model: MacsModel, target: float, minimum: Optional[dict] = None) -> dict:
    """group -> kept channel indices: starting from every channel, drop the channel with the lowest
    gate logit (among groups keeping more than their ``minimum``, default 1) until the MACs ratio
    is <= ``target``; the largest logit-ranked subnet within the budget (ties: lower group order,
    then index)."""
    import torch

    minimum = minimum or {}

    keep = {g: set(range(len(lg))) for g, lg in logits.items()}
    order = sorted((float(lg[c]), i, c) for i, (g, lg) in enumerate(logits.items()) for c in range(len(lg)))
    names = list(logits)
    for _, i, c in order:
        if model.ratio({g: len(v) for g, v in keep.items()}) <= target:
            break
        if len(keep[names[i]]) > minimum.get(names[i], 1):
            keep[names[i]].discard(c)
    return {g: torch.tensor(sorted(v), dtype=torch.long) for g, v in keep.items()}


# --- the conditional, masked critic -------------------------------------------------------

def density_critic(channels: int, width: int) -> Any:
    """PatchGAN critic D(y | centre) on [y, centre] (2 * channels in), three stride-2 convs with
    maskable outputs, then one logit per patch."""
    import torch
    from torch import nn

    class DensityCritic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = width
            self.convs = nn.ModuleList([nn.Conv2d(2 * channels, w, 4, 2, 1), nn.Conv2d(w, 2 * w, 4, 2, 1),
                                        nn.Conv2d(2 * w, 4 * w, 4, 2, 1)])
            self.head = nn.Conv2d(4 * w, 1, 3, 1, 1)
            self.act = nn.LeakyReLU(0.2)

        def forward(self, y, centre, masks=None):
            h = torch.cat([y, centre], 1)
            for i, conv in enumerate(self.convs):
                h = conv(h)
                if masks is not None:
                    h = h * masks[i].view(1, -1, 1, 1)
                h = self.act(h)
            return self.head(h)

        def macs_ratio(self, kept: list) -> Any:
            """MACs with ``kept[i]`` channels in hidden layer i over the full critic's. Per input
            pixel / 4: conv i (4x4, output 4^-i of conv 0's pixels) 16 c_i c_(i+1) / 4^i, the 3x3
            head 9 c_3 / 16."""
            def total(c):
                return sum(16 * c[i] * c[i + 1] / 4 ** i for i in range(3)) + 9 * c[3] / 16

            return total([2 * channels, *kept]) / total([2 * channels, *[m.out_channels for m in self.convs]])

    return DensityCritic()


def gate_norms(norms: dict, masks: dict) -> list:
    """Forward hooks multiplying each prunable group's norm outputs by its current mask
    (``masks`` is read at call time, so the task refreshes it every step); returns the handles."""
    handles = []
    for g, layers in norms.items():
        for n in layers:
            handles.append(n.register_forward_hook(
                lambda _m, _a, out, g=g: out * masks[g].view(1, -1, 1, 1) if g in masks else out))
    return handles


class _DensityTask:
    def __init__(self, student: Any, critic: Any, config: DensityConfig, pool: Any, targets: Any, table: Any,
                 dist: Any, bandwidth: float, agent_g: Any, agent_d: Any, macs: Optional[MacsModel],
                 masks: Optional[dict], fixed_ratio: float = 1.0, order: Optional[list] = None,
                 minimum: Optional[dict] = None) -> None:
        import torch

        self.student, self.critic, self.config = student, critic, config
        self.pool, self.targets, self.table, self.dist, self.bandwidth = pool, targets, table, dist, bandwidth
        self.agent_g, self.agent_d, self.macs, self.masks, self.fixed_ratio = agent_g, agent_d, macs, masks, \
            fixed_ratio
        self.masks_order = list(order or [])
        self.minimum = dict(minimum or {})
        betas = (0.5, 0.999)
        self.modules = {"student": student, "critic": critic, "agent_d": agent_d}
        self.optimizers = {"student": torch.optim.Adam(student.parameters(), lr=config.lr, betas=betas),
                           "critic": torch.optim.Adam(critic.parameters(), lr=config.lr, betas=betas),
                           "agent_d": torch.optim.Adam(agent_d.parameters(), lr=config.gate_lr, betas=betas)}
        if agent_g is not None:
            self.modules["agent_g"] = agent_g
            self.optimizers["agent_g"] = torch.optim.Adam(agent_g.parameters(), lr=config.gate_lr, betas=betas)

    def step(self, generator: Any) -> dict[str, float]:
        import torch

        cfg = self.config
        k = cfg.neighbours
        n_centres = cfg.batch // (k + 1)
        centres = torch.randint(0, len(self.pool), (n_centres,), generator=generator)
        idx = torch.cat([centres[:, None], self.table[centres]], 1)  # [C, k + 1]
        w = kernel_weights(self.dist[centres], self.bandwidth).reshape(-1, 1, 1, 1)
        x, target = self.pool[idx.flatten()], self.targets[idx.flatten()]
        cond = self.targets[centres].repeat_interleave(k + 1, 0)
        # generator masks (straight-through) and their MACs ratio
        if self.agent_g is not None:
            logits_g = self.agent_g()
            st = {g: floor_gates(straight_through(lg, generator), lg, self.minimum.get(g, 1))
                  for g, lg in zip(self.masks_order, logits_g)}
            self.masks.clear()
            self.masks.update(st)
            r_g = self.macs.ratio({g: torch.sigmoid(lg).sum().clamp(min=float(self.minimum.get(g, 1)))
                                   for g, lg in zip(self.masks_order, logits_g)})
            r_g = r_g.clamp(min=1e-4)
        else:
            st, r_g = {}, torch.tensor(self.fixed_ratio)
        fake = self.student(x)
        # critic step (its own masks, its own budget tied to the generator's ratio)
        logits_d = self.agent_d()
        masks_d = [straight_through(lg, generator) for lg in logits_d]
        d_real = self.critic(target, cond, masks_d)
        d_fake = self.critic(fake.detach(), cond, masks_d)
        loss_d = (w * (0.5 * (d_real - 1) ** 2 + 0.5 * d_fake ** 2)).mean()
        r_d = self.critic.macs_ratio([torch.sigmoid(lg).sum() for lg in logits_d]).clamp(min=1e-4)
        budget_d = torch.log(r_d / r_g.detach().clamp(min=1e-6)) ** 2
        for name in ("critic", "agent_d"):
            self.optimizers[name].zero_grad(set_to_none=True)
        (loss_d + cfg.budget_weight * budget_d).backward()
        for name in ("critic", "agent_d"):
            self.optimizers[name].step()
        # generator step
        hard_d = [m.detach() for m in masks_d]
        mse = (w * (fake - target) ** 2).mean()
        adv = (w * 0.5 * (self.critic(fake, cond, hard_d) - 1) ** 2).mean()
        budget_g = torch.log(r_g / cfg.target_macs) ** 2 if self.agent_g is not None else torch.tensor(0.0)
        loss = cfg.beta * mse + adv + cfg.budget_weight * budget_g
        names = ["student"] + (["agent_g"] if self.agent_g is not None else [])
        for name in names:
            self.optimizers[name].zero_grad(set_to_none=True)
        loss.backward()
        for name in names:
            self.optimizers[name].step()
        # feedback for the next step: each agent reads its peer
        with torch.no_grad():
            kept_d = [float((m > 0.5).float().mean()) for m in hard_d]
            if self.agent_g is not None:
                self.agent_g.feedback.copy_(torch.tensor([*kept_d, float(loss_d)]))
                kept_g = [float((m.detach() > 0.5).float().mean()) for m in st.values()]
            else:
                kept_g = [1.0] * (len(self.agent_d.feedback) - 2)
            self.agent_d.feedback.copy_(torch.tensor([*kept_g, float(adv), float(r_g)]))
        return {"mse": float(mse.detach()), "adv": float(adv.detach()), "critic": float(loss_d.detach()),
                "macs_ratio": float(r_g.detach()), "critic_macs_ratio": float(r_d.detach()),
                "loss": float(loss.detach())}


def _pool(model: Any, config: DensityConfig) -> Any:
    import numpy as np
    import torch

    if config.data is not None:
        from .data import load_images

        return torch.from_numpy(load_images(config.data, tuple(model.input_spec.shape)))
    return torch.from_numpy(np.ascontiguousarray(model.sample_inputs(config.pool, config.seed)))


def _check_teacher(model: Any) -> None:
    if model.family not in FAMILIES_SUPPORTED or model.config is None:
        raise ConfigError(f"density prunes the zoo's {' and '.join(FAMILIES_SUPPORTED)} image-to-image families; "
                          f"'{model.name}' is {model.family or 'a user model'} (for dcgan use slim or kd)")
    if model.input_spec.kind == "latent":
        raise ConfigError(f"density needs an image-to-image model; '{model.name}' takes latents")
    if model.compression:
        raise ConfigError(f"density starts from an uncompressed model and '{model.name}' is already compressed "
                          f"({', '.join(r.get('method', '?') for r in model.compression)}); prune the original")


@register_method("density", DensityConfig, "density-structure pruning: neighbourhood-conditioned adversarial "
                 "matching + two pruning agents (generator, critic) + a MACs budget, then extraction and fine-tune",
                 kind="training")
def apply(model: Any, config: DensityConfig) -> Any:
    with torch_threads(config.threads):
        return _density(model, config)


def _density(model: Any, config: DensityConfig) -> Any:
    import torch

    from ...models.loading import build_family
    from ..posttrain.channel_layout import channel_layout, copy_kept, pruned_config
    from .slim import affine_student, slimmable_norms

    _check_teacher(model)
    student, family_cfg, student_cfg = affine_student(model.family, model.config, model.module)
    layout = channel_layout(model.family, family_cfg, student)
    norms = slimmable_norms(student, layout)
    teacher = frozen(copy.deepcopy(model.module))
    example = model.sample_inputs(1, 0)
    macs = MacsModel(student, layout, example, list(norms))
    minimum = floors(macs, {g: len(ls[0].weight) for g, ls in norms.items()}, config.full_res_floor)
    floor = macs.ratio(minimum)
    if config.target_macs < floor:
        raise ConfigError(f"density target_macs {config.target_macs:g} is below the smallest ratio this model can "
                          f"reach by channel pruning ({floor:.4f}: one channel per prunable group"
                          f"{', the full-resolution floor in the others' if config.full_res_floor else ''}); raise "
                          "--target-macs" + (" or lower --full-res-floor" if config.full_res_floor else ""),
                          field="target_macs")
    pool = _pool(model, config)
    if len(pool) < config.neighbours + 1:
        raise ConfigError(f"density needs more than neighbours={config.neighbours} training images, --data has "
                          f"{len(pool)}", field="data")
    with torch.no_grad():
        targets = torch.cat([teacher(pool[i:i + 32]) for i in range(0, len(pool), 32)])
    table, dist = nearest_neighbours(targets, config.neighbours)
    bandwidth = float(dist.median().clamp(min=1e-6))
    student.train(model.module.training)
    for p in student.parameters():
        p.requires_grad_(True)
    torch.manual_seed(config.seed)
    critic = density_critic(int(targets.shape[1]), config.critic_width)
    sizes_g = [len(norms[g][0].weight) for g in norms]
    sizes_d = [m.out_channels for m in critic.convs]
    agent_g = pruning_agent(sizes_g, len(sizes_d) + 1, config.gate_init)
    agent_d = pruning_agent(sizes_d, len(sizes_g) + 2, config.gate_init)
    masks: dict = {}
    handles = gate_norms(norms, masks)
    task = _DensityTask(student, critic, config, pool, targets, table, dist, bandwidth, agent_g, agent_d, macs, masks,
                        order=list(norms), minimum=minimum)
    info = {"teacher": {"name": model.name, **params_and_macs(teacher, example)}}
    phase1 = run_training("density", config, task, info)
    for h in handles:
        h.remove()
    with torch.no_grad():
        logits = {g: lg.detach() for g, lg in zip(norms, agent_g())}
    expected_ratio = float(macs.ratio({g: torch.sigmoid(lg).sum() for g, lg in logits.items()}))
    keep = project_to_budget(logits, macs, config.target_macs, minimum)
    kept_above_zero = sum(int((logits[g][keep[g]] > 0).sum()) for g in keep)
    fold_masks(norms, keep)
    student.eval()
    new_cfg = pruned_config(student_cfg, layout, keep, family_cfg.width_fields())
    rng = torch.get_rng_state()
    try:
        small, small_cfg, _ = build_family(model.family, new_cfg)
    finally:
        torch.set_rng_state(rng)
    copy_kept(student, small, layout, keep)
    groups = {g: {"before": len(ls[0].weight), "after": int(len(keep[g]))} for g, ls in norms.items()}
    phase2 = None
    r_small = float(macs.ratio({g: len(v) for g, v in keep.items()}))
    if config.finetune_steps:
        ft = finetune_config(config)
        info_small = {**info, "student": {"family": model.family, "config": small_cfg.to_dict(),
                                          **params_and_macs(small, example)}}
        ft_task = _DensityTask(small, critic, ft, pool, targets, table, dist, bandwidth, None, agent_d, None, None,
                               fixed_ratio=r_small)
        phase2 = run_training("density-finetune", ft, ft_task, info_small)
    frozen(small)
    s = params_and_macs(small, example)
    t = info["teacher"]
    stats = {
        "teacher": t, "student": {"family": model.family, "config": small_cfg.to_dict(), **s},
        "groups": groups, "affine_norm_added": student_cfg != dict(model.config),
        "target_macs": config.target_macs, "full_res_groups": macs.full_res_groups(), "macs_ratio": round(s["macs"] / t["macs"], 4),
        "macs_ratio_expected_by_gates": round(expected_ratio, 4),
        "kept_channels_with_positive_logit": kept_above_zero,
        "neighbourhoods": {"pool": len(pool), "k": config.neighbours, "kernel_bandwidth": round(bandwidth, 4)},
        "compression_ratio_params": round(t["params"] / s["params"], 3),
        "compression_ratio_macs": round(t["macs"] / s["macs"], 3) if s["macs"] else None,
        "training": phase1.summary(), "finetune": phase2.summary() if phase2 else None,
    }
    return derive(model, small, "density", config, stats, family_config=small_cfg.to_dict())


def fold_masks(norms: dict, keep: dict) -> None:
    """Zero the norm scale and shift of every channel not kept: the model then computes what the
    hard-masked model computes, and cutting those channels out changes nothing."""
    import torch

    with torch.no_grad():
        for g, layers in norms.items():
            alive = torch.zeros(len(layers[0].weight), dtype=torch.bool)
            alive[keep[g]] = True
            for n in layers:
                n.weight.mul_(alive.to(n.weight.dtype))
                n.bias.mul_(alive.to(n.bias.dtype))


def macs_ratio_floor(model: Any) -> float:
    """The smallest MACs ratio channel pruning can reach on ``model`` (one channel per group)."""
    from ..posttrain.channel_layout import channel_layout
    from .slim import affine_student, slimmable_norms

    student, cfg, _ = affine_student(model.family, model.config, model.module)
    layout = channel_layout(model.family, cfg, student)
    norms = slimmable_norms(student, layout)
    return float(MacsModel(student, layout, model.sample_inputs(1, 0), list(norms)).ratio({g: 1 for g in norms}))


__all__ = ["DensityConfig", "MacsModel", "fold_masks", "kernel_weights", "macs_ratio_floor", "nearest_neighbours",
           "floor_gates", "floors", "project_to_budget", "straight_through"]
