"""The training configuration: one flat dataclass, built from a plain dict (notebook parameters)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

__all__ = ["TrainConfig"]

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "step", "cosine", "exponential")
AMP_MODES = (False, True, "auto", "bf16", "fp16", "off")



def reject_unknown_fields(cls: type, keys: Iterable[str], what: str,
                          error: type[Exception] = KeyError) -> None:
    """Raise ``error`` naming every key of ``keys`` that is not a field of dataclass ``cls``
    (typos in configuration dicts and parameter files are caught, not ignored)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(keys) - names)
    if unknown:
        raise error(f"{what}: unknown key(s) {unknown}; known: {sorted(names)}")

@dataclass
class TrainConfig:
    """Everything :func:`audiorepro.training.fit` needs besides model, data and loss.

    Length:
        epochs: number of passes over the training loader (``None``: until ``max_iters``).
        max_iters: stop after this many optimiser steps (``None``: only ``epochs``).
    Data (used only when ``fit`` receives a Dataset instead of a DataLoader):
        batch_size, num_workers, shuffle, drop_last.
    Optimiser (see :mod:`.schedules`):
        optimizer (``adam`` | ``adamw`` | ``sgd``), lr, weight_decay, betas, eps, momentum,
        nesterov.
    LR schedule (stepped every iteration):
        schedule (``constant`` | ``step`` | ``cosine`` | ``exponential``), warmup_iters,
        warmup_epochs (added to warmup_iters after conversion with the loader length),
        step_start_epoch, step_every_epochs, step_gamma (``step``), min_lr (``cosine`` floor),
        exp_gamma (``exponential``: factor per epoch).
    Evaluation / early stopping:
        eval_every_iters (``None``: evaluate at the end of every ``eval_every_epochs``-th epoch),
        monitor (name of a validation metric, e.g. ``mAP``, ``accuracy``, ``loss``),
        mode (``max`` | ``min``), patience (evaluations without improvement; ``None``: off),
        min_delta, restore_best (load the best weights at the end).
    Numerics: grad_clip (max global L2 norm, ``None``: off), amp (``False`` | ``True``/"auto"
        = fp16 on CUDA, bf16 on CPU | ``bf16`` | ``fp16``).
    Reproducibility: seed, deterministic.
    Distributed: find_unused_parameters (passed to DDP).
    Display: progress (tqdm bars).
    Storage: keep_checkpoint (``False``, the default: a finished run deletes its resume checkpoint,
        weights and optimiser state, ~3x the weights with Adam, keeping ``result.pt`` and
        ``done.json``, all that reloading it reads; ``True`` keeps it).
    """

    epochs: int | None = 1
    max_iters: int | None = None
    batch_size: int = 32
    num_workers: int = 0
    shuffle: bool = True
    drop_last: bool = False
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "constant"
    warmup_iters: int = 0
    warmup_epochs: float = 0.0
    step_start_epoch: int = 0
    step_every_epochs: int = 5
    step_gamma: float = 0.5
    min_lr: float = 0.0
    exp_gamma: float = 0.95
    eval_every_iters: int | None = None
    eval_every_epochs: int = 1
    monitor: str = "loss"
    mode: str = "min"
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool = True
    grad_clip: float | None = None
    amp: Any = False
    seed: int = 0
    deterministic: bool = False
    find_unused_parameters: bool = False
    progress: bool = True
    keep_checkpoint: bool = False

    # keys that do not change the result (ignored when comparing a stored run's config)
    COSMETIC = ("progress", "num_workers", "keep_checkpoint")

    def __post_init__(self) -> None:
        self._check_types()
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        self.validate()

    def _check_types(self) -> None:
        """Each field has its declared type: an ``int`` field refuses 1.5, "2" and True (a float
        with no fractional part, e.g. 2.0 from a YAML file, becomes 2); a ``float`` field accepts
        ints; a ``bool`` field only booleans. The error names the field and the value."""
        for f in dataclasses.fields(self):
            kinds = {t.strip() for t in str(f.type).split("|")}
            value = getattr(self, f.name)
            if "Any" in kinds or (value is None and "None" in kinds):
                continue
            where = f"TrainConfig.{f.name} = {value!r}"
            if "int" in kinds:
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                    setattr(self, f.name, value)
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                    raise ValueError(f"{where}: must be a whole number"
                                     + (" or None" if "None" in kinds else ""))
            elif "float" in kinds:
                if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                    raise ValueError(f"{where}: must be a number" + (" or None" if "None" in kinds else ""))
            elif "bool" in kinds:
                if not isinstance(value, (bool, np.bool_)):
                    raise ValueError(f"{where}: must be true or false")
            elif "str" in kinds:
                if not isinstance(value, str):
                    raise ValueError(f"{where}: must be a string")

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad parameter."""
        def bad(name: str, why: str) -> None:
            raise ValueError(f"TrainConfig.{name} = {getattr(self, name)!r}: {why}")

        if self.epochs is None and self.max_iters is None:
            bad("epochs", "set epochs or max_iters (both are None)")
        if self.epochs is not None and int(self.epochs) < 1:
            bad("epochs", "must be >= 1")
        if self.max_iters is not None and int(self.max_iters) < 1:
            bad("max_iters", "must be >= 1")
        if self.batch_size < 1:
            bad("batch_size", "must be >= 1")
        if self.optimizer.lower() not in OPTIMIZERS:
            bad("optimizer", f"must be one of {OPTIMIZERS}")
        if self.schedule.lower() not in SCHEDULES:
            bad("schedule", f"must be one of {SCHEDULES}")
        if not self.lr > 0:
            bad("lr", "must be > 0")
        if self.weight_decay < 0:
            bad("weight_decay", "must be >= 0")
        if self.warmup_iters < 0:
            bad("warmup_iters", "must be >= 0")
        if self.warmup_epochs < 0:
            bad("warmup_epochs", "must be >= 0")
        if self.step_every_epochs < 1:
            bad("step_every_epochs", "must be >= 1")
        if not 0 < self.step_gamma <= 1:
            bad("step_gamma", "must lie in (0, 1]")
        if not 0 < self.exp_gamma <= 1:
            bad("exp_gamma", "must lie in (0, 1]")
        if self.min_lr < 0 or self.min_lr > self.lr:
            bad("min_lr", f"must lie in [0, lr={self.lr}]")
        if self.mode not in ("max", "min"):
            bad("mode", "must be 'max' or 'min'")
        if self.patience is not None and self.patience < 1:
            bad("patience", "must be >= 1 or None")
        if self.eval_every_iters is not None and self.eval_every_iters < 1:
            bad("eval_every_iters", "must be >= 1 or None")
        if self.eval_every_epochs < 1:
            bad("eval_every_epochs", "must be >= 1")
        if self.grad_clip is not None and not self.grad_clip > 0:
            bad("grad_clip", "must be > 0 or None")
        if self.amp not in AMP_MODES:
            bad("amp", f"must be one of {AMP_MODES}")

    @classmethod
    def from_dict(cls, config: Mapping[str, Any] | "TrainConfig" | None = None,
                  **overrides: Any) -> "TrainConfig":
        """Build from a dict; unknown keys raise ``KeyError`` naming them (typos are caught)."""
        if isinstance(config, TrainConfig):
            base = config.to_dict()
        else:
            base = dict(config or {})
        base.update(overrides)
        reject_unknown_fields(cls, base, "training config")
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable)."""
        d = dataclasses.asdict(self)
        d["betas"] = list(d["betas"])
        return d

    def result_keys(self) -> dict[str, Any]:
        """The dict minus cosmetic keys: two runs with equal ``result_keys`` train identically."""
        d = self.to_dict()
        for k in self.COSMETIC:
            d.pop(k, None)
        return d
