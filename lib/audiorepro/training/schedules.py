"""Optimisers and per-iteration learning-rate schedules built from a plain config dict.

The LR at optimiser step ``i`` (0-based: the i-th call of ``optimizer.step()``) is
``lr_i = base_lr * factor(i)`` with ``factor(i) = warmup(i) * decay(i)``:

* ``warmup(i) = min(1, (i + 1) / W)`` for W = ``warmup_iters`` (+ ``warmup_epochs`` x iterations
  per epoch) > 0, else 1. The first step uses base_lr / W, step W - 1 uses base_lr.
* epoch index ``e = i // iters_per_epoch`` (0-based).
* ``constant``: decay = 1.
* ``step``: decay = gamma^h with h = 0 if e < E else (e - E) // N + 1 (E = ``step_start_epoch``,
  N = ``step_every_epochs``, gamma = ``step_gamma``). This is PSLA / AST's
  ``MultiStepLR(milestones=range(E, inf, N))`` stepped after every epoch: epoch E is the first
  decayed epoch. ATGNN: Adam 5e-4, W = 1000, N = 5, gamma = 0.5.
* ``cosine``: from base_lr at the end of warm-up down to ``min_lr`` at the last step T - 1:
  lr = min_lr + (base_lr - min_lr) (1 + cos(pi p)) / 2, p = (i - W) / max(1, T - 1 - W) clipped
  to [0, 1]; during warm-up lr = base_lr * warmup(i). PaSST retrieval: 2e-5 -> 1e-7, 1 warm-up
  epoch.
* ``exponential``: decay = exp_gamma^e (one factor per epoch, counted from epoch 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from .config import TrainConfig

__all__ = ["LRFactor", "build_optimizer", "build_scheduler", "build_optimizer_and_scheduler",
           "lr_at"]


@dataclass
class LRFactor:
    """Picklable multiplicative LR factor of the optimiser-step index (see module docstring)."""

    schedule: str
    iters_per_epoch: int
    total_iters: int
    warmup_iters: int = 0
    step_start_epoch: int = 0
    step_every_epochs: int = 5
    step_gamma: float = 0.5
    min_ratio: float = 0.0  # cosine floor min_lr / base_lr
    exp_gamma: float = 0.95

    def __post_init__(self) -> None:
        if self.iters_per_epoch < 1:
            raise ValueError(f"iters_per_epoch must be >= 1, got {self.iters_per_epoch}")
        if self.schedule == "cosine" and self.total_iters < 1:
            raise ValueError("the cosine schedule needs total_iters >= 1 (epochs or max_iters)")

    def warmup(self, i: int) -> float:
        if self.warmup_iters <= 0:
            return 1.0
        return min(1.0, (i + 1) / self.warmup_iters)

    def __call__(self, i: int) -> float:
        e = i // self.iters_per_epoch
        w = self.warmup(i)
        if self.schedule == "constant":
            return w
        if self.schedule == "step":
            h = 0 if e < self.step_start_epoch else (e - self.step_start_epoch) // self.step_every_epochs + 1
            return w * self.step_gamma ** h
        if self.schedule == "exponential":
            return w * self.exp_gamma ** e
        if self.schedule == "cosine":
            if i < self.warmup_iters:
                return w
            span = max(1, self.total_iters - 1 - self.warmup_iters)
            p = min(1.0, max(0.0, (i - self.warmup_iters) / span))
            return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * p))
        raise ValueError(f"unknown schedule {self.schedule!r}")


def _cfg(config: Mapping[str, Any] | TrainConfig) -> TrainConfig:
    return config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)


def build_optimizer(params: Iterable[torch.nn.Parameter] | Iterable[dict] | torch.nn.Module,
                    config: Mapping[str, Any] | TrainConfig) -> Optimizer:
    """``adam`` | ``adamw`` | ``sgd`` with ``lr``, ``weight_decay`` (+ betas/eps/momentum).

    Args:
        params: a module (its trainable parameters), parameters, or torch param-group dicts.
        config: a :class:`TrainConfig` or a dict of its keys.
    """
    cfg = _cfg(config)
    if isinstance(params, torch.nn.Module):
        params = [p for p in params.parameters() if p.requires_grad]
    params = list(params)
    if not params:
        raise ValueError("build_optimizer: no trainable parameters (all frozen?)")
    name = cfg.optimizer.lower()
    if name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                                weight_decay=cfg.weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                                 weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           weight_decay=cfg.weight_decay)


def total_iterations(config: Mapping[str, Any] | TrainConfig, iters_per_epoch: int) -> int:
    """Optimiser steps of the whole run: min(epochs * iters_per_epoch, max_iters)."""
    cfg = _cfg(config)
    candidates = []
    if cfg.epochs is not None:
        candidates.append(int(cfg.epochs) * iters_per_epoch)
    if cfg.max_iters is not None:
        candidates.append(int(cfg.max_iters))
    return min(candidates)


def make_lr_factor(config: Mapping[str, Any] | TrainConfig, iters_per_epoch: int) -> LRFactor:
    """The :class:`LRFactor` of a config for a loader of ``iters_per_epoch`` batches."""
    cfg = _cfg(config)
    return LRFactor(
        schedule=cfg.schedule.lower(), iters_per_epoch=int(iters_per_epoch),
        total_iters=total_iterations(cfg, iters_per_epoch),
        warmup_iters=int(cfg.warmup_iters + round(cfg.warmup_epochs * iters_per_epoch)),
        step_start_epoch=cfg.step_start_epoch, step_every_epochs=cfg.step_every_epochs,
        step_gamma=cfg.step_gamma, min_ratio=cfg.min_lr / cfg.lr, exp_gamma=cfg.exp_gamma)


def build_scheduler(optimizer: Optimizer, config: Mapping[str, Any] | TrainConfig,
                    iters_per_epoch: int) -> LambdaLR:
    """A ``LambdaLR`` to be stepped after every optimiser step (factor from :class:`LRFactor`).

    Each param group keeps its own base LR (``initial_lr``); the factor multiplies all of them.
    """
    return LambdaLR(optimizer, make_lr_factor(config, iters_per_epoch))


def build_optimizer_and_scheduler(params: Any, config: Mapping[str, Any] | TrainConfig,
                                  iters_per_epoch: int) -> tuple[Optimizer, LambdaLR]:
    """:func:`build_optimizer` then :func:`build_scheduler`."""
    opt = build_optimizer(params, config)
    return opt, build_scheduler(opt, config, iters_per_epoch)


def lr_at(config: Mapping[str, Any] | TrainConfig, iteration: int, iters_per_epoch: int) -> float:
    """The LR used by optimiser step ``iteration`` (0-based) - handy for plots and tests."""
    cfg = _cfg(config)
    return cfg.lr * make_lr_factor(cfg, iters_per_epoch)(iteration)
