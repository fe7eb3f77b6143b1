"""Machinery shared by the miniature builders: where the audio comes from, how files are written,
and the cached build (temporary folder renamed into place, done marker with the recipe digest).

Audio origin (:class:`AudioLibrary`): every clip is described by a :class:`Sound` - a synthetic
event class of :mod:`audiorepro.data.synthetic` with fixed factors, plus Debian candidates
(:class:`Pick`: a source of :mod:`audiorepro.data.debian` and regular expressions its clip-table
columns must match). When the source is built (``debian.is_built``) the k-th use of a pick takes
its k-th matching recording (sorted by clip id; never the same recording twice), resampled to
the miniature's rate; otherwise, or when the candidates run out, the synthetic event is rendered
with a seed derived from the file's name (deterministic). Each written file's origin is recorded
and listed in the miniature's ``MINIATURE.txt``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import soundfile as sf

from ... import paths
from ...caching import code_digest, stable_digest
from ...fileio import atomic_write, atomic_write_text

log = logging.getLogger("audiorepro.data.miniatures")

#: bump when a builder changes what it writes in a way the code digest would not show
VERSION = "miniatures-1"
#: the code whose source enters the recipe digest (a changed generator rebuilds the miniatures)
RECIPE_CODE = ("audiorepro.data.miniatures", "audiorepro.data.synthetic", "audiorepro.data.synth")
MARKER = ".miniature.json"
README = "MINIATURE.txt"
PEAK = 0.89


class MiniatureError(RuntimeError):
    """A miniature cannot be built; the message names the dataset and the file."""


# ================================================================ what a clip should sound like
@dataclass(frozen=True)
class Pick:
    """Debian recordings that fit a clip: rows of source ``source`` whose columns match.

    ``match``: ``(column, regex)`` pairs, all searched case-insensitively in the cell text.
    ``rank_by``/``rank``: keep only rows whose ``rank_by`` value is the ``rank``-th distinct value
    (sorted) among the matching rows - one speaker, one voice pack, one program.
    """

    source: str
    match: tuple[tuple[str, str], ...] = ()
    rank_by: str = ""
    rank: int = 0

    def describe(self) -> str:
        cond = ", ".join(f"{c}~/{r}/" for c, r in self.match)
        rank = f", {self.rank_by} #{self.rank}" if self.rank_by else ""
        return f"debian:{self.source}[{cond}{rank}]"


def pick(source: str, rank_by: str = "", rank: int = 0, **match: str) -> Pick:
    return Pick(source, tuple(sorted(match.items())), rank_by, rank)


@dataclass(frozen=True)
class Sound:
    """A synthetic event class with fixed factors, and the Debian picks tried first."""

    synth: str
    factors: tuple[tuple[str, Any], ...] = ()
    picks: tuple[Pick, ...] = ()

    def with_factors(self, **factors: Any) -> "Sound":
        merged = dict(self.factors)
        merged.update(factors)
        return Sound(self.synth, tuple(sorted(merged.items())), self.picks)


def sound(synth: str, *picks: Pick, **factors: Any) -> Sound:
    return Sound(synth, tuple(sorted(factors.items())), tuple(picks))


def seed_of(text: str) -> int:
    """A 31-bit seed from ``text`` (sha1; the same on every machine)."""
    return int(hashlib.sha1(text.encode("utf8")).hexdigest()[:8], 16) & 0x7FFFFFFF


def fake_id(text: str, length: int, alphabet: str = "0123456789abcdef") -> str:
    """A deterministic id of ``length`` characters of ``alphabet`` derived from ``text``."""
    digest = hashlib.sha256(text.encode("utf8")).digest()
    while len(digest) < length:
        digest += hashlib.sha256(digest).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


def fake_number(text: str, low: int, high: int) -> int:
    """A deterministic integer in ``[low, high)`` derived from ``text``."""
    return low + seed_of(text) % (high - low)


# ============================================================================ the audio library
def debian_fingerprint(source: str) -> str | None:
    """Digest of a built Debian source's done marker, ``None`` when it is not built."""
    from ..debian import build as debian_build

    if not debian_build.is_built(source):
        return None
    marker = debian_build.source_dir(source) / ".done.json"
    return hashlib.sha256(marker.read_bytes()).hexdigest()[:16]


@dataclass
class Origin:
    file: str
    text: str
    kind: str          # "synthetic" | "debian:<source>", several joined with "+"


class AudioLibrary:
    """Audio for one miniature build (see the module docstring); records every file's origin."""

    def __init__(self, dataset: str, sources: Iterable[str] = ()):
        from ..debian import build as debian_build
        from ..cliptable import ClipTable

        self.dataset = dataset
        self.tables: dict[str, Any] = {}
        for source in sources:
            if debian_build.is_built(source):
                self.tables[source] = ClipTable.read(debian_build.table_path(source), name=source)
        self._candidates: dict[Pick, list[int]] = {}
        self._used: dict[Pick, int] = defaultdict(int)
        self.origins: list[Origin] = []

    # ------------------------------------------------------------------ Debian candidates
    def candidates(self, p: Pick) -> list[int]:
        """Rows of ``p.source``'s table matching ``p`` (sorted by clip id); [] when not built."""
        if p in self._candidates:
            return self._candidates[p]
        table = self.tables.get(p.source)
        rows: list[int] = []
        if table is not None:
            frame = table.frame
            mask = np.ones(len(frame), bool)
            for col, regex in p.match:
                if col not in frame.columns:
                    mask[:] = False
                    break
                pattern = re.compile(regex, re.IGNORECASE)
                mask &= np.array([bool(pattern.search(str(v))) for v in frame[col]], bool)
            idx = np.flatnonzero(mask)
            if p.rank_by and len(idx):
                values = sorted({str(frame[p.rank_by].iloc[i]) for i in idx}) \
                    if p.rank_by in frame.columns else []
                keep = values[p.rank] if p.rank < len(values) else None
                idx = [i for i in idx if keep is not None and str(frame[p.rank_by].iloc[i]) == keep]
            rows = sorted((int(i) for i in idx), key=lambda i: str(frame["clip_id"].iloc[i]))
        self._candidates[p] = rows
        return rows

    def _next_debian(self, s: Sound, sr: int, extra: Mapping[str, str] | None = None
                     ) -> tuple[np.ndarray, str, dict] | None:
        """The next unused Debian recording for ``s`` (its picks in order) at ``sr``, or
        ``None``. ``extra``: more ``column -> regex`` conditions (e.g. a pitch)."""
        for p in s.picks:
            q = p if not extra else Pick(
                p.source, tuple(sorted({**dict(p.match), **extra}.items())), p.rank_by, p.rank)
            rows = self.candidates(q)
            k = self._used[q]
            if k < len(rows):
                self._used[q] = k + 1
                table = self.tables[q.source]
                i = rows[k]
                row = {c: table.frame[c].iloc[i] for c in table.frame.columns}
                return self._load(table.audio_path(i), sr), q.source, row
        return None

    def _load(self, path: Path, sr: int) -> np.ndarray:
        from ..audio import load_audio
        from ..debian.common import quiet_audio_log

        with quiet_audio_log():
            wave, _ = load_audio(path, sr)
        return np.asarray(wave, dtype=np.float32)

    # ------------------------------------------------------------------ clips
    def clip(self, s: Sound, seconds: float, sr: int, uid: str, offset_s: float = 0.0,
             event_s: float | None = None, extra_match: Mapping[str, str] | None = None
             ) -> tuple[np.ndarray, str, str, dict | None]:
        """A ``seconds`` long clip at ``sr`` holding one sound starting at ``offset_s``.

        Returns ``(wave, origin text, origin kind, Debian row or None)``. A Debian recording
        longer than the room is cut; a synthetic event lasts ``event_s`` (default: the room).
        """
        n = int(round(seconds * sr))
        start = int(round(offset_s * sr))
        out = np.zeros(n, np.float32)
        got = self._next_debian(s, sr, extra_match)
        if got is not None:
            wave, source, row = got
            _place(out, wave, start)
            origin = (f"Debian {row.get('source', source)} (audiorepro debian source {source!r}), "
                      f"clip {row.get('clip_id')}")
            return out, origin, f"debian:{source}", row
        dur = min(event_s if event_s is not None else seconds - offset_s, seconds - offset_s)
        wave, origin = self.synthetic(s, dur, sr, uid)
        _place(out, wave, start)
        return out, origin, "synthetic", None

    def synthetic(self, s: Sound, seconds: float, sr: int, uid: str) -> tuple[np.ndarray, str]:
        from ..synthetic import event_waveform

        factors = dict(s.factors)
        factors["duration_s"] = round(float(seconds), 3)
        seed = seed_of(f"{VERSION}:{self.dataset}:{uid}")
        wave = event_waveform(s.synth, factors, sr, seed=seed)
        desc = ", ".join(f"{k}={v}" for k, v in sorted(factors.items()) if k != "duration_s")
        return wave, (f"synthetic {s.synth!r} event ({desc}{', ' if desc else ''}seed {seed}; "
                      f"audiorepro.data.synthetic.event_waveform)")

    def utterance(self, s: Sound, seconds: float, sr: int, uid: str, gap_s: float = 0.2
                  ) -> tuple[np.ndarray, str, str]:
        """About ``seconds`` of speech: successive Debian recordings of the pick joined with
        ``gap_s`` pauses until the length is reached (then cut), else one synthetic event."""
        n = int(round(seconds * sr))
        parts, ids, source = [], [], None
        total = 0
        while total < n:
            got = self._next_debian(s, sr)
            if got is None:
                break
            wave, source, row = got
            parts += [wave, np.zeros(int(gap_s * sr), np.float32)]
            ids.append(str(row.get("clip_id")))
            total += len(wave) + int(gap_s * sr)
        if parts and total >= n:
            wave = np.concatenate(parts)[:n]
            return wave, (f"Debian source {source!r}: clips {', '.join(ids)} joined with "
                          f"{gap_s} s pauses"), f"debian:{source}"
        if parts:   # not enough material: give the recordings back to no one, use synthesis
            log.info("%s %s: only %d Debian recordings for %s; synthetic instead", self.dataset,
                     uid, len(ids), s.picks)
        wave, origin = self.synthetic(s, seconds, sr, uid)
        return wave, origin, "synthetic"

    def record(self, file: str, text: str, kind: str) -> None:
        self.origins.append(Origin(file, text, kind))

    def origin_counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for o in self.origins:
            counts[o.kind] += 1
        return dict(sorted(counts.items()))


def _place(out: np.ndarray, wave: np.ndarray, start: int) -> None:
    if start >= len(out):
        return
    m = min(len(wave), len(out) - start)
    out[start:start + m] += wave[:m]


def mix(parts: Sequence[tuple[np.ndarray, float]], n: int, sr: int) -> np.ndarray:
    """Sum waves placed at their start times (seconds) into ``n`` samples."""
    out = np.zeros(n, np.float32)
    for wave, start_s in parts:
        _place(out, np.asarray(wave, np.float32), int(round(start_s * sr)))
    return out


def silence_floor(n: int, seed: int, level: float = 3e-4) -> np.ndarray:
    """Very low white noise (a recording's noise floor), deterministic."""
    return (np.random.default_rng(seed).standard_normal(n) * level).astype(np.float32)


# ================================================================================== writers
def write_audio(root: Path, rel: str, wave: np.ndarray, sr: int, subtype: str = "PCM_16",
                channels: int = 1, fmt: str | None = None) -> Path:
    """Write ``wave`` (mono float) with soundfile: peak scaled to at most 0.89, ``channels`` 2
    gives a second channel that is a delayed, quieter copy (a plausible stereo file)."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.asarray(wave, np.float64)
    if not np.isfinite(x).all():
        raise MiniatureError(f"{path}: non-finite samples generated")
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > PEAK:
        x = x * (PEAK / peak)
    if channels == 2:
        d = max(1, int(0.0007 * sr))
        x = np.stack([x, 0.8 * np.concatenate([np.zeros(d), x[:-d]])], axis=1)
    elif channels != 1:
        raise ValueError(f"{path}: channels must be 1 or 2, got {channels}")
    sf.write(str(path), x, sr, subtype=subtype, format=fmt)
    return path


def csv_text(header: Sequence[str] | None, rows: Iterable[Sequence[Any]],
             quoting: int = csv.QUOTE_MINIMAL, lineterminator: str = "\n") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, quoting=quoting, lineterminator=lineterminator)
    if header is not None:
        w.writerow(header)
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def write_text(root: Path, rel: str, text: str, encoding: str = "utf-8") -> Path:
    path = root / rel
    if encoding in ("utf-8", "utf8"):
        return atomic_write_text(path, text)
    data = text.encode(encoding)
    return atomic_write(path, lambda f: f.write(data), binary=True)


def write_json(root: Path, rel: str, obj: Any, indent: int | None = None) -> Path:
    return write_text(root, rel, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


# ====================================================================== the miniature's spec
@dataclass(frozen=True)
class MiniatureSpec:
    """One miniature: how to build it and what to say about it.

    ``builder(root, library)`` writes the dataset's files under ``root``. ``options`` are the
    adapter options that read it; those named in ``path_options`` are file names relative to the
    miniature's root. ``params`` enter the recipe digest.
    """

    name: str
    title: str
    distribution: str
    builder: Callable[[Path, AudioLibrary], None]
    adapter: str
    audio_format: str
    differences: tuple[str, ...]
    quirks: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    path_options: tuple[str, ...] = ()
    debian_sources: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)

    def adapter_options(self, root: str | os.PathLike) -> dict[str, Any]:
        """The options to pass to ``adapters.adapt(self.adapter, root, **options)``."""
        out = dict(self.options)
        for key in self.path_options:
            out[key] = str(Path(root) / out[key])
        return out

    def recipe(self) -> dict[str, Any]:
        return {"name": self.name, "version": VERSION, "params": dict(self.params),
                "adapter": self.adapter, "options": dict(self.options),
                "code": code_digest(RECIPE_CODE),
                "debian": {s: debian_fingerprint(s) for s in self.debian_sources}}


def default_out() -> Path:
    return paths.data_dir("miniatures")


def read_marker(root: Path) -> dict | None:
    try:
        return json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None


def build_spec(spec: MiniatureSpec, out: str | os.PathLike | None = None,
               force: bool = False) -> Path:
    """Build ``spec`` under ``out/<name>`` unless a marker with the same recipe digest is there.

    Files are written into ``out/.<name>.building-<id>`` and the folder is renamed into place at
    the end, so a reader never sees a half-built miniature.
    """
    out = Path(out) if out is not None else default_out()
    root = out / spec.name
    recipe = spec.recipe()
    digest = stable_digest(recipe)
    marker = read_marker(root)
    if not force and marker is not None and marker.get("recipe_digest") == digest:
        return root
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{spec.name}.building-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    t0 = time.perf_counter()
    try:
        library = AudioLibrary(spec.name, spec.debian_sources)
        spec.builder(tmp, library)
        summary = _adapter_summary(spec, tmp)
        seconds = round(time.perf_counter() - t0, 2)
        write_text(tmp, README, _readme(spec, library, digest, summary))
        write_json(tmp, MARKER, {"name": spec.name, "recipe_digest": digest, "recipe": recipe,
                                 "build_seconds": seconds, "origins": library.origin_counts(),
                                 "adapter": summary}, indent=1)
        _swap_into_place(tmp, root, digest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("built miniature %s in %.1f s: %s", spec.name, seconds, root)
    return root


def _swap_into_place(tmp: Path, root: Path, digest: str) -> None:
    old = None
    if root.exists():
        old = root.with_name(f".{root.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            os.replace(root, old)
        except FileNotFoundError:
            old = None
    try:
        os.replace(tmp, root)
    except OSError:
        # another process put a miniature there meanwhile: keep it if it is the same recipe
        marker = read_marker(root)
        shutil.rmtree(tmp, ignore_errors=True)
        if marker is None or marker.get("recipe_digest") != digest:
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _adapter_summary(spec: MiniatureSpec, root: Path) -> dict[str, Any]:
    """Read the built miniature with its adapter: counts for MINIATURE.txt, or the error."""
    from ..adapters import adapt

    adapter_log = logging.getLogger("audiorepro.data.adapters")
    level = adapter_log.level
    adapter_log.setLevel(logging.ERROR)     # its warnings would name the temporary folder
    try:
        table = adapt(spec.adapter, root, **spec.adapter_options(root))
    except Exception as exc:  # reported in MINIATURE.txt; the miniature stays faithful
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}".replace(str(root), "<root>")}
    finally:
        adapter_log.setLevel(level)
    splits = table.frame["split"].value_counts().sort_index()
    return {"ok": True, "rows": len(table), "classes": table.num_classes,
            "splits": {str(k): int(v) for k, v in splits.items()}}


_KIND_TEXT = {"synthetic": "the synthetic sound world of audiorepro (deterministic generators; "
                          "no real recording)"}


def _readme(spec: MiniatureSpec, library: AudioLibrary, digest: str,
            summary: Mapping[str, Any]) -> str:
    counts = library.origin_counts()
    opts = ", ".join(f"{k}={v!r}" for k, v in spec.options.items())
    lines = [
        f"MINIATURE of {spec.title}: this is NOT the real dataset.",
        "",
        f"A tiny copy laid out as the real dataset is distributed ({spec.distribution}), with",
        "made-up clips, so that code written for the real download can be run end to end.",
        f"Built by `python -m audiorepro.data.miniatures build --only {spec.name}`",
        f"(recipe digest {digest}; the folder is rebuilt when the recipe changes).",
        "",
        f"Read it with: audiorepro.data.adapters.adapt({spec.adapter!r}, <this folder>"
        + (f", {opts})" if opts else ")")
        + (f"; {', '.join(spec.path_options)} relative to this folder"
           if spec.path_options else ""),
    ]
    if summary.get("ok"):
        splits = ", ".join(f"{k} {v}" for k, v in summary["splits"].items())
        lines.append(f"The adapter reads {summary['rows']} clips, {summary['classes']} classes "
                     f"({splits}).")
    else:
        lines.append(f"The adapter of this project cannot read it yet: {summary.get('error')}")
    lines += ["", f"Audio format: {spec.audio_format}", "", "Where the audio came from:"]
    if not counts:
        lines.append("  (no audio files)")
    for kind, n in counts.items():
        lines.append(f"  {n:4d} file(s): " + " mixed with ".join(_KIND_TEXT.get(
            k, f"real recordings of the Debian source {k.split(':', 1)[-1]!r} (python -m "
               f"audiorepro.data.debian build)") for k in kind.split("+")))
    if spec.debian_sources:
        built = [s for s in spec.debian_sources if library.tables.get(s) is not None]
        missing = [s for s in spec.debian_sources if s not in built]
        if missing:
            lines.append(f"  Debian source(s) {', '.join(missing)} were not built here, so "
                         f"synthetic audio stands in for them; run `python -m "
                         f"audiorepro.data.debian build --only {' '.join(missing)}` and rebuild.")
    lines += ["", "What differs from the real dataset:"]
    lines += [f"- {d}" for d in spec.differences]
    if spec.quirks:
        lines += ["", "Known quirks of the real dataset reproduced here:"]
        lines += [f"- {q}" for q in spec.quirks]
    lines += ["", "Files and the origin of their audio:"]
    lines += [f"  {o.file}\t{o.text}" for o in library.origins]
    return "\n".join(lines) + "\n"
