"""Bag of codewords: modules, losses and pure functions of "Attention is All You Need? Good
Embeddings with Statistics are Enough" (P. Verma, arXiv 2022), implemented from the text.

No public code exists; everything here follows section III of the paper. Choices the paper
leaves open are marked *ours*.

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

This module holds the parts that do no I/O and train nothing:

* patch geometry: :data:`FAMILIES`, :class:`PatchSpec`, :func:`family_shapes`,
  :func:`extract_patches` / :func:`assemble`, :func:`family_boxes`, :func:`chunk_spectrogram`;
* :class:`PatchAutoencoder` (one per family);
* codebooks and counts: :func:`fit_kmeans`, :func:`assign_codes`, :func:`bag_of_words`,
  :func:`ngram_counts`, :func:`temporal_bigrams` (the paper's future work);
* the head: :class:`CountMasking`, :class:`BowTagger`, :func:`huber_loss`, :func:`clip_pool`;
* :class:`VQAutoencoder` (a learned codebook, the paper's future work) and
  :class:`BackboneProbabilities` (the Table I baselines' output as probabilities).

Data preparation is in :mod:`.data`, caching, training and records in :mod:`.experiments`,
plots in :mod:`.figures`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans, MiniBatchKMeans
from torch import nn

__all__ = [
    "FAMILIES", "FAMILY_NAMES", "FAMILY_SIZES", "BowError", "PatchSpec", "family_shapes",
    "extract_patches", "assemble", "family_boxes", "chunk_spectrogram", "PatchAutoencoder",
    "pad_codebook", "fit_kmeans", "assign_codes", "bag_of_words", "ngram_counts", "temporal_bigrams",
    "CountMasking", "INPUT_TRANSFORMS", "BowTagger", "huber_loss", "clip_pool", "VQAutoencoder",
    "BackboneProbabilities",
]

#: Patch families in the order of the concatenated 4 D vector.
FAMILIES = ("pat", "fenv", "env", "o")
FAMILY_NAMES = {"pat": "spectral patches (8 x 10)", "fenv": "frequency-band envelopes (8 x 100)",
                "env": "spectral envelopes (96 x 10)", "o": "whole spectrogram resized to 8 x 10"}
#: Vectors per one-second chunk of each family (paper geometry); they sum to 143.
FAMILY_SIZES = (120, 12, 10, 1)


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
def pad_codebook(words: np.ndarray, size: int) -> np.ndarray:
    """(size, d): the (n, d) ``words`` followed by ``size - n`` copies of word 0, slots that
    :func:`assign_codes` never picks (ties go to the lowest index)."""
    return np.concatenate([words, np.repeat(words[:1], size - len(words), axis=0)])


def fit_kmeans(latents: np.ndarray, n_clusters: int, seed: int = 0, minibatch_above: int = 20000,
               max_iter: int = 100, batch_size: int = 4096, n_init: int = 1, fewer: str = "error") -> np.ndarray:
    """k-means centroids (n_clusters, d) of ``latents`` (N, d) with scikit-learn: ``KMeans`` for
    N <= ``minibatch_above``, ``MiniBatchKMeans`` above.

    N < n_clusters (a dataset too small for the codebook, e.g. the whole-chunk family of a few
    hundred training chunks at D = 1024): ``fewer="error"`` raises; ``fewer="repeat"`` returns the
    N latents themselves (each its own cluster: the k-means optimum for k >= N, inertia 0)
    followed by n_clusters - N copies of the first latent, which :func:`assign_codes` never picks
    (ties go to the lowest index), so the codebook has N usable words and D - N unused ones."""
    x = np.ascontiguousarray(latents, dtype=np.float32)
    if x.ndim != 2:
        raise BowError(f"fit_kmeans: latents must be (N, d), got {x.shape}")
    if fewer not in ("error", "repeat"):
        raise BowError(f"fit_kmeans: fewer={fewer!r}; choose 'error' or 'repeat'")
    if len(x) < n_clusters:
        if fewer == "error" or len(x) == 0:
            raise BowError(f"fit_kmeans: {len(x)} vectors < D={n_clusters} codewords; use more data "
                           "or a smaller codebook_size (or fewer='repeat')")
        return pad_codebook(x, n_clusters)
    if len(x) <= minibatch_above:
        km = KMeans(n_clusters, n_init=n_init, max_iter=max_iter, random_state=seed)
    else:
        km = MiniBatchKMeans(n_clusters, n_init=max(n_init, 1), max_iter=max_iter, batch_size=batch_size,
                             random_state=seed)
    km.fit(x)
    return km.cluster_centers_.astype(np.float32)


def assign_codes(latents: torch.Tensor | np.ndarray, centroids: torch.Tensor | np.ndarray,
                 block: int = 65536) -> np.ndarray:
    """Index of the nearest centroid (squared Euclidean, as ``KMeans.predict``) of each row; of
    equal centroids (the unused words of :func:`fit_kmeans` with ``fewer="repeat"``) only the
    lowest index is ever assigned.

    latents (N, d), centroids (D, d) -> (N,) int64.
    """
    x = torch.as_tensor(np.asarray(latents, dtype=np.float32) if isinstance(latents, np.ndarray) else latents).float()
    c = torch.as_tensor(np.asarray(centroids, dtype=np.float32) if isinstance(centroids, np.ndarray) else centroids).float()
    if x.dim() != 2 or c.dim() != 2 or x.shape[1] != c.shape[1]:
        raise BowError(f"assign_codes: latents {tuple(x.shape)} and centroids {tuple(c.shape)} must be (N, d), (D, d)")
    keep = None
    uniq, inverse = torch.unique(c, dim=0, return_inverse=True)
    if len(uniq) < len(c):  # duplicated centroids: only the first copy of each can be assigned
        first = torch.full((len(uniq),), len(c), dtype=torch.long).scatter_reduce(
            0, inverse, torch.arange(len(c)), reduce="amin")
        keep = first.sort().values
        c = c[keep]
    c2 = (c * c).sum(1)
    out = []
    for i in range(0, len(x), block):
        xb = x[i:i + block]
        d = c2[None, :] - 2 * xb @ c.T  # |x|^2 is constant per row
        out.append(d.argmin(1))
    if not out:
        return np.zeros(0, np.int64)
    idx = torch.cat(out)
    return (keep[idx] if keep is not None else idx).numpy().astype(np.int64)


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
                 family_sizes: Sequence[int] = FAMILY_SIZES) -> None:
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


# ================================================================================ learned VQ codebook (future work)
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


# ================================================================================ Table I baselines
class BackboneProbabilities(nn.Module):
    """Wrap a backbone so that ``forward`` returns (B, K) probabilities: ``clipwise_output`` if the
    backbone gives one (PANNs), else ``sigmoid(logits)`` (the Table I baselines).

    Shapes: backbone input -> (B, K) probabilities in [0, 1]."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.backbone(x)
        if isinstance(out, dict):
            return out["clipwise_output"] if "clipwise_output" in out else torch.sigmoid(out["logits"])
        return torch.sigmoid(out)

