"""Small numpy signal primitives used by the synthetic sound classes.

Everything works on 1-D float64 arrays of ``n`` samples at ``sr`` Hz and takes an explicit
``numpy.random.Generator`` so that every sound is a deterministic function of its seed.
Spectral shaping is done in the frequency domain (one real FFT) because it is much faster in
numpy than recursive filters for the few-second buffers used here.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
import scipy.fft as sfft

#: Timbre ids shared by all classes. Harmonic sources use them as harmonic-amplitude profiles,
#: noise sources as a spectral tilt ("bright" rises, "dark" falls; see :func:`noise_tilt`).
TIMBRES = ("bright", "dark", "hollow", "nasal")

GainFn = Callable[[np.ndarray], np.ndarray]


def midi_to_hz(midi: float) -> float:
    """MIDI note number -> frequency in Hz (A4 = 69 = 440 Hz)."""
    return float(440.0 * 2.0 ** ((midi - 69.0) / 12.0))


def hz_to_midi(hz: float) -> float:
    """Frequency in Hz -> (fractional) MIDI note number."""
    return float(69.0 + 12.0 * np.log2(hz / 440.0))


# --------------------------------------------------------------------------- spectra
def band(f: np.ndarray, fc: float, bw_oct: float) -> np.ndarray:
    """Gaussian band-pass gain on a log-frequency axis, centre ``fc`` Hz, std ``bw_oct`` octaves."""
    x = np.log2(np.maximum(f, 1.0) / fc) / bw_oct
    return np.exp(-0.5 * x * x)


def lowpass(f: np.ndarray, fc: float, order: int = 2) -> np.ndarray:
    """Butterworth-like magnitude response of a low-pass at ``fc`` Hz."""
    return 1.0 / np.sqrt(1.0 + (f / fc) ** (2 * order))


def highpass(f: np.ndarray, fc: float, order: int = 2) -> np.ndarray:
    """Butterworth-like magnitude response of a high-pass at ``fc`` Hz."""
    r = (np.maximum(f, 1e-3) / fc) ** (2 * order)
    return np.sqrt(r / (1.0 + r))


def noise_tilt(f: np.ndarray, timbre: str) -> np.ndarray:
    """Spectral tilt of a noise source: bright ~ +3 dB/oct, dark ~ -4.5 dB/oct (around 1 kHz)."""
    fr = np.clip(f, 50.0, None) / 1000.0
    if timbre == "bright":
        return fr ** 0.5
    if timbre == "dark":
        return fr ** -0.75
    return np.ones_like(f)


@lru_cache(maxsize=64)
def _freqs(m: int, sr: int) -> np.ndarray:
    f = np.fft.rfftfreq(m, 1.0 / sr).astype(np.float32)
    f.setflags(write=False)
    return f


def shaped_noise(n: int, sr: int, rng: np.random.Generator, gain: GainFn | None = None) -> np.ndarray:
    """Gaussian noise of ``n`` samples whose magnitude spectrum is ``gain(freqs_hz)``; unit std."""
    if n <= 0:
        return np.zeros(0, np.float32)
    m = sfft.next_fast_len(n, real=True)
    k = m // 2 + 1
    spec = rng.standard_normal(2 * k, dtype=np.float32).view(np.complex64)
    if gain is not None:
        spec *= gain(_freqs(m, sr)).astype(np.float32)
    spec[0] = 0.0
    x = sfft.irfft(spec, m)[:n]
    return x / (x.std() + 1e-12)


def filter_fft(x: np.ndarray, sr: int, gain: GainFn) -> np.ndarray:
    """Zero-phase filter of ``x`` with magnitude response ``gain(freqs_hz)`` (circular, one FFT)."""
    n = len(x)
    if n == 0:
        return x
    m = sfft.next_fast_len(n, real=True)
    spec = sfft.rfft(np.asarray(x, dtype=np.float32), m)
    spec *= gain(_freqs(m, sr)).astype(np.float32)
    return sfft.irfft(spec, m)[:n]


def colored_noise(n: int, sr: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Power-law noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit std."""
    return shaped_noise(n, sr, rng, lambda f: _power_law(f, float(exponent)))


def _power_law(f: np.ndarray, exponent: float) -> np.ndarray:
    return np.maximum(f, 20.0) ** (-exponent / 2.0) * highpass(f, 20.0)


# --------------------------------------------------------------------------- oscillators
def harmonic_amps(f0: float, n_harm: int, timbre: str, sr: int) -> np.ndarray:
    """(n_harm,) amplitudes of harmonics 1..n_harm for a timbre id; partials above 0.45*sr are 0.

    bright: 1/h**0.8, dark: 1/h**2, hollow: odd harmonics only (1/h), nasal: 1/h with a
    resonance near 1.3 kHz.
    """
    h = np.arange(1, n_harm + 1, dtype=float)
    if timbre == "bright":
        a = h ** -0.8
    elif timbre == "dark":
        a = h ** -2.0
    elif timbre == "hollow":
        a = np.where(h % 2 == 1, 1.0 / h, 0.03 / h)
    elif timbre == "nasal":
        a = (1.0 / h) * (1.0 + 5.0 * band(h * f0, 1300.0, 0.3))
    else:
        raise ValueError(f"unknown timbre {timbre!r}; expected one of {TIMBRES}")
    a[h * f0 >= 0.45 * sr] = 0.0
    return a


def osc(freq: np.ndarray | float, amps: np.ndarray, sr: int, n: int | None = None,
        rng: np.random.Generator | None = None, table_size: int = 4096) -> np.ndarray:
    """Wavetable oscillator: harmonic series ``amps`` (H,) on a fundamental track ``freq`` (n,) Hz.

    Returns (n,) float32. Cost does not grow with the number of harmonics (nearest-sample
    lookup in a 4096-point table: phase error < 2 pi / 4096). Harmonics at or above 0.48 * sr for
    the highest instantaneous frequency are removed to avoid aliasing.
    """
    if np.isscalar(freq):
        if n is None:
            raise ValueError("osc: n is required when freq is a scalar")
        freq = np.full(n, float(freq))
    freq = np.asarray(freq, dtype=float)
    fmax = float(freq.max()) if len(freq) else 0.0
    amps = np.asarray(amps, dtype=float)
    h = np.arange(1, len(amps) + 1)
    keep = (h * fmax < 0.48 * sr) & (h < table_size // 2)
    phases = rng.uniform(0, 2 * np.pi, len(amps)) if rng is not None else np.zeros(len(amps))
    spec = np.zeros(table_size // 2 + 1, dtype=complex)
    # irfft of a_h * exp(i (phi_h - pi/2)) * L / 2 at bin h  ->  a_h * sin(2 pi h k / L + phi_h)
    spec[h[keep]] = amps[keep] * np.exp(1j * (phases[keep] - np.pi / 2)) * (table_size / 2)
    table = np.fft.irfft(spec, table_size).astype(np.float32)
    idx = (np.cumsum(freq) * (table_size / sr)).astype(np.int64) & (table_size - 1)
    return table[idx]


def sine(freq: np.ndarray | float, sr: int, n: int | None = None, phase: float = 0.0) -> np.ndarray:
    """Sine wave following the frequency track ``freq`` (n,) Hz (or a constant with ``n``)."""
    if np.isscalar(freq):
        return np.sin(2 * np.pi * float(freq) * np.arange(n) / sr + phase)
    return np.sin(2 * np.pi * np.cumsum(freq) / sr + phase)


def partials(n: int, sr: int, freqs: np.ndarray, amps: np.ndarray, taus: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    """Sum of exponentially decaying sinusoids (modal synthesis): freqs/amps/taus are (P,)."""
    t = np.arange(n) / sr
    out = np.zeros(n)
    for f, a, tau in zip(freqs, amps, taus):
        if f < 0.47 * sr:
            out += a * np.exp(-t / tau) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return out


# --------------------------------------------------------------------------- envelopes
def env_ar(n: int, sr: int, attack: float, release: float) -> np.ndarray:
    """Linear attack / sustain / linear release envelope of ``n`` samples."""
    e = np.ones(n)
    a = min(n, max(1, int(attack * sr)))
    e[:a] = np.linspace(0.0, 1.0, a, endpoint=False) if a > 1 else 1.0
    r = min(n - a, max(1, int(release * sr)))
    if r > 0:
        e[n - r:] *= np.linspace(1.0, 0.0, r)
    return e


def env_exp(n: int, sr: int, attack: float, tau: float) -> np.ndarray:
    """Linear attack of ``attack`` s then exponential decay with time constant ``tau`` s."""
    t = np.arange(n) / sr
    e = np.exp(-np.maximum(t - attack, 0.0) / tau)
    a = min(n, max(1, int(attack * sr)))
    e[:a] *= np.linspace(0.0, 1.0, a, endpoint=False) if a > 1 else 1.0
    return e


def smooth_random(n: int, sr: int, rng: np.random.Generator, rate_hz: float) -> np.ndarray:
    """Slowly varying random curve (linear interpolation of N(0,1) knots every 1/rate_hz s)."""
    knots = max(2, int(np.ceil(n / sr * rate_hz)) + 2)
    kx = np.linspace(0, n, knots)
    return np.interp(np.arange(n), kx, rng.standard_normal(knots))


def pulse_starts(n: int, sr: int, rate: float, rng: np.random.Generator, jitter: float = 0.1,
                 min_len: float = 0.0) -> np.ndarray:
    """Sample indices of a pulse train at ``rate`` Hz with relative timing ``jitter``.

    The first pulse is at 0; pulses leave at least ``min_len`` s before the end (at least one pulse).
    """
    period = sr / rate
    count = max(1, int(np.floor((n - min_len * sr) / period)) + 1)
    starts = np.arange(count) * period
    starts[1:] += rng.uniform(-jitter, jitter, count - 1) * period
    starts = starts[starts <= max(0.0, n - min_len * sr)]
    return np.unique(np.clip(starts.astype(np.int64), 0, max(0, n - 1)))


def poisson_starts(n: int, sr: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Sample indices of a Poisson process of ``rate`` events per second (at least one, at 0)."""
    count = rng.poisson(rate * n / sr)
    starts = np.sort(rng.integers(0, max(1, n), count))
    return np.unique(np.concatenate([[0], starts]).astype(np.int64))


def place(out: np.ndarray, burst: np.ndarray, start: int) -> None:
    """Add ``burst`` into ``out`` at ``start`` (cropped at the end of ``out``)."""
    if start >= len(out):
        return
    m = min(len(burst), len(out) - start)
    out[start:start + m] += burst[:m]


def fade(x: np.ndarray, sr: int, seconds: float = 0.005) -> np.ndarray:
    """Apply short linear fade-in/out (in place) to avoid clicks; returns ``x``."""
    k = min(len(x) // 2, int(seconds * sr))
    if k > 1:
        ramp = np.linspace(0.0, 1.0, k)
        x[:k] *= ramp
        x[-k:] *= ramp[::-1]
    return x


def active_rms(x: np.ndarray, sr: int, frame_s: float = 0.05, q: float = 90.0) -> float:
    """Loudness of the active part: the ``q``-th percentile of 50 ms frame RMS values."""
    f = max(1, int(frame_s * sr))
    m = len(x) // f
    if m == 0:
        return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    frames = x[:m * f].reshape(m, f)
    return float(np.percentile(np.sqrt((frames * frames).mean(1)), q))
