"""Official-format miniatures: every one builds in a temporary AUDIOREPRO_HOME, its adapter reads
it with the hand-counted clips, classes and splits, a row's audio loads at the dataset's official
rate, `manifest verify` finds its files, the known quirks are there, and a Debian recording
replaces the synthetic stand-in once that source is built (and only then is the miniature
rebuilt)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiorepro.data import manifest
from audiorepro.data.adapters import AdapterError, adapt
from audiorepro.data.audio import load_audio
from audiorepro.data.miniatures import (MARKER, MINIATURES, README, adapter_options, build_all,
                                        build_miniature, main)

# name -> (clips, classes, clips per split, official sample rate, samples of the table's row 0)
EXPECTED = {
    "esc50": (16, 3, {"cv": 16}, 44100, 220500),
    "us8k": (12, 3, {"cv": 12}, None, None),
    "fsd50k": (13, 11, {"train": 7, "valid": 3, "test": 3}, 44100, None),
    "spcv2": (15, 3, {"train": 6, "valid": 6, "test": 3}, 16000, 16000),
    "vc1": (12, 3, {"train": 6, "valid": 3, "test": 3}, 16000, None),
    "voxforge": (12, 3, {"train": 6, "valid": 3, "test": 3}, 16000, None),
    "cremad": (13, 3, {"train": 7, "valid": 3, "test": 3}, 16000, None),
    "gtzan": (9, 3, {"train": 3, "valid": 3, "test": 3}, 22050, 661794),
    "nsynth": (12, 3, {"train": 6, "valid": 3, "test": 3}, 16000, 64000),
    "surge": (12, 3, {"train": 6, "valid": 3, "test": 3}, 16000, 64000),
    "audioset": (12, 527, {"train": 8, "test": 4}, 32000, None),
    "audioset_hdf5": (12, 527, {"train": 8, "test": 4}, 32000, 320000),
    "tmac_features": (30, 3, {"all": 30}, None, None),
    "clotho": (8, 0, {"train": 4, "valid": 2, "test": 2}, 44100, None),
    "audiocaps": (7, 0, {"train": 3, "valid": 2, "test": 2}, 32000, 320000),
    "wavcaps": (8, 0, {"train": 8}, 32000, None),
}
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".h5")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("home")
    old = os.environ.get("AUDIOREPRO_HOME")
    os.environ["AUDIOREPRO_HOME"] = str(path)
    yield path
    if old is None:
        os.environ.pop("AUDIOREPRO_HOME", None)
    else:
        os.environ["AUDIOREPRO_HOME"] = old


@pytest.fixture(scope="module")
def built(home) -> dict[str, Path]:
    return build_all()


def read(name: str, root: Path, **extra):
    spec = MINIATURES[name]
    return adapt(spec.adapter, root, **{**adapter_options(name, root), **extra})


def test_every_official_dataset_of_the_manifest_has_a_miniature():
    df = manifest.load_manifest(Path(__file__).resolve().parents[1] / "data_manifest.csv")
    assert set(df.loc[df["kind"] == "official", "dataset"]) == set(MINIATURES) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_adapter_reads_the_miniature(built, home, name):
    root = built[name]
    assert root == home / "data" / "miniatures" / name
    n, n_classes, splits, sr, samples = EXPECTED[name]
    table = read(name, root)
    assert len(table) == n and table.num_classes == n_classes
    assert table.frame["split"].value_counts().to_dict() == splits
    if sr is not None:
        wave, got_sr = load_audio(table.audio_path(0))
        assert got_sr == sr and wave.ndim == 1 and float(wave.abs().max()) > 0.01
        if samples is not None:
            assert wave.shape[0] == samples
    readme = (root / README).read_text()
    assert readme.startswith(f"MINIATURE of ") and "NOT the real dataset" in readme
    on_disk = [p.relative_to(root).as_posix() for p in root.rglob("*")
               if p.suffix in AUDIO_SUFFIXES]
    # every file's origin is listed (a packed HDF5 file row by row: "<file>#<row>")
    assert on_disk and all(f"  {f}\t" in readme or f"  {f}#" in readme for f in on_disk)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_manifest_verify_finds_the_files(built, name):
    root = built[name]
    options = {k: v for k, v in adapter_options(name, root).items() if k != "on_missing"}
    results = manifest.verify(name, root, checksums=False, options=options, progress=False)
    status = {r.item: r.status for r in results}
    allowed = {"ok", "missing (optional)", "wrong count"}   # counts are the real dataset's
    bad = {k: v for k, v in status.items() if v not in allowed}
    if name in ("audioset", "audiocaps"):    # one listed clip has no audio, as in real copies
        (item, state), = bad.items()
        assert item.startswith("adapter") and state == "missing"
        assert "1 audio files missing" in next(r.detail for r in results if r.item == item)
    else:
        assert not bad, bad
    for r in results:
        if r.status == "missing (optional)":
            assert manifest.load_manifest().query("dataset == @name and file == @r.item")[
                "role"].eq("archive").all()


def test_verify_command_line(built, capsys):
    code = manifest.main(["verify", "esc50", "--root", str(built["esc50"]), "--no-checksum",
                          "--quiet"])
    out = capsys.readouterr().out
    assert code == 1                                     # 16 clips, not the real 2,000
    assert "meta/esc50.csv     ok" in out and "16 audio files, expected 2000" in out


def test_official_headers_and_quirks(built):
    esc = (built["esc50"] / "meta/esc50.csv").read_text().splitlines()
    assert esc[0] == "filename,fold,target,category,esc10,src_file,take"
    assert esc[1:] == sorted(esc[1:])
    takes = [ln for ln in esc if ",dog,True," in ln]
    assert len(takes) == 6 and {ln.split(",")[6] for ln in takes} == {"A", "B"}

    infos = [sf.info(str(p)) for p in (built["us8k"] / "audio").rglob("*.wav")]
    assert {i.samplerate for i in infos} == {8000, 11025, 22050, 44100, 48000, 96000}
    assert {i.channels for i in infos} == {1, 2}
    assert {i.subtype for i in infos} >= {"PCM_U8", "PCM_16", "PCM_24", "IMA_ADPCM"}
    us = pd.read_csv(built["us8k"] / "metadata/UrbanSound8K.csv")
    assert sorted(set(us["fold"])) == list(range(1, 11))
    shared = us[us.duplicated("fsID", keep=False)]
    assert len(shared) == 2 and shared["fold"].nunique() == 1

    gt = built["fsd50k"] / "FSD50K.ground_truth"
    vocab = (gt / "vocabulary.csv").read_text().splitlines()
    assert vocab[0] == "0,Animal,/m/0jbk" and len(vocab) == 11      # no header line
    dev = (gt / "dev.csv").read_text().splitlines()
    assert dev[0] == "fname,labels,mids,split"
    assert any(',"Bark,Dog,Domestic_animals_and_pets,Animal","/m/05tny_,' in ln for ln in dev)

    seg = (built["audioset"] / "eval_segments.csv").read_text().splitlines()
    assert seg[0].startswith("# Segments csv created") and seg[1].startswith("# num_ytids=5,")
    assert seg[2] == "# YTID, start_seconds, end_seconds, positive_labels"
    assert all(ln.count(", ") >= 3 and ln.endswith('"') for ln in seg[3:])
    labels = (built["audioset"] / "class_labels_indices.csv").read_text().splitlines()
    assert len(labels) == 528 and labels[2] == '1,/m/05zppz,"Male speech, man speaking"'
    assert all(ln.endswith('"') for ln in labels[1:])
    train = sorted(p.name for p in (built["audioset"] / "balanced_train_segments").iterdir())
    assert len(train) == 8 and any(n.startswith("Y-") for n in train)

    bg = built["spcv2"] / "_background_noise_"
    assert {p.name for p in bg.glob("*.wav")} == {
        "white_noise.wav", "pink_noise.wav", "running_tap.wav", "doing_the_dishes.wav",
        "exercise_bike.wav", "dude_miaowing.wav"}
    assert "_background_noise_" not in " ".join(read("spcv2", built["spcv2"]).frame["path"])
    assert (built["gtzan"] / "jazz/jazz.00054.wav").is_file()
    assert "jazz/jazz.00054" not in set(read("gtzan", built["gtzan"]).frame["clip_id"])


# name -> (audio glob, sample rate, channels, soundfile subtype, frames of every file or None)
FORMATS = {
    "esc50": ("audio/*.wav", 44100, 1, "PCM_16", 220500),
    "fsd50k": ("FSD50K.*_audio/*.wav", 44100, 1, "PCM_16", None),
    "spcv2": ("[a-z]*/*.wav", 16000, 1, "PCM_16", None),
    "vc1": ("wav/*/*/*.wav", 16000, 1, "PCM_16", None),
    "cremad": ("*.wav", 16000, 1, "PCM_16", None),
    "gtzan": ("*/*.wav", 22050, 1, "PCM_16", None),
    "nsynth": ("nsynth-*/audio/*.wav", 16000, 1, "PCM_16", 64000),
    "surge": ("*/*.ogg", 16000, 1, "VORBIS", None),
    "audioset": ("*_segments/Y*.wav", 32000, 1, "PCM_16", None),
    "clotho": ("*/*.wav", 44100, 1, "PCM_16", None),
    "audiocaps": ("*/*.wav", 32000, 1, "PCM_16", 320000),
    "wavcaps": ("Zip_files/*/*.flac", 32000, 1, "PCM_16", None),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_audio_format_as_distributed(built, name):
    pattern, sr, channels, subtype, frames = FORMATS[name]
    infos = [sf.info(str(p)) for p in built[name].glob(pattern)]
    assert infos
    assert {(i.samplerate, i.channels, i.subtype) for i in infos} == {(sr, channels, subtype)}
    if frames is not None:
        assert {i.frames for i in infos} == {frames}
    seconds = sorted(i.frames / i.samplerate for i in infos)
    if name == "spcv2":        # one second at most, one clip shorter
        assert seconds[-1] == 1.0 and seconds[0] == pytest.approx(0.85)
    if name == "gtzan":        # about 30 s, one file a little shorter
        assert seconds[-1] == pytest.approx(30.013, abs=1e-3) and seconds[0] < seconds[-1]
    if name == "clotho":
        assert 15 <= seconds[0] and seconds[-1] <= 30
    if name == "audioset":     # 10 s downloads, one shorter
        assert seconds[-1] == 10.0 and seconds[0] == pytest.approx(8.7)


def test_missing_clips_are_reported_by_default(built):
    with pytest.raises(AdapterError, match=r"1 of 13 audio files are missing"):
        adapt("audioset", built["audioset"])
    with pytest.raises(AdapterError, match=r"1 of 5 rows have no audio_name"):
        adapt("audioset_hdf5", built["audioset_hdf5"])
    with pytest.raises(AdapterError, match=r"1 of 8 audio files are missing"):
        adapt("audiocaps", built["audiocaps"])


def test_clotho_shared_name_latin1_metadata(built):
    root = built["clotho"]
    caps = {s: pd.read_csv(root / f"clotho_captions_{s}.csv")["file_name"]
            for s in ("development", "validation", "evaluation")}
    shared = set(caps["development"]) & set(caps["evaluation"])
    assert len(shared) == 1
    name = shared.pop()
    dev, ev = (sf.read(str(root / s / name))[0] for s in ("development", "evaluation"))
    assert dev.shape != ev.shape or not np.allclose(dev, ev)     # two different recordings
    raw = (root / "clotho_metadata_evaluation.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    table = read("clotho", root)
    assert table.frame["clip_id"].is_unique
    assert (table.frame["manufacturer"] == "José_Q").sum() == 2
    assert all(len(table.captions_of(i)) == 5 for i in range(len(table)))


def test_evar_sets_and_splits(built):
    surge = built["surge"]
    via_csv = adapt("surge", surge, metadata_csv=surge / "surge.csv")
    assert (surge / "surge.csv").read_text().startswith(",file_name,label,split\n")
    assert sorted(via_csv.frame["path"]) == sorted(read("surge", surge).frame["path"])
    assert via_csv.classes == ["60", "62", "64"]
    cremad = read("cremad", built["cremad"])
    assert cremad.frame.groupby("speaker")["split"].nunique().eq(1).all()   # speaker-disjoint
    nsynth = read("nsynth", built["nsynth"], splits=["test"])
    assert len(nsynth) == 3 and set(nsynth.frame["split"]) == {"test"}
    vc1 = read("vc1", built["vc1"])
    assert set(vc1.classes) == {"id10001", "id10002", "id10003"}


def test_cli_builds_one_and_rejects_unknown(tmp_path, capsys):
    assert main(["build", "--out", str(tmp_path), "--only", "cremad"]) == 0
    assert "cremad" in capsys.readouterr().out
    assert (tmp_path / "cremad" / MARKER).is_file() and not (tmp_path / "esc50").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp folder left
    assert main(["build", "--out", str(tmp_path), "--only", "nope"]) == 2


def _fake_source(home: Path, name: str, rows: list[dict], seconds: float = 1.0
                 ) -> list[np.ndarray]:
    """A built Debian source ``name`` whose clip ``i`` is a distinct 16 kHz tone of ``seconds``."""
    from audiorepro.data.cliptable import ClipTable

    src = home / "data" / "debian" / name
    waves = []
    for i, row in enumerate(rows):
        wave = 0.5 * np.sin(2 * np.pi * (200 + 50 * i) * np.arange(int(seconds * 16000)) / 16000)
        row["path"] = f"audio/{row['clip_id']}.flac"
        (src / "audio").mkdir(parents=True, exist_ok=True)
        sf.write(str(src / row["path"]), wave, 16000, subtype="PCM_16")
        waves.append(wave)
    ClipTable(pd.DataFrame(rows), src, name=name).write(src / f"{name}.csv")
    (src / ".done.json").write_text(json.dumps({"source": name, "clips": len(rows)}))
    return waves


def _fake_asterisk(home: Path, n: int = 6) -> list[np.ndarray]:
    """A built Debian 'asterisk' source: ``n`` English word prompts and the prompt digits/1."""
    rows = [{"clip_id": f"asterisk-en-w{i}", "split": "train", "labels": f"w{i}",
             "category": "words", "language": "en", "speaker": "allison"} for i in range(n)]
    rows.append({"clip_id": "asterisk-en-digits__1", "split": "train", "labels": "digits/1",
                 "category": "digits", "language": "en", "speaker": "allison"})
    return _fake_source(home, "asterisk", rows)


def test_pick_regex_and_rank(tmp_path, monkeypatch):
    from audiorepro.data.miniatures import AudioLibrary
    from audiorepro.data.miniatures._core import pick

    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    rows = [{"clip_id": f"hw-{pack}-{p}", "split": "train", "labels": p, "kind": "voice",
             "speaker": pack, "affect": affect}
            for pack in ("Pirate", "British") for p, affect in (("Illgetyou", "anger"),
                                                                 ("Hello", "happy"))]
    _fake_source(tmp_path, "hedgewars", rows, seconds=0.2)
    lib = AudioLibrary("cremad", ["hedgewars", "asterisk"])
    table = lib.tables["hedgewars"].frame
    ids = lambda p: [table["clip_id"].iloc[i] for i in lib.candidates(p)]
    assert ids(pick("hedgewars", kind="^voice$", affect="^anger$")) == [
        "hw-British-Illgetyou", "hw-Pirate-Illgetyou"]
    # rank 1 of the sorted voice packs (British, Pirate) is Pirate
    assert ids(pick("hedgewars", affect="^anger$", rank_by="speaker", rank=1)) == [
        "hw-Pirate-Illgetyou"]
    assert ids(pick("hedgewars", affect="^ANGER")) == ids(pick("hedgewars", affect="anger"))
    assert ids(pick("hedgewars", affect="^anger$", rank_by="speaker", rank=2)) == []
    assert ids(pick("hedgewars", nosuchcolumn=".")) == []
    assert lib.candidates(pick("asterisk", labels=".")) == []         # source not built


def test_cached_and_rebuilt_when_a_debian_source_appears(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    root = build_miniature("vc1")
    first = json.loads((root / MARKER).read_text())
    assert first["origins"] == {"synthetic": 12}
    stamp = (root / MARKER).stat().st_mtime_ns
    assert build_miniature("vc1") == root and (root / MARKER).stat().st_mtime_ns == stamp

    waves = _fake_asterisk(tmp_path)
    build_miniature("vc1")
    second = json.loads((root / MARKER).read_text())
    assert second["recipe_digest"] != first["recipe_digest"]
    # id10001 speaks English: its first 4.6 s utterance is four prompts joined by 0.2 s pauses;
    # the next (6.2 s) finds only two prompts left and is synthetic
    assert second["origins"] == {"debian:asterisk": 1, "synthetic": 11}
    line = next(ln for ln in (root / README).read_text().splitlines()
                if ln.strip().startswith("wav/id10001/") and "00001.wav" in ln
                and "Debian" in ln)
    assert "asterisk-en-w0, asterisk-en-w1, asterisk-en-w2, asterisk-en-w3" in line
    rel = line.strip().split("\t")[0]
    got, sr = sf.read(str(root / rel))
    assert sr == 16000 and got.shape == (int(4.6 * 16000),)
    np.testing.assert_allclose(got[:16000], waves[0], atol=1e-4)
    np.testing.assert_allclose(got[16000:19200], 0.0, atol=1e-4)              # the pause
    np.testing.assert_allclose(got[19200:35200], waves[1], atol=1e-4)

    # Speech Commands: the English speaker's "one" is the asterisk prompt digits/1, placed
    # 0.12 s into its 1 s file (the other words have no such prompt: synthetic)
    spc = build_miniature("spcv2")
    assert json.loads((spc / MARKER).read_text())["origins"]["debian:asterisk"] == 1
    line = next(ln for ln in (spc / README).read_text().splitlines() if "digits__1" in ln)
    got, sr = sf.read(str(spc / line.strip().split("\t")[0]))
    assert line.strip().startswith("one/") and got.shape == (16000,)
    np.testing.assert_allclose(got[:1920], 0.0, atol=1e-4)
    np.testing.assert_allclose(got[1920:], waves[-1][:16000 - 1920], atol=1e-4)
