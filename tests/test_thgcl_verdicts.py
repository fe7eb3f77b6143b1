"""THGCL verdicts: rows recorded once per seed with per-item outputs and a run group, and the
claims decided by the library (thgcl.decide_claims -> results.evaluate_claim) from them."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from audiorepro import metrics as M
from audiorepro import results as R
from audiorepro.papers.thgcl import data as D
from audiorepro.papers.thgcl import experiments as E

import test_thgcl

ROWS = ("Gaussian + Hawkes", "both Hawkes", "both Gaussian")


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    return tmp_path


def _targets(n: int = 240, c: int = 6, seed: int = 0) -> np.ndarray:
    t = (np.random.default_rng(seed).random((n, c)) < 0.3).astype(np.uint8)
    t[0], t[1] = 1, 0                     # every class has a positive and a negative
    return t


def _record(row: str, scores: np.ndarray, targets: np.ndarray, seed: int, group: str,
            table: str = "table2", dataset: str = "synthetic world", **extra) -> None:
    ids = [f"clip{i:04d}" for i in range(len(targets))]
    R.record("thgcl", table, {"mAP": M.mean_average_precision(targets, scores),
                              "AUC": M.macro_roc_auc(targets, scores)},
             {"paper_row": row, "seed": seed, "run_group": group, **extra},
             dataset=dataset, scale="hand-made", profile="smoke",
             items=R.tagging_items(ids, scores, targets))


def _table2(kind: str) -> None:
    """Three rows x 3 seeds on the same 240 clips: the better row near-perfect and the others
    weak but above chance (``gap``), all rows the same scores (``same``), or the gap reversed
    (``reversed``). (A row at chance decides no comparison: test_verdicts.)"""
    t = _targets()
    group = R.new_run_group()
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        good = t + 0.3 * rng.standard_normal(t.shape)
        poor = t + 1.5 * rng.standard_normal(t.shape)
        for row in ROWS:
            best = row == "Gaussian + Hawkes"
            scores = {"gap": good if best else poor, "same": poor,
                      "reversed": poor if best else good}[kind]
            _record(row, scores, t, seed, group)


@pytest.mark.parametrize("kind, verdict", [("gap", "reproduced"), ("same", "inconclusive"),
                                           ("reversed", "not reproduced")])
def test_decide_claims_from_hand_made_per_item_records(kind, verdict):
    _table2(kind)
    out = E.decide_claims("smoke", "book/thgcl/03_table2.ipynb")
    assert out["claim"].tolist() == ["gauss-hawkes-best", "gauss-hawkes-best-auc"]  # mAP, AUC
    for _, row in out.iterrows():
        assert row["verdict"] == verdict
        assert row["n_items"] == 240 and row["n_seeds"] == 3
        if kind == "same":      # identical rows: a zero difference on every resample
            assert row["effect"] == pytest.approx(0.0) and row["lo"] == pytest.approx(0.0)
            assert row["hi"] == pytest.approx(0.0)
        else:
            assert (row["effect"] > 0.2) == (kind == "gap") and row["half-width"] < 0.2
    stored = R.claims_table(["thgcl"], profile="smoke").set_index("claim_id")
    for claim in ("gauss-hawkes-best", "gauss-hawkes-best-auc"):
        assert stored.loc[claim, "verdict"] == verdict
        assert stored.loc[claim, "notebook"] == "thgcl/03_table2"


def test_superseded_run_group_never_enters_the_verdict():
    _table2("reversed")
    _table2("gap")            # the newer run of the notebook
    assert E.decide_claims("smoke", "03_table2").iloc[0]["verdict"] == "reproduced"


def test_absolute_claims_use_the_papers_data_only():
    t = _targets()
    scores = t + 0.8 * np.random.default_rng(0).standard_normal(t.shape)
    _record("THGCL", scores, t, 0, R.new_run_group(), table="table1")
    out = E.decide_claims("smoke", "02_table1", claim_ids=["headline-map"]).iloc[0]
    assert out["verdict"] == "not yet measured"          # a synthetic-world mAP is no evidence
    _record("THGCL", scores, t, 0, R.new_run_group(), table="table1", dataset=D.TMAC_DATASET)
    out = E.decide_claims("smoke", "02_table1", claim_ids=["headline-map"]).iloc[0]
    assert out["verdict"] in ("reproduced", "not reproduced", "inconclusive")
    assert out["n_items"] == 240
    with pytest.raises(KeyError, match="'01_graph_anatomy' decides no claim"):
        E.decide_claims("smoke", "01_graph_anatomy")


def test_every_claim_is_decided_by_exactly_one_notebook():
    decided = [c for ids in E.CLAIMS_BY_NOTEBOOK.values() for c in ids]
    assert sorted(decided) == sorted(c["id"] for c in R.claims("thgcl"))
    assert all(c["test"]["kind"] != "manual" for c in R.claims("thgcl"))


def _tiny_features() -> dict:
    """test_thgcl's tiny features (30 train / 15 valid / 15 test clips) with clip ids."""
    return {**test_thgcl._tiny_features(), "clip_id": [f"c{i}" for i in range(60)]}


def test_run_variants_records_every_seed_with_items_and_one_run_group(home):
    feats = _tiny_features()
    model = test_thgcl._TINY_MODEL
    per_seed, runs = E.run_variants(["THGCL", "audio-only MLP"], feats, model,
                                    {"epochs": 1, "batch_size": 10, "patience": None}, "tiny",
                                    table="table1", seeds=[3, 4])
    assert sorted(zip(per_seed["variant"], per_seed["seed"])) == [
        ("THGCL", 3), ("THGCL", 4), ("audio-only MLP", 3), ("audio-only MLP", 4)]
    assert set(runs) == {"THGCL", "audio-only MLP"} and set(runs["THGCL"]) == {3, 4}
    recs = [json.loads(p.read_text()) for p in R.records_dir().glob("*.json")]
    assert len(recs) == 4
    assert len({r["params"]["run_group"] for r in recs}) == 1
    assert sorted(r["params"]["seed"] for r in recs) == [3, 3, 4, 4]
    for r in recs:
        items = R.load_items(r["record_id"])["mAP"]
        assert sorted(items.ids.tolist()) == [f"c{i}" for i in range(45, 60)]   # the test clips
        assert R.metric_function("mAP").full(items) == pytest.approx(r["metrics"]["mAP"], abs=1e-4)
    summary = E.seed_summary(per_seed)
    assert summary.loc["THGCL", ("mAP", "count")] == 2


def test_robustness_conditions_name_the_claims_rows():
    conditions, labels = E.robustness_conditions([0.5, 2.0], [1.5, 3.0])
    assert list(conditions) == ["aligned", "offset 0.5 s", "offset 2 s", "noise 1.5", "noise 3"]
    assert conditions["offset 2 s"] == {"av_offset_s": 2.0}
    assert labels == {"offset 2 s": E.LARGEST_OFFSET, "noise 3": E.NOISIEST}
    rows = {r for c in R.claims("thgcl") if c["id"].startswith("robust-")
            for r in [c["test"]["better"], *c["test"]["worse"]]}
    assert rows == {f"{v} @ {lab}" for v in ("THGCL", "uniform weights")
                    for lab in (E.LARGEST_OFFSET, E.NOISIEST)}
    with pytest.raises(E.THGCLError, match="offsets"):
        E.robustness_conditions([], [1.0])


def test_chance_table_hand_computed():
    feats = {"split": np.array(["train", "test", "test", "test", "test"]),
             "target": np.array([[1, 1, 1], [1, 0, 0], [0, 0, 0], [1, 0, 0], [0, 1, 0]])}
    # expected AP of a random ranking of the 4 test clips (H_4 = 25/12): class 1 has 2
    # positives, class 2 one, class 3 none (left out)
    h4 = 25 / 12
    chance = ((h4 / 4 + (4 - h4) / 12) + h4 / 4) / 2
    per_seed = pd.DataFrame({"variant": ["a", "a", "b"], "seed": [0, 1, 0],
                             "mAP": [0.6, 0.8, chance], "AUC": [0.7, 0.9, 0.5]})
    out = E.chance_table(per_seed, feats)
    assert out.loc["a", "chance mAP"] == pytest.approx(chance)
    assert out.loc["a", "mAP / chance"] == pytest.approx(0.7 / chance)
    assert out.loc["b", "mAP / chance"] == pytest.approx(1.0)
    assert out.loc["a", "seeds"] == 2


def test_train_config_paper_protocol_and_off_values():
    assert E.train_config(10, 32, 0.005, 3) == {"epochs": 10, "batch_size": 32, "lr": 0.005, "patience": 3}
    p = E.PAPER_PROTOCOL
    cfg = E.train_config(1000, p["batch_size"], p["lr"], p["patience"], max_iters=p["max_iters"],
                         warmup_iters=p["warmup_iters"], eval_every_iters=p["eval_every_iters"])
    assert (cfg["max_iters"], cfg["warmup_iters"], cfg["eval_every_iters"]) == (5000, 1000, 250)
    with pytest.raises(E.THGCLError, match="warmup_iters=-1"):
        E.train_config(1, 8, 0.01, None, warmup_iters=-1)


def test_max_iters_and_eval_cadence_reach_the_loop():
    feats = _tiny_features()
    model = test_thgcl._TINY_MODEL
    res = E.train_variant("THGCL", feats, model,
                          E.train_config(50, 10, 0.005, None, max_iters=7, eval_every_iters=2))
    assert res["fit"].iterations == 7                 # 3 batches an epoch: stopped mid-epoch 3
    h = res["fit"].history
    evals = sorted(set(h[(h.split == "valid") & (h.metric == "mAP")]["iteration"]))
    assert evals[:3] == [2, 4, 6]


def test_weight_matrices_show_the_edge_weights_and_no_weight_off_edges():
    import matplotlib
    matplotlib.use("Agg")
    from audiorepro.papers.thgcl import figures as F
    from audiorepro.papers.thgcl import model as T

    graphs = {"book": T.build_graph(19, 40, T.GraphConfig(audio_hop_s=0.48)),
              "paper": T.build_graph(101, 40, T.GraphConfig(audio_hop_s=0.0904))}
    fig = F.weight_matrices(graphs)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 10   # 2 sizes x (Gaussian, Hawkes, Hawkes training draw; 2 cross)
    shown = panels[6].images[0].get_array()           # paper size, audio-audio, hawkes
    g = graphs["paper"]
    mask = g.audio_mask.numpy()
    assert shown.shape == (101, 101)
    assert np.ma.getmaskarray(shown)[~mask].all() or np.isnan(np.ma.filled(shown, np.nan)[~mask]).all()
    expect = T.edge_weights(g, "audio", "hawkes").numpy()[mask]
    assert np.ma.filled(shown, np.nan)[mask] == pytest.approx(expect)
    # the training draw: a random xi per edge, so weights vary between 0.5 and 1 (tau 1)
    drawn = np.ma.filled(panels[7].images[0].get_array(), np.nan)[mask]
    assert 0.5 <= drawn.min() < 0.6 and 0.95 < drawn.max() <= 1.0
    assert not np.allclose(drawn, expect)


def test_audio_encoder_reads_the_official_vggish_file(tmp_path):
    """``audio_encoder = vggish:<path>`` (the chapter's checkpoint parameter) loads a file in the
    official harritaylor/torchvggish format, and its key changes with the file."""
    import torch
    from audiorepro.backbones.official import official_state_dict, write_official_checkpoint

    path = write_official_checkpoint("vggish_harritaylor_core", tmp_path)
    enc, key = D.load_audio_encoder(f"vggish:{path}")
    assert key.startswith("vggish-ckpt-")
    sd = official_state_dict("vggish_harritaylor_core", 0)
    name, ref = next((k, v) for k, v in sd.items() if v.dim() > 1)
    got = dict(enc.named_parameters()).get(name)
    if got is None:                         # the backbone may keep the official names under a prefix
        got = next(p for k, p in enc.named_parameters() if k.endswith(name))
    assert torch.equal(got.detach().cpu(), ref)
    wave = 0.1 * torch.randn(1, 3 * 16000, generator=torch.Generator().manual_seed(0))
    assert D.audio_segment_embeddings(wave, hop_s=0.48, encoder=enc).shape == (1, 5, 128)


def test_balanced_setting_picks_the_smallest_gap_with_visual_evidence():
    rows = []
    for setting, audio, video in [("strong video", 0.5, 0.9), ("balanced", 0.5, 0.45),
                                  ("no video", 0.5, 0.5)]:
        for variant, value in (("audio-only MLP", audio), ("video-only MLP", video)):
            rows.append({"setting": setting, "variant": variant, "valid mAP": value, "chance": 0.1,
                         "mAP / chance": value / 0.1})
    table = pd.DataFrame(rows)
    assert E.balanced_setting(table) == "no video"          # gap 0 wins while its video is informative
    table.loc[(table.setting == "no video") & (table.variant == "video-only MLP"), "mAP / chance"] = 1.0
    assert E.balanced_setting(table) == "balanced"          # a video-only model at chance is no evidence
    table["mAP / chance"] = 1.0
    assert E.balanced_setting(table) is None                # nothing qualifies: no choice made


def test_ignores_video_names_exactly_the_variants_whose_output_the_video_cannot_change():
    """modality_balance and robustness_sweep train such a variant once for every visual stream."""
    from audiorepro.papers.thgcl.experiments import ignores_video
    from audiorepro.papers.thgcl.model import VARIANTS, build_variant
    torch.manual_seed(0)
    audio, video = torch.randn(2, 5, 8), torch.randn(2, 3, 12)
    for name in VARIANTS:
        model = build_variant(name, 4, 5, 3, audio_dim=8, video_dim=12, hidden=16, num_layers=1,
                              embed_dim=8, dropout=0.0).eval()
        with torch.no_grad():
            same = torch.allclose(model(audio, video)["logits"], model(audio, video + 1.0)["logits"])
        assert ignores_video(name) == same, name
    assert ignores_video("audio-only MLP") and not ignores_video("THGCL")
