"""Data of the bag-of-codewords chapter: the 1 s log-mel chunks of a clip table and the matching
1 s waveforms (paper section III-A: one second of audio = one 96 x 100 chunk).

* :class:`ChunkSet` / :func:`compute_chunks` - every clip log-melled with the ``bow_96`` front end
  and cut into non-overlapping 1 s chunks, cached under ``cache/bow/chunks/``;
* :func:`chunk_waves` - the (M, 16000) waveforms of the same chunks (input of the Table I
  baselines);
* :func:`load_table` - the notebooks' data: the synthetic world, FSD50K through the clip table its
  adapter writes (:func:`audiorepro.data.adapters.classification.fsd50k`; the paper's rows), or a
  user's clip table (rows of the user's task).

:data:`CACHE_CODE` names the code every cached artefact of the chapter depends on (the ``code``
part of each :func:`audiorepro.caching.run_key`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from audiorepro.progress import tqdm

from audiorepro import caching, paths
from audiorepro.data.audio import fix_length, load_audio
from audiorepro.data.cliptable import ClipTable, split_sizes
from audiorepro.fileio import atomic_write
from audiorepro.frontends import make_frontend, preset_config
from audiorepro.training import pick_device

from .model import BowError, chunk_spectrogram

__all__ = ["CACHE_CODE", "ChunkSet", "compute_chunks", "chunk_waves", "save_npz", "load_table", "scale_label", "SPLITS",
           "PAPER_SOURCE"]

#: the splits every table of the chapter needs (train: encoders, codebooks, heads; valid:
#: selection and early stopping; test: the claims)
SPLITS = ("train", "valid", "test")

#: Source the chapter's caches depend on: a change in any of them gives new cache keys.
CACHE_CODE = ("audiorepro.papers.bow", *caching.CORE_TRAINING_CODE, "audiorepro.data.audio")


def save_npz(path: Any, **arrays: np.ndarray) -> None:
    """``np.savez`` of ``arrays`` to ``path`` atomically (:func:`audiorepro.fileio.atomic_write`)."""
    atomic_write(path, lambda f: np.savez(f, **arrays), binary=True)


@dataclass
class ChunkSet:
    """The 1 s log-mel chunks of a clip table.

    Attributes:
        spec: (M, n_mels, n_frames) float16 log-mel chunks (not standardised).
        chunk_clip: (M,) int64 row of ``table`` each chunk comes from (chunks of a clip are
            consecutive, in time order).
        targets: (N, K) float32 clip multi-hot targets (``table.targets()``).
        table: the clip table (N rows).
        key: the chunk cache key (data fingerprint, front end, code); the data part of every
            later cache key.
        max_seconds: the clip length the chunks were cut from (each clip's first
            ``max_seconds``; ``None``: whole clips), as given to :func:`compute_chunks`.
    """

    spec: np.ndarray
    chunk_clip: np.ndarray
    targets: np.ndarray
    table: ClipTable
    key: str
    max_seconds: float | None = 10.0

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


def compute_chunks(table: ClipTable, frontend: str = "bow_96", max_seconds: float | None = 10.0,
                   cache: bool = True, progress: bool = False, device: str | torch.device = "auto") -> ChunkSet:
    """Log-mel every clip of ``table`` with the ``frontend`` preset and cut it into 1 s chunks.

    A clip is read up to ``max_seconds`` (default 10 s: the synthetic world's clip length;
    ``None`` reads whole clips, e.g. FSD50K's clips of up to 30 s), its spectrogram cut with
    :func:`~audiorepro.papers.bow.model.chunk_spectrogram`; clips shorter than 1 s give one padded
    chunk. The front end runs on ``device`` (``"auto"``: see
    :func:`audiorepro.training.pick_device`). Cached under ``cache/bow/chunks/<key>.npz``; the key
    is :func:`audiorepro.caching.run_key` of the front-end config and ``max_seconds``, the
    table's fingerprint (rows, classes, name, root) and :data:`CACHE_CODE`.
    """
    cfg = preset_config(frontend)
    frames_per_s = cfg.sample_rate // cfg.hop_length
    data = {"table": caching.table_fingerprint(table), "name": table.name, "root": str(table.root)}
    key = caching.run_key({"frontend": cfg.to_dict(), "max_seconds": max_seconds}, data=data, code=CACHE_CODE)
    path = paths.cache_dir("bow", "chunks", f"{key}.npz")
    targets = table.targets()
    if cache and path.is_file():
        with np.load(path) as z:
            return ChunkSet(z["spec"], z["chunk_clip"], targets, table, key, max_seconds)
    dev = pick_device(device)
    fe = make_frontend(frontend, device=dev)
    specs, owner = [], []
    for i in tqdm(range(len(table)), desc="log-mel chunks", disable=not progress):
        start, dur = _clip_window(table, i, max_seconds)
        wave, _ = load_audio(table.audio_path(i), sample_rate=cfg.sample_rate, start_s=start, duration_s=dur)
        if wave.shape[0] < cfg.sample_rate:
            wave = fix_length(wave, cfg.sample_rate)
        with torch.no_grad():
            s = fe(wave.to(dev)).cpu()  # (n_mels, frames)
        ch = chunk_spectrogram(s, frames_per_s)
        specs.append(ch.numpy().astype(np.float16))
        owner.append(np.full(len(ch), i, dtype=np.int64))
    spec = np.concatenate(specs) if specs else np.zeros((0, cfg.n_mels, frames_per_s), np.float16)
    chunk_clip = np.concatenate(owner) if owner else np.zeros(0, np.int64)
    if cache:
        save_npz(path, spec=spec, chunk_clip=chunk_clip)
    return ChunkSet(spec, chunk_clip, targets, table, key, max_seconds)


def chunk_waves(chunks: ChunkSet) -> np.ndarray:
    """(M, sample_rate) float32 one-second waveforms aligned with ``chunks`` (chunk ``j`` of clip
    ``i`` = samples ``[j s, (j + 1) s)`` of the clip, as :func:`compute_chunks` cuts the
    spectrogram, from the same clip window ``chunks.max_seconds``); a short clip is zero-padded
    to its chunk count. Sample rate: the ``bow_96`` front end's (16 kHz)."""
    sr = preset_config("bow_96").sample_rate
    max_seconds = chunks.max_seconds
    table = chunks.table
    out = np.zeros((len(chunks.chunk_clip), sr), np.float32)
    for i in np.unique(chunks.chunk_clip):
        pos = np.flatnonzero(chunks.chunk_clip == i)
        start, dur = _clip_window(table, int(i), max_seconds)
        wave, _ = load_audio(table.audio_path(int(i)), sample_rate=sr, start_s=start, duration_s=dur)
        wave = fix_length(wave, len(pos) * sr) if wave.shape[0] < len(pos) * sr else wave[: len(pos) * sr]
        out[pos] = wave.reshape(len(pos), sr).numpy()
    return out


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


#: the ``source`` value the FSD50K adapter (:func:`audiorepro.data.adapters.classification.fsd50k`)
#: writes in every row: a table of it is the paper's dataset (Table I, Figs. 2-3)
PAPER_SOURCE = "FSD50K"


def load_table(clip_table: str | Path | None = None, data_root: str | Path | None = None, n_clips: int = 24,
               seed: int = 0, task: str | None = None,
               max_per_split: Mapping[str, int | None] | None = None) -> tuple[ClipTable, str, str]:
    """The data of a notebook: ``(table, dataset, row_suffix)``.

    ``max_per_split`` (e.g. ``{"train": 140, "valid": 40, "test": 200}``) keeps at most that many
    clips of each named split (:meth:`ClipTable.cap_splits`, drawn with ``seed``, every class
    kept where the cap allows): the book draws a large test split from a large world while the
    training split, and so the training time, stays small. :func:`scale_label` names the counts.

    Without ``clip_table``: the synthetic world ``default_world(n_clips, seed)``, dataset
    ``"synthetic world (seed <seed>)"`` and no row suffix (its rows are the rows the claims of
    ``paper.yml`` compare). With ``clip_table`` (a clip-table CSV in the project's format; relative
    audio paths resolved against ``data_root`` when given, else the CSV's folder):

    * FSD50K as its adapter writes it (:func:`audiorepro.data.adapters.classification.fsd50k`:
      every row's ``source`` is :data:`PAPER_SOURCE`) and no ``task``: the paper's dataset, so
      dataset ``"FSD50K (<clip_table>, <K> classes)"`` and no row suffix (the runs are recorded
      under the paper's rows and decide its claims);
    * any other table, or a ``task`` name: dataset ``"clip table <task>"`` (``task`` defaults to
      the table's name) and the row suffix ``" | <task>"``, so that the runs are recorded under
      the user's task and never beside a paper number or in a claim's rows.

    Every split of :data:`SPLITS` needs at least one clip."""
    if not clip_table:
        from audiorepro.data.synthetic import default_world
        world = default_world(n_clips=n_clips, seed=seed, progress=False)
        return world.table.cap_splits(max_per_split, seed=seed), f"synthetic world (seed {seed})", ""
    table = ClipTable.read(paths.project_path(clip_table))
    if data_root:
        table = table.with_root(paths.project_path(data_root))
    splits = set(table.frame["split"].astype(str))
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        raise BowError(f"clip table {clip_table}: no clip in split(s) {missing} (the chapter needs {list(SPLITS)}: "
                       "train fits encoders and heads, valid selects, test decides)")
    table = table.cap_splits(max_per_split, seed=seed)
    sources = set(table.frame["source"].astype(str)) if "source" in table.frame.columns else set()
    if not task and sources == {PAPER_SOURCE}:
        return table, f"{PAPER_SOURCE} ({clip_table}, {table.num_classes} classes)", ""
    name = task or table.name
    return table, f"clip table {name}", f" | {name}"


def scale_label(table: ClipTable, clip_seconds: float, chunks: ChunkSet) -> str:
    """The ``scale`` of a notebook's records: clips per split, seconds read, 1 s chunks, e.g.
    ``"380 clips (train 140 / valid 40 / test 200; first 10 s), 3800 1 s chunks"``."""
    return f"{len(table)} clips ({split_sizes(table.frame, SPLITS)}; first {clip_seconds:g} s), {len(chunks.spec)} 1 s chunks"
