"""Bag-of-codewords model and pipeline (lib/audiorepro/papers/bow/): patches, counts, head, pooling, caching."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from audiorepro.data.cliptable import ClipTable
from audiorepro.papers import bow


def _ramp_chunk() -> torch.Tensor:
    """(1, 96, 100) chunk whose value encodes its position: mel * 1000 + frame."""
    m = torch.arange(96).float()[:, None] * 1000 + torch.arange(100).float()[None, :]
    return m[None]


def test_family_shapes_and_total_143():
    shapes = bow.family_shapes()
    assert shapes == {"pat": (120, 80), "fenv": (12, 800), "env": (10, 960), "o": (1, 80)}
    assert sum(n for n, _ in shapes.values()) == 143


def test_extract_patches_positions():
    p = bow.extract_patches(_ramp_chunk())
    assert {k: tuple(v.shape) for k, v in p.items()} == {
        "pat": (1, 120, 80), "fenv": (1, 12, 800), "env": (1, 10, 960), "o": (1, 1, 80)}
    # spectral patch 13 = band 1 (mels 8..15), time step 3 (frames 30..39); first entry mel 8 frame 30
    pat = p["pat"][0, 13].reshape(8, 10)
    assert pat[0, 0] == 8 * 1000 + 30 and pat[7, 9] == 15 * 1000 + 39
    # frequency-band envelope 2 = mels 16..23 over all 100 frames
    fenv = p["fenv"][0, 2].reshape(8, 100)
    assert fenv[0, 0] == 16000 and fenv[7, 99] == 23000 + 99
    # spectral envelope 4 = frames 40..49 over all 96 mels
    env = p["env"][0, 4].reshape(96, 10)
    assert env[0, 0] == 40 and env[95, 9] == 95000 + 49
    # the coarse 8 x 10 picture of a ramp is increasing along both axes
    o = p["o"][0, 0].reshape(8, 10)
    assert (o.diff(dim=0) > 0).all() and (o.diff(dim=1) > 0).all()


def test_family_boxes_tile_the_chunk():
    boxes = bow.family_boxes()
    for fam in ("pat", "fenv", "env"):
        cover = np.zeros((96, 100), int)
        for t0, f0, nt, nf in boxes[fam]:
            cover[f0:f0 + nf, t0:t0 + nt] += 1
        assert (cover == 1).all(), fam
    assert [len(boxes[f]) for f in bow.FAMILIES] == [120, 12, 10, 1]


def test_extract_patches_rejects_bad_shape():
    with pytest.raises(bow.BowError, match="96, 100"):
        bow.extract_patches(torch.zeros(2, 64, 100))


def test_chunk_spectrogram_drops_tail_and_pads_short():
    s = torch.arange(96 * 250).float().reshape(96, 250)
    ch = bow.chunk_spectrogram(s)
    assert ch.shape == (2, 96, 100) and torch.equal(ch[1], s[:, 100:200])
    short = bow.chunk_spectrogram(torch.ones(96, 40))
    assert short.shape == (1, 96, 100)


def test_bag_of_words_counts_sum_to_143():
    rng = np.random.default_rng(0)
    D = 16
    codes = {f: rng.integers(0, D, size=(5, n)) for f, (n, _) in bow.family_shapes().items()}
    c = bow.bag_of_words(codes, D)
    assert c.shape == (5, 4 * D)
    assert np.all(c.sum(1) == 143)
    # hand-checked: the count of code 3 in the pat block equals its occurrences in codes["pat"]
    assert c[2, 3] == np.sum(codes["pat"][2] == 3)
    # the single 'o' code lands in the last block
    assert c[4, 3 * D + codes["o"][4, 0]] == 1 and c[4, 3 * D:].sum() == 1
    with pytest.raises(bow.BowError, match="outside"):
        bow.bag_of_words({**codes, "o": codes["o"] + D}, D)


def test_assign_codes_matches_sklearn_predict():
    from sklearn.cluster import KMeans
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    km = KMeans(8, n_init=1, random_state=0).fit(x)
    assert np.array_equal(bow.assign_codes(x, km.cluster_centers_), km.predict(x))


def test_fit_kmeans_finds_separated_clusters_and_switches_to_minibatch():
    rng = np.random.default_rng(2)
    centers = np.array([[0, 0], [10, 0], [0, 10]], np.float32)
    x = np.concatenate([c + rng.normal(scale=0.1, size=(200, 2)) for c in centers]).astype(np.float32)
    for above in (10000, 100):  # KMeans, then MiniBatchKMeans
        cent = bow.fit_kmeans(x, 3, minibatch_above=above)
        d = np.linalg.norm(cent[:, None] - centers[None], axis=2).min(0)
        assert (d < 0.5).all()
    with pytest.raises(bow.BowError, match="codewords"):
        bow.fit_kmeans(x[:2], 3)


def test_fit_kmeans_with_fewer_vectors_than_codewords_keeps_them_and_unused_words():
    """A tiny dataset (the FSD50K miniature: 13 whole-chunk vectors for D = 256): with
    fewer='repeat' each vector is its own codeword and the padded words are never assigned."""
    x = np.array([[0, 0], [4, 0], [0, 4]], np.float32)
    with pytest.raises(bow.BowError, match="fewer='repeat'"):
        bow.fit_kmeans(x, 5)
    with pytest.raises(bow.BowError, match="fewer="):
        bow.fit_kmeans(x, 5, fewer="pad")
    cent = bow.fit_kmeans(x, 5, fewer="repeat")
    assert cent.shape == (5, 2) and np.array_equal(cent[:3], x) and np.array_equal(cent[3:], x[[0, 0]])
    assert bow.assign_codes(x, cent).tolist() == [0, 1, 2]
    probe = np.array([[0.1, 0.0], [-3, -3], [3.9, 0.2], [0, 0]], np.float32)
    assert bow.assign_codes(probe, cent).tolist() == [0, 0, 1, 0]


def test_assign_codes_gives_equal_centroids_the_lowest_index():
    cent = np.array([[5, 5], [1, 1], [1, 1], [1, 1], [9, 9]], np.float32)
    x = np.array([[1, 1], [1.2, 0.9], [8, 8], [5, 4]], np.float32)
    assert bow.assign_codes(x, cent).tolist() == [1, 1, 4, 0]
    # blocks do not change it
    assert bow.assign_codes(np.repeat(x, 3, axis=0), cent, block=2).tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 4, 0, 0, 0]


def test_ngram_counts_hand_computed():
    codes = np.array([[[0, 1, 1, 2]]])  # one chunk, one sequence, D = 3
    bi = bow.ngram_counts(codes, 3, n=2)
    assert bi.shape == (1, 9) and bi.sum() == 3
    assert bi[0, 0 * 3 + 1] == 1 and bi[0, 1 * 3 + 1] == 1 and bi[0, 1 * 3 + 2] == 1
    hashed = bow.ngram_counts(codes, 3, n=2, n_buckets=4)
    assert hashed.shape == (1, 4) and hashed.sum() == 3 and hashed[0, 1] == 2  # 1 and 5 -> bucket 1


def test_count_masking_rate_and_eval_identity():
    torch.manual_seed(0)
    m = bow.CountMasking(0.35)
    x = torch.ones(200, 1024)
    frac = (m.train()(x) == 0).float().mean().item()
    assert abs(frac - 0.35) < 0.01
    assert torch.equal(m.eval()(x), x)
    assert torch.equal(bow.CountMasking(0.0).train()(x), x)
    with pytest.raises(bow.BowError):
        bow.CountMasking(1.0)


def test_tagger_outputs_probabilities_and_transforms():
    t = bow.BowTagger(8, 5, hidden=16, dropout=0.1, mask_p=0.2).eval()
    x = torch.randint(0, 5, (3, 32)).float()
    y = t(x)
    assert y.shape == (3, 5) and (y > 0).all() and (y < 1).all()
    frac = bow.BowTagger(8, 5, input_transform="fraction")
    counts = torch.zeros(1, 32)
    counts[0, :8] = 15.0  # pat block: 120 vectors in total
    assert torch.allclose(frac.transform(counts)[0, :8].sum(), torch.tensor(1.0))
    with pytest.raises(bow.BowError, match="counts must be"):
        t(torch.zeros(3, 31))


def test_huber_loss_hand_computed():
    p = torch.tensor([[0.5, 0.0]])
    y = torch.tensor([[1.0, 0.0]])
    assert torch.isclose(bow.huber_loss(p, y), torch.tensor(0.5 * 0.25 / 2))


def test_clip_pool_means_chunks():
    s = np.array([[0.2, 1.0], [0.4, 0.0], [0.9, 0.5]], np.float32)
    clips, pooled = bow.clip_pool(s, np.array([7, 7, 3]))
    assert list(clips) == [3, 7]
    assert np.allclose(pooled, [[0.9, 0.5], [0.3, 0.5]])


def test_autoencoder_bottleneck_sizes():
    for dim, factor, b in ((80, 10, 8), (800, 10, 80), (960, 20, 48), (80, 20, 4)):
        ae = bow.PatchAutoencoder(dim, factor, hidden=32)
        assert ae.bottleneck == b
        assert ae.encode(torch.zeros(2, dim)).shape == (2, b) and ae(torch.zeros(2, dim)).shape == (2, dim)
    # 3 linear layers per side
    assert sum(isinstance(m, torch.nn.Linear) for m in bow.PatchAutoencoder(80).encoder) == 3


def _tiny_table(tmp_path, n=12) -> ClipTable:
    """n clips of 2.5 s: class 'a' = 440 Hz tone, 'b' = noise, splits 6/3/3."""
    rng = np.random.default_rng(0)
    rows = []
    sr = 16000
    t = np.arange(int(2.5 * sr)) / sr
    for i in range(n):
        lab = "a" if i % 2 == 0 else "b"
        x = 0.3 * np.sin(2 * np.pi * 440 * t) if lab == "a" else 0.3 * rng.normal(size=t.size)
        sf.write(tmp_path / f"c{i}.wav", x.astype(np.float32), sr)
        split = "train" if i < n // 2 else ("valid" if i < 3 * n // 4 else "test")
        rows.append({"clip_id": f"c{i}", "path": f"c{i}.wav", "split": split, "labels": lab})
    return ClipTable(pd.DataFrame(rows), tmp_path, ["a", "b"], "tiny")


def test_pipeline_end_to_end_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path / "home"))
    table = _tiny_table(tmp_path)
    ch = bow.compute_chunks(table)
    assert ch.spec.shape == (24, 96, 100)  # 2.5 s -> 2 chunks per clip, tail dropped
    assert list(ch.chunk_clip[:4]) == [0, 0, 1, 1]
    assert ch.chunk_targets().shape == (24, 2)
    cfg = bow.BowConfig(ae_hidden=16, ae_epochs=1, ae_batch_size=64)
    pipe = bow.BowPipeline(ch, cfg, cache_root=tmp_path / "cache")
    counts = pipe.counts(4)
    assert counts.shape == (24, 16) and np.all(counts.sum(1) == 143)
    assert pipe.latents("pat").shape == (24 * 120, 8)
    # one scalar mean / std (ddof 0) over every value of the training chunks
    train = ch.spec[ch.chunk_mask("train")].astype(np.float64)
    assert pipe.mean == pytest.approx(train.mean()) and pipe.std == pytest.approx(train.std())
    z = pipe.standardised(ch.chunk_mask("train"))
    assert float(z.mean()) == pytest.approx(0.0, abs=1e-4) and float(z.std(unbiased=False)) == pytest.approx(1.0, abs=1e-4)
    # a second pipeline with the same configuration reuses the cached codes (no retraining)
    pipe2 = bow.BowPipeline(ch, cfg, cache_root=tmp_path / "cache")
    assert np.array_equal(pipe2.counts(4), counts) and not pipe2._ae
    # another factor gives another cache key
    assert bow.BowPipeline(ch, bow.BowConfig(factor=20, ae_hidden=16), cache_root=tmp_path / "cache").ae_key != pipe.ae_key
    res = bow.train_head(counts, ch, 4, bow.HeadConfig(hidden=16, epochs=2, batch_size=8))
    for k in ("mAP_1s_valid", "mAP_clip_valid", "mAP_1s_test", "mAP_clip_test"):
        assert 0.0 <= res.metrics[k] <= 1.0
    assert res.scores["test"].shape == (6, 2)


def test_tone_vs_noise_is_learnable(tmp_path, monkeypatch):
    """A real trend: codeword counts separate a tone from noise (clip mAP well above chance 0.5)."""
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path / "home"))
    table = _tiny_table(tmp_path, n=16)
    ch = bow.compute_chunks(table)
    pipe = bow.BowPipeline(ch, bow.BowConfig(ae_hidden=32, ae_epochs=3, ae_batch_size=64),
                           cache_root=tmp_path / "cache")
    res = bow.train_head(pipe.counts(8), ch, 8, bow.HeadConfig(hidden=32, dropout=0.1, epochs=20, batch_size=8,
                                                               patience=None))
    assert res.metrics["mAP_clip_test"] > 0.9


def test_vq_autoencoder_with_fewer_vectors_than_codewords():
    x = torch.randn(3, 20)
    with pytest.warns(UserWarning, match="3 vectors for D=8"):
        vq = bow.train_vq_autoencoder(x, 8, hidden=16, epochs=1, batch_size=2)
    assert vq.codebook.weight.shape[0] == 8
    c = vq.codes(x)
    assert c.shape == (3,) and int(c.min()) >= 0 and int(c.max()) < 8
    with pytest.raises(bow.BowError, match="N >= 2"):
        bow.train_vq_autoencoder(x[:1], 8, hidden=16, epochs=1)


def test_vq_autoencoder_codes_in_range():
    torch.manual_seed(0)
    x = torch.randn(400, 80)
    vq = bow.train_vq_autoencoder(x, 16, hidden=32, epochs=1, batch_size=64)
    c = vq.codes(x)
    assert c.shape == (400,) and int(c.min()) >= 0 and int(c.max()) < 16
    rec, loss = vq(x[:5])
    assert rec.shape == (5, 80) and loss.dim() == 0


def test_pipeline_standardisation_over_blocks_matches_numpy(tmp_path):
    """The scalar mean / std (ddof 0) of the training chunks, accumulated over blocks of 1024
    chunks, equals numpy's over all values at once."""
    rng = np.random.default_rng(1)
    table = ClipTable(pd.DataFrame({"clip_id": ["a", "b", "c"], "path": ["a.wav", "b.wav", "c.wav"],
                                    "split": ["train", "valid", "test"], "labels": ["x", "x", "y"]}),
                      tmp_path, ["x", "y"], "blocks")
    spec = rng.normal(-20.0, 9.0, size=(2600, 96, 100)).astype(np.float16)
    owner = np.repeat([0, 1, 2], [2500, 50, 50])
    ch = bow.ChunkSet(spec, owner, table.targets(), table, "k")
    pipe = bow.BowPipeline(ch, bow.BowConfig(ae_hidden=8), cache_root=tmp_path / "cache")
    train = spec[:2500].astype(np.float64)
    assert pipe.mean == pytest.approx(train.mean(), rel=1e-12) and pipe.std == pytest.approx(train.std(), rel=1e-12)
