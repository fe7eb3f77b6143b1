"""AST and PaSST backbones: checkpoint compatibility (key by key against the reference
manifests), parameter counts, agreement with a literal re-implementation of the official
forward, layer taps, patchout, positional cuts, long-audio segmentation, checkpoint loading."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from audiorepro.backbones.ast import ASTModel, adapt_pos_embed, build_ast
from audiorepro.backbones.base import Backbone, CheckpointError
from audiorepro.backbones.passt import PaSST, build_passt
from audiorepro.backbones.vit import count_parameters, pool_tokens

FIXTURES = Path(__file__).parent / "fixtures" / "reference_state_dicts"


def manifest(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def small_ast(**kw) -> ASTModel:
    cfg = dict(embed_dim=64, depth=3, num_heads=4, input_fdim=32, input_tdim=48, num_classes=5)
    cfg.update(kw)
    torch.manual_seed(cfg.pop("seed", 0))
    return build_ast("ast", **cfg).eval()


def small_passt(**kw) -> PaSST:
    cfg = dict(embed_dim=64, depth=3, num_heads=4, input_fdim=36, input_tdim=100, num_classes=5)
    cfg.update(kw)
    torch.manual_seed(cfg.pop("seed", 0))
    return build_passt("passt_s", **cfg).eval()


# ------------------------------------------------------------------ manifests (full size)
@pytest.mark.parametrize("name,builder", [
    ("ast_base384_f10_t10_527", build_ast),
    ("passt_s_swa_p16_s10_128_998_527", build_passt),
    ("passt_s_p16_s16_128_1000_527", build_passt),
    ("passt_l_kd_p16_s10_128_998_527", build_passt),      # PaSST-L, from hear21passt's code
    ("passt_s_kd_p16_s10_128_998_527", build_passt),      # PaSST-S distilled, hear21passt
    ("passt_s_20sec_p16_s10_128_2000_527", build_passt),  # PaSST-S20, hear21passt
])
def test_state_dict_matches_manifest_key_by_key(name, builder):
    ref = manifest(name)
    with torch.device("meta"):
        model = builder(name)
    mine = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")]
            for k, v in model.state_dict().items()]
    assert len(mine) == ref["n_state_dict_keys"]
    for got, want in zip(mine, ref["state_dict"]):   # same names, shapes, dtypes, same order
        assert got == want
    assert count_parameters(model) == ref["n_params_all"]
    assert count_parameters(model, trainable_only=True) == ref["n_params_trainable"]


def test_ast_parameter_count_with_and_without_deit_heads():
    with torch.device("meta"):
        model = build_ast("ast_base384_f10_t10_527")
    assert count_parameters(model) == 88_132_063   # official AST (YuanGongND/ast) with its DeiT heads
    heads = sum(p.numel() for n, p in model.named_parameters() if n.startswith("v.head"))
    assert count_parameters(model) - heads == 86_594_063


def test_passt_light_and_20s_variants():
    ref = manifest("passt_s_swa_p16_s10_128_998_527")
    per_block = sum(torch.Size(s).numel() for k, s, _ in ref["state_dict"] if k.startswith("blocks.0."))
    with torch.device("meta"):
        light = build_passt("passt_l")
        s20 = build_passt("passt_s20")
    assert light.depth == 7 and len(light.blocks) == 7
    assert count_parameters(light) == ref["n_params_all"] - 5 * per_block == 50_714_398
    # 20 s: 2000 frames // stride 10 = 200 time positions (the 10 s model: 998 // 10 = 99)
    assert tuple(s20.time_new_pos_embed.shape) == (1, 768, 1, 200)
    assert count_parameters(s20) == ref["n_params_all"] + (200 - 99) * 768


@pytest.mark.parametrize("name,builder", [
    pytest.param("ast_base384_f10_t10_527", build_ast, marks=pytest.mark.slow),       # 131 GMAC
    pytest.param("passt_s_swa_p16_s10_128_998_527", build_passt, marks=pytest.mark.slow),
    ("passt_s_p16_s16_128_1000_527", build_passt),                                     # 47 GMAC
])
def test_full_size_forward_output_shapes(name, builder):
    ref = manifest(name)
    torch.manual_seed(0)
    model = builder(name).eval()
    with torch.inference_mode():
        out = model(torch.randn(*ref["input_shape"]))
    shapes = ref["output_shapes"]
    assert list(out["logits"].shape) == shapes.get("output", shapes.get("logits"))
    if "features" in shapes:
        assert list(out["embedding"].shape) == shapes["features"]
    assert torch.isfinite(out["logits"]).all()
    if isinstance(model, PaSST):
        assert model.grid == tuple(ref["patch_grid"])


@pytest.mark.parametrize("name,builder", [
    ("ast_base384_f10_t10_527", build_ast),
    ("passt_s_swa_p16_s10_128_998_527", build_passt),
    ("passt_s_p16_s16_128_1000_527", build_passt),
])
def test_macs_match_manifest_on_meta_device(name, builder):
    counting = pytest.importorskip("audiorepro.backbones.counting")
    ref = manifest(name)
    with torch.device("meta"):
        model = builder(name).eval()
        x = torch.empty(*ref["input_shape"])
    gmacs = counting.count_flops(model, x)
    # fvcore also counts LayerNorm; FlopCounterMode counts conv + linear + attention matmuls
    want = ref["gflops"] - ref["gflops_by_operator"]["layer_norm"]
    assert gmacs == pytest.approx(want, abs=2e-3)


def test_registry_builds_transformers():
    registry = pytest.importorskip("audiorepro.backbones.registry")
    with torch.device("meta"):
        ast = registry.build_backbone("ast_base384_f10_t10_527")                # scale=1.0
        passt = registry.build_backbone("passt_s_p16_s16_128_1000_527", scale=0.25, num_classes=10)
    assert isinstance(ast, ASTModel) and ast.embed_dim == 768 and ast.num_classes == 527
    assert isinstance(passt, PaSST) and passt.embed_dim == 192 and passt.head[1].out_features == 10
    assert passt.tap_names == list(range(1, 13))


# ------------------------------------------------------------------ literal reference forward
def _ref_blocks(x, sd, prefix, depth, heads):
    for i in range(depth):
        p = f"{prefix}blocks.{i}."
        h = F.layer_norm(x, x.shape[-1:], sd[p + "norm1.weight"], sd[p + "norm1.bias"], 1e-6)
        b, n, d = h.shape
        qkv = h @ sd[p + "attn.qkv.weight"].T + sd[p + "attn.qkv.bias"]
        q, k, v = qkv.reshape(b, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        att = ((q @ k.transpose(-2, -1)) * (d // heads) ** -0.5).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(b, n, d)
        x = x + o @ sd[p + "attn.proj.weight"].T + sd[p + "attn.proj.bias"]
        h = F.layer_norm(x, x.shape[-1:], sd[p + "norm2.weight"], sd[p + "norm2.bias"], 1e-6)
        h = F.gelu(h @ sd[p + "mlp.fc1.weight"].T + sd[p + "mlp.fc1.bias"])
        x = x + h @ sd[p + "mlp.fc2.weight"].T + sd[p + "mlp.fc2.bias"]
    return F.layer_norm(x, x.shape[-1:], sd[prefix + "norm.weight"], sd[prefix + "norm.bias"], 1e-6)


def test_ast_equals_literal_official_forward():
    model = small_ast()
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    x = torch.randn(2, 48, 32)                                     # (B, T, F)
    img = x.unsqueeze(1).transpose(2, 3)                           # (B, 1, F, T) as ASTModel
    p = F.conv2d(img, sd["v.patch_embed.proj.weight"], sd["v.patch_embed.proj.bias"], stride=10)
    p = p.flatten(2).transpose(1, 2)
    seq = torch.cat([sd["v.cls_token"].expand(2, -1, -1), sd["v.dist_token"].expand(2, -1, -1), p], 1)
    seq = seq + sd["v.pos_embed"]
    y = _ref_blocks(seq, sd, "v.", 3, 4)
    emb = (y[:, 0] + y[:, 1]) / 2
    logits = F.layer_norm(emb, (64,), sd["mlp_head.0.weight"], sd["mlp_head.0.bias"], 1e-5) \
        @ sd["mlp_head.1.weight"].T + sd["mlp_head.1.bias"]
    with torch.no_grad():
        out = model(x)
    assert model.grid == (2, 4)
    # timm trunk LayerNorms use eps 1e-6, the classifier LayerNorm PyTorch's default 1e-5
    assert {m.eps for n, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)
            and n.startswith("v.")} == {1e-6}
    assert model.mlp_head[0].eps == 1e-5
    torch.testing.assert_close(out["embedding"], emb, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["logits"], logits, atol=1e-5, rtol=1e-5)


def test_passt_equals_literal_official_forward_with_time_cut():
    model = small_passt()                                          # positions for 100 frames: 3 x 10
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    x = torch.randn(2, 1, 36, 70)                                  # 70 frames -> 6 patch columns
    p = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=10)
    assert p.shape[-2:] == (3, 6)
    p = p + sd["time_new_pos_embed"][..., :6] + sd["freq_new_pos_embed"]
    p = p.flatten(2).transpose(1, 2)
    cls = sd["cls_token"].expand(2, -1, -1) + sd["new_pos_embed"][:, :1]
    dist = sd["dist_token"].expand(2, -1, -1) + sd["new_pos_embed"][:, 1:]
    y = _ref_blocks(torch.cat([cls, dist, p], 1), sd, "", 3, 4)
    emb = (y[:, 0] + y[:, 1]) / 2
    logits = F.layer_norm(emb, (64,), sd["head.0.weight"], sd["head.0.bias"], 1e-5) \
        @ sd["head.1.weight"].T + sd["head.1.bias"]
    with torch.no_grad():
        out = model(x)
    assert model.grid == (3, 10)
    assert {m.eps for n, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)
            and not n.startswith("head")} == {1e-6}
    assert model.head[0].eps == 1e-5
    torch.testing.assert_close(out["embedding"], emb, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["logits"], logits, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------ taps
@pytest.mark.parametrize("make,shape", [(small_ast, (2, 48, 32)), (small_passt, (2, 1, 36, 100))])
def test_taps_token_modes_and_consistency(make, shape):
    model = make()
    x = torch.randn(*shape)
    with torch.no_grad():
        out = model(x)
        feats = model.forward_features(x)                          # all blocks, mean of CLS/DIST
        toks = model.forward_features(x, [1, 3], token_mode="tokens")
        cls = model.forward_features(x, 2, token_mode="cls")[2]
        dist = model.forward_features(x, 2, token_mode="dist")[2]
        mean = model.forward_features(x, 2, token_mode="mean_cls_dist")[2]
        patches = model.forward_features(x, 2, token_mode="mean_patches")[2]
        tok2 = model.forward_features(x, 2, token_mode="tokens")[2]
    f, t = model.patch_grid(shape[-1] if isinstance(model, PaSST) else None)
    n_tokens = 2 + f * t
    assert sorted(feats) == [1, 2, 3] and all(v.shape == (2, 64) for v in feats.values())
    torch.testing.assert_close(feats[3], out["embedding"])
    assert toks[1].shape == (2, n_tokens, 64)
    torch.testing.assert_close(mean, (cls + dist) / 2)
    torch.testing.assert_close(cls, tok2[:, 0])
    torch.testing.assert_close(patches, tok2[:, 2:].mean(1))
    assert not torch.allclose(feats[1], feats[3])


@pytest.mark.parametrize("make,shape", [(small_ast, (1, 48, 32)), (small_passt, (1, 1, 36, 100))])
def test_raw_taps_agree_with_base_hooks_and_stop_early(make, shape):
    model = make(depth=4)
    x = torch.randn(*shape)
    calls = []
    blocks = model.v.blocks if isinstance(model, ASTModel) else model.blocks
    handle = blocks[3].register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        mine = model.forward_features(x, [2], token_mode="tokens", apply_norm=False)[2]
        hooked = Backbone.forward_features(model, x, taps=[2])[2]  # generic hook path of base.py
    handle.remove()
    torch.testing.assert_close(mine, hooked)
    assert calls == []                                             # block 4 never ran


def test_tap_on_shallower_model_equals_truncated_model():
    deep = small_ast(depth=4)
    shallow = small_ast(depth=2, seed=1)
    shallow.load_state_dict({k: v for k, v in deep.state_dict().items()
                             if not k.startswith(("v.blocks.2.", "v.blocks.3."))})
    x = torch.randn(2, 48, 32)
    with torch.no_grad():
        torch.testing.assert_close(deep.forward_features(x, [2])[2], shallow(x)["embedding"])


def test_bad_taps_and_modes_are_named():
    model = small_ast()
    x = torch.randn(1, 48, 32)
    with pytest.raises(ValueError, match="layer tap 4"):
        model.forward_features(x, [4])
    with pytest.raises(ValueError, match="token_mode 'avg'"):
        model.forward_features(x, [1], token_mode="avg")
    with pytest.raises(ValueError, match="distillation"):
        pool_tokens(torch.zeros(1, 3, 4), "dist", num_prefix=1)


# ------------------------------------------------------------------ input checks
def test_input_shape_errors_name_the_expected_shape():
    with pytest.raises(ValueError, match=r"T=48, F=32"):
        small_ast()(torch.randn(1, 50, 32))
    with pytest.raises(ValueError, match=r"F=36"):
        small_passt()(torch.randn(1, 1, 40, 100))
    with pytest.raises(ValueError, match="fewer than one patch"):
        small_passt()(torch.randn(1, 1, 36, 10))
    with pytest.raises(ValueError, match="input_fdim=32"):
        small_passt(input_fdim=32)


# ------------------------------------------------------------------ PaSST specifics
def test_structured_and_unstructured_patchout_only_in_training():
    model = small_passt(s_patchout_t=3, s_patchout_f=1, u_patchout=0)
    x = torch.randn(2, 1, 36, 106)                                 # patch grid 3 x 10
    assert model.patch_grid(106) == (3, 10) and model.patch_grid(100) == (3, 9)
    with torch.no_grad():
        assert model.tokens(x).shape == (2, 2 + 3 * 10, 64)        # eval: no patchout
        model.train()
        assert model.tokens(x).shape == (2, 2 + (3 - 1) * (10 - 3), 64)
        model.s_patchout_t = model.s_patchout_f = 0
        model.u_patchout = 5
        assert model.tokens(x).shape == (2, 2 + 30 - 5, 64)
        model.u_patchout = 0
        train_out = model(x)["logits"]                             # no dropout: train == eval
        model.eval()
        torch.testing.assert_close(train_out, model(x)["logits"])


def test_patchout_keeps_position_of_surviving_patches():
    model = small_passt(s_patchout_t=9).train()                    # keep 1 of 10 time columns
    with torch.no_grad():
        model.cls_token.zero_(); model.dist_token.zero_(); model.new_pos_embed.zero_()
        model.freq_new_pos_embed.zero_(); model.patch_embed.proj.weight.zero_()
        model.patch_embed.proj.bias.zero_()
        tok = model.tokens(torch.randn(1, 1, 36, 106))[0, 2:]      # (3, D) = the time position
    cols = model.time_new_pos_embed[0, :, 0].T                      # (10, D)
    hits = [(tok[0] - c).abs().max().item() < 1e-6 for c in cols]
    assert sum(hits) == 1 and all(torch.allclose(t, tok[0]) for t in tok)


def test_passt_positions_cut_equals_checkpoint_cut_and_long_input_warns():
    long_model = small_passt()                                      # 10 time positions
    short_model = small_passt(input_tdim=60, seed=3)                # 6 time positions
    short_model.load_checkpoint(long_model.state_dict())            # cut to the first 6
    torch.testing.assert_close(short_model.time_new_pos_embed, long_model.time_new_pos_embed[..., :6])
    x = torch.randn(2, 1, 36, 66)                                   # 6 patch columns
    with torch.no_grad():
        torch.testing.assert_close(long_model(x)["logits"], short_model(x)["logits"])
        longer = torch.randn(1, 1, 36, 150)                         # 14 columns > 10 positions
        with pytest.warns(UserWarning, match="embed_long"):
            cut = long_model(longer)["embedding"]
        torch.testing.assert_close(cut, long_model(longer[..., :106])["embedding"])


def test_embed_long_averages_segments():
    model = small_passt()
    x = torch.randn(2, 1, 36, 200)
    with torch.no_grad():
        got = model.embed_long(x, segment_frames=100)
        want = (model(x[..., :100])["embedding"] + model(x[..., 100:])["embedding"]) / 2
        torch.testing.assert_close(got, want)
        # item 0: 105 valid frames -> the 5-frame tail (< one patch) is dropped;
        # item 1: 140 valid frames -> segments of 100 and 40 frames
        lens = torch.tensor([105, 140])
        got = model.embed_long(x, segment_frames=100, lengths=lens)
        torch.testing.assert_close(got[0], model(x[:1, ..., :100])["embedding"][0])
        want1 = (model(x[1:, ..., :100])["embedding"] + model(x[1:, ..., 100:140])["embedding"]) / 2
        torch.testing.assert_close(got[1], want1[0])
        # overlapping segments (hop 50): starts 0, 50, 100 (the last one ends at 200)
        got = model.embed_long(x[:1], segment_frames=100, hop=50)
        want = sum(model(x[:1, ..., s:s + 100])["embedding"] for s in (0, 50, 100)) / 3
        torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="segment_frames=120"):
        model.embed_long(x, segment_frames=120)


# ------------------------------------------------------------------ checkpoints
def test_ast_checkpoint_with_module_prefix_roundtrip(tmp_path):
    src = small_ast(seed=1)
    path = tmp_path / "ast.pth"
    torch.save({"module." + k: v for k, v in src.state_dict().items()}, path)  # DataParallel
    dst = small_ast(seed=2)
    x = torch.randn(1, 48, 32)
    with torch.no_grad():
        assert not torch.allclose(dst(x)["logits"], src(x)["logits"])
        report = dst.load_checkpoint(path)
        torch.testing.assert_close(dst(x)["logits"], src(x)["logits"])
    assert report.ok and len(report.loaded) == len(src.state_dict())


def test_passt_checkpoint_errors_name_file_and_keys(tmp_path):
    sd = small_passt().state_dict()
    missing = dict(sd)
    del missing["head_dist.weight"]
    torch.save(missing, tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match=r"missing\.pt(.|\n)*head_dist\.weight"):
        small_passt().load_checkpoint(tmp_path / "missing.pt")
    extra = dict(sd, **{"pos_embed": torch.zeros(1, 3, 64)})
    torch.save(extra, tmp_path / "extra.pt")
    with pytest.raises(CheckpointError, match=r"extra\.pt(.|\n)*unexpected(.|\n)*pos_embed"):
        small_passt().load_checkpoint(tmp_path / "extra.pt")
    with pytest.raises(CheckpointError, match=r"blocks\.0\.attn\.qkv\.weight"):
        small_passt(embed_dim=128, num_heads=2).load_checkpoint(tmp_path / "extra.pt")
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        small_passt().load_checkpoint(tmp_path / "nope.pt")


def test_ast_pos_embed_adaptation_crops_centre_and_interpolates():
    d = 3
    pos = torch.arange((2 + 12) * d, dtype=torch.float32).reshape(1, 2 + 12, d)
    grid = pos[:, 2:].transpose(1, 2).reshape(1, d, 2, 6)
    small = adapt_pos_embed(pos, (2, 6), (2, 4))
    assert small.shape == (1, 2 + 8, d)
    torch.testing.assert_close(small[:, :2], pos[:, :2])           # CLS / DIST kept
    want = grid[..., 1:5].reshape(1, d, 8).transpose(1, 2)         # start 6 // 2 - 4 // 2 = 1
    torch.testing.assert_close(small[:, 2:], want)
    big = adapt_pos_embed(pos, (2, 6), (3, 12))
    assert big.shape == (1, 2 + 36, d)
    # a model built for fewer frames loads the longer checkpoint (AST does the same cut)
    src = small_ast(input_tdim=68)                                  # grid 2 x 6
    dst = small_ast(input_tdim=48)                                  # grid 2 x 4
    dst.load_checkpoint(src.state_dict())
    src_grid = src.v.pos_embed[:, 2:].detach().transpose(1, 2).reshape(1, 64, 2, 6)
    torch.testing.assert_close(dst.v.pos_embed[:, 2:].detach(),
                               src_grid[..., 1:5].reshape(1, 64, 8).transpose(1, 2))


# ------------------------------------------------------------------ builders
def test_cpu_sized_variant_parameter_count_by_hand():
    with torch.device("meta"):
        model = build_ast("ast_base384_f10_t10_527", scale="cpu")
        assert build_passt("passt_s", scale=0.25).embed_dim == 192
    d, depth, c = 192, 4, 527
    assert (model.embed_dim, model.depth, model.num_heads) == (192, 4, 3)
    per_block = 12 * d * d + 13 * d
    n_patches = 12 * 101
    total = (d + (n_patches + 2) * d + d                            # cls, pos, dist
             + 256 * d + d + depth * per_block + 2 * d              # patch embed, blocks, norm
             + 2 * (1000 * d + 1000) + 2 * d + c * d + c)           # DeiT heads, mlp_head
    assert count_parameters(model) == total
    with pytest.raises(ValueError, match="full-size"):
        build_ast("ast", scale="cpu", checkpoint="x.pth")
    with pytest.raises(KeyError, match="passt_x"):
        build_passt("passt_x")


def test_frontend_layouts():
    ast = small_ast()
    passt = small_passt()
    assert ast.frontend_name == "kaldi_fbank_128" and passt.frontend_name == "passt"
    assert ast.sample_rate == 16000 and passt.sample_rate == 32000
    pytest.importorskip("audiorepro.frontends")
    torch.manual_seed(0)
    a = ast.prepare(torch.randn(2, 16000))                          # 1 s at 16 kHz
    p = passt.prepare(torch.randn(2, 32000))                        # 1 s at 32 kHz
    assert a.shape == (2, 48, 128)                                  # padded/cropped to input_tdim
    assert p.shape == (2, 1, 128, 100)                              # pre-emphasis: 31999 samples, hop 320


def test_patchout_gradients_reach_only_kept_time_positions():
    model = small_passt(s_patchout_t=7).train()                    # keep 3 of 10 time columns
    model(torch.randn(2, 1, 36, 106))["logits"].sum().backward()
    grad = model.time_new_pos_embed.grad[0, :, 0]                  # (D, 10)
    assert int((grad.abs().sum(0) > 0).sum()) == 3
    assert model.freq_new_pos_embed.grad.abs().sum() > 0


def test_reset_classifier_and_example_input():
    ast, passt = small_ast(), small_passt()
    ast.reset_classifier(7)
    passt.reset_classifier(7)
    with torch.no_grad():
        assert ast(ast.example_input(2))["logits"].shape == (2, 7)
        x = passt.example_input(2, seconds=0.5)                    # 1 + (16000 - 1) // 320 frames
        assert x.shape == (2, 1, 36, 50)
        assert passt(x)["logits"].shape == (2, 7)
    assert passt.example_input(1, seconds=10.0).shape[-1] == 100   # capped at input_tdim
    assert passt.head_dist.out_features == 7
