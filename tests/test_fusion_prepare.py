"""EVAR's preparation of the fusion tasks from the official downloads (papers.fusion.prepare), the
fold-aware cap of leave-one-fold-out tasks, and project-relative checkpoints of a backbone setup."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiorepro.data.cliptable import ClipTable
from audiorepro.papers.fusion import data as D
from audiorepro.papers.fusion import experiments as EX
from audiorepro.papers.fusion import prepare as P
from audiorepro.papers.fusion.model import FusionError


def _wav(path, seconds=0.5, sr=16000, channels=1, value=None, subtype="PCM_16", fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t) if value is None else np.full(n, value)
    data = np.stack([x, -x if channels == 2 and value is None else x], 1)[:, :channels]
    sf.write(path, data, sr, subtype=subtype, format=fmt)


def _esc50(root):
    rows = [("1-100-A-0.wav", 1, 0, "dog"), ("2-200-A-0.wav", 2, 0, "dog"),
            ("1-300-A-10.wav", 1, 10, "rain"), ("3-400-A-10.wav", 3, 10, "rain")]
    for name, *_ in rows:
        _wav(root / "audio" / name, 0.5, 44100, channels=2)
    (root / "meta").mkdir()
    pd.DataFrame([(n, f, t, c, "True", 100, "A") for n, f, t, c in rows],
                 columns=["filename", "fold", "target", "category", "esc10", "src_file",
                          "take"]).to_csv(root / "meta" / "esc50.csv", index=False)


def test_esc50_stereo_44k_becomes_mono_16k_with_evars_metadata(tmp_path):
    down, out = tmp_path / "ESC-50-master", tmp_path / "work16k"
    _esc50(down)
    P.prepare_evar_layout({"ESC-50": down}, out, log=None)
    meta = (out / "metadata" / "esc50.csv").read_text().splitlines()
    # make_metadata.py esc50: filename -> file_name with audio/ prefix, category -> label
    assert meta[0] == "file_name,fold,target,label,esc10,src_file,take"
    assert meta[1] == "audio/1-100-A-0.wav,1,0,dog,True,100,A"
    info = sf.info(out / "esc50" / "audio" / "1-100-A-0.wav")
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (16000, 1, "PCM_16", 8000)
    # left = sine, right = -sine: their mean is silence
    x, _ = sf.read(out / "esc50" / "audio" / "1-100-A-0.wav")
    assert np.abs(x).max() < 1e-3
    tables = D.paper_tasks(out, out / "metadata", ["ESC-50"])
    t = tables["ESC-50"].frame
    assert list(t["split"].unique()) == ["cv"] and sorted(t["fold"]) == [1, 1, 2, 3]
    assert tables["ESC-50"].classes == ["dog", "rain"]


def test_us8k_nsynth_surge_keep_evars_index_column(tmp_path):
    us = tmp_path / "UrbanSound8K"
    (us / "metadata").mkdir(parents=True)
    _wav(us / "audio" / "fold2" / "7-1-0-0.wav", 0.25, 8000)
    pd.DataFrame([("7-1-0-0.wav", 7, 0.0, 0.25, 1, 2, 1, "car_horn")],
                 columns=["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID",
                          "class"]).to_csv(us / "metadata" / "UrbanSound8K.csv", index=False)
    ns = tmp_path / "nsynth"
    for split in ("train", "test"):         # valid not downloaded: prepared as it is
        _wav(ns / f"nsynth-{split}" / "audio" / f"guitar_acoustic_001-060-{split[:3]}.wav")
        (ns / f"nsynth-{split}" / "examples.json").write_text(json.dumps(
            {f"guitar_acoustic_001-060-{split[:3]}": {"instrument_family_str": "guitar"}}))
    su = tmp_path / "surge"
    _wav(su / "toneA" / "60.ogg", fmt="OGG", subtype="VORBIS")
    _wav(su / "toneB" / "62.ogg", fmt="OGG", subtype="VORBIS")
    (su / "dataset_surge_tone_splits.csv").write_text("tone,split\ntoneA,train\ntoneB,test\n")
    out = tmp_path / "16k"
    P.prepare_evar_layout({"us8k": us, "NSynth": ns, "Surge": su}, out, log=None)
    assert (out / "metadata" / "us8k.csv").read_text().splitlines() == [
        "file_name,label,fold", "audio/fold2/7-1-0-0.wav,car_horn,2"]
    assert (out / "metadata" / "nsynth.csv").read_text().splitlines() == [
        ",file_name,label,split",
        "0,nsynth-train/audio/guitar_acoustic_001-060-tra.wav,guitar,train",
        "1,nsynth-test/audio/guitar_acoustic_001-060-tes.wav,guitar,test"]
    assert (out / "metadata" / "surge.csv").read_text().splitlines() == [
        ",file_name,label,split", "0,toneA/60.ogg,60,train", "1,toneB/62.ogg,62,test"]
    assert sf.info(out / "us8k" / "audio" / "fold2" / "7-1-0-0.wav").frames == 4000   # 8 -> 16 kHz
    info = sf.info(out / "surge" / "toneA" / "60.ogg")
    assert (info.format, info.subtype, info.samplerate) == ("OGG", "VORBIS", 16000)
    t = D.paper_tasks(out, out / "metadata", ["Surge"])["Surge"].frame
    assert list(t["tone"]) == ["toneA", "toneB"] and list(t["labels"]) == ["60", "62"]


def test_spcv2_vc1_gtzan_splits_from_the_official_lists(tmp_path):
    sp = tmp_path / "spcv2"
    for rel in ("one/a_nohash_0.wav", "one/b_nohash_0.wav", "two/c_nohash_0.wav",
                "_background_noise_/white_noise.wav"):
        _wav(sp / rel)
    (sp / "validation_list.txt").write_text("one/b_nohash_0.wav\n")
    (sp / "testing_list.txt").write_text("two/c_nohash_0.wav\n")
    vc = tmp_path / "vc1"
    _wav(vc / "wav" / "id1" / "v1" / "00001.wav")
    _wav(vc / "wav" / "id2" / "v9" / "00002.wav")
    (vc / "iden_split.txt").write_text("1 id1/v1/00001.wav\n3 id2/v9/00002.wav\n")
    gt = tmp_path / "gtzan"
    for rel in ("jazz/jazz.00000.wav", "jazz/jazz.00054.wav", "rock/rock.00001.wav"):
        _wav(gt / rel, sr=22050)
    (gt / "train_filtered.txt").write_text("jazz/jazz.00000.wav\n")
    (gt / "valid_filtered.txt").write_text("")
    (gt / "test_filtered.txt").write_text("rock/rock.00001.wav\n")
    out = tmp_path / "16k"
    P.prepare_evar_layout({"SPCV2": sp, "VC1": vc, "GTZAN": gt}, out, log=None)
    assert (out / "metadata" / "spcv2.csv").read_text().splitlines() == [
        "file_name,label,split", "one/a_nohash_0.wav,one,train", "one/b_nohash_0.wav,one,valid",
        "two/c_nohash_0.wav,two,test"]
    assert not (out / "spcv2" / "_background_noise_").exists()     # no task reads it
    assert (out / "metadata" / "vc1.csv").read_text().splitlines() == [
        "file_name,label,split", "wav/id1/v1/00001.wav,id1,train", "wav/id2/v9/00002.wav,id2,test"]
    gmeta = (out / "metadata" / "gtzan.csv").read_text().splitlines()
    assert gmeta[2] == "jazz/jazz.00054.wav,jazz,"          # in no list: no split, not converted
    assert not (out / "gtzan" / "jazz" / "jazz.00054.wav").exists()
    tabs = D.paper_tasks(out, out / "metadata", ["SPCV2", "VC1", "GTZAN"])
    assert list(tabs["GTZAN"].frame["split"]) == ["train", "test"]
    assert list(tabs["VC1"].frame["labels"]) == ["id1", "id2"]


def test_shipped_csvs_are_looked_up_in_the_download_then_in_evar_dir(tmp_path):
    cr = tmp_path / "cremad"
    _wav(cr / "1001_DFA_ANG_XX.wav")
    text = "file_name,label,speaker_id,split\n1001_DFA_ANG_XX.wav,ANG,1001,test\n"
    with pytest.raises(FusionError, match="cremad.csv.*evar_dir"):
        P.evar_metadata("CRM-D", cr)
    evar = tmp_path / "eval-audio-repr"
    (evar / "evar" / "metadata").mkdir(parents=True)
    (evar / "evar" / "metadata" / "cremad.csv").write_text(text)
    assert P.evar_metadata("CRM-D", cr, evar_dir=evar) == text       # used as shipped


def test_preparation_is_skipped_when_current_and_redone_when_the_download_changes(tmp_path):
    down, out = tmp_path / "esc", tmp_path / "16k"
    _esc50(down)
    P.prepare_evar_layout({"esc50": down}, out, log=None)
    target = out / "esc50" / "audio" / "1-100-A-0.wav"
    stamp = target.stat().st_mtime_ns
    said = []
    P.prepare_evar_layout({"esc50": down}, out, log=said.append)
    assert target.stat().st_mtime_ns == stamp and said == []         # current: nothing done
    meta = down / "meta" / "esc50.csv"
    meta.write_text(meta.read_text().replace(",rain,", ",rainfall,"))
    P.prepare_evar_layout({"esc50": down}, out, log=said.append)
    assert "0 of 4 audio files converted" in said[0]                   # metadata only
    assert "rainfall" in (out / "metadata" / "esc50.csv").read_text()
    (down / "audio" / "1-100-A-0.wav").unlink()
    (out / "esc50" / P.MARKER).unlink()
    with pytest.raises(FusionError, match="1-100-A-0.wav is listed in the metadata but missing"):
        P.prepare_evar_layout({"esc50": down}, out, log=None)
    with pytest.raises(FusionError, match="unknown task 'esc-100'"):
        P.prepare_evar_layout({"esc-100": down}, out, log=None)


def test_load_tasks_prepares_from_downloads_relative_to_the_home(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path.parent)
    _esc50(tmp_path / "dl" / "esc50")
    tabs = D.load_tasks(["ESC-50"], None, "evar/16k", download_roots={"ESC-50": "dl/esc50",
                                                                     "US8K": "dl/not-needed"})
    assert len(tabs["ESC-50"]) == 4 and (tmp_path / "evar" / "16k" / "metadata" / "esc50.csv").is_file()
    assert not (tmp_path / "evar" / "16k" / "us8k").exists()          # not a task of the run
    with pytest.raises(ValueError, match="download_roots needs data_root"):
        D.load_tasks(["ESC-50"], None, "", download_roots={"ESC-50": "dl/esc50"})


def _cv_table(folds, labels):
    frame = pd.DataFrame({"clip_id": [f"c{i}" for i in range(len(folds))],
                          "path": [f"c{i}.wav" for i in range(len(folds))], "split": "cv",
                          "labels": labels, "fold": folds})
    return ClipTable(frame, ".", sorted(set(labels)), "cv")


def test_cv_cap_spreads_over_folds_so_every_kept_fold_can_be_the_test_fold():
    # 3 classes x 2 clips, all of a class in one fold except the last: a class round-robin alone
    # could keep 3 clips of 2 folds; spread, the 3 picks lie in 3 folds with 3 classes
    folds = [1, 1, 2, 2, 3, 3]
    labels = ["a", "b", "a", "b", "c", "c"]
    sub = D.subsample(_cv_table(folds, labels), {"cv": 3}).frame
    assert len(sub) == 3 and sub["fold"].nunique() == 3
    for f in sub["fold"].unique():
        tr, va, te = EX.fold_split(sub["fold"].to_numpy(), f)
        assert te.sum() == 1 and tr.sum() >= 1 and va.sum() == 1
    assert D.subsample(_cv_table(folds, labels), {"cv": 3}).frame.equals(sub)   # deterministic
    # without a fold column or for named splits the class round-robin is unchanged
    t = _cv_table(folds, labels)
    t2 = ClipTable(t.frame.drop(columns="fold").assign(split="train"), ".", t.classes, "x")
    assert sorted(D.subsample(t2, {"train": 3}).frame["labels"]) == ["a", "b", "c"]


def test_backbone_setup_checkpoint_relative_to_home_and_one_build_for_two_tap_sets(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    setup = EX.BackboneSetup("X", "panns_cnn14_16k", "pretrained", build_kw={"checkpoint": "checkpoints/missing.pth"})
    with pytest.raises(FusionError, match="checkpoint 'checkpoints/missing.pth' not found"):
        setup.build("cpu")
    a = EX.BackboneSetup("R", "crepe_tiny", "random", seed=3)
    m1 = a.build("cpu")
    from dataclasses import replace
    assert replace(a, taps=[6], label="R2").build("cpu") is m1          # same weights: one build
    assert replace(a, seed=4).build("cpu") is not m1
