"""The ontology of the synthetic sound world: 44 parametric sound classes under 7 parents.

Each class is a :class:`SoundClass`: a synthesiser ``synth(n, sr, rng, f0, timbre, rate)`` plus the
ranges of its controllable factors (pitch as MIDI range or ``None`` for unpitched sounds, timbre
ids, rate range in Hz or ``None``, duration range in s) and the words used to caption it.
Synthesisers return a float64 array of ``n`` samples (any scale; the mixer normalises loudness).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import dsp
from .dsp import band, env_ar, env_exp, harmonic_amps, highpass, lowpass, noise_tilt, osc, place

Synth = Callable[[int, int, np.random.Generator, "float | None", str, "float | None"], np.ndarray]

PARENTS = {
    "animal": "sounds made by animals",
    "vehicle": "motor vehicles, aircraft and their signals",
    "music": "musical instruments",
    "domestic": "household sounds and appliances",
    "human": "sounds of the human voice and body",
    "nature": "weather and natural elements",
    "tools": "hand and power tools",
}

ALL_TIMBRES = dsp.TIMBRES
NOISE_TIMBRES = ("bright", "dark")


@dataclass(frozen=True)
class SoundClass:
    """One event class of the synthetic world.

    Attributes:
        name: class label (``snake_case``).
        parent: parent category (a key of :data:`PARENTS`).
        description: one-line description (written to ``ontology.csv``).
        synth: synthesiser ``(n, sr, rng, f0_hz | None, timbre, rate_hz | None) -> (n,) array``.
        midi: inclusive MIDI range of the pitch factor, or ``None`` for unpitched classes.
        rate: range of the rhythm factor in Hz (pulses, notes, strokes per second) or ``None``.
        duration: range of the event duration in seconds.
        timbres: timbre ids this class can take.
        keywords: lowercase stems; every caption phrase of the class contains one of them.
        subjects: caption subjects (noun phrases without article).
        article: ``"a"`` for countable singular subjects, ``""`` for mass/plural ones.
        verbs: verb phrases that follow the subject.
        nouns: noun phrases naming the sound (used in list-style captions).
    """

    name: str
    parent: str
    description: str
    synth: Synth
    midi: tuple[int, int] | None
    rate: tuple[float, float] | None
    duration: tuple[float, float]
    timbres: tuple[str, ...]
    keywords: tuple[str, ...]
    subjects: tuple[str, ...]
    verbs: tuple[str, ...]
    nouns: tuple[str, ...]
    article: str = "a"
    extra: dict = field(default_factory=dict)

    @property
    def pitched(self) -> bool:
        return self.midi is not None

    @property
    def rhythmic(self) -> bool:
        return self.rate is not None


def _t(n: int, sr: int) -> np.ndarray:
    return np.arange(n) / sr


def _scatter(out: np.ndarray, starts: np.ndarray, variants: list, rng: np.random.Generator,
             gain: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Add a randomly chosen template of ``variants`` (with a random gain) at every start index."""
    which = rng.integers(0, len(variants), len(starts))
    gains = rng.uniform(gain[0], gain[1], len(starts))
    for st, k, g in zip(starts, which, gains):
        place(out, variants[k] * g, int(st))
    return out


# =========================================================================== animal
def _dog_bark(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    for st in dsp.pulse_starts(n, sr, rate, rng, 0.15, 0.1):
        m = int(rng.uniform(0.12, 0.2) * sr)
        t = _t(m, sr)
        f = f0 * (1.0 + 0.5 * np.exp(-t / 0.03)) * (1.0 - 0.3 * t / t[-1])
        tone = osc(f, harmonic_amps(f0, 16, timbre, sr), sr, rng=rng)
        noise = dsp.shaped_noise(m, sr, rng, lambda fr: band(fr, 1500.0, 1.0))
        place(out, (tone + 0.4 * noise) * env_exp(m, sr, 0.008, 0.06), st)
    return out


def _cat_meow(n, sr, rng, f0, timbre, rate):
    t = _t(n, sr)
    T = t[-1] + 1e-9
    f = f0 * (1.0 + 0.3 * np.sin(np.pi * t / T) ** 2 - 0.1 * t / T) * (1 + 0.01 * np.sin(2 * np.pi * 6 * t))
    a = harmonic_amps(f0, 14, timbre, sr)
    tone = osc(f, a, sr, rng=rng)
    vowel = 0.6 + 0.4 * np.sin(np.pi * t / T)  # "mi-aa-ow" opening
    return tone * vowel * env_ar(n, sr, 0.06, 0.25)


def _bird_chirp(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    h2 = 0.35 if timbre == "bright" else 0.04
    for st in dsp.pulse_starts(n, sr, rate, rng, 0.2, 0.05):
        m = int(rng.uniform(0.04, 0.08) * sr)
        t = _t(m, sr)
        f = f0 * (1.0 + 0.6 * t / t[-1]) * rng.uniform(0.95, 1.05)
        x = np.sin(2 * np.pi * np.cumsum(f) / sr) + h2 * np.sin(4 * np.pi * np.cumsum(f) / sr)
        place(out, x * np.sin(np.pi * t / t[-1]) ** 2, st)
    return out


def _rooster_crow(n, sr, rng, f0, timbre, rate):
    t = _t(n, sr)
    u = t / (t[-1] + 1e-9)
    contour = np.interp(u, [0, 0.12, 0.35, 0.45, 0.75, 1.0], [0.8, 1.0, 1.0, 1.15, 1.12, 0.7])
    tone = osc(f0 * contour, harmonic_amps(f0, 12, timbre, sr), sr, rng=rng)
    rough = 1.0 + 0.3 * np.sin(2 * np.pi * 32 * t)
    return tone * rough * env_ar(n, sr, 0.05, 0.3)


def _cow_moo(n, sr, rng, f0, timbre, rate):
    t = _t(n, sr)
    u = t / (t[-1] + 1e-9)
    f = f0 * np.interp(u, [0, 0.3, 1.0], [0.9, 1.05, 0.85])
    a = harmonic_amps(f0, 30, timbre, sr) * lowpass(np.arange(1, 31) * f0, 700.0, 2)
    return osc(f, a, sr, rng=rng) * env_ar(n, sr, 0.25, 0.4)


def _cricket(n, sr, rng, f0, timbre, rate):
    car = osc(f0, np.array([1.0, 0.3 if timbre == "bright" else 0.0]), sr, n, rng)
    pulse = np.clip(osc(rate, np.ones(1), sr, n) * 3.0 - 1.0, 0.0, 1.0)
    group = (osc(rng.uniform(1.5, 3.0), np.ones(1), sr, n) > -0.3).astype(np.float32)
    return car * pulse * dsp.filter_fft(group, sr, lambda f: lowpass(f, 40.0, 2))


# =========================================================================== vehicle
def _car_engine(n, sr, rng, f0, timbre, rate):
    f = f0 * (1.0 + 0.08 * dsp.smooth_random(n, sr, rng, 0.5))
    a = harmonic_amps(f0, 40, timbre, sr) * lowpass(np.arange(1, 41) * f0, 900.0, 2)
    tone = osc(f, a, sr, rng=rng) * (1.0 + 0.3 * np.sin(2 * np.pi * np.cumsum(f / 2) / sr))
    noise = dsp.shaped_noise(n, sr, rng, lambda fr: lowpass(fr, 500.0, 2) * highpass(fr, 40.0))
    return (tone / (np.std(tone) + 1e-9) + 0.4 * noise) * env_ar(n, sr, 0.3, 0.4)


def _car_horn(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    a = harmonic_amps(f0, 16, timbre, sr)
    honk = int(min(n, max(0.15, 0.6 / rate) * sr))
    for st in dsp.pulse_starts(n, sr, rate, rng, 0.1, 0.6 / rate):
        m = min(honk, n - st)
        x = osc(f0, a, sr, m, rng) + 0.8 * osc(f0 * 1.26, a, sr, m, rng)
        place(out, x * env_ar(m, sr, 0.01, 0.03), st)
    return out


def _siren(n, sr, rng, f0, timbre, rate):
    t = _t(n, sr)
    f = f0 * (1.0 + 0.5 * (0.5 - 0.5 * np.cos(2 * np.pi * rate * t)))
    return osc(f, harmonic_amps(f0, 10, timbre, sr), sr, rng=rng) * env_ar(n, sr, 0.2, 0.3)


def _motorcycle(n, sr, rng, f0, timbre, rate):
    t = _t(n, sr)
    u = t / (t[-1] + 1e-9)
    f = f0 * np.interp(u, [0, 0.15, 0.6, 1.0], [1.0, 1.0, 1.7, 1.1]) * (1 + 0.02 * dsp.smooth_random(n, sr, rng, 3))
    a = harmonic_amps(f0, 40, timbre, sr) * lowpass(np.arange(1, 41) * f0, 1500.0, 2)
    tone = osc(f, a, sr, rng=rng) * (1.0 + 0.5 * np.sin(2 * np.pi * np.cumsum(f / 2) / sr))
    noise = dsp.shaped_noise(n, sr, rng, lambda fr: lowpass(fr, 1200.0, 2) * highpass(fr, 60.0))
    return (tone / (np.std(tone) + 1e-9) + 0.5 * noise) * env_ar(n, sr, 0.2, 0.5)


def _helicopter(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    m = int(0.035 * sr)
    tilt = 300.0 if timbre == "bright" else 150.0
    env = env_exp(m, sr, 0.002, 0.012)
    thumps = [dsp.shaped_noise(m, sr, rng, lambda fr: lowpass(fr, tilt, 2) * highpass(fr, 30.0)) * env
              for _ in range(6)]
    _scatter(out, dsp.pulse_starts(n, sr, rate, rng, 0.03), thumps, rng, (0.8, 1.0))
    whine = 0.15 * osc(f0, np.ones(1), sr, n) * np.std(out) / 0.7
    return (out + whine) * env_ar(n, sr, 0.5, 0.5)


def _aircraft(n, sr, rng, f0, timbre, rate):
    t = _t(n, sr)
    u = t / (t[-1] + 1e-9)
    noise = dsp.shaped_noise(n, sr, rng, lambda fr: lowpass(fr, 1500.0, 1) * highpass(fr, 60.0) * noise_tilt(fr, timbre))
    f = f0 * np.interp(u, [0, 0.5, 1.0], [1.06, 1.0, 0.94])
    whine = 0.25 * np.sin(2 * np.pi * np.cumsum(f) / sr)
    swell = np.sin(np.pi * u) ** 1.5
    return (noise + whine) * swell


# =========================================================================== music
def _struck_string(m, sr, rng, f0, timbre, tau0, stiff, pos=None):
    H = max(1, min(20, int(0.45 * sr / f0)))
    h = np.arange(1, H + 1)
    freqs = f0 * h * np.sqrt(1.0 + stiff * h * h)
    amps = harmonic_amps(f0, H, timbre, sr)
    if pos is not None:
        amps = amps * np.abs(np.sin(np.pi * h * pos))
    taus = tau0 / (1.0 + (0.3 if pos is None else 0.6) * h)
    return dsp.partials(m, sr, freqs, amps, taus, rng) * env_exp(m, sr, 0.003, 10.0)


def _piano_note(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    note = _struck_string(min(n, int(1.2 * sr)), sr, rng, f0, timbre, rng.uniform(0.6, 1.2), 0.0004)
    for st in dsp.pulse_starts(n, sr, rate, rng, 0.05, 0.2)[:6]:
        place(out, note * rng.uniform(0.7, 1.0), st)
    return out


def _guitar_pluck(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    note = _struck_string(min(n, int(1.0 * sr)), sr, rng, f0, timbre, rng.uniform(0.8, 1.5), 0.0001,
                          rng.uniform(0.1, 0.3))
    for st in dsp.pulse_starts(n, sr, rate, rng, 0.05, 0.15)[:8]:
        place(out, note * rng.uniform(0.7, 1.0), st)
    return out


def _bowed(n, sr, rng, f0, timbre, vib_hz, vib_semi, body):
    t = _t(n, sr)
    f = f0 * 2 ** (vib_semi / 12 * np.sin(2 * np.pi * vib_hz * t) * np.clip(t / 0.3, 0, 1))
    H = 40
    a = harmonic_amps(f0, H, timbre, sr)
    hf = np.arange(1, H + 1) * f0
    for fc in body:
        a = a * (1.0 + 1.5 * band(hf, fc, 0.25))
    return osc(f, a, sr, rng=rng)


def _violin(n, sr, rng, f0, timbre, rate):
    x = _bowed(n, sr, rng, f0, timbre, rng.uniform(5.0, 6.5), 0.4, (300.0, 1000.0, 2500.0))
    bow = dsp.shaped_noise(n, sr, rng, lambda f: band(f, 3000.0, 1.0))
    return (x / (x.std() + 1e-9) + 0.05 * bow) * env_ar(n, sr, 0.12, 0.15)


def _flute(n, sr, rng, f0, timbre, rate):
    t = _t(n, sr)
    f = f0 * 2 ** (0.15 / 12 * np.sin(2 * np.pi * rng.uniform(4.5, 5.5) * t))
    h2, h3 = (0.3, 0.15) if timbre == "bright" else (0.12, 0.04)
    tone = osc(f, np.array([1.0, h2, h3]), sr, rng=rng)
    breath = dsp.shaped_noise(n, sr, rng, lambda fr: band(fr, 2 * f0, 0.5))
    return (tone + 0.08 * breath) * env_ar(n, sr, 0.06, 0.1)


def _trumpet(n, sr, rng, f0, timbre, rate):
    H = 30
    hf = np.arange(1, H + 1) * f0
    bright = harmonic_amps(f0, H, timbre, sr) * (1.0 + 3.0 * band(hf, 1200.0, 0.6))
    dark = harmonic_amps(f0, H, "dark", sr)
    t = _t(n, sr)
    f = f0 * (1.0 - 0.03 * np.exp(-t / 0.03))
    mix = np.clip(t / 0.08, 0, 1)
    x = (1 - mix) * osc(f, dark, sr, rng=rng) + mix * osc(f, bright, sr, rng=rng)
    return x * env_ar(n, sr, 0.03, 0.08)


def _kick_drum(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    m = int(0.35 * sr)
    t = _t(m, sr)
    f = f0 + (150.0 - f0) * np.exp(-t / 0.04)
    kick = np.sin(2 * np.pi * np.cumsum(f) / sr) * env_exp(m, sr, 0.001, 0.15)
    if timbre == "bright":
        kick += 0.5 * dsp.shaped_noise(m, sr, rng, lambda fr: band(fr, 3000.0, 1.0)) * env_exp(m, sr, 0.0005, 0.005)
    for st in dsp.pulse_starts(n, sr, rate, rng, 0.01):
        place(out, kick, st)
    return out


def _hi_hat(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    tau = 0.08 if timbre == "bright" else 0.025
    m = int(min(0.3, 5 * tau) * sr)
    env = env_exp(m, sr, 0.0005, tau)
    ticks = [dsp.shaped_noise(m, sr, rng, lambda fr: highpass(fr, 5000.0, 3)) * env for _ in range(6)]
    return _scatter(out, dsp.pulse_starts(n, sr, rate, rng, 0.02), ticks, rng, (0.7, 1.0))


def _church_bell(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    ratios = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.5, 2.67, 3.0, 4.0])
    tilt = 0.5 if timbre == "bright" else 1.3
    amps = ratios ** -tilt
    taus = 3.0 / ratios ** 0.7
    strike = dsp.partials(min(n, int(5.0 * sr)), sr, f0 * ratios, amps, taus, rng)
    for st in dsp.pulse_starts(n, sr, rate, rng, 0.05, 0.5):
        place(out, strike * rng.uniform(0.8, 1.0), st)
    return out


# =========================================================================== domestic
def _dishes_clink(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    m = int(0.25 * sr)
    amps = np.array([1.0, 0.6, 0.4]) * (1.0 if timbre == "bright" else np.array([1.0, 0.3, 0.1]))
    clinks = [dsp.partials(m, sr, f0 * rng.uniform(0.9, 1.15) * np.array([1.0, 1.6, 2.3]), amps,
                           np.full(3, rng.uniform(0.05, 0.12)), rng) for _ in range(6)]
    return _scatter(out, dsp.poisson_starts(n, sr, rate, rng), clinks, rng, (0.4, 1.0))


def _water_tap(n, sr, rng, f0, timbre, rate):
    hiss = dsp.shaped_noise(n, sr, rng, lambda f: band(f, 2800.0, 0.7) * noise_tilt(f, timbre))
    gurgle = 1.0 + 0.5 * dsp.filter_fft(rng.standard_normal(n), sr, lambda f: lowpass(f, 25.0, 2)) * 4.0
    return hiss * np.clip(gurgle, 0.2, None) * env_ar(n, sr, 0.1, 0.15)


def _door_knock(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    m = int(0.15 * sr)
    for st in dsp.pulse_starts(n, sr, rate, rng, 0.08, 0.1)[:6]:
        body = dsp.partials(m, sr, f0 * np.array([1.0, 2.3]), np.array([1.0, 0.5]), np.array([0.04, 0.02]), rng)
        lp = 2500.0 if timbre == "bright" else 1000.0
        click = dsp.shaped_noise(m, sr, rng, lambda f: lowpass(f, lp, 2)) * env_exp(m, sr, 0.0005, 0.008)
        place(out, body + 0.5 * click, st)
    return out


def _vacuum_cleaner(n, sr, rng, f0, timbre, rate):
    t = _t(n, sr)
    f = f0 * (1.0 - 0.5 * np.exp(-t / 0.3))
    whine = osc(f, harmonic_amps(f0, 8, "bright", sr), sr, rng=rng)
    roar = dsp.shaped_noise(n, sr, rng, lambda fr: band(fr, 1800.0, 1.2) * noise_tilt(fr, timbre))
    return (0.3 * whine / (whine.std() + 1e-9) + roar) * env_ar(n, sr, 0.3, 0.3)


def _alarm_clock(n, sr, rng, f0, timbre, rate):
    t = _t(n, sr)
    a = np.array([1.0, 0.0, 0.33]) if timbre == "hollow" else np.array([1.0, 0.0, 0.0])
    tone = osc(f0, a, sr, n, rng)
    gate = (np.mod(t * rate, 1.0) < 0.5).astype(float)
    gate = dsp.filter_fft(gate, sr, lambda f: lowpass(f, 200.0, 2))
    return tone * gate


def _microwave_beep(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    a = np.array([1.0, 0.25, 0.1]) if timbre == "bright" else np.array([1.0])
    m = int(min(0.5, 0.6 / rate) * sr)
    for st in dsp.pulse_starts(n, sr, rate, rng, 0.0, 0.6 / rate)[:3]:
        mm = min(m, n - st)
        place(out, osc(f0, a, sr, mm, rng) * env_ar(mm, sr, 0.005, 0.01), st)
    return out


def _keyboard_typing(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    m = int(0.04 * sr)
    hi = 4000.0 if timbre == "bright" else 2500.0
    e1, e2 = env_exp(m, sr, 0.0003, 0.004), env_exp(m, sr, 0.0005, 0.01)
    keys = [dsp.shaped_noise(m, sr, rng, lambda f: band(f, hi, 0.6)) * e1
            + 0.6 * dsp.shaped_noise(m, sr, rng, lambda f: band(f, 450.0, 0.5)) * e2 for _ in range(8)]
    return _scatter(out, dsp.poisson_starts(n, sr, rate, rng), keys, rng, (0.5, 1.0))


def _telephone_ring(n, sr, rng, f0, timbre, rate):
    t = _t(n, sr)
    a = harmonic_amps(f0, 4, timbre, sr)
    tone = osc(f0, a, sr, n, rng) + osc(f0 * 1.09, a, sr, n, rng)
    warble = (np.floor(t * 40.0) % 2 == 0).astype(np.float32)
    ring = (np.mod(t * rate, 1.0) < 0.4).astype(float)
    gate = dsp.filter_fft(warble * ring, sr, lambda f: lowpass(f, 300.0, 2))
    return tone * gate


# =========================================================================== human
_VOWELS = np.array([[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010],
                    [570, 840, 2410], [300, 870, 2240], [660, 1720, 2410]], dtype=float)


def _voiced(m, sr, rng, f_track, timbre, formants, bw=0.18):
    H = 40
    f0 = float(np.mean(f_track))
    hf = np.arange(1, H + 1) * f0
    tilt = {"bright": 0.9, "dark": 1.6}.get(timbre, 1.2)
    a = np.arange(1, H + 1) ** -tilt * sum(band(hf, fc, bw) * g for fc, g in zip(formants, (1.0, 0.7, 0.4)))
    if timbre == "nasal":
        a = a * (1.0 + 2.0 * band(hf, 1300.0, 0.25))
    return osc(f_track, a, sr, rng=rng)


def _speech(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    period = sr / rate
    k = 0
    st = 0.0
    while st < n - 0.08 * sr:
        m = int(min(n - st, period * rng.uniform(0.7, 0.95)))
        if rng.random() < 0.15 and k > 0:      # pause between words
            st += period * rng.uniform(0.5, 1.2)
            continue
        t = _t(m, sr)
        decl = 1.0 - 0.15 * st / n
        f = f0 * decl * rng.uniform(0.9, 1.12) * (1.0 + 0.06 * np.sin(np.pi * t / (t[-1] + 1e-9)))
        x = _voiced(m, sr, rng, f, timbre, _VOWELS[rng.integers(len(_VOWELS))])
        x = x / (x.std() + 1e-9) * env_ar(m, sr, 0.02, 0.04)
        if rng.random() < 0.4:                 # fricative consonant at the syllable onset
            c = int(0.05 * sr)
            x[:c] += 0.5 * dsp.shaped_noise(c, sr, rng, lambda fr: band(fr, 4500.0, 0.4)) * env_ar(c, sr, 0.005, 0.02)
        place(out, x, int(st))
        st += period
        k += 1
    return out


def _laughter(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    starts = dsp.pulse_starts(n, sr, rate, rng, 0.1, 0.05)
    for i, st in enumerate(starts):
        m = int(0.55 / rate * sr)
        decay = 1.0 - 0.5 * i / max(1, len(starts))
        f = np.full(m, f0 * (1.0 - 0.2 * i / max(1, len(starts))))
        x = _voiced(m, sr, rng, f, timbre, (800.0, 1200.0, 2600.0), 0.25)
        x = x / (x.std() + 1e-9) + 0.6 * dsp.shaped_noise(m, sr, rng, lambda fr: band(fr, 1500.0, 0.9))
        place(out, x * env_ar(m, sr, 0.01, 0.05) * decay, st)
    return out


def _footsteps(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    m = int(0.2 * sr)
    lp = 2500.0 if timbre == "bright" else 1200.0
    e1, e2 = env_exp(m, sr, 0.002, 0.03), env_exp(m, sr, 0.03, 0.04)
    steps = [dsp.shaped_noise(m, sr, rng, lambda f: lowpass(f, 220.0, 2) * highpass(f, 40.0)) * e1
             + 0.35 * dsp.shaped_noise(m, sr, rng, lambda f: band(f, lp, 0.7)) * e2 for _ in range(4)]
    return _scatter(out, dsp.pulse_starts(n, sr, rate, rng, 0.06), steps, rng, (0.7, 1.0))


def _clapping(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    m = int(0.08 * sr)
    fc = 1800.0 if timbre == "bright" else 1000.0
    env = env_exp(m, sr, 0.0005, 0.012)
    claps = [dsp.shaped_noise(m, sr, rng, lambda f: band(f, fc * rng.uniform(0.85, 1.15), 0.6)) * env
             for _ in range(6)]
    return _scatter(out, dsp.pulse_starts(n, sr, rate, rng, 0.05), claps, rng, (0.8, 1.0))


def _cough(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    for st in dsp.pulse_starts(n, sr, rate, rng, 0.1, 0.25)[:3]:
        m = int(min(n - st, rng.uniform(0.25, 0.4) * sr))
        burst = dsp.shaped_noise(m, sr, rng, lambda f: band(f, 1000.0, 1.0) * noise_tilt(f, timbre))
        voice = _voiced(m, sr, rng, np.full(m, f0), "dark", (600.0, 1200.0, 2500.0))
        x = burst + 0.3 * voice / (voice.std() + 1e-9)
        place(out, x * env_exp(m, sr, 0.004, 0.09), st)
    return out


def _whistling(n, sr, rng, f0, timbre, rate):
    steps = np.array([0, 2, 4, 5, 7, 9, 12, -3, -5])
    k = max(1, int(np.ceil(n / sr * rate)))
    notes = f0 * 2.0 ** (np.concatenate([[0], rng.choice(steps, k - 1)]) / 12.0)
    idx = np.minimum((np.arange(n) / sr * rate).astype(int), k - 1)
    track = dsp.filter_fft(notes[idx], sr, lambda f: lowpass(f, 15.0, 1))
    track = np.clip(track, 0.5 * f0, 3 * f0)
    t = _t(n, sr)
    track = track * (1 + 0.004 * np.sin(2 * np.pi * 5.5 * t))
    h2 = 0.15 if timbre == "bright" else 0.02
    x = osc(track, np.array([1.0, h2]), sr, rng=rng)
    return (x + 0.03 * dsp.shaped_noise(n, sr, rng, lambda f: band(f, f0, 0.3))) * env_ar(n, sr, 0.04, 0.08)


def _baby_cry(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    for st in dsp.pulse_starts(n, sr, rate, rng, 0.1, 0.2):
        m = int(min(n - st, 0.75 / rate * sr))
        t = _t(m, sr)
        u = t / (t[-1] + 1e-9)
        f = f0 * np.interp(u, [0, 0.2, 0.7, 1.0], [0.85, 1.1, 1.05, 0.8])
        x = _voiced(m, sr, rng, f, timbre, (1000.0, 1500.0, 3200.0), 0.3)
        x = x * (1.0 + 0.25 * np.sin(2 * np.pi * 55 * t))
        place(out, x / (x.std() + 1e-9) * env_ar(m, sr, 0.05, 0.1), st)
    return out


# =========================================================================== nature
def _rain(n, sr, rng, f0, timbre, rate):
    bed = dsp.shaped_noise(n, sr, rng, lambda f: highpass(f, 800.0, 2) * noise_tilt(f, timbre))
    drops = np.zeros(n)
    idx = rng.integers(0, n, rng.poisson(rate * n / sr))
    np.add.at(drops, idx, np.minimum(rng.pareto(2.5, len(idx)), 2.0) + 0.2)
    drops = dsp.filter_fft(drops, sr, lambda f: band(f, 3500.0, 0.8))
    drops /= drops.std() + 1e-9
    return (0.6 * bed + drops) * env_ar(n, sr, 0.5, 0.5)


def _wind(n, sr, rng, f0, timbre, rate):
    lp = 900.0 if timbre == "bright" else 400.0
    rumble = dsp.shaped_noise(n, sr, rng, lambda f: lowpass(f, lp, 2) * highpass(f, 60.0))
    howl = dsp.shaped_noise(n, sr, rng, lambda f: band(f, rng.uniform(500, 800), 0.12))
    gust = np.exp(0.8 * dsp.smooth_random(n, sr, rng, 0.4))
    return (rumble + 0.5 * howl) * gust * env_ar(n, sr, 0.8, 0.8)


def _thunder(n, sr, rng, f0, timbre, rate):
    crack_len = int(0.15 * sr)
    crack = dsp.shaped_noise(crack_len, sr, rng, lambda f: highpass(f, 800.0, 1) * noise_tilt(f, timbre))
    rumble = dsp.shaped_noise(n, sr, rng, lambda f: lowpass(f, 160.0, 2) * highpass(f, 25.0))
    rolls = np.exp(0.7 * dsp.smooth_random(n, sr, rng, 3.0))
    out = rumble * rolls * env_exp(n, sr, 0.2, 1.2)
    place(out, 0.8 * crack * env_exp(crack_len, sr, 0.002, 0.04), 0)
    return out


def _stream(n, sr, rng, f0, timbre, rate):
    bed = dsp.shaped_noise(n, sr, rng, lambda f: band(f, 500.0, 0.8) * noise_tilt(f, timbre))
    out = 0.5 * bed
    m = int(0.03 * sr)
    t = _t(m, sr)
    win = np.sin(np.pi * t / t[-1])
    bubbles = [np.sin(2 * np.pi * np.cumsum(fb * (1.0 + 1.5 * t / t[-1])) / sr) * win
               for fb in rng.uniform(300, 900, 8)]
    starts = dsp.poisson_starts(n, sr, rate, rng)
    which = rng.integers(0, len(bubbles), len(starts))
    gains = rng.uniform(0.3, 1.0, len(starts))
    for st, k, g in zip(starts, which, gains):
        place(out, bubbles[k] * g, st)
    return out * env_ar(n, sr, 0.5, 0.5)


def _fire_crackle(n, sr, rng, f0, timbre, rate):
    roar = dsp.shaped_noise(n, sr, rng, lambda f: lowpass(f, 300.0, 2) * highpass(f, 30.0))
    cr = np.zeros(n)
    idx = rng.integers(0, n, rng.poisson(rate * n / sr))
    np.add.at(cr, idx, (np.minimum(rng.pareto(2.0, len(idx)), 3.0) + 0.5) * rng.choice([-1.0, 1.0], len(idx)))
    cr = dsp.filter_fft(cr, sr, lambda f: highpass(f, 1000.0 if timbre == "bright" else 400.0, 1))
    cr /= np.abs(cr).max() + 1e-9
    return (0.3 * roar + 3.0 * cr) * env_ar(n, sr, 0.3, 0.3)


# =========================================================================== tools
def _hammer(n, sr, rng, f0, timbre, rate):
    out = np.zeros(n)
    m = int(0.4 * sr)
    for st in dsp.pulse_starts(n, sr, rate, rng, 0.08, 0.1):
        ring = dsp.partials(m, sr, f0 * np.array([1.0, 2.76, 5.4]),
                            np.array([1.0, 0.6, 0.35 if timbre == "bright" else 0.08]),
                            np.array([0.15, 0.08, 0.05]), rng)
        thud = dsp.shaped_noise(m, sr, rng, lambda f: lowpass(f, 400.0, 2)) * env_exp(m, sr, 0.001, 0.02)
        place(out, ring + 0.8 * thud, st)
    return out


def _drill(n, sr, rng, f0, timbre, rate):
    t = _t(n, sr)
    f = f0 * (1.0 - 0.4 * np.exp(-t / 0.15)) * (1 + 0.01 * dsp.smooth_random(n, sr, rng, 4))
    whine = osc(f, harmonic_amps(f0, 15, timbre, sr), sr, rng=rng)
    grind = dsp.shaped_noise(n, sr, rng, lambda fr: band(fr, 3000.0, 0.5))
    return (whine / (whine.std() + 1e-9) + 0.3 * grind) * env_ar(n, sr, 0.05, 0.15)


def _saw(n, sr, rng, f0, timbre, rate):
    t = _t(n, sr)
    fc = 3500.0 if timbre == "bright" else 2200.0
    rasp = dsp.shaped_noise(n, sr, rng, lambda f: band(f, fc, 0.6))
    strokes = np.abs(np.sin(np.pi * rate * t)) ** 1.5
    teeth = 1.0 + 0.7 * np.sin(2 * np.pi * rng.uniform(40, 80) * t)
    return rasp * strokes * teeth


def _chainsaw(n, sr, rng, f0, timbre, rate):
    t = _t(n, sr)
    f = f0 * (1.25 + 0.25 * np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.28)))
    tone = osc(f, harmonic_amps(f0, 50, timbre, sr), sr, rng=rng)
    buzz = dsp.shaped_noise(n, sr, rng, lambda fr: band(fr, 2500.0, 1.0))
    return (tone / (tone.std() + 1e-9) + 0.6 * buzz) * env_ar(n, sr, 0.1, 0.2)


# =========================================================================== the ontology
def _c(name, parent, desc, synth, midi, rate, dur, timbres, keywords, subjects, verbs, nouns, article="a"):
    return SoundClass(name, parent, desc, synth, midi, rate, dur, tuple(timbres), tuple(keywords),
                      tuple(subjects), tuple(verbs), tuple(nouns), article)


_N = NOISE_TIMBRES
_A = ALL_TIMBRES
CLASSES: tuple[SoundClass, ...] = (
    # ---- animal
    _c("dog_bark", "animal", "harmonic barks with a falling pitch, repeated", _dog_bark, (62, 76), (1.5, 3.5), (0.8, 3.0), _A,
       ("dog", "bark"), ("dog", "small dog", "big dog"), ("barks", "is barking", "barks several times"),
       ("a dog barking", "barking of a dog", "dog barks")),
    _c("cat_meow", "animal", "rising-falling nasal harmonic tone", _cat_meow, (69, 79), None, (0.5, 1.3), ("nasal", "bright", "hollow"),
       ("cat", "meow", "kitten"), ("cat", "kitten"), ("meows", "is meowing", "lets out a meow"),
       ("a cat meowing", "the meow of a cat", "a kitten mewing")),
    _c("bird_chirp", "animal", "short upward sine chirps", _bird_chirp, (93, 103), (4.0, 10.0), (1.0, 4.0), _N,
       ("bird", "chirp", "tweet"), ("bird", "small bird", "songbird"), ("chirps", "is chirping", "tweets"),
       ("birds chirping", "a bird tweeting", "chirping birds")),
    _c("rooster_crow", "animal", "long stepped harmonic call", _rooster_crow, (74, 80), None, (1.2, 2.0), ("bright", "nasal"),
       ("rooster", "crow", "cockerel"), ("rooster", "cockerel"), ("crows", "is crowing", "crows loudly"),
       ("a rooster crowing", "the crow of a rooster", "a cockerel crowing")),
    _c("cow_moo", "animal", "low dark harmonic call with a slow attack", _cow_moo, (43, 53), None, (1.0, 2.2), ("dark", "nasal", "hollow"),
       ("cow", "moo", "cattle", "calf"), ("cow", "calf"), ("moos", "is mooing", "lows"),
       ("a cow mooing", "mooing cattle", "the moo of a cow")),
    _c("cricket", "animal", "high sine carrier pulsed at the chirp rate", _cricket, (103, 110), (12.0, 30.0), (2.0, 6.0), _N,
       ("cricket", "insect"), ("cricket", "insect"), ("chirps", "is chirping", "trills"),
       ("crickets chirping", "chirping insects", "a cricket trilling")),
    # ---- vehicle
    _c("car_engine", "vehicle", "low firing-rate harmonic drone plus low-passed noise", _car_engine, (28, 40), None, (3.0, 9.0), _A,
       ("car", "engine"), ("car engine", "car", "engine"), ("idles", "runs", "is running", "rumbles"),
       ("a car engine running", "an idling car engine", "engine noise")),
    _c("car_horn", "vehicle", "two-tone steady honks", _car_horn, (64, 71), (1.0, 2.5), (0.4, 2.5), ("hollow", "bright", "nasal"),
       ("horn", "honk"), ("car horn", "horn"), ("honks", "blares", "is honking"),
       ("a car horn honking", "honking", "the blare of a horn")),
    _c("siren", "vehicle", "harmonic tone frequency-modulated at the wail rate", _siren, (67, 74), (0.3, 3.0), (3.0, 9.0), ("bright", "hollow", "dark"),
       ("siren",), ("siren", "police siren", "ambulance siren"), ("wails", "is wailing", "sounds"),
       ("a siren wailing", "the wail of a siren", "an emergency siren")),
    _c("motorcycle", "vehicle", "buzzy harmonic engine with a rev-up", _motorcycle, (38, 50), None, (2.0, 6.0), ("bright", "hollow"),
       ("motorcycle", "motorbike"), ("motorcycle", "motorbike"), ("revs", "speeds by", "roars past"),
       ("a motorcycle revving", "a motorbike passing", "the roar of a motorcycle")),
    _c("helicopter", "vehicle", "low-passed rotor thumps with a turbine whine", _helicopter, (84, 90), (10.0, 20.0), (3.0, 9.0), _N,
       ("helicopter", "rotor"), ("helicopter",), ("flies overhead", "hovers", "whirs"),
       ("a helicopter flying", "helicopter rotors", "the thump of helicopter rotors")),
    _c("aircraft", "vehicle", "broadband swell with a Doppler whine", _aircraft, (76, 88), None, (4.0, 10.0), _N,
       ("airplane", "plane", "aircraft", "jet"), ("airplane", "jet", "plane"), ("flies over", "passes overhead", "roars by"),
       ("an airplane passing", "a jet flying over", "aircraft noise")),
    # ---- music
    _c("piano_note", "music", "inharmonic decaying partials, repeated notes", _piano_note, (40, 84), (0.5, 2.0), (1.0, 4.0), ("bright", "dark"),
       ("piano",), ("piano",), ("plays a note", "is played", "plays"),
       ("piano notes", "a piano playing", "a note on a piano")),
    _c("guitar_pluck", "music", "plucked string with fast high-harmonic decay", _guitar_pluck, (40, 72), (1.0, 4.0), (1.0, 3.5), ("bright", "dark", "nasal"),
       ("guitar",), ("guitar", "acoustic guitar"), ("is plucked", "plays", "is strummed"),
       ("a guitar being plucked", "guitar notes", "an acoustic guitar playing")),
    _c("violin", "music", "bowed sawtooth with vibrato and body resonances", _violin, (55, 88), None, (1.0, 4.0), ("bright", "dark", "nasal"),
       ("violin", "fiddle"), ("violin", "fiddle"), ("plays", "is bowed", "plays a long note"),
       ("a violin playing", "a bowed violin note", "fiddle music")),
    _c("flute", "music", "near-sinusoidal tone with breath noise and vibrato", _flute, (72, 96), None, (0.8, 3.0), ("bright", "dark"),
       ("flute",), ("flute",), ("plays", "is played", "plays a note"),
       ("a flute playing", "a flute note", "the sound of a flute")),
    _c("trumpet", "music", "brassy harmonic tone brightening during the attack", _trumpet, (55, 79), None, (0.5, 2.5), ("bright", "nasal", "hollow"),
       ("trumpet", "brass"), ("trumpet", "brass instrument"), ("blows a note", "plays", "sounds"),
       ("a trumpet playing", "a brass note", "a trumpet call")),
    _c("kick_drum", "music", "sine kicks with a pitch drop at the tempo rate", _kick_drum, (28, 40), (1.5, 3.0), (1.5, 5.0), ("bright", "dark"),
       ("drum", "kick"), ("kick drum", "bass drum", "drum"), ("thumps", "beats", "is played"),
       ("a kick drum beating", "drum beats", "a thumping bass drum")),
    _c("hi_hat", "music", "high-passed noise ticks", _hi_hat, None, (3.0, 8.0), (1.5, 5.0), _N,
       ("hi-hat", "cymbal"), ("hi-hat", "cymbal"), ("ticks", "is tapped", "clicks in rhythm"),
       ("a ticking hi-hat", "cymbal taps", "a hi-hat rhythm")),
    _c("church_bell", "music", "inharmonic bell partials with long decay", _church_bell, (55, 72), (0.3, 1.0), (2.0, 8.0), ("bright", "dark"),
       ("bell",), ("bell", "church bell"), ("rings", "tolls", "chimes"),
       ("a bell ringing", "church bells tolling", "the chime of a bell")),
    # ---- domestic
    _c("dishes_clink", "domestic", "random short metallic pings", _dishes_clink, (96, 105), (2.0, 6.0), (1.0, 5.0), ("bright", "dark"),
       ("dish", "plate", "cutlery", "clink"), ("dishes", "plates", "cutlery"), ("clink", "clatter", "rattle"),
       ("dishes clinking", "clattering plates", "the clink of cutlery"), ""),
    _c("water_tap", "domestic", "band-passed hiss with gurgling amplitude", _water_tap, None, None, (2.0, 7.0), _N,
       ("water", "tap", "faucet"), ("water", "tap water"), ("runs", "is running", "pours from a tap"),
       ("running water", "a running tap", "water pouring from a faucet"), ""),
    _c("door_knock", "domestic", "damped low wooden knocks", _door_knock, (45, 57), (3.0, 6.0), (0.4, 1.6), ("bright", "dark"),
       ("knock", "door"), ("someone", "person", "visitor"), ("knocks on a door", "knocks at the door", "is knocking on the door"),
       ("knocking on a door", "a knock at the door", "door knocks")),
    _c("vacuum_cleaner", "domestic", "broadband roar with a motor whine", _vacuum_cleaner, (62, 74), None, (3.0, 9.0), _N,
       ("vacuum", "hoover"), ("vacuum cleaner", "vacuum"), ("runs", "is running", "hums"),
       ("a vacuum cleaner running", "the roar of a vacuum cleaner", "vacuuming")),
    _c("alarm_clock", "domestic", "gated high beeps", _alarm_clock, (95, 103), (2.0, 8.0), (1.5, 5.0), ("hollow", "bright"),
       ("alarm", "beep"), ("alarm clock", "alarm"), ("beeps", "goes off", "is beeping"),
       ("an alarm clock beeping", "a beeping alarm", "alarm beeps")),
    _c("microwave_beep", "domestic", "one to three pure mid-frequency beeps", _microwave_beep, (79, 88), (1.0, 2.5), (0.3, 2.5), ("dark", "bright"),
       ("microwave", "beep"), ("microwave", "microwave oven"), ("beeps", "beeps a few times", "signals with beeps"),
       ("a microwave beeping", "microwave beeps", "the beep of a microwave")),
    _c("keyboard_typing", "domestic", "random keyboard clicks", _keyboard_typing, None, (5.0, 12.0), (2.0, 7.0), _N,
       ("typing", "keyboard", "types"), ("someone", "person", "typist"), ("types on a keyboard", "is typing", "types quickly on a keyboard"),
       ("typing on a keyboard", "keyboard clicks", "keys clicking on a keyboard")),
    _c("telephone_ring", "domestic", "warbling two-tone rings", _telephone_ring, (67, 74), (0.25, 0.5), (2.0, 6.0), ("bright", "dark"),
       ("phone", "telephone"), ("telephone", "phone"), ("rings", "is ringing", "rings repeatedly"),
       ("a telephone ringing", "a ringing phone", "the ring of a telephone")),
    # ---- human
    _c("speech", "human", "formant vowels at a syllable rate with intonation", _speech, (45, 64), (3.0, 6.0), (1.5, 6.0), ("bright", "dark", "nasal"),
       ("speak", "talk", "voice", "speech", "says"), ("person", "man", "woman"), ("speaks", "is talking", "says something"),
       ("a person speaking", "a voice talking", "speech")),
    _c("laughter", "human", "breathy voiced ha-ha pulses", _laughter, (55, 70), (4.0, 6.0), (1.0, 3.0), ("bright", "dark", "nasal"),
       ("laugh",), ("person", "man", "woman"), ("laughs", "is laughing", "bursts out laughing"),
       ("laughter", "someone laughing", "a person laughing")),
    _c("footsteps", "human", "heel thumps and scuffs at the walking rate", _footsteps, None, (1.4, 2.4), (2.0, 7.0), _N,
       ("footstep", "walk", "step"), ("someone", "person"), ("walks by", "is walking", "walks across the floor"),
       ("footsteps", "someone walking", "steps on the floor")),
    _c("clapping", "human", "band-passed noise claps", _clapping, None, (2.0, 6.0), (1.0, 5.0), _N,
       ("clap", "applau"), ("audience", "person", "spectator"), ("claps", "is clapping", "applauds"),
       ("clapping", "hands clapping", "applause")),
    _c("cough", "human", "explosive noise bursts with a weak voice", _cough, (45, 60), (1.5, 3.0), (0.4, 2.0), _N,
       ("cough",), ("person", "man", "woman"), ("coughs", "is coughing", "coughs a few times"),
       ("coughing", "a person coughing", "a cough")),
    _c("whistling", "human", "pure tone melody with portamento", _whistling, (83, 95), (2.0, 5.0), (1.0, 4.0), ("dark", "bright"),
       ("whistl",), ("person", "man", "woman"), ("whistles", "is whistling", "whistles a tune"),
       ("whistling", "someone whistling a tune", "a whistled melody")),
    _c("baby_cry", "human", "rough high harmonic cries in cycles", _baby_cry, (67, 74), (0.6, 1.2), (2.0, 6.0), ("bright", "nasal"),
       ("baby", "infant", "cry"), ("baby", "infant"), ("cries", "is crying", "wails"),
       ("a baby crying", "an infant crying", "the cry of a baby")),
    # ---- nature
    _c("rain", "nature", "high-passed noise bed with dense drops", _rain, None, (100.0, 400.0), (4.0, 10.0), _N,
       ("rain",), ("rain", "heavy rain"), ("falls", "is pouring down", "patters on the ground"),
       ("rain falling", "the patter of rain", "rainfall"), ""),
    _c("wind", "nature", "low-passed gusting noise with a howl", _wind, None, None, (4.0, 10.0), _N,
       ("wind",), ("wind", "strong wind"), ("blows", "is blowing", "howls"),
       ("wind blowing", "the howl of the wind", "gusts of wind"), ""),
    _c("thunder", "nature", "crack followed by a long low rumble", _thunder, None, None, (2.0, 6.0), _N,
       ("thunder",), ("thunder",), ("rumbles", "cracks", "roars"),
       ("thunder rumbling", "a clap of thunder", "rolling thunder"), ""),
    _c("stream", "nature", "low band noise with bubbling chirps", _stream, None, (30.0, 80.0), (4.0, 10.0), _N,
       ("stream", "brook", "creek"), ("stream", "brook", "creek"), ("babbles", "trickles", "flows"),
       ("a babbling brook", "a stream flowing", "a trickling creek")),
    _c("fire_crackle", "nature", "sparse crackles over a low roar", _fire_crackle, None, (5.0, 20.0), (3.0, 9.0), _N,
       ("fire", "crackl", "flame"), ("fire", "campfire"), ("crackles", "is crackling", "burns and crackles"),
       ("a crackling fire", "fire crackling", "the crackle of flames")),
    # ---- tools
    _c("hammer", "tools", "metallic ring and thud at the strike rate", _hammer, (76, 88), (1.0, 3.0), (1.0, 5.0), ("bright", "dark"),
       ("hammer",), ("hammer",), ("hits metal", "pounds", "strikes repeatedly"),
       ("hammering", "a hammer striking", "hammer blows")),
    _c("drill", "tools", "motor whine spinning up with grinding noise", _drill, (60, 72), None, (1.5, 5.0), ("bright", "hollow", "nasal"),
       ("drill",), ("drill", "power drill", "electric drill"), ("whirs", "drills", "spins"),
       ("a drill whirring", "an electric drill running", "drilling")),
    _c("saw", "tools", "band noise strokes with teeth rasp", _saw, None, (1.5, 3.0), (2.0, 6.0), _N,
       ("saw",), ("saw", "hand saw"), ("cuts wood", "rasps", "saws back and forth"),
       ("sawing", "a saw cutting wood", "a hand saw rasping")),
    _c("chainsaw", "tools", "very buzzy harmonic engine with revs and noise", _chainsaw, (40, 50), (0.2, 0.6), (3.0, 9.0), ("bright", "hollow"),
       ("chainsaw",), ("chainsaw",), ("buzzes", "revs", "cuts through wood"),
       ("a chainsaw buzzing", "a revving chainsaw", "the buzz of a chainsaw")),
)

CLASS_BY_NAME: dict[str, SoundClass] = {c.name: c for c in CLASSES}
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)


def get_class(label: str) -> SoundClass:
    """The :class:`SoundClass` called ``label`` (KeyError naming the known classes otherwise)."""
    try:
        return CLASS_BY_NAME[label]
    except KeyError:
        raise KeyError(f"unknown synthetic sound class {label!r}; known: {', '.join(CLASS_NAMES)}") from None


#: Endings a keyword stem may take in a word and still name its class ("bark" -> "barks",
#: "barking"; "crow" does not match "crowd").
_STEM_ENDINGS = ("", "s", "es", "ing", "ed", "er", "ers")


def classes_named_by(text: str) -> tuple[str, ...]:
    """The classes a free text names: those with a keyword stem that is a word of ``text`` or
    that word's stem (ending in ``s``, ``es``, ``ing``, ``ed``, ``er``, ``ers``), in ontology
    order. ``"a dog barks in the rain"`` -> ``("dog_bark", "rain")``; scenes and timbres are
    not classes and name nothing."""
    words = re.findall(r"[a-z]+", text.lower())
    return tuple(c.name for c in CLASSES
                 if any(w.startswith(k) and w[len(k):] in _STEM_ENDINGS
                        for k in c.keywords for w in words))


# =========================================================================== scenes
@dataclass(frozen=True)
class Scene:
    """A scene template: which classes it favours (weights), its background noise and captions.

    Attributes:
        name: scene id.
        weights: class -> relative weight (classes not listed get the world's ``floor_weight``).
        noise_exponent: colour of the background noise (0 white, 1 pink, 2 brown).
        phrases: prepositional phrases used in captions ("in a kitchen").
        background: caption phrases for the background noise.
    """

    name: str
    weights: dict
    noise_exponent: float
    phrases: tuple[str, ...]
    background: tuple[str, ...]


SCENES: tuple[Scene, ...] = (
    Scene("street", {"car_engine": 5, "car_horn": 4, "siren": 3, "motorcycle": 3, "footsteps": 2, "speech": 2,
                     "dog_bark": 1.5, "helicopter": 2, "aircraft": 1, "rain": 1, "church_bell": 1},
          2.0, ("on a busy street", "in the city", "by a road"), ("a low traffic rumble", "a steady city drone")),
    Scene("kitchen", {"dishes_clink": 5, "water_tap": 4, "microwave_beep": 3, "speech": 3, "laughter": 1.5,
                      "alarm_clock": 1.5, "cat_meow": 1, "footsteps": 1, "door_knock": 1},
          1.0, ("in a kitchen", "in a busy kitchen"), ("a soft background hum", "faint room noise")),
    Scene("living_room", {"speech": 3, "laughter": 3, "baby_cry": 2, "telephone_ring": 2.5, "vacuum_cleaner": 2,
                          "door_knock": 2, "dog_bark": 1.5, "cat_meow": 2, "piano_note": 1.5, "footsteps": 1.5, "clapping": 1},
          1.0, ("in a living room", "at home", "inside a house"), ("quiet room tone", "a soft background hum")),
    Scene("office", {"keyboard_typing": 5, "speech": 3, "telephone_ring": 3, "cough": 2, "footsteps": 2,
                     "door_knock": 1.5, "laughter": 1, "alarm_clock": 1},
          0.3, ("in an office", "at a workplace"), ("the hiss of air conditioning", "a steady ventilation hiss")),
    Scene("park", {"bird_chirp": 5, "dog_bark": 3, "speech": 2.5, "laughter": 2, "footsteps": 2, "whistling": 2,
                   "wind": 2, "stream": 1.5, "clapping": 1, "aircraft": 1, "baby_cry": 1, "helicopter": 1, "church_bell": 1},
          1.0, ("in a park", "outdoors in a park", "in a public garden"), ("a gentle outdoor ambience", "soft outdoor noise")),
    Scene("farm", {"rooster_crow": 4, "cow_moo": 4, "dog_bark": 3, "cricket": 2, "bird_chirp": 2, "hammer": 1.5,
                   "wind": 1.5, "chainsaw": 1, "speech": 1, "car_engine": 1, "thunder": 1},
          1.5, ("on a farm", "in the countryside", "in a farmyard"), ("a distant rural ambience", "low outdoor noise")),
    Scene("forest", {"bird_chirp": 4, "wind": 3, "stream": 3, "rain": 2.5, "thunder": 2.5, "cricket": 2,
                     "fire_crackle": 2.5, "whistling": 1, "saw": 1},
          1.2, ("in a forest", "in the woods", "out in nature"), ("a soft rustling ambience", "quiet natural ambience")),
    Scene("concert", {"piano_note": 4, "guitar_pluck": 3.5, "violin": 3.5, "flute": 3, "trumpet": 3.5, "kick_drum": 3,
                      "hi_hat": 3, "clapping": 2.5, "church_bell": 1.5, "speech": 1, "cough": 1},
          0.8, ("at a concert", "in a concert hall", "on a stage"), ("a murmuring hall ambience", "faint hall noise")),
    Scene("workshop", {"hammer": 5, "drill": 4, "saw": 4, "chainsaw": 2, "speech": 1.5, "vacuum_cleaner": 1.5,
                       "door_knock": 0.5, "whistling": 1, "guitar_pluck": 0.5, "cough": 1},
          0.0, ("in a workshop", "in a garage", "in a carpentry shop"), ("a steady machine hiss", "a constant electrical hiss")),
)
SCENE_BY_NAME: dict[str, Scene] = {s.name: s for s in SCENES}

#: Class A (key) pulls class B in with the given probability when A is drawn (realistic pairs).
COMPANIONS: dict[str, tuple[tuple[str, float], ...]] = {
    "thunder": (("rain", 0.8), ("wind", 0.3)),
    "laughter": (("speech", 0.7),),
    "kick_drum": (("hi_hat", 0.7),),
    "car_horn": (("car_engine", 0.6),),
    "dishes_clink": (("water_tap", 0.4),),
    "baby_cry": (("speech", 0.4),),
    "rooster_crow": (("bird_chirp", 0.3),),
    "clapping": (("speech", 0.3),),
}


def _check_ontology() -> None:
    for c in CLASSES:
        if c.parent not in PARENTS:
            raise ValueError(f"class {c.name!r}: unknown parent {c.parent!r}")
        for t in c.timbres:
            if t not in ALL_TIMBRES:
                raise ValueError(f"class {c.name!r}: unknown timbre {t!r}")
    for s in SCENES:
        for k in s.weights:
            get_class(k)
    for a, pairs in COMPANIONS.items():
        get_class(a)
        for b, _ in pairs:
            get_class(b)


_check_ontology()
