"""Runs of the ATGNN chapter: the Section III-B recipe, the table rows, evaluation and records.

* :class:`RecipeConfig` + :func:`train_tagger` - Section III-B: balanced sampling, mixup applied
  with probability 0.5, time / frequency masks scaled to the input (192 / 48 at 1024 x 128),
  BCE (optionally label-smoothed), Adam 5e-4, linear warm-up, halving every 5 epochs after a
  given epoch; run with :func:`audiorepro.training.fit` on ``device`` (``"auto"``: CUDA when
  there is one) in a run cache keyed by :func:`audiorepro.caching.run_key`;
* :func:`build_model` - ATGNN variants and the shared PANNs CNN14 / AST baselines behind one call;
* :func:`train_row`, :func:`train_rows`, :func:`seed_summary`, :func:`compare_seeds` - one row per
  seed, mean +- std over seeds and a seed-aware verdict ("inconclusive at this scale" inside the
  seed spread); :func:`k_sweep` (Table I);
* :func:`count_variants` / :func:`count_baselines` - #Params and GMACs of Tables II / III;
* :func:`adjacency_vs_lift`, :func:`label_attention` - what the label graph learned;
* ``record_*`` - the result records of the chapter's notebooks (:mod:`audiorepro.results`);
* :func:`benchmark_table` - the speed / memory results of ``benchmarks/bench_atgnn.py``.

Data preparation (:func:`tagging_data`) lives in :mod:`audiorepro.papers.atgnn.data`.
"""
from __future__ import annotations

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
from audiorepro.metrics import tagging_metrics
from audiorepro.papers.atgnn.data import TaggingData
from audiorepro.papers.atgnn.model import (ATGNN, ATGNNConfig, LabelNoiseRobustBCE, build_atgnn,
                                           count_atgnn)
from audiorepro.training import balanced_sampler, fit, make_evaluator, pick_device, predict
from audiorepro.training.config import reject_unknown_fields

__all__ = ["RecipeConfig", "make_batch_fn", "train_tagger", "build_model", "WaveToLogits",
           "evaluate_tagging", "label_attention", "table_rows", "run_dir_for", "code_digest",
           "train_row", "train_rows", "table_summary", "record_table", "seed_summary",
           "SeedComparison", "compare_seeds", "k_spec", "k_sweep", "record_k_sweep",
           "COUNT_SETTINGS", "count_variants", "count_baselines", "LabelGraphStats",
           "adjacency_vs_lift", "record_label_graph", "benchmark_table"]

CHAPTER = "atgnn"
#: the source every ATGNN run executes (part of every run-cache key)
RUN_CODE = ("audiorepro.papers.atgnn", *caching.CORE_TRAINING_CODE)
BACKBONE_PREFIXES = ("panns", "ast")


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
                 run_dir: str | Path | None = None, device: str = "auto", amp: Any = False):
    """Train with the Section III-B recipe on ``data`` (validation mAP selects the best epoch).

    ``device``: ``"auto"`` (CUDA, else MPS, else CPU; :func:`~audiorepro.training.pick_device`)
    or a device name; ``amp``: autocast as in :class:`~audiorepro.training.TrainConfig`.
    Returns the :class:`~audiorepro.training.FitResult` (its model on ``device``); a finished
    ``run_dir`` is reloaded.
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
    return fit(model, train_loader, valid_loader, config={**recipe.train_config(), "amp": amp},
               batch_fn=bfn, evaluate_fn=make_evaluator(bfn, tagging_metrics, amp=amp),
               run_dir=run_dir, device=pick_device(device))


def evaluate_tagging(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64,
                     device: str = "auto", amp: Any = False) -> dict[str, float]:
    """``tagging_metrics`` (mAP, AUC, d') of ``model`` on x (N, T, F), y (N, S); the model is
    moved to ``device`` (``"auto"``: see :func:`~audiorepro.training.pick_device`)."""
    dev = pick_device(device)
    scores, targets = predict(model.to(dev), DataLoader(TensorDataset(x, y), batch_size=batch_size),
                              device=dev, amp=amp)
    return {k: float(v) for k, v in tagging_metrics(targets, scores).items()
            if isinstance(v, (int, float, np.floating))}


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
                recipe: RecipeConfig, amp: Any = False) -> Path:
    """Cache folder of one training run, named by :func:`audiorepro.caching.run_key` of
    everything that defines it: (architecture, overrides, recipe, amp) + the data fingerprint +
    the code digest (two notebooks asking for the same run share it; a changed recipe, data set
    or source never reuses a stale one). The device is not part of the key."""
    if not data.fingerprint:
        raise ValueError("run_dir_for: TaggingData.fingerprint is empty; build the data with "
                         "tagging_data() or set a fingerprint that identifies it")
    key = caching.run_key({"arch": arch, "overrides": dict(overrides), "recipe": asdict(recipe),
                           "amp": amp}, data=data.fingerprint, code=_run_code(arch))
    return paths.cache_dir("runs", CHAPTER, f"{arch}_s{recipe.seed}_{key}")


def train_row(name: str, data: TaggingData, recipe: RecipeConfig, seed: int,
              spec: tuple[str, Mapping[str, Any], str] | None = None, device: str = "auto",
              amp: Any = False) -> dict[str, Any]:
    """Train (or reload) one row for one seed on ``device`` and evaluate it on the test split.

    ``spec`` = (architecture, overrides, paper row), default ``table_rows()[name]``; ``seed``
    sets the initialisation, the sampler and the augmentation. Returns a dict with ``model``,
    ``paper row``, ``seed``, ``test mAP``, ``test AUC``, ``params`` (trainable), ``train s``
    and ``result`` (the :class:`~audiorepro.training.FitResult`).
    """
    arch, kw, paper_row = spec if spec is not None else table_rows()[name]
    rec = replace(recipe, seed=seed)
    model = build_model(arch, data.num_classes, data.input_size, seed=seed, **dict(kw))
    res = train_tagger(model, data, rec, run_dir=run_dir_for(arch, kw, data, rec, amp),
                       device=device, amp=amp)
    test = evaluate_tagging(res.model, data.x_test, data.y_test, device=device, amp=amp)
    return {"model": name, "paper row": paper_row, "seed": seed, "test mAP": test["mAP"],
            "test AUC": test["AUC"], "params": count_parameters(res.model)["trainable"],
            "train s": res.duration_s, "result": res}


def train_rows(names: Sequence[str], data: TaggingData, recipe: RecipeConfig, seeds: Sequence[int],
               rows: Mapping[str, tuple[str, Mapping[str, Any], str]] | None = None,
               device: str = "auto", amp: Any = False) -> pd.DataFrame:
    """:func:`train_row` for every row of ``names`` (specs from ``rows``, default
    :func:`table_rows`) and every seed: one line per (row, seed)."""
    rows = rows if rows is not None else table_rows()
    unknown = [n for n in names if n not in rows]
    if unknown:
        raise KeyError(f"train_rows: unknown row(s) {unknown} in parameter models; known: {sorted(rows)}")
    return pd.DataFrame([train_row(n, data, recipe, s, spec=rows[n], device=device, amp=amp)
                         for n in names for s in seeds])


def table_summary(runs: pd.DataFrame, rows: Mapping[str, tuple[str, Mapping[str, Any], str]],
                  input_size: tuple[int, int]) -> pd.DataFrame:
    """:func:`seed_summary` of ``runs`` plus ``params (M)`` (trainable), ``GMACs`` (one forward
    at ``input_size`` = (F, T), ATGNN rows only; counted on the meta device) and
    ``train s (sum)`` over seeds."""
    summary = seed_summary(runs)
    first = {m: runs[runs.model == m].iloc[0] for m in summary.model}
    summary["params (M)"] = [first[m]["params"] / 1e6 for m in summary.model]
    summary["GMACs"] = [float("nan") if _is_backbone(rows[m][0])
                        else count_atgnn(first[m]["result"].model, input_size)["gmacs"]
                        for m in summary.model]
    summary["train s (sum)"] = [runs[runs.model == m]["train s"].sum() for m in summary.model]
    return summary


def record_table(summary: pd.DataFrame, rows: Mapping[str, tuple[str, Mapping[str, Any], str]],
                 table: str, data: TaggingData, *, seeds: Sequence[int], frames: int, epochs: int,
                 scale: str, profile: str) -> list[Path]:
    """One result record per row of :func:`table_summary` in paper table ``table``: the mean test
    mAP over seeds, with the seed std and per-seed values in ``params``."""
    out = []
    for r in summary.to_dict("records"):
        arch, kw, _ = rows[r["model"]]
        out.append(results.record(
            CHAPTER, table, {"mAP": r["mean"]},
            params={"paper_row": r["paper row"], "arch": arch, **kw, "seeds": list(seeds),
                    "mAP_std_over_seeds": r["std"] if r["seeds"] > 1 else None,
                    "mAP_per_seed": r["per seed"], "frames": frames, "epochs": epochs},
            dataset=data.description, scale=scale, profile=profile,
            model=f"{r['model']} ({r['params (M)']:.2f} M, mean of {r['seeds']} seeds)",
            duration_s=r["train s (sum)"]))
    return out


def seed_summary(runs: pd.DataFrame, metric: str = "test mAP") -> pd.DataFrame:
    """Mean and sample std (ddof=1; NaN with one seed) of ``metric`` over seeds, one row per
    model (first-seen order), with the per-seed values and ``mean +- std`` as text."""
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


def compare_seeds(runs: pd.DataFrame, better: str, worse: str,
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


# ================================================================================== Table I
def k_spec(k: int) -> tuple[str, dict[str, Any], str]:
    """The Table I row of ``k``: ``pyr-tiny`` with k neighbours (no override at the default k,
    so that run is shared with the other notebooks)."""
    return ("pyr-tiny", {} if k == ATGNNConfig.k else {"k": k}, f"k={k}")


def k_sweep(ks: Sequence[int], seeds: Sequence[int], data: TaggingData, recipe: RecipeConfig,
            device: str = "auto", amp: Any = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train ``pyr-tiny`` for every k of ``ks`` with ``seeds[0]`` (the default k with every seed).

    Returns (``runs``: one line per (k, seed) as :func:`train_row`, ``sweep``: the ``seeds[0]``
    lines with an integer column ``k``).
    """
    if not seeds:
        raise ValueError("k_sweep: parameter seeds is empty")
    runs = pd.DataFrame([train_row(f"k={k}", data, recipe, s, spec=k_spec(k), device=device, amp=amp)
                         for k in ks for s in (seeds if k == ATGNNConfig.k else seeds[:1])])
    sweep = runs[runs.seed == seeds[0]].assign(k=lambda d: d["model"].str[2:].astype(int))
    return runs, sweep


def record_k_sweep(sweep: pd.DataFrame, data: TaggingData, *, frames: int, epochs: int, seed: int,
                   scale: str, profile: str) -> list[Path]:
    """One Table I record (test mAP) per k of :func:`k_sweep`'s ``sweep``."""
    return [results.record(CHAPTER, "table1", {"mAP": r["test mAP"]},
                           params={"paper_row": r["paper row"], "k": r["k"], "arch": "pyr-tiny",
                                   "frames": frames, "epochs": epochs, "seed": seed},
                           dataset=data.description, scale=scale, profile=profile,
                           model=f"pyr-tiny k={r['k']} ({r['params'] / 1e6:.2f} M)",
                           duration_s=r["train s"])
            for r in sweep.to_dict("records")]


# ================================================================================== counts
#: Tables II / III: dataset -> (paper table, classes, input (F, T))
COUNT_SETTINGS = {"audioset": ("table2", 527, (128, 1056)), "fsd50k": ("table3", 200, (128, 1024))}
_VARIANT_ROWS = {"pyr-s": "ATGNN-pyr-s", "pyr-med": "ATGNN-pyr-med", "iso": "ATGNN-iso"}
#: full-size baselines of Table II: name -> (shared backbone, build arguments, paper row)
_BASELINES = {"panns": ("panns_cnn14_32k", {}, "PANNs"),
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
    """Trainable / all parameters of the full-size shared backbones standing for Table II's
    baselines (``panns``: PANNs CNN14 32 kHz, ``ast``: AST base384 at 128 x 1024), 527 classes,
    randomly initialised; with ``record``, one Table II ``params`` record each."""
    _check_names("baselines", baselines, _BASELINES)
    rows = []
    for b in baselines:
        name, kw, row = _BASELINES[b]
        model = build_backbone(name, scale=1.0, num_classes=527, **kw)
        n = count_parameters(model)
        rows.append({"row": row, "backbone": name, "trainable (M)": n["trainable"] / 1e6,
                     "all (M)": n["all"] / 1e6})
        if record:
            results.record(CHAPTER, "table2", {"params": n["trainable"]},
                           params={"paper_row": row, "backbone": name, "num_classes": 527,
                                   "count": "trainable params"},
                           dataset="none (counted at the audioset input)", scale="full size",
                           profile=profile, model=f"{row}: shared backbone {name}, 527 classes")
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


def record_label_graph(stats: LabelGraphStats, data: TaggingData, *, frames: int, n_clips: int,
                       epochs: int, seed: int, profile: str) -> Path:
    """The ``label_graph`` record of ``pyr-tiny``: Spearman rho and its p-value."""
    return results.record(CHAPTER, "label_graph", {"spearman_A_vs_lift": stats.rho, "p_value": stats.p_value},
                          params={"arch": "pyr-tiny", "frames": frames, "n_clips": n_clips,
                                  "epochs": epochs, "seed": seed},
                          dataset=data.description, scale=f"{epochs} epochs", profile=profile,
                          model="pyr-tiny")


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
