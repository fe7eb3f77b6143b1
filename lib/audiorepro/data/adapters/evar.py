"""EVAR-style metadata CSVs: the split definitions the multilayer-fusion paper's authors used.

The authors evaluate inside their package EVAR (nttcslab/eval-audio-repr). Each task has a
metadata CSV ``evar/metadata/<task>.csv`` with columns ``file_name,label`` and either ``split``
(``train``/``valid``/``test``) or ``fold`` (leave-one-fold-out cross-validation), read by
``evar/data.py`` ``WavDataset``; some files carry a leading unnamed index column (written by
``DataFrame.to_csv`` without ``index=False`` in ``evar/utils/make_metadata.py``) and extra columns
(``cremad.csv``: ``file_name,label,speaker_id,split``). Multi-label rows separate labels with
``,``. ``file_name`` is relative to the task's audio folder (EVAR's ``work/16k/<task>``), which is
``root`` here.

:func:`evar_task` reads any of the nine fusion tasks (esc50, us8k, spcv2, vc1, voxforge, cremad,
gtzan, nsynth, surge) from such a CSV; :func:`cremad`, :func:`voxforge` and :func:`surge` add the
checks and columns specific to those datasets.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..cliptable import ClipTable
from ._common import (SPLITS, AdapterError, OnMissing, check_label_text, check_unique, finish,
                      read_csv, require_columns, strip_ext)

EVAR_TASKS = ("esc50", "us8k", "spcv2", "vc1", "voxforge", "cremad", "gtzan", "nsynth", "surge")
CREMAD_EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy",
                   "NEU": "neutral", "SAD": "sad"}


def read_evar_metadata(csv_path: str | os.PathLike) -> pd.DataFrame:
    """Read an EVAR metadata CSV as text, dropping a leading unnamed index column.

    Returns a frame with at least ``file_name``, ``label`` and ``split`` or ``fold``; rows whose
    ``split`` is empty (EVAR's gtzan.csv leaves files outside the filtered split without one) are
    dropped.
    """
    path = Path(csv_path)
    df = read_csv(path, "EVAR metadata CSV")
    unnamed = [c for c in df.columns if c == "" or str(c).startswith("Unnamed:")]
    df = df.drop(columns=unnamed)
    require_columns(df, ["file_name", "label"], path)
    if "split" not in df.columns and "fold" not in df.columns:
        raise AdapterError(f"{path}: needs a 'split' or a 'fold' column (EVAR WavDataset rule); "
                           f"found {list(df.columns)}")
    if "split" in df.columns:
        empty = df["split"].str.strip() == ""
        df = df[~empty].reset_index(drop=True)
        df.attrs["dropped_unsplit"] = int(empty.sum())
        bad = ~df["split"].isin(SPLITS)
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise AdapterError(f"{path}: split {df['split'].iloc[i]!r} of file "
                               f"{df['file_name'].iloc[i]!r} is not one of {SPLITS}")
    return df


def evar_task(task: str, root: str | os.PathLike, metadata_csv: str | os.PathLike,
              out_csv: str | os.PathLike | None = None, on_missing: OnMissing = "error") -> ClipTable:
    """Clip table of one EVAR task from its metadata CSV; audio under ``root``.

    ``label`` cells with ``,`` become ``;``-separated multi-labels. Without a ``split`` column the
    table has ``split="cv"`` and the ``fold`` column (EVAR holds out one fold as test). Other
    columns are kept (``speaker_id`` is copied to ``speaker``).
    """
    frame, classes = _evar_frame(task, metadata_csv)
    return finish(frame, Path(root), classes, task, out_csv, on_missing)


def _evar_frame(task: str, metadata_csv: str | os.PathLike) -> tuple[pd.DataFrame, list[str]]:
    path = Path(metadata_csv)
    df = read_evar_metadata(path)
    check_unique(list(df["file_name"]), path, "file_name")
    labels = [";".join(s.strip() for s in str(cell).split(",") if s.strip()) for cell in df["label"]]
    check_label_text([lab for cell in labels for lab in cell.split(";")], path)
    frame = pd.DataFrame({"clip_id": df["file_name"].map(strip_ext), "path": df["file_name"],
                          "split": df["split"] if "split" in df.columns else "cv",
                          "labels": labels})
    if "fold" in df.columns:
        try:
            frame["fold"] = df["fold"].astype(int)
        except ValueError as exc:
            raise AdapterError(f"{path}: non-integer fold: {exc}") from None
    for col in df.columns:
        if col not in ("file_name", "label", "split", "fold"):
            frame[col] = df[col]
    if "speaker_id" in df.columns:
        frame["speaker"] = df["speaker_id"]
    frame["source"] = f"EVAR:{task}"
    classes = sorted({lab for cell in labels for lab in cell.split(";") if lab})
    return frame, classes


def cremad(root: str | os.PathLike, metadata_csv: str | os.PathLike,
           out_csv: str | os.PathLike | None = None, on_missing: OnMissing = "error") -> ClipTable:
    """CREMA-D emotion recognition with EVAR's speaker-disjoint split (``cremad.csv``).

    File names are ``<ActorID>_<Sentence>_<Emotion>_<Level>.wav`` (e.g. ``1001_DFA_ANG_XX.wav``);
    the label must equal the emotion code in the file name (checked). Columns added: ``speaker``
    (actor id), ``sentence``, ``level``, ``emotion`` (long name). EVAR's split: 63/9/19 speakers
    (nttcslab/eval-audio-repr ``evar/utils/download_cremad.py``, after the NOSS benchmark).
    """
    frame, classes = _evar_frame("cremad", metadata_csv)
    parts = frame["path"].map(lambda p: Path(str(p)).stem.split("_"))
    for i, (p, lab) in enumerate(zip(parts, frame["labels"])):
        if len(p) != 4 or p[2] not in CREMAD_EMOTIONS:
            raise AdapterError(f"{metadata_csv}: file {frame['path'].iloc[i]!r} is not "
                               f"ActorID_Sentence_Emotion_Level.wav")
        if p[2] != lab:
            raise AdapterError(f"{metadata_csv}: file {frame['path'].iloc[i]!r} has emotion "
                               f"{p[2]!r} in its name but label {lab!r}")
    frame["speaker"] = [p[0] for p in parts]
    frame["sentence"] = [p[1] for p in parts]
    frame["level"] = [p[3] for p in parts]
    frame["emotion"] = [CREMAD_EMOTIONS[p[2]] for p in parts]
    return finish(frame, Path(root), classes, "cremad", out_csv, on_missing)


def voxforge(root: str | os.PathLike, metadata_csv: str | os.PathLike,
             out_csv: str | os.PathLike | None = None, on_missing: OnMissing = "error") -> ClipTable:
    """VoxForge language identification with EVAR's split (``voxforge.csv``; labels = language).

    EVAR downloads the archives listed by TFDS and defines labels and splits in
    ``evar/metadata/voxforge.csv`` (nttcslab/eval-audio-repr ``evar/utils/download_voxforge.py``);
    the stored material did not include that CSV, so its columns are assumed to be the EVAR
    standard ``file_name,label,split``; ``language`` is added as a copy of the label.
    """
    frame, classes = _evar_frame("voxforge", metadata_csv)
    frame["language"] = frame["labels"]
    return finish(frame, Path(root), classes, "voxforge", out_csv, on_missing)


def surge(root: str | os.PathLike, metadata_csv: str | os.PathLike | None = None,
          tone_splits_csv: str | os.PathLike | None = None,
          out_csv: str | os.PathLike | None = None, on_missing: OnMissing = "error") -> ClipTable:
    """Pitch Audio Dataset (Surge synthesizer; Turian et al.), label = pitch (file stem).

    Either EVAR's ``surge.csv`` (``metadata_csv``) or, as EVAR builds it
    (``evar/utils/make_metadata.py`` ``surge``), the folder layout ``<tone>/<pitch>.ogg`` plus
    ``evar/predefined/dataset_surge_tone_splits.csv`` (columns ``tone,split``: whole tones are
    split train/valid/test). Adds ``tone`` and ``pitch`` columns.
    """
    root = Path(root)
    if metadata_csv is not None:
        frame, _ = _evar_frame("surge", metadata_csv)
    else:
        if tone_splits_csv is None:
            raise AdapterError("surge: pass metadata_csv (EVAR surge.csv) or tone_splits_csv "
                               "(EVAR dataset_surge_tone_splits.csv)")
        tpath = Path(tone_splits_csv)
        tones = read_csv(tpath, "Surge tone split CSV")
        require_columns(tones, ["tone", "split"], tpath)
        check_unique(list(tones["tone"]), tpath, "tone")
        bad = ~tones["split"].isin(SPLITS)
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise AdapterError(f"{tpath}, line {i + 2}: split {tones['split'].iloc[i]!r}")
        split_of = dict(zip(tones["tone"], tones["split"]))
        files = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.ogg"))
        if not files:
            raise AdapterError(f"surge: no <tone>/<pitch>.ogg under {root}")
        unknown = sorted({f.split("/")[0] for f in files} - set(split_of))
        if unknown:
            raise AdapterError(f"surge: {len(unknown)} tone folder(s) under {root} are not in "
                               f"{tpath} (first: {unknown[0]!r})")
        frame = pd.DataFrame({"clip_id": [strip_ext(f) for f in files], "path": files,
                              "split": [split_of[f.split("/")[0]] for f in files],
                              "labels": [Path(f).stem for f in files], "source": "EVAR:surge"})
    frame["tone"] = frame["path"].map(lambda p: str(p).split("/")[0])
    frame["pitch"] = frame["labels"]
    classes = sorted(set(frame["labels"]), key=_pitch_key)
    return finish(frame, root, classes, "surge", out_csv, on_missing)


def _pitch_key(label: str) -> tuple:
    try:
        return (0, int(label), "")
    except ValueError:
        return (1, 0, label)
