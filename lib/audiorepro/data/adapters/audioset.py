"""AudioSet: the segment CSVs, the PANNs-style packed HDF5 copy, and the TMac feature file.

HDF5 path convention
--------------------
Rows that point into an HDF5 file use ``path = "<file>.h5#<index>"``: the file (relative to the
table's root, like any path) and the 0-based row in its datasets. :func:`read_hdf5_clip` reads such
a path; ``data/audio.py`` ``load_audio`` does not know the convention yet (it needs a hook that
dispatches ``#``-paths to :func:`read_hdf5_clip`).
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..audio import read_hdf5_clip, split_hdf5_path  # packed-clip reading is audio I/O
from ..cliptable import ClipTable
from ._common import (AdapterError, OnMissing, check_label_text, finish, log, read_csv,
                      require_columns, require_file)

AUDIOSET_SUBSETS = {"balanced_train": ("balanced_train_segments.csv", "train"),
                    "eval": ("eval_segments.csv", "test"),
                    "unbalanced_train": ("unbalanced_train_segments.csv", "train")}


def read_class_labels(path: str | os.PathLike) -> pd.DataFrame:
    """``class_labels_indices.csv`` (``index,mid,display_name``; names quoted when they contain a
    comma) -> frame sorted by index, checked to be 0..C-1 with unique mids."""
    path = Path(path)
    df = read_csv(path, "AudioSet class_labels_indices.csv")
    require_columns(df, ["index", "mid", "display_name"], path)
    try:
        df["index"] = df["index"].astype(int)
    except ValueError as exc:
        raise AdapterError(f"{path}: non-integer index: {exc}") from None
    df = df.sort_values("index").reset_index(drop=True)
    if list(df["index"]) != list(range(len(df))):
        raise AdapterError(f"{path}: indices are not 0..{len(df) - 1}")
    dup = df["mid"][df["mid"].duplicated()]
    if len(dup):
        raise AdapterError(f"{path}: duplicated mid {dup.iloc[0]!r}")
    return df


def read_segments_csv(path: str | os.PathLike) -> pd.DataFrame:
    """An AudioSet segments CSV -> frame ``ytid, start_s, end_s, mids (list), line``.

    Format (Google's release; read the same way by qiuqiangkong/audioset_tagging_cnn
    ``utils/dataset.py`` ``read_metadata``): three ``#`` header lines, then
    ``YTID, start_seconds, end_seconds, "mid1,mid2,..."`` with a space after each comma.
    """
    path = require_file(Path(path), "AudioSet segments CSV")
    rows = []
    with open(path, newline="") as f:
        for n, rec in enumerate(csv.reader(f, skipinitialspace=True), 1):
            if not rec or rec[0].startswith("#"):
                continue
            if len(rec) != 4:
                raise AdapterError(f"{path}, line {n}: expected 4 fields 'YTID, start, end, "
                                   f"\"mids\"', got {len(rec)}: {rec[:5]}")
            try:
                start, end = float(rec[1]), float(rec[2])
            except ValueError:
                raise AdapterError(f"{path}, line {n}: start/end {rec[1]!r}, {rec[2]!r} are not "
                                   f"numbers") from None
            mids = [m.strip() for m in rec[3].split(",") if m.strip()]
            rows.append((rec[0].strip(), start, end, mids, n))
    return pd.DataFrame(rows, columns=["ytid", "start_s", "end_s", "mids", "line"])


def audioset(root: str | os.PathLike, out_csv: str | os.PathLike | None = None,
             on_missing: OnMissing = "error",
             subsets: Sequence[str] = ("balanced_train", "eval"),
             audio_pattern: str = "{subset_dir}/Y{ytid}.wav",
             metadata_dir: str = ".", label_key: str = "mid") -> ClipTable:
    """AudioSet clips from the segment CSVs and ``class_labels_indices.csv`` (527 classes).

    ``subsets``: any of ``balanced_train``, ``eval`` (-> split ``test``), ``unbalanced_train``.
    ``audio_pattern`` formats the audio path (relative to ``root``) with ``ytid``, ``start``
    (float seconds; e.g. ``'{ytid}_{start:.3f}.wav'``), ``end``, ``subset`` and ``subset_dir``
    (the CSV name without ``.csv``, e.g. ``balanced_train_segments``); the default is the PANNs
    download layout (``Y`` + YouTube id, because ids may begin with ``-``). ``label_key``:
    ``mid`` (labels are the MIDs) or ``name`` (display names, which must then be unique).
    Classes follow ``class_labels_indices.csv`` order. A MID absent from it, or a YouTube id twice
    in one subset, is an error naming the file and line. Missing audio: see ``on_missing``.
    Columns added: ``ytid``, ``start_s_in_video``, ``end_s_in_video``, ``subset``.
    """
    root = Path(root)
    subsets = [subsets] if isinstance(subsets, str) else list(subsets)   # "eval", not "e","v",...
    mdir = root / metadata_dir
    labels_df = read_class_labels(mdir / "class_labels_indices.csv")
    name_of = dict(zip(labels_df["mid"], labels_df["display_name"]))
    classes = _classes(labels_df, label_key, mdir / "class_labels_indices.csv")
    frames = []
    for subset in subsets:
        if subset not in AUDIOSET_SUBSETS:
            raise ValueError(f"unknown AudioSet subset {subset!r}; known: {list(AUDIOSET_SUBSETS)}")
        fname, split = AUDIOSET_SUBSETS[subset]
        path = mdir / fname
        seg = read_segments_csv(path)
        seen: dict[str, int] = {}
        for y, n in zip(seg["ytid"], seg["line"]):
            if y in seen:
                raise AdapterError(f"{path}: YouTube id {y!r} at lines {seen[y]} and {n}")
            seen[y] = n
        labels = []
        for mids, n in zip(seg["mids"], seg["line"]):
            unknown = [m for m in mids if m not in name_of]
            if unknown:
                raise AdapterError(f"{path}, line {n}: mid(s) {unknown} not in "
                                   f"class_labels_indices.csv")
            labels.append(";".join(mids if label_key == "mid" else [name_of[m] for m in mids]))
        subset_dir = fname[:-4]
        paths = [audio_pattern.format(ytid=y, start=s, end=e, subset=subset, subset_dir=subset_dir)
                 for y, s, e in zip(seg["ytid"], seg["start_s"], seg["end_s"])]
        frames.append(pd.DataFrame({
            "clip_id": seg["ytid"], "path": paths, "split": split, "labels": labels,
            "ytid": seg["ytid"], "start_s_in_video": seg["start_s"],
            "end_s_in_video": seg["end_s"], "subset": subset, "source": "AudioSet"}))
    frame = pd.concat(frames, ignore_index=True)
    dup = frame["clip_id"][frame["clip_id"].duplicated()]
    if len(dup):
        raise AdapterError(f"AudioSet: YouTube id {dup.iloc[0]!r} is in more than one of {subsets}")
    return finish(frame, root, classes, "audioset", out_csv, on_missing)


def _classes(labels_df: pd.DataFrame, label_key: str, path: Path) -> list[str]:
    if label_key == "mid":
        return list(labels_df["mid"])
    if label_key != "name":
        raise ValueError(f"label_key must be 'mid' or 'name', got {label_key!r}")
    names = list(labels_df["display_name"])
    dup = pd.Series(names)[pd.Series(names).duplicated()]
    if len(dup):
        raise AdapterError(f"{path}: display name {dup.iloc[0]!r} is not unique; use "
                           f"label_key='mid'")
    check_label_text(names, path)
    return names


# ------------------------------------------------------------------ PANNs packed waveform HDF5


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a dependency
        raise ImportError("reading HDF5 files needs h5py (pip install h5py)") from exc
    return h5py


def audioset_hdf5(root: str | os.PathLike, out_csv: str | os.PathLike | None = None,
                  on_missing: OnMissing = "error",
                  files: dict[str, str] | None = None,
                  class_labels_csv: str = "class_labels_indices.csv",
                  label_key: str = "mid") -> ClipTable:
    """Clip table over PANNs-style packed waveform HDF5 files (``path = "<file>#<row>"``).

    Layout written by qiuqiangkong/audioset_tagging_cnn ``utils/dataset.py``
    ``pack_waveforms_to_hdf5``: datasets ``audio_name`` (N,) ``S20`` = ``Y<ytid>.wav``,
    ``waveform`` (N, T) int16 (10 s at the ``sample_rate`` attribute, 32 kHz there), ``target``
    (N, 527) bool in ``class_labels_indices.csv`` order. Clips that failed to download keep an
    empty ``audio_name`` and a zero waveform: they are reported as missing audio (``on_missing``).
    ``files`` maps HDF5 paths (relative to ``root``) to splits; default
    ``{"balanced_train.h5": "train", "eval.h5": "test"}``. ``class_labels_csv`` is relative to
    ``root`` unless absolute.
    """
    h5py = _h5py()
    root = Path(root)
    files = files or {"balanced_train.h5": "train", "eval.h5": "test"}
    cpath = root / class_labels_csv
    labels_df = read_class_labels(cpath)
    classes = _classes(labels_df, label_key, cpath)
    frames = []
    for rel, split in files.items():
        path = require_file(root / rel, "AudioSet HDF5")
        try:
            with h5py.File(path, "r") as hf:
                for key in ("audio_name", "waveform", "target"):
                    if key not in hf:
                        raise AdapterError(f"{path}: no dataset {key!r}; has {list(hf.keys())}")
                names = [n.decode() if isinstance(n, bytes) else str(n) for n in hf["audio_name"][:]]
                target = np.asarray(hf["target"][:], dtype=bool)
                n_samples = int(hf["waveform"].shape[1])
                sr = int(hf.attrs.get("sample_rate", 0)) or None
        except OSError as exc:
            raise AdapterError(f"cannot read HDF5 {path}: {exc}") from exc
        if target.ndim != 2 or target.shape[1] != len(classes) or target.shape[0] != len(names):
            raise AdapterError(f"{path}: target shape {target.shape} does not match "
                               f"{len(names)} clips x {len(classes)} classes of {cpath.name}")
        empty = [i for i, n in enumerate(names) if not n]
        if empty:
            msg = (f"{path}: {len(empty)} of {len(names)} rows have no audio_name (not packed; "
                   f"first rows {empty[:5]})")
            if on_missing == "error":
                raise AdapterError(msg + "; pass on_missing='drop' to leave them out")
            log.warning("%s; dropped", msg)
        keep = [i for i, n in enumerate(names) if n]
        frames.append(pd.DataFrame({
            "clip_id": [_ytid_of(names[i]) for i in keep],
            "path": [f"{rel}#{i}" for i in keep], "split": split,
            "labels": [";".join(classes[j] for j in np.flatnonzero(target[i])) for i in keep],
            "audio_name": [names[i] for i in keep], "hdf5_index": keep,
            "num_samples": n_samples, "sample_rate": sr, "source": "AudioSet(PANNs hdf5)"}))
    frame = pd.concat(frames, ignore_index=True)
    dup = frame["clip_id"][frame["clip_id"].duplicated()]
    if len(dup):
        raise AdapterError(f"AudioSet HDF5: clip {dup.iloc[0]!r} occurs twice in {list(files)}")
    return finish(frame, root, classes, "audioset_hdf5", out_csv, "keep")


def _ytid_of(audio_name: str) -> str:
    stem = audio_name[:-4] if audio_name.endswith(".wav") else audio_name
    return stem[1:] if stem.startswith("Y") else stem


# ------------------------------------------------------------------------ TMac feature file


def read_tmac_features(path: str | os.PathLike, audio_dim: int = 128, video_dim: int = 1024,
                       arrays: bool = True) -> dict[str, Any]:
    """Read the TMac / THGCL AudioSet feature file ``AudioSet_embedds_all.h5``.

    Real layout, from the loader of the code TMac builds on (AmirSh15/VAED_HeterGraph
    ``utils/dataloader.py`` ``AudioSetGraphDataset``; the TMac README points there): datasets
    ``audio`` (N, P_a, 128) VGGish segment embeddings, ``video`` (N, P_v, 1024) S3D embeddings,
    ``label`` (N,) ASCII class name per clip, ``audio_add`` / ``video_add`` (N,) ASCII source
    addresses, ``unique_labels`` (C,) ASCII class names whose order defines the class index.
    The official file has P_a = 101, P_v = 40 (its folder Output_clip_len_0.25_audio_101 and
    the TMac code), C = 33 (THGCL paper, section 3.1.1). A file whose ``label`` is instead a
    numeric (N, C) multi-hot matrix (the layout first assumed) is also accepted; then
    ``unique_labels`` is optional.

    Returns a dict: ``audio`` float32 (N, P_a, audio_dim), ``video`` float32 (N, P_v, video_dim),
    ``target`` float32 (N, C) multi-hot, ``label_index`` int64 (N,) (argmax of ``target``),
    ``classes`` list[str] (C), ``label`` list[str] (N) (``;``-joined names), ``audio_add`` /
    ``video_add`` list[str] (N) (empty strings when absent), ``audio_shape`` / ``video_shape``
    (tuples). With ``arrays=False`` the node features are not read (``audio`` / ``video`` are
    ``None``; shapes and labels are checked as usual): an AudioSet-size file (~18 GB) is then
    indexed without loading it; read its rows on demand with h5py.
    """
    h5py = _h5py()
    path = require_file(Path(path), "TMac feature file")
    try:
        hf = h5py.File(path, "r")
    except OSError as exc:
        raise AdapterError(f"cannot read HDF5 {path}: {exc}") from exc
    with hf:
        for key in ("audio", "video", "label"):
            if key not in hf:
                raise AdapterError(f"{path}: no dataset {key!r}; has {list(hf.keys())}")
        audio_shape, video_shape = tuple(hf["audio"].shape), tuple(hf["video"].shape)
        audio = np.asarray(hf["audio"][()], dtype=np.float32) if arrays else None
        video = np.asarray(hf["video"][()], dtype=np.float32) if arrays else None
        raw_label = hf["label"][()]
        classes = [_text(c) for c in hf["unique_labels"][()]] if "unique_labels" in hf else None
        adds = {k: [_text(a) for a in hf[k][()]] if k in hf else None
                for k in ("audio_add", "video_add")}
    n = audio_shape[0]
    if len(audio_shape) != 3 or audio_shape[2] != audio_dim:
        raise AdapterError(f"{path}: 'audio' has shape {audio_shape}, expected (N, P_a, {audio_dim})")
    if len(video_shape) != 3 or video_shape[2] != video_dim or video_shape[0] != n:
        raise AdapterError(f"{path}: 'video' has shape {video_shape}, expected ({n}, P_v, "
                           f"{video_dim})")
    raw_label = np.asarray(raw_label)
    if raw_label.ndim == 1 and raw_label.dtype.kind in "SOU":
        names = [_text(x) for x in raw_label]
        if classes is None:
            raise AdapterError(f"{path}: string labels need the 'unique_labels' dataset")
        index_of = {c: i for i, c in enumerate(classes)}
        bad = [i for i, nm in enumerate(names) if nm not in index_of]
        if bad:
            raise AdapterError(f"{path}: clip {bad[0]} has label {names[bad[0]]!r} not in "
                               f"unique_labels ({len(bad)} such clips)")
        label_index = np.array([index_of[nm] for nm in names], dtype=np.int64)
        target = np.zeros((len(names), len(classes)), dtype=np.float32)
        target[np.arange(len(names)), label_index] = 1.0
    elif raw_label.ndim == 2 and raw_label.dtype.kind in "biuf":
        target = raw_label.astype(np.float32)
        if classes is None:
            classes = [str(i) for i in range(target.shape[1])]
        if target.shape[1] != len(classes):
            raise AdapterError(f"{path}: 'label' has {target.shape[1]} columns but "
                               f"{len(classes)} unique_labels")
        label_index = target.argmax(axis=1).astype(np.int64)
        names = [";".join(classes[j] for j in np.flatnonzero(row > 0)) for row in target]
    else:
        raise AdapterError(f"{path}: 'label' has shape {raw_label.shape} dtype {raw_label.dtype}; "
                           f"expected (N,) strings or (N, C) multi-hot")
    if target.shape[0] != n:
        raise AdapterError(f"{path}: {target.shape[0]} labels for {n} clips")
    return {"audio": audio, "video": video, "target": target, "label_index": label_index,
            "classes": list(classes), "label": names, "audio_shape": audio_shape,
            "video_shape": video_shape,
            "audio_add": adds["audio_add"] or [""] * n, "video_add": adds["video_add"] or [""] * n}


def tmac_features(root: str | os.PathLike, out_csv: str | os.PathLike | None = None,
                  on_missing: OnMissing = "error",
                  file: str = "AudioSet_embedds_all.h5") -> ClipTable:
    """Clip table over the TMac feature file: one row per clip, ``path = "<file>#<row>"``.

    The file has no official split (THGCL's config splits 0.7/0.1/0.2 stratified at training
    time), so ``split="all"``. ``clip_id`` = row index (zero-padded); ``audio_add`` /
    ``video_add`` kept. The rows hold features, not audio: read them with
    :func:`read_tmac_features`.
    """
    root = Path(root)
    feats = read_tmac_features(root / file, arrays=False)   # labels only: the file may be ~18 GB
    n = len(feats["label"])
    width = max(1, len(str(n - 1)))
    frame = pd.DataFrame({"clip_id": [f"{i:0{width}d}" for i in range(n)],
                          "path": [f"{file}#{i}" for i in range(n)], "split": "all",
                          "labels": feats["label"], "audio_add": feats["audio_add"],
                          "video_add": feats["video_add"], "source": "TMac AudioSet features"})
    check_label_text(feats["classes"], root / file)
    return finish(frame, root, feats["classes"], "tmac_features", out_csv, on_missing)


def _text(x: object) -> str:
    return x.decode("ascii", errors="replace") if isinstance(x, bytes) else str(x)
