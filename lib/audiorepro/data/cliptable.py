"""The clip table: the one data format every chapter reads.

A clip table is a CSV file with one row per clip. Required columns:

========== =============================================================
clip_id    unique identifier of the clip
path       audio file, relative to the CSV's folder (or absolute)
split      ``train`` / ``valid`` / ``test`` (free text, but these are used)
labels     label names separated by ``;`` (may be empty)
========== =============================================================

Optional columns with a fixed meaning: ``fold`` (int), ``captions`` (captions separated by
``|``), ``speaker``, ``language``, ``pitch``, ``start_s`` / ``duration_s`` (a segment of a longer
file), ``source``. Any other column is kept as it is.

The label vocabulary (the order of the multi-hot target) is the sorted set of labels in the
table unless a sidecar ``<table>.classes.txt`` (one class name a line) fixes it, as for AudioSet's
527 classes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..fileio import atomic_write_text

REQUIRED_COLUMNS = ("clip_id", "path", "split", "labels")
LABEL_SEP = ";"
CAPTION_SEP = "|"


class ClipTableError(ValueError):
    """A clip table (or one of its rows) is malformed; the message names the file and row."""


def split_labels(cell: object) -> list[str]:
    """``"dog;bark"`` -> ``["dog", "bark"]``; empty/NaN -> ``[]``."""
    if cell is None or (isinstance(cell, float) and np.isnan(cell)):
        return []
    return [s.strip() for s in str(cell).split(LABEL_SEP) if s.strip()]


def join_labels(labels: Iterable[str]) -> str:
    labels = list(labels)
    for name in labels:
        if LABEL_SEP in name:
            raise ClipTableError(f"label {name!r} contains the separator {LABEL_SEP!r}")
    return LABEL_SEP.join(labels)


def split_captions(cell: object) -> list[str]:
    if cell is None or (isinstance(cell, float) and np.isnan(cell)):
        return []
    return [s.strip() for s in str(cell).split(CAPTION_SEP) if s.strip()]


def join_captions(captions: Iterable[str]) -> str:
    captions = list(captions)
    for c in captions:
        if CAPTION_SEP in c:
            raise ClipTableError(f"caption {c!r} contains the separator {CAPTION_SEP!r}")
    return CAPTION_SEP.join(captions)


@dataclass
class ClipTable:
    """A validated clip table.

    Attributes:
        frame: one row per clip (columns as in the module docstring).
        root: folder that relative ``path`` entries are resolved against.
        classes: label vocabulary; index ``i`` of a multi-hot target is ``classes[i]``.
        name: short name used in results and cache keys.
    """

    frame: pd.DataFrame
    root: Path
    classes: list[str] = field(default_factory=list)
    name: str = "clips"

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.frame = self.frame.reset_index(drop=True)
        missing = [c for c in REQUIRED_COLUMNS if c not in self.frame.columns]
        if missing:
            raise ClipTableError(f"clip table {self.name!r} lacks column(s) {missing}")
        self.frame["labels"] = self.frame["labels"].fillna("").astype(str)
        self.frame["clip_id"] = self.frame["clip_id"].astype(str)
        dup = self.frame["clip_id"][self.frame["clip_id"].duplicated()]
        if len(dup):
            raise ClipTableError(f"clip table {self.name!r}: duplicated clip_id {dup.iloc[0]!r}")
        seen = sorted({lab for cell in self.frame["labels"] for lab in split_labels(cell)})
        if not self.classes:
            self.classes = seen
        else:
            self.classes = list(self.classes)
            unknown = sorted(set(seen) - set(self.classes))
            if unknown:
                row = next(i for i, cell in enumerate(self.frame["labels"])
                           if set(split_labels(cell)) & set(unknown))
                raise ClipTableError(
                    f"clip table {self.name!r}, row {row} (clip_id "
                    f"{self.frame['clip_id'][row]!r}): unknown label(s) {unknown[:5]} "
                    f"not in the {len(self.classes)}-class vocabulary")
        self._class_index = {c: i for i, c in enumerate(self.classes)}

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.frame)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def audio_path(self, i: int) -> Path:
        p = Path(str(self.frame["path"].iloc[i]))
        return p if p.is_absolute() else self.root / p

    def labels_of(self, i: int) -> list[str]:
        return split_labels(self.frame["labels"].iloc[i])

    def captions_of(self, i: int) -> list[str]:
        if "captions" not in self.frame.columns:
            return []
        return split_captions(self.frame["captions"].iloc[i])

    def multi_hot(self, i: int) -> np.ndarray:
        """(num_classes,) float32 multi-hot target of row ``i``."""
        y = np.zeros(self.num_classes, dtype=np.float32)
        for lab in self.labels_of(i):
            y[self._class_index[lab]] = 1.0
        return y

    def class_index(self, i: int) -> int:
        """Single-label target of row ``i``; raises if the row has not exactly one label."""
        labs = self.labels_of(i)
        if len(labs) != 1:
            raise ClipTableError(
                f"clip table {self.name!r}, clip {self.frame['clip_id'].iloc[i]!r}: "
                f"class-index target needs exactly one label, found {labs}")
        return self._class_index[labs[0]]

    def targets(self) -> np.ndarray:
        """(num_clips, num_classes) multi-hot matrix of the whole table."""
        return np.stack([self.multi_hot(i) for i in range(len(self))]) if len(self) else \
            np.zeros((0, self.num_classes), np.float32)

    def subset(self, split: str | Sequence[str] | None = None, fold: int | Sequence[int] | None = None,
               exclude_fold: int | Sequence[int] | None = None) -> "ClipTable":
        """Rows of the given split(s) and/or fold(s); the vocabulary is kept."""
        mask = np.ones(len(self.frame), dtype=bool)
        if split is not None:
            splits = [split] if isinstance(split, str) else list(split)
            known = set(self.frame["split"].astype(str))
            bad = [s for s in splits if s not in known]
            if bad:
                raise ClipTableError(f"clip table {self.name!r} has no split {bad}; it has {sorted(known)}")
            mask &= self.frame["split"].astype(str).isin(splits).to_numpy()
        if fold is not None or exclude_fold is not None:
            if "fold" not in self.frame.columns:
                raise ClipTableError(f"clip table {self.name!r} has no 'fold' column")
            folds = self.frame["fold"].astype(int)
            if fold is not None:
                mask &= folds.isin(np.atleast_1d(fold)).to_numpy()
            if exclude_fold is not None:
                mask &= ~folds.isin(np.atleast_1d(exclude_fold)).to_numpy()
        return ClipTable(self.frame[mask].copy(), self.root, self.classes, self.name)

    def check_files(self) -> list[str]:
        """Clip ids whose audio file does not exist (empty list when all are there)."""
        from .audio import is_hdf5_row

        def exists(p: Path) -> bool:
            return Path(str(p).rsplit("#", 1)[0]).is_file() if is_hdf5_row(p) else p.is_file()

        return [cid for i, cid in enumerate(self.frame["clip_id"]) if not exists(self.audio_path(i))]

    def label_counts(self) -> pd.Series:
        """Number of clips per class, in vocabulary order."""
        t = self.targets()
        return pd.Series(t.sum(0).astype(int), index=self.classes, name="clips")

    def cooccurrence(self) -> np.ndarray:
        """(C, C) matrix of clip counts in which both labels occur."""
        t = self.targets()
        return t.T @ t

    def pair_lift(self, min_count: int = 1) -> pd.DataFrame:
        """Label pairs with their co-occurrence count and lift P(a, b) / (P(a) P(b)).

        Lift 1 means independent labels; > 1 labels that occur together more often than chance.
        Returns columns ``a, b, count, lift`` sorted by lift (pairs seen < ``min_count`` times dropped).
        """
        n = max(len(self), 1)
        co = self.cooccurrence()
        p = np.diag(co) / n
        rows = [(self.classes[i], self.classes[j], int(co[i, j]), (co[i, j] / n) / (p[i] * p[j]))
                for i in range(len(self.classes)) for j in range(i + 1, len(self.classes))
                if co[i, j] >= min_count]
        return pd.DataFrame(rows, columns=["a", "b", "count", "lift"]).sort_values(
            "lift", ascending=False, ignore_index=True)

    # ------------------------------------------------------------------ I/O
    @classmethod
    def read(cls, csv_path: str | os.PathLike, name: str | None = None) -> "ClipTable":
        """Read ``csv_path`` (and ``<stem>.classes.txt`` beside it if present)."""
        csv_path = Path(csv_path)
        if not csv_path.is_file():
            raise FileNotFoundError(f"clip table not found: {csv_path}")
        try:
            frame = pd.read_csv(csv_path, dtype={"clip_id": str, "labels": str, "path": str,
                                                 "split": str, "captions": str},
                                keep_default_na=False, na_values=[""])
        except Exception as exc:  # pandas raises several types
            raise ClipTableError(f"cannot parse clip table {csv_path}: {exc}") from exc
        classes_file = classes_path_for(csv_path)
        classes = [] if not classes_file.is_file() else \
            [ln.strip() for ln in classes_file.read_text().splitlines() if ln.strip()]
        try:
            return cls(frame, csv_path.parent, classes, name or csv_path.stem)
        except ClipTableError as exc:
            raise ClipTableError(f"{csv_path}: {exc}") from exc

    def write(self, csv_path: str | os.PathLike, write_classes: bool = True) -> Path:
        """Write atomically; ``path`` entries are written as given (keep them relative)."""
        csv_path = Path(csv_path)
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(csv_path, self.frame.to_csv(index=False))
        if write_classes:
            atomic_write_text(classes_path_for(csv_path), "\n".join(self.classes) + "\n")
        return csv_path


def classes_path_for(csv_path: Path) -> Path:
    return csv_path.with_name(csv_path.stem + ".classes.txt")
