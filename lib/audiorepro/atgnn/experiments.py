"""Data, training recipe and evaluation for the ATGNN chapter.

* :func:`tagging_data` - the synthetic world's multi-label clips as time-major log-mel tensors
  ``(N, frames, n_mels)`` (front end preset, average-pooled in time to a CPU-sized length,
  normalised with training-set statistics), split train / valid / test;
* :class:`RecipeConfig` + :func:`train_tagger` - Section III-B: balanced sampling, mixup applied
  with probability 0.5, time / frequency masks scaled to the input (192 / 48 at 1024 x 128),
  BCE (optionally label-smoothed), Adam 5e-4, linear warm-up, halving every 5 epochs after a
  given epoch; run with :func:`audiorepro.training.fit`;
* :func:`build_model` - ATGNN variants and the PANNs CNN14 baseline behind one call.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..augment import SpecAugment, sample_mixup_lambda, scaled_mask_params
from ..metrics import tagging_metrics
from ..models.atgnn import ATGNN, LabelNoiseRobustBCE, build_atgnn
from ..training import balanced_sampler, fit, make_evaluator, predict

__all__ = ["TaggingData", "tagging_data", "RecipeConfig", "make_batch_fn", "train_tagger",
           "build_model", "WaveToLogits", "evaluate_tagging", "label_attention"]


# ================================================================================== data
@dataclass
class TaggingData:
    """Tensors of one tagging task. ``x_*``: (N, frames, n_mels) float32; ``y_*``: (N, S) 0/1."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]
    description: str
    clip_ids_test: list[str] = field(default_factory=list)

    @property
    def input_size(self) -> tuple[int, int]:
        """(n_mels, frames) - the (F, T) of the paper."""
        return int(self.x_train.shape[2]), int(self.x_train.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def cooccurrence(self, split: str = "train") -> np.ndarray:
        """(S, S) clip counts where both labels occur, in ``split``."""
        y = getattr(self, f"y_{split}").numpy()
        return y.T @ y

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "valid": len(self.y_valid), "test": len(self.y_test)}


def tagging_data(n_clips: int = 200, seed: int = 0, frontend: str = "logmel_64", frames: int = 128,
                 world: Any = None, progress: bool = False) -> TaggingData:
    """The synthetic world (``default_world(n_clips, seed)``) as tagging tensors.

    Features: front end ``frontend`` (cached on disk by :class:`~audiorepro.frontends.FeatureCache`),
    average-pooled in time to ``frames`` frames (10 s clips: 1001 -> ``frames``), then
    standardised with the mean / std of the training split. Classes without a training clip are
    kept (their AP is undefined and left out by the metrics).
    """
    from ..data.dataset import ClipDataset
    from ..data.synthetic import default_world
    from ..frontends import CachedFeatureDataset, make_frontend

    if frames < 16:
        raise ValueError(f"tagging_data: frames={frames} must be >= 16")
    world = world if world is not None else default_world(n_clips, seed, progress=progress)
    table = world.table
    fe = make_frontend(frontend)
    out: dict[str, tuple[torch.Tensor, torch.Tensor, list[str]]] = {}
    for split in ("train", "valid", "test"):
        sub = table.subset(split)
        ds = CachedFeatureDataset(ClipDataset(sub, sample_rate=fe.sample_rate), fe)
        feats, ys, ids = [], [], []
        for i in range(len(ds)):
            item = ds[i]
            f = torch.as_tensor(item["features"]).float()          # (n_mels, frames_full)
            feats.append(F.adaptive_avg_pool1d(f[None], frames)[0].T)   # (frames, n_mels)
            ys.append(torch.as_tensor(item["target"]).float())
            ids.append(str(item["clip_id"]))
        out[split] = (torch.stack(feats), torch.stack(ys), ids)
    mean, std = out["train"][0].mean(), out["train"][0].std().clamp_min(1e-6)
    norm = {k: ((v[0] - mean) / std, v[1], v[2]) for k, v in out.items()}
    desc = (f"synthetic world n{len(table)} seed {seed} ({table.num_classes} classes), {frontend} "
            f"pooled to {frames} frames")
    return TaggingData(*norm["train"][:2], *norm["valid"][:2], *norm["test"][:2],
                       classes=list(table.classes), description=desc, clip_ids_test=norm["test"][2])


# ================================================================================== recipe
@dataclass
class RecipeConfig:
    """Section III-B training recipe (defaults = the paper's values, full scale).

    Attributes:
        epochs, batch_size (24), lr (5e-4), warmup_iters (1000), halve_after_epoch (10 for
        FSD50K, 35 for AudioSet), halve_every (5), balanced (balanced sampling),
        mixup_prob (0.5: share of batches mixed), mixup_alpha (Beta parameter of the mixing
        weight; 10 as in PSLA / AST), time_mask / freq_mask (192 / 48 at 1024 x 128, scaled to
        the input when ``scale_masks``), label_smoothing (0: plain BCE; the paper uses PSLA's
        enhanced labels, which need AudioSet metadata), seed, eval_every_epochs.
    """

    epochs: int = 50
    batch_size: int = 24
    lr: float = 5e-4
    warmup_iters: int = 1000
    halve_after_epoch: int = 10
    halve_every: int = 5
    balanced: bool = True
    mixup_prob: float = 0.5
    mixup_alpha: float = 10.0
    time_mask: int = 192
    freq_mask: int = 48
    scale_masks: bool = True
    label_smoothing: float = 0.0
    seed: int = 0
    eval_every_epochs: int = 1

    def train_config(self) -> dict[str, Any]:
        """The :class:`~audiorepro.training.TrainConfig` dict of this recipe."""
        return dict(epochs=self.epochs, batch_size=self.batch_size, optimizer="adam", lr=self.lr,
                    schedule="step", warmup_iters=self.warmup_iters,
                    step_start_epoch=self.halve_after_epoch, step_every_epochs=self.halve_every,
                    step_gamma=0.5, monitor="mAP", mode="max", restore_best=True, seed=self.seed,
                    eval_every_epochs=self.eval_every_epochs, progress=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RecipeConfig":
        known = set(cls.__dataclass_fields__)
        bad = sorted(set(d) - known)
        if bad:
            raise KeyError(f"unknown recipe key(s) {bad}; known: {sorted(known)}")
        return cls(**d)


def make_batch_fn(recipe: RecipeConfig, input_size: tuple[int, int]):
    """``batch_fn(model, (x, y)) -> (loss, logits, targets)`` with SpecAugment and mixup in
    training mode (identity in eval mode). x: (B, T, F) time-major features."""
    f, t = input_size
    fm, tm = (scaled_mask_params(f, t, (128, 1024, recipe.freq_mask, recipe.time_mask))
              if recipe.scale_masks else (recipe.freq_mask, recipe.time_mask))
    spec = SpecAugment(fm, tm)
    loss_fn = LabelNoiseRobustBCE(recipe.label_smoothing)
    gen = torch.Generator().manual_seed(recipe.seed + 12345)

    def batch_fn(model: nn.Module, batch: Any):
        x, y = batch
        if model.training:
            spec.train()
            x = spec(x.transpose(1, 2)).transpose(1, 2)        # masks on (B, F, T)
            if recipe.mixup_prob > 0 and float(torch.rand((), generator=gen)) < recipe.mixup_prob:
                lam = float(sample_mixup_lambda(recipe.mixup_alpha, (), gen))
                perm = torch.randperm(x.shape[0], generator=gen).to(x.device)
                x = lam * x + (1 - lam) * x[perm]
                y = lam * y + (1 - lam) * y[perm]
        out = model(x)
        return loss_fn(out, y), out, y
    batch_fn.masks = (fm, tm)  # type: ignore[attr-defined]
    return batch_fn


class WaveToLogits(nn.Module):
    """Wraps a backbone returning a dict (PANNs) so it maps (B, T, F) features -> logits (B, S)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.backbone(x.unsqueeze(1))                    # (B, 1, frames, mel)
        return out["logits"] if isinstance(out, Mapping) else out


def build_model(name: str, num_classes: int, input_size: tuple[int, int], seed: int = 0,
                **overrides: Any) -> nn.Module:
    """A model of the chapter by name: an ATGNN preset (``pyr-tiny``, ``pyr-s`` ...; add
    ``use_mlg=False`` for the -MLG rows) or ``panns_cnn14_16k`` (``scale=...`` for its width)."""
    torch.manual_seed(seed)
    if name.startswith("panns"):
        from ..models.backbones import build_backbone
        scale = overrides.pop("scale", 0.25)
        bb = build_backbone(name, scale=scale, num_classes=num_classes, **overrides)
        return WaveToLogits(bb)
    return build_atgnn(name, num_classes=num_classes, input_size=input_size, **overrides)


def train_tagger(model: nn.Module, data: TaggingData, recipe: RecipeConfig | Mapping[str, Any],
                 run_dir: str | Path | None = None, device: str = "cpu"):
    """Train with the Section III-B recipe on ``data`` (validation mAP selects the best epoch).

    Returns the :class:`~audiorepro.training.FitResult`; a finished ``run_dir`` is reloaded.
    """
    recipe = recipe if isinstance(recipe, RecipeConfig) else RecipeConfig.from_dict(recipe)
    train = TensorDataset(data.x_train, data.y_train)
    sampler = (balanced_sampler(data.y_train.numpy(), num_samples=len(train), seed=recipe.seed)
               if recipe.balanced else None)
    g = torch.Generator().manual_seed(recipe.seed)
    train_loader = DataLoader(train, batch_size=recipe.batch_size, sampler=sampler,
                              shuffle=sampler is None, generator=None if sampler is not None else g,
                              drop_last=len(train) > recipe.batch_size)   # BN needs batches > 1
    valid_loader = DataLoader(TensorDataset(data.x_valid, data.y_valid), batch_size=64)
    bfn = make_batch_fn(recipe, data.input_size)
    return fit(model, train_loader, valid_loader, config=recipe.train_config(), batch_fn=bfn,
               evaluate_fn=make_evaluator(bfn, tagging_metrics), run_dir=run_dir, device=device)


def evaluate_tagging(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     batch_size: int = 64) -> dict[str, float]:
    """``tagging_metrics`` (mAP, AUC, d') of ``model`` on (x, y)."""
    scores, targets = predict(model, DataLoader(TensorDataset(x, y), batch_size=batch_size))
    return {k: float(v) for k, v in tagging_metrics(targets, scores).items()
            if isinstance(v, (int, float, np.floating))}


@torch.no_grad()
def label_attention(model: ATGNN, x: torch.Tensor, stage: int = 0, block: int = 0) -> torch.Tensor:
    """Which patch nodes each label node connects to in one PLG block.

    x: (B, T, F) -> (B, S, H, W) neighbour counts on that stage's patch grid (each label has
    ``k_plg`` neighbours), for ``mlg_stages[stage][block]``.
    """
    if not model.config.use_mlg:
        raise ValueError("label_attention needs a model with MLG blocks (use_mlg=True)")
    plg = model.mlg_stages[stage][block].plg
    grids: list[tuple[int, int]] = []

    def hook(mod: nn.Module, inp: Any, out: Any) -> None:
        grids.append(tuple(out.shape[-2:]))
    end = model.backbone[model.stage_ends[stage]]
    h = end.register_forward_hook(hook)
    plg.keep_edges = True
    was = model.training
    model.eval()
    try:
        model(x)
    finally:
        h.remove()
        plg.keep_edges = False
        model.train(was)
    H, W = grids[0]
    idx = plg.last_edges                                       # (B, S, k)
    B, S, _ = idx.shape
    counts = torch.zeros(B, S, H * W)
    counts.scatter_add_(2, idx.cpu(), torch.ones(idx.shape))
    return counts.reshape(B, S, H, W)
