"""Bag-of-codewords experiments (lib/audiorepro/papers/bow/experiments.py, data.py): grid summaries,
registry round trips and the 02 -> 03-05 dependency, masking records, head run caches, 1 s waveforms
for the baselines, temporal bigrams, learned VQ codes, per-seed records with per-clip outputs and
the claims decided from them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from audiorepro import results
from audiorepro.data.cliptable import ClipTable
from audiorepro.metrics import mean_average_precision
from audiorepro.papers import bow
from audiorepro.papers.bow.model import BackboneProbabilities


@pytest.fixture
def home(tmp_path, monkeypatch):
    """Records and caches of every test go to its own AUDIOREPRO_HOME."""
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path / "home"))
    return tmp_path


def _grid() -> pd.DataFrame:
    """2 F x 2 D x 1 head x 1 dropout x 2 seeds with hand-chosen validation mAPs."""
    rows = []
    vals = {(10, 16): (0.30, 0.32), (10, 64): (0.50, 0.40), (20, 16): (0.20, 0.22), (20, 64): (0.35, 0.33)}
    for (f, d), (a, b) in vals.items():
        for s, v in enumerate((a, b)):
            rows.append({"F": float(f), "D": d, "hidden": 256, "dropout": 0.4, "seed": s,
                         "mAP_1s_valid": v, "mAP_clip_test": v / 2})
    return pd.DataFrame(rows)


def test_summarize_and_best_config_hand_computed():
    g = _grid()
    s = bow.summarize_grid(g)
    assert len(s) == 4 and list(s["seeds"]) == [2, 2, 2, 2]
    assert s.iloc[0][["F", "D"]].tolist() == [10.0, 64] and s.iloc[0]["mAP_1s_valid"] == pytest.approx(0.45)
    best = bow.best_config(g)
    assert best == {"F": 10.0, "D": 64, "hidden": 256, "dropout": 0.4, "mAP_1s_valid": pytest.approx(0.45)}
    per_d = bow.best_per(g, "D", where={"F": 20.0})
    assert per_d["D"].tolist() == [16, 64] and per_d["mAP_1s_valid"].tolist() == pytest.approx([0.21, 0.34])
    per_f = bow.best_per(g, "F")
    assert per_f["mAP_1s_valid"].tolist() == pytest.approx([0.45, 0.34])
    assert bow.paper_row_of(best) == "D=64, 256 units, dropout 0.4, F=10"
    with pytest.raises(bow.BowError, match="metric"):
        bow.summarize_grid(g, "nope")


def test_record_grid_roundtrip_records_validation_only(home):
    g = _grid()
    best = bow.record_grid(g, "book", "toy", "8 heads")
    assert bow.stored_best_config("book", "toy") == {k: best[k] for k in bow.GRID_KEYS}
    cells = results.load_records("bow", "fig2_grid")
    assert len(cells["record_id"].unique()) == 4 and set(cells["param.seeds"]) == {2}
    text = results.paper_vs_run("bow", "text", profile="book", formatted=False)
    got = dict(zip(text["row"], text["this run"]))
    assert got["run best (Fig. 2 grid)"] == pytest.approx(0.45)   # validation 1 s mAP of the best cell
    # the claim rows are recorded per seed with test outputs (record_seed_runs), not by record_grid
    assert results.load_records("bow", "fig2").empty
    assert results.evaluate_claim("bow", "f10-beats-f20", profile="book").verdict == "not yet measured"


def test_missing_grid_choice_names_notebook_02_and_the_profile(home):
    """Notebooks 03-05 need the configuration 02 records: without it the error says what to run."""
    with pytest.raises(bow.MissingRecordError, match=r"book/bow/02_fig2_grid\.ipynb") as err:
        bow.stored_best_config("book", "toy")
    assert "'book'" in str(err.value) and "'toy'" in str(err.value) and "fig2_best" in str(err.value)
    bow.record_grid(_grid(), "book", "toy", "8 heads")
    assert bow.stored_best_config("book", "toy")["D"] == 64
    # a record of another profile or dataset does not count
    with pytest.raises(bow.MissingRecordError, match="profile 'smoke'"):
        bow.stored_best_config("smoke", "toy")
    with pytest.raises(bow.MissingRecordError, match="dataset 'other'"):
        bow.stored_best_config("book", "other")
    # nor does one of another scale (the same world at other split sizes)
    assert bow.stored_best_config("book", "toy", "8 heads")["D"] == 64
    with pytest.raises(bow.MissingRecordError, match="scale '380 clips'"):
        bow.stored_best_config("book", "toy", "380 clips")


def test_masking_records_and_best_p(home):
    assert bow.masking_row(0.35) == "p=35%" and bow.masking_row(0.0) == "p=0%"
    assert bow.paper_masking_points() == {0.0: 0.35, 35.0: 0.38}  # the yml's printed Fig. 3 points
    assert bow.masking_claim_probabilities() == [0.0, 0.35]        # the rows of claim masking-helps
    df = pd.DataFrame({"p": [0.0, 0.0, 0.35, 0.35], "seed": [0, 1, 0, 1],
                       "mAP_1s_valid": [0.2, 0.4, 0.5, 0.3], "mAP_clip_valid": [0.1, 0.1, 0.2, 0.2]})
    cell = {"F": 10.0, "D": 16, "hidden": 256, "dropout": 0.4}
    agg = bow.record_masking(df, cell, "book", "toy", "4 heads")
    assert agg["mAP_1s_valid"].tolist() == pytest.approx([0.3, 0.4])
    assert bow.stored_best_masking("book", "toy") == 0.35
    assert bow.stored_best_masking("book", "toy", scale="4 heads") == 0.35
    assert bow.stored_best_masking("book", "toy", scale="380 clips") is None
    # the validation curve is not what the claim compares: no per-seed test rows yet
    assert results.evaluate_claim("bow", "masking-helps", profile="book").verdict == "not yet measured"


def test_bowconfig_int_and_float_factor_share_a_key():
    assert bow.BowConfig(factor=10).ae_fields() == bow.BowConfig(factor=10.0).ae_fields()
    with pytest.raises(bow.BowError, match="factor"):
        bow.BowConfig(factor="ten")


def test_temporal_bigrams_hand_computed():
    pat = np.zeros((1, 120), np.int64)
    pat[0, 0:10] = [0, 1, 1, 1, 1, 1, 1, 1, 1, 1]  # band 0 over time: pair (0, 1) once, (1, 1) 8 times
    env = np.array([[2, 2, 2, 2, 2, 2, 2, 2, 2, 0]])
    b = bow.temporal_bigrams({"pat": pat, "env": env}, 3)
    assert b.shape == (1, 18)
    pat_b, env_b = b[0, :9], b[0, 9:]
    assert pat_b.sum() == 108 and env_b.sum() == 9
    assert pat_b[0 * 3 + 1] == 1 and pat_b[1 * 3 + 1] == 8 and pat_b[0] == 108 - 9  # other 11 bands all 0
    assert env_b[2 * 3 + 2] == 8 and env_b[2 * 3 + 0] == 1


def _table(tmp_path, n=8) -> ClipTable:
    """n clips of 2.5 s whose sample values encode (clip, time): x = clip + t / 10."""
    sr, rows = 16000, []
    t = np.arange(int(2.5 * sr)) / sr
    for i in range(n):
        sf.write(tmp_path / f"c{i}.wav", (0.01 * i + 0.001 * t).astype(np.float32), sr, subtype="FLOAT")
        split = "train" if i < n // 2 else ("valid" if i < 3 * n // 4 else "test")
        rows.append({"clip_id": f"c{i}", "path": f"c{i}.wav", "split": split, "labels": "a" if i % 2 else "b"})
    return ClipTable(pd.DataFrame(rows), tmp_path, ["a", "b"], "waves")


def test_chunk_waves_align_with_spectrogram_chunks(home):
    ch = bow.compute_chunks(_table(home))
    w = bow.chunk_waves(ch)
    assert w.shape == (16, 16000)  # 2 chunks per 2.5 s clip, as the spectrogram chunks
    # chunk 3 = clip 1, second 1: samples 16000..31999 of clip 1
    t = np.arange(16000, 32000) / 16000
    assert np.allclose(w[3], 0.01 * 1 + 0.001 * t, atol=1e-6)
    # the clip length is a parameter: 1 s windows give one chunk (and one waveform) per clip
    short = bow.compute_chunks(_table(home), max_seconds=1.0)
    assert short.max_seconds == 1.0 and len(short.spec) == 8 and np.array_equal(short.chunk_clip, np.arange(8))
    assert bow.chunk_waves(short).shape == (8, 16000)
    assert np.allclose(bow.chunk_waves(short)[1], 0.01 + 0.001 * np.arange(16000) / 16000, atol=1e-6)
    assert bow.compute_chunks(_table(home), max_seconds=1.0).max_seconds == 1.0   # from the cache


def test_probabilities_wrapper_and_baseline_shapes(home):
    class Dict(torch.nn.Module):
        def forward(self, x):
            return {"logits": x[:, :2]}

    p = BackboneProbabilities(Dict())(torch.zeros(3, 5))
    assert torch.allclose(p, torch.full((3, 2), 0.5))
    ch = bow.compute_chunks(_table(home))
    res = bow.train_baseline(bow.chunk_waves(ch), ch,
                             bow.BaselineConfig("panns_cnn14_16k", 0.0625, epochs=1, batch_size=8))
    assert res.scores["test"].shape == (4, 2) and 0 <= res.metrics["mAP_clip_test"] <= 1
    with pytest.raises(bow.BowError, match="waves"):
        bow.train_baseline(np.zeros((3, 16000)), ch)


def test_vq_codes_cached_and_in_range(home):
    ch = bow.compute_chunks(_table(home))
    pipe = bow.BowPipeline(ch, bow.BowConfig(ae_hidden=16, ae_epochs=1, ae_batch_size=64),
                           cache_root=home / "cache")
    codes = bow.vq_codes(pipe, 4)
    assert {f: c.shape for f, c in codes.items()} == {"pat": (16, 120), "fenv": (16, 12), "env": (16, 10), "o": (16, 1)}
    assert all(int(c.min()) >= 0 and int(c.max()) < 4 for c in codes.values())
    assert np.all(bow.bag_of_words(codes, 4).sum(1) == 143)
    again = bow.vq_codes(pipe, 4)  # from the cache
    assert all(np.array_equal(again[f], codes[f]) for f in bow.FAMILIES)


def test_pipeline_codebook_larger_than_the_data_warns_and_uses_only_real_words(home):
    """8 training chunks give 8 whole-chunk (o) latents: at D = 16 the o codebook holds them and 8
    unused words, so every chunk's o code is one of the first 8 and each training chunk has its own."""
    ch = bow.compute_chunks(_table(home))
    pipe = bow.BowPipeline(ch, bow.BowConfig(ae_hidden=16, ae_epochs=1, ae_batch_size=64), cache_root=home / "cache")
    with pytest.warns(UserWarning, match="family 'o' has 8 training latents for D=16") as caught:
        codes = pipe.codes(16)
    assert not any("'pat'" in str(w.message) for w in caught)   # 960 patch latents fill D = 16
    assert int(codes["o"].max()) < 8 and int(codes["pat"].max()) >= 8
    train = ch.chunk_mask("train")
    lat = pipe.latents("o")[train]
    assert len(np.unique(codes["o"][train])) == len(np.unique(lat, axis=0))
    assert np.all(pipe.counts(16).sum(1) == 143)


def test_finished_runs_keep_no_resume_checkpoint_and_reload_from_cache(home):
    """A done autoencoder / head run keeps done.json and result.pt only (no 140 MB resume
    checkpoint per paper-sized autoencoder) and a new pipeline reloads the same weights."""
    ch = bow.compute_chunks(_table(home))
    cfg = bow.BowConfig(ae_hidden=16, ae_epochs=1, ae_batch_size=64)
    pipe = bow.BowPipeline(ch, cfg, cache_root=home / "cache")
    ae = pipe.autoencoder("o")
    run = pipe.ae_dir / "o"
    assert (run / "done.json").is_file() and (run / "result.pt").is_file() and not (run / "checkpoint.pt").exists()
    again = bow.BowPipeline(ch, cfg, cache_root=home / "cache")
    assert again.autoencoder_history("o").from_cache
    assert all(torch.equal(a, b) for a, b in zip(ae.state_dict().values(), again.autoencoder("o").state_dict().values()))
    head = bow.run_head(pipe, 4, bow.HeadConfig(hidden=8, epochs=1, batch_size=8))
    folder = bow.head_run_dir(pipe, 4, bow.HeadConfig(hidden=8, epochs=1, batch_size=8))
    assert (folder / "done.json").is_file() and not (folder / "checkpoint.pt").exists()
    assert bow.run_head(pipe, 4, bow.HeadConfig(hidden=8, epochs=1, batch_size=8)).metrics == head.metrics


def test_load_table_fsd50k_is_the_papers_data(home):
    """A table the FSD50K adapter writes (source FSD50K on every row) is recorded under the paper's
    rows, named by its path; with a task name, or another source, under the user's task."""
    t = _table(home)
    t.frame["source"] = "FSD50K"
    t.write(home / "fsd.csv")
    table, dataset, suffix = bow.load_table(str(home / "fsd.csv"))
    assert suffix == "" and dataset == f"FSD50K ({home / 'fsd.csv'}, 2 classes)" and len(table) == 8
    assert bow.load_table(str(home / "fsd.csv"), task="mine")[1:] == ("clip table mine", " | mine")
    t.frame.loc[0, "source"] = "ESC-50"
    t.write(home / "mixed.csv")
    assert bow.load_table(str(home / "mixed.csv"))[2] == " | mixed"


def test_head_run_dir_keys_everything_that_changes_the_run(home):
    ch = bow.compute_chunks(_table(home))
    pipe = bow.BowPipeline(ch, bow.BowConfig(ae_hidden=16, ae_epochs=1, ae_batch_size=64), cache_root=home / "cache")
    head = bow.HeadConfig(hidden=8, epochs=1, batch_size=8)
    base = bow.head_run_dir(pipe, 4, head)
    assert base == bow.head_run_dir(pipe, 4, bow.HeadConfig(hidden=8, epochs=1, batch_size=8))
    others = [bow.head_run_dir(pipe, 8, head), bow.head_run_dir(pipe, 4, bow.HeadConfig(hidden=8, epochs=1, batch_size=8, amp="bf16")),
              bow.head_run_dir(pipe, 4, head, variant={"bigrams": "time", "n_buckets": 8}),
              bow.head_run_dir(pipe, 4, head, variant={"bigrams": "time", "n_buckets": 16}),
              bow.head_run_dir(pipe, 4, head, family_sizes=(120, 12, 10, 1, 108)),
              bow.head_run_dir(bow.BowPipeline(ch, bow.BowConfig(factor=20, ae_hidden=16), cache_root=home / "cache"), 4, head)]
    assert len({base, *others}) == 7
    with pytest.raises(bow.BowError, match="variant"):
        bow.run_head(pipe, 4, head, features=np.zeros((len(ch.spec), 16), np.float32))
    res = bow.run_head(pipe, 4, head, device="auto")
    again = bow.run_head(pipe, 4, head)  # reloaded from its run directory, re-scored
    assert again.fit.from_cache and again.metrics == pytest.approx(res.metrics)


# ------------------------------------------------------------------ per-seed records and verdicts
def _toy_chunks(n_clips: int = 60, per_clip: int = 3, n_classes: int = 4, seed: int = 0) -> bow.ChunkSet:
    """A ChunkSet of ``n_clips`` test clips (``per_clip`` chunks each) with random multi-hot
    targets (every class has positives); no audio is needed to record outputs."""
    rng = np.random.default_rng(seed)
    targets = (rng.random((n_clips, n_classes)) < 0.3).astype(np.float32)
    targets[np.arange(n_classes), np.arange(n_classes)] = 1
    frame = pd.DataFrame({"split": ["test"] * n_clips})
    table = type("Table", (), {"frame": frame})()
    return bow.ChunkSet(np.zeros((n_clips * per_clip, 1, 1), np.float16), np.repeat(np.arange(n_clips), per_clip),
                        targets, table, "toy")


def _result(chunks: bow.ChunkSet, noise: float, seed: int) -> bow.HeadResult:
    """A head result whose chunk scores are the targets plus ``noise`` x uniform noise."""
    rng = np.random.default_rng(seed)
    y = chunks.chunk_targets()
    s = (y + noise * rng.random(y.shape)).astype(np.float32)
    clips, cs = bow.clip_pool(s, chunks.chunk_clip)
    m = {"mAP_clip_test": mean_average_precision(chunks.targets[clips], cs), "mAP_1s_test": mean_average_precision(y, s),
         "mAP_1s_valid": 0.5, "epochs": 1.0}
    return bow.HeadResult(m, None, torch.nn.Linear(2, 3), {"test": s})


def test_clip_items_pool_chunks_by_hand():
    ch = _toy_chunks(n_clips=2, per_clip=2, n_classes=2)
    res = bow.HeadResult({}, None, torch.nn.Linear(1, 1), {"test": np.array([[0.2, 0.0], [0.4, 1.0], [1.0, 0.5], [0.0, 0.5]], np.float32)})
    items = bow.clip_items(res, ch)
    assert list(items.ids) == ["clip0", "clip1"]
    assert np.allclose(items.scores, [[0.3, 0.5], [0.5, 0.5]]) and np.array_equal(items.targets, ch.targets)
    with pytest.raises(bow.BowError, match="'valid'"):
        bow.clip_items(res, ch, "valid")


def test_decide_claims_from_hand_made_per_item_records(home):
    """masking-helps decided by bow.decide_claims from per-seed records with per-clip outputs:
    a large gap -> reproduced, identical rows -> inconclusive, a reversed gap -> not reproduced;
    the newest run group decides."""
    ch = _toy_chunks()
    good = {s: _result(ch, 0.3, s) for s in range(3)}      # scores close to the targets: mAP near 1
    bad = {s: _result(ch, 20.0, 10 + s) for s in range(3)}   # noise dominates: mAP near chance
    assert min(r.metrics["mAP_clip_test"] for r in good.values()) > 0.9
    assert max(r.metrics["mAP_clip_test"] for r in bad.values()) < 0.7

    def decide(better, worse):
        group = results.new_run_group()
        table = bow.record_seed_runs("fig3", {"p=35%": better, "p=0%": worse}, ch, "book", "toy", "60 clips", group,
                                     valid_1s=True)
        assert len(table) == 6 and sorted(set(table["seed"])) == [0, 1, 2]
        return bow.decide_claims("book", "03_fig3_masking").set_index("claim").loc["masking-helps"]

    v = decide(good, bad)
    assert v["verdict"] == "reproduced" and v["items"] == 60 and v["seeds"] == 3 and v["lo"] > 0.1
    expect = np.mean([good[s].metrics["mAP_clip_test"] - bad[s].metrics["mAP_clip_test"] for s in range(3)])
    assert v["effect"] == pytest.approx(expect)
    recs = results.load_records("bow", "fig3")
    assert set(recs.loc[recs["metric"] == "mAP_1s", "value"]) == {0.5}   # the validation 1 s mAP beside it
    assert decide(good, good)["verdict"] == "inconclusive"
    assert decide(bad, good)["verdict"] == "not reproduced"
    stored = results.claims_table(["bow"], profile="book").set_index("claim_id")
    assert stored.loc["masking-helps", "verdict"] == "not reproduced"
    assert stored.loc["masking-helps", "notebook"] == "bow/03_fig3_masking"


def test_record_seed_runs_refuses_runs_without_test_outputs_or_group(home):
    ch = _toy_chunks()
    res = _result(ch, 0.3, 0)
    with pytest.raises(bow.BowError, match="run_group"):
        bow.record_seed_runs("fig3", {"p=0%": {0: res}}, ch, "book", "toy", "60 clips", "")
    no_test = bow.HeadResult({"mAP_1s_valid": 0.4}, None, res.model, {})
    with pytest.raises(bow.BowError, match=r"'p=0%', seed 0 has no test"):
        bow.record_seed_runs("fig3", {"p=0%": {0: no_test}}, ch, "book", "toy", "60 clips", "g")


def test_table1_claims_without_runs_are_not_yet_measured(home):
    out = bow.decide_claims("book", "book/bow/04_table1.ipynb").set_index("claim")
    assert list(out.index) == ["headline-clip-map", "beats-cnns", "below-transformer"]
    assert set(out["verdict"]) == {"not yet measured"}
    assert "needs FSD50K" in out.loc["headline-clip-map", "evidence"]
    with pytest.raises(KeyError, match="decides no claim"):
        bow.decide_claims("book", "01_representation")


def test_run_beyond_rows_and_raw_counts_ablation(home):
    ch = bow.compute_chunks(_table(home))
    pipe = bow.BowPipeline(ch, bow.BowConfig(ae_hidden=16, ae_epochs=1, ae_batch_size=64), cache_root=home / "cache")
    head = bow.HeadConfig(hidden=8, epochs=1, batch_size=8)
    runs = bow.run_beyond(pipe, 4, head, bigram_blocks=1, seeds=(0, 1))
    assert list(runs) == ["k-means counts (log1p, as the head reads them)", "k-means counts + time bigrams", "learned VQ counts", bow.RAW_COUNTS_ROW]
    assert all(sorted(by_seed) == [0, 1] for by_seed in runs.values())
    assert runs[bow.RAW_COUNTS_ROW][0].model.input_transform == "none"
    assert runs["k-means counts (log1p, as the head reads them)"][0].model.input_transform == "log1p"
    # raw counts and log1p(counts) of the same chunk reach the MLP differently
    x = torch.from_numpy(pipe.counts(4)[:2]).float()
    assert not torch.allclose(runs[bow.RAW_COUNTS_ROW][0].model.transform(x), runs["k-means counts (log1p, as the head reads them)"][0].model.transform(x))
    table = bow.seed_table(runs)
    assert len(table) == 8 and set(table["seed"]) == {0, 1}


def test_load_table_world_or_a_users_clip_table(home):
    table, dataset, suffix = bow.load_table(n_clips=24, seed=0)
    assert dataset == "synthetic world (seed 0)" and suffix == "" and len(table) == 24
    _table(home).write(home / "mine.csv")
    table, dataset, suffix = bow.load_table(str(home / "mine.csv"), task="my task")
    assert len(table) == 8 and dataset == "clip table my task" and suffix == " | my task"
    assert bow.load_table(str(home / "mine.csv"))[2] == f" | {table.name}"
    # runs on it are recorded under the task, never in a claim's rows
    ch = _toy_chunks()
    bow.record_seed_runs("fig3", {"p=35%": {0: _result(ch, 0.3, 0)}, "p=0%": {0: _result(ch, 20.0, 1)}}, ch,
                         "book", dataset, "8 clips", "g1", row_suffix=suffix)
    assert set(results.load_records("bow", "fig3")["row"]) == {"p=35% | my task", "p=0% | my task"}
    assert results.evaluate_claim("bow", "masking-helps", profile="book").verdict == "not yet measured"
    no_test = _table(home)
    no_test.frame["split"] = no_test.frame["split"].replace("test", "valid")
    no_test.write(home / "no_test.csv")
    with pytest.raises(bow.BowError, match=r"no_test\.csv: no clip in split\(s\) \['test'\]"):
        bow.load_table(str(home / "no_test.csv"))


def test_codebook_support_counts_fit_vectors_per_codeword(home):
    ch = bow.compute_chunks(_table(home))
    cfg = bow.BowConfig(ae_hidden=16, ae_epochs=1, ae_batch_size=64, kmeans_max_vectors=500)
    pipe = bow.BowPipeline(ch, cfg, cache_root=home / "cache")
    n = int(pipe.fit_mask.sum())
    t = bow.codebook_support(pipe, [4, 64]).set_index(["family", "D"])
    # patches: 120 per chunk, capped at 500 fit vectors; whole spectrogram: one per chunk
    assert t.loc[("pat", 4), "fit vectors"] == min(120 * n, 500)
    assert t.loc[("o", 64), "fit vectors"] == n and t.loc[("o", 64), "codebook"] == "thin"
    assert t.loc[("o", 64), "vectors per codeword"] == round(n / 64, 1)
    assert t.loc[("pat", 4), "codebook"] == ("filled" if min(120 * n, 500) >= 40 else "thin")
    assert len(t) == 8


@pytest.mark.parametrize("family", list(bow.TABLE1_FAMILIES))
def test_table1_families_take_one_second_of_audio_and_give_logits(family):
    net = bow.build_family(family, num_classes=7, width=0.125).eval()
    x = net.prepare(0.1 * torch.randn(2, 16000))
    assert x.shape == (2, 96, 100)                           # the paper's front end, 1 s
    out = net(x)
    assert out["logits"].shape == (2, 7) and out["embedding"].shape == (2, net.embed_dim)
    wide = sum(p.numel() for p in bow.build_family(family, 7, 0.25).parameters())
    assert wide > sum(p.numel() for p in net.parameters())     # width scales the network


def test_table1_baselines_share_the_heads_budget_and_train_a_family(home):
    rows = bow.table1_baselines(0.125, epochs=4, patience=2, loss="huber", batch_size=16)
    assert list(rows) == [f"{f} (trained here)" for f in bow.TABLE1_FAMILIES]
    assert {(b.epochs, b.patience, b.loss, b.batch_size) for b in rows.values()} == {(4, 2, "huber", 16)}
    assert "CNN14 (trained here)" in bow.table1_baselines(0.125, cnn_scale=0.0625)
    with pytest.raises(bow.BowError, match="unknown famil"):
        bow.table1_baselines(families=("LSTM",))
    ch = bow.compute_chunks(_table(home))
    cfg = bow.BaselineConfig("ResNet-18", 0.125, epochs=1, batch_size=8, loss="huber")
    res = bow.train_baseline(bow.chunk_waves(ch), ch, cfg)
    assert res.scores["test"].shape[1] == ch.chunk_targets().shape[1] and 0 <= res.metrics["mAP_clip_test"] <= 1
    with pytest.raises(bow.BowError, match="loss"):
        bow.train_baseline(bow.chunk_waves(ch), ch, bow.BaselineConfig("CRNN", 0.125, loss="mse"))


def test_min_vectors_per_word_caps_thin_codebooks_and_leaves_the_rest_unused(home):
    ch = bow.compute_chunks(_table(home))
    cfg = bow.BowConfig(ae_hidden=16, ae_epochs=1, ae_batch_size=64, min_vectors_per_word=4)
    pipe = bow.BowPipeline(ch, cfg, cache_root=home / "cache")
    n = int(pipe.fit_mask.sum())                     # one whole-spectrogram vector per chunk
    t = bow.codebook_support(pipe, [8]).set_index("family")
    assert t.loc["o", "words fitted"] == max(1, min(8, n // 4)) and "capped from 8" in t.loc["o", "codebook"]
    assert t.loc["pat", "words fitted"] == 8          # 120 vectors per chunk: enough for 8 words
    codes = pipe.codes(8)
    assert int(codes["o"].max()) < t.loc["o", "words fitted"]     # the unused slots never win
    assert pipe.counts(8).shape[1] == 4 * 8                       # the count vector keeps 4 D
    # the paper's setting (None) keeps the cache key it had
    assert "min_vectors_per_word" not in bow.BowConfig().kmeans_fields()
