"""Helpers shared by the Debian builders: audio conversion, fixed hash splits, file naming.

All clips are written as 16 kHz mono 16-bit FLAC with :func:`audiorepro.data.audio.save_audio`
(multi-channel audio averaged to mono, other rates resampled, by
:func:`audiorepro.data.audio.load_audio`).

Splits are fixed by a hash of a documented key (never by a random generator): the key's
SHA-1 modulo 100 is a bucket; buckets ``[0, test)`` are ``test``, ``[test, test + valid)`` are
``valid``, the rest ``train``. The same key always lands in the same split, whatever else is in
the table, so clips that share a key (e.g. one prompt in five languages) share a split.
"""
from __future__ import annotations

import hashlib
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import soundfile as sf

from ... import paths
from ..audio import AudioFileError, load_audio, save_audio

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000


def stable_bucket(key: str, buckets: int = 100) -> int:
    """Bucket in ``[0, buckets)`` of ``key`` from its SHA-1 (the same on every machine)."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:12], 16) % buckets


def hash_split(key: str, valid_pct: int = 10, test_pct: int = 20) -> str:
    """``train`` / ``valid`` / ``test`` of ``key``: ``test_pct`` % test, ``valid_pct`` % valid."""
    if not (0 <= valid_pct and 0 <= test_pct and valid_pct + test_pct <= 100):
        raise ValueError(f"hash_split: bad percentages valid_pct={valid_pct}, test_pct={test_pct}")
    b = stable_bucket(key)
    if b < test_pct:
        return "test"
    if b < test_pct + valid_pct:
        return "valid"
    return "train"


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """File-name-safe version of ``text`` (runs of other characters become ``_``)."""
    out = _SAFE.sub("_", text).strip("_")
    return out or "x"


@dataclass
class ConvertJob:
    """Convert ``src`` (any libsndfile format) to a 16 kHz mono FLAC at ``dst``."""

    src: Path
    dst: Path


def convert_one(job: ConvertJob) -> float:
    """Run one job (skipped when ``dst`` already exists); returns the clip duration in seconds."""
    if job.dst.is_file() and job.dst.stat().st_size > 0:
        try:
            return float(sf.info(str(job.dst)).duration)
        except (RuntimeError, sf.LibsndfileError):
            pass  # half-written file from an interrupted build: convert again
    wave, _ = load_audio(job.src, SAMPLE_RATE)
    save_audio(job.dst, wave, SAMPLE_RATE)
    return wave.shape[-1] / SAMPLE_RATE


def shown(text: object) -> str:
    """``text`` (a path or a message holding one) with the project home left out, so a warning
    shown on a published page carries no machine path."""
    return str(text).replace(f"{paths.home()}/", "")


def convert_all(jobs: Sequence[ConvertJob], workers: int = 2) -> list[float | None]:
    """Convert every job (``workers`` threads). Returns durations (s), ``None`` for a source file
    that cannot be decoded (logged at WARNING with the file name and reason)."""

    def safe(job: ConvertJob) -> float | None:
        try:
            return convert_one(job)
        except AudioFileError as exc:
            log.warning("skipped unusable audio file: %s", shown(exc))
            return None

    with quiet_audio_log():
        if workers <= 1 or len(jobs) < 8:
            return [safe(j) for j in jobs]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(safe, jobs))


@contextmanager
def quiet_audio_log() -> Iterator[None]:
    """Silence load_audio's per-file resample/down-mix warnings: converting is the purpose here."""
    audio_log = logging.getLogger("audiorepro.data.audio")
    old_level = audio_log.level
    audio_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        audio_log.setLevel(old_level)


def finish_rows(rows: list[dict], jobs: Sequence[ConvertJob], workers: int = 2) -> "pd.DataFrame":
    """Convert ``jobs`` (``jobs[i]`` belongs to ``rows[i]``), drop rows whose audio could not be
    decoded, add ``length_s`` (clip length in seconds) and return the frame."""
    import pandas as pd

    if len(rows) != len(jobs):
        raise ValueError(f"finish_rows: {len(rows)} rows but {len(jobs)} conversion jobs")
    lengths = convert_all(jobs, workers)
    kept = []
    for row, length in zip(rows, lengths):
        if length is not None:
            kept.append({**row, "length_s": round(float(length), 4)})
    return pd.DataFrame(kept)
