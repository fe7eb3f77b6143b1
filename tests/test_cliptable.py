"""The clip-table format, audio I/O and the dataset, including bad input."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from audiorepro.data.audio import AudioFileError, fix_length, load_audio, save_audio, segment
from audiorepro.data.cliptable import ClipTable, ClipTableError, join_captions, split_labels
from audiorepro.data.dataset import ClipDataset, pad_collate

SR = 16000


def _tone(seconds: float, freq: float = 440.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture()
def table_dir(tmp_path):
    (tmp_path / "audio").mkdir()
    rows = []
    for i, (labs, dur) in enumerate([("dog;bark", 1.0), ("siren", 2.5), ("", 0.5), ("dog", 1.2)]):
        save_audio(tmp_path / "audio" / f"c{i}.flac", _tone(dur, 200 + 100 * i), SR)
        rows.append(dict(clip_id=f"c{i}", path=f"audio/c{i}.flac", split="train" if i < 3 else "test",
                         fold=1 + i % 2, labels=labs, captions=join_captions([f"caption {i}", "a sound, loud"])))
    ClipTable(pd.DataFrame(rows), tmp_path, name="toy").write(tmp_path / "toy.csv")
    return tmp_path


def test_roundtrip_vocabulary_and_targets(table_dir):
    t = ClipTable.read(table_dir / "toy.csv")
    assert t.classes == ["bark", "dog", "siren"]
    assert len(t) == 4
    np.testing.assert_array_equal(t.multi_hot(0), [1, 1, 0])
    np.testing.assert_array_equal(t.multi_hot(2), [0, 0, 0])
    assert t.captions_of(0) == ["caption 0", "a sound, loud"]
    # co-occurrence: dog appears in clips 0 and 3, bark with dog once
    co = t.cooccurrence()
    assert co[1, 1] == 2 and co[0, 1] == 1 and co[2, 0] == 0
    assert t.label_counts().to_dict() == {"bark": 1, "dog": 2, "siren": 1}
    # lift(bark, dog) = P(both) / (P(bark) P(dog)) = (1/4) / ((1/4) (2/4)) = 2
    lift = t.pair_lift()
    assert len(lift) == 1 and lift.loc[0, ["a", "b", "count"]].tolist() == ["bark", "dog", 1]
    assert lift.loc[0, "lift"] == pytest.approx(2.0)
    assert len(t.subset("train")) == 3 and len(t.subset(fold=2)) == 2
    assert len(t.subset("train", exclude_fold=1)) == 1


def test_classes_sidecar_fixes_order_and_rejects_unknown_labels(table_dir):
    (table_dir / "toy.classes.txt").write_text("siren\ndog\nbark\ncat\n")
    t = ClipTable.read(table_dir / "toy.csv")
    assert t.classes == ["siren", "dog", "bark", "cat"]
    np.testing.assert_array_equal(t.multi_hot(0), [0, 1, 1, 0])
    (table_dir / "toy.classes.txt").write_text("siren\ndog\n")
    with pytest.raises(ClipTableError, match=r"toy.csv.*row 0.*'c0'.*unknown label.*bark"):
        ClipTable.read(table_dir / "toy.csv")


def test_bad_tables_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        ClipTable.read(tmp_path / "nope.csv")
    (tmp_path / "a.csv").write_text("clip_id,path,labels\nx,x.wav,dog\n")
    with pytest.raises(ClipTableError, match=r"a.csv.*split"):
        ClipTable.read(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("clip_id,path,split,labels\nx,x.wav,train,dog\nx,y.wav,train,cat\n")
    with pytest.raises(ClipTableError, match="duplicated clip_id 'x'"):
        ClipTable.read(tmp_path / "b.csv")
    with pytest.raises(ClipTableError, match="separator"):
        join_captions(["a | b"])
    assert split_labels(" dog ; ;cat") == ["dog", "cat"]


def test_unknown_split_and_single_label_target(table_dir):
    t = ClipTable.read(table_dir / "toy.csv")
    with pytest.raises(ClipTableError, match="no split.*'eval'"):
        t.subset("eval")
    with pytest.raises(ClipTableError, match="'c0'.*exactly one label"):
        t.class_index(0)
    assert t.class_index(1) == 2


def test_dataset_pads_crops_resamples_and_segments(table_dir):
    t = ClipTable.read(table_dir / "toy.csv")
    ds = ClipDataset(t, sample_rate=SR, clip_seconds=2.0)
    item = ds[0]
    assert item["wave"].shape == (32000,)
    assert torch.all(item["wave"][16000:] == 0)  # 1 s clip zero-padded to 2 s
    np.testing.assert_array_equal(item["target"].numpy(), [1, 1, 0])
    assert ds[1]["wave"].shape == (32000,)       # 2.5 s clip cropped
    ds8k = ClipDataset(t, sample_rate=8000, clip_seconds=None)
    assert ds8k[1]["wave"].shape == (20000,)      # 2.5 s at 8 kHz
    seg = ClipDataset(t, sample_rate=SR, clip_seconds=None, segment_seconds=1.0)
    assert seg[1]["wave"].shape == (3, 16000)     # 2.5 s -> 3 windows, last padded
    batch = pad_collate([ds8k[0], ds8k[1]])
    assert batch["wave"].shape == (2, 20000) and batch["length"].tolist() == [8000, 20000]
    col = ClipDataset(t, target_column="fold")
    assert col.classes == ["1", "2"] and int(col[1]["target"]) == 1


def test_fix_length_and_segment_by_hand():
    w = torch.arange(10.0)
    assert fix_length(w, 4, "start").tolist() == [0, 1, 2, 3]
    assert fix_length(w, 4, "center").tolist() == [3, 4, 5, 6]
    assert fix_length(w, 12).tolist()[-2:] == [0, 0]
    s = segment(w, 4, 3)  # windows at 0,3,6 ; 6+4=10 fits exactly
    assert s.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    with pytest.raises(ValueError, match="mode"):
        fix_length(w, 4, "middle")


# --------------------------------------------------------------------------- bad audio
def test_missing_file(tmp_path):
    with pytest.raises(AudioFileError, match="not found.*ghost.flac"):
        load_audio(tmp_path / "ghost.flac")


def test_corrupt_and_truncated_files(tmp_path):
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(AudioFileError, match="cannot decode.*corrupt.wav"):
        load_audio(bad)
    good = save_audio(tmp_path / "t.flac", _tone(1.0), SR)
    trunc = tmp_path / "trunc.flac"
    trunc.write_bytes(good.read_bytes()[:200])
    with pytest.raises(AudioFileError, match="trunc.flac"):
        load_audio(trunc)


def test_empty_and_nan_files(tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), SR)
    with pytest.raises(AudioFileError, match="empty.wav has no samples"):
        load_audio(empty)
    nan = tmp_path / "nan.wav"
    x = _tone(0.1)
    x[5] = np.nan
    sf.write(nan, x, SR, subtype="FLOAT")
    with pytest.raises(AudioFileError, match="nan.wav contains 1 NaN"):
        load_audio(nan)


def test_stereo_and_wrong_rate_are_handled_and_logged(tmp_path, caplog):
    st = tmp_path / "stereo_44k.wav"
    left, right = _tone(1.0, 440, 44100), np.zeros(44100, np.float32)
    sf.write(st, np.stack([left, right], 1), 44100)
    with caplog.at_level(logging.WARNING):
        w, sr = load_audio(st, SR)
    assert sr == SR and w.shape == (16000,)
    assert "2 channels" in caplog.text and "44100 Hz resampled" in caplog.text
    # mean of a 0.5-amplitude tone and silence: peak about 0.25
    assert 0.2 < float(w.abs().max()) < 0.3


def test_dataset_error_names_clip_file(table_dir):
    t = ClipTable.read(table_dir / "toy.csv")
    (table_dir / "audio" / "c1.flac").unlink()
    assert t.check_files() == ["c1"]
    with pytest.raises(AudioFileError, match="c1.flac"):
        ClipDataset(t)[1]


def test_packed_hdf5_rows_load_like_files(tmp_path):
    h5py = pytest.importorskip("h5py")
    wave = (np.sin(np.arange(32000) / 10) * 16000).astype(np.int16)
    with h5py.File(tmp_path / "packed.h5", "w") as hf:
        hf["waveform"] = np.stack([wave, wave // 2])
    w, sr = load_audio(f"{tmp_path}/packed.h5#1", sample_rate=16000)
    assert sr == 16000 and w.shape == (16000,)          # 32 kHz default, resampled
    raw, sr = load_audio(f"{tmp_path}/packed.h5#1")
    assert sr == 32000
    np.testing.assert_allclose(raw.numpy(), (wave // 2) / 32768.0, atol=1e-7)
    frame = pd.DataFrame([dict(clip_id="a", path="packed.h5#0", split="train", labels="x"),
                          dict(clip_id="b", path="gone.h5#0", split="train", labels="x")])
    assert ClipTable(frame, tmp_path).check_files() == ["b"]
    with pytest.raises(AudioFileError, match=r"packed.h5#5.*out of range"):
        load_audio(f"{tmp_path}/packed.h5#5")


# ------------------------------------------------------------------ subsample / split aliases
def _sorted_table(n_per_class: int = 10, classes: str = "abcdefgh") -> ClipTable:
    """A single-label table sorted by label: the first rows hold one or two classes only."""
    rows = [dict(clip_id=f"{c}{i}", path=f"{c}{i}.wav", split="train", labels=c)
            for c in classes for i in range(n_per_class)]
    return ClipTable(pd.DataFrame(rows), ".", name="sorted")


def test_subsample_keeps_every_class_of_a_sorted_table():
    t = _sorted_table()
    first = t.frame.iloc[:16]                       # what a cap on the first rows keeps
    assert set(first["labels"]) == {"a", "b"}
    sub = t.subsample(16, seed=3)
    assert len(sub) == 16 and set(sub.frame["labels"]) == set("abcdefgh")
    # deterministic for a seed, another subset for another seed, rows in table order
    assert sub.frame["clip_id"].tolist() == t.subsample(16, seed=3).frame["clip_id"].tolist()
    assert sub.frame["clip_id"].tolist() != t.subsample(16, seed=4).frame["clip_id"].tolist()
    pos = [t.frame["clip_id"].tolist().index(c) for c in sub.frame["clip_id"]]
    assert pos == sorted(pos)
    assert t.subsample(80) is t and t.subsample(500) is t
    assert len(t.subsample(0)) == 0
    with pytest.raises(ValueError, match="sorted.*-1"):
        t.subsample(-1)


def test_subsample_multilabel_covers_rarest_classes_first(caplog):
    # 'rare' occurs once (with 'x'), 'y' twice, 'x' in every other row: n = 2 must keep the
    # 'rare' row (which also covers x) and one 'y' row, so all three classes stay
    labels = ["x"] * 6 + ["x;y", "y", "x;rare"]
    frame = pd.DataFrame(dict(clip_id=[f"c{i}" for i in range(9)], path=[f"{i}.wav" for i in range(9)],
                              split="train", labels=labels))
    t = ClipTable(frame, ".", name="ml")
    for seed in range(5):
        sub = t.subsample(2, seed=seed)
        assert "c8" in sub.frame["clip_id"].tolist()
        assert set(sub.classes) == {"rare", "x", "y"}
        assert {lab for i in range(len(sub)) for lab in sub.labels_of(i)} == {"rare", "x", "y"}
    # too small to keep every class: one warning naming what was left out
    with caplog.at_level(logging.WARNING, logger="audiorepro.data.cliptable"):
        sub = t.subsample(1, seed=0)
    assert sub.frame["clip_id"].tolist() == ["c8"]         # the rarest class first
    assert "leaves out 1 of 3 classes: y" in caplog.text


def test_cap_splits_caps_each_named_split_by_subsample_and_keeps_the_rest():
    # 8 classes x 10 clips per split, interleaved so that each split is sorted by label
    frames = [_sorted_table().frame.assign(split=s, clip_id=lambda f, s=s: s + f["clip_id"])
              for s in ("train", "valid", "test")]
    t = ClipTable(pd.concat(frames, ignore_index=True), ".", name="three")
    capped = t.cap_splits({"train": 16, "test": 40}, seed=3)
    counts = capped.frame["split"].value_counts().to_dict()
    assert counts == {"train": 16, "valid": 80, "test": 40}
    # within a split, exactly the clips subsample draws (every class kept), in table order
    assert capped.subset("train").frame["clip_id"].tolist() == \
        t.subset("train").subsample(16, seed=3).frame["clip_id"].tolist()
    assert set(capped.subset("train").frame["labels"]) == set("abcdefgh")
    pos = [t.frame["clip_id"].tolist().index(c) for c in capped.frame["clip_id"]]
    assert pos == sorted(pos)
    assert capped.classes == t.classes
    # None / no caps / a cap above the split's size keep everything
    assert t.cap_splits(None) is t and t.cap_splits({}) is t
    assert len(t.cap_splits({"train": None, "valid": 500, "eval": None})) == 240
    with pytest.raises(ClipTableError, match="three.*'eval'"):
        t.cap_splits({"eval": 3})
    with pytest.raises(ValueError, match="three.*-2.*'test'"):
        t.cap_splits({"test": -2})
    # a kept clip's row in the whole table
    cid = capped.frame["clip_id"].iloc[5]
    assert t.row_of(cid) == pos[5] and t.frame["clip_id"].iloc[t.row_of(cid)] == cid
    with pytest.raises(KeyError, match="three.*'nope'"):
        t.row_of("nope")


@pytest.mark.parametrize("alias", ["val", "validation", "dev", " Val ", "DEV"])
def test_split_aliases_read_as_valid_with_one_line_naming_the_file(tmp_path, alias, caplog):
    path = tmp_path / "mine.csv"
    path.write_text("clip_id,path,split,labels\na,a.wav,train,dog\n"
                    f"b,b.wav,{alias},cat\nc,c.wav,{alias},dog\nd,d.wav,test,cat\n")
    with caplog.at_level(logging.INFO, logger="audiorepro.data.cliptable"):
        t = ClipTable.read(path)
    assert t.frame["split"].tolist() == ["train", "valid", "valid", "test"]
    assert len(t.subset("valid")) == 2
    lines = [r.getMessage() for r in caplog.records if "read as 'valid'" in r.getMessage()]
    assert len(lines) == 1 and str(path) in lines[0] and "(2 row(s))" in lines[0]


def test_split_aliases_in_a_table_built_in_memory(caplog):
    frame = pd.DataFrame(dict(clip_id=["a", "b", "c"], path=["a", "b", "c"],
                              split=["train", "validation", "valid"], labels=["x", "y", "x"]))
    with caplog.at_level(logging.INFO, logger="audiorepro.data.cliptable"):
        t = ClipTable(frame, ".", name="mem")
    assert t.frame["split"].tolist() == ["train", "valid", "valid"]
    assert "clip table 'mem'" in caplog.text and "'validation'" in caplog.text
    # other free-text splits are kept as they are (e.g. 'all' of the TMac table)
    t2 = ClipTable(frame.assign(split=["all", "train", "eval"]), ".", name="free")
    assert t2.frame["split"].tolist() == ["all", "train", "eval"]
