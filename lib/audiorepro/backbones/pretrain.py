"""Cached supervised pre-training of the CPU-sized backbones on the synthetic world.

No official checkpoint (PANNs, VGGish, AST, PaSST) can be downloaded where this book is built, so
every chapter that needs a *pre-trained* backbone uses the stand-in made here: the CPU-sized
variant of the same architecture (``build_backbone(name, scale="cpu")``), trained once on the
multi-label sound-event clips of the synthetic world (``default_world(n_clips, seed)``: its
``train`` split; the epoch is chosen on its ``valid`` split, and its ``test`` split is scored
once with the kept weights) with the book's one training loop (:func:`audiorepro.training.fit`):
binary cross-entropy, a balanced sampler, AdamW, linear warm-up + cosine decay, SpecAugment and
(optional) mixup. Weights from an official checkpoint load through
``build_backbone(name, checkpoint=path)`` instead; these stand-ins are *not* them.

>>> model, report = pretrained_backbone("panns_cnn14_16k")          # doctest: +SKIP
>>> report.metrics["mAP"], report.test_metrics["mAP"], report.chance  # doctest: +SKIP

Data path (shapes for batch B, M mel bins, F frames at 100 frames/s for every front end):
the world's 10 s clips -> the backbone's official front end (:mod:`audiorepro.frontends`
preset, cached once per clip with :class:`~audiorepro.frontends.CachedFeatureDataset`) ->
features (B, M, F) -> in training, a random crop of ``crop_seconds`` (:class:`TrainCrops`)
whose targets are the classes *sounding in the crop* (the world's event table, ``crop_labels=
"events"``; a 2 s crop of a 10 s clip misses most of the clip's short events, so the clip's
labels would be wrong for it) -> :func:`features_to_input` -> the backbone. Evaluation scores
whole clips (:func:`clip_logits`): non-overlapping windows of the training length (VGGish: its
0.96 s examples) pooled by the maximum over windows (``clip_pooling``).

Caching: one run folder per backbone and configuration,
``paths.cache_dir("pretrained", f"{name}_{scale}_{key}")`` where ``key`` is
:func:`audiorepro.caching.run_key` of the configuration (backbone, scale, front end, crop,
augmentation, training configuration), the clip table's fingerprint and the source of the
backbones and the core training code (:data:`PRETRAIN_CODE`); it holds the
:func:`~audiorepro.training.fit` run (``checkpoint.pt`` after each epoch, so an interrupted run
resumes; ``result.pt`` + ``done.json`` when finished, the checkpoint then deleted),
``pretrain.json`` (the configuration) and
the test scoring (``test.json``, ``test_items.npz``). A finished run is loaded without training.
A file lock serialises concurrent callers.
"""
from __future__ import annotations

import contextlib
import copy
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

from .. import caching, paths
from ..augment import SpecAugment, mixup
from ..data.cliptable import ClipTable
from ..data.audio import load_audio
from ..data.dataset import ClipDataset
from ..fileio import atomic_write, atomic_write_text
from ..frontends import CachedFeatureDataset, FeatureCache, FrontEnd, make_frontend
from ..metrics import random_ranking_map, tagging_metrics
from ..training import balanced_sampler, fit, make_loader, pick_device
from ..training import checkpoint as ckpt
from ..training.config import TrainConfig
from ..training.history import history_frame
from . import Backbone, build_backbone
from .counting import count_parameters

__all__ = ["PRETRAIN_CODE", "CPU_BACKBONES", "ALIASES", "PROFILES", "BACKBONE_SETTINGS",
           "NAME_SETTINGS", "PretrainReport", "PretrainError", "pretrained_backbone", "pretrain_all",
           "pretrain_config", "resolve_name", "family_of", "features_to_input", "clip_logits",
           "TrainCrops", "event_frames", "crop_targets", "pretraining_table", "run_dir_for", "backbone_overview",
           "reference_manifest_dir", "chance_map", "profile_table", "profile_world", "report_list"]

#: the code a pre-training run executes (the ``code`` part of its cache key, :func:`run_dir_for`)
PRETRAIN_CODE: tuple[str, ...] = ("audiorepro.backbones", *caching.CORE_TRAINING_CODE)
CHAPTER = "backbones"
TABLE = "pretraining"
TEST_FILE = "test.json"          # test metrics of the kept weights (in the run folder)
TEST_ITEMS = "test_items.npz"    # test clips' ids, scores and targets (the record's items)

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

#: Profile -> world and training length (the defaults of every family; a family or backbone may
#: override them for a profile in :data:`BACKBONE_SETTINGS` / :data:`NAME_SETTINGS`).
#:
#: How the book profile was chosen (measured on the book world's *valid* split, one seed, test
#: split never used for a choice; CPU times from ``benchmarks/bench_backbones.py
#: --pretrain-budget book`` and end-to-end runs on two idle cores):
#:
#: * ``crop_labels="events"``: CNN10, 16 epochs, valid mAP 0.54 with the classes sounding in the
#:   crop as targets vs 0.44 with the clip's labels (2 s crops of 10 s clips);
#: * ``clip_pooling="max"`` over 2 s windows: CNN10 0.54 vs 0.46 (mean) vs 0.49 (whole clip);
#:   VGGish and PaSST also scored higher with max than with mean;
#: * ``epochs`` / ``batch_size`` per family: as many epochs as the 15-minute budget of the five
#:   backbones allows, spent where the valid mAP still rose (CNNs and VGGish); the transformers
#:   learn slowly from scratch (PaSST 0.20 -> 0.26 valid mAP after 12 epochs when the batch
#:   went from 16 to 8; AST 0.19 after 8), so they get few epochs;
#: * ``n_clips``: the world of 1000 clips was kept: the valid mAP still rose with the epochs,
#:   so these runs are limited by training time rather than by data; more clips were not tried;
#: * ``eval_every_epochs=2``: validation of whole clips costs a quarter of a training epoch.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": dict(n_clips=24, seed=0, epochs=1, batch_size=8, crop_seconds=1.0),
    "book": dict(n_clips=1000, seed=0, epochs=16, batch_size=16, crop_seconds=2.0,
                 eval_every_epochs=2),
}

#: Per-family recipe: learning rate, weight decay, SpecAugment widths relative to the input,
#: mixup alpha, builder keywords of the CPU variant, and per-profile overrides (a nested dict
#: under the profile's name). Measured choices (valid mAP, book world, see :data:`PROFILES`):
#:
#: * PANNs: ``conv_dropout=0`` (official 0.2 after every conv block) and ``fc_dropout=0.2``
#:   (official 0.5): CNN10 0.37 -> 0.54 after 16 epochs (at this width and training length
#:   dropout only slows learning); lr 2e-3 (0.54) over 3e-3 without any dropout (0.52).
#: * VGGish: Kaiming initialisation (``_vgg_init``) and lr 3e-4: 0.36 after 8 epochs (1e-4:
#:   0.25), where PyTorch's default initialisation or torchvision's VGG one at lr 1e-3 stayed
#:   at 0.12 after 16 epochs (initialisation and learning rate were changed together).
#: * AST / PaSST: lr 3e-4 (PaSST after 12 epochs: 1e-4 0.15, 3e-4 0.20, 1e-3 0.14, 3e-3 0.14
#:   at batch 16), batch 8 (0.26 vs 0.20 at 16; batch 4 at lr 2e-4 no better). Not helpful
#:   for PaSST: distillation from the CNN10 stand-in (weight 0.5: 0.14 vs 0.23 after 8 epochs),
#:   patchout of 10 time / 4 frequency columns (0.24 after 16 epochs, the same per CPU
#:   second), gradient clipping at norm 1 (0.18 after 6 of 8 epochs, as without). A run of
#:   8 epochs can also stall near chance (0.11 from epoch 4 on): the transformer stand-ins are
#:   weak and seed-dependent at this budget. AST (book world, valid mAP at the best epoch / test
#:   mAP): 4 epochs 0.127 / 0.119 (it had stalled), 12 epochs 0.305 / 0.264, 16 epochs 0.400 /
#:   0.375 (still rising; about 4 CPU minutes), lr 1e-3 at 12 epochs 0.199, batch 16 at 12 epochs
#:   0.154 (no faster per clip). Mixup: off in every family (not tried).
BACKBONE_SETTINGS: dict[str, dict[str, Any]] = {
    "panns": dict(lr=2e-3, weight_decay=1e-4, freq_mask_frac=0.125, time_mask_frac=0.1,
                  mixup_alpha=0.0, build=dict(conv_dropout=0.0, fc_dropout=0.2)),
    "vggish": dict(lr=3e-4, weight_decay=1e-4, freq_mask_frac=0.125, time_mask_frac=0.1,
                   mixup_alpha=0.0, build={}, book=dict(epochs=24)),
    "ast": dict(lr=3e-4, weight_decay=0.05, freq_mask_frac=0.125, time_mask_frac=0.1,
                mixup_alpha=0.0, build={}, book=dict(epochs=16, batch_size=8)),
    "passt": dict(lr=3e-4, weight_decay=0.05, freq_mask_frac=0.125, time_mask_frac=0.1,
                  mixup_alpha=0.0, build=dict(s_patchout_t=6, s_patchout_f=3),
                  book=dict(epochs=12, batch_size=8)),
}

#: Per-backbone overrides of the family's settings (profile -> entries).
NAME_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {}


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
def _world_table(world: Any, profile: dict[str, Any], progress: bool
                 ) -> tuple[ClipTable, str, pd.DataFrame | None]:
    """(clip table, dataset label, event table or None) of ``world`` (a World, a ClipTable or
    None = the profile's world)."""
    if world is None:
        from ..data.synthetic import default_world
        world = default_world(n_clips=profile["n_clips"], seed=profile["seed"], progress=progress)
    table = getattr(world, "table", world)
    if not isinstance(table, ClipTable):
        raise PretrainError(f"world must be a synthetic World or a ClipTable, got {type(world).__name__}")
    root = getattr(world, "root", table.root)
    events = getattr(world, "events", None)
    return table, f"synthetic world {Path(root).name} ({len(table)} clips)", events


def pretrain_config(name: str, scale: str | float = "cpu", profile: str = "book",
                    table: ClipTable | None = None, **overrides: Any) -> dict[str, Any]:
    """The full configuration of one pre-training run (what the cache key covers).

    Keyword overrides replace entries of the profile / family settings (``epochs``,
    ``batch_size``, ``crop_seconds``, ``lr``, ``weight_decay``, ``mixup_alpha``,
    ``freq_mask_frac``, ``time_mask_frac``, ``warmup_epochs``, ``balanced``, ``seed``, ``build``,
    ``crop_labels`` (``events``: the classes sounding in each crop, from the world's event
    table; ``clip``: the clip's labels), ``min_overlap_s``, ``clip_pooling`` (``mean`` | ``max``
    over the windows of a clip at evaluation; ``whole``: CNNs see the whole clip at once)).
    """
    name = resolve_name(name)
    fam = family_of(name)
    if profile not in PROFILES:
        raise PretrainError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    fam_cfg = copy.deepcopy(BACKBONE_SETTINGS[fam])
    per_profile = {p: fam_cfg.pop(p, {}) for p in PROFILES}
    prof = dict(PROFILES[profile])
    cfg: dict[str, Any] = dict(
        backbone=name, family=fam, scale=scale, profile=profile,
        n_clips=prof["n_clips"], world_seed=prof["seed"], epochs=prof["epochs"],
        batch_size=prof["batch_size"], crop_seconds=prof["crop_seconds"], warmup_epochs=1.0,
        balanced=True, seed=0, clip_seconds=10.0, crop_labels="events", min_overlap_s=0.3,
        clip_pooling="max", eval_every_epochs=prof.get("eval_every_epochs", 1))
    cfg.update(fam_cfg)
    cfg.update(per_profile[profile])
    cfg.update(copy.deepcopy(NAME_SETTINGS.get(name, {}).get(profile, {})))
    unknown = sorted(set(overrides) - set(cfg) - {"frontend"})
    if unknown:
        raise PretrainError(f"pretrain_config: unknown override(s) {unknown}; known: {sorted(cfg)}")
    cfg.update(overrides)
    if cfg["crop_labels"] not in ("events", "clip"):
        raise PretrainError(f"pretrain_config: crop_labels={cfg['crop_labels']!r} must be "
                            "'events' or 'clip'")
    if cfg["clip_pooling"] not in ("mean", "max", "whole") or (
            cfg["clip_pooling"] == "whole" and fam != "panns"):
        raise PretrainError(f"pretrain_config: clip_pooling={cfg['clip_pooling']!r} must be "
                            "'mean', 'max' or (PANNs only) 'whole'")
    preset, fe_over = _frontend_spec(fam, name)
    cfg["frontend"] = {"preset": preset, **fe_over}
    cfg["crop_frames"] = _crop_frames(fam, float(cfg["crop_seconds"]))
    if fam == "ast":   # AST takes exactly input_tdim frames: build it for the crop length
        cfg["build"] = {**cfg["build"], "input_tdim": cfg["crop_frames"]}
    if table is not None:
        cfg["data"] = {"table": table.name, "fingerprint": caching.table_fingerprint(table),
                       "n": len(table), "classes": len(table.classes)}
    return cfg


def run_dir_for(cfg: Mapping[str, Any]) -> Path:
    """``cache/pretrained/<backbone>_<scale>_<key>`` of a configuration, where ``key`` is
    :func:`audiorepro.caching.run_key` of the configuration (without its ``data`` entry), the
    clip table's :func:`~audiorepro.caching.table_fingerprint` and the source of
    :data:`PRETRAIN_CODE`: a changed recipe, clip table, backbone or training loop never reloads
    an old stand-in."""
    params = {k: v for k, v in cfg.items() if k != "data"}
    data = (cfg.get("data") or {}).get("fingerprint")
    key = caching.run_key(params, data=data, code=PRETRAIN_CODE)
    return paths.cache_dir("pretrained", f"{cfg['backbone']}_{cfg['scale']}_{key}")


def _train_config(cfg: Mapping[str, Any], progress: bool) -> TrainConfig:
    return TrainConfig.from_dict(dict(
        epochs=int(cfg["epochs"]), batch_size=int(cfg["batch_size"]), optimizer="adamw",
        lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]), schedule="cosine",
        warmup_epochs=float(cfg["warmup_epochs"]), min_lr=float(cfg["lr"]) / 100,
        eval_every_epochs=int(cfg["eval_every_epochs"]), monitor="mAP", mode="max",
        restore_best=True, seed=int(cfg["seed"]), progress=progress))


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
                valid_frames: int | None = None, pooling: str = "mean") -> torch.Tensor:
    """Clip-level logits (B, C) of whole clips (B, M, F).

    The clip (its first ``valid_frames`` frames) is cut into non-overlapping windows of
    ``crop_frames`` (the last one aligned with the clip end; VGGish: its complete 0.96 s
    examples) and the windows' logits are pooled: ``mean`` or ``max`` over windows. ``whole``
    (CNNs only, ``panns``): the network sees the whole clip at once.
    """
    if pooling not in ("mean", "max", "whole"):
        raise ValueError(f"clip_logits: pooling={pooling!r} must be 'mean', 'max' or 'whole'")
    valid = min(int(valid_frames or feats.shape[-1]), feats.shape[-1])
    feats = feats[..., :valid]
    if pooling == "whole":
        if family != "panns":
            raise ValueError(f"clip_logits: pooling='whole' needs a CNN (panns), not {family!r}")
        return _logits(model, family, feats)
    if family == "vggish":
        n = valid // VGGISH_EXAMPLE_FRAMES
        if n < 1:
            raise ValueError(f"clip of {valid} frames is shorter than one VGGish example")
        x = features_to_input(family, feats[..., :n * VGGISH_EXAMPLE_FRAMES])
        out = model(x)["logits"].reshape(feats.shape[0], n, -1)
    else:
        if valid < crop_frames:
            feats = F.pad(feats, (0, crop_frames - valid))
            valid = crop_frames
        starts = _windows(valid, crop_frames)
        segs = torch.stack([feats[..., s:s + crop_frames] for s in starts], 1)   # (B, W, M, L)
        b, w = segs.shape[:2]
        out = _logits(model, family, segs.reshape(b * w, *segs.shape[2:])).reshape(b, w, -1)
    return out.max(1).values if pooling == "max" else out.mean(1)


def event_frames(events: pd.DataFrame | None, clip_ids: Sequence[str], classes: Sequence[str],
                 frames_per_second: float = FRAMES_PER_SECOND) -> torch.Tensor | None:
    """The audible events of each clip as a padded (N, K, 3) float tensor of (class index,
    onset frame, offset frame) rows in ``clip_ids`` order; padding rows have class -1.

    ``events``: the world's event table (columns ``clip_id``, ``label``, ``onset_s``,
    ``offset_s``, optional ``audible`` and ``parent``: a parent that is one of ``classes``, as in
    a world made with ``parent_labels=True``, sounds when its child does); ``None`` gives
    ``None``. Labels outside ``classes`` raise :class:`PretrainError` naming the clip.
    """
    if events is None:
        return None
    ev = events[events["audible"].astype(bool)] if "audible" in events.columns else events
    pos = {str(c): i for i, c in enumerate(clip_ids)}
    cidx = {c: i for i, c in enumerate(classes)}
    parents = ev["parent"] if "parent" in ev.columns else [None] * len(ev)
    rows: list[list[tuple[float, float, float]]] = [[] for _ in clip_ids]
    for cid, lab, par, on, off in zip(ev["clip_id"].astype(str), ev["label"], parents,
                                      ev["onset_s"], ev["offset_s"]):
        if cid not in pos:
            continue
        if lab not in cidx:
            raise PretrainError(f"event table: clip {cid!r} has event label {lab!r}, which is not "
                                f"one of the table's {len(cidx)} classes")
        for name in (lab, par) if par in cidx else (lab,):   # parent labels of ontology worlds
            rows[pos[cid]].append((float(cidx[name]), on * frames_per_second,
                                   off * frames_per_second))
    k = max(1, max(len(r) for r in rows) if rows else 1)
    out = torch.full((len(rows), k, 3), -1.0)
    for i, r in enumerate(rows):
        if r:
            out[i, :len(r)] = torch.tensor(r)
    return out


def crop_targets(events: torch.Tensor, starts: torch.Tensor, length: int, num_classes: int,
                 min_overlap: float) -> torch.Tensor:
    """Multi-hot targets (B, C) of crops ``[start, start + length)`` from the events inside them.

    ``events``: (B, K, 3) rows (class, onset frame, offset frame) of each crop's clip (class -1 =
    padding, see :func:`event_frames`). A class is active when one of its events overlaps the
    crop by at least ``min(min_overlap, half the event's duration)`` frames (and by more than 0).
    """
    cls, on, off = events.unbind(-1)
    s = starts.to(events.dtype)[:, None]
    overlap = (torch.minimum(off, s + length) - torch.maximum(on, s)).clamp(min=0)
    need = torch.minimum(torch.full_like(on, float(min_overlap)), 0.5 * (off - on))
    active = (cls >= 0) & (overlap > 0) & (overlap >= need)
    y = torch.zeros(events.shape[0], num_classes)
    b, k = active.nonzero(as_tuple=True)
    y[b, cls[b, k].long()] = 1.0
    return y


class TrainCrops:
    """``fit(mixup=...)`` hook of pre-training: turns a batch of whole clips into training crops.

    ``batch["features"]`` (B, M, F) -> independent random crops (B, M, ``length``) from the
    first ``valid`` frames; ``batch["target"]`` -> the crops' targets: with ``events`` (from
    :func:`event_frames`, indexed by ``batch["index"]``) the classes sounding inside each crop
    (:func:`crop_targets`), else the clip's labels; then mixup with a random partner when
    ``alpha > 0`` (one ``lam ~ Beta(alpha, alpha)`` per batch). All draws come from
    ``generator``, which is saved in the run's checkpoints, so a resumed run draws the same crops.
    """

    def __init__(self, length: int, valid: int, events: torch.Tensor | None = None,
                 min_overlap: float = 0.0, alpha: float = 0.0, seed: int = 0) -> None:
        if alpha < 0:
            raise ValueError(f"mixup_alpha={alpha} must be >= 0")
        self.length, self.valid = int(length), int(valid)
        self.events, self.min_overlap, self.alpha = events, float(min_overlap), float(alpha)
        self.generator = torch.Generator().manual_seed(int(seed) + 7919)

    def __call__(self, batch: dict) -> dict:
        feats = batch["features"]
        b = feats.shape[0]
        valid = min(self.valid, feats.shape[-1])
        if valid <= self.length:
            starts = torch.zeros(b, dtype=torch.long)
            x = F.pad(feats[..., :valid], (0, self.length - valid))
        else:
            starts = torch.randint(0, valid - self.length + 1, (b,), generator=self.generator)
            x = torch.stack([feats[i, :, s:s + self.length] for i, s in enumerate(starts.tolist())])
        y = batch["target"].float()
        if self.events is not None:
            idx = torch.as_tensor(batch["index"]).cpu().long()
            y = crop_targets(self.events[idx], starts, self.length, y.shape[-1],
                             self.min_overlap).to(y.device)
        if self.alpha > 0:
            x, y, _ = mixup(x, y, self.alpha, self.generator)
        return {**batch, "features": x, "target": y}


# ------------------------------------------------------------------------------ report
@dataclass
class PretrainReport:
    """Outcome of :func:`pretrained_backbone`.

    Attributes:
        name: registry name; scale / profile: as asked; config: the run configuration.
        metrics: validation ``mAP`` / ``AUC`` / ``d_prime`` / ``loss`` of the kept (best) epoch,
            computed on the world's ``valid`` split (which chose the epoch).
        test_metrics: the same metrics of the kept weights on the ``test`` split, computed once
            after training (empty if the table has no test split).
        chance: expected mAP of a random ranking per split (:func:`chance_map`), ``valid`` and
            (with a test split) ``test``.
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
    test_metrics: dict[str, float] = field(default_factory=dict)
    chance: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def over_chance(self, split: str = "test") -> float:
        """mAP of ``split`` (``valid`` | ``test``) divided by its chance mAP (NaN if unknown)."""
        m = (self.metrics if split == "valid" else self.test_metrics).get("mAP", float("nan"))
        c = self.chance.get(split, float("nan"))
        return float(m / c) if c and np.isfinite(c) else float("nan")

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
        model = build_backbone(cfg["backbone"], scale=cfg["scale"], num_classes=num_classes, **kw)
        if cfg["family"] == "vggish":
            _vgg_init(model)
        return model


def _vgg_init(model: nn.Module) -> None:
    """Kaiming-normal initialisation (ReLU gain, zero biases) of every convolution (fan-out, as
    torchvision's VGG) and linear layer (fan-in) for training VGGish from scratch: PyTorch's
    default initialisation shrinks the signal through its eleven plain (normalisation-free)
    layers (embedding std 0.01 on book features), torchvision's N(0, 0.01) linear layers even
    more (0.002); this keeps it near 0.13 through every layer."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out" if isinstance(m, nn.Conv2d) else "fan_in",
                                    nonlinearity="relu")
            nn.init.zeros_(m.bias)


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
    """One results record per finished run: validation and test metrics, chance mAP per split
    and mAP / chance; the test clips' scores are stored as the record's items."""
    from ..results import record, tagging_items
    m = {k: v for k, v in report.metrics.items() if k in ("mAP", "AUC", "d_prime")
         and np.isfinite(v)}
    if not m:
        return None
    m.update({f"test_{k}": v for k, v in report.test_metrics.items()
              if k in ("mAP", "AUC", "d_prime") and np.isfinite(v)})
    for split, c in report.chance.items():
        m[f"{'' if split == 'valid' else 'test_'}chance_mAP"] = c
        ratio = report.over_chance(split)
        if np.isfinite(ratio):
            m[f"{'' if split == 'valid' else 'test_'}mAP_over_chance"] = ratio
    m["params_trainable"] = report.n_params["trainable"]
    params = {k: v for k, v in report.config.items() if k not in ("data",)}
    params.update(best_epoch=report.best_epoch, epochs_run=report.epochs_run)
    items = None
    if "test_mAP" in m and (report.run_dir / TEST_ITEMS).is_file():
        with np.load(report.run_dir / TEST_ITEMS) as z:
            items = {"test_mAP": tagging_items(z["ids"], z["scores"], z["targets"], metric="mAP")}
    return record(CHAPTER, TABLE, m, params, dataset=report.dataset, scale=str(report.scale),
                  profile=report.profile,
                  model=f"{report.name} scale={report.scale} ({report.n_params['trainable']:,} params)",
                  notes="stand-in for the official weights: supervised pre-training on the "
                        "synthetic world (audiorepro.backbones.pretrain); epoch chosen on the "
                        "valid split, test split scored once with the kept weights",
                  duration_s=report.train_seconds, items=items)


def _make_report(cfg: dict, run_dir: Path, model: Backbone, rows: list[dict], best: dict,
                 summary: dict, from_cache: bool, table: ClipTable, dataset: str) -> PretrainReport:
    metrics = {k: float(v) for k, v in best.items() if k not in ("epoch", "iteration")}
    test = json.loads((run_dir / TEST_FILE).read_text()) if (run_dir / TEST_FILE).is_file() else {}
    chance = {split: chance_map(table, split) for split in ("valid", "test") if _has_split(table, split)}
    return PretrainReport(
        name=cfg["backbone"], scale=cfg["scale"], profile=cfg["profile"], config=cfg,
        metrics=metrics, history=history_frame(rows), best_epoch=int(best.get("epoch", 0)),
        epochs_run=int(summary["epochs_run"]), iterations=int(summary["iterations"]),
        train_seconds=float(summary["duration_s"]), from_cache=from_cache,
        n_params=count_parameters(model), classes=list(table.classes), dataset=dataset,
        run_dir=run_dir, input_frames=int(cfg["crop_frames"]),
        test_metrics={k: float(v) for k, v in test.get("metrics", {}).items()}, chance=chance)


def _has_split(table: ClipTable, split: str) -> bool:
    """``split`` has at least one clip with a positive label."""
    frame = table.frame
    if "split" not in frame.columns or not (frame["split"] == split).any():
        return False
    return bool(table.subset(split).targets().sum() > 0)


def pretrained_backbone(name: str, scale: str | float = "cpu", profile: str = "book",
                        world: Any = None, force: bool = False, progress: bool = True,
                        device: str | torch.device = "auto", record: bool = True,
                        **overrides: Any) -> tuple[Backbone, PretrainReport]:
    """A CPU-sized backbone pre-trained on the synthetic world (trained once, then cached).

    Args:
        name: registry name (``panns_cnn14_16k``, ``panns_cnn10_32k``, ``vggish_harritaylor_core``,
            ``ast_base384_f10_t10_527``, ``passt_s_swa_p16_s10_128_998_527``, other PANNs /
            VGGish / PaSST names) or an alias from :data:`ALIASES` (``vggish``, ``ast``, ``passt_s``).
        scale: size passed to ``build_backbone`` (default ``"cpu"``, the registry's 2-core size).
        profile: ``book`` (see :data:`PROFILES`) or ``smoke`` (24 clips, 1 epoch, seconds).
        world: a :class:`~audiorepro.data.synthetic.World` or :class:`ClipTable` with ``train`` and
            ``valid`` splits (and, to be scored once after training, ``test``) to use instead of
            the profile's world. A bare ClipTable has no event table: pass
            ``crop_labels="clip"``.
        force: delete a cached run and train again.
        progress: progress bars (feature caching, epochs).
        device: where to compute features and train (``"auto"``: CUDA, else MPS, else CPU;
            :func:`audiorepro.training.pick_device`). Not part of the cache key.
        record: write the validation and test metrics to the results registry (chapter
            ``backbones``, table ``pretraining``) once per finished run.
        **overrides: configuration entries (see :func:`pretrain_config`).
    Returns:
        ``(model, report)``: the model on ``device`` in ``eval()`` mode with the best
        validation-mAP weights, its output layer over the world's classes (``report.classes``);
        AST is built for ``report.input_frames`` frames. The model carries ``pretrain_config``.
    """
    name = resolve_name(name)
    if profile not in PROFILES:
        raise PretrainError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    dev = pick_device(device)
    table, dataset, events = _world_table(world, PROFILES[profile], progress)
    cfg = pretrain_config(name, scale, profile, table, **overrides)
    if cfg["crop_labels"] == "events" and events is None:
        raise PretrainError(f"{dataset}: crop_labels='events' needs the world's event table; pass "
                            "a synthetic World (not a bare ClipTable) or crop_labels='clip'")
    run_dir = run_dir_for(cfg)
    with _locked(run_dir):
        if force:
            for child in run_dir.iterdir():
                if child.name != ".lock":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        summary = ckpt.read_done(run_dir)
        if summary is not None:           # cache hit: no training
            model = _build(cfg, len(table.classes))
            res = ckpt.load_result(run_dir)
            model.load_state_dict(res["model"])
            model.to(dev)
            if not (run_dir / TEST_FILE).is_file() and _has_split(table, "test"):
                _score_test(model, cfg, table, run_dir, dev, progress)   # interrupted after fit
            report = _make_report(cfg, run_dir, model, res["rows"], dict(res["best_metrics"]),
                                  summary, True, table, dataset)
        else:
            atomic_write_text(run_dir / "pretrain.json", json.dumps(cfg, indent=1, sort_keys=True,
                                                                    default=str))
            report, model = _train(cfg, table, events, dataset, run_dir, dev, progress)
        model = _finalise(model.to(dev), cfg)
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


@torch.no_grad()
def _clip_scores(model: nn.Module, cfg: Mapping[str, Any], loader: Any, valid_frames: int,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(logits (N, C), targets (N, C), clip ids) of whole clips (:func:`clip_logits`), eval mode."""
    was = model.training
    model.eval()
    outs, tgts, ids = [], [], []
    try:
        for batch in loader:
            feats = batch["features"].to(device)
            outs.append(clip_logits(model, cfg["family"], feats, int(cfg["crop_frames"]),
                                    valid_frames, cfg["clip_pooling"]).float().cpu())
            tgts.append(batch["target"].float().cpu())
            ids += [str(c) for c in batch["clip_id"]]
    finally:
        model.train(was)
    return torch.cat(outs), torch.cat(tgts), ids


def _clip_metrics(logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    m = tagging_metrics(y.numpy(), torch.sigmoid(logits).numpy())
    m["loss"] = float(F.binary_cross_entropy_with_logits(logits, y))
    return m


def _score_test(model: nn.Module, cfg: Mapping[str, Any], table: ClipTable, run_dir: Path,
                device: torch.device, progress: bool) -> dict[str, float]:
    """Score the kept weights once on the ``test`` split; write ``test.json`` (metrics) and
    ``test_items.npz`` (clip ids, sigmoid scores, targets) into the run folder."""
    test_ds, _, valid_frames = _features(table.subset("test"), cfg, device, progress)
    loader = make_loader(test_ds, int(cfg["batch_size"]), shuffle=False, seed=0)
    logits, y, ids = _clip_scores(model, cfg, loader, valid_frames, device)
    metrics = _clip_metrics(logits, y)
    arrays = dict(ids=np.asarray(ids), targets=y.numpy().astype(np.uint8),
                  scores=torch.sigmoid(logits).numpy())
    atomic_write(run_dir / TEST_ITEMS, lambda f: np.savez_compressed(f, **arrays), binary=True)
    atomic_write_text(run_dir / TEST_FILE, json.dumps({"metrics": metrics, "n": len(ids)}, indent=1))
    return metrics


def _train(cfg: dict, table: ClipTable, events: pd.DataFrame | None, dataset: str, run_dir: Path,
           device: torch.device, progress: bool) -> tuple[PretrainReport, Backbone]:
    try:
        train_t, valid_t = table.subset("train"), table.subset("valid")
    except Exception as exc:
        raise PretrainError(f"{dataset}: pre-training needs 'train' and 'valid' splits ({exc})") from exc
    if len(train_t) == 0 or len(valid_t) == 0:
        raise PretrainError(f"{dataset}: empty train ({len(train_t)}) or valid ({len(valid_t)}) split")
    train_ds, frontend, valid_frames = _features(train_t, cfg, device, progress)
    valid_ds, _, _ = _features(valid_t, cfg, device, progress)
    fam, crop = cfg["family"], int(cfg["crop_frames"])
    spec = SpecAugment(int(round(cfg["freq_mask_frac"] * frontend.n_mels)),
                       int(round(cfg["time_mask_frac"] * crop))).train()
    ev = (event_frames(events, list(train_t.frame["clip_id"].astype(str)), table.classes)
          if cfg["crop_labels"] == "events" else None)
    crops = TrainCrops(crop, valid_frames, ev, float(cfg["min_overlap_s"]) * FRAMES_PER_SECOND,
                       float(cfg["mixup_alpha"]), int(cfg["seed"]))

    sampler = balanced_sampler(train_t.targets(), num_samples=len(train_t), seed=int(cfg["seed"])) \
        if cfg["balanced"] else None
    train_loader = make_loader(train_ds, int(cfg["batch_size"]), shuffle=sampler is None,
                               seed=int(cfg["seed"]), sampler=sampler)
    valid_loader = make_loader(valid_ds, int(cfg["batch_size"]), shuffle=False, seed=0)

    def batch_fn(model: nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = spec(batch["features"])                       # (B, M, crop), cropped by TrainCrops
        y = batch["target"].float()
        logits = _logits(model, fam, x)
        return F.binary_cross_entropy_with_logits(logits, y), logits, y

    def evaluate(model: nn.Module, loader: Any) -> dict[str, float]:
        logits, y, _ = _clip_scores(model, cfg, loader, valid_frames, device)
        return _clip_metrics(logits, y)

    model = _build(cfg, len(table.classes), seed=int(cfg["seed"]))
    t0 = time.perf_counter()
    res = fit(model, train_loader, valid_loader, config=_train_config(cfg, progress),
              batch_fn=batch_fn, evaluate_fn=evaluate, run_dir=run_dir, device=device, mixup=crops)
    summary = ckpt.read_done(run_dir) or {"epochs_run": res.epochs_run, "iterations": res.iterations,
                                          "duration_s": time.perf_counter() - t0}
    if _has_split(table, "test"):
        _score_test(res.model, cfg, table, run_dir, device, progress)
    report = _make_report(cfg, run_dir, res.model, res.history.to_dict("records"),
                          dict(res.best_metrics), summary, bool(res.from_cache), table, dataset)
    return report, res.model


def pretrain_all(names: Sequence[str] = CPU_BACKBONES, scale: str | float = "cpu",
                 profile: str = "book", world: Any = None, progress: bool = True,
                 device: str | torch.device = "auto",
                 **kw: Any) -> dict[str, tuple[Backbone, PretrainReport]]:
    """:func:`pretrained_backbone` for several backbones (same world, loaded once) ->
    ``{name: (model, report)}``."""
    if world is None and profile in PROFILES:
        from ..data.synthetic import default_world
        prof = PROFILES[profile]
        world = default_world(n_clips=prof["n_clips"], seed=prof["seed"], progress=progress)
    return {resolve_name(n): pretrained_backbone(n, scale=scale, profile=profile, world=world,
                                                  progress=progress, device=device, **kw)
            for n in names}


def report_list(reports: Mapping[str, PretrainReport] | Sequence[PretrainReport]) -> list[PretrainReport]:
    """The reports of a ``{name: report}`` mapping or a sequence, in order."""
    return list(reports.values()) if isinstance(reports, Mapping) else list(reports)


def pretraining_table(reports: Mapping[str, PretrainReport] | Sequence[PretrainReport]) -> pd.DataFrame:
    """One row per pre-trained backbone: size, crop, epochs, training time, validation scores
    (which chose the epoch) and the test scores of the kept weights, each next to the expected
    mAP of a random ranking on that split and the ratio of the two."""
    rows = []
    for r in report_list(reports):
        rows.append({
            "backbone": r.name, "scale": r.scale, "profile": r.profile,
            "params (trainable)": r.n_params["trainable"],
            "crop (s)": round(r.config["crop_frames"] / FRAMES_PER_SECOND, 2),
            "epochs": r.epochs_run, "best epoch": r.best_epoch,
            "train time (s)": round(r.train_seconds, 1),
            "valid mAP": r.metrics.get("mAP", float("nan")),
            "valid AUC": r.metrics.get("AUC", float("nan")),
            "valid chance mAP": r.chance.get("valid", float("nan")),
            "valid mAP / chance": r.over_chance("valid"),
            "test mAP": r.test_metrics.get("mAP", float("nan")),
            "test AUC": r.test_metrics.get("AUC", float("nan")),
            "test chance mAP": r.chance.get("test", float("nan")),
            "test mAP / chance": r.over_chance("test"),
            "from cache": r.from_cache,
        })
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ overview (book page)
def reference_manifest_dir() -> Path | None:
    """Folder of the reference state-dict manifests (made from the official code with random
    initialisation): ``tests/fixtures/reference_state_dicts`` of the checkout (or of
    ``AUDIOREPRO_HOME``); ``None`` if absent (an installed package without the tests)."""
    repo = Path(__file__).resolve().parents[3]          # lib/audiorepro/backbones -> checkout
    for cand in (repo / "tests" / "fixtures" / "reference_state_dicts",
                 paths.home() / "tests" / "fixtures" / "reference_state_dicts"):
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
        row["reference GMACs (fvcore)"] = ref.get("gflops", np.nan) if ref else np.nan
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
    """Expected mAP of a random ranking on ``split``
    (:func:`audiorepro.metrics.random_ranking_map`: the exact expectation over classes with at
    least one positive clip; on small splits it is above the classes' mean prevalence), the
    baseline the validation mAP is read against."""
    y = table.subset(split).targets()
    if not (y.sum(axis=0) > 0).any():
        raise PretrainError(f"split {split!r} of table {table.name!r} has no positive label")
    return random_ranking_map(y)


def profile_world(profile: str = "book") -> tuple[ClipTable, str]:
    """The clip table of a profile's world (generated on first use) and its dataset name."""
    if profile not in PROFILES:
        raise PretrainError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    table, dataset, _ = _world_table(None, PROFILES[profile], False)
    return table, dataset


def profile_table(profile: str = "book") -> ClipTable:
    """The clip table of a profile's world (generated on first use)."""
    return profile_world(profile)[0]
