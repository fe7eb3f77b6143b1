"""Multilayer fusion (Eqs. 1-3, backbone framing, linear evaluation, layer choice, tasks)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from audiorepro.data.cliptable import ClipTable
from audiorepro.papers.fusion import data as D
from audiorepro.papers.fusion import experiments as EX
from audiorepro.papers.fusion import figures as FI
from audiorepro.papers.fusion import model as FU
from audiorepro import caching
from audiorepro.backbones import build_backbone
from audiorepro.training import pick_device


# ------------------------------------------------------------------------------ Eqs. 1-3
def test_eq1_hand_computed_maxpool_and_channel_major_flatten():
    # z (B=1, C=2, T=4, F=3); value = 100*c + 10*t + f
    c, t, f = torch.meshgrid(torch.arange(2), torch.arange(4), torch.arange(3), indexing="ij")
    z = (100 * c + 10 * t + f).float()[None]
    out = FU.eq1_time_features(z, 2)
    assert out.shape == (1, 6, 2)
    # max over time pairs (0,1) and (2,3) -> t = 1 and t = 3; row index = c * F + f
    expected = torch.tensor([[100 * (d // 3) + 10 * tt + d % 3 for tt in (1, 3)] for d in range(6)]).float()
    assert torch.equal(out[0], expected)


def test_eq1_matches_kernel_stride_pool_when_divisible_and_gives_t_out_otherwise():
    z = torch.randn(3, 4, 24, 5)
    a = FU.eq1_time_features(z, 6)
    b = torch.nn.functional.max_pool2d(z, (4, 1)).permute(0, 1, 3, 2).reshape(3, 20, 6)
    assert torch.allclose(a, b)
    assert FU.eq1_time_features(torch.randn(2, 3, 11, 2), 4).shape == (2, 6, 4)
    with pytest.raises(FU.FusionError, match="t_out"):
        FU.eq1_time_features(z, 25)
    capped = FU.eq1_time_features(torch.randn(2, 8, 12, 16), 3, max_dim=32)
    assert capped.shape == (2, 32, 3)  # 8 channels x 4 frequency bins


def test_eq3_mean_plus_max_and_repeat():
    z = torch.tensor([[[1.0, 2.0, 6.0], [0.0, -3.0, 3.0]]])
    assert torch.allclose(FU.eq3_pool(z), torch.tensor([[3.0 + 6.0, 0.0 + 3.0]]))
    v = torch.tensor([[1.0, -2.0]])
    r = FU.repeat_time(v, 4)
    assert r.shape == (1, 2, 4) and torch.allclose(FU.eq3_pool(r), 2 * v)


def test_fused_embedding_equals_eq3_of_eq2():
    a, b = torch.randn(5, 7, 6), torch.randn(5, 3, 6)
    direct = FU.eq3_pool(FU.eq2_fuse([a, b])).numpy()
    via = FU.fused_embedding({"M": FU.eq3_pool(a).numpy(), "L": FU.eq3_pool(b).numpy()}, ["M", "L"])
    assert np.allclose(direct, via, atol=1e-6)
    with pytest.raises(FU.FusionError):
        FU.eq2_fuse([a, torch.randn(5, 3, 4)])


# ------------------------------------------------------------------------------ framing
def test_panns_layer_shapes_follow_table2():
    torch.manual_seed(0)
    m = build_backbone("panns_cnn14_16k", scale=0.125, spec_augment=False)
    emb = EX.LayerEmbedder(m)
    feats = emb.batch_features(0.1 * torch.randn(2, 32000))  # 2 s: 201 frames -> T_o = 6
    w = m.widths
    freq = [32, 16, 8, 4, 2, 2]
    for k in range(1, 7):
        assert feats[k].shape == (2, w[k - 1] * freq[k - 1], 6), k


def test_vggish_segments_concatenated_and_fc_repeated():
    torch.manual_seed(0)
    m = build_backbone("vggish_tcvrick", scale=0.125)
    emb = EX.LayerEmbedder(m, taps=[2, 15, 22])
    feats = emb.batch_features(0.1 * torch.randn(2, 32000))  # 2 s -> 2 examples of 0.96 s
    c2 = m.features[0].out_channels
    assert feats[2].shape == (2, c2 * 64, 12)
    assert feats[22].shape == (2, 128, 12)
    # FC output repeated 6 times per example: constant within each example's 6 frames
    f22 = feats[22]
    assert torch.allclose(f22[..., :6], f22[..., :1].expand(-1, -1, 6))
    assert torch.allclose(f22[..., 6:], f22[..., 6:7].expand(-1, -1, 6))


def test_crepe_frames_are_time_steps():
    m = build_backbone("crepe_tiny", pretrained=False, hop_length=1600)
    emb = EX.LayerEmbedder(m)
    feats = emb.batch_features(0.1 * torch.randn(3, 16000))  # 1 s, hop 0.1 s -> 11 frames
    assert feats[6].shape == (3, 64 * 4, 11)
    assert feats[1].shape == (3, 128 * 128, 11)
    assert feats["classifier"].shape == (3, 360, 11)
    out = emb.batch_embeddings(0.1 * torch.randn(1, 16000))
    assert out[3].shape == (1, 16 * 32)


def _tone_table(tmp_path, n_per_class=4):
    rows = []
    for k, hz in enumerate((220.0, 880.0)):
        for j in range(n_per_class):
            t = np.arange(8000) / 16000
            sf.write(tmp_path / f"c{k}_{j}.wav", (0.3 * np.sin(2 * np.pi * hz * (1 + 0.01 * j) * t)).astype(np.float32), 16000)
            rows.append({"clip_id": f"c{k}_{j}", "path": f"c{k}_{j}.wav", "labels": f"tone{k}",
                         "split": ["train", "train", "valid", "test"][j % 4]})
    return ClipTable(pd.DataFrame(rows), tmp_path, name="tones")


def test_embed_table_caches(tmp_path, monkeypatch):
    table = _tone_table(tmp_path)
    m = build_backbone("crepe_tiny", pretrained=False, hop_length=4000)
    emb = EX.LayerEmbedder(m, taps=[5, 6])
    first = EX.embed_table(emb, table, 0.5, "random", cache_root=tmp_path / "cache")
    assert first[6].shape == (8, 256) and first[6].dtype == np.float32
    monkeypatch.setattr(emb, "batch_embeddings", lambda w: (_ for _ in ()).throw(AssertionError("recomputed")))
    again = EX.embed_table(emb, table, 0.5, "random", cache_root=tmp_path / "cache")
    assert np.array_equal(first[5], again[5])


def test_embed_table_cache_never_serves_other_data_or_older_code(tmp_path, monkeypatch):
    table = _tone_table(tmp_path)
    m = build_backbone("crepe_tiny", pretrained=False, hop_length=4000)
    emb = EX.LayerEmbedder(m, taps=[6])
    EX.embed_table(emb, table, 0.5, "random", cache_root=tmp_path / "cache")
    calls = []
    real = emb.batch_embeddings
    monkeypatch.setattr(emb, "batch_embeddings", lambda w: calls.append(len(w)) or real(w))
    relabelled = ClipTable(table.frame.assign(split="train"), table.root, name="tones")
    EX.embed_table(emb, relabelled, 0.5, "random", cache_root=tmp_path / "cache")
    assert sum(calls) == 8            # other splits: another table fingerprint, recomputed
    monkeypatch.setattr(caching, "code_digest", lambda modules, length=16: "changed-source")
    EX.embed_table(emb, table, 0.5, "random", cache_root=tmp_path / "cache")
    assert sum(calls) == 16           # changed source of the package: recomputed
    assert len(list((tmp_path / "cache").glob("tones_*.npz"))) == 3


def test_layer_embedder_device_and_pure_layer_functions_agree():
    torch.manual_seed(0)
    m = build_backbone("panns_cnn14_16k", scale=0.125, spec_augment=False).eval()
    waves = 0.1 * torch.randn(2, 16000)
    emb = EX.LayerEmbedder(m, taps=[2, 4], device="auto")
    assert emb.device == pick_device("auto") and next(emb.model.parameters()).device.type == emb.device.type
    via_embedder = emb.batch_embeddings(waves)
    direct = FU.layer_embeddings(emb.model, waves, [2, 4])
    assert set(direct) == {2, 4}
    for t in (2, 4):
        assert torch.allclose(via_embedder[t], direct[t])
        assert torch.allclose(direct[t], FU.eq3_pool(FU.layer_features(emb.model, waves, [t])[t]))
    with pytest.raises(FU.FusionError, match="waves must be"):
        FU.layer_features(m, torch.randn(16000))


# ------------------------------------------------------------------------------ linear evaluation
def _blobs(n, seed, sep):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = np.array([[sep, 0, 0, 0], [0, sep, 0, 0], [0, 0, sep, 0]])
    return (centers[y] + rng.normal(size=(n, 4))).astype(np.float32), y


def test_linear_eval_learns_separable_and_not_random_labels():
    xtr, ytr = _blobs(120, 0, 5.0)
    xva, yva = _blobs(40, 1, 5.0)
    xte, yte = _blobs(60, 2, 5.0)
    res = EX.linear_eval(xtr, ytr, xva, yva, xte, yte, 3, lrs=(1e-2, 1e-4), seeds=(0, 1),
                         epochs=60, patience=10)
    assert res.accuracy > 0.9
    assert set(res.runs["lr"]) == {1e-2, 1e-4} and len(res.runs) == 4
    assert res.lr == 1e-2  # the small learning rate cannot reach the same validation accuracy in 60 epochs
    rng = np.random.default_rng(3)
    noise = EX.linear_eval(rng.normal(size=(120, 4)).astype(np.float32), rng.integers(0, 3, 120),
                           rng.normal(size=(40, 4)).astype(np.float32), rng.integers(0, 3, 40),
                           rng.normal(size=(300, 4)).astype(np.float32), rng.integers(0, 3, 300), 3,
                           lrs=(1e-2,), seeds=(0,), epochs=60, patience=5)
    assert noise.accuracy < 0.5
    assert bool(noise.runs["stopped_early"].iloc[0]) and noise.runs["epochs"].iloc[0] < 60


def test_linear_eval_standardises_on_train_and_keeps_constant_features():
    xtr, ytr = _blobs(120, 0, 5.0)
    xva, yva = _blobs(40, 1, 5.0)
    xte, yte = _blobs(60, 2, 5.0)
    # a constant column (std 0: scaled by 1, not divided by zero) and a huge offset and scale
    # that only the train-fitted standardisation removes
    pad = lambda x: np.hstack([1e3 + 100 * x, np.full((len(x), 1), 7.0, np.float32)])
    res = EX.linear_eval(pad(xtr), ytr, pad(xva), yva, pad(xte), yte, 3, lrs=(1e-2,), seeds=(0,),
                         epochs=60, patience=10)
    assert res.accuracy > 0.9 and np.isfinite(res.runs["valid_accuracy"]).all()


def test_linear_eval_rejects_bad_labels():
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(FU.FusionError, match="labels"):
        EX.linear_eval(x, np.array([0, 1, 2, 5]), x, np.zeros(4, int), x, np.zeros(4, int), 3)


def test_evaluate_task_folds():
    x, y = _blobs(60, 0, 6.0)
    frame = pd.DataFrame({"clip_id": [f"c{i}" for i in range(60)], "path": "x.wav", "split": "cv",
                          "labels": [f"k{v}" for v in y], "fold": np.arange(60) % 3 + 1})
    table = ClipTable(frame, ".", name="blobs")
    res = EX.evaluate_task(x, table, use_folds=True, lrs=(1e-2,), seeds=(0,), epochs=40, patience=10)
    assert set(res.runs["fold"]) == {1, 2, 3} and res.accuracy > 0.85
    no_folds = ClipTable(frame.drop(columns="fold"), ".", name="blobs")
    with pytest.raises(FU.FusionError, match="'train'"):
        EX.evaluate_task(x, no_folds)


def test_choose_fusion_layers_paper_rule():
    acc = pd.DataFrame({"ESC-50": [0.3, 0.5, 0.6, 0.9], "GTZAN": [0.4, 0.5, 0.6, 0.8],
                        "SPCV2": [0.5, 0.9, 0.7, 0.2], "VC1": [0.4, 0.7, 0.8, 0.1]},
                       index=[2, 5, 8, 10])
    m, l, avg = EX.choose_fusion_layers(acc, late_tasks=["ESC-50", "GTZAN"])
    assert (m, l) == (5, 10)  # D_M means: 0.45, 0.8, 0.75, 0.15
    assert avg.loc[5, "D_M"] == pytest.approx(0.8)
    # the D_M peak after L is not eligible: M is the best layer before L
    acc2 = acc.copy()
    acc2.loc[10, ["SPCV2", "VC1"]] = 1.0
    acc2.loc[8, ["ESC-50", "GTZAN"]] = 0.95
    m2, l2, _ = EX.choose_fusion_layers(acc2, late_tasks=["ESC-50", "GTZAN"])
    assert l2 == 8 and m2 == 5
    assert list(EX.peak_layers(acc)) == [3, 3, 1, 2]
    # a D_L peak at the first layer leaves nothing to fuse with: L = best later layer (8), M = 5
    acc3 = acc.copy()
    acc3.loc[2, ["ESC-50", "GTZAN"]] = 1.0
    acc3.loc[8, ["ESC-50", "GTZAN"]] = 0.95
    assert EX.choose_fusion_layers(acc3, late_tasks=["ESC-50", "GTZAN"])[:2] == (5, 8)


# ------------------------------------------------------------------------------ tasks
def test_subsample_is_stratified_and_deterministic():
    frame = pd.DataFrame({"clip_id": [f"c{i}" for i in range(30)], "path": "x.wav",
                          "split": ["train"] * 24 + ["test"] * 6,
                          "labels": ["a"] * 20 + ["b"] * 4 + ["a"] * 3 + ["b"] * 3})
    table = ClipTable(frame, ".", name="t")
    sub = D.subsample(table, {"train": 8})
    counts = sub.frame.groupby(["split", "labels"]).size().to_dict()
    assert counts == {("train", "a"): 4, ("train", "b"): 4, ("test", "a"): 3, ("test", "b"): 3}
    assert list(D.subsample(table, {"train": 8}).frame["clip_id"]) == list(sub.frame["clip_id"])
    assert sub.classes == table.classes


def test_render_groove_places_hits_on_the_grid():
    impulse = torch.zeros(40)
    impulse[0] = 1.0
    rng = np.random.default_rng(0)
    wave, bpm = D.render_groove("disco", {"kick": [impulse]}, rng, seconds=2.0)
    assert wave.shape == (32000,) and 115 <= bpm <= 130
    onsets = np.flatnonzero(wave.numpy() > 0)
    step = 60.0 / bpm / 4 * 16000  # one 16th note in samples
    beat = 4 * step  # kick on every beat in disco
    gaps = np.diff(onsets)
    assert len(onsets) >= 3 and np.allclose(gaps, beat, atol=1.5)


def _drum_fixture(tmp_path):
    rows = []
    for split, kits in (("train", ["K1", "K2"]), ("valid", ["K3"]), ("test", ["K4"])):
        for kit in kits:
            for fam in ("kick", "snare", "hihat"):
                p = tmp_path / "drums" / kit / f"{fam}.wav"
                p.parent.mkdir(parents=True, exist_ok=True)
                sf.write(p, (0.5 * np.random.default_rng(len(rows)).normal(size=1600)).astype(np.float32), 16000)
                rows.append({"clip_id": f"{kit}-{fam}", "path": f"drums/{kit}/{fam}.wav", "split": split,
                             "labels": fam, "kit": kit})
    return ClipTable(pd.DataFrame(rows), tmp_path, name="drums")


def test_music_style_table_uses_kits_of_each_split(tmp_path):
    drums = _drum_fixture(tmp_path)
    table = D.music_style_table(drums, counts={"train": 2, "valid": 1, "test": 1}, seconds=1.0,
                                out_root=tmp_path / "style")
    n_styles = len(D.MUSIC_STYLES)
    assert len(table) == 4 * n_styles and table.num_classes == n_styles
    assert set(table.frame.loc[table.frame["split"] == "test", "kit"]) == {"K4"}
    assert set(table.frame.loc[table.frame["split"] == "train", "kit"]) <= {"K1", "K2"}
    assert table.check_files() == []
    info = sf.info(str(table.audio_path(0)))
    assert info.samplerate == 16000 and abs(info.duration - 1.0) < 1e-3


def test_paper_tasks_reads_evar_layout(tmp_path):
    meta = tmp_path / "metadata"
    meta.mkdir()
    (meta / "esc50.csv").write_text(",file_name,label,fold\n0,a/1-100.wav,dog,1\n1,a/2-100.wav,rain,2\n")
    (meta / "cremad.csv").write_text("file_name,label,speaker_id,split\n1001_DFA_ANG_XX.wav,ANG,1001,train\n"
                                     "1002_DFA_HAP_XX.wav,HAP,1002,test\n")
    out = D.paper_tasks(tmp_path / "16k", meta, names=["ESC-50", "CRM-D"], on_missing="keep")
    assert list(out["ESC-50"].frame["fold"]) == [1, 2] and out["ESC-50"].classes == ["dog", "rain"]
    assert list(out["CRM-D"].frame["emotion"]) == ["anger", "happy"]
    with pytest.raises(KeyError, match="unknown task"):
        D.paper_tasks(tmp_path, meta, names=["AudioSet"])


def test_evaluate_task_uses_folds_when_table_has_no_train_split():
    x, y = _blobs(45, 1, 6.0)
    frame = pd.DataFrame({"clip_id": [f"c{i}" for i in range(45)], "path": "x.wav", "split": "cv",
                          "labels": [f"k{v}" for v in y], "fold": np.arange(45) % 3 + 1})
    res = EX.evaluate_task(x, ClipTable(frame, ".", name="cv"), lrs=(1e-2,), seeds=(0,), epochs=20,
                           patience=5)
    assert set(res.runs["fold"]) == {1, 2, 3}


def test_backbone_setup_refuses_pretrained_without_weights_and_builds_random():
    with pytest.raises(FU.FusionError, match="no offline pre-trained weights"):
        EX.BackboneSetup("x", "panns_cnn14_16k").build()
    with pytest.raises(FU.FusionError, match="unknown key"):
        EX.BackboneSetup.from_dict({"label": "x", "backbone": "crepe_tiny", "wieghts": "random"})
    s = EX.BackboneSetup("c", "crepe_tiny", weights="random", scale=1.0, seed=3)
    a, b = s.build(), s.build()
    assert torch.equal(a.conv1.weight, b.conv1.weight) and s.weights_id == "random-x1.0-seed3"


def test_layer_trend_verdict():
    acc = pd.DataFrame({"ESC-50": [0.1, 0.2, 0.9], "SPCV2": [0.2, 0.8, 0.1]}, index=[1, 2, 3])
    holds, ev = EX.layer_trend_verdict(acc)
    assert holds and "ESC-50 #3" in ev and "SPCV2 #2" in ev
    assert not EX.layer_trend_verdict(acc.rename(columns={"ESC-50": "X", "SPCV2": "GTZAN"}))[0]


def test_backbone_setup_synthetic_pretrained_uses_cached_standin(monkeypatch):
    from audiorepro.backbones import pretrain
    from audiorepro.backbones import build_backbone

    calls = []

    def fake_pretrained(name, scale="cpu", profile="book", progress=True, device=None, **kw):
        calls.append((name, scale, profile, device, kw))
        model = build_backbone(name, scale=0.125)
        model.train()
        return model, None

    monkeypatch.setattr(pretrain, "pretrained_backbone", fake_pretrained)
    s = EX.BackboneSetup.from_dict({"label": "CNN14-synthetic-standin", "backbone": "panns_cnn14_16k",
                                    "weights": "synthetic-pretrained", "pretrain_profile": "smoke"})
    model = s.build(device="meta")
    # the stand-in is pre-trained (when not cached) on the device the caller asked for
    assert calls == [("panns_cnn14_16k", "cpu", "smoke", torch.device("meta"), {})]
    # frozen extraction: eval mode and PANNs' own SpecAugment switched off
    assert not model.training and model.use_spec_augment is False
    s.build()
    assert calls[-1][3] == pick_device("auto")
    # the weights id names the stand-in and its pre-training recipe; it changes with the profile
    wid = s.weights_id
    assert wid.startswith("synthetic-pretrained:smoke:") and wid == s.weights_id
    book = EX.BackboneSetup("b", "panns_cnn14_16k", weights="synthetic-pretrained")
    assert book.weights_id.startswith("synthetic-pretrained:book:") and book.weights_id != wid
    assert "not the official weights" in s.describe() and "synthetic world" in s.describe()
    # the cache key covers the recipe for stand-ins and ignores pretrain_profile otherwise
    assert s.cache_key()["weights_id"] == wid
    crepe = EX.BackboneSetup("c", "crepe_tiny", pretrain_profile="smoke")
    assert "pretrain_profile" not in crepe.cache_key()
    with pytest.raises(FU.FusionError, match="weights='synthetic'"):
        EX.BackboneSetup.from_dict({"label": "x", "backbone": "panns_cnn14_16k", "weights": "synthetic"})
    with pytest.raises(FU.FusionError, match="no synthetic-world stand-in"):
        EX.BackboneSetup("x", "crepe_tiny", weights="synthetic-pretrained").build()


# ------------------------------------------------------------------------------ Table III helpers
def _comparison(label, weights, base, fused):
    acc = pd.DataFrame([{t: 0.1 for t in base}, base], index=[1, 2])
    return EX.FusionComparison(EX.BackboneSetup(label, "crepe_tiny", weights=weights), acc, 1, 2, 2,
                               base, fused, {t: 0.01 for t in fused})


def test_table3_frames_and_records(monkeypatch):
    a = _comparison("CNN14-synthetic-standin", "synthetic-pretrained",
                    {"ESC-50": 0.5, "GTZAN": 0.6}, {"ESC-50": 0.7, "GTZAN": 0.5})
    b = _comparison("CREPE-tiny", "pretrained", {"ESC-50": 0.2, "GTZAN": 0.4},
                    {"ESC-50": 0.3, "GTZAN": 0.45})
    rows, stds, choice = EX.table3_frames([a, b])
    assert list(rows.columns) == ["ESC-50", "GTZAN", "Avg."]
    assert rows.loc["CNN14-synthetic-standin: difference", "ESC-50"] == pytest.approx(0.2)
    assert rows.loc["CREPE-tiny-Fusion#1#2", "Avg."] == pytest.approx(0.375)
    assert list(stds.index) == ["CNN14-synthetic-standin-Fusion#1#2", "CREPE-tiny-Fusion#1#2"]
    assert choice.loc["CREPE-tiny", "last layer"] == 2
    recorded, verdicts = [], []
    monkeypatch.setattr(EX.results, "record", lambda *a, **k: recorded.append((a, k)))
    monkeypatch.setattr(EX.results, "register_verdict", lambda *a, **k: verdicts.append((a, k)))
    EX.record_table3(a, {"run_id": "r1"}, dataset="d", scale="s", profile="smoke")
    assert [(r[0][:2], r[1]["params"]["paper_row"]) for r in recorded] == [
        (("fusion", "table3"), "CNN14-synthetic-standin"),
        (("fusion", "table3"), "CNN14-synthetic-standin-Fusion")]
    assert recorded[1][0][2] == {"ESC-50": 0.7, "GTZAN": 0.5}     # no Avg: not all nine tasks
    assert recorded[1][1]["params"]["layers"] == "Fusion#1#2" and recorded[1][1]["params"]["run_id"] == "r1"
    # GTZAN claim: decided on the stand-ins only (CREPE's rise does not count)
    assert EX.register_standin_gtzan_verdict([a, b], "d", "s", "smoke") == "reproduced"
    assert verdicts[0][0][:3] == ("fusion", "standin-gtzan-degrades", "reproduced")
    assert "-10.0 points" in verdicts[0][0][3]
    assert EX.register_standin_gtzan_verdict([b], "d", "s", "smoke") is None


def test_plot_fusion_gain_draws_one_bar_per_task_and_backbone():
    import matplotlib

    matplotlib.use("Agg")
    a = _comparison("A", "random", {"ESC-50": 0.5, "GTZAN": 0.6}, {"ESC-50": 0.7, "GTZAN": 0.5})
    b = _comparison("B", "random", {"ESC-50": 0.2, "GTZAN": 0.4}, {"ESC-50": 0.3, "GTZAN": 0.45})
    ax = FI.plot_fusion_gain(EX.table3_frames([a, b])[0], "smoke")
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == sorted([20.0, -10.0, 10.0, 5.0])
