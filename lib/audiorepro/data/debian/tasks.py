"""Task tables derived from the Debian sources (real recordings) for the book.

``build_task(name) -> ClipTable`` builds (or reads) the sources it needs, derives the task table
and writes it to ``data_dir("debian", "tasks", NAME + ".csv")`` (paths relative to that folder,
``../<source>/audio/...``). Rows whose audio file has the same bytes as an earlier row's are
dropped (logged at WARNING, naming them) before folds are dealt and before the table is written,
so no recording sits in two splits or under two labels. :data:`TASKS` lists the names. Every split below is fixed (hashes of
documented keys, fixed name lists, or numpy.random.default_rng(seed) for the mixtures), so every run and machine
gets the same tables.

================== ========================= ===========================================================
task               like                      labels / splits
================== ========================= ===========================================================
sound_events       ESC-50                    Tux Paint effects labelled by their tag path
                                             (``animals/mammals``, ``animals/birds``, ``animals/other``,
                                             else the top-level tag: ``household``, ``hobbies`` ...)
                                             + Hedgewars effects labelled
                                             ``game/<effect class>``; classes with >= 5 clips. 5 folds,
                                             stratified: within a class, clips ordered by the hash of
                                             their clip id get folds 1,2,3,4,5,1,... ; fold 5 = test,
                                             fold 4 = valid, folds 1-3 = train.
effect_mixtures    AudioSet-style tagging    mixtures of 2-4 sound_events clips of the SAME split
                                             (train clips only in train mixtures ...), labels = union;
                                             5 s, deterministic from ``seed``; 480 / 80 / 160 mixtures.
drums              instrument recognition    Hydrogen drum family (``other`` left out; families with no
                                             train clip left out); test = unseen kits (TEST_KITS),
                                             valid = VALID_KITS.
digits             Speech Commands           spoken digits 0-9: Asterisk ``digits/0-9`` (5 languages)
                                             and Tux Paint spoken digits (~20 languages); split by voice
                                             (``speaker`` = source:voice): test = DIGITS_TEST_VOICES,
                                             valid = DIGITS_VALID_VOICES (Asterisk voices whose
                                             languages Tux Paint voices speak in train), the rest
                                             train: test voices unseen; valid / test prompts in a
                                             language no training voice speaks are left out (a digit
                                             in a language never heard is another word).
speakers           VoxCeleb (identification) Hedgewars voice pack = speaker; split by phrase (hash, every
                                             pack in every split; test phrases unseen).
languages          VoxForge                  language of Asterisk prompts, Tux Paint spoken descriptions
                                             and KLettres letters/syllables (base code: ``pt_BR`` ->
                                             ``pt``); languages with >= 30 clips; split by voice
                                             (:func:`voice_split`; a voice = an Asterisk speaker, or
                                             one package's recordings of one language): per language
                                             one test voice, one valid voice where there are three,
                                             the rest train; Asterisk's allison (en, es) test, june (fr)
                                             valid; languages spoken by one voice only are left out
                                             (their voice would name them).
affect             CREMA-D                   Hedgewars phrase groups (anger/happy/fear/pain/neutral) --
                                             a PROXY from what the phrase says, not rated emotion; split
                                             by phrase (:func:`phrase_split`: within each group, 20 %
                                             of the phrases test, 20 % valid): test phrases unseen, so
                                             a phrase's words cannot name its group; every voice pack
                                             in every split (a pack speaks every group).
instrument_family  NSynth                    GM family of the rendered FluidR3 notes; split by program
                                             (unseen instruments in test).
pitch              Surge / NSynth pitch      MIDI pitch (36..84 step 2) of the rendered notes, families
                                             ``percussive`` and ``sound_effects`` left out; split by
                                             program.
captions           Clotho / AudioCaps        Tux Paint effect + its English caption (``captions``
                                             column); labels as in sound_events; split = stamp hash.
================== ========================= ===========================================================
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from ..audio import load_audio, save_audio
from ..cliptable import ClipTable, ClipTableError
from .build import data_root, load_source, source_dir
from .common import SAMPLE_RATE, stable_bucket

#: Asterisk voices of the digits task's test and valid splits; every other voice trains. Their
#: languages (en, es, fr; it, ru) are spoken in train by Tux Paint voices.
DIGITS_TEST_VOICES = ("asterisk:allison", "asterisk:june")
DIGITS_VALID_VOICES = ("asterisk:carlo", "asterisk:ivrvoice_ru")
MIN_EVENT_CLIPS = 5
MIN_LANGUAGE_CLIPS = 30
#: Asterisk voices of the languages task's test and valid splits (the others train): allison
#: speaks en and es, june fr; carlo (it) and ivrvoice_ru (ru) train
LANGUAGE_TEST_VOICES = ("allison",)
LANGUAGE_VALID_VOICES = ("june",)
MIXTURE_COUNTS = {"train": 480, "valid": 80, "test": 160}
MIXTURE_SECONDS = 5.0
PITCH_EXCLUDED_FAMILIES = ("percussive", "sound_effects")

BASE_COLUMNS = ["clip_id", "path", "split", "labels"]


def tasks_dir(root: str | os.PathLike | None = None) -> Path:
    return data_root(root) / "tasks"


def _rel(table: ClipTable, source: str, frame: pd.DataFrame) -> pd.Series:
    """Paths of ``frame`` rows (of source ``source``) relative to the tasks folder."""
    return ("../" + source + "/") + frame["path"].astype(str)


def _take(table: ClipTable, source: str, frame: pd.DataFrame, labels: pd.Series | list,
          extra: list[str]) -> pd.DataFrame:
    out = pd.DataFrame({"clip_id": frame["clip_id"].to_numpy(),
                        "path": _rel(table, source, frame).to_numpy(),
                        "split": frame["split"].to_numpy(),
                        "labels": np.asarray(labels, dtype=object)})
    for c in extra:
        out[c] = frame[c].to_numpy() if c in frame.columns else ""
    out["source"] = source
    return out


def drop_duplicate_audio(frame: pd.DataFrame, root, name: str) -> pd.DataFrame:
    """``frame`` (paths relative to the tasks folder) without the rows whose audio file has the
    same bytes as an earlier row's (SHA-1 of every file), logged in one WARNING line. Identical
    recordings occur in the packages (e.g. the same silence prompt in every Asterisk language)
    and would otherwise sit in two splits or under two labels."""
    base = tasks_dir(root)
    base.mkdir(parents=True, exist_ok=True)   # the paths go through it (../<source>/...)
    return ClipTable(frame.reset_index(drop=True), base, name=name).drop_duplicates(content=True).frame


def stratified_folds(frame: pd.DataFrame, n_folds: int = 5) -> pd.Series:
    """Fold 1..n of each row: within each label, rows ordered by the hash of ``clip_id`` are
    dealt folds 1, 2, ..., n, 1, ... (balanced classes per fold; fixed)."""
    folds = pd.Series(0, index=frame.index, dtype=int)
    for _, grp in frame.groupby("labels", sort=True):
        order = sorted(grp.index, key=lambda i: (stable_bucket(str(frame.at[i, "clip_id"]), 10**9),
                                                 str(frame.at[i, "clip_id"])))
        for k, i in enumerate(order):
            folds.at[i] = k % n_folds + 1
    return folds


def event_class_of_tag(tag: str) -> str:
    """Sound-event class of a Tux Paint tag path: ``animals/mammals``, ``animals/birds``,
    ``animals/other`` (insects, amphibians, ...) for animals, else the top-level tag
    (``household/tools`` -> ``household``)."""
    parts = tag.split("/")
    if parts[0] == "animals":
        return "animals/" + (parts[1] if len(parts) > 1 and parts[1] in ("mammals", "birds") else "other")
    return parts[0]


def _sound_events(root) -> pd.DataFrame:
    tux = load_source("tuxpaint", root=root)
    hw = load_source("hedgewars", root=root)
    tf = tux.frame[tux.frame["kind"] == "effect"]
    hf = hw.frame[hw.frame["kind"] == "effect"]
    parts = [
        _take(tux, "tuxpaint", tf, [event_class_of_tag(t) for t in tf["tag_path"]],
              ["tag_path", "captions", "image"]),
        _take(hw, "hedgewars", hf, ["game/" + c for c in hf["effect_class"]], []),
    ]
    frame = drop_duplicate_audio(pd.concat(parts, ignore_index=True), root, "sound_events")
    counts = frame["labels"].value_counts()
    frame = frame[frame["labels"].isin(counts[counts >= MIN_EVENT_CLIPS].index)].reset_index(drop=True)
    frame["fold"] = stratified_folds(frame)
    frame["split"] = np.where(frame["fold"] == 5, "test", np.where(frame["fold"] == 4, "valid", "train"))
    return frame


def _effect_mixtures(root, seed: int = 0) -> pd.DataFrame:
    events = _sound_events(root)
    # the folder name fingerprints the pool and the recipe, so stale mixtures are never reused
    recipe = "|".join(events["clip_id"] + ":" + events["split"]) + \
        f"|{sorted(MIXTURE_COUNTS.items())}|{MIXTURE_SECONDS}"
    out_dir = tasks_dir(root) / f"effect_mixtures_seed{seed}_{hashlib.sha1(recipe.encode()).hexdigest()[:10]}"
    rng = np.random.default_rng(seed)
    n = int(round(MIXTURE_SECONDS * SAMPLE_RATE))
    rows = []
    base = tasks_dir(root)
    for split in ("train", "valid", "test"):
        pool = events[events["split"] == split].reset_index(drop=True)
        if len(pool) < 2:
            raise ClipTableError(f"effect_mixtures: split {split!r} of sound_events has "
                                 f"{len(pool)} clips; need at least 2 to mix")
        for m in range(MIXTURE_COUNTS[split]):
            k = int(rng.integers(2, min(4, len(pool)) + 1))
            idx = rng.choice(len(pool), size=k, replace=False)
            offsets = rng.uniform(0.0, MIXTURE_SECONDS * 0.5, size=k)
            gains_db = rng.uniform(-6.0, 0.0, size=k)
            labels = sorted({pool.at[i, "labels"] for i in idx})
            rel = Path(out_dir.name) / f"{split}_{m:04d}.flac"
            dst = base / rel
            if not dst.is_file():
                mix = torch.zeros(n)
                for i, off, g in zip(idx, offsets, gains_db):
                    wave, _ = load_audio(base / pool.at[i, "path"], SAMPLE_RATE)  # (T,)
                    rms = wave.pow(2).mean().sqrt().clamp_min(1e-4)
                    wave = wave / rms * 0.05 * (10 ** (g / 20))
                    start = int(off * SAMPLE_RATE)
                    seg = wave[: n - start]
                    mix[start:start + seg.shape[-1]] += seg
                peak = float(mix.abs().max())
                if peak > 0.9:
                    mix = mix * (0.9 / peak)
                save_audio(dst, mix, SAMPLE_RATE)
            rows.append({"clip_id": f"mix{seed}-{split}-{m:04d}", "path": rel.as_posix(),
                         "split": split, "labels": ";".join(labels),
                         "components": "|".join(pool.loc[idx, "clip_id"]), "source": "mixture"})
    return pd.DataFrame(rows)


def _drums(root) -> pd.DataFrame:
    hy = load_source("hydrogen", root=root)
    f = hy.frame[hy.frame["labels"] != "other"]
    train_fams = set(f.loc[f["split"] == "train", "labels"])
    f = f[f["labels"].isin(train_fams)]
    return _take(hy, "hydrogen", f, f["labels"], ["kit", "instrument", "layer"])


def _digits(root) -> pd.DataFrame:
    ast = load_source("asterisk", root=root)
    tux = load_source("tuxpaint", root=root)
    digits = [str(d) for d in range(10)]
    af = ast.frame[ast.frame["prompt"].isin([f"digits/{d}" for d in digits])]
    a = _take(ast, "asterisk", af, [p.split("/")[1] for p in af["prompt"]], ["language"])
    a["speaker"] = "asterisk:" + af["speaker"].to_numpy()
    tf = tux.frame[(tux.frame["kind"] == "spoken_name") & (tux.frame["tag_path"] == "symbols/math")
                   & tux.frame["labels"].isin(digits)]
    t = _take(tux, "tuxpaint", tf, tf["labels"], ["language"])
    t["speaker"] = "tuxpaint:" + tf["language"].to_numpy()
    frame = pd.concat([a, t], ignore_index=True)
    frame["split"] = ["test" if s in DIGITS_TEST_VOICES else "valid" if s in DIGITS_VALID_VOICES
                      else "train" for s in frame["speaker"]]
    lang = frame["language"].map(base_language)
    heard = set(lang[frame["split"] == "train"])   # a digit in a language never heard: another word
    return frame[(frame["split"] == "train") | lang.isin(heard)].reset_index(drop=True)


def _speakers(root) -> pd.DataFrame:
    hw = load_source("hedgewars", root=root)
    f = hw.frame[hw.frame["kind"] == "voice"]
    return _take(hw, "hedgewars", f, f["speaker"], ["speaker", "phrase", "affect"])


def base_language(code: str) -> str:
    return str(code).split("_")[0].split("@")[0].lower()


def _languages(root) -> pd.DataFrame:
    ast = load_source("asterisk", root=root)
    tux = load_source("tuxpaint", root=root)
    kl = load_source("klettres", root=root)
    tf = tux.frame[tux.frame["kind"] == "description"]
    parts = [
        _take(ast, "asterisk", ast.frame, [base_language(x) for x in ast.frame["language"]],
              ["language", "speaker"]),
        _take(tux, "tuxpaint", tf, [base_language(x) for x in tf["language"]], ["language", "transcript"]),
        _take(kl, "klettres", kl.frame, [base_language(x) for x in kl.frame["language"]], ["language"]),
    ]
    frame = pd.concat(parts, ignore_index=True)
    counts = frame["labels"].value_counts()
    frame = frame[frame["labels"].isin(counts[counts >= MIN_LANGUAGE_CLIPS].index)].reset_index(drop=True)
    # one voice per package and language (Tux Paint, KLettres); Asterisk names its voices
    frame["speaker"] = np.where(frame["source"] == "asterisk", "asterisk:" + frame["speaker"].astype(str),
                                frame["source"] + ":" + frame["labels"].astype(str))
    frame["split"] = voice_split(frame, {**{f"asterisk:{v}": "test" for v in LANGUAGE_TEST_VOICES},
                                         **{f"asterisk:{v}": "valid" for v in LANGUAGE_VALID_VOICES}})
    return frame[frame["split"].notna()].reset_index(drop=True)


def voice_split(frame: pd.DataFrame, fixed: dict[str, str], salt: str = "language-voice:") -> pd.Series:
    """Split of every row by its voice (``speaker``) within its label (``labels``): ``fixed`` voices
    keep their split; of the others, ordered by the hash of ``salt + voice``, the first goes to
    test and the next to valid when the label has no such voice yet and one more is left, the
    rest to train. A label with fewer than two voices, or none left in train, is dropped (None):
    its test clips would be spoken by a training voice, or the label never heard in training."""
    out = pd.Series(None, index=frame.index, dtype=object)
    for _, grp in frame.groupby("labels", sort=True):
        voices = sorted(set(grp["speaker"]), key=lambda v: (stable_bucket(salt + v, 10**9), v))
        if len(voices) < 2:
            continue
        split = {v: fixed.get(v) for v in voices}
        free = [v for v in voices if split[v] is None]
        for name in ("test", "valid"):
            if name not in split.values() and len(free) >= 2:
                split[free.pop(0)] = name
        split.update({v: "train" for v in free})
        if "train" in split.values():
            out[grp.index] = grp["speaker"].map(split).to_numpy()
    return out


def _affect(root) -> pd.DataFrame:
    hw = load_source("hedgewars", root=root)
    f = hw.frame[hw.frame["kind"] == "voice"]
    out = _take(hw, "hedgewars", f, f["affect"], ["speaker", "phrase"])
    out["split"] = phrase_split(out, "affect-phrase:").to_numpy()
    return out


def phrase_split(frame: pd.DataFrame, salt: str, valid_share: float = 0.2,
                 test_share: float = 0.2) -> pd.Series:
    """Split of every row by its ``phrase``: within each label, the phrases ordered by the hash of
    ``salt + phrase`` give the first ``ceil(test_share * n)`` to test, the next
    ``ceil(valid_share * n)`` to valid (each at least one while two phrases are left for train),
    the rest to train; a phrase lies in one split only (test phrases are never heard in training)."""
    split_of: dict[str, str] = {}
    for _, grp in frame.groupby("labels", sort=True):
        phrases = sorted(set(grp["phrase"].astype(str)), key=lambda p: (stable_bucket(salt + p, 10**9), p))
        n = len(phrases)
        n_test = min(int(np.ceil(test_share * n)), max(0, n - 1))
        n_valid = min(int(np.ceil(valid_share * n)), max(0, n - 1 - n_test))
        for k, ph in enumerate(phrases):
            split_of.setdefault(ph, "test" if k < n_test else "valid" if k < n_test + n_valid else "train")
    return frame["phrase"].astype(str).map(split_of)


def _instrument_family(root) -> pd.DataFrame:
    sf = load_source("soundfont", root=root)
    return _take(sf, "soundfont", sf.frame, sf.frame["family"], ["program", "instrument", "pitch"])


def _pitch(root) -> pd.DataFrame:
    sf = load_source("soundfont", root=root)
    f = sf.frame[~sf.frame["family"].isin(PITCH_EXCLUDED_FAMILIES)]
    return _take(sf, "soundfont", f, [str(int(p)) for p in f["pitch"]],
                 ["program", "instrument", "family", "pitch"])


def _captions(root) -> pd.DataFrame:
    tux = load_source("tuxpaint", root=root)
    f = tux.frame[(tux.frame["kind"] == "effect") & (tux.frame["captions"].fillna("") != "")]
    return _take(tux, "tuxpaint", f, [event_class_of_tag(t) for t in f["tag_path"]],
                 ["captions", "tag_path", "image", "stamp"])


TASKS: dict[str, Callable[..., pd.DataFrame]] = {
    "sound_events": _sound_events, "effect_mixtures": _effect_mixtures, "drums": _drums,
    "digits": _digits, "speakers": _speakers, "languages": _languages, "affect": _affect,
    "instrument_family": _instrument_family, "pitch": _pitch, "captions": _captions,
}
TASK_NAMES: list[str] = list(TASKS)
TASK_SOURCES: dict[str, tuple[str, ...]] = {
    "sound_events": ("tuxpaint", "hedgewars"), "effect_mixtures": ("tuxpaint", "hedgewars"),
    "drums": ("hydrogen",), "digits": ("asterisk", "tuxpaint"), "speakers": ("hedgewars",),
    "languages": ("asterisk", "tuxpaint", "klettres"), "affect": ("hedgewars",),
    "instrument_family": ("soundfont",), "pitch": ("soundfont",), "captions": ("tuxpaint",),
}


def build_task(name: str, root: str | os.PathLike | None = None, **kwargs) -> ClipTable:
    """The clip table of task ``name`` (sources built first if needed), written to
    ``<root>/tasks/<name>.csv``. ``kwargs``: ``seed`` for ``effect_mixtures``.

    Raises:
        KeyError: unknown task name (the message lists the known ones).
        DebianSourceUnavailable: a source package cannot be fetched here.
    """
    if name not in TASKS:
        raise KeyError(f"unknown Debian task {name!r}; known: {TASK_NAMES}")
    frame = TASKS[name](root, **kwargs)
    if len(frame) == 0:
        raise ClipTableError(f"Debian task {name!r} has no clips (sources: {TASK_SOURCES[name]})")
    out = tasks_dir(root)
    out.mkdir(parents=True, exist_ok=True)
    # identical audio in two rows (two packages or two labels shipping the same recording)
    # would leak between splits: every duplicate after the first is dropped, with a log line
    table = ClipTable(frame.reset_index(drop=True), out, name=name).drop_duplicates(content=True)
    table.write(out / f"{name}.csv")
    return table


def build_tasks(names: list[str] | None = None, root: str | os.PathLike | None = None
                ) -> dict[str, ClipTable | Exception]:
    """Build (or read) several task tables; a task whose source cannot be had maps to the
    :class:`DebianSourceUnavailable` (or other data error) instead of raising, so a page can fall
    back to the synthetic world for just those tasks."""
    from .fetch import DebianSourceUnavailable

    out: dict[str, ClipTable | Exception] = {}
    for name in names or TASK_NAMES:
        try:
            out[name] = build_task(name, root)
        except (DebianSourceUnavailable, ClipTableError, OSError) as exc:
            out[name] = exc
    return out


def overview(tables: dict[str, ClipTable | Exception]) -> pd.DataFrame:
    """One row per task: clips per split, classes, median duration (s), sources, licences."""
    import soundfile as sf

    from .sources import get_source

    rows = []
    for name, table in tables.items():
        sources = TASK_SOURCES[name]
        licences = "; ".join(dict.fromkeys(get_source(s).licence for s in sources))
        if isinstance(table, Exception):
            rows.append(dict(task=name, status=f"unavailable: {table}", sources=", ".join(sources),
                             licences=licences))
            continue
        splits = table.frame["split"].value_counts()
        step = max(1, len(table) // 200)  # durations from a sample of at most ~200 files
        durations = [sf.info(str(table.audio_path(i))).duration for i in range(0, len(table), step)]
        rows.append(dict(task=name, status="built", clips=len(table), classes=table.num_classes,
                         train=int(splits.get("train", 0)), valid=int(splits.get("valid", 0)),
                         test=int(splits.get("test", 0)),
                         median_duration_s=round(float(np.median(durations)), 2),
                         sources=", ".join(sources), licences=licences))
    return pd.DataFrame(rows).set_index("task")
