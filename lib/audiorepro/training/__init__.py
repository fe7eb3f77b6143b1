"""One training / evaluation loop for all five papers.

Main entry points: :func:`fit` (returns :class:`FitResult`), :func:`predict`,
:class:`TrainConfig`, :func:`build_optimizer_and_scheduler`, :func:`balanced_sampler`,
:func:`seed_everything`, :func:`plot_history`.
"""
from .checkpoint import atomic_save, load_checkpoint, read_done
from .config import TrainConfig
from .distributed import dist_info, init_distributed, is_main_process, unwrap
from .history import history_frame, plot_history
from .loop import (INPUT_KEYS, TASK_METRICS, FitResult, Trainer, default_batch_fn, fit,
                   make_evaluator, move_to_device, pick_device, predict)
from .sampler import (BalancedSampler, ShardSampler, balanced_sampler, class_balanced_weights,
                      multilabel_sample_weights)
from .schedules import (LRFactor, build_optimizer, build_optimizer_and_scheduler, build_scheduler,
                        lr_at, make_lr_factor, total_iterations)
from .seeding import (get_rng_state, make_generator, make_loader, seed_everything, seed_worker,
                      set_rng_state)

__all__ = [
    "fit", "Trainer", "FitResult", "TrainConfig", "predict", "pick_device", "move_to_device",
    "default_batch_fn", "make_evaluator", "TASK_METRICS", "INPUT_KEYS",
    "build_optimizer", "build_scheduler", "build_optimizer_and_scheduler", "lr_at", "LRFactor",
    "make_lr_factor", "total_iterations",
    "BalancedSampler", "ShardSampler", "balanced_sampler", "multilabel_sample_weights",
    "class_balanced_weights",
    "seed_everything", "seed_worker", "make_generator", "make_loader", "get_rng_state", "set_rng_state",
    "history_frame", "plot_history", "atomic_save", "load_checkpoint", "read_done",
    "dist_info", "init_distributed", "is_main_process", "unwrap",
]
