"""Miniatures of AudioSet as the papers read it: the segment CSVs with audio as the PANNs download
script names it, the PANNs packed waveform HDF5 files, and the TMac/THGCL feature file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ._audioset_labels import AUDIOSET_CLASSES
from ._core import AudioLibrary, MiniatureSpec, fake_id, seed_of, write_audio, write_text

AUDIOSET_SR, AUDIOSET_SECONDS = 32000, 10.0
WORLD_SEED = 7001
YT_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: subset -> (CSV name, header date line, world clip indices, indices whose audio is missing,
#: indices whose downloaded audio is shorter than 10 s)
AUDIOSET_SUBSETS = {
    "balanced_train": ("balanced_train_segments.csv", "Sun Mar  5 10:54:31 2017",
                       tuple(range(8)), (), (3,)),
    "eval": ("eval_segments.csv", "Sun Mar  5 10:54:25 2017", tuple(range(100, 105)), (104,), ()),
}
#: synthetic world class -> AudioSet mids (the class and, where natural, its usual companion)
SYNTH_TO_AUDIOSET = {
    "dog_bark": ("/m/0bt9lr", "/m/05tny_"), "cat_meow": ("/m/01yrx", "/m/07qrkrw"),
    "bird_chirp": ("/m/015p6", "/m/07pggtn"), "rooster_crow": ("/m/09b5t", "/m/07qn5dc"),
    "cow_moo": ("/m/01xq0k1", "/m/07rpkh9"), "cricket": ("/m/09xqv",),
    "car_engine": ("/m/0k4j", "/m/02mk9"), "car_horn": ("/m/0912c9",), "siren": ("/m/03kmc9",),
    "motorcycle": ("/m/04_sv",), "helicopter": ("/m/09ct_",), "aircraft": ("/m/0k5j",),
    "piano_note": ("/m/04rlf", "/m/05r5c"), "guitar_pluck": ("/m/04rlf", "/m/0342h"),
    "violin": ("/m/04rlf", "/m/07y_7"), "flute": ("/m/04rlf", "/m/0l14j_"),
    "trumpet": ("/m/04rlf", "/m/07gql"), "kick_drum": ("/m/0bm02",), "hi_hat": ("/m/03qtq",),
    "church_bell": ("/m/03w41f",), "dishes_clink": ("/m/04brg2",), "water_tap": ("/m/02jz0l",),
    "door_knock": ("/m/07r4wb8",), "vacuum_cleaner": ("/m/0d31p",),
    "alarm_clock": ("/m/046dlr",), "microwave_beep": ("/m/02fs_r",),
    "keyboard_typing": ("/m/0316dw",),
    "telephone_ring": ("/m/07pp8cl",), "speech": ("/m/09x0r",), "laughter": ("/m/01j3sz",),
    "footsteps": ("/m/07pbtc8",), "clapping": ("/m/0l15bq",), "cough": ("/m/01b_21",),
    "whistling": ("/m/01w250",), "baby_cry": ("/t/dd00002",), "rain": ("/m/06mb1",),
    "wind": ("/m/03m9d0z",), "thunder": ("/m/0ngt1",), "stream": ("/m/0j6m2",),
    "fire_crackle": ("/m/02_41", "/m/07pzfmf"), "hammer": ("/m/03l9g",), "drill": ("/m/01d380",),
    "saw": ("/m/01b82r",), "chainsaw": ("/m/01j4z9",),
}
MID_INDEX = {mid: i for i, (mid, _) in enumerate(AUDIOSET_CLASSES)}


def _ytid(subset: str, index: int) -> str:
    ytid = fake_id(f"audioset:{subset}:{index}", 11, YT_ALPHABET)
    if index == 0:                      # ids may start with '-' (why PANNs prefixes 'Y')
        ytid = "-" + ytid[1:]
    return ytid


def _clips():
    """Every planned clip: (subset, ytid, start, mids, wave or None when missing, world index)."""
    from ..synthetic import clip_spec, render_clip

    for subset, (_, _, indices, missing, short) in AUDIOSET_SUBSETS.items():
        for index in indices:
            spec = clip_spec(WORLD_SEED, index, AUDIOSET_SECONDS)
            mids: list[str] = []
            for label in spec.labels:
                mids += [m for m in SYNTH_TO_AUDIOSET[label] if m not in mids]
            start = 10.0 * (seed_of(f"as:start:{index}") % 40) + (0.5 if index % 3 == 1 else 0.0)
            wave = None
            if index not in missing:
                wave = render_clip(spec, AUDIOSET_SR)
                if index in short:
                    wave = wave[: int(8.7 * AUDIOSET_SR)]
            yield subset, _ytid(subset, index), start, mids, wave, index


def _class_labels_csv() -> str:
    # the release quotes every display name (some contain commas)
    return "index,mid,display_name\n" + "".join(
        f'{i},{mid},"{name}"\n' for i, (mid, name) in enumerate(AUDIOSET_CLASSES))


def _segments_csv(date: str, rows: list[tuple[str, float, list[str]]]) -> str:
    labels = {m for _, _, mids in rows for m in mids}
    n_pos = sum(len(mids) for _, _, mids in rows)
    head = (f"# Segments csv created {date}\n"
            f"# num_ytids={len(rows)}, num_segs={len(rows)}, num_unique_labels={len(labels)}, "
            f"num_positive_labels={n_pos}\n"
            "# YTID, start_seconds, end_seconds, positive_labels\n")
    return head + "".join(f'{y}, {s:.3f}, {s + 10.0:.3f}, "{",".join(mids)}"\n'
                          for y, s, mids in sorted(rows))


def build_audioset(root: Path, lib: AudioLibrary) -> None:
    rows: dict[str, list] = {s: [] for s in AUDIOSET_SUBSETS}
    for subset, ytid, start, mids, wave, index in _clips():
        rows[subset].append((ytid, start, mids))
        if wave is None:
            continue
        rel = f"{AUDIOSET_SUBSETS[subset][0][:-4]}/Y{ytid}.wav"
        write_audio(root, rel, wave, AUDIOSET_SR)
        lib.record(rel, f"synthetic world clip {index} of seed {WORLD_SEED} "
                        f"(audiorepro.data.synthetic.render_clip)", "synthetic")
    for subset, (fname, date, *_rest) in AUDIOSET_SUBSETS.items():
        write_text(root, fname, _segments_csv(date, rows[subset]))
    write_text(root, "class_labels_indices.csv", _class_labels_csv())


_PARAMS = {"sr": AUDIOSET_SR, "seed": WORLD_SEED, "subsets": AUDIOSET_SUBSETS,
           "mapping": SYNTH_TO_AUDIOSET}
_COMMON_DIFFERENCES = (
    "All 527 classes in class_labels_indices.csv, but 12 segments with audio (8 balanced_train, "
    "4 eval) instead of 22,160 + 20,371; YouTube ids and start times are made up.",
    "The audio is the synthetic sound world's 10 s mixtures (1-4 events over background noise), "
    "labelled by mapping its classes to AudioSet mids (Dog+Bark, Music+Piano, Speech, ...).",
)

AUDIOSET = MiniatureSpec(
    name="audioset", title="AudioSet (Gemmeke et al. 2017), balanced_train and eval",
    distribution="the segment CSVs and class_labels_indices.csv of the release, with audio "
                 "downloaded from YouTube and named as the PANNs download script names it "
                 "(<subset>/Y<YouTube id>.wav)",
    builder=build_audioset, adapter="audioset",
    audio_format="WAV, 32 kHz, mono, 16-bit PCM (as PANNs converts downloads), 10 s (one 8.7 s)",
    differences=_COMMON_DIFFERENCES + (
        "unbalanced_train_segments.csv is not reproduced.",),
    quirks=("Three '#' header lines, ', ' separators and always-quoted label lists.",
            "A YouTube id starting with '-' (the reason for the 'Y' prefix of file names).",
            "One eval segment's video is unavailable: it is listed but has no audio, as in every "
            "real copy; read with on_missing='drop' (or see the missing-file report).",
            "One downloaded clip is shorter than 10 s."),
    options={"on_missing": "drop"},
    params=_PARAMS)


def build_audioset_hdf5(root: Path, lib: AudioLibrary) -> None:
    import h5py

    n_samples = int(AUDIOSET_SECONDS * AUDIOSET_SR)
    by_subset: dict[str, list] = {s: [] for s in AUDIOSET_SUBSETS}
    for clip in _clips():
        by_subset[clip[0]].append(clip)
    for subset, clips in by_subset.items():
        clips.sort(key=lambda c: c[1])          # the CSV order the packing script walks
        n = len(clips)
        path = root / f"{subset}.h5"
        with h5py.File(path, "w") as hf:
            names = hf.create_dataset("audio_name", shape=(n,), dtype="S20")
            waves = hf.create_dataset("waveform", shape=(n, n_samples), dtype=np.int16)
            target = hf.create_dataset("target", shape=(n, len(AUDIOSET_CLASSES)), dtype=bool)
            for i, (_, ytid, _, mids, wave, index) in enumerate(clips):
                if wave is None:        # not downloaded: the row stays empty, as PANNs packs it
                    continue
                names[i] = f"Y{ytid}.wav".encode()
                x = np.zeros(n_samples, np.float32)
                x[: min(len(wave), n_samples)] = wave[:n_samples]
                peak = float(np.abs(x).max())
                if peak > 0.89:
                    x *= 0.89 / peak
                waves[i] = (np.clip(x, -1, 1) * 32767.0).astype(np.int16)
                row = np.zeros(len(AUDIOSET_CLASSES), bool)
                row[[MID_INDEX[m] for m in mids]] = True
                target[i] = row
                lib.record(f"{subset}.h5#{i}", f"synthetic world clip {index} of seed "
                                               f"{WORLD_SEED}", "synthetic")
            hf.attrs.create("sample_rate", data=AUDIOSET_SR, dtype=np.int32)
    write_text(root, "class_labels_indices.csv", _class_labels_csv())


AUDIOSET_HDF5 = MiniatureSpec(
    name="audioset_hdf5", title="AudioSet packed into HDF5 by the PANNs scripts",
    distribution="the output of qiuqiangkong/audioset_tagging_cnn utils/dataset.py "
                 "pack_waveforms_to_hdf5 (balanced_train.h5, eval.h5) with "
                 "class_labels_indices.csv beside them",
    builder=build_audioset_hdf5, adapter="audioset_hdf5",
    audio_format="HDF5 datasets audio_name (N,) S20, waveform (N, 320000) int16 (10 s at the "
                 "sample_rate attribute 32000, zero-padded), target (N, 527) bool",
    differences=_COMMON_DIFFERENCES,
    quirks=("The clip whose audio was not downloaded keeps an empty audio_name, a zero waveform "
            "and an all-False target row, as the packing script leaves it; read with "
            "on_missing='drop'.",
            "A clip shorter than 10 s is zero-padded to 320,000 samples."),
    options={"on_missing": "drop"},
    params=_PARAMS)

# ================================================================================ TMac features
TMAC_CLASSES = ("Speech", "Dog", "Music")
TMAC_MIDS = {"Speech": "/m/09x0r", "Dog": "/m/0bt9lr", "Music": "/m/04rlf"}
TMAC_PER_CLASS = 10
#: clips per class listed in the miniature's eval_segments.csv (the paper's evaluation set)
TMAC_EVAL_PER_CLASS = 3
#: the evaluation-set feature file, relative to the training file's folder (VAED / TMac:
#: data/AudioSet/{train,eval}/Output_clip_len_0.25_audio_101/AudioSet_embedds_all.h5)
TMAC_EVAL_FILE = "eval/AudioSet_embedds_all.h5"
TMAC_AUDIO_NODES, TMAC_AUDIO_DIM = 101, 128
TMAC_VIDEO_NODES, TMAC_VIDEO_DIM = 40, 1024


def _tmac_file(path: Path, order: np.ndarray, tag: str, proto_a: np.ndarray, proto_v: np.ndarray
               ) -> list[tuple[str, int]]:
    """Write one feature file in the TMac layout: clip i of class ``order[i]`` = its class
    prototype + Gaussian noise (seeds from ``tag``). Returns (YouTube id, class) per clip."""
    import h5py

    n = len(order)
    audio = np.empty((n, TMAC_AUDIO_NODES, TMAC_AUDIO_DIM), np.float32)
    video = np.empty((n, TMAC_VIDEO_NODES, TMAC_VIDEO_DIM), np.float32)
    labels, audio_add, video_add, clips = [], [], [], []
    for i, c in enumerate(order):
        r = np.random.default_rng(seed_of(f"{tag}:clip:{i}"))
        audio[i] = proto_a[c] + r.normal(0, 1.5, (TMAC_AUDIO_NODES, TMAC_AUDIO_DIM))
        video[i] = proto_v[c] + r.normal(0, 1.5, (TMAC_VIDEO_NODES, TMAC_VIDEO_DIM))
        ytid = fake_id(f"{tag}:{i}", 11, YT_ALPHABET)
        labels.append(TMAC_CLASSES[c].encode("ascii"))
        audio_add.append(f"audio/{ytid}.wav".encode("ascii"))
        video_add.append(f"video/{ytid}.mp4".encode("ascii"))
        clips.append((ytid, int(c)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as hf:
        hf["audio"] = audio
        hf["video"] = video
        hf["label"] = np.array(labels)
        hf["audio_add"] = np.array(audio_add)
        hf["video_add"] = np.array(video_add)
        hf["unique_labels"] = np.array([c.encode("ascii") for c in TMAC_CLASSES])
    return clips


def build_tmac_features(root: Path, lib: AudioLibrary) -> None:
    rng = np.random.default_rng(seed_of("tmac:prototypes"))
    proto_a = rng.normal(0, 1, (len(TMAC_CLASSES), TMAC_AUDIO_DIM)).astype(np.float32)
    proto_v = rng.normal(0, 1, (len(TMAC_CLASSES), TMAC_VIDEO_DIM)).astype(np.float32)
    order = np.random.default_rng(seed_of("tmac:order")).permutation(
        np.repeat(np.arange(len(TMAC_CLASSES)), TMAC_PER_CLASS))
    clips = _tmac_file(root / "AudioSet_embedds_all.h5", order, "tmac", proto_a, proto_v)
    lib.record("AudioSet_embedds_all.h5", f"{len(order)} rows of generated features: class prototype + "
                                          f"Gaussian noise (no audio, no video)", "synthetic")
    # the evaluation set in its two forms: a separate file (the VAED / TMac configs' TEST_PATH,
    # eval/...) and AudioSet's id list naming clips of the training file
    eval_order = np.repeat(np.arange(len(TMAC_CLASSES)), TMAC_EVAL_PER_CLASS)
    _tmac_file(root / TMAC_EVAL_FILE, eval_order, "tmac-eval", proto_a, proto_v)
    lib.record(TMAC_EVAL_FILE, f"{len(eval_order)} rows of generated features (the evaluation set), "
                               f"same prototypes", "synthetic")
    seen = {c: 0 for c in range(len(TMAC_CLASSES))}
    listed = []
    for ytid, c in clips:
        if seen[c] < TMAC_EVAL_PER_CLASS:
            listed.append((ytid, 30.0, [TMAC_MIDS[TMAC_CLASSES[c]]]))
        seen[c] += 1
    write_text(root, "eval_segments.csv", _segments_csv(AUDIOSET_SUBSETS["eval"][1], listed))


TMAC_FEATURES = MiniatureSpec(
    name="tmac_features", title="the TMac / THGCL AudioSet feature file",
    distribution="AudioSet_embedds_all.h5 as read by AmirSh15/VAED_HeterGraph "
                 "utils/dataloader.py AudioSetGraphDataset (datasets audio, video, label, "
                 "audio_add, video_add, unique_labels)",
    builder=build_tmac_features, adapter="tmac_features",
    audio_format="no audio: float32 audio (N, 101, 128) and video (N, 40, 1024) node features, "
                 "ASCII byte strings label (N,), audio_add (N,), video_add (N,), "
                 "unique_labels (C,)",
    differences=(
        "30 clips of 3 classes (real AudioSet display names Speech, Dog, Music) instead of "
        "82,410 clips of 33 classes; the real file's 33 class names are not known here.",
        "The features are generated (a random prototype per class plus Gaussian noise), not "
        "VGGish and S3D embeddings of any recording; audio_add / video_add are made-up "
        "addresses (the real ones' format is not known here).",
    ),
    quirks=("Labels are class-name strings and unique_labels fixes the class order; the file "
            "holds no split (THGCL's repository splits 0.7/0.1/0.2 at training time; the paper's "
            "text tests on AudioSet's evaluation set).",
            f"The evaluation set in two forms: {TMAC_EVAL_FILE} ({TMAC_EVAL_PER_CLASS} clips per "
            "class, the same layout: the VAED / TMac configs' TEST_PATH is "
            "data/AudioSet/eval/Output_clip_len_0.25_audio_101/AudioSet_embedds_all.h5 beside "
            "train/), and eval_segments.csv (AudioSet's official format) naming "
            f"{TMAC_EVAL_PER_CLASS} clips per class of the training file by YouTube id.",),
    params={"classes": TMAC_CLASSES, "per_class": TMAC_PER_CLASS, "eval_per_class": TMAC_EVAL_PER_CLASS})
