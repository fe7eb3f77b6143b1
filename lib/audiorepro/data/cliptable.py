"""The clip table: the one data format every chapter reads.

A clip table is a CSV file with one row per clip. Required columns:

========== =============================================================
clip_id    unique identifier of the clip
path       audio file, relative to the CSV's folder (or absolute)
split      ``train`` / ``valid`` / ``test`` (free text, but these are used; ``val``,
           ``validation`` and ``dev`` are read as ``valid``, with one logged line)
labels     label names separated by ``;`` (may be empty)
========== =============================================================

Optional columns with a fixed meaning: ``fold`` (int), ``captions`` (captions separated by
``|``), ``speaker``, ``language``, ``pitch``, ``start_s`` / ``duration_s`` (a segment of a longer
file), ``source``. Any other column is kept as it is.

The label vocabulary (the order of the multi-hot target) is the sorted set of labels in the
table unless a sidecar ``<table>.classes.txt`` (one class name a line, UTF-8 with or without a
byte-order mark) fixes it, as for AudioSet's 527 classes.

Checks (:class:`ClipTableError` naming the row and clip id): empty ``clip_id`` or ``path``,
duplicated ``clip_id``, labels outside a fixed vocabulary, a ``start_s`` that is not a number
>= 0, a ``duration_s`` that is not > 0, and - for a table resolved against a data root
(``ClipTable.read(csv, root=...)`` or :meth:`ClipTable.with_root`) - a path that leads outside
that root (``../../etc/passwd`` or an absolute path elsewhere). Without an explicit root, paths
are resolved against the CSV's folder and may leave it (the Debian task tables point to
``../<source>/audio``).

Subsampling: :meth:`ClipTable.subsample` draws a deterministic seeded subset of ``n`` rows
that keeps every class of the table when ``n`` allows (the rarest classes are covered first);
use it rather than the first ``n`` rows, which in a table sorted by label hold a few classes.

Duplicated audio is reported, not refused (tests and segment tables reuse files):
:meth:`ClipTable.duplicate_rows` groups rows that use the same file (and segment), or with
``content=True`` the same file bytes (SHA-1; this reads every file); :meth:`ClipTable.check`
lists every problem as a sentence naming the rows and their splits; reading a table logs the
same-path duplicates at WARNING; :meth:`ClipTable.drop_duplicates` keeps the first row of each
group and logs one line. ``python -m audiorepro.data.cliptable check TABLE.csv [--content]
[--root DIR]`` prints the report and exits 1 when there is a problem.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..fileio import atomic_write_text, file_digest

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("clip_id", "path", "split", "labels")
#: split names read as ``valid`` (compared after stripping blanks, case-insensitive)
SPLIT_ALIASES = {"val": "valid", "validation": "valid", "dev": "valid"}
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


def normalise_splits(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """``frame`` with the split aliases of :data:`SPLIT_ALIASES` (``val``, ``validation``,
    ``dev``, any case) renamed ``valid``; one INFO line names ``where`` (the file or table) and
    the aliases it mapped. Other values are kept as they are."""
    if "split" not in frame.columns:
        return frame
    raw = frame["split"]
    key = raw.where(raw.isna(), raw.astype(str).str.strip().str.lower())
    alias = key.isin(list(SPLIT_ALIASES)).to_numpy()
    if not alias.any():
        return frame
    frame = frame.copy()
    found = sorted(set(raw[alias].astype(str)))
    frame.loc[alias, "split"] = "valid"
    log.info("%s: split name(s) %s read as 'valid' (%d row(s))", where,
             ", ".join(repr(f) for f in found), int(alias.sum()))
    return frame


def split_sizes(frame: pd.DataFrame, splits: Sequence[str] = ("train", "valid", "test")) -> str:
    """``train 140 / valid 40 / test 200``: rows per split of a frame with a ``split`` column."""
    counts = frame["split"].astype(str).value_counts()
    return " / ".join(f"{s} {int(counts.get(s, 0))}" for s in splits)


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
        confine: refuse rows whose path leads outside ``root`` (set by ``read(..., root=...)``
            and :meth:`with_root`).
    """

    frame: pd.DataFrame
    root: Path
    classes: list[str] = field(default_factory=list)
    name: str = "clips"
    confine: bool = False

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.frame = normalise_splits(self.frame.reset_index(drop=True), f"clip table {self.name!r}")
        missing = [c for c in REQUIRED_COLUMNS if c not in self.frame.columns]
        if missing:
            raise ClipTableError(f"clip table {self.name!r} lacks column(s) {missing}")
        for col in ("clip_id", "path"):
            empty = self.frame[col].isna() | (self.frame[col].astype(str).str.strip() == "")
            if empty.any():
                row = int(np.flatnonzero(empty.to_numpy())[0])
                other = "path" if col == "clip_id" else "clip_id"
                raise ClipTableError(
                    f"clip table {self.name!r}, row {row} ({other} "
                    f"{self.frame[other].iloc[row]!r}): empty {col} ({int(empty.sum())} such "
                    f"row(s))")
        self.frame["labels"] = self.frame["labels"].fillna("").astype(str)
        self.frame["clip_id"] = self.frame["clip_id"].astype(str)
        dup = self.frame["clip_id"][self.frame["clip_id"].duplicated()]
        if len(dup):
            first = int(np.flatnonzero((self.frame["clip_id"] == dup.iloc[0]).to_numpy())[0])
            raise ClipTableError(f"clip table {self.name!r}: duplicated clip_id {dup.iloc[0]!r} "
                                 f"(rows {first} and {int(dup.index[0])})")
        self._check_segments()
        if self.confine:
            outside = self.rows_outside_root()
            if outside:
                i = outside[0]
                raise ClipTableError(
                    f"clip table {self.name!r}, row {i} (clip_id "
                    f"{self.frame['clip_id'].iloc[i]!r}): path "
                    f"{str(self.frame['path'].iloc[i])!r} leads outside the data root "
                    f"{self.root} ({len(outside)} such row(s))")
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

    def _check_segments(self) -> None:
        """``start_s`` must be a number >= 0 and ``duration_s`` > 0 where given (empty = whole)."""
        for col, low, op in (("start_s", 0.0, ">="), ("duration_s", 0.0, ">")):
            if col not in self.frame.columns:
                continue
            raw = self.frame[col]
            given = raw.notna() & (raw.astype(str).str.strip() != "")
            num = pd.to_numeric(raw.where(given), errors="coerce")
            bad_text = given & num.isna()
            bad_value = num.notna() & ~np.isfinite(num.astype(float)) | \
                ((num < low) if op == ">=" else (num <= low))
            bad = (bad_text | bad_value).to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ClipTableError(
                    f"clip table {self.name!r}, row {i} (clip_id {self.frame['clip_id'].iloc[i]!r}): "
                    f"{col} {_cell_text(raw.iloc[i])} must be a number {op} 0 (seconds; empty = "
                    f"{'from the start' if col == 'start_s' else 'to the end'}) "
                    f"({int(bad.sum())} such row(s))")
            self.frame[col] = num

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.frame)

    def with_root(self, root: str | os.PathLike) -> "ClipTable":
        """The same clips resolved against ``root`` (a data root): a row whose path leads outside
        ``root`` raises :class:`ClipTableError` naming it."""
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"clip table {self.name!r}: data root {root} is not a folder")
        return ClipTable(self.frame.copy(), root, self.classes, self.name, confine=True)

    def rows_outside_root(self) -> list[int]:
        """Rows whose path (after ``..`` is applied, symlinks not followed) is not under ``root``."""
        from .audio import is_hdf5_row

        prefix = os.path.normpath(os.path.abspath(self.root)).rstrip(os.sep) + os.sep
        files = [p.rsplit("#", 1)[0] if "#" in p and is_hdf5_row(p) else p for p in self._file_keys()]
        return [i for i, p in enumerate(files) if not (p + os.sep).startswith(prefix)]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def audio_path(self, i: int) -> Path:
        p = Path(str(self.frame["path"].iloc[i]))
        return p if p.is_absolute() else self.root / p

    def labels_of(self, i: int) -> list[str]:
        return split_labels(self.frame["labels"].iloc[i])

    def row_of(self, clip_id: str) -> int:
        """Position of the clip ``clip_id`` in the table (KeyError naming it when absent)."""
        hit = np.flatnonzero((self.frame["clip_id"].astype(str) == str(clip_id)).to_numpy())
        if not len(hit):
            raise KeyError(f"clip table {self.name!r} has no clip {clip_id!r}")
        return int(hit[0])

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
        return ClipTable(self.frame[mask].copy(), self.root, self.classes, self.name, self.confine)

    def subsample(self, n: int, seed: int = 0) -> "ClipTable":
        """A deterministic subset of ``n`` rows (the same for the same ``n`` and ``seed``) that
        keeps every class present in this table when ``n`` allows; rows stay in table order.

        Cover first: the classes are taken rarest first (ties in vocabulary order); for each
        class not yet covered, the row holding it that covers most uncovered classes is kept
        (ties broken by a permutation drawn from ``seed``) - one row per class for single-label
        tables. Then rows drawn at random (same permutation) fill up to ``n``. When ``n`` is
        too small to keep every class, one WARNING line names the classes left out. ``n`` at
        or above the table's length returns the table itself.
        """
        n = int(n)
        if n < 0:
            raise ValueError(f"clip table {self.name!r}: subsample size {n} must be >= 0")
        if n >= len(self):
            return self
        order = np.random.default_rng(seed).permutation(len(self))
        rank = np.empty(len(self), dtype=int)
        rank[order] = np.arange(len(self))
        labels = [set(self.labels_of(i)) for i in range(len(self))]
        counts: dict[str, int] = {}
        for labs in labels:
            for lab in labs:
                counts[lab] = counts.get(lab, 0) + 1
        uncovered = set(counts)
        chosen: list[int] = []
        taken = np.zeros(len(self), dtype=bool)
        for cls_ in sorted(counts, key=lambda c: (counts[c], self._class_index.get(c, -1), c)):
            if len(chosen) >= n:
                break
            if cls_ not in uncovered:
                continue
            cands = [i for i in range(len(self)) if not taken[i] and cls_ in labels[i]]
            best = max(cands, key=lambda i: (len(labels[i] & uncovered), -rank[i]))
            chosen.append(best)
            taken[best] = True
            uncovered -= labels[best]
        for i in order:
            if len(chosen) >= n:
                break
            if not taken[i]:
                chosen.append(int(i))
                taken[i] = True
        if uncovered:
            left = sorted(uncovered, key=lambda c: self._class_index.get(c, -1))
            log.warning("clip table %r: a subsample of %d of %d clips (seed %d) leaves out %d of "
                        "%d classes: %s%s", self.name, n, len(self), seed, len(left), len(counts),
                        ", ".join(left[:10]), " ..." if len(left) > 10 else "")
        keep = np.sort(np.asarray(chosen, dtype=int))
        return ClipTable(self.frame.iloc[keep].copy(), self.root, self.classes, self.name,
                         self.confine)

    def cap_splits(self, caps: Mapping[str, int | None] | None, seed: int = 0) -> "ClipTable":
        """At most ``caps[split]`` clips of each named split, drawn within the split by
        :meth:`subsample` (every class of the split kept when the cap allows; ``seed`` fixes the
        draw); splits not named, or capped at ``None``, stay whole. Rows stay in table order.

        >>> t.cap_splits({"train": 140, "valid": 40, "test": 200})   # doctest: +SKIP
        """
        if not caps:
            return self
        known = set(self.frame["split"].astype(str))
        unknown = sorted(s for s, cap in caps.items() if cap is not None and s not in known)
        if unknown:
            raise ClipTableError(f"clip table {self.name!r}: cap for split(s) {unknown} it does not "
                                 f"have; it has {sorted(known)}")
        keep = np.ones(len(self.frame), dtype=bool)
        for split, cap in caps.items():
            if cap is None:
                continue
            if int(cap) < 0:
                raise ValueError(f"clip table {self.name!r}: cap {cap} of split {split!r} must be >= 0")
            in_split = (self.frame["split"].astype(str) == split).to_numpy()
            kept = set(self.subset(split).subsample(int(cap), seed=seed).frame["clip_id"])
            keep &= ~in_split | self.frame["clip_id"].isin(kept).to_numpy()
        return ClipTable(self.frame[keep].copy(), self.root, self.classes, self.name, self.confine)

    def check_files(self) -> list[str]:
        """Clip ids whose audio file does not exist (empty list when all are there)."""
        return [cid for i, cid in enumerate(self.frame["clip_id"])
                if not Path(_file_part(self.audio_path(i))).is_file()]

    # ------------------------------------------------------------------ duplicates
    def _file_keys(self) -> list[str]:
        """Per row: the audio path made absolute with ``.`` / ``..`` applied (symlinks not
        followed), the same file as :meth:`audio_path` gives; one key per file."""
        base = os.path.abspath(self.root)
        return [os.path.normpath(os.path.join(base, p)) for p in self.frame["path"].astype(str)]

    def _segment_keys(self) -> list[tuple]:
        """Per row: ``(start_s, duration_s)`` with ``""`` where not given."""
        cols = [self.frame[c].tolist() if c in self.frame.columns else [None] * len(self.frame)
                for c in ("start_s", "duration_s")]
        return [tuple("" if v is None or pd.isna(v) else float(v) for v in pair) for pair in zip(*cols)]

    def content_hash(self, i: int) -> str:
        """SHA-1 of row ``i``'s audio bytes: the whole file, or for ``file.h5#row`` the packed
        row's samples. Raises ``FileNotFoundError`` naming the file when it is absent."""
        from .audio import is_hdf5_row, read_hdf5_clip

        p = self.audio_path(i)
        if is_hdf5_row(p):
            wave, _ = read_hdf5_clip(p)
            return hashlib.sha1(np.ascontiguousarray(wave).tobytes()).hexdigest()
        return file_digest(p, "sha1", progress=False)

    def _duplicate_groups(self, content: bool) -> list[tuple[str, list[int]]]:
        """``(kind, rows)`` pairs: kind ``path`` (same file and segment) or ``content`` (same
        file bytes and segment, not all on one path)."""
        files, segs = self._file_keys(), self._segment_keys()
        keys = pd.Series([(f,) + g for f, g in zip(files, segs)], dtype=object)
        groups = [("path", list(map(int, g)))
                  for g in keys[keys.duplicated(keep=False)].groupby(keys).groups.values()]
        if content:
            by_hash: dict[tuple, list[int]] = {}
            hashes: dict[str, str | None] = {}
            for i, (p, seg) in enumerate(zip(files, segs)):
                if p not in hashes:
                    try:
                        hashes[p] = self.content_hash(i)
                    except (OSError, KeyError, IndexError, ValueError):
                        hashes[p] = None   # missing/unreadable: reported by check_files
                if hashes[p] is not None:
                    by_hash.setdefault((hashes[p],) + seg, []).append(i)
            seen = {tuple(g) for _, g in groups}
            groups += [("content", g) for g in by_hash.values() if len(g) > 1 and tuple(g) not in seen]
        return sorted(groups, key=lambda kg: (kg[1], kg[0]))

    def duplicate_rows(self, content: bool = False) -> list[list[int]]:
        """Groups (lists of >= 2 row indices, in row order) of rows that use the same audio file
        and segment; with ``content=True`` also rows whose files have the same bytes (SHA-1 of
        every file: reads them all). Rows whose file is missing are left out of the content
        comparison (:meth:`check_files` reports them)."""
        return [g for _, g in self._duplicate_groups(content)]

    def describe_rows(self, rows: Sequence[int]) -> str:
        """``row 3 (clip_id 'x', split train)`` for each row, joined by commas."""
        return ", ".join(f"row {i} (clip_id {self.frame['clip_id'].iloc[i]!r}, split "
                         f"{self.frame['split'].iloc[i]})" for i in rows)

    def check(self, content: bool = False, files: bool = True) -> list[str]:
        """Problems of the table as sentences naming the rows: missing audio files (``files``),
        rows that share an audio file (and segment), and with ``content=True`` rows whose audio
        files have identical bytes (reads every file). Duplicates spanning splits are flagged as
        leakage. Empty list: no problem found."""
        problems = []
        if files:
            missing = self.check_files()
            if missing:
                problems.append(f"clip table {self.name!r}: {len(missing)} audio file(s) missing "
                                f"(first clip ids: {missing[:5]})")
        for kind, g in self._duplicate_groups(content):
            splits = sorted(set(self.frame["split"].iloc[g].astype(str)))
            paths = list(dict.fromkeys(str(self.frame["path"].iloc[i]) for i in g))
            what = (f"use the same audio file {paths[0]!r}" if kind == "path" else
                    f"have identical audio content ({', '.join(repr(p) for p in paths[:4])})")
            leak = f" - across splits {'/'.join(splits)}" if len(splits) > 1 else ""
            problems.append(f"clip table {self.name!r}: {self.describe_rows(g)} {what}{leak}")
        return problems

    def drop_duplicates(self, content: bool = True) -> "ClipTable":
        """The table without the later rows of each :meth:`duplicate_rows` group (the first row
        in table order is kept); one WARNING line names the dropped rows."""
        groups = self.duplicate_rows(content)
        drop = sorted({i for g in groups for i in g[1:]})
        if not drop:
            return self
        first_of = {}
        for g in groups:
            for i in g[1:]:
                first_of.setdefault(i, g[0])
        pairs = [f"{self.frame['clip_id'].iloc[i]!r} (= {self.frame['clip_id'].iloc[k]!r})"
                 for i, k in sorted(first_of.items())]
        log.warning("clip table %r: dropped %d row(s) whose audio duplicates an earlier row "
                    "(same %s): %s%s", self.name, len(drop), "file bytes" if content else "file",
                    ", ".join(pairs[:10]), " ..." if len(pairs) > 10 else "")
        keep = np.ones(len(self.frame), dtype=bool)
        keep[drop] = False
        return ClipTable(self.frame[keep].copy(), self.root, self.classes, self.name, self.confine)

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
    def read(cls, csv_path: str | os.PathLike, name: str | None = None,
             root: str | os.PathLike | None = None) -> "ClipTable":
        """Read ``csv_path`` (and ``<stem>.classes.txt`` beside it if present).

        Relative paths are resolved against ``root`` when given - and must then stay inside it -
        else against the CSV's folder. Rows that share an audio file are logged at WARNING.
        """
        csv_path = Path(csv_path)
        if csv_path.is_dir():
            raise ClipTableError(f"clip table {csv_path} is a directory, not a CSV file")
        if not csv_path.is_file():
            raise FileNotFoundError(f"clip table not found: {csv_path}")
        if root is not None and not Path(root).is_dir():
            raise FileNotFoundError(f"clip table {csv_path}: data root {root} is not a folder")
        try:
            frame = pd.read_csv(csv_path, dtype={"clip_id": str, "labels": str, "path": str,
                                                 "split": str, "captions": str},
                                keep_default_na=False, na_values=[""], encoding="utf-8-sig")
        except Exception as exc:  # pandas raises several types
            raise ClipTableError(f"cannot parse clip table {csv_path}: {exc}") from exc
        classes_file = classes_path_for(csv_path)
        try:
            classes = [] if not classes_file.is_file() else \
                [ln.strip() for ln in classes_file.read_text(encoding="utf-8-sig").splitlines()
                 if ln.strip()]
        except UnicodeDecodeError as exc:
            raise ClipTableError(f"{classes_file} is not UTF-8 text: {exc}") from exc
        frame = normalise_splits(frame, str(csv_path))
        try:
            table = cls(frame, csv_path.parent if root is None else Path(root), classes,
                        name or csv_path.stem, confine=root is not None)
        except ClipTableError as exc:
            raise ClipTableError(f"{csv_path}: {exc}") from exc
        problems = table.check(content=False, files=False)
        for problem in problems[:5]:
            log.warning("%s: %s", csv_path, problem)
        if len(problems) > 5:
            log.warning("%s: ... and %d more groups of rows sharing an audio file (see "
                        "ClipTable.check())", csv_path, len(problems) - 5)
        return table

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


def _cell_text(value: object) -> str:
    """A cell as the user wrote it: numbers plain (``-0.5``), text quoted (``'soon'``)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return repr(float(value)) if isinstance(value, (float, np.floating)) else str(int(value))
    return repr(str(value))


def _file_part(path: Path) -> str:
    """The file of a row path: ``x.h5#3`` -> ``x.h5``; other paths unchanged."""
    from .audio import is_hdf5_row

    return str(path).rsplit("#", 1)[0] if is_hdf5_row(path) else str(path)


def main(argv: Sequence[str] | None = None) -> int:
    """``check TABLE.csv [--content] [--root DIR]``: print the table's problems; exit 1 if any."""
    parser = argparse.ArgumentParser(prog="python -m audiorepro.data.cliptable",
                                     description="Check a clip table")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="missing files, duplicated audio (by path / content)")
    p.add_argument("table")
    p.add_argument("--content", action="store_true",
                   help="also compare file contents (SHA-1 of every file: reads them all)")
    p.add_argument("--root", default=None, help="data root the paths are resolved against")
    args = parser.parse_args(argv)
    try:
        table = ClipTable.read(args.table, root=args.root)
    except (ClipTableError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems = table.check(content=args.content)
    for line in problems:
        print(line)
    print(f"{args.table}: {len(table)} clips, "
          + (f"{len(problems)} problem(s)" if problems else "no problem found"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
