"""General MIDI notes rendered from ``fluid-soundfont-gm`` (FluidR3_GM.sf2) with fluidsynth.

NSynth-like: every one of the 128 melodic GM programs (bank 0) plays the MIDI pitches
:data:`PITCHES` (36..84 in steps of 2: C2..C6) at velocity :data:`VELOCITY`, each note held
:data:`HOLD_S` s; one clip per note is the :data:`CLIP_S` s from its onset (hold + release).
One MIDI file per batch of 16 programs (notes :data:`SPACING_S` s apart, an "all sound off"
controller after every clip) is rendered by ``fluidsynth -F`` at 16 kHz with reverb and chorus off, gain
:data:`GAIN`, then cut into clips. Notes outside an instrument's sampled range may be silent:
clips whose peak is below :data:`SILENCE_PEAK` are left out (and counted in the log).

Columns: ``labels`` = GM instrument family (16 families of 8 programs: ``piano`` ...
``sound_effects``), ``program`` (0-127), ``instrument`` (the preset name read from the .sf2's
``phdr`` chunk), ``family``, ``pitch`` (MIDI note), ``velocity``, ``source``, ``length_s``.

Split (fixed, by program: test instruments are unseen): within each family the 8 programs are
ordered by the hash of ``soundfont:<program>``; the first 5 are ``train``, the 6th ``valid``, the
last 2 ``test`` (80 / 16 / 32 programs).
"""
from __future__ import annotations

import logging
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..audio import load_audio, save_audio
from .common import SAMPLE_RATE, quiet_audio_log, stable_bucket

log = logging.getLogger(__name__)

PACKAGE = "fluid-soundfont-gm"
SF2 = Path("usr/share/sounds/sf2/FluidR3_GM.sf2")
PITCHES: tuple[int, ...] = tuple(range(36, 85, 2))
VELOCITY = 100
HOLD_S = 1.0
CLIP_S = 2.0
SPACING_S = 2.25
GAIN = 0.5
SILENCE_PEAK = 1e-3
TICKS_PER_QUARTER = 480
TEMPO_US = 500_000  # 120 bpm: 960 ticks per second

GM_FAMILIES: tuple[str, ...] = (
    "piano", "chromatic_percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth_lead", "synth_pad", "synth_effects", "ethnic", "percussive",
    "sound_effects")

Renderer = Callable[[Path, Path, Path], None]  # (sf2, midi, out_wav) -> None


def family_of(program: int) -> str:
    """GM instrument family of a program number 0..127."""
    if not 0 <= program < 128:
        raise ValueError(f"GM program must be in 0..127, got {program}")
    return GM_FAMILIES[program // 8]


def program_split(program: int) -> str:
    """Fixed split of a program (see the module docstring)."""
    fam = program // 8
    order = sorted(range(fam * 8, fam * 8 + 8), key=lambda p: (stable_bucket(f"soundfont:{p}", 10**9), p))
    rank = order.index(program)
    return "train" if rank < 5 else "valid" if rank == 5 else "test"


# ------------------------------------------------------------------ MIDI writing
def _varlen(n: int) -> bytes:
    """MIDI variable-length quantity."""
    if n < 0:
        raise ValueError(f"MIDI delta time must be >= 0, got {n}")
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def seconds_to_ticks(t: float) -> int:
    return int(round(t * 1e6 / TEMPO_US * TICKS_PER_QUARTER))


def note_midi(programs: int | Sequence[int], pitches: tuple[int, ...] = PITCHES,
              velocity: int = VELOCITY, hold_s: float = HOLD_S, clip_s: float = CLIP_S,
              spacing_s: float = SPACING_S, channel: int = 0) -> bytes:
    """A format-0 standard MIDI file playing, for each program in turn (a program change at the
    start of its block), each pitch held ``hold_s`` s, onsets ``spacing_s`` s apart, with "all
    sound off" (CC 120) ``clip_s`` s after each onset. Note ``k`` of program ``j`` (0-based in
    ``programs``) starts at ``(j * len(pitches) + k) * spacing_s`` seconds."""
    programs = [programs] if isinstance(programs, int) else list(programs)
    if not (0 < velocity < 128 and 0 <= channel < 16):
        raise ValueError(f"bad MIDI velocity/channel {velocity}/{channel}")
    if not 0 < hold_s < clip_s < spacing_s:
        raise ValueError(f"need 0 < hold_s < clip_s < spacing_s, got {hold_s}, {clip_s}, {spacing_s}")
    events: list[tuple[int, bytes]] = []
    for j, program in enumerate(programs):
        if not 0 <= program < 128:
            raise ValueError(f"GM program must be in 0..127, got {program}")
        block = j * len(pitches) * spacing_s
        events.append((seconds_to_ticks(block), bytes([0xC0 | channel, program])))
        for i, p in enumerate(pitches):
            if not 0 <= p < 128:
                raise ValueError(f"MIDI pitch must be in 0..127, got {p}")
            on = block + i * spacing_s
            events.append((seconds_to_ticks(on), bytes([0x90 | channel, p, velocity])))
            events.append((seconds_to_ticks(on + hold_s), bytes([0x80 | channel, p, 0])))
            events.append((seconds_to_ticks(on + clip_s), bytes([0xB0 | channel, 120, 0])))
    events.sort(key=lambda e: e[0])  # stable: keeps the order of equal times
    track = bytearray(b"\x00\xff\x51\x03" + TEMPO_US.to_bytes(3, "big"))
    now = 0
    for t, msg in events:
        track += _varlen(t - now) + msg
        now = t
    track += _varlen(seconds_to_ticks(0.5)) + b"\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_QUARTER)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


# ------------------------------------------------------------------ SF2 preset names
def sf2_presets(sf2: Path) -> dict[tuple[int, int], str]:
    """``{(bank, program): preset name}`` from the ``phdr`` chunk of a SoundFont 2 file."""
    data = Path(sf2).read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise ValueError(f"{sf2} is not a SoundFont 2 file (no RIFF/sfbk header)")
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if cid == b"LIST" and data[pos + 8:pos + 12] == b"pdta":
            sub, end = pos + 12, pos + 8 + size
            while sub + 8 <= end:
                sid, ssize = data[sub:sub + 4], struct.unpack("<I", data[sub + 4:sub + 8])[0]
                if sid == b"phdr":
                    out = {}
                    recs = data[sub + 8:sub + 8 + ssize]
                    for k in range(0, len(recs) - 38 + 1, 38):
                        name = recs[k:k + 20].split(b"\0", 1)[0].decode("latin-1").strip()
                        preset, bank = struct.unpack("<HH", recs[k + 20:k + 24])
                        if name != "EOP":
                            out[(bank, preset)] = name
                    return out
                sub += 8 + ssize + (ssize & 1)
        pos += 8 + size + (size & 1)
    raise ValueError(f"{sf2}: no pdta/phdr chunk (preset headers) found")


# ------------------------------------------------------------------ rendering
def fluidsynth_renderer(cache: str | None = None) -> Renderer:
    """A :data:`Renderer` calling fluidsynth from its Debian packages (see ``fetch.fluidsynth``)."""
    from .fetch import DebianSourceUnavailable, fluidsynth

    fs = fluidsynth(cache)

    def render(sf2: Path, midi: Path, out_wav: Path) -> None:
        cmd = [fs.argv0, "-n", "-i", "-q", "-R", "0", "-C", "0", "-g", str(GAIN),
               "-r", str(SAMPLE_RATE), "-T", "wav", "-O", "s16", "-F", str(out_wav),
               str(sf2), str(midi)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=fs.env, timeout=600)
        if proc.returncode != 0 or not out_wav.is_file():
            raise DebianSourceUnavailable(
                "fluidsynth", f"rendering {midi} failed (exit {proc.returncode}): "
                              f"{proc.stderr.strip()[-400:]}")

    return render


def build(roots: Mapping[str, Path], out_dir: Path, workers: int = 2,
          renderer: Renderer | None = None, programs: tuple[int, ...] = tuple(range(128)),
          pitches: tuple[int, ...] = PITCHES, batch: int = 16) -> pd.DataFrame:
    """Render and cut the notes (see the module docstring).

    Args:
        roots: ``{"fluid-soundfont-gm": extracted package root}``.
        renderer: renders (sf2, midi, out_wav); default :func:`fluidsynth_renderer`.
        programs, pitches: subset to render (default: all 128 programs, :data:`PITCHES`).
        batch: programs per rendered MIDI file (the 140 MB soundfont is loaded once per file).
    """
    sf2 = Path(roots[PACKAGE]) / SF2
    if not sf2.is_file():
        raise FileNotFoundError(f"{PACKAGE}: expected the soundfont {sf2}")
    names = sf2_presets(sf2)
    render = renderer or fluidsynth_renderer()
    rows: list[dict] = []
    silent = 0
    clip_n = int(round(CLIP_S * SAMPLE_RATE))
    programs = tuple(programs)
    batches = [programs[i:i + batch] for i in range(0, len(programs), batch)]
    with tempfile.TemporaryDirectory(prefix="gm-render-") as tmp:
        for b, progs in enumerate(batches):
            dsts = {(prog, p): out_dir / "audio" / f"p{prog:03d}" / f"p{prog:03d}_n{p:03d}.flac"
                    for prog in progs for p in pitches}
            done_marker = out_dir / "audio" / f".batch_{'_'.join(map(str, progs))}.done"
            if not done_marker.is_file():  # render this batch (skipped when resuming)
                midi, wav = Path(tmp) / f"b{b}.mid", Path(tmp) / f"b{b}.wav"
                midi.write_bytes(note_midi(progs, pitches))
                render(sf2, midi, wav)
                with quiet_audio_log():
                    wave, _ = load_audio(wav, SAMPLE_RATE)  # (T,) mono (stereo averaged)
                wav.unlink()
                for j, prog in enumerate(progs):
                    for i, p in enumerate(pitches):
                        start = int(round((j * len(pitches) + i) * SPACING_S * SAMPLE_RATE))
                        clip = wave[start:start + clip_n]
                        if clip.shape[-1] < clip_n:
                            clip = torch.nn.functional.pad(clip, (0, clip_n - clip.shape[-1]))
                        if clip.numel() and float(clip.abs().max()) >= SILENCE_PEAK:
                            save_audio(dsts[(prog, p)], clip, SAMPLE_RATE)
                done_marker.parent.mkdir(parents=True, exist_ok=True)
                done_marker.touch()
            for prog in progs:
                fam = family_of(prog)
                for p in pitches:
                    dst = dsts[(prog, p)]
                    if not dst.is_file():  # silent note (peak below SILENCE_PEAK)
                        silent += 1
                        continue
                    rows.append({"clip_id": f"soundfont-p{prog:03d}-n{p:03d}",
                                 "path": dst.relative_to(out_dir).as_posix(),
                                 "split": program_split(prog), "labels": fam,
                                 "program": prog, "instrument": names.get((0, prog), ""),
                                 "family": fam, "pitch": p, "velocity": VELOCITY,
                                 "source": PACKAGE, "length_s": CLIP_S})
    if silent:
        log.info("%s: %d silent notes (outside the instruments' ranges) left out", PACKAGE, silent)
    return pd.DataFrame(rows)
