"""Node features of the THGCL chapter: the synthetic audio-visual world and the TMac feature file.

* :class:`AVFeatures` / :func:`av_collate`: per-clip node features as a torch Dataset with a
  batched fetch (no per-item stacking).
* :func:`audio_segment_embeddings`: 960 ms segments every ``hop_s`` -> 128-d, through the VGGish
  backbone named by ``audio_encoder`` (:func:`load_audio_encoder`: the shared CPU-sized stand-in
  pre-trained on the world of seed 0, or a user checkpoint; ``"stats"`` = fixed log-mel
  mean / std, no network).
* :func:`project_visual`: the world's 250 ms pseudo-visual vectors -> 1024-d by a fixed random
  Gaussian projection (documented stand-in for S3D features: it adds no information, it only
  gives the paper's input width).
* :func:`synthetic_av_features` / :func:`world_features`: node features of a synthetic world
  (audio embeddings cached under ``cache/thgcl/features``, keyed by :func:`audiorepro.caching.run_key`
  over the hop, the encoder, the world's configuration and the code that computes them);
  :func:`tmac_av_features`: the real TMac feature file with THGCL's stratified split;
  :func:`chapter_features`: either one, as the chapter's notebooks ask for it.

Every feature dict carries ``data_key``, the fingerprint the run caches of
:mod:`audiorepro.papers.thgcl.experiments` are keyed with.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from audiorepro import caching, paths
from audiorepro.fileio import atomic_save_npy
from audiorepro.backbones import build_backbone
from audiorepro.backbones.pretrain import pretrained_backbone
from audiorepro.data.adapters import read_tmac_features
from audiorepro.data.audio import load_audio
from audiorepro.data.synthetic import World, default_world, visual_variant
from audiorepro.frontends import VGGishConfig, VGGishLogMel
from audiorepro.papers.thgcl.model import THGCLError
from audiorepro.training import pick_device

__all__ = ["CACHE_CODE", "TMAC_DATASET", "AVFeatures", "av_collate", "audio_segment_embeddings", "load_audio_encoder",
           "project_visual", "synthetic_av_features", "tmac_av_features", "world_features",
           "chapter_features"]

#: the code every THGCL cache (audio features, trained runs) is keyed with: the paper's package,
#: the training loop and its helpers, and the backbones (VGGish encoder, parameter counting)
CACHE_CODE = ("audiorepro.papers.thgcl", *caching.CORE_TRAINING_CODE, "audiorepro.backbones")

#: the dataset name of records made on the paper's data (the TMac AudioSet feature file): the
#: claims on the paper's absolute numbers are decided on records of this dataset only
TMAC_DATASET = "AudioSet (TMac features)"


# =============================================================================== dataset
class AVFeatures(torch.utils.data.Dataset):
    """Per-clip node features: items ``{"audio" (P_a, D_a), "video" (P_v, D_v), "target" (C,),
    "index"}`` (float32 tensors)."""

    def __init__(self, audio: np.ndarray | torch.Tensor, video: np.ndarray | torch.Tensor,
                 target: np.ndarray | torch.Tensor) -> None:
        self.audio = torch.as_tensor(np.asarray(audio, dtype=np.float32))
        self.video = torch.as_tensor(np.asarray(video, dtype=np.float32))
        self.target = torch.as_tensor(np.asarray(target, dtype=np.float32))
        n = len(self.audio)
        if len(self.video) != n or len(self.target) != n:
            raise THGCLError(f"AVFeatures: {n} audio, {len(self.video)} video, {len(self.target)} "
                             "target rows must match")

    def __len__(self) -> int:
        return len(self.audio)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"audio": self.audio[i], "video": self.video[i], "target": self.target[i], "index": i}

    def __getitems__(self, idx: Sequence[int]) -> dict[str, Any]:
        """Batched fetch (used by DataLoader): items of ``idx`` stacked by tensor indexing,
        ``audio`` (B, P_a, D_a), ``video`` (B, P_v, D_v), ``target`` (B, C), ``index`` (B,)."""
        i = torch.as_tensor(list(idx), dtype=torch.long)
        return {"audio": self.audio[i], "video": self.video[i], "target": self.target[i], "index": i}

    def subset(self, idx: np.ndarray | Sequence[int]) -> "AVFeatures":
        idx = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        return AVFeatures(self.audio[idx], self.video[idx], self.target[idx])


def av_collate(batch: Any) -> dict[str, Any]:
    """Collate for :class:`AVFeatures` loaders: a batch already stacked by ``__getitems__`` is
    returned as is (avoids per-item ``torch.stack``); a list of items is collated by default."""
    if isinstance(batch, dict):
        return batch
    return torch.utils.data.default_collate(batch)


# =============================================================================== encoders
def audio_segment_embeddings(waves: torch.Tensor, hop_s: float = 0.48, segment_s: float = 0.96,
                             sample_rate: int = 16000, encoder: nn.Module | None = None,
                             batch_size: int = 512, device: str = "auto") -> torch.Tensor:
    """128-d embeddings of 960 ms audio segments: waves (B, T) 16 kHz -> (B, P_a, 128) on the CPU.

    VGGish log-mel (64 bands, 10 ms hop; :class:`audiorepro.frontends.VGGishLogMel`), segments of
    ``segment_s`` (96 frames) every ``hop_s``, ``P_a = 1 + (F - 96) // hop``. With ``encoder`` (a
    VGGish backbone, e.g. from :func:`load_audio_encoder`) each (1, 96, 64) segment goes through
    it and its ``embedding`` output (N, 128) is returned: the paper's encoding. Without it the
    embedding is *fixed* log-mel statistics, [mean over time (64), std over time (64)] (no
    learned weights; kept for tests and as a cheap fallback). ``device`` (``"auto"``: see
    :func:`audiorepro.training.pick_device`) is where the work runs; the encoder is moved there.
    """
    if sample_rate != 16000:
        raise THGCLError(f"audio_segment_embeddings: sample_rate={sample_rate}; VGGish needs 16000")
    dev = pick_device(device)
    fe = VGGishLogMel(VGGishConfig()).to(dev)
    frames = round(segment_s / 0.01)
    hop = max(1, round(hop_s / 0.01))
    with torch.no_grad():
        mel = fe.features(waves.float().to(dev))  # (B, 64, F)
        if mel.shape[-1] < frames:
            raise THGCLError(f"audio_segment_embeddings: {mel.shape[-1]} frames < one segment ({frames})")
        seg = mel.unfold(-1, frames, hop)  # (B, 64, P_a, frames)
        if encoder is None:
            emb = torch.cat([seg.mean(-1), seg.std(-1)], dim=1).transpose(1, 2)  # (B, P_a, 128)
            return emb.contiguous().cpu()
        encoder = encoder.to(dev)
        b, m, p, f = seg.shape
        ex = seg.permute(0, 2, 3, 1).reshape(b * p, 1, f, m)  # (B * P_a, 1, 96, 64)
        was = encoder.training
        encoder.eval()
        out = torch.cat([encoder(ex[s:s + batch_size])["embedding"] for s in range(0, len(ex), batch_size)])
        encoder.train(was)
        if out.shape[-1] != 128:
            raise THGCLError(f"audio_segment_embeddings: encoder gives {out.shape[-1]}-d embeddings, "
                             "expected 128 (a VGGish backbone)")
    return out.reshape(b, p, -1).float().cpu()


def load_audio_encoder(audio_encoder: str, world_seed: int | None = None,
                       device: str = "auto") -> tuple[nn.Module | None, str]:
    """The audio-segment encoder named by ``audio_encoder`` (on ``device``) and a key for feature
    caches.

    ``"stats"``: no network (fixed log-mel statistics). ``"vggish:smoke"`` / ``"vggish:book"``:
    the shared CPU-sized VGGish (``vggish_harritaylor_core``) pre-trained on the synthetic world
    by :func:`audiorepro.backbones.pretrain.pretrained_backbone` with that profile.
    ``"vggish:<path>"``: full-size VGGish built from a user checkpoint (harritaylor /
    torchvggish ``.pth``). With ``world_seed`` given, a pre-trained encoder whose pre-training
    world has the same seed raises :class:`THGCLError` (the evaluation world must not overlap).
    """
    if audio_encoder == "stats":
        return None, "stats"
    if not audio_encoder.startswith("vggish:"):
        raise THGCLError(f"audio_encoder={audio_encoder!r}: use stats, vggish:smoke, vggish:book "
                         "or vggish:<checkpoint path>")
    source = audio_encoder.split(":", 1)[1]
    dev = pick_device(device)
    if source in ("smoke", "book"):
        model, report = pretrained_backbone("vggish_harritaylor_core", profile=source,
                                            progress=False, record=False, device=dev)
        cfg = getattr(model, "pretrain_config", {}) or {}
        pre_seed = cfg.get("world_seed")
        if world_seed is not None and pre_seed is not None and int(pre_seed) == int(world_seed):
            raise THGCLError(f"audio_encoder={audio_encoder!r} was pre-trained on the synthetic world "
                             f"of seed {pre_seed}; evaluate on another world seed (seed={world_seed})")
        return model.to(dev).eval(), f"vggish-{source}-{Path(str(report.run_dir)).name}"
    path = Path(source)
    if not path.is_file():
        raise THGCLError(f"audio_encoder={audio_encoder!r}: no checkpoint file {path}")
    model = build_backbone("vggish_harritaylor_core", checkpoint=str(path)).to(dev).eval()
    st = path.stat()
    return model, f"vggish-ckpt-{caching.stable_digest([str(path.resolve()), st.st_size, st.st_mtime], 10)}"


def project_visual(visual: np.ndarray, out_dim: int = 1024, seed: int = 0) -> np.ndarray:
    """(N, P_v, D) pseudo-visual vectors -> (N, P_v, out_dim) float32 by a fixed Gaussian matrix
    (entries N(0, 1/D), seed ``seed``): a stand-in for 1024-d S3D features."""
    visual = np.asarray(visual, dtype=np.float32)
    if visual.ndim != 3:
        raise THGCLError(f"project_visual: visual has shape {visual.shape}, expected (N, P_v, D)")
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((visual.shape[2], out_dim)).astype(np.float32) / math.sqrt(visual.shape[2])
    return visual @ w


# =============================================================================== feature sets
def _world_audio(world: World, audio_hop_s: float, encoder: nn.Module | None, device: str) -> np.ndarray:
    """(N, P_a, 128) float32 audio node features of every clip of ``world``, 32 clips at a time."""
    table = world.table
    n = len(table)
    chunks = []
    for start in range(0, n, 32):
        waves = [load_audio(table.audio_path(i), sample_rate=16000)[0].reshape(-1)
                 for i in range(start, min(n, start + 32))]
        length = min(w.shape[-1] for w in waves)
        chunks.append(audio_segment_embeddings(torch.stack([w[:length] for w in waves]), audio_hop_s,
                                               encoder=encoder, device=device).numpy())
    return np.concatenate(chunks).astype(np.float32)


def synthetic_av_features(world: World, audio_hop_s: float = 0.48,
                          visual_params: Mapping[str, Any] | None = None, video_dim: int = 1024,
                          projection_seed: int = 0, cache: bool = True, audio_encoder: str = "stats",
                          device: str = "auto") -> dict[str, Any]:
    """Node features of a synthetic world (:class:`audiorepro.data.synthetic.World`).

    Audio: :func:`audio_segment_embeddings` of every clip with the encoder named by
    ``audio_encoder`` (:func:`load_audio_encoder`, on ``device``), cached under
    ``cache/thgcl/features/<world>_hop<ms>_<encoder>_<key>.npy`` with ``key`` =
    :func:`audiorepro.caching.run_key` of (hop, encoder; the world's configuration;
    :data:`CACHE_CODE`). Video: the world's visual stream, or the one regenerated with
    ``visual_params`` (:func:`~audiorepro.data.synthetic.visual_variant`, e.g.
    ``{"av_offset_s": 1.0}``), through :func:`project_visual`.
    Returns ``{"audio" (N, P_a, 128), "video" (N, P_v, video_dim), "target" (N, C), "split" (N,),
    "classes", "clip_id", "audio_hop_s", "data_key"}``.
    """
    visual_params = dict(visual_params or {})
    n = len(world.table)
    world_key = caching.stable_digest(world.config)
    encoder, enc_key = load_audio_encoder(audio_encoder, int(world.config["seed"]), device=device)
    audio_key = caching.run_key({"audio_hop_s": float(audio_hop_s), "segment_s": 0.96, "encoder": enc_key},
                                data=world_key, code=CACHE_CODE)
    cache_file = paths.cache_dir("thgcl", "features") / (
        f"{Path(world.root).name}_hop{round(audio_hop_s * 1000)}_{enc_key}_{audio_key}.npy")
    audio = None
    if cache and cache_file.is_file():
        audio = np.load(cache_file)
        if audio.shape[0] != n:
            audio = None
    if audio is None:
        audio = _world_audio(world, audio_hop_s, encoder, device)
        if cache:
            atomic_save_npy(cache_file, audio)
    vis = visual_variant(world, **visual_params)[0] if visual_params else world.visual
    if len(vis) != n:
        raise THGCLError(f"synthetic_av_features: visual has {len(vis)} rows for {n} clips")
    data_key = caching.stable_digest({"world": world_key, "audio": audio_key, "visual": visual_params,
                                      "video_dim": int(video_dim), "projection_seed": int(projection_seed)})
    return {"audio": audio, "video": project_visual(np.asarray(vis), video_dim, projection_seed),
            "target": world.table.targets().astype(np.float32),
            "split": world.table.frame["split"].to_numpy(), "classes": list(world.table.classes),
            "clip_id": world.table.frame["clip_id"].tolist(), "audio_hop_s": float(audio_hop_s),
            "data_key": data_key}


def tmac_av_features(path: str | os.PathLike, seed: int = 1024,
                     ratios: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> dict[str, Any]:
    """The real TMac feature file as node features with THGCL's stratified 0.7/0.1/0.2 split.

    Uses :func:`audiorepro.data.adapters.read_tmac_features`; split stratified by the clip's
    (first) class with ``seed`` (the THGCL config's 1024). Same keys as :func:`synthetic_av_features`;
    ``audio_hop_s`` assumes the P_a segments of 0.96 s tile the 10 s clip evenly (101 nodes:
    0.0904 s), which sets the time matching of the cross-modal edges. ``data_key`` digests the
    file's name and size, the clip count, the classes and the split recipe (contents not read).
    """
    feats = read_tmac_features(path)
    label = np.asarray(feats["label_index"])
    rng = np.random.default_rng(seed)
    split = np.empty(len(label), dtype=object)
    for c in np.unique(label):
        idx = rng.permutation(np.flatnonzero(label == c))
        n_tr = int(round(ratios[0] * len(idx)))
        n_va = int(round(ratios[1] * len(idx)))
        split[idx[:n_tr]] = "train"
        split[idx[n_tr:n_tr + n_va]] = "valid"
        split[idx[n_tr + n_va:]] = "test"
    data_key = caching.stable_digest({"file": Path(path).name, "size": Path(path).stat().st_size,
                                      "clips": len(label), "classes": list(feats["classes"]),
                                      "split_seed": int(seed), "ratios": list(ratios)})
    return {"audio": feats["audio"], "video": feats["video"], "target": feats["target"],
            "split": split, "classes": feats["classes"],
            "clip_id": [str(i) for i in range(len(label))],
            "audio_hop_s": (10.0 - 0.96) / max(1, feats["audio"].shape[1] - 1), "data_key": data_key}


def world_features(n_clips: int, seed: int = 1, audio_hop_s: float = 0.48, audio_encoder: str = "stats",
                   *, device: str = "auto", **visual_params: Any) -> tuple[dict[str, Any], str]:
    """Features of the shared synthetic world (``default_world(n_clips, seed)``), optionally with
    the visual stream regenerated by :func:`~audiorepro.data.synthetic.visual_variant`
    (``av_offset_s``, ``visual_noise``, ...). Returns ``(features, data_key)``."""
    world = default_world(n_clips, seed, progress=False)
    feats = synthetic_av_features(world, audio_hop_s, visual_params, audio_encoder=audio_encoder,
                                  device=device)
    return feats, feats["data_key"]


def chapter_features(n_clips: int, seed: int = 1, tmac_file: str = "", audio_hop_s: float = 0.48,
                     audio_encoder: str = "stats", *, device: str = "auto", **visual_params: Any
                     ) -> tuple[dict[str, Any], str, str, str]:
    """Features for a chapter notebook: the real TMac file when ``tmac_file`` is given (paper
    profile), else the shared synthetic world encoded with ``audio_encoder``
    (:func:`load_audio_encoder`, on ``device``). Returns ``(features, data_key, dataset, scale)``."""
    if tmac_file:
        if visual_params:
            raise THGCLError(f"visual parameters {sorted(visual_params)} need the synthetic world; "
                             "unset tmac_file")
        feats = tmac_av_features(tmac_file)
        return feats, feats["data_key"], TMAC_DATASET, f"{len(feats['split'])} clips"
    feats, key = world_features(n_clips, seed, audio_hop_s, audio_encoder, device=device, **visual_params)
    extra = "".join(f", {k} {v}" for k, v in visual_params.items())
    return (feats, key, f"synthetic world (audio {audio_encoder})",
            f"{n_clips} clips (seed {seed}{extra})")
