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
