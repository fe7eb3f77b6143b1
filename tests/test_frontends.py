"""Front ends: exact formulas against direct numpy implementations / torchaudio's Kaldi code,
frame counts, pure-tone peaks, normalisation constants; the on-disk feature cache."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torchaudio
import torchaudio.compliance.kaldi as kaldi

from audiorepro.data.audio import save_audio
from audiorepro.data.cliptable import ClipTable
from audiorepro.data.dataset import ClipDataset
from audiorepro.frontends import (PRESET_SOURCES, PRESETS, CacheError, CachedFeatureDataset,
                                  FeatureCache, KaldiFbankConfig, describe_preset,
                                  frontend_from_config, make_frontend, preset_config, time_major,
                                  vggish_examples)


def tone(freq: float, seconds: float, sr: int, amp: float = 0.5, batch: int | None = None) -> torch.Tensor:
    t = torch.arange(int(round(seconds * sr)), dtype=torch.float64) / sr
    w = (amp * torch.sin(2 * math.pi * freq * t)).float()
    return w if batch is None else w.expand(batch, -1).clone()


def noise(seconds: float, sr: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(batch, int(seconds * sr), generator=g)


def htk_mel(f):
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


# ----------------------------------------------------------------------------- shapes / API
@pytest.mark.parametrize("name, seconds, expected", [
    ("kaldi_fbank_128", 10.0, (128, 1056)),
    ("panns_16k", 1.0, (64, 101)),
    ("panns_32k", 1.0, (64, 101)),
    ("vggish", 1.0, (64, 98)),        # 1 + (16000 - 400) // 160
    ("passt", 1.0, (128, 100)),       # 1 + (32000 - 1 - 1) // 320
    ("bow_96", 1.0, (96, 100)),
    ("logmel_64", 1.0, (64, 101)),
])
def test_preset_shapes_and_frame_counts(name, seconds, expected):
    fe = make_frontend(name)
    x = noise(seconds, fe.sample_rate, batch=2)
    y = fe(x)
    assert tuple(y.shape) == (2,) + expected
    assert fe.num_frames(x.shape[-1]) == expected[1]
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_batch_equals_single_and_time_major(name):
    fe = make_frontend(name)
    x = noise(1.0, fe.sample_rate, batch=3, seed=1)
    y = fe(x)
    for i in range(3):
        torch.testing.assert_close(fe(x[i]), y[i], rtol=1e-4, atol=1e-4)
    ft = make_frontend(name, time_major=True)
    torch.testing.assert_close(ft(x), time_major(y))
    assert ft(x).shape == (3, y.shape[2], y.shape[1])


def test_odd_lengths_frame_counts():
    for name in ("panns_16k", "vggish", "passt", "bow_96", "logmel_64"):
        fe = make_frontend(name)
        for n in (fe.sample_rate // 2 + 1, fe.sample_rate + 333):
            assert fe(torch.zeros(1, n)).shape[-1] == fe.num_frames(n), (name, n)
    kf = make_frontend("kaldi_fbank_128", target_frames=None)
    for n in (400, 559, 560, 16000):
        assert kf(noise(n / 16000, 16000, 1)).shape[-1] == 1 + (n - 400) // 160


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(KeyError, match="unknown front-end preset 'nope'"):
        make_frontend("nope")
    with pytest.raises(TypeError, match="no field"):
        preset_config("passt", n_fft_typo=3)
    fe = make_frontend("logmel_64")
    with pytest.raises(ValueError, match="wave must be"):
        fe(torch.zeros(1, 2, 100))
    with pytest.raises(ValueError, match="KaldiFbank: wave of 100 samples is shorter than the 400"):
        make_frontend("kaldi_fbank_128")(torch.zeros(1, 100))


@pytest.mark.parametrize("name,needed", [("kaldi_fbank_128", 400), ("vggish", 400),
                                         ("panns_16k", 257), ("panns_32k", 513), ("passt", 514),
                                         ("bow_96", 1025), ("logmel_64", 257)])
def test_minimum_input_length_is_exact_and_too_short_is_a_clear_error(name, needed):
    # centred STFTs reflect-pad n_fft // 2 samples, which needs n_fft // 2 + 1 input samples
    # (PaSST: one more, its pre-emphasis drops a sample); framed front ends need one window
    fe = make_frontend(name)
    assert fe.min_samples == needed
    assert fe(torch.randn(1, needed)).shape[0] == 1
    with pytest.raises(ValueError, match=rf"wave of {needed - 1} samples is shorter than the {needed}"):
        fe(torch.randn(1, needed - 1))


def test_cached_dataset_names_the_clip_that_is_too_short(tmp_path):
    import pandas as pd

    from audiorepro.data.audio import save_audio
    from audiorepro.data.cliptable import ClipTable
    from audiorepro.data.dataset import ClipDataset
    from audiorepro.frontends import CachedFeatureDataset, FeatureCache

    save_audio(tmp_path / "short.wav", np.zeros(100, np.float32), 16000)
    table = ClipTable(pd.DataFrame([dict(clip_id="tiny", path="short.wav", split="train", labels="x")]),
                      tmp_path, name="t")
    ds = CachedFeatureDataset(ClipDataset(table, clip_seconds=None), make_frontend("logmel_64"),
                              cache=FeatureCache(tmp_path / "cache"))
    with pytest.raises(ValueError, match=r"clip 'tiny' \(.*short.wav\).*100 samples is shorter"):
        ds[0]
    with pytest.raises(ValueError, match="window_type"):
        frontend_from_config(KaldiFbankConfig(window_type="povey"))
    povey = frontend_from_config(KaldiFbankConfig(window_type="povey", vectorized=False,
                                                  target_frames=None, normalize=False))
    x = noise(0.1, 16000, 1)
    ref = kaldi.fbank(x - x.mean(), htk_compat=True, use_energy=False, num_mel_bins=128,
                      dither=0.0, window_type="povey")
    torch.testing.assert_close(povey(x)[0].T, ref)


def test_extract_resamples_to_the_frontend_rate():
    fe = make_frontend("logmel_64")
    x48 = tone(1000.0, 1.0, 48000, batch=2)
    y = fe.extract(x48, 48000)
    assert y.shape == (2, 64, 101)
    torch.testing.assert_close(y, fe(torchaudio.functional.resample(x48, 48000, 16000)))
    direct = fe(tone(1000.0, 1.0, 16000, batch=2))
    assert int(y[0].mean(-1).argmax()) == int(direct[0].mean(-1).argmax())
    torch.testing.assert_close(fe.extract(direct.new_zeros(2, 16000), 16000), fe(torch.zeros(2, 16000)))


def test_config_dict_roundtrip():
    assert set(PRESET_SOURCES) == set(PRESETS)
    assert "AugmentMelSTFT" in describe_preset("passt")
    for name, cfg in PRESETS.items():
        fe = frontend_from_config(cfg.to_dict())
        assert fe.config == cfg
    with pytest.raises(ValueError, match="unknown kind"):
        frontend_from_config({"kind": "Nope"})


# ----------------------------------------------------------------------------- Kaldi fbank
def test_kaldi_vectorized_equals_torchaudio_fbank():
    x = noise(2.03, 16000, batch=2, seed=3) + 0.05  # DC offset removed per clip
    fe = make_frontend("kaldi_fbank_128", target_frames=None, normalize=False)
    y = fe(x)
    for i in range(2):
        w = x[i] - x[i].mean()
        ref = kaldi.fbank(w.unsqueeze(0), htk_compat=True, sample_frequency=16000, use_energy=False,
                          window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)
        torch.testing.assert_close(y[i].T, ref, rtol=1e-4, atol=1e-4)
    loop = make_frontend("kaldi_fbank_128", target_frames=None, normalize=False, vectorized=False)
    torch.testing.assert_close(loop(x), y, rtol=1e-4, atol=1e-4)


def test_kaldi_vectorized_rounds_like_kaldi_on_tones_and_quiet_input():
    # a pure tone leaves most bins near the eps floor, where a different rounding order of the
    # pre-emphasis (e.g. a fused d - a * d_prev) moves the log by up to 3e-3
    x = torch.stack([tone(1000.0, 1.0, 16000), tone(3000.0, 1.0, 16000, amp=0.01),
                     1e-4 * noise(1.0, 16000, 1, seed=12)[0] + 0.5])
    fast = make_frontend("kaldi_fbank_128", target_frames=None, normalize=False)(x)
    lib = make_frontend("kaldi_fbank_128", target_frames=None, normalize=False, library=True)(x)
    for i in range(3):
        w = x[i] - x[i].mean()
        ref = kaldi.fbank(w.unsqueeze(0), htk_compat=True, sample_frequency=16000, use_energy=False,
                          window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)
        torch.testing.assert_close(lib[i].T, ref, rtol=0, atol=0)  # library=True is kaldi.fbank
        torch.testing.assert_close(fast[i].T, ref, rtol=1e-5, atol=1e-5)


def test_kaldi_normalisation_padding_and_crop():
    raw_fe = make_frontend("kaldi_fbank_128", target_frames=None, normalize=False)
    fe = make_frontend("kaldi_fbank_128")  # 1056 frames, AST AudioSet stats
    x = noise(5.0, 16000, batch=1, seed=4)
    raw = raw_fe(x)
    y = fe(x)
    n = 1 + (80000 - 400) // 160
    assert raw.shape[-1] == n == 498
    torch.testing.assert_close(y[..., :n], (raw + 4.2677393) / (4.5689974 * 2))
    # zero padding happens before normalisation (as AST): padded frames = 4.2677393 / 9.1379948
    torch.testing.assert_close(y[..., n:], torch.full_like(y[..., n:], 4.2677393 / 9.1379948))
    # crop: 10 s = 998 frames -> 1024 for FSD50K keeps the padded tail, 500 crops
    long = noise(10.0, 16000, batch=1, seed=5)
    assert make_frontend("kaldi_fbank_128", target_frames=None)(long).shape[-1] == 998
    assert make_frontend("kaldi_fbank_128", target_frames=1024)(long).shape[-1] == 1024
    c = make_frontend("kaldi_fbank_128", target_frames=500)(long)
    full = make_frontend("kaldi_fbank_128", target_frames=None)(long)
    torch.testing.assert_close(c, full[..., :500])
    # custom stats
    y2 = make_frontend("kaldi_fbank_128", target_frames=None, norm_mean=-1.0, norm_std=0.5)(x)
    torch.testing.assert_close(y2, (raw + 1.0) / 1.0)


def test_kaldi_tone_peaks_in_its_mel_bin():
    fe = make_frontend("kaldi_fbank_128", target_frames=None, normalize=False)
    # Kaldi bins: equally spaced in HTK mel between 20 Hz and 8 kHz, centre i = lo + (i+1) delta
    lo, hi = htk_mel(20.0), htk_mel(8000.0)
    centres = lo + (np.arange(128) + 1) * (hi - lo) / 129
    for f in (440.0, 1000.0, 3000.0):
        y = fe(tone(f, 1.0, 16000, batch=1))[0]
        peak = int(y.mean(-1).argmax())
        assert peak == int(np.argmin(np.abs(centres - htk_mel(f)))), f


# ----------------------------------------------------------------------------- PANNs
def test_panns_db_of_silence_is_minus_100():
    # 10 log10(max(0, 1e-10)) = -100 dB exactly (ref 1.0, top_db None)
    y = make_frontend("panns_32k")(torch.zeros(1, 32000))
    assert torch.all(y == -100.0)


def _slaney_mel(f):
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, lin)


def _slaney_hz(m):
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (m - 15.0)), m * 200.0 / 3)


def numpy_panns(wave: np.ndarray, sr: int, n_fft: int, hop: int, n_mels: int, fmin: float,
                fmax: float) -> np.ndarray:
    """Direct implementation of torchlibrosa Spectrogram + LogmelFilterBank (librosa mel)."""
    x = np.pad(wave.astype(np.float64), n_fft // 2, mode="reflect")
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    n = 1 + (len(x) - n_fft) // hop
    frames = np.stack([x[i * hop:i * hop + n_fft] * win for i in range(n)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (N, n_fft/2+1)
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    pts = _slaney_hz(np.linspace(_slaney_mel(fmin), _slaney_mel(fmax), n_mels + 2))
    W = np.zeros((n_mels, len(freqs)))
    for m in range(n_mels):
        up = (freqs - pts[m]) / (pts[m + 1] - pts[m])
        down = (pts[m + 2] - freqs) / (pts[m + 2] - pts[m + 1])
        W[m] = np.maximum(0, np.minimum(up, down)) * 2.0 / (pts[m + 2] - pts[m])
    mel = power @ W.T
    return (10 * np.log10(np.maximum(mel, 1e-10))).T  # (M, N)


@pytest.mark.parametrize("name, sr, n_fft, hop, fmax", [("panns_16k", 16000, 512, 160, 8000.0),
                                                        ("panns_32k", 32000, 1024, 320, 14000.0)])
def test_panns_matches_numpy_torchlibrosa_formula(name, sr, n_fft, hop, fmax):
    x = noise(0.5, sr, batch=1, seed=6) + tone(1500.0, 0.5, sr, batch=1)
    y = make_frontend(name)(x)[0].double().numpy()
    ref = numpy_panns(x[0].numpy(), sr, n_fft, hop, 64, 50.0, fmax)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, atol=2e-3)


@pytest.mark.slow  # importing librosa (numba) takes seconds
def test_panns_matches_librosa_if_available():
    librosa = pytest.importorskip("librosa")
    x = noise(0.5, 32000, batch=1, seed=7)[0].numpy()
    S = np.abs(librosa.stft(x, n_fft=1024, hop_length=320, window="hann", center=True,
                            pad_mode="reflect")) ** 2
    mel = librosa.filters.mel(sr=32000, n_fft=1024, n_mels=64, fmin=50, fmax=14000) @ S
    ref = 10 * np.log10(np.maximum(mel, 1e-10))
    y = make_frontend("panns_32k")(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, ref, atol=2e-3)


# ----------------------------------------------------------------------------- VGGish
def numpy_vggish(wave: np.ndarray) -> np.ndarray:
    """Direct implementation of mel_features.log_mel_spectrogram (VGGish params): (N, 64)."""
    win, hop, nfft = 400, 160, 512
    n = 1 + (len(wave) - win) // hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi / win * np.arange(win))
    frames = np.stack([wave[i * hop:i * hop + win] for i in range(n)]).astype(np.float64)
    mag = np.abs(np.fft.rfft(frames * window, nfft))
    bins_mel = htk_mel(np.linspace(0, 8000, nfft // 2 + 1))
    edges = np.linspace(htk_mel(125.0), htk_mel(7500.0), 66)
    W = np.empty((nfft // 2 + 1, 64))
    for i in range(64):
        lo, c, hi = edges[i:i + 3]
        W[:, i] = np.maximum(0.0, np.minimum((bins_mel - lo) / (c - lo), (hi - bins_mel) / (hi - c)))
    W[0, :] = 0.0
    return np.log(mag @ W + 0.01)


def test_vggish_matches_numpy_mel_features():
    x = noise(1.3, 16000, batch=1, seed=8)[0] + tone(700.0, 1.3, 16000)
    y = make_frontend("vggish")(x).double().numpy().T  # (N, 64)
    ref = numpy_vggish(x.numpy())
    assert y.shape == ref.shape == (1 + (20800 - 400) // 160, 64)
    np.testing.assert_allclose(y, ref, atol=1e-4)


def test_vggish_examples_counts_and_layout():
    ten = noise(10.0, 16000, batch=1, seed=9)[0]
    ex = vggish_examples(ten)
    assert ex.shape == (10, 1, 96, 64)
    feats = make_frontend("vggish")(ten).T  # (998, 64)
    for k in (0, 9):
        torch.testing.assert_close(ex[k, 0], feats[96 * k:96 * (k + 1)])
    assert vggish_examples(torch.zeros(15600)).shape == (1, 1, 96, 64)  # 0.975 s: one example
    batch = vggish_examples(torch.zeros(2, 16000 * 3))
    assert batch.shape == (2, 3, 1, 96, 64)
    assert torch.allclose(batch, torch.full_like(batch, math.log(0.01)))  # silence = log(0.01)
    with pytest.raises(ValueError, match="needs >= 15600 samples"):
        vggish_examples(torch.zeros(15599))
    assert vggish_examples(torch.zeros(8000), pad_short=True).shape == (1, 1, 96, 64)


def test_vggish_uses_magnitude_not_power():
    a = make_frontend("vggish")(tone(1000.0, 1.0, 16000, amp=0.2))
    b = make_frontend("vggish")(tone(1000.0, 1.0, 16000, amp=0.4))
    peak = int(a.mean(-1).argmax())
    # doubling the amplitude doubles the (magnitude) mel energy: log ratio ~ ln 2 where x >> 0.01
    ratio = (b[peak] - a[peak]).mean().item()
    assert abs(ratio - math.log(2.0)) < 0.02


# ----------------------------------------------------------------------------- PaSST
def kaldi_banks_numpy(n_mels: int, n_fft: int, sr: int, fmin: float, fmax: float) -> np.ndarray:
    lo, hi = htk_mel(fmin), htk_mel(fmax)
    delta = (hi - lo) / (n_mels + 1)
    mel = htk_mel(sr / n_fft * np.arange(n_fft // 2))
    W = np.zeros((n_mels, n_fft // 2 + 1))
    for b in range(n_mels):
        left, c, right = lo + b * delta, lo + (b + 1) * delta, lo + (b + 2) * delta
        W[b, :-1] = np.maximum(0, np.minimum((mel - left) / (c - left), (right - mel) / (right - c)))
    return W


def numpy_passt(wave: np.ndarray) -> np.ndarray:
    x = wave.astype(np.float64)
    x = x[1:] - 0.97 * x[:-1]  # conv1d with [-0.97, 1]
    x = np.pad(x, 512, mode="reflect")
    win = np.zeros(1024)
    win[112:912] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(800) / 799)  # symmetric, centred
    n = 1 + (len(x) - 1024) // 320
    frames = np.stack([x[i * 320:i * 320 + 1024] * win for i in range(n)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    mel = kaldi_banks_numpy(128, 1024, 32000, 0.0, 15000.0) @ power.T
    return (np.log(mel + 1e-5) + 4.5) / 5


def test_passt_matches_numpy_and_constants():
    fe = make_frontend("passt")
    assert fe.config.fmax_effective == 15000.0  # sr // 2 - fmax_aug_range // 2
    x = noise(0.7, 32000, batch=1, seed=10)[0] + tone(2000.0, 0.7, 32000)
    y = fe(x).double().numpy()
    ref = numpy_passt(x.numpy())
    assert y.shape == ref.shape == (128, 1 + (22400 - 2) // 320)
    np.testing.assert_allclose(y, ref, atol=1e-3)
    silent = fe(torch.zeros(1, 32000 * 10))
    assert silent.shape == (1, 128, 1000)
    torch.testing.assert_close(silent, torch.full_like(silent, (math.log(1e-5) + 4.5) / 5))


def test_passt_band_augmentation_only_in_training():
    fe = make_frontend("passt")
    x = noise(0.5, 32000, batch=1, seed=11)
    torch.testing.assert_close(fe(x), fe(x))  # eval: deterministic
    fe.train()
    torch.manual_seed(0)
    outs = [fe(x) for _ in range(4)]
    assert any(not torch.allclose(outs[0], o) for o in outs[1:])


# ----------------------------------------------------------------------------- bow / logmel
@pytest.mark.parametrize("name", ["bow_96", "logmel_64", "panns_16k"])
def test_tone_peak_in_expected_bin(name):
    fe = make_frontend(name)
    c = fe.config
    for f in (500.0, 2500.0):
        y = fe(tone(f, 1.0, c.sample_rate))
        peak = int(y.mean(-1).argmax())
        fb = fe.mel_scale.fb.numpy()  # (n_freqs, n_mels)
        # the bin whose filter has the largest weight at the tone's FFT bin
        k = int(round(f * c.n_fft / c.sample_rate))
        assert peak == int(fb[k].argmax()), (name, f)
        if c.mel_scale == "htk":
            edges = np.linspace(htk_mel(c.f_min), htk_mel(c.f_max), c.n_mels + 2)
            assert edges[peak] <= htk_mel(f) <= edges[peak + 2]


def test_bow_96_is_96_by_100_per_second_and_log():
    fe = make_frontend("bow_96")
    y = fe(torch.zeros(2, 16000 * 3))
    assert y.shape == (2, 96, 300)
    torch.testing.assert_close(y, torch.full_like(y, math.log(1e-6)))


# ----------------------------------------------------------------------------- cache
def test_feature_cache_get_or_compute(tmp_path):
    cache = FeatureCache(tmp_path)
    key = {"frontend": "x", "n": 1}
    calls: list[list[str]] = []

    def compute(ids):
        calls.append(list(ids))
        return np.stack([np.full((2, 3), float(len(i)), np.float32) for i in ids])

    ids = ["a", "bb", "c/c", "dddd"]
    out = cache.get_or_compute(key, ids, compute, batch_size=3)
    assert out.shape == (4, 2, 3) and calls == [["a", "bb", "c/c"], ["dddd"]]
    again = cache.get_or_compute(key, ids, compute)
    assert len(calls) == 2  # all hits
    np.testing.assert_array_equal(out, again)
    np.testing.assert_array_equal(again[:, 0, 0], [1, 2, 3, 4])
    # a config change gives a new key and recomputes
    key2 = {"frontend": "x", "n": 2}
    assert cache.key(key2) != cache.key(key)
    cache.get_or_compute(key2, ids[:1], compute)
    assert calls[-1] == ["a"]
    assert (tmp_path / cache.key(key) / "key.json").is_file()
    assert cache.count(key) == 4
    assert not list(tmp_path.rglob("*.tmp"))


def test_feature_cache_survives_interruption_and_corruption(tmp_path):
    cache = FeatureCache(tmp_path)
    key = {"k": 1}
    ids = [f"clip{i}" for i in range(5)]

    def failing(batch):
        if "clip3" in batch:
            raise KeyboardInterrupt
        return [np.ones(4) * int(b[-1]) for b in batch]

    with pytest.raises(KeyboardInterrupt):
        cache.get_or_compute(key, ids, failing, batch_size=1)
    assert cache.count(key) == 3
    seen: list[str] = []

    def ok(batch):
        seen.extend(batch)
        return [np.ones(4) * int(b[-1]) for b in batch]

    out = cache.get_or_compute(key, ids, ok)
    assert seen == ["clip3", "clip4"]
    np.testing.assert_array_equal(out[:, 0], [0, 1, 2, 3, 4])
    cache.path(key, "clip0").write_bytes(b"garbage")  # corrupt entry -> recomputed
    seen.clear()
    cache.get_or_compute(key, ids, ok)
    assert seen == ["clip0"]


def _tiny_table(tmp_path, n=3, sr=16000):
    rows = []
    for i in range(n):
        wave = tone(300.0 * (i + 1), 1.2, sr, amp=0.3)
        save_audio(tmp_path / "audio" / f"c{i}.wav", wave, sr)
        rows.append({"clip_id": f"c{i}", "path": f"audio/c{i}.wav", "split": "train",
                     "labels": "a" if i % 2 else "b"})
    return ClipTable(pd.DataFrame(rows), tmp_path, name="tiny")


def test_cached_feature_dataset(tmp_path):
    table = _tiny_table(tmp_path)
    ds = ClipDataset(table, sample_rate=16000, clip_seconds=1.0)
    fe = make_frontend("logmel_64")
    cache = FeatureCache(tmp_path / "cache")
    cds = CachedFeatureDataset(ds, fe, cache)
    item = cds[1]
    assert item["features"].shape == (64, 101)
    torch.testing.assert_close(item["features"], fe(ds[1]["wave"]))
    torch.testing.assert_close(item["target"], ds[1]["target"])
    assert cds.precompute(batch_size=2) == 2  # the two clips not yet cached
    assert cds.precompute(batch_size=2) == 0

    class Exploding(torch.nn.Module):
        def forward(self, x):
            raise AssertionError("front end called on a cache hit")

    cds.frontend = Exploding()
    for i in range(3):  # all hits: equal to recomputation
        torch.testing.assert_close(cds[i]["features"], fe(ds[i]["wave"]))
    # replacing the audio file invalidates its entry
    save_audio(tmp_path / "audio" / "c0.wav", torch.zeros(19200), 16000)
    cds.frontend = fe
    torch.testing.assert_close(cds[0]["features"], fe(torch.zeros(16000)))
    # different loader parameters -> different key
    other = CachedFeatureDataset(ClipDataset(table, 16000, clip_seconds=0.5), fe, cache)
    assert cache.key(other.key_config) != cache.key(cds.key_config)
    assert other[0]["features"].shape == (64, 51)
    with pytest.raises(CacheError, match="random crops"):
        CachedFeatureDataset(ClipDataset(table, 16000, 1.0, crop="random"), fe, cache)
    with pytest.raises(CacheError, match="sample_rate"):
        CachedFeatureDataset(ClipDataset(table, 32000, 1.0), fe, cache)


# ----------------------------------------------------------------------------- implementations
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_fast_path_equals_library_path(name):
    # the default (hand-written where faster) and the library-only implementation agree
    fast, lib = make_frontend(name), make_frontend(name, library=True)
    assert not fast.library and lib.library
    sr = fast.sample_rate
    x = torch.cat([noise(1.3, sr, batch=2, seed=13), tone(440.0, 1.3, sr, batch=1) + noise(1.3, sr, 1, 14)])
    torch.testing.assert_close(fast(x), lib(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("preset, overrides", [
    ("panns_16k", {"top_db": 80.0}),             # dB with top_db: AmplitudeToDB on the whole clip
    ("panns_32k", {"power": 1.0}),               # magnitude, dB
    ("bow_96", {"center": False, "frames_per_hop": False}),
    ("logmel_64", {"pad_mode": "constant"}),     # centred, not reflect: F.pad clip by clip
    ("bow_96", {"f_min": 300.0, "f_max": 6000.0}),  # only the bins some filter uses
])
def test_fast_path_equals_library_path_off_the_presets(preset, overrides):
    from audiorepro.frontends import preset_config

    cfg = preset_config(preset, **overrides)
    fast, lib = frontend_from_config(cfg), frontend_from_config(cfg, library=True)
    x = torch.cat([noise(0.7, cfg.sample_rate, batch=2, seed=21), tone(1000.0, 0.7, cfg.sample_rate, batch=1)])
    y = fast(x)
    assert y.shape == (3, cfg.n_mels, fast.num_frames(x.shape[-1]))
    torch.testing.assert_close(y, lib(x), rtol=1e-4, atol=1e-4)


def test_vggish_examples_accept_a_library_frontend():
    x = noise(2.0, 16000, batch=1, seed=15)[0]
    lib = make_frontend("vggish", library=True)
    torch.testing.assert_close(vggish_examples(x, frontend=lib), vggish_examples(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_chunks_and_threads_equal_one_pass(name, monkeypatch):
    # the CPU pipeline cuts each clip's frames into chunks and splits the chunks over threads:
    # same numbers as one chunk per clip on one thread, every frame transformed exactly once
    import audiorepro.frontends as fr

    fe = make_frontend(name)
    x = noise(1.0, fe.sample_rate, batch=3, seed=16)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        monkeypatch.setattr(fr, "CHUNK_FLOATS", 1 << 30)
        whole = fe(x)
        # frames transformed per clip (Kaldi pads its output to target_frames afterwards)
        frames = fe.raw_frames(x.shape[-1]) if name == "kaldi_fbank_128" else whole.shape[-1]
        ffts = []
        rfft = torch.fft.rfft
        monkeypatch.setattr(torch.fft, "rfft", lambda t, *a, **k: ffts.append(t.shape[0]) or rfft(t, *a, **k))
        monkeypatch.setattr(fr, "CHUNK_FLOATS", 7 * fe.fft_size)  # 7 frames per chunk
        for n_threads in (1, 2, 3):
            torch.set_num_threads(n_threads)
            ffts.clear()
            torch.testing.assert_close(fe(x), whole, rtol=1e-5, atol=1e-5)
            assert max(ffts) == 7 and sum(ffts) == 3 * frames
            assert torch.get_num_threads() == n_threads  # the workers' setting does not leak
    finally:
        torch.set_num_threads(threads)


def test_the_caller_runs_serial_while_the_chunks_use_its_thread_count(monkeypatch):
    # the front end's own whole-batch operations run on one intra-op thread (a libgomp team
    # started there keeps spinning beside the pool threads); the chunks still go to as many
    # pool threads as the caller had, and the caller's setting comes back afterwards
    import threading

    import audiorepro.frontends as fr

    fe = make_frontend("logmel_64")
    seen_in_check, fft_threads = [], set()
    check = fe._check
    monkeypatch.setattr(fe, "_check", lambda *a: seen_in_check.append(torch.get_num_threads()) or check(*a))
    rfft = torch.fft.rfft
    monkeypatch.setattr(torch.fft, "rfft", lambda *a, **k: fft_threads.add(threading.get_ident()) or rfft(*a, **k))
    monkeypatch.setattr(fr, "CHUNK_FLOATS", 512 * 10)
    runs = []
    in_threads = fr._in_threads
    monkeypatch.setattr(fr, "_in_threads", lambda tasks: runs.append(len(tasks)) or in_threads(tasks))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        fe(noise(1.0, 16000, batch=2))
        assert seen_in_check == [1]
        assert runs == [2] and threading.get_ident() not in fft_threads
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)  # one thread: no pool, the caller's own thread
        fft_threads.clear()
        fe(noise(1.0, 16000, batch=2))
        assert fft_threads == {threading.get_ident()}
    finally:
        torch.set_num_threads(threads)


def test_a_failing_chunk_raises_in_the_caller_and_restores_threads(monkeypatch):
    import audiorepro.frontends as fr

    fe = make_frontend("logmel_64")
    threads = torch.get_num_threads()
    monkeypatch.setattr(fr, "CHUNK_FLOATS", 512 * 10)
    monkeypatch.setattr(torch.fft, "rfft", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    try:
        torch.set_num_threads(2)
        with pytest.raises(RuntimeError, match="boom"):
            fe(noise(1.0, 16000, batch=2))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_passt_draws_one_band_per_call_for_the_whole_batch(monkeypatch):
    import audiorepro.frontends as fr

    fe = make_frontend("passt").train()
    x = noise(0.5, 32000, batch=4, seed=17)
    torch.manual_seed(5)
    whole = fe(x)
    after_whole = torch.rand(1)
    monkeypatch.setattr(fr, "CHUNK_FLOATS", 1)
    torch.manual_seed(5)
    chunked = fe(x)
    torch.testing.assert_close(chunked, whole)          # same band edges for every chunk
    torch.testing.assert_close(torch.rand(1), after_whole)  # and the same two random draws


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_sparse_mel_product_equals_dense_product(name):
    # the mel product as embedding_bag over the non-zero weights: every FFT bin lies under at
    # most two triangular filters, and the sums equal the dense product
    import torch.nn.functional as F

    from audiorepro.frontends import _sparse_mel

    fe = make_frontend(name)
    w = {"kaldi_fbank_128": lambda: fe.mel_banks, "passt": lambda: fe.mel_banks,
         "vggish": lambda: fe.mel_matrix.T}.get(name, lambda: fe.mel_scale.fb.T)()
    bins, starts, vals = _sparse_mel(w)
    assert len(bins) == int((w != 0).sum()) <= 2 * w.shape[1]
    assert torch.bincount(bins, minlength=w.shape[1]).max() <= 2
    assert starts.tolist() == [int((w[:m] != 0).sum()) for m in range(w.shape[0])]
    spec_t = torch.rand(w.shape[1], 7, dtype=torch.float64).float()  # (bins, frames)
    torch.testing.assert_close(F.embedding_bag(bins, spec_t, starts, mode="sum", per_sample_weights=vals),
                               w @ spec_t, rtol=1e-5, atol=1e-6)
    empty = torch.zeros(3, 5)  # a filter with no weight gives 0 (no bins at all: all zeros)
    empty[1, 2] = 0.5
    b, st, v = _sparse_mel(empty)
    torch.testing.assert_close(F.embedding_bag(b, torch.ones(5, 2), st, mode="sum", per_sample_weights=v),
                               torch.tensor([[0.0, 0.0], [0.5, 0.5], [0.0, 0.0]]))


def test_centred_reflect_framing_equals_torch_stft_framing():
    from audiorepro.frontends import _centred_frames

    x = torch.arange(40, dtype=torch.float32)
    for n_fft, hop, win in ((16, 4, 16), (16, 5, 10), (8, 3, 6)):
        n = 1 + 40 // hop
        padded = torch.nn.functional.pad(x[None], (n_fft // 2, n_fft // 2), mode="reflect")[0]
        off = (n_fft - win) // 2
        expect = padded.unfold(0, n_fft, hop)[:n, off:off + win]
        frames_of = _centred_frames(n_fft, hop, win, n)
        torch.testing.assert_close(frames_of(x), expect, rtol=0, atol=0)
        torch.testing.assert_close(frames_of(x + 1), expect + 1, rtol=0, atol=0)  # buffer reused
        short = torch.nn.functional.pad(x[None, :-3], (n_fft // 2, n_fft // 2), mode="reflect")[0]
        torch.testing.assert_close(frames_of(x[:-3]), short.unfold(0, n_fft, hop)[:n, off:off + win],
                                   rtol=0, atol=0)  # another length: a new buffer
    assert _centred_frames(8, 3, 8, 2)(x)[0, :4].tolist() == [4.0, 3.0, 2.0, 1.0]  # x[4..1]


def test_finite_check_rejects_nan_and_inf_but_not_large_finite_values():
    fe = make_frontend("logmel_64")
    big = torch.full((1, 16000), 3e38)  # finite samples whose sum overflows to inf
    assert fe(big).shape == (1, 64, 101)
    for bad in (float("nan"), float("inf"), -float("inf")):
        x = torch.zeros(3, 16000)
        x[1, 7] = bad
        with pytest.raises(ValueError, match=r"1 NaN/infinite sample\(s\) in batch row\(s\) \[1\]"):
            fe(x)
    with pytest.raises(ValueError, match="in the wave"):
        fe(torch.tensor([float("nan")] * 16000))


def test_cache_read_plain_and_mapped(tmp_path):
    cache = FeatureCache(tmp_path)
    key = {"k": 2}
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    p = cache.save(key, "a", arr)
    for mode in FeatureCache.READ_MODES:
        got = cache.load(key, "a", mode=mode)
        np.testing.assert_array_equal(got, arr)
        got[0, 0] = -1.0  # writable; a mapped entry is copy-on-write: the file keeps its data
    np.testing.assert_array_equal(FeatureCache.read(p), arr)
    assert cache.load(key, "missing", mode="mmap") is None
    empty = cache.save(key, "empty", np.zeros((0, 4), np.float32))  # cannot be mapped: read
    assert FeatureCache.read(empty, "mmap").shape == (0, 4)
    p.write_bytes(b"garbage")
    assert all(cache.load(key, "a", mode=m) is None for m in FeatureCache.READ_MODES)
    assert cache.entry(cache.folder(key), "a") == p


def test_npy_reader_equals_np_load_and_refuses_bad_files(tmp_path):
    from audiorepro.frontends import _read_npy

    arrays = [np.random.default_rng(0).standard_normal((128, 1056)).astype(np.float32),
              np.arange(5), np.float64(3.5), np.zeros((0, 4), np.float32),
              np.asfortranarray(np.arange(12.0).reshape(3, 4)), np.array(["ab", "c"]),
              np.arange(3, dtype=">f4"), np.array([True, False]), np.ones((2, 2), np.complex64),
              np.zeros(2, dtype=[("a", "<f4"), ("b", "<i2")])]  # structured: left to np.load
    for i, a in enumerate(arrays):
        p = tmp_path / f"a{i}.npy"
        np.save(p, a)
        got, ref = _read_npy(p), np.load(p)
        assert got.dtype == ref.dtype and got.shape == ref.shape, i
        assert got.flags.f_contiguous == ref.flags.f_contiguous, i
        np.testing.assert_array_equal(got, ref)
    full = (tmp_path / "a0.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(full[:-100])
    with pytest.raises(ValueError, match="truncated"):
        _read_npy(tmp_path / "cut.npy")
    np.save(tmp_path / "obj.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    for name in ("cut.npy", "obj.npy"):  # unreadable -> a miss, never a crash or a pickle
        assert all(FeatureCache.read(tmp_path / name, m) is None for m in FeatureCache.READ_MODES)
    with pytest.raises(ValueError, match="mode='nope'"):
        FeatureCache.read(tmp_path / "a0.npy", "nope")


def test_cached_feature_dataset_mapped_hits_equal_computed_features(tmp_path):
    table = _tiny_table(tmp_path)
    ds = ClipDataset(table, sample_rate=16000, clip_seconds=1.0)
    fe = make_frontend("kaldi_fbank_128", target_frames=None)
    cache = FeatureCache(tmp_path / "cache")
    assert CachedFeatureDataset(ds, fe, cache).precompute(batch_size=3) == 3
    mapped = CachedFeatureDataset(ds, fe, cache, read_mode="mmap")
    for i in range(3):
        feats = mapped[i]["features"]
        torch.testing.assert_close(feats, fe(ds[i]["wave"]))
        feats.add_(1.0)  # in-place use of a hit does not change the cache file
        torch.testing.assert_close(mapped[i]["features"], fe(ds[i]["wave"]))
    assert mapped[1]["clip_id"] == "c1" and mapped.fingerprint(1).startswith("audio/c1.wav|")
