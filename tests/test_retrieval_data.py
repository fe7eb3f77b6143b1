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
from torch import nn

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
    # Fig. 1 reads Clotho alone: the other folders need not exist
    shutil.rmtree(root / "audiocaps")
    only, target = R.load_sources(root, sets=("clotho",), on_missing="keep")
    assert target == "clotho" and list(only) == ["clotho"] and len(only["clotho"]) == 3
    with pytest.raises(ValueError, match="clotho .the target. included"):
        R.load_sources(root, sets=("wavcaps",))
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
                           {"epochs": 2, "batch_size": 4, "lr": 1e-2}, {}, {("minilm", None, None): BagText(8)},
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


# ----------------------------------------------------------------------------- issue #15: paper path
def _user_table(folder: Path, n: int = 6, seconds: float = 0.5, sr: int = 32000) -> Path:
    """A user's captioned clip table: ``n`` noise clips (train/valid/test) with captions."""
    import numpy as np
    from audiorepro.data.audio import save_audio
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    splits = (["train"] * (n - 3) + ["valid", "test", "test"])[:n]
    rows = []
    for i, split in enumerate(splits):
        save_audio(folder / f"c{i}.wav", rng.normal(0, 0.1 * (i + 1), int(sr * seconds)).astype("float32"), sr)
        rows.append({"clip_id": f"c{i}", "path": f"c{i}.wav", "split": split, "labels": f"k{i}",
                     "captions": f"sound number {i}|a clip of level {i}"})
    pd.DataFrame(rows).to_csv(folder / "mine.csv", index=False)
    return folder / "mine.csv"


def test_first_per_split_keeps_the_first_clips_of_every_split_in_order():
    cs = R.CaptionSet("t", pd.DataFrame({"clip_id": list("abcdefg"), "path": list("abcdefg"),
                                          "split": ["train", "test", "train", "valid", "train",
                                                    "test", "test"],
                                          "captions": [["x"]] * 7, "keywords": [[]] * 7,
                                          "source": "t"}))
    assert list(R.first_per_split(cs, 2).frame["clip_id"]) == ["a", "b", "c", "d", "f"]
    assert list(R.first_per_split(cs, 1).frame["clip_id"]) == ["a", "b", "d"]
    assert R.first_per_split(cs, 0) is cs
    capped = R.first_of_split(cs, "train", 2)                   # train: a, c (e dropped)
    assert list(capped.frame["clip_id"]) == ["a", "b", "c", "d", "f", "g"]
    assert "first 2 of 3 train clips" in capped.note
    assert R.first_of_split(cs, "train", 3) is cs               # nothing to drop
    with pytest.raises(ValueError, match="n must be"):
        R.first_of_split(cs, "train", 0)


def test_load_sources_caps_the_targets_training_split_only(home):
    kw = dict(synthetic_clips=20, real=False, world_seed=1)
    full, target = R.load_sources(**kw)
    capped, _ = R.load_sources(target_train_clips=3, **kw)
    sizes, before = (dict(x[target].frame.groupby("split").size()) for x in (capped, full))
    assert sizes["train"] == 3 and before["train"] > 3
    assert {k: v for k, v in sizes.items() if k != "train"} == {k: v for k, v in before.items() if k != "train"}
    assert list(capped[target].frame["clip_id"]) == [c for c in full[target].frame["clip_id"]
                                                     if c in set(capped[target].frame["clip_id"])]
    assert all(len(capped[k]) == len(full[k]) for k in full if k != target)   # the other sets whole


def test_load_sources_shrinks_the_paper_sets_per_split_and_keeps_every_split(tmp_path):
    root = _paper_root(tmp_path)
    kw = dict(on_missing="keep", options={"wavcaps": {"sources": ["FreeSound"]}})  # no audio here
    full, _ = R.load_sources(root, **kw)
    srcs, target = R.load_sources(root, real_clips=1, target_clips=1, **kw)
    assert target == "clotho" and list(srcs) == ["clotho", "audiocaps", "wavcaps"]
    assert len(srcs["audiocaps"]) == 1 and len(srcs["wavcaps"]) == 1
    per_split = full["clotho"].frame.groupby("split").size()
    assert dict(srcs["clotho"].frame.groupby("split").size()) == {s: 1 for s in per_split.index}


def test_a_users_clip_table_is_its_own_task_never_a_paper_table(home, monkeypatch):
    """clip_table + task: the user's captioned clips alone, found relative to the project home,
    pre-trained on their own train split and recorded in table <task> (not table3), naming the
    clip table; a task named like a paper set, an empty task, a missing split or both data
    parameters are refused."""
    import numpy as np
    from audiorepro import results
    csv = _user_table(home / "mydata")
    srcs, target = R.load_sources(clip_table="mydata/mine.csv", task="my_sounds")
    assert target == "my_sounds" and list(srcs) == ["my_sounds"]
    cs = srcs["my_sounds"]
    assert cs.frame["captions"].iloc[1] == ["sound number 1", "a clip of level 1"]
    assert cs.frame["keywords"].iloc[1] == ["k1"] and Path(cs.frame["path"].iloc[1]).is_file()
    assert R.sets_of_combo("my_sounds", srcs) == ("my_sounds",)
    assert R.sources_table(srcs)["paper role"].iloc[0] == "none (your data)"
    for bad, match in (({"task": ""}, "task is empty"), ({"task": "ClothoV2"}, "paper's data sets"),
                       ({"task": "x", "data_root": str(home)}, "not both")):
        with pytest.raises(ValueError, match=match):
            R.load_sources(clip_table=str(csv), **bad)
    f = pd.read_csv(csv)
    f[f["split"] != "valid"].to_csv(home / "mydata" / "novalid.csv", index=False)
    with pytest.raises(ValueError, match=r"split\(s\) \['valid'\]"):
        R.load_sources(clip_table=str(home / "mydata" / "novalid.csv"), task="x")

    seen = []

    def fake_run(spec, sources, emb, *a, seed=0, target="", **kw):
        seen.append((spec.audio, spec.pretrain, target))
        r = np.array([1, 2, 1, 3])
        return {"metrics": {"mAP@10": float(np.mean(1 / r)), "R@1": 0.5, "R@5": 1.0, "R@10": 1.0},
                "items": results.retrieval_items(["c4#0", "c4#1", "c5#0", "c5#1"], r),
                "params": {"audio_params": 1, "text_params": 2}, "model": None}
    monkeypatch.setattr(E, "run_stand_in", fake_run)
    specs = R.table3_specs()
    R.run_table3(["cnn14", "wavcaps_cnn14"], specs, srcs, target, {"CNN14": {}}, pretrain_epochs=1,
                 batch_size=2, lr=1e-3, text_lr=1e-4, seeds=[0], profile="smoke", world_seed=1,
                 real_clips=0, stand_in_profile="smoke", data={"clip_table": "mydata/mine.csv"})
    # every row pre-trains on the user's set (not the paper's three), whatever its paper recipe
    assert seen == [("CNN14", ("my_sounds",), "my_sounds")] * 2
    df = results.load_records()
    assert set(df["table"]) == {"my_sounds"} and set(df["param.clip_table"]) == {"mydata/mine.csv"}
    assert results.evaluate_claim("retrieval", "cnn14-beats-cnn10", profile="smoke").verdict == \
        "not yet measured"


def test_the_wavcaps_row_runs_the_previous_systems_recipe(tmp_path):
    """headline-map10 compares with WavCaps' system: CNN14, pre-trained on WavCaps only, then
    fine-tuned on the target; its pre-training set holds the WavCaps clips and nothing else."""
    spec = R.table3_specs(finetune_epochs=3)["wavcaps_cnn14"]
    assert (spec.audio, spec.pretrain, spec.finetune_epochs, spec.p_swap) == ("CNN14", ("WavCaps",), 3, 0.0)
    assert spec.paper_row == "WavCaps (CNN14 + bert-base, fine-tuned)"
    srcs, target = R.load_sources(_paper_root(tmp_path), on_missing="keep",
                                  options={"wavcaps": {"sources": ["FreeSound"]}})
    pre = R.pretrain_set(srcs, spec.pretrain, target)
    assert list(pre.frame["clip_id"]) == list(srcs["wavcaps"].frame["clip_id"])


def test_official_checkpoint_embeddings_are_the_loaded_models_and_cached(home, monkeypatch):
    """checkpoint_embeddings: an official-format PANNs file, loaded strictly through
    build_backbone, embeds each clip exactly as the model does on its 32 kHz waveform (a clip
    under 1 s zero-padded to 1 s); a second call reads the disk cache without building a model;
    a missing file or an encoder without a release is named."""
    from audiorepro.backbones import build_backbone
    from audiorepro.backbones.official import write_official_checkpoint
    from audiorepro.data.audio import load_audio
    ckpt = write_official_checkpoint("panns_cnn10_32k", home / "checkpoints")
    _user_table(home / "mydata", n=4, seconds=0.5)
    srcs, target = R.load_sources(clip_table="mydata/mine.csv", task="mine")
    cs = srcs[target]
    embs = R.checkpoint_embeddings("CNN10", cs, "checkpoints/" + ckpt.name)
    assert len(embs) == 4 and all(e.shape == (512,) and e.dtype == torch.float32 for e in embs)
    model = build_backbone("panns_cnn10_32k", checkpoint=ckpt).eval()
    wave, _ = load_audio(cs.frame["path"].iloc[2], 32000)
    assert wave.shape[-1] == 16000
    with torch.no_grad():
        want = model(F.pad(wave, (0, 16000))[None])["embedding"][0]
    assert torch.allclose(embs[2], want, atol=1e-5)
    import audiorepro.backbones.registry as reg
    monkeypatch.setattr(reg, "build_backbone", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rebuilt")))
    again = R.embed_sources("CNN10", srcs, checkpoint=str(ckpt))[target]
    assert all(torch.equal(a, b) for a, b in zip(again, embs))
    with pytest.raises(FileNotFoundError, match=r"checkpoints\['CNN10'\]"):
        R.checkpoint_embeddings("CNN10", cs, "checkpoints/nothing.pth")
    with pytest.raises(KeyError, match="no official checkpoint for audio encoder 'PaSST-XL'"):
        R.checkpoint_embeddings("PaSST-XL", cs, str(ckpt))
    assert "Cnn10_mAP=0.380.pth" in R.audio_label("CNN10", ckpt)
    assert "stand-in" in R.audio_label("CNN10", "")


def test_passt_segments_follow_the_positional_length():
    class P:
        input_tdim, patch_size = 998, 16
    assert E._segment_frames(P, "x", None) == 998
    assert E._segment_frames(P, "x", 10.0) == 998     # 1000 frames of a 998-frame model
    assert E._segment_frames(P, "x", 2.0) == 200
    with pytest.raises(ValueError, match="cover 998 frames"):
        E._segment_frames(P, "x", 15.0)


def test_caption_sources_fall_back_only_when_the_packages_are_unavailable(monkeypatch, tmp_path):
    from audiorepro.data.debian.fetch import DebianSourceUnavailable
    from audiorepro.papers.retrieval import data as RD

    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))

    def offline():
        raise DebianSourceUnavailable("tuxpaint", "no network")
    monkeypatch.setattr(RD, "_tux_caption_frame", offline)
    with pytest.warns(UserWarning, match="STAND-IN"):
        srcs = RD.caption_sources(synthetic_clips=8, world_seed=RD.PRETRAIN_WORLD_SEED + 1)
    assert srcs["tuxpaint"].note.startswith("STAND-IN") and srcs["mixtures"].note.startswith("STAND-IN")

    def broken():
        raise ValueError("caption column missing")
    monkeypatch.setattr(RD, "_tux_caption_frame", broken)   # a data error is not silenced
    with pytest.raises(ValueError, match="caption column missing"):
        RD.caption_sources(synthetic_clips=8, world_seed=RD.PRETRAIN_WORLD_SEED + 1)


class _TableText(nn.Module):
    """A frozen 'text encoder' returning fixed vectors per caption (2 dims: varying, constant)."""

    trainable_layers = 0
    dim = 2
    VECTORS = {"a dog": [1.0, 10.0], "rain falls": [3.0, 10.0], "a bell": [5.0, 10.0]}

    def forward(self, texts):
        return torch.tensor([self.VECTORS[t] for t in texts])


def test_dual_encoder_standardises_a_frozen_text_encoder_with_training_captions():
    model = R.DualEncoder(R.CachedAudio(2), _TableText(), shared_dim=4)
    before = model.embed_text(["a dog"])
    # the statistics of the distinct training captions (a repeated caption counts once)
    model.fit_text(["a dog", "rain falls", "a bell", "a dog"])
    assert torch.allclose(model.text_mean, torch.tensor([3.0, 10.0]))
    assert torch.allclose(model.text_std, torch.tensor([math.sqrt(8 / 3), 1.0]))
    # embed_text projects (t - mean) / std: "rain falls" is the mean, so only the bias remains
    z = model.embed_text(["rain falls"])
    assert torch.allclose(z, F.normalize(model.text_proj.bias[None], dim=-1), atol=1e-6)
    assert not torch.allclose(before, model.embed_text(["a dog"]))
    enc = _TableText()
    enc.trainable_layers = 1
    with pytest.raises(ValueError, match="fine-tuned"):
        R.DualEncoder(R.CachedAudio(2), enc).fit_text(["a dog", "a bell"])
    with pytest.raises(ValueError, match="distinct captions"):
        model.fit_text(["a dog", "a dog"])
