"""Tests of audiorepro.data.debian on tiny fake package trees written here (no apt, no network)."""
from __future__ import annotations

import json
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiorepro.data.cliptable import ClipTable
from audiorepro.data.debian import build as dbuild
from audiorepro.data.debian import common, fetch, hedgewars, hydrogen, klettres, soundfont, tasks, tuxpaint
from audiorepro.data.debian.fetch import DebianSourceUnavailable
from audiorepro.data.debian.sources import ASTERISK_LANGUAGES

SR_OUT = 16000


# ---------------------------------------------------------------- fixture helpers
def tone(path: Path, sr: int = 8000, seconds: float = 0.25, freq: float = 440.0,
         channels: int = 1, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # a frequency offset (< 10 %) from the file's path keeps every fixture file distinct: the
    # task builders drop audio whose bytes repeat an earlier clip's
    freq = freq * (1 + (zlib.crc32("/".join(path.parts[-3:]).encode()) % 1000) * 1e-4)
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t)
    data = np.stack([x] * channels, 1) if channels > 1 else x
    sf.write(str(path), data, sr, format=fmt or path.suffix[1:].upper())
    return path


def make_asterisk(base: Path) -> dict[str, Path]:
    roots = {}
    for lang in ("en", "es", "fr"):
        folder, _ = ASTERISK_LANGUAGES[lang]
        root = base / f"asterisk-core-sounds-{lang}-wav"
        d = root / "usr/share/asterisk/sounds" / folder
        for rel in [f"digits/{k}" for k in range(10)] + ["letters/a", "phonetic/b_p", "vm-intro",
                                                        "silence/1"]:
            tone(d / f"{rel}.wav", seconds=0.2 + 0.01 * len(rel))
        roots[root.name] = root
    return roots


def make_tuxpaint(base: Path) -> dict[str, Path]:
    root = base / "tuxpaint-stamps-default"
    s = root / "usr/share/tuxpaint/stamps"
    effects = {"animals/mammals/dogs": ["dog", "fox"], "animals/mammals/cats": ["lion", "tiger"],
               "animals/birds": ["owl", "crow", "lark", "duck", "gull", "wren"], "household/tools": ["saw", "hammer"]}
    for tag, names in effects.items():
        for n in names:
            (s / tag).mkdir(parents=True, exist_ok=True)
            (s / tag / f"{n}.txt").write_text(f"A {n}.\nfr.utf8=Un {n}.\nhi.utf8=ek|{n}\n")
            (s / tag / f"{n}.png").write_bytes(b"\x89PNG fake")
            tone(s / tag / f"{n}.ogg", sr=22050, channels=2, freq=300 + 10 * len(n))
            tone(s / tag / f"{n}_desc.ogg", sr=22050)
            tone(s / tag / f"{n}_desc_fr.ogg", sr=22050)
            tone(s / tag / f"{n}_desc_pt_BR.wav", sr=22050)
    math = s / "symbols/math"
    math.mkdir(parents=True)
    for d in range(10):
        (math / f"{d}.txt").write_text(f"Digit {d}.\nfr.utf8=Chiffre {d}.\n")
        (math / f"{d}.png").write_bytes(b"\x89PNG fake")
        for lang in ("", "_fr", "_de", "_ja", "_zh_tw"):
            tone(math / f"{d}{lang}.ogg", sr=16000)
    tone(math / "stray_sound.ogg", sr=16000)  # belongs to no stamp
    return {root.name: root}


def make_klettres(base: Path) -> dict[str, Path]:
    root = base / "klettres-data"
    k = root / "usr/share/klettres"
    for lang in ("fr", "ru"):
        sounds = "".join(f'<sound name="{c}" file="{lang}/alpha/{c.lower()}.ogg" />' for c in "ABC")
        syl = f'<sound name="BA" file="{lang}/syllab/ba.ogg" />'
        (k / lang).mkdir(parents=True)
        (k / lang / "sounds.xml").write_text(
            f'<?xml version="1.0"?><klettres><language code="{lang}"><alphabet>{sounds}'
            f'</alphabet><syllables>{syl}<sound name="ZZ" file="{lang}/syllab/missing.ogg" />'
            f'</syllables></language></klettres>')
        for c in "abc":
            tone(k / lang / "alpha" / f"{c}.ogg", sr=22050)
        tone(k / lang / "syllab" / "ba.ogg", sr=22050)
    (k / "id").mkdir()
    (k / "id" / "sounds.xml").write_text(
        '<klettres><language code="id"><alphabet><sound name="A" file="fr/alpha/a.ogg" />'
        '</alphabet></language></klettres>')
    return {root.name: root}


HW_PHRASES = ["Ow1", "Ow2", "Illgetyou", "Amazing", "Incoming", "Fire", "Hello", "Ouch"]


def make_hedgewars(base: Path) -> dict[str, Path]:
    root = base / "hedgewars-data"
    d = root / "usr/share/games/hedgewars/Data/Sounds"
    for pack in ("Pirate", "Robot", "Surfer", "British", "Default"):
        for ph in HW_PHRASES:
            tone(d / "voices" / pack / f"{ph}.ogg", sr=44100, freq=200 + 40 * len(pack))
    for eff in ("explosion", "grenadeimpact", "mineimpact", "bump", "shotgunfire", "minigun",
                "sniperreload", "gun", "mortar", "splash", "Droplet1", "Droplet2", "beewater", "homerun"):
        tone(d / f"{eff}.ogg", sr=44100)
    return {root.name: root}


def drumkit_xml(name: str, instruments: list[tuple[str, list[str]]], ns: bool = True,
                layered: bool = True) -> str:
    body = []
    for i, (inst, files) in enumerate(instruments):
        if layered:
            layers = "".join(f"<layer><filename>{f}</filename><min>{k / len(files)}</min>"
                             f"<max>{(k + 1) / len(files)}</max></layer>" for k, f in enumerate(files))
        else:
            layers = f"<filename>{files[0]}</filename>"
        body.append(f"<instrument><id>{i}</id><name>{inst}</name>{layers}</instrument>")
    xmlns = ' xmlns="http://www.hydrogen-music.org/drumkit"' if ns else ""
    return (f'<?xml version="1.0"?><drumkit_info{xmlns}><name>{name}</name><license>GPL</license>'
            f'<instrumentList>{"".join(body)}</instrumentList></drumkit_info>')


def make_hydrogen(base: Path) -> dict[str, Path]:
    root = base / "hydrogen-drumkits"
    kits = root / "usr/share/hydrogen/data/drumkits"
    spec = [("Kick", ["k1.wav", "k2.wav"]), ("Snare Rock", ["s1.wav"]), ("Closed HH", ["h.wav"]),
            ("Zap 1", ["z.wav"])]
    for kit in ("KitA", "KitB", "The Black Pearl 1.0", "HardElectro1"):
        d = kits / kit
        d.mkdir(parents=True)
        (d / "drumkit.xml").write_text(drumkit_xml(kit, spec, ns=kit != "KitB", layered=kit != "KitB"))
        for _, files in spec:
            for f in files:
                tone(d / f, sr=44100, seconds=0.1)
    # KitA also lists a missing file and has a corrupt one
    d = kits / "KitA"
    (d / "drumkit.xml").write_text(drumkit_xml("KitA", spec + [("Ride", ["gone.wav"]),
                                                               ("Crash", ["bad.wav"])]))
    (d / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    return {root.name: root}


def write_fake_sf2(path: Path, presets: dict[tuple[int, int], str]) -> Path:
    recs = b""
    for (bank, prog), name in list(presets.items()) + [((0, 0), "EOP")]:
        recs += name.encode("latin-1").ljust(20, b"\0") + struct.pack("<HHHIII", prog, bank, 0, 0, 0, 0)
    phdr = b"phdr" + struct.pack("<I", len(recs)) + recs
    pdta = b"LIST" + struct.pack("<I", 4 + len(phdr)) + b"pdta" + phdr
    info = b"LIST" + struct.pack("<I", 4 + 8 + 4) + b"INFO" + b"ifil" + struct.pack("<I", 4) + b"\2\0\1\0"
    body = b"sfbk" + info + pdta
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def make_soundfont(base: Path) -> dict[str, Path]:
    root = base / "fluid-soundfont-gm"
    write_fake_sf2(root / soundfont.SF2, {(0, p): f"Preset {p}" for p in range(128)})
    return {root.name: root}


def parse_midi_notes(data: bytes) -> tuple[list[tuple[int, int]], list[tuple[int, int, int]]]:
    """([(abs_tick, program)], [(abs_tick, status_high_nibble, pitch_or_controller)]) of our
    format-0 files."""
    assert data[:4] == b"MThd"
    ntrk_len = struct.unpack(">I", data[18:22])[0]
    trk = data[22:22 + ntrk_len]
    assert len(trk) == ntrk_len
    i, now, programs, events = 0, 0, [], []
    while i < len(trk):
        delta = 0
        while True:
            b = trk[i]
            i += 1
            delta = (delta << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        now += delta
        st = trk[i]
        if st == 0xFF:
            ln = trk[i + 2]
            i += 3 + ln
        elif st >> 4 == 0xC:
            programs.append((now, trk[i + 1]))
            i += 2
        else:
            events.append((now, st >> 4, trk[i + 1]))
            i += 3
    return programs, events


def fake_renderer(silent_pitch: int | None = None):
    """Renders a MIDI file as sines (pitch frequency) at the note-on times, 16 kHz stereo."""

    def render(sf2: Path, midi: Path, out_wav: Path) -> None:
        programs, events = parse_midi_notes(midi.read_bytes())
        ons = [(t, p) for t, kind, p in events if kind == 0x9]
        total = ons[-1][0] / 960 + 3.0
        x = np.zeros(int(total * SR_OUT))
        for t, p in ons:
            if p == silent_pitch:
                continue
            start = int(round(t / 960 * SR_OUT))
            n = int(1.2 * SR_OUT)
            f = 440.0 * 2 ** ((p - 69) / 12)
            # level by program, so that no two instruments render to identical audio
            program = ([pr for tp, pr in programs if tp <= t] or [0])[-1]   # the last change
            level = 0.3 - 0.001 * program
            x[start:start + n] += level * np.sin(2 * np.pi * f * np.arange(n) / SR_OUT)
        sf.write(str(out_wav), np.stack([x, x], 1), SR_OUT)

    return render


# ---------------------------------------------------------------- common
def test_hash_split_is_fixed_and_proportional():
    keys = [f"k{i}" for i in range(3000)]
    a = [common.hash_split(k) for k in keys]
    assert a == [common.hash_split(k) for k in keys]
    frac = {s: a.count(s) / len(a) for s in ("train", "valid", "test")}
    assert abs(frac["test"] - 0.2) < 0.03 and abs(frac["valid"] - 0.1) < 0.03
    assert common.stable_bucket("abc") == int(__import__("hashlib").sha1(b"abc").hexdigest()[:12], 16) % 100
    with pytest.raises(ValueError, match="valid_pct"):
        common.hash_split("x", valid_pct=60, test_pct=60)


def test_safe_name():
    assert common.safe_name("digits/5") == "digits_5"
    assert common.safe_name("The Black Pearl 1.0") == "The_Black_Pearl_1.0"
    assert common.safe_name("///") == "x"


def test_convert_skips_corrupt_file_and_names_it(tmp_path, caplog):
    good = tone(tmp_path / "g.wav", sr=8000, seconds=0.5, channels=2)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    jobs = [common.ConvertJob(good, tmp_path / "o/g.flac"), common.ConvertJob(bad, tmp_path / "o/b.flac")]
    with caplog.at_level(logging.WARNING):
        out = common.convert_all(jobs, workers=1)
    assert out[0] == pytest.approx(0.5, abs=1e-3) and out[1] is None
    assert "bad.wav" in caplog.text
    info = sf.info(str(tmp_path / "o/g.flac"))
    assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
    assert info.frames == 8000


# ---------------------------------------------------------------- fetch
def test_fetch_without_apt_raises_named_error(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch.shutil, "which", lambda name: None)
    with pytest.raises(DebianSourceUnavailable, match="hydrogen-drumkits") as ei:
        fetch.fetch_package("hydrogen-drumkits", cache=tmp_path)
    assert ei.value.package == "hydrogen-drumkits"


def test_fetch_uses_done_marker_without_apt(tmp_path, monkeypatch):
    root = tmp_path / "root" / "pkg"
    root.mkdir(parents=True)
    (root / ".fetched.json").write_text(json.dumps(
        {"name": "pkg", "version": "1.0-1", "deb": str(tmp_path / "pkg.deb"), "sha256": "ab",
         "root": str(root), "licences": ["GPL-2"]}))

    def boom(*a, **k):
        raise AssertionError("apt must not run when the package is cached")

    monkeypatch.setattr(fetch, "_run", boom)
    got = fetch.fetch_package("pkg", cache=tmp_path)
    assert (got.version, got.root, got.licences) == ("1.0-1", root, ["GPL-2"])


def test_fetch_runs_apt_update_when_no_candidate(tmp_path, monkeypatch):
    calls = []

    class P:
        def __init__(self, out="", rc=0):
            self.stdout, self.stderr, self.returncode = out, "", rc

    def run(cmd, package, cwd=None, timeout=0):
        calls.append(cmd)
        if cmd[:2] == ["apt-cache", "policy"]:
            return P("pkg:\n  Installed: (none)\n  Candidate: (none)\n")
        if "update" in cmd:
            return P(rc=100)
        return P()

    monkeypatch.setattr(fetch, "_run", run)
    monkeypatch.setattr(fetch.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(fetch, "_updated", False)
    with pytest.raises(DebianSourceUnavailable, match="apt-get update failed"):
        fetch.fetch_package("pkg", cache=tmp_path)
    upd = [c for c in calls if "update" in c]
    assert upd and "DPkg::Lock::Timeout=300" in upd[0]


def test_find_deb_handles_epoch(tmp_path):
    (tmp_path / "klettres-data_4%3a22.12.3-1_all.deb").write_bytes(b"x")
    (tmp_path / "klettres-data_4%3a21.0-1_all.deb").write_bytes(b"x")
    got = fetch._find_deb(tmp_path, "klettres-data", "4:22.12.3-1")
    assert got is not None and got.name == "klettres-data_4%3a22.12.3-1_all.deb"
    assert fetch._find_deb(tmp_path, "klettres-data", "5:1-1") is None


def test_copyright_licences(tmp_path):
    d = tmp_path / "usr/share/doc/p"
    d.mkdir(parents=True)
    (d / "copyright").write_text("Files: *\nLicense: GPL-2\n\nFiles: x\nLicense: CC-BY-3.0\n"
                                 "\nLicense: GPL-2\n text\n")
    assert fetch.copyright_licences(tmp_path, "p") == ["GPL-2", "CC-BY-3.0"]
    assert fetch.copyright_licences(tmp_path, "missing") == []


# ---------------------------------------------------------------- builders
def test_asterisk_builder(tmp_path):
    from audiorepro.data.debian import asterisk
    roots = make_asterisk(tmp_path / "pkgs")
    f = asterisk.build(roots, tmp_path / "out", workers=1)
    assert len(f) == 3 * 13  # 10 digits + letter + phonetic + word; silence left out
    assert not f["prompt"].str.startswith("silence").any()
    assert set(f.loc[f.language.isin(["en", "es"]), "speaker"]) == {"allison"}
    assert set(f.loc[f.language == "fr", "speaker"]) == {"june"}
    assert f.groupby("prompt")["split"].nunique().max() == 1  # one split per prompt
    cats = dict(zip(f.prompt, f.category))
    assert (cats["digits/3"], cats["letters/a"], cats["phonetic/b_p"], cats["vm-intro"]) == \
        ("digits", "letters", "phonetic", "words")
    row = f[f.clip_id == "asterisk-en-digits__3"].iloc[0]
    info = sf.info(str(tmp_path / "out" / row.path))
    assert info.samplerate == 16000 and info.frames == int(round((0.2 + 0.01 * 8) * 16000))
    assert row.length_s == pytest.approx(0.28, abs=1e-3)
    ClipTable(f, tmp_path / "out")  # a valid clip table


def test_tuxpaint_builder(tmp_path):
    roots = make_tuxpaint(tmp_path / "pkgs")
    out = tmp_path / "out"
    f = tuxpaint.build(roots, out, workers=2)
    kinds = f.kind.value_counts().to_dict()
    assert kinds == {"description": 12 * 3, "effect": 12, "spoken_name": 10 * 5}
    eff = f[(f.kind == "effect") & (f.stamp == "dog")].iloc[0]
    assert eff.captions == "A dog." and eff.tag_path == "animals/mammals/dogs"
    assert (out / eff.image).read_bytes() == b"\x89PNG fake"
    assert sf.info(str(out / eff.path)).channels == 1
    d = f[(f.kind == "description") & (f.stamp == "dog")].set_index("language")
    assert d.loc["fr", "transcript"] == "Un dog." and d.loc["en", "transcript"] == "A dog."
    assert set(d.index) == {"en", "fr", "pt_BR"}
    sp = f[f.kind == "spoken_name"]
    assert set(sp.labels) == {str(k) for k in range(10)}
    assert set(sp.language) == {"en", "fr", "de", "ja", "zh_tw"}
    assert f.groupby("stamp")["split"].nunique().max() == 1
    assert not f.clip_id.str.contains("stray").any()
    assert tuxpaint.read_descriptions(Path(roots["tuxpaint-stamps-default"]) /
                                      "usr/share/tuxpaint/stamps/animals/birds/owl.txt")["hi"] == "ek|owl"
    assert f.transcript.str.contains("|", regex=False).sum() == 0


def test_tuxpaint_classify():
    stamps = {"cow", "cow_white", "A_filled"}
    assert tuxpaint.classify("cow_white", stamps) == ("cow_white", "sound", "en")
    assert tuxpaint.classify("cow_desc_pt_BR", stamps) == ("cow", "desc", "pt_BR")
    assert tuxpaint.classify("A_filled_en_GB", stamps) == ("A_filled", "sound", "en_GB")
    assert tuxpaint.classify("cow_desc", stamps) == ("cow", "desc", "en")
    assert tuxpaint.classify("horse", stamps) is None
    assert tuxpaint.spoken_token("symbols/alphabets", "O_with_umlaut_outline") == "O_with_umlaut"


def test_klettres_builder(tmp_path, caplog):
    roots = make_klettres(tmp_path / "pkgs")
    with caplog.at_level(logging.WARNING):
        f = klettres.build(roots, tmp_path / "out", workers=1)
    assert len(f) == 2 * 4  # 3 letters + 1 syllable per language; id reuses fr files: left out
    assert set(f.language) == {"fr", "ru"}
    assert f.kind.value_counts().to_dict() == {"letter": 6, "syllable": 2}
    assert "missing.ogg" in caplog.text


def test_klettres_bad_xml_names_file(tmp_path):
    p = tmp_path / "sounds.xml"
    p.write_text("<klettres><language>")
    with pytest.raises(ValueError, match="sounds.xml"):
        klettres.read_sounds_xml(p)


def test_hedgewars_builder(tmp_path):
    roots = make_hedgewars(tmp_path / "pkgs")
    f = hedgewars.build(roots, tmp_path / "out", workers=2)
    v = f[f.kind == "voice"]
    assert len(v) == 5 * len(HW_PHRASES) and v.speaker.nunique() == 5
    ow2 = v[v.clip_id == "hedgewars-voice-Pirate__Ow2"].iloc[0]
    assert (ow2.phrase, ow2["take"], ow2.affect, ow2.labels) == ("Ow", 2, "pain", "Ow")
    aff = dict(zip(v.phrase, v.affect))
    assert (aff["Illgetyou"], aff["Amazing"], aff["Incoming"], aff["Fire"]) == \
        ("anger", "happy", "fear", "neutral")
    assert v.groupby("phrase")["split"].nunique().max() == 1
    e = f[f.kind == "effect"].set_index("labels")
    assert e.loc["explosion", "effect_class"] == "explosion_impact"
    assert e.loc["shotgunfire", "effect_class"] == "firearm"
    assert e.loc["Droplet1", "effect_class"] == "water"
    assert e.loc["homerun", "effect_class"] == "other"


def test_hydrogen_builder(tmp_path, caplog):
    roots = make_hydrogen(tmp_path / "pkgs")
    with caplog.at_level(logging.WARNING):
        f = hydrogen.build(roots, tmp_path / "out", workers=1)
    assert "gone.wav" in caplog.text and "bad.wav" in caplog.text
    # 5 files in the layered kits (KitA: missing and corrupt left out); KitB's old format has
    # one <filename> per instrument: 4 files
    assert len(f) == 5 + 4 + 5 + 5
    assert set(f[f.kit == "The Black Pearl 1.0"].split) == {"test"}
    assert set(f[f.kit == "HardElectro1"].split) == {"valid"}
    assert set(f[f.kit.isin(["KitA", "KitB"])].split) == {"train"}
    fam = dict(zip(f.instrument, f.labels))
    assert (fam["Kick"], fam["Snare Rock"], fam["Closed HH"], fam["Zap 1"]) == \
        ("kick", "snare", "hihat", "other")
    k2 = f[(f.kit == "KitA") & (f.instrument == "Kick") & (f.layer == 1)].iloc[0]
    assert (k2.velocity_min, k2.velocity_max) == (0.5, 1.0)
    assert f[f.kit == "KitB"].velocity_min.isna().all()  # old format without layers


@pytest.mark.parametrize("name,family", [
    ("Pearl Kick", "kick"), ("BassDrum", "kick"), ("Hi-Hat Open (Paiste)", "hihat"),
    ("VariBreaks Hat 1 Cl", "hihat"), ("Snare Rimshot", "snare"), ("Pearl Side Stick", "stick"),
    ("Floor Tom", "tom"), ("tomhi2", "tom"), ("Zildjian Splash", "crash"), ("Ride Jazz", "ride"),
    ("Hand Clap", "clap"), ("Agogo Low", "cowbell"), ("Djembe1 Slap", "hand_drum"),
    ("Tambourine", "shaker"), ("Clave", "woodblock"), ("Sample: beats_01-10.flac", "other"),
    ("Zap 1", "other")])
def test_drum_family_rules(name, family):
    assert hydrogen.family_of(name) == family


# ---------------------------------------------------------------- soundfont
def test_midi_varlen_and_note_times():
    assert soundfont._varlen(0x40) == b"\x40"
    assert soundfont._varlen(0x80) == b"\x81\x00"
    assert soundfont._varlen(0x3FFF) == b"\xff\x7f"
    data = soundfont.note_midi(41, pitches=(60, 62, 64))
    programs, events = parse_midi_notes(data)
    assert programs == [(0, 41)]
    ons = [(t, p) for t, k, p in events if k == 0x9]
    offs = [(t, p) for t, k, p in events if k == 0x8]
    assert ons == [(0, 60), (2160, 62), (4320, 64)]  # 2.25 s apart at 960 ticks/s
    assert offs == [(960, 60), (3120, 62), (5280, 64)]  # held 1.0 s
    assert [t for t, k, c in events if k == 0xB] == [1920, 4080, 6240]
    with pytest.raises(ValueError, match="pitch"):
        soundfont.note_midi(0, pitches=(130,))
    # a batch of programs: blocks of len(pitches) notes, a program change at each block start
    programs, events = parse_midi_notes(soundfont.note_midi([5, 7], pitches=(60, 62)))
    assert programs == [(0, 5), (4320, 7)]
    assert [t for t, k, p in events if k == 0x9] == [0, 2160, 4320, 6480]


def test_sf2_presets(tmp_path):
    p = write_fake_sf2(tmp_path / "x.sf2", {(0, 0): "Grand Piano", (128, 0): "Standard"})
    assert soundfont.sf2_presets(p) == {(0, 0): "Grand Piano", (128, 0): "Standard"}
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"RIFF\0\0\0\0WAVE")
    with pytest.raises(ValueError, match="bad.sf2"):
        soundfont.sf2_presets(bad)


def test_program_split_per_family():
    splits = [soundfont.program_split(p) for p in range(128)]
    for fam in range(16):
        s = splits[fam * 8:fam * 8 + 8]
        assert (s.count("train"), s.count("valid"), s.count("test")) == (5, 1, 2)
    assert soundfont.family_of(0) == "piano" and soundfont.family_of(127) == "sound_effects"


def test_soundfont_builder_cuts_notes_at_the_right_pitch(tmp_path):
    roots = make_soundfont(tmp_path / "pkgs")
    out = tmp_path / "out"
    pitches = (48, 60, 69, 72)
    f = soundfont.build(roots, out, renderer=fake_renderer(silent_pitch=72), programs=(0, 33, 40),
                        pitches=pitches, batch=2)
    assert len(f) == 3 * 3  # the silent note is left out
    f = f[f.program != 40]
    assert set(f.pitch) == {48, 60, 69}
    assert dict(zip(f.program, f.labels)) == {0: "piano", 33: "bass"}
    assert set(f.instrument) == {"Preset 0", "Preset 33"}
    for _, row in f.iterrows():
        x, sr = sf.read(str(out / row.path))
        assert sr == 16000 and x.ndim == 1 and len(x) == int(soundfont.CLIP_S * 16000)
        spec = np.abs(np.fft.rfft(x))
        peak_hz = np.argmax(spec) * sr / len(x)
        assert peak_hz == pytest.approx(440.0 * 2 ** ((row.pitch - 69) / 12), rel=0.02)


# ---------------------------------------------------------------- build + tasks end to end
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """All six sources built from fixture trees into a temporary data root."""
    base = tmp_path_factory.mktemp("debian")
    pkgs = base / "pkgs"
    roots = {**make_asterisk(pkgs), **make_tuxpaint(pkgs), **make_klettres(pkgs),
             **make_hedgewars(pkgs), **make_hydrogen(pkgs), **make_soundfont(pkgs)}
    data = base / "data"
    for name in dbuild.SOURCES:
        kw = {"renderer": fake_renderer(), "programs": tuple(range(0, 128, 8)) + (1, 9),
              "pitches": (48, 60, 72)} if name == "soundfont" else {}
        dbuild.build_source(name, root=data, roots=roots, workers=2, **kw)
    return data


def test_build_source_writes_table_and_marker_and_is_cached(built, monkeypatch):
    t = ClipTable.read(dbuild.table_path("hydrogen", built))
    assert len(t) == 19 and not t.check_files()
    marker = json.loads((built / "hydrogen" / ".done.json").read_text())
    assert marker["clips"] == 19
    monkeypatch.setitem(dbuild.BUILDERS, "hydrogen",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("rebuilt")))
    again = dbuild.build_source("hydrogen", root=built)
    assert len(again) == 19
    assert (built / "hydrogen" / "hydrogen.classes.txt").read_text().split() == sorted(set(t.frame.labels))


def test_unavailable_source_is_reported_by_build_all(tmp_path, monkeypatch):
    def no_apt(pkg, cache=None):
        raise DebianSourceUnavailable(pkg, "no apt here")

    monkeypatch.setattr(dbuild, "fetch_packages", lambda pkgs, cache=None: {p: no_apt(p) for p in pkgs})
    res = dbuild.build_all(["klettres"], root=tmp_path)
    assert isinstance(res["klettres"], DebianSourceUnavailable)
    assert "klettres-data" in str(res["klettres"])


def test_manifest_rows(built, tmp_path):
    # fixture builds have no fetched packages; write a marker as a real build would
    marker = built / "klettres" / ".done.json"
    info = json.loads(marker.read_text())
    info["packages"] = {"klettres-data": {"version": "4:22.12.3-1", "sha256": "f" * 64,
                                          "licences": ["GPL-2+"], "files": 8}}
    marker.write_text(json.dumps(info))
    out = dbuild.write_manifest_rows(tmp_path / "rows.csv", root=built)
    rows = pd.read_csv(out)
    r = rows[rows.package == "klettres-data"].iloc[0]
    assert r.origin == "Debian package klettres-data 4:22.12.3-1" and r.files == 8
    assert r.sha256 == "f" * 64 and "GPL-2+" in r.licence


def test_unknown_names_are_named():
    with pytest.raises(KeyError, match="nosuch"):
        dbuild.build_source("nosuch")
    with pytest.raises(KeyError, match="nosuch"):
        tasks.build_task("nosuch")


@pytest.fixture()
def small_min(monkeypatch):
    monkeypatch.setattr(tasks, "MIN_EVENT_CLIPS", 3)
    monkeypatch.setattr(tasks, "MIN_LANGUAGE_CLIPS", 5)
    monkeypatch.setattr(tasks, "MIXTURE_COUNTS", {"train": 12, "valid": 4, "test": 4})


def test_every_task_builds_valid_tables(built, small_min):
    for name in tasks.TASK_NAMES:
        t = tasks.build_task(name, root=built)
        assert len(t) > 0, name
        assert not t.check_files(), name
        assert set(t.frame.split) <= {"train", "valid", "test"}, name
        assert ClipTable.read(built / "tasks" / f"{name}.csv").num_classes == t.num_classes


def test_task_sound_events_folds(built, small_min):
    t = tasks.build_task("sound_events", root=built)
    f = t.frame
    assert set(f.labels) >= {"animals/birds", "animals/mammals", "game/firearm"}
    assert tasks.event_class_of_tag("animals/insects") == "animals/other"
    assert tasks.event_class_of_tag("household/tools") == "household"
    assert (f.split == np.where(f.fold == 5, "test", np.where(f.fold == 4, "valid", "train"))).all()
    # stratified: within a class, fold sizes differ by at most one
    for _, g in f.groupby("labels"):
        sizes = g.fold.value_counts().reindex(range(1, 6), fill_value=0)
        assert sizes.max() - sizes.min() <= 1


def test_task_mixtures_union_same_split_and_deterministic(built, small_min):
    ev = tasks.build_task("sound_events", root=built).frame.set_index("clip_id")
    t = tasks.build_task("effect_mixtures", root=built, seed=3)
    f = t.frame
    assert f.split.value_counts().to_dict() == {"train": 12, "valid": 4, "test": 4}
    for _, row in f.iterrows():
        comps = row.components.split("|")
        assert 2 <= len(comps) <= 4
        assert set(ev.loc[comps, "split"]) == {row.split}
        assert set(row.labels.split(";")) == set(ev.loc[comps, "labels"])
    again = tasks._effect_mixtures(built, seed=3)
    assert list(again.components) == list(f.components)
    other = tasks._effect_mixtures(built, seed=4)
    assert list(other.components) != list(f.components)
    x, sr = sf.read(str(built / "tasks" / f.path.iloc[0]))
    assert sr == 16000 and len(x) == 80000 and np.abs(x).max() > 0


def test_task_drums_unseen_kits(built):
    f = tasks.build_task("drums", root=built).frame
    assert "other" not in set(f.labels)
    assert set(f[f.split == "test"].kit) == {"The Black Pearl 1.0"}
    assert not set(f[f.split == "test"].kit) & set(f[f.split == "train"].kit)


def test_task_digits_voice_split(built):
    f = tasks.build_task("digits", root=built).frame
    assert set(f.labels) == {str(d) for d in range(10)}
    assert f.groupby("speaker")["split"].nunique().max() == 1
    # en and es asterisk prompts share the speaker allison
    assert f[f.source == "asterisk"].speaker.nunique() == 2
    # test voices are unseen, but every test language is spoken in training by another voice
    test, train = f[f.split == "test"], f[f.split == "train"]
    assert set(test.speaker) == {"asterisk:allison", "asterisk:june"}
    base = lambda langs: {tasks.base_language(x) for x in langs}   # noqa: E731
    assert base(test.language) <= base(train.language)


def test_task_affect_and_speakers(built):
    a = tasks.build_task("affect", root=built).frame
    assert set(a.labels) == {"anger", "happy", "fear", "pain", "neutral"}
    # split by phrase: a phrase in one split only, every group with test phrases
    assert a.groupby("phrase")["split"].nunique().max() == 1
    several = {lab for lab, n in a.groupby("labels")["phrase"].nunique().items() if n >= 2}
    assert several and set(a[a.split == "test"].labels) == several   # one-phrase groups: train only
    assert not set(a[a.split == "test"].phrase) & set(a[a.split == "train"].phrase)
    s = tasks.build_task("speakers", root=built).frame
    assert (s.labels == s.speaker).all() and s.groupby("phrase")["split"].nunique().max() == 1


def test_task_languages_and_captions(built, small_min):
    f = tasks.build_task("languages", root=built).frame
    assert {"en", "fr"} <= set(f.labels)
    assert "ru" not in set(f.labels)  # 4 KLettres clips only: below MIN_LANGUAGE_CLIPS (5 here)
    assert "es" not in set(f.labels)  # spoken by allison only: one voice would name the language
    # split by voice: a voice in one split only, every language with a test voice and a training
    # voice; allison (Asterisk) in test, june in valid
    assert f.groupby("speaker")["split"].nunique().max() == 1
    per = f.groupby("labels")["split"].unique().map(set)
    assert all({"test", "train"} <= s for s in per)
    assert set(f[f.speaker == "asterisk:allison"].split) == {"test"}
    assert set(f[f.speaker == "asterisk:june"].split) == {"valid"}
    c = tasks.build_task("captions", root=built)
    assert len(c) == 12 and all(len(c.captions_of(i)) == 1 for i in range(len(c)))


def test_task_pitch_and_family(built):
    p = tasks.build_task("pitch", root=built).frame
    assert set(p.labels) == {"48", "60", "72"}
    assert not set(p.family) & set(tasks.PITCH_EXCLUDED_FAMILIES)
    fam = tasks.build_task("instrument_family", root=built).frame
    assert fam.groupby("program")["split"].nunique().max() == 1
    assert set(fam.labels) == set(soundfont.GM_FAMILIES)


def test_overview_counts_splits_and_reports_unavailable_tasks(tmp_path):
    import pandas as pd

    from audiorepro.data.audio import save_audio
    from audiorepro.data.cliptable import ClipTable
    from audiorepro.data.debian import DebianSourceUnavailable
    from audiorepro.data.debian import tasks as T

    rows = []
    for i, (split, seconds) in enumerate([("train", 1.0), ("train", 2.0), ("test", 3.0)]):
        save_audio(tmp_path / f"{i}.flac", np.zeros(int(seconds * 16000), np.float32), 16000)
        rows.append(dict(clip_id=str(i), path=f"{i}.flac", split=split, labels=f"c{i % 2}"))
    table = ClipTable(pd.DataFrame(rows), tmp_path)
    ov = T.overview({"captions": table,
                     "drums": DebianSourceUnavailable("hydrogen-drumkits", "no apt here")})
    assert ov.loc["captions", ["clips", "classes", "train", "valid", "test"]].tolist() == [3, 2, 2, 0, 1]
    assert ov.loc["captions", "median_duration_s"] == 2.0
    assert ov.loc["drums", "status"].startswith("unavailable") and "hydrogen-drumkits" in ov.loc["drums", "status"]
    assert "GPL-2" in ov.loc["captions", "licences"]


def test_phrase_split_by_hand():
    # group x: 5 phrases -> 1 test, 1 valid, 3 train; group y: 2 phrases -> 1 test, 0 valid, 1 train
    frame = pd.DataFrame({"labels": ["x"] * 5 + ["y"] * 2 + ["x"],
                          "phrase": ["a", "b", "c", "d", "e", "f", "g", "a"]})
    split = tasks.phrase_split(frame, "salt:")
    per = pd.DataFrame({"labels": frame.labels, "phrase": frame.phrase, "split": split}).drop_duplicates()
    assert per.groupby("phrase")["split"].nunique().max() == 1            # "a" twice, one split
    x = per[per.labels == "x"]["split"].value_counts().to_dict()
    y = per[per.labels == "y"]["split"].value_counts().to_dict()
    assert x == {"test": 1, "valid": 1, "train": 3} and y == {"test": 1, "train": 1}


def test_voice_split_by_hand():
    # x: 3 voices (one fixed to test) -> 1 valid, 1 train; y: 2 voices -> 1 test, 1 train;
    # z: 1 voice -> dropped; w: 2 voices both fixed to test -> no training voice: dropped
    frame = pd.DataFrame({"labels": list("xxxyyzww"),
                          "speaker": ["a", "b", "c", "d", "e", "f", "g", "h"]})
    split = tasks.voice_split(frame, {"a": "test", "g": "test", "h": "test"})
    per = dict(zip(frame.speaker, split))
    assert per["a"] == "test" and sorted([per["b"], per["c"]]) == ["train", "valid"]
    assert sorted([per["d"], per["e"]]) == ["test", "train"]
    assert all(pd.isna(per[v]) for v in "fgh")
