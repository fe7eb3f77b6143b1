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
  :func:`tmac_av_features`: the real TMac feature file with THGCL's stratified split, read
  *streaming* (:class:`H5Array`, :class:`StreamedAVFeatures`: rows are read on demand, so an
  AudioSet-size file of ~18 GB trains in bounded memory); :func:`clip_table_av_features`: a
  user's own audio-visual data (a clip table whose ``path`` column points at rows of a features
  HDF5 in the TMac layout, :data:`CLIP_TABLE_FORMAT`); :func:`chapter_features`: one of them, as
  the chapter's notebooks ask for it.

Every feature dict carries ``data_key``, the fingerprint the run caches of
:mod:`audiorepro.papers.thgcl.experiments` are keyed with.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from audiorepro import caching, paths
from audiorepro.fileio import atomic_save_npy
from audiorepro.backbones import build_backbone
from audiorepro.backbones.pretrain import pretrained_backbone
from audiorepro.data.adapters import read_tmac_features
from audiorepro.data.audio import load_audio
from audiorepro.data.cliptable import ClipTable, split_sizes
from audiorepro.data.miniatures import README as MINIATURE_README
from audiorepro.data.synthetic import World, default_world, visual_variant
from audiorepro.frontends import VGGishConfig, VGGishLogMel
from audiorepro.papers.thgcl.model import THGCLError
from audiorepro.training import pick_device

__all__ = ["CACHE_CODE", "TMAC_DATASET", "CLIP_TABLE_FORMAT", "AVFeatures", "H5Array",
           "StreamedAVFeatures", "av_collate", "node_statistics", "stratified_split",
           "evaluation_set_split", "youtube_id_of", "StackedRows",
           "audio_segment_embeddings", "load_audio_encoder", "project_visual",
           "synthetic_av_features", "tmac_av_features", "clip_table_av_features",
           "world_features", "chapter_features"]

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

    @property
    def audio_shape(self) -> tuple[int, int]:
        """(P_a, D_a): audio nodes per clip and their width."""
        return tuple(self.audio.shape[1:])

    @property
    def video_shape(self) -> tuple[int, int]:
        """(P_v, D_v): video nodes per clip and their width."""
        return tuple(self.video.shape[1:])


# =============================================================================== streamed features
_HANDLES: dict[tuple[str, int, int], Any] = {}


def _h5_file(path: str) -> Any:
    """A read-only ``h5py.File`` of ``path`` kept open for this process (a DataLoader worker
    opens its own; a rewritten file, new modification time, is reopened)."""
    import h5py

    try:
        key = (path, os.getpid(), os.stat(path).st_mtime_ns)
    except OSError as exc:
        raise THGCLError(f"features file {path}: {exc}") from None
    hf = _HANDLES.get(key)
    if hf is None or not hf.id.valid:
        try:
            hf = _HANDLES[key] = h5py.File(path, "r")
        except OSError as exc:
            raise THGCLError(f"features file {path}: cannot read it as HDF5 ({exc})") from None
    return hf


class H5Array:
    """One (N, P, D) dataset of an HDF5 file, read on demand: ``shape``, ``len`` and
    :meth:`rows` (float32 rows in the order asked). Holds no data and no open handle when
    pickled, so DataLoader workers can use it."""

    def __init__(self, path: str | os.PathLike, key: str) -> None:
        self.path, self.key = str(Path(path).resolve()), key
        hf = _h5_file(self.path)
        if key not in hf:
            raise THGCLError(f"features file {self.path}: no dataset {key!r}; has {sorted(hf.keys())}")
        self.shape = tuple(int(n) for n in hf[key].shape)
        if len(self.shape) != 3:
            raise THGCLError(f"features file {self.path}: dataset {key!r} has shape {self.shape}, "
                             "expected (clips, nodes, dim)")

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"H5Array({self.path!r}, {self.key!r}, shape={self.shape})"

    def rows(self, idx: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows ``idx`` (any order, repeats allowed) as float32 ``(len(idx), P, D)``: one read
        of the sorted distinct rows (a slice when they are contiguous)."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            return np.empty((0, *self.shape[1:]), np.float32)
        if idx.min() < 0 or idx.max() >= self.shape[0]:
            raise THGCLError(f"features file {self.path}: row {int(idx.max() if idx.max() >= self.shape[0] else idx.min())} "
                             f"outside dataset {self.key!r} of {self.shape[0]} rows")
        uniq, inverse = np.unique(idx, return_inverse=True)
        ds = _h5_file(self.path)[self.key]
        if uniq[-1] - uniq[0] + 1 == len(uniq):
            block = ds[int(uniq[0]):int(uniq[-1]) + 1]
        else:
            block = ds[uniq.tolist()]
        return np.asarray(block, dtype=np.float32)[inverse]


class StackedRows:
    """Several (N_i, P, D) arrays (:class:`H5Array`) as one (sum N_i, P, D) array read on
    demand: row ``r`` of the stack is row ``r - offset_i`` of the array it falls in (e.g. the
    TMac training file followed by its evaluation file)."""

    def __init__(self, arrays: Sequence[H5Array]) -> None:
        shapes = {tuple(a.shape[1:]) for a in arrays}
        if len(shapes) != 1:
            raise THGCLError(f"StackedRows: the arrays' node shapes differ: "
                             f"{[f'{a!r}' for a in arrays]}")
        self.arrays = list(arrays)
        self.offsets = np.cumsum([0] + [len(a) for a in arrays])
        self.shape = (int(self.offsets[-1]), *shapes.pop())

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, idx: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        out = np.empty((len(idx), *self.shape[1:]), np.float32)
        which = np.searchsorted(self.offsets, idx, side="right") - 1
        for k, array in enumerate(self.arrays):
            sel = np.flatnonzero(which == k)
            if len(sel):
                out[sel] = array.rows(idx[sel] - self.offsets[k])
        return out


def _read_rows(array: Any, rows: np.ndarray) -> np.ndarray:
    if hasattr(array, "rows"):  # read on demand: H5Array, StackedRows, _RowView
        return array.rows(rows)
    return np.asarray(array[np.asarray(rows, dtype=np.int64)], dtype=np.float32)


def node_statistics(array: Any, rows: Sequence[int] | np.ndarray, chunk_clips: int = 256
                    ) -> np.ndarray:
    """Per-dimension mean and scale ``(2, D)`` of the nodes of clips ``rows`` of an (N, P, D)
    array (:class:`H5Array` or numpy), accumulated ``chunk_clips`` clips at a time with
    scikit-learn's ``StandardScaler.partial_fit``: the project's standardiser convention
    (:mod:`audiorepro.preprocessing`: ddof 0, a zero-variance dimension keeps scale 1) in memory
    bounded by one chunk."""
    from sklearn.preprocessing import StandardScaler

    rows = np.sort(np.asarray(rows, dtype=np.int64))
    if rows.size == 0:
        raise THGCLError("node_statistics: no training clips")
    scaler = StandardScaler()
    for start in range(0, len(rows), chunk_clips):
        x = _read_rows(array, rows[start:start + chunk_clips])
        scaler.partial_fit(x.reshape(-1, x.shape[-1]).astype(np.float64))
    return np.stack([scaler.mean_, scaler.scale_]).astype(np.float64)


class StreamedAVFeatures(torch.utils.data.Dataset):
    """Node features read on demand: rows ``rows`` of (N, P, D) ``audio`` / ``video`` arrays
    (:class:`H5Array` or numpy), standardised per dimension with ``audio_stats`` / ``video_stats``
    (:func:`node_statistics`: ``(x - mean) / scale`` in float64, then float32, as
    :func:`audiorepro.preprocessing.standardise`). Only ``target`` (N, C) is held in memory.

    Optional perturbation of the (standardised) video nodes, for the robustness sweep on
    features: ``video_shift`` nodes of delay (the video shows an event ``video_shift`` nodes
    after the sound; the first nodes become 0, the training mean) and Gaussian noise of standard
    deviation ``video_noise`` (in units of the standardised features), the same draw for a clip
    at every read (generator seeded by ``(noise_seed, row)``).

    Items and batches as :class:`AVFeatures` (``__getitems__`` reads a batch in one go).
    """

    def __init__(self, audio: Any, video: Any, target: np.ndarray | torch.Tensor,
                 rows: Sequence[int] | np.ndarray | None = None, audio_stats: np.ndarray | None = None,
                 video_stats: np.ndarray | None = None, video_shift: int = 0, video_noise: float = 0.0,
                 noise_seed: int = 0) -> None:
        self.audio_array, self.video_array = audio, video
        target = torch.as_tensor(np.asarray(target, dtype=np.float32))
        n = len(target)
        if len(audio) != n or len(video) != n:
            raise THGCLError(f"StreamedAVFeatures: {len(audio)} audio, {len(video)} video, {n} target "
                             "rows must match")
        self.rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
        self.full_target = target
        self.target = target[torch.as_tensor(self.rows)]
        self.audio_stats, self.video_stats = audio_stats, video_stats
        if int(video_shift) != video_shift or video_shift < 0 or video_noise < 0:
            raise THGCLError(f"StreamedAVFeatures: video_shift={video_shift!r} must be a whole number "
                             f">= 0 and video_noise={video_noise!r} >= 0")
        self.video_shift, self.video_noise, self.noise_seed = int(video_shift), float(video_noise), int(noise_seed)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def audio_shape(self) -> tuple[int, int]:
        return tuple(self.audio_array.shape[1:])

    @property
    def video_shape(self) -> tuple[int, int]:
        return tuple(self.video_array.shape[1:])

    @staticmethod
    def _scale(x: np.ndarray, stats: np.ndarray | None) -> np.ndarray:
        if stats is None:
            return x.astype(np.float32, copy=False)
        return ((x.astype(np.float64) - stats[0]) / stats[1]).astype(np.float32)

    def _video(self, rows: np.ndarray) -> np.ndarray:
        v = self._scale(_read_rows(self.video_array, rows), self.video_stats)
        if self.video_shift:
            k = min(self.video_shift, v.shape[1])
            v = np.concatenate([np.zeros_like(v[:, :k]), v[:, :v.shape[1] - k]], axis=1)
        if self.video_noise:
            for j, r in enumerate(rows):
                rng = np.random.default_rng([self.noise_seed, int(r)])
                v[j] += (self.video_noise * rng.standard_normal(v.shape[1:])).astype(np.float32)
        return v

    def __getitems__(self, idx: Sequence[int]) -> dict[str, Any]:
        """Batch of items ``idx``: ``audio`` (B, P_a, D_a), ``video`` (B, P_v, D_v), ``target``
        (B, C), ``index`` (B,)."""
        i = np.asarray(list(idx), dtype=np.int64)
        rows = self.rows[i]
        return {"audio": torch.from_numpy(self._scale(_read_rows(self.audio_array, rows), self.audio_stats)),
                "video": torch.from_numpy(self._video(rows)),
                "target": self.target[torch.as_tensor(i)], "index": torch.as_tensor(i)}

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.__getitems__([i])
        return {"audio": item["audio"][0], "video": item["video"][0], "target": item["target"][0],
                "index": int(i)}

    def subset(self, idx: np.ndarray | Sequence[int]) -> "StreamedAVFeatures":
        return StreamedAVFeatures(self.audio_array, self.video_array, self.full_target,
                                  self.rows[np.asarray(idx, dtype=np.int64)], self.audio_stats,
                                  self.video_stats, self.video_shift, self.video_noise, self.noise_seed)


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
def _world_audio(world: World, audio_hop_s: float, encoder: nn.Module | None, device: str,
                 rows: np.ndarray) -> np.ndarray:
    """(len(rows), P_a, 128) float32 audio node features of the clips at table positions
    ``rows`` of ``world``, 32 clips at a time."""
    table = world.table
    n = len(rows)
    chunks = []
    for start in range(0, n, 32):
        waves = [load_audio(table.audio_path(int(i)), sample_rate=16000)[0].reshape(-1)
                 for i in rows[start:start + 32]]
        length = min(w.shape[-1] for w in waves)
        chunks.append(audio_segment_embeddings(torch.stack([w[:length] for w in waves]), audio_hop_s,
                                               encoder=encoder, device=device).numpy())
    return np.concatenate(chunks).astype(np.float32)


def synthetic_av_features(world: World, audio_hop_s: float = 0.48,
                          visual_params: Mapping[str, Any] | None = None, video_dim: int = 1024,
                          projection_seed: int = 0, cache: bool = True, audio_encoder: str = "stats",
                          device: str = "auto", rows: Sequence[int] | np.ndarray | None = None
                          ) -> dict[str, Any]:
    """Node features of a synthetic world (:class:`audiorepro.data.synthetic.World`), of the
    clips at table positions ``rows`` (ascending; default: every clip; audio is computed for
    those clips only).

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
    everything = rows is None
    rows = np.arange(len(world.table)) if everything else np.asarray(rows, dtype=np.int64)
    if rows.ndim != 1 or not len(rows) or (np.diff(rows) <= 0).any() or rows[0] < 0 \
            or rows[-1] >= len(world.table):
        raise THGCLError(f"synthetic_av_features: rows must be ascending table positions in "
                         f"[0, {len(world.table)}), got {rows[:5].tolist()}...")
    n = len(rows)
    world_key = caching.stable_digest(world.config if everything else
                                      {"world": world.config, "rows": rows.tolist()})
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
        audio = _world_audio(world, audio_hop_s, encoder, device, rows)
        if cache:
            atomic_save_npy(cache_file, audio)
    vis = visual_variant(world, **visual_params)[0] if visual_params else world.visual
    if len(vis) != len(world.table):
        raise THGCLError(f"synthetic_av_features: visual has {len(vis)} rows for "
                         f"{len(world.table)} clips")
    data_key = caching.stable_digest({"world": world_key, "audio": audio_key, "visual": visual_params,
                                      "video_dim": int(video_dim), "projection_seed": int(projection_seed)})
    frame = world.table.frame.iloc[rows]
    return {"audio": audio, "video": project_visual(np.asarray(vis[rows]), video_dim, projection_seed),
            "target": world.table.targets()[rows].astype(np.float32),
            "split": frame["split"].to_numpy(), "classes": list(world.table.classes),
            "clip_id": frame["clip_id"].tolist(), "audio_hop_s": float(audio_hop_s),
            "data_key": data_key}


def stratified_split(label_index: np.ndarray, seed: int = 1024,
                     ratios: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> np.ndarray:
    """THGCL's split: per class (``label_index``, the clip's first class) a permutation with
    ``seed``, the first ``round(0.7 n)`` clips train, the next ``round(0.1 n)`` valid, the rest
    test. Returns an (N,) object array of ``"train"`` / ``"valid"`` / ``"test"``."""
    label = np.asarray(label_index)
    rng = np.random.default_rng(seed)
    split = np.empty(len(label), dtype=object)
    for c in np.unique(label):
        idx = rng.permutation(np.flatnonzero(label == c))
        n_tr = int(round(ratios[0] * len(idx)))
        n_va = int(round(ratios[1] * len(idx)))
        split[idx[:n_tr]] = "train"
        split[idx[n_tr:n_tr + n_va]] = "valid"
        split[idx[n_tr + n_va:]] = "test"
    return split


def _tmac_hop(num_audio: int) -> float:
    """Start-time step of the audio nodes when ``num_audio`` 0.96 s segments tile a 10 s clip
    evenly (the TMac file: 101 nodes, 0.0904 s)."""
    return (10.0 - 0.96) / max(1, num_audio - 1)


def youtube_id_of(address: str, ytids: set[str] | frozenset[str]) -> str | None:
    """The YouTube id of a feature file's source address (``audio_add``, e.g.
    ``.../Dog/--4gqARaEJE_30.wav`` or ``Y--4gqARaEJE_30.000_40.000.wav``) when it is one of
    ``ytids``, else None. AudioSet ids are 11 characters from ``[A-Za-z0-9_-]``, so the id is the
    first 11 characters of the file's stem, after an optional leading ``Y`` (the
    audioset_tagging_cnn naming); splitting at ``_`` would cut ids that contain one."""
    stem = Path(str(address).replace("\\", "/")).stem
    for candidate in (stem[:11], stem[1:12] if stem.startswith("Y") else ""):
        if len(candidate) == 11 and candidate in ytids:
            return candidate
    return None


def _train_valid_split(label_index: np.ndarray, seed: int, ratios: tuple[float, float]) -> np.ndarray:
    """:func:`stratified_split` into train / valid only, in the ratio ``ratios[0] : ratios[1]``
    (rounding leftovers train). Returns an (N,) object array."""
    total = float(ratios[0] + ratios[1])
    inner = stratified_split(np.asarray(label_index), seed, (ratios[0] / total, ratios[1] / total, 0.0))
    return np.where(inner == "valid", "valid", "train").astype(object)


def evaluation_set_split(label_index: np.ndarray, addresses: Sequence[str], eval_segments: str | os.PathLike,
                         seed: int = 1024, ratios: tuple[float, float] = (0.7, 0.1),
                         source: str = "feature file") -> np.ndarray:
    """The paper's evaluation protocol (section 3.1: "the original evaluation set"): clips whose
    YouTube id (:func:`youtube_id_of` of ``addresses``) is listed in AudioSet's
    ``eval_segments.csv`` are the test split; the others are split train / valid in the ratio
    ``ratios`` (THGCL's 0.7 : 0.1), stratified by class with ``seed`` as :func:`stratified_split`.
    Raises :class:`THGCLError` naming both files when no clip (or every clip) is in the list.
    Returns an (N,) object array of ``"train"`` / ``"valid"`` / ``"test"``."""
    from audiorepro.data.adapters.audioset import read_segments_csv

    ytids = frozenset(read_segments_csv(eval_segments)["ytid"])
    is_test = np.array([youtube_id_of(a, ytids) is not None for a in addresses], dtype=bool)
    if not is_test.any() or is_test.all():
        raise THGCLError(f"eval_segments={str(eval_segments)!r}: {int(is_test.sum())} of {len(is_test)} "
                         f"clips of {source} are in AudioSet's evaluation list (matched by the YouTube "
                         "id at the start of each audio_add file name); the paper's protocol needs "
                         "both evaluation and training clips. Leave eval_segments empty for the THGCL "
                         "repository's stratified 0.7 / 0.1 / 0.2 split (the tmac-split variant).")
    split = np.full(len(is_test), "test", dtype=object)
    rest = np.flatnonzero(~is_test)
    split[rest] = _train_valid_split(np.asarray(label_index)[rest], seed, ratios)
    return split


def tmac_av_features(path: str | os.PathLike, seed: int = 1024,
                     ratios: tuple[float, float, float] = (0.7, 0.1, 0.2),
                     eval_segments: str | os.PathLike | None = None,
                     eval_file: str | os.PathLike | None = None) -> dict[str, Any]:
    """The real TMac feature file as node features, split as the paper's text says or as the
    THGCL repository's config does.

    Labels and shapes come from :func:`audiorepro.data.adapters.read_tmac_features` with
    ``arrays=False``; ``audio`` / ``video`` are :class:`H5Array` views of the file, read per
    batch (:class:`StreamedAVFeatures`), never loaded whole. Split, the paper's evaluation set
    in either of two forms: with ``eval_file`` (the evaluation-set features in the same layout,
    ``eval/Output_clip_len_0.25_audio_101/AudioSet_embedds_all.h5`` beside the training file's
    ``train/`` folder, as the VAED / TMac configs' TEST_PATH) its clips are the test split and
    the training file is split ``ratios[0] : ratios[1]`` into train / valid by class; with
    ``eval_segments`` (AudioSet's ``eval_segments.csv``, for a file that holds evaluation clips)
    :func:`evaluation_set_split`; with neither, :func:`stratified_split` by the clip's (first)
    class with ``seed`` (the THGCL config's 1024, ratios 0.7 / 0.1 / 0.2). Same keys as
    :func:`synthetic_av_features` plus ``source`` (the file) and ``split_rule`` (which split, in
    words); ``audio_hop_s`` assumes the P_a segments of 0.96 s tile the 10 s clip evenly (101
    nodes: 0.0904 s), which sets the time matching of the cross-modal edges. ``data_key``
    digests the file's name and size, the clip count, the classes and the split recipe
    (contents not read).
    """
    if eval_file and eval_segments:
        raise THGCLError(f"eval_file={str(eval_file)!r} and eval_segments={str(eval_segments)!r}: give one "
                         "(a separate evaluation features file, or the list of evaluation ids in the file)")
    feats = read_tmac_features(path, arrays=False)
    if eval_file:
        return _with_eval_file(path, feats, eval_file, seed, ratios)
    if eval_segments:
        split = evaluation_set_split(feats["label_index"], feats["audio_add"], eval_segments, seed,
                                     (ratios[0], ratios[1]), source=str(path))
        st = Path(eval_segments).stat()
        recipe: dict[str, Any] = {"eval_segments": Path(eval_segments).name, "eval_size": st.st_size,
                                  "eval_mtime": st.st_mtime_ns}
        rule = (f"AudioSet evaluation set ({Path(eval_segments).name}) as test, the rest "
                f"{ratios[0]:g} : {ratios[1]:g} train / valid by class (seed {seed})")
    else:
        split = stratified_split(feats["label_index"], seed, ratios)
        recipe = {}
        rule = f"THGCL repository's stratified {ratios[0]:g} / {ratios[1]:g} / {ratios[2]:g} split (seed {seed})"
    audio, video = H5Array(path, "audio"), H5Array(path, "video")
    data_key = caching.stable_digest({"file": Path(path).name, "size": Path(path).stat().st_size,
                                      "clips": len(split), "classes": list(feats["classes"]),
                                      "split_seed": int(seed), "ratios": list(ratios), **recipe})
    return {"audio": audio, "video": video, "target": feats["target"],
            "split": split, "classes": feats["classes"],
            "clip_id": [str(i) for i in range(len(split))],
            "audio_hop_s": _tmac_hop(audio.shape[1]), "data_key": data_key,
            "stats_key": caching.stable_digest([data_key, Path(path).stat().st_mtime_ns]),
            "source": str(path), "split_rule": rule, "paper_split": bool(eval_segments)}


def _with_eval_file(path: str | os.PathLike, feats: Mapping[str, Any], eval_file: str | os.PathLike,
                    seed: int, ratios: tuple[float, float, float]) -> dict[str, Any]:
    """:func:`tmac_av_features` with a separate evaluation file: training file rows first, then
    the evaluation file's rows (:class:`StackedRows`), the evaluation clips as the test split."""
    ev = read_tmac_features(eval_file, arrays=False)
    if list(ev["classes"]) != list(feats["classes"]):
        raise THGCLError(f"eval_file={str(eval_file)!r}: its unique_labels {list(ev['classes'])[:5]}... differ "
                         f"from the training file {str(path)!r}'s {list(feats['classes'])[:5]}... (the class "
                         "order must be the same)")
    if tuple(ev["audio_shape"][1:]) != tuple(feats["audio_shape"][1:]) or \
            tuple(ev["video_shape"][1:]) != tuple(feats["video_shape"][1:]):
        raise THGCLError(f"eval_file={str(eval_file)!r}: nodes {ev['audio_shape'][1:]} / {ev['video_shape'][1:]} "
                         f"differ from the training file's {feats['audio_shape'][1:]} / {feats['video_shape'][1:]}")
    inner = _train_valid_split(feats["label_index"], seed, (ratios[0], ratios[1]))
    n_train, n_eval = len(inner), len(ev["label_index"])
    split = np.concatenate([inner, np.full(n_eval, "test", dtype=object)])
    audio = StackedRows([H5Array(path, "audio"), H5Array(eval_file, "audio")])
    video = StackedRows([H5Array(path, "video"), H5Array(eval_file, "video")])
    stat = [(Path(f).name, Path(f).stat().st_size, Path(f).stat().st_mtime_ns) for f in (path, eval_file)]
    data_key = caching.stable_digest({"files": [s[:2] for s in stat], "clips": [n_train, n_eval],
                                      "classes": list(feats["classes"]), "split_seed": int(seed),
                                      "ratios": list(ratios[:2]), "split": "eval_file"})
    rule = (f"evaluation file ({n_eval} clips) as test, the training file {ratios[0]:g} : {ratios[1]:g} "
            f"train / valid by class (seed {seed})")
    return {"audio": audio, "video": video,
            "target": np.concatenate([feats["target"], ev["target"]]).astype(np.float32),
            "split": split, "classes": feats["classes"],
            "clip_id": [f"train:{i}" for i in range(n_train)] + [f"eval:{i}" for i in range(n_eval)],
            "audio_hop_s": _tmac_hop(audio.shape[1]), "data_key": data_key,
            "stats_key": caching.stable_digest([data_key, [s[2] for s in stat]]),
            "source": str(path), "split_rule": rule, "paper_split": True}


#: what a user's clip table must carry for THGCL (the ``clip_table`` parameter of the notebooks)
CLIP_TABLE_FORMAT = """\
A clip table (audiorepro.data.cliptable: columns clip_id, path, split, labels) whose path column
points at rows of ONE features HDF5 in the TMac layout, as <file>#<row> (the file relative to the
CSV's folder or absolute; the tmac_features adapter writes such a table for the official file):
  audio  (N, P_a, D_a) float  audio node features per clip (e.g. VGGish embeddings of 0.96 s segments)
  video  (N, P_v, D_v) float  visual node features per clip (e.g. S3D embeddings of video chunks)
optional file attributes audio_hop_s (start-time step of the audio nodes in seconds; default: P_a
segments of 0.96 s tiling a 10 s clip) and video_chunk_s (default 0.25). split: train / valid /
test on every row, or all on every row (THGCL's stratified 0.7/0.1/0.2 split, seed 1024). labels:
class names separated by ';' (the vocabulary: the table's, or its <stem>.classes.txt)."""


def clip_table_av_features(clip_table: str | os.PathLike, seed: int = 1024,
                           ratios: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> dict[str, Any]:
    """A user's own audio-visual data (:data:`CLIP_TABLE_FORMAT`) as node features, read
    streaming like the TMac file (:class:`H5Array`). Errors (:class:`THGCLError`) name the
    table, the row, the clip and the column or the file.

    Returns the keys of :func:`tmac_av_features`; ``target`` and ``classes`` come from the
    table's labels, ``split`` from its ``split`` column, the graph's time steps from the file's
    attributes.
    """
    csv = Path(clip_table)
    table = ClipTable.read(csv)
    if len(table) == 0:
        raise THGCLError(f"clip table {csv}: no rows")
    files, rows = [], []
    for i, (cid, cell) in enumerate(zip(table.frame["clip_id"], table.frame["path"])):
        where = f"clip table {csv}, row {i + 2} (clip {cid!r}), column 'path'"
        file, sep, row = str(cell).rpartition("#")
        if not sep or not row.strip().isdigit():
            raise THGCLError(f"{where}: {cell!r} is not <features file>#<row> (THGCL reads node "
                             "features; see thgcl.CLIP_TABLE_FORMAT)")
        fp = Path(file)
        files.append(fp if fp.is_absolute() else table.root / fp)
        rows.append(int(row))
    distinct = sorted({str(f.resolve()) for f in files})
    if len(distinct) != 1:
        raise THGCLError(f"clip table {csv}, column 'path': rows point at {len(distinct)} features "
                         f"files ({distinct[:3]}); put every clip in one HDF5 file")
    h5 = Path(distinct[0])
    if not h5.is_file():
        raise THGCLError(f"clip table {csv}, column 'path': features file {h5} not found")
    audio, video = H5Array(h5, "audio"), H5Array(h5, "video")
    if len(audio) != len(video):
        raise THGCLError(f"features file {h5}: 'audio' has {len(audio)} rows, 'video' {len(video)}")
    bad = [i for i, r in enumerate(rows) if r >= len(audio)]
    if bad:
        raise THGCLError(f"clip table {csv}, row {bad[0] + 2} (clip {table.frame['clip_id'].iloc[bad[0]]!r}), "
                         f"column 'path': row {rows[bad[0]]} of {h5.name}, which has {len(audio)} rows")
    target = table.targets()
    splits = table.frame["split"].astype(str).str.strip().to_numpy()
    if set(splits) == {"all"}:
        label_index = np.where(target.sum(1) > 0, target.argmax(1), -1)
        split = stratified_split(label_index, seed, ratios)
    else:
        odd = [i for i, v in enumerate(splits) if v not in ("train", "valid", "test")]
        if odd:
            raise THGCLError(f"clip table {csv}, row {odd[0] + 2} (clip {table.frame['clip_id'].iloc[odd[0]]!r}), "
                             f"column 'split': {splits[odd[0]]!r}; use train, valid and test (or "
                             "all on every row for THGCL's stratified split)")
        split = splits.astype(object)
    attrs = _h5_file(str(h5)).attrs
    hop = float(attrs.get("audio_hop_s", _tmac_hop(audio.shape[1])))
    chunk = float(attrs.get("video_chunk_s", 0.25))
    # the file rows this table reads: a view whose row i is the table's row i
    audio_v, video_v = _RowView(audio, rows), _RowView(video, rows)
    st = h5.stat()
    data_key = caching.stable_digest({"table": caching.table_fingerprint(table),
                                      "file": h5.name, "size": st.st_size, "mtime": st.st_mtime_ns,
                                      "split_seed": int(seed), "ratios": list(ratios),
                                      "hop": hop, "chunk": chunk})
    return {"audio": audio_v, "video": video_v, "target": target.astype(np.float32), "split": split,
            "classes": list(table.classes), "clip_id": table.frame["clip_id"].astype(str).tolist(),
            "audio_hop_s": hop, "video_chunk_s": chunk, "data_key": data_key, "stats_key": data_key,
            "source": str(csv)}


class _RowView:
    """Rows ``rows`` of an :class:`H5Array` as an (len(rows), P, D) array read on demand."""

    def __init__(self, array: H5Array, rows: Sequence[int]) -> None:
        self.array, self.index = array, np.asarray(rows, dtype=np.int64)
        self.shape = (len(self.index), *array.shape[1:])

    def __len__(self) -> int:
        return len(self.index)

    def rows(self, idx: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.array.rows(self.index[np.asarray(idx, dtype=np.int64)])


def world_features(n_clips: int, seed: int = 1, audio_hop_s: float = 0.48, audio_encoder: str = "stats",
                   *, device: str = "auto", max_per_split: Mapping[str, int | None] | None = None,
                   **visual_params: Any) -> tuple[dict[str, Any], str]:
    """Features of the shared synthetic world (``default_world(n_clips, seed)``), optionally with
    the visual stream regenerated by :func:`~audiorepro.data.synthetic.visual_variant`
    (``av_offset_s``, ``visual_noise``, ...). ``max_per_split`` (e.g. ``{"train": 420}``) keeps
    at most that many clips of a split (:meth:`ClipTable.cap_splits` with the world's seed; the
    others' features are never computed). Returns ``(features, data_key)``."""
    world = default_world(n_clips, seed, progress=False)
    rows = None
    if max_per_split:
        kept = set(world.table.cap_splits(dict(max_per_split), seed=seed).frame["clip_id"])
        rows = np.flatnonzero(world.table.frame["clip_id"].isin(kept).to_numpy())
    feats = synthetic_av_features(world, audio_hop_s, visual_params, audio_encoder=audio_encoder,
                                  device=device, rows=rows)
    return feats, feats["data_key"]


def _resolve(given: str) -> Path:
    """A parameter's path: as given when absolute or existing from the working folder, else
    relative to the project home."""
    path = Path(given)
    return path if path.is_absolute() or path.exists() else paths.home() / path


def chapter_features(n_clips: int, seed: int = 1, tmac_file: str = "", audio_hop_s: float = 0.48,
                     audio_encoder: str = "stats", *, clip_table: str = "", task: str = "",
                     eval_segments: str = "", eval_file: str = "", device: str = "auto",
                     max_per_split: Mapping[str, int | None] | None = None,
                     **visual_params: Any) -> tuple[dict[str, Any], str, str, str]:
    """Features for a chapter notebook: the real TMac file when ``tmac_file`` is given (paper
    profile; with ``eval_file``, the evaluation-set features file, or ``eval_segments``,
    AudioSet's ``eval_segments.csv``, the test split is the original evaluation set as the
    paper's text says, else the THGCL repository's stratified split, whose records are filed
    under the dataset name ``"<TMAC_DATASET>, THGCL repository split"`` so that they never decide
    a claim on the paper's data: :func:`tmac_av_features`), a user's clip table (:data:`CLIP_TABLE_FORMAT`, recorded
    under ``task``) when ``clip_table`` is given, else the shared synthetic world encoded with
    ``audio_encoder`` (:func:`load_audio_encoder`, on ``device``; ``max_per_split`` caps its
    splits, :func:`world_features`). Relative ``tmac_file`` /
    ``clip_table`` / ``eval_segments`` paths that do not exist from the working folder are taken
    relative to the project home.

    ``visual_params`` (``av_offset_s``, ``visual_noise``, ...) regenerate the synthetic world's
    visual stream; on a features file only ``av_offset_s`` (a delay of the video nodes by
    ``round(av_offset_s / video_chunk_s)`` nodes) and ``visual_noise`` (Gaussian noise of that
    standard deviation on the standardised video features) exist, applied by
    :class:`StreamedAVFeatures` (``features["video_perturbation"]``).
    ``dataset`` is :data:`TMAC_DATASET` for the feature file (the claims on the paper's
    absolute numbers are decided on it only), with ``", official-format miniature <folder>"``
    added when the file is a miniature (its folder has the miniature's ``MINIATURE.txt``).
    Returns ``(features, data_key, dataset, scale)``.
    """
    if tmac_file and clip_table:
        raise THGCLError(f"tmac_file={tmac_file!r} and clip_table={clip_table!r}: give one")
    for name, value in (("eval_segments", eval_segments), ("eval_file", eval_file)):
        if value and not tmac_file:
            raise THGCLError(f"{name}={value!r} needs tmac_file (it gives the evaluation clips of the "
                             "TMac feature file; a clip table carries its own split column)")
    if max_per_split and (tmac_file or clip_table):
        raise THGCLError(f"max_per_split={dict(max_per_split)!r} caps the synthetic world's splits; "
                         "a features file or clip table is used whole (leave it empty)")
    if tmac_file or clip_table:
        given = Path(tmac_file or clip_table)
        path = _resolve(tmac_file or clip_table)
        if clip_table and not task:
            raise THGCLError(f"clip_table={clip_table!r} needs task (the name your records are "
                             "filed under; a user's data is never compared with a paper number)")
        feats = (tmac_av_features(path, eval_segments=_resolve(eval_segments) if eval_segments else None,
                                  eval_file=_resolve(eval_file) if eval_file else None)
                 if tmac_file else clip_table_av_features(path))
        feats["source"] = str(given)
        if clip_table:
            feats["task"] = str(task)
        if visual_params:
            unknown = sorted(set(visual_params) - {"av_offset_s", "visual_noise"})
            if unknown:
                raise THGCLError(f"visual parameters {unknown} need the synthetic world; on a "
                                 "features file only av_offset_s and visual_noise exist")
            chunk = float(feats.get("video_chunk_s", 0.25))
            pert = {"video_shift": int(round(float(visual_params.get("av_offset_s", 0.0)) / chunk)),
                    "video_noise": float(visual_params.get("visual_noise", 0.0))}
            feats["video_perturbation"] = pert
            feats["data_key"] = caching.stable_digest({"data": feats["data_key"], "perturbation": pert})
        if clip_table:
            dataset = f"{task} (clip table {given.name})"
        elif (path.parent / MINIATURE_README).is_file():   # never decides a claim on the paper's data
            dataset = f"{TMAC_DATASET}, official-format miniature {path.parent.name}"
        else:
            dataset = TMAC_DATASET if feats.get("paper_split") else f"{TMAC_DATASET}, THGCL repository split"
        extra = "".join(f", {k} {v}" for k, v in visual_params.items())
        rule = f"; split: {feats['split_rule']}" if "split_rule" in feats else ""
        return feats, feats["data_key"], dataset, f"{len(feats['split'])} clips ({given.name}{extra}{rule})"
    feats, key = world_features(n_clips, seed, audio_hop_s, audio_encoder, device=device,
                                max_per_split=max_per_split, **visual_params)
    extra = "".join(f", {k} {v}" for k, v in visual_params.items())
    size = (f"{n_clips} clips" if not max_per_split else
            f"{len(feats['split'])} of {n_clips} clips, "
            f"{split_sizes(pd.DataFrame({'split': feats['split']}))}")
    return (feats, key, f"synthetic world (audio {audio_encoder})", f"{size} (seed {seed}{extra})")
