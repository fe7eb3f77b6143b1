"""Tests of the synthetic sound world (audiorepro.data.synthetic and audiorepro.data.synth)."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from audiorepro.data import synthetic as S
from audiorepro.data.cliptable import ClipTable
from audiorepro.data.dataset import ClipDataset
from audiorepro.data.synth import dsp
from audiorepro.data.synth.captions import (HELD_OUT_PHRASES, HELD_OUT_SCENES, CaptionEvent,
                                           make_captions, modifiers)
from audiorepro.data.synth.sounds import SCENES
from audiorepro.data.synth.sounds import CLASSES, PARENTS, SCENE_BY_NAME, get_class

SR = 16000
SEQ_WORDS = ("then", "followed by", "afterwards", "before", "after which")
PAR_WORDS = (" while ", " as ", "at the same time", "along with", "together with", "mixed with")


def _mentions(caption: str, label: str) -> bool:
    c = caption.lower()
    return any(k in c for k in get_class(label).keywords)


def _first_mention(caption: str, label: str) -> int:
    return min(caption.find(k) for k in get_class(label).keywords if k in caption)


# ----------------------------------------------------------------------------- ontology
def test_ontology_size_and_phrases():
    assert len(CLASSES) >= 30
    assert len({c.name for c in CLASSES}) == len(CLASSES)
    assert {c.parent for c in CLASSES} == set(PARENTS)
    onto = S.ontology_frame()
    assert list(onto.columns[:3]) == ["class", "parent", "description"] and len(onto) == len(CLASSES)
    for c in CLASSES:
        for subj, verb in itertools.product(c.subjects, c.verbs):
            assert _mentions(f"{subj} {verb}", c.name), (c.name, subj, verb)
        for noun in c.nouns:
            assert _mentions(noun, c.name), (c.name, noun)
        assert all("|" not in p for p in c.subjects + c.verbs + c.nouns)


# ----------------------------------------------------------------------------- single events
def test_event_waveform_shape_level_and_gain():
    for c in CLASSES:
        x = S.event_waveform(c.name, {"duration_s": 1.5}, SR, seed=3)
        assert x.shape == (24000,) and x.dtype == np.float32 and np.isfinite(x).all(), c.name
        assert dsp.active_rms(x.astype(np.float64), SR) == pytest.approx(S.REF_LEVEL, rel=1e-3), c.name
    quiet = S.event_waveform("siren", {"duration_s": 2.0, "gain_db": -6.0}, SR, seed=1)
    assert dsp.active_rms(quiet.astype(np.float64), SR) == pytest.approx(0.1 * 10 ** (-6 / 20), rel=1e-3)
    a = S.event_waveform("dog_bark", {"duration_s": 1.0, "midi": 70, "rate_hz": 2.0}, SR, seed=5)
    b = S.event_waveform("dog_bark", {"duration_s": 1.0, "midi": 70, "rate_hz": 2.0}, SR, seed=5)
    c = S.event_waveform("dog_bark", {"duration_s": 1.0, "midi": 70, "rate_hz": 2.0}, SR, seed=6)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("label,midi", [("flute", 81), ("microwave_beep", 84), ("whistling", 88)])
def test_pitch_factor_sets_the_spectral_peak(label, midi):
    x = S.event_waveform(label, {"duration_s": 0.6, "midi": midi, "timbre": "dark", "rate_hz": 1.0}, SR, seed=0)
    spec = np.abs(np.fft.rfft(x[: int(0.4 * SR)] * np.hanning(int(0.4 * SR))))
    peak_hz = np.argmax(spec) * SR / int(0.4 * SR)
    assert peak_hz == pytest.approx(440 * 2 ** ((midi - 69) / 12), rel=0.03)


def test_rate_factor_sets_the_pulse_period():
    for rate in (1.6, 2.8):
        x = S.event_waveform("kick_drum", {"duration_s": 6.0, "rate_hz": rate, "midi": 33}, SR, seed=2)
        env = np.sqrt((x[: len(x) // 160 * 160].reshape(-1, 160).astype(np.float64) ** 2).mean(1))  # 10 ms
        env = env - env.mean()
        ac = np.correlate(env, env, "full")[len(env) - 1:]
        lo, hi = 20, 150                                    # 0.2 .. 1.5 s
        lag = (lo + int(np.argmax(ac[lo:hi]))) / 100.0
        assert lag == pytest.approx(1.0 / rate, rel=0.05)


def test_timbre_changes_the_spectrum():
    def centroid(timbre):
        x = S.event_waveform("violin", {"duration_s": 1.0, "midi": 60, "timbre": timbre}, SR, seed=0)
        p = np.abs(np.fft.rfft(x)) ** 2
        return float((np.fft.rfftfreq(len(x), 1 / SR) * p).sum() / p.sum())
    assert centroid("bright") > 1.5 * centroid("dark")


def test_bad_factors_name_the_problem():
    with pytest.raises(ValueError, match="siren.*timbre 'nasal'"):
        S.event_waveform("siren", {"timbre": "nasal"}, SR)
    with pytest.raises(KeyError, match="unknown synthetic sound class 'unicorn'"):
        S.event_waveform("unicorn", {}, SR)
    with pytest.raises(TypeError, match="av_ofset"):
        S.WorldParams.from_kwargs({"av_ofset": 0.5})
    with pytest.raises(ValueError, match="p_missing"):
        S.WorldParams(p_missing=1.5)


def test_classes_are_acoustically_distinct():
    """Leave-one-out nearest centroid on mean log-mel of isolated events: far above chance."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # tiny tensors: threads only add contention
    try:
        acc = _nearest_centroid_accuracy(per_class=6)
    finally:
        torch.set_num_threads(threads)
    chance = 1 / len(CLASSES)
    assert acc > 0.5, f"nearest-centroid accuracy {acc:.2f} (chance {chance:.3f})"


def _nearest_centroid_accuracy(per_class: int) -> float:
    mel = torchaudio.transforms.MelSpectrogram(SR, n_fft=512, hop_length=256, n_mels=48)
    rng = np.random.default_rng(0)
    feats, ys = [], []
    for ci, c in enumerate(CLASSES):
        for _ in range(per_class):
            f = S.sample_event_factors(c.name, rng)
            f["duration_s"] = min(f["duration_s"], 2.0)
            x = torch.from_numpy(S.event_waveform(c.name, f, SR))
            feats.append(torch.log(mel(x) + 1e-6).mean(1))
            ys.append(ci)
    X = torch.stack(feats).double()
    X = (X - X.mean(0)) / (X.std(0) + 1e-6)
    y = torch.tensor(ys)
    correct = 0
    for i in range(len(y)):
        mask = torch.ones(len(y), dtype=torch.bool)
        mask[i] = False
        cents = torch.stack([X[mask & (y == k)].mean(0) for k in range(len(CLASSES))])
        correct += int(torch.cdist(X[i:i + 1], cents).argmin() == y[i])
    return correct / len(y)


# ----------------------------------------------------------------------------- clip specs
def test_specs_respect_ranges_and_clip_bounds():
    p = S.WorldParams()
    for i in range(150):
        spec = S.clip_spec(3, i, 10.0, p)
        aud = spec.audible
        assert 1 <= len(aud) <= 4
        assert len({e.label for e in aud}) == len(aud)
        assert max(e.gain_db for e in aud) == 0.0
        assert p.snr_db_range[0] <= spec.snr_db <= p.snr_db_range[1]
        for e in spec.events:
            assert 0.0 <= e.onset_s < e.offset_s <= 10.0
            cls = get_class(e.label)
            if not e.audible:
                assert e.label not in spec.labels and e.visible
                continue
            assert p.gain_db_range[0] - p.gain_db_range[1] <= e.gain_db <= 0.0
            assert (e.midi is None) == (cls.midi is None)
            if cls.midi:
                assert cls.midi[0] <= e.midi <= cls.midi[1]
                assert e.pitch_hz == pytest.approx(440 * 2 ** ((e.midi - 69) / 12), rel=1e-4)
            if cls.rate:
                assert cls.rate[0] <= e.rate_hz <= cls.rate[1]
            assert e.timbre in cls.timbres


def test_label_cooccurrence_is_structured():
    n = 2500
    specs = [S.clip_spec(0, i) for i in range(n)]
    names = [c.name for c in CLASSES]
    Y = np.zeros((n, len(names)))
    for i, s in enumerate(specs):
        for lab in s.labels:
            Y[i, names.index(lab)] = 1
    p = Y.mean(0)
    joint = Y.T @ Y / n
    lift = joint / np.outer(p, p)
    np.fill_diagonal(lift, 0)
    ti, ri = names.index("thunder"), names.index("rain")
    assert p[ri] < 0.15 and joint[ti, ri] / p[ti] > 0.7        # P(rain | thunder) >> P(rain)
    ci, hi = names.index("car_horn"), names.index("car_engine")
    assert lift[ci, hi] > 4
    # pairs from different scenes co-occur far less than independence predicts
    assert lift[names.index("cow_moo"), names.index("keyboard_typing")] < 0.5
    counts = joint * n
    assert (lift[counts >= 20] > 3).sum() >= 20
    assert all(p > 0.005)                                       # every class occurs
    # scenes decide which labels appear
    street = np.array([s.scene == "street" for s in specs])
    assert Y[street, hi].mean() > 5 * Y[~street, hi].mean()


def test_captions_mention_every_event_and_have_no_separator():
    for i in range(80):
        spec = S.clip_spec(1, i)
        caps = S.clip_captions(spec, 5)
        assert len(caps) == 5
        for cap in caps:
            assert "|" not in cap and cap[0].isupper() and cap.endswith(".")
            for e in spec.audible:
                assert _mentions(cap, e.label), (cap, e.label)
            for e in spec.events:
                if not e.audible:   # a silent distractor is not described (unless another class shares a word)
                    shared = any(set(get_class(e.label).keywords) & set(get_class(a.label).keywords) for a in spec.audible)
                    assert shared or not all(k in cap.lower() for k in get_class(e.label).keywords), cap


def test_caption_temporal_words_follow_overlap():
    rng = np.random.default_rng(0)
    scene = SCENE_BY_NAME["street"]
    seq = [CaptionEvent("car_horn", 0.5, 1.5, 0.0, 66, 1.5), CaptionEvent("siren", 3.0, 8.0, -6.0, 70, 1.0)]
    par = [CaptionEvent("car_horn", 0.5, 5.5, 0.0, 66, 1.5), CaptionEvent("siren", 1.0, 8.0, -6.0, 70, 1.0)]
    for _ in range(10):
        for cap in make_captions(seq, scene, rng, 5):
            low = cap.lower()
            assert not any(w in low for w in PAR_WORDS), cap
            assert _first_mention(low, "car_horn") < _first_mention(low, "siren"), cap
        for cap in make_captions(par, scene, rng, 5):
            assert not any(w in cap.lower() for w in SEQ_WORDS), cap
    loud_adj, _ = modifiers(CaptionEvent("siren", 0, 1, 0.0, 74, 3.0), get_class("siren"))
    quiet_adj, quiet_adv = modifiers(CaptionEvent("siren", 0, 1, -12.0, 67, 0.3), get_class("siren"))
    assert "loud" in loud_adj and "high-pitched" in loud_adj
    assert "quiet" in quiet_adj and "low-pitched" in quiet_adj and "slowly" in quiet_adv
    with pytest.raises(ValueError, match="at least one audible event"):
        make_captions([], scene, rng)


def test_held_out_phrasing_words_every_event_in_phrases_the_training_captions_never_use():
    # every class and scene has a held-out wording, no class's held-out phrase is one of its
    # training phrases, and over 80 clips no held-out caption shares a template, connective or
    # class phrase with the training wording, while each still names every audible event
    assert set(HELD_OUT_PHRASES) == {c.name for c in CLASSES}
    assert set(HELD_OUT_SCENES) == {s.name for s in SCENES}
    for c in CLASSES:
        ho = set(sum(HELD_OUT_PHRASES[c.name], ()))
        assert not ho & set(c.subjects + c.verbs + c.nouns), c.name
    train_marks = ("you can hear", "the sound of", " over ", "in the background", *SEQ_WORDS, *PAR_WORDS)
    for i in range(80):
        spec = S.clip_spec(1, i)
        evs = [CaptionEvent(e.label, e.onset_s, e.offset_s, e.gain_db, e.midi, e.rate_hz)
               for e in spec.audible]
        caps = make_captions(evs, SCENE_BY_NAME[spec.scene], np.random.default_rng(i), 5,
                             phrasing="held-out")
        for cap in caps:
            low = cap.lower()
            assert not any(m in low for m in train_marks), cap
            assert not any(p in low for p in SCENE_BY_NAME[spec.scene].phrases), cap
            for e in spec.audible:
                words = {w for p in sum(HELD_OUT_PHRASES[e.label], ()) for w in p.lower().split()
                         if len(w) > 3}
                assert any(w in low for w in words), (cap, e.label)
    with pytest.raises(ValueError, match="phrasing='other'"):
        make_captions(evs, SCENE_BY_NAME["street"], np.random.default_rng(0), phrasing="other")


# ----------------------------------------------------------------------------- visual stream
def _onset_lag(av_offset: float, n: int = 60) -> int:
    p = S.WorldParams(av_offset_s=av_offset, visual_jitter_s=0.02, p_missing=0.0, p_distractor=0.0,
                      visual_noise=0.3)
    lags = np.arange(-4, 9)
    score = np.zeros(len(lags))
    for i in range(n):
        spec = S.clip_spec(2, i, 10.0, p)
        v = S.render_visual(spec, p).astype(np.float64)
        assert v.shape == (40, 128)
        change = np.r_[0.0, (np.diff(v, axis=0) ** 2).sum(1)]          # (40,)
        onsets = np.zeros(40)
        for e in spec.audible:   # the change v[k] - v[k-1] is largest at the chunk boundary nearest the onset
            onsets[min(39, int(round(e.onset_s / 0.25)))] = 1.0
        for j, lag in enumerate(lags):
            score[j] += np.dot(change[max(0, lag):40 + min(0, lag)], onsets[max(0, -lag):40 - max(0, lag)])
    return int(lags[np.argmax(score)])


def test_visual_changes_follow_audio_onsets_at_the_offset():
    assert _onset_lag(0.0) == 0
    assert _onset_lag(0.75) == 3


def test_visual_parameters_do_not_change_audio_and_control_visibility():
    base = S.WorldParams()
    other = S.WorldParams(av_offset_s=0.5, p_missing=0.5, p_distractor=0.6, visual_noise=2.0)
    invisible, total, distract = 0, 0, 0
    for i in range(200):
        a, b = S.clip_spec(4, i, 10.0, base), S.clip_spec(4, i, 10.0, other)
        key = lambda s: [(e.label, e.onset_s, e.offset_s, e.gain_db, e.midi, e.timbre, e.rate_hz, e.seed) for e in s.audible]
        assert key(a) == key(b) and a.snr_db == b.snr_db and a.caption_seed == b.caption_seed
        invisible += sum(not e.visible for e in b.audible)
        total += len(b.audible)
        distract += sum(not e.audible for e in b.events)
    assert 0.4 < invisible / total < 0.6
    assert distract > 100           # P(>=1) = 0.6, P(2) = 0.36 -> ~192 expected in 200 clips
    spec = S.clip_spec(4, 0, 10.0, S.WorldParams(visual_noise=0.0, scene_visual_scale=0.0, p_missing=0.0))
    v = S.render_visual(spec, S.WorldParams(visual_noise=0.0, scene_visual_scale=0.0, p_missing=0.0))
    active = np.zeros(40, bool)
    for e in spec.events:
        active |= S.chunk_activity(e.visual_onset_s, e.visual_offset_s, 40, 0.25) > 0
    assert np.all(np.abs(v[~active].astype(np.float64)) == 0) and np.all(np.abs(v[active]).sum(1) > 0)


def test_chunk_activity_hand_computed():
    a = S.chunk_activity(0.3, 0.8, 4, 0.25)
    assert np.allclose(a, [0.0, 0.8, 1.0, 0.2])


def test_assign_splits_stratified():
    scenes = ["a"] * 500 + ["b"] * 300 + ["c"] * 200
    split, fold = S.assign_splits(scenes, seed=0)
    split2, fold2 = S.assign_splits(scenes, seed=0)
    assert np.array_equal(split, split2) and np.array_equal(fold, fold2)
    sc = np.array(scenes)
    for s in "abc":
        m = sc == s
        assert abs((split[m] == "train").mean() - 0.7) < 0.02
        assert abs((split[m] == "valid").mean() - 0.1) < 0.02
        assert abs((split[m] == "test").mean() - 0.2) < 0.02
        assert np.bincount(fold[m])[1:].min() >= m.sum() // 5 - 1
    assert set(fold) == {1, 2, 3, 4, 5}


# ----------------------------------------------------------------------------- whole worlds
@pytest.fixture(scope="module")
def world12(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("syn") / "w12"
    S.make_world(out, n_clips=12, seed=0, progress=False)
    return out


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


def test_world_layout_and_loading(world12):
    for name in ("clips.csv", "clips.classes.txt", "events.csv", "visual.npy", "ontology.csv", "world.json", ".done"):
        assert (world12 / name).is_file(), name
    table = ClipTable.read(world12 / "clips.csv")
    assert len(table) == 12 and table.num_classes == len(CLASSES) and table.check_files() == []
    assert set(table.frame["split"]) <= {"train", "valid", "test"} and set(table.frame["fold"]) <= {1, 2, 3, 4, 5}
    for col in ("scene", "pitch", "timbre", "rate_hz", "snr_db", "main_label"):
        assert col in table.frame.columns
    w = S.load_world(world12)
    assert w.visual.shape == (12, 40, 128) and w.visual.dtype == np.float16
    cfg = json.loads((world12 / "world.json").read_text())
    assert cfg["version"] == S.VERSION and cfg["params"]["visual_dim"] == 128
    for i in range(12):
        cid = table.frame["clip_id"].iloc[i]
        ev = w.events_of(cid, audible_only=True)
        assert sorted(ev["label"]) == sorted(table.labels_of(i))
        assert (ev["onset_s"] >= 0).all() and (ev["offset_s"] <= 10.0).all()
        assert len(table.captions_of(i)) == 5
        main = ev.loc[ev["gain_db"].idxmax()]
        assert table.frame["main_label"].iloc[i] == main["label"]
    ds = ClipDataset(table, sample_rate=SR, clip_seconds=10.0)
    item = ds[0]
    assert item["wave"].shape == (160000,) and item["target"].shape == (len(CLASSES),)
    assert item["target"].sum() == len(table.labels_of(0))
    assert [table.classes[j] for j in torch.nonzero(item["target"]).flatten()] == \
        [c for c in table.classes if c in table.labels_of(0)]


def test_world_audio_is_louder_inside_events(world12):
    w = S.load_world(world12)
    inside, outside = [], []
    for i in range(len(w.table)):
        x, sr = sf.read(w.table.audio_path(i), dtype="float32")
        assert sr == SR and x.shape == (160000,) and np.abs(x).max() <= S.PEAK_LIMIT + 1e-3
        frames = np.sqrt((x.reshape(400, 400).astype(np.float64) ** 2).mean(1))   # 25 ms frames
        mask = np.zeros(400, bool)
        for _, e in w.events_of(w.table.frame["clip_id"].iloc[i], audible_only=True).iterrows():
            mask[int(e.onset_s * 40):int(np.ceil(e.offset_s * 40))] = True
        if (~mask).sum() >= 20:
            inside.append(np.median(frames[mask]))
            outside.append(np.median(frames[~mask]))
    assert len(inside) >= 5 and np.mean(np.array(inside) > np.array(outside)) >= 0.8


def test_world_is_deterministic_and_seed_dependent(world12, tmp_path):
    again = tmp_path / "again"
    S.make_world(again, n_clips=12, seed=0, progress=False, workers=2)   # worker count must not matter
    for name in ("clips.csv", "events.csv", "visual.npy", "clips.classes.txt"):
        assert (again / name).read_bytes() == (world12 / name).read_bytes(), name
    for p in sorted((world12 / "audio").glob("*.flac")):
        assert (again / "audio" / p.name).read_bytes() == p.read_bytes(), p.name
    other = tmp_path / "other"
    S.make_world(other, n_clips=3, seed=1, progress=False)
    a = sf.read(sorted((world12 / "audio").glob("*.flac"))[0])[0]
    b = sf.read(sorted((other / "audio").glob("*.flac"))[0])[0]
    assert not np.array_equal(a, b)
    assert (other / "clips.csv").read_text() != (world12 / "clips.csv").read_text()


def test_world_cache_reuse_and_regeneration(tmp_path):
    out = tmp_path / "w"
    t1 = S.make_world(out, n_clips=3, seed=7, progress=False)
    before = _files(out)
    t2 = S.make_world(out, n_clips=3, seed=7, progress=False)
    assert _files(out) == before                       # nothing rewritten
    assert t1.frame.equals(t2.frame)
    (out / ".done").unlink()                           # interrupted run -> regenerated
    S.make_world(out, n_clips=3, seed=7, progress=False)
    after = _files(out)
    assert after["clips.csv"] != before["clips.csv"] and (out / ".done").is_file()
    S.make_world(out, n_clips=2, seed=7, progress=False, av_offset_s=0.5)   # new parameters
    w = S.load_world(out)
    assert len(w.table) == 2 and w.config["params"]["av_offset_s"] == 0.5
    assert sorted(p.name for p in (out / "audio").glob("*.flac")) == ["syn7_000000.flac", "syn7_000001.flac"]
    (out / ".done").unlink()
    with pytest.raises(S.WorldError, match="not a complete synthetic world"):
        S.load_world(out)


def test_parent_labels_option(tmp_path):
    t = S.make_world(tmp_path / "p", n_clips=3, seed=0, progress=False, parent_labels=True)
    assert t.classes[:len(PARENTS)] == list(PARENTS)
    for i in range(3):
        labs = t.labels_of(i)
        leaves = [lab for lab in labs if lab not in PARENTS]
        assert leaves and sorted({get_class(lab).parent for lab in leaves}) == sorted(set(labs) - set(leaves))


def test_visual_variant_matches_regenerated_world(world12, tmp_path):
    w = S.load_world(world12)
    vis, events = S.visual_variant(w)
    assert np.array_equal(vis, w.visual)
    vis2, _ = S.visual_variant(w, av_offset_s=0.5)
    assert vis2.shape == w.visual.shape and not np.array_equal(vis2, w.visual)
    with pytest.raises(TypeError, match="snr_db_range"):
        S.visual_variant(w, snr_db_range=(0, 1))


def test_cli_and_default_world(tmp_path, monkeypatch, home):
    out = tmp_path / "cli"
    assert S.main(["--out", str(out), "--n-clips", "2", "--seed", "3", "--param", "av_offset_s=0.25"]) == 0
    cfg = json.loads((out / "world.json").read_text())
    assert cfg["n_clips"] == 2 and cfg["seed"] == 3 and cfg["params"]["av_offset_s"] == 0.25
    w = S.default_world(n_clips=2, seed=5, progress=False)
    assert w.root == home / "data" / "synthetic" / "n2_s5" and len(w.table) == 2
    assert S.world_dir_name(2, 5, av_offset_s=0.5).startswith("n2_s5_")


def test_isolated_event_table(tmp_path):
    out = tmp_path / "events"
    t = S.make_event_table(out, n_per_class=3, seed=0, clip_seconds=2.0, classes=["flute", "rain"], progress=False)
    assert len(t) == 6 and t.classes == ["flute", "rain"]
    assert list(t.frame["labels"]) == ["flute"] * 3 + ["rain"] * 3
    assert t.frame["pitch"].iloc[:3].notna().all() and t.frame["pitch"].iloc[3:].isna().all()
    ds = ClipDataset(t, sample_rate=SR, clip_seconds=2.0, target="index")
    item = ds[4]
    assert item["wave"].shape == (32000,) and int(item["target"]) == 1
    # the flute clip's spectral peak sits at its recorded pitch
    x, _ = sf.read(t.audio_path(0), dtype="float32")
    on = int(t.frame["onset_s"].iloc[0] * SR)
    seg = x[on + 1600:on + 1600 + 4800]
    peak_hz = np.argmax(np.abs(np.fft.rfft(seg * np.hanning(len(seg))))) * SR / len(seg)
    assert peak_hz == pytest.approx(float(t.frame["pitch_hz"].iloc[0]), rel=0.03)
    before = _files(out)
    S.make_event_table(out, n_per_class=3, seed=0, clip_seconds=2.0, classes=["flute", "rain"], progress=False)
    assert _files(out) == before
    with pytest.raises(KeyError, match="unicorn"):
        S.make_event_table(tmp_path / "bad", classes=["unicorn"], progress=False)
