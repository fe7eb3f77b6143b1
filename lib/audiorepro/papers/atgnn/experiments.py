"""Data, training recipe and evaluation for the ATGNN chapter.

* :func:`tagging_data` - the synthetic world's multi-label clips as time-major log-mel tensors
  ``(N, frames, n_mels)`` (front end preset, average-pooled in time to a CPU-sized length,
  normalised with training-set statistics), split train / valid / test;
* :class:`RecipeConfig` + :func:`train_tagger` - Section III-B: balanced sampling, mixup applied
  with probability 0.5, time / frequency masks scaled to the input (192 / 48 at 1024 x 128),
  BCE (optionally label-smoothed), Adam 5e-4, linear warm-up, halving every 5 epochs after a
  given epoch; run with :func:`audiorepro.training.fit`;
* :func:`build_model` - ATGNN variants and the shared PANNs CNN14 / AST baselines behind one call;
* :func:`train_row`, :func:`seed_summary`, :func:`compare_seeds` - one row per seed, mean +- std
  over seeds and a seed-aware verdict ("inconclusive at this scale" inside the seed spread);
* :func:`benchmark_table` - the speed / memory results of ``benchmarks/bench_atgnn.py``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from audiorepro import caching
from audiorepro.augment import SpecAugment, sample_mixup_lambda, scaled_mask_params
from audiorepro.metrics import tagging_metrics
from audiorepro.papers.atgnn.model import ATGNN, LabelNoiseRobustBCE, build_atgnn
from audiorepro.training import balanced_sampler, fit, make_evaluator, predict
from audiorepro.training.config import reject_unknown_fields

__all__ = ["TaggingData", "tagging_data", "RecipeConfig", "make_batch_fn", "train_tagger",
           "build_model", "WaveToLogits", "evaluate_tagging", "label_attention", "table_rows",
           "run_dir_for", "code_digest", "train_row", "seed_summary", "SeedComparison", "compare_seeds",
           "benchmark_table"]


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


def _fit_frames(f: torch.Tensor, frames: int, mode: str) -> torch.Tensor:
    """(n_mels, T) -> (frames, n_mels): ``pool`` = average-pool in time (CPU-sized inputs),
    ``crop_pad`` = keep the first ``frames`` frames, zero-pad shorter clips (the paper's input)."""
    if mode == "pool":
        return F.adaptive_avg_pool1d(f[None], frames)[0].T
    if mode == "crop_pad":
        f = f[:, :frames]
        return F.pad(f, (0, frames - f.shape[1])).T
    raise ValueError(f"tagging_data: time_mode={mode!r} must be 'pool' or 'crop_pad'")


def _project_path(p: str | Path) -> Path:
    """``p`` as given when it exists (or is absolute), else relative to the project home."""
    from audiorepro import paths
    p = Path(p)
    return p if p.is_absolute() or p.exists() else paths.home() / p


def tagging_data(n_clips: int = 200, seed: int = 0, frontend: str | None = None, frames: int = 128,
                 world: Any = None, progress: bool = False, clip_table: str | Path | None = None,
                 data_root: str | Path | None = None, max_train: int | None = None,
                 max_valid: int | None = None, time_mode: str = "pool",
                 clip_seconds: float | None = 10.0) -> TaggingData:
    """Tagging tensors from the synthetic world (default) or from a clip table on disk.

    Data source: ``clip_table`` (a :class:`~audiorepro.data.cliptable.ClipTable` CSV, e.g. the
    AudioSet-balanced or FSD50K table written by :mod:`audiorepro.data.adapters`; relative audio
    paths are resolved against ``data_root`` when given, else against the CSV's folder; relative
    ``clip_table`` / ``data_root`` that do not exist from the working folder are taken relative
    to the project home). A table without a ``valid`` split (AudioSet) gets every 20th training
    clip as validation clip. Without ``clip_table``: the synthetic world
    ``default_world(n_clips, seed)`` (or ``world``).
    Front end ``frontend`` (default ``kaldi_fbank_128`` for a clip table - the paper's 128-bin
    fbank - and ``logmel_64`` for the synthetic world; cached on disk by
    :class:`~audiorepro.frontends.FeatureCache`); clips are cut / padded to ``clip_seconds``.
    Time axis: ``time_mode="pool"`` average-pools to ``frames`` frames (CPU-sized input),
    ``"crop_pad"`` keeps the first ``frames`` frames and zero-pads (the paper's 1024 / 1056).
    ``max_train`` / ``max_valid`` keep the first clips of those splits (table order); the test
    split is always complete. Features are standardised with the training split's mean / std.
    Classes without a training clip are kept (their AP is undefined and left out by the metrics).
    Returns x_*: (N, frames, n_mels) float32, y_*: (N, S).
    """
    from audiorepro.data.cliptable import ClipTable
    from audiorepro.data.dataset import ClipDataset
    from audiorepro.frontends import CachedFeatureDataset, make_frontend

    if frames < 16:
        raise ValueError(f"tagging_data: frames={frames} must be >= 16")
    holdout = ""
    if clip_table is not None:
        table = ClipTable.read(_project_path(clip_table))
        if data_root is not None:
            root = _project_path(data_root)
            if not root.is_dir():
                raise FileNotFoundError(f"tagging_data: data_root {data_root} is not a folder")
            table.root = root
        frontend = frontend or "kaldi_fbank_128"
        source = f"clip table {Path(clip_table).name} ({table.num_classes} classes)"
        if not (table.frame["split"] == "valid").any():
            # AudioSet has no validation split: hold out every 20th training clip
            train_pos = np.flatnonzero(table.frame["split"].to_numpy() == "train")
            table.frame.loc[train_pos[::20], "split"] = "valid"
            holdout = ", valid = every 20th train clip"
    else:
        from audiorepro.data.synthetic import default_world
        world = world if world is not None else default_world(n_clips, seed, progress=progress)
        table = world.table
        frontend = frontend or "logmel_64"
        source = f"synthetic world n{len(table)} seed {seed} ({table.num_classes} classes)"
    fe = make_frontend(frontend, time_major=False)
    caps = {"train": max_train, "valid": max_valid, "test": None}
    out: dict[str, tuple[torch.Tensor, torch.Tensor, list[str]]] = {}
    for split in ("train", "valid", "test"):
        sub = table.subset(split)
        if len(sub) == 0:
            raise ValueError(f"tagging_data: {source} has no clip in split {split!r}")
        if caps[split] is not None and caps[split] < len(sub):
            sub = ClipTable(sub.frame.iloc[:caps[split]], sub.root, sub.classes, sub.name)
        ds = CachedFeatureDataset(ClipDataset(sub, sample_rate=fe.sample_rate,
                                              clip_seconds=clip_seconds), fe)
        feats, ys, ids = [], [], []
        for i in range(len(ds)):
            item = ds[i]
            f = torch.as_tensor(item["features"]).float()          # (n_mels, frames_full)
            feats.append(_fit_frames(f, frames, time_mode))        # (frames, n_mels)
            ys.append(torch.as_tensor(item["target"]).float())
            ids.append(str(item["clip_id"]))
        out[split] = (torch.stack(feats), torch.stack(ys), ids)
    mean, std = out["train"][0].mean(), out["train"][0].std().clamp_min(1e-6)
    norm = {k: ((v[0] - mean) / std, v[1], v[2]) for k, v in out.items()}
    how = "pooled to" if time_mode == "pool" else "cropped/padded to"
    desc = f"{source}, {frontend} {how} {frames} frames{holdout}"
    if max_train is not None or max_valid is not None:
        desc += f", train/valid capped at {max_train}/{max_valid}"
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
        reject_unknown_fields(cls, d, "recipe")
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
      built for ``input_size`` = (F, T).
    Shared backbones are trained from scratch here (no pre-trained weights).
    """
    torch.manual_seed(seed)
    from audiorepro.backbones import build_backbone
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


# ================================================================================== seeds
def table_rows(panns_scale: float = 0.125, ast_scale: str | float = "cpu") -> dict[str, tuple[str, dict[str, Any], str]]:
    """Rows of Tables II/III: name -> (architecture, build overrides, paper row).

    CPU-sized rows: ``pyr-tiny`` (+ ``pyr-tiny (-MLG)``) stands for the paper's pyr-s,
    ``iso-tiny`` for iso. Paper-size rows (paper profile): ``pyr-s``, ``pyr-med``, ``iso`` with
    and without MLG. Baselines are the shared backbones: ``panns`` (PANNs CNN14 16 kHz at width
    ``panns_scale``; 1.0 = the paper's 81 M model) and ``ast`` (AST at ``ast_scale``; ``base`` =
    the paper's 88.7 M model).
    """
    rows: dict[str, tuple[str, dict[str, Any], str]] = {
        "pyr-tiny": ("pyr-tiny", {}, "ATGNN-pyr-s"),
        "pyr-tiny (-MLG)": ("pyr-tiny", {"use_mlg": False}, "ATGNN-pyr-s (-MLG)"),
        "iso-tiny": ("iso-tiny", {}, "ATGNN-iso")}
    for arch in ("pyr-s", "pyr-med", "iso"):
        rows[arch] = (arch, {}, f"ATGNN-{arch}")
        rows[f"{arch} (-MLG)"] = (arch, {"use_mlg": False}, f"ATGNN-{arch} (-MLG)")
    rows["panns"] = ("panns_cnn14_16k", {"scale": panns_scale}, "PANNs")
    rows["ast"] = ("ast_base384_f10_t10_527", {"scale": ast_scale}, "AST")
    return rows


def code_digest() -> str:
    """Digest of the source a training run depends on (this paper's package, the training loop,
    augmentation, front ends, metrics): part of every run's cache key, so a changed model never
    reloads a run trained by the old code."""
    return caching.code_digest(("audiorepro.papers.atgnn", *caching.CORE_TRAINING_CODE))


def run_dir_for(arch: str, overrides: Mapping[str, Any], data: TaggingData,
                recipe: RecipeConfig) -> Path:
    """Cache folder of one training run, named by a hash of everything that defines it (so two
    notebooks asking for the same run share it, and a changed recipe never reuses a stale one)."""
    from audiorepro import paths
    key = json.dumps({"arch": arch, "overrides": dict(overrides), "data": data.description,
                      "sizes": data.sizes(), "recipe": asdict(recipe), "code": code_digest()},
                     sort_keys=True, default=str)
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return paths.cache_dir("runs", "atgnn", f"{arch}_s{recipe.seed}_{digest}")


def train_row(name: str, data: TaggingData, recipe: RecipeConfig, seed: int,
              spec: tuple[str, Mapping[str, Any], str] | None = None) -> dict[str, Any]:
    """Train (or reload) one row for one seed and evaluate it on the test split.

    ``spec`` = (architecture, overrides, paper row), default ``table_rows()[name]``; ``seed``
    sets the initialisation, the sampler and the augmentation. Returns a dict with ``model``,
    ``paper row``, ``seed``, ``test mAP``, ``test AUC``, ``params`` (trainable), ``train s``
    and ``result`` (the :class:`~audiorepro.training.FitResult`).
    """
    from dataclasses import replace
    from audiorepro.backbones.counting import count_parameters
    arch, kw, paper_row = spec if spec is not None else table_rows()[name]
    rec = replace(recipe, seed=seed)
    model = build_model(arch, data.num_classes, data.input_size, seed=seed, **dict(kw))
    res = train_tagger(model, data, rec, run_dir=run_dir_for(arch, kw, data, rec))
    test = evaluate_tagging(res.model, data.x_test, data.y_test)
    return {"model": name, "paper row": paper_row, "seed": seed, "test mAP": test["mAP"],
            "test AUC": test["AUC"], "params": count_parameters(res.model)["trainable"],
            "train s": res.duration_s, "result": res}


def seed_summary(runs: "pd.DataFrame", metric: str = "test mAP") -> "pd.DataFrame":
    """Mean and sample std (ddof=1; NaN with one seed) of ``metric`` over seeds, one row per
    model (first-seen order), with the per-seed values and ``mean +- std`` as text."""
    import pandas as pd
    rows = []
    for name, g in runs.groupby("model", sort=False):
        v = g[metric].to_numpy(float)
        std = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
        rows.append({"model": name, "paper row": g["paper row"].iloc[0], "seeds": len(v),
                     "mean": float(v.mean()), "std": std,
                     f"{metric} (mean +- std)": (f"{v.mean():.3f} +- {std:.3f}" if len(v) > 1
                                                 else f"{v.mean():.3f} (1 seed)"),
                     "per seed": ", ".join(f"{x:.3f}" for x in v)})
    return pd.DataFrame(rows)


@dataclass
class SeedComparison:
    """Seed-aware outcome of "``better`` beats ``worse``" (see :func:`compare_seeds`)."""

    outcome: str            # "better" | "reversed" | "inconclusive"
    verdict: str            # registry verdict: "reproduced" or "not reproduced"
    evidence: str
    mean_diff: float        # mean over seeds of better - worse
    diffs: list[float]      # paired (same seed) differences
    spread: float           # larger of the two rows' seed std


def compare_seeds(runs: "pd.DataFrame", better: str, worse: str,
                  metric: str = "test mAP") -> SeedComparison:
    """Is ``better`` above ``worse`` beyond seed noise?

    Rows are paired by seed (same data, same seed for init / sampling / augmentation).
    ``better`` wins when every paired difference is > 0 and the mean difference exceeds the
    seed spread (the larger of the two rows' std over seeds); ``reversed`` is the mirror case;
    anything else - including a single seed - is ``inconclusive`` (registered as "not
    reproduced", the evidence saying inconclusive at this scale).
    """
    a = runs[runs["model"] == better].set_index("seed")[metric]
    b = runs[runs["model"] == worse].set_index("seed")[metric]
    seeds = sorted(set(a.index) & set(b.index))
    if not seeds:
        raise ValueError(f"compare_seeds: no common seed for {better!r} and {worse!r}")
    d = np.array([a[s] - b[s] for s in seeds], float)
    spread = (max(float(a.loc[seeds].std(ddof=1)), float(b.loc[seeds].std(ddof=1)))
              if len(seeds) > 1 else float("inf"))
    m = float(d.mean())
    if len(seeds) > 1 and np.all(d > 0) and m > spread:
        outcome, verdict = "better", "reproduced"
    elif len(seeds) > 1 and np.all(d < 0) and -m > spread:
        outcome, verdict = "reversed", "not reproduced"
    else:
        outcome, verdict = "inconclusive", "not reproduced"
    text = {"better": f"{better} above {worse} on every seed, beyond the seed spread",
            "reversed": f"reversed: {worse} above {better} on every seed, beyond the seed spread",
            "inconclusive": "inconclusive at this scale: the difference is inside the seed spread"
                            " or changes sign across seeds"}[outcome]
    evidence = (f"{text}; {metric} {better} {a.loc[seeds].mean():.3f} vs {worse} "
                f"{b.loc[seeds].mean():.3f} (mean of {len(seeds)} seeds), paired differences "
                + ", ".join(f"{x:+.3f}" for x in d)
                + (f", seed std {spread:.3f}" if len(seeds) > 1 else ", one seed: no spread"))
    return SeedComparison(outcome, verdict, evidence, m, d.tolist(), spread)


# ================================================================================== benchmarks
def benchmark_table(path: str | Path | None = None) -> pd.DataFrame | None:
    """The speed / memory results written by ``benchmarks/bench_atgnn.py`` as a long table.

    Reads ``path`` (default ``results/benchmarks/atgnn.json`` under the project home); returns
    None when the file does not exist (the benchmark has not run on this machine). Nested JSON is
    flattened: one row per leaf value with columns ``section`` (top-level key), ``item`` (list
    index or nested key path, empty for a top-level scalar) and ``quantity`` / ``value``.
    Raises ValueError naming the file when it is not valid JSON.
    """
    import json
    from audiorepro import paths
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
