"""Adapters for the labelled classification datasets, from their metadata exactly as distributed.

Every function returns a :class:`~audiorepro.data.cliptable.ClipTable` whose ``path`` entries are
relative to ``root`` (the dataset folder as unpacked) and whose splits/folds follow the dataset's
official protocol. Splits are ``train`` / ``valid`` / ``test``; datasets evaluated by
cross-validation get ``split="cv"`` and a ``fold`` column (use ``table.subset(fold=k)`` and
``table.subset(exclude_fold=k)``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..cliptable import ClipTable
from ._common import (AdapterError, OnMissing, check_label_text, check_unique, finish, log,
                      read_csv, require_columns, require_file, strip_ext)

# ----------------------------------------------------------------------------------- ESC-50


def esc50(root: str | os.PathLike, out_csv: str | os.PathLike | None = None,
          on_missing: OnMissing = "error") -> ClipTable:
    """ESC-50 (Piczak 2015) from ``meta/esc50.csv``; audio in ``audio/``.

    Columns as distributed: ``filename,fold,target,category,esc10,src_file,take`` (confirmed in
    soundata/soundata ``soundata/datasets/esc50.py`` and nttcslab/eval-audio-repr
    ``evar/utils/make_metadata.py``). Protocol: 5-fold cross-validation on the given folds, so
    ``split="cv"`` and ``fold`` in 1..5. Class order = ``target`` 0..49.
    Extra columns kept: ``target``, ``esc10`` (bool), ``src_file``, ``take``.
    """
    root = Path(root)
    meta = root / "meta" / "esc50.csv"
    df = read_csv(meta, "ESC-50 metadata")
    require_columns(df, ["filename", "fold", "target", "category", "esc10", "src_file", "take"], meta)
    check_unique(list(df["filename"]), meta, "filename")
    folds = _int_column(df, "fold", meta, allowed=range(1, 6))
    targets = _int_column(df, "target", meta)
    classes = _classes_from_index(targets, df["category"], meta, "target", "category")
    check_label_text(df["category"], meta)
    frame = pd.DataFrame({
        "clip_id": df["filename"].map(strip_ext), "path": "audio/" + df["filename"],
        "split": "cv", "labels": df["category"], "fold": folds, "target": targets,
        "esc10": df["esc10"].str.strip().str.lower().eq("true"), "src_file": df["src_file"],
        "take": df["take"], "source": "ESC-50"})
    return finish(frame, root, classes, "esc50", out_csv, on_missing)


# ----------------------------------------------------------------------------- UrbanSound8K


def us8k(root: str | os.PathLike, out_csv: str | os.PathLike | None = None,
         on_missing: OnMissing = "error") -> ClipTable:
    """UrbanSound8K (Salamon et al. 2014) from ``metadata/UrbanSound8K.csv``.

    Columns as distributed: ``slice_file_name,fsID,start,end,salience,fold,classID,class``
    (layout used by nttcslab/eval-audio-repr ``evar/utils/make_metadata.py``: audio at
    ``audio/fold<k>/<slice_file_name>``). Protocol: 10-fold cross-validation on the given folds
    (``split="cv"``). Class order = ``classID`` 0..9. ``start``/``end`` locate the slice in the
    original Freesound recording (not in the slice file) and are kept as ``fs_start_s`` /
    ``fs_end_s``; ``fsID`` -> ``src_file``; ``salience`` kept.
    """
    root = Path(root)
    meta = root / "metadata" / "UrbanSound8K.csv"
    df = read_csv(meta, "UrbanSound8K metadata")
    require_columns(df, ["slice_file_name", "fsID", "start", "end", "salience", "fold",
                         "classID", "class"], meta)
    check_unique(list(df["slice_file_name"]), meta, "slice_file_name")
    folds = _int_column(df, "fold", meta, allowed=range(1, 11))
    class_ids = _int_column(df, "classID", meta)
    classes = _classes_from_index(class_ids, df["class"], meta, "classID", "class")
    check_label_text(df["class"], meta)
    frame = pd.DataFrame({
        "clip_id": df["slice_file_name"].map(strip_ext),
        "path": [f"audio/fold{f}/{n}" for f, n in zip(folds, df["slice_file_name"])],
        "split": "cv", "labels": df["class"], "fold": folds, "class_id": class_ids,
        "src_file": df["fsID"], "fs_start_s": pd.to_numeric(df["start"], errors="coerce"),
        "fs_end_s": pd.to_numeric(df["end"], errors="coerce"),
        "salience": pd.to_numeric(df["salience"], errors="coerce"), "source": "UrbanSound8K"})
    return finish(frame, root, classes, "us8k", out_csv, on_missing)


# ----------------------------------------------------------------------------------- FSD50K


def fsd50k(root: str | os.PathLike, out_csv: str | os.PathLike | None = None,
           on_missing: OnMissing = "error") -> ClipTable:
    """FSD50K (Fonseca et al. 2022) from ``FSD50K.ground_truth/{dev,eval,vocabulary}.csv``.

    Format (soundata/soundata ``tests/resources/sound_datasets/fsd50k/FSD50K.ground_truth/`` and
    the dataset README quoted in ``soundata/datasets/fsd50k.py``): ``dev.csv`` has
    ``fname,labels,mids,split`` with ``labels``/``mids`` quoted comma-separated lists and split
    ``train``/``val``; ``eval.csv`` has ``fname,labels,mids``; ``vocabulary.csv`` has no header,
    rows ``index,label,mid`` for the 200 classes. Audio: ``FSD50K.dev_audio/<fname>.wav``,
    ``FSD50K.eval_audio/<fname>.wav``. Splits: train/val -> ``train``/``valid``, eval -> ``test``.
    Class order = vocabulary index. Each clip's label/mid pairs are checked against the
    vocabulary; ``mids`` is kept (``;``-separated).
    """
    root = Path(root)
    gt = root / "FSD50K.ground_truth"
    vocab_path = gt / "vocabulary.csv"
    vocab = read_csv(vocab_path, "FSD50K vocabulary", header=None, names=["index", "label", "mid"])
    idx = _int_column(vocab, "index", vocab_path, line_offset=1)
    if sorted(idx) != list(range(len(vocab))):
        raise AdapterError(f"{vocab_path}: class indices are not 0..{len(vocab) - 1}")
    vocab = vocab.assign(index=idx).sort_values("index")
    classes = list(vocab["label"])
    check_unique(classes, vocab_path, "class label", line_offset=1)
    mid_of = dict(zip(vocab["label"], vocab["mid"]))

    frames = []
    for fname, audio_dir in (("dev.csv", "FSD50K.dev_audio"), ("eval.csv", "FSD50K.eval_audio")):
        path = gt / fname
        df = read_csv(path, "FSD50K ground truth")
        require_columns(df, ["fname", "labels", "mids"] + (["split"] if fname == "dev.csv" else []),
                        path)
        check_unique(list(df["fname"]), path, "fname")
        if fname == "dev.csv":
            split_map = {"train": "train", "val": "valid"}
            bad = ~df["split"].isin(split_map)
            if bad.any():
                i = int(bad.to_numpy().argmax())
                raise AdapterError(f"{path}, line {i + 2}: split {df['split'].iloc[i]!r} is not "
                                   f"train/val")
            splits = df["split"].map(split_map)
        else:
            splits = pd.Series("test", index=df.index)
        labels, mids = [], []
        for i, (lab_cell, mid_cell) in enumerate(zip(df["labels"], df["mids"])):
            labs = [s.strip() for s in lab_cell.split(",") if s.strip()]
            ms = [s.strip() for s in mid_cell.split(",") if s.strip()]
            if len(labs) != len(ms):
                raise AdapterError(f"{path}, line {i + 2} (fname {df['fname'].iloc[i]}): "
                                   f"{len(labs)} labels but {len(ms)} mids")
            for lab, mid in zip(labs, ms):
                if lab not in mid_of:
                    raise AdapterError(f"{path}, line {i + 2} (fname {df['fname'].iloc[i]}): "
                                       f"label {lab!r} is not in {vocab_path.name}")
                if mid_of[lab] != mid:
                    raise AdapterError(f"{path}, line {i + 2}: label {lab!r} has mid {mid!r}, "
                                       f"{vocab_path.name} says {mid_of[lab]!r}")
            labels.append(";".join(labs))
            mids.append(";".join(ms))
        frames.append(pd.DataFrame({
            "clip_id": df["fname"].astype(str), "path": audio_dir + "/" + df["fname"] + ".wav",
            "split": splits.to_numpy(), "labels": labels, "mids": mids, "source": "FSD50K"}))
    frame = pd.concat(frames, ignore_index=True)
    check_unique(list(frame["clip_id"]), f"{gt}/dev.csv+eval.csv", "fname (across dev and eval)")
    return finish(frame, root, classes, "fsd50k", out_csv, on_missing)


# ------------------------------------------------------------------------- Speech Commands v2

SPC_WORDS_10 = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def spcv2(root: str | os.PathLike, out_csv: str | os.PathLike | None = None,
          on_missing: OnMissing = "error", variant: str = "35") -> ClipTable:
    """Speech Commands v2 (Warden 2018): one folder per word, split lists as distributed.

    Layout (as used by nttcslab/eval-audio-repr ``evar/utils/make_metadata.py``): ``<word>/<f>.wav``
    for the word folders (``_background_noise_`` excluded), ``validation_list.txt`` and
    ``testing_list.txt`` listing ``<word>/<f>.wav``; every other file is ``train``.
    ``variant="35"``: the 35 words as labels. ``variant="10+unknown"``: the ten command words
    and ``_unknown_`` for the rest (the ``_silence_`` class of the 12-class protocol, cut from the
    background-noise files, is not produced here). ``speaker`` = the hash before ``_nohash_``.
    """
    root = Path(root)
    if variant not in ("35", "10+unknown"):
        raise ValueError(f"spcv2 variant must be '35' or '10+unknown', got {variant!r}")
    files = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.wav")
                   if not p.parent.name.startswith("_"))
    if not files:
        raise AdapterError(f"Speech Commands: no <word>/<file>.wav under {root}")
    lists = {}
    for split, name in (("valid", "validation_list.txt"), ("test", "testing_list.txt")):
        path = require_file(root / name, "Speech Commands split list")
        entries = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        check_unique(entries, path, "entry", line_offset=1)
        lists[split] = set(entries)
    both = lists["valid"] & lists["test"]
    if both:
        raise AdapterError(f"Speech Commands: {len(both)} files are in both validation_list.txt "
                           f"and testing_list.txt (first: {sorted(both)[0]})")
    present = set(files)
    listed_missing = sorted((lists["valid"] | lists["test"]) - present)
    files = files + listed_missing   # listed but absent: kept so that on_missing reports them
    split = ["test" if f in lists["test"] else "valid" if f in lists["valid"] else "train"
             for f in files]
    words = [f.split("/", 1)[0] for f in files]
    if variant == "10+unknown":
        labels = [w if w in SPC_WORDS_10 else "_unknown_" for w in words]
        classes = list(SPC_WORDS_10) + ["_unknown_"]
    else:
        labels, classes = words, sorted(set(words))
    frame = pd.DataFrame({
        "clip_id": [strip_ext(f) for f in files], "path": files, "split": split,
        "labels": labels, "word": words,
        "speaker": [Path(f).name.split("_nohash_")[0] for f in files],
        "source": "SpeechCommandsV2"})
    return finish(frame, root, classes, f"spcv2_{variant}", out_csv, on_missing)


# -------------------------------------------------------------------------------- VoxCeleb1


def vc1(root: str | os.PathLike, out_csv: str | os.PathLike | None = None,
        on_missing: OnMissing = "error", split_file: str | os.PathLike = "iden_split.txt",
        audio_dir: str = "wav") -> ClipTable:
    """VoxCeleb1 speaker identification from ``iden_split.txt``.

    Each line is ``<1|2|3> <speaker>/<video>/<utt>.wav`` with 1/2/3 = train/valid/test (as read by
    nttcslab/eval-audio-repr ``evar/utils/make_metadata.py``, which prefixes ``wav/``). Label and
    ``speaker`` = the speaker id (1,251 in the official file). ``split_file`` is relative to
    ``root`` unless absolute.
    """
    root = Path(root)
    path = require_file(root / split_file, "VoxCeleb1 iden_split.txt")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("1", "2", "3") or parts[1].count("/") != 2:
            raise AdapterError(f"{path}, line {n}: expected '<1|2|3> id/video/utt.wav', "
                               f"got {line!r}")
        rows.append((parts[0], parts[1], n))
    check_unique([r[1] for r in rows], path, "utterance", line_offset=1)
    rel = [r[1] for r in rows]
    speakers = [r.split("/", 1)[0] for r in rel]
    frame = pd.DataFrame({
        "clip_id": [strip_ext(r) for r in rel],
        "path": [f"{audio_dir}/{r}" if audio_dir else r for r in rel],
        "split": [{"1": "train", "2": "valid", "3": "test"}[r[0]] for r in rows],
        "labels": speakers, "speaker": speakers, "source": "VoxCeleb1"})
    return finish(frame, root, sorted(set(speakers)), "vc1", out_csv, on_missing)


# ------------------------------------------------------------------------------------ GTZAN

GTZAN_SPLIT_FILES = {"train": "train_filtered.txt", "valid": "valid_filtered.txt",
                     "test": "test_filtered.txt"}


def gtzan(root: str | os.PathLike, out_csv: str | os.PathLike | None = None,
          on_missing: OnMissing = "error", split_dir: str | os.PathLike | None = None) -> ClipTable:
    """GTZAN genres with the fault-filtered split (Kereliuk et al. / Sturm).

    Split files ``train_filtered.txt``, ``valid_filtered.txt``, ``test_filtered.txt`` (from
    jongpillee/music_dataset_split ``GTZAN_split/``, the split nttcslab/eval-audio-repr reads in
    ``evar/utils/make_metadata.py``), one ``<genre>/<genre>.000NN.wav`` per line; audio at
    ``root/<genre>/<genre>.000NN.wav``. Files in no list (the faulty ones) are not in the table.
    ``split_dir`` holds the split files (default ``root``).
    """
    root = Path(root)
    sdir = Path(split_dir) if split_dir is not None else root
    rows: list[tuple[str, str]] = []
    where: dict[str, str] = {}
    for split, name in GTZAN_SPLIT_FILES.items():
        path = require_file(sdir / name, "GTZAN split file")
        for n, line in enumerate(path.read_text().splitlines(), 1):
            entry = line.strip()
            if not entry:
                continue
            parts = entry.split("/")
            if len(parts) != 2 or not parts[1].startswith(parts[0] + "."):
                raise AdapterError(f"{path}, line {n}: expected '<genre>/<genre>.000NN.wav', "
                                   f"got {entry!r}")
            if entry in where:
                raise AdapterError(f"{path}, line {n}: {entry!r} is already listed in "
                                   f"{where[entry]}")
            where[entry] = f"{name} line {n}"
            rows.append((entry, split))
    files = [r[0] for r in rows]
    genres = [f.split("/", 1)[0] for f in files]
    frame = pd.DataFrame({"clip_id": [strip_ext(f) for f in files], "path": files,
                          "split": [r[1] for r in rows], "labels": genres, "source": "GTZAN"})
    return finish(frame, root, sorted(set(genres)), "gtzan", out_csv, on_missing)


# ----------------------------------------------------------------------------------- NSynth

NSYNTH_SPLITS = {"train": "nsynth-train", "valid": "nsynth-valid", "test": "nsynth-test"}


def nsynth(root: str | os.PathLike, out_csv: str | os.PathLike | None = None,
           on_missing: OnMissing = "error", label_field: str = "instrument_family_str",
           splits: Sequence[str] | None = None) -> ClipTable:
    """NSynth (Engel et al. 2017) from ``nsynth-{train,valid,test}/examples.json``.

    Each ``examples.json`` maps ``note_str`` to a record with ``instrument_family_str``, ``pitch``,
    ``velocity``, ``instrument_source_str``, ...; audio at ``nsynth-<split>/audio/<note_str>.wav``
    (as read by nttcslab/eval-audio-repr ``evar/utils/make_metadata.py``). Label = ``label_field``
    (instrument family by default, the fusion paper's task); ``pitch``/``velocity`` kept.
    ``splits``: which of ``train``/``valid``/``test`` to read (each must be present); ``None``
    reads the split folders that are there (the three are separate downloads), logging one
    WARNING line that names the absent ones.
    """
    root = Path(root)
    if splits is None:
        present = [s for s, folder in NSYNTH_SPLITS.items() if (root / folder).is_dir()]
        if not present:
            raise AdapterError(f"NSynth: none of the split folders {list(NSYNTH_SPLITS.values())} "
                               f"is under {root}")
        absent = [NSYNTH_SPLITS[s] for s in NSYNTH_SPLITS if s not in present]
        if absent:
            log.warning("NSynth: split folder(s) %s not under %s; reading %s only (pass "
                        "splits=[...] to require splits)", absent, root, present)
        splits = present
    splits = [splits] if isinstance(splits, str) else list(splits)
    unknown = [s for s in splits if s not in NSYNTH_SPLITS]
    if unknown or not splits:
        raise ValueError(f"nsynth splits must be a non-empty subset of {list(NSYNTH_SPLITS)}, "
                         f"got {splits}")
    frames = []
    for split in splits:
        folder = NSYNTH_SPLITS[split]
        path = require_file(root / folder / "examples.json", "NSynth examples.json")
        try:
            records = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise AdapterError(f"cannot parse {path}: {exc}") from exc
        if not isinstance(records, dict):
            raise AdapterError(f"{path}: expected an object note_str -> record")
        rows = []
        for key, rec in records.items():
            if not isinstance(rec, dict) or label_field not in rec or "pitch" not in rec:
                raise AdapterError(f"{path}: record {key!r} lacks {label_field!r} or 'pitch'")
            rows.append({"clip_id": key, "path": f"{folder}/audio/{key}.wav", "split": split,
                         "labels": str(rec[label_field]), "pitch": int(rec["pitch"]),
                         "velocity": rec.get("velocity"),
                         "instrument_source": rec.get("instrument_source_str"),
                         "source": "NSynth"})
        frames.append(pd.DataFrame(rows))
    frame = pd.concat(frames, ignore_index=True)
    check_unique(list(frame["clip_id"]), root / "nsynth-*/examples.json", "note_str")
    check_label_text(frame["labels"], "NSynth examples.json")
    return finish(frame, root, sorted(set(frame["labels"])), "nsynth", out_csv, on_missing)


# ---------------------------------------------------------------------------------- helpers


def _int_column(df: pd.DataFrame, col: str, path: Path, allowed: range | None = None,
                line_offset: int = 2) -> list[int]:
    out = []
    for i, v in enumerate(df[col]):
        try:
            k = int(str(v).strip())
        except ValueError:
            raise AdapterError(f"{path}, line {i + line_offset}: {col} {v!r} is not an integer") \
                from None
        if allowed is not None and k not in allowed:
            raise AdapterError(f"{path}, line {i + line_offset}: {col} {k} not in "
                               f"{allowed.start}..{allowed.stop - 1}")
        out.append(k)
    return out


def _classes_from_index(index: list[int], names: pd.Series, path: Path, index_col: str,
                        name_col: str) -> list[str]:
    """Class names ordered by their integer index (gaps allowed: a subset of the file may lack a
    class); each index must map to exactly one name and each name to one index."""
    name_of: dict[int, str] = {}
    for i, (k, name) in enumerate(zip(index, names)):
        if name_of.setdefault(k, name) != name:
            raise AdapterError(f"{path}, line {i + 2}: {index_col} {k} is {name!r} here but "
                               f"{name_of[k]!r} earlier")
    classes = [name_of[k] for k in sorted(name_of)]
    if len(set(classes)) != len(classes):
        raise AdapterError(f"{path}: one {name_col} has several {index_col} values")
    return classes
