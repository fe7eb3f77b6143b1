"""Balanced sampling (PSLA / AST style) and distributed-aware samplers.

Multi-label weight of clip n:  w_n = sum_c y_nc / f_c  with f_c = number of training clips
carrying label c. Single-label (class-balanced): w_n = 1 / f_{y_n}, so every class gets the same
expected share of draws. Draws are with replacement (like ``torch.utils.data.WeightedRandomSampler``)
from a generator seeded with ``seed + epoch`` - so the sequence of an epoch is a pure function of
(seed, epoch), which makes resumed runs exact and DDP ranks consistent.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

from ..metrics import as_numpy

__all__ = ["multilabel_sample_weights", "class_balanced_weights", "BalancedSampler",
           "balanced_sampler", "ShardSampler"]


def multilabel_sample_weights(targets: object, empty_weight: float | None = None) -> np.ndarray:
    """(N,) weights w_n = sum_c y_nc / f_c from (N, C) 0/1 targets.

    Classes that never occur are ignored. Clips without any label get ``empty_weight``
    (default: the smallest positive weight, so they are still drawn now and then).
    """
    y = as_numpy(targets, "targets")
    if y.ndim != 2:
        raise ValueError(f"multilabel_sample_weights: targets must be (N, C) multi-hot, got {y.shape}")
    y = (y > 0).astype(np.float64)
    freq = y.sum(axis=0)
    inv = np.divide(1.0, freq, out=np.zeros_like(freq), where=freq > 0)
    w = y @ inv
    empty = w == 0
    if empty.all():
        raise ValueError("multilabel_sample_weights: no clip has any label")
    if empty.any():
        w[empty] = w[~empty].min() if empty_weight is None else float(empty_weight)
    return w


def class_balanced_weights(labels: object) -> np.ndarray:
    """(N,) weights 1 / f_{y_n} from (N,) integer class labels."""
    y = as_numpy(labels, "labels")
    if y.ndim != 1:
        raise ValueError(f"class_balanced_weights: labels must be (N,) class indices, got {y.shape}")
    if y.dtype.kind not in "iu":
        raise ValueError(f"class_balanced_weights: labels must be integers, got dtype {y.dtype}")
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse].astype(np.float64)


class BalancedSampler(Sampler[int]):
    """Weighted sampling with replacement, reseeded per epoch, optionally sharded over ranks.

    Args:
        weights: (N,) non-negative sample weights (need not sum to 1).
        num_samples: draws per epoch over all ranks (default N).
        seed: base seed; epoch ``e`` uses ``seed + e`` (call :meth:`set_epoch`, as ``fit`` does).
        rank, world_size: this process takes draws ``rank::world_size`` of the epoch's sequence.
    """

    def __init__(self, weights: object, num_samples: int | None = None, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        w = torch.as_tensor(as_numpy(weights, "weights"), dtype=torch.float64)
        if w.ndim != 1 or w.numel() == 0:
            raise ValueError(f"BalancedSampler: weights must be a non-empty (N,) vector, got {tuple(w.shape)}")
        if (w < 0).any() or not torch.isfinite(w).all() or w.sum() <= 0:
            raise ValueError("BalancedSampler: weights must be finite, >= 0 and not all 0")
        self.weights = w
        self.num_samples = int(num_samples) if num_samples is not None else int(w.numel())
        self.seed = int(seed)
        self.epoch = 0
        self.set_distributed(rank, world_size)

    def set_distributed(self, rank: int, world_size: int) -> None:
        """Shard the epoch's draws over ``world_size`` processes (used by ``fit`` under DDP)."""
        if not 0 <= rank < world_size:
            raise ValueError(f"BalancedSampler: rank {rank} outside [0, {world_size})")
        self.rank, self.world_size = int(rank), int(world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def epoch_indices(self) -> torch.Tensor:
        """(num_samples,) int64 draws of the current epoch, before sharding."""
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.multinomial(self.weights, self.num_samples, replacement=True, generator=g)

    def __iter__(self) -> Iterator[int]:
        idx = self.epoch_indices()[self.rank::self.world_size]
        return iter(idx.tolist())

    def __len__(self) -> int:
        return len(range(self.rank, self.num_samples, self.world_size))


def balanced_sampler(targets: object, num_samples: int | None = None, seed: int = 0) -> BalancedSampler:
    """A :class:`BalancedSampler` from targets: (N, C) multi-hot -> multi-label weights,
    (N,) integer labels -> class-balanced weights."""
    y = as_numpy(targets, "targets")
    if y.ndim == 2:
        w = multilabel_sample_weights(y)
    elif y.ndim == 1:
        w = class_balanced_weights(y)
    else:
        raise ValueError(f"balanced_sampler: targets must be (N, C) or (N,), got shape {y.shape}")
    return BalancedSampler(w, num_samples=num_samples, seed=seed)


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + W, ...`` of ``range(n)`` without padding (distributed evaluation)."""

    def __init__(self, n: int, rank: int, world_size: int) -> None:
        self.n, self.rank, self.world_size = int(n), int(rank), int(world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world_size))
