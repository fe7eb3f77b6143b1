"""Miniatures of the labelled classification datasets: ESC-50, UrbanSound8K, FSD50K, Speech
Commands v2, VoxCeleb1, GTZAN and NSynth, each laid out as its release unpacks."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ._audioset_labels import AUDIOSET_CLASSES
from ._core import (AudioLibrary, MiniatureSpec, csv_text, fake_id, fake_number, mix, pick,
                    silence_floor, sound, write_audio, write_json, write_text)

# =========================================================================================== ESC-50
ESC50_SR, ESC50_SECONDS = 44100, 5.0
#: category -> (target, esc10, sound); targets and the esc10 flags are those of the real file
ESC50_CLASSES = {
    "dog": (0, True, sound("dog_bark", pick("tuxpaint", kind="^effect$", labels=r"(^|_)dogs?(_|$)"),
                           timbre="bright")),
    "rain": (10, True, sound("rain", pick("tuxpaint", kind="^effect$", labels=r"(^|_)rain(_|$)"))),
    "church_bells": (46, False, sound("church_bell", pick("tuxpaint", kind="^effect$",
                                                          labels=r"bells?(_|$)"))),
}


def build_esc50(root: Path, lib: AudioLibrary) -> None:
    rows = []
    for category, (target, esc10, snd) in ESC50_CLASSES.items():
        takes = [(fold, "A") for fold in range(1, 6)] + ([(1, "B")] if category == "dog" else [])
        for fold, take in takes:
            src = fake_number(f"esc50:{category}:{fold}", 10000, 260000)
            name = f"{fold}-{src}-{take}-{target}.wav"
            offset = 0.0 if category == "rain" else round(0.2 * fold, 2)
            event = 5.0 if category == "rain" else 1.5 + 0.4 * fold
            wave, origin, kind, _ = lib.clip(snd, ESC50_SECONDS, ESC50_SR, name, offset, event)
            write_audio(root, f"audio/{name}", wave, ESC50_SR)
            lib.record(f"audio/{name}", origin, kind)
            rows.append([name, fold, target, category, str(esc10), src, take])
    rows.sort(key=lambda r: r[0])
    header = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
    write_text(root, "meta/esc50.csv", csv_text(header, rows))


ESC50 = MiniatureSpec(
    name="esc50", title="ESC-50 (Piczak 2015)",
    distribution="GitHub archive ESC-50-master.zip: audio/<fold>-<freesound id>-<take>-"
                 "<target>.wav and meta/esc50.csv",
    builder=build_esc50, adapter="esc50",
    audio_format="WAV, 44.1 kHz, mono, 16-bit PCM, 5.0 s (220,500 samples), as the release",
    differences=(
        "3 of the 50 categories (dog, rain, church_bells; their real target numbers and esc10 "
        "flags), 16 clips instead of 2,000 (one per fold and category, plus a second take).",
        "src_file numbers are made up (they are not the Freesound clips of the real dataset).",
        "Only audio/ and meta/esc50.csv; the repository's README, LICENSE, tests and "
        "meta/esc50-human.xlsx are not reproduced.",
    ),
    quirks=("Two takes (A and B) cut from one source recording share the fold, as in the real "
            "file; a short event is padded with digital silence to 5 s.",),
    debian_sources=("tuxpaint",), params={"sr": ESC50_SR, "seconds": ESC50_SECONDS})

# ===================================================================================== UrbanSound8K
US8K_CLASSES = {
    "car_horn": (1, sound("car_horn", pick("tuxpaint", kind="^effect$", labels=r"horn"))),
    "dog_bark": (3, sound("dog_bark", pick("tuxpaint", kind="^effect$",
                                           labels=r"(^|_)dogs?(_|$)"))),
    "siren": (8, sound("siren", pick("tuxpaint", kind="^effect$",
                                     labels=r"siren|ambulance|police|fire_?(truck|engine)"))),
}
#: (sample rate, channels, soundfile subtype) cycled over the clips: the real files vary so
US8K_FORMATS = ((44100, 2, "PCM_16"), (48000, 2, "PCM_24"), (96000, 2, "PCM_24"),
                (22050, 1, "PCM_16"), (11025, 1, "PCM_U8"), (8000, 1, "PCM_16"),
                (44100, 1, "IMA_ADPCM"))
#: per class: (fold, seconds, salience); dog_bark's first two are consecutive slices of one
#: recording (same fsID, same fold)
US8K_PLAN = {
    "car_horn": ((1, 1.5, 1), (2, 2.0, 2), (3, 3.2, 1), (4, 4.0, 1)),
    "dog_bark": ((5, 4.0, 1), (5, 4.0, 1), (6, 0.9, 2), (7, 2.6, 1)),
    "siren": ((8, 4.0, 2), (9, 4.0, 1), (10, 4.0, 1), (1, 4.0, 2)),
}


def build_us8k(root: Path, lib: AudioLibrary) -> None:
    rows, j = [], 0
    for cls, (class_id, snd) in US8K_CLASSES.items():
        for k, (fold, seconds, salience) in enumerate(US8K_PLAN[cls]):
            shared = cls == "dog_bark" and k == 1
            fsid = fake_number(f"us8k:{cls}:{0 if shared else k}", 1000, 200000)
            occurrence, slice_id = 0, (1 if shared else 0)
            start = (4.0 if shared else round(fake_number(f"us8k:start:{cls}:{k}", 0, 600) / 10, 1))
            name = f"{fsid}-{class_id}-{occurrence}-{slice_id}.wav"
            if not shared:          # slices of one recording share its format
                sr, channels, subtype = US8K_FORMATS[j % len(US8K_FORMATS)]
                j += 1
            wave, origin, kind, _ = lib.clip(snd, seconds, sr, name)
            rel = f"audio/fold{fold}/{name}"
            write_audio(root, rel, wave, sr, subtype=subtype, channels=channels)
            lib.record(rel, f"{origin} [{sr} Hz, {channels} ch, {subtype}]", kind)
            rows.append([name, fsid, start, round(start + seconds, 6), salience, fold, class_id,
                         cls])
    rows.sort(key=lambda r: r[0])
    header = ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]
    write_text(root, "metadata/UrbanSound8K.csv", csv_text(header, rows))


US8K = MiniatureSpec(
    name="us8k", title="UrbanSound8K (Salamon et al. 2014)",
    distribution="UrbanSound8K.tar.gz: audio/fold1..fold10/<fsID>-<classID>-<occurrence>-"
                 "<slice>.wav and metadata/UrbanSound8K.csv",
    builder=build_us8k, adapter="us8k",
    audio_format="WAV as in the release: sample rates, channel counts and encodings vary per file "
                 "(here 8 to 96 kHz, mono and stereo, 8-bit unsigned, 16- and 24-bit PCM, IMA "
                 "ADPCM); slices of at most 4 s",
    differences=(
        "3 of the 10 classes (car_horn, dog_bark, siren with their real classIDs), 12 slices "
        "instead of 8,732, every fold 1-10 used at least once.",
        "fsID, start and end are made up (start/end locate a slice in a Freesound recording that "
        "does not exist).",
        "UrbanSound8K_README.txt and FREESOUNDCREDITS.txt are not reproduced.",
    ),
    quirks=("Files differ in sample rate, channel count and sample format (an IMA ADPCM file "
            "decodes to a few more samples than were written: ADPCM blocks are padded).",
            "Two slices of one recording (same fsID) sit in the same fold.",
            "start/end in the CSV are times in the original recording, not in the slice file."),
    debian_sources=("tuxpaint",), params={"formats": US8K_FORMATS, "plan": US8K_PLAN})

# =========================================================================================== FSD50K
FSD50K_SR = 44100
_AS_NAME = dict(AUDIOSET_CLASSES)


def fsd_label(mid: str) -> str:
    """FSD50K's spelling of an AudioSet class: ``", "`` -> ``"_and_"``, spaces -> ``_``."""
    return _AS_NAME[mid].replace(", ", "_and_").replace(" ", "_")


#: leaf mid -> ancestor mids (AudioSet ontology), FSD50K propagates labels to ancestors
FSD50K_LEAVES = {
    "/m/05tny_": ("/m/0bt9lr", "/m/068hy", "/m/0jbk"),             # Bark: Dog, Domestic, Animal
    "/m/0bm02": ("/m/026t6", "/m/0l14md", "/m/04szw", "/m/04rlf"),   # Bass drum: Drum, Percussion..
    "/m/03qtq": ("/m/01qbl", "/m/0l14md", "/m/04szw", "/m/04rlf"),   # Hi-hat: Cymbal, Percussion..
}
FSD50K_SOUNDS = {
    "/m/05tny_": sound("dog_bark", pick("tuxpaint", kind="^effect$", labels=r"(^|_)dogs?(_|$)"),
                       timbre="dark"),
    "/m/0bm02": sound("kick_drum", pick("hydrogen", labels="^kick$")),
    "/m/03qtq": sound("hi_hat", pick("hydrogen", labels="^hihat$")),
}
#: (leaf mids, split as written in dev.csv or "eval", seconds)
FSD50K_PLAN = (
    (("/m/05tny_",), "train", 2.1), (("/m/05tny_",), "train", 3.4), (("/m/05tny_",), "val", 1.6),
    (("/m/0bm02",), "train", 0.9), (("/m/0bm02",), "train", 1.3), (("/m/0bm02",), "val", 0.7),
    (("/m/03qtq",), "train", 0.4), (("/m/03qtq",), "train", 1.1), (("/m/03qtq",), "val", 0.6),
    (("/m/05tny_", "/m/03qtq"), "train", 4.0),
    (("/m/05tny_",), "eval", 2.5), (("/m/0bm02",), "eval", 1.0), (("/m/03qtq",), "eval", 0.8),
)


def _fsd_labels(leaves: tuple[str, ...]) -> list[str]:
    mids = list(leaves)
    for leaf in leaves:
        mids += [m for m in FSD50K_LEAVES[leaf] if m not in mids]
    return mids


def build_fsd50k(root: Path, lib: AudioLibrary) -> None:
    vocab = sorted({m for leaf, anc in FSD50K_LEAVES.items() for m in (leaf, *anc)},
                   key=fsd_label)
    write_text(root, "FSD50K.ground_truth/vocabulary.csv",
               csv_text(None, [[i, fsd_label(m), m] for i, m in enumerate(vocab)]))
    gt = {"dev": [], "eval": []}
    collection = {"dev": [], "eval": []}
    info = {"dev": {}, "eval": {}}
    ratings = {}
    for i, (leaves, split, seconds) in enumerate(FSD50K_PLAN):
        fname = str(fake_number(f"fsd50k:{i}", 100, 450000))
        part = "eval" if split == "eval" else "dev"
        n = int(round(seconds * FSD50K_SR))
        waves, origins, kinds = [], [], set()
        for k, leaf in enumerate(leaves):
            wave, origin, kind, _ = lib.clip(FSD50K_SOUNDS[leaf], seconds, FSD50K_SR,
                                             f"{fname}:{leaf}", offset_s=0.3 * k)
            waves.append((wave, 0.0))
            origins.append(origin)
            kinds.add(kind)
        wave = mix(waves, n, FSD50K_SR)
        rel = f"FSD50K.{part}_audio/{fname}.wav"
        write_audio(root, rel, wave, FSD50K_SR)
        lib.record(rel, " + ".join(origins), "+".join(sorted(kinds)))
        mids = _fsd_labels(leaves)
        row = [fname, ",".join(fsd_label(m) for m in mids), ",".join(mids)]
        gt[part].append(row + ([split] if part == "dev" else []))
        collection[part].append([fname, ",".join(fsd_label(m) for m in leaves), ",".join(leaves)])
        info[part][fname] = {"title": f"miniature_clip_{fname}.wav",
                             "description": "Generated clip of the audiorepro FSD50K miniature "
                                            "(see MINIATURE.txt).",
                             "tags": [fsd_label(m).lower() for m in leaves],
                             "license": "http://creativecommons.org/publicdomain/zero/1.0/",
                             "uploader": "audiorepro"}
        ratings[fname] = {m: [1.0, 1.0] for m in leaves}
    write_text(root, "FSD50K.ground_truth/dev.csv",
               csv_text(["fname", "labels", "mids", "split"], gt["dev"]))
    write_text(root, "FSD50K.ground_truth/eval.csv", csv_text(["fname", "labels", "mids"],
                                                              gt["eval"]))
    for part in ("dev", "eval"):
        write_text(root, f"FSD50K.metadata/collection/collection_{part}.csv",
                   csv_text(["fname", "labels", "mids"], collection[part]))
        write_json(root, f"FSD50K.metadata/{part}_clips_info_FSD50K.json", info[part], indent=4)
    write_json(root, "FSD50K.metadata/pp_pnp_ratings_FSD50K.json", ratings)
    write_text(root, "FSD50K.doc/README.md",
               "# FSD50K miniature\n\nNot the FSD50K documentation: see ../MINIATURE.txt.\n")


FSD50K = MiniatureSpec(
    name="fsd50k", title="FSD50K (Fonseca et al. 2022)",
    distribution="Zenodo zip archives unpacked to FSD50K.dev_audio/, FSD50K.eval_audio/, "
                 "FSD50K.ground_truth/{dev,eval,vocabulary}.csv, FSD50K.metadata/, FSD50K.doc/",
    builder=build_fsd50k, adapter="fsd50k",
    audio_format="WAV, 44.1 kHz, mono, 16-bit PCM, variable length (0.4 to 4 s here; 0.3 to 30 s "
                 "in the release)",
    differences=(
        "3 leaf classes (Bark, Bass_drum, Hi-hat) and their AudioSet ancestors: a vocabulary of "
        "11 of the 200 classes, re-indexed 0..10 in the release's alphabetical order (the real "
        "index numbers differ).",
        "13 clips (dev: 7 train + 3 val, eval: 3) instead of 51,197; fnames are made-up numbers.",
        "FSD50K.metadata holds collection/collection_{dev,eval}.csv, "
        "{dev,eval}_clips_info_FSD50K.json and pp_pnp_ratings_FSD50K.json with made-up content; "
        "class_info_FSD50K.json, the vocabulary_collection files and the real FSD50K.doc are not "
        "reproduced.",
    ),
    quirks=("Label and mid lists are quoted comma-separated cells (unquoted when one label), "
            "leaf labels first, then the propagated ancestors.",
            "vocabulary.csv has no header line.",
            "A 0.4 s clip (the release's shortest are 0.3 s) and one clip with two leaf classes."),
    debian_sources=("tuxpaint", "hydrogen"), params={"sr": FSD50K_SR, "plan": FSD50K_PLAN})

# ============================================================================ Speech Commands v2
SPC_SR = 16000
SPC_WORDS = {"one": "1", "two": "2", "three": "3"}
#: speaker slots: (name in the hash, split, takes, Debian pick maker or None, synthetic factors)
SPC_SPEAKERS = (
    ("asterisk-en", "train", 1, "asterisk", {"midi": 57, "timbre": "bright"}),
    ("tuxpaint-en", "train", 1, "tuxpaint", {"midi": 50, "timbre": "dark"}),
    ("synthetic-a", "valid", 2, None, {"midi": 60, "timbre": "nasal"}),
    ("synthetic-b", "test", 1, None, {"midi": 47, "timbre": "dark"}),
)
SPC_NOISE = {"white_noise.wav": None, "pink_noise.wav": None,
             "running_tap.wav": "water_tap", "doing_the_dishes.wav": "dishes_clink",
             "exercise_bike.wav": "car_engine", "dude_miaowing.wav": "cat_meow"}
SPC_NOISE_SECONDS = 10.0


def _spc_pick(source: str | None, digit: str):
    if source == "asterisk":
        return (pick("asterisk", language="^en$", labels=f"^digits/{digit}$"),)
    if source == "tuxpaint":
        return (pick("tuxpaint", kind="^spoken_name$", language="^en$", labels=f"^{digit}$"),)
    return ()


def build_spcv2(root: Path, lib: AudioLibrary) -> None:
    lists = {"valid": [], "test": []}
    for w, (word, digit) in enumerate(SPC_WORDS.items()):
        for slot, split, takes, source, factors in SPC_SPEAKERS:
            speaker = fake_id(f"spcv2:{slot}", 8)
            for take in range(takes):
                rel = f"{word}/{speaker}_nohash_{take}.wav"
                seconds = 0.85 if (word == "three" and slot == "synthetic-b") else 1.0
                snd = sound("speech", *_spc_pick(source, digit), rate_hz=3.0 + w, **factors)
                wave, origin, kind, _ = lib.clip(snd, seconds, SPC_SR, rel, offset_s=0.12,
                                                 event_s=0.6)
                write_audio(root, rel, wave, SPC_SR)
                lib.record(rel, origin, kind)
                if split in lists:
                    lists[split].append(rel)
    write_text(root, "validation_list.txt", "".join(f"{r}\n" for r in sorted(lists["valid"])))
    write_text(root, "testing_list.txt", "".join(f"{r}\n" for r in sorted(lists["test"])))
    n = int(SPC_NOISE_SECONDS * SPC_SR)
    from ..synth import dsp

    for i, (fname, synth) in enumerate(SPC_NOISE.items()):
        rel = f"_background_noise_/{fname}"
        if synth is None:
            exponent = 0.0 if fname.startswith("white") else 1.0
            wave = 0.2 * dsp.colored_noise(n, SPC_SR, np.random.default_rng(1000 + i), exponent)
            write_audio(root, rel, wave, SPC_SR)
            lib.record(rel, f"generated {'white' if exponent == 0 else 'pink'} noise (seed "
                            f"{1000 + i})", "synthetic")
        else:
            wave, origin, kind, _ = lib.clip(sound(synth), SPC_NOISE_SECONDS, SPC_SR, rel)
            write_audio(root, rel, wave + silence_floor(n, i), SPC_SR)
            lib.record(rel, origin, kind)
    write_text(root, "_background_noise_/README.md",
               "Miniature stand-ins for the six background noise files of Speech Commands "
               "(10 s each instead of about a minute); see ../MINIATURE.txt.\n")


SPCV2 = MiniatureSpec(
    name="spcv2", title="Speech Commands v0.02 (Warden 2018)",
    distribution="speech_commands_v0.02.tar.gz unpacked in place: <word>/<speaker hash>_nohash_"
                 "<n>.wav, validation_list.txt, testing_list.txt, _background_noise_/",
    builder=build_spcv2, adapter="spcv2",
    audio_format="WAV, 16 kHz, mono, 16-bit PCM, 1 s (one file 0.85 s, as some real ones are "
                 "shorter)",
    differences=(
        "3 of the 35 words (one, two, three), 15 clips instead of 105,829; four made-up speaker "
        "hashes shared by the three words (train: two speakers, valid: one speaker with two "
        "takes, test: one speaker).",
        "The six _background_noise_ files have their real names but are 10 s of generated noise "
        "or synthetic sound instead of 60-95 s recordings; the release's README.md and LICENSE "
        "are not reproduced.",
    ),
    quirks=("Split lists name files relative to the root with forward slashes; every file in "
            "neither list is training data.",
            "A speaker's repeated takes are numbered _nohash_0, _nohash_1 and stay in one split.",
            "Not every clip is exactly 1 s long."),
    debian_sources=("asterisk", "tuxpaint"),
    params={"sr": SPC_SR, "words": SPC_WORDS, "speakers": SPC_SPEAKERS, "noise": SPC_NOISE,
            "noise_seconds": SPC_NOISE_SECONDS})

# ======================================================================================= VoxCeleb1
VC1_SR = 16000
#: speaker id -> (asterisk language of the voice, synthetic factors)
VC1_SPEAKERS = {"id10001": ("en", {"midi": 58, "timbre": "bright", "rate_hz": 4.0}),
                "id10002": ("fr", {"midi": 55, "timbre": "nasal", "rate_hz": 4.5}),
                "id10003": ("it", {"midi": 46, "timbre": "dark", "rate_hz": 3.5})}
#: (video number, utterance number, split code 1/2/3, seconds)
VC1_PLAN = ((0, 1, "1", 4.6), (0, 2, "1", 6.2), (1, 1, "2", 4.1), (1, 2, "3", 5.3))


def build_vc1(root: Path, lib: AudioLibrary) -> None:
    lines = []
    for speaker, (language, factors) in VC1_SPEAKERS.items():
        snd = sound("speech", pick("asterisk", language=f"^{language}$", category="^words$"),
                    **factors)
        videos = [fake_id(f"vc1:{speaker}:{v}", 11,
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
                  for v in range(2)]
        for video, utt, code, seconds in VC1_PLAN:
            rel = f"{speaker}/{videos[video]}/{utt:05d}.wav"
            wave, origin, kind = lib.utterance(snd, seconds, VC1_SR, rel)
            write_audio(root, f"wav/{rel}", wave, VC1_SR)
            lib.record(f"wav/{rel}", origin, kind)
            lines.append(f"{code} {rel}")
    write_text(root, "iden_split.txt", "\n".join(sorted(lines, key=lambda s: s.split()[1])) + "\n")


VC1 = MiniatureSpec(
    name="vc1", title="VoxCeleb1 (Nagrani et al. 2017), speaker identification split",
    distribution="vox1_dev_wav.zip + vox1_test_wav.zip unpacked to wav/<speaker id>/<YouTube "
                 "id>/<nnnnn>.wav, and iden_split.txt from the VoxCeleb site",
    builder=build_vc1, adapter="vc1",
    audio_format="WAV, 16 kHz, mono, 16-bit PCM, 4-6 s utterances",
    differences=(
        "3 speakers (ids id10001-id10003 reused as labels only: the voices are not those "
        "people), 12 utterances instead of 153,516; YouTube ids are made up.",
        "An utterance is several short prompts of one speaker joined with pauses (Debian "
        "asterisk voices, one per language) or synthetic speech, not interview speech.",
        "vox1_meta.csv and the verification lists are not reproduced.",
    ),
    quirks=("iden_split.txt lines are '<1|2|3> id/video/utt.wav' without the wav/ prefix the "
            "audio folder has.",
            "Utterances of one video may fall in different identification splits."),
    debian_sources=("asterisk",), params={"sr": VC1_SR, "speakers": VC1_SPEAKERS, "plan": VC1_PLAN})

# =========================================================================================== GTZAN
GTZAN_SR = 22050
GTZAN_SAMPLES = 661794          # the usual length of a GTZAN file (30.013 s)
#: genre -> (file numbers for train, valid, test, tempo bpm, instruments)
GTZAN_GENRES = {
    "classical": ((0, 1, 2), 72, ("violin", "piano_note")),
    "jazz": ((10, 11, 12), 110, ("piano_note", "hi_hat")),
    "rock": ((20, 21, 22), 132, ("guitar_pluck", "kick_drum", "hi_hat")),
}
GTZAN_FAULTY = "jazz/jazz.00054.wav"      # in no split file (the fault-filtered split drops it)
_GM_FAMILY = {"violin": "strings", "piano_note": "piano", "guitar_pluck": "guitar"}
_DRUM = {"kick_drum": "kick", "hi_hat": "hihat"}


def _instrument(synth: str) -> tuple:
    if synth in _GM_FAMILY:
        return (pick("soundfont", labels=f"^{_GM_FAMILY[synth]}$"),)
    return (pick("hydrogen", labels=f"^{_DRUM[synth]}$"),)


def _music(lib: AudioLibrary, genre: str, number: int, sr: int, n: int,
           notes: dict) -> tuple[np.ndarray, str]:
    """30 s of a simple arrangement: notes on a scale at the genre's tempo. ``notes`` caches
    each (genre, instrument, pitch) note: a genre's songs share their instruments' samples."""
    _, bpm, instruments = GTZAN_GENRES[genre]
    beat = 60.0 / bpm
    rng = np.random.default_rng(number)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    parts, origins = [], set()
    t = 0.0
    while t < n / sr:
        for synth in instruments:
            if synth in _DRUM:
                if synth == "kick_drum" and int(round(t / beat)) % 2:
                    continue
                key = (genre, synth, 0)
            else:
                octave = 12 if synth == "violin" else 0
                key = (genre, synth, int(55 + scale[rng.integers(len(scale))] + octave))
            if key not in notes:
                seconds = 0.3 if synth in _DRUM else beat * 1.8      # one drum hit, or a note
                extra = {"pitch": f"^{_even(key[2])}$"} if synth in _GM_FAMILY else None
                wave, _, kind, _ = lib.clip(_note_sound(synth, key[2]), seconds, sr,
                                            ":".join(map(str, key)), extra_match=extra)
                notes[key] = (wave, kind)
            wave, kind = notes[key]
            origins.add(kind)
            parts.append((wave * (0.6 if synth in _DRUM else 1.0), t))
        t += beat
    wave = mix(parts, n, sr) + silence_floor(n, number)
    return wave, "+".join(sorted(origins))


def _even(midi: int) -> int:
    """The soundfont source renders even MIDI pitches only."""
    return midi - midi % 2


def _note_sound(synth: str, midi: int):
    factors = {"rate_hz": 2.0} if synth in _DRUM else {"midi": midi}
    return sound(synth, *_instrument(synth), **factors)


def build_gtzan(root: Path, lib: AudioLibrary) -> None:
    split_lines = {"train": [], "valid": [], "test": []}
    files = []
    for genre, (numbers, _, _) in GTZAN_GENRES.items():
        for split, number in zip(("train", "valid", "test"), numbers):
            files.append((f"{genre}/{genre}.{number:05d}.wav", genre, number))
            split_lines[split].append(f"{genre}/{genre}.{number:05d}.wav")
    files.append((GTZAN_FAULTY, "jazz", 54))
    notes: dict = {}
    for i, (rel, genre, number) in enumerate(files):
        n = GTZAN_SAMPLES if i != 1 else GTZAN_SAMPLES - 700      # one file a bit shorter
        wave, kinds = _music(lib, genre, number, GTZAN_SR, n, notes)
        write_audio(root, rel, wave, GTZAN_SR)
        lib.record(rel, f"{genre} arrangement of single notes ({kinds.replace('+', ' and ')})",
                   kinds)
    for split, name in (("train", "train_filtered.txt"), ("valid", "valid_filtered.txt"),
                        ("test", "test_filtered.txt")):
        write_text(root, name, "".join(f"{line}\n" for line in split_lines[split]))


GTZAN = MiniatureSpec(
    name="gtzan", title="GTZAN genres (Tzanetakis & Cook 2002) with the fault-filtered split",
    distribution="genres.tar.gz unpacked to <genre>/<genre>.000NN.wav (the .wav copies that "
                 "EVAR and TFDS read; the Marsyas archive itself has .au files), plus "
                 "train/valid/test_filtered.txt of jongpillee/music_dataset_split GTZAN_split",
    builder=build_gtzan, adapter="gtzan",
    audio_format="WAV, 22,050 Hz, mono, 16-bit PCM, 30.013 s (661,794 samples; one file 700 "
                 "samples shorter)",
    differences=(
        "3 of the 10 genres (classical, jazz, rock), 10 files instead of 1,000: one train, one "
        "valid and one test file per genre (the real filtered split has 443/197/290).",
        "The music is a simple arrangement of single notes (soundfont / drum-kit samples from "
        "Debian, or synthetic notes), not commercial recordings; the file numbers are not those "
        "of the real split lists.",
    ),
    quirks=("A file in no split list (jazz.00054.wav, the real dataset's corrupted one) stays "
            "on disk and out of the table.",
            "Lengths differ slightly from 30 s."),
    debian_sources=("soundfont", "hydrogen"),
    params={"sr": GTZAN_SR, "samples": GTZAN_SAMPLES, "genres": GTZAN_GENRES})

# ========================================================================================== NSynth
NSYNTH_SR, NSYNTH_SECONDS = 16000, 4.0
NSYNTH_FAMILIES = {"keyboard": (4, "piano_note", "piano"), "guitar": (3, "guitar_pluck", "guitar"),
                   "string": (8, "violin", "strings")}
NSYNTH_QUALITIES = ("bright", "dark", "distortion", "fast_decay", "long_release", "multiphonic",
                    "nonlinear_env", "percussive", "reverb", "tempo-synced")
#: split -> per family: (instrument number, source, pitch, velocity)
NSYNTH_PLAN = {
    "train": ((4, "acoustic", 60, 100), (17, "electronic", 48, 75)),
    "valid": ((31, "acoustic", 64, 50),),
    "test": ((42, "acoustic", 56, 127),),
}
_SOURCES = {"acoustic": 0, "electronic": 1, "synthetic": 2}


def build_nsynth(root: Path, lib: AudioLibrary) -> None:
    note_id = 1000
    for split, plan in NSYNTH_PLAN.items():
        folder = f"nsynth-{split}"
        examples = {}
        for family, (family_id, synth, gm) in NSYNTH_FAMILIES.items():
            for number, source, pitch, velocity in plan:
                instrument_str = f"{family}_{source}_{number:03d}"
                note_str = f"{instrument_str}-{pitch:03d}-{velocity:03d}"
                snd = sound(synth, pick("soundfont", labels=f"^{gm}$", rank_by="program",
                                        rank=number % 8), midi=pitch)
                wave, origin, kind, _ = lib.clip(snd, NSYNTH_SECONDS, NSYNTH_SR, note_str,
                                                 event_s=3.5, extra_match={"pitch": f"^{pitch}$"})
                rel = f"{folder}/audio/{note_str}.wav"
                write_audio(root, rel, wave * (velocity / 127.0), NSYNTH_SR)
                lib.record(rel, origin, kind)
                qualities = [0] * len(NSYNTH_QUALITIES)
                qualities[0 if source == "acoustic" else 1] = 1
                note_id += 7
                examples[note_str] = {
                    "qualities": qualities, "pitch": pitch, "note": note_id,
                    "instrument_source_str": source, "velocity": velocity,
                    "instrument_str": instrument_str, "instrument": 100 + family_id * 50 + number,
                    "sample_rate": NSYNTH_SR,
                    "qualities_str": [q for q, on in zip(NSYNTH_QUALITIES, qualities) if on],
                    "instrument_source": _SOURCES[source], "note_str": note_str,
                    "instrument_family": family_id, "instrument_family_str": family}
        write_json(root, f"{folder}/examples.json", examples, indent=4)


NSYNTH = MiniatureSpec(
    name="nsynth", title="NSynth v2.2 (Engel et al. 2017)",
    distribution="nsynth-{train,valid,test}.jsonwav.tar.gz, each unpacked to nsynth-<split>/"
                 "examples.json and nsynth-<split>/audio/<note_str>.wav (three separate downloads)",
    builder=build_nsynth, adapter="nsynth",
    audio_format="WAV, 16 kHz, mono, 16-bit PCM, 4 s (note held, then released)",
    differences=(
        "3 of the 11 instrument families (keyboard, guitar, string), 12 notes instead of 305,979; "
        "instrument numbers, note ids and qualities are made up.",
        "Notes are soundfont renderings (Debian fluid-soundfont-gm) or synthetic notes, not the "
        "NSynth sample libraries.",
    ),
    quirks=("examples.json maps note_str to a record with both numeric and *_str fields; "
            "instruments are disjoint between splits.",),
    debian_sources=("soundfont",), params={"sr": NSYNTH_SR, "plan": NSYNTH_PLAN,
                                           "families": NSYNTH_FAMILIES})
