"""EVAR's preparation of the nine downstream tasks: from the official downloads to the layout the
paper profile reads (``<out_root>/<task>/...`` at 16 kHz and ``<out_root>/metadata/<task>.csv``).

The authors evaluate inside their package EVAR (github.com/nttcslab/eval-audio-repr). A user
who has downloaded the datasets runs, per task, EVAR's ``prepare_wav.py <download> work/16k/<task>
16000`` (every audio file re-written with the same relative path: channels averaged to mono,
resampled, written with soundfile's default encoding for the file's suffix - 16-bit PCM for
``.wav``, Vorbis for Surge's ``.ogg``) and ``evar/utils/make_metadata.py <task> <download>``
(the task's metadata CSV). :func:`prepare_evar_layout` does both for the tasks of this chapter,
writing each metadata CSV as ``make_metadata.py`` writes it (its columns, its ``file_name``
prefixes, and the leading unnamed index column of the files it writes with
``DataFrame.to_csv`` without ``index=False``: us8k, nsynth, surge):

========= =========================================== ==========================================
task      read from the download                      ``file_name`` / label / split or fold
========= =========================================== ==========================================
esc50     ``meta/esc50.csv``                          ``audio/<filename>`` / category / fold
us8k      ``metadata/UrbanSound8K.csv``               ``audio/fold<k>/<slice>`` / class / fold
spcv2     ``<word>/*.wav``, ``validation_list.txt``,  ``<word>/<file>`` / word / train unless
          ``testing_list.txt``                        listed
vc1       ``iden_split.txt`` (EVAR downloads it from  ``wav/<id>/<video>/<utt>.wav`` / speaker
          the VoxCeleb site)                          id / 1, 2, 3 = train, valid, test
voxforge  EVAR's ``evar/metadata/voxforge.csv``       as shipped with EVAR
cremad    EVAR's ``evar/metadata/cremad.csv``         as shipped with EVAR (speaker split)
gtzan     ``<genre>/*.wav`` and ``train/valid/        ``<genre>/<file>`` / genre / split (empty
          test_filtered.txt`` (jongpillee/            for files in no list)
          music_dataset_split ``GTZAN_split``)
nsynth    ``nsynth-<split>/examples.json``            ``nsynth-<split>/audio/<note>.wav`` /
                                                      ``instrument_family_str`` / split
surge     ``<tone>/<pitch>.ogg`` and EVAR's           ``<tone>/<pitch>.ogg`` / pitch / tone's
          ``evar/predefined/dataset_surge_tone_        split
          splits.csv``
========= =========================================== ==========================================

Files EVAR ships (``cremad.csv``, ``voxforge.csv``, ``dataset_surge_tone_splits.csv``) and the
split lists it downloads (``iden_split.txt``, GTZAN's ``*_filtered.txt``) are looked for in the
task's download folder first, then in ``evar_dir`` (a clone of eval-audio-repr:
``evar/metadata/`` and ``evar/predefined/``).

Differences from EVAR, on purpose: only the audio files a metadata row with a split or fold
names are converted (``prepare_wav.py`` converts every file under the folder, e.g. Speech
Commands' ``_background_noise_``, which no task reads); resampling uses
:func:`audiorepro.data.audio.resample` (torchaudio's windowed sinc) where EVAR calls
``librosa.resample`` (soxr), so samples differ slightly; EVAR's assertions of the full datasets'
sizes (e.g. 2,000 ESC-50 clips) are not made, so a partial download is prepared as it is.
A task is skipped when its folder holds a marker of the same preparation (source folder,
metadata, rate) and every file exists; a converted file newer than its source is kept.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd
import soundfile as sf

from audiorepro.caching import stable_digest
from audiorepro.data.audio import load_audio
from audiorepro.fileio import atomic_write_text

from .model import FusionError

#: paper task key -> EVAR task name
EVAR_NAMES: dict[str, str] = {
    "ESC-50": "esc50", "US8K": "us8k", "SPCV2": "spcv2", "VC1": "vc1", "VF": "voxforge",
    "CRM-D": "cremad", "GTZAN": "gtzan", "NSynth": "nsynth", "Surge": "surge",
}

#: Clip length (s) of each task in EVAR (``unit_sec`` of its task definitions,
#: nttcslab/eval-audio-repr ``evar/ds_tasks.py``): clips are cut or padded to it.
EVAR_UNIT_SECONDS: dict[str, float] = {
    "ESC-50": 5.0, "US8K": 4.0, "SPCV2": 1.0, "VC1": 8.2, "VF": 5.8, "CRM-D": 2.5,
    "GTZAN": 30.0, "NSynth": 4.0, "Surge": 4.0,
}

__all__ = ["EVAR_METADATA_MAKERS", "EVAR_UNIT_SECONDS", "evar_metadata", "prepare_evar_layout",
           "convert_audio"]

#: bump when the output of a preparation changes (part of each task's marker)
PREPARE_VERSION = 1
MARKER = ".evar_prepared.json"


def _find(root: Path, name: str, evar_dir: Path | None, sub: str, task: str, what: str) -> Path:
    """``root/name``, else ``evar_dir/sub/name``; a FusionError says where it looked."""
    tried = [root / name] + ([Path(evar_dir) / sub / name] if evar_dir else [])
    for p in tried:
        if p.is_file():
            return p
    raise FusionError(f"{task}: {what} {name!r} not found (looked for {', '.join(map(str, tried))})"
                      + ("" if evar_dir else "; give evar_dir, a clone of nttcslab/eval-audio-repr"))


def _lines(path: Path) -> list[str]:
    return [s.strip() for s in path.read_text(encoding="utf8").splitlines() if s.strip()]


def _rel(files: list[Path], root: Path) -> list[str]:
    return [f.relative_to(root).as_posix() for f in files]


# ====================================================================== make_metadata.py, per task
def _esc50(root: Path, evar_dir: Path | None) -> str:
    df = pd.read_csv(_find(root, "meta/esc50.csv", None, "", "esc50", "metadata file"))
    df = df.rename(columns={"filename": "file_name", "category": "label"})
    df["file_name"] = "audio/" + df["file_name"]
    return df.to_csv(index=False)


def _us8k(root: Path, evar_dir: Path | None) -> str:
    df = pd.read_csv(_find(root, "metadata/UrbanSound8K.csv", None, "", "us8k", "metadata file"))
    names = df["fold"].map(lambda x: f"audio/fold{x}/") + df["slice_file_name"]
    out = pd.DataFrame(df["class"].values, index=pd.Index(names, name="file_name"),
                       columns=["label"])
    out["fold"] = df["fold"].values
    return out.to_csv()


def _spcv2(root: Path, evar_dir: Path | None) -> str:
    files = sorted(root.glob("[a-z]*/*.wav"))
    if not files:
        raise FusionError(f"spcv2: no <word>/*.wav under {root}")
    df = pd.DataFrame({"file_name": [f"{f.parent.name}/{f.name}" for f in files],
                       "label": [f.parent.name for f in files]})
    vals = _lines(_find(root, "validation_list.txt", None, "", "spcv2", "split list"))
    tests = _lines(_find(root, "testing_list.txt", None, "", "spcv2", "split list"))
    df["split"] = "train"
    df.loc[df["file_name"].isin(vals), "split"] = "valid"
    df.loc[df["file_name"].isin(tests), "split"] = "test"
    return df.to_csv(index=False)


def _vc1(root: Path, evar_dir: Path | None) -> str:
    path = _find(root, "iden_split.txt", None, "", "vc1", "split file (from the VoxCeleb site)")
    rows = []
    for n, line in enumerate(_lines(path), 1):
        parts = line.split(" ")
        if len(parts) != 2 or parts[0] not in ("1", "2", "3"):
            raise FusionError(f"{path}, line {n}: expected '<1|2|3> <id>/<video>/<utt>.wav', "
                              f"got {line!r}")
        f = "wav/" + parts[1].strip()
        rows.append((f, f.split("/")[1], {"1": "train", "2": "valid", "3": "test"}[parts[0]]))
    return pd.DataFrame(rows, columns=["file_name", "label", "split"]).to_csv(index=False)


def _shipped(name: str) -> Callable[[Path, Path | None], str]:
    def read(root: Path, evar_dir: Path | None) -> str:
        path = _find(root, f"{name}.csv", evar_dir, "evar/metadata", name, "EVAR metadata file")
        return path.read_text(encoding="utf8")        # shipped with EVAR: used as it is
    return read


def _gtzan(root: Path, evar_dir: Path | None) -> str:
    files = sorted(root.glob("*/*.wav"))
    if not files:
        raise FusionError(f"gtzan: no <genre>/*.wav under {root}")
    df = pd.DataFrame({"file_name": _rel(files, root), "label": [f.parent.name for f in files]})
    df["split"] = ""                              # EVAR's NaN: an empty cell in the CSV
    for split in ("test", "valid", "train"):      # EVAR's order: a later list wins
        listed = _lines(_find(root, f"{split}_filtered.txt", None, "", "gtzan",
                              "split list (jongpillee/music_dataset_split GTZAN_split)"))
        df.loc[df["file_name"].isin(listed), "split"] = split
    return df.to_csv(index=False)


def _nsynth(root: Path, evar_dir: Path | None) -> str:
    parts = []
    for mode in ("train", "valid", "test"):
        meta = root / f"nsynth-{mode}" / "examples.json"
        if not meta.is_file():
            continue          # EVAR needs all three; a partial download is prepared as it is
        j = json.loads(meta.read_text(encoding="utf8"))
        parts.append(pd.DataFrame({"file_name": [f"nsynth-{mode}/audio/{k}.wav" for k in j],
                                   "label": [j[k]["instrument_family_str"] for k in j],
                                   "split": mode}))
    if not parts:
        raise FusionError(f"nsynth: no nsynth-<train|valid|test>/examples.json under {root}")
    return pd.concat(parts, ignore_index=True).to_csv()


def _surge(root: Path, evar_dir: Path | None) -> str:
    files = sorted(root.glob("*/*.ogg"))
    if not files:
        raise FusionError(f"surge: no <tone>/<pitch>.ogg under {root}")
    path = _find(root, "dataset_surge_tone_splits.csv", evar_dir, "evar/predefined", "surge",
                 "tone split file")
    tones = pd.read_csv(path, dtype=str, keep_default_na=False)
    split_of = dict(zip(tones["tone"], tones["split"]))
    unknown = sorted({f.parent.name for f in files} - set(split_of))
    if unknown:
        raise FusionError(f"surge: tone folder(s) {unknown[:3]} under {root} are not in {path}")
    return pd.DataFrame({"file_name": _rel(files, root), "label": [f.stem for f in files],
                         "split": [split_of[f.parent.name] for f in files]}).to_csv()


#: EVAR task name -> metadata maker: ``(download root, evar_dir) -> CSV text``
EVAR_METADATA_MAKERS: dict[str, Callable[[Path, Path | None], str]] = {
    "esc50": _esc50, "us8k": _us8k, "spcv2": _spcv2, "vc1": _vc1,
    "voxforge": _shipped("voxforge"), "cremad": _shipped("cremad"), "gtzan": _gtzan,
    "nsynth": _nsynth, "surge": _surge,
}


def evar_metadata(task: str, download_root: str | os.PathLike,
                  evar_dir: str | os.PathLike | None = None) -> str:
    """The text of EVAR's metadata CSV of ``task`` (EVAR name or paper key) made from its
    official download at ``download_root``, as ``evar/utils/make_metadata.py`` writes it."""
    name = EVAR_NAMES.get(task, task)
    if name not in EVAR_METADATA_MAKERS:
        raise FusionError(f"evar_metadata: unknown task {task!r}; known: {list(EVAR_NAMES)} or "
                          f"{list(EVAR_METADATA_MAKERS)}")
    root = Path(download_root)
    if not root.is_dir():
        raise FusionError(f"{task}: download folder {str(root)!r} not found")
    return EVAR_METADATA_MAKERS[name](root, Path(evar_dir) if evar_dir else None)


# ====================================================================== prepare_wav.py
def convert_audio(src: Path, dst: Path, sample_rate: int = 16000) -> Path:
    """One file as ``prepare_wav.py`` converts it: mono (mean of the channels), resampled to
    ``sample_rate``, written with soundfile's default encoding for the suffix (``.wav``: 16-bit
    PCM; ``.ogg``: Vorbis) through a temporary file renamed into place."""
    wave, _ = load_audio(src, sample_rate)
    fmt = dst.suffix[1:].upper()
    subtype = sf.default_subtype(fmt)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            sf.write(fh, wave.numpy(), sample_rate, subtype=subtype, format=fmt)
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dst


def _read_files(csv_text: str) -> list[str]:
    """``file_name`` of the rows EVAR's ``WavDataset`` can read (a split or a fold)."""
    from io import StringIO
    df = pd.read_csv(StringIO(csv_text), dtype=str, keep_default_na=False)
    if "split" in df.columns:
        df = df[df["split"].str.strip() != ""]
    return list(df["file_name"])


def prepare_evar_layout(download_roots: Mapping[str, str | os.PathLike], out_root: str | os.PathLike,
                        sample_rate: int = 16000, evar_dir: str | os.PathLike | None = None,
                        log: Callable[[str], None] | None = print) -> Path:
    """EVAR's ``work/16k`` layout of the tasks in ``download_roots`` (task key, paper's
    ``ESC-50`` or EVAR's ``esc50`` -> the folder the official download unpacks to): audio under
    ``<out_root>/<evar task>/`` and metadata ``<out_root>/metadata/<evar task>.csv``, as the
    chapter's paper profile reads it (:func:`audiorepro.papers.fusion.paper_tasks`). See the
    module docstring. Returns ``out_root``."""
    out = Path(out_root)
    for task, root in download_roots.items():
        name = EVAR_NAMES.get(task, task)
        if name not in EVAR_METADATA_MAKERS:
            raise FusionError(f"prepare_evar_layout: unknown task {task!r} in download_roots; "
                              f"known: {list(EVAR_NAMES)}")
        root = Path(root).resolve()
        text = evar_metadata(name, root, evar_dir)
        files = _read_files(text)
        marker = out / name / MARKER
        stamp = {"version": PREPARE_VERSION, "source": str(root), "sample_rate": int(sample_rate),
                 "metadata": stable_digest(text, 16)}
        done = (marker.is_file() and json.loads(marker.read_text(encoding="utf8")) == stamp
                and (out / "metadata" / f"{name}.csv").is_file()
                and all((out / name / f).is_file() for f in files))
        if not done:
            made = 0
            for f in files:
                src, dst = root / f, out / name / f
                if not src.is_file():
                    raise FusionError(f"{name}: {src} is listed in the metadata but missing from "
                                      f"the download {root}")
                if dst.is_file() and dst.stat().st_mtime >= src.stat().st_mtime:
                    continue
                convert_audio(src, dst, sample_rate)
                made += 1
            atomic_write_text(out / "metadata" / f"{name}.csv", text)
            atomic_write_text(marker, json.dumps(stamp, indent=1) + "\n")
            if log:
                log(f"prepared {name}: {made} of {len(files)} audio files converted to "
                    f"{sample_rate} Hz under {out / name}, metadata {out / 'metadata' / name}.csv")
    return out
