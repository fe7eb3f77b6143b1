"""Cached supervised pre-training of the CPU-sized backbones on the synthetic world.

No official checkpoint (PANNs, VGGish, AST, PaSST) can be downloaded where this book is built, so
every chapter that needs a *pre-trained* backbone uses the stand-in made here: the CPU-sized
variant of the same architecture (``build_backbone(name, scale="cpu")``), trained once on the
multi-label sound-event clips of the synthetic world (``default_world(n_clips, seed)``, its
``train`` split; validation mAP / AUC on its ``valid`` split) with the book's one training loop
(:func:`audiorepro.training.fit`): binary cross-entropy, a balanced sampler, AdamW, linear
warm-up + cosine decay, SpecAugment and (optional) mixup. Weights from an official checkpoint
load through ``build_backbone(name, checkpoint=path)`` instead; these stand-ins are *not* them.

>>> model, report = pretrained_backbone("panns_cnn14_16k")          # doctest: +SKIP
>>> report.metrics["mAP"], report.history.tail()                  # doctest: +SKIP

Data path (shapes for batch B, M mel bins, F frames at 100 frames/s for every front end):
the world's 10 s clips -> the backbone's official front end (:mod:`audiorepro.frontends`
preset, cached once per clip with :class:`~audiorepro.frontends.CachedFeatureDataset`) ->
features (B, M, F) -> a random crop of ``crop_seconds`` in training (short crops keep the
budget: all five backbones pre-train in minutes on two cores) -> :func:`features_to_input` ->
the backbone. Validation scores whole clips (:func:`clip_logits`): CNNs see the full clip,
VGGish averages its 0.96 s examples, AST/PaSST average non-overlapping windows of the training
length (segment-and-average).

Caching: one run folder per backbone and configuration,
``paths.cache_dir("pretrained", f"{name}_{hash}")`` where the hash covers the backbone, scale,
front end, crop, augmentation, training configuration and the exact clip table; it holds the
:func:`~audiorepro.training.fit` run (``checkpoint.pt`` after each epoch, so an interrupted run
resumes; ``result.pt`` + ``done.json`` when finished) and ``pretrain.json`` (the configuration).
A finished run is loaded without touching the data. A file lock serialises concurrent callers.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .. import paths
from ..augment import SpecAugment, mixup
from ..data.cliptable import ClipTable
from ..data.audio import load_audio
from ..data.dataset import ClipDataset
from ..fileio import atomic_write_text
from ..frontends import CachedFeatureDataset, FeatureCache, FrontEnd, make_frontend
from ..metrics import tagging_metrics
from ..training import balanced_sampler, fit, make_loader
from ..training import checkpoint as ckpt
from ..training.config import TrainConfig
from ..training.history import history_frame
from . import Backbone, build_backbone
from .counting import count_parameters

__all__ = ["PRETRAIN_VERSION", "CPU_BACKBONES", "ALIASES", "PROFILES", "BACKBONE_SETTINGS",
           "NAME_EPOCHS", "PretrainReport", "PretrainError", "pretrained_backbone", "pretrain_all",
           "pretrain_config", "resolve_name", "family_of", "features_to_input", "clip_logits",
           "FeatureMixup", "pretraining_table", "run_dir_for", "backbone_overview",
           "reference_manifest_dir", "chance_map", "profile_table"]

#: bump when the training recipe changes in a way the configuration does not capture
PRETRAIN_VERSION = 2
CHAPTER = "backbones"
TABLE = "pretraining"

#: The five CPU-sized backbones every chapter may ask for (registry names).
CPU_BACKBONES: tuple[str, ...] = ("panns_cnn14_16k", "panns_cnn10_32k", "vggish_harritaylor_core",
                                  "ast_base384_f10_t10_527", "passt_s_swa_p16_s10_128_998_527")
#: Short names accepted by :func:`pretrained_backbone`.
ALIASES: dict[str, str] = {
    "cnn14": "panns_cnn14_16k", "cnn10": "panns_cnn10_32k", "vggish": "vggish_harritaylor_core",
    "ast": "ast_base384_f10_t10_527", "passt": "passt_s_swa_p16_s10_128_998_527",
    "passt_s": "passt_s_swa_p16_s10_128_998_527",
}
FRAMES_PER_SECOND = 100          # every front end used here has a 10 ms hop
VGGISH_EXAMPLE_FRAMES = 96

#: Profile -> world and training length. ``epochs`` may be overridden per backbone in
#: :data:`BACKBONE_SETTINGS` (``epochs_<profile>``).
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": dict(n_clips=24, seed=0, epochs=1, batch_size=8, crop_seconds=1.0),
    "book": dict(n_clips=1000, seed=0, epochs=5, batch_size=16, crop_seconds=2.0),
}

#: Per-family recipe: learning rate, weight decay, SpecAugment widths relative to the input,
#: mixup alpha, and builder keywords for the CPU variant. Book-profile epochs were chosen from
#: measured CPU time per epoch (2 s crops, batch 16, 700 training clips) so that the five
#: backbones together (plus caching their features) stay within about 10 minutes on two idle
#: cores: CNN14 4, CNN10 5, VGGish 6, AST 4, PaSST 5 epochs.
BACKBONE_SETTINGS: dict[str, dict[str, Any]] = {
    "panns": dict(lr=1e-3, weight_decay=1e-4, epochs_book=5, freq_mask_frac=0.125,
                  time_mask_frac=0.1, mixup_alpha=0.0, build={}),
    "vggish": dict(lr=1e-3, weight_decay=1e-4, epochs_book=6, freq_mask_frac=0.125,
                   time_mask_frac=0.1, mixup_alpha=0.0, build={}),
    "ast": dict(lr=1e-3, weight_decay=0.05, epochs_book=4, freq_mask_frac=0.125,
                time_mask_frac=0.1, mixup_alpha=0.0, build={}),
    "passt": dict(lr=1e-3, weight_decay=0.05, epochs_book=5, freq_mask_frac=0.125,
                  time_mask_frac=0.1, mixup_alpha=0.0,
                  build=dict(s_patchout_t=6, s_patchout_f=3)),
}

#: Per-backbone epochs that differ from the family's (profile -> epochs).
NAME_EPOCHS: dict[str, dict[str, int]] = {"panns_cnn14_16k": {"book": 4},
                                          "panns_cnn14_32k": {"book": 4}}


class PretrainError(RuntimeError):
    """Pre-training cannot run as asked (unknown backbone / profile, unusable data)."""


# ------------------------------------------------------------------------------ names / families
def resolve_name(name: str) -> str:
    """Registry name of ``name`` (aliases such as ``vggish``, ``ast``, ``passt_s`` resolved)."""
    return ALIASES.get(name, name)


def family_of(name: str) -> str:
    """``panns`` | ``vggish`` | ``ast`` | ``passt`` from a registry name (PretrainError otherwise)."""
    for fam in ("panns", "vggish", "ast", "passt"):
        if name.startswith(fam + "_"):
            return fam
    raise PretrainError(f"pre-training supports PANNs, VGGish, AST and PaSST backbones, not {name!r} "
                        f"(CREPE ships trained weights); known: {list(CPU_BACKBONES)}")


def _frontend_spec(fam: str, name: str) -> tuple[str, dict[str, Any]]:
    """(preset, overrides) of the official front end of a backbone family."""
    if fam == "panns":
        return ("panns_16k" if name.endswith("16k") else "panns_32k"), {}
    if fam == "vggish":
        return "vggish", {}
    if fam == "ast":
        return "kaldi_fbank_128", {"target_frames": 1024}   # AST's AudioSet input length
    return "passt", {}


def _crop_frames(fam: str, crop_seconds: float) -> int:
    frames = int(round(crop_seconds * FRAMES_PER_SECOND))
    if fam == "vggish":   # whole 0.96 s examples
        return VGGISH_EXAMPLE_FRAMES * max(1, int(round(frames / VGGISH_EXAMPLE_FRAMES)))
    return max(16, frames)


# ------------------------------------------------------------------------------ configuration
def _table_digest(table: ClipTable) -> str:
    cols = [c for c in ("clip_id", "path", "split", "labels") if c in table.frame.columns]
    text = table.frame[cols].to_csv(index=False) + "|" + ",".join(table.classes)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _world_table(world: Any, profile: dict[str, Any], progress: bool) -> tuple[ClipTable, str]:
    """(clip table, dataset label) of ``world`` (a World, a ClipTable or None = the profile's)."""
    if world is None:
        from ..data.synthetic import default_world
        world = default_world(n_clips=profile["n_clips"], seed=profile["seed"], progress=progress)
    table = getattr(world, "table", world)
    if not isinstance(table, ClipTable):
        raise PretrainError(f"world must be a synthetic World or a ClipTable, got {type(world).__name__}")
    root = getattr(world, "root", table.root)
    return table, f"synthetic world {Path(root).name} ({len(table)} clips)"


def pretrain_config(name: str, scale: str | float = "cpu", profile: str = "book",
                    table: ClipTable | None = None, **overrides: Any) -> dict[str, Any]:
    """The full configuration of one pre-training run (what the cache hash covers).

    Keyword overrides replace entries of the profile / family settings (``epochs``,
    ``batch_size``, ``crop_seconds``, ``lr``, ``weight_decay``, ``mixup_alpha``,
    ``freq_mask_frac``, ``time_mask_frac``, ``warmup_epochs``, ``balanced``, ``seed``, ``build``).
    """
    name = resolve_name(name)
    fam = family_of(name)
    if profile not in PROFILES:
        raise PretrainError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    prof = dict(PROFILES[profile])
    fam_cfg = copy.deepcopy(BACKBONE_SETTINGS[fam])
    epochs = fam_cfg.pop(f"epochs_{profile}", prof["epochs"])
    epochs = NAME_EPOCHS.get(name, {}).get(profile, epochs)
    for k in [k for k in fam_cfg if k.startswith("epochs_")]:
        fam_cfg.pop(k)
    cfg: dict[str, Any] = dict(
        version=PRETRAIN_VERSION, backbone=name, family=fam, scale=scale, profile=profile,
        n_clips=prof["n_clips"], world_seed=prof["seed"], epochs=epochs,
        batch_size=prof["batch_size"], crop_seconds=prof["crop_seconds"], warmup_epochs=1.0,
        balanced=True, seed=0, clip_seconds=10.0, **fam_cfg)
    unknown = sorted(set(overrides) - set(cfg) - {"frontend"})
    if unknown:
        raise PretrainError(f"pretrain_config: unknown override(s) {unknown}; known: {sorted(cfg)}")
    cfg.update(overrides)
    preset, fe_over = _frontend_spec(fam, name)
    cfg["frontend"] = {"preset": preset, **fe_over}
    cfg["crop_frames"] = _crop_frames(fam, float(cfg["crop_seconds"]))
    if fam == "ast":   # AST takes exactly input_tdim frames: build it for the crop length
        cfg["build"] = {**cfg["build"], "input_tdim": cfg["crop_frames"]}
    if table is not None:
        cfg["data"] = {"table": table.name, "digest": _table_digest(table), "n": len(table),
                       "classes": len(table.classes)}
    return cfg


def _config_hash(cfg: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:10]


def run_dir_for(cfg: Mapping[str, Any]) -> Path:
    """``cache/pretrained/<backbone>_<scale>_<hash>`` of a configuration."""
    return paths.cache_dir("pretrained", f"{cfg['backbone']}_{cfg['scale']}_{_config_hash(cfg)}")


def _train_config(cfg: Mapping[str, Any], progress: bool) -> TrainConfig:
    return TrainConfig.from_dict(dict(
        epochs=int(cfg["epochs"]), batch_size=int(cfg["batch_size"]), optimizer="adamw",
        lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]), schedule="cosine",
        warmup_epochs=float(cfg["warmup_epochs"]), min_lr=float(cfg["lr"]) / 100,
        monitor="mAP", mode="max", restore_best=True, seed=int(cfg["seed"]), progress=progress))


# ------------------------------------------------------------------------------ model inputs
def features_to_input(family: str, feats: torch.Tensor) -> torch.Tensor:
    """Cached features (B, M, F) -> the backbone's input.

    ``panns``: (B, 1, F, 64) log-mel (the model's own front end is skipped);
    ``vggish``: (B * F // 96, 1, 96, 64) examples (F must be a multiple of 96);
    ``ast``: (B, F, 128) time-major fbank; ``passt``: (B, 1, 128, F).
    """
    if feats.dim() != 3:
        raise ValueError(f"features must be (B, mel, frames), got {tuple(feats.shape)}")
    if family == "panns":
        return feats.transpose(1, 2).unsqueeze(1)
    if family == "vggish":
        b, m, f = feats.shape
        if f % VGGISH_EXAMPLE_FRAMES:
            raise ValueError(f"VGGish features need a multiple of {VGGISH_EXAMPLE_FRAMES} frames, got {f}")
        ex = feats.transpose(1, 2).reshape(b, f // VGGISH_EXAMPLE_FRAMES, VGGISH_EXAMPLE_FRAMES, m)
        return ex.reshape(-1, 1, VGGISH_EXAMPLE_FRAMES, m)
    if family == "ast":
        return feats.transpose(1, 2)
    if family == "passt":
        return feats.unsqueeze(1)
    raise PretrainError(f"unknown family {family!r}")


def _logits(model: nn.Module, family: str, feats: torch.Tensor) -> torch.Tensor:
    """(B, M, F) features -> (B, C) logits (VGGish: mean over its examples)."""
    out = model(features_to_input(family, feats))["logits"]
    if family == "vggish":
        out = out.reshape(feats.shape[0], -1, out.shape[-1]).mean(1)
    return out


def _windows(valid: int, length: int) -> list[int]:
    """Start frames of non-overlapping windows covering [0, valid) (the last one end-aligned)."""
    if valid <= length:
        return [0]
    starts = list(range(0, valid - length + 1, length))
    if starts[-1] + length < valid:
        starts.append(valid - length)
    return starts


def clip_logits(model: nn.Module, family: str, feats: torch.Tensor, crop_frames: int,
                valid_frames: int | None = None) -> torch.Tensor:
    """Clip-level logits (B, C) of whole clips (B, M, F).

    CNNs (``panns``) see the first ``valid_frames`` frames at once; ``vggish`` averages the
    logits of all complete 0.96 s examples; ``ast`` / ``passt`` average the logits of
    non-overlapping ``crop_frames`` windows (the last one aligned with the clip end).
    """
    valid = min(int(valid_frames or feats.shape[-1]), feats.shape[-1])
    feats = feats[..., :valid]
    if family == "panns":
        return _logits(model, family, feats)
    if family == "vggish":
        n = valid // VGGISH_EXAMPLE_FRAMES
        if n < 1:
            raise ValueError(f"clip of {valid} frames is shorter than one VGGish example")
        return _logits(model, family, feats[..., :n * VGGISH_EXAMPLE_FRAMES])
    if valid < crop_frames:
        feats = F.pad(feats, (0, crop_frames - valid))
        valid = crop_frames
    starts = _windows(valid, crop_frames)
    segs = torch.stack([feats[..., s:s + crop_frames] for s in starts], 1)   # (B, W, M, L)
    b, w = segs.shape[:2]
    out = _logits(model, family, segs.reshape(b * w, *segs.shape[2:]))
    return out.reshape(b, w, -1).mean(1)


def _random_crop(feats: torch.Tensor, length: int, valid: int) -> torch.Tensor:
    """Independent random crops (B, M, length) from the first ``valid`` frames (global RNG)."""
    b = feats.shape[0]
    valid = min(valid, feats.shape[-1])
    if valid <= length:
        out = feats[..., :valid]
        return F.pad(out, (0, length - valid)) if valid < length else out
    starts = torch.randint(0, valid - length + 1, (b,)).tolist()
    return torch.stack([feats[i, :, s:s + length] for i, s in enumerate(starts)])


class FeatureMixup:
    """``fit(mixup=...)`` hook: mixes ``batch["features"]`` and ``batch["target"]`` with a
    random partner (one ``lam ~ Beta(alpha, alpha)`` per batch). Its ``generator`` is saved in
    the run's checkpoints, so a resumed run draws the same mixes."""

    def __init__(self, alpha: float, seed: int = 0) -> None:
        if alpha < 0:
            raise ValueError(f"mixup_alpha={alpha} must be >= 0")
        self.alpha = float(alpha)
        self.generator = torch.Generator().manual_seed(int(seed) + 7919)

    def __call__(self, batch: dict) -> dict:
        x, y, _ = mixup(batch["features"], batch["target"].float(), self.alpha, self.generator)
        return {**batch, "features": x, "target": y}


# ------------------------------------------------------------------------------ report
@dataclass
class PretrainReport:
    """Outcome of :func:`pretrained_backbone`.

    Attributes:
        name: registry name; scale / profile: as asked; config: the run configuration.
        metrics: validation ``mAP`` / ``AUC`` / ``d_prime`` / ``loss`` of the kept (best) epoch,
            computed on the world's ``valid`` split.
        history: tidy fit history (epoch, iteration, split, metric, value).
        best_epoch, epochs_run, iterations: bookkeeping of the run.
        train_seconds: wall time of the training itself (of the original run if cached).
        from_cache: True when the weights were loaded from a finished run.
        n_params: ``count_parameters`` of the returned model.
        classes: the label vocabulary (order of the output layer).
        dataset: which data; run_dir: the cache folder.
        input_frames: frames per training crop (AST's ``input_tdim``).
    """

    name: str
    scale: str | float
    profile: str
    config: dict[str, Any]
    metrics: dict[str, float]
    history: pd.DataFrame
    best_epoch: int
    epochs_run: int
    iterations: int
    train_seconds: float
    from_cache: bool
    n_params: dict[str, int]
    classes: list[str]
    dataset: str
    run_dir: Path
    input_frames: int
    extra: dict[str, Any] = field(default_factory=dict)

    def curves(self) -> pd.DataFrame:
        """One row per epoch: train loss, valid loss / mAP / AUC (wide form)."""
        h = self.history
        wide = h.assign(col=h["split"] + " " + h["metric"]).pivot_table(
            index="epoch", columns="col", values="value", aggfunc="last")
        return wide.reset_index()


# ------------------------------------------------------------------------------ locking
@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Exclusive lock on ``folder/.lock`` (no-op where ``fcntl`` is missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(folder / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------ main entry
def _build(cfg: Mapping[str, Any], num_classes: int, seed: int | None = None) -> Backbone:
    """The backbone of a run; with ``seed`` its random initialisation depends only on the seed
    (the caller's global RNG state is left untouched)."""
    kw = dict(cfg["build"])
    if cfg["family"] == "panns":
        kw["spec_augment"] = False      # masks come from our SpecAugment (same for all families)
    if seed is None:
        return build_backbone(cfg["backbone"], scale=cfg["scale"], num_classes=num_classes, **kw)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return build_backbone(cfg["backbone"], scale=cfg["scale"], num_classes=num_classes, **kw)


def _finalise(model: Backbone, cfg: Mapping[str, Any]) -> Backbone:
    """Builder defaults back on (PANNs' own SpecAugmentation) and eval mode."""
    if cfg["family"] == "panns":
        model.use_spec_augment = True
    model.pretrain_config = dict(cfg)   # type: ignore[attr-defined]
    return model.eval()


@contextlib.contextmanager
def _quiet_resampling() -> Iterator[None]:
    """Silence the per-file resampling notes of :mod:`audiorepro.data.audio` (one line instead)."""
    logger = logging.getLogger(load_audio.__module__)
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)


def _features(table: ClipTable, cfg: Mapping[str, Any], device: torch.device,
              progress: bool) -> tuple[CachedFeatureDataset, FrontEnd, int]:
    """Cached front-end features of ``table`` (computed once per clip and front end)."""
    fe_cfg = dict(cfg["frontend"])
    preset = fe_cfg.pop("preset")
    frontend = make_frontend(preset, **fe_cfg)
    ds = ClipDataset(table, sample_rate=frontend.sample_rate, clip_seconds=float(cfg["clip_seconds"]),
                     crop="start", target="multihot")
    cached = CachedFeatureDataset(ds, frontend, FeatureCache(), device=device)
    with _quiet_resampling():
        cached.precompute(batch_size=8, progress=progress)
    n = ds.clip_samples
    valid = frontend.raw_frames(n) if hasattr(frontend, "raw_frames") else frontend.num_frames(n)
    return cached, frontend, int(valid)


def _record(report: PretrainReport) -> Path | None:
    from ..results import record
    m = {k: v for k, v in report.metrics.items() if k in ("mAP", "AUC", "d_prime")
         and np.isfinite(v)}
    if not m:
        return None
    m["params_trainable"] = report.n_params["trainable"]
    params = {k: v for k, v in report.config.items() if k not in ("data",)}
    params.update(best_epoch=report.best_epoch, epochs_run=report.epochs_run)
    return record(CHAPTER, TABLE, m, params, dataset=report.dataset, scale=str(report.scale),
                  profile=report.profile,
                  model=f"{report.name} scale={report.scale} ({report.n_params['trainable']:,} params)",
                  notes="stand-in for the official weights: supervised pre-training on the "
                        "synthetic world (audiorepro.backbones.pretrain)",
                  duration_s=report.train_seconds)


def _make_report(cfg: dict, run_dir: Path, model: Backbone, rows: list[dict], best: dict,
                 summary: dict, from_cache: bool, classes: list[str], dataset: str) -> PretrainReport:
    metrics = {k: float(v) for k, v in best.items() if k not in ("epoch", "iteration")}
    return PretrainReport(
        name=cfg["backbone"], scale=cfg["scale"], profile=cfg["profile"], config=cfg,
        metrics=metrics, history=history_frame(rows), best_epoch=int(best.get("epoch", 0)),
        epochs_run=int(summary["epochs_run"]), iterations=int(summary["iterations"]),
        train_seconds=float(summary["duration_s"]), from_cache=from_cache,
        n_params=count_parameters(model), classes=list(classes), dataset=dataset,
        run_dir=run_dir, input_frames=int(cfg["crop_frames"]))


def pretrained_backbone(name: str, scale: str | float = "cpu", profile: str = "book",
                        world: Any = None, force: bool = False, progress: bool = True,
                        device: str | torch.device = "cpu", record: bool = True,
                        **overrides: Any) -> tuple[Backbone, PretrainReport]:
    """A CPU-sized backbone pre-trained on the synthetic world (trained once, then cached).

    Args:
        name: registry name (``panns_cnn14_16k``, ``panns_cnn10_32k``, ``vggish_harritaylor_core``,
            ``ast_base384_f10_t10_527``, ``passt_s_swa_p16_s10_128_998_527``, other PANNs /
            VGGish / PaSST names) or an alias from :data:`ALIASES` (``vggish``, ``ast``, ``passt_s``).
        scale: size passed to ``build_backbone`` (default ``"cpu"``, the registry's 2-core size).
        profile: ``book`` (world of 1000 clips) or ``smoke`` (24 clips, 1 epoch, seconds).
        world: a :class:`~audiorepro.data.synthetic.World` or :class:`ClipTable` with ``train`` and
            ``valid`` splits to use instead of the profile's world.
        force: delete a cached run and train again.
        progress: progress bars (feature caching, epochs).
        device: where to train.
        record: write the validation metrics to the results registry (chapter ``backbones``,
            table ``pretraining``) once per finished run.
        **overrides: configuration entries (see :func:`pretrain_config`).
    Returns:
        ``(model, report)``: the model in ``eval()`` mode with the best validation-mAP weights,
        its output layer over the world's classes (``report.classes``); AST is built for
        ``report.input_frames`` frames. The model carries ``pretrain_config``.
    """
    name = resolve_name(name)
    if profile not in PROFILES:
        raise PretrainError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    table, dataset = _world_table(world, PROFILES[profile], progress)
    cfg = pretrain_config(name, scale, profile, table, **overrides)
    run_dir = run_dir_for(cfg)
    with _locked(run_dir):
        if force:
            for child in run_dir.iterdir():
                if child.name != ".lock":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        summary = ckpt.read_done(run_dir)
        if summary is not None:           # cache hit: no data, no training
            model = _build(cfg, len(table.classes))
            res = ckpt.load_result(run_dir)
            model.load_state_dict(res["model"])
            report = _make_report(cfg, run_dir, model, res["rows"], dict(res["best_metrics"]),
                                  summary, True, table.classes, dataset)
            model = _finalise(model, cfg)
            if record:
                _record_once(report)
            return model, report
        atomic_write_text(run_dir / "pretrain.json", json.dumps(cfg, indent=1, sort_keys=True,
                                                                default=str))
        report, model = _train(cfg, table, dataset, run_dir, torch.device(device), progress)
        model = _finalise(model, cfg)
        if record:
            _record_once(report)
        return model, report


def _record_once(report: PretrainReport) -> None:
    """Record a finished run in the registry unless its record file still exists."""
    marker = report.run_dir / "record.json"
    if marker.is_file():
        try:
            if Path(json.loads(marker.read_text())["path"]).is_file():
                return
        except (OSError, ValueError, KeyError):
            pass
    path = _record(report)
    if path is not None:
        atomic_write_text(marker, json.dumps({"path": str(path)}))


def _train(cfg: dict, table: ClipTable, dataset: str, run_dir: Path, device: torch.device,
           progress: bool) -> tuple[PretrainReport, Backbone]:
    fam = cfg["family"]
    try:
        train_t, valid_t = table.subset("train"), table.subset("valid")
    except Exception as exc:
        raise PretrainError(f"{dataset}: pre-training needs 'train' and 'valid' splits ({exc})") from exc
    if len(train_t) == 0 or len(valid_t) == 0:
        raise PretrainError(f"{dataset}: empty train ({len(train_t)}) or valid ({len(valid_t)}) split")
    train_ds, frontend, valid_frames = _features(train_t, cfg, device, progress)
    valid_ds, _, _ = _features(valid_t, cfg, device, progress)
    crop = int(cfg["crop_frames"])
    n_mels = frontend.n_mels
    spec = SpecAugment(int(round(cfg["freq_mask_frac"] * n_mels)),
                       int(round(cfg["time_mask_frac"] * crop))).train()

    sampler = balanced_sampler(train_t.targets(), num_samples=len(train_t), seed=int(cfg["seed"])) \
        if cfg["balanced"] else None
    train_loader = make_loader(train_ds, int(cfg["batch_size"]), shuffle=sampler is None,
                               seed=int(cfg["seed"]), sampler=sampler)
    valid_loader = make_loader(valid_ds, int(cfg["batch_size"]), shuffle=False, seed=0)

    def batch_fn(model: nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = _random_crop(batch["features"], crop, valid_frames)        # (B, M, crop)
        x = spec(x)
        y = batch["target"].float()
        logits = _logits(model, fam, x)
        return F.binary_cross_entropy_with_logits(logits, y), logits, y

    @torch.no_grad()
    def evaluate(model: nn.Module, loader: Any) -> dict[str, float]:
        was = model.training
        model.eval()
        outs, tgts = [], []
        try:
            for batch in loader:
                feats = batch["features"].to(device)
                outs.append(clip_logits(model, fam, feats, crop, valid_frames).float().cpu())
                tgts.append(batch["target"].float())
        finally:
            model.train(was)
        logits, y = torch.cat(outs), torch.cat(tgts)
        m = tagging_metrics(y.numpy(), torch.sigmoid(logits).numpy())
        m["loss"] = float(F.binary_cross_entropy_with_logits(logits, y))
        return m

    model = _build(cfg, len(table.classes), seed=int(cfg["seed"]))
    mix = FeatureMixup(float(cfg["mixup_alpha"]), int(cfg["seed"])) if cfg["mixup_alpha"] > 0 else None
    t0 = time.perf_counter()
    res = fit(model, train_loader, valid_loader, config=_train_config(cfg, progress),
              batch_fn=batch_fn, evaluate_fn=evaluate, run_dir=run_dir, device=device, mixup=mix)
    summary = ckpt.read_done(run_dir) or {"epochs_run": res.epochs_run, "iterations": res.iterations,
                                          "duration_s": time.perf_counter() - t0}
    report = _make_report(cfg, run_dir, res.model, res.history.to_dict("records"),
                          dict(res.best_metrics), summary, bool(res.from_cache), table.classes, dataset)
    return report, res.model


def pretrain_all(names: Sequence[str] = CPU_BACKBONES, scale: str | float = "cpu",
                 profile: str = "book", world: Any = None, progress: bool = True,
                 **kw: Any) -> dict[str, tuple[Backbone, PretrainReport]]:
    """:func:`pretrained_backbone` for several backbones (same world) -> ``{name: (model, report)}``."""
    return {resolve_name(n): pretrained_backbone(n, scale=scale, profile=profile, world=world,
                                                  progress=progress, **kw) for n in names}


def pretraining_table(reports: Mapping[str, PretrainReport] | Sequence[PretrainReport]) -> pd.DataFrame:
    """One row per pre-trained backbone: size, crop, epochs, training time and validation scores."""
    reps = list(reports.values()) if isinstance(reports, Mapping) else list(reports)
    rows = []
    for r in reps:
        rows.append({
            "backbone": r.name, "scale": r.scale, "profile": r.profile,
            "params (trainable)": r.n_params["trainable"],
            "crop (s)": round(r.config["crop_frames"] / FRAMES_PER_SECOND, 2),
            "epochs": r.epochs_run, "best epoch": r.best_epoch,
            "train time (s)": round(r.train_seconds, 1),
            "valid mAP": r.metrics.get("mAP", float("nan")),
            "valid AUC": r.metrics.get("AUC", float("nan")),
            "from cache": r.from_cache,
        })
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ overview (book page)
def reference_manifest_dir() -> Path | None:
    """Folder of the reference state-dict manifests (made from the official code): the test
    fixtures of the repository, else ``../shared/reference_state_dicts``; ``None`` if absent."""
    repo = Path(__file__).resolve().parents[3]          # lib/audiorepro/backbones -> checkout
    for cand in (repo / "tests" / "fixtures" / "reference_state_dicts",
                 paths.home() / "tests" / "fixtures" / "reference_state_dicts",
                 repo.parent / "shared" / "reference_state_dicts"):
        if cand.is_dir():
            return cand
    return None


def _overview_input(model: Backbone, name: str) -> torch.Tensor:
    """The official input of the reference manifests: 10 s of audio (AST: 1024 frames,
    VGGish: one 0.96 s example)."""
    if name.startswith("vggish"):
        return model.example_input(1, 0.96)
    if name.startswith("ast"):
        return model.example_input(1)
    return model.example_input(1, 10.0)


def backbone_overview(names: Sequence[str] | None = None, cpu_scale: str | float = "cpu"
                      ) -> pd.DataFrame:
    """Parameter and FLOP counts of every registered backbone, at full size and CPU size,
    next to the reference manifests' numbers (made from the official code).

    Models are built on the ``meta`` device (no memory, no weights), so full-size counts are
    cheap. Columns: ``ours trainable`` / ``ours all`` (:func:`count_parameters`), ``ours GMACs``
    (``torch.utils.flop_counter`` at the official input / 2), ``reference trainable`` /
    ``reference all`` / ``reference GMACs (fvcore)`` (from the manifest JSON; NaN without one),
    ``params match`` and the CPU variant's ``cpu trainable`` / ``cpu GMACs`` on the same input.
    """
    import warnings

    from . import backbone_spec, list_backbones
    ref_dir = reference_manifest_dir()
    rows = []
    for name in (names or list_backbones()):
        spec = backbone_spec(name)
        row: dict[str, Any] = {"backbone": name, "description": spec.description}
        kw = {"pretrained": False} if name.startswith("crepe") else {}
        for tag, scale in (("ours", 1.0), ("cpu", cpu_scale)):
            with warnings.catch_warnings(), torch.device("meta"):
                warnings.simplefilter("ignore")
                model = build_backbone(name, scale=scale, **kw).eval()
                x = _overview_input(model, name)
                gmacs = count_flops_meta(model, x)
            counts = count_parameters(model)
            if tag == "ours":
                row["input"] = "x".join(map(str, x.shape))
                row["ours trainable"], row["ours all"] = counts["trainable"], counts["all"]
                row["ours GMACs"] = round(gmacs, 3)
            else:
                row["cpu trainable"], row["cpu GMACs"] = counts["trainable"], round(gmacs, 3)
        ref = None
        if ref_dir is not None and spec.manifest and (ref_dir / f"{spec.manifest}.json").is_file():
            ref = json.loads((ref_dir / f"{spec.manifest}.json").read_text())
        row["reference trainable"] = ref["n_params_trainable"] if ref else np.nan
        row["reference all"] = ref["n_params_all"] if ref else np.nan
        row["reference GMACs (fvcore)"] = ref["gflops"] if ref else np.nan
        row["params match"] = (bool(ref["n_params_trainable"] == row["ours trainable"]
                                    and ref["n_params_all"] == row["ours all"]) if ref else None)
        rows.append(row)
    cols = ["backbone", "description", "input", "ours trainable", "reference trainable",
            "ours all", "reference all", "params match", "ours GMACs", "reference GMACs (fvcore)",
            "cpu trainable", "cpu GMACs"]
    return pd.DataFrame(rows)[cols]


def count_flops_meta(model: nn.Module, x: torch.Tensor) -> float:
    """GMACs of one forward pass (``count_flops``; works on ``meta`` tensors)."""
    from .counting import count_flops
    return float(count_flops(model, x))


def chance_map(table: ClipTable, split: str = "valid") -> float:
    """Expected mAP of a random ranking on ``split``: the mean, over classes with at least one
    positive clip, of the share of positive clips (the baseline the validation mAP is read
    against)."""
    y = table.subset(split).targets()
    pos = y.sum(axis=0)
    keep = pos > 0
    if not keep.any():
        raise PretrainError(f"split {split!r} of table {table.name!r} has no positive label")
    return float((pos[keep] / len(y)).mean())


def profile_table(profile: str = "book") -> ClipTable:
    """The clip table of a profile's world (generated on first use)."""
    if profile not in PROFILES:
        raise PretrainError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    return _world_table(None, PROFILES[profile], False)[0]
