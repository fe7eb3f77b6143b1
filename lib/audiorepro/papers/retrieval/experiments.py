"""Experiments of the retrieval chapter: audio encoders frozen or trained end to end, training,
evaluation, records.

* Pre-trained stand-ins (:data:`STAND_INS`, :func:`load_stand_in`, :func:`stand_in_embeddings`,
  :func:`embed_sources`): the CPU-sized PaSST-N/S/S20, CNN10, CNN14 of
  :mod:`audiorepro.backbones.pretrain` as *frozen* audio encoders (the book's fast mode); clip
  embeddings are cached on disk and standardised with the pre-training clips' statistics
  (:class:`~audiorepro.papers.retrieval.model.CachedAudio`).
* End-to-end training (:func:`end_to_end_encoder`, :func:`end_to_end_features`,
  :data:`PAPER_PATCHOUT`; ``run_table3(audio_training="end-to-end")``, the paper's protocol):
  the official weights or a stand-in, trained with the rest on its own log-mel.
* :class:`PairDataset` / :class:`EvalSet` / :func:`collate_pairs` - caption-audio pairs for
  training (keyword swap, random crops) and captions x unique audios for evaluation.
* :func:`train_retrieval` / :func:`evaluate_retrieval` / :func:`rank` - training through the
  shared :func:`audiorepro.training.fit`, evaluation with
  :func:`audiorepro.metrics.retrieval_metrics`, top-k search.
* :class:`RunSpec`, :func:`run_experiment`, :func:`run_stand_in` - one table row; and the
  notebooks' experiments :func:`run_table3`, :func:`run_table4`, :func:`run_segment_lengths`,
  :func:`search_index`; the first three record every row once per seed, with the per-query
  ranks of the test captions (:func:`retrieval_outputs`, :func:`audiorepro.results.
  retrieval_items`) and one ``run_group`` per call. Training keeps the epoch of the best
  *validation* mAP@10; the test split is scored once, for that epoch.
* :func:`table2_parameters` (Table 2's parameter counts, full and CPU size) and
  :func:`table3_coverage` (every Table 3 row: run, or why not).
* :func:`seed_summary` (mean, spread and metric / chance per row) and :func:`decide_claims`
  (the claims of a notebook, decided by :func:`audiorepro.results.evaluate_claim`: a paired
  bootstrap over the test captions, combined with seeds).

Every entry point that trains, embeds or evaluates takes ``device`` (``"auto"``: see
:func:`audiorepro.training.pick_device`); training entry points also take ``amp``
(:class:`audiorepro.training.TrainConfig`).
"""
from __future__ import annotations

import copy
import math
import dataclasses
import hashlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiorepro import caching, paths, results
from audiorepro import metrics as M
from audiorepro.backbones.pretrain import family_of, features_to_input, pretrained_backbone
from audiorepro.data.audio import load_audio
from audiorepro.data.cliptable import split_sizes
from audiorepro.data.synth.sounds import CLASS_NAMES, classes_named_by
from audiorepro.frontends import FeatureCache, make_frontend
from audiorepro.training import fit, pick_device

from audiorepro.papers.retrieval.data import (FEATURE_CODE, PAPER_NAMES, PAPER_ORDER,
                                              CaptionSet, combine, logmel_features, pretrain_set,
                                              project_path, sets_of_combo)
from audiorepro.papers.retrieval.model import (DEFAULT_TAU, SILENCE_LOGMEL, AudioEncoder, CachedAudio, DualEncoder,
                                               TextEncoder, build_audio_encoder, contrastive_loss,
                                               keyword_rephrasings)

__all__ = [
    "STAND_INS", "load_stand_in", "stand_in_embeddings", "OFFICIAL_BACKBONES", "audio_label",
    "checkpoint_embeddings", "embed_sources", "PairDataset", "EvalSet",
    "collate_pairs", "pairs_fingerprint", "embed_audio", "embed_text", "evaluate_retrieval",
    "chance_retrieval", "rank", "train_retrieval", "RunSpec", "run_experiment", "run_stand_in",
    "retrieval_outputs", "seed_summary", "decide_claims", "NOTEBOOK_CLAIMS", "table3_specs",
    "run_table3", "run_table4", "run_segment_lengths", "table3_coverage", "TABLE3_NOT_RUN",
    "NO_STAND_IN", "check_rows", "PAPER_TEXT", "paper_text_model",
    "table2_parameters", "TABLE2_BACKBONES",
    "search_index", "query_hits", "METRICS", "EMBEDDING_CODE", "RUN_CODE",
    "PAPER_PATCHOUT", "AUDIO_TRAINING", "silence_logmel", "end_to_end_encoder", "end_to_end_features",
]

#: the code behind the cached stand-in embeddings (:func:`stand_in_embeddings`: log-mels, the
#: backbones, this module) and behind the cached training runs (:func:`train_retrieval`): a change of
#: any of these modules gives new cache keys (:func:`audiorepro.caching.run_key`)
EMBEDDING_CODE: tuple[str, ...] = (*FEATURE_CODE, "audiorepro.papers.retrieval.experiments",
                                   "audiorepro.backbones")
RUN_CODE: tuple[str, ...] = ("audiorepro.papers.retrieval", *caching.CORE_TRAINING_CODE,
                             "audiorepro.backbones")
#: the metrics of the paper's tables, in their column order
METRICS: tuple[str, ...] = ("mAP@10", "R@1", "R@5", "R@10")

# ===================================================================================== stand-ins
_CLASS_NAMES = frozenset(CLASS_NAMES)

#: Keys of a training recipe (:func:`check_recipe`): the schedule's warm-up (epochs) and cosine
#: floor, the optimiser, the initial temperature, one pass over every caption per epoch.
RECIPE_KEYS: tuple[str, ...] = ("warmup_epochs", "min_lr", "optimizer", "init_tau", "all_captions",
                                "text_dropout")
#: Recipe keys that configure the model or the data rather than the training loop.
MODEL_RECIPE_KEYS = frozenset({"init_tau", "all_captions", "text_dropout"})
#: The paper's recipe (section 3.2: Adam, one warm-up epoch, cosine from the peak rate down to
#: 1e-7; every caption of a clip in each epoch as in the authors' code; temperature 0.01, what
#: every one of the authors' scripts for the paper's experiments passes as ``initial_tau``, their
#: code's default being 0.02). The peak rates (2e-5 pre-training, 8e-6 fine-tuning) are the
#: notebooks' ``lr`` parameter.
PAPER_RECIPE: dict[str, Any] = {"optimizer": "adam", "warmup_epochs": 1, "min_lr": 1e-7,
                                "init_tau": 0.01, "all_captions": True, "text_dropout": 0.2}

#: audio encoders with a pre-trained CPU-sized stand-in (:func:`audiorepro.backbones.pretrain.
#: pretrained_backbone`, trained on the synthetic world ``default_world(1000, seed=0)``, 2 s crops).
STAND_INS: dict[str, str] = {
    "PaSST-S": "passt_s_swa_p16_s10_128_998_527",       # stride 10, 10 s positions
    "PaSST-N": "passt_s_p16_s16_128_1000_527",          # stride 16 (no overlap), 10 s positions
    "PaSST-S20": "passt_s_20sec_p16_s10_128_2000_527",  # stride 10, 20 s positions
    "CNN10": "panns_cnn10_32k",                         # PANNs 32 kHz front end
    "CNN14": "panns_cnn14_16k",                         # PANNs 16 kHz front end
}


def load_stand_in(name: str, profile: str = "book", device: str = "auto") -> tuple[nn.Module, Any]:
    """(backbone in eval mode, pre-training report) of the stand-in of audio encoder ``name``
    (:data:`STAND_INS`); the first call pre-trains it on ``device`` (cached under
    ``cache/pretrained``)."""
    if name in NO_STAND_IN:
        raise KeyError(f"audio encoder {name!r} has no stand-in ({NO_STAND_IN[name]}): give its "
                       f"released weights in parameter checkpoints, e.g. checkpoints: {{{name}: "
                       f"checkpoints/{_official_file_name(name)}}}")
    if name not in STAND_INS:
        raise KeyError(f"no pre-trained stand-in for audio encoder {name!r}; known: {sorted(STAND_INS)}")
    return pretrained_backbone(STAND_INS[name], scale="cpu", profile=profile, progress=False,
                               record=False, device=pick_device(device))


def _pad_min(x: Tensor, frames: int) -> Tensor:
    """(M, T) features padded on the right to at least ``frames`` frames with their minimum."""
    if x.shape[-1] >= frames:
        return x
    return F.pad(x, (0, frames - x.shape[-1]), value=float(x.min()))


def _cached_embeddings(cs: CaptionSet, key: Mapping[str, Any]
                       ) -> tuple[FeatureCache, list[Tensor | None], list[int]]:
    """The feature cache, the cached embedding of every clip of ``cs`` under ``key`` (``None``
    where missing) and the row indices still to compute."""
    cache = FeatureCache()
    out: list[Tensor | None] = []
    todo = []
    for i, (cid, path) in enumerate(zip(cs.frame["clip_id"], cs.frame["path"])):
        arr = cache.load(key, cid, path)
        out.append(None if arr is None else torch.from_numpy(arr))
        if arr is None:
            todo.append(i)
    return cache, out, todo


def _store_embeddings(cache: FeatureCache, key: Mapping[str, Any], cs: CaptionSet,
                      rows: Sequence[int], embs: Sequence[Tensor] | Tensor,
                      out: list[Tensor | None]) -> None:
    """Cache the computed embeddings ``embs`` of rows ``rows`` of ``cs`` and put them in ``out``."""
    for j, e in zip(rows, embs):
        v = e.float().cpu()
        cache.save(key, cs.frame["clip_id"].iloc[j], v.numpy(), cs.frame["path"].iloc[j])
        out[j] = v


def stand_in_embeddings(name: str, cs: CaptionSet, profile: str = "book",
                        segment_seconds: float | None = None, max_seconds: float = 10.0,
                        batch_size: int = 8, device: str = "auto") -> list[Tensor]:
    """Frozen embeddings (list of (D,) float32 CPU tensors) of every clip of ``cs`` by the
    pre-trained stand-in of ``name``, computed on ``device`` and cached on disk per clip (key:
    :func:`audiorepro.caching.run_key` of the stand-in run, segment, front end and
    :data:`EMBEDDING_CODE`).

    Input: the backbone's own front end (PaSST: 128-bin log-mel at 32 kHz; CNN10: PANNs 32 kHz;
    CNN14: PANNs 16 kHz) of the first ``max_seconds`` of each clip. PaSST embeds non-overlapping
    segments of ``segment_seconds`` (default: its positional length) and averages them (paper
    3.4); the CNNs embed the whole clip. D: 192 (PaSST), 128 (CNN10), 512 (CNN14) at CPU scale.
    """
    dev = pick_device(device)
    model, report = load_stand_in(name, profile, dev)
    model = model.to(dev)
    fam = family_of(STAND_INS[name])
    fe_cfg = dict(model.pretrain_config["frontend"])
    preset = fe_cfg.pop("preset")
    seg = (_segment_frames(model, f"stand_in_embeddings({name}, {STAND_INS[name]})", segment_seconds)
           if fam == "passt" else None)
    params = {"what": "retrieval-stand-in", "run": Path(report.run_dir).name, "segment": seg,
              "max_seconds": float(max_seconds), "frontend": preset, **fe_cfg}
    key = {**params, "run_key": caching.run_key(params, code=EMBEDDING_CODE)}
    cache, out, todo = _cached_embeddings(cs, key)
    if todo:
        sub = CaptionSet(cs.name, cs.frame.iloc[todo], cs.note)
        feats = logmel_features(sub, max_seconds=max_seconds, frontend=preset, **fe_cfg)
        with torch.no_grad():
            for k in range(0, len(todo), batch_size):
                chunk = [feats[j].float() for j in range(k, min(k + batch_size, len(todo)))]
                lens = torch.tensor([c.shape[-1] for c in chunk])
                x = torch.zeros(len(chunk), chunk[0].shape[0], int(lens.max()))
                for b, c in enumerate(chunk):
                    x[b, :, :c.shape[-1]] = c
                if fam == "passt":
                    emb = model.embed_long(x.unsqueeze(1).to(dev), segment_frames=seg, lengths=lens)
                else:   # CNNs: one clip at a time (no padding inside the global pooling);
                    # clips under 1 s are padded with their own minimum (CNN14 needs >= ~0.3 s)
                    emb = torch.cat([model(features_to_input(fam, _pad_min(c, 100)[None]).to(dev))["embedding"]
                                     for c in chunk])
                _store_embeddings(cache, key, cs, todo[k:k + len(chunk)], emb, out)
    return out  # type: ignore[return-value]


#: audio encoder -> the registry backbone of its released AudioSet checkpoint, loaded by
#: :func:`checkpoint_embeddings` through ``build_backbone(name, checkpoint=path)``: PaSST-N
#: ``passt-s-f128-p16-s16-ap.468.pt``, PaSST-S the knowledge-distilled ``passt-s-kd-ap.486.pt``
#: (the paper's, AudioSet mAP 48.6; the SWA file ``passt-s-f128-p16-s10-ap.476-swa.pt`` has the
#: same layout and loads too), PaSST-L ``passt-l-kd-ap.47.pt``, PaSST-S20
#: ``passt-s-f128-20sec-p16-s10-ap.474-swa.pt``, CNN10 / CNN14 the PANNs 32 kHz files
#: ``Cnn10_mAP=0.380.pth`` / ``Cnn14_mAP=0.431.pth`` (qiuqiangkong/audioset_tagging_cnn)
OFFICIAL_BACKBONES: dict[str, str] = {
    "PaSST-N": "passt_s_p16_s16_128_1000_527", "PaSST-S": "passt_s_kd_p16_s10_128_998_527",
    "PaSST-L": "passt_l_kd_p16_s10_128_998_527",
    "PaSST-S20": "passt_s_20sec_p16_s10_128_2000_527", "CNN10": "panns_cnn10_32k",
    "CNN14": "panns_cnn14_32k",
}

#: audio encoders without a CPU stand-in, with the reason: a row of theirs runs only from the
#: released weights (parameter ``checkpoints``)
NO_STAND_IN: dict[str, str] = {
    "PaSST-L": "PaSST-L is PaSST-S with 7 of its 12 blocks; at CPU size (4 blocks) its stand-in "
               "would be the PaSST-S stand-in",
}


def audio_label(encoder: str, checkpoint: str | Path = "", training: str = "frozen",
                patchout: Mapping[str, int] | None = None) -> str:
    """How an audio encoder is named in records: the official checkpoint file it was loaded from
    (full size), or its synthetic-world stand-in (labelled as such); frozen, or trained end to
    end (with its patchout)."""
    how = "frozen"
    if training == "end-to-end":
        settings = dict(PAPER_PATCHOUT.get(encoder, {}) if patchout is None else patchout)
        how = "trained end to end" + (
            f", patchout f{settings.get('s_patchout_f', 0)} t{settings.get('s_patchout_t', 0)}"
            if settings and encoder.startswith("PaSST") else "")
    if checkpoint:
        return (f"{encoder} ({OFFICIAL_BACKBONES[encoder]}, full size, {how}, weights "
                f"{Path(checkpoint).name})")
    return f"{encoder} stand-in ({how}, {STAND_INS[encoder]} at CPU scale, synthetic pre-training)"


def _segment_frames(model: nn.Module, name: str, segment_seconds: float | None) -> int:
    """Frames per PaSST segment: its positional length, or ``segment_seconds`` (100 frames/s)."""
    seg = model.input_tdim if segment_seconds is None else int(round(segment_seconds * 100))
    if model.input_tdim < seg < model.input_tdim + model.patch_size:
        seg = model.input_tdim   # "10 s" of a 998-frame model: its full positional length
    if not model.patch_size <= seg <= model.input_tdim:
        raise ValueError(f"{name}: segment_seconds={segment_seconds} gives {seg} frames; the "
                         f"positions of the model cover {model.input_tdim} frames")
    return seg


def _official_file(name: str, checkpoint: str | Path) -> Path:
    """The released file of audio encoder ``name`` (relative paths from the project home);
    KeyError for an encoder without an official loader, FileNotFoundError naming the file."""
    if name not in OFFICIAL_BACKBONES:
        raise KeyError(f"checkpoints: no official checkpoint for audio encoder {name!r}; known: "
                       f"{sorted(OFFICIAL_BACKBONES)}")
    path = project_path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoints[{name!r}]: file {path} not found (the released "
                                f"weights of {OFFICIAL_BACKBONES[name]})")
    return path


def checkpoint_embeddings(name: str, cs: CaptionSet, checkpoint: str | Path,
                          segment_seconds: float | None = None, max_seconds: float = 10.0,
                          batch_size: int = 4, device: str = "auto") -> list[Tensor]:
    """Frozen embeddings (list of (D,) float32 CPU tensors) of every clip of ``cs`` by audio
    encoder ``name`` at full size with the official weights ``checkpoint`` (a released file,
    loaded strictly by ``build_backbone(OFFICIAL_BACKBONES[name], checkpoint=...)``; a relative
    path not found as given is taken relative to the project home), computed on ``device`` and
    cached on disk per clip (key: the backbone, the file's name, size and modification time,
    the segment, ``max_seconds`` and :data:`EMBEDDING_CODE`).

    Input: the first ``max_seconds`` of each clip. PaSST: the official PaSST log-mel
    (:func:`logmel_features`, preset ``passt``: 128 bins at 32 kHz), cut into non-overlapping
    segments of ``segment_seconds`` (default: the positional length, 10 s) whose embeddings are
    averaged (paper section 3.4); D 768. PANNs: the 32 kHz waveform through the model's own
    front end (STFT and log-mel modules of the checkpoint), clips under 1 s zero-padded to 1 s;
    D 512 (CNN10) or 2048 (CNN14)."""
    from audiorepro.backbones.registry import build_backbone
    path = _official_file(name, checkpoint)
    backbone = OFFICIAL_BACKBONES[name]
    dev = pick_device(device)
    st = path.stat()
    params = {"what": "retrieval-official", "backbone": backbone, "file": path.name,
              "size": st.st_size, "mtime_ns": st.st_mtime_ns, "segment_seconds": segment_seconds,
              "max_seconds": float(max_seconds)}
    key = {**params, "run_key": caching.run_key(params, code=EMBEDDING_CODE)}
    cache, out, todo = _cached_embeddings(cs, key)
    if not todo:
        return out   # type: ignore[return-value]
    model = build_backbone(backbone, checkpoint=path).eval().to(dev)
    sub = CaptionSet(cs.name, cs.frame.iloc[todo], cs.note)
    with torch.no_grad():
        if hasattr(model, "embed_long"):   # PaSST
            seg = _segment_frames(model, name, segment_seconds)
            feats = logmel_features(sub, max_seconds=max_seconds, frontend="passt")
            embs = []
            for k in range(0, len(todo), batch_size):
                chunk = [f.float() for f in feats[k:k + batch_size]]
                lens = torch.tensor([c.shape[-1] for c in chunk])
                x = torch.full((len(chunk), 1, chunk[0].shape[0], int(lens.max())), SILENCE_LOGMEL)
                for b, c in enumerate(chunk):
                    x[b, 0, :, :c.shape[-1]] = c
                embs.extend(model.embed_long(x.to(dev), segment_frames=seg, lengths=lens))
        else:                               # PANNs: waveform in, one clip at a time
            sr = int(getattr(model, "sample_rate", 32000))
            embs = []
            for p in sub.frame["path"]:
                wave, _ = load_audio(p, sr, duration_s=max_seconds)
                wave = F.pad(wave, (0, max(0, sr - wave.shape[-1])))
                embs.append(model(wave[None].to(dev))["embedding"][0])
    _store_embeddings(cache, key, cs, todo, embs, out)
    return out   # type: ignore[return-value]


def embed_sources(encoder: str, sources: Mapping[str, CaptionSet], profile: str = "book",
                  segment_seconds: float | None = None, max_seconds: float = 10.0,
                  device: str = "auto", checkpoint: str | Path = "") -> dict[str, list[Tensor]]:
    """Frozen embeddings of every caption set, ``{name: [(D,) per clip]}``: of the official
    weights ``checkpoint`` (:func:`checkpoint_embeddings`) or, when it is empty, of the
    synthetic-world stand-in (:func:`stand_in_embeddings`, pre-training ``profile``)."""
    if checkpoint:
        return {k: checkpoint_embeddings(encoder, v, checkpoint, segment_seconds, max_seconds,
                                         device=device) for k, v in sources.items()}
    return {k: stand_in_embeddings(encoder, v, profile, segment_seconds, max_seconds, device=device)
            for k, v in sources.items()}


# ===================================================================================== end to end
#: structured patchout of each PaSST encoder when it is trained for retrieval, as the paper's
#: Table 2 gives it ("patch out" f; t): frequency rows / time columns of the patch grid dropped per
#: training batch. (The authors' scripts drop 3 frequency rows, not 4, for PaSST-S, PaSST-L and
#: PaSST-S20, and scale S20's time columns with the segment length: 11 / 27 / 53 / 80 for
#: 2 / 5 / 10 / 15 s; PaSST-N's 2; 15 agree.)
PAPER_PATCHOUT: dict[str, dict[str, int]] = {
    "PaSST-N": {"s_patchout_f": 2, "s_patchout_t": 15},
    "PaSST-S": {"s_patchout_f": 4, "s_patchout_t": 50},
    "PaSST-S20": {"s_patchout_f": 4, "s_patchout_t": 80},
    "PaSST-L": {"s_patchout_f": 4, "s_patchout_t": 50},
}
#: segment length (s) at which :data:`PAPER_PATCHOUT`'s time columns apply: PaSST-S20's 80 are
#: those of the authors' 15 s run; the others' are of their 10 s positional length
PATCHOUT_SECONDS: dict[str, float] = {"PaSST-S20": 15.0}


def segment_patchout(encoder: str, segment_seconds: float) -> dict[str, int]:
    """Structured patchout of ``encoder`` trained on ``segment_seconds``-long segments (Fig. 1):
    :data:`PAPER_PATCHOUT`'s frequency rows, its time columns scaled with the segment length as
    the authors' Fig. 1 scripts scale them (PaSST-S20: round(80 s / 15) = 11 / 27 / 53 / 80 for
    2 / 5 / 10 / 15 s), at least 1."""
    if encoder not in PAPER_PATCHOUT:
        raise ValueError(f"{encoder!r} has no patchout (PaSST encoders: {sorted(PAPER_PATCHOUT)})")
    base = PAPER_PATCHOUT[encoder]
    full = PATCHOUT_SECONDS.get(encoder, 10.0)
    return {**base, "s_patchout_t": max(1, int(round(base["s_patchout_t"] * segment_seconds / full)))}


#: audio training modes of the Table 3 rows: ``frozen`` (cached clip embeddings, the projections
#: and text layers trained: the book's fast mode) or ``end-to-end`` (the paper: the audio
#: encoder trained too, PaSST with patchout)
AUDIO_TRAINING = ("frozen", "end-to-end")


def silence_logmel(preset: str, **frontend_kw: Any) -> float:
    """The value a front end gives to silence (one second of zeros, middle frame): PaSST
    ``(log 1e-5 + 4.5) / 5``, PANNs ``10 log10(1e-10) = -100`` dB."""
    fe = make_frontend(preset, **frontend_kw)
    x = fe(torch.zeros(1, int(fe.config.sample_rate)))
    return float(x[..., x.shape[-1] // 2].mean())


def end_to_end_encoder(name: str, checkpoint: str | Path = "", stand_in_profile: str = "book",
                       patchout: Mapping[str, int] | None = None, segment_seconds: float | None = None,
                       device: str = "auto", max_seconds: float = 30.0
                       ) -> tuple[AudioEncoder, str, dict[str, Any]]:
    """An audio encoder to train with the text side, and the front end its input comes from:
    ``(encoder, preset, frontend options)`` for :func:`end_to_end_features`.

    Weights: the official ``checkpoint`` at full size (loaded strictly, as
    :func:`checkpoint_embeddings`), else a copy of the synthetic-world stand-in (pre-training
    ``stand_in_profile``). Input: the encoder's own front end (PaSST: 128-bin log-mel at 32 kHz;
    PANNs: the official 32 kHz log-mel, or the stand-in's preset), padded with its silence.
    PaSST gets structured patchout (``patchout``, default :data:`PAPER_PATCHOUT`; active in
    training only) and embeds segments of ``segment_seconds`` (default its positional length,
    10 s) averaged; a CNN's input is padded with silence to ``max_seconds``, as the reference
    pads every clip before the CNN's global pooling."""
    from audiorepro.backbones.registry import build_backbone
    if checkpoint:
        backbone = build_backbone(OFFICIAL_BACKBONES[name], checkpoint=_official_file(name, checkpoint))
        fam = "passt" if hasattr(backbone, "embed_long") else "panns"
        preset, fe_kw = ("passt", {}) if fam == "passt" else ("panns_32k", {})
    else:
        model, _ = load_stand_in(name, stand_in_profile, device)
        backbone = copy.deepcopy(model).cpu()
        fam = family_of(STAND_INS[name])
        fe_kw = dict(backbone.pretrain_config["frontend"])
        preset = fe_kw.pop("preset")
    seg = None
    if fam == "passt":
        settings = dict(PAPER_PATCHOUT.get(name, {}) if patchout is None else patchout)
        bad = sorted(set(settings) - {"s_patchout_f", "s_patchout_t", "u_patchout"})
        if bad:
            raise ValueError(f"patchout[{name!r}]: unknown key(s) {bad}; use s_patchout_f, "
                             "s_patchout_t, u_patchout")
        for key, value in settings.items():
            setattr(backbone, key, int(value))
        seg = _segment_frames(backbone, f"end_to_end_encoder({name})", segment_seconds)
    else:
        backbone.use_spec_augment = False   # the reference builds the CNNs with 0 SpecAugment stripes
    cnn = fam != "passt"
    encoder = AudioEncoder(backbone.train(), segment_frames=seg, label=name,
                           pad_value=silence_logmel(preset, **fe_kw) if cnn else None,
                           pad_to_frames=int(round(100 * max_seconds)) if cnn else None)
    return encoder, preset, fe_kw


def end_to_end_features(preset: str, frontend_kw: Mapping[str, Any], sources: Mapping[str, CaptionSet],
                        max_seconds: float = 30.0) -> dict[str, list[Tensor]]:
    """Log-mel (M, T_i) of the first ``max_seconds`` of every clip of every caption set, through
    the front end :func:`end_to_end_encoder` named (cached on disk per clip, :func:`logmel_features`)."""
    return {k: logmel_features(v, max_seconds=max_seconds, frontend=preset, **frontend_kw)
            for k, v in sources.items()}


# ===================================================================================== pairs
class PairDataset(torch.utils.data.Dataset):
    """Training pairs ``{"x": (128, T) log-mel, "caption": str, "audio_id": int}``.

    One item per clip whose access draws one of the clip's captions at random, or with
    ``all_captions`` one item per (clip, caption) pair, so that an epoch passes every caption
    once (the reference implementation's epoch; pairs of one clip in a batch are positives of
    each other in :func:`contrastive_loss`). With probability ``p_swap`` the caption is replaced
    by one of its keyword rephrasings (paper 2.6: p = 0.3 during fine-tuning). ``repeats`` lists
    every item that many times per epoch; ``crop_frames`` cuts a random window of that many
    frames from longer clips (``None``: whole clip).
    """

    def __init__(self, cs: CaptionSet, features: Sequence[Tensor], p_swap: float = 0.0,
                 n_rephrasings: int = 5, repeats: int = 1, seed: int = 0,
                 crop_frames: int | None = None, all_captions: bool = False) -> None:
        if len(features) != len(cs):
            raise ValueError(f"PairDataset: {len(features)} feature arrays for {len(cs)} clips of {cs.name!r}")
        if not 0.0 <= p_swap <= 1.0:
            raise ValueError(f"PairDataset: p_swap must lie in [0, 1], got {p_swap}")
        self.cs, self.features, self.p_swap, self.repeats = cs, list(features), float(p_swap), int(repeats)
        self.captions = list(cs.frame["captions"])
        self.aug = [[keyword_rephrasings(c, kw, n_rephrasings, seed) for c in caps]
                    for caps, kw in zip(self.captions, cs.frame["keywords"])] if p_swap > 0 else None
        self.rng = np.random.default_rng(seed)
        self.crop_frames = crop_frames
        #: (clip, caption index or -1 for "draw one") of each item of one repeat
        self.pairs = ([(j, k) for j, caps in enumerate(self.captions) for k in range(len(caps))]
                      if all_captions else [(j, -1) for j in range(len(self.features))])

    def __len__(self) -> int:
        return len(self.pairs) * self.repeats

    def __getitem__(self, i: int) -> dict:
        j, k = self.pairs[i % len(self.pairs)]
        if k < 0:
            k = int(self.rng.integers(len(self.captions[j])))
        cap = self.captions[j][k]
        if self.aug is not None and self.rng.random() < self.p_swap:
            alts = self.aug[j][k]
            cap = alts[int(self.rng.integers(len(alts)))]
        x = self.features[j]
        if self.crop_frames is not None and x.dim() == 2 and x.shape[-1] > self.crop_frames:
            s = int(self.rng.integers(x.shape[-1] - self.crop_frames + 1))
            x = x[:, s:s + self.crop_frames]
        return {"x": x.float(), "caption": cap, "audio_id": j}


class EvalSet(torch.utils.data.Dataset):
    """Unique audios of a caption set for evaluation: item ``{"x", "audio_id"}``; ``captions``
    and ``target`` list every caption with the index of its audio."""

    def __init__(self, cs: CaptionSet, features: Sequence[Tensor]) -> None:
        if len(features) != len(cs):
            raise ValueError(f"EvalSet: {len(features)} feature arrays for {len(cs)} clips of {cs.name!r}")
        self.cs, self.features = cs, list(features)
        self.captions = [c for caps in cs.frame["captions"] for c in caps]
        self.target = np.array([i for i, caps in enumerate(cs.frame["captions"]) for _ in caps], np.int64)
        #: one id per caption (query): ``<clip id>#<caption index>``, the same in every run on
        #: this set, so that two rows are paired query by query
        self.query_ids = [f"{cid}#{k}" for cid, caps in zip(cs.frame["clip_id"], cs.frame["captions"])
                          for k in range(len(caps))]

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.features[i].float(), "audio_id": i}


def collate_pairs(items: list[dict]) -> dict:
    """Pad log-mels to the longest item with the log-mel of silence: ``x`` (B, 1, 128, T),
    ``lengths`` (B,), ``audio_id`` (B,), ``caption`` (list, if present). Items whose ``x`` is a
    (D,) embedding are stacked to ``x`` (B, D) with ``lengths`` None."""
    if items[0]["x"].dim() == 1:   # pre-computed embeddings (D,) -> (B, D)
        out = {"x": torch.stack([it["x"] for it in items]), "lengths": None,
               "audio_id": torch.tensor([it["audio_id"] for it in items])}
        if "caption" in items[0]:
            out["caption"] = [it["caption"] for it in items]
        return out
    t = max(it["x"].shape[-1] for it in items)
    x = torch.full((len(items), 1, items[0]["x"].shape[0], t), SILENCE_LOGMEL)
    for b, it in enumerate(items):
        x[b, 0, :, :it["x"].shape[-1]] = it["x"]
    out = {"x": x, "lengths": torch.tensor([it["x"].shape[-1] for it in items]),
           "audio_id": torch.tensor([it["audio_id"] for it in items])}
    if "caption" in items[0]:
        out["caption"] = [it["caption"] for it in items]
    return out


def _batch_lengths(batch: dict) -> Tensor | None:
    """A batch's valid frames per clip, or ``None`` when none was padded (or ``x`` holds
    embeddings)."""
    lengths = batch.get("lengths")
    return lengths if lengths is not None and bool((lengths != batch["x"].shape[-1]).any()) else None


def _pair_batch_fn(model: nn.Module, batch: dict) -> Tensor:
    m = model.module if hasattr(model, "module") else model
    lengths = _batch_lengths(batch)
    a, t = model(batch["x"], batch["caption"], lengths)
    return contrastive_loss(a, t, batch["audio_id"], m.tau)


def pairs_fingerprint(cs: CaptionSet, features: Sequence[Tensor]) -> str:
    """Fingerprint of training / validation data: the caption set's rows
    (:func:`audiorepro.caching.table_fingerprint`), its keywords and the bytes of every feature
    array (two sets of the same clips with other features, e.g. another segment length, differ)."""
    h = hashlib.sha256()
    for f in features:
        a = f.detach().cpu().contiguous()
        h.update(f"{tuple(a.shape)}{a.dtype}".encode())
        h.update(a.numpy().tobytes())
    return caching.stable_digest({"rows": caching.table_fingerprint(cs.frame),
                                  "keywords": [list(k) for k in cs.frame["keywords"]],
                                  "features": h.hexdigest()})


# ===================================================================================== evaluation
@torch.no_grad()
def embed_audio(model: DualEncoder, ds: EvalSet, batch_size: int = 16, device: str = "auto") -> Tensor:
    """(N, shared_dim) CPU embeddings of the unique audios of ``ds`` (eval mode; the model is
    moved to ``device``)."""
    dev = pick_device(device)
    was = model.training
    model.to(dev).eval()
    out = []
    try:
        for i in range(0, len(ds), batch_size):
            b = collate_pairs([ds[j] for j in range(i, min(i + batch_size, len(ds)))])
            lengths = b["lengths"].to(dev) if b["lengths"] is not None else None
            out.append(model.embed_audio(b["x"].to(dev), lengths).cpu())
    finally:
        model.train(was)
    return torch.cat(out)


@torch.no_grad()
def embed_text(model: DualEncoder, captions: Sequence[str], batch_size: int = 256,
               device: str = "auto") -> Tensor:
    """(Q, shared_dim) CPU caption embeddings (eval mode; the model is moved to ``device``)."""
    was = model.training
    model.to(pick_device(device)).eval()
    try:
        return torch.cat([model.embed_text(list(captions[i:i + batch_size])).cpu()
                          for i in range(0, len(captions), batch_size)])
    finally:
        model.train(was)


def evaluate_retrieval(model: DualEncoder, ds: EvalSet, device: str = "auto") -> dict[str, float]:
    """R@1/5/10, mAP@10 (fractions), median/mean rank over captions x unique audios."""
    a = embed_audio(model, ds, device=device)
    t = embed_text(model, ds.captions, device=device)
    return M.retrieval_metrics((t @ a.t()).numpy(), ds.target)


def chance_retrieval(n_audio: int, k: int = 10) -> dict[str, float]:
    """Expected R@1/5/10 and mAP@k of a random ranking of ``n_audio`` audios (one relevant each):
    R@j = min(j, N) / N, mAP@k = (1/N) sum_{r=1}^{min(k, N)} 1/r."""
    if n_audio < 1:
        raise ValueError(f"chance_retrieval: n_audio must be >= 1, got {n_audio}")
    return {name: M.random_retrieval(n_audio, name) for name in ("R@1", "R@5", "R@10", f"mAP@{k}")}


def rank(model: DualEncoder, queries: Sequence[str], audio_emb: Tensor, k: int = 5,
         device: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` audios per query: (indices (Q, k), cosine similarities (Q, k))."""
    q = embed_text(model, list(queries), device=device)
    s = q @ audio_emb.t()
    v, i = s.topk(min(k, s.shape[1]), dim=1)
    return i.numpy(), v.numpy()


def retrieval_outputs(model: DualEncoder, ds: EvalSet, device: str = "auto") -> tuple[dict[str, float], Any]:
    """(metrics as :func:`evaluate_retrieval`, per-query items) of ``model`` on ``ds``: the items
    are :func:`audiorepro.results.retrieval_items` of ``ds.query_ids`` and the 1-based rank of
    each caption's audio (pessimistic ties), from which every recorded metric is recomputed."""
    a = embed_audio(model, ds, device=device)
    t = embed_text(model, ds.captions, device=device)
    sim = (t @ a.t()).numpy()
    ranks = M.retrieval_ranks(sim, ds.target)
    return M.retrieval_metrics(sim, ds.target), results.retrieval_items(ds.query_ids, ranks,
                                                                         gallery=sim.shape[1])


# ===================================================================================== training
def train_retrieval(model: DualEncoder, train: CaptionSet, train_feats: Sequence[Tensor],
                    valid: CaptionSet, valid_feats: Sequence[Tensor], config: Mapping[str, Any],
                    p_swap: float = 0.0, seed: int = 0, crop_frames: int | None = None,
                    text_lr: float | None = None, run_name: str | None = None,
                    init_from: str | Path | None = None, device: str = "auto",
                    amp: bool | str = False) -> Any:
    """Train ``model`` on ``train`` pairs with :func:`audiorepro.training.fit` on ``device``,
    monitoring validation mAP@10 (best weights restored). Returns the ``FitResult``.

    Trainable text-encoder parameters get ``text_lr`` (default ``lr / 10``), the rest the
    configuration's ``lr``. ``config``: :class:`audiorepro.training.TrainConfig` keys plus
    ``all_captions`` (:class:`PairDataset`) and ``init_tau`` (read by :func:`run_experiment`). ``amp``: autocast mode (:class:`audiorepro.training.TrainConfig`;
    an ``amp`` key of ``config`` wins). ``run_name``: checkpoint under
    ``cache/retrieval/<run_name>-<key>`` (key: :func:`audiorepro.caching.run_key` of the
    configuration, the model, :func:`pairs_fingerprint` of the data and the code) so a finished
    run is loaded instead of retrained. ``init_from``: a state-dict file loaded first
    (pre-train -> fine-tune).
    """
    dev = pick_device(device)
    if init_from is not None:
        model.load_state_dict(torch.load(init_from, map_location="cpu", weights_only=True))
    cfg = {"monitor": "mAP@10", "mode": "max", "progress": False, "seed": seed, "amp": amp,
           **dict(config)}
    fit_cfg = {k: v for k, v in cfg.items() if k not in MODEL_RECIPE_KEYS}
    lr = float(cfg.get("lr", 1e-3))
    text_ids = {id(p) for p in model.text.parameters()}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in text_ids]
    tpar = [p for p in model.text.parameters() if p.requires_grad]
    groups = [{"params": rest, "lr": lr}]
    if tpar:
        groups.append({"params": tpar, "lr": lr / 10 if text_lr is None else float(text_lr)})
    ds = PairDataset(train, train_feats, p_swap=p_swap, seed=seed, crop_frames=crop_frames,
                     all_captions=bool(cfg.get("all_captions", False)))
    bs = int(cfg.get("batch_size", 32))
    loader = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=True, collate_fn=collate_pairs,
                                         generator=torch.Generator().manual_seed(seed),
                                         drop_last=len(ds) > bs)
    run_dir = None
    if run_name:
        init = None if init_from is None else caching.tree_digest(Path(init_from), (Path(init_from).suffix,))
        params = {"cfg": cfg, "p_swap": p_swap, "crop": crop_frames, "text_lr": text_lr,
                  "init": init, "model": repr(model)[:20000],
                  "text": str(getattr(model.text, "folder", getattr(model.text, "name", "")))}
        data = {"train": pairs_fingerprint(train, train_feats),
                "valid": pairs_fingerprint(valid, valid_feats)}
        run_dir = paths.cache_dir("retrieval", f"{run_name}-{caching.run_key(params, data, RUN_CODE)}")
    return fit(model, loader, EvalSet(valid, valid_feats), config=fit_cfg, batch_fn=_pair_batch_fn,
               evaluate_fn=lambda m, d: evaluate_retrieval(m, getattr(d, "dataset", d), device=dev),
               run_dir=run_dir, device=dev, params=groups)


# ===================================================================================== experiments
@dataclass
class RunSpec:
    """One row of a retrieval table.

    Attributes:
        audio: :data:`AUDIO_ENCODERS` name; audio_kw: its builder options (scale, patchout ...).
        text: text-encoder name; text_layers: keep the first k layers (``None``: all).
        pretrain: caption sets (source or paper names, :data:`PAPER_NAMES`) whose clips of every split,
            except the target's valid/test clips, are used for pre-training.
        finetune_epochs: epochs of fine-tuning on the target's train split after pre-training
            (0: none); p_swap: keyword-caption swap probability while fine-tuning.
        paper_row: the paper's row this run stands for.
        text_train_layers: top text-encoder layers fine-tuned (0: frozen; the paper trains all).
        pretrained_row: a fine-tuned row only - the paper's row its pre-training stage stands
            for (the same system before fine-tuning): scored on the test split before the
            fine-tuning starts and recorded under that row (``""``: not recorded).
    """

    audio: str = "PaSST-N"
    audio_kw: dict = field(default_factory=lambda: {"scale": "cpu"})
    text: str = "minilm"
    text_layers: int | None = None
    pretrain: tuple[str, ...] = PAPER_ORDER
    finetune_epochs: int = 0
    p_swap: float = 0.0
    paper_row: str = ""
    text_train_layers: int = 0
    pretrained_row: str = ""

    @property
    def label(self) -> str:
        t = self.text if self.text_layers is None else f"{self.text}-L{self.text_layers}"
        if self.text_train_layers:
            t += f" (top {self.text_train_layers} layers trained)"
        out = f"{self.audio} + {t}, pre-train {'+'.join(self.pretrain)}"
        if self.finetune_epochs:
            out += f", fine-tune{' + keywords' if self.p_swap > 0 else ''}"
        return out


def run_experiment(spec: RunSpec, sources: Mapping[str, CaptionSet], features: Mapping[str, list],
                   pretrain_cfg: Mapping[str, Any], finetune_cfg: Mapping[str, Any],
                   text_encoders: dict | None = None, crop_frames: int | None = 500,
                   segment_frames: int | None = 500, seed: int = 0, target: str = "synthetic",
                   audio_module: nn.Module | None = None, text_lr: float | None = None,
                   standardize: bool = True, device: str = "auto",
                   amp: bool | str = False) -> dict[str, Any]:
    """Pre-train (and optionally fine-tune) one :class:`RunSpec` on ``device``, evaluate on the
    target's test split. ``features[name]`` = :func:`logmel_features` of ``sources[name]`` (same
    order), or, with ``audio_module`` = :class:`CachedAudio`, the frozen
    :func:`stand_in_embeddings`. ``text_encoders`` caches loaded text encoders between runs (their
    caption caches too; a run that fine-tunes text layers trains a copy). ``text_lr``: learning
    rate of the fine-tuned text layers (default: a tenth of the configuration's ``lr``, which the
    projections use; fine-tuning scales it by the fine-tuning ``lr`` over the pre-training
    one). ``pretrain_cfg["init_tau"]``: initial temperature (default :data:`DEFAULT_TAU`).
    ``standardize``: fit a :class:`CachedAudio` to the pre-training clips'
    embeddings first, and a frozen text encoder's vectors to their captions
    (:meth:`DualEncoder.fit_text`). ``amp``: autocast mode of the training loop.

    Returns ``{"metrics": test metrics (fractions), "items": per-query test ranks
    (:func:`retrieval_outputs`), "valid": best validation metrics, "model": DualEncoder, "params":
    audio/text parameter counts, "history": DataFrame}``.
    """
    dev = pick_device(device)
    torch.manual_seed(seed)
    text_encoders = {} if text_encoders is None else text_encoders
    drop = pretrain_cfg.get("text_dropout")
    tkey = (spec.text, spec.text_layers, drop)
    if tkey not in text_encoders:
        text_encoders[tkey] = TextEncoder(spec.text, num_layers=spec.text_layers, dropout=drop)
    text = text_encoders[tkey]
    if spec.text_train_layers:
        # at most every layer of this encoder (e.g. 12 requested, bert-small has 4)
        text = copy.deepcopy(text).set_trainable_layers(min(spec.text_train_layers, text.num_layers))
    audio = audio_module if audio_module is not None else build_audio_encoder(
        spec.audio, segment_frames=segment_frames, **spec.audio_kw)
    model = DualEncoder(audio, text, init_tau=float(pretrain_cfg.get("init_tau", DEFAULT_TAU)))
    feat_of = {cid: f for n in sources for cid, f in zip(sources[n].frame["clip_id"], features[n])}
    tgt = sources[target]
    valid, test = tgt.subset("valid"), tgt.subset("test")
    fv = [feat_of[c] for c in valid.frame["clip_id"]]
    pre = pretrain_set(sources, spec.pretrain, target)
    fp = [feat_of[c] for c in pre.frame["clip_id"]]
    if isinstance(audio, CachedAudio) and not audio.fitted and standardize:
        audio.fit(fp)   # statistics of the pre-training clips only
    if standardize and getattr(text, "trainable_layers", None) == 0:      # a frozen TextEncoder
        model.fit_text([c for cs in pre.frame["captions"] for c in cs])   # and of their captions
    hist = []
    train_kw = dict(seed=seed, crop_frames=crop_frames, text_lr=text_lr, device=dev, amp=amp)
    res = train_retrieval(model, pre, fp, valid, fv, pretrain_cfg, p_swap=0.0, **train_kw)
    hist.append(res.history.assign(stage="pre-train"))
    best = res.best_metrics
    pretrained = None
    test_set = EvalSet(test, [feat_of[c] for c in test.frame["clip_id"]])
    if spec.finetune_epochs and spec.pretrained_row:
        # the pre-trained-only system, scored once before fine-tuning changes it
        pre_metrics, pre_items = retrieval_outputs(res.model, test_set, device=dev)
        pretrained = {"metrics": pre_metrics, "items": pre_items}
    if spec.finetune_epochs:
        ft = tgt.subset("train")
        ff = [feat_of[c] for c in ft.frame["clip_id"]]
        cfg = {**dict(finetune_cfg), "epochs": int(spec.finetune_epochs)}
        if text_lr is not None and "lr" in cfg and "lr" in pretrain_cfg:
            # the text layers' rate falls with the projections' (paper: 2e-5 -> 8e-6 for all)
            train_kw["text_lr"] = text_lr * float(cfg["lr"]) / float(pretrain_cfg["lr"])
        res = train_retrieval(res.model, ft, ff, valid, fv, cfg, p_swap=spec.p_swap, **train_kw)
        hist.append(res.history.assign(stage="fine-tune"))
        best = res.best_metrics
    model = res.model
    # the test split is read once, for the epoch chosen on validation (restored by fit)
    metrics, items = retrieval_outputs(model, test_set, device=dev)
    n_audio = sum(p.numel() for p in model.audio.parameters())
    return {"metrics": metrics, "items": items, "valid": best, "model": model, "pretrained": pretrained,
            "params": {"audio_params": n_audio, "text_params": sum(p.numel() for p in text.parameters())},
            "history": pd.concat(hist, ignore_index=True)}


def run_stand_in(spec: RunSpec, sources: Mapping[str, CaptionSet], embeddings: Mapping[str, list],
                 pretrain_cfg: Mapping[str, Any], finetune_cfg: Mapping[str, Any],
                 text_encoders: dict | None = None, seed: int = 0, target: str = "synthetic",
                 text_lr: float | None = None, device: str = "auto",
                 amp: bool | str = False) -> dict[str, Any]:
    """:func:`run_experiment` on frozen stand-in ``embeddings`` (of ``spec.audio``, from
    :func:`embed_sources`): standardised with the pre-training clips' statistics, then the
    projections, the temperature and ``spec.text_train_layers`` text layers are trained."""
    dim = int(next(iter(embeddings.values()))[0].shape[0])
    return run_experiment(spec, sources, embeddings, pretrain_cfg, finetune_cfg, text_encoders,
                          crop_frames=None, seed=seed, target=target,
                          audio_module=CachedAudio(dim, spec.audio), text_lr=text_lr,
                          device=device, amp=amp)


def _run_end_to_end(spec: RunSpec, sources: Mapping[str, CaptionSet], pretrain_cfg: Mapping[str, Any],
                    finetune_cfg: Mapping[str, Any], text_encoders: dict, feature_cache: dict, *,
                    checkpoint: str | Path, stand_in_profile: str,
                    patchout: Mapping[str, int] | None, max_seconds: float, seed: int, target: str,
                    text_lr: float | None, device: str, amp: bool | str,
                    segment_seconds: float | None = None) -> dict[str, Any]:
    """:func:`run_experiment` with the audio encoder trained too (:func:`end_to_end_encoder`,
    a fresh copy of its weights per run; PaSST embeds segments of ``segment_seconds``, default
    its positional length); the log-mels of every set are computed once per front end
    (``feature_cache``)."""
    torch.manual_seed(seed)
    encoder, preset, fe_kw = end_to_end_encoder(spec.audio, checkpoint, stand_in_profile, patchout,
                                                segment_seconds=segment_seconds, device=device,
                                                max_seconds=max_seconds)
    key = (preset, tuple(sorted((k, str(v)) for k, v in fe_kw.items())), float(max_seconds))
    if key not in feature_cache:
        feature_cache[key] = end_to_end_features(preset, fe_kw, sources, max_seconds)
    return run_experiment(spec, sources, feature_cache[key], pretrain_cfg, finetune_cfg, text_encoders,
                          crop_frames=int(round(100 * max_seconds)), seed=seed, target=target,
                          audio_module=encoder, text_lr=text_lr, device=device, amp=amp)


# ===================================================================================== notebooks
def check_recipe(recipe: Mapping[str, Any] | None) -> dict[str, Any]:
    """The training recipe of a notebook's ``recipe`` parameter (keys of :data:`RECIPE_KEYS`;
    ``{}``: the book's, :data:`PAPER_RECIPE`: the paper's), checked: an unknown key or a bad
    value raises ``ValueError`` naming it."""
    recipe = dict(recipe or {})
    unknown = sorted(set(recipe) - set(RECIPE_KEYS))
    if unknown:
        raise ValueError(f"recipe: unknown key(s) {unknown}; known: {list(RECIPE_KEYS)}")
    for key in ("warmup_epochs", "min_lr"):
        if key in recipe and not float(recipe[key]) >= 0:
            raise ValueError(f"recipe: {key} must be >= 0, got {recipe[key]!r}")
    if "init_tau" in recipe and not float(recipe["init_tau"]) > 0:
        raise ValueError(f"recipe: init_tau must be > 0, got {recipe['init_tau']!r}")
    if "text_dropout" in recipe and not 0 <= float(recipe["text_dropout"]) < 1:
        raise ValueError(f"recipe: text_dropout must lie in [0, 1), got {recipe['text_dropout']!r}")
    if "all_captions" in recipe and not isinstance(recipe["all_captions"], bool):
        raise ValueError(f"recipe: all_captions must be true or false, got {recipe['all_captions']!r}")
    return recipe


def _cosine_cfg(epochs: int | None, batch_size: int, lr: float,
                recipe: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The notebooks' training configuration (cosine schedule, ``recipe`` on top: see
    :func:`check_recipe`); ``epochs`` None: set per run."""
    cfg = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "schedule": "cosine",
           **check_recipe(recipe)}
    if "min_lr" in cfg:
        cfg["min_lr"] = min(float(cfg["min_lr"]), float(lr))
    return cfg if epochs is not None else {k: v for k, v in cfg.items() if k != "epochs"}


def _text_label(spec: RunSpec, text: nn.Module) -> str:
    """How a run's text encoder is named in records: ``MiniLM-L6 (frozen)``, ``bert-base-L12
    (top 1 layers trained)``, a local folder by its folder name."""
    name = "MiniLM" if spec.text == "minilm" else (Path(spec.text).name if Path(spec.text).is_dir()
                                                   else spec.text)
    k = getattr(text, "trainable_layers", 0)
    return (f"{name}-L{getattr(text, 'num_layers', '?')} "
            f"({'top %d layers trained' % k if k else 'frozen'})")


def table3_specs(small_text_layers: int = 2, text_train_layers: int = 0, finetune_epochs: int = 1,
                 p_swap: float = 0.3, text_model: str = "minilm",
                 small_text_model: str = "") -> dict[str, RunSpec]:
    """The rows of Table 3 the book runs, by key: each names the paper row it stands for.

    ``text_model``: the text encoder of every row (a :data:`~audiorepro.papers.retrieval.model.
    TEXT_MODELS` name such as ``bert-base`` or ``roberta-large``, or a local transformers
    folder), or ``paper``: each row's own, as its paper row names it (bert-base, bert-small for
    the smaller-text row, roberta-large for the fine-tuned rows; :func:`paper_text_model`), so
    that no record sits under a row whose text encoder did not run. The smaller text encoder of
    row ``passt_n_small_text`` is ``small_text_model`` when given (e.g. ``bert-small``), else
    the first ``small_text_layers`` layers of ``text_model``."""
    if not str(text_model).strip():
        raise ValueError("table3_specs: parameter text_model is empty; give a text encoder name "
                         "(minilm, bert-base, roberta-large, ...), paper, or a local model folder")
    t = dict(text_train_layers=text_train_layers, text=text_model)
    small = (dict(text=small_text_model, text_train_layers=text_train_layers) if small_text_model
             else dict(text=text_model, text_layers=small_text_layers,
                       text_train_layers=min(text_train_layers, small_text_layers)))
    specs = _table3_rows(t, small, finetune_epochs, p_swap)
    if text_model == PAPER_TEXT:
        specs = {k: dataclasses.replace(s, text=paper_text_model(s.paper_row), text_layers=None,
                                        text_train_layers=text_train_layers)
                 for k, s in specs.items()}
    return specs


#: ``text_model`` value giving every Table 3 row the text encoder its paper row names
PAPER_TEXT = "paper"


def paper_text_model(paper_row: str) -> str:
    """The text encoder a paper row of Table 3 names (``"PaSST-N + roberta-large, fine-tuned"``
    -> ``roberta-large``)."""
    m = re.search(r"\+ ((?:bert|roberta)-[a-z]+)", paper_row)
    if m is None:
        raise ValueError(f"paper row {paper_row!r} names no text encoder")
    return m.group(1)


def _table3_rows(t: Mapping[str, Any], small: Mapping[str, Any], finetune_epochs: int,
                 p_swap: float) -> dict[str, RunSpec]:
    return {
        "passt_n": RunSpec("PaSST-N", paper_row="PaSST-N + bert-base", **t),
        "passt_n_small_text": RunSpec("PaSST-N", paper_row="PaSST-N + bert-small", **small),
        # the other text encoders of the paper's first section (text_model: paper runs each
        # with its own; the book leaves them out: with one text encoder they repeat passt_n)
        "passt_n_bert_large": RunSpec("PaSST-N", paper_row="PaSST-N + bert-large", **t),
        "passt_n_roberta_base": RunSpec("PaSST-N", paper_row="PaSST-N + roberta-base", **t),
        "passt_s": RunSpec("PaSST-S", paper_row="PaSST-S + bert-base", **t),
        # PaSST-L: from its released file only (NO_STAND_IN)
        "passt_l": RunSpec("PaSST-L", paper_row="PaSST-L + bert-base", **t),
        "cnn10": RunSpec("CNN10", paper_row="CNN10 + bert-base", **t),
        "cnn14": RunSpec("CNN14", paper_row="CNN14 + bert-base", **t),
        "finetune": RunSpec("PaSST-N", finetune_epochs=finetune_epochs,
                            paper_row="PaSST-N + roberta-large, fine-tuned",
                            pretrained_row="PaSST-N + roberta-large", **t),
        "finetune_keywords": RunSpec("PaSST-N", finetune_epochs=finetune_epochs, p_swap=p_swap,
                                     paper_row="PaSST-N + roberta-large, fine-tuned + GPT-augment",
                                     **t),
        # the recipe of the previous state of the art (WavCaps, Mei et al. 2023): CNN14 + the
        # text encoder, pre-trained on WavCaps, fine-tuned on the target - run here, not copied
        "wavcaps_cnn14": RunSpec("CNN14", pretrain=("WavCaps",), finetune_epochs=finetune_epochs,
                                 paper_row="WavCaps (CNN14 + bert-base, fine-tuned)", **t),
    }


#: the backbone of each row of the paper's Table 2 (:func:`audiorepro.backbones.registry.
#: build_backbone` names of the released models: CNN14 is the 32 kHz file of AudioSet mAP 43.1;
#: PaSST-L: the architecture of the official ``passt_l_kd`` checkpoint). The CPU-size count uses
#: the row's stand-in (:data:`STAND_INS`) where there is one.
TABLE2_BACKBONES: dict[str, str] = {
    "CNN10": "panns_cnn10_32k", "CNN14": "panns_cnn14_32k",
    "PaSST-L": "passt_l_kd_p16_s10_128_998_527", "PaSST-N": "passt_s_p16_s16_128_1000_527",
    "PaSST-S": "passt_s_kd_p16_s10_128_998_527", "PaSST-S20": "passt_s_20sec_p16_s10_128_2000_527",
}
TABLE2_SCALES = ("full", "cpu")


def table2_parameters(profile: str, scales: Sequence[str] = TABLE2_SCALES,
                      rows: Sequence[str] | None = None,
                      run_group: str | None = None) -> pd.DataFrame:
    """Table 2's parameter counts: every parameter (trainable or not, front-end filters
    included) of each row's backbone (:data:`TABLE2_BACKBONES`) built at ``full`` size (the
    published architecture; recorded under the paper's row) and at ``cpu`` size (the book's
    stand-in; recorded as ``<row> | CPU stand-in``, never beside the paper's number), table
    ``table2``, metric ``params`` (a count). AudioSet mAP is not measured (no AudioSet here).
    Returns one line per (row, scale)."""
    from audiorepro.backbones.counting import count_parameters
    from audiorepro.backbones.registry import build_backbone
    bad = [s for s in scales if s not in TABLE2_SCALES]
    if bad:
        raise ValueError(f"table2_parameters: scales {bad} unknown; use {list(TABLE2_SCALES)}")
    rows = list(TABLE2_BACKBONES) if rows is None else list(rows)
    unknown = [r for r in rows if r not in TABLE2_BACKBONES]
    if unknown:
        raise KeyError(f"table2_parameters: rows {unknown} unknown; use {list(TABLE2_BACKBONES)}")
    run_group = run_group or results.new_run_group()
    out = []
    for row in rows:
        for scale in scales:
            name = TABLE2_BACKBONES[row] if scale == "full" else STAND_INS.get(row, TABLE2_BACKBONES[row])
            model = build_backbone(name) if scale == "full" else build_backbone(name, scale="cpu")
            n = count_parameters(model)["all"]
            del model
            rec_row = (row if scale == "full" else f"{row} | CPU size, no stand-in"
                       if row in NO_STAND_IN else f"{row} | CPU stand-in")
            results.record("retrieval", "table2", {"params": n},
                           {"paper_row": rec_row, "backbone": name, "scale": scale,
                            "run_group": run_group},
                           dataset="none (architecture)", scale=scale, profile=profile,
                           model=f"{name} ({scale} size)")
            out.append({"row": row, "backbone": name, "size": scale, "parameters": n})
    return pd.DataFrame(out)


#: Table 3 rows this chapter does not run, with the reason (every other row is a key of
#: :func:`table3_specs`, or the pre-trained-only baseline recorded by :func:`run_table3`)
TABLE3_NOT_RUN: dict[str, str] = {
    "DCASE baseline (CNN14 + all-mpnet-base-v2)": (
        "the DCASE 2023 task 6b organisers' baseline, a published system of other authors with "
        "its own recipe and checkpoints; the paper quotes its score, it does not rerun it, and "
        "rebuilding it here would test their recipe, not this paper's"),
}


def _official_file_name(encoder: str) -> str:
    from audiorepro.backbones.official import OFFICIAL_CHECKPOINTS
    spec = OFFICIAL_CHECKPOINTS.get(OFFICIAL_BACKBONES.get(encoder, ""))
    return spec.file_name if spec is not None else "<released file>"


def check_rows(rows: Sequence[str], specs: Mapping[str, RunSpec],
               checkpoints: Mapping[str, Any]) -> None:
    """Stop before anything trains when parameter ``rows`` names a row ``specs`` does not have,
    ``checkpoints`` an audio encoder without an official file, or a row's audio encoder has
    neither a stand-in nor a checkpoint (:data:`NO_STAND_IN`); the error names the parameter."""
    unknown = [r for r in rows if r not in specs]
    if unknown:
        raise ValueError(f"parameter rows: unknown row(s) {unknown}; choose from {list(specs)}")
    unknown = [k for k in checkpoints if k not in OFFICIAL_BACKBONES]
    if unknown:
        raise ValueError(f"parameter checkpoints: unknown audio encoder(s) {unknown}; use "
                         f"{list(OFFICIAL_BACKBONES)}")
    for r in rows:
        enc = specs[r].audio
        if enc in NO_STAND_IN and not checkpoints.get(enc):
            raise ValueError(f"parameter rows: row {r!r} needs the released {enc} weights: "
                             f"{NO_STAND_IN[enc]}; give checkpoints: {{{enc}: checkpoints/"
                             f"{_official_file_name(enc)}}} or leave the row out")


def table3_coverage(specs: Mapping[str, RunSpec] | None = None,
                    rows: Sequence[str] | None = None) -> pd.DataFrame:
    """Every row of the paper's Table 3 with what this chapter does with it: the key of
    ``specs`` (default :func:`table3_specs`) that runs it and the encoders that run
    (:attr:`RunSpec.label`), or the reason it is not run (:data:`TABLE3_NOT_RUN`); with ``rows``
    (the run's parameter), a key left out of them is named with the reason: its system is
    another run row's (the same encoders, data and recipe under this run's text encoders),
    its audio encoder has no CPU stand-in, or the run's choice."""
    specs = table3_specs() if specs is None else specs
    # paper row -> (key of the spec that runs it, how)
    by_row = {s.paper_row: (k, "") for k, s in specs.items()}
    for k, s in specs.items():
        if s.pretrained_row and s.finetune_epochs:
            by_row.setdefault(s.pretrained_row, (k, " (its pre-training stage, scored before the "
                                                    "fine-tuning)"))
    system = lambda spec: dataclasses.replace(spec, paper_row="", pretrained_row="")
    table_rows = [r for r in results.paper_numbers("retrieval").query("table == 'table3'")["row"].unique()]
    out = []
    for r in table_rows:
        key, how = by_row.get(r, ("", ""))
        if key and rows is not None and key not in rows:
            spec = specs[key]
            twin = [k for k in rows if k in specs and system(specs[k]) == system(spec)]
            if twin:
                why = (f": with this run's text encoders it is the system of row {twin[0]} "
                       f"({spec.text}), so it would repeat that row")
            elif spec.audio in NO_STAND_IN:
                why = f": {NO_STAND_IN[spec.audio]}, so it runs from the released weights only"
            else:
                why = " (the run's choice; the paper profile runs it)"
            out.append({"paper row": r, "this chapter": f"not in this run: row key {key} is not "
                                                         f"in parameter rows{why}"})
        elif key:
            ran = specs[key].label.split(", pre-train")[0]
            out.append({"paper row": r, "this chapter": f"run: {key}{how}, {ran}"})
        elif r in TABLE3_NOT_RUN:
            out.append({"paper row": r, "this chapter": f"not run: {TABLE3_NOT_RUN[r]}"})
        else:
            raise KeyError(f"table3_coverage: paper row {r!r} is neither run nor listed in "
                           "TABLE3_NOT_RUN")
    return pd.DataFrame(out)


def _world(target: str, world_seed: int) -> str:
    """`` (world seed N)`` for the book's synthetic target, nothing for real data."""
    return f" (world seed {world_seed})" if target == "synthetic" else ""


def _text_of(run: Mapping[str, Any]) -> Any:
    """The text encoder of a run's model (``None`` when the run holds no model)."""
    return getattr(run.get("model"), "text", None)


def _table_of(paper_table: str, target: str) -> str:
    """The table a run is recorded in: the paper's (``table3`` ...) when the target is one of
    the paper's sets or the book's stand-in for it, else the user's task name (never beside a
    paper number it does not correspond to)."""
    return paper_table if target in PAPER_NAMES else str(target)


def _test_description(sources: Mapping[str, CaptionSet], target: str) -> str:
    return (f"{target} test split ({len(sources[target].subset('test'))} audios, "
            "captions x unique audios)")


def _role_sources(sources: Mapping[str, CaptionSet], names: Sequence[str]) -> dict[str, str]:
    """{paper's set name: what stood in for it (the caption set's note, e.g. a synthetic
    fall-back)} of the caption sets ``names`` (source or paper names)."""
    by_paper = {PAPER_NAMES.get(k, k): k for k in sources}
    out = {}
    for n in names:
        k = n if n in sources else by_paper.get(n)
        if k is not None:
            out[PAPER_NAMES.get(k, k)] = f"{k}: {sources[k].note or sources[k].name}"
    return out


def _check_seeds(seeds: Sequence[int], where: str) -> list[int]:
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError(f"{where}: parameter seeds is empty")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{where}: parameter seeds repeats a seed: {seeds}")
    return seeds


def _record(table: str, paper_row: str, out: Mapping[str, Any], metrics: Sequence[str],
            params: Mapping[str, Any], *, seed: int, run_group: str, **kw: Any) -> None:
    """One record of one row and seed, with the per-query test ranks as its items."""
    results.record("retrieval", table, {k: out["metrics"][k] for k in metrics},
                   {"paper_row": paper_row, **params, "seed": seed, "run_group": run_group},
                   items=out["items"], **kw)


def run_table3(rows: Sequence[str], specs: Mapping[str, RunSpec], sources: Mapping[str, CaptionSet],
               target: str, embeddings: Mapping[str, Mapping[str, list]], *, pretrain_epochs: int,
               batch_size: int, lr: float, text_lr: float, seeds: Sequence[int], profile: str,
               world_seed: int, real_clips: int, stand_in_profile: str,
               run_group: str | None = None, device: str = "auto",
               amp: bool | str = False, checkpoints: Mapping[str, str] | None = None,
               data: Mapping[str, Any] | None = None,
               recipe: Mapping[str, Any] | None = None, audio_training: str = "frozen",
               patchout: Mapping[str, Mapping[str, int]] | None = None,
               max_seconds: float = 10.0) -> tuple[dict[str, list[dict]], pd.DataFrame]:
    """Train and score the Table 3 ``rows`` (keys of ``specs``) on the frozen audio
    ``embeddings[audio encoder]`` (:func:`embed_sources`: official ``checkpoints[encoder]`` or
    the stand-in), or with ``audio_training="end-to-end"`` (the paper) with the audio encoder
    trained too (:func:`end_to_end_encoder`: the same weights, patchout ``patchout[encoder]``,
    default :data:`PAPER_PATCHOUT`; input the first ``max_seconds`` of each clip; ``embeddings``
    unused), once per seed of ``seeds``; record each (row, seed) (table ``table3``, under
    its ``paper_row``; a fine-tuned row with a ``pretrained_row`` also its pre-training stage,
    scored before the fine-tuning, under that row: the baseline of the fine-tuning claim) with
    its per-query test ranks and
    one ``run_group`` (new unless given). ``data``: the data parameters (``data_root`` /
    ``clip_table``), stored in every record. A target that is not one of the paper's sets (a
    user's clip table, its task name) is recorded in table ``<target>`` and every row is
    pre-trained on the target's train split alone. Returns ``(runs: {key: [run per seed]},
    per-seed table: row, run, seed, R@k, mAP@10)``. Fine-tuning uses ``lr / 2.5`` (the paper:
    2e-5, then 8e-6). ``recipe``: warm-up, cosine floor, optimiser, initial temperature, all
    captions per epoch (:func:`check_recipe`; :data:`PAPER_RECIPE` is the paper's)."""
    check_rows(rows, specs, checkpoints or {})
    seeds = _check_seeds(seeds, "run_table3")
    if audio_training not in AUDIO_TRAINING:
        raise ValueError(f"audio_training={audio_training!r}: use one of {list(AUDIO_TRAINING)}")
    patchout = dict(patchout or {})
    run_group = run_group or results.new_run_group()
    checkpoints, table, own = dict(checkpoints or {}), _table_of("table3", target), target not in PAPER_NAMES
    pre_cfg = _cosine_cfg(pretrain_epochs, batch_size, lr, recipe)
    ft_cfg = _cosine_cfg(None, batch_size, lr / 2.5, recipe)
    text_cache: dict = {}
    feature_cache: dict = {}
    scale_note = (f"{target} n{len(sources[target])}{_world(target, world_seed)} + other sets of "
                  f"{real_clips or 'all'} clips; {pretrain_epochs} pre-train epochs; "
                  f"stand-ins: {stand_in_profile} profile")
    dataset = _test_description(sources, target)
    runs: dict[str, list[dict]] = {}
    lines = []
    for key in rows:
        spec = dataclasses.replace(specs[key], pretrain=(target,)) if own else specs[key]
        for seed in seeds:
            t0 = time.time()
            if audio_training == "frozen":
                out = run_stand_in(spec, sources, embeddings[spec.audio], pre_cfg, ft_cfg, text_cache,
                                   seed=seed, target=target, text_lr=text_lr, device=device, amp=amp)
            else:
                out = _run_end_to_end(spec, sources, pre_cfg, ft_cfg, text_cache, feature_cache,
                                      checkpoint=checkpoints.get(spec.audio, ""),
                                      stand_in_profile=stand_in_profile,
                                      patchout=patchout.get(spec.audio), max_seconds=max_seconds,
                                      seed=seed, target=target, text_lr=text_lr, device=device, amp=amp)
            runs.setdefault(key, []).append(out)
            system = (audio_label(spec.audio, checkpoints.get(spec.audio, ""), audio_training,
                                  patchout.get(spec.audio)) + " + " + _text_label(spec, _text_of(out)))
            model_name = (system + (", fine-tuned" if spec.finetune_epochs else "")
                          + (f" + keyword swap p={spec.p_swap}" if spec.p_swap else ""))
            params = {"row": key, "label": spec.label, **dict(data or {}), "audio_training": audio_training,
                      "checkpoint": checkpoints.get(spec.audio, ""),
                      "role_sources": _role_sources(sources, spec.pretrain), **out["params"],
                      "pretrain_epochs": pretrain_epochs, "finetune_epochs": spec.finetune_epochs,
                      "text_lr": text_lr, "recipe": dict(recipe or {})}
            kw = dict(seed=seed, run_group=run_group, dataset=dataset, scale=scale_note,
                      profile=profile, model=model_name)
            _record(table, spec.paper_row, out, METRICS, params, duration_s=time.time() - t0, **kw)
            if out.get("pretrained") and not own:   # the same system before its fine-tuning
                _record(table, spec.pretrained_row, out["pretrained"], METRICS,
                        {**params, "stage": f"pre-training stage of row {key}, before fine-tuning"},
                        **{**kw, "model": system + ", pre-trained only"})
            lines.append({"row": key, "run": spec.label, "seed": seed,
                          **{m: out["metrics"][m] for m in METRICS}})
    return runs, pd.DataFrame(lines)


def run_table4(combos: Sequence[str], sources: Mapping[str, CaptionSet], target: str,
               embeddings: Mapping[str, list], *, epochs: int, batch_size: int, lr: float,
               text_lr: float, text_train_layers: int, seeds: Sequence[int], profile: str,
               world_seed: int, real_clips: int, stand_in_profile: str,
               run_group: str | None = None, device: str = "auto",
               amp: bool | str = False, checkpoint: str = "", text_model: str = "minilm",
               data: Mapping[str, Any] | None = None,
               recipe: Mapping[str, Any] | None = None, audio_training: str = "frozen",
               patchout: Mapping[str, int] | None = None,
               max_seconds: float = 10.0) -> pd.DataFrame:
    """PaSST-N (frozen ``embeddings`` of the official ``checkpoint`` or of the stand-in; with
    ``audio_training="end-to-end"``, the paper's protocol, the encoder is trained too, from the
    same weights, with structured ``patchout`` (default :data:`PAPER_PATCHOUT`) on the first
    ``max_seconds`` of each clip, ``embeddings`` unused) + ``text_model`` pre-trained on each
    ``+``-joined combination of the paper's set names (or source names, :func:`sets_of_combo`),
    once per seed, scored on the target's test split and recorded per seed with its per-query
    ranks (table ``table4``, or ``<target>`` for a user's clip table; row: the paper's names;
    one ``run_group``; ``data`` stored in every record). ``recipe``: see :func:`check_recipe`.
    Returns the per-seed table."""
    seeds = _check_seeds(seeds, "run_table4")
    if audio_training not in AUDIO_TRAINING:
        raise ValueError(f"audio_training={audio_training!r}: use one of {list(AUDIO_TRAINING)}")
    run_group = run_group or results.new_run_group()
    table = _table_of("table4", target)
    cfg = _cosine_cfg(epochs, batch_size, lr, recipe)
    rows, text_cache, feature_cache = [], {}, {}
    for combo in combos:
        names = sets_of_combo(combo, sources)
        paper_row = " + ".join(PAPER_NAMES.get(n, n) for n in names)
        spec = RunSpec("PaSST-N", pretrain=names, text=text_model, text_train_layers=text_train_layers)
        for seed in seeds:
            t0 = time.time()
            if audio_training == "frozen":
                out = run_stand_in(spec, sources, embeddings, cfg, cfg, text_cache, seed=seed,
                                   target=target, text_lr=text_lr, device=device, amp=amp)
            else:
                out = _run_end_to_end(spec, sources, cfg, cfg, text_cache, feature_cache,
                                      checkpoint=checkpoint, stand_in_profile=stand_in_profile,
                                      patchout=patchout, max_seconds=max_seconds, seed=seed,
                                      target=target, text_lr=text_lr, device=device, amp=amp)
            _record(table, paper_row, out, ("mAP@10",),
                    {"sets": list(names), **dict(data or {}), "checkpoint": checkpoint,
                     "audio_training": audio_training, "max_seconds": max_seconds,
                     "role_sources": _role_sources(sources, names),
                     **out["params"], "epochs": epochs,
                     "text_train_layers": text_train_layers, "text_lr": text_lr,
                     "recipe": dict(recipe or {})},
                    seed=seed, run_group=run_group, dataset=_test_description(sources, target),
                    scale=(f"{target} n{len(sources[target])} ({split_sizes(sources[target].frame)})"
                           f"{_world(target, world_seed)} + other "
                           f"sets of {real_clips or 'all'} clips; {epochs} epochs; stand-ins: "
                           f"{stand_in_profile}"),
                    profile=profile, duration_s=time.time() - t0,
                    model=(f"{audio_label('PaSST-N', checkpoint, audio_training, patchout)} + "
                           f"{_text_label(spec, _text_of(out))}"))
            rows.append({"pre-training sets": " + ".join(names), "paper role": paper_row,
                         "seed": seed, "train clips": len(pretrain_set(sources, names, target)),
                         **{k: out["metrics"][k] for k in METRICS}})
    return pd.DataFrame(rows)


def run_segment_lengths(cs: CaptionSet, curves: Mapping[str, Sequence[float]], *, epochs: int,
                        batch_size: int, lr: float, text_lr: float, text_train_layers: int,
                        seeds: Sequence[int], profile: str, world_seed: int, stand_in_profile: str,
                        run_group: str | None = None, device: str = "auto",
                        amp: bool | str = False, checkpoints: Mapping[str, str] | None = None,
                        text_model: str = "minilm", max_seconds: float = 20.0,
                        data: Mapping[str, Any] | None = None,
                        recipe: Mapping[str, Any] | None = None, audio_training: str = "frozen",
                        patchout: Mapping[str, Mapping[str, int]] | None = None) -> pd.DataFrame:
    """Fig. 1: for each audio encoder of ``curves`` and each of its segment lengths (s), the
    first ``max_seconds`` of the clips of ``cs`` embedded as the mean over segments, the
    projections and ``text_model`` trained on the train split once per seed, the test split
    scored and recorded per seed with the per-query ranks (table ``fig1``, or ``<cs.name>`` for
    a user's clip table; the PaSST-S20 rows are ``segment <s> s``, the others
    ``<encoder>, segment <s> s``; one ``run_group``; ``data`` stored in every record).

    The audio encoder (official ``checkpoints[encoder]`` or the stand-in) is ``frozen`` (clip
    embeddings computed once per segment length, their CPU time measured: the book's fast mode)
    or, with ``audio_training="end-to-end"`` (the paper), trained too from the same weights per
    run, with structured patchout (``patchout[encoder]``, default :data:`PAPER_PATCHOUT`) and
    the segment length of the row (its time columns scaled with the segment length,
    :func:`segment_patchout`, unless ``patchout`` gives them). ``recipe``: see
    :func:`check_recipe`. Returns the per-seed table."""
    seeds = _check_seeds(seeds, "run_segment_lengths")
    if audio_training not in AUDIO_TRAINING:
        raise ValueError(f"audio_training={audio_training!r}: use one of {list(AUDIO_TRAINING)}")
    unknown = sorted(set(patchout or {}) - set(curves))
    if unknown:
        raise ValueError(f"patchout names encoder(s) {unknown} that no curve uses ({list(curves)})")
    run_group = run_group or results.new_run_group()
    checkpoints, table = dict(checkpoints or {}), _table_of("fig1", cs.name)
    sources = {cs.name: cs}
    test_set = cs.subset("test")
    cfg = _cosine_cfg(epochs, batch_size, lr, recipe)
    rows, text_cache, feature_cache = [], {}, {}
    for enc, segments in curves.items():
        enc_patchout = (patchout or {}).get(enc)
        for sec in segments:
            emb, embed_cpu = None, float("nan")
            if audio_training == "frozen":
                c0 = time.process_time()
                emb = embed_sources(enc, sources, stand_in_profile, segment_seconds=sec,
                                    max_seconds=max_seconds, device=device,
                                    checkpoint=checkpoints.get(enc, ""))
                embed_cpu = time.process_time() - c0
            row = f"segment {sec:g} s" if enc == "PaSST-S20" else f"{enc}, segment {sec:g} s"
            row_patchout = None
            if audio_training == "end-to-end" and enc in PAPER_PATCHOUT:
                row_patchout = dict(enc_patchout) if enc_patchout is not None else segment_patchout(enc, sec)
            for seed in seeds:
                t0 = time.time()
                spec = RunSpec(enc, pretrain=(cs.name,), text=text_model,
                               text_train_layers=text_train_layers)
                if audio_training == "frozen":
                    out = run_stand_in(spec, sources, emb, cfg, cfg, text_cache, seed=seed,
                                       target=cs.name, text_lr=text_lr, device=device, amp=amp)
                else:
                    out = _run_end_to_end(spec, sources, cfg, cfg, text_cache, feature_cache,
                                          checkpoint=checkpoints.get(enc, ""),
                                          stand_in_profile=stand_in_profile, patchout=row_patchout,
                                          max_seconds=max_seconds, seed=seed, target=cs.name,
                                          text_lr=text_lr, device=device, amp=amp,
                                          segment_seconds=sec)
                _record(table, row, out, METRICS,
                        {"encoder": enc, "segment_seconds": sec, **dict(data or {}),
                         "checkpoint": checkpoints.get(enc, ""), "audio_training": audio_training,
                         "patchout": row_patchout, **out["params"], "epochs": epochs,
                         "embed_cpu_s": None if math.isnan(embed_cpu) else embed_cpu,
                         "recipe": dict(recipe or {})},
                        seed=seed, run_group=run_group,
                        dataset=(f"{cs.note or cs.name}: first {max_seconds:g} s of each clip, "
                                 f"test split ({len(test_set)} audios)"),
                        scale=f"n{len(cs)}; stand-ins: {stand_in_profile}", profile=profile,
                        model=(f"{audio_label(enc, checkpoints.get(enc, ''), audio_training, row_patchout)}"
                               f" + {_text_label(spec, _text_of(out))}"),
                        duration_s=time.time() - t0)
                rows.append({"encoder": enc,
                             "audio": (f"{enc} {'released' if checkpoints.get(enc) else 'stand-in'}, "
                                       f"{'frozen' if audio_training == 'frozen' else 'trained end to end'}"),
                             "segment (s)": sec, "seed": seed,
                             **{k: out["metrics"][k] for k in METRICS},
                             "embedding CPU s (cached afterwards)": embed_cpu})
    return pd.DataFrame(rows)


def seed_summary(per_seed: pd.DataFrame, n_test_audio: int,
                 by: str | Sequence[str] = "row") -> pd.DataFrame:
    """Per row of ``per_seed`` (a table of :func:`run_table3` / :func:`run_table4` /
    :func:`run_segment_lengths`, grouped by ``by``): number of seeds, mean and standard
    deviation over seeds (ddof 1; NaN for one seed) of every metric present, and the mean
    mAP@10 divided by that of a random ranking of ``n_test_audio`` audios
    (:func:`chance_retrieval`)."""
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*by, "seed", "mAP@10"] if c not in per_seed.columns]
    if missing:
        raise KeyError(f"seed_summary: per-seed table lacks column(s) {missing}")
    chance = chance_retrieval(n_test_audio)["mAP@10"]
    out = []
    for key, g in per_seed.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        line: dict[str, Any] = dict(zip(by, key))
        line["seeds"] = int(g["seed"].nunique())
        for m in METRICS:
            if m in g:
                line[f"{m} mean"] = float(g[m].mean())
                line[f"{m} sd"] = float(g[m].std(ddof=1)) if len(g) > 1 else float("nan")
        line["mAP@10 / chance"] = line["mAP@10 mean"] / chance
        out.append(line)
    return pd.DataFrame(out)


#: the claims of ``paper.yml`` each notebook decides (its records hold every row they compare)
NOTEBOOK_CLAIMS: dict[str, tuple[str, ...]] = {
    "01_table3": ("passt-beats-cnn14", "cnn14-beats-cnn10", "larger-text-encoder",
                  "finetune-keywords", "headline-map10"),
    "02_table4": ("all-data-best",),
    "03_segment_length": ("longer-segments",),
}


def decide_claims(profile: str, notebook: str, claims: Sequence[str] | None = None,
                  register: bool = True) -> pd.DataFrame:
    """Decide the claims of ``notebook`` (a name of :data:`NOTEBOOK_CLAIMS` or a path to it;
    ``claims`` overrides the list) on the records of ``profile`` with
    :func:`audiorepro.results.decide_claims`: a paired bootstrap over the test captions of the
    newest run group, combined with seeds; *inconclusive* when the 95 % interval straddles zero.
    Registers each verdict (``register``). One line per claim: verdict, effect (better - worse,
    mAP@10), interval, its width (the smallest difference this test set resolves), items, seeds,
    seed spread, evidence."""
    return results.decide_claims("retrieval", profile, notebook, NOTEBOOK_CLAIMS, claims,
                                 register=register)


def search_index(model: DualEncoder, sources: Mapping[str, CaptionSet],
                 embeddings: Mapping[str, list], sets: Sequence[str] = ("synthetic:test", "tuxpaint"),
                 device: str = "auto") -> tuple[CaptionSet, Tensor]:
    """``(index set, (N, shared_dim) audio embeddings)`` of the clips of ``sets`` (``name`` or
    ``name:split``) from their frozen stand-in ``embeddings``, projected by ``model``."""
    parts = []
    for s in sets:
        name, _, split = s.partition(":")
        if name not in sources:
            raise KeyError(f"search_index: unknown caption set {name!r}; known: {sorted(sources)}")
        parts.append(sources[name].subset(split) if split else sources[name])
    index_set = combine(parts, name="index")
    emb_of = {c: e for k in sources for c, e in zip(sources[k].frame["clip_id"], embeddings[k])}
    index_emb = [emb_of[c] for c in index_set.frame["clip_id"]]
    return index_set, embed_audio(model, EvalSet(index_set, index_emb), device=device)


def query_relevance(index_set: CaptionSet, query: str) -> np.ndarray:
    """(N,) float per clip of ``index_set``: 1 when the clip holds a sound class the query names
    (:func:`~audiorepro.data.synth.sounds.classes_named_by`), 0 when it holds none of them, NaN
    when the clip has no synthetic class labels among its keywords (real recordings: unknown).
    All NaN when the query names no class."""
    named = set(classes_named_by(query))
    out = np.full(len(index_set), np.nan)
    if not named:
        return out
    for i, kws in enumerate(index_set.frame["keywords"]):
        labels = set(kws) & _CLASS_NAMES
        if labels:
            out[i] = float(bool(labels & named))
    return out


def query_hits(index_set: CaptionSet, idx: Sequence[int], sims: Sequence[float],
               query: str | None = None) -> pd.DataFrame:
    """The ranked hits of one query: rank, clip id, cosine, the clip's first caption and, with
    ``query``, whether the clip holds the sound it names (``yes`` / ``no`` / ``?`` for real
    recordings without class labels; see :func:`query_relevance`)."""
    f = index_set.frame
    out = pd.DataFrame({"rank": range(1, len(idx) + 1), "clip": f["clip_id"].iloc[list(idx)].values,
                        "cosine": np.round(np.asarray(sims), 3),
                        "its caption": [f["captions"].iloc[i][0] for i in idx]})
    if query is not None:
        rel = query_relevance(index_set, query)[list(idx)]
        out["holds the queried sound"] = ["?" if np.isnan(r) else ("yes" if r else "no") for r in rel]
    return out


def query_summary(index_set: CaptionSet, queries: Sequence[str], idx: np.ndarray) -> pd.DataFrame:
    """One row per query ranked by :func:`rank` (``idx`` (Q, k)): the classes it names, how many
    index clips hold one of them, how many of the top k do (precision@k; clips of unknown content
    count as misses) and the precision@k a random ranking has on average (relevant / N)."""
    rows = []
    for q, row in zip(queries, np.asarray(idx)):
        rel = np.nan_to_num(query_relevance(index_set, q), nan=0.0)
        named = classes_named_by(q)
        k = len(row)
        rows.append({"query": q, "classes it names": ", ".join(named) or "(none)",
                     "relevant clips in index": int(rel.sum()) if named else None,
                     f"relevant in top {k}": int(rel[row].sum()) if named else None,
                     f"precision@{k}": float(rel[row].mean()) if named else None,
                     f"random ranking precision@{k}": float(rel.mean()) if named else None})
    return pd.DataFrame(rows)
