"""Runs of the ATGNN chapter: the Section III-B recipe, the table rows, evaluation and records.

* :class:`RecipeConfig` + :func:`train_tagger` - Section III-B: balanced sampling, mixup applied
  with probability 0.5, time / frequency masks of 192 / 48 (scaled down for inputs below 1024 x 128),
  BCE (optionally label-smoothed), Adam 5e-4, linear warm-up, halving every 5 epochs after a
  given epoch; run with :func:`audiorepro.training.fit` on ``device`` (``"auto"``: CUDA when
  there is one) in a run cache keyed by :func:`audiorepro.caching.run_key`;
* :func:`build_model` - ATGNN variants and the shared PANNs CNN14 / AST baselines behind one call;
* :func:`train_row`, :func:`train_rows`, :func:`k_sweep` (Table I) - one run per (row, seed),
  the best epoch chosen on validation, the test split read once; :func:`record_runs` /
  :func:`record_k_sweep` record every seed with the test clips' scores and targets;
  :func:`seed_summary` shows mean +- std over seeds (display only);
* :func:`decide_claims` - every comparative / closeness / spread claim of ``paper.yml`` decided
  by :func:`audiorepro.results.evaluate_claim` (paired bootstrap over test clips and seeds);
  :func:`decide_adjacency_claim` - the manual label-graph claim;
* :func:`count_variants` / :func:`count_baselines` - #Params and GMACs of Tables II / III;
* :func:`adjacency_vs_lift`, :func:`label_attention` - what the label graph learned;
* ``record_*`` - the result records of the chapter's notebooks (:mod:`audiorepro.results`);
* :func:`benchmark_table` - the speed / memory results of ``benchmarks/bench_atgnn.py``.

Data preparation (:func:`tagging_data`) lives in :mod:`audiorepro.papers.atgnn.data`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from audiorepro import caching, paths, results
from audiorepro.augment import SpecAugment, sample_mixup_lambda, scaled_mask_params
from audiorepro.backbones import build_backbone
from audiorepro.backbones.counting import count_parameters
from audiorepro.metrics import accuracy, tagging_metrics
from audiorepro.results.stats import N_BOOT, Run, bootstrap_rows, percentile_interval
from audiorepro.frontends import make_frontend
from audiorepro.papers.atgnn.data import TaggingData, tagging_data
from audiorepro.papers.atgnn.model import (ATGNN, PRESETS, ATGNNConfig, LabelNoiseRobustBCE,
                                           PSLA, build_atgnn, count_atgnn, load_vig_weights,
                                           schedule_summary)
from audiorepro.training import balanced_sampler, fit, make_evaluator, pick_device, predict
from audiorepro.training.config import reject_unknown_fields

__all__ = ["RecipeConfig", "PSLA_RECIPES", "psla_recipe", "WeightAverage", "WEIGHT_AVERAGE_FILE", "BEST_EPOCH",
           "make_batch_fn", "train_tagger", "build_model", "WaveToLogits",
           "predict_tagging", "evaluate_tagging", "item_ids", "label_attention", "table_rows",
           "run_dir_for", "code_digest", "train_row", "train_rows", "held_out_metrics", "table_summary",
           "record_runs", "record_row", "check_table", "seed_summary", "NOTEBOOK_CLAIMS", "decide_claims",
           "decide_adjacency_claim", "checkpoint_digest", "k_spec", "k_sweep", "record_k_sweep", "COUNT_SETTINGS",
           "count_variants", "count_baselines", "LabelGraphStats", "label_graph_spec", "adjacency_vs_lift",
           "record_label_graph", "benchmark_table"]

CHAPTER = "atgnn"
#: architectures of the ATGNN presets (``model.PRESETS``), for parameter checks
ATGNN_ARCHS = tuple(PRESETS)
#: the source every ATGNN run executes (part of every run-cache key)
RUN_CODE = ("audiorepro.papers.atgnn", *caching.CORE_TRAINING_CODE)
BACKBONE_PREFIXES = ("panns", "ast")
#: architectures fed their own front end instead of the chapter's features, as their released
#: files expect: PANNs CNN14 32 kHz reads 64-bin log-mel in dB (1024 / 320, 50-14000 Hz), not
#: standardised (its first batch norm holds the statistics of those values)
OWN_FRONTENDS: dict[str, str] = {"panns_cnn14_32k": "panns_32k"}


# ================================================================================== recipe
@dataclass
class RecipeConfig:
    """Section III-B training recipe (defaults = the paper's values, full scale).

    Attributes:
        epochs, batch_size (24), lr (5e-4), warmup_iters (1000), halve_after_epoch (10 for
        FSD50K, 35 for AudioSet), halve_every (5), balanced (balanced sampling),
        mixup_prob (0.5: share of batches mixed), mixup_alpha (Beta parameter of the mixing
        weight; 10 as in PSLA / AST), mixup_per_sample (False: one draw and one weight per
        batch; True: each clip mixed with probability ``mixup_prob`` with its own weight, as
        the PSLA / AST data loaders the reference code uses), time_mask / freq_mask (192 / 48 at 1024 x 128 and above, as the
        paper uses them for every experiment; scaled down to inputs smaller than 128 x 1024
        when ``scale_masks``), label_smoothing (0: plain BCE; the paper uses PSLA's enhanced
        labels on FSD50K, which need PSLA's label files), seed, eval_every_epochs,
        weight_decay and beta1 (Adam; the paper states neither: PyTorch's 0 and 0.9),
        average_last (0: keep the epoch of best validation mAP; N: keep the average of the
        weights of the last N epochs, PSLA's weight averaging, :func:`psla_recipe`), name (whose
        recipe this is, stored in the records).
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
    mixup_per_sample: bool = False
    time_mask: int = 192
    freq_mask: int = 48
    scale_masks: bool = True
    label_smoothing: float = 0.0
    seed: int = 0
    eval_every_epochs: int = 1
    weight_decay: float = 0.0
    beta1: float = 0.9
    average_last: int = 0
    name: str = "ATGNN Section III-B"

    def train_config(self) -> dict[str, Any]:
        """The :class:`~audiorepro.training.TrainConfig` dict of this recipe."""
        return dict(epochs=self.epochs, batch_size=self.batch_size, optimizer="adam", lr=self.lr,
                    weight_decay=self.weight_decay, betas=(self.beta1, 0.999),
                    schedule="step", warmup_iters=self.warmup_iters,
                    step_start_epoch=self.halve_after_epoch, step_every_epochs=self.halve_every,
                    step_gamma=0.5, monitor="mAP", mode="max", restore_best=True, seed=self.seed,
                    eval_every_epochs=self.eval_every_epochs, progress=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RecipeConfig":
        reject_unknown_fields(cls, d, "recipe")
        return cls(**d)


#: PSLA's own recipe (Gong et al., PSLA, 2021; its egs/audioset and egs/fsd50k run scripts and
#: traintest.py): Adam with betas (0.95, 0.999) and weight decay 5e-7, 1,000 warm-up iterations,
#: the rate halved every 5 epochs from a given epoch, per-clip mixup with probability 0.5
#: (alpha 10), masks 48 / 192, and the weights of the last 20 epochs averaged (AudioSet-balanced:
#: epochs 41-60 of 60, batch 100, lr 1e-3, no balanced sampling; FSD50K: epochs 21-40 of 40,
#: batch 24, lr 5e-4, balanced sampling). Not copied: PSLA's enhanced label files (not
#: available here; plain BCE); its averaging code's extra weight on the first averaged epoch
#: (its loop adds that epoch twice; here every averaged epoch counts once); its mixup of
#: waveforms with a partner drawn from the whole training list before the masks (here: log-mels
#: mixed after SpecAugment with an in-batch partner, this chapter's mixup); its 3,000-frame
#: FSD50K input (here the paper's 1,024 frames, as every row of Table III); its warm-up in steps
#: of 50 iterations (here linear per iteration).
PSLA_RECIPES: dict[str, dict[str, Any]] = {
    "audioset": dict(epochs=60, batch_size=100, lr=1e-3, halve_after_epoch=35, balanced=False),
    "fsd50k": dict(epochs=40, batch_size=24, lr=5e-4, halve_after_epoch=10, balanced=True),
}
_PSLA_COMMON: dict[str, Any] = dict(weight_decay=5e-7, beta1=0.95, warmup_iters=1000, halve_every=5,
                                    mixup_prob=0.5, mixup_alpha=10.0, mixup_per_sample=True,
                                    time_mask=192, freq_mask=48, label_smoothing=0.0,
                                    average_last=20)


def psla_recipe(base: RecipeConfig, dataset: str, epochs: int = 0, batch_size: int = 0,
                warmup_iters: int = 0) -> RecipeConfig:
    """PSLA's own recipe for ``dataset`` (``audioset`` or ``fsd50k``, :data:`PSLA_RECIPES`) on
    top of ``base`` (its seed, evaluation interval and mask scaling are kept). ``epochs`` /
    ``batch_size`` / ``warmup_iters`` > 0 shrink the budget (the paper-check); the averaging
    window is then the last ``min(20, epochs)`` epochs and the halving starts after epoch
    ``min(PSLA's, epochs)`` (a budget shorter than PSLA's start never halves)."""
    if dataset not in PSLA_RECIPES:
        raise ValueError(f"psla_recipe: unknown dataset {dataset!r}; choose one of {sorted(PSLA_RECIPES)}")
    for name, v in (("epochs", epochs), ("batch_size", batch_size), ("warmup_iters", warmup_iters)):
        if v < 0:
            raise ValueError(f"psla_recipe: {name} must be >= 0 (0: PSLA's own), got {v}")
    kw = {**_PSLA_COMMON, **PSLA_RECIPES[dataset], "name": f"PSLA's own ({dataset})"}
    if epochs:
        kw["epochs"] = epochs
        kw["average_last"] = min(kw["average_last"], epochs)
        kw["halve_after_epoch"] = min(kw["halve_after_epoch"], epochs)
    if batch_size:
        kw["batch_size"] = batch_size
    if warmup_iters:
        kw["warmup_iters"] = warmup_iters
    return replace(base, **kw)


#: how a run's weights were chosen unless a recipe averages them (records' ``selection``)
BEST_EPOCH = "best epoch by validation mAP"

#: file of a run folder holding the running sum of the averaged epochs' weights
WEIGHT_AVERAGE_FILE = "weight_average.pt"


class WeightAverage:
    """Average of the floating-point weights (parameters and buffers) of the last ``last`` of
    ``epochs`` epochs: PSLA's weight averaging. Called by :func:`~audiorepro.training.fit` after
    every epoch; the running sum is stored in ``run_dir`` (when given) so that a resumed run
    continues it, and a finished run finds it there."""

    def __init__(self, epochs: int, last: int, run_dir: str | Path | None = None):
        if not 1 <= last <= epochs:
            raise ValueError(f"WeightAverage: last={last} must be in 1..epochs={epochs}")
        self.first, self.epochs = epochs - last + 1, epochs
        self.path = Path(run_dir) / WEIGHT_AVERAGE_FILE if run_dir is not None else None
        self.state: dict[str, Any] = {"epochs": [], "sum": None}
        if self.path is not None and self.path.is_file():
            self.state = torch.load(self.path, map_location="cpu", weights_only=True)

    def __call__(self, trainer: Any) -> None:
        epoch = int(trainer.epoch)
        if epoch < self.first:
            return
        if epoch == self.first and self.state["epochs"]:   # a run trained again from scratch:
            self.state = {"epochs": [], "sum": None}        # the stored sum is not its own
        if self.state["epochs"] != list(range(self.first, epoch)):
            raise RuntimeError(f"weight averaging: epoch {epoch} follows averaged epochs "
                               f"{self.state['epochs']} (expected {self.first}..{epoch - 1}); the run "
                               f"was interrupted between its checkpoint and {self.path}; delete "
                               f"{self.path.parent if self.path else 'the run folder'} and train again")
        weights = getattr(trainer.model, "module", trainer.model).state_dict()
        if self.state["sum"] is None:
            self.state["sum"] = {k: v.detach().double().cpu().clone() for k, v in weights.items()
                                 if v.is_floating_point()}
        else:
            for k in self.state["sum"]:
                self.state["sum"][k] += weights[k].detach().double().cpu()
        self.state["epochs"].append(epoch)
        if self.path is not None and getattr(trainer, "is_main", True):   # one writer under DDP
            tmp = self.path.with_suffix(".tmp")
            torch.save(self.state, tmp)
            tmp.replace(self.path)

    @property
    def complete(self) -> bool:
        return self.state["epochs"] == list(range(self.first, self.epochs + 1))

    def apply(self, model: nn.Module) -> str:
        """Load the average into ``model`` (in place); returns what was averaged."""
        if not self.complete:
            raise RuntimeError(f"weight averaging: averaged epochs {self.state['epochs']}, expected "
                               f"{self.first}..{self.epochs}")
        n = len(self.state["epochs"])
        current = model.state_dict()
        model.load_state_dict({**current, **{k: (v / n).to(current[k].dtype)
                                             for k, v in self.state["sum"].items()}})
        return f"weights averaged over epochs {self.first}-{self.epochs}"


def make_batch_fn(recipe: RecipeConfig, input_size: tuple[int, int]):
    """``batch_fn(model, (x, y)) -> (loss, logits, targets)`` with SpecAugment and mixup in
    training mode (identity in eval mode). x: (B, T, F) time-major features."""
    f, t = input_size
    # Section III-B: 192 / 48 "for all the experiments" (AudioSet's 1056 frames included);
    # scaled down only for inputs smaller than the paper's 128 x 1024 (CPU-sized runs)
    small = f < 128 or t < 1024
    fm, tm = (scaled_mask_params(min(f, 128), min(t, 1024),
                                 (128, 1024, recipe.freq_mask, recipe.time_mask))
              if recipe.scale_masks and small else (recipe.freq_mask, recipe.time_mask))
    spec = SpecAugment(fm, tm)
    loss_fn = LabelNoiseRobustBCE(recipe.label_smoothing)
    gen = torch.Generator().manual_seed(recipe.seed + 12345)

    def batch_fn(model: nn.Module, batch: Any):
        x, y = batch
        if model.training:
            spec.train()
            x = spec(x.transpose(1, 2)).transpose(1, 2)        # masks on (B, F, T)
            if recipe.mixup_prob > 0 and recipe.mixup_per_sample:
                B = x.shape[0]
                mix = (torch.rand(B, generator=gen) < recipe.mixup_prob).float()
                lam = sample_mixup_lambda(recipe.mixup_alpha, (B,), gen).float()
                lam = 1 - mix * (1 - lam)                  # 1 for the clips left unmixed
                perm = torch.randperm(B, generator=gen).to(x.device)
                lx = lam.to(x.device).view(B, *([1] * (x.dim() - 1)))
                ly = lam.to(y.device).view(B, *([1] * (y.dim() - 1)))
                x = lx * x + (1 - lx) * x[perm]
                y = ly * y + (1 - ly) * y[perm.to(y.device)]
            elif recipe.mixup_prob > 0 and float(torch.rand((), generator=gen)) < recipe.mixup_prob:
                lam = float(sample_mixup_lambda(recipe.mixup_alpha, (), gen))
                perm = torch.randperm(x.shape[0], generator=gen).to(x.device)
                x = lam * x + (1 - lam) * x[perm]
                y = lam * y + (1 - lam) * y[perm]
        out = model(x)
        return loss_fn(out, y), out, y
    batch_fn.masks = (fm, tm)  # type: ignore[attr-defined]
    return batch_fn


class WaveToLogits(nn.Module):
    """Wraps a shared backbone returning a dict so it maps (B, T, F) features -> logits (B, S).

    ``add_channel=True`` (PANNs CNN14: log-mel input (B, 1, T, F)) inserts the channel axis;
    AST takes (B, T, F) as it is.
    """

    def __init__(self, backbone: nn.Module, add_channel: bool = True) -> None:
        super().__init__()
        self.backbone = backbone
        self.add_channel = add_channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.backbone(x.unsqueeze(1) if self.add_channel else x)
        return out["logits"] if isinstance(out, Mapping) else out


def build_model(name: str, num_classes: int, input_size: tuple[int, int], seed: int = 0,
                **overrides: Any) -> nn.Module:
    """A model of the chapter by name, randomly initialised with ``seed``.

    * an ATGNN preset (``pyr-tiny``, ``iso-tiny``, ``pyr-s`` ...; ``use_mlg=False`` for the -MLG
      rows, ``k=...`` etc. passed to :func:`~audiorepro.papers.atgnn.model.build_atgnn`);
    * ``panns_cnn14_16k`` - the shared PANNs CNN14 backbone (``scale=`` width multiplier,
      default 0.25), its ``bn0`` sized to the F mel bins of ``input_size`` and its own
      SpecAugment off (the recipe's masks apply to every row alike);
    * ``ast_base384_f10_t10_527`` - the shared AST backbone (``scale=`` a preset such as ``cpu``
      (192 wide, 4 blocks) or a width multiplier; default ``cpu``), its positional embedding
      built for ``input_size`` = (F, T);
    * ``psla`` - PSLA's EfficientNet-B2 with attention pooling
      (:class:`~audiorepro.papers.atgnn.model.PSLA`; ``scale=`` ``full`` or ``cpu``, default ``cpu``).
    Built randomly initialised; :func:`fit_row` loads released weights (AST, PANNs 32 kHz, PSLA's
    ImageNet EfficientNet-B2, ImageNet ViG) when a checkpoint is given.
    """
    torch.manual_seed(seed)
    if name == "psla":
        return PSLA(num_classes, scale=overrides.pop("scale", "cpu"), **overrides)
    if name.startswith("panns"):
        scale = overrides.pop("scale", 0.25)
        overrides = {"mel_bins": input_size[0], "spec_augment": False, **overrides}
        return WaveToLogits(build_backbone(name, scale=scale, num_classes=num_classes, **overrides))
    if name.startswith("ast"):
        scale = overrides.pop("scale", "cpu")
        f, t = input_size
        bb = build_backbone(name, scale=scale, num_classes=num_classes, input_fdim=f,
                            input_tdim=t, **overrides)
        return WaveToLogits(bb, add_channel=False)
    return build_atgnn(name, num_classes=num_classes, input_size=input_size, **overrides)


def own_frontend_data(names: Sequence[str], rows: Mapping[str, tuple[str, Mapping[str, Any], str]],
                      n_clips: int = 200, seed: int = 0, frames: int = 128, time_mode: str = "pool",
                      clip_seconds: float | None = 10.0, **data_args: Any) -> dict[str, TaggingData]:
    """Architecture -> its :class:`TaggingData` for every row of ``names`` fed its own front end
    (:data:`OWN_FRONTENDS`; PANNs CNN14 32 kHz): the same clips and splits as the chapter's data
    (``n_clips``, ``seed``, ``clip_table``, ``data_root``, ``max_train``, ``max_valid``, ``device``
    as :func:`~audiorepro.papers.atgnn.data.tagging_data`), not standardised. Time axis:
    ``time_mode="crop_pad"`` keeps the front end's whole ``clip_seconds`` (PANNs 32 kHz: 1001
    frames for 10 s, as PANNs reads a clip); ``"pool"`` pools to ``frames`` like the chapter's
    CPU-sized input. Empty when no row needs one."""
    out: dict[str, TaggingData] = {}
    for n in names:
        arch = rows[n][0]
        if arch not in OWN_FRONTENDS or arch in out:
            continue
        fe_name = OWN_FRONTENDS[arch]
        n_frames = frames
        if time_mode == "crop_pad":
            fe = make_frontend(fe_name, time_major=False)
            n_frames = int(fe(torch.zeros(1, int(round((clip_seconds or 10.0) * fe.sample_rate)))).shape[-1])
        out[arch] = tagging_data(n_clips, seed=seed, frontend=fe_name, frames=n_frames,
                                 time_mode=time_mode, clip_seconds=clip_seconds,
                                 standardise_features=False, **data_args)
    return out


def train_tagger(model: nn.Module, data: TaggingData, recipe: RecipeConfig | Mapping[str, Any],
                 run_dir: str | Path | None = None, device: str = "auto", amp: Any = False):
    """Train with the Section III-B recipe on ``data`` (validation mAP selects the best epoch).

    ``device``: ``"auto"`` (CUDA, else MPS, else CPU; :func:`~audiorepro.training.pick_device`)
    or a device name; ``amp``: autocast as in :class:`~audiorepro.training.TrainConfig`.
    Returns the :class:`~audiorepro.training.FitResult` (its model on ``device``; with
    ``recipe.average_last`` it holds the average of the last epochs' weights, PSLA's rule,
    instead of the best validation epoch's); a finished ``run_dir`` is reloaded.
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
    average = (WeightAverage(recipe.epochs, recipe.average_last, run_dir)
               if recipe.average_last else None)
    res = fit(model, train_loader, valid_loader, config={**recipe.train_config(), "amp": amp},
              batch_fn=bfn, evaluate_fn=make_evaluator(bfn, tagging_metrics, amp=amp),
              run_dir=run_dir, device=pick_device(device),
              callbacks=[average] if average is not None else ())
    if average is not None:     # a finished run's sum was read from run_dir when it was built
        average.apply(res.model)
    return res


def predict_tagging(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64,
                    device: str = "auto", amp: Any = False) -> tuple[np.ndarray, np.ndarray]:
    """Scores (N, S) and targets (N, S) of ``model`` on x (N, T, F), y (N, S), on the host; the
    model is moved to ``device`` (``"auto"``: see :func:`~audiorepro.training.pick_device`)."""
    dev = pick_device(device)
    scores, targets = predict(model.to(dev), DataLoader(TensorDataset(x, y), batch_size=batch_size),
                              device=dev, amp=amp)
    return np.asarray(torch.as_tensor(scores).float().cpu()), np.asarray(torch.as_tensor(targets).cpu())


def evaluate_tagging(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64,
                     device: str = "auto", amp: Any = False) -> dict[str, float]:
    """``tagging_metrics`` (mAP, AUC, d') of ``model`` on x (N, T, F), y (N, S) (see
    :func:`predict_tagging`)."""
    scores, targets = predict_tagging(model, x, y, batch_size, device, amp)
    return {k: float(v) for k, v in tagging_metrics(targets, scores).items()
            if isinstance(v, (int, float, np.floating))}


def item_ids(data: TaggingData) -> list[str]:
    """Ids of the test clips (``data.clip_ids_test``; ``test0``, ``test1``, ... when the data
    carries none), which pair the per-item outputs of two rows clip by clip."""
    n = len(data.y_test)
    ids = list(data.clip_ids_test or [])
    if ids and len(ids) != n:
        raise ValueError(f"TaggingData: {len(ids)} clip_ids_test for {n} test clips")
    return ids or [f"test{i}" for i in range(n)]


@torch.no_grad()
def label_attention(model: ATGNN, x: torch.Tensor, stage: int = 0, block: int = 0,
                    device: str = "auto") -> torch.Tensor:
    """Which patch nodes each label node connects to in one PLG block.

    x: (B, T, F) -> (B, S, H, W) neighbour counts on that stage's patch grid (each label has
    ``k_plg`` neighbours), for ``mlg_stages[stage][block]``. The model runs on ``device`` (it is
    moved there); the counts are returned on the host for plotting.
    """
    dev = pick_device(device)
    model.to(dev)
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
        model(x.to(dev))
    finally:
        h.remove()
        plg.keep_edges = False
        model.train(was)
    H, W = grids[0]
    idx = plg.last_edges                                       # (B, S, k)
    B, S, _ = idx.shape
    counts = torch.zeros(B, S, H * W, device=idx.device)
    counts.scatter_add_(2, idx, torch.ones(idx.shape, device=idx.device))
    return counts.reshape(B, S, H, W).cpu()


# ================================================================================== rows and seeds
def table_rows(panns_scale: float = 0.125, ast_scale: str | float = "cpu", drop_path: float = 0.0,
               plg_direction: str = "x_minus_l", psla_scale: str = "cpu"
               ) -> dict[str, tuple[str, dict[str, Any], str]]:
    """Rows of Tables II/III: name -> (architecture, build overrides, paper row).

    CPU-sized rows: ``pyr-tiny`` (+ ``pyr-tiny (-MLG)``) stands for the paper's pyr-s,
    ``iso-tiny`` for iso (nearly complete, undilated graphs at 64 x 64); in the paper's graph
    regime (sparse, dilated k-NN graphs at a 64 x 128 input, the book profile)
    ``pyr-tiny-dilated``, ``pyr-med-tiny-dilated`` and ``iso-tiny-dilated`` stand for pyr-s,
    pyr-med and iso, each with and without MLG where the paper has both. Paper-size rows (paper profile): ``pyr-s``, ``pyr-med``, ``iso`` with
    and without MLG. Baselines are the shared backbones: ``panns`` (PANNs CNN14 16 kHz at width
    ``panns_scale``, fed the chapter's features; 1.0 = the paper's 81 M model), ``panns-32k``
    (PANNs CNN14 32 kHz fed its own 64-bin log-mel, :data:`OWN_FRONTENDS`: the paper's PANNs
    row, which can start from the released ``Cnn14_mAP=0.431.pth``) and ``ast`` (AST at ``ast_scale``; ``base`` =
    the paper's 88.7 M model); ``psla`` is PSLA (EfficientNet-B2 + attention pooling at
    ``psla_scale``; ``full`` = the paper's 13.6 M model). ``drop_path`` (the reference code: 0.1) and ``plg_direction``
    (the reference code: ``l_minus_x``) apply to every ATGNN row; they enter a row's overrides
    only when they differ from the defaults, so default runs stay shared between notebooks.
    """
    extra: dict[str, Any] = {}
    if drop_path != ATGNNConfig.drop_path:
        extra["drop_path"] = float(drop_path)
    if plg_direction != ATGNNConfig.plg_direction:
        extra["plg_direction"] = plg_direction
    plain = _without_mlg(extra)
    rows: dict[str, tuple[str, dict[str, Any], str]] = {
        "pyr-tiny": ("pyr-tiny", {**extra}, "ATGNN-pyr-s"),
        "pyr-tiny (-MLG)": ("pyr-tiny", {"use_mlg": False, **plain}, "ATGNN-pyr-s (-MLG)"),
        "iso-tiny": ("iso-tiny", {**extra}, "ATGNN-iso"),
        "pyr-tiny-dilated": ("pyr-tiny-dilated", {**extra}, "ATGNN-pyr-s"),
        "pyr-tiny-dilated (-MLG)": ("pyr-tiny-dilated", {"use_mlg": False, **plain}, "ATGNN-pyr-s (-MLG)"),
        "pyr-med-tiny-dilated": ("pyr-med-tiny-dilated", {**extra}, "ATGNN-pyr-med"),
        "pyr-med-tiny-dilated (-MLG)": ("pyr-med-tiny-dilated", {"use_mlg": False, **plain},
                                        "ATGNN-pyr-med (-MLG)"),
        "iso-tiny-dilated": ("iso-tiny-dilated", {**extra}, "ATGNN-iso")}
    for arch in ("pyr-s", "pyr-med", "iso"):
        rows[arch] = (arch, {**extra}, f"ATGNN-{arch}")
        rows[f"{arch} (-MLG)"] = (arch, {"use_mlg": False, **plain}, f"ATGNN-{arch} (-MLG)")
    rows["panns"] = ("panns_cnn14_16k", {"scale": panns_scale}, "PANNs")
    rows["panns-32k"] = ("panns_cnn14_32k", {"scale": panns_scale}, "PANNs")
    rows["ast"] = ("ast_base384_f10_t10_527", {"scale": ast_scale}, "AST")
    rows["psla"] = ("psla", {"scale": psla_scale}, "PSLA")
    return rows


def _without_mlg(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The build overrides of a row without MLG blocks: ``overrides`` less ``plg_direction``
    (PLG exists only in the MLG blocks, so it must not key a -MLG run)."""
    return {n: v for n, v in overrides.items() if n != "plg_direction"}


def _is_backbone(arch: str) -> bool:
    return arch.startswith(BACKBONE_PREFIXES)


def _run_code(arch: str = "") -> tuple[str, ...]:
    """Modules a run of ``arch`` executes: this package and the core training code, plus the
    shared backbones for the PANNs / AST rows."""
    return RUN_CODE + (("audiorepro.backbones",) if _is_backbone(arch) else ())


def code_digest(arch: str = "") -> str:
    """Digest of the source a training run of ``arch`` depends on (this paper's package, the
    training loop, augmentation, front ends, metrics, standardiser; the shared backbones for the
    baseline rows): the ``code`` part of every run's cache key, so a changed model never reloads
    a run trained by the old code."""
    return caching.code_digest(_run_code(arch))


def run_dir_for(arch: str, overrides: Mapping[str, Any], data: TaggingData,
                recipe: RecipeConfig, amp: Any = False, init: str = "") -> Path:
    """Cache folder of one training run, named by :func:`audiorepro.caching.run_key` of
    everything that defines it: (architecture, overrides, recipe, amp) + the data fingerprint +
    the code digest (two notebooks asking for the same run share it; a changed recipe, data set
    or source never reuses a stale one). ``init``: the digest of the checkpoint the model was
    initialised from (:func:`checkpoint_digest`), empty for a random initialisation. The device
    is not part of the key."""
    if not data.fingerprint:
        raise ValueError("run_dir_for: TaggingData.fingerprint is empty; build the data with "
                         "tagging_data() or set a fingerprint that identifies it")
    params = {"arch": arch, "overrides": dict(overrides), "recipe": asdict(recipe), "amp": amp}
    if init:                      # the digest of the initialising checkpoint (checkpoint_digest)
        params["init"] = init
    key = caching.run_key(params, data=data.fingerprint, code=_run_code(arch))
    return paths.cache_dir("runs", CHAPTER, f"{arch}_s{recipe.seed}_{key}")


def checkpoint_digest(path: str | Path) -> str:
    """SHA-256 (first 16 hex digits) of a checkpoint file's bytes: the identity of an
    initialisation in the run-cache key. Raises FileNotFoundError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {p} does not exist (parameter checkpoint)")
    h = hashlib.sha256()
    with p.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


#: classes of the released AudioSet checkpoints (AST's and PANNs'; their classifier is replaced
#: for other tasks)
AUDIOSET_CLASSES = 527


def fit_row(data: TaggingData, recipe: RecipeConfig, seed: int,
            spec: tuple[str, Mapping[str, Any], str], device: str = "auto", amp: Any = False,
            checkpoint: str | Path | None = None) -> tuple[Any, str]:
    """Build the row ``spec`` = (architecture, overrides, paper row) for ``seed``, initialise it
    from ``checkpoint`` (see :func:`train_row`) and train it with ``recipe`` (its seed replaced by
    ``seed``) in its run folder, or reload the finished run. Returns the
    :class:`~audiorepro.training.FitResult` and the initialisation text. Reads no test data."""
    arch, kw, _ = spec
    rec = replace(recipe, seed=seed)
    if checkpoint and arch.startswith("panns") and arch not in OWN_FRONTENDS:
        raise ValueError(f"checkpoint {checkpoint}: the row of {arch} is fed the chapter's features, "
                         "which no released PANNs file reads; the row panns-32k (PANNs CNN14 32 kHz "
                         "on its own 64-bin log-mel) starts from Cnn14_mAP=0.431.pth")
    if arch in OWN_FRONTENDS and data.frontend and data.frontend != OWN_FRONTENDS[arch]:
        raise ValueError(f"row of {arch} needs its own front end {OWN_FRONTENDS[arch]!r}, got data of "
                         f"{data.frontend!r}: pass row_data=atgnn.own_frontend_data(...)")
    ast_init = bool(checkpoint) and arch.startswith("ast")
    panns_init = bool(checkpoint) and arch in OWN_FRONTENDS
    init, init_text = "", "random"
    if checkpoint:
        checkpoint = paths.project_path(checkpoint)     # relative: from the project folder
        init = checkpoint_digest(checkpoint)
    if panns_init:                                      # PANNs' AudioSet release, then this task
        if float(kw.get("scale", 1.0)) != 1.0:
            raise ValueError(f"checkpoint {checkpoint}: the released PANNs file fits only the "
                             f"full-size CNN14; set panns_scale to 1.0 (got {kw.get('scale')})")
        torch.manual_seed(seed)                         # the new classifier's initialisation
        model = WaveToLogits(build_backbone(arch, scale=1.0, num_classes=data.num_classes,
                                            checkpoint=checkpoint, spec_augment=False))
        init_text = (f"AudioSet PANNs CNN14 weights ({Path(checkpoint).name}; trained on the full "
                     f"AudioSet{'' if data.num_classes == AUDIOSET_CLASSES else '; new classifier'})")
    else:
        model = build_model(arch, AUDIOSET_CLASSES if ast_init else data.num_classes,
                            data.input_size, seed=seed, **dict(kw))
    if checkpoint and not panns_init:
        if ast_init:                                    # AST's AudioSet release, then this task
            model.backbone.load_checkpoint(checkpoint)
            if data.num_classes != AUDIOSET_CLASSES:
                torch.manual_seed(seed)
                model.backbone.reset_classifier(data.num_classes)
            init_text = (f"AudioSet AST weights ({Path(checkpoint).name}; trained on the full "
                         f"AudioSet{'' if data.num_classes == AUDIOSET_CLASSES else '; new classifier'})")
        elif arch == "psla":                            # PSLA: ImageNet EfficientNet-B2 features
            skipped = model.load_imagenet(checkpoint)
            init_text = (f"ImageNet EfficientNet-B2 features ({Path(checkpoint).name}; "
                         f"{len(skipped)} keys left out)")
        else:                                           # Section III-B: PGN from ImageNet ViG
            init_report = load_vig_weights(model, checkpoint)
            if not init_report.loaded:
                raise ValueError(f"checkpoint {checkpoint}: no tensor fits {arch} "
                                 f"({init_report.summary()}); use a ViG checkpoint of the same size")
            init_text = init_report.summary()
    res = train_tagger(model, data, rec, run_dir=run_dir_for(arch, kw, data, rec, amp, init),
                       device=device, amp=amp)
    return res, init_text


def train_row(name: str, data: TaggingData, recipe: RecipeConfig, seed: int,
              spec: tuple[str, Mapping[str, Any], str] | None = None, device: str = "auto",
              amp: Any = False, checkpoint: str | Path | None = None) -> dict[str, Any]:
    """Train (or reload) one row for one seed on ``device`` and evaluate it on the test split.

    ``spec`` = (architecture, overrides, paper row), default ``table_rows()[name]``; ``seed``
    sets the initialisation, the sampler and the augmentation. Returns a dict with ``model``,
    ``paper row``, ``seed``, ``test mAP``, ``test AUC``, ``params`` (trainable), ``train s``
    ``result`` (the :class:`~audiorepro.training.FitResult`) and ``items`` (the test clips'
    scores and targets, :func:`audiorepro.results.tagging_items`). The best epoch is chosen on
    validation mAP; the test split is read once, for that epoch. ``paper row`` is the row the
    run is recorded under (:func:`record_row`); with ``recipe.average_last`` (PSLA's own recipe)
    the weights are the average of the last epochs instead, and ``weights`` / ``recipe`` /
    ``epochs`` in the result say which. ``checkpoint``: an ImageNet ViG checkpoint (the
    official file, e.g. ``pvig_s_82.1.pth.tar``) that initialises the PGN of an ATGNN row as in
    Section III-B (:func:`~audiorepro.papers.atgnn.model.load_vig_weights`; part of the cache
    key); for the PSLA row torchvision's ImageNet EfficientNet-B2 file (PSLA's initialisation,
    :meth:`~audiorepro.papers.atgnn.model.PSLA.load_imagenet`); for the AST row AST's released
    AudioSet file (``audioset_10_10_0.4593.pth``, loaded strictly into an AST of the row's size,
    its positional embedding adapted to the input and its classifier replaced when the task has
    other classes; it was trained on the full AudioSet, so as an initialisation it has seen more
    than the paper's row); for the ``panns-32k`` row PANNs' released ``Cnn14_mAP=0.431.pth``
    (full size only, on its own front end: :func:`own_frontend_data`; its classifier replaced
    when the task has other classes); the ``panns`` row, fed the chapter's features, takes none
    (ValueError). ``init`` in the result says what was loaded.
    """
    arch, kw, paper_row = spec if spec is not None else table_rows()[name]
    rec = replace(recipe, seed=seed)
    res, init_text = fit_row(data, recipe, seed, (arch, kw, paper_row), device, amp, checkpoint)
    scores, targets = predict_tagging(res.model, data.x_test, data.y_test, device=device, amp=amp)
    test = held_out_metrics(targets, scores)
    items = results.tagging_items(item_ids(data), scores, targets)
    return {"model": name, "paper row": record_row(paper_row, arch, kw, data), "seed": seed,
            "test mAP": test["mAP"], "test AUC": test["AUC"],
            "test accuracy": test.get("accuracy", float("nan")),
            "params": count_parameters(res.model)["trainable"], "train s": res.duration_s,
            "result": res, "items": items,
            "init": init_text,
            "weights": (f"weights averaged over the last {rec.average_last} epochs" if rec.average_last
                        else BEST_EPOCH),
            "recipe": rec.name,
            "epochs": rec.epochs,
            "input": f"{data.frontend or 'features'}, {data.input_size[1]} frames"}


def init_label(init: str) -> str:
    """Short label of a run's initialisation (the ``init`` text of :func:`train_row`): ``random
    init``, ``ImageNet EfficientNet-B2 init`` (PSLA), ``AudioSet AST init`` (AST's release),
    ``AudioSet PANNs init`` (PANNs' release) or ``ImageNet ViG init`` (a PGN)."""
    if init == "random":
        return "random init"
    if init.startswith("AudioSet AST"):
        return "AudioSet AST init"
    if init.startswith("AudioSet PANNs"):
        return "AudioSet PANNs init"
    return "ImageNet EfficientNet-B2 init" if init.startswith("ImageNet EfficientNet") else "ImageNet ViG init"


def held_out_metrics(targets: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """mAP and AUC of (N, C) ``scores`` against (N, C) 0/1 ``targets``, plus top-1 ``accuracy``
    when the task is single-label (every clip exactly one class: a user's classification table),
    where accuracy is the metric that fits."""
    out = {k: float(v) for k, v in tagging_metrics(targets, scores).items() if k in ("mAP", "AUC")}
    if len(targets) and bool((np.asarray(targets).sum(axis=1) == 1).all()):
        out["accuracy"] = accuracy(targets, scores)
    return out


def train_rows(names: Sequence[str], data: TaggingData, recipe: RecipeConfig, seeds: Sequence[int],
               rows: Mapping[str, tuple[str, Mapping[str, Any], str]] | None = None,
               device: str = "auto", amp: Any = False,
               checkpoints: Mapping[str, str | Path] | None = None,
               recipes: Mapping[str, RecipeConfig] | None = None,
               one_seed: Sequence[str] = (),
               row_data: Mapping[str, TaggingData] | None = None) -> pd.DataFrame:
    """:func:`train_row` for every row of ``names`` (specs from ``rows``, default
    :func:`table_rows`) and every seed, and for every row of ``one_seed`` with the first seed
    only (rows no claim compares): one line per (row, seed). ``recipes``: row name -> its own
    recipe (e.g. ``{"psla": psla_recipe(recipe, "audioset")}``), other rows train with
    ``recipe``. ``checkpoints``: architecture
    -> the file initialising its rows (:func:`train_row`: ImageNet ViG for a PGN, e.g.
    ``{"pyr-s": "pvig_s_82.1.pth.tar"}``; ImageNet EfficientNet-B2 for ``psla``; AST's AudioSet
    release for ``ast_base384_f10_t10_527``; PANNs' AudioSet release for ``panns_cnn14_32k``);
    other rows start random. ``row_data``: architecture -> the data of rows fed their own front
    end (:func:`own_frontend_data`); they must hold the same test clips in the same order."""
    rows = rows if rows is not None else table_rows()
    if not seeds:
        raise ValueError("train_rows: parameter seeds is empty")
    names, one_seed = list(dict.fromkeys(names)), list(dict.fromkeys(one_seed))
    plan = [(n, s) for n in names for s in seeds] + [(n, seeds[0]) for n in one_seed if n not in names]
    names = list(dict.fromkeys([*names, *one_seed]))
    unknown = [n for n in names if n not in rows]
    if unknown:
        raise KeyError(f"train_rows: unknown row(s) {unknown} in parameter models; known: {sorted(rows)}")
    checkpoints = dict(checkpoints or {})
    archs = {rows[n][0] for n in names}
    bad = [a for a in checkpoints if a not in archs]
    if bad:
        raise KeyError(f"train_rows: parameter checkpoints names architecture(s) {bad} that no "
                       f"row of models uses; used: {sorted(archs)}")
    recipes = dict(recipes or {})
    extra = [n for n in recipes if n not in names]
    if extra:
        raise KeyError(f"train_rows: recipes for row(s) {extra} that are not in models {list(names)}")
    by_row = {n: _row_data(n, rows[n][0], data, row_data) for n in names}
    return pd.DataFrame([train_row(n, by_row[n], recipes.get(n, recipe), s, spec=rows[n], device=device,
                                   amp=amp, checkpoint=checkpoints.get(rows[n][0]) or None)
                         for n, s in plan])


def _row_data(name: str, arch: str, data: TaggingData,
              row_data: Mapping[str, TaggingData] | None) -> TaggingData:
    """The data row ``name`` trains on: ``row_data[arch]`` for a row fed its own front end
    (:data:`OWN_FRONTENDS`; raises when missing), else ``data``. Its test clips must be
    ``data``'s, in the same order (the claims pair the rows' test items)."""
    if arch not in OWN_FRONTENDS:
        return data
    own = (row_data or {}).get(arch)
    if own is None:
        raise ValueError(f"row {name!r} is fed its own front end {OWN_FRONTENDS[arch]!r}: pass "
                         f"row_data=atgnn.own_frontend_data(...)")
    if item_ids(own) != item_ids(data):
        raise ValueError(f"row {name!r}: its data ({own.description}) holds other test clips than "
                         f"the chapter's ({data.description})")
    return own


#: build overrides and recipe fields that the ablation pages change; :func:`select_lr` chooses
#: the learning rate with the book's defaults for them, so an ablation keeps the main page's rate
ABLATION_OVERRIDES = ("drop_path", "plg_direction")


def main_page_setup(recipe: RecipeConfig, overrides: Mapping[str, Any] | None = None
                    ) -> tuple[RecipeConfig, dict[str, Any]]:
    """``(recipe, overrides)`` with the book's defaults for what the ablation pages change:
    per-batch mixup, and none of :data:`ABLATION_OVERRIDES` (drop path 0, PLG ``x_minus_l``).
    One place for the rule :func:`select_lr` and :func:`main_sweep_runs` both follow."""
    kept = {k: v for k, v in (overrides or {}).items() if k not in ABLATION_OVERRIDES}
    return replace(recipe, mixup_per_sample=False), kept


@dataclass
class LrChoice:
    """What :func:`select_lr` chose. ``table``: one line per (group, learning rate) with the
    validation mAP and best epoch of the group's representative row and ``chosen``;
    ``lr``: row -> chosen learning rate; ``grid``: the rates tried."""

    table: pd.DataFrame
    lr: dict[str, float]
    grid: tuple[float, ...]

    def recipes(self, recipe: RecipeConfig) -> dict[str, RecipeConfig]:
        """Row -> ``recipe`` with the row's chosen learning rate."""
        return {row: replace(recipe, lr=lr) for row, lr in self.lr.items()}

    def text(self) -> str:
        """One line for a record's scale: the rates chosen and how."""
        chosen = self.table[self.table["chosen"]]
        parts = [f"{r.representative} {r.lr:g}" for r in chosen.itertuples()]
        return (f"lr chosen on validation mAP (seed 0) from {[float(f'{v:g}') for v in self.grid]}: "
                + ", ".join(parts))


def select_lr(names: Sequence[str], data: TaggingData, recipe: RecipeConfig,
              lr_grid: Sequence[float], rows: Mapping[str, tuple[str, Mapping[str, Any], str]] | None = None,
              seed: int = 0, device: str = "auto", amp: Any = False,
              checkpoints: Mapping[str, str | Path] | None = None,
              row_data: Mapping[str, TaggingData] | None = None) -> LrChoice:
    """Choose a learning rate per row group on validation mAP; the test split is not read.

    Groups: all ATGNN rows of ``names`` share one rate (the paper trains every ATGNN variant with
    one recipe), chosen on the group's representative - its first row without MLG (Table I's
    model), else its first row; each baseline row (PANNs, AST, PSLA, trained here with the
    chapter's recipe, where the paper took their own papers' recipes) is its own group. The
    representative trains with ``seed`` once per rate of ``lr_grid`` (runs cached as every run:
    the chosen rate's run is the row's seed-``seed`` run), with the book's defaults for what
    the ablation pages change (:data:`ABLATION_OVERRIDES`, per-batch mixup), so an ablation page
    keeps the main page's rate. ``checkpoints`` initialise the representatives as in
    :func:`train_rows`, ``row_data`` feeds rows their own front end as there. The highest
    best-epoch validation mAP wins; a tie goes to the smaller rate."""
    if not lr_grid:
        raise ValueError("select_lr: parameter lr_grid is empty")
    if any(float(v) <= 0 for v in lr_grid):
        raise ValueError(f"select_lr: parameter lr_grid={list(lr_grid)} must hold positive rates")
    rows = rows if rows is not None else table_rows()
    unknown = [n for n in names if n not in rows]
    if unknown:
        raise KeyError(f"select_lr: unknown row(s) {unknown}; known: {sorted(rows)}")
    atgnn_rows = [n for n in names if rows[n][0] in ATGNN_ARCHS]
    groups: list[tuple[str, list[str]]] = []
    if atgnn_rows:
        rep = next((n for n in atgnn_rows if rows[n][1].get("use_mlg") is False), atgnn_rows[0])
        groups.append((rep, atgnn_rows))
    groups += [(n, [n]) for n in names if n not in atgnn_rows]
    grid = tuple(sorted(float(v) for v in lr_grid))
    lines, chosen_lr = [], {}
    for rep, members in groups:
        arch, kw, paper_row = rows[rep]
        base, kw = main_page_setup(recipe, kw)
        scores = []
        for lr in grid:
            res, _ = fit_row(_row_data(rep, arch, data, row_data), replace(base, lr=lr), seed,
                             (arch, kw, paper_row), device, amp,
                             (checkpoints or {}).get(arch) or None)
            scores.append((float(res.best_metrics.get("mAP", float("nan"))),
                           int(res.best_metrics.get("epoch", -1))))
        best = max(range(len(grid)),            # NaN (no validation mAP) never wins
                   key=lambda i: (scores[i][0] if np.isfinite(scores[i][0]) else -np.inf, -i))
        for i, lr in enumerate(grid):
            lines.append({"representative": rep, "rows": ", ".join(members), "lr": lr,
                          "valid mAP": scores[i][0], "best epoch": scores[i][1],
                          "chosen": i == best})
        chosen_lr.update({m: grid[best] for m in members})
    return LrChoice(pd.DataFrame(lines), chosen_lr, grid)


def table_summary(runs: pd.DataFrame, rows: Mapping[str, tuple[str, Mapping[str, Any], str]],
                  input_size: tuple[int, int], chance: float | None = None) -> pd.DataFrame:
    """:func:`seed_summary` of ``runs`` plus ``params (M)`` (trainable), ``GMACs`` (one forward
    at ``input_size`` = (F, T), ATGNN rows only; counted on the meta device) and
    ``train s (sum)`` over seeds; ``chance``: see :func:`seed_summary`."""
    summary = seed_summary(runs, chance=chance)
    first = {m: runs[runs.model == m].iloc[0] for m in summary.model}
    summary["params (M)"] = [first[m]["params"] / 1e6 for m in summary.model]
    summary["GMACs"] = [float("nan") if rows[m][0] not in ATGNN_ARCHS
                        else count_atgnn(first[m]["result"].model, input_size)["gmacs"]
                        for m in summary.model]
    summary["train s (sum)"] = [runs[runs.model == m]["train s"].sum() for m in summary.model]
    return summary


#: the paper tables the rows of :func:`table_rows` stand for -> the official adapter's dataset
TABLE_DATASETS = {"table2": "AudioSet", "table3": "FSD50K"}


def check_table(table: str, data: TaggingData | None = None) -> str:
    """Validate the ``table`` parameter before anything trains: a table of ``paper.yml`` whose
    rows :func:`table_rows` stands for (``table2``: AudioSet-balanced, ``table3``: FSD50K);
    with ``data``, also that a clip table made by an official adapter is that table's data set
    (an FSD50K table recorded as ``table2`` would put FSD50K runs in the AudioSet rows).
    Returns ``table``; raises ValueError naming the parameter and the allowed values."""
    known = set(results.paper_numbers(CHAPTER)["table"])
    allowed = [t for t in TABLE_DATASETS if t in known]
    if table not in allowed:
        raise ValueError(f"parameter table={table!r}: the rows of this notebook stand for "
                         + ", ".join(f"{t} ({TABLE_DATASETS[t]})" for t in allowed)
                         + f" of the {CHAPTER} paper file; allowed values: {allowed}")
    if data is not None and data.official_dataset and data.official_dataset != TABLE_DATASETS[table]:
        right = [t for t, d in TABLE_DATASETS.items() if d == data.official_dataset]
        raise ValueError(f"parameter table={table!r} is the paper's {TABLE_DATASETS[table]} table, "
                         f"but the clip table ({data.description.split(',')[0]}) was made by the "
                         f"{data.official_dataset} adapter; allowed value: {right}")
    return table


def record_runs(runs: pd.DataFrame, rows: Mapping[str, tuple[str, Mapping[str, Any], str]],
                table: str, data: TaggingData, *, run_group: str, frames: int, epochs: int,
                scale: str, profile: str) -> list[Path]:
    """One result record per (row, seed) of :func:`train_rows`' ``runs`` in paper table
    ``table``: the test mAP and AUC with the test clips' scores and targets as per-item outputs,
    ``params`` holding ``seed`` and ``run_group`` (one :func:`audiorepro.results.new_run_group`
    per notebook run, shared by every row it compares)."""
    out = []
    for r in runs.to_dict("records"):
        arch, kw, _ = rows[r["model"]]
        own = f"; its own input: {r['input']}" if arch in OWN_FRONTENDS and r.get("input") else ""
        out.append(results.record(
            CHAPTER, table, {"mAP": r["test mAP"], "AUC": r["test AUC"],
                             **({"accuracy": r["test accuracy"]}
                                if np.isfinite(r.get("test accuracy", np.nan)) else {})},
            params={"paper_row": r["paper row"], "arch": arch, **kw, "seed": int(r["seed"]),
                    "run_group": run_group, "frames": frames, "epochs": r.get("epochs", epochs),
                    "recipe": r.get("recipe", RecipeConfig.name),
                    "selection": r.get("weights", BEST_EPOCH),
                    "init": r.get("init", "random"),
                    **({"input": r["input"]} if own else {})},
            dataset=data.description, scale=scale, profile=profile,
            model=f"{r['model']} ({r['params'] / 1e6:.2f} M, {init_label(r.get('init', 'random'))}{own})",
            duration_s=r["train s"], items=r["items"]))
    return out


def seed_summary(runs: pd.DataFrame, metric: str = "test mAP",
                 chance: float | None = None) -> pd.DataFrame:
    """Mean and sample std (ddof=1; NaN with one seed) of ``metric`` over seeds, one row per
    model (first-seen order), with the per-seed values and ``mean +- std`` as text; with
    ``chance`` (the metric of random scores) also ``mean / chance``. For display: the records
    and verdicts use every seed (:func:`record_runs`)."""
    rows = []
    for name, g in runs.groupby("model", sort=False):
        v = g[metric].to_numpy(float)
        std = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
        row = {"model": name, "paper row": g["paper row"].iloc[0], "seeds": len(v),
               "mean": float(v.mean()), "std": std,
               f"{metric} (mean +- std)": (f"{v.mean():.3f} +- {std:.3f}" if len(v) > 1
                                           else f"{v.mean():.3f} (1 seed)"),
               "per seed": ", ".join(f"{x:.3f}" for x in v)}
        if chance is not None:
            row["mean / chance"] = float(v.mean()) / chance
        rows.append(row)
    return pd.DataFrame(rows)


# ================================================================================== verdicts
#: the claims of ``paper.yml`` each notebook decides (the verdict notebook shows them all)
NOTEBOOK_CLAIMS = {
    "01_architecture_cost": ("pyr-s-no-mlg-params", "psla-params"),
    "02_k_sweep": ("k-insensitive", "k-insensitive-synthetic"),
    "03_tables_2_3": ("headline-audioset", "mlg-helps-audioset", "pyramid-beats-iso-audioset",
                      "atgnn-beats-panns-audioset", "pyramid-beats-ast-audioset",
                      "atgnn-beats-psla-audioset", "headline-fsd50k", "mlg-helps-fsd50k",
                      "pyramid-beats-iso-fsd50k", "pyramid-beats-ast-fsd50k", "atgnn-beats-psla-fsd50k",
                      "mlg-helps-synthetic", "pyramid-beats-iso-synthetic",
                      "atgnn-beats-panns-synthetic", "pyramid-beats-ast-synthetic",
                      "atgnn-beats-psla-synthetic"),
}
SYNTHETIC = "synthetic world"


def _paper_size(arch: str, overrides: Mapping[str, Any]) -> bool:
    """Whether ``arch`` with ``overrides`` is the size of a paper row (pyr-s, pyr-med, iso;
    PANNs CNN14 at width 1.0; AST base; PSLA full)."""
    if arch == "psla":
        return overrides.get("scale", "cpu") == "full"
    if arch.startswith("panns"):
        return float(overrides.get("scale", 0.25)) == 1.0
    if arch.startswith("ast"):
        return overrides.get("scale", "cpu") == "base"
    return arch in _VARIANT_ROWS


#: class counts of the paper's data sets: AudioSet (Table II) and FSD50K (Table III)
PAPER_CLASS_COUNTS = (527, 200)


def record_row(paper_row: str, arch: str, overrides: Mapping[str, Any], data: TaggingData) -> str:
    """The row name a run is recorded under: the paper's row only for a paper-size model on a
    clip table of the paper's data sets (527 or 200 classes, or made by the AudioSet / FSD50K
    adapter: a copy or an official-format miniature of them, which the record's dataset names); else ``"<paper row> | synthetic
    world"``, ``"<paper row> | <task>"`` (a user's clip table: its file stem) or ``"<paper
    row> | scaled model"`` (a CPU-sized model on the paper's data), so that no run stands beside
    a paper number it does not correspond to, and the synthetic-world claims of ``paper.yml``
    (``*-synthetic``) never mix with the AudioSet / FSD50K ones."""
    if data.task == SYNTHETIC:
        return f"{paper_row} | {SYNTHETIC}"
    if data.num_classes not in PAPER_CLASS_COUNTS and not data.official_dataset:
        return f"{paper_row} | {data.task}"
    return paper_row if _paper_size(arch, overrides) else f"{paper_row} | scaled model"


def decide_claims(profile: str, notebook: str, claims: Sequence[str] | None = None,
                  register: bool = True) -> pd.DataFrame:
    """Decide and register the claims of ``notebook`` (a name of :data:`NOTEBOOK_CLAIMS`, or a
    path to it; ``claims`` overrides the list) from the records of ``profile``:
    :func:`audiorepro.results.decide_claims` (paired bootstrap over the test clips of the newest
    run group, seeds combined). One line per claim: verdict, effect, 95 % interval and its
    width, items, seeds and the evidence."""
    return results.decide_claims(CHAPTER, profile, notebook, NOTEBOOK_CLAIMS, claims, register=register)


# ================================================================================== Table I
def k_spec(k: int, mlg: bool = False, arch: str = "pyr-tiny",
           extra: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any], str]:
    """The Table I row of ``k``: ``arch`` (``pyr-tiny`` at CPU size, ``pyr-s`` in the paper
    profile) with k neighbours, without MLG as the paper's Table I (its numbers match the pyr-s
    (-MLG) FSD50K row; row ``k=<k>``) or, with ``mlg``, with MLG as a second labelled row
    (``k=<k> (+MLG)``). ``extra``: further build overrides of every row (``drop_path``,
    ``plg_direction`` as :func:`table_rows` sets them). No ``k`` override at the default k, and
    the overrides in :func:`table_rows`' order, so those runs are shared with the Tables II/III
    rows ``<arch> (-MLG)`` / ``<arch>`` of the same data and recipe."""
    if arch not in ATGNN_ARCHS:
        raise KeyError(f"parameter arch: unknown ATGNN architecture {arch!r}; known: "
                       f"{sorted(ATGNN_ARCHS)}")
    kw: dict[str, Any] = {} if mlg else {"use_mlg": False}
    kw.update(dict(extra or {}) if mlg else _without_mlg(extra or {}))
    if k != ATGNNConfig.k:
        kw["k"] = k
    return (arch, kw, f"k={k}" + (" (+MLG)" if mlg else ""))


def k_regime(ks: Sequence[int], arch: str, input_size: tuple[int, int]) -> pd.DataFrame:
    """The graphs ``arch`` builds at ``input_size`` (mel bins, frames) for every k of a sweep
    (:func:`~audiorepro.papers.atgnn.model.schedule_summary`, one row per k): the first block's
    share of keys, the largest share, and how many blocks are dilated. Where the dilated
    blocks vanish as k grows (k' d > keys), the sweep's upper end runs another graph regime."""
    if arch not in PRESETS:
        raise KeyError(f"parameter arch: unknown ATGNN preset {arch!r}; known: {sorted(PRESETS)}")
    rows = {f"k={k}": schedule_summary(ATGNNConfig(**{**PRESETS[arch], "k": int(k)},
                                                   input_size=tuple(input_size)))
            for k in ks}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(
        f"{arch} at {input_size[0]} x {input_size[1]}")


def k_sweep(ks: Sequence[int], seeds: Sequence[int], data: TaggingData, recipe: RecipeConfig,
            device: str = "auto", amp: Any = False, mlg_rows: bool = False, arch: str = "pyr-tiny",
            extra: Mapping[str, Any] | None = None,
            checkpoints: Mapping[str, str | Path] | None = None,
            mlg_seeds: Sequence[int] | None = None, mlg_ks: Sequence[int] | None = None) -> pd.DataFrame:
    """Train ``arch`` without MLG (the paper's Table I) for every k of ``ks`` and every seed
    of ``seeds`` - with ``mlg_rows`` also with MLG (rows ``k=<k> (+MLG)``): one line per
    (row, k, seed) as :func:`train_row`, with an integer column ``k``, a bool ``MLG`` and the
    ``arch``. ``extra``: build overrides (:func:`k_spec`); ``checkpoints``: architecture ->
    ImageNet ViG file initialising the PGN (:func:`train_row`; Section III-B: every experiment),
    only ``arch`` may be named. ``mlg_seeds`` / ``mlg_ks``: seeds and k values of the +MLG rows
    (default ``seeds`` / ``ks``; no claim compares them)."""
    if not seeds:
        raise ValueError("k_sweep: parameter seeds is empty")
    if not ks:
        raise ValueError("k_sweep: parameter ks is empty")
    bad = [a for a in (checkpoints or {}) if a != arch]
    if bad:
        raise KeyError(f"k_sweep: parameter checkpoints names architecture(s) {bad}; the sweep "
                       f"trains only arch={arch!r}")
    checkpoint = (checkpoints or {}).get(arch) or None
    lines = []
    for mlg in ((False, True) if mlg_rows else (False,)):
        for k in (ks if not mlg or not mlg_ks else mlg_ks):
            spec = k_spec(k, mlg, arch, extra)
            for s in (seeds if not mlg or not mlg_seeds else mlg_seeds):
                lines.append({**train_row(spec[2], data, recipe, s, spec=spec, device=device,
                                          amp=amp, checkpoint=checkpoint),
                              "k": int(k), "MLG": mlg, "arch": arch})
    return pd.DataFrame(lines)


def main_sweep_runs(ks: Sequence[int], seeds: Sequence[int], data: TaggingData, recipe: RecipeConfig,
                    arch: str, mlg_rows: bool = False, device: str = "auto", amp: Any = False,
                    checkpoints: Mapping[str, str | Path] | None = None) -> pd.DataFrame:
    """The main page's runs of an ablation page's rows: :func:`k_sweep` with the book's defaults
    for what the ablation pages change (no build overrides: drop path 0, PLG ``x_minus_l``;
    per-batch mixup) - reloaded from the run cache when the main page has trained them."""
    return k_sweep(ks, seeds, data, main_page_setup(recipe)[0], device=device, amp=amp,
                   mlg_rows=mlg_rows, arch=arch, checkpoints=checkpoints)


def ablation_table(ablated: pd.DataFrame, main: pd.DataFrame, metric: str = "mAP",
                   n_boot: int = N_BOOT) -> pd.DataFrame:
    """An ablation page's k-sweep runs against the main page's (:func:`main_sweep_runs`), row by
    row (k, with or without MLG) on the same seeds and test clips: the test ``metric`` of each
    (mean over seeds), ``ablated - main`` and its 95 % interval from a paired bootstrap over the
    test clips combined with the seeds (:func:`audiorepro.results.stats.bootstrap_rows`), and
    per MLG setting the spread over k (max - min of the row means: Table I's claim) under each
    and its change, with its interval. An interval that excludes 0 means the deviation moved that
    row (or the spread) by more than this test set's noise. Nothing is recorded."""
    def runs_of(df: pd.DataFrame, k: int, mlg: bool) -> list[Run]:
        sel = df[(df["k"] == k) & (df["MLG"] == mlg)]
        return [Run(str(seed), float(value), replace(items, metric=metric))
                for seed, value, items in zip(sel["seed"], sel[f"test {metric}"], sel["items"])]
    keys = sorted({(int(k), bool(m)) for k, m in zip(ablated["k"], ablated["MLG"])}, key=lambda t: (t[1], t[0]))
    rows: dict[str, list[Any]] = {}
    for k, mlg in keys:
        label = f"k={k}" + (" (+MLG)" if mlg else "")
        rows[f"main {label}"], rows[f"ablated {label}"] = runs_of(main, k, mlg), runs_of(ablated, k, mlg)
        if not rows[f"main {label}"]:
            raise ValueError(f"ablation_table: the main runs have no row {label}")
    boot = bootstrap_rows(rows, n_boot=n_boot)
    lines = []
    for k, mlg in keys:
        label = f"k={k}" + (" (+MLG)" if mlg else "")
        d = boot.rows[f"ablated {label}"] - boot.rows[f"main {label}"]
        lo, hi = percentile_interval(d)
        lines.append({"row": label, f"main {metric}": boot.point[f"main {label}"],
                      f"ablated {metric}": boot.point[f"ablated {label}"],
                      "ablated - main": boot.point[f"ablated {label}"] - boot.point[f"main {label}"],
                      "95 % interval": f"[{lo:+.3f}, {hi:+.3f}]", "seeds": boot.n_seeds[f"ablated {label}"],
                      "items": boot.n_items})
    for mlg in sorted({m for _, m in keys}):
        labels = [f"k={k}" + (" (+MLG)" if mlg else "") for k, m in keys if m == mlg]
        if len(labels) < 2:
            continue
        spread = {w: np.max([boot.rows[f"{w} {x}"] for x in labels], axis=0)
                  - np.min([boot.rows[f"{w} {x}"] for x in labels], axis=0) for w in ("main", "ablated")}
        point = {w: max(boot.point[f"{w} {x}"] for x in labels) - min(boot.point[f"{w} {x}"] for x in labels)
                 for w in ("main", "ablated")}
        lo, hi = percentile_interval(spread["ablated"] - spread["main"])
        ks_text = ", ".join(str(k) for k, m in keys if m == mlg)
        lines.append({"row": f"spread over k = {ks_text}" + (" (+MLG)" if mlg else ""),
                      f"main {metric}": point["main"], f"ablated {metric}": point["ablated"],
                      "ablated - main": point["ablated"] - point["main"],
                      "95 % interval": f"[{lo:+.3f}, {hi:+.3f}]",
                      "seeds": boot.n_seeds[f"ablated {labels[0]}"], "items": boot.n_items})
    return pd.DataFrame(lines)


def record_k_sweep(runs: pd.DataFrame, data: TaggingData, *, run_group: str, frames: int,
                   epochs: int, scale: str, profile: str) -> list[Path]:
    """One Table I record (test mAP and AUC, with the test clips' scores and targets) per
    (k, seed) of :func:`k_sweep`, all in ``run_group``."""
    return [results.record(CHAPTER, "table1", {"mAP": r["test mAP"], "AUC": r["test AUC"]},
                           params={"paper_row": r["paper row"], "k": int(r["k"]),
                                   "arch": r.get("arch", "pyr-tiny"), "use_mlg": bool(r["MLG"]),
                                   "frames": frames, "epochs": epochs, "seed": int(r["seed"]),
                                   "run_group": run_group, "init": r.get("init", "random"),
                                   "selection": BEST_EPOCH},
                           dataset=data.description, scale=scale, profile=profile,
                           model=f"{r.get('arch', 'pyr-tiny')}{'' if r['MLG'] else ' (-MLG)'} "
                                 f"k={r['k']} ({r['params'] / 1e6:.2f} M, {init_label(r.get('init', 'random'))})",
                           duration_s=r["train s"], items=r["items"])
            for r in runs.to_dict("records")]


# ================================================================================== counts
#: Tables II / III: dataset -> (paper table, classes, input (F, T))
COUNT_SETTINGS = {"audioset": ("table2", 527, (128, 1056)), "fsd50k": ("table3", 200, (128, 1024))}
_VARIANT_ROWS = {"pyr-s": "ATGNN-pyr-s", "pyr-med": "ATGNN-pyr-med", "iso": "ATGNN-iso"}
#: full-size baselines of Table II: name -> (shared backbone, build arguments, paper row)
_BASELINES = {"panns": ("panns_cnn14_32k", {}, "PANNs"), "psla": ("psla", {"scale": "full"}, "PSLA"),
              "ast": ("ast_base384_f10_t10_527", {"input_tdim": 1024}, "AST")}


def _check_names(what: str, names: Sequence[str], known: Mapping[str, Any]) -> None:
    bad = [n for n in names if n not in known]
    if bad:
        raise KeyError(f"parameter {what}: unknown {bad}; known: {sorted(known)}")


def count_variants(variants: Sequence[str], datasets: Sequence[str], profile: str,
                   record: bool = True) -> pd.DataFrame:
    """Trainable parameters, frozen-table elements of the reference code and GMACs
    (:func:`~audiorepro.papers.atgnn.model.count_atgnn`, meta device) of every ATGNN variant
    with and without MLG at each data set's paper input; with ``record``, one Table II / III
    record per row: ``params`` (trainable) and ``flops`` (the MAC count: the paper's #GFLOPs
    column is set against MACs, as fvcore counts them)."""
    _check_names("variants", variants, _VARIANT_ROWS)
    _check_names("datasets", datasets, COUNT_SETTINGS)
    rows = []
    for ds in datasets:
        table, n_cls, size = COUNT_SETTINGS[ds]
        for v in variants:
            for mlg in (True, False):
                model = build_atgnn(v, num_classes=n_cls, input_size=size, use_mlg=mlg)
                c = count_atgnn(model, size)
                row = _VARIANT_ROWS[v] + ("" if mlg else " (-MLG)")
                rows.append({"dataset": ds, "table": table, "row": row, "variant": v, "MLG": mlg,
                             "trainable (M)": c["trainable"] / 1e6,
                             "+ frozen tables in ref. code (M)": c["frozen_tables_ref"] / 1e6,
                             "GMACs": c["gmacs"]})
                if record:
                    results.record(CHAPTER, table, {"params": c["trainable"], "flops": c["gmacs"] * 1e9},
                                   params={"paper_row": row, "variant": v, "use_mlg": mlg,
                                           "input": list(size), "num_classes": n_cls,
                                           "count": "trainable params; FlopCounterMode MACs"},
                                   dataset=f"none (counted at the {ds} input)", scale="full size",
                                   profile=profile,
                                   model=f"{row}, 1 x {size[0]} x {size[1]}, {n_cls} classes")
                del model
    return pd.DataFrame(rows)


def count_baselines(baselines: Sequence[str], profile: str, record: bool = True) -> pd.DataFrame:
    """Trainable / all parameters of the full-size models standing for Table II's baselines
    (``panns``: the shared PANNs CNN14 32 kHz, ``ast``: the shared AST base384 at 128 x 1024,
    ``psla``: :class:`~audiorepro.papers.atgnn.model.PSLA` at EfficientNet-B2 size), 527
    classes, randomly initialised; with ``record``, one Table II ``params`` record each."""
    _check_names("baselines", baselines, _BASELINES)
    rows = []
    for b in baselines:
        name, kw, row = _BASELINES[b]
        model = (build_model(name, 527, COUNT_SETTINGS["audioset"][2], **kw) if name == "psla"
                 else build_backbone(name, scale=1.0, num_classes=527, **kw))
        n = count_parameters(model)
        rows.append({"row": row, "backbone": name, "trainable (M)": n["trainable"] / 1e6,
                     "all (M)": n["all"] / 1e6})
        if record:
            results.record(CHAPTER, "table2", {"params": n["trainable"]},
                           params={"paper_row": row, "backbone": name, "num_classes": 527,
                                   "count": "trainable params"},
                           dataset="none (counted at the audioset input)", scale="full size",
                           profile=profile,
                           model=(f"{row}: EfficientNet-B2 + 4-head attention pooling, 527 classes"
                                  if name == "psla" else f"{row}: shared backbone {name}, 527 classes"))
        del model
    return pd.DataFrame(rows)


# ================================================================================== label graph
@dataclass
class LabelGraphStats:
    """The learned LLG adjacency against the training labels' co-occurrence (S labels).

    ``A``: (S, S) mean of the MLG blocks' adjacencies; ``A_sym`` = (A + A^T) / 2; ``lift``:
    P(a, b) / (P(a) P(b)) on the training labels; ``prevalence``: (S,) P(a); ``mask``: (S, S)
    off-diagonal pairs of labels seen in training; ``rho`` / ``p_value``: Spearman correlation of
    ``A_sym`` and ``lift`` over the masked entries.
    """

    A: np.ndarray
    A_sym: np.ndarray
    lift: np.ndarray
    prevalence: np.ndarray
    mask: np.ndarray
    rho: float
    p_value: float

    @property
    def n_pairs(self) -> int:
        return int(self.mask.sum() // 2)

    def summary(self) -> str:
        init = 1 / np.sqrt(len(self.prevalence))
        return (f"Spearman(A, lift) over {self.n_pairs} label pairs: {self.rho:.3f} "
                f"(p = {self.p_value:.2g}); |A| mean {np.abs(self.A).mean():.4f} "
                f"(init bound {init:.4f})")


def label_graph_spec(model: str, rows: Mapping[str, tuple[str, Mapping[str, Any], str]]
                     ) -> tuple[str, Mapping[str, Any], str]:
    """The spec of row ``model`` of ``rows`` (:func:`table_rows`) for the label-graph analysis:
    an ATGNN row with MLG blocks (``pyr-tiny``, ``pyr-s``, ...). Raises naming the parameter."""
    if model not in rows:
        raise KeyError(f"parameter model={model!r}: unknown row; known: {sorted(rows)}")
    arch, kw, _ = rows[model]
    if arch not in ATGNN_ARCHS or kw.get("use_mlg", True) is False:
        ok = sorted(n for n, (a, k, _) in rows.items()
                    if a in ATGNN_ARCHS and k.get("use_mlg", True) is not False)
        raise ValueError(f"parameter model={model!r} has no label graph (no MLG blocks); "
                         f"allowed values: {ok}")
    return rows[model]


def adjacency_vs_lift(model: ATGNN, y_train: torch.Tensor) -> LabelGraphStats:
    """Compare the learned adjacency of ``model`` with the lift of the training labels
    ``y_train`` (N, S) (see :class:`LabelGraphStats`)."""
    A = torch.stack(model.adjacency()).mean(0).cpu().numpy()
    A_sym = (A + A.T) / 2
    y = y_train.numpy()
    p = y.mean(0)
    co = (y.T @ y) / len(y)
    lift = co / np.maximum(np.outer(p, p), 1e-12)
    seen = p > 0
    mask = np.outer(seen, seen) & ~np.eye(len(p), dtype=bool)
    rho, pval = spearmanr(A_sym[mask], lift[mask])
    return LabelGraphStats(A, A_sym, lift, p, mask, float(rho), float(pval))


def record_label_graph(stats: Sequence[LabelGraphStats], data: TaggingData, *,
                       seeds: Sequence[int], run_group: str, frames: int, n_clips: int,
                       epochs: int, profile: str, arch: str = "pyr-tiny",
                       init: str = "random") -> list[Path]:
    """One ``label_graph`` record of ``arch`` per seed: Spearman rho and its p-value."""
    if len(stats) != len(seeds):
        raise ValueError(f"record_label_graph: {len(stats)} statistics for seeds {list(seeds)}")
    return [results.record(CHAPTER, "label_graph",
                           {"spearman_A_vs_lift": st.rho, "p_value": st.p_value},
                           params={"arch": arch, "frames": frames, "n_clips": n_clips,
                                   "epochs": epochs, "seed": int(seed), "run_group": run_group,
                                   "init": init},
                           dataset=data.description, scale=f"{epochs} epochs", profile=profile,
                           model=arch)
            for st, seed in zip(stats, seeds)]


#: significance level of the label-graph claim (two-sided Spearman test, on every seed)
ADJACENCY_ALPHA = 0.01


def decide_adjacency_claim(stats: Sequence[LabelGraphStats], data: TaggingData, *,
                           seeds: Sequence[int], profile: str, notebook: str,
                           register: bool = True, arch: str = "pyr-tiny") -> tuple[str, str]:
    """Verdict on ``adjacency-captures-correlations`` (a manual claim: the paper shows no
    measurement) from the Spearman correlation of the learned adjacency with the label lift,
    one model per seed: *reproduced* when every seed has rho > 0 at p < ``ADJACENCY_ALPHA``,
    *not reproduced* when every seed has rho < 0 at that level, else *inconclusive*.
    ``arch``: the model the statistics come from (named in the evidence).
    Returns (verdict, evidence); with ``register`` the verdict is stored."""
    if not stats or len(stats) != len(seeds):
        raise ValueError(f"decide_adjacency_claim: {len(stats)} statistics for seeds {list(seeds)}")
    sig = [st.p_value < ADJACENCY_ALPHA for st in stats]
    if all(sig) and all(st.rho > 0 for st in stats):
        verdict = "reproduced"
    elif all(sig) and all(st.rho < 0 for st in stats):
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    rhos = [st.rho for st in stats]
    evidence = (f"Spearman correlation of the learned A (symmetrised, mean of the MLG blocks) with "
                f"the training-label lift over {stats[0].n_pairs} label pairs, {arch}, seeds "
                f"{list(seeds)}: " + ", ".join(f"{st.rho:+.3f} (p = {st.p_value:.2g})" for st in stats)
                + f" (claim: rho > 0 at p < {ADJACENCY_ALPHA} on every seed)")
    if register:
        results.register_verdict(CHAPTER, "adjacency-captures-correlations", verdict, evidence,
                                 dataset=data.description, scale=f"{len(seeds)} seeds",
                                 profile=profile, effect=float(np.mean(rhos)),
                                 n_seeds=len(seeds), notebook=notebook, kind="manual",
                                 metric="spearman_A_vs_lift",
                                 seed_spread=float(np.std(rhos, ddof=1)) if len(rhos) > 1 else None)
    return verdict, evidence


# ================================================================================== benchmarks
def benchmark_table(path: str | Path | None = None) -> pd.DataFrame | None:
    """The speed / memory results written by ``benchmarks/bench_atgnn.py`` as a long table.

    Reads ``path`` (default ``results/benchmarks/atgnn.json`` under the project home); returns
    None when the file does not exist (the benchmark has not run on this machine). Nested JSON is
    flattened: one row per leaf value with columns ``section`` (top-level key), ``item`` (list
    index or nested key path, empty for a top-level scalar) and ``quantity`` / ``value``.
    Raises ValueError naming the file when it is not valid JSON.
    """
    p = Path(path) if path is not None else paths.results_dir("benchmarks", "atgnn.json")
    if not p.is_file():
        return None
    try:
        payload = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"benchmark file {p} is not valid JSON: {exc}") from exc
    rows: list[dict[str, Any]] = []

    def walk(section: str, item: str, obj: Any) -> None:
        if isinstance(obj, Mapping):
            scalars = {k: v for k, v in obj.items() if not isinstance(v, (Mapping, list))}
            for k, v in scalars.items():
                rows.append({"section": section, "item": item, "quantity": str(k), "value": v})
            for k, v in obj.items():
                if isinstance(v, (Mapping, list)):
                    walk(section, f"{item}.{k}" if item else str(k), v)
        elif isinstance(obj, list):
            if all(not isinstance(v, (Mapping, list)) for v in obj):
                rows.append({"section": section, "item": item, "quantity": "", "value": obj})
            else:
                for i, v in enumerate(obj):
                    walk(section, f"{item}[{i}]" if item else f"[{i}]", v)
        else:
            rows.append({"section": section, "item": item, "quantity": "", "value": obj})

    if not isinstance(payload, Mapping):
        raise ValueError(f"benchmark file {p}: expected a JSON object, got {type(payload).__name__}")
    for key, val in payload.items():
        walk(str(key), "", val)
    return pd.DataFrame(rows, columns=["section", "item", "quantity", "value"])
