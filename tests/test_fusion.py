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
from audiorepro import results as R
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
    # 300 clips: validation is a random 10 % of the two training folds (20 clips)
    x, y = _blobs(300, 0, 6.0)
    frame = pd.DataFrame({"clip_id": [f"c{i}" for i in range(300)], "path": "x.wav", "split": "cv",
                          "labels": [f"k{v}" for v in y], "fold": np.arange(300) % 3 + 1})
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


def test_evar_seconds_give_each_task_its_evar_clip_length(monkeypatch):
    s = EX.BackboneSetup.from_dict({"label": "c", "backbone": "crepe_tiny", "weights": "random",
                                    "seconds": "evar"})
    assert [s.seconds_for(t) for t in ("SPCV2", "CRM-D", "GTZAN", "VC1")] == [1.0, 2.5, 30.0, 8.2]
    assert EX.BackboneSetup("c", "crepe_tiny", seconds=2).seconds_for("GTZAN") == 2.0
    with pytest.raises(FU.FusionError, match="no clip length for task 'mine'"):
        s.seconds_for("mine")
    with pytest.raises(FU.FusionError, match="must be a number of seconds, 'evar'"):
        EX.BackboneSetup.from_dict({"label": "c", "backbone": "crepe_tiny", "seconds": "30s"})
    seen = {}
    monkeypatch.setattr(EX, "embed_table", lambda emb, table, seconds, *a, **k: seen.setdefault(table, seconds))
    monkeypatch.setattr(EX, "LayerEmbedder", lambda *a, **k: None)
    monkeypatch.setattr(EX.BackboneSetup, "build", lambda self, device="auto": None)
    EX.embed_tasks(s, {"ESC-50": "esc", "SPCV2": "spc"})
    assert seen == {"esc": 5.0, "spc": 1.0}
    assert "EVAR's per-task clip lengths" in s.describe()


def test_evar_ast_gets_the_tasks_input_length_and_fbank_statistics_of_its_training_clips(tmp_path):
    from audiorepro.frontends import make_frontend
    rng = np.random.default_rng(0)
    rows, waves = [], []
    for i, split in enumerate(["train", "train", "test"]):
        w = (0.1 * (i + 1) * rng.standard_normal(16000 * 3)).astype("float32")
        sf.write(tmp_path / f"c{i}.wav", w, 16000)
        rows.append({"clip_id": f"c{i}", "path": f"c{i}.wav", "split": split, "labels": "a"})
        waves.append(torch.from_numpy(w[:40000]))
    table = ClipTable(pd.DataFrame(rows), tmp_path, name="t")
    raw = make_frontend("kaldi_fbank_128", normalize=False, target_frames=None)
    f = torch.cat([raw(w).flatten() for w in waves[:2]]).double()     # the train clips only
    mean, std = EX.ast_norm_stats(table, 2.5)
    assert mean == pytest.approx(float(f.mean()), abs=1e-6) and std == pytest.approx(float(f.std(unbiased=False)), rel=1e-6)
    setup = EX.BackboneSetup.from_dict({"label": "AST", "backbone": "ast_base384_f10_t10_527",
                                        "weights": "random", "scale": "cpu", "seconds": "evar"})
    ts = EX._task_setup(setup, "CRM-D", table)
    assert ts.build_kw["input_tdim"] == 1 + (40000 - 400) // 160 == 248
    assert ts.build_kw["norm_stats"] == pytest.approx([mean, std], abs=1e-6)
    model = ts.build()
    assert model.input_tdim == 248 and model.frontend.overrides["norm_mean"] == pytest.approx(mean, abs=1e-6)
    emb = EX.embed_tasks(setup, {"CRM-D": table})["CRM-D"]              # the path embed_tasks takes
    assert set(emb) == {2, 3, 4} and emb[4].shape == (3, 192)     # layers 2.. (the paper's AST taps)
    fixed = EX.BackboneSetup("c", "crepe_tiny", weights="random", seconds="evar")
    assert EX._task_setup(fixed, "CRM-D", table) is fixed                # only AST is resized


def test_evar_crops_cut_train_and_valid_clips_at_a_seeded_offset_and_test_clips_at_the_start(tmp_path):
    wave = np.arange(16000 * 3, dtype="float32") / 48000.0            # a ramp: offsets are visible
    rows = []
    for i, split in enumerate(["train", "valid", "test", "cv"]):
        sf.write(tmp_path / f"c{i}.wav", wave, 16000, subtype="FLOAT")
        rows.append({"clip_id": f"c{i}", "path": f"c{i}.wav", "split": split, "labels": "a"})
    table = ClipTable(pd.DataFrame(rows), tmp_path, name="t")
    cut = [EX._load_clip(table, i, 16000, 16000, "evar") for i in range(4)]
    offsets = [int(round(float(c[0]) * 48000)) for c in cut]
    assert offsets[2] == 0 and offsets[3] == 0                         # test and fold clips: start
    assert offsets[0] > 0 and offsets[1] > 0 and offsets[0] != offsets[1]
    again = [int(round(float(EX._load_clip(table, i, 16000, 16000, "evar")[0]) * 48000)) for i in range(2)]
    assert again == offsets[:2]                                        # drawn from the clip id
    assert int(round(float(EX._load_clip(table, 0, 16000, 16000)[0]) * 48000)) == 0
    with pytest.raises(FU.FusionError, match="crops='middle'"):
        EX.BackboneSetup.from_dict({"label": "c", "backbone": "crepe_tiny", "crops": "middle"})


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
def _outputs(acc_by_seed, n=10, prefix="c"):
    """TaskOutputs whose seed s gets round(acc * n) of n clips right."""
    vals = np.zeros((len(acc_by_seed), n))
    for s, a in enumerate(acc_by_seed):
        vals[s, :int(round(a * n))] = 1.0 / n
    return EX.TaskOutputs(np.array([f"{prefix}{i}" for i in range(n)]), list(range(len(acc_by_seed))),
                          vals)


def _comparison(label, weights, base, fused, test_fused=None):
    setup = EX.BackboneSetup(label, "crepe_tiny", weights=weights)
    out = lambda accs: {t: _outputs([a]) for t, a in accs.items()}
    rows = [EX.FusedRow(label, None, "last layer #2", out(base)),
            EX.FusedRow(f"{label}-Fusion", (1, 2), "validation", out(fused)),
            EX.FusedRow(f"{label}-Fusion ({EX.SELECTED_ON_TEST})", (1, 2), "test",
                        out(test_fused or fused))]
    frame = pd.DataFrame([{"task": t, "layer": l, "accuracy": 0.1 if l == 1 else base[t],
                           "valid_accuracy": 0.1} for t in base for l in (1, 2)])
    run = EX.LayerwiseRun(setup, frame, {})
    return EX.FusionComparison(setup, run, 1, 2, 1, 2, 2, rows)


def test_table3_frames_and_records(monkeypatch):
    a = _comparison("CNN14-synthetic-standin", "synthetic-pretrained",
                    {"ESC-50": 0.5, "GTZAN": 0.6}, {"ESC-50": 0.7, "GTZAN": 0.5})
    b = _comparison("CREPE-tiny", "pretrained", {"ESC-50": 0.2, "GTZAN": 0.4},
                    {"ESC-50": 0.3, "GTZAN": 0.4})
    rows, stds, choice = EX.table3_frames([a, b])
    assert list(rows.columns) == ["ESC-50", "GTZAN", "Avg."]
    assert rows.loc["CNN14-synthetic-standin: difference", "ESC-50"] == pytest.approx(0.2)
    assert rows.loc["CREPE-tiny-Fusion#1#2", "Avg."] == pytest.approx(0.35)
    assert f"CREPE-tiny-Fusion#1#2 ({EX.SELECTED_ON_TEST})" in rows.index
    assert choice.loc["CREPE-tiny", "last layer"] == 2
    recorded = []
    monkeypatch.setattr(EX.results, "record", lambda *a, **k: recorded.append((a, k)))
    EX.record_table3(a, {"run_group": "g1"}, dataset="d", scale="s", profile="smoke")
    assert [r[1]["params"]["paper_row"] for r in recorded] == [
        "CNN14-synthetic-standin", "CNN14-synthetic-standin-Fusion",
        f"CNN14-synthetic-standin-Fusion ({EX.SELECTED_ON_TEST})"]
    assert recorded[1][0][2] == pytest.approx({"ESC-50": 0.7, "GTZAN": 0.5})   # no Avg: not nine tasks
    assert recorded[1][1]["params"]["layers"] == "Fusion#1#2"
    assert all(r[1]["params"]["seed"] == 0 and r[1]["params"]["run_group"] == "g1" for r in recorded)
    assert set(recorded[1][1]["items"]) == {"ESC-50", "GTZAN"}


def test_seed_record_avg_items_reproduce_the_mean_of_task_accuracies():
    outs = {t: _outputs([0.1 * (i + 1), 0.5], n=10, prefix=t) for i, t in enumerate(FU.PAPER_TASKS)}
    metrics, items = EX.seed_record(outs, 0)
    assert metrics["Avg"] == pytest.approx(np.mean([0.1 * (i + 1) for i in range(9)]))
    assert metrics["SPCV2"] == pytest.approx(0.3)
    from audiorepro.results.items import normalise
    normalise(items, metrics)            # raises unless the items give the recorded values
    assert EX.seed_record(outs, 1)[0]["Avg"] == pytest.approx(0.5)
    assert R.chance_level(items["Avg"]) is None                  # no labels: no chance level
    # with each test clip's class, the chance level: task i's majority class holds i + 1 of 10
    for i, t in enumerate(FU.PAPER_TASKS):
        outs[t].labels = np.array([0] * (i + 1) + list(range(1, 10 - i)))
    items = EX.seed_record(outs, 0)[1]
    assert R.chance_level(items["SPCV2"]) == pytest.approx(0.3)
    assert outs["SPCV2"].chance() == pytest.approx(0.3)          # the resolution table's chance
    with pytest.raises(FU.FusionError, match="labels"):
        _outputs([0.5]).chance()
    assert R.chance_level(items["Avg"]) == pytest.approx(np.mean([(i + 1) / 10 for i in range(9)]))


def test_linear_eval_values_sum_to_the_per_seed_test_accuracy_and_fold_mean():
    xtr, ytr = _blobs(60, 0, 1.0)
    xva, yva = _blobs(20, 1, 1.0)
    xte, yte = _blobs(30, 2, 1.0)
    res = EX.linear_eval(xtr, ytr, xva, yva, xte, yte, 3, lrs=(1e-2,), seeds=(0, 1), epochs=10)
    chosen = res.runs[res.runs["lr"] == res.lr].set_index("seed")["test_accuracy"]
    assert res.values.shape == (2, 30)
    assert res.seed_accuracies() == pytest.approx(chosen.to_dict())
    assert res.valid_accuracy == pytest.approx(res.runs["valid_accuracy"].mean())
    # folds of unequal size: the weighted values sum to the mean of the fold accuracies
    x, y = _blobs(50, 0, 2.0)
    frame = pd.DataFrame({"clip_id": [f"c{i}" for i in range(50)], "path": "x.wav", "split": "cv",
                          "labels": [f"k{v}" for v in y], "fold": [1] * 10 + [2] * 15 + [3] * 25})
    folds = EX.evaluate_task(x, ClipTable(frame, ".", name="f"), use_folds=True, lrs=(1e-2,),
                             seeds=(0,), epochs=10, patience=5)
    assert sorted(folds.test_index.tolist()) == list(range(50))
    assert folds.values.sum() == pytest.approx(folds.accuracy)


def _records(tmp_path, monkeypatch, base_acc, fused_acc, seeds=3, n=60):
    """Per-seed table3 records of the VGGish stand-in's two rows on the nine tasks."""
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    rng = np.random.default_rng(0)

    def outs(acc):
        o = {}
        for t in FU.PAPER_TASKS:
            vals = np.zeros((seeds, n))
            for s in range(seeds):
                vals[s, rng.permutation(n)[:int(round(acc[t] * n))]] = 1.0 / n
            o[t] = EX.TaskOutputs(np.array([f"{t}-{i}" for i in range(n)]), list(range(seeds)), vals)
        return o

    base = outs(base_acc)
    fused = base if fused_acc is None else outs(fused_acc)
    for row, o in (("VGGish-synthetic-standin", base), ("VGGish-synthetic-standin-Fusion", fused)):
        EX.record_row("table3", row, o, {"run_group": "g"}, "d", "s", "smoke", "m")


def test_decide_claims_from_per_item_records(tmp_path, monkeypatch):
    # a large true gap: fusion 0.9 vs. last layer 0.3 on every task, GTZAN reversed
    base = {t: 0.3 for t in FU.PAPER_TASKS} | {"GTZAN": 0.9}
    fused = {t: 0.9 for t in FU.PAPER_TASKS} | {"GTZAN": 0.3}
    _records(tmp_path, monkeypatch, base, fused)
    ids = ["vggish-standin-fusion-avg", "vggish-standin-gtzan-degrades", "cnn14-standin-fusion-avg"]
    out = EX.decide_claims("smoke", notebook="fusion/02_table3", claim_ids=ids).set_index("claim")
    assert out.loc["vggish-standin-fusion-avg", "verdict"] == "reproduced"
    assert out.loc["vggish-standin-fusion-avg", "effect"] == pytest.approx(
        np.mean([0.6] * 8 + [-0.6]))
    assert out.loc["vggish-standin-fusion-avg", "n seeds"] == 3
    assert out.loc["vggish-standin-gtzan-degrades", "verdict"] == "reproduced"
    assert out.loc["cnn14-standin-fusion-avg", "verdict"] == "not yet measured"
    from audiorepro import results
    stored = results.claims_table(["fusion"]).set_index("claim_id")
    assert stored.loc["vggish-standin-fusion-avg", "notebook"] == "fusion/02_table3"


def test_decide_claims_identical_rows_are_inconclusive(tmp_path, monkeypatch):
    _records(tmp_path, monkeypatch, {t: 0.5 for t in FU.PAPER_TASKS}, None)
    out = EX.decide_claims("smoke", claim_ids=["vggish-standin-fusion-avg",
                                               "vggish-standin-gtzan-degrades"]).set_index("claim")
    assert set(out["verdict"]) == {"inconclusive"}
    assert (out["effect"] == 0).all() and (out["lo"] <= 0).all() and (out["hi"] >= 0).all()


def _layer_run(label, weights, late_peak_last: bool, n=40):
    """Layers 1-3; ESC-50 (D_L) and SPCV2 (D_M) with their accuracy peaks placed by hand."""
    setup = EX.BackboneSetup(label, "crepe_tiny", weights=weights)
    acc = {"ESC-50": [0.3, 0.5, 0.9] if late_peak_last else [0.6, 0.6, 0.6],
           "SPCV2": [0.3, 0.9, 0.4] if late_peak_last else [0.6, 0.6, 0.6]}
    rng = np.random.default_rng(1)
    outputs, rows = {}, []
    for t, accs in acc.items():
        order = rng.permutation(n)
        for layer, a in zip((1, 2, 3), accs):
            vals = np.zeros((2, n))
            vals[:, order[:int(a * n)]] = 1.0 / n
            outputs[(t, layer)] = EX.TaskOutputs(np.array([f"{t}{i}" for i in range(n)]), [0, 1], vals)
            rows.append({"task": t, "layer": layer, "accuracy": a, "valid_accuracy": a})
    return EX.LayerwiseRun(setup, pd.DataFrame(rows), outputs)


def test_layer_claim_decided_by_bootstrap_of_peak_positions(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    clear = _layer_run("A-synthetic-standin", "synthetic-pretrained", True)
    b = EX.layer_trend_bootstrap(clear)
    assert b["effect"] == pytest.approx(1.0)      # ESC-50 peaks at position 2, SPCV2 at 1
    assert b["verdict"] == "reproduced" and b["n_items"] == 40 and b["n_seeds"] == 2
    flat = _layer_run("B-synthetic-standin", "synthetic-pretrained", False)
    assert EX.layer_trend_bootstrap(flat)["effect"] == 0.0
    out = EX.decide_claims("smoke", claim_ids=["standin-layers-task-dependent",
                                               "layers-task-dependent"],
                           layerwise={"A": clear, "B": flat}, dataset="d", scale="s")
    # every stand-in must show it; B's identical layers cannot: not reproduced or inconclusive
    assert list(out["claim"]) == ["standin-layers-task-dependent"]   # no CREPE run: not decided
    assert out["verdict"].iloc[0] != "reproduced"
    # a random-initialisation control never counts for a claim
    control = EX.BackboneSetup("C-random", "crepe_tiny", weights="random")
    assert not any(rule(control) for rule in EX.LAYER_CLAIMS.values())
    assert EX.LAYER_CLAIMS["layers-task-dependent"](EX.BackboneSetup("C", "crepe_tiny"))
    official = EX.LAYER_CLAIMS["paper-layers-task-dependent"]   # the paper's three models only
    assert official(EX.BackboneSetup("VGGish", "vggish_harritaylor_core"))
    assert not official(EX.BackboneSetup("C", "crepe_tiny"))
    assert not official(EX.BackboneSetup("V", "vggish_harritaylor_core", weights="synthetic-pretrained"))
    only = EX.decide_claims("smoke", claim_ids=["standin-layers-task-dependent"],
                            layerwise={"A": clear}, dataset="d", scale="s")
    assert only["verdict"].iloc[0] == "reproduced"


def test_plot_fusion_gain_draws_one_bar_per_task_and_backbone():
    import matplotlib

    matplotlib.use("Agg")
    a = _comparison("A", "random", {"ESC-50": 0.5, "GTZAN": 0.6}, {"ESC-50": 0.7, "GTZAN": 0.5})
    b = _comparison("B", "random", {"ESC-50": 0.2, "GTZAN": 0.4}, {"ESC-50": 0.3, "GTZAN": 0.5})
    ax = FI.plot_fusion_gain(EX.table3_frames([a, b])[0], "smoke")
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == sorted([20.0, -10.0, 10.0, 10.0])


def test_cached_layerwise_outputs_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    x, y = _blobs(40, 0, 4.0)
    frame = pd.DataFrame({"clip_id": [f"c{i}" for i in range(40)], "path": "x.wav",
                          "split": (["train"] * 6 + ["valid"] * 2 + ["test"] * 2) * 4,
                          "labels": [f"k{v}" for v in y]})
    tables = {"ESC-50": ClipTable(frame, ".", name="blobs")}
    setup = EX.BackboneSetup("b", "crepe_tiny", weights="random")
    embs = {"ESC-50": {1: x, 2: -x}}
    kw = dict(lrs=(1e-2,), seeds=(0, 1), epochs=10, patience=5)
    first, outs = EX.cached_layerwise_outputs(setup, tables, embeddings=embs, eval_kw=kw)
    again, outs2 = EX.cached_layerwise_outputs(setup, tables, embeddings={}, eval_kw=kw)
    assert list(again["layer"]) == [1, 2] and "valid_accuracy" in again.columns
    o, o2 = outs[("ESC-50", 2)], outs2[("ESC-50", 2)]
    assert o2.ids.tolist() == [f"c{i}" for i in range(40) if i % 10 >= 8] == o.ids.tolist()
    assert np.array_equal(o.values, o2.values) and o2.seeds == [0, 1]
    assert o2.accuracy() == pytest.approx(float(first.set_index("layer").loc[2, "accuracy"]))


def test_fold_split_validates_on_a_random_tenth_of_the_training_folds():
    folds = np.repeat([1, 2, 3, 4, 5], 40)
    tr, va, te = EX.fold_split(folds, 3)
    assert te.sum() == 40 and (folds[te] == 3).all()
    assert va.sum() == 16 and not (va & te).any() and not (va & tr).any()   # 10 % of 160
    assert (tr | va | te).all() and set(folds[va]) <= {1, 2, 4, 5} and len(set(folds[va])) > 1
    assert np.array_equal(EX.fold_split(folds, 3)[1], va)                 # same on every call
    assert not np.array_equal(EX.fold_split(folds, 4)[1] & (folds != 3), va)
    with pytest.raises(FU.FusionError, match="fold 1"):
        EX.fold_split(np.array([1, 1, 2]), 1)


def test_compare_fusion_cnn14_baseline_is_fc1_and_layers_are_chosen_on_validation(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path / "home"))
    table = _tone_table(tmp_path, n_per_class=8)
    tables = {"ESC-50": table, "SPCV2": table}
    setup = EX.BackboneSetup("CNN14-random", "panns_cnn14_16k", weights="random", scale=0.125,
                             seconds=0.5)
    kw = dict(lrs=(1e-2,), seeds=(0, 1), epochs=5, patience=2)
    seen = []
    real = EX.choose_fusion_layers
    monkeypatch.setattr(EX, "choose_fusion_layers", lambda acc, *a, **k: seen.append(acc) or real(acc, *a, **k))
    comp = EX.compare_fusion(setup, tables, kw)
    base = comp.rows[0]
    assert base.selection == EX.FC1_BASELINE and base.layers is None
    frame = EX.cached_layerwise(EX.replace(setup, taps=["embedding"]), tables, eval_kw=kw)
    assert list(frame["layer"].unique()) == ["embedding"]
    assert base.accuracy()["ESC-50"] == pytest.approx(
        float(frame.set_index("task").loc["ESC-50", "accuracy"]))
    # the first choice is made on the validation matrix, the second (shown only) on test
    assert seen[0].equals(comp.run.acc_valid) and seen[1].equals(comp.run.acc)
    assert (comp.m, comp.l) == real(comp.run.acc_valid)[:2]
    assert [r.row for r in comp.rows] == ["CNN14-random", "CNN14-random-Fusion",
                                         f"CNN14-random-Fusion ({EX.SELECTED_ON_TEST})"]
    assert all(set(r.outputs) == {"ESC-50", "SPCV2"} for r in comp.rows)
    assert EX.paper_layers(EX.BackboneSetup("CNN14", "panns_cnn14_16k"), range(1, 7)) == (3, 6)
    assert EX.paper_layers(setup, range(1, 7)) is None          # not the official model


def test_compare_fusion_ast_baseline_is_evars_token_mean_and_layers_are_cls(tmp_path, monkeypatch):
    # EVAR's AST representation (the Table III baseline) is the mean of the [CLS] and
    # distillation tokens of the last layer; the layers fused are [CLS] tokens (the paper)
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path / "home"))
    table = _tone_table(tmp_path, n_per_class=8)
    tables = {"ESC-50": table, "SPCV2": table}
    setup = EX.BackboneSetup("AST-random", "ast_base384_f10_t10_527", weights="random",
                             scale="cpu", seconds=0.5)
    kw = dict(lrs=(1e-2,), seeds=(0,), epochs=3, patience=2)
    comp = EX.compare_fusion(setup, tables, kw)
    base = comp.rows[0]
    assert base.selection == EX.AST_BASELINE and comp.last == 4
    evar = EX.cached_layerwise(EX.replace(setup, taps=[4], token_mode="mean_cls_dist"), tables,
                               eval_kw=kw)
    assert base.accuracy()["ESC-50"] == pytest.approx(
        float(evar.set_index("task").loc["ESC-50", "accuracy"]))
    assert list(comp.run.acc.index) == [2, 3, 4]                 # layers 2.. (the paper)
    with pytest.raises(EX.FusionError, match="token_mode"):
        EX.BackboneSetup.from_dict({"label": "a", "backbone": "ast_base384_f10_t10_527",
                                    "token_mode": "patches"})


def test_shortcut_caveats_name_only_real_shortcuts_of_the_claims_tasks():
    probes = pd.DataFrame([
        {"paper task": "GTZAN", "shortcut": "level", "advantage": 0.3, "lo": 0.1, "hi": 0.5,
         "verdict": "shortcut"},
        {"paper task": "VC1", "shortcut": "speaker", "verdict": "is the label"},
        {"paper task": "SPCV2", "shortcut": "duration", "advantage": 0.0, "lo": -0.1, "hi": 0.1,
         "verdict": "no shortcut found"}])
    assert EX.shortcut_caveats(probes, "SPCV2") == [] and EX.shortcut_caveats(probes, "VC1") == []
    (gtzan,) = EX.shortcut_caveats(probes, "GTZAN")
    assert "GTZAN data have a shortcut (level: accuracy +0.30 [+0.10, +0.50]" in gtzan
    assert EX.shortcut_caveats(probes, "Avg") == [gtzan]          # the average holds GTZAN
    assert EX.shortcut_caveats(None, "Avg") == [] and EX.shortcut_caveats(probes.iloc[:0], "Avg") == []


def test_user_task_reads_a_clip_table_keeps_every_class_and_refuses_paper_names(tmp_path):
    rows = [{"clip_id": f"{c}{i}", "path": f"{c}{i}.wav", "labels": c,
             "split": ["train", "train", "train", "valid", "test"][i % 5]}
            for c in ("cat", "dog", "owl") for i in range(10)]
    csv = tmp_path / "mine.csv"
    ClipTable(pd.DataFrame(rows), tmp_path, name="mine").write(csv)
    tables = D.user_task(csv, "birds-and-pets", {"train": 2, "valid": 1, "test": 3})
    table = tables["birds-and-pets"]
    frame = table.frame
    # caps below the number of classes are raised to it: every class keeps a clip per split
    assert frame.groupby("split")["labels"].nunique().to_dict() == {"test": 3, "train": 3, "valid": 3}
    assert (frame["split"] == "test").sum() == 3 and (frame["split"] == "train").sum() == 3
    assert D.notebook_tasks(["ESC-50"], None, clip_table=csv, task_name="x")["x"].num_classes == 3
    with pytest.raises(ValueError, match="task key of the paper"):
        D.user_task(csv, "ESC-50")
    with pytest.raises(ValueError, match="task_name"):
        D.user_task(csv, "")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        D.user_task(tmp_path / "nope.csv", "x")
    multi = pd.DataFrame(rows).assign(labels=lambda f: f["labels"].where(f.index != 4, "cat;dog"))
    ClipTable(multi, tmp_path, name="m").write(tmp_path / "multi.csv")
    with pytest.raises(Exception, match="row 4 .*2 labels"):
        D.user_task(tmp_path / "multi.csv", "x")


def test_fusion_layers_for_a_users_single_task_uses_the_rule_with_every_task_in_both_roles():
    acc = pd.DataFrame({"mine": [0.9, 0.5, 0.7, 0.6]}, index=[1, 2, 3, 4])
    assert EX.fusion_layers(acc) == (1, 3)        # L: best after the first; M: best before L
    paper = pd.DataFrame({"ESC-50": [0.1, 0.2, 0.9], "SPCV2": [0.2, 0.8, 0.1]}, index=[1, 2, 3])
    assert EX.fusion_layers(paper) == EX.choose_fusion_layers(paper)[:2] == (2, 3)


def test_checkpoint_setup_recognises_official_files_and_names_the_paper_row(tmp_path):
    from audiorepro.backbones.official import OFFICIAL_CHECKPOINTS
    f = tmp_path / OFFICIAL_CHECKPOINTS["panns_cnn14_16k"].file_name
    f.write_bytes(b"")                       # the name decides; the builder reads the file
    s = EX.checkpoint_setup(f, seconds=2.0)
    assert (s.label, s.backbone, s.weights, s.seconds) == ("CNN14", "panns_cnn14_16k", "pretrained", 2.0)
    assert s.build_kw == {"checkpoint": str(f), "spec_augment": False}
    assert EX.paper_layers(s, range(1, 7)) == (3, 6)     # its Fusion#3#6 row is the paper's
    with pytest.raises(FU.FusionError, match="not found"):
        EX.checkpoint_setup(tmp_path / "missing.pth")
    other = tmp_path / "my_model.pth"
    other.write_bytes(b"")
    with pytest.raises(FU.FusionError, match="my_model.pth"):
        EX.checkpoint_setup(other)


# ------------------------------------------------------------------------------ random-init controls
def test_random_controls_are_untrained_twins_of_the_trained_setups():
    trained = [EX.BackboneSetup("CNN14-standin", "panns_cnn14_16k", weights="synthetic-pretrained",
                                seconds="evar", crops="evar"),
               EX.BackboneSetup("AST", "ast_base384_f10_t10_527", scale=0.5,
                                build_kw={"checkpoint": "ast.pth"}),
               EX.BackboneSetup("X-random", "crepe_tiny", weights="random")]
    controls = EX.random_controls(trained, seed=3)
    assert [c.label for c in controls] == ["CNN14-standin (random init)", "AST (random init)"]
    cnn, ast = controls
    assert cnn.weights == ast.weights == "random" and cnn.seed == ast.seed == 3
    assert cnn.scale == "cpu"                       # the stand-in's size, not the full model
    assert ast.scale == 0.5 and "checkpoint" not in ast.build_kw
    from audiorepro.backbones import pretrain
    assert (cnn.seconds, cnn.crops) == ("evar", "evar")
    assert cnn.build_kw == pretrain.pretrain_config("panns_cnn14_16k", "cpu", "book")["build"]
    assert cnn.weights_id != trained[0].weights_id
    ast_standin = EX.BackboneSetup("AST-standin", "ast_base384_f10_t10_527", weights="synthetic-pretrained")
    (ast_control,) = EX.random_controls([ast_standin])
    assert ast_control.build_kw["input_tdim"] == 200          # the stand-in's input length, not 1024


def _control_pair(trained_acc, random_acc, n=60, seed=0):
    """A trained run and its control on one task, two layers; layer 2 wins on validation."""
    rng = np.random.default_rng(seed)
    runs = {}
    for label, weights, acc in (("A", "synthetic-pretrained", trained_acc),
                                ("A (random init)", "random", random_acc)):
        outputs, rows = {}, []
        for layer, a in ((1, 0.1), (2, acc)):
            vals = np.zeros((2, n))
            vals[:, rng.permutation(n)[:int(round(a * n))]] = 1.0 / n
            outputs[("ESC-50", layer)] = EX.TaskOutputs(np.array([f"c{i}" for i in range(n)]), [0, 1], vals)
            rows.append({"task": "ESC-50", "layer": layer, "accuracy": a, "valid_accuracy": a})
        runs[label] = EX.LayerwiseRun(EX.BackboneSetup(label, "crepe_tiny", weights=weights),
                                      pd.DataFrame(rows), outputs)
    return runs


@pytest.mark.parametrize("trained, random_, reading", [(0.9, 0.3, "pre-training helps"),
                                                       (0.3, 0.9, "random as good or better"),
                                                       (0.5, 0.5, "cannot tell")])
def test_pretraining_gain_table_reads_the_paired_interval(trained, random_, reading):
    table = EX.pretraining_gain_table(_control_pair(trained, random_))
    assert len(table) == 1
    row = table.iloc[0]
    assert row["trained: layer (valid)"] == row["random: layer (valid)"] == "#2"
    assert row["difference"] == pytest.approx(trained - random_)
    assert row["lo"] <= row["difference"] <= row["hi"] and row["reading"] == reading
    assert row["n_items"] == 60 and row["n_seeds"] == 2
    curves = EX.control_curves(_control_pair(trained, random_))
    assert list(curves) == ["A"]
    assert curves["A"][0].tolist() == pytest.approx([0.1, trained])
    assert curves["A"][1].tolist() == pytest.approx([0.1, random_])


def test_pretraining_gain_table_without_controls_is_empty():
    runs = _control_pair(0.9, 0.3)
    del runs["A (random init)"]
    assert EX.pretraining_gain_table(runs).empty and EX.control_curves(runs) == {}


# ------------------------------------------------------------------------------ level equalisation
def test_equalise_levels_removes_a_level_shortcut_and_keeps_the_layout(tmp_path, monkeypatch):
    import soundfile as sf

    from audiorepro.data.leakage import clip_statistics, shortcut_probes
    from audiorepro.papers.fusion.data import equalise_levels

    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path / "home"))
    src = tmp_path / "sources" / "pkg"
    src.mkdir(parents=True)
    (tmp_path / "tasks").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(80):
        label = "ab"[i % 2]
        amp = (0.3 if label == "a" else 0.03) * rng.uniform(0.8, 1.2)   # the level names the label
        sf.write(src / f"c{i}.wav", (amp * rng.standard_normal(1600)).astype("float32"), 8000)
        rows.append({"clip_id": f"c{i}", "path": f"../sources/pkg/c{i}.wav",
                     "split": "test" if i >= 48 else "train", "labels": label})
    rows[0].update(start_s=0.05, duration_s=0.1)            # a segment becomes a whole file
    sf.write(src / "c1.wav", np.r_[np.zeros(1590), 0.9, -0.9, np.zeros(8)].astype("float32"), 8000)
    table = ClipTable(pd.DataFrame(rows), tmp_path / "tasks", name="levels")
    before = shortcut_probes(table, shortcuts=("level",)).set_index("shortcut")
    assert before.loc["level", "verdict"] == "shortcut"
    even = equalise_levels(table, level_db=-20.0, peak=0.99)
    stats = clip_statistics(even)
    assert "start_s" not in even.frame.columns and stats["duration_s"].iloc[0] == pytest.approx(0.1)
    # the click of c1 (two samples of 0.9 in 1600: RMS 0.9 x sqrt(2/1600)) cannot reach -20 dB
    # RMS under the 0.99 ceiling; the whole table goes to the level it can reach
    click_level = 20 * np.log10(0.99 * np.sqrt(2 / 1600))
    assert D.common_level_db(table, -20.0, 0.99) == pytest.approx(click_level, abs=1e-3)
    assert stats["level_db"].min() == pytest.approx(click_level, abs=0.05)
    assert stats["level_db"].max() == pytest.approx(click_level, abs=0.05)
    c1, _ = sf.read(even.audio_path(1))
    assert np.abs(c1).max() == pytest.approx(0.99, abs=1e-3)
    assert even.frame["path"].iloc[2] == "../sources/pkg/c2.wav.flac"     # same relative layout
    assert even.frame["labels"].tolist() == table.frame["labels"].tolist()
    # without the click every clip reaches -20 dB
    rest = ClipTable(table.frame.drop(index=1).reset_index(drop=True), table.root, name="rest")
    assert D.common_level_db(rest, -20.0, 0.99) == -20.0
    after = shortcut_probes(even, shortcuts=("level",)).set_index("shortcut")
    assert after.loc["level", "verdict"] == "no shortcut found"
    stamp = even.audio_path(2).stat().st_mtime_ns
    assert equalise_levels(table, level_db=-20.0).audio_path(2).stat().st_mtime_ns == stamp  # reused


# ------------------------------------------------------------------------------ simulated sessions
def _speaker_table(tmp_path, n_per=12, speakers=("p", "q", "r")):
    src = tmp_path / "sources" / "voices"
    src.mkdir(parents=True)
    (tmp_path / "tasks").mkdir()
    rng = np.random.default_rng(1)
    rows = []
    for spk in speakers:
        for i in range(n_per):
            split = "test" if i < 3 else "valid" if i < 5 else "train"
            name = f"{spk}{i}.wav"
            sf.write(src / name, (0.1 * rng.standard_normal(8000)).astype("float32"), 16000)
            rows.append({"clip_id": f"{spk}-{i}", "path": f"../sources/voices/{name}", "split": split,
                         "labels": spk, "speaker": spk})
    return ClipTable(pd.DataFrame(rows), tmp_path / "tasks", name="speakers")


def test_simulated_sessions_give_every_test_clip_a_channel_never_heard_with_its_speaker(tmp_path, monkeypatch):
    from audiorepro.data.leakage import shortcut_probes
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path / "home"))
    table = _speaker_table(tmp_path)
    out = D.simulate_sessions(table, seed=0)
    f = out.frame
    assert len(out) == len(table) and f["labels"].tolist() == table.frame["labels"].tolist()
    for spk, grp in f.groupby("speaker"):
        per = grp.groupby("split")["session"].nunique()
        assert per["test"] == 1 and per["valid"] == 1 and 2 <= per["train"] <= 3
        train_sessions = set(grp.loc[grp["split"] == "train", "session"])
        assert not train_sessions & set(grp.loc[grp["split"] == "test", "session"])
    # every session has its own channel, a function of the session name alone
    channels = {s: D.session_channel(s) for s in f["session"].unique()}
    assert len({tuple(c.values()) for c in channels.values()}) == len(channels)
    assert D.session_channel("p/test-0") == D.session_channel("p/test-0") != D.session_channel("p/test-0", seed=1)
    # the audio changed, its length did not; the copy is reused on a second call
    a, _ = sf.read(table.audio_path(0))
    b, _ = sf.read(out.audio_path(0))
    assert a.shape == b.shape and not np.allclose(a, b, atol=1e-3)
    stamp = out.audio_path(0).stat().st_mtime_ns
    assert D.simulate_sessions(table, seed=0).audio_path(0).stat().st_mtime_ns == stamp
    # the session probe: test sessions are unseen, so it can only answer the majority
    probe = shortcut_probes(out, shortcuts=("session",)).set_index("shortcut")
    assert probe.loc["session", "advantage"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="no speaker column"):
        D.simulate_sessions(ClipTable(table.frame.drop(columns=["speaker"]), table.root, name="x"))


def test_apply_channel_keeps_the_level_and_band_limits_a_tone_above_its_cutoff():
    sr = 16000
    t = torch.arange(sr) / sr
    mix = (torch.sin(2 * np.pi * 500 * t) + torch.sin(2 * np.pi * 7000 * t)).unsqueeze(0)
    dry = {"highpass_hz": 60.0, "lowpass_hz": 3000.0, "eq_hz": 1500.0, "eq_db": 0.0,
           "rt60_s": 0.1, "drr_db": 40.0, "snr_db": 80.0}
    out = D.apply_channel(mix, sr, dry)
    assert out.shape == mix.shape
    assert float(out.square().mean().sqrt()) == pytest.approx(float(mix.square().mean().sqrt()), rel=1e-4)
    spectrum = torch.fft.rfft(out[0]).abs()               # 1 Hz bins
    # a second-order low-pass at 3 kHz: 7 kHz is ~15 dB down against 500 Hz (at least 10 dB)
    assert 20 * np.log10(float(spectrum[500] / spectrum[7000])) > 10
    # 1-D input keeps its shape; the same seed gives the same noise
    assert D.apply_channel(mix[0], sr, dry, seed=3).shape == (sr,)
    assert torch.equal(D.apply_channel(mix[0], sr, dry, seed=3), D.apply_channel(mix[0], sr, dry, seed=3))


# ------------------------------------------------------------------------------ clip lengths per task
def test_backbone_setup_seconds_per_task():
    setup = EX.BackboneSetup.from_dict({"label": "A", "backbone": "crepe_tiny",
                                        "seconds": {"default": 1, "GTZAN": 4.0}})
    assert setup.seconds_for("GTZAN") == 4.0 and setup.seconds_for("ESC-50") == 1.0
    assert setup.length_text() == "1 s clips (GTZAN 4 s)"
    assert EX.BackboneSetup("B", "crepe_tiny", seconds=2.0).length_text() == "2 s clips"
    assert EX.BackboneSetup("B", "crepe_tiny", seconds={"default": 2.0}).length_text() == "2 s clips"
    with pytest.raises(EX.FusionError, match="no 'default'"):
        EX.BackboneSetup.from_dict({"label": "A", "backbone": "crepe_tiny", "seconds": {"GTZAN": 4.0}})
    with pytest.raises(EX.FusionError, match="bad"):
        EX.BackboneSetup.from_dict({"label": "A", "backbone": "crepe_tiny",
                                    "seconds": {"default": 1.0, "GTZAN": -1}})


def test_a_fixed_input_ast_frames_a_longer_clip_into_windows():
    torch.manual_seed(0)
    model = build_backbone("ast_base384_f10_t10_527", scale="cpu", input_tdim=100).eval()
    w = model.input_samples
    assert w == 400 + 99 * 160                      # Kaldi: window + (frames - 1) x shift
    wave = torch.randn(1, int(2.6 * w))
    with torch.no_grad():
        feats = FU.layer_features(model, wave, [2])[2]
        first = FU.layer_features(model, wave[:, :w], [2])[2]
        second = FU.layer_features(model, wave[:, w:2 * w], [2])[2]
        # 2.6 windows: two whole windows and a tail of 0.6 (kept, padded by the front end)
        assert feats.shape[2] == 3
        assert torch.allclose(feats[..., :1], first, atol=1e-5) and torch.allclose(feats[..., 1:2], second, atol=1e-5)
        # a tail under half a window is dropped
        assert FU.layer_features(model, torch.randn(1, int(2.3 * w)), [2])[2].shape[2] == 2
        # a clip that fits one window is one step, as before
        assert FU.layer_features(model, wave[:, : w // 2], [2])[2].shape[2] == 1


def test_ast_layers_are_the_cls_token_of_layers_2_to_the_last_as_the_paper():
    # Sec. IV-A3: "layer 2 to 12 outputs using 768-d [CLS] token embeddings"
    torch.manual_seed(0)
    model = build_backbone("ast_base384_f10_t10_527", scale="cpu", input_tdim=100).eval()
    assert FU.default_taps(model) == list(range(2, model.depth + 1))
    wave = torch.randn(2, model.input_samples)
    with torch.no_grad():
        feats = FU.layer_features(model, wave, [2, 3])
        cls = model.forward_features(model.prepare(wave), taps=[2, 3], token_mode="cls")
        mean = model.forward_features(model.prepare(wave), taps=[2], token_mode="mean_cls_dist")
    for t in (2, 3):                                    # (B, D) repeated over T_o = 1
        assert feats[t].shape == (2, cls[t].shape[1], 1)
        assert torch.allclose(feats[t][..., 0], cls[t])
    assert not torch.allclose(feats[2][..., 0], mean[2])
    # a CNN keeps every layer
    cnn = build_backbone("panns_cnn14_16k", scale="cpu")
    assert FU.default_taps(cnn)[0] == 1


@pytest.mark.parametrize("n_train, batch", [(250, 200), (40, 40)])
def test_linear_eval_trains_as_evar_does(monkeypatch, n_train, batch):
    """EVAR's linear evaluation: one linear layer on standardised embeddings, Adam with weight
    decay 1e-8, batch min(200, N), at most 200 epochs, early stopping on validation accuracy
    (patience 20) with the best weights restored."""
    import inspect
    seen = []
    real_fit = EX.fit

    def spy(model, *args, config, **kw):
        seen.append((model, dict(config)))
        return real_fit(model, *args, config={**config, "epochs": 1}, **kw)
    monkeypatch.setattr(EX, "fit", spy)
    rng = np.random.default_rng(0)
    x = {s: rng.standard_normal((n, 6)).astype(np.float32) for s, n in (("tr", n_train), ("va", 10), ("te", 10))}
    y = {s: rng.integers(0, 3, len(v)) for s, v in x.items()}
    EX.linear_eval(x["tr"], y["tr"], x["va"], y["va"], x["te"], y["te"], 3, lrs=(1e-3,), seeds=(0,), device="cpu")
    model, cfg = seen[0]
    assert isinstance(model, torch.nn.Linear) and (model.in_features, model.out_features) == (6, 3)
    assert cfg["optimizer"] == "adam" and cfg["weight_decay"] == 1e-8 and cfg["batch_size"] == batch
    assert cfg["epochs"] == 200 and cfg["patience"] == 20 and cfg["restore_best"] is True
    assert cfg["monitor"] == "accuracy" and cfg["mode"] == "max"
    defaults = {k: v.default for k, v in inspect.signature(EX.linear_eval).parameters.items()}
    assert (defaults["weight_decay"], defaults["max_batch"], defaults["epochs"], defaults["patience"]) == (1e-8, 200, 200, 20)
