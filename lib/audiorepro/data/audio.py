"""Audio file I/O with errors that name the bad file.

Handling that is documented rather than an error (logged at WARNING once per process for each
kind of conversion, naming the first file it applied to, so a table of 1,000 clips gives one line):
stereo / multi-channel -> mean over channels (once per channel count); a sample rate other than
the requested one -> resampled with ``torchaudio.functional.resample`` (once per (file rate,
requested rate) pair). A path ``"<file>.h5#<row>"`` reads row ``row`` of a PANNs-style packed
HDF5 file (int16 ``waveform`` dataset).

Errors (``AudioFileError``, naming the file): missing file, a directory in place of the file,
unreadable/corrupt file, a truncated file (fewer frames than its header declares for the
requested segment), zero samples, NaN or infinite samples. Bad arguments (``ValueError`` naming
the parameter and the file): ``sample_rate`` not a positive integer, ``start_s`` negative or not
finite, ``duration_s`` not positive.
"""
from __future__ import annotations

import logging
import math
import numbers
import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from ..fileio import atomic_write

log = logging.getLogger(__name__)


class AudioFileError(IOError):
    """An audio file cannot be used; the message names the file and the reason."""


def check_sample_rate(value: object, name: str = "sample_rate", where: str = "") -> int:
    """``value`` as a positive int; ``ValueError`` naming ``name`` (and ``where``) otherwise.

    Integral floats (``16000.0``) are accepted; booleans, fractions, zero and negatives are not.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and \
        math.isfinite(float(value)) and float(value) == int(value) and int(value) > 0
    if not ok:
        raise ValueError(f"{name}={value!r} must be a positive integer (Hz)"
                         + (f" ({where})" if where else ""))
    return int(value)


def resample(wave: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Resample (..., T) ``wave`` from ``orig_sr`` to ``new_sr`` (torchaudio's sinc interpolation)."""
    orig_sr = check_sample_rate(orig_sr, "orig_sr", "resample")
    new_sr = check_sample_rate(new_sr, "new_sr", "resample")
    if orig_sr == new_sr:
        return wave
    return AF.resample(wave, orig_sr, new_sr)


def _check_segment(path: object, start_s: float, duration_s: float | None) -> None:
    if not isinstance(start_s, numbers.Real) or isinstance(start_s, bool) \
            or not math.isfinite(float(start_s)) or start_s < 0:
        raise ValueError(f"load_audio({path}): start_s={start_s!r} must be a finite number >= 0 "
                         f"(seconds from the start of the file)")
    if duration_s is not None and (not isinstance(duration_s, numbers.Real)
                                   or isinstance(duration_s, bool)
                                   or not math.isfinite(float(duration_s)) or duration_s <= 0):
        raise ValueError(f"load_audio({path}): duration_s={duration_s!r} must be a finite number "
                         f"> 0 or None (to the end of the file)")


#: WAVE format tags whose block align is one frame: PCM, IEEE float, A-law, mu-law, extensible.
_FRAME_ALIGNED_WAV_TAGS = (0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE)


def wav_declared_frames(path: str | os.PathLike) -> int | None:
    """Frames a RIFF/WAVE header declares (``data`` chunk size / block align), or ``None`` when
    the file is not a plain RIFF WAVE, the size is a streaming placeholder (0 or 0xFFFFFFFF, RF64)
    or the chunks cannot be walked. libsndfile silently shortens a truncated WAV to the bytes
    present, so this is what a truncation check compares against."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = None
            for _ in range(64):   # a WAV has a handful of chunks before "data"
                hdr = f.read(8)
                if len(hdr) < 8:
                    return None
                cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
                if cid == b"fmt ":
                    fmt = f.read(size + (size & 1))
                    if len(fmt) < 14:
                        return None
                    tag, block_align = struct.unpack("<H", fmt[:2])[0], struct.unpack("<H", fmt[12:14])[0]
                    if tag not in _FRAME_ALIGNED_WAV_TAGS:
                        return None   # compressed (ADPCM, GSM ...): a block holds many frames
                elif cid == b"data":
                    if not block_align or size in (0, 0xFFFFFFFF):
                        return None
                    return size // block_align
                else:
                    f.seek(size + (size & 1), os.SEEK_CUR)
    except OSError:
        return None
    return None


def load_audio(path: str | os.PathLike, sample_rate: int | None = None,
               start_s: float = 0.0, duration_s: float | None = None) -> tuple[torch.Tensor, int]:
    """Read a mono float32 waveform of shape (T,).

    Args:
        path: audio file (anything libsndfile reads: WAV, FLAC, OGG, ...).
        sample_rate: resample to this rate; ``None`` keeps the file's rate.
        start_s, duration_s: read only this segment (seconds; ``start_s`` >= 0, ``duration_s``
            > 0 or ``None`` = to the end).
    Returns:
        (waveform (T,), sample_rate)
    Raises:
        AudioFileError: missing file, directory, undecodable or truncated file, no samples,
            NaN/infinite samples (the message names the file).
        ValueError: a bad ``sample_rate`` / ``start_s`` / ``duration_s`` (names it and the file).
    """
    if sample_rate is not None:
        sample_rate = check_sample_rate(sample_rate, "sample_rate", f"load_audio({path})")
    _check_segment(path, start_s, duration_s)
    if is_hdf5_row(path):
        data, sr = _read_hdf5_row(path, start_s, duration_s)
        path = Path(str(path))
    else:
        path = Path(path)
        if path.is_dir():
            raise AudioFileError(f"audio path {path} is a directory, not an audio file")
        if not path.is_file():
            raise AudioFileError(f"audio file not found: {path}")
        try:
            info = sf.info(str(path))
            start = int(round(start_s * info.samplerate))
            stop = None if duration_s is None else start + int(round(duration_s * info.samplerate))
            data, sr = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)
        except (RuntimeError, sf.LibsndfileError, ValueError, EOFError) as exc:
            raise AudioFileError(f"cannot decode audio file {path}: {exc}") from exc
        _check_complete(path, info.frames, start, stop, data.shape[0])
    if data.shape[0] == 0:
        raise AudioFileError(f"audio file {path} has no samples"
                             + (f" in the segment starting at {start_s} s" if start_s else ""))
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise AudioFileError(f"audio file {path} contains {bad} NaN/infinite samples")
    if data.shape[1] > 1:
        _warn_once(("channels", data.shape[1]),
                   f"{path}: {data.shape[1]} channels, averaged to mono (logged once per process; "
                   f"further {data.shape[1]}-channel files are averaged without a message)")
        data = data.mean(axis=1, keepdims=True)
    wave = torch.from_numpy(np.ascontiguousarray(data[:, 0]))
    if sample_rate is not None and sr != sample_rate:
        _warn_once(("resample", int(sr), sample_rate),
                   f"{path}: sample rate {sr} Hz resampled to {sample_rate} Hz (logged once per "
                   f"process; further {sr} Hz files are resampled without a message)")
        wave = resample(wave, sr, sample_rate)
        sr = sample_rate
    return wave, int(sr)


def _check_complete(path: Path, frames: int, start: int, stop: int | None, got: int) -> None:
    """Raise when fewer frames were read than the header declares for ``[start, stop)``."""
    declared = wav_declared_frames(path)
    if declared is None:
        declared = int(frames)   # libsndfile's count (e.g. FLAC STREAMINFO)
    if declared <= 0:
        return                   # length not declared: nothing to compare
    end = declared if stop is None else min(stop, declared)
    expected = max(end - start, 0)
    if got < expected:
        raise AudioFileError(f"audio file {path} is truncated: its header declares {declared} "
                             f"frames, so {expected} were expected from frame {start}, but only "
                             f"{got} could be read")


HDF5_SUFFIXES = (".h5", ".hdf5")
#: Sample rate assumed for packed HDF5 clips without a ``sample_rate`` attribute (PANNs packs
#: AudioSet at 32 kHz).
HDF5_DEFAULT_SAMPLE_RATE = 32000


def split_hdf5_path(path: str | os.PathLike) -> tuple[Path, int]:
    """``"dir/file.h5#12"`` -> ``(Path("dir/file.h5"), 12)``; raises if there is no ``#index``."""
    text = str(path)
    if "#" not in text:
        raise ValueError(f"not an HDF5 row path (file.h5#index): {text!r}")
    file, idx = text.rsplit("#", 1)
    try:
        return Path(file), int(idx)
    except ValueError:
        raise ValueError(f"HDF5 row path {text!r}: {idx!r} is not an integer row") from None


def read_hdf5_clip(path: str | os.PathLike, dataset: str = "waveform") -> tuple[np.ndarray, int | None]:
    """Read one packed clip ``"<file>.h5#<row>"`` -> (float32 waveform (T,), sample rate or None).

    int16 data are scaled by 1/32768 (PANNs stores ``float32_to_int16`` of [-1, 1] audio).
    The hook ``load_audio`` needs for ``#`` paths.
    """
    import h5py  # only for packed HDF5 rows

    file, idx = split_hdf5_path(path)
    if not file.is_file():
        raise FileNotFoundError(f"HDF5 file not found: {file}")
    with h5py.File(file, "r") as hf:
        if dataset not in hf:
            raise KeyError(f"{file}: no dataset {dataset!r}")
        n = hf[dataset].shape[0]
        if not 0 <= idx < n:
            raise IndexError(f"{file}: row {idx} out of range 0..{n - 1}")
        x = np.asarray(hf[dataset][idx])
        sr = int(hf.attrs["sample_rate"]) if "sample_rate" in hf.attrs else None
    wave = x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32)
    return wave, sr


def is_hdf5_row(path: str | os.PathLike) -> bool:
    """True for the packed-clip convention ``"<file>.h5#<row>"`` (see data.adapters.audioset)."""
    text = str(path)
    return "#" in text and text.rsplit("#", 1)[0].lower().endswith(HDF5_SUFFIXES)


def _read_hdf5_row(path: str | os.PathLike, start_s: float, duration_s: float | None) -> tuple[np.ndarray, int]:
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
    atomic_write(path, lambda f: sf.write(f, data, sample_rate, subtype="PCM_16",
                                          format=path.suffix[1:].upper()), binary=True)
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
