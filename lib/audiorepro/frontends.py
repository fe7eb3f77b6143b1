"""Front ends (waveform -> log-mel features) of the five papers, built on torchaudio, and an
on-disk feature cache.

Every front end is a :class:`FrontEnd` (``torch.nn.Module``) configured by a small frozen
dataclass:

* input: waves ``(B, T)`` float at ``config.sample_rate`` (a single ``(T,)`` wave is accepted too
  and gives ``(n_mels, frames)``);
* output: features ``(B, n_mels, frames)`` ("frequency-major", the layout of torchaudio and of the
  CNN front ends). AST / ATGNN / PSLA take ``(B, frames, 128)``: use :func:`time_major` or
  ``FrontEnd(..., time_major=True)``.

Named presets (:data:`PRESETS`, :func:`make_frontend`):

================ ==============================================================================
kaldi_fbank_128  AST / PSLA / ATGNN: Kaldi fbank, 16 kHz, 25 ms Hanning, 10 ms shift, 128 bins,
                 padded/cropped to 1056 frames (AudioSet; 1024 for FSD50K), (x + 4.27) / 9.14
panns_16k        PANNs CNN14 16 kHz: 512 / 160, 64 Slaney mel 50-8000 Hz, 10 log10 power
panns_32k        PANNs CNN14 32 kHz: 1024 / 320, 64 Slaney mel 50-14000 Hz, 10 log10 power
vggish           VGGish: 25 ms periodic Hann, hop 10 ms, FFT 512, 64 HTK mel 125-7500 Hz,
                 log(|X| mel + 0.01); :func:`vggish_examples` frames it into 96 x 64 examples
passt            PaSST (32 kHz): pre-emphasis, STFT 1024 / 800 / 320, 128 Kaldi mel 0-15000 Hz,
                 log(x + 1e-5), (x + 4.5) / 5
bow_96           bag-of-codewords paper: 16 kHz, 96 mel 0-8 kHz, 30 ms window, 10 ms hop,
                 FFT 2048, Hann, log-mel, 100 frames per second
logmel_64        generic 16 kHz 64-bin log-mel for quick experiments
================ ==============================================================================

Resampling: use :func:`audiorepro.data.audio.resample` (torchaudio sinc interpolation) or load
with ``load_audio(path, sample_rate=frontend.sample_rate)``.

The feature cache (:class:`FeatureCache`, :class:`CachedFeatureDataset`) stores one ``.npy``
per clip under ``cache/features/<key>/`` where ``<key>`` hashes the front-end configuration,
the dataset name and the loader parameters; writes are atomic (temporary file + rename), so an
interrupted run leaves only complete files and resumes where it stopped.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio.compliance.kaldi as kaldi
import torchaudio.transforms as T
from torch import nn

from . import paths
from .fileio import atomic_save_npy, atomic_write_text
from .data.audio import check_sample_rate, resample

log = logging.getLogger(__name__)

__all__ = [
    "FrontEndConfig", "KaldiFbankConfig", "LogMelConfig", "VGGishConfig", "PasstConfig",
    "FrontEnd", "KaldiFbank", "LogMel", "VGGishLogMel", "PasstMel",
    "PRESETS", "PRESET_SOURCES", "describe_preset", "preset_config", "make_frontend", "frontend_from_config", "time_major",
    "vggish_examples", "vggish_mel_matrix", "FeatureCache", "CachedFeatureDataset",
    "feature_key", "CacheError",
]


# ============================================================================ configurations
@dataclass(frozen=True)
class FrontEndConfig:
    """Fields shared by all front ends.

    Attributes:
        sample_rate: expected input rate (Hz); waves at another rate must be resampled first.
        n_mels: number of mel bins (feature height).
        hop_length: samples between frames.
    """

    sample_rate: int = 16000
    n_mels: int = 64
    hop_length: int = 160

    @property
    def kind(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict:
        """JSON-able dict including the config class name (used in cache keys)."""
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class KaldiFbankConfig(FrontEndConfig):
    """``torchaudio.compliance.kaldi.fbank`` as used by AST, PSLA and ATGNN.

    Sources: AST ``src/dataloader.py`` (``_wav2fbank``: ``waveform - waveform.mean()``,
    ``kaldi.fbank(htk_compat=True, sample_frequency=sr, use_energy=False,
    window_type='hanning', num_mel_bins=128, dither=0.0, frame_shift=10)``, zero-pad / crop to
    ``target_length``, then ``(fbank - norm_mean) / (norm_std * 2)`` with AudioSet stats
    ``norm_mean=-4.2677393``, ``norm_std=4.5689974``) (AST src/dataloader.py).

    Attributes:
        frame_length_ms, frame_shift_ms: Kaldi window (25 ms) and shift (10 ms).
        window_type: Kaldi window name; the papers use ``hanning`` (Kaldi's default ``povey``
            is NOT used).
        low_freq, high_freq: Kaldi mel range (defaults 20 Hz and Nyquist, ``high_freq <= 0``
            means Nyquist + high_freq).
        target_frames: pad (zeros, before normalisation, as AST) or crop to this many frames;
            ``None`` keeps ``1 + (T - 400) // 160`` frames.
        norm_mean, norm_std: features become ``(x - norm_mean) / (2 * norm_std)``; set
            ``normalize=False`` to get the raw log fbank.
        remove_mean: subtract each clip's waveform mean first (AST does).
        hop_length: must equal ``frame_shift_ms`` in samples (checked).
        vectorized: batched re-implementation of ``kaldi.fbank`` (same numbers, verified in the
            tests); ``False`` loops over the batch calling ``kaldi.fbank`` itself.
    """

    n_mels: int = 128
    hop_length: int = 160
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    window_type: str = "hanning"
    preemphasis: float = 0.97
    low_freq: float = 20.0
    high_freq: float = 0.0
    target_frames: int | None = 1056
    normalize: bool = True
    norm_mean: float = -4.2677393
    norm_std: float = 4.5689974
    remove_mean: bool = True
    vectorized: bool = True


@dataclass(frozen=True)
class LogMelConfig(FrontEndConfig):
    """torchaudio ``Spectrogram`` + ``MelScale`` (what ``MelSpectrogram`` does) and a log
    (``db`` or ``log``).

    Attributes:
        n_fft, win_length, hop_length: STFT sizes (samples); the window is a periodic Hann
            window of ``win_length`` zero-padded (centred) to ``n_fft`` by ``torch.stft``.
        f_min, f_max: mel range in Hz (``f_max=None``: Nyquist).
        mel_scale, mel_norm: ``htk``/``slaney`` scale and ``None``/``slaney`` area norm.
        center, pad_mode: ``torch.stft`` centring (frames = 1 + T // hop when centred).
        power: 2 = power spectrogram, 1 = magnitude.
        log: ``db`` -> ``10 log10(max(x, amin))`` (torchaudio ``AmplitudeToDB``, ref 1,
            ``top_db``), ``log`` -> ``ln(x + log_offset)``.
        frames_per_hop: if True keep only ``T // hop_length`` frames (drops the extra last
            frame of a centred STFT, e.g. 100 frames for 1 s at hop 10 ms).
    """

    n_fft: int = 512
    win_length: int = 400
    f_min: float = 0.0
    f_max: float | None = None
    mel_scale: str = "htk"
    mel_norm: str | None = None
    center: bool = True
    pad_mode: str = "reflect"
    power: float = 2.0
    log: str = "log"
    log_offset: float = 1e-6
    amin: float = 1e-10
    top_db: float | None = None
    frames_per_hop: bool = False


@dataclass(frozen=True)
class VGGishConfig(FrontEndConfig):
    """VGGish input features (``vggish_input.py`` / ``mel_features.py`` of the TF models repo,
    and ``torchvggish``).

    16 kHz; frames of 25 ms (400 samples, periodic Hann ``0.5 - 0.5 cos(2 pi n / 400)``), hop
    10 ms (160), not centred (``1 + (T - 400) // 160`` frames); ``|rfft(frame, 512)|``
    (magnitude, not power); 64 HTK-mel triangles built linearly *in the mel domain* between
    125 and 7500 Hz with the DC bin zeroed; ``log(mel + 0.01)``. Examples: 96 frames (0.96 s)
    with hop 96.
    """

    n_mels: int = 64
    hop_length: int = 160
    win_length: int = 400
    n_fft: int = 512
    f_min: float = 125.0
    f_max: float = 7500.0
    log_offset: float = 0.01
    example_frames: int = 96
    example_hop_frames: int = 96


@dataclass(frozen=True)
class PasstConfig(FrontEndConfig):
    """PaSST ``AugmentMelSTFT`` (``kkoutini/PaSST models/preprocess.py``; the AudioSet models
    and ``hear21passt.base.get_basic_model`` use ``fmin_aug_range=10, fmax_aug_range=2000``).

    Pre-emphasis ``conv1d`` with kernel ``[-0.97, 1]`` (no padding: T - 1 samples), ``torch.stft``
    (n_fft 1024, win 800 symmetric Hann ``hann_window(800, periodic=False)``, hop 320,
    centred, reflect padding), power ``|X|^2``, mel matrix
    ``torchaudio.compliance.kaldi.get_mel_banks(128, 1024, 32000, fmin, fmax, ...)`` padded with a
    zero column for the Nyquist bin, ``log(mel + 1e-5)``, ``(x + 4.5) / 5``.
    ``fmax=None`` -> ``sr // 2 - fmax_aug_range // 2`` = 15000 Hz. In ``train()`` mode the band
    edges are randomised as in PaSST (fmin + U{0..fmin_aug_range-1},
    fmax + fmax_aug_range // 2 - U{0..fmax_aug_range-1}); ``eval()`` uses fixed edges.
    Frames: ``1 + (T - 1) // 320`` (1000 for 10 s).
    """

    sample_rate: int = 32000
    n_mels: int = 128
    hop_length: int = 320
    n_fft: int = 1024
    win_length: int = 800
    preemphasis: float = 0.97
    f_min: float = 0.0
    f_max: float | None = None
    fmin_aug_range: int = 10
    fmax_aug_range: int = 2000
    log_offset: float = 1e-5
    norm_add: float = 4.5
    norm_div: float = 5.0

    @property
    def fmax_effective(self) -> float:
        return float(self.f_max) if self.f_max is not None else \
            float(self.sample_rate // 2 - self.fmax_aug_range // 2)


# ============================================================================ modules
#: On the CPU the frames are transformed in chunks of about this many FFT input floats (1 MB),
#: with buffers reused from chunk to chunk, so that a chunk's frames, spectrum and power stay in
#: the 2 MB L2 cache of a core. Measured on the project's 2-core machine (1 thread, process CPU
#: time): ``torch.fft.rfft`` of 8,000 2048-point frames 17-19 ms in chunks of 32-128 frames,
#: 27-35 ms in chunks of 1,000-4,000, 57 ms as one (8000, 2048) batch; whole front ends (8 x 10 s
#: clips) for chunks of 2^15 / 2^16 / 2^17 / 2^18 / 2^19 floats: bow_96 73 / 54 / 45 / 42 / 50 ms,
#: passt 43 / 34 / 30 / 27 / 32 ms (smaller chunks pay the per-call overhead of each operation).
CHUNK_FLOATS = 1 << 18


class FrontEnd(nn.Module):
    """Waveforms ``(B, T)`` -> features ``(B, n_mels, frames)`` (or ``(B, frames, n_mels)``
    when ``time_major=True``). A 1-D wave ``(T,)`` gives ``(n_mels, frames)``.

    Subclasses implement :meth:`features` on a 2-D batch, :meth:`num_frames` and set
    ``fft_size`` (FFT length of a frame). ``library=True`` computes the same features with the
    library's own functions only (``torchaudio`` transforms, ``kaldi.fbank``, or the official
    code's operations); the default path is whichever is faster in
    ``benchmarks/bench_frontends.py`` (each class says which parts are hand-written and why):
    all four default paths share :func:`_frames_to_mel` (chunked FFTs, sparse mel product,
    threads). Measured on the project's 2-core machine (8 x 10 s clips, 1 thread, process CPU
    time, loaded machine, best of 7; default / previous default / library): kaldi_fbank_128
    15.7 / 17.4 / 39.5 ms, panns_16k 11.7 / 13.3 / 29.5, panns_32k 22.4 / 26.3 / 90.6, vggish
    12.6 / 12.1 / 19.9, passt 25.8 / 37.1 / 176.4, bow_96 44.7 / 55.9 / 186.6, logmel_64
    11.2 / 13.0 / 21.6; largest difference from the library's output 3.8e-6 (log / dB units).
    Input with NaN or infinite samples raises ``ValueError`` naming the batch rows.
    """

    config: FrontEndConfig
    fft_size: int = 512

    def __init__(self, config: FrontEndConfig, time_major: bool = False, library: bool = False) -> None:
        super().__init__()
        self.config = config
        self.time_major = bool(time_major)
        self.library = bool(library)

    @property
    def sample_rate(self) -> int:
        return int(self.config.sample_rate)

    @property
    def n_mels(self) -> int:
        return int(self.config.n_mels)

    def num_frames(self, num_samples: int) -> int:  # pragma: no cover - abstract
        """Number of output frames for an input of ``num_samples`` samples."""
        raise NotImplementedError

    @property
    def min_samples(self) -> int:
        """Shortest input (samples) this front end accepts; shorter waves raise ``ValueError``."""
        return 1

    def features(self, wave: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """(B, T) float -> (B, n_mels, frames)."""
        raise NotImplementedError

    def _check(self, x: torch.Tensor, single: bool) -> None:
        # One reduction instead of isfinite's four passes: a NaN or an infinity makes the row
        # sum non-finite; only then (or on an overflowing sum) are the samples checked one by one.
        if bool(torch.isfinite(x.sum(dim=-1)).all()):
            return
        finite = torch.isfinite(x)
        if bool(finite.all()):
            return
        bad = torch.nonzero(~finite.all(dim=-1)).flatten().tolist()
        where = "the wave" if single else f"batch row(s) {bad[:10]}"
        raise ValueError(f"{type(self).__name__}: {int((~finite).sum())} NaN/infinite sample(s) in "
                         f"{where}; the front end takes finite audio only (check the source file "
                         f"or the augmentation that produced it)")

    def _batch(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`features` of a checked (B, T) batch."""
        return self.features(x)

    def _set_mel(self, weights: torch.Tensor) -> None:
        """Keep the (M, F) mel matrix ``weights`` as the buffers of :func:`_sparse_mel` (moved
        by ``.to(device)`` with the module)."""
        for name, t in zip(("mel_bins", "mel_starts", "mel_weights"), _sparse_mel(weights)):
            self.register_buffer(name, t, persistent=False)

    @property
    def _mel_sparse(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.mel_bins, self.mel_starts, self.mel_weights

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(wave):
            raise TypeError(f"{type(self).__name__}: expected a torch.Tensor wave, got {type(wave)}")
        if wave.dim() not in (1, 2):
            raise ValueError(f"{type(self).__name__}: wave must be (T,) or (B, T), got shape "
                             f"{tuple(wave.shape)}")
        if not wave.is_floating_point():
            raise TypeError(f"{type(self).__name__}: wave must be floating point, got {wave.dtype}")
        single = wave.dim() == 1
        x = wave.unsqueeze(0) if single else wave
        with _caller_serial(wave.device.type == "cpu" and not self.library):
            self._check(x, single)
            if x.shape[-1] < self.min_samples:
                raise ValueError(f"{type(self).__name__}: wave of {x.shape[-1]} samples is shorter "
                                 f"than the {self.min_samples} samples this front end needs "
                                 f"({self.min_samples / self.sample_rate * 1000:.1f} ms); pad the "
                                 f"clip (ClipDataset(clip_seconds=...)) or drop it")
            out = self._batch(x.float())
        if self.time_major:
            out = out.transpose(-1, -2)
        return out[0] if single else out

    def extract(self, wave: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Like ``forward`` for a wave (T,) / (B, T) at ``sample_rate``: resampled first (with
        :func:`audiorepro.data.audio.resample`) when it differs from ``config.sample_rate``."""
        sr = check_sample_rate(sample_rate, "sample_rate", f"{type(self).__name__}.extract")
        return self(resample(wave, sr, self.sample_rate))

    def extra_repr(self) -> str:
        return f"{self.config}, time_major={self.time_major}" + (", library=True" if self.library else "")


def _sparse_mel(weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A (M, F) mel matrix as the input of ``F.embedding_bag(mode="sum")``: the FFT bins of its
    non-zero weights filter by filter, where each filter's list starts, and the weights."""
    nz = (weights != 0).nonzero()  # row-major: filter by filter, bins ascending
    starts = torch.searchsorted(nz[:, 0].contiguous(),
                                torch.arange(weights.shape[0], device=weights.device))
    return nz[:, 1].contiguous(), starts, weights[nz[:, 0], nz[:, 1]].contiguous()


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
#: The threads are used only in the process that imported this module: a forked child (e.g. a
#: DataLoader worker) runs the chunks in its own thread (its parent's pool threads do not exist
#: there; a child forked after the parent used the pool was seen to hang with 2 threads).
_IMPORT_PID = os.getpid()


#: Per calling thread: how many pool threads :func:`_frames_to_mel` may use while
#: :func:`_caller_serial` holds the caller's own intra-op threads at one.
_WIDTH = threading.local()


@contextlib.contextmanager
def _caller_serial(active: bool = True) -> Iterator[None]:
    """Run the body with this thread at one intra-op thread; the chunks of :func:`_frames_to_mel`
    still use the caller's ``torch.get_num_threads()`` pool threads.

    Why: an operation on more than one thread starts an OpenMP (libgomp) team whose threads keep
    spinning for milliseconds after it ends; a front end's own whole-batch operations (the finite
    check, the mean removal) left such a thread spinning on one of the 2 cores while the pool
    threads worked. Measured on the project's 2-core machine (8 x 10 s, 2 threads, best of 15):
    bow_96 4,985x real time before, as fast as with ``OMP_WAIT_POLICY=PASSIVE`` (6,908x) after
    (``benchmarks/bench_frontends.py`` has the current numbers). Operations the caller ran just
    before the front end can still leave a spinning thread; nothing here can stop that.
    """
    n = torch.get_num_threads()
    if not active or n == 1 or os.getpid() != _IMPORT_PID or getattr(_WIDTH, "n", 0):
        yield
        return
    torch.set_num_threads(1)
    _WIDTH.n = n
    try:
        yield
    finally:
        _WIDTH.n = 0
        torch.set_num_threads(n)


def _in_threads(tasks: list[Callable[[], None]]) -> None:
    """Run ``tasks`` at once on worker threads of one process-wide pool, each worker with one
    intra-op thread (``torch.set_num_threads(1)``: the tasks are the parallel work, so their
    operations must not start thread teams of their own), then restore this thread's
    ``torch.get_num_threads()`` (``set_num_threads`` also sets MKL's process-wide count).
    Torch operations release the GIL, so the tasks run in parallel."""
    global _POOL
    n = torch.get_num_threads()
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers < len(tasks):
            _POOL = ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="frontend")
        pool = _POOL

    def one_thread(task: Callable[[], None]) -> None:
        torch.set_num_threads(1)
        task()
    try:
        for f in [pool.submit(one_thread, t) for t in tasks]:
            f.result()
    finally:
        torch.set_num_threads(n)


def _frames_to_mel(waves: torch.Tensor, n_frames: int,
                   framer: Callable[[], Callable[[torch.Tensor], torch.Tensor]],
                   fill: Callable[[torch.Tensor, torch.Tensor], object], n_fft: int,
                   mel: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                   magnitude: bool = False,
                   post: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """(B, T) waves -> (B, M, n_frames) mel spectra ``W |rfft(frame, n_fft)|^2`` (``|.|`` with
    ``magnitude``), ``W`` given by :func:`_sparse_mel`.

    ``framer()`` makes a function ``frames_of(wave)`` giving the (n_frames, win) frames of one
    (T,) wave (a view, or a view of a padded / pre-emphasised copy of that clip, made clip by
    clip: whole-batch copies of 8 x 10 s clips were 10 MB of fresh pages at every call);
    ``fill(frames, buf)`` writes a chunk's windowed frames into ``buf`` ((n, n_fft), zero
    outside what ``fill`` writes, reused from chunk to chunk). On the CPU a clip's frames go
    through in chunks of about :data:`CHUNK_FLOATS` FFT input floats (on a GPU a clip at a
    time). Per chunk: ``rfft`` into a reused buffer, ``re^2 + im^2`` written bins-major, and the
    mel product as ``F.embedding_bag`` (each mel band a weighted sum of the rows of its bins:
    the ~2 non-zero weights per bin only, written straight into the (M, N) layout); ``post``
    (e.g. the log), in place on each chunk's (M, n) mel spectra while they are in the cache.
    With ``torch.get_num_threads()`` > 1 the chunks are split into that many runs done on
    threads (:func:`_in_threads`): one hand-over per call instead of one per operation.

    Measured on the project's 2-core machine, 8,000 frames of bow_96 (2048 points, 96 bands;
    1 thread, CPU time): mel product 1.4-2.5 ms against 5-9 ms for dense blocks of filters
    (the previous version) and 17 ms for the dense product; ``re^2 + im^2`` 0.8 + 5.3 ms
    against 32 ms for the complex ``abs().square()`` of ``MelSpectrogram``.
    """
    idx, starts, vals = mel
    B, N, bins = waves.shape[0], n_frames, n_fft // 2 + 1
    # only the bins some filter uses (e.g. PaSST's 0-15 kHz of 16 kHz) are squared and summed
    lo, hi = (int(idx.min()), int(idx.max()) + 1) if idx.numel() else (0, 1)
    idx = idx - lo
    cpu = waves.device.type == "cpu"
    rows = max(1, min(N, CHUNK_FLOATS // n_fft)) if cpu else max(1, N)
    out = waves.new_empty(B, starts.shape[0], N)
    chunks = [(b, c0) for b in range(B) for c0 in range(0, N, rows)]
    threads = (getattr(_WIDTH, "n", 0) or torch.get_num_threads()) \
        if cpu and os.getpid() == _IMPORT_PID else 1
    parts = max(1, min(threads, len(chunks)))
    complex_dtype = torch.complex64 if waves.dtype == torch.float32 else torch.complex128

    def run(todo: list[tuple[int, int]]) -> None:
        buf = waves.new_zeros(rows, n_fft)
        spec = torch.empty(rows, bins, dtype=complex_dtype, device=waves.device)
        power_t = waves.new_empty(hi - lo, rows)  # (bins, frames): the rows embedding_bag sums
        frames_of, clip, frames = framer(), -1, waves
        for b, c0 in todo:
            if b != clip:
                clip, frames = b, frames_of(waves[b])
            n = min(N, c0 + rows) - c0
            fill(frames[c0:c0 + n], buf[:n])
            re_im = torch.view_as_real(torch.fft.rfft(buf[:n], out=spec[:n]))[:, lo:hi].square_()
            power = power_t[:, :n]
            torch.add(re_im[..., 0], re_im[..., 1], out=power.T)
            if magnitude:
                power.sqrt_()
            mel_chunk = F.embedding_bag(idx, power, starts, mode="sum", per_sample_weights=vals)
            out[b, :, c0:c0 + n] = mel_chunk if post is None else post(mel_chunk)

    if parts == 1:
        run(chunks)
    else:
        step = -(-len(chunks) // parts)
        _in_threads([lambda todo=chunks[i:i + step]: run(todo) for i in range(0, len(chunks), step)])
    return out


def _windowed(window: torch.Tensor, offset: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``fill`` of :func:`_frames_to_mel`: frames times ``window`` at ``offset`` of the n_fft-point
    buffer (``torch.stft``'s framing, offset ``(n_fft - win) // 2``, without multiplying the zero
    part of its n_fft-point window)."""
    end = offset + window.shape[-1]
    return lambda frames, buf: torch.mul(frames, window, out=buf[:, offset:end])


def _centred_frames(n_fft: int, hop: int, win: int, n_frames: int, pad_mode: str = "reflect",
                    center: bool = True) -> Callable[[torch.Tensor], torch.Tensor]:
    """A ``frames_of`` for :func:`_frames_to_mel`: the (n_frames, win) samples of a (T,) wave
    that ``torch.stft(center=...)`` multiplies by its window (a view of the wave or of its padded
    copy).

    Reflect padding is written into one buffer reused from clip to clip (a copy and two
    reversed edges of ``n_fft // 2`` samples): ``F.pad(mode="reflect")`` took 4 ms per 10-s
    32 kHz clip on the project's machine, as long as the clip's FFTs.
    """
    off, half = (n_fft - win) // 2, n_fft // 2
    padded: list[torch.Tensor] = []

    def frames_of(x: torch.Tensor) -> torch.Tensor:
        if center and pad_mode == "reflect":
            t = x.shape[-1]
            if not padded or padded[0].shape[-1] != t + 2 * half or padded[0].dtype != x.dtype \
                    or padded[0].device != x.device:
                padded[:] = [x.new_empty(t + 2 * half)]
            y = padded[0]
            y[half:half + t] = x
            y[:half] = x[1:half + 1].flip(0)
            y[half + t:] = x[t - half - 1:t - 1].flip(0)
            x = y
        elif center:
            x = F.pad(x.unsqueeze(0), (half, half), mode=pad_mode).squeeze(0)
        return x.unfold(-1, n_fft, hop)[:n_frames, off:off + win]
    return frames_of


def time_major(features: torch.Tensor) -> torch.Tensor:
    """(B, n_mels, frames) -> (B, frames, n_mels) (the AST / ATGNN input layout); a view."""
    return features.transpose(-1, -2)


class KaldiFbank(FrontEnd):
    """Kaldi-compatible log mel filter bank (AST / PSLA / ATGNN); see :class:`KaldiFbankConfig`.

    Output ``(B, 128, target_frames)``; normalised unless ``config.normalize`` is False.
    ``library=True`` (or ``config.vectorized=False``) loops over the batch calling
    ``torchaudio.compliance.kaldi.fbank``; the default is a copy of its operations on the frames
    (:func:`_frames_to_mel`), kept because it is faster in ``benchmarks/bench_frontends.py``
    (about 2.5x, see :class:`FrontEnd`; the library call is per clip and rebuilds the mel banks
    and a log energy it does not return on every call).
    """

    config: KaldiFbankConfig

    def __init__(self, config: KaldiFbankConfig = KaldiFbankConfig(), time_major: bool = False,
                 library: bool = False) -> None:
        super().__init__(config, time_major, library or not config.vectorized)
        c = config
        self.win = int(c.sample_rate * c.frame_length_ms * 0.001)
        self.shift = int(c.sample_rate * c.frame_shift_ms * 0.001)
        self.padded = 1 << (self.win - 1).bit_length()  # round_to_power_of_two
        self.fft_size = self.padded
        if c.hop_length != self.shift:
            raise ValueError(f"KaldiFbankConfig: hop_length={c.hop_length} disagrees with "
                             f"frame_shift_ms={c.frame_shift_ms} ({self.shift} samples)")
        if c.window_type != "hanning" and not self.library:
            raise ValueError(f"KaldiFbankConfig.window_type={c.window_type!r}: the vectorised "
                             "path implements 'hanning' only (the papers' choice); use "
                             "vectorized=False for other Kaldi windows")
        banks, _ = kaldi.get_mel_banks(c.n_mels, self.padded, float(c.sample_rate), c.low_freq,
                                       c.high_freq, 100.0, -500.0, 1.0)
        self.register_buffer("mel_banks", F.pad(banks, (0, 1)).float(), persistent=False)  # (M, P/2+1)
        self.register_buffer("window", torch.hann_window(self.win, periodic=False), persistent=False)
        self._set_mel(self.mel_banks)

    def num_frames(self, num_samples: int) -> int:
        if self.config.target_frames is not None:
            return int(self.config.target_frames)
        return self.raw_frames(num_samples)

    def raw_frames(self, num_samples: int) -> int:
        """Kaldi frames with ``snip_edges=True``: ``1 + (T - win) // shift`` (0 if T < win)."""
        return 0 if num_samples < self.win else 1 + (num_samples - self.win) // self.shift

    def _fbank_loop(self, x: torch.Tensor) -> torch.Tensor:
        """``kaldi.fbank`` clip by clip; (B, T) -> (B, M, frames)."""
        c = self.config
        out = [kaldi.fbank(w.unsqueeze(0), htk_compat=True, sample_frequency=float(c.sample_rate),
                           use_energy=False, window_type=c.window_type, num_mel_bins=c.n_mels,
                           dither=0.0, frame_length=c.frame_length_ms, frame_shift=c.frame_shift_ms,
                           low_freq=c.low_freq, high_freq=c.high_freq,
                           preemphasis_coefficient=c.preemphasis)
               for w in x]
        return torch.stack(out).transpose(1, 2)

    def _fbank_vectorized(self, x: torch.Tensor) -> torch.Tensor:
        """Batched ``kaldi.fbank`` for our settings, its operations in its order; (B, T) -> (B, M, frames).

        Per-frame DC removal, pre-emphasis ``d[i] - a d[i-1]`` (``d[-1] = d[0]``), Hann window,
        zero padding to 512 (written into a zero-filled buffer, so ``rfft`` does not pad a
        copy), ``|rfft|^2``, mel banks (:func:`_frames_to_mel`), ``log(max(x, eps))``.
        """
        a = self.config.preemphasis
        win, window = self.win, self.window

        def fill(frames: torch.Tensor, buf: torch.Tensor) -> None:
            d = frames - frames.mean(dim=-1, keepdim=True)  # remove_dc_offset
            body = buf[:, :win]
            # d - a * shifted(d), rounded as kaldi.fbank rounds it (a * d first, then the
            # difference; a fused alpha-subtraction rounds once and moves near-silent bins by
            # up to 3e-3 in log)
            torch.mul(d[:, :-1], a, out=body[:, 1:])
            torch.mul(d[:, :1], a, out=body[:, :1])
            torch.sub(d, body, out=body)
            body.mul_(window)

        framer = lambda: lambda w: w.unfold(-1, win, self.shift)  # noqa: E731 - (N, win) view, snip_edges
        eps = torch.finfo(torch.float32).eps
        return _frames_to_mel(x, self.raw_frames(x.shape[-1]), framer, fill, self.padded,
                              self._mel_sparse,
                              post=lambda m: m.clamp_min_(eps).log_())  # (B, M, N)

    @property
    def min_samples(self) -> int:
        return self.win  # one 25 ms frame (Kaldi: snip_edges)

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        c = self.config
        x = wave.float()
        if c.remove_mean:
            x = x - x.mean(dim=-1, keepdim=True)
        fb = self._fbank_loop(x) if self.library else self._fbank_vectorized(x)  # (B, M, N)
        if c.target_frames is not None and fb.shape[-1] != c.target_frames:
            n = min(fb.shape[-1], c.target_frames)
            out = fb.new_zeros(*fb.shape[:-1], c.target_frames)  # AST pads zeros before normalising
            out[..., :n] = fb[..., :n]
            fb = out
        if c.normalize:
            fb = fb.sub_(c.norm_mean).div_(c.norm_std * 2)
        return fb.contiguous()


class LogMel(FrontEnd):
    """torchaudio ``Spectrogram`` + ``MelScale`` + log; see :class:`LogMelConfig`.
    Output (B, n_mels, frames).

    ``library=True`` runs ``torchaudio.transforms.MelSpectrogram`` (then the log). The default
    computes the same numbers with :func:`_frames_to_mel`: ``torch.stft``'s framing without
    multiplying the zero part of the window (:func:`_windowed`; bow_96 has a 480-sample window
    in a 2048-point FFT), reflect padding clip by clip (:func:`_centred_frames`),
    ``re^2 + im^2`` (MelSpectrogram squares a complex ``abs``), the mel product over the
    non-zero weights only and the log on each chunk; faster in
    ``benchmarks/bench_frontends.py`` (1.9-4x, see :class:`FrontEnd`).
    """

    config: LogMelConfig

    def __init__(self, config: LogMelConfig = LogMelConfig(), time_major: bool = False,
                 library: bool = False) -> None:
        super().__init__(config, time_major, library)
        c = config
        if c.log not in ("db", "log"):
            raise ValueError(f"LogMelConfig.log must be 'db' or 'log', got {c.log!r}")
        if c.win_length > c.n_fft:
            raise ValueError(f"LogMelConfig: win_length={c.win_length} > n_fft={c.n_fft}")
        if c.power not in (1.0, 2.0):
            raise ValueError(f"LogMelConfig.power must be 1 (magnitude) or 2 (power), got {c.power}")
        self.fft_size = c.n_fft
        self.spectrogram = T.Spectrogram(
            n_fft=c.n_fft, win_length=c.win_length, hop_length=c.hop_length,
            window_fn=torch.hann_window, power=None if not self.library else c.power,
            center=c.center, pad_mode=c.pad_mode)
        self.mel_scale = T.MelScale(n_mels=c.n_mels, sample_rate=c.sample_rate, f_min=c.f_min,
                                    f_max=c.f_max, n_stft=c.n_fft // 2 + 1, norm=c.mel_norm,
                                    mel_scale=c.mel_scale)
        self.to_db = T.AmplitudeToDB(stype="power" if c.power == 2.0 else "magnitude",
                                     top_db=c.top_db) if c.log == "db" else None
        if self.to_db is not None:
            self.to_db.amin = c.amin
        self._set_mel(self.mel_scale.fb.T)

    @property
    def min_samples(self) -> int:
        c = self.config  # a centred STFT reflect-pads n_fft // 2 samples: needs more than that
        return c.n_fft // 2 + 1 if c.center else c.n_fft

    def num_frames(self, num_samples: int) -> int:
        c = self.config
        if c.frames_per_hop:
            return num_samples // c.hop_length
        if c.center:
            return 1 + num_samples // c.hop_length
        return 0 if num_samples < c.n_fft else 1 + (num_samples - c.n_fft) // c.hop_length

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        c = self.config
        wave = wave.float()
        n = self.num_frames(wave.shape[-1])
        if self.library:  # torchaudio MelSpectrogram = Spectrogram(power) + MelScale
            m = self.mel_scale(self.spectrogram(wave))[..., :n]
        else:
            framer = lambda: _centred_frames(c.n_fft, c.hop_length, c.win_length, n, c.pad_mode, c.center)  # noqa: E731
            fill = _windowed(self.spectrogram.window, (c.n_fft - c.win_length) // 2)
            # what MelScale computes, (B, M, N) directly
            post = None
            if self.to_db is None:
                post = lambda m: m.add_(c.log_offset).log_()  # noqa: E731
            elif c.top_db is None:  # AmplitudeToDB: 10 log10(max(x, amin)) - 10 log10(max(amin, ref))
                sub = self.to_db.multiplier * self.to_db.db_multiplier
                post = lambda m: m.clamp_min_(c.amin).log10_().mul_(self.to_db.multiplier).sub_(sub)  # noqa: E731
            m = _frames_to_mel(wave, n, framer, fill, c.n_fft, self._mel_sparse,
                               magnitude=c.power == 1.0, post=post)
            if post is not None:
                return m
        if self.to_db is not None:
            # AmplitudeToDB's top_db clamps per spectrogram only for >= 3-D input with a
            # channel axis; apply it per clip by adding a channel axis.
            return self.to_db(m.unsqueeze(1)).squeeze(1)
        return torch.log(m + c.log_offset)


def vggish_mel_matrix(n_mels: int = 64, n_bins: int = 257, sample_rate: int = 16000,
                      f_min: float = 125.0, f_max: float = 7500.0) -> torch.Tensor:
    """VGGish / ``mel_features.spectrogram_to_mel_matrix``: (n_bins, n_mels) float64 weights.

    HTK mel ``1127 ln(1 + f / 700)``; triangles linear in mel; DC row zeroed; no area norm.
    """
    nyquist = sample_rate / 2.0
    if not 0.0 <= f_min < f_max <= nyquist:
        raise ValueError(f"vggish_mel_matrix: need 0 <= f_min ({f_min}) < f_max ({f_max}) <= "
                         f"Nyquist ({nyquist})")
    hz_to_mel = lambda f: 1127.0 * torch.log1p(torch.as_tensor(f, dtype=torch.float64) / 700.0)  # noqa: E731
    bins_mel = hz_to_mel(torch.linspace(0.0, nyquist, n_bins, dtype=torch.float64))
    edges = torch.linspace(float(hz_to_mel(f_min)), float(hz_to_mel(f_max)), n_mels + 2,
                           dtype=torch.float64)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    lo = (bins_mel[:, None] - lower) / (center - lower)
    hi = (upper - bins_mel[:, None]) / (upper - center)
    w = torch.clamp(torch.minimum(lo, hi), min=0.0)
    w[0, :] = 0.0
    return w


class VGGishLogMel(FrontEnd):
    """VGGish log-mel spectrogram; see :class:`VGGishConfig`. Output (B, 64, frames);
    :meth:`examples` gives the (B, N, 1, 96, 64) network input.

    ``library=True`` frames with ``torch.stft`` (not centred; the 400-sample window sits in the
    middle of the 512-point frame, so the wave is padded by 56 samples on both sides) and takes
    the complex ``abs``. The default frames as VGGish's own ``mel_features.frame`` +
    ``rfft(frame, 512)`` do and takes ``sqrt(re^2 + im^2)`` (:func:`_frames_to_mel`); kept
    because it is faster in ``benchmarks/bench_frontends.py`` (about 1.6x, see :class:`FrontEnd`).
    """

    config: VGGishConfig

    def __init__(self, config: VGGishConfig = VGGishConfig(), time_major: bool = False,
                 library: bool = False) -> None:
        super().__init__(config, time_major, library)
        c = config
        self.fft_size = c.n_fft
        n = torch.arange(c.win_length, dtype=torch.float64)
        window = 0.5 - 0.5 * torch.cos(2 * math.pi / c.win_length * n)  # periodic Hann
        self.register_buffer("window", window.float(), persistent=False)
        mel = vggish_mel_matrix(c.n_mels, c.n_fft // 2 + 1, c.sample_rate, c.f_min, c.f_max)
        self.register_buffer("mel_matrix", mel.float(), persistent=False)  # (n_fft/2+1, M)
        self._set_mel(self.mel_matrix.T)

    def num_frames(self, num_samples: int) -> int:
        c = self.config
        return 0 if num_samples < c.win_length else 1 + (num_samples - c.win_length) // c.hop_length

    def num_examples(self, num_samples: int) -> int:
        """0.96 s examples in a clip of ``num_samples`` (1 + (frames - 96) // 96, or 0)."""
        c = self.config
        n = self.num_frames(num_samples)
        return 0 if n < c.example_frames else 1 + (n - c.example_frames) // c.example_hop_frames

    @property
    def min_samples(self) -> int:
        return self.config.win_length  # one 25 ms frame

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        c = self.config
        wave = wave.float()
        if self.library:
            side = (c.n_fft - c.win_length) // 2
            spec = torch.stft(F.pad(wave, (side, c.n_fft - c.win_length - side)), c.n_fft,
                              hop_length=c.hop_length, win_length=c.win_length, window=self.window,
                              center=False, return_complex=True)  # (B, n_fft/2+1, N)
            return torch.log(torch.matmul(self.mel_matrix.T, spec.abs()) + c.log_offset)
        framer = lambda: lambda w: w.unfold(-1, c.win_length, c.hop_length)  # noqa: E731 - (N, win) view
        return _frames_to_mel(wave, self.num_frames(wave.shape[-1]), framer, _windowed(self.window, 0),
                              c.n_fft, self._mel_sparse,
                              magnitude=True, post=lambda m: m.add_(c.log_offset).log_())  # (B, M, N)

    def examples(self, wave: torch.Tensor, pad_short: bool = False) -> torch.Tensor:
        """(T,) -> (N, 1, 96, 64) or (B, T) -> (B, N, 1, 96, 64): non-overlapping 0.96 s examples
        (frames x mel, time-major as VGGish expects). The tail that does not fill an example is
        dropped (as ``vggish_input.waveform_to_examples``).

        Args:
            pad_short: zero-pad waves shorter than one example (15,600 samples) instead of
                raising.
        """
        c = self.config
        single = wave.dim() == 1
        x = wave.unsqueeze(0) if single else wave
        need = c.win_length + (c.example_frames - 1) * c.hop_length
        if x.shape[-1] < need:
            if not pad_short:
                raise ValueError(f"vggish_examples: wave of {x.shape[-1]} samples gives no 0.96 s "
                                 f"example (needs >= {need} samples); pass pad_short=True to pad")
            x = F.pad(x, (0, need - x.shape[-1]))
        feats = self._batch(x.float()).transpose(1, 2)  # (B, N, M)
        ex = feats.unfold(1, c.example_frames, c.example_hop_frames)  # (B, E, M, 96)
        ex = ex.transpose(-1, -2).unsqueeze(2).contiguous()  # (B, E, 1, 96, M)
        return ex[0] if single else ex


def vggish_examples(wave: torch.Tensor, pad_short: bool = False,
                    frontend: VGGishLogMel | None = None) -> torch.Tensor:
    """16 kHz wave (T,) -> VGGish input examples (num_examples, 1, 96, 64); (B, T) -> (B, N, 1, 96, 64).

    A 10 s clip gives 10 examples (998 frames -> 10 x 96, 38 frames dropped).
    """
    if frontend is None:
        key = str(wave.device)
        if key not in _VGGISH_DEFAULT:
            _VGGISH_DEFAULT[key] = VGGishLogMel().to(wave.device).eval()
        frontend = _VGGISH_DEFAULT[key]
    return frontend.examples(wave, pad_short=pad_short)


_VGGISH_DEFAULT: dict[str, VGGishLogMel] = {}


class PasstMel(FrontEnd):
    """PaSST log-mel (``AugmentMelSTFT`` without the SpecAugment masks, which live in
    :mod:`audiorepro.augment`); see :class:`PasstConfig`. Output (B, 128, 1 + (T - 1) // 320).

    ``library=True`` runs the official code's operations (``conv1d`` pre-emphasis,
    ``torch.stft``, ``view_as_real(X) ** 2`` summed over the last axis, dense mel product). The
    default computes the same numbers with the pre-emphasis by slicing, clip by clip, and
    :func:`_frames_to_mel`; kept because it is faster in ``benchmarks/bench_frontends.py``
    (about 7x, see :class:`FrontEnd`).
    """

    config: PasstConfig

    def __init__(self, config: PasstConfig = PasstConfig(), time_major: bool = False,
                 library: bool = False) -> None:
        super().__init__(config, time_major, library)
        c = config
        if c.fmin_aug_range < 1 or c.fmax_aug_range < 1:
            raise ValueError(f"PasstConfig: fmin_aug_range={c.fmin_aug_range} and fmax_aug_range="
                             f"{c.fmax_aug_range} must be >= 1 (1 = no band augmentation)")
        self.fft_size = c.n_fft
        self.register_buffer("window", torch.hann_window(c.win_length, periodic=False), persistent=False)
        self.register_buffer("mel_banks", self._banks(c.f_min, c.fmax_effective), persistent=False)
        self.register_buffer("preemphasis_kernel", torch.tensor([[[-c.preemphasis, 1.0]]]),
                             persistent=False)
        self._set_mel(self.mel_banks)

    def _banks(self, fmin: float, fmax: float) -> torch.Tensor:
        c = self.config
        banks, _ = kaldi.get_mel_banks(c.n_mels, c.n_fft, float(c.sample_rate), fmin, fmax,
                                       100.0, -500.0, 1.0)
        return F.pad(banks, (0, 1)).float()  # (M, n_fft/2+1)

    @property
    def min_samples(self) -> int:
        return self.config.n_fft // 2 + 2  # pre-emphasis drops one sample, then reflect padding

    def num_frames(self, num_samples: int) -> int:
        return 1 + (num_samples - 1) // self.config.hop_length

    def _draw_banks(self) -> torch.Tensor:
        """The mel banks of one forward call: random band edges in ``train()`` mode (one draw
        per call, for the whole batch, as PaSST), the fixed ones in ``eval()``."""
        c = self.config
        if not (self.training and (c.fmin_aug_range > 1 or c.fmax_aug_range > 1)):
            return self.mel_banks
        fmin = c.f_min + int(torch.randint(c.fmin_aug_range, (1,)))
        fmax = c.fmax_effective + c.fmax_aug_range // 2 - int(torch.randint(c.fmax_aug_range, (1,)))
        return self._banks(fmin, fmax).to(self.mel_banks.device)

    def _batch(self, x: torch.Tensor) -> torch.Tensor:
        banks = self._draw_banks()
        return self._mel(x, banks)

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        return self._mel(wave.float(), self._draw_banks())

    def _mel(self, w: torch.Tensor, banks: torch.Tensor) -> torch.Tensor:
        c = self.config
        if self.library:  # the official AugmentMelSTFT operations
            x = F.conv1d(w.unsqueeze(1), self.preemphasis_kernel).squeeze(1)
            spec = torch.stft(x, c.n_fft, hop_length=c.hop_length, win_length=c.win_length,
                              window=self.window, center=True, pad_mode="reflect", normalized=False,
                              return_complex=True)
            mel = torch.matmul(banks, (torch.view_as_real(spec) ** 2).sum(dim=-1))
            return (torch.log(mel + c.log_offset) + c.norm_add) / c.norm_div
        n = self.num_frames(w.shape[-1])

        def framer() -> Callable[[torch.Tensor], torch.Tensor]:
            centred = _centred_frames(c.n_fft, c.hop_length, c.win_length, n)
            # the conv1d by slicing (same rounding), clip by clip: (T - 1,)
            return lambda x: centred(x[1:] - c.preemphasis * x[:-1])
        fill = _windowed(self.window, (c.n_fft - c.win_length) // 2)
        sparse = self._mel_sparse if banks is self.mel_banks else _sparse_mel(banks)
        post = lambda m: m.add_(c.log_offset).log_().add_(c.norm_add).div_(c.norm_div)  # noqa: E731
        return _frames_to_mel(w, n, framer, fill, c.n_fft, sparse, post=post)  # (B, M, N)


# ============================================================================ presets
PRESETS: dict[str, FrontEndConfig] = {
    # AST / PSLA / ATGNN, AudioSet length (FSD50K: target_frames=1024)
    "kaldi_fbank_128": KaldiFbankConfig(),
    # PANNs CNN14 (torchlibrosa Spectrogram + LogmelFilterBank: librosa Slaney mel, power,
    # 10 log10(max(x, 1e-10)), ref 1.0, top_db None)
    "panns_16k": LogMelConfig(sample_rate=16000, n_fft=512, win_length=512, hop_length=160,
                              n_mels=64, f_min=50.0, f_max=8000.0, mel_scale="slaney",
                              mel_norm="slaney", center=True, pad_mode="reflect", power=2.0,
                              log="db", amin=1e-10, top_db=None),
    "panns_32k": LogMelConfig(sample_rate=32000, n_fft=1024, win_length=1024, hop_length=320,
                              n_mels=64, f_min=50.0, f_max=14000.0, mel_scale="slaney",
                              mel_norm="slaney", center=True, pad_mode="reflect", power=2.0,
                              log="db", amin=1e-10, top_db=None),
    "vggish": VGGishConfig(),
    "passt": PasstConfig(),
    # bag-of-codewords paper (no public code; log / mel conventions are our choice: HTK mel
    # without area norm, ln(x + 1e-6)); 100 frames per second.
    "bow_96": LogMelConfig(sample_rate=16000, n_fft=2048, win_length=480, hop_length=160,
                           n_mels=96, f_min=0.0, f_max=8000.0, mel_scale="htk", mel_norm=None,
                           power=2.0, log="log", log_offset=1e-6, frames_per_hop=True),
    "logmel_64": LogMelConfig(sample_rate=16000, n_fft=512, win_length=400, hop_length=160,
                              n_mels=64, f_min=0.0, f_max=8000.0, log="log", log_offset=1e-6),
}

#: Where each preset's numbers come from (shown by :func:`describe_preset`).
PRESET_SOURCES: dict[str, str] = {
    "kaldi_fbank_128": "AST src/dataloader.py _wav2fbank (also PSLA, ATGNN). "
                       "AudioSet 1056 frames; use target_frames=1024 for FSD50K.",
    "panns_16k": "PANNs CNN14 16 kHz (Kong et al.; torchlibrosa Spectrogram + LogmelFilterBank, "
                 "librosa Slaney mel; 512 / 160, 64 mel 50-8000 Hz).",
    "panns_32k": "PANNs CNN14 32 kHz (window 1024, hop 320, 64 mel 50-14000 Hz, torchlibrosa).",
    "vggish": "tensorflow/models research/audioset/vggish (vggish_params, mel_features, "
              "vggish_input).",
    "passt": "kkoutini/PaSST models/preprocess.py AugmentMelSTFT with fmin_aug_range=10, "
             "fmax_aug_range=2000 (hear21passt get_basic_model).",
    "bow_96": "Bag-of-codewords paper, section III (96 mel 0-8 kHz, hop 10 ms, window 30 ms, "
              "FFT 2048, Hann); no public code: mel scale (HTK, no norm) and ln(x + 1e-6) are ours.",
    "logmel_64": "generic 16 kHz log-mel (25 ms / 10 ms, 64 HTK mel 0-8 kHz, ln(x + 1e-6)); ours.",
}


def describe_preset(name: str) -> str:
    """One-paragraph description of a preset: its config and its sources."""
    cfg = preset_config(name)
    return f"{name}: {cfg}\nsource: {PRESET_SOURCES[name]}"


_MODULES: dict[type, type[FrontEnd]] = {
    KaldiFbankConfig: KaldiFbank, LogMelConfig: LogMel, VGGishConfig: VGGishLogMel,
    PasstConfig: PasstMel,
}
_CONFIGS_BY_NAME = {cls.__name__: cls for cls in _MODULES}


def preset_config(name: str, **overrides: Any) -> FrontEndConfig:
    """The config of preset ``name`` with fields replaced by ``overrides``
    (e.g. ``preset_config("kaldi_fbank_128", target_frames=1024)`` for FSD50K)."""
    if name not in PRESETS:
        raise KeyError(f"unknown front-end preset {name!r}; known: {sorted(PRESETS)}")
    cfg = PRESETS[name]
    fields = {f.name for f in dataclasses.fields(cfg)}
    bad = sorted(set(overrides) - fields)
    if bad:
        raise TypeError(f"front-end preset {name!r} ({cfg.kind}) has no field(s) {bad}; "
                        f"fields: {sorted(fields)}")
    return replace(cfg, **overrides)


def frontend_from_config(config: FrontEndConfig | dict, time_major: bool = False,
                         library: bool = False) -> FrontEnd:
    """Build the module of a config (or of its :meth:`FrontEndConfig.to_dict` form);
    ``library=True``: the library-only implementation (same numbers, see :class:`FrontEnd`)."""
    if isinstance(config, dict):
        d = dict(config)
        kind = d.pop("kind", None)
        if kind not in _CONFIGS_BY_NAME:
            raise ValueError(f"front-end config dict has unknown kind {kind!r}; "
                             f"known: {sorted(_CONFIGS_BY_NAME)}")
        config = _CONFIGS_BY_NAME[kind](**d)
    return _MODULES[type(config)](config, time_major=time_major, library=library)


def make_frontend(name: str, time_major: bool = False, device: str | torch.device = "cpu",
                  library: bool = False, **overrides: Any) -> FrontEnd:
    """Preset front end on ``device`` (in eval mode: no PaSST band augmentation);
    ``library=True``: the library-only implementation (same numbers, see :class:`FrontEnd`)."""
    return frontend_from_config(preset_config(name, **overrides), time_major, library).to(device).eval()


# ============================================================================ feature cache
CACHE_FORMAT_VERSION = 1


class CacheError(RuntimeError):
    """A cache entry is unusable or a cache request is inconsistent; the message names it."""


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _safe_name(clip_id: str, fingerprint: str = "") -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", clip_id)[:80].lstrip(".") or "clip"
    h = hashlib.sha1((clip_id + "\0" + fingerprint).encode()).hexdigest()[:10]
    return f"{stem}-{h}.npy"


#: The header ``np.save`` writes (format 1.0, keys in this order); anything else goes to np.load.
_NPY_HEADER = re.compile(rb"\{'descr': '([<>|=][a-zA-Z]\d*)', 'fortran_order': (False|True), "
                         rb"'shape': \(((?:\d+, ?)*\d*)\), \} *\n")


def _read_npy(path: str | os.PathLike) -> np.ndarray:
    """``np.load(path)`` for the files ``np.save`` writes, with the header matched by a regular
    expression instead of numpy's ``ast`` parse and the data read straight into the array.
    Kept because it is faster in ``benchmarks/bench_frontends.py``: a cache hit of a 10-s clip
    (item only, wall) 0.20 -> 0.12 ms for kaldi_fbank_128 (540 kB), 0.16 -> 0.08 ms for
    logmel_64. Other headers are left to ``np.load``. Raises like ``np.load``
    (``FileNotFoundError``, ``ValueError`` on a truncated file)."""
    with open(path, "rb", buffering=0) as f:
        pre = f.read(10)
        m = _NPY_HEADER.fullmatch(f.read(int.from_bytes(pre[8:10], "little"))) \
            if pre[:8] == b"\x93NUMPY\x01\x00" else None
        dtype = np.dtype(m[1].decode()) if m is not None else None
        if dtype is None or dtype.hasobject:  # object arrays: np.load refuses the pickle
            return np.load(path, allow_pickle=False)
        shape = tuple(int(v) for v in m[3].split(b",") if v.strip())
        arr = np.empty(shape, dtype, order="F" if m[2] == b"True" else "C")
        n = f.readinto(memoryview(arr.reshape(-1, order="A")).cast("B")) if arr.nbytes else 0
    if n != arr.nbytes:
        raise ValueError(f"{path}: {n} of {arr.nbytes} data bytes (truncated .npy file)")
    return arr


class FeatureCache:
    """One ``.npy`` file per clip under ``root/<key>/<fan-out>/``.

    ``key`` = first 16 hex digits of the SHA-1 of the canonical JSON of ``key_config`` (a dict
    with the front-end config, the dataset name and loader parameters - see
    :func:`feature_key`); ``root/<key>/key.json`` records it. Any change of the config gives a
    new key (a new folder); files are written atomically so an interrupted run only loses the
    clip being written.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else paths.cache_dir("features")
        self._ready: set[str] = set()  # keys whose folder and key.json this object has checked

    @staticmethod
    def key(key_config: dict) -> str:
        if not isinstance(key_config, dict):
            raise TypeError(f"FeatureCache key_config must be a dict, got {type(key_config)}")
        return hashlib.sha1(_canonical(key_config).encode()).hexdigest()[:16]

    def folder(self, key_config: dict) -> Path:
        """``root/<key>``, created with its ``key.json`` on first use (checked once per object)."""
        key = self.key(key_config)
        folder = self.root / key
        if key not in self._ready:
            meta = folder / "key.json"
            if not meta.is_file():
                folder.mkdir(parents=True, exist_ok=True)
                text = json.dumps({"format": CACHE_FORMAT_VERSION, "key_config": key_config},
                                  indent=1, sort_keys=True, default=str)
                atomic_write_text(meta, text)
            self._ready.add(key)
        return folder

    @staticmethod
    def entry(folder: Path, clip_id: str, fingerprint: str = "") -> Path:
        """File of one clip in a key's ``folder``; ``fingerprint`` (e.g. file size / mtime) is
        part of its name."""
        name = _safe_name(str(clip_id), fingerprint)
        return folder / name.rsplit("-", 1)[1][:2] / name

    def path(self, key_config: dict, clip_id: str, fingerprint: str = "") -> Path:
        """File of one clip; ``fingerprint`` (e.g. file size / mtime) is part of its name."""
        return self.entry(self.folder(key_config), clip_id, fingerprint)

    #: How :meth:`read` reads an entry: ``"read"`` (default: :func:`_read_npy`), ``"np.load"``,
    #: ``"mmap"`` (``np.load(mmap_mode="c")``: copy-on-write, writable, writes stay private).
    READ_MODES = ("read", "np.load", "mmap")

    @staticmethod
    def read(path: str | os.PathLike, mode: str = "read") -> np.ndarray | None:
        """The array of one entry file, or ``None`` when it is missing or unreadable (one
        ``open``, no separate existence check).

        ``mode``: see :data:`READ_MODES`. A mapped entry (entries are replaced by atomic renames,
        so a mapping never sees its file change) is ready sooner, but pays its page faults when
        the data is first used, e.g. by the batch collation: ``benchmarks/bench_frontends.py``
        measures the three modes, item alone and item + collation.
        """
        if mode not in FeatureCache.READ_MODES:
            raise ValueError(f"FeatureCache.read: mode={mode!r}, expected one of {FeatureCache.READ_MODES}")
        try:
            if mode == "read":
                return _read_npy(path)
            return np.load(path, mmap_mode="c" if mode == "mmap" else None, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (ValueError, OSError, EOFError) as exc:
            if mode == "mmap":  # e.g. an empty array cannot be mapped: read it
                return FeatureCache.read(path)
            log.warning("feature cache: unreadable entry %s (%s); recomputing", path, exc)
            return None

    def load(self, key_config: dict, clip_id: str, fingerprint: str = "",
             mode: str = "read") -> np.ndarray | None:
        """The cached array or ``None`` (missing or unreadable entries count as missing);
        ``mode``: see :meth:`read`."""
        return self.read(self.path(key_config, clip_id, fingerprint), mode)

    def save(self, key_config: dict, clip_id: str, array: np.ndarray | torch.Tensor,
             fingerprint: str = "") -> Path:
        if torch.is_tensor(array):
            array = array.detach().cpu().numpy()
        p = self.path(key_config, clip_id, fingerprint)
        atomic_save_npy(p, np.ascontiguousarray(array))
        return p

    def get_or_compute(self, key_config: dict, clip_ids: Sequence[str],
                       compute_fn: Callable[[list[str]], Any], batch_size: int = 64,
                       fingerprints: Sequence[str] | None = None) -> np.ndarray:
        """Features of ``clip_ids`` stacked as ``(N, ...)``; missing clips are computed.

        Args:
            compute_fn: ``list of clip ids -> (n, ...) array/tensor`` (or a list of n arrays),
                called on chunks of at most ``batch_size`` missing ids.
            fingerprints: optional per-clip strings that invalidate an entry when they change.
        """
        clip_ids = [str(c) for c in clip_ids]
        fps = list(fingerprints) if fingerprints is not None else [""] * len(clip_ids)
        if len(fps) != len(clip_ids):
            raise ValueError(f"get_or_compute: {len(fps)} fingerprints for {len(clip_ids)} clip ids")
        found: dict[int, np.ndarray] = {}
        missing: list[int] = []
        folder = self.folder(key_config)
        for i, cid in enumerate(clip_ids):
            arr = self.read(self.entry(folder, cid, fps[i]))
            if arr is None:
                missing.append(i)
            else:
                found[i] = arr
        for start in range(0, len(missing), batch_size):
            chunk = missing[start:start + batch_size]
            out = compute_fn([clip_ids[i] for i in chunk])
            arrays = [o.detach().cpu().numpy() if torch.is_tensor(o) else np.asarray(o) for o in out]
            if len(arrays) != len(chunk):
                raise CacheError(f"get_or_compute: compute_fn returned {len(arrays)} items for "
                                 f"{len(chunk)} clip ids (first {clip_ids[chunk[0]]!r})")
            for i, arr in zip(chunk, arrays):
                self.save(key_config, clip_ids[i], arr, fps[i])
                found[i] = arr
        if not clip_ids:
            return np.zeros((0,), np.float32)
        shapes = {found[i].shape for i in range(len(clip_ids))}
        if len(shapes) > 1:
            raise CacheError(f"get_or_compute: features of different shapes {sorted(shapes)} cannot "
                             "be stacked; use fixed-length clips or load per clip")
        return np.stack([found[i] for i in range(len(clip_ids))])

    def count(self, key_config: dict) -> int:
        """Number of cached clips of a key."""
        return sum(1 for _ in self.folder(key_config).glob("*/*.npy"))

    def clear(self, key_config: dict) -> int:
        """Delete the entries of one key; returns how many files were removed."""
        folder = self.root / self.key(key_config)
        n = 0
        for p in folder.glob("*/*.npy"):
            p.unlink()
            n += 1
        return n


def feature_key(frontend: FrontEnd | FrontEndConfig, dataset: Any) -> dict:
    """Cache key config of ``frontend`` features of a :class:`~audiorepro.data.dataset.ClipDataset`
    (table name, sample rate, clip length, crop, segments)."""
    cfg = frontend.config if isinstance(frontend, FrontEnd) else frontend
    tm = bool(getattr(frontend, "time_major", False))
    if getattr(dataset, "crop", "start") == "random":
        raise CacheError(f"dataset of table {dataset.table.name!r} uses random crops; caching "
                         "would freeze one crop - use crop='start' or 'center'")
    if int(dataset.sample_rate) != int(cfg.sample_rate):
        raise CacheError(f"dataset sample_rate={dataset.sample_rate} differs from the front end's "
                         f"{cfg.sample_rate} ({cfg.kind})")
    return {"format": CACHE_FORMAT_VERSION, "frontend": cfg.to_dict(), "time_major": tm,
            "dataset": dataset.table.name, "sample_rate": int(dataset.sample_rate),
            "clip_samples": dataset.clip_samples, "crop": dataset.crop,
            "segment_samples": dataset.segment_samples}


class CachedFeatureDataset(torch.utils.data.Dataset):
    """A :class:`~audiorepro.data.dataset.ClipDataset` whose items carry cached ``features``
    instead of ``wave``: ``{"features", "target", "index", "clip_id"}``.

    ``features`` is ``(n_mels, frames)`` float32 (``(S, n_mels, frames)`` for segmented
    datasets; ``(frames, n_mels)`` for a time-major front end). The front end runs in
    ``eval()`` mode under ``no_grad`` on ``device``. Each entry's name includes the audio
    file's path, size and modification time (one ``stat`` per item), so replaced audio is
    recomputed; clip ids and paths are read from the table once, at construction.
    ``read_mode``: how hits are read (see :meth:`FeatureCache.read`).
    """

    def __init__(self, dataset: Any, frontend: FrontEnd, cache: FeatureCache | None = None,
                 device: str | torch.device = "cpu", read_mode: str = "read") -> None:
        self.dataset = dataset
        self.device = torch.device(device)
        self.frontend = frontend.to(self.device)  # misses are computed on ``device``
        self.cache = cache if cache is not None else FeatureCache()
        if read_mode not in FeatureCache.READ_MODES:
            raise ValueError(f"CachedFeatureDataset: read_mode={read_mode!r}, expected one of "
                             f"{FeatureCache.READ_MODES}")
        self.read_mode = read_mode  # see FeatureCache.read
        self.key_config = feature_key(frontend, dataset)
        self._folder: Path | None = None
        # per-row identity read once from the table (a pandas row lookup costs more than a hit)
        table = dataset.table
        frame = table.frame
        self._clip_ids = [str(c) for c in frame["clip_id"].tolist()]
        self._rel_paths = [str(p) for p in frame["path"].tolist()]
        self._audio_paths = [os.path.join(table.root, p) for p in self._rel_paths]
        self._segments = [[str(v) for v in frame[c].tolist()] if c in frame.columns else
                          [""] * len(frame) for c in ("start_s", "duration_s")]

    def __len__(self) -> int:
        return len(self.dataset)

    def fingerprint(self, i: int) -> str:
        """Identity of clip ``i``'s audio: table path, file size, mtime (one ``stat`` per call,
        so replaced audio is seen at once), segment bounds."""
        try:
            st = os.stat(self._audio_paths[i])
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        return f"{self._rel_paths[i]}|{stamp}|{self._segments[0][i]}|{self._segments[1][i]}"

    def entry(self, i: int) -> Path:
        """Cache file of clip ``i`` (the key's folder is built once)."""
        if self._folder is None:
            self._folder = self.cache.folder(self.key_config)
        return self.cache.entry(self._folder, self._clip_ids[i], self.fingerprint(i))

    @torch.no_grad()
    def compute(self, waves: torch.Tensor) -> torch.Tensor:
        """Front end on ``(B, T)`` (or ``(S, T)``) waves -> CPU float32 features."""
        was_training = self.frontend.training
        self.frontend.eval()
        try:
            return self.frontend(waves.to(self.device)).float().cpu()
        finally:
            self.frontend.train(was_training)

    def __getitem__(self, i: int) -> dict:
        cid = self._clip_ids[i]
        path = self.entry(i)
        arr = self.cache.read(path, self.read_mode)
        if arr is None:
            item = self.dataset[i]
            try:
                feats = self.compute(item["wave"])
            except ValueError as exc:
                raise ValueError(f"clip {cid!r} ({self._audio_paths[i]}): {exc}") from exc
            atomic_save_npy(path, np.ascontiguousarray(feats.numpy()))
            arr = feats.numpy()
        item = {"features": torch.from_numpy(arr), "index": i, "clip_id": cid}
        target = self.dataset.target_of(i)
        if target is not None:
            item["target"] = target
        return item

    def precompute(self, batch_size: int = 16, num_workers: int = 0, progress: bool = False) -> int:
        """Fill the cache in batches (batched front end); returns the number of clips computed.

        Needs fixed-length clips (``clip_seconds`` set) when ``batch_size > 1``.
        """
        todo = [i for i in range(len(self)) if self.cache.read(self.entry(i), "mmap") is None]  # no copy
        if not todo:
            return 0
        if batch_size > 1 and self.dataset.clip_samples is None:
            raise CacheError(f"precompute(batch_size={batch_size}) needs fixed-length clips; "
                             f"dataset of table {self.dataset.table.name!r} has clip_seconds=None")
        subset = torch.utils.data.Subset(self.dataset, todo)
        loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, num_workers=num_workers,
                                             collate_fn=_collate_waves)
        if progress:
            from audiorepro.progress import tqdm
            loader = tqdm(loader, desc=f"features {self.cache.key(self.key_config)}")
        done = 0
        for batch in loader:
            waves = batch["wave"]
            flat = waves.reshape(-1, waves.shape[-1])  # segmented: (B*S, T_seg)
            feats = self.compute(flat)
            feats = feats.reshape(*waves.shape[:-1], *feats.shape[1:])
            for j, idx in enumerate(batch["index"]):
                atomic_save_npy(self.entry(idx), np.ascontiguousarray(feats[j].numpy()))
            done += len(batch["index"])
        return done


def _collate_waves(items: list[dict]) -> dict:
    return {"wave": torch.stack([it["wave"] for it in items]),
            "index": [int(it["index"]) for it in items],
            "clip_id": [str(it["clip_id"]) for it in items]}
