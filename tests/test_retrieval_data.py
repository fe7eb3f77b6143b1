"""Retrieval chapter: the paper's data sets through the adapters, frozen stand-in embeddings,
text fine-tuning with its own learning rate (audiorepro.papers.retrieval data and experiments)."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from audiorepro.papers import retrieval as R
from audiorepro.papers.retrieval import experiments as E
from test_retrieval import BagText  # tiny trainable text encoder (tests/ is on sys.path)

FIX = Path(__file__).parent / "fixtures" / "retrieval"


def _paper_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for n in ("clotho", "audiocaps", "wavcaps"):
        shutil.copytree(FIX / n, root / n)
    return root


def test_paper_sets_load_through_the_adapters(tmp_path):
    root = _paper_root(tmp_path)
    srcs = R.paper_caption_sources(root, on_missing="keep",
                                   options={"wavcaps": {"sources": ["FreeSound"]}})
    assert list(srcs) == ["clotho", "audiocaps", "wavcaps"]
    assert len(srcs["clotho"]) == 3 and srcs["clotho"].n_captions == 15
    ac = srcs["audiocaps"]
    # val: one clip with two captions (grouped), test: two clips (2 + 1 captions)
    assert len(ac) == 5 and ac.n_captions == 7
    assert ac.frame.set_index("clip_id").loc["vfY_TJq7n_U_130", "captions"] == [
        "Rustling occurs, ducks quack and water splashes", "Ducks quack while water splashes"]
    assert list(srcs["wavcaps"].frame["split"]) == ["train", "train"]
    assert srcs["wavcaps"].frame["path"].iloc[0].endswith("Zip_files/FreeSound/180913.flac")
    # the Table 4 combinations name the paper's sets
    assert R.sets_of_combo("ClothoV2+AudioCaps", srcs) == ("audiocaps", "clotho")
    pre = R.pretrain_set(srcs, R.sets_of_combo("AudioCaps+WavCaps+ClothoV2", srcs), target="clotho")
    assert len(pre) == 5 + 2 + 1   # every AudioCaps / WavCaps clip, Clotho's train split only
    with pytest.raises(ValueError, match="Freesound"):
        R.sets_of_combo("Freesound", srcs)


def test_load_sources_names_a_missing_folder_and_protects_the_pretraining_world(tmp_path):
    root = _paper_root(tmp_path)
    shutil.rmtree(root / "wavcaps")
    with pytest.raises(FileNotFoundError, match=r"wavcaps"):
        R.load_sources(root)
    with pytest.raises(ValueError, match="world_seed=0"):
        R.caption_sources(24, world_seed=R.PRETRAIN_WORLD_SEED)


def test_paper_sets_train_on_the_same_code_path_as_the_book(tmp_path):
    """Adapters -> caption sets -> (embeddings) -> run_experiment -> test metrics on Clotho."""
    root = _paper_root(tmp_path)
    srcs = R.paper_caption_sources(root, on_missing="keep",
                                   options={"wavcaps": {"sources": ["FreeSound"]}})
    g = torch.Generator().manual_seed(0)
    emb = {k: [torch.randn(8, generator=g) for _ in range(len(v))] for k, v in srcs.items()}
    out = R.run_experiment(R.RunSpec("PaSST-S", {}), srcs, emb,
                           {"epochs": 2, "batch_size": 4, "lr": 1e-2}, {}, {("minilm", None): BagText(8)},
                           crop_frames=None, target="clotho", audio_module=R.CachedAudio(8, "x"))
    assert set(out["metrics"]) >= {"R@1", "R@5", "R@10", "mAP@10"}
    assert out["metrics"]["R@1"] == 1.0   # one test audio: every caption ranks it first
    assert set(out["history"]["stage"]) == {"pre-train"}


def test_cached_audio_collate_and_pairs_keep_embeddings_whole():
    cs = R.CaptionSet("t", pd.DataFrame({"clip_id": ["a", "b"], "path": ["/a", "/b"],
                                          "split": "train", "captions": [["x"], ["y"]],
                                          "keywords": [[], []], "source": "t"}))
    ds = R.PairDataset(cs, [torch.arange(6.0), torch.ones(6)], crop_frames=2)
    b = R.collate_pairs([ds[0], ds[1]])
    assert b["x"].shape == (2, 6) and b["lengths"] is None
    assert torch.equal(b["x"][0], torch.arange(6.0))      # not cropped
    ca = R.CachedAudio(6)
    assert torch.equal(ca(b["x"]), b["x"])
    with pytest.raises(ValueError, match=r"\(B, 6\)"):
        ca(torch.zeros(2, 5))


def test_text_layers_get_their_own_smaller_learning_rate():
    """One step of train_retrieval: the text parameters move by about lr_text, the projection by lr."""
    torch.manual_seed(0)
    cs = R.CaptionSet("t", pd.DataFrame({"clip_id": list("abcd"), "path": list("abcd"),
                                          "split": "train",
                                          "captions": [["dog"], ["rain"], ["bell"], ["car"]],
                                          "keywords": [[]] * 4, "source": "t"}))
    feats = [torch.randn(8) for _ in range(4)]
    model = R.DualEncoder(R.CachedAudio(8), BagText(8), shared_dim=8)
    t0 = model.text.emb.weight.detach().clone()
    p0 = model.audio_proj.weight.detach().clone()
    res = R.train_retrieval(model, cs, feats, cs, feats, {"epochs": 1, "batch_size": 4, "lr": 1e-2,
                                                           "restore_best": False}, 0.0, 0, None,
                            text_lr=1e-4, device="cpu")
    dt = (res.model.text.emb.weight - t0).abs().max().item()
    dp = (res.model.audio_proj.weight - p0).abs().max().item()
    # Adam's first step moves each parameter by about its lr
    assert 0.5e-4 < dt < 2e-4 and 0.5e-2 < dp < 2e-2


def test_cached_audio_standardises_with_training_statistics():
    e = torch.tensor([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    ca = R.CachedAudio(2).fit(e)
    assert torch.allclose(ca.mean, torch.tensor([3.0, 10.0]))
    # population std (ddof 0, the project's one standardiser): sqrt(((1-3)^2 + 0 + (5-3)^2) / 3);
    # a constant dimension is centred, not scaled
    assert torch.allclose(ca.std, torch.tensor([math.sqrt(8 / 3), 1.0]))
    assert torch.allclose(ca(torch.tensor([[7.0, 10.0], [3.0, 11.0]])),
                          torch.tensor([[4 / math.sqrt(8 / 3), 0.0], [0.0, 1.0]]))
    from audiorepro.preprocessing import standardise
    new = torch.tensor([[0.5, 9.0], [6.0, 10.5]])
    assert torch.allclose(ca(new), torch.from_numpy(standardise(e, new)[1]), atol=1e-6)
    # nearly parallel raw vectors become well separated after standardisation
    g = torch.Generator().manual_seed(0)
    raw = torch.full((20, 8), 5.0) + 0.01 * torch.randn(20, 8, generator=g)
    cos = lambda x: (F.normalize(x, dim=1) @ F.normalize(x, dim=1).t())[~torch.eye(20, dtype=bool)].mean()
    assert cos(raw) > 0.99 and abs(cos(R.CachedAudio(8).fit(raw)(raw))) < 0.2


def test_short_clips_are_padded_with_their_minimum_for_the_cnns():
    x = torch.tensor([[1.0, 2.0], [3.0, 0.5]])
    y = E._pad_min(x, 4)
    assert y.shape == (2, 4) and torch.equal(y[:, :2], x) and bool((y[:, 2:] == 0.5).all())
    assert E._pad_min(torch.zeros(2, 5), 4).shape == (2, 5)


def test_caption_world_guard_covers_every_pretraining_profile():
    """The stand-ins of every pre-training profile learned from the world the guard refuses."""
    import pytest
    from audiorepro.backbones import pretrain
    from audiorepro.papers import retrieval
    assert {p["seed"] for p in pretrain.PROFILES.values()} == {retrieval.PRETRAIN_WORLD_SEED}
    with pytest.raises(ValueError, match="world_seed=0 is the world"):
        retrieval.caption_sources(synthetic_clips=4, world_seed=retrieval.PRETRAIN_WORLD_SEED, real=False)
