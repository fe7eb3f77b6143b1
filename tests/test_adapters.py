"""Adapters read small fixtures written here in each dataset's native format, awkward parts
included (quoted label lists, '#' headers, YouTube-id keys, captions with punctuation, missing
audio, unknown labels, duplicated ids)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from audiorepro.data.adapters import AdapterError, adapt, read_hdf5_clip, read_tmac_features
from audiorepro.data.cliptable import ClipTable


def touch(root: Path, *rels: str) -> None:
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------- ESC-50 / US8K

ESC_CSV = """filename,fold,target,category,esc10,src_file,take
1-100032-A-0.wav,1,0,dog,True,100032,A
1-100038-A-14.wav,1,14,chirping_birds,False,100038,A
2-100648-A-43.wav,2,43,car_horn,False,100648,A
5-9032-A-0.wav,5,0,dog,True,9032,A
"""


def _esc_root(tmp_path: Path, csv: str = ESC_CSV) -> Path:
    root = tmp_path / "ESC-50-master"
    write(root / "meta/esc50.csv", csv)
    for line in csv.splitlines()[1:]:
        touch(root, "audio/" + line.split(",")[0])
    return root


def test_esc50_folds_and_class_order(tmp_path):
    t = adapt("esc50", _esc_root(tmp_path))
    assert len(t) == 4 and set(t.frame["split"]) == {"cv"}
    assert list(t.frame["fold"]) == [1, 1, 2, 5]
    # classes ordered by target, not alphabetically: dog(0) < chirping_birds(14) < car_horn(43)
    assert t.classes == ["dog", "chirping_birds", "car_horn"]
    assert t.frame["esc10"].tolist() == [True, False, False, True]
    assert t.audio_path(0) == _esc_root(tmp_path) / "audio/1-100032-A-0.wav"
    assert len(t.subset(exclude_fold=1)) == 2 and len(t.subset(fold=1)) == 2


def test_esc50_target_category_conflict_names_line(tmp_path):
    bad = ESC_CSV.replace("5-9032-A-0.wav,5,0,dog", "5-9032-A-0.wav,5,0,cat")
    with pytest.raises(AdapterError, match=r"esc50.csv, line 5: target 0 is 'cat'"):
        adapt("esc50", _esc_root(tmp_path, bad))


def test_esc50_duplicated_filename(tmp_path):
    dup = ESC_CSV + "1-100032-A-0.wav,1,0,dog,True,100032,A\n"
    with pytest.raises(AdapterError, match=r"duplicated filename '1-100032-A-0.wav' at lines 2 and 6"):
        adapt("esc50", _esc_root(tmp_path, dup))


def test_missing_audio_error_drop_keep(tmp_path, caplog):
    root = _esc_root(tmp_path)
    (root / "audio/2-100648-A-43.wav").unlink()
    with pytest.raises(AdapterError, match=r"1 of 4 audio files are missing.*2-100648-A-43.wav"):
        adapt("esc50", root)
    with caplog.at_level(logging.WARNING):
        t = adapt("esc50", root, on_missing="drop")
    assert len(t) == 3 and "2-100648-A-43" not in set(t.frame["clip_id"])
    assert "1 of 4 audio files are missing" in caplog.text
    assert t.classes == ["dog", "chirping_birds", "car_horn"]  # vocabulary kept after dropping
    assert len(adapt("esc50", root, on_missing="keep")) == 4


def test_us8k_paths_by_fold(tmp_path):
    root = tmp_path / "UrbanSound8K"
    write(root / "metadata/UrbanSound8K.csv",
          "slice_file_name,fsID,start,end,salience,fold,classID,class\n"
          "100032-3-0-0.wav,100032,0.0,0.317551,1,5,3,dog_bark\n"
          "100263-2-0-117.wav,100263,58.5,62.5,1,5,2,children_playing\n"
          "7061-6-0-0.wav,7061,0.0,1.5,2,10,6,gun_shot\n"
          "1-0-0-0.wav,1,0.0,1.0,1,1,0,air_conditioner\n"
          "2-1-0-0.wav,2,0.0,1.0,1,1,1,car_horn\n"
          "3-4-0-0.wav,3,0.0,1.0,1,2,4,drilling\n"
          "4-5-0-0.wav,4,0.0,1.0,1,2,5,engine_idling\n")
    t = adapt("us8k", root, on_missing="keep")
    assert t.frame["path"].iloc[0] == "audio/fold5/100032-3-0-0.wav"
    assert t.frame["path"].iloc[2] == "audio/fold10/7061-6-0-0.wav"
    assert t.classes == ["air_conditioner", "car_horn", "children_playing", "dog_bark",
                         "drilling", "engine_idling", "gun_shot"]
    assert t.frame["fs_end_s"].iloc[1] == pytest.approx(62.5)
    assert "start_s" not in t.frame.columns   # never mistaken for a crop of the slice file


# ----------------------------------------------------------------------------------- FSD50K

FSD_VOCAB = "0,Bark,/m/05tny_\n1,Dog,/m/0bt9lr\n2,Domestic_animals_and_pets,/m/068hy\n" \
            "3,Electric_guitar,/m/02sgy\n4,Guitar,/m/0342h\n"
FSD_DEV = ('fname,labels,mids,split\n'
           '64760,"Electric_guitar,Guitar","/m/02sgy,/m/0342h",train\n'
           '16399,"Bark,Dog,Domestic_animals_and_pets","/m/05tny_,/m/0bt9lr,/m/068hy",val\n')
FSD_EVAL = 'fname,labels,mids\n37199,Guitar,/m/0342h\n'


def _fsd_root(tmp_path, dev=FSD_DEV, ev=FSD_EVAL, vocab=FSD_VOCAB):
    root = tmp_path / "FSD50K"
    write(root / "FSD50K.ground_truth/vocabulary.csv", vocab)
    write(root / "FSD50K.ground_truth/dev.csv", dev)
    write(root / "FSD50K.ground_truth/eval.csv", ev)
    touch(root, "FSD50K.dev_audio/64760.wav", "FSD50K.dev_audio/16399.wav",
          "FSD50K.eval_audio/37199.wav")
    return root


def test_fsd50k_quoted_label_lists_and_vocab_order(tmp_path):
    t = adapt("fsd50k", _fsd_root(tmp_path))
    assert t.classes == ["Bark", "Dog", "Domestic_animals_and_pets", "Electric_guitar", "Guitar"]
    assert list(t.frame["split"]) == ["train", "valid", "test"]
    assert t.labels_of(1) == ["Bark", "Dog", "Domestic_animals_and_pets"]
    assert t.multi_hot(0).tolist() == [0, 0, 0, 1, 1]
    assert t.frame["path"].iloc[2] == "FSD50K.eval_audio/37199.wav"
    assert t.frame["mids"].iloc[0] == "/m/02sgy;/m/0342h"


def test_fsd50k_unknown_label_names_file_and_line(tmp_path):
    dev = FSD_DEV + '99,"Cat,Dog","/m/01yrx,/m/0bt9lr",train\n'
    with pytest.raises(AdapterError, match=r"dev.csv, line 4 \(fname 99\): label 'Cat' is not in "
                                           r"vocabulary.csv"):
        adapt("fsd50k", _fsd_root(tmp_path, dev=dev))


def test_fsd50k_mid_mismatch_and_dev_eval_collision(tmp_path):
    dev = FSD_DEV.replace('"/m/02sgy,/m/0342h"', '"/m/0342h,/m/02sgy"')
    with pytest.raises(AdapterError, match="label 'Electric_guitar' has mid '/m/0342h'"):
        adapt("fsd50k", _fsd_root(tmp_path, dev=dev))
    with pytest.raises(AdapterError, match="duplicated fname .*'64760'"):
        adapt("fsd50k", _fsd_root(tmp_path / "b", ev="fname,labels,mids\n64760,Guitar,/m/0342h\n"))


# ---------------------------------------------------------------------------------- AudioSet

AS_LABELS = ('index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/05zppz,"Male speech, man speaking"\n'
             '2,/m/0bt9lr,"Dog"\n')
AS_BAL = ('# Segments csv created Sun Mar  5 10:54:31 2017\n'
          '# num_ytids=3, num_segs=3, num_unique_labels=3, num_positive_labels=4\n'
          '# YTID, start_seconds, end_seconds, positive_labels\n'
          '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/m/05zppz"\n'
          '-0RWZT-miFs, 420.000, 430.000, "/m/0bt9lr"\n'
          'abc_DEF123x, 0.000, 10.000, "/m/09x0r"\n')
AS_EVAL = ('# Segments csv created Sun Mar  5 10:54:25 2017\n# num_ytids=1\n'
           '# YTID, start_seconds, end_seconds, positive_labels\n'
           'zzzzzzzzzzz, 5.500, 15.500, "/m/0bt9lr,/m/09x0r"\n')


def _as_root(tmp_path, bal=AS_BAL):
    root = tmp_path / "audioset"
    write(root / "class_labels_indices.csv", AS_LABELS)
    write(root / "balanced_train_segments.csv", bal)
    write(root / "eval_segments.csv", AS_EVAL)
    return root


def test_audioset_hash_headers_quoted_mids_and_pattern(tmp_path):
    root = _as_root(tmp_path)
    touch(root, "balanced_train_segments/Y--PJHxphWEs.wav", "balanced_train_segments/Y-0RWZT-miFs.wav",
          "balanced_train_segments/Yabc_DEF123x.wav", "eval_segments/Yzzzzzzzzzzz.wav")
    t = adapt("audioset", root)
    assert list(t.frame["clip_id"]) == ["--PJHxphWEs", "-0RWZT-miFs", "abc_DEF123x", "zzzzzzzzzzz"]
    assert list(t.frame["split"]) == ["train", "train", "train", "test"]
    assert t.classes == ["/m/09x0r", "/m/05zppz", "/m/0bt9lr"]
    assert t.multi_hot(0).tolist() == [1, 1, 0]
    assert t.frame["start_s_in_video"].iloc[3] == pytest.approx(5.5)
    named = adapt("audioset", root, label_key="name")
    assert named.classes[1] == "Male speech, man speaking"   # comma inside a quoted name
    assert named.labels_of(0) == ["Speech", "Male speech, man speaking"]
    # the YouTube-id + start-time naming convention
    t2 = adapt("audioset", root, audio_pattern="{ytid}_{start:.3f}.wav", on_missing="keep")
    assert t2.frame["path"].iloc[1] == "-0RWZT-miFs_420.000.wav"
    assert t2.frame["path"].iloc[3] == "zzzzzzzzzzz_5.500.wav"


def test_audioset_missing_audio_reported_with_count_and_first(tmp_path, caplog):
    root = _as_root(tmp_path)
    touch(root, "balanced_train_segments/Y--PJHxphWEs.wav")
    with pytest.raises(AdapterError, match=r"3 of 4 audio files are missing.*Y-0RWZT-miFs.wav"):
        adapt("audioset", root)
    with caplog.at_level(logging.WARNING):
        t = adapt("audioset", root, on_missing="drop")
    assert list(t.frame["clip_id"]) == ["--PJHxphWEs"] and t.num_classes == 3
    assert "3 of 4 audio files are missing" in caplog.text


def test_audioset_unknown_mid_and_duplicate_ytid(tmp_path):
    with pytest.raises(AdapterError, match=r"balanced_train_segments.csv, line 5: mid\(s\) "
                                           r"\['/m/zzz'\]"):
        adapt("audioset", _as_root(tmp_path, AS_BAL.replace('"/m/0bt9lr"', '"/m/zzz"')))
    dup = AS_BAL + '--PJHxphWEs, 50.000, 60.000, "/m/09x0r"\n'
    with pytest.raises(AdapterError, match="'--PJHxphWEs' at lines 4 and 7"):
        adapt("audioset", _as_root(tmp_path / "b", dup))


def test_audioset_panns_hdf5(tmp_path):
    h5py = pytest.importorskip("h5py")
    root = tmp_path / "hdf5s"
    write(root / "class_labels_indices.csv", AS_LABELS)
    wave = np.zeros((3, 8), np.int16)
    wave[0, :2] = [16384, -32768]
    target = np.array([[1, 1, 0], [0, 0, 0], [0, 0, 1]], bool)
    with h5py.File(root / "eval.h5", "w") as hf:
        hf.create_dataset("audio_name", data=[b"Y--PJHxphWEs.wav", b"", b"Yabc.wav"], dtype="S20")
        hf.create_dataset("waveform", data=wave)
        hf.create_dataset("target", data=target)
        hf.attrs.create("sample_rate", data=32000, dtype=np.int32)
    with pytest.raises(AdapterError, match=r"1 of 3 rows have no audio_name .*first rows \[1\]"):
        adapt("audioset_hdf5", root, files={"eval.h5": "test"})
    t = adapt("audioset_hdf5", root, files={"eval.h5": "test"}, on_missing="drop")
    assert list(t.frame["path"]) == ["eval.h5#0", "eval.h5#2"]
    assert list(t.frame["clip_id"]) == ["--PJHxphWEs", "abc"]
    assert t.labels_of(1) == ["/m/0bt9lr"]
    x, sr = read_hdf5_clip(root / "eval.h5#0")
    assert sr == 32000 and x.dtype == np.float32 and x.shape == (8,)
    assert x[:2].tolist() == [0.5, -1.0]
    with pytest.raises(IndexError, match="row 5 out of range"):
        read_hdf5_clip(f"{root / 'eval.h5'}#5")


# --------------------------------------------------------------------------------- TMac .h5


def test_read_tmac_features_real_layout(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "AudioSet_embedds_all.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as hf:
        hf["audio"] = rng.normal(size=(3, 101, 128)).astype(np.float32)
        hf["video"] = rng.normal(size=(3, 40, 1024)).astype(np.float32)
        hf["label"] = np.array([b"Dog", b"Speech", b"Dog"])
        hf["audio_add"] = np.array([b"a/0.wav", b"a/1.wav", b"a/2.wav"])
        hf["video_add"] = np.array([b"v/0.mp4", b"v/1.mp4", b"v/2.mp4"])
        hf["unique_labels"] = np.array([b"Speech", b"Dog"])
    f = read_tmac_features(path)
    assert f["audio"].shape == (3, 101, 128) and f["video"].shape == (3, 40, 1024)
    assert f["classes"] == ["Speech", "Dog"]
    assert f["label_index"].tolist() == [1, 0, 1]
    assert f["target"].tolist() == [[0, 1], [1, 0], [0, 1]]
    t = adapt("tmac_features", tmp_path)
    assert list(t.frame["path"]) == [f"{path.name}#{i}" for i in range(3)]
    assert t.classes == ["Speech", "Dog"] and t.class_index(0) == 1


def test_read_tmac_features_multihot_and_bad_shape(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as hf:
        hf["audio"] = np.zeros((2, 101, 128), np.float32)
        hf["video"] = np.zeros((2, 40, 1024), np.float32)
        hf["label"] = np.array([[0, 1, 1], [1, 0, 0]], np.float32)
    f = read_tmac_features(path)
    assert f["classes"] == ["0", "1", "2"] and f["label"] == ["1;2", "0"]
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as hf:
        hf["audio"] = np.zeros((2, 101, 64), np.float32)
        hf["video"] = np.zeros((2, 40, 1024), np.float32)
        hf["label"] = np.zeros((2, 3), np.float32)
    with pytest.raises(AdapterError, match=r"bad.h5: 'audio' has shape \(2, 101, 64\)"):
        read_tmac_features(bad)


# ------------------------------------------------------------------------ Speech Commands / VC1


def test_spcv2_lists_background_noise_and_12class(tmp_path):
    root = tmp_path / "spc"
    touch(root, "yes/aa11_nohash_0.wav", "yes/bb22_nohash_1.wav", "no/aa11_nohash_0.wav",
          "marvin/cc33_nohash_0.wav", "_background_noise_/white_noise.wav")
    write(root / "validation_list.txt", "yes/bb22_nohash_1.wav\n")
    write(root / "testing_list.txt", "no/aa11_nohash_0.wav\n")
    t = adapt("spcv2", root)
    assert len(t) == 4 and "_background_noise_" not in " ".join(t.frame["path"])
    split = dict(zip(t.frame["clip_id"], t.frame["split"]))
    assert split == {"marvin/cc33_nohash_0": "train", "no/aa11_nohash_0": "test",
                     "yes/aa11_nohash_0": "train", "yes/bb22_nohash_1": "valid"}
    assert t.classes == ["marvin", "no", "yes"]
    assert set(t.frame["speaker"]) == {"aa11", "bb22", "cc33"}
    t12 = adapt("spcv2", root, variant="10+unknown")
    assert t12.num_classes == 11 and t12.labels_of(0) == ["_unknown_"]
    write(root / "testing_list.txt", "no/aa11_nohash_0.wav\nup/gone_nohash_0.wav\n")
    with pytest.raises(AdapterError, match=r"1 of 5 audio files are missing.*up/gone_nohash_0.wav"):
        adapt("spcv2", root)


def test_vc1_iden_split(tmp_path):
    root = tmp_path / "vc1"
    write(root / "iden_split.txt", "1 id10001/1zcIwhmdeo4/00001.wav\n3 id10001/1zcIwhmdeo4/00002.wav\n"
                                   "2 id10002/xyz/00001.wav\n")
    t = adapt("vc1", root, on_missing="keep")
    assert list(t.frame["split"]) == ["train", "test", "valid"]
    assert t.frame["path"].iloc[0] == "wav/id10001/1zcIwhmdeo4/00001.wav"
    assert t.classes == ["id10001", "id10002"]
    write(root / "iden_split.txt", "4 id10001/a/00001.wav\n")
    with pytest.raises(AdapterError, match=r"iden_split.txt, line 1: expected"):
        adapt("vc1", root, on_missing="keep")


# ------------------------------------------------------------------------------ GTZAN / NSynth


def test_gtzan_filtered_splits(tmp_path):
    root = tmp_path / "gtzan"
    write(root / "train_filtered.txt", "blues/blues.00000.wav\nrock/rock.00001.wav\n")
    write(root / "valid_filtered.txt", "jazz/jazz.00002.wav\n")
    write(root / "test_filtered.txt", "blues/blues.00003.wav\n")
    touch(root, "blues/blues.00000.wav", "rock/rock.00001.wav", "jazz/jazz.00002.wav",
          "blues/blues.00003.wav", "jazz/jazz.00054.wav")   # 00054: faulty, in no list
    t = adapt("gtzan", root)
    assert len(t) == 4 and "jazz/jazz.00054" not in set(t.frame["clip_id"])
    assert list(t.frame["split"]) == ["train", "train", "valid", "test"]
    assert t.classes == ["blues", "jazz", "rock"]
    write(root / "test_filtered.txt", "blues/blues.00003.wav\nrock/rock.00001.wav\n")
    with pytest.raises(AdapterError, match=r"test_filtered.txt, line 2: 'rock/rock.00001.wav' is "
                                           r"already listed in train_filtered.txt line 2"):
        adapt("gtzan", root)


def test_nsynth_examples_json(tmp_path):
    root = tmp_path / "nsynth"
    rec = lambda fam, pitch: {"instrument_family_str": fam, "pitch": pitch, "velocity": 100,
                              "instrument_source_str": "acoustic"}
    write(root / "nsynth-train/examples.json", json.dumps({"bass_synthetic_033-022-050": rec("bass", 22),
                                                           "guitar_acoustic_010-060-127": rec("guitar", 60)}))
    write(root / "nsynth-valid/examples.json", json.dumps({"keyboard_electronic_001-021-127": rec("keyboard", 21)}))
    write(root / "nsynth-test/examples.json", json.dumps({"bass_synthetic_068-049-025": rec("bass", 49)}))
    t = adapt("nsynth", root, on_missing="keep")
    assert list(t.frame["split"]) == ["train", "train", "valid", "test"]
    assert t.frame["path"].iloc[2] == "nsynth-valid/audio/keyboard_electronic_001-021-127.wav"
    assert list(t.frame["pitch"]) == [22, 60, 21, 49] and t.classes == ["bass", "guitar", "keyboard"]


# ------------------------------------------------------------------------------------- EVAR


def test_evar_generic_index_column_folds_and_multilabel(tmp_path):
    meta = write(tmp_path / "fsd.csv", ",file_name,label,split\n0,a/1.wav,\"Dog,Bark\",train\n"
                                       "1,b/2.wav,Cat,valid\n2,b/3.wav,Dog,test\n")
    t = adapt("evar", tmp_path, task="fsd50k", metadata_csv=meta, on_missing="keep")
    assert "Unnamed: 0" not in t.frame.columns and t.labels_of(0) == ["Dog", "Bark"]
    assert t.classes == ["Bark", "Cat", "Dog"]
    folds = write(tmp_path / "us8k.csv", "file_name,label,fold\naudio/fold1/x.wav,siren,1\n"
                                         "audio/fold2/y.wav,dog_bark,2\n")
    tf = adapt("evar", tmp_path, task="us8k", metadata_csv=folds, on_missing="keep")
    assert set(tf.frame["split"]) == {"cv"} and list(tf.frame["fold"]) == [1, 2]
    bad = write(tmp_path / "bad.csv", "file_name,label,split\nx.wav,a,training\n")
    with pytest.raises(AdapterError, match=r"bad.csv: split 'training' of file 'x.wav'"):
        adapt("evar", tmp_path, task="x", metadata_csv=bad, on_missing="keep")
    neither = write(tmp_path / "n.csv", "file_name,label\nx.wav,a\n")
    with pytest.raises(AdapterError, match="needs a 'split' or a 'fold' column"):
        adapt("evar", tmp_path, task="x", metadata_csv=neither, on_missing="keep")


def test_cremad_checks_emotion_in_file_name(tmp_path):
    meta = write(tmp_path / "cremad.csv", "file_name,label,speaker_id,split\n"
                                          "1001_DFA_ANG_XX.wav,ANG,1001,test\n"
                                          "1002_IEO_HAP_HI.wav,HAP,1002,train\n")
    touch(tmp_path, "1001_DFA_ANG_XX.wav", "1002_IEO_HAP_HI.wav")
    t = adapt("cremad", tmp_path, metadata_csv=meta)
    assert list(t.frame["speaker"]) == ["1001", "1002"] and list(t.frame["level"]) == ["XX", "HI"]
    assert list(t.frame["emotion"]) == ["anger", "happy"]
    write(meta, "file_name,label,speaker_id,split\n1001_DFA_ANG_XX.wav,SAD,1001,test\n")
    with pytest.raises(AdapterError, match="has emotion 'ANG' in its name but label 'SAD'"):
        adapt("cremad", tmp_path, metadata_csv=meta)


def test_surge_from_tone_splits(tmp_path):
    root = tmp_path / "surge"
    touch(root, "toneA/21.ogg", "toneA/100.ogg", "toneB/21.ogg")
    tones = write(tmp_path / "tones.csv", "tone,split\ntoneA,train\ntoneB,test\n")
    t = adapt("surge", root, tone_splits_csv=tones)
    assert list(t.frame["split"]) == ["train", "train", "test"]
    assert t.classes == ["21", "100"]        # numeric pitch order, not string order
    assert list(t.frame["tone"]) == ["toneA", "toneA", "toneB"]


# ---------------------------------------------------------------------------------- captions


def test_clotho_captions_with_commas_quotes_and_pipes(tmp_path):
    root = tmp_path / "clotho"
    cap = 'file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n'
    write(root / "clotho_captions_development.csv", cap +
          '"Radio Garble, 2.wav","A radio, static-filled, crackles.","He said ""stop"" twice.",'
          '"a | b","d","e"\n')
    write(root / "clotho_captions_validation.csv", cap + 'v.wav,a,b,c,d,e\n')
    write(root / "clotho_captions_evaluation.csv", cap + 'e.wav,a,b,c,d,e\n')
    write(root / "clotho_metadata_development.csv",
          "file_name,keywords,sound_id,sound_link,start_end_samples,manufacturer,license\n"
          '"Radio Garble, 2.wav",radio;static,80399,http://x,"[1, 2]",Ben,http://cc\n')
    touch(root, "development/Radio Garble, 2.wav", "validation/v.wav", "evaluation/e.wav")
    t = adapt("clotho", root)
    caps = t.captions_of(0)
    assert caps[:3] == ["A radio, static-filled, crackles.", 'He said "stop" twice.', "a / b"]
    assert len(caps) == 5 and list(t.frame["split"]) == ["train", "valid", "test"]
    assert t.frame["clip_id"].iloc[0] == "Radio Garble, 2"
    assert str(t.frame["sound_id"].iloc[0]) == "80399"
    out = tmp_path / "tables/clotho.csv"
    t2 = adapt("clotho", root, out_csv=out)
    back = ClipTable.read(out)
    assert back.captions_of(0) == t2.captions_of(0)
    assert back.audio_path(0).resolve() == (root / "development/Radio Garble, 2.wav").resolve()


def test_audiocaps_groups_captions_by_clip(tmp_path):
    root = tmp_path / "audiocaps"
    write(root / "train.csv", "audiocap_id,youtube_id,start_time,caption\n"
                              "91139,r1nicOVtvkQ,130,A woman talks, then a dog barks\n"
                              "58146,UDGBjjwyaqE,20,Rain falls; thunder rumbles\n")
    write(root / "val.csv", "audiocap_id,youtube_id,start_time,caption\n"
                            "97151,rqfQRErjfk8,170,A man speaks\n"
                            "97150,rqfQRErjfk8,170,\"Someone talks, and birds chirp\"\n"
                            "97152,rqfQRErjfk8,30,Different clip of the same video\n")
    write(root / "test.csv", "audiocap_id,youtube_id,start_time,caption\n")
    with pytest.raises(AdapterError, match="cannot parse AudioCaps CSV .*train.csv"):
        adapt("audiocaps", root, on_missing="keep")   # unquoted comma in a caption: malformed
    write(root / "train.csv", "audiocap_id,youtube_id,start_time,caption\n"
                              "91139,r1nicOVtvkQ,130,\"A woman talks, then a dog barks\"\n"
                              "58146,UDGBjjwyaqE,20,Rain falls; thunder rumbles\n")
    t = adapt("audiocaps", root, on_missing="keep")
    assert len(t) == 4
    row = t.frame.set_index("clip_id").loc["rqfQRErjfk8_170"]
    assert row["captions"] == "Someone talks, and birds chirp|A man speaks"   # audiocap_id order
    assert row["split"] == "valid" and row["path"] == "val/rqfQRErjfk8_170.wav"
    t2 = adapt("audiocaps", root, on_missing="keep", audio_pattern="{split}/{audiocap_id}.wav")
    assert t2.frame.set_index("clip_id").loc["rqfQRErjfk8_170", "path"] == "val/97150.wav"
    write(root / "test.csv", "audiocap_id,youtube_id,start_time,caption\n5,a,0,x\n5,b,0,y\n")
    with pytest.raises(AdapterError, match="test.csv: duplicated audiocap_id '5' at lines 2 and 3"):
        adapt("audiocaps", root, on_missing="keep")


def test_wavcaps_json_sources_and_exclusion(tmp_path):
    root = tmp_path / "wavcaps"
    write(root / "json_files/FreeSound/fsd_final.json", json.dumps({"num_captions_per_audio": 1,
          "data": [{"id": "180913", "file_name": "UK Mello.wav", "caption": "A bell | rings.",
                    "duration": 3.2}, {"id": "99", "caption": "Excluded.", "duration": 1}]}))
    write(root / "json_files/FreeSound/blacklist_exclude.json", json.dumps({"FreeSound": ["1"]}))
    write(root / "json_files/SoundBible/sb_final.json", json.dumps({"data": [
          {"id": "1059", "audio": "wav_path", "caption": "Birds chirp, twice.", "duration": 5.0}]}))
    t = adapt("wavcaps", root, sources=["FreeSound", "SoundBible"], exclude_ids=["99"],
              on_missing="keep")
    assert list(t.frame["clip_id"]) == ["FreeSound/180913", "SoundBible/1059"]
    assert t.captions_of(0) == ["A bell / rings."]
    assert t.frame["path"].iloc[1] == "Zip_files/SoundBible/1059.flac"
    assert t.frame["file_duration_s"].tolist() == [3.2, 5.0] and "duration_s" not in t.frame
    write(root / "json_files/SoundBible/sb_final.json", json.dumps({"data": [
          {"id": "1", "caption": "a"}, {"id": "1", "caption": "b"}]}))
    with pytest.raises(AdapterError, match=r"id '1' at data\[0\] and data\[1\]"):
        adapt("wavcaps", root, sources=["SoundBible"], on_missing="keep")


def test_unknown_adapter_name():
    with pytest.raises(KeyError, match="no adapter for dataset 'nope'"):
        adapt("nope", ".")
