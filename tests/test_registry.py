"""Backbone registry and the manifest checker CLI."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from audiorepro.backbones import Backbone, build_backbone, list_backbones, register_backbone
from audiorepro.backbones import registry as reg
from audiorepro.backbones.manifest import main as manifest_main

FIX = Path(__file__).parent / "fixtures" / "reference_state_dicts"
ALL = ["panns_cnn14_16k", "panns_cnn14_32k", "panns_cnn10_32k", "vggish_harritaylor",
       "vggish_harritaylor_core", "vggish_tcvrick", "crepe_full", "crepe_tiny",
       "ast_base384_f10_t10_527", "passt_s_swa_p16_s10_128_998_527", "passt_s_p16_s16_128_1000_527"]


def test_all_names_registered_with_manifests() -> None:
    names = list_backbones()
    assert sorted(ALL) == sorted(set(names) & set(ALL))
    for n in ALL:
        spec = reg.backbone_spec(n)
        if spec.manifest is not None:
            assert (FIX / f"{spec.manifest}.json").is_file(), n


def test_unknown_name_lists_registered() -> None:
    with pytest.raises(KeyError, match="panns_cnn14_16k"):
        build_backbone("panns_cnn99")


@pytest.mark.parametrize("name", ["panns_cnn10_32k", "vggish_tcvrick", "crepe_tiny"])
def test_build_small_variants(name: str) -> None:
    m = build_backbone(name, scale=0.25)
    assert isinstance(m, Backbone)
    assert m.tap_names and set(m.tap_modules()) == set(m.tap_names)
    assert m.input_kind in ("wave", "logmel", "examples")
    x = m.example_input(1, 1.0)
    with torch.no_grad():
        out = m.eval()(x)
    assert out["embedding"].shape[-1] == m.embed_dim


def test_num_classes_sets_output_layer() -> None:
    assert build_backbone("panns_cnn10_32k", scale=0.25, num_classes=7).fc_audioset.out_features == 7
    v = build_backbone("vggish_tcvrick", scale=0.25, num_classes=5).eval()
    with torch.no_grad():
        assert v(v.example_input(1, 1.0))["logits"].shape == (1, 5)


def test_lazy_registration_and_type_check() -> None:
    register_backbone("_test_missing", "audiorepro.backbones._no_such_module:build")
    register_backbone("_test_not_backbone", "torch.nn:Identity")   # returns an nn.Identity
    try:
        assert "_test_missing" in list_backbones()
        assert "_test_missing" not in list_backbones(available_only=True)
        with pytest.raises(ImportError, match="_no_such_module"):
            build_backbone("_test_missing")
        with pytest.raises(TypeError, match="not a Backbone"):
            build_backbone("_test_not_backbone")
        with pytest.raises(ValueError, match="already registered"):
            register_backbone("_test_missing", "x.y:z")
    finally:
        reg._REGISTRY.pop("_test_missing", None)
        reg._REGISTRY.pop("_test_not_backbone", None)


def test_transformer_names_resolve_when_their_modules_exist() -> None:
    for n in ("ast_base384_f10_t10_527", "passt_s_swa_p16_s10_128_998_527"):
        mod = reg.backbone_spec(n).target.split(":")[0]
        if importlib.util.find_spec(mod) is None:
            with pytest.raises(ImportError):
                build_backbone(n, scale=0.25)
        else:
            assert n in list_backbones(available_only=True)


def test_manifest_cli_match_mismatch_and_errors(capsys: pytest.CaptureFixture) -> None:
    assert manifest_main(["vggish_tcvrick", str(FIX / "vggish_tcvrick.json"), "--meta"]) == 0
    out = capsys.readouterr().out
    assert "matching keys: 18" in out and "RESULT: MATCH" in out
    assert "72,141,184" in out
    # harritaylor manifest: pproc.* missing, fc.* unexpected, embeddings.* missing
    assert manifest_main(["vggish_tcvrick", str(FIX / "vggish_harritaylor.json"), "--meta"]) == 1
    out = capsys.readouterr().out
    assert "missing keys (in manifest, not in model): 8" in out  # embeddings.* 6 + pproc.* 2
    assert "unexpected keys (in model, not in manifest): 6" in out
    assert "pproc.pca_means" in out and "fc.0.weight" in out and "MISMATCH" in out
    assert manifest_main(["vggish_tcvrick", str(FIX / "nope.json")]) == 2
    assert "nope.json" in capsys.readouterr().err
    assert manifest_main(["no_such_model", str(FIX / "vggish_tcvrick.json")]) == 2


def test_frontends_produce_the_forward_input() -> None:
    from audiorepro.backbones import LazyFrontend
    panns = build_backbone("panns_cnn10_32k", scale=0.25)
    assert panns.frontend is None and panns.input_kind == "wave"
    wave = torch.randn(32000)
    assert torch.equal(panns.prepare(wave), wave)
    crepe = build_backbone("crepe_tiny", scale=0.25)
    frames = crepe.prepare(torch.randn(16000))
    assert frames.shape == (1 + 16000 // 160, 1024)
    assert torch.allclose(frames.mean(1), torch.zeros(101), atol=1e-5)
    assert torch.allclose(frames.std(1), torch.ones(101), atol=1e-4)
    vgg = build_backbone("vggish_tcvrick", scale=0.25)
    if importlib.util.find_spec("audiorepro.frontends") is not None:
        ex = vgg.prepare(torch.randn(2 * 16000))               # 2 s -> 198 frames -> 2 examples
        assert ex.shape == (2, 1, 96, 64)
    missing = LazyFrontend("audiorepro._no_such_frontends:fn")
    with pytest.raises(ImportError, match="_no_such_frontends"):
        missing(torch.randn(10))


def test_cpu_preset_builds_a_small_variant_of_every_backbone_and_bad_presets_are_named():
    from audiorepro.backbones import build_backbone
    from audiorepro.backbones.counting import count_parameters

    for name, full in (("panns_cnn10_32k", 5_219_279), ("ast_base384_f10_t10_527", 88_132_063)):
        small = count_parameters(build_backbone(name, scale="cpu"))["trainable"]
        assert small < full / 10, (name, small)
    with pytest.raises(ValueError, match=r"'panns_cnn10_32k'.*unknown scale preset 'huge'"):
        build_backbone("panns_cnn10_32k", scale="huge")
