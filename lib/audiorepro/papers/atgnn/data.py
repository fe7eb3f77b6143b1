"""Tagging tensors of the ATGNN chapter: the synthetic world or a clip table as log-mel features.

:func:`tagging_data` turns the book's clips into time-major features ``(N, frames, n_mels)`` with
multi-hot targets, split train / valid / test, standardised with the training split's statistics
(:func:`audiorepro.preprocessing.standardise`), and gives them a fingerprint that keys the run
caches of :mod:`audiorepro.papers.atgnn.experiments`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from audiorepro import caching, paths
from audiorepro.metrics import random_ranking_map
from audiorepro.data.cliptable import ClipTable
from audiorepro.data.dataset import ClipDataset
from audiorepro.data.synthetic import default_world
from audiorepro.frontends import CachedFeatureDataset, make_frontend
from audiorepro.preprocessing import standardise
from audiorepro.training import pick_device

__all__ = ["TaggingData", "tagging_data"]

SPLITS = ("train", "valid", "test")
#: ``source`` values the official adapters write (audiorepro.data.adapters.audioset / fsd50k)
OFFICIAL_SOURCES = ("AudioSet", "FSD50K")


@dataclass
class TaggingData:
    """Tensors of one tagging task. ``x_*``: (N, frames, n_mels) float32; ``y_*``: (N, S) 0/1.

    ``fingerprint`` identifies the data (source table or world, front end, length, caps); it is
    part of every run-cache key, so :func:`tagging_data` always sets it.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]
    description: str
    clip_ids_test: list[str] = field(default_factory=list)
    fingerprint: str = ""
    #: "AudioSet" / "FSD50K" when the clip table was made by that dataset's official adapter
    #: (its ``source`` column), whatever the number of classes present; "" otherwise
    official_dataset: str = ""
    #: the front end the features come from (:func:`audiorepro.frontends.make_frontend` name)
    frontend: str = ""

    @property
    def input_size(self) -> tuple[int, int]:
        """(n_mels, frames) - the (F, T) of the paper."""
        return int(self.x_train.shape[2]), int(self.x_train.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def cooccurrence(self, split: str = "train") -> np.ndarray:
        """(S, S) clip counts where both labels occur, in ``split``."""
        y = getattr(self, f"y_{split}").numpy()
        return y.T @ y

    @property
    def task(self) -> str:
        """``synthetic world`` or the clip table's file stem (the user's task name)."""
        d = self.description
        if d.startswith("synthetic world"):
            return "synthetic world"
        if d.startswith("clip table "):
            return Path(d[len("clip table "):].split(" (")[0]).stem
        return d.split(",")[0]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "valid": len(self.y_valid), "test": len(self.y_test)}

    def chance_map(self) -> float:
        """Expected test mAP of random scores (:func:`audiorepro.metrics.random_ranking_map`)."""
        return random_ranking_map(self.y_test)


def _fit_frames(f: torch.Tensor, frames: int, mode: str) -> torch.Tensor:
    """(n_mels, T) -> (frames, n_mels): ``pool`` = average-pool in time (CPU-sized inputs),
    ``crop_pad`` = keep the first ``frames`` frames, zero-pad shorter clips (the paper's input)."""
    if mode == "pool":
        return F.adaptive_avg_pool1d(f[None], frames)[0].T
    if mode == "crop_pad":
        f = f[:, :frames]
        return F.pad(f, (0, frames - f.shape[1])).T
    raise ValueError(f"tagging_data: time_mode={mode!r} must be 'pool' or 'crop_pad'")


def _standardise_global(xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """One mean and one std (ddof 0) over every training value (all frames and mel bins):
    ``preprocessing.standardise`` on the values as a single column. xs[0] is the training split."""
    cols = standardise(*(x.reshape(-1, 1) for x in xs))
    return [torch.from_numpy(c).reshape(x.shape) for c, x in zip(cols, xs)]


def tagging_data(n_clips: int = 200, seed: int = 0, frontend: str | None = None, frames: int = 128,
                 world: Any = None, progress: bool = False, clip_table: str | Path | None = None,
                 data_root: str | Path | None = None, max_train: int | None = None,
                 max_valid: int | None = None, time_mode: str = "pool",
                 clip_seconds: float | None = 10.0, device: str = "auto",
                 standardise_features: bool = True) -> TaggingData:
    """Tagging tensors from the synthetic world (default) or from a clip table on disk.

    Data source: ``clip_table`` (a :class:`~audiorepro.data.cliptable.ClipTable` CSV, e.g. the
    AudioSet-balanced or FSD50K table written by :mod:`audiorepro.data.adapters`; relative audio
    paths are resolved against ``data_root`` when given, else against the CSV's folder; relative
    ``clip_table`` / ``data_root`` that do not exist from the working folder are taken relative
    to the project home). A table without a ``valid`` split (AudioSet) gets every 20th training
    clip as validation clip. Without ``clip_table``: the synthetic world
    ``default_world(n_clips, seed)`` (or ``world``).
    Front end ``frontend`` (default ``kaldi_fbank_128`` for a clip table - the paper's 128-bin
    fbank - and ``logmel_64`` for the synthetic world; run on ``device`` and cached on disk by
    :class:`~audiorepro.frontends.FeatureCache`); clips are cut / padded to ``clip_seconds``.
    Time axis: ``time_mode="pool"`` average-pools to ``frames`` frames (CPU-sized input),
    ``"crop_pad"`` keeps the first ``frames`` frames and zero-pads (the paper's 1024 / 1056).
    ``max_train`` / ``max_valid`` keep that many clips of those splits, drawn with ``seed`` by
    :meth:`~audiorepro.data.cliptable.ClipTable.subsample` so that every class of the split
    stays when the cap allows (not the first rows: a table sorted by label would keep a few
    classes); the test split is always complete. Features are standardised with one mean and
    one standard deviation (ddof 0) of all training values, unless ``standardise_features`` is
    False (a released model's own front end, whose first batch norm holds the statistics of the
    raw values: the PANNs row). Classes without a training clip are kept (their AP is
    undefined and left out by the metrics).
    Returns x_*: (N, frames, n_mels) float32, y_*: (N, S), and the data fingerprint.
    """
    if frames < 16:
        raise ValueError(f"tagging_data: frames={frames} must be >= 16")
    holdout = ""
    if clip_table is not None:
        table = ClipTable.read(paths.project_path(clip_table))
        if data_root is not None:
            root = paths.project_path(data_root)
            if not root.is_dir():
                raise FileNotFoundError(f"tagging_data: data_root {data_root} is not a folder")
            table = table.with_root(root)   # refuses clip paths that leave the data root
        frontend = frontend or "kaldi_fbank_128"
        source = f"clip table {Path(clip_table).name} ({table.num_classes} classes)"
        if not (table.frame["split"] == "valid").any():
            # AudioSet has no validation split: hold out every 20th training clip
            train_pos = np.flatnonzero(table.frame["split"].to_numpy() == "train")
            table.frame.loc[train_pos[::20], "split"] = "valid"
            holdout = ", valid = every 20th train clip"
        origin = {"table": caching.table_fingerprint(table), "root": str(table.root)}
        sources = set(table.frame["source"].astype(str)) if "source" in table.frame.columns else set()
        official = sources.pop() if len(sources) == 1 and sources <= set(OFFICIAL_SOURCES) else ""
    else:
        world = world if world is not None else default_world(n_clips, seed, progress=progress)
        table = world.table
        frontend = frontend or "logmel_64"
        source = f"synthetic world n{len(table)} seed {seed} ({table.num_classes} classes)"
        origin = {"world": caching.stable_digest(world.config)}
        official = ""
    fe = make_frontend(frontend, time_major=False)
    dev = pick_device(device)
    caps = {"train": max_train, "valid": max_valid, "test": None}
    for split in SPLITS:
        if not (table.frame["split"] == split).any():
            raise ValueError(f"tagging_data: {source} has no clip in split {split!r}")
    table = table.cap_splits(caps, seed=seed)     # keeps every class the cap allows
    out: dict[str, tuple[torch.Tensor, torch.Tensor, list[str]]] = {}
    for split in SPLITS:
        sub = table.subset(split)
        ds = CachedFeatureDataset(ClipDataset(sub, sample_rate=fe.sample_rate,
                                              clip_seconds=clip_seconds), fe, device=dev)
        feats, ys, ids = [], [], []
        for i in range(len(ds)):
            item = ds[i]
            f = torch.as_tensor(item["features"]).float()          # (n_mels, frames_full)
            feats.append(_fit_frames(f, frames, time_mode))        # (frames, n_mels)
            ys.append(torch.as_tensor(item["target"]).float())
            ids.append(str(item["clip_id"]))
        out[split] = (torch.stack(feats), torch.stack(ys), ids)
    xs = (_standardise_global([out[s][0] for s in SPLITS]) if standardise_features
          else [out[s][0] for s in SPLITS])
    how = "pooled to" if time_mode == "pool" else "cropped/padded to"
    desc = f"{source}, {frontend} {how} {frames} frames{holdout}"
    if max_train is not None or max_valid is not None:
        desc += ", " + ", ".join(f"{split} capped at {cap}" for split, cap in
                                 (("train", max_train), ("valid", max_valid)) if cap is not None)
    if not standardise_features:
        desc += ", not standardised"
    fingerprint = caching.stable_digest({
        "origin": origin, "frontend": frontend, "frames": frames, "time_mode": time_mode,
        "clip_seconds": clip_seconds, "caps": caps, "classes": list(table.classes),
        "subsample": "classes kept, seed %d" % seed if any(caps.values()) else "",
        **({} if standardise_features else {"standardised": False})})
    return TaggingData(xs[0], out["train"][1], xs[1], out["valid"][1], xs[2], out["test"][1],
                       classes=list(table.classes), description=desc, clip_ids_test=out["test"][2],
                       fingerprint=fingerprint, official_dataset=official, frontend=frontend)
