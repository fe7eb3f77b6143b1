"""Audio file I/O with errors that name the bad file.

Handling that is documented rather than an error (each logged once per file at WARNING):
stereo / multi-channel -> mean over channels; a sample rate other than the requested one ->
resampled with ``torchaudio.functional.resample``. A path ``"<file>.h5#<row>"`` reads row ``row``
of a PANNs-style packed HDF5 file (int16 ``waveform`` dataset). Errors (``AudioFileError``): missing file,
unreadable/corrupt/truncated file, zero samples, NaN or infinite samples.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

log = logging.getLogger(__name__)


class AudioFileError(IOError):
    """An audio file cannot be used; the message names the file and the reason."""


def resample(wave: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Resample (..., T) ``wave`` from ``orig_sr`` to ``new_sr`` (torchaudio's sinc interpolation)."""
    if orig_sr == new_sr:
        return wave
    return AF.resample(wave, int(orig_sr), int(new_sr))


def load_audio(path: str | os.PathLike, sample_rate: int | None = None,
               start_s: float = 0.0, duration_s: float | None = None) -> tuple[torch.Tensor, int]:
    """Read a mono float32 waveform of shape (T,).

    Args:
        path: audio file (anything libsndfile reads: WAV, FLAC, OGG, ...).
        sample_rate: resample to this rate; ``None`` keeps the file's rate.
        start_s, duration_s: read only this segment (seconds).
    Returns:
        (waveform (T,), sample_rate)
    """
    if is_hdf5_row(path):
        data, sr = _read_hdf5_row(path, start_s, duration_s)
        path = Path(str(path))
    else:
        path = Path(path)
        if not path.is_file():
            raise AudioFileError(f"audio file not found: {path}")
        try:
            info = sf.info(str(path))
            start = int(round(start_s * info.samplerate))
            stop = None if duration_s is None else start + int(round(duration_s * info.samplerate))
            data, sr = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)
        except (RuntimeError, sf.LibsndfileError, ValueError, EOFError) as exc:
            raise AudioFileError(f"cannot decode audio file {path}: {exc}") from exc
    if data.shape[0] == 0:
        raise AudioFileError(f"audio file {path} has no samples"
                             + (f" in the segment starting at {start_s} s" if start_s else ""))
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise AudioFileError(f"audio file {path} contains {bad} NaN/infinite samples")
    if data.shape[1] > 1:
        _warn_once(path, f"{path}: {data.shape[1]} channels, averaged to mono")
        data = data.mean(axis=1, keepdims=True)
    wave = torch.from_numpy(np.ascontiguousarray(data[:, 0]))
    if sample_rate is not None and sr != sample_rate:
        _warn_once((path, "sr"), f"{path}: sample rate {sr} Hz resampled to {sample_rate} Hz")
        wave = resample(wave, sr, sample_rate)
        sr = sample_rate
    return wave, int(sr)


HDF5_SUFFIXES = (".h5", ".hdf5")
#: Sample rate assumed for packed HDF5 clips without a ``sample_rate`` attribute (PANNs packs
#: AudioSet at 32 kHz).
HDF5_DEFAULT_SAMPLE_RATE = 32000


def is_hdf5_row(path: str | os.PathLike) -> bool:
    """True for the packed-clip convention ``"<file>.h5#<row>"`` (see data.adapters.audioset)."""
    text = str(path)
    return "#" in text and text.rsplit("#", 1)[0].lower().endswith(HDF5_SUFFIXES)


def _read_hdf5_row(path: str | os.PathLike, start_s: float, duration_s: float | None) -> tuple[np.ndarray, int]:
    from .adapters.audioset import read_hdf5_clip

    try:
        wave, sr = read_hdf5_clip(path)
    except (OSError, KeyError, IndexError, ValueError) as exc:
        raise AudioFileError(f"cannot read packed clip {path}: {exc}") from exc
    sr = sr or HDF5_DEFAULT_SAMPLE_RATE
    start = int(round(start_s * sr))
    stop = None if duration_s is None else start + int(round(duration_s * sr))
    return wave[start:stop, None], sr


def save_audio(path: str | os.PathLike, wave: torch.Tensor | np.ndarray, sample_rate: int) -> Path:
    """Write a mono waveform (T,) as FLAC/WAV (by suffix), clipping to [-1, 1]; atomic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
    data = np.clip(data.astype(np.float32), -1.0, 1.0)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    sf.write(str(tmp), data, sample_rate, subtype="PCM_16", format=path.suffix[1:].upper())
    os.replace(tmp, path)
    return path


def fix_length(wave: torch.Tensor, num_samples: int, mode: str = "start",
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Pad with zeros or crop (..., T) to (..., num_samples).

    mode: ``start`` (keep the beginning), ``center`` or ``random`` (random crop offset).
    """
    t = wave.shape[-1]
    if t < num_samples:
        return torch.nn.functional.pad(wave, (0, num_samples - t))
    if t == num_samples:
        return wave
    if mode == "start":
        off = 0
    elif mode == "center":
        off = (t - num_samples) // 2
    elif mode == "random":
        off = int(torch.randint(0, t - num_samples + 1, (1,), generator=generator))
    else:
        raise ValueError(f"fix_length mode must be start/center/random, got {mode!r}")
    return wave[..., off:off + num_samples]


def segment(wave: torch.Tensor, segment_samples: int, hop_samples: int | None = None,
            pad_last: bool = True) -> torch.Tensor:
    """Cut (T,) into (num_segments, segment_samples) windows; the last one zero-padded.

    A clip shorter than one segment gives one padded segment.
    """
    hop = hop_samples or segment_samples
    t = wave.shape[-1]
    if t <= segment_samples:
        return fix_length(wave, segment_samples).unsqueeze(0)
    n = 1 + int(np.ceil((t - segment_samples) / hop)) if pad_last else 1 + (t - segment_samples) // hop
    total = (n - 1) * hop + segment_samples
    wave = fix_length(wave, total)
    return wave.unfold(-1, segment_samples, hop)


_warned: set = set()


def _warn_once(key: object, msg: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(msg)
