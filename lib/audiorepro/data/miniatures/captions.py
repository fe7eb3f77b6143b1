"""Miniatures of the audio-caption datasets: Clotho v2.1, AudioCaps and WavCaps.

Captions need audio that matches them, so the clips are the synthetic sound world's mixtures
with the world's own captions (:func:`audiorepro.data.synthetic.clip_captions`); WavCaps'
FreeSound and SoundBible parts take a Debian Tux Paint sound effect with its English description
when that source is built.
"""
from __future__ import annotations

from pathlib import Path

from ._core import (AudioLibrary, MiniatureSpec, csv_text, fake_id, fake_number, pick, sound,
                    write_audio, write_json, write_text)
from .audioset import YT_ALPHABET


def _world_clip(seed: int, index: int, seconds: float, sr: int, n_captions: int):
    """(wave, captions, spec) of clip ``index`` of the synthetic world ``seed``."""
    from ..synthetic import clip_captions, clip_spec, render_clip

    spec = clip_spec(seed, index, seconds)
    return render_clip(spec, sr), clip_captions(spec, n_captions), spec


def _origin(seed: int, index: int) -> str:
    return (f"synthetic world clip {index} of seed {seed} with its generated captions "
            f"(audiorepro.data.synthetic)")


# ========================================================================================== Clotho
CLOTHO_SR = 44100
CLOTHO_SEED = 7101
#: native split -> (world clip index, seconds); the name pattern varies like Freesound titles
CLOTHO_PLAN = {
    "development": ((0, 15.4), (1, 22.0), (2, 30.0), (3, 18.6)),
    "validation": ((4, 24.3), (5, 16.8)),
    "evaluation": ((6, 27.5), (7, 20.1)),
}
#: (native split, index in that split) whose file takes the name of development's first file
CLOTHO_SHARED = ("evaluation", 1)
CLOTHO_MANUFACTURERS = ("ambient_recorder", "FieldRec_73", "kc_sounds")
CLOTHO_LATIN1_MANUFACTURER = "José_Q"       # only in the Latin-1 evaluation metadata
_NAME_PATTERNS = ("{Label} {k:02d}.wav", "{Scene}, {label} and more.wav",
                  "{Scene}_{Label}_loop.wav", "{Label} ({scene}).wav")


def _clotho_name(spec, k: int) -> str:
    label = spec.main_event().label.replace("_", " ")
    scene = spec.scene.replace("_", " ")
    return _NAME_PATTERNS[k % len(_NAME_PATTERNS)].format(
        Label=label.capitalize(), label=label, Scene=scene.capitalize(), scene=scene, k=k + 1)


def build_clotho(root: Path, lib: AudioLibrary) -> None:
    from ..synth.sounds import get_class

    first_name = None
    for native, plan in CLOTHO_PLAN.items():
        cap_rows, meta_rows = [], []
        for k, (index, seconds) in enumerate(plan):
            wave, captions, spec = _world_clip(CLOTHO_SEED, index, seconds, CLOTHO_SR, 5)
            name = _clotho_name(spec, index)
            if (native, k) == CLOTHO_SHARED:
                name = first_name            # a different recording under an existing name
            first_name = first_name or name
            write_audio(root, f"{native}/{name}", wave, CLOTHO_SR)
            lib.record(f"{native}/{name}", _origin(CLOTHO_SEED, index), "synthetic")
            cap_rows.append([name, *captions])
            keywords = sorted({kw for lab in spec.labels for kw in get_class(lab).keywords})
            sound_id = fake_number(f"clotho:{native}:{k}", 1000, 500000)
            maker = CLOTHO_LATIN1_MANUFACTURER if native == "evaluation" else \
                CLOTHO_MANUFACTURERS[index % len(CLOTHO_MANUFACTURERS)]
            total = int(round(seconds * CLOTHO_SR))
            offset = fake_number(f"clotho:offset:{native}:{k}", 0, 400) * CLOTHO_SR // 10
            meta_rows.append([name, ";".join(keywords), sound_id,
                              f"https://freesound.org/people/{maker}/sounds/{sound_id}/",
                              f"[{offset}, {offset + total}]", maker,
                              "http://creativecommons.org/licenses/by/3.0/"])
        write_text(root, f"clotho_captions_{native}.csv",
                   csv_text(["file_name"] + [f"caption_{i}" for i in range(1, 6)], cap_rows))
        write_text(root, f"clotho_metadata_{native}.csv",
                   csv_text(["file_name", "keywords", "sound_id", "sound_link",
                             "start_end_samples", "manufacturer", "license"], meta_rows),
                   encoding="latin-1" if native == "evaluation" else "utf-8")


CLOTHO = MiniatureSpec(
    name="clotho", title="Clotho v2.1 (Drossos et al. 2020)",
    distribution="Zenodo record 4783391: clotho_audio_{development,validation,evaluation}.7z "
                 "unpacked to development/, validation/, evaluation/, and "
                 "clotho_captions_<split>.csv, clotho_metadata_<split>.csv",
    builder=build_clotho, adapter="clotho",
    audio_format="WAV, 44.1 kHz, mono, 16-bit PCM, 15-30 s",
    differences=(
        "8 clips (4 development, 2 validation, 2 evaluation) instead of 3,839 + 1,045 + 1,045.",
        "The audio is the synthetic sound world's mixtures and the five captions per clip are "
        "generated from the same events; file names, sound ids, links, sample ranges and "
        "manufacturers are made up.",
    ),
    quirks=("One file name occurs in two splits (development and evaluation) for two different "
            "recordings, as four names do in the real v2.1 release.",
            "File names contain spaces, commas and parentheses; captions with commas are quoted.",
            "clotho_metadata_evaluation.csv is Latin-1, not UTF-8 (a manufacturer name with "
            "'é'), as some releases of the metadata files are."),
    params={"sr": CLOTHO_SR, "seed": CLOTHO_SEED, "plan": CLOTHO_PLAN, "shared": CLOTHO_SHARED})

# ======================================================================================= AudioCaps
AUDIOCAPS_SR = 32000
AUDIOCAPS_SEED = 7201
#: native split -> (world clip indices, captions per clip); the last test clip's video is gone
AUDIOCAPS_PLAN = {"train": ((0, 1, 2), 1), "val": ((10, 11), 5), "test": ((20, 21, 22), 5)}
AUDIOCAPS_MISSING = ("test", 22)


def build_audiocaps(root: Path, lib: AudioLibrary) -> None:
    next_id = {"train": 91130, "val": 97140, "test": 103520}
    for native, (indices, n_caps) in AUDIOCAPS_PLAN.items():
        rows = []
        for index in indices:
            ytid = fake_id(f"audiocaps:{index}", 11, YT_ALPHABET)
            start = 10 * fake_number(f"audiocaps:start:{index}", 0, 30)
            wave, captions, _ = _world_clip(AUDIOCAPS_SEED, index, 10.0, AUDIOCAPS_SR, n_caps)
            for cap in captions:
                next_id[native] += fake_number(f"audiocaps:id:{native}:{cap}", 1, 5)
                rows.append([next_id[native], ytid, start, cap.rstrip(".")])
            if (native, index) == AUDIOCAPS_MISSING:
                continue
            rel = f"{native}/{ytid}_{start}.wav"
            write_audio(root, rel, wave, AUDIOCAPS_SR)
            lib.record(rel, _origin(AUDIOCAPS_SEED, index), "synthetic")
        write_text(root, f"{native}.csv",
                   csv_text(["audiocap_id", "youtube_id", "start_time", "caption"], rows))


AUDIOCAPS = MiniatureSpec(
    name="audiocaps", title="AudioCaps (Kim et al. 2019)",
    distribution="train.csv, val.csv, test.csv of cdjkim/audiocaps dataset/, with the audio a "
                 "downloader fetched from YouTube as <split>/<YouTube id>_<start>.wav (the "
                 "adapter's default naming; copies differ)",
    builder=build_audiocaps, adapter="audiocaps",
    audio_format="WAV, 32 kHz, mono, 16-bit PCM, 10 s (real copies differ in rate: whatever the "
                 "downloader wrote)",
    differences=(
        "8 clips (train 3 with one caption each, val 2 and test 3 with five captions each) "
        "instead of about 51,000; YouTube ids, start times and audiocap ids are made up.",
        "The audio is the synthetic sound world's mixtures and the captions are generated from "
        "the same events.",
    ),
    quirks=("One caption per row: val and test clips have five rows sharing youtube_id and "
            "start_time.",
            "One test clip's video is no longer on YouTube: listed in test.csv, no audio; read "
            "with on_missing='drop' (every real copy misses some clips)."),
    options={"on_missing": "drop"},
    params={"sr": AUDIOCAPS_SR, "seed": AUDIOCAPS_SEED, "plan": AUDIOCAPS_PLAN,
            "missing": AUDIOCAPS_MISSING})

# ========================================================================================= WavCaps
WAVCAPS_SR = 32000
WAVCAPS_SEED = 7301
#: source -> (JSON file, world clip indices, seconds)
WAVCAPS_SOURCES = {
    "FreeSound": ("fsd_final.json", (0, 1), 8.0),
    "BBC_Sound_Effects": ("bbc_final.json", (2, 3), 10.0),
    "SoundBible": ("sb_final.json", (4, 5), 6.0),
    "AudioSet_SL": ("as_final.json", (6, 7), 10.0),
}
WAVCAPS_EFFECT = sound("dog_bark", pick("tuxpaint", kind="^effect$", captions=r"\w+\s+\w+"))


def _wavcaps_record(source: str, index: int, caption: str, seconds: float, title: str) -> dict:
    if source == "FreeSound":
        fid = str(fake_number(f"wavcaps:fs:{index}", 1000, 600000))
        return {"id": fid, "file_name": f"{title}.wav", "href": f"/people/miniuser/sounds/{fid}/",
                "tags": title.lower().split(), "description": title, "author": "miniuser",
                "duration": seconds, "download_link": "", "caption": caption}
    if source == "BBC_Sound_Effects":
        return {"description": title, "category": "['Nature']", "caption": caption,
                "id": f"{fake_number(f'wavcaps:bbc:{index}', 1000000, 9999999):08d}",
                "duration": seconds, "audio": "wav_path", "download_link": ""}
    if source == "SoundBible":
        return {"title": title, "description": title, "author": "miniuser", "href": "",
                "caption": caption, "id": str(fake_number(f"wavcaps:sb:{index}", 100, 2500)),
                "duration": seconds, "audio": "wav_path", "download_link": ""}
    return {"id": f"Y{fake_id(f'wavcaps:as:{index}', 11, YT_ALPHABET)}.wav", "caption": caption,
            "audio": "wav_path", "duration": seconds}


def build_wavcaps(root: Path, lib: AudioLibrary) -> None:
    for source, (json_name, indices, seconds) in WAVCAPS_SOURCES.items():
        data = []
        for k, index in enumerate(indices):
            wave, captions, spec = _world_clip(WAVCAPS_SEED, index, seconds, WAVCAPS_SR, 1)
            caption, origin, kind = captions[0], _origin(WAVCAPS_SEED, index), "synthetic"
            title = spec.main_event().label.replace("_", " ").title()
            if source in ("FreeSound", "SoundBible") and k == 0 and \
                    lib.candidates(WAVCAPS_EFFECT.picks[0]):
                got = lib.clip(WAVCAPS_EFFECT, seconds, WAVCAPS_SR, f"{source}:{index}")
                if got[3] is not None:      # a real Tux Paint effect with its description
                    wave, origin, kind = got[0], got[1], got[2]
                    caption = str(got[3].get("captions", "")).split("|")[0].strip() or caption
                    title = str(got[3].get("labels", title)).replace("_", " ")
            rec = _wavcaps_record(source, index, caption, seconds, title)
            stem = Path(rec["id"]).stem
            rel = f"Zip_files/{source}/{stem}.flac"
            write_audio(root, rel, wave, WAVCAPS_SR, fmt="FLAC")
            lib.record(rel, origin, kind)
            data.append(rec)
        write_json(root, f"json_files/{source}/{json_name}",
                   {"num_captions_per_audio": 1, "data": data})


WAVCAPS = MiniatureSpec(
    name="wavcaps", title="WavCaps (Mei et al. 2023)",
    distribution="the Hugging Face release cvssp/WavCaps: json_files/<source>/<name>_final.json "
                 "and the audio of Zip_files/<source>/ unpacked as <id stem>.flac (the layout "
                 "AudioFans/audidata reads)",
    builder=build_wavcaps, adapter="wavcaps",
    audio_format="FLAC, 32 kHz, mono, 16-bit, 6-10 s",
    differences=(
        "8 clips, two per source (FreeSound, BBC_Sound_Effects, SoundBible, AudioSet_SL), "
        "instead of about 403,000; ids, titles, authors and links are made up.",
        "Clips are at most 10 s (real FreeSound and BBC clips run to minutes).",
        "The audio is the synthetic sound world's mixtures with one generated caption each (the "
        "first FreeSound and SoundBible clips are a Debian Tux Paint effect with its English "
        "description when that source is built); the blacklist JSON files are not reproduced.",
    ),
    quirks=("Each source's JSON has its own record fields (file_name, href, tags / category / "
            "title / audio); AudioSet_SL ids are file names 'Y<id>.wav'.",),
    debian_sources=("tuxpaint",),
    params={"sr": WAVCAPS_SR, "seed": WAVCAPS_SEED, "sources": WAVCAPS_SOURCES})
