"""Bag-of-codewords experiments (lib/audiorepro/papers/bow/experiments.py, data.py): grid summaries,
registry round trips and the 02 -> 03-05 dependency, masking records, head run caches, 1 s waveforms
for the baselines, temporal bigrams, learned VQ codes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from audiorepro import results
from audiorepro.data.cliptable import ClipTable
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


def test_record_grid_roundtrip_and_verdicts(home):
    g = _grid()
    best = bow.record_grid(g, "book", "toy", "8 heads")
    assert bow.stored_best_config("book", "toy") == {k: best[k] for k in bow.GRID_KEYS}
    fig2 = results.paper_vs_run("bow", "fig2", profile="book", formatted=False)
    got = dict(zip(fig2["row"], fig2["this run"]))
    assert got["D=16"] == pytest.approx(0.31) and got["D=64"] == pytest.approx(0.45)
    assert got["F=10"] == pytest.approx(0.45) and got["F=20"] == pytest.approx(0.34)
    # the claims read the rows record_grid wrote (the verdict itself is results.claims' business)
    v = results.evaluate_claim("bow", "f10-beats-f20", profile="book")
    assert v.verdict != "not yet measured" and v.values == {"F=10": pytest.approx(0.45), "F=20": pytest.approx(0.34)}
    # D=256 and D=1024 were not run: the claim stays open
    assert results.evaluate_claim("bow", "d256-best", profile="book").verdict == "not yet measured"


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


def test_masking_records_and_best_p(home):
    assert bow.masking_row(0.35) == "p=35%" and bow.masking_row(0.0) == "p=0%"
    assert bow.paper_masking_points() == {0.0: 0.35, 35.0: 0.38}  # the yml's printed Fig. 3 points
    df = pd.DataFrame({"p": [0.0, 0.0, 0.35, 0.35], "seed": [0, 1, 0, 1],
                       "mAP_1s_valid": [0.2, 0.4, 0.5, 0.3], "mAP_clip_test": [0.1, 0.1, 0.2, 0.2]})
    cell = {"F": 10.0, "D": 16, "hidden": 256, "dropout": 0.4}
    agg = bow.record_masking(df, cell, "book", "toy", "4 heads")
    assert agg["mAP_1s_valid"].tolist() == pytest.approx([0.3, 0.4])
    assert bow.stored_best_masking("book", "toy") == 0.35
    v = results.evaluate_claim("bow", "masking-helps", profile="book")
    assert v.verdict != "not yet measured" and v.values == {"p=0%": pytest.approx(0.3), "p=35%": pytest.approx(0.4)}


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
