"""Experiments of the bag-of-codewords chapter: cached pipeline, head training, sweeps, Table I
baselines, beyond-the-paper runs and the results registry.

* :class:`BowConfig` / :class:`BowPipeline` - autoencoders, k-means codebooks, codes and counts of
  a :class:`~audiorepro.papers.bow.data.ChunkSet`, each cached under ``cache/bow/`` with a key
  from :func:`audiorepro.caching.run_key` (configuration, data key, code);
* :class:`HeadConfig` / :func:`train_head` / :func:`run_head` - the MLP head (paper III-C)
  trained with :func:`audiorepro.training.fit` (Huber loss, early stopping on validation 1 s
  mAP), scored at the 1 s and the clip level;
* sweeps: :func:`run_grid` (Fig. 2), :func:`run_masking` (Fig. 3) and their summaries
  :func:`summarize_grid`, :func:`best_config`, :func:`best_per`;
* Table I: :class:`BaselineConfig`, :func:`table1_baselines`, :func:`train_baseline`,
  :func:`run_table1`, :func:`table1_frame`;
* beyond the paper: :func:`train_vq_autoencoder`, :func:`vq_codes`, :func:`run_beyond`;
* the registry: ``record_*`` write the chapter's tables; :func:`stored_best_config` reads the
  configuration notebook ``book/bow/02_fig2_grid.ipynb`` chose (and raises
  :class:`MissingRecordError` naming that notebook when it has not run for the profile),
  :func:`stored_best_masking` the masking probability of ``03_fig3_masking.ipynb``;
* verdicts: every row a claim compares is recorded once per seed by :func:`record_seed_runs`
  with its per-clip test outputs (:func:`clip_items`) and the notebook run's ``run_group``;
  :func:`decide_claims` decides a notebook's claims with
  :func:`audiorepro.results.evaluate_claim` (paired bootstrap over test clips and seeds).

Selection on validation only: grid cells, the masking probability and early stopping use the
validation split; the test split is scored only for the configurations a claim compares
(:func:`grid_claim_runs`, :func:`masking_claim_runs`, the Table I and beyond rows).

Every training, embedding and evaluation entry point takes ``device="auto"``
(:func:`audiorepro.training.pick_device`); mixed precision is the ``amp`` field of the configs
(:class:`audiorepro.training.TrainConfig`).
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from audiorepro.progress import tqdm

from audiorepro import caching, paths, results
from audiorepro.backbones import build_backbone
from audiorepro.backbones.counting import count_parameters
from audiorepro.fileio import atomic_save_npy
from audiorepro.metrics import mean_average_precision
from audiorepro.preprocessing import fit_standardiser
from audiorepro.results import load_records, paper_numbers, record
from audiorepro.results.items import ItemSet
from audiorepro.training import TrainConfig, fit, pick_device, predict

from .baselines import TABLE1_FAMILIES, build_family
from .data import CACHE_CODE, PAPER_SOURCE, ChunkSet, chunk_waves, save_npz
from .model import (FAMILIES, FAMILY_SIZES, BackboneProbabilities, BowError, BowTagger, PatchAutoencoder,
                    PatchSpec, VQAutoencoder, assign_codes, bag_of_words, clip_pool, extract_patches,
                    family_shapes, fit_kmeans, huber_loss, pad_codebook, temporal_bigrams)

__all__ = [
    "MissingRecordError", "BowConfig", "BowPipeline", "HeadConfig", "HeadResult", "train_head",
    "head_run_dir", "run_head", "run_grid", "run_masking", "train_vq_autoencoder", "vq_dir", "vq_codes",
    "run_beyond", "BaselineConfig", "table1_baselines", "train_baseline", "run_table1", "GRID_KEYS",
    "summarize_grid", "best_config", "best_per", "paper_row_of", "masking_row", "paper_masking_points",
    "codeword_usage", "autoencoder_table", "record_representation", "record_grid", "record_masking",
    "record_table1", "record_beyond", "stored_best_config", "stored_best_masking", "table1_frame",
    "CHAPTER", "CLAIM_METRIC", "NOTEBOOK_CLAIMS", "clip_items", "record_seed_runs", "seed_table",
    "grid_claim_runs", "masking_claim_probabilities", "masking_claim_runs", "decide_claims", "table1_models", "row_summary", "RAW_COUNTS_ROW",
]

CHAPTER = "bow"
#: the metric every comparative claim of the chapter is decided on: clip-level test mAP (mean of
#: the 1 s chunk probabilities per clip). The bootstrap resamples test *clips*: the 1 s chunks
#: of one clip share its labels and are not independent test items.
CLAIM_METRIC = "mAP"
#: the claims each notebook decides (claim ids of ``paper.yml``)
NOTEBOOK_CLAIMS = {
    "02_fig2_grid": ("d256-best", "f10-beats-f20"),
    "03_fig3_masking": ("masking-helps",),
    "04_table1": ("headline-clip-map", "beats-cnns", "below-transformer"),
    "05_beyond": ("ngrams-help", "learned-codebook-helps"),
}

#: the notebook whose record (table ``fig2_best``) notebooks 03-05 read
GRID_NOTEBOOK = "book/bow/02_fig2_grid.ipynb"


class MissingRecordError(LookupError):
    """A notebook needs a result another notebook records first; the message names both."""


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
        min_vectors_per_word: ``None`` (the paper): every family's codebook has D words. A number
            n (*ours*, the book): a family with fewer than n fit vectors per word gets
            ``fit vectors // n`` words instead (the rest of its D slots stay unused), so no
            codebook is fitted on a vector or two per word (the whole-spectrogram family has one
            vector per chunk); :func:`codebook_support` shows which.
        fit_splits: splits whose chunks train autoencoders and k-means (paper: training data).
        seed: sampling / initialisation seed.
        patch: the patch geometry.
        amp: mixed precision of the autoencoder (and VQ autoencoder) training
            (:attr:`audiorepro.training.TrainConfig.amp`).
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
    min_vectors_per_word: int | None = None
    fit_splits: tuple[str, ...] = ("train",)
    seed: int = 0
    patch: PatchSpec = PatchSpec()
    amp: Any = False

    def __post_init__(self) -> None:
        # F = 10 and F = 10.0 are the same configuration (and must share one cache key)
        try:
            object.__setattr__(self, "factor", float(self.factor))
        except (TypeError, ValueError):
            raise BowError(f"BowConfig: factor={self.factor!r} is not a number") from None
        object.__setattr__(self, "fit_splits", tuple(self.fit_splits))

    def ae_fields(self) -> dict:
        """The fields that determine the autoencoders (all but the k-means ones)."""
        d = asdict(self)
        for k in KMEANS_FIELDS:
            d.pop(k)
        return d

    def kmeans_fields(self) -> dict:
        """The k-means fields (``min_vectors_per_word`` only when set: the paper's codebooks keep
        the cache key they had)."""
        d = {k: getattr(self, k) for k in KMEANS_FIELDS}
        if d["min_vectors_per_word"] is None:
            d.pop("min_vectors_per_word")
        return d

    def words(self, n_vectors: int, codebook_size: int) -> int:
        """Words fitted for a family of ``n_vectors`` fit vectors at D = ``codebook_size``."""
        if self.min_vectors_per_word is None:
            return int(codebook_size)
        return max(1, min(int(codebook_size), int(n_vectors) // int(self.min_vectors_per_word)))


#: the :class:`BowConfig` fields that determine only the codebooks
KMEANS_FIELDS = ("kmeans_max_vectors", "minibatch_above", "kmeans_max_iter", "min_vectors_per_word")


class BowPipeline:
    """Encoders, codebooks, codes and counts of one :class:`ChunkSet` under one :class:`BowConfig`,
    each computed once and cached under ``cache/bow/`` (``cache_root`` overrides it); the
    autoencoders train and encode on ``device`` (``"auto"``: :func:`audiorepro.training.pick_device`).

    Standardisation (*ours*): chunks are standardised with the mean / std of all values of the
    fit-split chunks (one scalar each, :func:`audiorepro.preprocessing.fit_standardiser` on the
    values as one column: ddof 0) before patching.
    """

    def __init__(self, chunks: ChunkSet, config: BowConfig = BowConfig(), cache_root: str | Path | None = None,
                 device: str | torch.device = "auto", progress: bool = False) -> None:
        self.chunks, self.config = chunks, config
        self.root = Path(cache_root) if cache_root is not None else paths.cache_dir("bow")
        self.device = pick_device(device)
        self.progress = progress
        fit_mask = chunks.chunk_mask(list(config.fit_splits))
        if not fit_mask.any():
            raise BowError(f"BowConfig.fit_splits={config.fit_splits}: no chunk of the table is in these splits")
        self.fit_mask = fit_mask
        # the standardiser's statistics, accumulated over blocks of chunks (memory stays small)
        values = chunks.spec[fit_mask]
        scaler = fit_standardiser(values[:1024].reshape(-1, 1))
        for i in range(1024, len(values), 1024):
            scaler.partial_fit(values[i:i + 1024].reshape(-1, 1).astype(np.float64))
        self.mean, self.std = float(scaler.mean_[0]), float(scaler.scale_[0])
        self.shapes = family_shapes(config.patch)
        self.ae_key = caching.run_key(config.ae_fields(), data=chunks.key, code=CACHE_CODE)
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

    def family_vectors(self, family: str, idx: np.ndarray, block: int = 2048) -> torch.Tensor:
        """(len(idx) * n_f, d_f) vectors of ``family`` of the standardised chunks ``idx``."""
        out = [self.patches(idx[i:i + block])[family] for i in range(0, len(idx), block)]
        d = self.shapes[family][1]
        return torch.cat(out).reshape(-1, d) if out else torch.zeros(0, d)

    def encode_all(self, family: str, encode: Any, block: int = 2048) -> np.ndarray:
        """``encode`` (B, d_f) -> (B, ...) applied on ``device`` to the ``family`` vectors of every
        chunk, block by block; returns the concatenated outputs (chunk-major) on the CPU."""
        parts = []
        with torch.no_grad():
            for i in range(0, len(self.chunks.spec), block):
                x = self.patches(slice(i, i + block))[family]
                parts.append(encode(x.reshape(-1, x.shape[-1]).to(self.device)).cpu().numpy())
        return np.concatenate(parts)

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
        c = self.config
        torch.manual_seed(c.seed)
        model = PatchAutoencoder(self.shapes[family][1], c.factor, c.ae_hidden, c.ae_dropout, c.ae_depth)
        rng = np.random.default_rng([c.seed, FAMILIES.index(family)])
        vec = self.family_vectors(family, np.flatnonzero(self.fit_mask))
        if c.ae_max_vectors is not None and len(vec) > c.ae_max_vectors:
            vec = vec[torch.from_numpy(np.sort(rng.choice(len(vec), c.ae_max_vectors, replace=False)))]
        perm = torch.from_numpy(rng.permutation(len(vec)))
        n_val = max(1, len(vec) // 20)
        val, tr = vec[perm[:n_val]], vec[perm[n_val:]]
        cfg = {"epochs": c.ae_epochs, "batch_size": c.ae_batch_size, "lr": c.ae_lr, "optimizer": "adam",
               "monitor": "loss", "mode": "min", "seed": c.seed, "amp": c.amp, "progress": self.progress}
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
            lat = self.encode_all(family, self.autoencoder(family).encode).astype(np.float32)
            atomic_save_npy(path, lat)
        self._latents[family] = lat
        return lat

    def reconstruction_mse(self, split: str | Sequence[str] = "valid") -> dict[str, float]:
        """Family -> mean squared error of the autoencoder on the standardised patches of ``split``."""
        idx = np.flatnonzero(self.chunks.chunk_mask(split))
        rec = self.reconstruct(idx)
        p = self.patches(idx)
        return {f: float(((rec[f] - p[f]) ** 2).mean()) for f in FAMILIES}

    # ----------------------------------------------------------------- codebooks
    def codebook_key(self, codebook_size: int) -> str:
        """Cache key of the D-word codebooks (autoencoders, D, k-means settings, code)."""
        return caching.run_key({"D": int(codebook_size), "km": self.config.kmeans_fields()}, data=self.ae_key,
                               code=CACHE_CODE)

    def codebook_dir(self, codebook_size: int) -> Path:
        return self.root / "codebooks" / self.codebook_key(codebook_size)

    def codebook(self, family: str, codebook_size: int) -> np.ndarray:
        """(D, bottleneck) k-means centroids of ``family`` fitted on fit-split latents (cached).
        Fewer latents than D (a tiny dataset): the latents themselves and D - N unused words, with
        a warning (:func:`~audiorepro.papers.bow.model.fit_kmeans` ``fewer="repeat"``)."""
        path = self.codebook_dir(codebook_size) / f"centroids_{family}.npy"
        if path.is_file():
            return np.load(path)
        c = self.config
        n_f = self.shapes[family][0]
        lat = self.latents(family)
        lat = lat.reshape(len(self.chunks.spec), n_f, -1)[self.fit_mask].reshape(-1, lat.shape[1])
        if c.kmeans_max_vectors is not None and len(lat) > c.kmeans_max_vectors:
            rng = np.random.default_rng([c.seed, 101, FAMILIES.index(family)])
            lat = lat[np.sort(rng.choice(len(lat), c.kmeans_max_vectors, replace=False))]
        if len(lat) < int(codebook_size):
            warnings.warn(f"BowPipeline: family {family!r} has {len(lat)} training latents for D={int(codebook_size)} "
                          f"codewords: its codebook holds these latents and {int(codebook_size) - len(lat)} unused "
                          "words (a dataset this small cannot fill the codebook)", stacklevel=2)
        words = c.words(len(lat), codebook_size)
        cent = fit_kmeans(lat, words, seed=c.seed, minibatch_above=c.minibatch_above,
                          max_iter=c.kmeans_max_iter, fewer="repeat")
        cent = pad_codebook(cent, int(codebook_size))   # the D - words slots stay unused
        atomic_save_npy(path, cent)
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
        save_npz(path, **{f: v.astype(dtype) for f, v in out.items()})
        return out

    def counts(self, codebook_size: int) -> np.ndarray:
        """(M, 4 D) float32 bag-of-words counts of every chunk; rows sum to 143."""
        return bag_of_words(self.codes(codebook_size), codebook_size)


#: fewer fit vectors per codeword than this: the codebook of that family and size is called thin
MIN_VECTORS_PER_WORD = 10


def codebook_support(pipeline: BowPipeline, codebook_sizes: Sequence[int],
                     min_per_word: int = MIN_VECTORS_PER_WORD) -> pd.DataFrame:
    """How well the data can fill each codebook: one row per family and D with the vectors per
    chunk, the vectors k-means is fitted on (every fit-split chunk's, capped by
    ``kmeans_max_vectors``), the words fitted (D, or fewer with
    :attr:`BowConfig.min_vectors_per_word`), the vectors per fitted word, and ``thin`` when fewer
    than ``min_per_word`` (below 1: words that no vector can fill). The whole-spectrogram family has
    one vector per chunk, so at a few thousand chunks its large codebooks are thin."""
    cfg = pipeline.config
    cap = cfg.kmeans_max_vectors
    chunks = int(pipeline.fit_mask.sum())
    rows = []
    for fam, per_chunk in zip(FAMILIES, FAMILY_SIZES):
        n = chunks * per_chunk if cap is None else min(chunks * per_chunk, int(cap))
        for d in codebook_sizes:
            words = cfg.words(n, d)
            rows.append({"family": fam, "D": int(d), "vectors per chunk": per_chunk, "fit vectors": n,
                         "words fitted": words, "vectors per codeword": round(n / words, 1),
                         "codebook": ("thin" if n < min_per_word * words else "filled")
                         + (f" (capped from {int(d)})" if words < int(d) else "")})
    return pd.DataFrame(rows)


def autoencoder_table(pipeline: BowPipeline, split: str = "valid") -> pd.DataFrame:
    """One row per family: vectors per second, input size, bottleneck, parameters of its
    (trained) autoencoder and the reconstruction MSE on ``split`` (column ``<split> MSE``)."""
    mse = pipeline.reconstruction_mse(split)
    rows = []
    for fam in FAMILIES:
        ae = pipeline.autoencoder(fam)
        n, d = pipeline.shapes[fam]
        rows.append({"family": fam, "vectors per s": n, "input size": d, "bottleneck": ae.bottleneck,
                     "parameters": sum(p.numel() for p in ae.parameters()), f"{split} MSE": mse[fam]})
    return pd.DataFrame(rows)


def codeword_usage(codes: Mapping[str, np.ndarray], codebook_size: int) -> pd.DataFrame:
    """Per family: codewords used, perplexity ``exp(entropy)`` of the code distribution and the
    share of the most frequent codeword, over the given (M, n_f) codes."""
    rows = []
    for fam in FAMILIES:
        c = np.bincount(np.asarray(codes[fam]).reshape(-1), minlength=codebook_size).astype(float)
        p = c / c.sum()
        nz = p[p > 0]
        rows.append({"family": fam, "D": codebook_size, "used": int((c > 0).sum()),
                     "perplexity": float(np.exp(-(nz * np.log(nz)).sum())), "top share": float(p.max())})
    return pd.DataFrame(rows)


# ================================================================================ head training
@dataclass
class HeadConfig:
    """Head and its training (paper III-C, IV).

    Attributes:
        hidden, layers, dropout: MLP head (paper: 2 layers of 256 / 512 / 4096, dropout 0.1 / 0.4).
        mask_p: input-count masking probability (paper best 0.35).
        input_transform: count scaling (*ours*, see :class:`~audiorepro.papers.bow.model.BowTagger`).
        epochs, batch_size, lr, patience: Adam training with early stopping on validation 1 s mAP
            (not given by the paper).
        seed: initialisation and shuffling seed.
        amp: mixed precision (:attr:`audiorepro.training.TrainConfig.amp`).
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
    amp: Any = False


@dataclass
class HeadResult:
    """Scores of one trained head. ``metrics`` keys: ``mAP_1s_<split>`` (chunks) and
    ``mAP_clip_<split>`` (mean of the chunk probabilities) for each evaluated split, plus
    ``epochs``; ``fit`` is the :class:`~audiorepro.training.FitResult`."""

    metrics: dict[str, float]
    fit: Any
    model: nn.Module
    scores: dict[str, np.ndarray] = field(default_factory=dict)


def train_head(features: np.ndarray, chunks: ChunkSet, codebook_size: int, config: HeadConfig = HeadConfig(),
               eval_splits: Sequence[str] = ("valid", "test"), run_dir: str | Path | None = None,
               family_sizes: Sequence[int] = FAMILY_SIZES, device: str | torch.device = "auto",
               progress: bool = False) -> HeadResult:
    """Train a :class:`~audiorepro.papers.bow.model.BowTagger` on the train-split chunks of
    ``features`` (M, n_fam * D) with the clip labels assigned to every chunk, early-stopped on
    valid-split 1 s mAP, and score ``eval_splits`` at the 1 s and clip level. Uses
    :func:`audiorepro.training.fit` with Huber loss on ``device``; ``run_dir`` caches the run."""
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
    dev = pick_device(device)
    res = fit(model, ds(tr), ds(va), loss_fn=huber_loss, config=_tagging_fit_config(config, progress),
              task="tagging", run_dir=run_dir, device=dev)
    model = res.model.eval()
    metrics, scores = _score_splits(model, ds, chunks, eval_splits, 1024, dev, config.amp)
    return HeadResult({"epochs": float(res.epochs_run), **metrics}, res, model, scores)


def _tagging_fit_config(config: Any, progress: bool) -> dict[str, Any]:
    """The :class:`audiorepro.training.TrainConfig` keys of a head or baseline run: Adam, early
    stopping on validation mAP, with ``config``'s epochs, batch size, lr, patience, seed and amp."""
    return {"epochs": config.epochs, "batch_size": config.batch_size, "lr": config.lr, "optimizer": "adam",
            "monitor": "mAP", "mode": "max", "patience": config.patience, "seed": config.seed,
            "amp": config.amp, "progress": progress}


def _score_splits(model: nn.Module, ds: Any, chunks: ChunkSet, eval_splits: Sequence[str], batch_size: int,
                  device: torch.device, amp: Any) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """``mAP_1s_<split>`` / ``mAP_clip_<split>`` (mean of chunk probabilities per clip) of
    ``model`` on ``ds(mask)`` for each split with chunks, and the (m, K) chunk scores."""
    metrics: dict[str, float] = {}
    scores = {}
    for split in eval_splits:
        m = chunks.chunk_mask(split)
        if not m.any():
            continue
        s, t = predict(model, DataLoader(ds(m), batch_size=batch_size, shuffle=False), device=device, amp=amp)
        metrics[f"mAP_1s_{split}"] = mean_average_precision(t, s)
        clips, cs = clip_pool(s, chunks.chunk_clip[m])
        metrics[f"mAP_clip_{split}"] = mean_average_precision(chunks.targets[clips], cs)
        scores[split] = s
    return metrics, scores


def head_run_dir(pipeline: BowPipeline, codebook_size: int, config: HeadConfig, variant: Any = None,
                 family_sizes: Sequence[int] = FAMILY_SIZES) -> Path:
    """Cache folder of one head run: :func:`audiorepro.caching.run_key` of the head config, D,
    the input ``variant`` (``None``: the pipeline's k-means counts; else a JSON-able description
    of how the features were made) and ``family_sizes``, with the codebook key as data."""
    params = {"head": asdict(config), "D": int(codebook_size), "variant": variant,
              "family_sizes": [int(n) for n in family_sizes]}
    return pipeline.root / "heads" / caching.run_key(params, data=pipeline.codebook_key(codebook_size),
                                                     code=CACHE_CODE)


def run_head(pipeline: BowPipeline, codebook_size: int, config: HeadConfig = HeadConfig(),
             features: np.ndarray | None = None, variant: Any = None, family_sizes: Sequence[int] = FAMILY_SIZES,
             eval_splits: Sequence[str] = ("valid", "test"), device: str | torch.device = "auto",
             progress: bool = False) -> HeadResult:
    """:func:`train_head` on ``features`` (default: ``pipeline.counts(codebook_size)``), cached
    in :func:`head_run_dir`: a repeated run reloads the trained head and only re-scores.
    Features other than the pipeline's counts need a ``variant`` describing them (cache key)."""
    if features is None:
        features = pipeline.counts(codebook_size)
    elif variant is None:
        raise BowError("run_head: features other than the pipeline's counts need a `variant` that "
                       "describes how they were made (it is part of the cache key)")
    run_dir = head_run_dir(pipeline, codebook_size, config, variant, family_sizes)
    return train_head(features, pipeline.chunks, codebook_size, config, eval_splits, run_dir=run_dir,
                      family_sizes=family_sizes, device=device, progress=progress)


# ================================================================================ sweeps (Fig. 2, Fig. 3)
def run_grid(pipelines: Mapping[float, BowPipeline], codebook_sizes: Sequence[int], hiddens: Sequence[int],
             dropouts: Sequence[float], base: HeadConfig = HeadConfig(), seeds: Sequence[int] = (0,),
             eval_splits: Sequence[str] = ("valid", "test"), progress: bool = False,
             device: str | torch.device = "auto") -> pd.DataFrame:
    """Train one head per (F, D, hidden, dropout, seed) and return a tidy frame.

    ``pipelines`` maps the compression factor F to its :class:`BowPipeline`. Columns: ``F, D,
    hidden, dropout, seed`` and the :class:`HeadResult` metrics (``mAP_1s_valid``, ...). Head runs
    are cached (:func:`head_run_dir`), so a repeated sweep only re-scores.
    """
    combos = [(f, d, h, p, s) for f in pipelines for d in codebook_sizes for h in hiddens
              for p in dropouts for s in seeds]
    rows = []
    for f, d, h, p, s in tqdm(combos, desc="heads", disable=not progress):
        cfg = dataclasses.replace(base, hidden=int(h), dropout=float(p), seed=int(s))
        res = run_head(pipelines[f], d, cfg, eval_splits=eval_splits, device=device)
        rows.append({"F": f, "D": d, "hidden": h, "dropout": p, "seed": s, **res.metrics})
    return pd.DataFrame(rows)


def run_masking(pipeline: BowPipeline, codebook_size: int, probabilities: Sequence[float],
                base: HeadConfig = HeadConfig(), seeds: Sequence[int] = (0,),
                eval_splits: Sequence[str] = ("valid", "test"), device: str | torch.device = "auto") -> pd.DataFrame:
    """One head per (masking probability p, seed) at a fixed configuration; tidy frame with
    columns ``p, seed`` and the metrics."""
    rows = []
    for p in probabilities:
        for s in seeds:
            cfg = dataclasses.replace(base, mask_p=float(p), seed=int(s))
            res = run_head(pipeline, codebook_size, cfg, eval_splits=eval_splits, device=device)
            rows.append({"p": float(p), "seed": int(s), **res.metrics})
    return pd.DataFrame(rows)


GRID_KEYS = ("F", "D", "hidden", "dropout")


def summarize_grid(df: pd.DataFrame, metric: str = "mAP_1s_valid") -> pd.DataFrame:
    """Mean (and count) of every metric over seeds per (F, D, hidden, dropout) cell of a
    :func:`run_grid` frame, sorted by ``metric`` (best first)."""
    if metric not in df:
        raise BowError(f"summarize_grid: metric {metric!r} not in the grid columns {list(df.columns)}")
    metrics = [c for c in df.columns if c.startswith("mAP_")]
    out = df.groupby(list(GRID_KEYS), as_index=False)[metrics].mean()
    out["seeds"] = df.groupby(list(GRID_KEYS)).size().to_numpy()
    return out.sort_values(metric, ascending=False, kind="stable").reset_index(drop=True)


def best_config(df: pd.DataFrame, metric: str = "mAP_1s_valid") -> dict[str, Any]:
    """The (F, D, hidden, dropout) cell of a :func:`run_grid` frame with the highest mean
    ``metric`` over seeds, as plain Python values plus ``metric`` -> value."""
    top = summarize_grid(df, metric).iloc[0]
    return {"F": float(top["F"]), "D": int(top["D"]), "hidden": int(top["hidden"]),
            "dropout": float(top["dropout"]), metric: float(top[metric])}


def best_per(df: pd.DataFrame, by: str, metric: str = "mAP_1s_valid",
             where: Mapping[str, Any] | None = None) -> pd.DataFrame:
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


def masking_row(p: float) -> str:
    """Row name of a masking probability in the ``fig3`` table: 0.35 -> ``"p=35%"``."""
    return f"p={100 * float(p):g}%"


def _cell_seeds(df: pd.DataFrame, cell: Mapping[str, Any]) -> list[int]:
    sel = np.ones(len(df), dtype=bool)
    for k in GRID_KEYS:
        sel &= (df[k] == cell[k]).to_numpy()
    return sorted(int(x) for x in df.loc[sel, "seed"].unique())


def grid_claim_runs(pipelines: Mapping[float, BowPipeline], grid: pd.DataFrame, base: HeadConfig = HeadConfig(),
                    metric: str = "mAP_1s_valid", device: str | torch.device = "auto"
                    ) -> tuple[dict[str, dict[int, HeadResult]], dict[str, dict[str, Any]]]:
    """The rows the Fig. 2 claims compare, chosen on validation and scored once on test.

    ``grid``: a :func:`run_grid` frame scored on validation only. Rows ``D=<D>``: per codebook
    size the best cell (mean ``metric`` over seeds) at the best cell's F; rows ``F=<F>``: per F
    the best cell. Every seed of each chosen cell is re-scored (the trained heads are cached)
    on validation and test. Returns ({row: {seed: HeadResult}}, {row: cell}).
    """
    best = best_config(grid, metric)
    cells: dict[str, dict[str, Any]] = {}
    for c in best_per(grid, "D", metric, {"F": best["F"]}).to_dict("records"):
        cells[f"D={int(c['D'])}"] = c
    for c in best_per(grid, "F", metric).to_dict("records"):
        cells[f"F={float(c['F']):g}"] = c
    runs: dict[str, dict[int, HeadResult]] = {}
    for row, c in cells.items():
        runs[row] = {}
        for seed in _cell_seeds(grid, c):
            cfg = dataclasses.replace(base, hidden=int(c["hidden"]), dropout=float(c["dropout"]), seed=seed)
            runs[row][seed] = run_head(pipelines[float(c["F"])], int(c["D"]), cfg,
                                       eval_splits=("valid", "test"), device=device)
    return runs, {row: {k: c[k] for k in GRID_KEYS} for row, c in cells.items()}


def masking_claim_probabilities(claim_id: str = "masking-helps") -> list[float]:
    """The masking probabilities the claim ``claim_id`` of ``paper.yml`` compares (its rows
    ``p=<percent>%``), in increasing order."""
    test = next(c["test"] for c in results.claims(CHAPTER) if c["id"] == claim_id)
    rows = [test["better"], *(test["worse"] if isinstance(test["worse"], list) else [test["worse"]])]
    return sorted(float(r.removeprefix("p=").removesuffix("%")) / 100 for r in rows)


def masking_claim_runs(pipeline: BowPipeline, codebook_size: int, base: HeadConfig, seeds: Sequence[int],
                       probabilities: Sequence[float] | None = None,
                       device: str | torch.device = "auto") -> dict[str, dict[int, HeadResult]]:
    """The Fig. 3 rows the claim compares (default :func:`masking_claim_probabilities`; fixed by
    the paper, not selected), every seed scored on validation and test: {``p=<percent>%``: {seed:
    HeadResult}}. The heads are the cached ones of :func:`run_masking`."""
    ps = masking_claim_probabilities() if probabilities is None else list(probabilities)
    return {masking_row(p): {int(s): run_head(pipeline, codebook_size, dataclasses.replace(base, mask_p=float(p), seed=int(s)),
                                             eval_splits=("valid", "test"), device=device) for s in seeds}
            for p in ps}


# ================================================================================ beyond the paper: learned VQ, n-grams
def train_vq_autoencoder(vectors: torch.Tensor, codebook_size: int, factor: float = 10, hidden: int = 256,
                         epochs: int = 5, batch_size: int = 256, lr: float = 1e-3, seed: int = 0,
                         init_from: torch.Tensor | None = None, run_dir: str | Path | None = None,
                         device: str | torch.device = "auto", amp: Any = False) -> VQAutoencoder:
    """Train a :class:`~audiorepro.papers.bow.model.VQAutoencoder` on (N, in_dim) vectors through
    :func:`audiorepro.training.fit` (loss = reconstruction MSE + VQ loss). The codebook starts
    from ``init_from`` (D, bottleneck) if given, else from the encodings of D random vectors
    (*ours*: avoids dead codewords; with N < D vectors, the N encodings and D - N repeats of
    them, with a warning)."""
    if vectors.dim() != 2 or len(vectors) < 2:
        raise BowError(f"train_vq_autoencoder: need (N >= 2, d) vectors, got {tuple(vectors.shape)}")
    torch.manual_seed(seed)
    model = VQAutoencoder(vectors.shape[1], codebook_size, factor, hidden, beta=0.25)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if init_from is not None:
            model.codebook.weight.copy_(torch.as_tensor(init_from))
        else:
            pick = torch.randperm(len(vectors), generator=g)[:codebook_size]
            if len(pick) < codebook_size:  # fewer vectors than codewords: some start as copies
                warnings.warn(f"train_vq_autoencoder: {len(vectors)} vectors for D={codebook_size} codewords: "
                              f"{codebook_size - len(vectors)} codewords start as copies of others", stacklevel=2)
                pick = torch.cat([pick, pick[torch.randint(len(pick), (codebook_size - len(pick),), generator=g)]])
            model.codebook.weight.copy_(model.ae.encode(vectors[pick]))
    perm = torch.randperm(len(vectors), generator=g)
    n_val = max(1, len(vectors) // 20)
    val, tr = vectors[perm[:n_val]], vectors[perm[n_val:]]

    def batch_fn(m: nn.Module, batch: Any) -> torch.Tensor:
        x = batch[0]
        rec, vq = m(x)
        return F.mse_loss(rec, x) + vq

    cfg = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "amp": amp, "progress": False}
    res = fit(model, TensorDataset(tr), TensorDataset(val), batch_fn=batch_fn, config=cfg,
              run_dir=run_dir, device=pick_device(device))
    return res.model.eval()


def vq_dir(pipeline: BowPipeline, codebook_size: int, hidden: int, epochs: int, max_vectors: int | None,
           init_kmeans: bool) -> Path:
    """Cache folder of the learned VQ codebooks of :func:`vq_codes` (keyed by the pipeline's
    autoencoder key, D, the VQ settings and the code)."""
    params = {"D": int(codebook_size), "hidden": int(hidden), "epochs": int(epochs), "max": max_vectors,
              "init": bool(init_kmeans)}
    return pipeline.root / "vq" / caching.run_key(params, data=pipeline.ae_key, code=CACHE_CODE)


def vq_codes(pipeline: BowPipeline, codebook_size: int, hidden: int | None = None, epochs: int | None = None,
             max_vectors: int | None = None, init_kmeans: bool = False,
             device: str | torch.device = "auto") -> dict[str, np.ndarray]:
    """Family -> (M, n_f) codes from a learned VQ codebook (straight-through, codebook +
    commitment loss) trained per family on ``device`` on the fit-split patches of ``pipeline``
    (same standardisation, bottleneck size and sample of vectors as its autoencoders; ``hidden``
    / ``epochs`` / ``max_vectors`` default to the pipeline's). ``init_kmeans``: start the codebook
    from k-means on the initial encodings instead of random encodings. Cached in :func:`vq_dir`."""
    c = pipeline.config
    hidden = c.ae_hidden if hidden is None else int(hidden)
    epochs = c.ae_epochs if epochs is None else int(epochs)
    max_vectors = c.ae_max_vectors if max_vectors is None else int(max_vectors)
    folder = vq_dir(pipeline, codebook_size, hidden, epochs, max_vectors, init_kmeans)
    path = folder / "codes.npz"
    if path.is_file():
        with np.load(path) as z:
            return {f: z[f].astype(np.int64) for f in FAMILIES}
    dev = pick_device(device)
    out = {}
    fit_idx = np.flatnonzero(pipeline.fit_mask)
    for fam in FAMILIES:
        rng = np.random.default_rng([c.seed, 7, FAMILIES.index(fam)])
        vec = pipeline.family_vectors(fam, fit_idx)
        if max_vectors is not None and len(vec) > max_vectors:
            vec = vec[torch.from_numpy(np.sort(rng.choice(len(vec), max_vectors, replace=False)))]
        init = None
        if init_kmeans:
            torch.manual_seed(c.seed)
            probe = VQAutoencoder(vec.shape[1], codebook_size, c.factor, hidden)
            with torch.no_grad():
                init = torch.from_numpy(fit_kmeans(probe.ae.encode(vec).numpy(), codebook_size, seed=c.seed,
                                                       fewer="repeat"))
        model = train_vq_autoencoder(vec, codebook_size, c.factor, hidden, epochs, c.ae_batch_size, c.ae_lr,
                                     c.seed, init_from=init, run_dir=folder / fam, device=dev, amp=c.amp)
        n_f = pipeline.shapes[fam][0]
        out[fam] = pipeline.encode_all(fam, model.to(pipeline.device).codes).reshape(-1, n_f)
    save_npz(path, **{f: v.astype(np.int32) for f, v in out.items()})
    return out


#: the row of :func:`run_beyond` whose head reads the raw counts (ablation of ``log1p``)
RAW_COUNTS_ROW = "k-means raw counts (no log1p)"


def run_beyond(pipeline: BowPipeline, codebook_size: int, config: HeadConfig, bigram_blocks: int = 2,
               device: str | torch.device = "auto", seeds: Sequence[int] = (0,)) -> dict[str, dict[int, HeadResult]]:
    """The same head (``config``, one run per head seed of ``seeds``) on three inputs (the
    paper's future work, section V), each run cached: ``"k-means counts (log1p, as the head reads them)"`` (4 D),
    ``"k-means counts + time bigrams"`` (the counts plus
    :func:`~audiorepro.papers.bow.model.temporal_bigrams` hashed into ``bigram_blocks`` x D bins
    per sequence family) and ``"learned VQ counts"`` (counts of :func:`vq_codes`); and the
    ablation of the head's input scaling, :data:`RAW_COUNTS_ROW`: the same k-means counts fed raw
    (``input_transform="none"``, the paper's "counts") instead of ``log1p`` (ours). Returns
    {row: {seed: HeadResult}}."""
    d = int(codebook_size)
    codes = pipeline.codes(d)
    counts = bag_of_words(codes, d)
    n_buckets = int(bigram_blocks) * d
    bigrams = temporal_bigrams(codes, d, n_buckets=n_buckets, spec=pipeline.config.patch)
    pf, pt = pipeline.config.patch.patch
    n_bands, n_steps = pipeline.config.patch.n_mels // pf, pipeline.config.patch.n_frames // pt
    n_env = pipeline.config.patch.n_frames // pipeline.config.patch.env_frames
    # vectors per chunk of each D-column block: pat bigrams then env bigrams
    bigram_sizes = (n_bands * (n_steps - 1),) * int(bigram_blocks) + (n_env - 1,) * int(bigram_blocks)
    sizes = tuple(pipeline.shapes[f][0] for f in FAMILIES)
    vq = vq_codes(pipeline, d, device=device)  # VQ settings: the pipeline's (in the codebook key)
    with_bigrams = np.concatenate([counts, bigrams], axis=1)
    vq_counts = bag_of_words(vq, d)
    out: dict[str, dict[int, HeadResult]] = {"k-means counts (log1p, as the head reads them)": {}, "k-means counts + time bigrams": {},
                                             "learned VQ counts": {}, RAW_COUNTS_ROW: {}}
    for seed in seeds:
        cfg = dataclasses.replace(config, seed=int(seed))
        out["k-means counts (log1p, as the head reads them)"][int(seed)] = run_head(pipeline, d, cfg, family_sizes=sizes, device=device)
        out["k-means counts + time bigrams"][int(seed)] = run_head(
            pipeline, d, cfg, with_bigrams, variant={"bigrams": "time", "n_buckets": n_buckets},
            family_sizes=sizes + bigram_sizes, device=device)
        out["learned VQ counts"][int(seed)] = run_head(
            pipeline, d, cfg, vq_counts, variant={"codes": "learned VQ", "init_kmeans": False},
            family_sizes=sizes, device=device)
        out[RAW_COUNTS_ROW][int(seed)] = run_head(pipeline, d, dataclasses.replace(cfg, input_transform="none"),
                                                  family_sizes=sizes, device=device)
    return out


# ================================================================================ Table I: CNN / AST baselines on the same chunks
@dataclass
class BaselineConfig:
    """A network trained from scratch on the 1 s chunks (Table I baselines).

    Attributes:
        name: a Table I family of :data:`~audiorepro.papers.bow.baselines.TABLE1_FAMILIES`
            (``CRNN``, ``VGG-like``, ``ResNet-18``, ``DenseNet-121``, ``Transformer``) or a
            shared backbone's registry name (``panns_cnn14_16k``, ``ast_base384_f10_t10_527``).
        scale: width multiplier (a family; 1.0 = its usual width) or the width preset /
            multiplier of :func:`~audiorepro.backbones.build_backbone`.
        build_kwargs: extra builder options of a shared backbone (AST: ``{"input_tdim": 100}``).
        epochs, batch_size, lr, patience, seed: Adam training, early stopping on validation 1 s
            mAP.
        loss: ``huber`` (the bag-of-codewords head's loss on sigmoid outputs: like for like in
            Table I) or ``bce`` (binary cross-entropy, the FSD50K baselines' own loss).
        amp: mixed precision (:attr:`audiorepro.training.TrainConfig.amp`).
    """

    name: str = "panns_cnn14_16k"
    scale: Any = "cpu"
    build_kwargs: dict = field(default_factory=dict)
    epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-3
    patience: int | None = 2
    seed: int = 0
    loss: str = "bce"
    amp: Any = False


def table1_baselines(family_scale: float = 0.25, epochs: int = 3, patience: int | None = 2,
                     loss: str = "huber", batch_size: int = 32,
                     families: Sequence[str] = tuple(TABLE1_FAMILIES),
                     cnn_scale: Any = None, ast_scale: Any = None) -> dict[str, BaselineConfig]:
    """The baselines of the book's Table I under their row names (``"<family> (trained here)"``,
    the rows the claims ``beats-cnns`` / ``below-transformer`` compare): the paper's baseline
    families (:mod:`audiorepro.papers.bow.baselines`) at width ``family_scale``, each with the
    same ``epochs``, ``patience``, ``batch_size`` and ``loss`` (give the bag-of-codewords head's, so
    every row has one budget, one loss and one early stopping). ``cnn_scale`` / ``ast_scale`` (not
    None) add the shared CNN14 (waveform input) and AST (100-frame input) backbones as two more
    rows at those sizes."""
    unknown = [f for f in families if f not in TABLE1_FAMILIES]
    if unknown:
        raise BowError(f"table1_baselines: unknown famil(ies) {unknown}; known: {list(TABLE1_FAMILIES)}")
    kw = dict(epochs=epochs, batch_size=batch_size, patience=patience, loss=loss)
    rows = {f"{fam} (trained here)": BaselineConfig(fam, float(family_scale), **kw) for fam in families}
    if cnn_scale is not None:
        rows["CNN14 (trained here)"] = BaselineConfig("panns_cnn14_16k", cnn_scale, **kw)
    if ast_scale is not None:
        rows["AST (trained here)"] = BaselineConfig("ast_base384_f10_t10_527", ast_scale, {"input_tdim": 100}, **kw)
    return rows


def train_baseline(waves: np.ndarray, chunks: ChunkSet, config: BaselineConfig = BaselineConfig(),
                   eval_splits: Sequence[str] = ("valid", "test"), run_dir: str | Path | None = None,
                   device: str | torch.device = "auto") -> HeadResult:
    """Train ``config.name`` from scratch on the train-split 1 s waveforms (M, samples) with clip
    labels on every chunk, through :func:`audiorepro.training.fit` (as the bag-of-codewords head)
    on ``device``, and score ``eval_splits`` at the 1 s and clip level (mean of chunk
    probabilities). Non-waveform backbones get their own front end applied once to every chunk."""
    w = np.asarray(waves, dtype=np.float32)
    if w.ndim != 2 or w.shape[0] != len(chunks.chunk_clip):
        raise BowError(f"train_baseline: waves must be (M={len(chunks.chunk_clip)}, samples), got {w.shape}")
    dev = pick_device(device)
    y = torch.from_numpy(chunks.chunk_targets().astype(np.float32))
    torch.manual_seed(config.seed)
    if config.loss not in BASELINE_LOSSES:
        raise BowError(f"BaselineConfig.loss={config.loss!r}; choose one of {sorted(BASELINE_LOSSES)}")
    if config.name in TABLE1_FAMILIES:
        net = build_family(config.name, y.shape[1], float(config.scale))
    else:
        net = build_backbone(config.name, scale=config.scale, num_classes=y.shape[1], **config.build_kwargs)
    x = torch.from_numpy(w)
    if getattr(net, "input_kind", "wave") != "wave":
        net.to(dev)
        with torch.no_grad():
            x = torch.cat([net.prepare(x[i:i + 256].to(dev)).cpu() for i in range(0, len(x), 256)])
    model = BackboneProbabilities(net)
    tr, va = chunks.chunk_mask("train"), chunks.chunk_mask("valid")
    ds = lambda m: TensorDataset(x[torch.from_numpy(m)], y[torch.from_numpy(m)])  # noqa: E731
    res = fit(model, ds(tr), ds(va), loss_fn=BASELINE_LOSSES[config.loss],
                      config=_tagging_fit_config(config, False), task="tagging",
              run_dir=run_dir, device=dev)
    model = res.model.eval()
    metrics, scores = _score_splits(model, ds, chunks, eval_splits, 64, dev, config.amp)
    return HeadResult({"epochs": float(res.epochs_run), "params_M": count_parameters(net)["trainable"] / 1e6,
                       **metrics}, res, model, scores)


def _bce(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of (B, K) probabilities, in float32 outside autocast (PyTorch refuses
    ``binary_cross_entropy`` under CUDA autocast)."""
    with torch.autocast(probs.device.type, enabled=False):
        return F.binary_cross_entropy(probs.float().clamp(1e-7, 1 - 1e-7), target.float())


#: loss of a baseline (:attr:`BaselineConfig.loss`) -> function of (probabilities, targets)
BASELINE_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "bce": _bce, "huber": huber_loss}


def run_table1(pipeline: BowPipeline, codebook_size: int, head: HeadConfig, baselines: Mapping[str, BaselineConfig],
               device: str | torch.device = "auto", seeds: Sequence[int] = (0,)) -> dict[str, dict[int, HeadResult]]:
    """Table I on the same chunks, one run per seed of ``seeds`` (the head's and each baseline's
    initialisation and shuffling seed): ``"Bag of codewords"`` (the head ``head`` on the
    pipeline's D-word counts, cached run) and every baseline of ``baselines`` (row -> config,
    trained here on the 1 s waveforms of the same chunks), all on ``device``. Returns {row:
    {seed: HeadResult}}."""
    runs: dict[str, dict[int, HeadResult]] = {"Bag of codewords": {}, **{row: {} for row in baselines}}
    waves = chunk_waves(pipeline.chunks)
    for seed in seeds:
        runs["Bag of codewords"][int(seed)] = run_head(pipeline, codebook_size, dataclasses.replace(head, seed=int(seed)),
                                                       device=device)
        for row, cfg in baselines.items():
            runs[row][int(seed)] = train_baseline(waves, pipeline.chunks, dataclasses.replace(cfg, seed=int(seed)),
                                                  device=device)
    return runs


def table1_models(head: HeadConfig, cell: Mapping[str, Any], baselines: Mapping[str, BaselineConfig]) -> dict[str, str]:
    """Row of Table I -> the model that really ran (recorded as ``model``)."""
    out = {"Bag of codewords": f"bag of codewords ({paper_row_of(cell)}, masking p={head.mask_p:g}), Huber"}
    for row, b in baselines.items():
        what = (f"{b.name} (width x{b.scale})" if b.name in TABLE1_FAMILIES
                else f"{b.name.split('_')[0]} ({b.name} scale {b.scale})")
        out[row] = f"{what}, from scratch, {'Huber' if b.loss == 'huber' else 'BCE'}, at most {b.epochs} epochs"
    return out


def table1_frame(runs: Mapping[str, Mapping[int, HeadResult]], head: HeadConfig, cell: Mapping[str, Any],
                 baselines: Mapping[str, BaselineConfig]) -> pd.DataFrame:
    """One line per model of Table I and seed: ``row`` (paper row name or the book's baseline
    name), ``seed``, ``model`` (what ran), ``params_M`` (trainable parameters of the classifier:
    the MLP head for the bag of codewords, the whole backbone otherwise), ``epochs`` and the 1 s
    / clip mAPs."""
    models = table1_models(head, cell, baselines)
    return seed_table(runs, models)


# ================================================================================ results registry
def record_representation(ae_table: pd.DataFrame, counts: np.ndarray, params: Mapping[str, Any], profile: str,
                          dataset: str, scale: str, model: str, duration_s: float | None = None,
                          split: str = "valid") -> None:
    """Record notebook 01 (table ``representation``): the autoencoders' reconstruction MSE per
    family (``mse_<family>``, column ``<split> MSE`` of an :func:`autoencoder_table`) and the
    smallest / largest row sum of the (M, 4 D) ``counts`` (``count_sum_min`` /
    ``count_sum_max``; 143 with the paper's geometry)."""
    mse = dict(zip(ae_table["family"], ae_table[f"{split} MSE"]))
    sums = np.asarray(counts).sum(axis=1)
    record("bow", "representation", {**{f"mse_{f}": mse[f] for f in FAMILIES},
                                     "count_sum_min": float(sums.min()), "count_sum_max": float(sums.max())},
           params=dict(params), dataset=dataset, scale=scale, profile=profile, model=model, duration_s=duration_s)


def record_grid(df: pd.DataFrame, profile: str, dataset: str, scale: str, metric: str = "mAP_1s_valid",
                duration_s: float | None = None, extra_params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Record the validation side of a :func:`run_grid` frame and return the best cell (by
    ``metric``, mean over seeds).

    Records (chapter ``bow``): every cell (table ``fig2_grid``, validation metrics averaged over
    seeds); the best cell (table ``fig2_best``, read back by :func:`stored_best_config`) and,
    under the row ``run best (Fig. 2 grid)``, in table ``text`` (``mAP_1s`` = its validation 1 s
    mAP, the paper's Fig. 2 quantity). The rows the Fig. 2 claims compare are recorded per seed
    with test outputs by :func:`record_seed_runs` (see :func:`grid_claim_runs`).
    """
    extra = dict(extra_params or {})
    s = summarize_grid(df, metric)
    metrics = [c for c in s.columns if c.startswith("mAP_")]
    model = lambda c: f"bag of codewords ({paper_row_of(c)})"  # noqa: E731
    for c in s.to_dict("records"):
        record(CHAPTER, "fig2_grid", {m: c[m] for m in metrics},
               {**{k: c[k] for k in GRID_KEYS}, "seeds": int(c["seeds"]), **extra},
               dataset, scale, profile, model=model(c))
    best = best_config(df, metric)
    top = s.iloc[0].to_dict()
    record(CHAPTER, "fig2_best", {m: top[m] for m in metrics},
           {**{k: best[k] for k in GRID_KEYS}, "metric": metric, **extra},
           dataset, scale, profile, model=model(best), duration_s=duration_s)
    record(CHAPTER, "text", {"mAP_1s": top[metric]},
           {"paper_row": "run best (Fig. 2 grid)", **{k: best[k] for k in GRID_KEYS}, **extra},
           dataset, scale, profile, model=model(best))
    return best


def _matching(recs: pd.DataFrame, **columns: str | None) -> pd.DataFrame:
    """Records whose columns equal the given values (a ``None`` value does not filter)."""
    for col, value in columns.items():
        if value is not None:
            recs = recs[recs[col] == value]
    return recs


def stored_best_config(profile: str, dataset: str | None = None,
                       scale: str | None = None) -> dict[str, Any]:
    """The best (F, D, hidden, dropout) recorded by notebook ``book/bow/02_fig2_grid.ipynb``
    (results table ``fig2_best``) for ``profile`` (and ``dataset``, and ``scale``: the clips per
    split, :func:`~audiorepro.papers.bow.data.scale_label`), newest record.

    Notebooks 03-05 run at this configuration, so 02 must have run first with the same profile:
    without such a record this raises :class:`MissingRecordError` naming 02, the profile and the
    dataset.
    """
    recs = load_records("bow", "fig2_best", current=True)
    if not recs.empty:
        recs = _matching(recs[recs["profile"] == profile], dataset=dataset, scale=scale)
    if recs.empty:
        on = f"profile {profile!r}" + "".join(f" and {col} {value!r}" for col, value in
                                              (("dataset", dataset), ("scale", scale)) if value is not None)
        raise MissingRecordError(
            f"no Fig. 2 grid choice (results table 'fig2_best') recorded for {on}: this notebook runs at "
            f"the configuration chosen by {GRID_NOTEBOOK}; run {GRID_NOTEBOOK} with the same profile "
            f"({profile!r}) and data first")
    last = recs.iloc[-1]
    return {"F": float(last["param.F"]), "D": int(last["param.D"]), "hidden": int(last["param.hidden"]),
            "dropout": float(last["param.dropout"])}


#: legend of :func:`paper_masking_points` in a figure
MASKING_POINTS_LABEL = "paper, FSD50K (p = 35 %: section IV; p = 0: Fig. 2's best, our placement)"


def paper_masking_points() -> dict[float, float]:
    """The paper's Fig. 3 points as ``paper.yml`` (table ``fig3``) places them: masking percentage
    -> 1 s mAP (FSD50K). p = 35 % is printed (0.38, section IV text); p = 0 is Fig. 2's best cell
    (0.35, Fig. 2 caption), placed at p = 0 by us. Paper numbers: plot them only labelled as the
    paper's (see :data:`MASKING_POINTS_LABEL`)."""
    pn = paper_numbers("bow")
    pn = pn[(pn["table"] == "fig3") & (pn["column"] == "mAP_1s")]
    return {float(r.row.removeprefix("p=").removesuffix("%")): float(r.value) for r in pn.itertuples()}


def record_masking(df: pd.DataFrame, config: Mapping[str, Any], profile: str, dataset: str, scale: str,
                   metric: str = "mAP_1s_valid", duration_s: float | None = None,
                   extra_params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Record the validation curve of a :func:`run_masking` frame: one record per p (mean over
    seeds) in table ``fig3_curve``, row ``p=<percent>%``, metric ``mAP_1s`` = ``metric`` plus every
    ``mAP_*`` column under its own name (read back by :func:`stored_best_masking`). The rows the
    claim compares are recorded per seed with test outputs by :func:`record_seed_runs` (table
    ``fig3``). Returns the per-p means (columns ``p`` and the metrics)."""
    metrics = [c for c in df.columns if c.startswith("mAP_")]
    if metric not in metrics:
        raise BowError(f"record_masking: metric {metric!r} not in {metrics}")
    agg = df.groupby("p", as_index=False)[metrics].mean().sort_values("p").reset_index(drop=True)
    n_seeds = int(df.groupby("p").size().min())
    cfg = {k: config[k] for k in GRID_KEYS}
    for r in agg.to_dict("records"):
        record(CHAPTER, "fig3_curve", {"mAP_1s": r[metric], **{m: r[m] for m in metrics}},
               {"paper_row": masking_row(r["p"]), "p": float(r["p"]), **cfg, "seeds": n_seeds,
                **dict(extra_params or {})},
               dataset, scale, profile, model=f"bag of codewords ({paper_row_of(cfg)}, masking p={r['p']:g})",
               duration_s=duration_s)
    return agg


def stored_best_masking(profile: str, dataset: str | None = None, metric: str = "mAP_1s",
                        scale: str | None = None) -> float | None:
    """The masking probability p with the highest validation 1 s mAP recorded by notebook
    ``book/bow/03_fig3_masking.ipynb`` (table ``fig3_curve``, latest record per p) for ``profile`` (and
    ``dataset`` and ``scale``); ``None`` if there is none (notebooks 04 and 05 then use their ``mask_p``
    parameter and say so)."""
    recs = load_records(CHAPTER, "fig3_curve", current=True)
    if recs.empty:
        return None
    recs = _matching(recs[(recs["profile"] == profile) & (recs["metric"] == metric)],
                     dataset=dataset, scale=scale)
    if recs.empty:
        return None
    last = recs.drop_duplicates("param.p", keep="last")
    return float(last.loc[last["value"].idxmax(), "param.p"])


def clip_items(result: HeadResult, chunks: ChunkSet, split: str = "test") -> ItemSet:
    """The per-clip outputs behind ``mAP_clip_<split>`` of ``result``: clip ids (rows of the clip
    table), clip probabilities (mean of the clip's 1 s chunk probabilities) and clip targets, as
    :func:`audiorepro.results.tagging_items` (their mAP is the recorded value)."""
    if split not in result.scores:
        raise BowError(f"clip_items: the run has no {split!r} scores (scored splits: {sorted(result.scores)}); "
                       f"run it with eval_splits including {split!r}")
    clips, cs = clip_pool(result.scores[split], chunks.chunk_clip[chunks.chunk_mask(split)])
    return results.tagging_items([f"clip{int(c)}" for c in clips], cs, chunks.targets[clips])


def _trainable(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def seed_table(runs: Mapping[str, Mapping[int, HeadResult]], models: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One line per row and seed of ``runs`` ({row: {seed: HeadResult}}): ``row``, ``seed``,
    ``model`` (``models[row]``, else the row), ``params_M`` (trainable parameters of the
    classifier), ``epochs`` and every ``mAP_*`` metric."""
    out = []
    for row, by_seed in runs.items():
        for seed, res in sorted(by_seed.items()):
            out.append({"row": row, "seed": int(seed), "model": (models or {}).get(row, row),
                        "params_M": _trainable(res.model) / 1e6, "epochs": int(res.metrics.get("epochs", 0)),
                        **{k: v for k, v in res.metrics.items() if k.startswith("mAP_")}})
    return pd.DataFrame(out)


def row_summary(seeds: pd.DataFrame, chance: float, metric: str = "mAP_clip_test") -> pd.DataFrame:
    """Per row of a :func:`seed_table`: number of seeds, mean / min / max of ``metric`` over
    seeds and the mean divided by ``chance`` (the expected mAP of a random ranking on the same
    test clips, :func:`audiorepro.backbones.pretrain.chance_map`)."""
    if not chance > 0:
        raise BowError(f"row_summary: chance must be > 0, got {chance!r}")
    g = seeds.groupby("row", sort=False)[metric]
    out = pd.DataFrame({"seeds": g.size(), "mean": g.mean(), "min": g.min(), "max": g.max()})
    out["÷ chance"] = out["mean"] / chance
    return out.reset_index().rename(columns={"mean": f"{metric} (mean)"})


def record_seed_runs(table: str, runs: Mapping[str, Mapping[int, HeadResult]], chunks: ChunkSet, profile: str,
                     dataset: str, scale: str, run_group: str, models: Mapping[str, str] | None = None,
                     params: Mapping[str, Any] | None = None, row_params: Mapping[str, Mapping[str, Any]] | None = None,
                     duration_s: float | None = None, valid_1s: bool = False, row_suffix: str = "") -> pd.DataFrame:
    """Record every row and seed of ``runs`` ({row: {seed: HeadResult}}) in ``table``: one
    record per seed, metric :data:`CLAIM_METRIC` (``mAP``) = clip-level test mAP with its
    per-clip outputs (:func:`clip_items`) for the paired bootstrap, plus every ``mAP_*`` metric
    (and, with ``valid_1s``, ``mAP_1s`` = validation 1 s mAP, the quantity of the paper's Figs. 2
    and 3). Params: ``paper_row``, ``seed``, ``run_group`` (one per notebook run, shared by every
    row it compares), ``epochs``, ``trainable_params``, ``params`` and ``row_params[row]``.
    ``row_suffix`` (from :func:`~audiorepro.papers.bow.data.load_table`: ``" | <task>"`` for a
    user's clip table) is appended to every recorded row name, so such runs never enter a claim
    or stand beside a paper number. Returns :func:`seed_table`."""
    if not run_group:
        raise BowError(f"record_seed_runs: table {table!r} needs a run_group (results.new_run_group())")
    for row, by_seed in runs.items():
        for seed, res in sorted(by_seed.items()):
            m = {k: v for k, v in res.metrics.items() if k.startswith("mAP_")}
            if "mAP_clip_test" not in m:
                raise BowError(f"record_seed_runs: table {table!r}, row {row!r}, seed {seed} has no test "
                               "clip-level mAP (score the test split)")
            metrics = {CLAIM_METRIC: m["mAP_clip_test"], **m}
            if valid_1s:
                metrics["mAP_1s"] = m["mAP_1s_valid"]
            prm = {"paper_row": f"{row}{row_suffix}", "seed": int(seed), "run_group": run_group,
                   "epochs": int(res.metrics.get("epochs", 0)), "trainable_params": _trainable(res.model),
                   **dict(params or {}), **dict((row_params or {}).get(row, {}))}
            record(CHAPTER, table, metrics, prm, dataset, scale, profile, model=(models or {}).get(row, row),
                   duration_s=duration_s, items={CLAIM_METRIC: clip_items(res, chunks)})
    return seed_table(runs, models)


def record_table1(runs: Mapping[str, Mapping[int, HeadResult]], chunks: ChunkSet, models: Mapping[str, str],
                  profile: str, dataset: str, scale: str, run_group: str,
                  duration_s: float | None = None, row_suffix: str = "") -> pd.DataFrame:
    """Record :func:`run_table1` runs per seed (table ``table1``, row = paper row or the book's
    baseline name, metric ``mAP`` = test clip-level mAP, the paper's Table I metric, with per-clip
    outputs); see :func:`record_seed_runs`."""
    return record_seed_runs("table1", runs, chunks, profile, dataset, scale, run_group, models,
                            duration_s=duration_s, row_suffix=row_suffix)


def record_beyond(runs: Mapping[str, Mapping[int, HeadResult]], chunks: ChunkSet, profile: str, dataset: str,
                  scale: str, run_group: str, params: Mapping[str, Any] | None = None,
                  duration_s: float | None = None, row_suffix: str = "") -> pd.DataFrame:
    """Record the variants of notebook 05 per seed (table ``beyond``, row = variant, metric
    ``mAP`` = test clip-level mAP with per-clip outputs); see :func:`record_seed_runs`."""
    return record_seed_runs("beyond", runs, chunks, profile, dataset, scale, run_group,
                            {row: f"{row}, MLP head" for row in runs}, params=params, duration_s=duration_s,
                            row_suffix=row_suffix)


def _manual_verdict(claim_id: str, profile: str, notebook: str, register: bool) -> results.Verdict:
    """``headline-clip-map``: an absolute mAP on FSD50K, decided only by a run on the whole FSD50K
    (the paper profile, ``params/04_table1.paper.yaml``) and by a reader (kind ``manual``): the
    verdict stays *not yet measured*, with this run's number (newest ``table1`` record of the
    profile) as evidence; on FSD50K the evidence puts it beside the paper's number."""
    recs = load_records(CHAPTER, "table1", current=True)
    if not recs.empty:
        recs = recs[(recs["profile"] == profile) & (recs["metric"] == CLAIM_METRIC)
                    & (recs["row"] == "Bag of codewords")]
    if recs.empty:
        evidence, dataset, scale = "needs FSD50K; no Table I run of this profile yet", "none", "none"
    else:
        group = recs["param.run_group"].iloc[-1] if "param.run_group" in recs else None
        last = recs[recs["param.run_group"] == group] if isinstance(group, str) else recs.tail(1)
        dataset, scale = str(last["dataset"].iloc[-1]), str(last["scale"].iloc[-1])
        run = f"clip-level test mAP {last['value'].mean():.4f} (mean of {len(last)} seed(s)) on {dataset} ({scale})"
        if dataset.startswith(f"{PAPER_SOURCE} ("):
            paper = paper_numbers(CHAPTER)
            value = paper[(paper["table"] == "table1") & (paper["row"] == "Bag of codewords")]["value"]
            evidence = (f"this run: {run}; the paper's Table I: {float(value.iloc[0]):.2f} on the whole FSD50K "
                        "(decided by a reader: only the full release and budget compare)")
        else:
            evidence = f"needs FSD50K; this run: {run}, not comparable with the paper's number"
    if register:
        results.register_verdict(CHAPTER, claim_id, "not yet measured", evidence, dataset, scale, profile,
                                 notebook=notebook, kind="manual", metric=CLAIM_METRIC)
    return results.Verdict(claim_id, "not yet measured", evidence, dataset=dataset, scale=scale, profile=profile,
                           kind="manual", metric=CLAIM_METRIC)


def decide_claims(profile: str, notebook: str, claims: Sequence[str] | None = None,
                  register: bool = True) -> pd.DataFrame:
    """Decide the claims of ``notebook`` (a name of :data:`NOTEBOOK_CLAIMS` or a path to it;
    ``claims`` overrides the list) from the records of ``profile`` with
    :func:`audiorepro.results.decide_claims` (paired bootstrap over the test clips, combined
    with seeds; the newest run group) and register each verdict. Manual claims (an absolute mAP
    on FSD50K) are *not yet measured* until an FSD50K run exists. Returns one line per claim:
    verdict, effect, 95 % interval and its width, items, seeds and the evidence."""
    where = f"{CHAPTER}/{Path(str(notebook)).stem}"
    manual = {c["id"]: (lambda cid=c["id"]: _manual_verdict(cid, profile, where, register))
              for c in results.claims(CHAPTER) if c["test"].get("kind") == "manual"}
    return results.decide_claims(CHAPTER, profile, notebook, NOTEBOOK_CLAIMS, claims,
                                 register=register, custom=manual)
