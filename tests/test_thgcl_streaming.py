"""THGCL on features files: the streaming reader (rows read on demand), its standardisation, the
video perturbations of the robustness sweep, and a user's own clip table (no files outside the
repository)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from audiorepro.data.adapters import read_tmac_features
from audiorepro.papers.thgcl import data as D
from audiorepro.papers.thgcl import experiments as E
from audiorepro.preprocessing import standardise

h5py = pytest.importorskip("h5py")


def _features_file(path, n=12, p_a=7, d_a=5, p_v=4, d_v=6, seed=0, tmac_labels=False):
    rng = np.random.default_rng(seed)
    audio = (3.0 + 2.0 * rng.standard_normal((n, p_a, d_a))).astype(np.float32)
    video = (-1.0 + 0.5 * rng.standard_normal((n, p_v, d_v))).astype(np.float32)
    with h5py.File(path, "w") as hf:
        hf["audio"] = audio
        hf["video"] = video
        if tmac_labels:
            names = [b"Dog", b"Car", b"Rain"]
            hf["label"] = np.array([names[i % 3] for i in range(n)])
            hf["unique_labels"] = np.array(names)
    return audio, video


def test_h5array_rows_equal_the_files_rows_in_any_order(tmp_path):
    audio, _ = _features_file(tmp_path / "f.h5", n=10)
    arr = D.H5Array(tmp_path / "f.h5", "audio")
    assert arr.shape == audio.shape and len(arr) == 10
    for idx in ([3], [2, 3, 4], [7, 1, 7, 0], [9, 0, 5, 5, 2]):   # contiguous, unordered, repeated
        assert np.array_equal(arr.rows(idx), audio[idx])
    assert arr.rows([]).shape == (0, *audio.shape[1:])
    with pytest.raises(D.THGCLError, match=r"f\.h5: row 10 outside dataset 'audio' of 10 rows"):
        arr.rows([1, 10])
    with pytest.raises(D.THGCLError, match=r"no dataset 'label'"):
        D.H5Array(tmp_path / "f.h5", "label")


def test_streamed_dataset_equals_in_memory_standardisation(tmp_path):
    audio, video = _features_file(tmp_path / "f.h5", n=12)
    train = np.zeros(12, bool)
    train[[0, 2, 3, 5, 8, 9, 11]] = True
    rows = np.flatnonzero(train)
    a_stats = D.node_statistics(D.H5Array(tmp_path / "f.h5", "audio"), rows, chunk_clips=2)
    v_stats = D.node_statistics(D.H5Array(tmp_path / "f.h5", "video"), rows, chunk_clips=3)
    # hand-computed: mean and population std (ddof 0) over every node of the training clips
    flat = audio[train].reshape(-1, 5).astype(np.float64)
    assert np.allclose(a_stats[0], flat.mean(0)) and np.allclose(a_stats[1], flat.std(0))
    ds = D.StreamedAVFeatures(D.H5Array(tmp_path / "f.h5", "audio"), D.H5Array(tmp_path / "f.h5", "video"),
                              np.eye(12, 3, dtype=np.float32), audio_stats=a_stats, video_stats=v_stats)
    expected_a = E._standardise_nodes(audio, train)   # the in-memory path of train_variant
    expected_v = E._standardise_nodes(video, train)
    batch = ds.__getitems__([11, 0, 4])
    assert np.allclose(batch["audio"].numpy(), expected_a[[11, 0, 4]], atol=1e-6)
    assert np.allclose(batch["video"].numpy(), expected_v[[11, 0, 4]], atol=1e-6)
    assert batch["target"].tolist() == np.eye(12, 3)[[11, 0, 4]].tolist()
    sub = ds.subset([4, 1])
    assert np.allclose(sub[0]["audio"].numpy(), expected_a[4], atol=1e-6)
    assert sub.target.tolist() == np.eye(12, 3)[[4, 1]].tolist() and len(sub) == 2
    # the training rows standardised have mean 0 and std 1 per dimension
    tr = ds.__getitems__(rows)["audio"].numpy().reshape(-1, 5)
    assert np.allclose(tr.mean(0), 0, atol=1e-5) and np.allclose(tr.std(0), 1, atol=1e-5)


def test_video_shift_and_noise_perturb_only_the_video(tmp_path):
    audio, video = _features_file(tmp_path / "f.h5", n=6, p_v=5)
    a, v = D.H5Array(tmp_path / "f.h5", "audio"), D.H5Array(tmp_path / "f.h5", "video")
    target = np.zeros((6, 2), np.float32)
    shifted = D.StreamedAVFeatures(a, v, target, video_shift=2).__getitems__([1, 3])
    assert np.array_equal(shifted["video"][:, 2:].numpy(), video[[1, 3], :3])
    assert np.array_equal(shifted["video"][:, :2].numpy(), np.zeros((2, 2, 6), np.float32))
    assert np.array_equal(shifted["audio"].numpy(), audio[[1, 3]])
    noisy = D.StreamedAVFeatures(a, v, target, video_noise=2.0, noise_seed=5)
    first, again = noisy.__getitems__([0, 4]), noisy.__getitems__([4])
    assert np.array_equal(first["video"][1].numpy(), again["video"][0].numpy())   # same draw per clip
    assert np.array_equal(noisy.subset([4])[0]["video"].numpy(), again["video"][0].numpy())
    diff = first["video"].numpy() - video[[0, 4]]
    assert 1.5 < diff.std() < 2.5 and not np.allclose(diff[0], diff[1])
    with pytest.raises(D.THGCLError, match="video_shift"):
        D.StreamedAVFeatures(a, v, target, video_shift=-1)


def test_read_tmac_features_without_arrays_reads_labels_and_shapes(tmp_path):
    _features_file(tmp_path / "t.h5", n=6, p_a=101, d_a=128, p_v=40, d_v=1024, tmac_labels=True)
    full = read_tmac_features(tmp_path / "t.h5")
    light = read_tmac_features(tmp_path / "t.h5", arrays=False)
    assert light["audio"] is None and light["video"] is None
    assert light["audio_shape"] == full["audio"].shape == (6, 101, 128)
    assert light["video_shape"] == (6, 40, 1024)
    assert np.array_equal(light["target"], full["target"]) and light["classes"] == ["Dog", "Car", "Rain"]


def test_tmac_features_stream_and_train_like_the_loaded_file(tmp_path, home):
    """The streamed paper path gives the same training run as the same features held in memory."""
    audio, video = _features_file(tmp_path / "t.h5", n=18, p_a=101, d_a=128, p_v=40, d_v=1024,
                                  tmac_labels=True)
    streamed = D.tmac_av_features(tmp_path / "t.h5")
    assert isinstance(streamed["audio"], D.H5Array)
    loaded = {**streamed, "audio": audio, "video": video}
    cfg = {"epochs": 2, "batch_size": 4, "seed": 3}
    kw = {"hidden": 8, "num_layers": 1, "embed_dim": 8}
    r_s = E.train_variant("THGCL", streamed, kw, cfg)
    r_l = E.train_variant("THGCL", loaded, kw, cfg)
    assert r_s["items"].ids.tolist() == r_l["items"].ids.tolist() and r_s["items"].n == 3   # 1 of 6 clips per class
    assert np.allclose(r_s["items"].scores, r_l["items"].scores, atol=1e-4)
    assert abs(r_s["test"]["mAP"] - r_l["test"]["mAP"]) < 1e-6


def _user_table(tmp_path, rows, splits, labels, file="feats.h5"):
    csv = tmp_path / "mine.csv"
    pd.DataFrame({"clip_id": [f"c{i}" for i in range(len(rows))],
                  "path": [f"{file}#{r}" if isinstance(r, int) else r for r in rows],
                  "split": splits, "labels": labels}).to_csv(csv, index=False)
    return csv


def test_user_clip_table_reads_its_rows_of_the_features_file(tmp_path):
    audio, video = _features_file(tmp_path / "feats.h5", n=8)
    with h5py.File(tmp_path / "feats.h5", "a") as hf:
        hf.attrs["audio_hop_s"] = 0.5
    csv = _user_table(tmp_path, [5, 0, 3, 7], ["train", "train", "valid", "test"],
                      ["cat", "dog", "cat;dog", "dog"])
    f = D.clip_table_av_features(csv)
    assert f["classes"] == ["cat", "dog"] and f["target"].tolist() == [[1, 0], [0, 1], [1, 1], [0, 1]]
    assert f["split"].tolist() == ["train", "train", "valid", "test"]
    assert f["audio_hop_s"] == 0.5 and f["video_chunk_s"] == 0.25
    assert np.array_equal(f["audio"].rows([0, 2]), audio[[5, 3]])    # table row -> file row
    assert np.array_equal(f["video"].rows([1]), video[[0]])


@pytest.mark.parametrize("rows, splits, match", [
    (["feats.h5"] + [1, 2], ["train"] * 3, r"row 2 \(clip 'c0'\), column 'path': 'feats.h5' is not <features file>#<row>"),
    ([0, 1, 9], ["train"] * 3, r"row 4 \(clip 'c2'\), column 'path': row 9 of feats.h5, which has 8 rows"),
    ([0, 1, 2], ["train", "holdout", "test"], r"row 3 \(clip 'c1'\), column 'split': 'holdout'"),
    ([0, "other.h5#1", 2], ["train"] * 3, r"column 'path': rows point at 2 features files"),
])
def test_user_clip_table_errors_name_row_and_column(tmp_path, rows, splits, match):
    _features_file(tmp_path / "feats.h5", n=8)
    _features_file(tmp_path / "other.h5", n=8)
    csv = _user_table(tmp_path, rows, splits, ["cat"] * 3)
    with pytest.raises(D.THGCLError, match=match):
        D.clip_table_av_features(csv)


def test_user_clip_table_runs_under_its_task_name(tmp_path, home):
    from audiorepro.results.records import _read_all

    _features_file(tmp_path / "feats.h5", n=30)
    labels = ["cat", "dog", "bird"] * 10
    csv = _user_table(tmp_path, list(range(30)), ["all"] * 30, labels)
    with pytest.raises(D.THGCLError, match="needs task"):
        D.chapter_features(8, clip_table=str(csv))
    feats, key, dataset, scale = D.chapter_features(8, clip_table=str(csv), task="pets")
    assert dataset == "pets (clip table mine.csv)" and scale.startswith("30 clips")
    counts = {s: int((feats["split"] == s).sum()) for s in ("train", "valid", "test")}
    assert counts == {"train": 21, "valid": 3, "test": 6}    # 0.7 / 0.1 / 0.2 of 10 per class
    per_seed, _ = E.run_variants(["audio-only MLP"], feats, {"hidden": 8}, {"epochs": 1, "batch_size": 8},
                                 key, table="table1", profile="paper", dataset=dataset, scale=scale)
    recs = [r for r in _read_all("result") if r["chapter"] == "thgcl"]
    assert [r["params"]["paper_row"] for r in recs] == ["audio-only MLP | pets"]
    assert recs[0]["params"]["data"] == str(csv) and recs[0]["dataset"] == dataset


def test_finished_run_keeps_its_result_not_its_resume_state(tmp_path, home):
    _features_file(tmp_path / "t.h5", n=18, p_a=101, d_a=128, p_v=40, d_v=1024, tmac_labels=True)
    feats = D.tmac_av_features(tmp_path / "t.h5")
    kw, cfg = {"hidden": 8, "num_layers": 1, "embed_dim": 8}, {"epochs": 2, "batch_size": 6}
    first = E.train_variant("THGCL", feats, kw, cfg, run_root=tmp_path / "runs")
    run_dir = first["fit"].run_dir
    assert (run_dir / "result.pt").is_file() and (run_dir / "done.json").is_file()
    assert not (run_dir / "checkpoint.pt").exists()
    again = E.train_variant("THGCL", feats, kw, cfg, run_root=tmp_path / "runs")
    assert again["fit"].from_cache and not first["fit"].from_cache
    assert np.array_equal(again["items"].scores, first["items"].scores)


def test_a_miniature_of_the_feature_file_is_not_the_papers_data(tmp_path, home):
    for folder in ("real", "tmac_features"):
        (tmp_path / folder).mkdir()
        _features_file(tmp_path / folder / "AudioSet_embedds_all.h5", n=9, p_a=101, d_a=128, p_v=40,
                       d_v=1024, tmac_labels=True)
    (tmp_path / "tmac_features" / "MINIATURE.txt").write_text("a miniature\n")
    (tmp_path / "eval").mkdir()
    _features_file(tmp_path / "eval" / "AudioSet_embedds_all.h5", n=6, p_a=101, d_a=128, p_v=40,
                   d_v=1024, seed=1, tmac_labels=True)
    real_file = str(tmp_path / "real" / "AudioSet_embedds_all.h5")
    feats, _, real, _ = D.chapter_features(8, tmac_file=real_file,
                                           eval_file=str(tmp_path / "eval" / "AudioSet_embedds_all.h5"))
    # the evaluation file's 6 clips are the test split, after the training file's 9 (7 : 1 train / valid)
    assert list(feats["split"][9:]) == ["test"] * 6 and "test" not in set(feats["split"][:9])
    assert feats["audio"].shape == (15, 101, 128) and feats["target"].shape == (15, 3)
    assert np.array_equal(feats["audio"].rows([9]), D.H5Array(tmp_path / "eval" / "AudioSet_embedds_all.h5",
                                                              "audio").rows([0]))
    _, _, repo_split, _ = D.chapter_features(8, tmac_file=real_file)
    _, _, mini, _ = D.chapter_features(8, tmac_file=str(tmp_path / "tmac_features" / "AudioSet_embedds_all.h5"))
    assert real == D.TMAC_DATASET == E.PAPER_DATA_CLAIMS["headline-map"]
    # the THGCL repository's split is not the paper's protocol: never the paper's data for a claim
    assert repo_split == f"{D.TMAC_DATASET}, THGCL repository split"
    assert mini == f"{D.TMAC_DATASET}, official-format miniature tmac_features"


def test_separate_evaluation_file_is_the_test_split(tmp_path):
    train_a, train_v = _features_file(tmp_path / "train.h5", n=16, tmac_labels=True)
    eval_a, _ = _features_file(tmp_path / "eval.h5", n=5, seed=3, tmac_labels=True)
    stack = D.StackedRows([D.H5Array(tmp_path / "train.h5", "audio"), D.H5Array(tmp_path / "eval.h5", "audio")])
    assert stack.shape == (21, *train_a.shape[1:])
    # rows from both files, any order: row 16 is the evaluation file's row 0
    assert np.array_equal(stack.rows([17, 2, 16, 20, 2]),
                          np.concatenate([eval_a[[1]], train_a[[2]], eval_a[[0]], eval_a[[4]], train_a[[2]]]))

