"""ATGNN model: structure against reference manifests, k-NN graph, MLG equations, ViG weight mapping.

Fixtures: ``tests/fixtures/reference_state_dicts/{vig_*,atgnn_*}.json`` (key / shape lists of the
official ViG and the public ATGNN reimplementation, built without weights).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from audiorepro.papers.atgnn.model import (ATGNN, ATGNNConfig, build_atgnn, count_atgnn, knn_graph,
                                     load_vig_weights, map_vig_state_dict, position_table_elements,
                                     relative_pos_term, sincos_pos_2d, MLGBlock, knn_peak_memory,
                                     gather_max, relative_pos_rows, topk_smallest)
from audiorepro.backbones.counting import count_parameters

FIX = Path(__file__).parent / "fixtures" / "reference_state_dicts"


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest single-threaded (and do not fight other test processes)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def manifest(name: str) -> dict:
    return json.loads((FIX / f"{name}.json").read_text())


CASES = [
    ("pyr-s", dict(num_classes=200, input_size=(128, 1024)), "atgnn_pyr_s_full_fsd50k_200"),
    ("pyr-s", dict(num_classes=200, input_size=(128, 1024), use_mlg=False), "atgnn_pyr_s_encoder_only_fsd50k_200"),
    ("pyr-s", dict(num_classes=527, input_size=(128, 1056), use_mlg=False), "atgnn_pyr_s_encoder_only_128x1056_527"),
    ("pyr-s", dict(num_classes=1000, input_size=(224, 224), use_mlg=False, in_chans=3), "vig_pyramid_s_224_1000"),
    ("pyr-med", dict(num_classes=1000, input_size=(224, 224), use_mlg=False, in_chans=3), "vig_pyramid_m_224_1000"),
    ("iso", dict(num_classes=1000, input_size=(224, 224), use_mlg=False, in_chans=3), "vig_isotropic_s_224_1000"),
]


@pytest.mark.parametrize("preset,kw,ref", CASES)
def test_state_dict_matches_reference_manifest(preset, kw, ref):
    """Same keys, order and shapes as the reference code (minus its frozen relative_pos tables),
    and exactly its trainable-parameter count."""
    m = build_atgnn(preset, **kw)
    d = manifest(ref)
    ref_sd = [(k, s) for k, s, _ in d["state_dict"] if not k.endswith("relative_pos")]
    own = [(k, list(v.shape)) for k, v in m.state_dict().items()]
    assert own == ref_sd
    c = count_parameters(m)
    assert c["trainable"] == d["n_params_trainable"]
    assert c["buffers"] == d["n_buffers"]


def test_frozen_table_count_matches_reference_all_minus_trainable():
    d = manifest("atgnn_pyr_s_encoder_only_128x1056_527")
    cfg = ATGNNConfig(**{**dict(channels=(80, 160, 400, 640), blocks=(2, 2, 6, 2)),
                         "use_mlg": False, "num_classes": 527, "input_size": (128, 1056)})
    assert position_table_elements(cfg) == d["n_params_all"] - d["n_params_trainable"]


def test_gmacs_close_to_reference_fvcore():
    """FlopCounterMode MACs of pyr-s (-MLG) at 128 x 1056 lie within 2 % of fvcore's count
    (fvcore also counts batch norm, so ours is slightly lower)."""
    d = manifest("atgnn_pyr_s_encoder_only_128x1056_527")
    c = count_atgnn(build_atgnn("pyr-s", num_classes=527, use_mlg=False))
    assert c["gmacs"] < d["gflops"]
    assert abs(c["gmacs"] - d["gflops"]) / d["gflops"] < 0.02


def test_knn_matches_brute_force_and_chunking_is_exact():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 50, 8, generator=g)
    y = torch.randn(2, 20, 8, generator=g)
    xn, yn = torch.nn.functional.normalize(x, dim=-1), torch.nn.functional.normalize(y, dim=-1)
    brute = torch.cdist(xn, yn).argsort(dim=-1)[..., :6]
    idx = knn_graph(x, y, k=3, dilation=2, chunk_elements=10 ** 9)
    assert torch.equal(idx, brute[..., ::2])
    small = knn_graph(x, y, k=3, dilation=2, chunk_elements=2 * 20 * 3)   # 3 query rows per chunk
    assert torch.equal(idx, small)
    capped = knn_graph(x, y, k=9, dilation=5)                              # 45 > 20 keys
    assert capped.shape == (2, 50, 9)
    assert all(len(set(r.tolist())) == 9 for r in capped.reshape(-1, 9))


def test_relative_position_term_prefers_near_nodes():
    rel = relative_pos_term(16, (4, 6), r=1)
    assert rel.shape == (24, 24)
    assert torch.allclose(rel.diagonal(), torch.full((24,), -1.0), atol=1e-5)   # |e|^2 = dim/2
    assert rel[0, 1] < rel[0, 5]                                              # neighbour nearer
    sub = relative_pos_term(16, (4, 6), r=2, rows=slice(3, 7))
    assert sub.shape == (4, 6) and torch.allclose(sub, relative_pos_term(16, (4, 6), r=2)[3:7])
    e = sincos_pos_2d(8, torch.tensor([0.0]), torch.tensor([0.0]))
    assert torch.allclose(e, torch.tensor([[0.0, 0, 1, 1, 0, 0, 1, 1]]))


def test_llg_is_a_plus_identity_and_plg_uses_nearest_patches():
    blk = MLGBlock(8, 5, k=2, ffn=False).eval()
    with torch.no_grad():
        blk.plg.nn[0].weight.zero_(); blk.plg.nn[0].bias.zero_()   # PLG branch outputs GELU(BN(0))
        blk.plg.nn[1].bias.zero_()
    lab = torch.randn(1, 8, 5, 1)
    out = blk(lab, torch.randn(1, 8, 30, 1))
    expected = lab.squeeze(-1) @ (torch.eye(5) + blk.adj.detach()).T   # L^T (I + A)^T
    assert torch.allclose(out.squeeze(-1), expected, atol=1e-5)


def test_forward_shapes_layouts_and_mlg_switch():
    torch.manual_seed(0)
    m = build_atgnn("pyr-tiny", num_classes=7, input_size=(32, 64)).eval()
    x = torch.randn(2, 64, 32)                       # (B, T, F)
    y = m(x)
    assert y.shape == (2, 7)
    assert torch.allclose(m(x.transpose(1, 2), freq_major=True), y, atol=1e-5)
    patch, label = m.forward_parts(x)
    assert torch.allclose(patch + label, y, atol=1e-5)
    y2 = m(torch.randn(1, 96, 32))                   # other length: positional encoding resized
    assert y2.shape == (1, 7)
    nomlg = build_atgnn("pyr-tiny", num_classes=7, input_size=(32, 64), use_mlg=False)
    assert count_parameters(nomlg)["trainable"] < count_parameters(m)["trainable"]
    assert not any("mlg" in k or "label" in k for k in nomlg.state_dict())
    iso = build_atgnn("iso-tiny", num_classes=7, input_size=(32, 64))
    assert iso(x).shape == (2, 7)
    assert iso.config.knn_schedule()[0] == 9 and iso.config.knn_schedule()[-1] == 18


def test_backward_reaches_label_graph():
    m = build_atgnn("pyr-tiny", num_classes=4, input_size=(32, 64))
    m(torch.randn(2, 64, 32)).sum().backward()
    assert m.mlg_stages[0][0].adj.grad is not None and m.mlg_stages[0][0].adj.grad.abs().sum() > 0
    assert m.label_readout.grad.abs().sum() > 0


def _fake_weights(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape, dtype in manifest(name)["state_dict"]:
        out["module." + k] = (torch.zeros(shape, dtype=torch.int64) if dtype.endswith("int64")
                              else torch.randn(shape, generator=g))
    return out


@pytest.mark.parametrize("preset,ref", [("pyr-s", "vig_pyramid_s_224_1000"),
                                        ("pyr-med", "vig_pyramid_m_224_1000"),
                                        ("iso", "vig_isotropic_s_224_1000")])
def test_vig_imagenet_weights_map_onto_audio_model(preset, ref):
    """Every ViG tensor lands in the 1-channel 128 x 1056 ATGNN (MLG on); stem summed over RGB,
    pos_embed resized, relative_pos and the 1000-class layer skipped; only MLG/label keys and the
    527-class layer stay at initialisation."""
    ck = _fake_weights(ref)
    m = build_atgnn(preset, num_classes=527, input_size=(128, 1056))
    mapped, rep = map_vig_state_dict(ck, m)
    assert set(rep.adapted) == {"stem.convs.0.weight", "pos_embed"}
    assert torch.allclose(mapped["stem.convs.0.weight"], ck["module.stem.convs.0.weight"].sum(1, keepdim=True))
    sf = 4 if preset.startswith("pyr") else 16
    assert mapped["pos_embed"].shape[-2:] == (128 // sf, 1056 // sf)
    assert all(k.endswith("relative_pos") or k.startswith("prediction.4") for k in rep.skipped)
    assert sum(k.endswith("relative_pos") for k in rep.skipped) == (sum(m.config.blocks) if preset != "iso" else 0)
    assert all(k.startswith(("mlg_stages", "label_", "prediction.4")) for k in rep.missing)
    assert any(k.startswith("mlg_stages") for k in rep.missing)
    rep2 = load_vig_weights(m, ck)
    key = "backbone.0.0.fc1.0.weight"
    assert torch.equal(m.state_dict()[key], ck["module." + key])
    assert rep2.loaded == rep.loaded


def test_vig_mapping_rejects_wrong_size():
    ck = _fake_weights("vig_pyramid_m_224_1000")
    m = build_atgnn("pyr-s", num_classes=527)
    with pytest.raises(ValueError, match="shape"):
        map_vig_state_dict(ck, m)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="channels"):
        ATGNNConfig(channels=(80, 160), blocks=(2, 2, 6, 2))
    with pytest.raises(KeyError, match="kk"):
        build_atgnn("pyr-s", kk=3)


def test_chunked_knn_memory_is_linear_in_n():
    a = knn_peak_memory(10_000, 10_000, 64, 9)
    b = knn_peak_memory(20_000, 20_000, 64, 9)
    assert b["dense"] > 3.9 * a["dense"]           # dense N x M grows 4x
    assert b["chunked"] < 2.6 * a["chunked"]       # chunked grows ~2x


# ---------------------------------------------------------------- optimised ops vs. references
def _ref_knn(x: torch.Tensor, y: torch.Tensor, k: int, dilation: int, rel=None) -> torch.Tensor:
    """Straightforward dilated k-NN: broadcast squared distances of normalised features, argsort."""
    xn, yn = torch.nn.functional.normalize(x, dim=-1), torch.nn.functional.normalize(y, dim=-1)
    d = ((xn[:, :, None, :] - yn[:, None, :, :]) ** 2).sum(-1)            # (B, N, M)
    if rel is not None:
        d = d + rel
    M = y.shape[1]
    k = min(k, M)
    dilation = max(1, min(dilation, M // k))
    return d.argsort(dim=-1)[..., :k * dilation][..., ::dilation]


def _ref_max_relative(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """(B, N, C), (B, M, C), (B, N, k) -> (B, 2C, N, 1): advanced indexing + amax of differences."""
    B, N, C = x.shape
    nb = y[torch.arange(B)[:, None, None], idx]                              # (B, N, k, C)
    m = (nb - x[:, :, None, :]).amax(dim=2)
    return torch.stack([x, m], dim=-1).reshape(B, N, 2 * C).transpose(1, 2).unsqueeze(-1)


def test_fused_knn_equals_broadcast_reference_with_relative_term():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 48, 8, generator=g, dtype=torch.float64)
    y = torch.randn(2, 12, 8, generator=g, dtype=torch.float64)
    rel = relative_pos_term(8, (6, 8), 2).double()                          # (48, 12)
    ref = _ref_knn(x, y, 3, 2, rel)
    for chunk in (10 ** 9, 2 * 12 * 5):                                     # one block / 5 rows
        assert torch.equal(knn_graph(x, y, 3, 2, rel=rel, chunk_elements=chunk), ref)
    fn = relative_pos_rows(8, (6, 8), 2)
    assert torch.equal(knn_graph(x, y, 3, 2, rel_fn=lambda sl: fn(sl).double(), chunk_elements=120), ref)


def test_relative_pos_rows_equal_table_rows():
    fn = relative_pos_rows(16, (5, 9), 2)
    table = relative_pos_term(16, (5, 9), 2)
    assert fn(slice(0, 45)).shape == (45, 8)
    # same values up to float rounding (a 23-row matmul may take another BLAS kernel than 45 rows)
    torch.testing.assert_close(fn(slice(7, 30)), table[7:30], rtol=0, atol=1e-6)


def test_gather_max_matches_indexing_reference_values_and_gradients(monkeypatch):
    """Blocked index_select + max-pool forward and scatter backward equal advanced indexing +
    amax (random floats: no ties), also when the queries span several blocks."""
    import audiorepro.papers.atgnn.model as A
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 30, 8, generator=g, requires_grad=True)
    y = torch.randn(2, 11, 8, generator=g, requires_grad=True)
    idx = torch.stack([torch.stack([torch.randperm(11, generator=g)[:4] for _ in range(30)])
                       for _ in range(2)])                                   # (2, 30, 4) distinct
    w = torch.randn(2, 16, 30, 1, generator=g)
    ref = _ref_max_relative(x, y, idx)
    gx_ref, gy_ref = torch.autograd.grad((ref * w).sum(), (x, y))
    for block in (1 << 18, 4 * 8 * 3):                                      # 1 block / 3 queries per block
        monkeypatch.setattr(A, "_GATHER_BLOCK", block)
        out = A._max_relative(x, y, idx)                                     # (B, N, 2C) tokens
        assert out.shape == (2, 30, 16)
        got = out.transpose(1, 2).unsqueeze(-1)
        assert torch.allclose(got, ref, rtol=1e-5, atol=0)
        gx, gy = torch.autograd.grad((got * w).sum(), (x, y))
        assert torch.allclose(gx, gx_ref, rtol=1e-5, atol=1e-6)
        assert torch.allclose(gy, gy_ref, rtol=1e-5, atol=1e-6)
    # the max really picks the largest neighbour: hand-made case
    yy = torch.tensor([[[0.0, 5.0], [3.0, 1.0], [2.0, 2.0]]], requires_grad=True)
    m = gather_max(yy, torch.tensor([[[0, 1, 2]]]))
    assert m.tolist() == [[[3.0, 5.0]]]
    m.sum().backward()
    assert yy.grad.tolist() == [[[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]]]


@pytest.mark.parametrize("m,kk", [(528, 9), (528, 18), (528, 27), (120, 3)])
def test_topk_smallest_equals_torch_topk_including_ties(m, kk):
    """Two-stage top-k = torch.topk indices exactly: random rows, rows with planted ties at and
    inside the k smallest, and coarse integer rows full of ties."""
    import audiorepro.papers.atgnn.model as A
    assert A._group_count(m, kk) > 0                                        # two-stage path taken
    g = torch.Generator().manual_seed(4)
    d = torch.randn(2, 300, m, generator=g, dtype=torch.float64)
    order = d.argsort(-1)
    d[0, :50].scatter_(-1, order[0, :50, kk:kk + 1], d[0, :50].gather(-1, order[0, :50, kk - 1:kk]))
    d[1, :50].scatter_(-1, order[1, :50, 1:2], d[1, :50].gather(-1, order[1, :50, :1]))
    coarse = torch.randint(0, 40, (2, 40, m), generator=g).double()
    for dist in (d, coarse, d.float()):
        ref = torch.topk(dist, kk, dim=-1, largest=False, sorted=True).indices
        assert torch.equal(topk_smallest(dist.contiguous(), kk), ref)
    assert A._group_count(640, 9) == 0 and A._group_count(132, 27) == 0    # plain topk


@pytest.mark.parametrize("groups,train", [(1, True), (4, True), (4, False), (1, False)])
def test_pointwise_tokens_equal_conv_bn_gelu_modules(groups, train):
    """1x1 conv as (batched) GEMM + BN on 2-D tokens = the Conv2d / BatchNorm2d / GELU modules on
    an NCHW image: values, input and parameter gradients, running statistics (float64)."""
    import copy
    from audiorepro.papers.atgnn.model import _image, _pointwise, _tokens
    torch.manual_seed(5)
    seq = torch.nn.Sequential(torch.nn.Conv2d(16, 24, 1, groups=groups), torch.nn.BatchNorm2d(24),
                              torch.nn.GELU()).double().train(train)
    with torch.no_grad():
        seq[1].running_mean.normal_(); seq[1].running_var.uniform_(0.5, 2.0)
        seq[1].weight.normal_(); seq[1].bias.normal_()
    ref_seq = copy.deepcopy(seq)
    x = torch.randn(3, 16, 5, 7, dtype=torch.float64, requires_grad=True)
    ref = ref_seq(x)
    got = _image(_pointwise(seq, _tokens(x.contiguous(memory_format=torch.channels_last))), 5, 7)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    w = torch.randn_like(ref)
    g_ref = torch.autograd.grad((ref * w).sum(), [x, *ref_seq.parameters()])
    g_got = torch.autograd.grad((got * w).sum(), [x, *seq.parameters()])
    for a, b in zip(g_got, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(seq[1].buffers(), ref_seq[1].buffers()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def _ref_graph_conv(gc, x: torch.Tensor) -> torch.Tensor:
    B, C, H, W = x.shape
    r = gc._r_eff((H, W))
    keys = torch.nn.functional.avg_pool2d(x, r, r) if r > 1 else x
    xq, yk = x.flatten(2).transpose(1, 2), keys.flatten(2).transpose(1, 2)
    rel = relative_pos_term(C, (H, W), r).to(x.dtype) if gc.relative_pos else None
    with torch.no_grad():
        idx = _ref_knn(xq, yk, gc.k, gc.dilation, rel)
    return gc.gconv.nn(_ref_max_relative(xq, yk, idx).reshape(B, 2 * C, H, W))


def _ref_ffn(ffn, x: torch.Tensor) -> torch.Tensor:
    """FFN through its Conv2d / BatchNorm2d modules on an NCHW-contiguous image."""
    x = x.contiguous()
    return x + ffn.fc2(ffn.act(ffn.fc1(x)))


def _ref_forward(model: ATGNN, x: torch.Tensor) -> torch.Tensor:
    """The ATGNN forward pass written plainly: NCHW-contiguous tensors, broadcast k-NN,
    advanced-indexing gather + amax, LLG in (B, C, S) layout."""
    from audiorepro.papers.atgnn.model import Downsample
    x = model.stem.convs(model._to_image(x, False).contiguous())
    x = x + model._pos(tuple(x.shape[-2:]))
    lab = model.label_embed.expand(x.shape[0], -1, -1, -1) if model.config.use_mlg else None
    stage = 0
    for i, blk in enumerate(model.backbone):
        if isinstance(blk, Downsample):
            x = blk.conv(x.contiguous())
        else:
            gr, ffn = blk
            x = x + gr.fc2(_ref_graph_conv(gr.graph_conv, gr.fc1(x.contiguous())))
            x = _ref_ffn(ffn, x)
        if lab is not None and stage < len(model.stage_ends) and i == model.stage_ends[stage]:
            patches = x.flatten(2).unsqueeze(-1)
            lab = model.label_proj[stage](lab.contiguous())
            for mlg in model.mlg_stages[stage]:
                lq, pk = lab.squeeze(-1).transpose(1, 2), patches.squeeze(-1).transpose(1, 2)
                with torch.no_grad():
                    idx = _ref_knn(lq, pk, mlg.plg.k, 1)
                lab = lab + mlg.plg.nn(_ref_max_relative(lq, pk, idx))
                L = _ref_ffn(mlg.ffn, lab).squeeze(-1)
                lab = (L + L @ mlg.adj.T).unsqueeze(-1)
            stage += 1
    patch = model.prediction(torch.nn.functional.adaptive_avg_pool2d(x, 1)).flatten(1)
    if lab is None:
        return patch
    return patch + torch.einsum("bcs,sc->bs", lab.squeeze(-1), model.label_readout)


@pytest.mark.parametrize("preset", ["pyr-tiny", "iso-tiny", "iso-tiny-dilated"])
def test_optimised_model_matches_plain_reference_forward_and_gradients(preset):
    """Channels-last layout, fused k-NN, blocked gather-max and transposed LLG change nothing:
    outputs and every parameter gradient equal the plain reference (float64, train-mode BN)."""
    torch.manual_seed(3)
    m = build_atgnn(preset, num_classes=5, input_size=(32, 64)).double().train()
    x = torch.randn(3, 64, 32, dtype=torch.float64)
    y = m(x)
    gy = torch.randn_like(y)
    grads = torch.autograd.grad((y * gy).sum(), list(m.parameters()))
    y_ref = _ref_forward(m, x)
    grads_ref = torch.autograd.grad((y_ref * gy).sum(), list(m.parameters()))
    assert torch.allclose(y, y_ref, rtol=1e-5, atol=1e-8)
    scale = max(g.abs().max() for g in grads_ref)
    for (name, _), g, g_ref in zip(m.named_parameters(), grads, grads_ref):
        # conv biases before a train-mode BN have zero true gradient: compare on the global scale
        assert torch.allclose(g, g_ref, rtol=1e-5, atol=1e-9 * scale), name


@pytest.mark.parametrize("preset, size", [("pyr-tiny", (64, 64)), ("pyr-tiny", (64, 200)),
                                          ("iso-tiny", (64, 96)), ("iso-tiny-dilated", (64, 128)),
                                          ("pyr-med-tiny-dilated", (64, 128))])
def test_graph_schedule_matches_the_graphs_a_forward_pass_builds(preset, size, monkeypatch):
    from audiorepro.papers.atgnn import model as M

    seen = []
    knn = M.knn_graph

    def spy(x, y, k, dilation=1, *a, **kw):
        idx = knn(x, y, k, dilation, *a, **kw)
        seen.append((x.shape[1], y.shape[1], idx.shape[-1]))
        return idx
    monkeypatch.setattr(M, "knn_graph", spy)
    net = M.build_atgnn(preset, num_classes=5, input_size=size, use_mlg=False).eval()
    with torch.no_grad():
        net(torch.randn(1, size[1], size[0]))
    rows = M.graph_schedule(net.config)
    assert [(r["nodes"], r["keys"], r["k'"]) for r in rows] == seen
    assert all(r["d'"] * r["k'"] <= r["keys"] for r in rows)


def test_graph_schedule_at_the_papers_size_dilates_and_connects_few_keys():
    from audiorepro.papers.atgnn import model as M

    rows = M.graph_schedule(M.ATGNNConfig(**M.PRESETS["pyr-s"], input_size=(128, 1024)))
    assert rows[0]["keys"] == 32 * 256 // 16 and rows[0]["k' / keys"] < 0.02   # 9 of 512 keys
    assert any(r["dilated"] for r in rows)


def test_dilated_cpu_presets_are_in_the_papers_graph_regime():
    """The book profile's presets at 64 x 128: pyr-tiny-dilated and pyr-med-tiny-dilated build
    sparse k-NN graphs in stages 1-2 (k' / keys = 9 / 128; the paper's pyr-s at 128 x 1024:
    9 / 512) and dilate stage 3 (2 and 8 blocks, d' up to 2 and 3); iso-tiny-dilated (8x stem)
    has 128 nodes, k' / keys at most 18 / 128 and two dilated blocks - where the earlier
    books' pyr-tiny and iso-tiny at 64 x 64 had neither sparse nor dilated graphs."""
    from audiorepro.papers.atgnn.model import ATGNNConfig, PRESETS, graph_schedule

    def schedule(preset, size=(64, 128)):
        return graph_schedule(ATGNNConfig(**PRESETS[preset], input_size=size))
    pyr, med, iso = schedule("pyr-tiny-dilated"), schedule("pyr-med-tiny-dilated"), schedule("iso-tiny-dilated")
    for rows in (pyr, med):
        assert [(r["k'"], r["keys"]) for r in rows if r["stage"] <= 2] == [(9, 128), (9, 128)]
    assert [r["d'"] for r in pyr if r["dilated"]] == [2, 2]
    assert [r["d'"] for r in med if r["dilated"]] == [2, 2, 2, 2, 3, 3, 3, 3]
    assert {r["nodes"] for r in iso} == {128} and max(r["k'"] for r in iso) == 18
    assert sum(r["dilated"] for r in iso) == 2
    old_pyr, old_iso = schedule("pyr-tiny", (64, 64)), schedule("iso-tiny", (64, 64))
    assert not any(r["dilated"] for r in old_pyr + old_iso)
    assert old_iso[0]["nodes"] == 16 and old_pyr[0]["k' / keys"] > 0.5

def test_k_regime_shows_where_the_book_sweep_loses_its_dilation():
    """pyr-tiny-dilated at 64 x 128: stage 3 has 32 keys and d = 2 in two blocks, so k' d <= 32
    keeps them dilated up to k = 16; at k = 18 and 20 no block is dilated. The paper's pyr-s at
    128 x 1024 keeps its dilated blocks at every k of the sweep."""
    from audiorepro.papers import atgnn

    book = atgnn.k_regime([9, 12, 15, 18, 20], "pyr-tiny-dilated", (64, 128))
    assert book["dilated blocks"].tolist() == [2, 2, 2, 0, 0]
    assert book["k' / keys (first block)"].tolist() == [round(k / 128, 3) for k in (9, 12, 15, 18, 20)]
    assert book["blocks"].tolist() == [7] * 5
    paper = atgnn.k_regime([9, 20], "pyr-s", (128, 1024))
    assert paper["dilated blocks"].min() > 0
    assert atgnn.schedule_summary(atgnn.ATGNNConfig(**atgnn.PRESETS["pyr-s"], input_size=(128, 1024))) \
        == paper.loc["k=9"].to_dict()
    with pytest.raises(KeyError, match="unknown ATGNN preset"):
        atgnn.k_regime([9], "pyr-xl", (64, 128))
