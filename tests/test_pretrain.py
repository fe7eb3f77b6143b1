"""Cached supervised pre-training of the CPU-sized backbones (audiorepro.backbones.pretrain).

Everything runs in a private AUDIOREPRO_HOME (world, feature cache, run folders, records) on a
12-clip synthetic world with tiny models; no file from ../shared is needed.
"""
from __future__ import annotations

import dataclasses
import inspect
import json

import numpy as np
import pandas as pd
import pytest
import torch

from audiorepro import caching
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
def world(home):
    """12 clips of 2 s: 7 train, 3 valid, 2 test (an easy subset: the model may memorise it),
    with the world's event table (crop targets from the events inside each crop)."""
    make_world(home / "world", n_clips=12, seed=0, clip_seconds=2.0, progress=False)
    w = load_world(home / "world")
    frame = w.table.frame.copy()
    frame["split"] = ["train"] * 7 + ["valid"] * 3 + ["test"] * 2
    return dataclasses.replace(w, table=ClipTable(frame, w.table.root, w.table.classes, w.table.name))


@pytest.fixture(scope="module")
def table(world) -> ClipTable:
    return world.table


@pytest.fixture(scope="module")
def first_run(world):
    return P.pretrained_backbone("panns_cnn10_32k", world=world, epochs=4, lr=3e-3, **TINY)


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
    assert rep.config["crop_labels"] == "events"
    assert next(model.parameters()).device == P.pick_device("auto")


def test_test_split_scored_once_with_the_kept_weights(first_run, table):
    """The test metrics are those of the kept (best-valid) weights on whole test clips."""
    model, rep = first_run
    test_t = table.subset("test")
    assert json.loads((rep.run_dir / P.TEST_FILE).read_text())["n"] == len(test_t) == 2
    with np.load(rep.run_dir / P.TEST_ITEMS) as z:
        assert list(z["ids"]) == list(test_t.frame["clip_id"])
        assert np.array_equal(z["targets"], test_t.targets())
        scores = z["scores"]
    cfg = rep.config
    ds, _, valid = P._features(test_t, cfg, torch.device("cpu"), False)
    feats = torch.stack([ds[i]["features"] for i in range(len(ds))])
    with torch.no_grad():
        own = torch.sigmoid(P.clip_logits(model, "panns", feats, cfg["crop_frames"], valid,
                                          cfg["clip_pooling"])).numpy()
    assert np.allclose(own, scores, atol=1e-5)
    from audiorepro.metrics import tagging_metrics
    assert rep.test_metrics["mAP"] == pytest.approx(tagging_metrics(test_t.targets(), scores)["mAP"])
    assert rep.chance == pytest.approx({"valid": P.chance_map(table, "valid"),
                                        "test": P.chance_map(table, "test")})
    assert rep.over_chance("test") == pytest.approx(rep.test_metrics["mAP"] / rep.chance["test"])
    row = P.pretraining_table([rep]).iloc[0]
    assert row["test mAP"] == pytest.approx(rep.test_metrics["mAP"])
    assert row["test mAP / chance"] == pytest.approx(rep.over_chance("test"))


def test_cache_hit_returns_identical_weights_without_training(first_run, world, monkeypatch):
    model, rep = first_run

    def boom(*a, **k):
        raise AssertionError("a cache hit must neither train nor compute features")
    monkeypatch.setattr(P, "fit", boom)
    monkeypatch.setattr(P, "_features", boom)
    model2, rep2 = P.pretrained_backbone("panns_cnn10_32k", world=world, epochs=4, lr=3e-3, **TINY)
    assert rep2.from_cache and rep2.run_dir == rep.run_dir
    sd1, sd2 = model.state_dict(), model2.state_dict()
    assert sd1.keys() == sd2.keys()
    assert all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    assert rep2.metrics == pytest.approx(rep.metrics)
    assert rep2.test_metrics == pytest.approx(rep.test_metrics)
    assert rep2.history.equals(rep.history)


def test_config_change_gives_new_cache_dir(first_run, world):
    _, rep = first_run
    _, rep2 = P.pretrained_backbone("panns_cnn10_32k", world=world.table, epochs=1, lr=3e-3,
                                    crop_labels="clip", **TINY)
    assert rep2.run_dir != rep.run_dir and not rep2.from_cache
    assert (rep.run_dir / "done.json").is_file() and (rep2.run_dir / "done.json").is_file()
    stored = json.loads((rep2.run_dir / "pretrain.json").read_text())
    assert stored["epochs"] == 1 and stored["crop_labels"] == "clip"


def test_cache_key_is_run_key_of_config_data_and_code(world, monkeypatch):
    """run_dir_for = caching.run_key(config, table fingerprint, backbones + core training code):
    other data, a changed backbone or training-loop source -> another folder."""
    table = world.table
    cfg = P.pretrain_config("panns_cnn10_32k", 0.125, "smoke", table)
    base = P.run_dir_for(cfg)
    params = {k: v for k, v in cfg.items() if k != "data"}
    key = caching.run_key(params, data=caching.table_fingerprint(table),
                          code=("audiorepro.backbones", *caching.CORE_TRAINING_CODE))
    assert base.name == f"panns_cnn10_32k_0.125_{key}"
    assert P.run_dir_for(P.pretrain_config("panns_cnn10_32k", 0.125, "smoke", table)) == base
    other = ClipTable(table.frame.iloc[:11].copy(), table.root, table.classes, table.name)
    relabelled = table.frame.copy()
    relabelled.loc[0, "labels"] = "siren"
    others = {P.run_dir_for(P.pretrain_config("panns_cnn10_32k", 0.125, "smoke", other)),
              P.run_dir_for(P.pretrain_config("panns_cnn10_32k", 0.125, "smoke",
                                              ClipTable(relabelled, table.root, table.classes))),
              P.run_dir_for(P.pretrain_config("panns_cnn10_32k", 0.125, "smoke", table, lr=0.1))}
    assert base not in others and len(others) == 3
    real = caching._module_digest
    for module in ("audiorepro.backbones", "audiorepro.training"):
        monkeypatch.setattr(caching, "_module_digest",
                            lambda name, m=module: real(name) + ("x" if name == m else ""))
        assert P.run_dir_for(cfg) != base, module
    monkeypatch.setattr(caching, "_module_digest",
                        lambda name: real(name) + ("x" if name == "audiorepro.papers.atgnn" else ""))
    assert P.run_dir_for(cfg) == base          # code the run does not execute is not in the key


def test_device_defaults_to_auto():
    for fn in (P.pretrained_backbone, P.pretrain_all):
        assert inspect.signature(fn).parameters["device"].default == "auto", fn.__name__


def test_bare_clip_table_needs_clip_labels(table):
    with pytest.raises(P.PretrainError, match="crop_labels"):
        P.pretrained_backbone("panns_cnn10_32k", world=table, epochs=1, **TINY)


def test_result_recorded_once(first_run, world):
    from audiorepro.results import load_items, load_records
    _, rep = first_run
    P.pretrained_backbone("panns_cnn10_32k", world=world, epochs=4, lr=3e-3, **TINY)  # cache hit

    def mine():
        recs = load_records(chapter="backbones", table="pretraining")
        return recs[recs["model"].str.startswith("panns_cnn10_32k scale=0.125")
                    & (recs["param.epochs"] == 4)]
    recs = mine()
    assert recs["record_id"].nunique() == 1
    values = recs.set_index("metric")["value"]
    assert values["mAP"] == pytest.approx(rep.metrics["mAP"])
    assert values["test_mAP"] == pytest.approx(rep.test_metrics["mAP"])
    assert values["chance_mAP"] == pytest.approx(rep.chance["valid"])
    assert values["test_chance_mAP"] == pytest.approx(rep.chance["test"])
    assert values["test_mAP_over_chance"] == pytest.approx(rep.test_metrics["mAP"] / rep.chance["test"])
    assert values["mAP_over_chance"] == pytest.approx(rep.metrics["mAP"] / rep.chance["valid"])
    assert (recs["profile"] == "smoke").all()
    items = load_items(recs["record_id"].iloc[0])["test_mAP"]
    assert items.n == 2
    # a deleted record is written again on the next call
    path = json.loads((rep.run_dir / "record.json").read_text())["path"]
    import os
    os.unlink(path)
    P.pretrained_backbone("panns_cnn10_32k", world=world, epochs=4, lr=3e-3, **TINY)
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
    # expected AP of a random ranking of 4 clips (H_4 = 25/12): 1 positive H_4/4, 2 positives
    # H_4/4 + (4 - H_4)/12; class c has no valid positive (left out)
    h4 = 25 / 12
    assert P.chance_map(t) == pytest.approx((h4 / 4 + (h4 / 4 + (4 - h4) / 12)) / 2)
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


def test_crop_targets_hand_computed():
    # clip 0: class 2 in frames [50, 150), class 0 in [300, 310) (10 frames, short)
    # clip 1: class 1 in [0, 1000); padding row (class -1)
    ev = torch.tensor([[[2., 50., 150.], [0., 300., 310.]],
                       [[1., 0., 1000.], [-1., -1., -1.]]])
    y = P.crop_targets(ev, torch.tensor([100, 400]), 100, 3, min_overlap=30)
    # crop [100, 200) of clip 0 overlaps class 2 by 50 >= 30; class 0 not at all
    assert y.tolist() == [[0, 0, 1], [0, 1, 0]]
    # crop [130, 230): class 2 overlaps 20 < min(30, 50) -> off
    assert P.crop_targets(ev[:1], torch.tensor([130]), 100, 3, 30).tolist() == [[0, 0, 0]]
    # crop [250, 305): the 10-frame event overlaps 5 frames = half its duration -> on
    assert P.crop_targets(ev[:1], torch.tensor([205]), 100, 3, 30).tolist() == [[1, 0, 0]]
    assert P.crop_targets(ev[:1], torch.tensor([206]), 100, 3, 30).tolist() == [[1, 0, 0]]
    assert P.crop_targets(ev[:1], torch.tensor([204]), 100, 3, 30).tolist() == [[0, 0, 0]]


def test_event_frames_and_train_crops():
    events = pd.DataFrame({"clip_id": ["a", "a", "b", "b", "z"], "label": ["x", "y", "y", "x", "x"],
                           "parent": ["p", "p", "p", "p", "p"],
                           "onset_s": [0.5, 1.0, 0.0, 2.0, 0.0], "offset_s": [1.5, 2.0, 1.0, 3.0, 1.0],
                           "audible": [True, True, True, False, True]})
    ev = P.event_frames(events, ["a", "b"], ["x", "y"])
    assert ev.shape == (2, 2, 3)
    assert ev[0].tolist() == [[0., 50., 150.], [1., 100., 200.]]
    assert ev[1].tolist() == [[1., 0., 100.], [-1., -1., -1.]]       # inaudible event dropped
    with_parent = P.event_frames(events, ["a"], ["p", "x", "y"])     # ontology world
    assert sorted(with_parent[0, :, 0].tolist()) == [0., 0., 1., 2.]
    with pytest.raises(P.PretrainError, match="'a'.*'y'"):
        P.event_frames(events, ["a"], ["x"])
    # TrainCrops: crops of the requested length, targets from the crop's own events
    feats = torch.arange(2 * 3 * 300, dtype=torch.float32).reshape(2, 3, 300)
    crops = P.TrainCrops(100, 300, ev, min_overlap=30, seed=0)
    out = crops({"features": feats, "target": torch.ones(2, 2), "index": torch.tensor([0, 1])})
    assert out["features"].shape == (2, 3, 100)
    starts = [int(out["features"][i, 0, 0] - feats[i, 0, 0]) for i in range(2)]
    assert all(torch.equal(out["features"][i], feats[i, :, s:s + 100]) for i, s in enumerate(starts))
    expected = P.crop_targets(ev, torch.tensor(starts), 100, 2, 30)
    assert torch.equal(out["target"], expected)
    again = P.TrainCrops(100, 300, ev, min_overlap=30, seed=0)(
        {"features": feats, "target": torch.ones(2, 2), "index": torch.tensor([0, 1])})
    assert torch.equal(again["features"], out["features"])              # seeded generator
    clip = P.TrainCrops(100, 300, None)({"features": feats, "target": torch.ones(2, 2),
                                         "index": torch.tensor([0, 1])})
    assert torch.equal(clip["target"], torch.ones(2, 2))                 # clip labels kept


def test_clip_pooling_max_and_whole():
    torch.manual_seed(0)
    model = P._build(P.pretrain_config("ast", "cpu", "smoke"), 5).eval()   # input_tdim 100
    feats = torch.randn(2, 128, 250)
    with torch.no_grad():
        got = P.clip_logits(model, "ast", feats, 100, 250, pooling="max")
        parts = [model(feats[..., s:s + 100].transpose(1, 2))["logits"] for s in (0, 100, 150)]
    assert torch.allclose(got, torch.stack(parts).max(0).values, atol=1e-5)
    with pytest.raises(ValueError, match="whole"):
        P.clip_logits(model, "ast", feats, 100, 250, pooling="whole")
    with pytest.raises(P.PretrainError, match="clip_pooling"):
        P.pretrain_config("ast", clip_pooling="whole")


# ------------------------------------------------------------------ the world's ceiling estimate
def test_clip_statistics_shape_and_known_values():
    from audiorepro.backbones.ceiling import clip_statistics
    torch.manual_seed(0)
    feats = torch.randn(3, 64, 1000)
    out = clip_statistics(feats)
    assert out.shape == (3, 64 * 10 + 16 * 5)
    # a flat log-mel: after the median level is removed, every statistic is zero (log1p(0) = 0)
    flat = clip_statistics(torch.full((2, 64, 1000), -7.5))
    assert torch.allclose(flat, torch.zeros_like(flat))
    # a bin that alternates +-1 around the level: its mean |frame-to-frame change| is 2
    alt = torch.zeros(1, 64, 1000)
    alt[0, 5] = torch.tensor([1.0, -1.0]).repeat(500)
    stats = clip_statistics(alt)[0]
    assert stats[64 * 8 + 5].item() == pytest.approx(2.0)          # block 8: mean |diff|
    assert stats[64 * 1 + 5].item() == pytest.approx(1.0, rel=1e-3)  # block 1: std
    with pytest.raises(ValueError, match="clip_statistics"):
        clip_statistics(torch.zeros(2, 8, 100))


def test_ceiling_table_shares_by_hand():
    from types import SimpleNamespace

    from audiorepro.backbones.ceiling import CeilingEstimate, ceiling_table
    ceiling = CeilingEstimate("w", 0.62, 0.6, 10, 20, {"valid": 0.1, "test": 0.1},
                              {"train": 7, "valid": 1, "test": 2}, np.zeros((2, 1)),
                              np.zeros((2, 1)), ["a", "b"])
    reps = [SimpleNamespace(name="half", test_metrics={"mAP": 0.35}),
            SimpleNamespace(name="chance", test_metrics={"mAP": 0.1})]
    t = ceiling_table(reps, ceiling).set_index("backbone")
    assert t.loc["half", "share of chance-to-ceiling"] == pytest.approx(0.5)
    assert t.loc["half", "mAP / ceiling"] == pytest.approx(0.35 / 0.6)
    assert t.loc["half", "test mAP / chance"] == pytest.approx(3.5)
    assert t.loc["chance", "share of chance-to-ceiling"] == pytest.approx(0.0)
    assert len(t) == 3 and ceiling.over_chance == pytest.approx(6.0)


def test_world_ceiling_smoke_learns_above_nothing():
    from audiorepro.backbones.ceiling import world_ceiling
    from audiorepro.metrics import tagging_metrics
    c = world_ceiling("smoke", epochs=10, device="cpu")
    assert c.n_items == {"train": 17, "valid": 2, "test": 5}
    assert c.scores.shape == c.targets.shape == (5, c.targets.shape[1])
    assert c.best_epoch in (5, 10)                                  # validated every 5 epochs
    # the test mAP is the one of the returned test scores (read once, from the kept epoch)
    assert c.test_mAP == pytest.approx(tagging_metrics(c.targets, c.scores)["mAP"])
    with pytest.raises(ValueError, match="epochs"):
        world_ceiling("smoke", epochs=0)
