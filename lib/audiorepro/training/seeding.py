"""Seeding and RNG-state capture, for reproducible and exactly resumable training."""
from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

__all__ = ["seed_everything", "seed_worker", "make_generator", "make_loader", "get_rng_state",
           "set_rng_state"]


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python ``random``, NumPy, torch (CPU and every CUDA device).

    Args:
        seed: the seed (int >= 0).
        deterministic: also ask torch for deterministic algorithms (``warn_only``), turn off
            cuDNN benchmarking and set ``CUBLAS_WORKSPACE_CONFIG``; slower on GPU.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed NumPy and ``random`` from the worker's torch seed.

    torch already gives each worker the seed ``base_seed + worker_id`` (base_seed drawn from
    the loader's generator), so this makes NumPy/``random`` augmentations reproducible too.
    """
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def make_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (for DataLoader shuffling / samplers)."""
    return torch.Generator().manual_seed(int(seed))


def get_rng_state() -> dict[str, Any]:
    """The global RNG states (python, numpy, torch CPU, CUDA) as checkpoint-safe primitives.

    Only tensors, lists, ints, floats and strings, so ``torch.load(weights_only=True)`` works.
    """
    py = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore states captured by :func:`get_rng_state`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        if len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])


def make_loader(dataset: "torch.utils.data.Dataset", batch_size: int, shuffle: bool = False,
                seed: int = 0, num_workers: int = 0, collate_fn: Any = None, sampler: Any = None,
                drop_last: bool = False, **kwargs: Any) -> "torch.utils.data.DataLoader":
    """A DataLoader whose shuffling and worker seeds come from ``seed``.

    The loader owns a generator seeded with ``seed`` (its state is saved in ``fit``
    checkpoints) and seeds NumPy / ``random`` in workers (:func:`seed_worker`). Give either
    ``shuffle`` or a ``sampler`` (e.g. :class:`~audiorepro.training.sampler.BalancedSampler`).
    """
    from torch.utils.data import DataLoader

    if sampler is not None and shuffle:
        raise ValueError("make_loader: give shuffle=True or a sampler, not both")
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle if sampler is None else None,
                      sampler=sampler, num_workers=num_workers, collate_fn=collate_fn,
                      worker_init_fn=seed_worker, generator=make_generator(seed),
                      drop_last=drop_last, **kwargs)
