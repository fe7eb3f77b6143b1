"""The one training / evaluation loop of the book: :func:`fit` and :func:`predict`.

A training step is described by a ``batch_fn(model, batch) -> loss`` or ``-> (loss, outputs,
targets)``; the default one (built from ``loss_fn``) calls ``model(batch[input_key])`` and
``loss_fn(outputs, batch["target"])``. That covers multi-label tagging (BCE / Huber),
single-label classification (cross-entropy), linear probes and graph models (focal loss);
contrastive dual encoders pass their own ``batch_fn`` (loss computed inside) and an
``evaluate_fn(model, loader) -> dict`` (e.g. :func:`audiorepro.metrics.retrieval_metrics`).

Batches may be tensors, ``(x, y)`` tuples or dicts (the project's datasets yield
``{"wave", "target", "index", "clip_id"}``): tensors are moved to the device, other values (lists
of ids) are left alone.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, SequentialSampler
from torch.utils.data.distributed import DistributedSampler
from audiorepro.progress import tqdm

from .. import metrics as M
from . import checkpoint as ckpt
from .config import TrainConfig
from .distributed import (all_gather_object, all_reduce_sum, barrier, broadcast_object, dist_info,
                          init_distributed, unwrap)
from .history import history_frame
from .sampler import BalancedSampler, ShardSampler
from .schedules import build_optimizer, build_scheduler, total_iterations
from .seeding import get_rng_state, make_loader, seed_everything, set_rng_state

__all__ = ["FitResult", "Trainer", "fit", "predict", "pick_device", "move_to_device",
           "default_batch_fn", "make_evaluator", "TASK_METRICS", "INPUT_KEYS"]

#: keys tried (in order) for the model input of a dict batch when ``input_key`` is not given
INPUT_KEYS = ("x", "wave", "fbank", "features", "feats", "embedding")
#: ``task`` name -> metrics function ``(targets, outputs) -> dict``
TASK_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], dict]] = {
    "tagging": M.tagging_metrics,
    "classification": M.classification_metrics,
}

BatchFn = Callable[[nn.Module, Any], Any]
EvaluateFn = Callable[[nn.Module, DataLoader], Mapping[str, float]]


# ------------------------------------------------------------------------------ small helpers
def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` -> ``cuda`` (``cuda:LOCAL_RANK`` under torchrun) if available, else ``mps``,
    else ``cpu``; any other value is passed to ``torch.device``."""
    if device is None or (isinstance(device, str) and device == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", dist_info().local_rank % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"pick_device: bad device parameter {device!r}: {exc}") from exc


def move_to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Tensors (also inside dicts / lists / tuples) moved to ``device``; other values untouched."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        return {k: move_to_device(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(move_to_device(v, device, non_blocking) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device, non_blocking) for v in batch)
    return batch


def _batch_input(batch: Any, input_key: str | None) -> Any:
    if isinstance(batch, Mapping):
        if input_key is not None:
            if input_key not in batch:
                raise KeyError(f"batch has no input key {input_key!r}; keys: {sorted(batch)}")
            return batch[input_key]
        for k in INPUT_KEYS:
            if k in batch:
                return batch[k]
        raise KeyError(f"batch has none of the input keys {INPUT_KEYS}; keys: {sorted(batch)}; "
                       "pass input_key=...")
    if isinstance(batch, (list, tuple)):
        return batch[0]
    return batch


def _batch_target(batch: Any, target_key: str = "target") -> Any:
    if isinstance(batch, Mapping):
        return batch.get(target_key)
    if isinstance(batch, (list, tuple)) and len(batch) >= 2:
        return batch[1]
    return None


def _batch_size(batch: Any) -> int:
    x = batch
    while True:
        if isinstance(x, torch.Tensor):
            return int(x.shape[0]) if x.ndim else 1
        if isinstance(x, Mapping) and x:
            tensors = [v for v in x.values() if isinstance(v, torch.Tensor)]
            x = tensors[0] if tensors else next(iter(x.values()))
        elif isinstance(x, (list, tuple)) and x:
            if not isinstance(x[0], (torch.Tensor, Mapping, list, tuple)):
                return len(x)
            x = x[0]
        else:
            return 1


def default_batch_fn(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                     input_key: str | None = None, target_key: str = "target") -> BatchFn:
    """``batch_fn`` computing ``outputs = model(x)`` and ``loss_fn(outputs, target)``.

    ``x`` is ``batch[input_key]`` (default: the first of :data:`INPUT_KEYS` present), or
    ``batch[0]`` for tuple batches; the target is ``batch[target_key]`` or ``batch[1]``.
    Returns ``(loss (), outputs (B, ...), targets (B, ...))``.
    """
    def batch_fn(model: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = _batch_input(batch, input_key)
        y = _batch_target(batch, target_key)
        if y is None:
            raise KeyError(f"batch has no target ({target_key!r}); give a batch_fn for unsupervised losses")
        out = model(x)
        return loss_fn(out, y), out, y
    return batch_fn


def _split_step(result: Any) -> tuple[torch.Tensor, Any, Any]:
    if isinstance(result, torch.Tensor):
        return result, None, None
    if isinstance(result, Mapping):
        return result["loss"], result.get("outputs"), result.get("targets")
    if isinstance(result, (tuple, list)):
        if len(result) == 3:
            return result[0], result[1], result[2]
        if len(result) == 1:
            return result[0], None, None
    raise TypeError("batch_fn must return loss, (loss, outputs, targets) or "
                    f"{{'loss', 'outputs', 'targets'}}; got {type(result).__name__}")


def _resolve_amp(amp: Any, device: torch.device) -> tuple[bool, torch.dtype | None, bool]:
    """-> (enabled, dtype, use GradScaler)."""
    if amp in (False, None, "off"):
        return False, None, False
    if amp in (True, "auto"):
        if device.type == "cuda":
            return True, torch.float16, True
        return True, torch.bfloat16, False
    if amp == "bf16":
        return True, torch.bfloat16, False
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError(f"TrainConfig.amp = 'fp16' needs a CUDA device (got {device}); use 'bf16'")
        return True, torch.float16, True
    raise ValueError(f"TrainConfig.amp = {amp!r} is not understood")


def _to_numpy(t: Any) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        t = t.detach()
        return (t.float() if t.is_floating_point() else t).cpu().numpy()
    return np.asarray(t)


def _scalar_metrics(d: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in d.items():
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            out[str(k)] = float(v)
    return out


# ------------------------------------------------------------------------------ prediction
@torch.no_grad()
def predict(model: nn.Module, loader: Iterable, device: str | torch.device | None = None,
            forward_fn: Callable[[nn.Module, Any], Any] | None = None,
            input_key: str | None = None, target_key: str = "target",
            amp: Any = False, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Scores and targets of a whole loader, in loader order, in eval mode.

    Args:
        model: the model (its train/eval mode is restored afterwards).
        loader: batches as in :func:`fit`.
        device: default: the device of the model's first parameter (or ``pick_device``).
        forward_fn: ``(model, batch) -> scores`` or ``-> (scores, targets)``; default
            ``model(batch[input_key])`` with targets ``batch[target_key]``.
        amp: autocast as in :class:`TrainConfig` (scores are returned as float32).
    Returns:
        ``scores`` (N, ...) float32 and ``targets`` (N, ...) (an empty array if batches carry
        no target).
    """
    if device is None:
        p = next(iter(model.parameters()), None)
        device = p.device if p is not None else pick_device("auto")
    device = pick_device(device)
    enabled, dtype, _ = _resolve_amp(amp, device)
    was_training = model.training
    model.eval()
    scores, targets = [], []
    try:
        for batch in tqdm(loader, desc="predict", leave=False, disable=not progress):
            batch = move_to_device(batch, device)
            with torch.autocast(device.type, dtype=dtype, enabled=enabled):
                if forward_fn is None:
                    out, y = model(_batch_input(batch, input_key)), _batch_target(batch, target_key)
                else:
                    res = forward_fn(model, batch)
                    out, y = res if isinstance(res, tuple) else (res, _batch_target(batch, target_key))
            scores.append(_to_numpy(out))
            if y is not None:
                targets.append(_to_numpy(y))
    finally:
        model.train(was_training)
    if not scores:
        raise ValueError("predict: the loader yielded no batch")
    s = np.concatenate(scores).astype(np.float32, copy=False)
    t = np.concatenate(targets) if targets else np.empty((0,))
    return s, t


def make_evaluator(batch_fn: BatchFn, metrics_fn: Callable[[np.ndarray, np.ndarray], dict] | None = None,
                   amp: Any = False) -> EvaluateFn:
    """An ``evaluate_fn(model, loader) -> dict``: mean ``loss`` of ``batch_fn`` (weighted by
    batch size) plus ``metrics_fn(targets, outputs)`` on the concatenated outputs.

    Under DDP each rank evaluates its shard of the loader and the results are gathered, so
    every rank gets the metrics of the full set (no padding duplicates).
    """
    def evaluate(model: nn.Module, loader: Iterable) -> dict[str, float]:
        p = next(iter(model.parameters()), None)
        device = p.device if p is not None else torch.device("cpu")
        enabled, dtype, _ = _resolve_amp(amp, device)
        was_training = model.training
        model.eval()
        loss_sum, n = 0.0, 0
        outs, tgts = [], []
        try:
            with torch.no_grad():
                for batch in loader:
                    batch = move_to_device(batch, device)
                    with torch.autocast(device.type, dtype=dtype, enabled=enabled):
                        loss, out, y = _split_step(batch_fn(model, batch))
                    b = _batch_size(batch)
                    loss_sum += float(loss.detach().float()) * b
                    n += b
                    if metrics_fn is not None:
                        if out is None or y is None:
                            raise ValueError("make_evaluator: metrics need batch_fn to return "
                                             "(loss, outputs, targets)")
                        outs.append(_to_numpy(out))
                        tgts.append(_to_numpy(y))
        finally:
            model.train(was_training)
        loss_sum, n = all_reduce_sum([loss_sum, n], device="cpu")
        if n == 0:
            raise ValueError("evaluation loader yielded no batch")
        result = {"loss": loss_sum / n}
        if metrics_fn is not None:
            parts = all_gather_object((outs, tgts))
            outs = [o for part in parts for o in part[0]]
            tgts = [t for part in parts for t in part[1]]
            result.update(_scalar_metrics(metrics_fn(np.concatenate(tgts), np.concatenate(outs))))
        return result
    return evaluate


# ------------------------------------------------------------------------------ result
@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained model (best weights if ``restore_best`` and validation data).
        history: tidy DataFrame (epoch, iteration, split, metric, value).
        best_metrics: validation metrics at the best evaluation plus ``epoch``/``iteration`` of it
            (without validation data: the last training record).
        epochs_run: epochs started (a run stopped mid-epoch counts that epoch).
        iterations: optimiser steps done.
        duration_s: training wall time summed over sessions (resumes).
        run_dir: the run directory (``None`` without checkpoints).
        stopped_early: early stopping ended the run.
        from_cache: the run was finished before; nothing was trained in this call.
    """

    model: nn.Module
    history: pd.DataFrame
    best_metrics: dict[str, float]
    epochs_run: int
    iterations: int
    duration_s: float
    run_dir: Path | None = None
    stopped_early: bool = False
    from_cache: bool = False

    def curve(self, metric: str, split: str = "valid") -> pd.DataFrame:
        """Rows of one metric of one split (columns epoch, iteration, value)."""
        h = self.history
        return h[(h.metric == metric) & (h.split == split)][["epoch", "iteration", "value"]]


# ------------------------------------------------------------------------------ trainer
@dataclass
class _Best:
    value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    state: dict[str, torch.Tensor] | None = None


def _loader_generators(loader: Any, extra: Sequence[Any] = ()) -> list[torch.Generator]:
    """Every torch.Generator reachable from a loader (loader, samplers, dataset) and ``extra``."""
    found: list[torch.Generator] = []
    seen: set[int] = set()

    def add(obj: Any) -> None:
        g = getattr(obj, "generator", None)
        if isinstance(g, torch.Generator) and id(g) not in seen and g.device.type == "cpu":
            seen.add(id(g))
            found.append(g)

    add(loader)
    sampler = getattr(loader, "sampler", None)
    add(sampler)
    bs = getattr(loader, "batch_sampler", None)
    add(bs)
    add(getattr(bs, "sampler", None))
    ds = getattr(loader, "dataset", None)
    for _ in range(4):  # Subset / ConcatDataset-like wrappers
        if ds is None:
            break
        add(ds)
        ds = getattr(ds, "dataset", None)
    for obj in extra:
        add(obj)
    return found


class Trainer:
    """Stateful training run; :func:`fit` is the usual entry point (same arguments)."""

    def __init__(self, model: nn.Module, train_data: DataLoader | Dataset,
                 valid_data: DataLoader | Dataset | None = None,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 config: Mapping[str, Any] | TrainConfig | None = None, *,
                 task: str | None = None, batch_fn: BatchFn | None = None,
                 evaluate_fn: EvaluateFn | None = None,
                 metrics_fn: Callable[[np.ndarray, np.ndarray], dict] | None = None,
                 run_dir: str | Path | None = None, device: str | torch.device | None = "auto",
                 mixup: Callable[[Any], Any] | None = None, params: Any = None,
                 callbacks: Sequence[Callable[["Trainer"], None]] = (),
                 input_key: str | None = None, target_key: str = "target",
                 collate_fn: Callable | None = None) -> None:
        self.cfg = TrainConfig.from_dict(config)
        self.info = init_distributed()
        self.device = pick_device(device)
        if self.info.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.info.local_rank)
        self.is_main = self.info.rank == 0
        self.model = model
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.mixup = mixup
        self.callbacks = list(callbacks)
        self.collate_fn = collate_fn
        self.params = params
        self.amp_enabled, self.amp_dtype, use_scaler = _resolve_amp(self.cfg.amp, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)

        if batch_fn is None:
            if loss_fn is None:
                raise ValueError("fit: give loss_fn (default batch_fn) or batch_fn")
            batch_fn = default_batch_fn(loss_fn, input_key, target_key)
        self.batch_fn = batch_fn
        if task is not None and task not in TASK_METRICS:
            raise ValueError(f"fit: task={task!r} unknown; choose one of {sorted(TASK_METRICS)} "
                             "or pass metrics_fn / evaluate_fn")
        if metrics_fn is None and task is not None:
            metrics_fn = TASK_METRICS[task]
        self.user_evaluate = evaluate_fn
        self.evaluate_fn = evaluate_fn or make_evaluator(batch_fn, metrics_fn, self.cfg.amp)
        self.train_data, self.valid_data = train_data, valid_data

        # state (saved in checkpoints)
        self.epoch = 0          # epochs completed
        self.iteration = 0      # optimiser steps done
        self.rows: list[dict] = []
        self.best = _Best()
        self.bad_evals = 0
        self.stopped_early = False
        self.elapsed = 0.0
        self._loss_sum = 0.0    # training loss since the last record
        self._loss_n = 0
        self._last_lr = float("nan")
        self._last_record_iter = -1

    # -------------------------------------------------------------- data
    def _as_loader(self, data: Any, train: bool) -> DataLoader:
        if isinstance(data, DataLoader):
            return data
        if isinstance(data, Dataset):
            return make_loader(data, self.cfg.batch_size, shuffle=train and self.cfg.shuffle,
                               seed=self.cfg.seed, num_workers=self.cfg.num_workers,
                               collate_fn=self.collate_fn, drop_last=train and self.cfg.drop_last)
        if isinstance(data, Iterable):
            return data  # type: ignore[return-value]  # any re-iterable of batches
        raise TypeError(f"fit: {'train' if train else 'valid'}_data must be a DataLoader or Dataset, "
                        f"got {type(data).__name__}")

    @staticmethod
    def _rebuild(loader: DataLoader, sampler: Any) -> DataLoader:
        return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler,
                          num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                          pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                          timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
                          generator=loader.generator,
                          persistent_workers=loader.persistent_workers)

    def _distribute(self, loader: Any, train: bool) -> Any:
        if not self.info.enabled or not isinstance(loader, DataLoader):
            if self.info.enabled:
                raise TypeError("DDP needs DataLoaders (to shard them); got "
                                f"{type(loader).__name__}")
            return loader
        if loader.batch_size is None:
            raise ValueError("DDP: the loader uses a custom batch_sampler; give a sampler instead")
        r, w = self.info.rank, self.info.world_size
        s = loader.sampler
        if not train:
            return self._rebuild(loader, ShardSampler(len(loader.dataset), r, w))  # type: ignore[arg-type]
        if isinstance(s, BalancedSampler) or hasattr(s, "set_distributed"):
            s.set_distributed(r, w)
            return loader
        if isinstance(s, DistributedSampler):
            return loader
        if isinstance(s, (RandomSampler, SequentialSampler)):
            ds = DistributedSampler(loader.dataset, num_replicas=w, rank=r,  # type: ignore[arg-type]
                                    shuffle=isinstance(s, RandomSampler), seed=self.cfg.seed,
                                    drop_last=loader.drop_last)
            return self._rebuild(loader, ds)
        raise TypeError(f"DDP: cannot shard a {type(s).__name__}; use BalancedSampler or a sampler "
                        "with set_distributed(rank, world_size)")

    # -------------------------------------------------------------- state
    def _model_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().to("cpu", copy=True) for k, v in unwrap(self.model).state_dict().items()}

    def _rng_state(self) -> dict:
        return {"global": get_rng_state(),
                "generators": [g.get_state() for g in self._generators]}

    def _checkpoint_state(self) -> dict:
        rng = all_gather_object(self._rng_state())  # one entry per rank
        return {
            "format": 1, "model": self._model_state(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
            "rng": rng, "epoch": self.epoch, "iteration": self.iteration, "rows": self.rows,
            "best_value": self.best.value, "best_metrics": self.best.metrics,
            "best_state": self.best.state, "bad_evals": self.bad_evals,
            "stopped_early": self.stopped_early, "elapsed": self.elapsed,
            "loss_sum": self._loss_sum, "loss_n": self._loss_n, "last_lr": self._last_lr,
            "last_record_iter": self._last_record_iter,
        }

    def _restore(self, st: dict) -> None:
        ckpt.load_model_state(unwrap(self.model), st["model"], self.run_dir)
        self.optimizer.load_state_dict(st["optimizer"])
        self.scheduler.load_state_dict(st["scheduler"])
        self.scaler.load_state_dict(st["scaler"])
        rng = st["rng"]
        mine = rng[self.info.rank] if self.info.rank < len(rng) else rng[0]
        set_rng_state(mine["global"])
        if len(mine["generators"]) != len(self._generators):
            raise RuntimeError(f"checkpoint in {self.run_dir} has {len(mine['generators'])} loader "
                               f"generator state(s) but the loaders now have {len(self._generators)}")
        for g, s in zip(self._generators, mine["generators"]):
            g.set_state(s)
        self.epoch, self.iteration = int(st["epoch"]), int(st["iteration"])
        self.rows = list(st["rows"])
        self.best = _Best(st["best_value"], dict(st["best_metrics"]), st["best_state"])
        self.bad_evals = int(st["bad_evals"])
        self.stopped_early = bool(st["stopped_early"])
        self.elapsed = float(st["elapsed"])
        self._loss_sum, self._loss_n = float(st["loss_sum"]), int(st["loss_n"])
        self._last_lr, self._last_record_iter = float(st["last_lr"]), int(st["last_record_iter"])

    @property
    def history(self) -> pd.DataFrame:
        return history_frame(self.rows)

    # -------------------------------------------------------------- records
    def _add(self, epoch: int, split: str, metric: str, value: float) -> None:
        self.rows.append({"epoch": int(epoch), "iteration": int(self.iteration), "split": split,
                          "metric": metric, "value": float(value)})

    def _improved(self, value: float) -> bool:
        if self.best.value is None or math.isnan(self.best.value):
            return not math.isnan(value)
        if self.cfg.mode == "max":
            return value > self.best.value + self.cfg.min_delta
        return value < self.best.value - self.cfg.min_delta

    def _record(self, epoch: int) -> None:
        """Train loss since the last record, LR, validation metrics, early-stopping bookkeeping."""
        s, n = all_reduce_sum([self._loss_sum, self._loss_n])
        if n > 0:
            self._add(epoch, "train", "loss", s / n)
        self._add(epoch, "train", "lr", self._last_lr)
        self._loss_sum, self._loss_n = 0.0, 0
        self._last_record_iter = self.iteration
        if self.valid_loader is None:
            self.best = _Best(None, {"loss": s / n if n else float("nan"), "epoch": epoch,
                                     "iteration": self.iteration}, None)
            return
        eval_model = unwrap(self.model)
        if self.user_evaluate is not None:
            metrics = _scalar_metrics(self.user_evaluate(eval_model, self.valid_loader))
            metrics = broadcast_object(metrics)
        else:
            metrics = self.evaluate_fn(eval_model, self.valid_loader)
        for k, v in metrics.items():
            self._add(epoch, "valid", k, v)
        if self.cfg.monitor not in metrics:
            raise KeyError(f"TrainConfig.monitor = {self.cfg.monitor!r} is not among the validation "
                           f"metrics {sorted(metrics)}")
        value = metrics[self.cfg.monitor]
        if self._improved(value):
            self.best = _Best(value, {**metrics, "epoch": epoch, "iteration": self.iteration},
                              self._model_state())
            self.bad_evals = 0
        else:
            self.bad_evals += 1
            if self.cfg.patience is not None and self.bad_evals >= self.cfg.patience:
                self.stopped_early = True

    # -------------------------------------------------------------- main
    def _cached_result(self, summary: dict) -> FitResult:
        res = ckpt.load_result(self.run_dir)  # type: ignore[arg-type]
        ckpt.load_model_state(unwrap(self.model), res["model"], self.run_dir, what="finished run")
        self.model.to(self.device)
        return FitResult(model=self.model, history=history_frame(res["rows"]),
                         best_metrics=dict(res["best_metrics"]), epochs_run=int(summary["epochs_run"]),
                         iterations=int(summary["iterations"]), duration_s=float(summary["duration_s"]),
                         run_dir=self.run_dir, stopped_early=bool(summary["stopped_early"]),
                         from_cache=True)

    def run(self) -> FitResult:
        """Train (or resume, or load a finished run) and return the :class:`FitResult`."""
        cfg = self.cfg
        if self.run_dir is not None:
            if self.is_main:
                ckpt.check_config(self.run_dir, cfg.result_keys())
            barrier()
            summary = ckpt.read_done(self.run_dir)
            if summary is not None:
                return self._cached_result(summary)

        seed_everything(cfg.seed, cfg.deterministic)
        self.train_loader = self._distribute(self._as_loader(self.train_data, True), True)
        self.valid_loader = None
        if self.valid_data is not None:
            self.valid_loader = self._as_loader(self.valid_data, False)
            if self.user_evaluate is None:  # the default evaluator gathers shards; a user
                self.valid_loader = self._distribute(self.valid_loader, False)  # one sees all
        try:
            iters_per_epoch = len(self.train_loader)  # type: ignore[arg-type]
        except TypeError as exc:
            raise TypeError("fit: the training loader has no len(); use a map-style dataset") from exc
        if iters_per_epoch == 0:
            raise ValueError("fit: the training loader yields no batch (dataset smaller than batch_size "
                             "with drop_last?)")
        total = total_iterations(cfg, iters_per_epoch)
        self._generators = _loader_generators(self.train_loader, [self.mixup] if self.mixup else [])

        self.model.to(self.device)
        if self.info.enabled:
            self.model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=cfg.find_unused_parameters)
        self.optimizer = build_optimizer(self.params if self.params is not None else unwrap(self.model), cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, iters_per_epoch)

        resumed = False
        if self.run_dir is not None:
            st = ckpt.load_checkpoint(self.run_dir)
            if st is not None:
                self._restore(st)
                resumed = True

        show = cfg.progress and self.is_main
        max_epochs = cfg.epochs if cfg.epochs is not None else math.ceil(total / iters_per_epoch)
        t0 = time.perf_counter()
        outer = tqdm(total=max_epochs, initial=self.epoch, desc="epochs", disable=not show,
                     leave=False, dynamic_ncols=True)
        finished = self.stopped_early or self.iteration >= total or self.epoch >= max_epochs
        while not finished:
            epoch_no = self.epoch + 1  # 1-based number of the running epoch
            self.model.train()
            for obj in {id(o): o for o in (getattr(self.train_loader, "sampler", None),
                                             getattr(getattr(self.train_loader, "batch_sampler", None),
                                                     "sampler", None)) if o is not None}.values():
                if hasattr(obj, "set_epoch"):
                    obj.set_epoch(self.epoch)
            inner = tqdm(self.train_loader, desc=f"epoch {epoch_no}", disable=not show, leave=False,
                         dynamic_ncols=True, mininterval=1.0)
            for batch in inner:
                self._train_step(batch)
                if self.iteration % 10 == 0:
                    inner.set_postfix(loss=f"{self._running_loss:.4g}", refresh=False)
                if cfg.eval_every_iters and self.iteration % cfg.eval_every_iters == 0:
                    self._record(epoch_no)
                if self.stopped_early or self.iteration >= total:
                    break
            inner.close()
            mid_epoch_stop = self.stopped_early or (self.iteration >= total and
                                                    self.iteration % iters_per_epoch != 0)
            self.epoch += 1
            finished = self.stopped_early or self.iteration >= total or self.epoch >= max_epochs
            if self._last_record_iter != self.iteration and (
                    finished or (not cfg.eval_every_iters and self.epoch % cfg.eval_every_epochs == 0)):
                self._record(epoch_no)
                finished = finished or self.stopped_early
            outer.update(1)
            self.elapsed += time.perf_counter() - t0
            t0 = time.perf_counter()
            if self.run_dir is not None and not (finished and mid_epoch_stop):
                state = self._checkpoint_state()  # collective (gathers RNG states)
                if self.is_main:
                    ckpt.save_checkpoint(self.run_dir, state)
                    ckpt.atomic_write_text(self.run_dir / ckpt.HISTORY,
                                           self.history.to_csv(index=False))
                barrier()
            for cb in self.callbacks:
                cb(self)
        outer.close()
        self.elapsed += time.perf_counter() - t0
        return self._finish(resumed)

    @property
    def _running_loss(self) -> float:
        return self._loss_sum / self._loss_n if self._loss_n else float("nan")

    def _train_step(self, batch: Any) -> None:
        cfg = self.cfg
        batch = move_to_device(batch, self.device, non_blocking=self.device.type == "cuda")
        if self.mixup is not None:
            batch = self.mixup(batch)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_enabled):
            loss, _, _ = _split_step(self.batch_fn(self.model, batch))
        if loss.ndim != 0:
            raise ValueError(f"batch_fn returned a loss of shape {tuple(loss.shape)}; it must be a scalar")
        if not torch.isfinite(loss.detach()):
            raise FloatingPointError(f"non-finite training loss {loss.item()} at epoch {self.epoch + 1}, "
                                     f"iteration {self.iteration + 1} (lr {self.optimizer.param_groups[0]['lr']:.3g})")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]],
                                           cfg.grad_clip)
        self._last_lr = float(self.optimizer.param_groups[0]["lr"])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.iteration += 1
        self._loss_sum += float(loss.detach().float())
        self._loss_n += 1

    def _finish(self, resumed: bool) -> FitResult:
        base = unwrap(self.model)
        if self.cfg.restore_best and self.best.state is not None:
            base.load_state_dict(self.best.state)
        best_metrics = dict(self.best.metrics)
        if self.run_dir is not None:
            if self.is_main:
                ckpt.atomic_write_text(self.run_dir / ckpt.HISTORY, self.history.to_csv(index=False))
                ckpt.write_done(self.run_dir,
                                {"model": self._model_state(), "rows": self.rows,
                                 "best_metrics": best_metrics},
                                {"epochs_run": self.epoch, "iterations": self.iteration,
                                 "duration_s": self.elapsed, "stopped_early": self.stopped_early,
                                 "best_metrics": best_metrics, "resumed": resumed})
                if not self.cfg.keep_checkpoint:   # done: reloading reads result.pt only
                    (self.run_dir / ckpt.CHECKPOINT).unlink(missing_ok=True)
            barrier()
        return FitResult(model=base, history=self.history, best_metrics=best_metrics,
                         epochs_run=self.epoch, iterations=self.iteration, duration_s=self.elapsed,
                         run_dir=self.run_dir, stopped_early=self.stopped_early, from_cache=False)


def fit(model: nn.Module, train_data: DataLoader | Dataset, valid_data: DataLoader | Dataset | None = None,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        config: Mapping[str, Any] | TrainConfig | None = None, **kwargs: Any) -> FitResult:
    """Train ``model`` and return a :class:`FitResult`.

    Args:
        model: any ``nn.Module``; moved to ``device`` (and wrapped in DDP under torchrun).
        train_data: a DataLoader (used as is) or a Dataset (loader built from
            ``config.batch_size`` / ``shuffle`` with a seeded generator).
        valid_data: evaluated at each record point (every ``eval_every_iters`` iterations or every
            ``eval_every_epochs`` epochs and at the end).
        loss_fn: ``(outputs, targets) -> scalar`` for the default ``batch_fn``.
        config: :class:`TrainConfig` or a dict of its keys.
    Keyword args:
        task: ``"tagging"`` (mAP/AUC/d') or ``"classification"`` (accuracy/macro-F1) metrics on
            the validation outputs.
        batch_fn: ``(model, batch) -> loss | (loss, outputs, targets)`` replacing the default;
            under DDP it must call ``model(...)`` (the DDP wrapper) for gradients to synchronise.
        evaluate_fn: ``(model, valid_loader) -> dict`` replacing the default evaluator (gets the
            unwrapped model and the whole validation loader, on every rank).
        metrics_fn: ``(targets (N, ...), outputs (N, ...)) -> dict`` for the default evaluator.
        run_dir: checkpoint each epoch there and resume from it; a finished run (``done.json``)
            is loaded instead of trained again.
        device: ``"auto"`` (see :func:`pick_device`) or a device.
        mixup: ``batch -> batch`` applied to each training batch on the device.
        params: parameters / param groups for the optimiser (default: trainable parameters).
        callbacks: ``callback(trainer)`` called at the end of every epoch (after the checkpoint).
        input_key, target_key: dict-batch keys of the default ``batch_fn``.
        collate_fn: for loaders built from Datasets.
    """
    return Trainer(model, train_data, valid_data, loss_fn, config, **kwargs).run()
