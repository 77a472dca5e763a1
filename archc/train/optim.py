"""Optimisation: optimizers, learning-rate schedules, penalties, gradient clipping and noise.

Optimizers are torch's own (``torch.optim``), chosen by name from a table. Schedules
act per epoch, as the course teaches them (γ_t for epoch t, seeds/003):

- ``constant``;
- ``step``: γ_t = γ_0 · gamma^⌊t / step_size⌋ (gamma default 0.1); ``multistep`` with
  ``milestones``;
- ``exponential``: γ_t = γ_0 · gamma^t, or γ_0 · exp(-decay · t) when ``decay`` is given;
- ``time``: γ_t = γ_0 / (1 + decay · t) (time-based, "search then converge");
- ``cosine``: γ_t = min_lr + (γ_0 - min_lr)(1 + cos(π t / T)) / 2 over the T epochs after warm-up;
- ``plateau``: γ multiplied by ``factor`` when the monitored value has not improved for
  ``patience`` epochs (never below ``min_lr``).

``warmup_epochs: W`` composes with any of them: epoch e < W trains at γ_0 · (e + 1) / (W + 1)
(linear ramp), and the schedule's t counts from the end of the warm-up (t = e - W).
"""

from __future__ import annotations

import math

import torch

from archc.train.errors import TrainError

DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-2}


def _sgd(params, c, lr):
    if c.nesterov and c.momentum <= 0:
        raise TrainError("train.optimizer: nesterov needs momentum > 0", "e.g. momentum: 0.9")
    return torch.optim.SGD(params, lr=lr, momentum=c.momentum, nesterov=c.nesterov, weight_decay=c.weight_decay or 0.0)


def _adam(cls):
    def make(params, c, lr):
        extra = {k: v for k, v in (("betas", tuple(c.betas) if c.betas else None), ("eps", c.eps)) if v is not None}
        if c.weight_decay is not None:
            extra["weight_decay"] = c.weight_decay  # else torch's default: Adam 0, AdamW 0.01
        return cls(params, lr=lr, **extra)

    return make


def _rmsprop(params, c, lr):
    extra = {k: v for k, v in (("alpha", c.alpha), ("eps", c.eps)) if v is not None}
    return torch.optim.RMSprop(params, lr=lr, momentum=c.momentum, weight_decay=c.weight_decay or 0.0, **extra)


OPTIMIZERS = {"sgd": _sgd, "adam": _adam(torch.optim.Adam), "adamw": _adam(torch.optim.AdamW),
              "rmsprop": _rmsprop}


def make_optimizer(params, cfg) -> torch.optim.Optimizer:
    """The optimizer of OptimizerConfig ``cfg`` over ``params`` (trainable ones only)."""
    if cfg.name not in OPTIMIZERS:
        raise TrainError(f"train.optimizer {cfg.name!r} is not available", "optimizers: " + ", ".join(OPTIMIZERS))
    params = [p for p in params if p.requires_grad]
    if not params:
        raise TrainError("nothing to train: every parameter is frozen", "freeze fewer layers")
    return OPTIMIZERS[cfg.name](params, cfg, cfg.lr if cfg.lr is not None else DEFAULT_LR[cfg.name])


# --------------------------------------------------------------------------- schedules


def _factor(cfg, t: int) -> float:
    """The schedule's multiplier of the base lr at t epochs after the warm-up."""
    name = cfg.name
    if name in ("constant", "plateau"):
        return 1.0
    if name == "step":
        return (cfg.gamma if cfg.gamma is not None else 0.1) ** (t // cfg.step_size)
    if name == "multistep":
        return (cfg.gamma if cfg.gamma is not None else 0.1) ** sum(t >= m for m in cfg.milestones or [])
    if name == "exponential":
        return math.exp(-cfg.decay * t) if cfg.decay is not None else (cfg.gamma if cfg.gamma is not None else 0.95) ** t
    if name == "time":
        return 1.0 / (1.0 + (cfg.decay if cfg.decay is not None else 0.01) * t)
    raise AssertionError(name)


SCHEDULES = ("constant", "step", "multistep", "exponential", "time", "cosine", "plateau")


class Schedule:
    """Sets each param group's lr at the start of every epoch; ``observe`` feeds plateau.

    State (for checkpoints): the plateau multiplier, its best value and bad-epoch count."""

    def __init__(self, optimizer, cfg, epochs: int, monitor_mode: str = "min"):
        if cfg.name not in SCHEDULES:
            raise TrainError(f"train.schedule {cfg.name!r} is not available", "schedules: " + ", ".join(SCHEDULES))
        if cfg.name == "multistep" and not cfg.milestones:
            raise TrainError("train.schedule: multistep needs milestones", "e.g. milestones: [30, 60]")
        self.opt, self.cfg, self.epochs, self.mode = optimizer, cfg, epochs, monitor_mode
        self.base = [g["lr"] for g in optimizer.param_groups]
        self.scale, self.best, self.bad = 1.0, None, 0

    def lr_for(self, base: float, epoch: int) -> float:
        """The lr of a param group whose base lr is ``base`` in ``epoch`` (0-based)."""
        c, w = self.cfg, self.cfg.warmup_epochs
        if epoch < w:
            return base * (epoch + 1) / (w + 1)
        t = epoch - w
        if c.name == "cosine":
            span = max(1, self.epochs - w)
            lo = min(c.min_lr, base)
            return lo + (base - lo) * (1 + math.cos(math.pi * min(t, span) / span)) / 2
        if c.name == "plateau":
            return max(base * self.scale, min(c.min_lr, base))
        return base * _factor(c, t)

    def start_epoch(self, epoch: int) -> float:
        for g, base in zip(self.opt.param_groups, self.base):
            g["lr"] = self.lr_for(base, epoch)
        return self.opt.param_groups[0]["lr"]

    def observe(self, value: float | None) -> None:
        """End of an epoch: the monitored value (reduce-on-plateau; others ignore it)."""
        if self.cfg.name != "plateau" or value is None:
            return
        better = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
        if better:
            self.best, self.bad = value, 0
        else:
            self.bad += 1
            if self.bad > self.cfg.patience:
                self.scale *= self.cfg.factor
                self.bad = 0

    def state_dict(self) -> dict:
        return {"scale": self.scale, "best": self.best, "bad": self.bad, "base": list(self.base)}

    def load_state_dict(self, state: dict) -> None:
        self.scale, self.best, self.bad = state["scale"], state["best"], state["bad"]
        self.base = list(state["base"])


# --------------------------------------------------------------------------- regularisers


def is_weight(name: str, p: torch.Tensor) -> bool:
    """Penalised tensors: weights of linear/conv layers (2+ dims), not biases or norms."""
    return p.dim() >= 2 and not name.endswith("bias")


def penalty(model, cfg):
    """l1 · Σ|w| + l2 · Σw² over the weights (Penalties ``cfg``), or None."""
    if not (cfg.l1 or cfg.l2):
        return None
    total = 0.0
    for name, p in model.named_parameters():
        if p.requires_grad and is_weight(name, p):
            if cfg.l1:
                total = total + cfg.l1 * p.abs().sum()
            if cfg.l2:
                total = total + cfg.l2 * p.pow(2).sum()
    return total


def add_grad_noise(params, cfg, step: int, g: torch.Generator) -> None:
    """Gradient noise N(0, σ_t²), σ_t = std / (1 + step)^decay (Neelakantan et al. 2015)."""
    sigma = cfg.std / (1 + step) ** cfg.decay
    for p in params:
        if p.grad is not None:
            noise = torch.randn(p.grad.shape, generator=g, dtype=p.grad.dtype)
            p.grad.add_(noise.to(p.grad.device), alpha=sigma)
