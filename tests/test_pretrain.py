"""Cached supervised pre-training of the CPU-sized backbones (audiorepro.backbones.pretrain).

Everything runs in a private AUDIOREPRO_HOME (world, feature cache, run folders, records) on a
12-clip synthetic world with tiny models; no file from ../shared is needed.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from audiorepro.data.cliptable import ClipTable
from audiorepro.data.synthetic import load_world, make_world
from audiorepro.backbones import pretrain as P

TINY = dict(scale=0.125, profile="smoke", progress=False, crop_seconds=1.0, batch_size=4, clip_seconds=2.0,
            freq_mask_frac=0.0, time_mask_frac=0.0, mixup_alpha=0.0)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A private AUDIOREPRO_HOME for the whole module (monkeypatch is function-scoped)."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("home")
    mp.setenv("AUDIOREPRO_HOME", str(root))
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def table(home) -> ClipTable:
    """12 clips of 2 s: 8 train, the other 4 valid (an easy subset: the model may memorise it)."""
    make_world(home / "world", n_clips=12, seed=0, clip_seconds=2.0, progress=False)
    world = load_world(home / "world")
    frame = world.table.frame.copy()
    frame["split"] = ["train"] * 8 + ["valid"] * 4
    return ClipTable(frame, world.table.root, world.table.classes, world.table.name)


@pytest.fixture(scope="module")
def first_run(table):
    return P.pretrained_backbone("panns_cnn10_32k", world=table, epochs=4, lr=3e-3, **TINY)


def test_loss_decreases_and_report(first_run, table):
    model, rep = first_run
    curves = rep.curves()
    loss = curves["train loss"].to_numpy()
    assert len(loss) == 4 and rep.epochs_run == 4 and not rep.from_cache
    assert loss[-1] < loss[0], f"training loss did not decrease: {loss}"
    assert {"mAP", "AUC", "loss"} <= set(rep.metrics)
    assert 0.0 <= rep.metrics["mAP"] <= 1.0
    # the kept weights are those of the best validation-mAP epoch
    valid_map = curves.set_index("epoch")["valid mAP"]
    assert rep.metrics["mAP"] == pytest.approx(valid_map.max())
    assert rep.best_epoch == int(valid_map.idxmax())
    assert rep.classes == table.classes
    assert model.fc_audioset.out_features == len(table.classes)
    assert not model.training and model.use_spec_augment       # builder default restored
    assert (rep.run_dir / "done.json").is_file() and (rep.run_dir / "pretrain.json").is_file()
    assert rep.run_dir.name.startswith("panns_cnn10_32k_0.125_")


def test_cache_hit_returns_identical_weights_without_training(first_run, table, monkeypatch):
    model, rep = first_run

    def boom(*a, **k):
        raise AssertionError("a cache hit must neither train nor compute features")
    monkeypatch.setattr(P, "fit", boom)
    monkeypatch.setattr(P, "_features", boom)
    model2, rep2 = P.pretrained_backbone("panns_cnn10_32k", world=table, epochs=4, lr=3e-3, **TINY)
    assert rep2.from_cache and rep2.run_dir == rep.run_dir
    sd1, sd2 = model.state_dict(), model2.state_dict()
    assert sd1.keys() == sd2.keys()
    assert all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    assert rep2.metrics == pytest.approx(rep.metrics)
    assert rep2.history.equals(rep.history)


def test_config_change_gives_new_cache_dir(first_run, table):
    _, rep = first_run
    _, rep2 = P.pretrained_backbone("panns_cnn10_32k", world=table, epochs=1, lr=3e-3, **TINY)
    assert rep2.run_dir != rep.run_dir and not rep2.from_cache
    assert (rep.run_dir / "done.json").is_file() and (rep2.run_dir / "done.json").is_file()
    stored = json.loads((rep2.run_dir / "pretrain.json").read_text())
    assert stored["epochs"] == 1
    # other data -> other hash as well
    other = ClipTable(table.frame.iloc[:11].copy(), table.root, table.classes, table.name)
    cfg_a = P.pretrain_config("panns_cnn10_32k", 0.125, "smoke", table)
    cfg_b = P.pretrain_config("panns_cnn10_32k", 0.125, "smoke", other)
    assert P.run_dir_for(cfg_a) != P.run_dir_for(cfg_b)


def test_result_recorded_once(first_run, table):
    from audiorepro.results import load_records
    _, rep = first_run
    P.pretrained_backbone("panns_cnn10_32k", world=table, epochs=4, lr=3e-3, **TINY)  # cache hit

    def mine():
        recs = load_records(chapter="backbones", table="pretraining")
        return recs[recs["model"].str.startswith("panns_cnn10_32k scale=0.125")
                    & (recs["param.epochs"] == 4)]
    recs = mine()
    assert recs["record_id"].nunique() == 1
    assert recs.set_index("metric")["value"]["mAP"] == pytest.approx(rep.metrics["mAP"])
    assert (recs["profile"] == "smoke").all()
    # a deleted record is written again on the next call
    path = json.loads((rep.run_dir / "record.json").read_text())["path"]
    import os
    os.unlink(path)
    P.pretrained_backbone("panns_cnn10_32k", world=table, epochs=4, lr=3e-3, **TINY)
    assert mine()["record_id"].nunique() == 1


def test_windows_and_segment_average():
    assert P._windows(998, 300) == [0, 300, 600, 698]
    assert P._windows(900, 300) == [0, 300, 600]
    assert P._windows(200, 300) == [0]
    torch.manual_seed(0)
    model = P._build(P.pretrain_config("ast", "cpu", "smoke"), 5).eval()   # input_tdim 100
    feats = torch.randn(2, 128, 250)
    with torch.no_grad():
        got = P.clip_logits(model, "ast", feats, 100, 250)
        parts = [model(feats[..., s:s + 100].transpose(1, 2))["logits"] for s in (0, 100, 150)]
    assert torch.allclose(got, torch.stack(parts).mean(0), atol=1e-5)


def test_features_to_input_layouts():
    feats = torch.arange(2 * 64 * 192, dtype=torch.float32).reshape(2, 64, 192)
    assert P.features_to_input("panns", feats).shape == (2, 1, 192, 64)
    ex = P.features_to_input("vggish", feats)
    assert ex.shape == (4, 1, 96, 64)
    # example 3 = clip 1, frames 96..191, time-major
    assert torch.equal(ex[3, 0], feats[1, :, 96:192].T)
    assert P.features_to_input("passt", feats).shape == (2, 1, 64, 192)
    assert P.features_to_input("ast", feats).shape == (2, 192, 64)
    with pytest.raises(ValueError, match="multiple of 96"):
        P.features_to_input("vggish", feats[..., :100])


def test_cached_logmel_matches_panns_own_front_end():
    """Training on cached panns_16k features == feeding the waveform to the model."""
    from audiorepro.frontends import make_frontend
    model = P._build(P.pretrain_config("panns_cnn14_16k", 0.125, "smoke"), 3).eval()
    wave = 0.1 * torch.randn(2, 16000, generator=torch.Generator().manual_seed(1))
    own = model.logmel(wave)                                   # (2, 1, 101, 64)
    ours = P.features_to_input("panns", make_frontend("panns_16k")(wave))
    assert ours.shape == own.shape
    assert torch.allclose(ours, own, atol=1e-2, rtol=1e-3)


def test_bad_names_and_profiles():
    with pytest.raises(P.PretrainError, match="crepe_tiny"):
        P.pretrain_config("crepe_tiny")
    with pytest.raises(P.PretrainError, match="profile"):
        P.pretrain_config("cnn14", profile="huge")
    with pytest.raises(P.PretrainError, match="epoch"):
        P.pretrain_config("cnn14", epoch=3)
    cfg = P.pretrain_config("passt_s", "cpu", "book")
    assert cfg["backbone"] == "passt_s_swa_p16_s10_128_998_527" and cfg["frontend"]["preset"] == "passt"
    assert P.pretrain_config("vggish", "cpu", "book")["crop_frames"] % 96 == 0
    assert np.isclose(P.pretrain_config("ast", "cpu", "book")["build"]["input_tdim"],
                      P.pretrain_config("ast", "cpu", "book")["crop_frames"])


def test_chance_map_hand_computed(tmp_path):
    import pandas as pd
    frame = pd.DataFrame({"clip_id": list("wxyzt"), "path": [f"{c}.flac" for c in "wxyzt"],
                          "split": ["valid"] * 4 + ["train"], "labels": ["a", "a;b", "", "", "c"]})
    t = ClipTable(frame, tmp_path, ["a", "b", "c"], "hand")
    assert P.chance_map(t) == pytest.approx((2 / 4 + 1 / 4) / 2)   # class c has no valid positive
    with pytest.raises(P.PretrainError, match="no positive"):
        P.chance_map(ClipTable(frame.assign(labels=""), tmp_path, ["a", "b", "c"], "hand"))


def test_seeded_initialisation_ignores_global_rng():
    cfg = P.pretrain_config("panns_cnn10_32k", 0.125, "smoke")
    torch.manual_seed(123)
    a = P._build(cfg, 4, seed=0).state_dict()
    state = torch.get_rng_state()
    torch.manual_seed(456)
    b = P._build(cfg, 4, seed=0).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = P._build(cfg, 4, seed=1).state_dict()
    assert not torch.equal(a["fc_audioset.weight"], c["fc_audioset.weight"])
    torch.manual_seed(123)
    P._build(cfg, 4, seed=0)
    assert torch.equal(torch.get_rng_state(), state)      # the caller's RNG is untouched
