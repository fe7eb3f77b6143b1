"""THGCL chapter: graph construction, edge weights, THGN, losses, node features, runs (no files outside the repository)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from audiorepro.papers.thgcl import data as D
from audiorepro.papers.thgcl import experiments as E
from audiorepro.papers.thgcl import model as T
from audiorepro.backbones.counting import count_parameters


# ------------------------------------------------------------------------------- graph
def test_temporal_neighbours_interior_and_border_shift():
    idx, ok = T.temporal_neighbours(20, span=2, dilation=3)
    assert idx.shape == (20, 5) and ok.all()
    assert idx[10].tolist() == [4, 7, 10, 13, 16]
    # borders: window shifted by whole dilation steps, same degree (VAED/TMac rule)
    assert idx[0].tolist() == [0, 3, 6, 9, 12]
    assert idx[1].tolist() == [1, 4, 7, 10, 13]
    assert idx[19].tolist() == [7, 10, 13, 16, 19]
    assert idx[17].tolist() == [5, 8, 11, 14, 17]


def test_temporal_neighbours_short_graph_masks_out_of_range():
    idx, ok = T.temporal_neighbours(10, span=2, dilation=3)  # window 13 > 10 nodes
    assert set(idx[0][ok[0]].tolist()) == {0, 3, 6, 9}
    assert set(idx[1][ok[1]].tolist()) == {1, 4, 7}  # shifted back left past 0: -5, -2 masked
    assert ok.sum(1).tolist() == [4, 3, 3] * 3 + [4]


def test_cross_neighbours_time_matching():
    idx, ok = T.cross_neighbours(37, 40, cross_span=3, audio_hop_s=0.25, video_chunk_s=0.25)
    assert idx[0].tolist() == [0, 1, 2] and idx[5].tolist() == [5, 6, 7]
    assert idx[39].tolist() == [34, 35, 36]  # kept inside [0, P_a)
    idx2, _ = T.cross_neighbours(10, 40, 3, audio_hop_s=1.0, video_chunk_s=0.25)
    assert idx2[8].tolist() == [2, 3, 4]  # video t = 2.0 s -> audio node 2


def test_graph_edge_counts_paper_sizes():
    g = T.build_graph(101, 40, T.GraphConfig())
    e = g.num_edges()
    assert e["audio-audio"] == 101 * 13  # span 6 -> 13 neighbours incl. self
    assert e["video-video"] == 40 * 9  # span 4 -> 9
    assert e["video-audio"] == 40 * 3
    assert g.cross_mask.shape == (101, 40)


def test_gaussian_weights_eq1_hand_computed():
    g = T.build_graph(20, 8, T.GraphConfig(audio_span=2, audio_dilation=3))
    # node 10: neighbours 4..16, Pmax - Pmin = 12 -> w(10, 16) = exp(-36 / (2 * 13^2))
    assert g.audio_gauss[10, 16].item() == pytest.approx(math.exp(-36 / (2 * 169)), rel=1e-6)
    assert g.audio_gauss[10, 10].item() == pytest.approx(1.0)
    assert g.audio_gauss[10, 11].item() == 0.0  # not an edge
    w = g.audio_gauss[10, g.audio_mask[10]]
    assert torch.all(w[:2] < w[2]) and torch.all(w[3:] < w[2])  # peaks at the node itself


def test_hawkes_weights_eq2_hand_computed_and_decay():
    g = T.build_graph(37, 40, T.GraphConfig())
    # video 5 -> audio 5, 6, 7; R = 2: terms (3 - d) / 3
    assert g.cross_term[5:8, 5].tolist() == pytest.approx([1.0, 2 / 3, 1 / 3])
    w = T.hawkes_weights(g.cross_term, g.cross_mask, tau=0.5, xi=0.5)
    expected = 1 / (1 + math.exp(-(1.0 + 2 / 3))) / 0.5  # log(.5)/log(.5) = 1
    assert w[6, 5].item() == pytest.approx(expected, rel=1e-5)
    assert w[5, 5] > w[6, 5] > w[7, 5]  # decays with elapsed time
    assert w[20, 5].item() == 0.0
    xi = torch.rand(4, 37, 40)
    wb = T.hawkes_weights(g.cross_term, g.cross_mask, 1.0, xi)
    assert wb.shape == (4, 37, 40)
    assert torch.all(wb[:, g.cross_mask] > 0.5) and torch.all(wb[:, ~g.cross_mask] == 0)


def test_normalize_adjacency_symmetric():
    a = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    n = T.normalize_adjacency(a)
    assert n[0, 1].item() == pytest.approx(1 / math.sqrt(2 * 1))
    assert n[0, 0].item() == pytest.approx(1 / 2)


def test_bad_graph_config_names_parameter():
    with pytest.raises(T.THGCLError, match="intra_kernel"):
        T.GraphConfig(intra_kernel="linear")
    with pytest.raises(T.THGCLError, match="audio_span"):
        T.GraphConfig(audio_span=0)


# ------------------------------------------------------------------------------- model
def _model(**kw):
    torch.manual_seed(0)
    return T.THGN(5, 12, 16, audio_dim=8, video_dim=24, hidden=16, num_layers=2, embed_dim=8,
                  graph=T.GraphConfig(audio_span=2, video_span=2, audio_dilation=1, video_dilation=2,
                                      **kw))


def test_thgn_shapes_and_batch_independence():
    m = _model().eval()
    a, v = torch.randn(6, 12, 8), torch.randn(6, 16, 24)
    out = m(a, v)
    assert out["logits"].shape == (6, 5) and out["z_audio"].shape == (6, 16)
    assert out["z_video"].shape == (6, 16)
    # batched, no cross-clip leakage: clip 2 alone gives the same logits
    single = m(a[2:3], v[2:3])["logits"]
    assert torch.allclose(single, out["logits"][2:3], atol=1e-5)


def test_thgn_video_reaches_audio_only_through_cross_edges():
    m = _model(cross_kernel="gaussian").eval()
    a, v = torch.randn(2, 12, 8), torch.randn(2, 16, 24)
    base = m(a, v)["z_audio"]  # the pooled audio nodes (no projection head by default)
    changed = m(a, v + 1.0)["z_audio"]
    assert not torch.allclose(base, changed)
    with torch.no_grad():
        for gat in m.gat_av:
            gat.lin_src.weight.zero_()
    assert torch.allclose(m(a, v)["z_audio"], m(a, v + 1.0)["z_audio"])
    # ... while the paper's graph embedding (both modalities) still sees the video nodes
    assert not torch.allclose(m(a, v)["graph_embedding"], m(a, v + 1.0)["graph_embedding"])


def test_thgn_readout_pools_both_modalities_as_the_paper():
    m = _model().eval()
    with torch.no_grad():  # a zero gate: the learnable pooling becomes the plain mean over nodes
        m.pool.gate.weight.zero_()
        m.pool.gate.bias.zero_()
    a, v = torch.randn(3, 12, 8), torch.randn(3, 16, 24)
    out = m(a, v)
    # no heads: z_audio / z_video are the per-modality graph embeddings of Eq. 4
    za, zv = out["z_audio"], out["z_video"]
    # the mean over all 12 + 16 nodes is the node-count-weighted mean of the two modality means
    assert torch.allclose(out["graph_embedding"], (12 * za + 16 * zv) / 28, atol=1e-5)
    audio_only = T.THGN(5, 12, 16, audio_dim=8, video_dim=24, hidden=16, num_layers=2, embed_dim=8,
                        graph=m.graph_config, readout="audio")
    audio_only.load_state_dict(m.state_dict())
    out_a = audio_only.eval()(a, v)
    assert torch.allclose(out_a["graph_embedding"], out_a["z_audio"])
    with pytest.raises(T.THGCLError, match="readout"):
        T.THGN(5, 12, 16, readout="video")


def test_video_only_mlp_ignores_audio():
    m = T.build_variant("video-only MLP", 5, 12, 16, audio_dim=8, video_dim=24, hidden=16).eval()
    v = torch.randn(2, 16, 24)
    assert torch.equal(m(torch.randn(2, 12, 8), v)["logits"], m(torch.zeros(2, 12, 8), v)["logits"])
    assert m(None, v)["logits"].shape == (2, 5)


def test_thgn_hawkes_random_in_training_deterministic_in_eval():
    m = _model(intra_kernel="hawkes", cross_kernel="hawkes")
    m.dropout.p = 0.0
    a, v = torch.randn(3, 12, 8), torch.randn(3, 16, 24)
    m.train()
    assert not torch.allclose(m(a, v)["logits"], m(a, v)["logits"])
    m.eval()
    assert torch.allclose(m(a, v)["logits"], m(a, v)["logits"])


def test_thgn_rejects_wrong_node_count():
    with pytest.raises(T.THGCLError, match="audio / 16 video"):
        _model()(torch.randn(2, 11, 8), torch.randn(2, 16, 24))


def test_parameter_counts_paper_size():
    thgcl = count_parameters(T.build_variant("THGCL", 33, 101, 40))["trainable"]
    tmac = count_parameters(T.build_variant("TMac-style", 33, 101, 40))["trainable"]
    # TMac layer by hand: layer 1 GCN-A 128x512, GCN-V 1024x512, GAT 1024x512 + 128x512 (+ biases,
    # attention vectors), layers 2-4: 4 x 512x512 each; one pooling gate 513; classifier 512*33+33
    per = lambda di, dv: di * 512 + 512 + dv * 512 + 512 + dv * 512 + di * 512 + 3 * 512
    expected = per(128, 1024) + 3 * per(512, 512) + 513 + 512 * 33 + 33
    assert tmac == expected
    assert 4.2e6 < tmac < 4.4e6  # the TMac architecture: ~4.35 M
    assert 3.5e6 < thgcl < 3.6e6  # input maps to d = 128 shrink the first layer


# ------------------------------------------------------------------------------- losses
def test_focal_loss_hand_values():
    logits = torch.tensor([[0.0, 2.0]])
    y = torch.tensor([[1.0, 0.0]])
    p = torch.sigmoid(torch.tensor(2.0)).item()
    expected = (0.5 * 0.25 * math.log(2) + 0.5 * p ** 2 * -math.log(1 - p)) / 2
    assert T.focal_loss(logits, y).item() == pytest.approx(expected, rel=1e-5)
    bce = F.binary_cross_entropy_with_logits(logits, y).item()
    assert T.focal_loss(logits, y, alpha=0.5, gamma=0.0).item() == pytest.approx(bce / 2, rel=1e-6)
    # summed over the 2 classes of the one clip: twice the mean over (clip, class) elements
    assert T.focal_loss(logits, y, reduction="sum_classes").item() == pytest.approx(2 * expected, rel=1e-5)
    with pytest.raises(T.THGCLError, match="reduction"):
        T.focal_loss(logits, y, reduction="sum")


def test_nt_xent_hand_value_and_alignment():
    za = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    zv = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # excluded positive: each direction = mean(logsumexp over j != i of 0 - 1/t) = -1/t
    assert T.nt_xent(za, zv, temperature=0.5).item() == pytest.approx(2 * -2.0)
    simclr = 2 * (math.log(math.exp(2.0) + 1.0) - 2.0)
    assert T.nt_xent(za, zv, 0.5, exclude_positive=False).item() == pytest.approx(simclr, rel=1e-6)
    torch.manual_seed(0)
    aligned = torch.randn(8, 4)
    assert T.nt_xent(aligned, aligned) < T.nt_xent(aligned, torch.randn(8, 4))


def test_batch_fn_adds_weighted_contrastive_term():
    m = _model(cross_kernel="gaussian")  # Gaussian everywhere: deterministic weights
    m.dropout.p = 0.0
    batch = {"audio": torch.randn(4, 12, 8), "video": torch.randn(4, 16, 24),
             "target": (torch.rand(4, 5) > 0.5).float()}
    m.train()
    total = T.make_batch_fn("focal+cl", cl_weight=0.1)(m, batch)[0]
    focal = T.make_batch_fn("focal")(m, batch)[0]
    bce = T.make_batch_fn("bce")(m, batch)[0]
    out = m(batch["audio"], batch["video"])
    fl = T.focal_loss(out["logits"], batch["target"], reduction="sum_classes")  # the default scale
    cl = T.nt_xent(out["z_audio"], out["z_video"])
    mean_fl = T.make_batch_fn("focal", focal_reduction="mean")(m, batch)[0]
    assert mean_fl.item() == pytest.approx(fl.item() / 5, rel=1e-5)  # 5 classes
    assert focal.item() == pytest.approx(fl.item(), rel=1e-5)
    assert total.item() == pytest.approx((fl + 0.1 * cl).item(), rel=1e-5)
    assert bce.item() == pytest.approx(
        F.binary_cross_entropy_with_logits(out["logits"], batch["target"]).item(), rel=1e-5)
    m.eval()  # evaluation reports the classification loss only
    assert T.make_batch_fn("focal+cl")(m, batch)[0].item() == pytest.approx(fl.item(), rel=1e-5)
    with pytest.raises(T.THGCLError, match="loss="):
        T.make_batch_fn("hinge")


# ------------------------------------------------------------------------------- features
def test_audio_segment_embeddings_shape_and_values():
    sr = 16000
    t = torch.arange(10 * sr) / sr
    wave = torch.stack([0.1 * torch.sin(2 * math.pi * 440 * t), torch.zeros(10 * sr)])
    emb = D.audio_segment_embeddings(wave, hop_s=0.25)
    assert emb.shape == (2, 37, 128)  # 998 frames: 1 + (998 - 96) // 25 = 37 segments
    assert torch.allclose(emb[1, :, :64], torch.full((37, 64), math.log(0.01)), atol=1e-5)
    assert torch.allclose(emb[1, :, 64:], torch.zeros(37, 64), atol=1e-5)  # silence: no variation
    gated = wave[0].clone()
    gated[5 * sr:] = 0.0  # tone stops at 5 s: segments straddling 5 s vary strongly in time
    g = D.audio_segment_embeddings(gated[None], hop_s=0.25)[0]
    straddle, steady = g[18, 64:].mean(), emb[0, 18, 64:].mean()  # segment 18: 4.5-5.46 s
    assert straddle > 5 * steady
    assert torch.allclose(g[:17], emb[0, :17], atol=1e-5)  # earlier segments unchanged


def test_project_visual_fixed_and_linear():
    x = np.random.default_rng(0).standard_normal((2, 40, 16)).astype(np.float32)
    p1, p2 = D.project_visual(x, 64, seed=3), D.project_visual(x, 64, seed=3)
    assert p1.shape == (2, 40, 64) and np.array_equal(p1, p2)
    assert np.allclose(D.project_visual(2 * x, 64, 3), 2 * p1, atol=1e-5)


def test_tmac_feature_file_tiny(tmp_path):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(0)
    n, classes = 20, [b"Dog", b"Car", b"Rain"]
    path = tmp_path / "AudioSet_embedds_all.h5"
    with h5py.File(path, "w") as hf:
        hf["audio"] = rng.standard_normal((n, 101, 128)).astype(np.float32)
        hf["video"] = rng.standard_normal((n, 40, 1024)).astype(np.float32)
        hf["label"] = np.array([classes[i % 3] for i in range(n)])
        hf["unique_labels"] = np.array(classes)
        hf["audio_add"] = np.array([f"a{i}".encode() for i in range(n)])
        hf["video_add"] = np.array([f"v{i}".encode() for i in range(n)])
    f = D.tmac_av_features(path)
    assert f["audio"].shape == (n, 101, 128) and f["video"].shape == (n, 40, 1024)
    assert f["target"].shape == (n, 3) and f["target"].sum() == n
    counts = {s: int((f["split"] == s).sum()) for s in ("train", "valid", "test")}
    assert sum(counts.values()) == n and counts["train"] > counts["test"] > 0
    # stratified: every class in train
    for c in range(3):
        assert f["target"][f["split"] == "train", c].sum() > 0
    m = T.build_variant("THGCL", 3, 101, 40, hidden=16, num_layers=1).eval()
    out = m(torch.as_tensor(f["audio"].rows([0, 1])), torch.as_tensor(f["video"].rows([0, 1])))
    assert out["logits"].shape == (2, 3)


def test_youtube_id_of_addresses():
    ids = frozenset({"--4gqARaEJE", "a_b-c_d-e_f"})
    assert D.youtube_id_of("/data/Dog/--4gqARaEJE_30.wav", ids) == "--4gqARaEJE"
    assert D.youtube_id_of("Y--4gqARaEJE_30.000_40.000.wav", ids) == "--4gqARaEJE"  # PANNs naming
    assert D.youtube_id_of("C:\\x\\a_b-c_d-e_f.wav", ids) == "a_b-c_d-e_f"  # an id with '_' kept whole
    assert D.youtube_id_of("audio/--4gqARaEJF.wav", ids) is None
    assert D.youtube_id_of("short.wav", ids) is None


def test_evaluation_set_split_by_hand(tmp_path):
    csv = tmp_path / "eval_segments.csv"
    csv.write_text("# Segments csv created x\n# num_ytids=2\n# YTID, start_seconds, end_seconds, positive_labels\n"
                   'AAAAAAAAAAA, 30.000, 40.000, "/m/09x0r"\nBBBBBBBBBBB, 0.000, 10.000, "/m/0bt9lr"\n')
    # 18 clips, 2 classes; clips 0 and 9 are in the evaluation list
    addresses = [f"audio/{'AAAAAAAAAAA' if i == 0 else 'BBBBBBBBBBB' if i == 9 else f'{i:011d}'}.wav"
                 for i in range(18)]
    label = np.array([0] * 9 + [1] * 9)
    split = D.evaluation_set_split(label, addresses, csv, seed=1024)
    assert list(np.flatnonzero(split == "test")) == [0, 9]
    # the other 8 clips per class: 0.7 : 0.1 = 7 : 1 -> 7 train, 1 valid per class
    for c in (0, 1):
        assert ((split == "train") & (label == c)).sum() == 7
        assert ((split == "valid") & (label == c)).sum() == 1
    with pytest.raises(D.THGCLError, match="0 of 3 clips"):
        D.evaluation_set_split(np.zeros(3, int), ["x/CCCCCCCCCCC.wav"] * 3, csv)
    with pytest.raises(D.THGCLError, match="needs tmac_file"):
        D.chapter_features(24, eval_segments=str(csv))


def test_training_learns_visual_only_signal():
    """A label carried only by the video stream is learned through the cross-modal edges."""
    rng = np.random.default_rng(0)
    n = 160
    y = rng.integers(0, 2, n)
    audio = rng.standard_normal((n, 12, 8)).astype(np.float32)
    video = rng.standard_normal((n, 16, 24)).astype(np.float32)
    video[:, :, 0] += 2.0 * y[:, None]
    feats = {"audio": audio, "video": video, "target": np.eye(2, dtype=np.float32)[y],
             "split": np.array(["train"] * 100 + ["valid"] * 20 + ["test"] * 40)}
    kw = {"hidden": 16, "num_layers": 2, "embed_dim": 8,
          "graph": {"audio_span": 2, "video_span": 2, "audio_dilation": 1, "video_dilation": 2}}
    cfg = {"epochs": 15, "batch_size": 20, "lr": 0.005, "patience": None}
    graph = E.train_variant("THGCL", feats, kw, cfg)
    audio_only = E.train_variant("audio-only MLP", feats, {"hidden": 16}, cfg)
    assert graph["test"]["AUC"] > 0.9
    assert audio_only["test"]["AUC"] < 0.8


# ------------------------------------------------------------------------------- added: encoder, uniform, helpers
def test_uniform_kernel_weights_are_the_mask():
    g = T.build_graph(19, 40, T.GraphConfig(audio_hop_s=0.48))
    for fam in ("audio", "video", "cross"):
        w = T.edge_weights(g, fam, "uniform")
        assert torch.equal(w, getattr(g, f"{fam}_mask").float())
    m = T.build_variant("uniform weights", 3, 19, 40, hidden=8, num_layers=1, embed_dim=8,
                        graph={"audio_hop_s": 0.48}).train()
    adj = m.adjacency(batch=4)  # no random xi for uniform weights, even in training
    assert adj["cross"].shape == (19, 40) and set(adj["cross"].unique().tolist()) == {0.0, 1.0}


def test_vggish_encoder_segments_and_shapes():
    from audiorepro.backbones import build_backbone

    enc = build_backbone("vggish_harritaylor_core", scale=0.125).eval()
    sr = 16000
    wave = 0.1 * torch.randn(2, 10 * sr, generator=torch.Generator().manual_seed(0))
    emb = D.audio_segment_embeddings(wave, hop_s=0.48, encoder=enc, batch_size=7)
    assert emb.shape == (2, 19, 128)  # 998 frames: 1 + (998 - 96) // 48 = 19 segments
    # segment k of clip 1 is exactly VGGish of that 96 x 64 log-mel patch
    from audiorepro.frontends import VGGishConfig, VGGishLogMel

    mel = VGGishLogMel(VGGishConfig()).features(wave)  # (2, 64, F)
    patch = mel[1, :, 48 * 5:48 * 5 + 96].T[None, None]  # (1, 1, 96, 64)
    with torch.no_grad():  # the encoder now sits on the device the embedding ran on
        ref = enc(patch.to(next(enc.parameters()).device))["embedding"][0].cpu()
    assert torch.allclose(emb[1, 5], ref, atol=1e-4)
    with pytest.raises(T.THGCLError, match="audio_encoder"):
        D.load_audio_encoder("openl3")
    with pytest.raises(T.THGCLError, match="no checkpoint file"):
        D.load_audio_encoder("vggish:/nonexistent/vggish.pth")


def test_av_features_batched_fetch_matches_items():
    ds = D.AVFeatures(np.arange(5 * 3 * 2, dtype=np.float32).reshape(5, 3, 2),
                      np.ones((5, 4, 6), np.float32), np.eye(5, dtype=np.float32))
    b = D.av_collate(ds.__getitems__([4, 1]))
    assert torch.equal(b["audio"][0], ds[4]["audio"]) and torch.equal(b["target"][1], ds[1]["target"])
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=D.av_collate)
    shapes = [tuple(x["audio"].shape) for x in loader]
    assert shapes == [(2, 3, 2), (2, 3, 2), (1, 3, 2)]


def test_leader_share_hand_example():
    import pandas as pd

    class Fit:  # minimal FitResult stand-in: only .history is read
        def __init__(self, values):
            self.history = pd.DataFrame({"epoch": range(1, len(values) + 1), "split": "valid",
                                         "metric": "mAP", "value": values})

    fits = {"A": Fit([0.1, 0.5, 0.6, 0.7]), "B": Fit([0.2, 0.4, 0.65]), "C": Fit([0.0, 0.1, 0.2, 0.9])}
    share, n = E.leader_share(fits, "A")  # common epochs 1-3, first skipped: A wins 2, loses 3
    assert (share, n) == (0.5, 2)
    assert E.leader_share(fits, "A", skip_first=0) == (pytest.approx(1 / 3), 3)
    with pytest.raises(T.THGCLError, match="leader"):
        E.leader_share(fits, "D")


def test_parameter_table_paper_sizes():
    t = T.parameter_table().set_index("variant")
    for name in t.index:
        assert t.loc[name, "total"] == count_parameters(T.build_variant(name, 33, 101, 40))["trainable"]
    heads = 2 * (512 * 512 + 512)
    assert t.loc["THGCL (TMac layout + heads)", "total"] == t.loc["TMac-style", "total"] + heads
    assert t.loc["THGCL (audio readout, heads)", "total"] == t.loc["THGCL", "total"] + heads
    # input maps to d = 128: 128x128 + 1024x128 (+ biases)
    assert t.loc["THGCL", "embed_video"] == 1024 * 128 + 128
    assert t.loc["THGCL", "embed_audio"] == 128 * 128 + 128


def test_paper_layer_counts_by_formula_match_the_built_models():
    # by hand: input maps 16,512 + 131,200; layer 1: GNN-A/V 128*512+512 each, GAT-AV
    # 2*128*512 + 3*512; layers 2-4: the same with 512 inputs; pooling 513; classifier 16,929
    by_hand = (16512 + 131200 + 2 * 66048 + 132608 + 3 * (2 * 262656 + 525824) + 513 + 16929)
    counts = T.paper_layer_counts()
    assert counts["count"].iloc[-1] == by_hand == 3_583_266
    for kw, name in [({}, "THGCL"), ({"embed_dim": None}, "TMac-style"),
                     ({"heads": True}, "THGCL (audio readout, heads)"),
                     ({"embed_dim": None, "heads": True}, "THGCL (TMac layout + heads)")]:
        built = count_parameters(T.build_variant(name, 33, 101, 40))["trainable"]
        assert T.paper_layer_counts(**kw)["count"].iloc[-1] == built, name


# ------------------------------------------------------------------------------- package layout, caches, device
def _tiny_features(n: int = 60, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    video = rng.standard_normal((n, 16, 24)).astype(np.float32)
    video[:, :, 0] += 2.0 * y[:, None]
    return {"audio": rng.standard_normal((n, 12, 8)).astype(np.float32), "video": video,
            "target": np.eye(2, dtype=np.float32)[y],
            "split": np.array(["train"] * (n // 2) + ["valid"] * (n // 4) + ["test"] * (n - n // 2 - n // 4))}


_TINY_MODEL = {"hidden": 8, "num_layers": 1, "embed_dim": 8,
               "graph": {"audio_span": 2, "video_span": 2, "audio_dilation": 1, "video_dilation": 2}}


def test_model_module_imports_no_results_training_or_experiments():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(T))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    bad = [m for m in imported if m.startswith(("audiorepro.results", "audiorepro.book", "audiorepro.training",
                                                "audiorepro.papers.thgcl.experiments", "audiorepro.papers.thgcl.data",
                                                "audiorepro.papers.thgcl.figures"))]
    assert bad == [] and "torch" in imported


def test_entry_points_default_to_auto_device():
    import inspect

    for fn in (E.train_variant, E.run_variants, E.evaluate_model, E.kernel_ablation, E.robustness_sweep,
               D.audio_segment_embeddings, D.load_audio_encoder, D.synthetic_av_features, D.world_features,
               D.chapter_features):
        assert inspect.signature(fn).parameters["device"].default == "auto", fn.__name__
    for fn in (E.train_variant, E.run_variants, E.kernel_ablation, E.robustness_sweep):
        assert "amp" in inspect.signature(fn).parameters, fn.__name__


def test_standardise_nodes_uses_training_clips_only_ddof0():
    x = np.array([[[1.0], [3.0]], [[5.0], [7.0]], [[100.0], [100.0]]], dtype=np.float32)  # (3, 2, 1)
    train = np.array([True, True, False])
    out = E._standardise_nodes(x, train)
    # training nodes 1, 3, 5, 7: mean 4, population std sqrt(5)
    assert out[:2].ravel() == pytest.approx((np.array([1, 3, 5, 7]) - 4) / math.sqrt(5), rel=1e-6)
    assert out[2].ravel() == pytest.approx([96 / math.sqrt(5)] * 2, rel=1e-6)


def test_run_cache_key_covers_settings_data_and_code(tmp_path, monkeypatch):
    from audiorepro import caching

    feats = _tiny_features()
    cfg = {"epochs": 1, "batch_size": 10, "patience": None}

    def run(data_key: str, **kw) -> set:
        E.train_variant("THGCL", feats, _TINY_MODEL, {**cfg, **kw}, run_root=tmp_path, data_key=data_key)
        return {p.name for p in tmp_path.iterdir()}

    first = run("world-a")
    assert len(first) == 1 and next(iter(first)).startswith("THGCL_")
    assert run("world-a") == first  # same run: loaded, no new folder
    assert len(run("world-b")) == 2  # other data
    assert len(run("world-b", lr=0.001)) == 3  # other settings
    monkeypatch.setattr(caching, "code_digest", lambda modules, length=16: "0" * length)
    assert len(run("world-b", lr=0.001)) == 4  # other code: never the old run
    with pytest.raises(T.THGCLError, match="data_key"):
        E.train_variant("THGCL", feats, _TINY_MODEL, cfg, run_root=tmp_path)


def test_synthetic_features_cache_and_data_key(tmp_path, monkeypatch):
    from audiorepro.data.synthetic import load_world, make_world

    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    make_world(tmp_path / "world", n_clips=4, seed=3, progress=False)
    world = load_world(tmp_path / "world")
    f1 = D.synthetic_av_features(world, 0.48)
    cached = list((tmp_path / "cache" / "thgcl" / "features").glob("*.npy"))
    assert len(cached) == 1 and np.array_equal(np.load(cached[0]), f1["audio"])
    assert f1["audio"].shape[:2] == (4, 19) and f1["video"].shape[0] == 4 and f1["video"].shape[2] == 1024
    f2 = D.synthetic_av_features(world, 0.48)
    assert f2["data_key"] == f1["data_key"] and np.array_equal(f2["audio"], f1["audio"])
    shifted = D.synthetic_av_features(world, 0.48, {"av_offset_s": 1.0})
    assert shifted["data_key"] != f1["data_key"] and np.array_equal(shifted["audio"], f1["audio"])
    assert not np.allclose(shifted["video"], f1["video"])
    other_hop = D.synthetic_av_features(world, 0.96)
    assert other_hop["data_key"] != f1["data_key"] and other_hop["audio"].shape[1] == 10
    # the clips at rows 1 and 3 only: their features, computed for them alone, cached apart
    part = D.synthetic_av_features(world, 0.48, rows=[1, 3])
    assert part["data_key"] != f1["data_key"] and part["clip_id"] == [f1["clip_id"][i] for i in (1, 3)]
    for name in ("audio", "video", "target"):
        assert np.allclose(part[name], np.asarray(f1[name])[[1, 3]], atol=1e-5), name
    assert part["split"].tolist() == f1["split"][[1, 3]].tolist()
    assert len(list((tmp_path / "cache" / "thgcl" / "features").glob("*.npy"))) == 3
    with pytest.raises(D.THGCLError, match="ascending"):
        D.synthetic_av_features(world, 0.48, rows=[3, 1])


def test_world_features_caps_splits_and_names_the_sizes(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    whole, _, _, scale = D.chapter_features(20, seed=5)
    assert scale == "20 clips (seed 5)"
    feats, _, _, scale = D.chapter_features(20, seed=5, max_per_split={"train": 6})
    counts = pd.Series(feats["split"]).value_counts().to_dict()
    assert counts["train"] == 6 and counts["test"] == (whole["split"] == "test").sum()
    assert scale == (f"{len(feats['split'])} of 20 clips, train 6 / valid {counts.get('valid', 0)} / "
                     f"test {counts['test']} (seed 5)")
    at = [whole["clip_id"].index(c) for c in feats["clip_id"]]
    assert at == sorted(at) and np.allclose(feats["audio"], whole["audio"][at], atol=1e-5)
    with pytest.raises(D.THGCLError, match="max_per_split.*used whole"):
        D.chapter_features(20, clip_table="mine.csv", task="t", max_per_split={"train": 6})


def test_graph_weight_tables_match_edge_weights():
    g = T.build_graph(20, 8, T.GraphConfig(audio_span=2, audio_dilation=3, audio_hop_s=0.25))
    t = E.node_weight_table(g, 10, "audio", tau=1.0, draws=4)
    assert t["audio neighbour"].tolist() == [4, 7, 10, 13, 16]
    assert t["Gaussian (Eq. 1)"].iloc[4] == pytest.approx(math.exp(-36 / (2 * 169)), rel=1e-6)
    lo, hi = t["Hawkes, random xi (min of 4)"], t["Hawkes, random xi (max of 4)"]
    assert (lo <= hi).all() and (lo > 0.5).all() and (hi <= 1.0).all()  # sigmoid(.) / tau, tau 1
    c = E.node_weight_table(g, 5, "cross")
    assert c["audio neighbour"].tolist() == np.flatnonzero(g.cross_mask[:, 5].numpy()).tolist()
    assert c["Hawkes xi=0.5 (Eq. 2)"].to_numpy() == pytest.approx(
        T.edge_weights(g, "cross", "hawkes")[c["audio neighbour"].tolist(), 5].numpy())
    s = E.edge_weight_summary(g).set_index(["edges", "kernel"])
    assert s.loc[("audio", "gaussian"), "n edges"] == int(g.audio_mask.sum())
    assert s.loc[("audio", "gaussian"), "max"] == pytest.approx(1.0)  # self loop
    with pytest.raises(T.THGCLError, match="family"):
        E.node_weight_table(g, 0, "video")
