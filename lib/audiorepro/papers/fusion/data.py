"""Data of the multilayer-fusion chapter: the paper's nine downstream tasks, as offline analogues
or as the real datasets.

:func:`fusion_tasks` returns ``{paper task: ClipTable}`` for the book's analogues, built from real
recordings in Debian packages (:mod:`audiorepro.data.debian.tasks`) plus one music-style proxy
rendered here from the Hydrogen drum samples (:func:`music_style_table`):

======== ==================== ===============================================================
paper    analogue             what
======== ==================== ===============================================================
ESC-50   ``sound_events``     Tux Paint + Hedgewars sound effects (5 folds; fold 5 test)
US8K     ``drums``            Hydrogen drum hits by instrument family (unseen kits in test)
SPCV2    ``digits``           spoken digits 0-9 (Asterisk + Tux Paint voices; unseen voices)
VC1      ``speakers``         Hedgewars voice pack = speaker (unseen phrases), recorded again in
                              simulated sessions (:func:`simulate_sessions`: test sessions unseen)
VF       ``languages``        language of Asterisk / Tux Paint / KLettres speech
CRM-D    ``affect``           Hedgewars phrase group (anger/happy/fear/pain/neutral) - a proxy
GTZAN    ``music_style``      drum-groove style (rock, disco, hip-hop, bossa, waltz, shuffle,
                              reggae), 4 s rendered from Hydrogen kit samples with tempo, phase
                              and gain jitter; kits split as in ``drums`` (unseen kits in test)
NSynth   ``instrument_family`` GM family of FluidR3 soundfont notes (unseen programs in test)
Surge    ``pitch``            MIDI pitch of FluidR3 notes (unseen programs in test)
======== ==================== ===============================================================

When the Debian sources cannot be had (:class:`~audiorepro.data.debian.fetch.DebianSourceUnavailable`)
the tasks that the synthetic sound world can stand in for fall back to single-event synthetic
clips (:func:`audiorepro.data.synthetic.make_event_table`): ESC-50 -> event class, US8K -> parent
class, NSynth -> timbre, Surge -> MIDI pitch of pitched classes; the speech tasks and GTZAN have
no synthetic stand-in and are reported as :class:`TaskUnavailable`.

:func:`paper_tasks` reads the real datasets in the layout of the authors' evaluation package EVAR
(``evar/metadata/<task>.csv``) through :mod:`audiorepro.data.adapters.evar`.

:func:`subsample` keeps at most ``n`` clips per split, stratified round-robin over classes in the
order of the clip-id hash (deterministic).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import torch

from audiorepro import paths
from audiorepro.paths import project_path
from audiorepro.caching import stable_digest
from audiorepro.data.adapters import evar
from audiorepro.data.audio import load_audio, save_audio
from audiorepro.data.cliptable import ClipTable, ClipTableError
from audiorepro.data.debian.common import stable_bucket
from audiorepro.data.debian.fetch import DebianSourceUnavailable
from audiorepro.data.debian.tasks import build_task
from audiorepro.data.leakage import shortcut_probes
from audiorepro.data.synthetic import make_event_table
from audiorepro.fileio import atomic_write_text

from .prepare import EVAR_NAMES, prepare_evar_layout

__all__ = ["equalise_levels", "common_level_db", "simulate_sessions", "session_channel", "apply_channel", "SESSIONS_PER_SPLIT", "ANALOGUE_LEVEL_DB", "shortcut_table", "user_task", "notebook_tasks", "project_path", "SAMPLE_RATE", "ANALOGUES", "EVAR_NAMES", "MUSIC_STYLES", "MUSIC_STYLE_COUNTS",
           "TaskUnavailable", "subsample", "render_groove", "music_style_table", "fusion_tasks",
           "paper_tasks", "task_overview", "load_tasks"]

SAMPLE_RATE = 16000
#: paper task key -> analogue name
ANALOGUES: dict[str, str] = {
    "ESC-50": "sound_events", "US8K": "drums", "SPCV2": "digits", "VC1": "speakers",
    "VF": "languages", "CRM-D": "affect", "GTZAN": "music_style",
    "NSynth": "instrument_family", "Surge": "pitch",
}

#: groove patterns: steps per bar, beats per bar, tempo range (BPM), hits {family: [steps]}
MUSIC_STYLES: dict[str, dict] = {
    "rock": dict(steps=16, beats=4, bpm=(100, 130),
                 hits={"kick": [0, 8, 10], "snare": [4, 12], "hihat": [0, 2, 4, 6, 8, 10, 12, 14]}),
    "disco": dict(steps=16, beats=4, bpm=(115, 130),
                  hits={"kick": [0, 4, 8, 12], "hihat": [2, 6, 10, 14], "clap": [4, 12]}),
    "hiphop": dict(steps=16, beats=4, bpm=(82, 98),
                   hits={"kick": [0, 7, 10], "snare": [4, 12], "hihat": list(range(16))}),
    "bossa": dict(steps=16, beats=4, bpm=(120, 140),
                  hits={"kick": [0, 3, 8, 11], "stick": [0, 3, 6, 10, 12],
                        "shaker": [0, 2, 4, 6, 8, 10, 12, 14]}),
    "waltz": dict(steps=12, beats=3, bpm=(90, 150),
                  hits={"kick": [0], "snare": [4, 8], "hihat": [0, 4, 8]}),
    "shuffle": dict(steps=12, beats=4, bpm=(110, 160),
                    hits={"ride": [0, 3, 5, 6, 9, 11], "hihat": [3, 9], "kick": [0, 6]}),
    "reggae": dict(steps=16, beats=4, bpm=(70, 90),
                   hits={"kick": [8], "stick": [8], "hihat": [2, 6, 10, 14]}),
}
MUSIC_STYLE_COUNTS = {"train": 24, "valid": 8, "test": 16}


class TaskUnavailable(RuntimeError):
    """A task cannot be built here; the message says why."""


# ============================================================================ subsampling
def subsample(table: ClipTable, max_per_split: Mapping[str, int] | int | None) -> ClipTable:
    """At most ``max_per_split[split]`` clips of each split (an int applies to every split),
    taken round-robin over the classes, each class in the order of the SHA-1 of its clip ids
    (fixed on every machine). ``None`` keeps everything. Classes are kept as they are.

    The ``cv`` split of a leave-one-fold-out task (EVAR's ESC-50 and US8K: a ``fold`` column)
    is capped with the picks also spread over the folds: pick k goes, where its class allows,
    to the k-th fold in turn (else to the fold with the fewest picks), so that every fold kept
    leaves clips for training when it is the test fold."""
    if max_per_split is None:
        return table
    frame = table.frame
    keep: list[int] = []
    for split, grp in frame.groupby("split", sort=True):
        cap = max_per_split if isinstance(max_per_split, int) else max_per_split.get(str(split))
        if cap is None or len(grp) <= cap:
            keep += list(grp.index)
            continue
        if cap < 0:
            raise ValueError(f"subsample: max_per_split[{split!r}] = {cap} must be >= 0")
        queues = []
        for _, cg in grp.groupby("labels", sort=True):
            order = sorted(cg.index, key=lambda i: hashlib.sha1(str(frame.at[i, "clip_id"]).encode()).hexdigest())
            queues.append(order)
        if str(split) == "cv" and "fold" in frame.columns:
            keep += _spread_over_folds(queues, frame.loc[grp.index, "fold"].astype(int), cap)
            continue
        chosen: list[int] = []
        depth = 0
        while len(chosen) < cap:
            for q in queues:
                if depth < len(q) and len(chosen) < cap:
                    chosen.append(q[depth])
            depth += 1
        keep += chosen
    sub = frame.loc[sorted(keep)].copy()
    return ClipTable(sub, table.root, table.classes, table.name)


def _spread_over_folds(queues: list[list[int]], fold: pd.Series, cap: int) -> list[int]:
    """``cap`` rows: class round-robin over ``queues`` (each in hash order), pick k taken from
    fold ``folds[k % F]`` when its class has a clip there, else from the class's fold with the
    fewest picks so far (ties: the hash order)."""
    folds = sorted(fold.unique())
    queues = [list(q) for q in queues]
    count = {f: 0 for f in folds}
    chosen: list[int] = []
    k = c = 0
    while len(chosen) < cap and any(queues):
        q = queues[c % len(queues)]
        c += 1
        if not q:
            continue
        want = folds[k % len(folds)]
        pick = next((i for i in q if fold[i] == want), None)
        if pick is None:
            pick = min(q, key=lambda i: (count[fold[i]], q.index(i)))
        q.remove(pick)
        count[fold[pick]] += 1
        chosen.append(pick)
        k += 1
    return chosen


# ============================================================================ music style proxy
def _style_recipe(drums: ClipTable, counts: Mapping[str, int], seconds: float, seed: int) -> str:
    ids = "|".join(drums.frame["clip_id"] + ":" + drums.frame["split"])
    return f"v1|{ids}|{sorted(counts.items())}|{seconds}|{seed}|{sorted(MUSIC_STYLES)}"


def render_groove(style: str, samples: Mapping[str, list[torch.Tensor]], rng: np.random.Generator,
                  seconds: float = 4.0, sample_rate: int = SAMPLE_RATE) -> tuple[torch.Tensor, float]:
    """One clip of a groove ``style`` (key of :data:`MUSIC_STYLES`) from drum ``samples``
    (family -> list of (T,) waveforms). Returns ``(wave (seconds * sample_rate,), bpm)``.

    Tempo is uniform in the style's range, the pattern starts at a random step, every hit gets
    a gain jitter of -6..0 dB, peak normalised to 0.9."""
    spec = MUSIC_STYLES[style]
    bpm = float(rng.uniform(*spec["bpm"]))
    step_s = 60.0 / bpm * spec["beats"] / spec["steps"]
    n = int(round(seconds * sample_rate))
    out = torch.zeros(n)
    phase = int(rng.integers(0, spec["steps"]))
    n_steps = int(np.ceil(seconds / step_s)) + 1
    for fam, steps in spec["hits"].items():
        pool = samples.get(fam) or []
        if not pool:
            continue
        voice = pool[int(rng.integers(0, len(pool)))]
        hit_steps = set(steps)
        for k in range(n_steps):
            if (k + phase) % spec["steps"] not in hit_steps:
                continue
            start = int(round(k * step_s * sample_rate))
            if start >= n:
                break
            seg = voice[: n - start] * float(10 ** (rng.uniform(-6.0, 0.0) / 20))
            out[start:start + seg.shape[0]] += seg
    peak = float(out.abs().max())
    if peak > 0:
        out = out * (0.9 / peak)
    return out, bpm


def music_style_table(drums: ClipTable, counts: Mapping[str, int] = MUSIC_STYLE_COUNTS,
                      seconds: float = 4.0, seed: int = 0, out_root: str | os.PathLike | None = None
                      ) -> ClipTable:
    """The GTZAN stand-in: groove-style clips rendered from the Hydrogen kits of ``drums``.

    Each clip uses the samples of one kit of its split (a family the kit lacks is drawn from the
    other kits of the same split), so test clips come from kits never heard in training. Written
    once under ``data/fusion/music_style_<hash>/`` (FLAC + ``clips.csv``).
    """
    for s in ("train", "valid", "test"):
        if counts.get(s, 0) < 1:
            raise ValueError(f"music_style_table: counts[{s!r}] must be >= 1, got {counts.get(s)}")
    recipe = _style_recipe(drums, counts, seconds, seed)
    name = "music_style_" + stable_digest(recipe, 10)
    out_dir = Path(out_root) if out_root is not None else paths.data_dir("fusion", name)
    csv = out_dir / "clips.csv"
    if csv.is_file():
        return ClipTable.read(csv, name="music_style")
    rng = np.random.default_rng(seed)
    cache: dict[Path, torch.Tensor] = {}
    frame = drums.frame
    rows = []
    for split in ("train", "valid", "test"):
        part = frame[frame["split"] == split]
        if part.empty:
            raise ClipTableError(f"music_style_table: drums table has no {split!r} clips")
        kits = sorted(k for k, g in part.groupby("kit") if {"kick", "snare", "hihat"} <= set(g["labels"]))
        if not kits:
            kits = sorted(part["kit"].unique())

        def family_samples(rows_: pd.DataFrame) -> dict[str, list[torch.Tensor]]:
            out: dict[str, list[torch.Tensor]] = {}
            for i, r in rows_.iterrows():
                p = drums.audio_path(int(i))
                if p not in cache:
                    cache[p] = load_audio(p, SAMPLE_RATE)[0][: int(1.5 * SAMPLE_RATE)]
                out.setdefault(str(r["labels"]), []).append(cache[p])
            return out

        split_pool = family_samples(part.assign())
        m = 0
        for style in sorted(MUSIC_STYLES):
            for _ in range(int(counts[split])):
                kit = kits[int(rng.integers(0, len(kits)))]
                kit_pool = family_samples(part[part["kit"] == kit])
                pool = {f: kit_pool.get(f) or split_pool.get(f, []) for f in
                        set(split_pool) | set(kit_pool)}
                wave, bpm = render_groove(style, pool, rng, seconds)
                rel = f"audio/{split}_{m:04d}.flac"
                save_audio(out_dir / rel, wave, SAMPLE_RATE)
                rows.append({"clip_id": f"style-{split}-{m:04d}", "path": rel, "split": split,
                             "labels": style, "kit": kit, "bpm": round(bpm, 2), "source": "hydrogen"})
                m += 1
    table = ClipTable(pd.DataFrame(rows), out_dir, sorted(MUSIC_STYLES), "music_style")
    table.write(csv)
    atomic_write_text(out_dir / "recipe.txt", recipe + "\n")
    return ClipTable.read(csv, name="music_style")


# ============================================================================ task sets
def _synthetic_fallback(paper_task: str, n_per_class: int, seed: int) -> ClipTable:
    column = {"ESC-50": "labels", "US8K": "parent", "NSynth": "timbre", "Surge": "pitch"}.get(paper_task)
    if column is None:
        raise TaskUnavailable(f"{paper_task}: Debian sources unavailable and the synthetic world "
                              "has no stand-in for this task")
    ev = make_event_table(paths.data_dir("fusion", f"synthetic_events_n{n_per_class}_s{seed}"),
                          n_per_class=n_per_class, seed=seed, clip_seconds=2.0, progress=False)
    frame = ev.frame.copy()
    if column == "pitch":
        frame = frame[frame["pitch"].notna() & (frame["pitch"].astype(str) != "")]
        frame["labels"] = frame["pitch"].astype(float).astype(int).astype(str)
    else:
        frame["labels"] = frame[column].astype(str)
    counts = frame["labels"].value_counts()
    frame = frame[frame["labels"].isin(counts[counts >= 3].index)]
    return ClipTable(frame.reset_index(drop=True), ev.root, [], f"synthetic_{ANALOGUES[paper_task]}")


#: RMS level (dBFS, whole clip) every real analogue clip is brought to (:func:`equalise_levels`)
ANALOGUE_LEVEL_DB = -20.0
#: peak ceiling after the gain: a clip whose peak would pass it is turned down to it instead
PEAK_CEILING = 0.99


def _rewritten_copy(table: ClipTable, folder: str, params: Mapping, rewrite) -> ClipTable:
    """``table`` with every clip passed through ``rewrite(row_index, wave, sr) -> wave``
    and written as a 16-bit FLAC copy under ``cache/fusion/<folder>/<key>/`` (key: ids, files'
    size and time, ``params``; reused while they are unchanged) at the same relative paths, so a
    path-derived ``source`` stays what it was. Other columns are kept; segments (``start_s`` /
    ``duration_s``) become whole files."""
    f = table.frame.reset_index(drop=True)
    stamps = []
    for i in range(len(f)):
        st = os.stat(table.audio_path(i))
        stamps.append(f"{f['clip_id'].iloc[i]}|{f['path'].iloc[i]}|{st.st_size}|{st.st_mtime_ns}|"
                      f"{f['start_s'].iloc[i] if 'start_s' in f.columns else ''}|"
                      f"{f['duration_s'].iloc[i] if 'duration_s' in f.columns else ''}")
    key = stable_digest({"clips": stamps, **params}, 16)
    base = paths.cache_dir("fusion", folder, key)
    depth = max((sum(1 for q in Path(str(x)).parts if q == "..") for x in f["path"]), default=0)
    root = base.joinpath(*(["tables"] * depth)) if depth else base
    rows = []
    for i in range(len(f)):
        rel = Path(str(f["path"].iloc[i]))
        rel = rel if rel.suffix == ".flac" else rel.with_name(rel.name + ".flac")  # x.wav, x.ogg: two files
        out = root / rel
        if not out.is_file():
            wave, sr = load_audio(table.audio_path(i), **_segment(table, i))
            save_audio(out, rewrite(i, wave, sr), sr)
        rows.append(str(rel))
    frame = f.drop(columns=[c for c in ("start_s", "duration_s") if c in f.columns]).assign(path=rows)
    return ClipTable(frame, root, name=table.name)


def _segment(table: ClipTable, i: int) -> dict[str, float]:
    f = table.frame
    return {k: float(f[k].iloc[i]) for k in ("start_s", "duration_s")
            if k in f.columns and pd.notna(f[k].iloc[i])}


def common_level_db(table: ClipTable, level_db: float = ANALOGUE_LEVEL_DB,
                    peak: float = PEAK_CEILING) -> float:
    """The highest RMS level (dBFS), at most ``level_db``, that every clip of ``table`` reaches
    without its peak passing ``peak``: ``min(level_db, min over clips of 20 log10(peak / crest))``
    (silent clips are left out)."""
    reachable = [float(level_db)]
    for i in range(len(table)):
        wave, _ = load_audio(table.audio_path(i), **_segment(table, i))
        rms = float(wave.double().square().mean().sqrt()) if wave.numel() else 0.0
        if rms > 0:
            reachable.append(20 * np.log10(peak * rms / float(wave.abs().max())))
    return round(min(reachable), 3)


def equalise_levels(table: ClipTable, level_db: float = ANALOGUE_LEVEL_DB,
                    peak: float = PEAK_CEILING) -> ClipTable:
    """``table`` with every clip brought to one RMS level: ``level_db``, or lower where a clip
    could not reach it without its peak passing ``peak`` (:func:`common_level_db`; the level is
    over the whole clip or its ``start_s`` / ``duration_s`` segment), written as 16-bit FLAC
    copies under ``cache/fusion/levelled/<key>/`` (:func:`_rewritten_copy`).

    Why: the shortcut probes (:func:`shortcut_table`) found the recording level alone predicting
    the label of three analogues (VF's languages, GTZAN's drum styles, NSynth's instrument
    families: their packages and instruments were recorded at different levels), so those
    tasks partly measured the level, not the representation. One level for the whole table,
    not -20 dBFS with loud-peaked clips turned down: sparse grooves (GTZAN's reggae) have the
    highest crest factor, and turning only them down made the level name the style again.
    EVAR feeds the real datasets as recorded; this applies to the book's analogues only."""
    target: list[float] = []      # the common level, read from the clips once a copy is missing

    def to_level(_: int, wave: torch.Tensor, sr: int) -> torch.Tensor:
        if not target:
            target.append(10 ** (common_level_db(table, level_db, peak) / 20))
        rms = float(wave.double().square().mean().sqrt()) if wave.numel() else 0.0
        return wave * (target[0] / rms if rms > 0 else 1.0)

    # the key holds what determines the level (the clips, level_db, peak) and the rule, so that
    # copies made by the former per-clip rule are never served
    return _rewritten_copy(table, "levelled", {"level_db": float(level_db), "peak": float(peak),
                                               "rule": "one level per table"}, to_level)


#: recording sessions per speaker and split (:func:`simulate_sessions`)
SESSIONS_PER_SPLIT: dict[str, int] = {"train": 3, "valid": 1, "test": 1}


def session_channel(session: str, seed: int = 0) -> dict[str, float]:
    """The channel of one simulated recording session, drawn from the hash of ``session`` and
    ``seed`` alone (so independent of the speaker): band limits (high-pass 60-400 Hz, low-pass
    3-7.5 kHz), a peaking EQ (1-3 kHz, -8..+8 dB), a room (RT60 0.1-0.6 s, direct-to-reverberant
    ratio 0-12 dB) and a noise floor (SNR 25-45 dB)."""
    rng = np.random.default_rng(int(stable_digest({"session": session, "seed": int(seed)}, 12), 16))
    return {"highpass_hz": float(rng.uniform(60, 400)), "lowpass_hz": float(rng.uniform(3000, 7500)),
            "eq_hz": float(rng.uniform(1000, 3000)), "eq_db": float(rng.uniform(-8, 8)),
            "rt60_s": float(rng.uniform(0.1, 0.6)), "drr_db": float(rng.uniform(0, 12)),
            "snr_db": float(rng.uniform(25, 45))}


def apply_channel(wave: torch.Tensor, sr: int, channel: Mapping[str, float], seed: int = 0) -> torch.Tensor:
    """(..., S) -> (..., S): ``wave`` through :func:`session_channel`'s ``channel`` (torchaudio biquads,
    a decaying-noise room response by FFT convolution, white noise at ``snr_db``; the noise and
    the room drawn from ``seed``), at the input's RMS level."""
    import torchaudio.functional as AF
    if wave.numel() == 0:
        return wave
    rng = torch.Generator().manual_seed(int(seed))
    x = wave.float().reshape(-1, wave.shape[-1])            # (C, S)
    rms_in = x.square().mean().sqrt()
    x = AF.highpass_biquad(x, sr, channel["highpass_hz"])
    x = AF.lowpass_biquad(x, sr, min(channel["lowpass_hz"], 0.45 * sr))
    x = AF.equalizer_biquad(x, sr, channel["eq_hz"], channel["eq_db"], Q=1.0)
    t = torch.arange(int(channel["rt60_s"] * sr)) / sr
    tail = torch.randn(t.shape[0], generator=rng) * torch.exp(-6.9078 * t / channel["rt60_s"])
    tail[0] = 0.0
    tail = tail / tail.square().sum().sqrt() * 10 ** (-channel["drr_db"] / 20)
    room = tail.clone()
    room[0] = 1.0                                   # the direct path
    x = AF.fftconvolve(x, room.unsqueeze(0).expand(x.shape[0], -1))[..., : wave.shape[-1]]
    sig = x.square().mean().sqrt()
    x = x + torch.randn(x.shape, generator=rng) * sig * 10 ** (-channel["snr_db"] / 20)
    out = x * (rms_in / x.square().mean().sqrt().clamp_min(1e-12))
    return out.reshape(wave.shape).to(wave.dtype)


def simulate_sessions(table: ClipTable, seed: int = 0,
                      per_split: Mapping[str, int] = SESSIONS_PER_SPLIT) -> ClipTable:
    """``table`` (with a ``speaker`` column) recorded again in simulated sessions: each speaker's
    clips of a split are dealt, by the hash of their clip id, to ``per_split[split]`` sessions
    (``session`` column ``<speaker>/<split>-<k>``), and every session gets its own channel
    (:func:`session_channel`, :func:`apply_channel`). Written as FLAC copies under
    ``cache/fusion/sessions/<key>/`` (:func:`_rewritten_copy`).

    Why: the VoxCeleb1 analogue's speakers are Hedgewars voice packs, each recorded in one
    session, so a pack's channel is shared by its train and test clips and names the speaker.
    VoxCeleb1 tests on videos never seen in training. Here a speaker's test session has a
    channel never heard in training (and three training sessions teach that the channel
    varies); the pack's own recording chain stays and cannot be removed."""
    f = table.frame
    if "speaker" not in f.columns:
        raise ValueError(f"simulate_sessions: table {table.name!r} has no speaker column")
    bad = sorted(set(f["split"]) - set(per_split))
    if bad:
        raise ValueError(f"simulate_sessions: no session count for split(s) {bad} (per_split={dict(per_split)})")
    sessions = [f"{spk}/{split}-{stable_bucket(str(cid), int(per_split[split]))}"
                for spk, split, cid in zip(f["speaker"].astype(str), f["split"], f["clip_id"].astype(str))]
    channels = {s: session_channel(s, seed) for s in sorted(set(sessions))}
    ids = f["clip_id"].astype(str).tolist()
    sessioned = ClipTable(f.assign(session=sessions), table.root, name=table.name)

    def record(i: int, wave: torch.Tensor, sr: int) -> torch.Tensor:
        return apply_channel(wave, sr, channels[sessions[i]], seed=stable_bucket(ids[i] + f"|{seed}", 2**31))

    return _rewritten_copy(sessioned, "sessions", {"sessions": sessions, "seed": int(seed)}, record)


def fusion_tasks(names: list[str] | None = None, max_per_split: Mapping[str, int] | int | None = None,
                 synthetic_fallback: bool = True, synthetic_per_class: int = 12, seed: int = 0,
                 style_counts: Mapping[str, int] = MUSIC_STYLE_COUNTS, real_data: bool = True,
                 style_seconds: float = 4.0, sessions: bool = True
                 ) -> dict[str, ClipTable | Exception]:
    """``{paper task: ClipTable}`` of the book's analogues (see the module docstring).

    Args:
        names: paper task keys (default: all nine, in the paper's order).
        max_per_split: cap per split (see :func:`subsample`), e.g. ``{"train": 160, ...}``.
        synthetic_fallback: use the synthetic stand-ins when Debian data is unavailable.
        real_data: ``False`` skips the Debian recordings altogether (no download or build:
            the smoke profile) and uses the synthetic stand-ins where they exist.
        style_seconds: length of the rendered GTZAN grooves (4 s: at least one bar at every
            style's slowest tempo, reggae's 4/4 at 70 BPM being 3.4 s).
        sessions: record the VC1 analogue's speakers again in simulated sessions
            (:func:`simulate_sessions`), so that a test clip's channel was never heard in training.
    Returns:
        task -> table, or -> the exception explaining why the task is unavailable here.
    """
    names = names or list(ANALOGUES)
    bad = [n for n in names if n not in ANALOGUES]
    if bad:
        raise KeyError(f"fusion_tasks: unknown task(s) {bad}; known: {list(ANALOGUES)}")
    out: dict[str, ClipTable | Exception] = {}
    for task in names:
        try:
            if not real_data:
                raise TaskUnavailable(f"{task}: real_data=False")
            if task == "GTZAN":
                table = music_style_table(build_task("drums"), counts=style_counts, seed=seed,
                                          seconds=style_seconds)
            else:
                table = build_task(ANALOGUES[task])
            table.name = ANALOGUES[task]
        except (DebianSourceUnavailable, ClipTableError, OSError, TaskUnavailable) as exc:
            if not synthetic_fallback:
                out[task] = exc
                continue
            try:
                table = _synthetic_fallback(task, synthetic_per_class, seed)
            except TaskUnavailable as exc2:
                out[task] = exc2
                continue
            out[task] = subsample(table, max_per_split)
            continue
        table = subsample(table, max_per_split)
        if sessions and task == "VC1":
            table = simulate_sessions(table, seed=seed)
        out[task] = equalise_levels(table)
    return out


def paper_tasks(data_root: str | os.PathLike, metadata_dir: str | os.PathLike,
                names: list[str] | None = None, on_missing: str = "error") -> dict[str, ClipTable]:
    """The nine real tasks in EVAR's layout: audio under ``<data_root>/<evar name>/`` and metadata
    ``<metadata_dir>/<evar name>.csv`` (EVAR's ``work/16k`` and ``evar/metadata``)."""
    names = names or list(EVAR_NAMES)
    out = {}
    for task in names:
        if task not in EVAR_NAMES:
            raise KeyError(f"paper_tasks: unknown task {task!r}; known: {list(EVAR_NAMES)}")
        ev = EVAR_NAMES[task]
        root, meta = Path(data_root) / ev, Path(metadata_dir) / f"{ev}.csv"
        if ev == "cremad":
            out[task] = evar.cremad(root, meta, on_missing=on_missing)
        elif ev == "voxforge":
            out[task] = evar.voxforge(root, meta, on_missing=on_missing)
        elif ev == "surge":
            out[task] = evar.surge(root, meta, on_missing=on_missing)
        else:
            out[task] = evar.evar_task(ev, root, meta, on_missing=on_missing)
    return out


def task_overview(tables: Mapping[str, ClipTable | Exception]) -> pd.DataFrame:
    """One row per paper task: analogue, clips per split, classes (or why it is unavailable)."""
    rows = []
    for task, t in tables.items():
        if isinstance(t, Exception):
            rows.append({"paper task": task, "analogue": ANALOGUES.get(task, ""),
                         "status": f"unavailable: {t}"})
            continue
        s = t.frame["split"].value_counts()
        rows.append({"paper task": task, "analogue": t.name, "status": "ok", "clips": len(t),
                     "classes": t.num_classes, "train": int(s.get("train", 0)),
                     "valid": int(s.get("valid", 0)), "test": int(s.get("test", 0))})
    return pd.DataFrame(rows).set_index("paper task")


def shortcut_table(tables: Mapping[str, ClipTable | Exception], n_boot: int = 1000) -> pd.DataFrame:
    """The shortcut probes of every available task (:func:`audiorepro.data.leakage.shortcut_probes`:
    can the label be read from the file's duration, level, source package, speaker, phrase or
    recording session alone?),
    one row per task and shortcut, with the paper task and the table (analogue) it stands for;
    a task the probes cannot take (no test split, several labels per clip) gets one row saying
    why."""
    rows = []
    for task, t in tables.items():
        if isinstance(t, Exception):
            continue
        try:
            res = shortcut_probes(t, n_boot=n_boot)
        except ValueError as exc:
            rows.append({"paper task": task, "table": t.name, "verdict": f"not checked: {exc}"})
            continue
        rows.extend({"paper task": task, "table": t.name, **r} for r in res.to_dict("records"))
    return pd.DataFrame(rows, columns=["paper task", "table", "shortcut", "n_train", "n_test",
                                       "accuracy", "majority", "advantage", "lo", "hi", "verdict"])


def load_tasks(names: list[str], max_per_split: Mapping[str, int] | int | None = None,
               data_root: str | os.PathLike | None = None,
               metadata_dir: str | os.PathLike | None = None, real_data: bool = True,
               download_roots: Mapping[str, str | os.PathLike] | None = None
               ) -> dict[str, ClipTable | Exception]:
    """A notebook's task set: the paper's real datasets in EVAR layout when ``data_root`` is
    given (``metadata_dir`` defaults to ``<data_root>/metadata``), else the offline analogues of
    :func:`fusion_tasks` (``real_data=False``: synthetic stand-ins only); ``max_per_split`` caps
    either. With ``download_roots`` (task -> official download folder) the EVAR layout of
    those tasks is first prepared into ``data_root`` from the downloads
    (:func:`audiorepro.papers.fusion.prepare.prepare_evar_layout`; skipped when current).
    Relative paths are taken from the project home when they do not exist here."""
    if download_roots and not data_root:
        raise ValueError("load_tasks: download_roots needs data_root (the folder the EVAR layout "
                         "is prepared into)")
    if data_root:
        root = project_path(data_root)
        if download_roots:
            unknown = [t for t in download_roots if t not in EVAR_NAMES
                       and t not in EVAR_NAMES.values()]
            if unknown:
                raise KeyError(f"load_tasks: unknown task(s) {unknown} in download_roots; known: "
                               f"{list(EVAR_NAMES)}")
            wanted = {t for n in (names or list(EVAR_NAMES)) for t in (n, EVAR_NAMES.get(n))}
            prepare_evar_layout({t: project_path(d) for t, d in download_roots.items()
                                 if t in wanted}, root)
        meta = project_path(metadata_dir) if metadata_dir else root / "metadata"
        return {k: subsample(v, max_per_split) for k, v in paper_tasks(root, meta, names).items()}
    return fusion_tasks(names, max_per_split=max_per_split, real_data=real_data)


def user_task(clip_table: str | os.PathLike, task_name: str,
              max_per_split: Mapping[str, int] | int | None = None) -> dict[str, ClipTable]:
    """A user's own single-label task from a clip table (the project's clip-table CSV format,
    with ``train`` / ``valid`` / ``test`` splits or a ``fold`` column): ``{task_name: table}``.

    ``task_name`` names the results (it must not be one of the paper's task keys: a user's task
    is never shown beside a paper number). ``max_per_split`` caps each split as
    :func:`subsample` does, but never below the number of classes of that split, so every class
    keeps at least one clip. A path that does not exist from the working folder is taken
    relative to the project home. Errors name the file, the row or the parameter.
    """
    from .model import PAPER_TASKS
    name = str(task_name).strip()
    if not name:
        raise ValueError("user_task: give task_name (the name your results are recorded under)")
    if name in PAPER_TASKS or name == "Avg":
        raise ValueError(f"user_task: task_name={name!r} is a task key of the paper; choose "
                         "another name so that your results are never shown beside the paper's")
    path = project_path(clip_table)
    if not path.is_file():
        raise FileNotFoundError(f"user_task: clip_table {str(clip_table)!r} not found")
    table = ClipTable.read(path, name=name)
    for i in range(len(table)):
        labels = table.labels_of(i)
        if len(labels) != 1:
            raise ClipTableError(f"{path}: row {i} (clip {table.frame['clip_id'].iloc[i]!r}) has "
                                 f"{len(labels)} labels; the linear evaluation needs exactly one")
    if max_per_split is not None:
        counts = table.frame.groupby("split")["labels"].nunique().to_dict()
        if isinstance(max_per_split, int):
            caps = {str(k): max(max_per_split, int(n)) for k, n in counts.items()}
        else:
            caps = {str(k): max(int(v), int(counts.get(k, 0))) for k, v in max_per_split.items()}
        table = subsample(table, caps)
    return {name: table}


def notebook_tasks(tasks: list[str], max_per_split: Mapping[str, int] | int | None = None,
                   data_root: str | os.PathLike | None = None, real_data: bool = True,
                   clip_table: str | os.PathLike | None = None, task_name: str = "",
                   download_roots: Mapping[str, str | os.PathLike] | None = None
                   ) -> dict[str, ClipTable | Exception]:
    """The task set of a notebook: the user's own task when ``clip_table`` is given
    (:func:`user_task`; ``tasks`` is then ignored), else :func:`load_tasks` (``download_roots``:
    prepare the EVAR layout in ``data_root`` from the official downloads first)."""
    if clip_table:
        return user_task(clip_table, task_name, max_per_split)
    return load_tasks(tasks, max_per_split, data_root or None, real_data=real_data,
                      download_roots=download_roots or None)
