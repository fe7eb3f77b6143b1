"""Miniatures of the datasets the multilayer-fusion paper reads through EVAR metadata CSVs
(nttcslab/eval-audio-repr): CREMA-D, VoxForge and the Surge pitch dataset. Each miniature holds
the audio as EVAR's download script leaves it and the EVAR CSV(s) beside it."""
from __future__ import annotations

from pathlib import Path

from ._core import (AudioLibrary, MiniatureSpec, csv_text, fake_id, pick, sound, write_audio,
                    write_text)

# ========================================================================================= CREMA-D
CREMAD_SR = 16000
#: actor -> (split written in cremad.csv, synthetic voice factors)
CREMAD_ACTORS = {"1001": ("test", {"midi": 50}), "1002": ("train", {"midi": 57}),
                 "1003": ("train", {"midi": 47}), "1004": ("valid", {"midi": 60})}
#: emotion code -> (hedgewars affect group, synthetic delivery factors)
CREMAD_EMOTIONS = {"ANG": ("anger", {"rate_hz": 5.5, "timbre": "bright"}),
                   "HAP": ("happy", {"rate_hz": 4.5, "timbre": "nasal"}),
                   "NEU": ("neutral", {"rate_hz": 3.5, "timbre": "dark"})}
CREMAD_EXTRA = ("1002", "IEO", "ANG", "HI")   # a sentence recorded at an intensity level


def build_cremad(root: Path, lib: AudioLibrary) -> None:
    plan = [(a, "DFA", e, "XX") for a in CREMAD_ACTORS for e in CREMAD_EMOTIONS]
    plan.append(CREMAD_EXTRA)
    rows = []
    for actor, sentence, emotion, level in plan:
        split, voice = CREMAD_ACTORS[actor]
        affect, delivery = CREMAD_EMOTIONS[emotion]
        midi = voice["midi"] + (3 if emotion == "HAP" else 0)
        snd = sound("speech", pick("hedgewars", kind="^voice$", affect=f"^{affect}$",
                                   rank_by="speaker", rank=list(CREMAD_ACTORS).index(actor)),
                    midi=midi, **delivery)
        name = f"{actor}_{sentence}_{emotion}_{level}.wav"
        seconds = 2.2 + 0.1 * int(actor[-1])
        wave, origin, kind, _ = lib.clip(snd, seconds, CREMAD_SR, name, offset_s=0.25,
                                         event_s=seconds - 0.5)
        write_audio(root, name, wave, CREMAD_SR)
        lib.record(name, origin, kind)
        rows.append([name, emotion, actor, split])
    rows.sort(key=lambda r: r[0])
    write_text(root, "cremad.csv", csv_text(["file_name", "label", "speaker_id", "split"], rows))


CREMAD = MiniatureSpec(
    name="cremad", title="CREMA-D (Cao et al. 2014) with EVAR's speaker split",
    distribution="the AudioWAV/*.wav files of CheyneyComputerScience/CREMA-D as EVAR's "
                 "download_cremad.py leaves them (flat, <ActorID>_<Sentence>_<Emotion>_<Level>"
                 ".wav), and EVAR's evar/metadata/cremad.csv",
    builder=build_cremad, adapter="cremad",
    audio_format="WAV, 16 kHz, mono, 16-bit PCM, 2.3-2.6 s",
    differences=(
        "3 of the 6 emotions (ANG, HAP, NEU), 4 actors, 13 clips instead of 7,438.",
        "Actors 1001 (test), 1002 and 1003 (train) have EVAR's splits; actor 1004 is in the test "
        "split of EVAR's file but stands for the validation speakers here.",
        "The voices are acted game phrases (Debian hedgewars voice packs grouped by what the "
        "phrase says: a proxy for emotion, not an annotation) or synthetic speech, not the "
        "CREMA-D sentences; cremad.csv sits in the audio folder (EVAR keeps it in "
        "evar/metadata/).",
    ),
    quirks=("The label is also coded in the file name; one sentence (IEO) carries an intensity "
            "level (HI) instead of XX.",),
    options={"metadata_csv": "cremad.csv"}, path_options=("metadata_csv",),
    debian_sources=("hedgewars",), params={"sr": CREMAD_SR, "actors": CREMAD_ACTORS,
                                           "emotions": CREMAD_EMOTIONS, "extra": CREMAD_EXTRA})

# ======================================================================================== VoxForge
VOXFORGE_SR = 16000
#: language -> synthetic voice factors
VOXFORGE_LANGUAGES = {"en": {"midi": 52, "rate_hz": 4.0, "timbre": "bright"},
                      "es": {"midi": 57, "rate_hz": 5.0, "timbre": "nasal"},
                      "fr": {"midi": 48, "rate_hz": 4.5, "timbre": "dark"}}
#: (archive split, utterance count, seconds)
VOXFORGE_ARCHIVES = (("train", 2, 4.2), ("valid", 1, 3.6), ("test", 1, 5.1))


def build_voxforge(root: Path, lib: AudioLibrary) -> None:
    rows = []
    for language, factors in VOXFORGE_LANGUAGES.items():
        snd = sound("speech", pick("asterisk", language=f"^{language}$", category="^words$"),
                    **factors)
        for a, (split, count, seconds) in enumerate(VOXFORGE_ARCHIVES):
            user = ("anonymous", "miniuser", "testspeaker")[a]
            tag = fake_id(f"vf:{language}:{a}", 3, "abcdefghijklmnopqrstuvwxyz")
            archive = f"{user}-2011{3 + a:02d}{10 + a:02d}-{tag}"
            prompts = []
            for u in range(count):
                utt = f"a{u + 1:04d}"
                rel = f"{archive}/wav/{utt}.wav"
                wave, origin, kind = lib.utterance(snd, seconds + 0.4 * u, VOXFORGE_SR, rel)
                write_audio(root, rel, wave, VOXFORGE_SR)
                lib.record(rel, origin, kind)
                rows.append([rel, language, split])
                prompts.append(f"{archive}/mfc/{utt} (miniature: no transcript)")
            write_text(root, f"{archive}/etc/PROMPTS", "\n".join(prompts) + "\n")
            write_text(root, f"{archive}/etc/README",
                       f"User Name:{user}\n\nSpeaker Characteristics:\n\nGender: unknown\n"
                       f"Language: {language.upper()}\n\nMiniature archive: see MINIATURE.txt "
                       f"at the root.\n")
    rows.sort(key=lambda r: r[0])
    write_text(root, "voxforge.csv", csv_text(["file_name", "label", "split"], rows))


VOXFORGE = MiniatureSpec(
    name="voxforge", title="VoxForge language identification with EVAR's split",
    distribution="the VoxForge .tgz archives listed by TFDS, extracted by EVAR's "
                 "download_voxforge.py into one folder per archive (<user>-<date>-<id>/wav/*.wav, "
                 "etc/README, etc/PROMPTS), and EVAR's evar/metadata/voxforge.csv",
    builder=build_voxforge, adapter="voxforge",
    audio_format="WAV, 16 kHz, mono, 16-bit PCM, 3.6-5.5 s",
    differences=(
        "3 of the 6 languages (en, es, fr), 9 archives, 12 utterances instead of 176,428; "
        "archive names are made up.",
        "EVAR's voxforge.csv was not available here: its columns are assumed to be EVAR's usual "
        "file_name,label,split (the adapter makes the same assumption) with file_name = "
        "<archive>/wav/<utterance>.wav.",
        "One voice per language (Debian asterisk prompts joined with pauses, or synthetic "
        "speech), so speaker and language coincide; PROMPTS hold no transcripts.",
    ),
    quirks=("Splits are by archive (speaker session): all utterances of an archive share a "
            "split.",),
    options={"metadata_csv": "voxforge.csv"}, path_options=("metadata_csv",),
    debian_sources=("asterisk",), params={"sr": VOXFORGE_SR, "languages": VOXFORGE_LANGUAGES,
                                          "archives": VOXFORGE_ARCHIVES})

# =========================================================================================== Surge
SURGE_SR, SURGE_SECONDS = 16000, 4.0
#: real tone names and their split in EVAR's evar/predefined/dataset_surge_tone_splits.csv,
#: with the soundfont family/program rank and synthetic instrument standing in for each
SURGE_TONES = {
    "surge-patches-3rdparty-Bluelight-Keys-Digi-Piano-velocity64":
        ("train", ("piano", 0), ("piano_note", "bright")),
    "surge-patches-3rdparty-Dan-Maurer-Keys-FM-Piano-1-velocity64":
        ("train", ("piano", 1), ("piano_note", "dark")),
    "surge-patches-3rdparty-Bluelight-Keys-Rotary-Blue-velocity64":
        ("valid", ("organ", 0), ("flute", "bright")),
    "surge-patches-3rdparty-Bluelight-Keys-Ghost-Glass-Harmonium-velocity64":
        ("test", ("organ", 1), ("trumpet", "nasal")),
}
SURGE_PITCHES = (60, 62, 64)


def build_surge(root: Path, lib: AudioLibrary) -> None:
    files = []
    for tone, (split, (family, rank), (synth, timbre)) in SURGE_TONES.items():
        for pitch in SURGE_PITCHES:
            rel = f"{tone}/{pitch}.ogg"
            snd = sound(synth, pick("soundfont", labels=f"^{family}$", rank_by="program",
                                    rank=rank), midi=pitch, timbre=timbre)
            wave, origin, kind, _ = lib.clip(snd, SURGE_SECONDS, SURGE_SR, rel, event_s=3.0,
                                             extra_match={"pitch": f"^{pitch}$"})
            write_audio(root, rel, wave, SURGE_SR, subtype="VORBIS", fmt="OGG")
            lib.record(rel, origin, kind)
            files.append((rel, str(pitch), split))
    files.sort()
    write_text(root, "dataset_surge_tone_splits.csv",
               csv_text(["tone", "split"], sorted((t, v[0]) for t, v in SURGE_TONES.items())))
    # EVAR's make_metadata.py surge() writes DataFrame.to_csv with the index: a leading unnamed
    # column
    write_text(root, "surge.csv", csv_text(["", "file_name", "label", "split"],
                                           [[i, *f] for i, f in enumerate(files)]))


SURGE = MiniatureSpec(
    name="surge", title="Pitch Audio Dataset (Surge synthesizer; Turian et al.) as EVAR reads it",
    distribution="the Zenodo record 4677097 unpacked to <tone>/<pitch>.ogg, with EVAR's "
                 "evar/predefined/dataset_surge_tone_splits.csv (and the surge.csv EVAR's "
                 "make_metadata.py writes from them)",
    builder=build_surge, adapter="surge",
    audio_format="Ogg Vorbis, mono, 16 kHz, 4 s (the real files' rate and length were not "
                 "verified here)",
    differences=(
        "4 real tone names (with their real EVAR splits: 2 train, 1 valid, 1 test) and 3 pitches "
        "(60, 62, 64), 12 files instead of the full tone x pitch grid.",
        "The tones are soundfont programs (Debian fluid-soundfont-gm) or synthetic notes, not "
        "renderings of those Surge patches; the pitch file naming (<MIDI number>.ogg) follows "
        "EVAR's use of the file stem as the label and is not verified against the release.",
        "dataset_surge_tone_splits.csv lists only the 4 tones; both EVAR CSVs sit in the "
        "audio folder.",
    ),
    quirks=("surge.csv has a leading unnamed index column (DataFrame.to_csv without "
            "index=False), as EVAR writes it.",
            "Whole tones are split, so test tones are unseen instruments."),
    options={"tone_splits_csv": "dataset_surge_tone_splits.csv"},
    path_options=("tone_splits_csv",), debian_sources=("soundfont",),
    params={"sr": SURGE_SR, "tones": SURGE_TONES, "pitches": SURGE_PITCHES})
