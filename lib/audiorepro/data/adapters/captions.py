"""Audio-caption datasets: Clotho v2, AudioCaps, WavCaps -> clip tables with a ``captions`` column
(captions joined by ``|``; a ``|`` inside a caption becomes ``/``). ``labels`` is empty."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from ..cliptable import ClipTable
from ._common import (AdapterError, OnMissing, captions_cell, check_unique, finish, log, read_csv,
                      require_columns, require_file, strip_ext)

CLOTHO_SPLITS = {"development": "train", "validation": "valid", "evaluation": "test"}


def clotho(root: str | os.PathLike, out_csv: str | os.PathLike | None = None,
           on_missing: OnMissing = "error", audio_dirs: dict[str, str] | None = None,
           with_metadata: bool = True) -> ClipTable:
    """Clotho v2 (Drossos et al. 2020) from ``clotho_captions_<split>.csv``.

    Columns ``file_name,caption_1..caption_5`` (captions are quoted and may contain commas and
    quotes); optional ``clotho_metadata_<split>.csv`` with ``file_name,keywords,sound_id,
    sound_link,start_end_samples,manufacturer,license`` (format as read by soundata/soundata
    ``soundata/datasets/clotho.py``; some releases of the metadata files are not UTF-8, so
    Latin-1 is tried second). Splits development/validation/evaluation -> train/valid/test (the
    PaSST paper's train/validation/test). Audio at ``<audio_dirs[split]>/<file_name>``
    (default: folders ``development``, ``validation``, ``evaluation`` as unpacked from the 7z
    archives). ``clip_id`` = file name without ``.wav``; a file name found in more than one
    split (Clotho v2.1 has four such names: different recordings under one name) keeps a row in
    each split, with ``clip_id`` = ``<native split>/<name without .wav>`` (e.g.
    ``validation/x``) for those names only, logged in one WARNING line naming them.
    """
    root = Path(root)
    audio_dirs = audio_dirs or {s: s for s in CLOTHO_SPLITS}
    frames = []
    for native, split in CLOTHO_SPLITS.items():
        path = root / f"clotho_captions_{native}.csv"
        df = read_csv(path, "Clotho captions CSV")
        cap_cols = [f"caption_{k}" for k in range(1, 6)]
        require_columns(df, ["file_name"] + cap_cols, path)
        check_unique(list(df["file_name"]), path, "file_name")
        frame = pd.DataFrame({
            "clip_id": df["file_name"].map(strip_ext),
            "path": audio_dirs[native] + "/" + df["file_name"], "split": split, "labels": "",
            "captions": [captions_cell(row) for row in df[cap_cols].itertuples(index=False)],
            "source": "Clotho", "_native": native})
        empty = frame["captions"] == ""
        if empty.any():
            i = int(empty.to_numpy().argmax())
            raise AdapterError(f"{path}, line {i + 2} ({df['file_name'].iloc[i]!r}): no caption")
        meta_path = root / f"clotho_metadata_{native}.csv"
        if with_metadata and meta_path.is_file():
            meta = _read_clotho_metadata(meta_path)
            keep = [c for c in ("keywords", "sound_id", "sound_link", "start_end_samples",
                                "manufacturer", "license") if c in meta.columns]
            meta = meta[["file_name"] + keep].drop_duplicates("file_name")
            frame["_fn"] = df["file_name"].to_numpy()
            frame = frame.merge(meta.rename(columns={"file_name": "_fn"}), how="left", on="_fn")
            frame = frame.drop(columns="_fn")
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    n_splits = frame.groupby("clip_id")["split"].transform("nunique")
    shared = (n_splits > 1).to_numpy()
    if shared.any():
        names = sorted(set(frame["clip_id"][shared]))
        frame.loc[shared, "clip_id"] = frame["_native"][shared] + "/" + frame["clip_id"][shared]
        log.warning("Clotho: %d file name(s) occur in more than one split, kept in each with the "
                    "split folder prefixed to the clip id (e.g. %r): %s", len(names),
                    frame["clip_id"][shared].iloc[0], [n + ".wav" for n in names])
    frame = frame.drop(columns="_native")
    check_unique(list(frame["clip_id"]), root / "clotho_captions_*.csv", "clip id")
    return finish(frame, root, [], "clotho", out_csv, on_missing)


def _read_clotho_metadata(path: Path) -> pd.DataFrame:
    try:
        return read_csv(path, "Clotho metadata CSV", encoding="utf-8")
    except AdapterError as exc:
        if "codec" not in str(exc):
            raise
        return read_csv(path, "Clotho metadata CSV", encoding="latin-1")


AUDIOCAPS_SPLITS = {"train": "train", "val": "valid", "test": "test"}


def audiocaps(root: str | os.PathLike, out_csv: str | os.PathLike | None = None,
              on_missing: OnMissing = "error",
              audio_pattern: str = "{split}/{ytid}_{start}.wav") -> ClipTable:
    """AudioCaps (Kim et al. 2019) from ``train.csv``, ``val.csv``, ``test.csv``.

    Columns ``audiocap_id,youtube_id,start_time,caption``; one row per caption, several captions
    per clip in val/test -> grouped by the clip key (YouTube id, start time), captions in
    ``audiocap_id`` order. ``audio_pattern`` formats the audio path with ``ytid``, ``start``
    (int seconds), ``split`` (native name ``train``/``val``/``test``) and ``audiocap_id`` (the
    smallest of the clip). Copies name files differently (``Y{ytid}.wav``,
    ``{ytid}_{start}.wav``, ``{audiocap_id}.wav``...): set the pattern to match yours.
    ``clip_id`` = ``<ytid>_<start>``. A duplicated ``audiocap_id`` is an error.
    """
    root = Path(root)
    frames = []
    for native, split in AUDIOCAPS_SPLITS.items():
        path = root / f"{native}.csv"
        df = read_csv(path, "AudioCaps CSV")
        require_columns(df, ["audiocap_id", "youtube_id", "start_time", "caption"], path)
        check_unique(list(df["audiocap_id"]), path, "audiocap_id")
        try:
            df["_start"] = df["start_time"].astype(float).astype(int)
            df["_acid"] = df["audiocap_id"].astype(int)
        except ValueError as exc:
            raise AdapterError(f"{path}: non-numeric start_time/audiocap_id: {exc}") from None
        df["_line"] = range(2, len(df) + 2)
        rows = []
        for (ytid, start), g in df.sort_values("_acid").groupby(["youtube_id", "_start"], sort=False):
            first = int(g["_acid"].iloc[0])
            rows.append({"clip_id": f"{ytid}_{start}",
                         "path": audio_pattern.format(ytid=ytid, start=start, split=native,
                                                      audiocap_id=first),
                         "split": split, "labels": "", "captions": captions_cell(g["caption"]),
                         "ytid": ytid, "start_s_in_video": start, "audiocap_ids":
                         ";".join(str(a) for a in g["_acid"]), "source": "AudioCaps"})
        frames.append(pd.DataFrame(rows))
    frame = pd.concat(frames, ignore_index=True)
    check_unique(list(frame["clip_id"]), root / "{train,val,test}.csv", "clip (ytid, start)")
    return finish(frame, root, [], "audiocaps", out_csv, on_missing)


WAVCAPS_SOURCES = ("FreeSound", "BBC_Sound_Effects", "SoundBible", "AudioSet_SL")


def wavcaps(root: str | os.PathLike, out_csv: str | os.PathLike | None = None,
            on_missing: OnMissing = "error", json_dir: str = "json_files",
            audio_pattern: str = "Zip_files/{source}/{stem}.flac",
            sources: Iterable[str] = WAVCAPS_SOURCES,
            exclude_ids: Iterable[str] = ()) -> ClipTable:
    """WavCaps (Mei et al. 2023) from ``<json_dir>/<source>/*.json``.

    Each JSON is ``{"data": [{"id", "caption", ...}]}`` with, per source, ``audio`` or
    ``file_name``, ``duration`` and other fields (layout as read by AudioFans/audidata
    ``audidata/datasets/wavcaps.py``, which also takes the audio file as
    ``Zip_files/<source>/<Path(id).stem>.flac``). Files with ``blacklist`` in the path are
    skipped; ``exclude_ids`` (ids or stems) are dropped, e.g. the Freesound ids overlapping
    Clotho. All rows are ``split="train"`` (WavCaps is pre-training data). ``audio_pattern`` fields:
    ``source``, ``stem``, ``id``. ``duration`` is kept as ``file_duration_s`` (not ``duration_s``,
    which would crop the audio). ``clip_id`` = ``<source>/<stem>``.
    """
    root = Path(root)
    sources = [sources] if isinstance(sources, str) else list(sources)
    exclude = {str(exclude_ids)} if isinstance(exclude_ids, str) else {str(e) for e in exclude_ids}
    frames = []
    for source in sources:
        sdir = root / json_dir / source
        paths = sorted(p for p in sdir.glob("*.json") if "blacklist" not in p.name)
        if not paths:
            raise AdapterError(f"WavCaps: no JSON file in {sdir}")
        for path in paths:
            require_file(path, "WavCaps JSON")
            try:
                obj = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise AdapterError(f"cannot parse {path}: {exc}") from exc
            if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
                raise AdapterError(f"{path}: expected {{\"data\": [...]}}")
            rows, seen = [], {}
            for k, rec in enumerate(obj["data"]):
                if not isinstance(rec, dict) or "id" not in rec or "caption" not in rec:
                    raise AdapterError(f"{path}: data[{k}] lacks 'id' or 'caption'")
                rid = str(rec["id"])
                stem = Path(rid).stem
                if rid in seen:
                    raise AdapterError(f"{path}: id {rid!r} at data[{seen[rid]}] and data[{k}]")
                seen[rid] = k
                if rid in exclude or stem in exclude:
                    continue
                dur = rec.get("duration")
                rows.append({"clip_id": f"{source}/{stem}",
                             "path": audio_pattern.format(source=source, stem=stem, id=rid),
                             "split": "train", "labels": "",
                             "captions": captions_cell([rec["caption"]]),
                             "file_duration_s": float(dur) if dur not in (None, "") else None,
                             "subset": source, "source": "WavCaps"})
            n_excl = len(obj["data"]) - len(rows)
            if n_excl:
                log.info("WavCaps %s: %d excluded ids", path, n_excl)
            frames.append(pd.DataFrame(rows))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    check_unique(list(frame["clip_id"]), root / json_dir, "clip (source/stem)")
    return finish(frame, root, [], "wavcaps", out_csv, on_missing)
