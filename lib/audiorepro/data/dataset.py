"""PyTorch datasets over a clip table: waveforms at a requested rate, targets, fixed lengths."""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from .audio import check_sample_rate, fix_length, load_audio, segment
from .cliptable import ClipTable

TargetKind = Literal["multihot", "index", "none"]


class ClipDataset(Dataset):
    """Clips of a :class:`ClipTable` as ``{"wave", "target", "index", "clip_id"}`` dicts.

    Args:
        table: the clips.
        sample_rate: waveforms are resampled to this rate.
        clip_seconds: pad/crop every clip to this length (``None`` keeps the length; then use
            batch size 1 or :func:`pad_collate`).
        crop: ``start``, ``center`` or ``random`` (random crops for training).
        target: ``multihot`` -> (C,) float32; ``index`` -> int64 class index (one label per
            clip); ``none`` -> no target.
        target_column: use this column (e.g. ``speaker``, ``pitch``) as a single-label target
            instead of ``labels``; its sorted unique values are the classes.
        segment_seconds: cut each clip into windows of this length -> wave (S, T_seg).
        seed: seed of the random crops.

    Shapes: ``wave`` (T,) or (S, T_seg) with T = clip_seconds * sample_rate.
    """

    def __init__(self, table: ClipTable, sample_rate: int = 16000, clip_seconds: float | None = 10.0,
                 crop: str = "start", target: TargetKind = "multihot",
                 target_column: str | None = None, segment_seconds: float | None = None,
                 seed: int = 0) -> None:
        self.table = table
        self.sample_rate = check_sample_rate(sample_rate, "sample_rate",
                                             f"ClipDataset of clip table {table.name!r}")
        self.clip_samples = None if clip_seconds is None else int(round(clip_seconds * sample_rate))
        self.crop = crop
        self.target = target
        self.segment_samples = None if segment_seconds is None else int(round(segment_seconds * sample_rate))
        self.generator = torch.Generator().manual_seed(seed)
        self.target_column = target_column
        if target_column is not None:
            if target_column not in table.frame.columns:
                raise KeyError(f"clip table {table.name!r} has no column {target_column!r}")
            values = table.frame[target_column].astype(str)
            self.column_classes = sorted(values.unique())
            self._column_index = {v: i for i, v in enumerate(self.column_classes)}

    @property
    def classes(self) -> list[str]:
        return self.column_classes if self.target_column else self.table.classes

    def __len__(self) -> int:
        return len(self.table)

    def load_wave(self, i: int) -> torch.Tensor:
        row = self.table.frame.iloc[i]
        start = float(row["start_s"]) if "start_s" in row and not _isnan(row["start_s"]) else 0.0
        dur = float(row["duration_s"]) if "duration_s" in row and not _isnan(row["duration_s"]) else None
        wave, _ = load_audio(self.table.audio_path(i), self.sample_rate, start_s=start, duration_s=dur)
        return wave

    def target_of(self, i: int) -> torch.Tensor | None:
        if self.target == "none":
            return None
        if self.target_column is not None:
            return torch.tensor(self._column_index[str(self.table.frame[self.target_column].iloc[i])])
        if self.target == "index":
            return torch.tensor(self.table.class_index(i))
        return torch.from_numpy(self.table.multi_hot(i))

    def __getitem__(self, i: int) -> dict:
        wave = self.load_wave(i)
        if self.clip_samples is not None:
            # In a DataLoader worker the generator object is a per-worker copy that would repeat
            # the same crops every epoch; there torch's default RNG (seeded per worker and epoch
            # by the DataLoader) is used instead.
            gen = self.generator if get_worker_info() is None else None
            wave = fix_length(wave, self.clip_samples, self.crop, gen)
        if self.segment_samples is not None:
            wave = segment(wave, self.segment_samples)
        item = {"wave": wave, "index": i, "clip_id": self.table.frame["clip_id"].iloc[i]}
        target = self.target_of(i)
        if target is not None:
            item["target"] = target
        return item


def pad_collate(items: list[dict]) -> dict:
    """Collate variable-length waves by zero-padding to the longest; adds ``length`` (B,)."""
    lengths = torch.tensor([it["wave"].shape[-1] for it in items])
    t = int(lengths.max())
    out = {"wave": torch.stack([fix_length(it["wave"], t) for it in items]), "length": lengths,
           "index": torch.tensor([it["index"] for it in items]),
           "clip_id": [it["clip_id"] for it in items]}
    if "target" in items[0]:
        out["target"] = torch.stack([it["target"] for it in items])
    return out


def _isnan(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))
