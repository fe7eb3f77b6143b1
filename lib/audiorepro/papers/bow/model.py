"""Bag of codewords: "Good embeddings with statistics are enough" (Verma 2022), from the text.

No public code exists; everything here follows section III of the paper
(``papers/bow_codebooks.txt``). Choices the paper leaves open are marked *ours*.

Pipeline (one second of audio = one chunk)::

    16 kHz wave --bow_96 log-mel--> (96, 100) chunk --standardise (ours)--> 4 patch families
      pat   120 spectral patches      8 x 10   (12 bands x 10 time steps)
      fenv   12 frequency-band envs   8 x 100
      env    10 spectral envelopes   96 x 10
      o       1 whole spectrogram resized bicubically to 8 x 10
    = 143 vectors --one MLP autoencoder per family--> bottlenecks (input size / F)
      --k-means per family, D codewords--> codes --counts--> 4 D bag of words (sums to 143)
      --MLP head (sigmoid outputs, Huber loss, Adam, random count masking p)--> 1 s probabilities
      --mean over the 1 s chunks of a clip--> clip probabilities

Public API
    :data:`FAMILIES`, :class:`PatchSpec`, :func:`extract_patches`, :func:`family_boxes`,
    :func:`chunk_spectrogram`, :class:`ChunkSet`, :func:`compute_chunks` (cached log-mel chunks of a
    clip table), :class:`PatchAutoencoder`, :class:`CodebookConfig` / :class:`BowConfig`,
    :func:`fit_kmeans`, :func:`assign_codes`, :func:`bag_of_words`, :class:`CountMasking`,
    :class:`BowTagger`, :func:`huber_loss`, :func:`clip_pool`, :class:`BowPipeline` (autoencoders,
    codebooks, codes and counts cached under ``cache/bow/`` keyed by configuration),
    :class:`HeadConfig` / :func:`train_head` (head through :func:`audiorepro.training.fit`),
    :func:`ngram_counts` and :class:`VQAutoencoder` (the paper's future work).
    Experiments of the notebooks: :func:`run_grid` / :func:`summarize_grid` / :func:`best_config` /
    :func:`record_grid` / :func:`stored_best_config` (Fig. 2), :func:`run_masking` /
    :func:`record_masking` / :func:`stored_best_masking` (Fig. 3), :func:`chunk_waves` /
    :class:`BaselineConfig` / :func:`train_baseline` / :func:`table1_frame` / :func:`record_table1`
    (Table I baselines on the same 1 s chunks), :func:`temporal_bigrams` / :func:`vq_codes` /
    :func:`record_beyond` (beyond the paper).

Caching: every cached artefact lives in a folder named by a hash of everything that determines
it (data fingerprint, front end, normalisation, autoencoder and k-means settings, seed and
:data:`VERSION`); files are written atomically, so sweeps reuse encoders, codebooks and counts.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from audiorepro import paths
from audiorepro.data.audio import fix_length, load_audio
from audiorepro.data.cliptable import ClipTable
from audiorepro.frontends import make_frontend, preset_config

__all__ = [
    "VERSION", "FAMILIES", "FAMILY_NAMES", "PatchSpec", "family_shapes", "extract_patches",
    "family_boxes", "chunk_spectrogram", "ChunkSet", "compute_chunks", "PatchAutoencoder",
    "BowConfig", "fit_kmeans", "assign_codes", "bag_of_words", "CountMasking", "BowTagger",
    "huber_loss", "clip_pool", "BowPipeline", "HeadConfig", "HeadResult", "train_head",
    "ngram_counts", "VQAutoencoder", "train_vq_autoencoder", "BowError", "head_run_dir", "run_grid",
    "run_masking", "GRID_KEYS", "summarize_grid", "best_config", "best_per", "paper_row_of",
    "stored_best_config", "record_grid", "plot_curve", "masking_row", "paper_masking_points", "record_masking",
    "chunk_waves", "BaselineConfig", "train_baseline", "stored_best_masking", "table1_frame", "record_table1",
    "plot_table1", "temporal_bigrams", "vq_codes", "record_beyond", "plot_families", "assemble", "plot_reconstructions", "codeword_usage",
    "plot_codeword_usage", "plot_grid",
]

#: Bump when a change alters cached artefacts (invalidates ``cache/bow``).
VERSION = "bow-1"
#: Patch families in the order of the concatenated 4 D vector.
FAMILIES = ("pat", "fenv", "env", "o")
FAMILY_NAMES = {"pat": "spectral patches (8 x 10)", "fenv": "frequency-band envelopes (8 x 100)",
                "env": "spectral envelopes (96 x 10)", "o": "whole spectrogram resized to 8 x 10"}


class BowError(ValueError):
    """A bad parameter or input of the bag-of-codewords pipeline; the message names it."""


# ================================================================================ patches
@dataclass(frozen=True)
class PatchSpec:
    """Geometry of the four patch families (paper section III-A).

    Attributes:
        n_mels, n_frames: chunk size (96 mel bins x 100 frames = 1 s at 10 ms hop).
        patch: (freq, time) size of a spectral patch (8 x 10).
        band: mel bins per frequency-band envelope (8; each spans all frames).
        env_frames: frames per spectral envelope (10; each spans all mel bins).
        coarse: size the whole chunk is resized to (8 x 10), bicubic.
        antialias: low-pass before the bicubic downsampling (as PIL's resize; *ours*: the
            paper only says "bi-cubic interpolation").
    """

    n_mels: int = 96
    n_frames: int = 100
    patch: tuple[int, int] = (8, 10)
    band: int = 8
    env_frames: int = 10
    coarse: tuple[int, int] = (8, 10)
    antialias: bool = True

    def __post_init__(self) -> None:
        if self.n_mels % self.patch[0] or self.n_frames % self.patch[1]:
            raise BowError(f"PatchSpec: patch {self.patch} does not tile {self.n_mels} x {self.n_frames}")
        if self.n_mels % self.band:
            raise BowError(f"PatchSpec: band={self.band} does not divide n_mels={self.n_mels}")
        if self.n_frames % self.env_frames:
            raise BowError(f"PatchSpec: env_frames={self.env_frames} does not divide n_frames={self.n_frames}")


def family_shapes(spec: PatchSpec = PatchSpec()) -> dict[str, tuple[int, int]]:
    """Family -> (vectors per chunk, vector size): pat (120, 80), fenv (12, 800), env (10, 960),
    o (1, 80) for the paper's geometry."""
    pf, pt = spec.patch
    return {"pat": ((spec.n_mels // pf) * (spec.n_frames // pt), pf * pt),
            "fenv": (spec.n_mels // spec.band, spec.band * spec.n_frames),
            "env": (spec.n_frames // spec.env_frames, spec.n_mels * spec.env_frames),
            "o": (1, spec.coarse[0] * spec.coarse[1])}


def extract_patches(chunks: torch.Tensor, spec: PatchSpec = PatchSpec()) -> dict[str, torch.Tensor]:
    """Cut (B, n_mels, n_frames) chunks into the four families.

    Returns family -> (B, n_f, d_f) flattened vectors (row-major inside a patch: frequency, then
    time). ``pat`` patches are ordered band-major (band 0 times 0..9, band 1 ...); ``fenv`` by band
    (low to high); ``env`` by time; ``o`` holds one vector.
    """
    if chunks.dim() != 3 or chunks.shape[1:] != (spec.n_mels, spec.n_frames):
        raise BowError(f"extract_patches: chunks must be (B, {spec.n_mels}, {spec.n_frames}), "
                       f"got {tuple(chunks.shape)}")
    x = chunks.float()
    b = x.shape[0]
    pf, pt = spec.patch
    nf, nt = spec.n_mels // pf, spec.n_frames // pt
    pat = x.reshape(b, nf, pf, nt, pt).permute(0, 1, 3, 2, 4).reshape(b, nf * nt, pf * pt)
    fenv = x.reshape(b, spec.n_mels // spec.band, spec.band * spec.n_frames)
    ne = spec.n_frames // spec.env_frames
    env = x.reshape(b, spec.n_mels, ne, spec.env_frames).permute(0, 2, 1, 3).reshape(b, ne, -1)
    o = F.interpolate(x[:, None], size=spec.coarse, mode="bicubic", align_corners=False,
                      antialias=spec.antialias).reshape(b, 1, -1)
    return {"pat": pat.contiguous(), "fenv": fenv.contiguous(), "env": env.contiguous(), "o": o}


def family_boxes(spec: PatchSpec = PatchSpec()) -> dict[str, list[tuple[int, int, int, int]]]:
    """Rectangles (frame0, mel0, n_frames, n_mels) of every vector of each family, in the order of
    :func:`extract_patches` (``o`` covers the whole chunk); for drawing Fig. 1."""
    pf, pt = spec.patch
    pat = [(t * pt, f * pf, pt, pf) for f in range(spec.n_mels // pf) for t in range(spec.n_frames // pt)]
    fenv = [(0, f * spec.band, spec.n_frames, spec.band) for f in range(spec.n_mels // spec.band)]
    env = [(t * spec.env_frames, 0, spec.env_frames, spec.n_mels)
           for t in range(spec.n_frames // spec.env_frames)]
    return {"pat": pat, "fenv": fenv, "env": env, "o": [(0, 0, spec.n_frames, spec.n_mels)]}


def chunk_spectrogram(spec: torch.Tensor, chunk_frames: int = 100, pad_short: bool = True) -> torch.Tensor:
    """(n_mels, T) -> (n_chunks, n_mels, chunk_frames) non-overlapping chunks; the tail that does
    not fill a chunk is dropped; a spectrogram shorter than one chunk is padded with its minimum
    (``pad_short``) so every clip gives at least one chunk."""
    if spec.dim() != 2:
        raise BowError(f"chunk_spectrogram: want (n_mels, T), got {tuple(spec.shape)}")
    t = spec.shape[1]
    if t < chunk_frames:
        if not pad_short:
            raise BowError(f"chunk_spectrogram: {t} frames < chunk_frames={chunk_frames}")
        spec = F.pad(spec, (0, chunk_frames - t), value=float(spec.min()))
        t = chunk_frames
    n = t // chunk_frames
    return spec[:, : n * chunk_frames].reshape(spec.shape[0], n, chunk_frames).permute(1, 0, 2).contiguous()


# ================================================================================ caching helpers
def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _atomic_np_save(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


# ================================================================================ chunks of a table
@dataclass
class ChunkSet:
    """The 1 s log-mel chunks of a clip table.

    Attributes:
        spec: (M, n_mels, n_frames) float16 log-mel chunks (not standardised).
        chunk_clip: (M,) int64 row of ``table`` each chunk comes from (chunks of a clip are
            consecutive, in time order).
        targets: (N, K) float32 clip multi-hot targets (``table.targets()``).
        table: the clip table (N rows).
        key: fingerprint of the data and front end (part of every cache key).
    """

    spec: np.ndarray
    chunk_clip: np.ndarray
    targets: np.ndarray
    table: ClipTable
    key: str

    @property
    def splits(self) -> np.ndarray:
        """(N,) split name of each clip."""
        return self.table.frame["split"].astype(str).to_numpy()

    def chunk_mask(self, split: str | Sequence[str]) -> np.ndarray:
        """(M,) bool: chunks of clips in ``split``."""
        splits = [split] if isinstance(split, str) else list(split)
        return np.isin(self.splits[self.chunk_clip], splits)

    def chunk_targets(self) -> np.ndarray:
        """(M, K) targets of the chunks: the clip's labels assigned to each of its chunks."""
        return self.targets[self.chunk_clip]

    def clip_rows(self, split: str | Sequence[str]) -> np.ndarray:
        """Sorted clip rows in ``split``."""
        splits = [split] if isinstance(split, str) else list(split)
        return np.flatnonzero(np.isin(self.splits, splits))


def _table_fingerprint(table: ClipTable) -> str:
    cols = [c for c in ("clip_id", "path", "labels", "split", "start_s", "duration_s") if c in table.frame]
    rows = table.frame[cols].astype(str).to_numpy().tolist()
    return _digest({"name": table.name, "root": str(table.root), "classes": list(table.classes), "rows": rows})


def compute_chunks(table: ClipTable, frontend: str = "bow_96", max_seconds: float | None = 10.0,
                   cache: bool = True, progress: bool = False) -> ChunkSet:
    """Log-mel every clip of ``table`` with the ``frontend`` preset and cut it into 1 s chunks.

    A clip is read whole (or up to ``max_seconds``), its spectrogram cut with
    :func:`chunk_spectrogram`; clips shorter than 1 s give one padded chunk. Cached under
    ``cache/bow/chunks/<key>.npz`` (key: table fingerprint, front-end config, max_seconds).
    """
    cfg = preset_config(frontend)
    frames_per_s = cfg.sample_rate // cfg.hop_length
    key = _digest({"v": VERSION, "table": _table_fingerprint(table), "frontend": cfg.to_dict(),
                   "max_seconds": max_seconds})
    path = paths.cache_dir("bow", "chunks", f"{key}.npz")
    targets = table.targets()
    if cache and path.is_file():
        with np.load(path) as z:
            return ChunkSet(z["spec"], z["chunk_clip"], targets, table, key)
    fe = make_frontend(frontend).eval()
    specs, owner = [], []
    it = range(len(table))
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="log-mel chunks")
    for i in it:
        start, dur = _clip_window(table, i, max_seconds)
        wave, _ = load_audio(table.audio_path(i), sample_rate=cfg.sample_rate, start_s=start, duration_s=dur)
        if wave.shape[0] < cfg.sample_rate:
            wave = fix_length(wave, cfg.sample_rate)
        with torch.no_grad():
            s = fe(wave)  # (n_mels, frames)
        ch = chunk_spectrogram(s, frames_per_s)
        specs.append(ch.numpy().astype(np.float16))
        owner.append(np.full(len(ch), i, dtype=np.int64))
    spec = np.concatenate(specs) if specs else np.zeros((0, cfg.n_mels, frames_per_s), np.float16)
    chunk_clip = np.concatenate(owner) if owner else np.zeros(0, np.int64)
    if cache:
        _atomic_np_save(path, spec=spec, chunk_clip=chunk_clip)
    return ChunkSet(spec, chunk_clip, targets, table, key)


def _clip_window(table: ClipTable, i: int, max_seconds: float | None) -> tuple[float, float | None]:
    """(start_s, duration_s or None = to the end) of clip row ``i``, cut to ``max_seconds``."""
    fr = table.frame
    start = float(fr["start_s"].iloc[i]) if "start_s" in fr and not _isnan(fr["start_s"].iloc[i]) else 0.0
    dur = float(fr["duration_s"].iloc[i]) if "duration_s" in fr and not _isnan(fr["duration_s"].iloc[i]) else None
    if max_seconds is not None:
        dur = min(dur, max_seconds) if dur is not None else max_seconds
    return start, dur


def _isnan(v: Any) -> bool:
    try:
        return v is None or (isinstance(v, float) and math.isnan(v)) or str(v) in ("", "nan", "<NA>")
    except TypeError:
        return False


# ================================================================================ autoencoders
class PatchAutoencoder(nn.Module):
    """Fully connected autoencoder of one family (paper III-A).

    Encoder: ``depth`` layers, ``hidden`` units each except the last, which maps to the bottleneck
    ``max(1, round(in_dim / factor))``; ReLU + dropout after every hidden layer; decoder mirrors it
    (``depth`` layers back to ``in_dim``). Paper: depth 3, hidden 2048, dropout 0.5, F = 10 or 20,
    MSE. (Whether the bottleneck has an activation is not stated: it is linear here, *ours*.)

    Shapes: ``encode`` (B, in_dim) -> (B, bottleneck); ``forward`` (B, in_dim) -> (B, in_dim).
    """

    def __init__(self, in_dim: int, factor: float = 10, hidden: int = 2048, dropout: float = 0.5,
                 depth: int = 3) -> None:
        super().__init__()
        if in_dim < 1 or factor <= 0 or hidden < 1 or depth < 1 or not 0 <= dropout < 1:
            raise BowError(f"PatchAutoencoder: bad in_dim={in_dim}, factor={factor}, hidden={hidden}, "
                           f"depth={depth} or dropout={dropout}")
        self.in_dim, self.factor = int(in_dim), float(factor)
        self.bottleneck = max(1, int(round(in_dim / factor)))
        self.encoder = self._mlp(in_dim, hidden, self.bottleneck, depth, dropout)
        self.decoder = self._mlp(self.bottleneck, hidden, in_dim, depth, dropout)

    @staticmethod
    def _mlp(d_in: int, hidden: int, d_out: int, depth: int, dropout: float) -> nn.Sequential:
        layers: list[nn.Module] = []
        d = d_in
        for _ in range(depth - 1):
            layers += [nn.Linear(d, hidden), nn.ReLU(), nn.Dropout(dropout)]
            d = hidden
        layers.append(nn.Linear(d, d_out))
        return nn.Sequential(*layers)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


# ================================================================================ codebooks and counts
def fit_kmeans(latents: np.ndarray, n_clusters: int, seed: int = 0, minibatch_above: int = 20000,
               max_iter: int = 100, batch_size: int = 4096, n_init: int = 1) -> np.ndarray:
    """k-means centroids (n_clusters, d) of ``latents`` (N, d) with scikit-learn: ``KMeans`` for
    N <= ``minibatch_above``, ``MiniBatchKMeans`` above. N < n_clusters raises."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    x = np.ascontiguousarray(latents, dtype=np.float32)
    if x.ndim != 2:
        raise BowError(f"fit_kmeans: latents must be (N, d), got {x.shape}")
    if len(x) < n_clusters:
        raise BowError(f"fit_kmeans: {len(x)} vectors < D={n_clusters} codewords; use more data "
                       "or a smaller codebook_size")
    if len(x) <= minibatch_above:
        km = KMeans(n_clusters, n_init=n_init, max_iter=max_iter, random_state=seed)
    else:
        km = MiniBatchKMeans(n_clusters, n_init=max(n_init, 1), max_iter=max_iter, batch_size=batch_size,
                             random_state=seed)
    km.fit(x)
    return km.cluster_centers_.astype(np.float32)


def assign_codes(latents: torch.Tensor | np.ndarray, centroids: torch.Tensor | np.ndarray,
                 block: int = 65536) -> np.ndarray:
    """Index of the nearest centroid (squared Euclidean, as ``KMeans.predict``) of each row.

    latents (N, d), centroids (D, d) -> (N,) int64.
    """
    x = torch.as_tensor(np.asarray(latents, dtype=np.float32) if isinstance(latents, np.ndarray) else latents).float()
    c = torch.as_tensor(np.asarray(centroids, dtype=np.float32) if isinstance(centroids, np.ndarray) else centroids).float()
    if x.dim() != 2 or c.dim() != 2 or x.shape[1] != c.shape[1]:
        raise BowError(f"assign_codes: latents {tuple(x.shape)} and centroids {tuple(c.shape)} must be (N, d), (D, d)")
    c2 = (c * c).sum(1)
    out = []
    for i in range(0, len(x), block):
        xb = x[i:i + block]
        d = c2[None, :] - 2 * xb @ c.T  # |x|^2 is constant per row
        out.append(d.argmin(1))
    return torch.cat(out).numpy().astype(np.int64) if out else np.zeros(0, np.int64)


def bag_of_words(codes: Mapping[str, np.ndarray], codebook_size: int,
                 families: Sequence[str] = FAMILIES) -> np.ndarray:
    """Count vectors: family -> (M, n_f) codes in [0, D) -> (M, len(families) * D) float32 counts,
    families concatenated in ``families`` order. Each row sums to sum(n_f) (143 for the paper)."""
    parts = []
    m = None
    for fam in families:
        c = np.asarray(codes[fam])
        if c.ndim != 2:
            raise BowError(f"bag_of_words: codes[{fam!r}] must be (M, n_f), got {c.shape}")
        if m is None:
            m = c.shape[0]
        elif c.shape[0] != m:
            raise BowError(f"bag_of_words: codes[{fam!r}] has {c.shape[0]} rows, expected {m}")
        if c.size and (c.min() < 0 or c.max() >= codebook_size):
            raise BowError(f"bag_of_words: codes[{fam!r}] outside [0, {codebook_size})")
        rows = np.repeat(np.arange(c.shape[0]), c.shape[1])
        cnt = np.zeros((c.shape[0], codebook_size), np.float32)
        np.add.at(cnt, (rows, c.reshape(-1)), 1.0)
        parts.append(cnt)
    return np.concatenate(parts, axis=1)


def ngram_counts(codes: np.ndarray, codebook_size: int, n: int = 2, n_buckets: int | None = None) -> np.ndarray:
    """n-gram statistics over codeword sequences (the paper's future work).

    codes (M, S, L): M chunks, S parallel sequences of length L (e.g. the ``pat`` codes reshaped to
    12 bands x 10 time steps; ``env`` as 1 x 10). Counts every run of ``n`` consecutive codes
    along L, over all S sequences. The n-gram ``(c_1..c_n)`` has index ``sum c_i D^(n-i)``; with
    ``n_buckets`` the index is taken modulo ``n_buckets`` (hashing trick, *ours*).
    Returns (M, D**n or n_buckets) float32; each row sums to S * (L - n + 1).
    """
    c = np.asarray(codes, dtype=np.int64)
    if c.ndim != 3 or c.shape[2] < n or n < 1:
        raise BowError(f"ngram_counts: codes must be (M, S, L) with L >= n={n}, got {c.shape}")
    idx = np.zeros(c.shape[:2] + (c.shape[2] - n + 1,), np.int64)
    for i in range(n):
        idx = idx * codebook_size + c[:, :, i: c.shape[2] - n + 1 + i]
    size = codebook_size ** n
    if n_buckets is not None:
        idx %= n_buckets
        size = n_buckets
    elif size > 2 ** 22:
        raise BowError(f"ngram_counts: D**n = {size} is too large; pass n_buckets")
    flat = idx.reshape(c.shape[0], -1)
    out = np.zeros((c.shape[0], size), np.float32)
    np.add.at(out, (np.repeat(np.arange(c.shape[0]), flat.shape[1]), flat.reshape(-1)), 1.0)
    return out


# ================================================================================ head
class CountMasking(nn.Module):
    """Random input-count masking (paper III-C): in training mode every entry of the (B, 4D) count
    vector is replaced by 0 with probability ``p``; identity in eval mode."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise BowError(f"CountMasking: p={p} must be in [0, 1)")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x, dtype=torch.float32) >= self.p
        return x * keep.to(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"


INPUT_TRANSFORMS = ("none", "log1p", "fraction")


class BowTagger(nn.Module):
    """MLP head on the 4 D count vector: masking -> input transform -> ``layers`` x (Linear,
    ReLU, Dropout) -> Linear -> sigmoid.

    The paper does not say how counts are scaled before the MLP; ``input_transform`` is *ours*:
    ``log1p`` (default), ``fraction`` (each family's counts divided by its vector count, so each
    family sums to 1) or ``none`` (raw counts).

    Shapes: (B, n_families * D) counts -> (B, num_classes) probabilities in (0, 1).
    """

    def __init__(self, codebook_size: int, num_classes: int, hidden: int = 512, dropout: float = 0.4,
                 layers: int = 2, mask_p: float = 0.0, input_transform: str = "log1p",
                 family_sizes: Sequence[int] = (120, 12, 10, 1)) -> None:
        super().__init__()
        if input_transform not in INPUT_TRANSFORMS:
            raise BowError(f"BowTagger: input_transform={input_transform!r} not in {INPUT_TRANSFORMS}")
        if codebook_size < 1 or num_classes < 1 or hidden < 1 or layers < 1 or not 0 <= dropout < 1:
            raise BowError(f"BowTagger: bad codebook_size={codebook_size}, num_classes={num_classes}, "
                           f"hidden={hidden}, layers={layers} or dropout={dropout}")
        self.codebook_size, self.input_transform = int(codebook_size), input_transform
        self.in_dim = len(family_sizes) * self.codebook_size
        scale = torch.cat([torch.full((self.codebook_size,), 1.0 / n) for n in family_sizes])
        self.register_buffer("family_scale", scale, persistent=False)
        self.mask = CountMasking(mask_p)
        mlp: list[nn.Module] = []
        d = self.in_dim
        for _ in range(layers):
            mlp += [nn.Linear(d, hidden), nn.ReLU(), nn.Dropout(dropout)]
            d = hidden
        mlp.append(nn.Linear(d, num_classes))
        self.mlp = nn.Sequential(*mlp)

    def transform(self, counts: torch.Tensor) -> torch.Tensor:
        if self.input_transform == "log1p":
            return torch.log1p(counts)
        if self.input_transform == "fraction":
            return counts * self.family_scale
        return counts

    def forward(self, counts: torch.Tensor) -> torch.Tensor:
        if counts.dim() != 2 or counts.shape[1] != self.in_dim:
            raise BowError(f"BowTagger: counts must be (B, {self.in_dim}), got {tuple(counts.shape)}")
        return torch.sigmoid(self.mlp(self.transform(self.mask(counts.float()))))


def huber_loss(probs: torch.Tensor, target: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Huber loss between sigmoid outputs (B, K) and multi-hot targets (B, K), mean over all."""
    return F.huber_loss(probs, target.to(probs.dtype), delta=delta)


def clip_pool(chunk_scores: np.ndarray, chunk_clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the chunk probabilities of each clip (paper: clip level = mean over 1 s chunks).

    chunk_scores (M, K), chunk_clip (M,) clip ids -> (clips (C,) sorted unique ids, scores (C, K)).
    """
    s = np.asarray(chunk_scores, dtype=np.float64)
    ids = np.asarray(chunk_clip)
    if s.ndim != 2 or ids.shape != (s.shape[0],):
        raise BowError(f"clip_pool: scores {s.shape} and chunk_clip {ids.shape} disagree")
    clips, inv = np.unique(ids, return_inverse=True)
    sums = np.zeros((len(clips), s.shape[1]))
    np.add.at(sums, inv, s)
    counts = np.bincount(inv, minlength=len(clips))[:, None]
    return clips, (sums / counts).astype(np.float32)


# ================================================================================ pipeline
@dataclass(frozen=True)
class BowConfig:
    """Everything that determines encoders, codebooks and counts (the cache key).

    Attributes:
        factor: compression factor F (bottleneck = input size / F; paper 10 or 20).
        ae_hidden, ae_depth, ae_dropout: autoencoder width (paper 2048), layers per side (3),
            dropout (0.5).
        ae_epochs, ae_lr, ae_batch_size: autoencoder training (Adam, MSE; not given by the paper).
        ae_max_vectors: at most this many vectors per family (random sample of the training
            chunks) train the autoencoder; ``None`` = all.
        kmeans_max_vectors: at most this many training latents per family fit k-means.
        minibatch_above: ``MiniBatchKMeans`` above this many vectors, ``KMeans`` below.
        kmeans_max_iter: k-means (Lloyd) iterations at most (30: enough on the book data, *ours*).
        fit_splits: splits whose chunks train autoencoders and k-means (paper: training data).
        seed: sampling / initialisation seed.
        patch: the patch geometry.
    """

    factor: float = 10
    ae_hidden: int = 2048
    ae_depth: int = 3
    ae_dropout: float = 0.5
    ae_epochs: int = 5
    ae_lr: float = 1e-3
    ae_batch_size: int = 256
    ae_max_vectors: int | None = None
    kmeans_max_vectors: int | None = 100000
    minibatch_above: int = 20000
    kmeans_max_iter: int = 30
    fit_splits: tuple[str, ...] = ("train",)
    seed: int = 0
    patch: PatchSpec = PatchSpec()

    def __post_init__(self) -> None:
        # F = 10 and F = 10.0 are the same configuration (and must share one cache key)
        try:
            object.__setattr__(self, "factor", float(self.factor))
        except (TypeError, ValueError):
            raise BowError(f"BowConfig: factor={self.factor!r} is not a number") from None
        object.__setattr__(self, "fit_splits", tuple(self.fit_splits))

    def ae_fields(self) -> dict:
        d = asdict(self)
        for k in ("kmeans_max_vectors", "minibatch_above", "kmeans_max_iter"):
            d.pop(k)
        return d

    def kmeans_fields(self) -> dict:
        return {k: getattr(self, k) for k in ("kmeans_max_vectors", "minibatch_above", "kmeans_max_iter")}


class BowPipeline:
    """Encoders, codebooks, codes and counts of one :class:`ChunkSet` under one :class:`BowConfig`,
    each computed once and cached under ``cache/bow/`` (``cache_root`` overrides it).

    Standardisation (*ours*): chunks are standardised with the mean / std of the fit-split chunks
    (one scalar each) before patching.
    """

    def __init__(self, chunks: ChunkSet, config: BowConfig = BowConfig(), cache_root: str | os.PathLike | None = None,
                 device: str | torch.device = "cpu", progress: bool = False) -> None:
        self.chunks, self.config = chunks, config
        self.root = Path(cache_root) if cache_root is not None else paths.cache_dir("bow")
        self.device = torch.device(device)
        self.progress = progress
        fit = chunks.chunk_mask(list(config.fit_splits))
        if not fit.any():
            raise BowError(f"BowConfig.fit_splits={config.fit_splits}: no chunk of the table is in these splits")
        self.fit_mask = fit
        x = chunks.spec[fit].astype(np.float32)
        self.mean, self.std = float(x.mean()), float(x.std() + 1e-8)
        self.shapes = family_shapes(config.patch)
        self.ae_key = _digest({"v": VERSION, "data": chunks.key, "cfg": config.ae_fields()})
        self._ae: dict[str, PatchAutoencoder] = {}
        self._ae_hist: dict[str, Any] = {}
        self._latents: dict[str, np.ndarray] = {}

    # ----------------------------------------------------------------- helpers
    def standardised(self, idx: np.ndarray | slice) -> torch.Tensor:
        """(m, n_mels, n_frames) standardised float32 chunks ``spec[idx]``."""
        return (torch.from_numpy(self.chunks.spec[idx].astype(np.float32)) - self.mean) / self.std

    def patches(self, idx: np.ndarray | slice) -> dict[str, torch.Tensor]:
        """Family -> (m, n_f, d_f) patches of the standardised chunks ``idx``."""
        return extract_patches(self.standardised(idx), self.config.patch)

    def _family_vectors(self, family: str, idx: np.ndarray, block: int = 2048) -> torch.Tensor:
        out = [self.patches(idx[i:i + block])[family] for i in range(0, len(idx), block)]
        d = self.shapes[family][1]
        return torch.cat(out).reshape(-1, d) if out else torch.zeros(0, d)

    @property
    def ae_dir(self) -> Path:
        return self.root / "ae" / self.ae_key

    # ----------------------------------------------------------------- autoencoders
    def autoencoder(self, family: str) -> PatchAutoencoder:
        """The trained autoencoder of ``family`` (trained with :func:`audiorepro.training.fit`
        on the fit-split vectors, 5 % held out for validation; cached with its run directory)."""
        if family not in FAMILIES:
            raise BowError(f"unknown family {family!r}; families: {FAMILIES}")
        if family in self._ae:
            return self._ae[family]
        from audiorepro.training import fit

        c = self.config
        torch.manual_seed(c.seed)
        model = PatchAutoencoder(self.shapes[family][1], c.factor, c.ae_hidden, c.ae_dropout, c.ae_depth)
        rng = np.random.default_rng([c.seed, FAMILIES.index(family)])
        fit_idx = np.flatnonzero(self.fit_mask)
        vec = self._family_vectors(family, fit_idx)
        if c.ae_max_vectors is not None and len(vec) > c.ae_max_vectors:
            vec = vec[torch.from_numpy(np.sort(rng.choice(len(vec), c.ae_max_vectors, replace=False)))]
        perm = torch.from_numpy(rng.permutation(len(vec)))
        n_val = max(1, len(vec) // 20)
        val, tr = vec[perm[:n_val]], vec[perm[n_val:]]
        cfg = {"epochs": c.ae_epochs, "batch_size": c.ae_batch_size, "lr": c.ae_lr, "optimizer": "adam",
               "monitor": "loss", "mode": "min", "seed": c.seed, "progress": self.progress}
        res = fit(model, TensorDataset(tr, tr), TensorDataset(val, val), loss_fn=F.mse_loss, config=cfg,
                  run_dir=self.ae_dir / family, device=self.device)
        model = res.model.to(self.device).eval()
        self._ae[family], self._ae_hist[family] = model, res
        return model

    def autoencoder_history(self, family: str):
        """The :class:`~audiorepro.training.FitResult` of ``family``'s autoencoder."""
        self.autoencoder(family)
        return self._ae_hist[family]

    def reconstruct(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        """Family -> (m, n_f, d_f) reconstructions of the (standardised) patches of chunks ``idx``."""
        p = self.patches(idx)
        out = {}
        for fam, x in p.items():
            ae = self.autoencoder(fam)
            with torch.no_grad():
                out[fam] = ae(x.reshape(-1, x.shape[-1]).to(self.device)).cpu().reshape(x.shape)
        return out

    def latents(self, family: str) -> np.ndarray:
        """(M * n_f, bottleneck) float32 bottlenecks of every chunk (chunk-major), cached."""
        if family in self._latents:
            return self._latents[family]
        path = self.ae_dir / f"latents_{family}.npy"
        if path.is_file():
            lat = np.load(path)
        else:
            ae = self.autoencoder(family)
            parts = []
            with torch.no_grad():
                for i in range(0, len(self.chunks.spec), 2048):
                    x = self.patches(slice(i, i + 2048))[family]
                    parts.append(ae.encode(x.reshape(-1, x.shape[-1]).to(self.device)).cpu().numpy())
            lat = np.concatenate(parts).astype(np.float32)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy")
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, lat)
            os.replace(tmp, path)
        self._latents[family] = lat
        return lat

    def reconstruction_mse(self, split: str | Sequence[str] = "valid") -> dict[str, float]:
        """Family -> mean squared error of the autoencoder on the standardised patches of ``split``."""
        idx = np.flatnonzero(self.chunks.chunk_mask(split))
        rec = self.reconstruct(idx)
        p = self.patches(idx)
        return {f: float(((rec[f] - p[f]) ** 2).mean()) for f in FAMILIES}

    # ----------------------------------------------------------------- codebooks
    def codebook_dir(self, codebook_size: int) -> Path:
        key = _digest({"ae": self.ae_key, "D": int(codebook_size), "km": self.config.kmeans_fields()})
        return self.root / "codebooks" / key

    def codebook(self, family: str, codebook_size: int) -> np.ndarray:
        """(D, bottleneck) k-means centroids of ``family`` fitted on fit-split latents (cached)."""
        path = self.codebook_dir(codebook_size) / f"centroids_{family}.npy"
        if path.is_file():
            return np.load(path)
        c = self.config
        n_f = self.shapes[family][0]
        lat = self.latents(family).reshape(len(self.chunks.spec), n_f, -1)[self.fit_mask].reshape(-1, self.latents(family).shape[1])
        if c.kmeans_max_vectors is not None and len(lat) > c.kmeans_max_vectors:
            rng = np.random.default_rng([c.seed, 101, FAMILIES.index(family)])
            lat = lat[np.sort(rng.choice(len(lat), c.kmeans_max_vectors, replace=False))]
        cent = fit_kmeans(lat, int(codebook_size), seed=c.seed, minibatch_above=c.minibatch_above,
                          max_iter=c.kmeans_max_iter)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy")
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, cent)
        os.replace(tmp, path)
        return cent

    def codes(self, codebook_size: int) -> dict[str, np.ndarray]:
        """Family -> (M, n_f) int codes of every chunk (cached)."""
        path = self.codebook_dir(codebook_size) / "codes.npz"
        if path.is_file():
            with np.load(path) as z:
                return {f: z[f].astype(np.int64) for f in FAMILIES}
        out = {}
        for fam in FAMILIES:
            n_f = self.shapes[fam][0]
            out[fam] = assign_codes(self.latents(fam), self.codebook(fam, codebook_size)).reshape(-1, n_f)
        dtype = np.int16 if codebook_size <= 32767 else np.int32
        _atomic_np_save(path, **{f: v.astype(dtype) for f, v in out.items()})
        return out

    def counts(self, codebook_size: int) -> np.ndarray:
        """(M, 4 D) float32 bag-of-words counts of every chunk; rows sum to 143."""
        return bag_of_words(self.codes(codebook_size), codebook_size)


# ================================================================================ head training
@dataclass
class HeadConfig:
    """Head and its training (paper III-C, IV).

    Attributes:
        hidden, layers, dropout: MLP head (paper: 2 layers of 256 / 512 / 4096, dropout 0.1 / 0.4).
        mask_p: input-count masking probability (paper best 0.35).
        input_transform: count scaling (*ours*, see :class:`BowTagger`).
        epochs, batch_size, lr, patience: Adam training with early stopping on validation 1 s mAP
            (not given by the paper).
        seed: initialisation and shuffling seed.
    """

    hidden: int = 512
    layers: int = 2
    dropout: float = 0.4
    mask_p: float = 0.0
    input_transform: str = "log1p"
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    patience: int | None = 5
    seed: int = 0


@dataclass
class HeadResult:
    """Scores of one trained head. ``metrics`` keys: ``mAP_1s_<split>`` (chunks) and
    ``mAP_clip_<split>`` (mean of the chunk probabilities) for each evaluated split, plus
    ``epochs``; ``fit`` is the :class:`~audiorepro.training.FitResult`."""

    metrics: dict[str, float]
    fit: Any
    model: BowTagger
    scores: dict[str, np.ndarray] = field(default_factory=dict)


def train_head(features: np.ndarray, chunks: ChunkSet, codebook_size: int, config: HeadConfig = HeadConfig(),
               eval_splits: Sequence[str] = ("valid", "test"), run_dir: str | os.PathLike | None = None,
               family_sizes: Sequence[int] = (120, 12, 10, 1), device: str | torch.device = "cpu",
               progress: bool = False) -> HeadResult:
    """Train a :class:`BowTagger` on the train-split chunks of ``features`` (M, n_fam * D) with the
    clip labels assigned to every chunk, early-stopped on valid-split 1 s mAP, and score
    ``eval_splits`` at the 1 s and clip level. Uses :func:`audiorepro.training.fit` with Huber loss."""
    from audiorepro.training import fit

    feats = np.asarray(features, dtype=np.float32)
    if feats.shape[0] != len(chunks.chunk_clip):
        raise BowError(f"train_head: features have {feats.shape[0]} rows but the ChunkSet has "
                       f"{len(chunks.chunk_clip)} chunks")
    y = chunks.chunk_targets().astype(np.float32)
    tr, va = chunks.chunk_mask("train"), chunks.chunk_mask("valid")
    if not tr.any() or not va.any():
        raise BowError("train_head: the table needs train and valid clips")
    torch.manual_seed(config.seed)
    model = BowTagger(codebook_size, y.shape[1], config.hidden, config.dropout, config.layers,
                      config.mask_p, config.input_transform, family_sizes)
    if model.in_dim != feats.shape[1]:
        raise BowError(f"train_head: features have {feats.shape[1]} columns, the head expects "
                       f"{model.in_dim} ({len(family_sizes)} families x D={codebook_size})")
    ds = lambda m: TensorDataset(torch.from_numpy(feats[m]), torch.from_numpy(y[m]))  # noqa: E731
    cfg = {"epochs": config.epochs, "batch_size": config.batch_size, "lr": config.lr, "optimizer": "adam",
           "monitor": "mAP", "mode": "max", "patience": config.patience, "seed": config.seed,
           "progress": progress}
    res = fit(model, ds(tr), ds(va), loss_fn=huber_loss, config=cfg, task="tagging", run_dir=run_dir,
              device=device)
    model = res.model.eval()
    metrics, scores = _score_splits(model, ds, chunks, eval_splits, batch_size=1024)
    return HeadResult({"epochs": float(res.epochs_run), **metrics}, res, model, scores)


def _score_splits(model: nn.Module, ds: Any, chunks: ChunkSet, eval_splits: Sequence[str],
                  batch_size: int) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """``mAP_1s_<split>`` / ``mAP_clip_<split>`` (mean of chunk probabilities per clip) of
    ``model`` on ``ds(mask)`` for each split with chunks, and the (m, K) chunk scores."""
    from audiorepro.metrics import mean_average_precision
    from audiorepro.training import predict

    metrics: dict[str, float] = {}
    scores = {}
    for split in eval_splits:
        m = chunks.chunk_mask(split)
        if not m.any():
            continue
        s, t = predict(model, torch.utils.data.DataLoader(ds(m), batch_size=batch_size, shuffle=False))
        metrics[f"mAP_1s_{split}"] = mean_average_precision(t, s)
        clips, cs = clip_pool(s, chunks.chunk_clip[m])
        metrics[f"mAP_clip_{split}"] = mean_average_precision(chunks.targets[clips], cs)
        scores[split] = s
    return metrics, scores


# ================================================================================ learned VQ codebook
class VQAutoencoder(nn.Module):
    """Autoencoder with a learned vector-quantised bottleneck (van den Oord et al. 2017, the
    paper's suggested alternative to k-means): encoder as :class:`PatchAutoencoder`, nearest of
    ``codebook_size`` codewords with a straight-through gradient, codebook and commitment losses.

    Shapes: ``codes`` (B, in_dim) -> (B,) int64; ``forward`` (B, in_dim) -> (reconstruction
    (B, in_dim), vq loss ()).
    """

    def __init__(self, in_dim: int, codebook_size: int, factor: float = 10, hidden: int = 256,
                 dropout: float = 0.0, depth: int = 3, beta: float = 0.25) -> None:
        super().__init__()
        self.ae = PatchAutoencoder(in_dim, factor, hidden, dropout, depth)
        self.codebook = nn.Embedding(codebook_size, self.ae.bottleneck)
        nn.init.uniform_(self.codebook.weight, -1.0 / codebook_size, 1.0 / codebook_size)
        self.beta = float(beta)

    def _nearest(self, z: torch.Tensor) -> torch.Tensor:
        w = self.codebook.weight
        d = (w * w).sum(1)[None, :] - 2 * z @ w.T
        return d.argmin(1)

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        return self._nearest(self.ae.encode(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.ae.encode(x)
        q = self.codebook(self._nearest(z))
        vq = F.mse_loss(q, z.detach()) + self.beta * F.mse_loss(z, q.detach())
        zq = z + (q - z).detach()
        return self.ae.decoder(zq), vq


def train_vq_autoencoder(vectors: torch.Tensor, codebook_size: int, factor: float = 10, hidden: int = 256,
                         epochs: int = 5, batch_size: int = 256, lr: float = 1e-3, seed: int = 0,
                         init_from: torch.Tensor | None = None, run_dir: str | os.PathLike | None = None,
                         device: str | torch.device = "cpu") -> VQAutoencoder:
    """Train a :class:`VQAutoencoder` on (N, in_dim) vectors through :func:`audiorepro.training.fit`
    (loss = reconstruction MSE + VQ loss). The codebook starts from ``init_from`` (D, bottleneck)
    if given, else from the encodings of D random vectors after one warm-up pass (*ours*: avoids
    dead codewords)."""
    from audiorepro.training import fit

    if vectors.dim() != 2 or len(vectors) < codebook_size:
        raise BowError(f"train_vq_autoencoder: need (N >= D={codebook_size}, d) vectors, got {tuple(vectors.shape)}")
    torch.manual_seed(seed)
    model = VQAutoencoder(vectors.shape[1], codebook_size, factor, hidden, beta=0.25)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if init_from is not None:
            model.codebook.weight.copy_(torch.as_tensor(init_from))
        else:
            pick = torch.randperm(len(vectors), generator=g)[:codebook_size]
            model.codebook.weight.copy_(model.ae.encode(vectors[pick]))
    perm = torch.randperm(len(vectors), generator=g)
    n_val = max(1, len(vectors) // 20)
    val, tr = vectors[perm[:n_val]], vectors[perm[n_val:]]

    def batch_fn(m: nn.Module, batch: Any) -> torch.Tensor:
        x = batch[0]
        rec, vq = m(x)
        return F.mse_loss(rec, x) + vq

    cfg = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "progress": False}
    res = fit(model, TensorDataset(tr), TensorDataset(val), batch_fn=batch_fn, config=cfg,
              run_dir=run_dir, device=device)
    return res.model.eval()


# ================================================================================ sweeps
def head_run_dir(pipeline: BowPipeline, codebook_size: int, config: HeadConfig, tag: str = "") -> Path:
    """Cache folder of one head run (keyed by encoders, codebook, head config and ``tag``)."""
    key = _digest({"cb": pipeline.codebook_dir(codebook_size).name, "head": asdict(config), "tag": tag})
    return pipeline.root / "heads" / key


def run_grid(pipelines: Mapping[float, BowPipeline], codebook_sizes: Sequence[int], hiddens: Sequence[int],
             dropouts: Sequence[float], base: HeadConfig = HeadConfig(), seeds: Sequence[int] = (0,),
             eval_splits: Sequence[str] = ("valid", "test"), progress: bool = False) -> "pd.DataFrame":
    """Train one head per (F, D, hidden, dropout, seed) and return a tidy frame.

    ``pipelines`` maps the compression factor F to its :class:`BowPipeline`. Columns: ``F, D,
    hidden, dropout, seed`` and the :class:`HeadResult` metrics (``mAP_1s_valid``, ...). Head runs
    are cached (:func:`head_run_dir`), so a repeated sweep only re-scores.
    """
    import pandas as pd

    combos = [(f, d, h, p, s) for f in pipelines for d in codebook_sizes for h in hiddens
              for p in dropouts for s in seeds]
    rows = []
    if progress:
        from tqdm.auto import tqdm
        combos = tqdm(combos, desc="heads")
    for f, d, h, p, s in combos:
        cfg = dataclasses.replace(base, hidden=int(h), dropout=float(p), seed=int(s))
        pipe = pipelines[f]
        res = train_head(pipe.counts(d), pipe.chunks, d, cfg, eval_splits,
                         run_dir=head_run_dir(pipe, d, cfg))
        rows.append({"F": f, "D": d, "hidden": h, "dropout": p, "seed": s, **res.metrics})
    return pd.DataFrame(rows)


def run_masking(pipeline: BowPipeline, codebook_size: int, probabilities: Sequence[float],
                base: HeadConfig = HeadConfig(), seeds: Sequence[int] = (0,),
                eval_splits: Sequence[str] = ("valid", "test")) -> "pd.DataFrame":
    """One head per (masking probability p, seed) at a fixed configuration; tidy frame with
    columns ``p, seed`` and the metrics."""
    import pandas as pd

    rows = []
    counts = pipeline.counts(codebook_size)
    for p in probabilities:
        for s in seeds:
            cfg = dataclasses.replace(base, mask_p=float(p), seed=int(s))
            res = train_head(counts, pipeline.chunks, codebook_size, cfg, eval_splits,
                             run_dir=head_run_dir(pipeline, codebook_size, cfg))
            rows.append({"p": float(p), "seed": int(s), **res.metrics})
    return pd.DataFrame(rows)


# ================================================================================ figures
def plot_families(chunk: np.ndarray, spec: PatchSpec = PatchSpec(), title: str = ""):
    """Fig. 1 of the paper on a real chunk: the (96, 100) log-mel with the boxes of each family
    (one panel per family) and the 8 x 10 coarse picture. Returns the Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    x = np.asarray(chunk, dtype=np.float32)
    fig, axes = plt.subplots(1, 5, figsize=(17, 3.2))
    boxes = family_boxes(spec)
    colors = {"pat": "cyan", "fenv": "lime", "env": "yellow", "o": "white"}
    for ax, fam in zip(axes[:4], FAMILIES):
        ax.imshow(x, origin="lower", aspect="auto", cmap="magma")
        for k, (t0, f0, nt, nf) in enumerate(boxes[fam]):
            ax.add_patch(Rectangle((t0 - 0.5, f0 - 0.5), nt, nf, fill=False, lw=0.6 if fam == "pat" else 1.2,
                                   ec=colors[fam], alpha=0.9))
        n, d = family_shapes(spec)[fam]
        ax.set_title(f"{fam}: {n} x {d}-dim\n{FAMILY_NAMES[fam]}", fontsize=8)
        ax.set_xlabel("frame (10 ms)", fontsize=7)
        ax.set_ylabel("mel bin", fontsize=7)
        ax.tick_params(labelsize=6)
    o = extract_patches(torch.from_numpy(x)[None], spec)["o"][0, 0].reshape(spec.coarse).numpy()
    axes[4].imshow(o, origin="lower", aspect="auto", cmap="magma")
    axes[4].set_title("o: the chunk resized (bicubic) to 8 x 10", fontsize=8)
    axes[4].tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def assemble(family: str, vectors: np.ndarray | torch.Tensor, spec: PatchSpec = PatchSpec()) -> np.ndarray:
    """Inverse of :func:`extract_patches` for one chunk: (n_f, d_f) vectors -> (n_mels, n_frames)
    picture (``o`` is upsampled bicubically from 8 x 10)."""
    v = torch.as_tensor(np.asarray(vectors, dtype=np.float32))
    pf, pt = spec.patch
    if family == "pat":
        nf, nt = spec.n_mels // pf, spec.n_frames // pt
        return v.reshape(nf, nt, pf, pt).permute(0, 2, 1, 3).reshape(spec.n_mels, spec.n_frames).numpy()
    if family == "fenv":
        return v.reshape(spec.n_mels, spec.n_frames).numpy()
    if family == "env":
        ne = spec.n_frames // spec.env_frames
        return v.reshape(ne, spec.n_mels, spec.env_frames).permute(1, 0, 2).reshape(spec.n_mels, spec.n_frames).numpy()
    if family == "o":
        return F.interpolate(v.reshape(1, 1, *spec.coarse), size=(spec.n_mels, spec.n_frames), mode="bicubic",
                             align_corners=False)[0, 0].numpy()
    raise BowError(f"assemble: unknown family {family!r}")


def plot_reconstructions(original: dict[str, torch.Tensor], recon: dict[str, torch.Tensor], chunk_index: int = 0,
                         spec: PatchSpec = PatchSpec(), title: str = ""):
    """Top: the standardised chunk seen by each family; bottom: the autoencoder reconstructions,
    put back in place with :func:`assemble`. Inputs are :meth:`BowPipeline.patches` /
    :meth:`BowPipeline.reconstruct` outputs. Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(15, 5))
    for j, fam in enumerate(FAMILIES):
        a = assemble(fam, original[fam][chunk_index], spec)
        b = assemble(fam, recon[fam][chunk_index], spec)
        lo, hi = float(np.percentile(a, 1)), float(np.percentile(a, 99))
        for i, (img, lab) in enumerate(((a, "input"), (b, "reconstruction"))):
            axes[i, j].imshow(img, origin="lower", aspect="auto", cmap="magma", vmin=lo, vmax=hi)
            axes[i, j].set_title(f"{fam} {lab}", fontsize=8)
            axes[i, j].tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def codeword_usage(codes: Mapping[str, np.ndarray], codebook_size: int) -> "pd.DataFrame":
    """Per family: codewords used, perplexity ``exp(entropy)`` of the code distribution and the
    share of the most frequent codeword, over the given (M, n_f) codes."""
    import pandas as pd

    rows = []
    for fam in FAMILIES:
        c = np.bincount(np.asarray(codes[fam]).reshape(-1), minlength=codebook_size).astype(float)
        p = c / c.sum()
        nz = p[p > 0]
        rows.append({"family": fam, "D": codebook_size, "used": int((c > 0).sum()),
                     "perplexity": float(np.exp(-(nz * np.log(nz)).sum())), "top share": float(p.max())})
    return pd.DataFrame(rows)


def plot_codeword_usage(codes: Mapping[str, np.ndarray], codebook_size: int, title: str = ""):
    """Histogram of codeword frequencies per family, codewords sorted by frequency. Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(15, 2.8))
    for ax, fam in zip(axes, FAMILIES):
        c = np.bincount(np.asarray(codes[fam]).reshape(-1), minlength=codebook_size)
        c = np.sort(c)[::-1] / c.sum()
        ax.bar(np.arange(codebook_size), c, width=1.0, color="tab:blue")
        ax.set_yscale("log")
        ax.set_title(f"{fam}: codeword frequency (sorted)", fontsize=8)
        ax.set_xlabel("codeword rank", fontsize=7)
        ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_grid(df: "pd.DataFrame", metric: str = "mAP_1s_valid", title: str = ""):
    """Fig. 2 as heatmaps: one panel per compression factor F, rows = head (hidden, dropout),
    columns = D, cells = ``metric`` (mean over seeds). Returns the Figure."""
    import matplotlib.pyplot as plt

    agg = df.groupby(["F", "hidden", "dropout", "D"], as_index=False)[metric].mean()
    fs = sorted(agg["F"].unique())
    fig, axes = plt.subplots(1, len(fs), figsize=(5.2 * len(fs), 0.5 * agg.groupby(["hidden", "dropout"]).ngroups + 1.8),
                             squeeze=False)
    vmin, vmax = float(agg[metric].min()), float(agg[metric].max())
    for ax, f in zip(axes[0], fs):
        t = agg[agg["F"] == f].pivot_table(index=["hidden", "dropout"], columns="D", values=metric)
        im = ax.imshow(t.to_numpy(), cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        ax.set_xticks(range(t.shape[1]), [str(c) for c in t.columns], fontsize=7)
        ax.set_yticks(range(t.shape[0]), [f"{h} units, dropout {p}" for h, p in t.index], fontsize=7)
        ax.set_xlabel("codebook size D", fontsize=8)
        ax.set_title(f"F = {f:g}: {metric}", fontsize=9)
        for (i, j), v in np.ndenumerate(t.to_numpy()):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=7,
                        color="white" if v < (vmin + vmax) / 2 else "black")
        fig.colorbar(im, ax=ax, fraction=0.046)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


# ================================================================================ grid summaries (Fig. 2, Fig. 3)
GRID_KEYS = ("F", "D", "hidden", "dropout")


def summarize_grid(df: "pd.DataFrame", metric: str = "mAP_1s_valid") -> "pd.DataFrame":
    """Mean (and count) of every metric over seeds per (F, D, hidden, dropout) cell of a
    :func:`run_grid` frame, sorted by ``metric`` (best first)."""
    if metric not in df:
        raise BowError(f"summarize_grid: metric {metric!r} not in the grid columns {list(df.columns)}")
    metrics = [c for c in df.columns if c.startswith("mAP_")]
    out = df.groupby(list(GRID_KEYS), as_index=False)[metrics].mean()
    out["seeds"] = df.groupby(list(GRID_KEYS)).size().to_numpy()
    return out.sort_values(metric, ascending=False, kind="stable").reset_index(drop=True)


def best_config(df: "pd.DataFrame", metric: str = "mAP_1s_valid") -> dict[str, Any]:
    """The (F, D, hidden, dropout) cell of a :func:`run_grid` frame with the highest mean
    ``metric`` over seeds, as plain Python values plus ``metric`` -> value."""
    top = summarize_grid(df, metric).iloc[0]
    return {"F": float(top["F"]), "D": int(top["D"]), "hidden": int(top["hidden"]),
            "dropout": float(top["dropout"]), metric: float(top[metric])}


def best_per(df: "pd.DataFrame", by: str, metric: str = "mAP_1s_valid",
             where: Mapping[str, Any] | None = None) -> "pd.DataFrame":
    """For each value of ``by`` (``"D"`` or ``"F"``), the best cell (mean over seeds) among the
    cells matching ``where`` (e.g. ``{"F": 10}``). Columns: GRID_KEYS and the metrics."""
    s = summarize_grid(df, metric)
    for k, v in (where or {}).items():
        s = s[s[k] == v]
    if s.empty:
        raise BowError(f"best_per: no grid cell matches {dict(where or {})}")
    return s.sort_values(metric, ascending=False).drop_duplicates(by).sort_values(by).reset_index(drop=True)


def paper_row_of(cell: Mapping[str, Any]) -> str:
    """Row name of the paper's text table for a grid cell: ``"D=256, 512 units, dropout 0.4, F=10"``."""
    return f"D={int(cell['D'])}, {int(cell['hidden'])} units, dropout {float(cell['dropout']):g}, F={float(cell['F']):g}"


def stored_best_config(profile: str, dataset: str | None = None) -> dict[str, Any] | None:
    """The best (F, D, hidden, dropout) recorded by notebook 02 (results table ``fig2_best``) for
    ``profile`` (and ``dataset``), newest record; ``None`` if there is none."""
    from audiorepro.results import load_records

    recs = load_records("bow", "fig2_best")
    if recs.empty:
        return None
    recs = recs[recs["profile"] == profile]
    if dataset is not None:
        recs = recs[recs["dataset"] == dataset]
    if recs.empty:
        return None
    last = recs.iloc[-1]
    return {"F": float(last["param.F"]), "D": int(last["param.D"]), "hidden": int(last["param.hidden"]),
            "dropout": float(last["param.dropout"])}


def record_grid(df: "pd.DataFrame", profile: str, dataset: str, scale: str, metric: str = "mAP_1s_valid",
                duration_s: float | None = None, extra_params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Record a :func:`run_grid` frame in the results registry and return the best cell.

    Records (chapter ``bow``): every cell (table ``fig2_grid``, metrics averaged over seeds); per
    codebook size the best cell at the best F (table ``fig2``, rows ``D=<D>``, metric ``mAP_1s`` =
    valid 1 s mAP as in the paper's Fig. 2); per F the best cell (``fig2`` rows ``F=<F>``); the
    best cell (table ``fig2_best``, read back by :func:`stored_best_config`) and, under its paper
    row name, in table ``text``.
    """
    from audiorepro.results import record

    extra = dict(extra_params or {})
    s = summarize_grid(df, metric)
    metrics = [c for c in s.columns if c.startswith("mAP_")]
    model = lambda c: f"bag of codewords ({paper_row_of(c)})"  # noqa: E731
    for c in s.to_dict("records"):
        record("bow", "fig2_grid", {m: c[m] for m in metrics},
               {**{k: c[k] for k in GRID_KEYS}, "seeds": int(c["seeds"]), **extra},
               dataset, scale, profile, model=model(c))
    best = best_config(df, metric)
    for c in best_per(df, "D", metric, {"F": best["F"]}).to_dict("records"):
        record("bow", "fig2", {"mAP_1s": c[metric]},
               {"paper_row": f"D={int(c['D'])}", **{k: c[k] for k in GRID_KEYS}, **extra},
               dataset, scale, profile, model=model(c))
    for c in best_per(df, "F", metric).to_dict("records"):
        record("bow", "fig2", {"mAP_1s": c[metric]},
               {"paper_row": f"F={float(c['F']):g}", **{k: c[k] for k in GRID_KEYS}, **extra},
               dataset, scale, profile, model=model(c))
    top = s.iloc[0].to_dict()
    record("bow", "fig2_best", {m: top[m] for m in metrics},
           {**{k: best[k] for k in GRID_KEYS}, "metric": metric, **extra},
           dataset, scale, profile, model=model(best), duration_s=duration_s)
    record("bow", "text", {"mAP_1s": top[metric]},
           {"paper_row": "run best (Fig. 2 grid)", **{k: best[k] for k in GRID_KEYS}, **extra},
           dataset, scale, profile, model=model(best))
    return best


def plot_curve(x: Sequence[float], runs: Mapping[str, Sequence[float]], paper: Mapping[str, float] | None = None,
               xlabel: str = "", ylabel: str = "mAP", title: str = ""):
    """Line plot of this run's curves (``runs``: label -> y per ``x``) with the paper's printed
    points (``paper``: x label -> value) as labelled markers on a second axis (different data).
    Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for lab, ys in runs.items():
        ax.plot(list(x), list(ys), marker="o", label=f"this run: {lab}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel} (this run)")
    if paper:
        ax2 = ax.twinx()
        ax2.scatter([float(k) for k in paper], list(paper.values()), marker="*", s=120, color="tab:red",
                    label="paper (FSD50K)")
        ax2.set_ylabel(f"{ylabel} (paper, FSD50K)", color="tab:red")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="lower right")
    else:
        ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def masking_row(p: float) -> str:
    """Row name of a masking probability in the ``fig3`` table: 0.35 -> ``"p=35%"``."""
    return f"p={100 * float(p):g}%"


def paper_masking_points() -> dict[float, float]:
    """The paper's printed Fig. 3 points from ``papers/bow/paper.yml`` (table ``fig3``): masking
    percentage -> 1 s mAP (FSD50K). Paper numbers: plot them only labelled as the paper's."""
    from audiorepro.results import paper_numbers

    pn = paper_numbers("bow")
    pn = pn[(pn["table"] == "fig3") & (pn["column"] == "mAP_1s")]
    return {float(r.row.removeprefix("p=").removesuffix("%")): float(r.value) for r in pn.itertuples()}


def record_masking(df: "pd.DataFrame", config: Mapping[str, Any], profile: str, dataset: str, scale: str,
                   metric: str = "mAP_1s_valid", duration_s: float | None = None,
                   extra_params: Mapping[str, Any] | None = None) -> "pd.DataFrame":
    """Record a :func:`run_masking` frame: one record per p (mean over seeds) in table ``fig3``,
    row ``p=<percent>%``, metric ``mAP_1s`` = ``metric`` plus every ``mAP_*`` column under its own
    name. Returns the per-p means (columns ``p`` and the metrics)."""
    from audiorepro.results import record

    metrics = [c for c in df.columns if c.startswith("mAP_")]
    if metric not in metrics:
        raise BowError(f"record_masking: metric {metric!r} not in {metrics}")
    agg = df.groupby("p", as_index=False)[metrics].mean().sort_values("p").reset_index(drop=True)
    n_seeds = int(df.groupby("p").size().min())
    cfg = {k: config[k] for k in GRID_KEYS}
    for r in agg.to_dict("records"):
        record("bow", "fig3", {"mAP_1s": r[metric], **{m: r[m] for m in metrics}},
               {"paper_row": masking_row(r["p"]), "p": float(r["p"]), **cfg, "seeds": n_seeds,
                **dict(extra_params or {})},
               dataset, scale, profile, model=f"bag of codewords ({paper_row_of(cfg)}, masking p={r['p']:g})",
               duration_s=duration_s)
    return agg


# ================================================================================ Table I: CNN / AST baselines on the same chunks
def chunk_waves(chunks: ChunkSet, max_seconds: float | None = 10.0) -> np.ndarray:
    """(M, sample_rate) float32 one-second waveforms aligned with ``chunks`` (chunk ``j`` of clip
    ``i`` = samples ``[j s, (j + 1) s)`` of the clip, as :func:`compute_chunks` cuts the
    spectrogram); a short clip is zero-padded to its chunk count. Sample rate: the ``bow_96``
    front end's (16 kHz)."""
    sr = preset_config("bow_96").sample_rate
    table = chunks.table
    out = np.zeros((len(chunks.chunk_clip), sr), np.float32)
    for i in np.unique(chunks.chunk_clip):
        pos = np.flatnonzero(chunks.chunk_clip == i)
        start, dur = _clip_window(table, int(i), max_seconds)
        wave, _ = load_audio(table.audio_path(int(i)), sample_rate=sr, start_s=start, duration_s=dur)
        wave = fix_length(wave, len(pos) * sr) if wave.shape[0] < len(pos) * sr else wave[: len(pos) * sr]
        out[pos] = wave.reshape(len(pos), sr).numpy()
    return out


class _Probabilities(nn.Module):
    """Wrap a backbone so that ``forward`` returns (B, K) probabilities: ``clipwise_output`` if the
    backbone gives one (PANNs), else ``sigmoid(logits)``."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.backbone(x)
        if isinstance(out, dict):
            return out["clipwise_output"] if "clipwise_output" in out else torch.sigmoid(out["logits"])
        return torch.sigmoid(out)


@dataclass
class BaselineConfig:
    """A shared backbone trained from scratch on the 1 s chunks (Table I baselines).

    Attributes:
        name: registry name (``panns_cnn14_16k``, ``ast_base384_f10_t10_527``, ...).
        scale: width preset or multiplier of :func:`~audiorepro.backbones.build_backbone`.
        build_kwargs: extra builder options (AST: ``{"input_tdim": 100}`` for 1 s inputs).
        epochs, batch_size, lr, patience, seed: Adam training with binary cross-entropy (the
            loss of the FSD50K baselines), early stopping on validation 1 s mAP.
    """

    name: str = "panns_cnn14_16k"
    scale: Any = "cpu"
    build_kwargs: dict = field(default_factory=dict)
    epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-3
    patience: int | None = 2
    seed: int = 0


def train_baseline(waves: np.ndarray, chunks: ChunkSet, config: BaselineConfig = BaselineConfig(),
                   eval_splits: Sequence[str] = ("valid", "test"), run_dir: str | os.PathLike | None = None,
                   device: str | torch.device = "cpu") -> HeadResult:
    """Train ``config.name`` from scratch on the train-split 1 s waveforms (M, samples) with clip
    labels on every chunk, through :func:`audiorepro.training.fit` (as the bag-of-codewords head),
    and score ``eval_splits`` at the 1 s and clip level (mean of chunk probabilities).
    Non-waveform backbones get their own front end applied once to every chunk."""
    from audiorepro.training import fit
    from audiorepro.backbones import build_backbone
    from audiorepro.backbones.counting import count_parameters

    w = np.asarray(waves, dtype=np.float32)
    if w.ndim != 2 or w.shape[0] != len(chunks.chunk_clip):
        raise BowError(f"train_baseline: waves must be (M={len(chunks.chunk_clip)}, samples), got {w.shape}")
    y = torch.from_numpy(chunks.chunk_targets().astype(np.float32))
    torch.manual_seed(config.seed)
    net = build_backbone(config.name, scale=config.scale, num_classes=y.shape[1], **config.build_kwargs)
    x = torch.from_numpy(w)
    if getattr(net, "input_kind", "wave") != "wave":
        with torch.no_grad():
            x = torch.cat([net.prepare(x[i:i + 256]) for i in range(0, len(x), 256)])
    model = _Probabilities(net)
    tr, va = chunks.chunk_mask("train"), chunks.chunk_mask("valid")
    ds = lambda m: TensorDataset(x[torch.from_numpy(m)], y[torch.from_numpy(m)])  # noqa: E731
    cfg = {"epochs": config.epochs, "batch_size": config.batch_size, "lr": config.lr, "optimizer": "adam",
           "monitor": "mAP", "mode": "max", "patience": config.patience, "seed": config.seed,
           "progress": False}
    res = fit(model, ds(tr), ds(va), loss_fn=lambda p, t: F.binary_cross_entropy(p.clamp(1e-7, 1 - 1e-7), t),
              config=cfg, task="tagging", run_dir=run_dir, device=device)
    model = res.model.eval()
    metrics, scores = _score_splits(model, ds, chunks, eval_splits, batch_size=64)
    return HeadResult({"epochs": float(res.epochs_run), "params_M": count_parameters(net)["trainable"] / 1e6,
                       **metrics}, res, model, scores)


def stored_best_masking(profile: str, dataset: str | None = None, metric: str = "mAP_1s") -> float | None:
    """The masking probability p with the highest validation 1 s mAP recorded by notebook 03
    (table ``fig3``, latest record per p) for ``profile`` (and ``dataset``); ``None`` if none."""
    from audiorepro.results import load_records

    recs = load_records("bow", "fig3")
    if recs.empty:
        return None
    recs = recs[(recs["profile"] == profile) & (recs["metric"] == metric)]
    if dataset is not None:
        recs = recs[recs["dataset"] == dataset]
    if recs.empty:
        return None
    last = recs.drop_duplicates("param.p", keep="last")
    return float(last.loc[last["value"].idxmax(), "param.p"])


def table1_frame(runs: Mapping[str, HeadResult], head: HeadConfig, cell: Mapping[str, Any],
                 baselines: Mapping[str, BaselineConfig]) -> "pd.DataFrame":
    """One row per model of Table I: ``row`` (paper row name or the book's baseline name),
    ``model`` (what ran), ``params_M`` (trainable parameters of the classifier: the MLP head for
    the bag of codewords, the whole backbone otherwise), ``epochs`` and the 1 s / clip mAPs."""
    rows = []
    for row, res in runs.items():
        if row in baselines:
            b = baselines[row]
            desc = f"{b.name} scale {b.scale}, from scratch, BCE"
        else:
            desc = f"bag of codewords ({paper_row_of(cell)}, masking p={head.mask_p:g}), Huber"
        n = sum(p.numel() for p in res.model.parameters() if p.requires_grad) / 1e6
        rows.append({"row": row, "model": desc, "params_M": n, "epochs": int(res.metrics.get("epochs", 0)),
                     **{k: v for k, v in res.metrics.items() if k.startswith("mAP_")}})
    return pd.DataFrame(rows)


def record_table1(table: "pd.DataFrame", profile: str, dataset: str, scale: str,
                  duration_s: float | None = None) -> None:
    """Record a :func:`table1_frame`: table ``table1``, row = ``row``, metric ``mAP`` = test
    clip-level mAP (the paper's Table I metric) plus every ``mAP_*`` column."""
    from audiorepro.results import record

    for r in table.to_dict("records"):
        metrics = {k: v for k, v in r.items() if k.startswith("mAP_")}
        if "mAP_clip_test" not in metrics:
            raise BowError(f"record_table1: row {r['row']!r} has no test clip-level mAP")
        record("bow", "table1", {"mAP": metrics["mAP_clip_test"], **metrics},
               {"paper_row": r["row"], "params_M": r["params_M"], "epochs": r["epochs"]},
               dataset, scale, profile, model=r["model"], duration_s=duration_s)


def plot_table1(table: "pd.DataFrame", title: str = ""):
    """Bars of test mAP at the 1 s and clip level for each model of a :func:`table1_frame`.
    Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = np.arange(len(table))
    for k, (col, lab) in enumerate((("mAP_1s_test", "1 s chunks"), ("mAP_clip_test", "clip (mean of 1 s)"))):
        ax.bar(x + (k - 0.5) * 0.38, table[col], width=0.38, label=lab)
    ax.set_xticks(x, [f"{r}\n{p:.2f} M params" for r, p in zip(table["row"], table["params_M"])], fontsize=7)
    ax.set_ylabel("test mAP (this run)")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


# ================================================================================ beyond the paper: n-grams, learned VQ
def temporal_bigrams(codes: Mapping[str, np.ndarray], codebook_size: int, n_buckets: int | None = None,
                     spec: PatchSpec = PatchSpec()) -> np.ndarray:
    """Bigram counts over the codeword sequences in time (the paper's future work).

    ``pat`` codes (M, 120) are read as 12 bands x 10 time steps (12 sequences of 10), ``env``
    codes (M, 10) as one sequence of 10; consecutive pairs along time are counted with
    :func:`ngram_counts` (``n_buckets``: hashing, else D**2 exact bins). Returns (M, 2 * B)
    float32: pat bigrams then env bigrams; pat rows sum to 12 * 9 = 108, env rows to 9.
    """
    pf, pt = spec.patch
    nb, nt = spec.n_mels // pf, spec.n_frames // pt
    pat = np.asarray(codes["pat"]).reshape(-1, nb, nt)
    env = np.asarray(codes["env"]).reshape(-1, 1, spec.n_frames // spec.env_frames)
    return np.concatenate([ngram_counts(pat, codebook_size, 2, n_buckets),
                           ngram_counts(env, codebook_size, 2, n_buckets)], axis=1)


def vq_codes(pipeline: BowPipeline, codebook_size: int, hidden: int | None = None, epochs: int | None = None,
             max_vectors: int | None = None, init_kmeans: bool = False) -> dict[str, np.ndarray]:
    """Family -> (M, n_f) codes from a learned VQ codebook (:class:`VQAutoencoder`, straight-through,
    codebook + commitment loss) trained per family on the fit-split patches of ``pipeline`` (same
    standardisation, bottleneck size and sample of vectors as its autoencoders; ``hidden`` /
    ``epochs`` / ``max_vectors`` default to the pipeline's). ``init_kmeans``: start the codebook
    from k-means on the initial encodings instead of random encodings. Cached under
    ``<cache>/vq/<key>/codes.npz``."""
    c = pipeline.config
    hidden = c.ae_hidden if hidden is None else int(hidden)
    epochs = c.ae_epochs if epochs is None else int(epochs)
    max_vectors = c.ae_max_vectors if max_vectors is None else int(max_vectors)
    key = _digest({"ae": pipeline.ae_key, "D": int(codebook_size), "hidden": hidden, "epochs": epochs,
                   "max": max_vectors, "init": init_kmeans})
    folder = pipeline.root / "vq" / key
    path = folder / "codes.npz"
    if path.is_file():
        with np.load(path) as z:
            return {f: z[f].astype(np.int64) for f in FAMILIES}
    out = {}
    fit_idx = np.flatnonzero(pipeline.fit_mask)
    for fam in FAMILIES:
        rng = np.random.default_rng([c.seed, 7, FAMILIES.index(fam)])
        vec = pipeline._family_vectors(fam, fit_idx)
        if max_vectors is not None and len(vec) > max_vectors:
            vec = vec[torch.from_numpy(np.sort(rng.choice(len(vec), max_vectors, replace=False)))]
        init = None
        if init_kmeans:
            torch.manual_seed(c.seed)
            probe = VQAutoencoder(vec.shape[1], codebook_size, c.factor, hidden)
            with torch.no_grad():
                init = torch.from_numpy(fit_kmeans(probe.ae.encode(vec).numpy(), codebook_size, seed=c.seed))
        model = train_vq_autoencoder(vec, codebook_size, c.factor, hidden, epochs, c.ae_batch_size, c.ae_lr,
                                     c.seed, init_from=init, run_dir=folder / fam, device=pipeline.device)
        n_f = pipeline.shapes[fam][0]
        codes = []
        for i in range(0, len(pipeline.chunks.spec), 2048):
            x = pipeline.patches(slice(i, i + 2048))[fam]
            codes.append(model.codes(x.reshape(-1, x.shape[-1]).to(pipeline.device)).cpu().numpy())
        out[fam] = np.concatenate(codes).reshape(-1, n_f)
    _atomic_np_save(path, **{f: v.astype(np.int32) for f, v in out.items()})
    return out


def record_beyond(runs: Mapping[str, HeadResult], profile: str, dataset: str, scale: str,
                  params: Mapping[str, Any] | None = None, duration_s: float | None = None) -> "pd.DataFrame":
    """Record the variants of notebook 05 (table ``beyond``, row = variant, metric ``mAP`` = test
    clip-level mAP plus every ``mAP_*``) and return them as a frame (one row per variant)."""
    from audiorepro.results import record

    rows = []
    for row, res in runs.items():
        m = {k: v for k, v in res.metrics.items() if k.startswith("mAP_")}
        if "mAP_clip_test" not in m:
            raise BowError(f"record_beyond: variant {row!r} has no test clip-level mAP")
        n = sum(p.numel() for p in res.model.parameters() if p.requires_grad)
        record("bow", "beyond", {"mAP": m["mAP_clip_test"], **m},
               {"paper_row": row, "head_params": n, **dict(params or {})}, dataset, scale, profile,
               model=f"{row}, MLP head", duration_s=duration_s)
        rows.append({"variant": row, "input size": int(res.model.in_dim), "head params": n,
                     "epochs": int(res.metrics.get("epochs", 0)), **m})
    return pd.DataFrame(rows)
