"""The synthetic sound world: the book's default data, generated deterministically from a seed.

A *world* is a folder of 10 s, 16 kHz mono clips, each a mixture of 1-4 sound events drawn from a
small ontology (44 classes under 7 parents, :mod:`audiorepro.data.synth.sounds`) over a background
noise whose colour depends on the scene. Everything is pure numpy; nothing is downloaded.

Design decisions (documented here once):

* **Scenes make labels co-occur.** Each clip picks a scene (street, kitchen, living_room, office,
  park, farm, forest, concert, workshop) uniformly; the scene's template gives favoured classes a
  large weight and every other class ``floor_weight``; classes are drawn without replacement.
  Companion rules (thunder -> rain, laughter -> speech, kick_drum -> hi_hat, ...) add realistic pairs.
  So P(a, b) differs strongly from P(a) P(b): there is a label graph to learn.
* **Leaf labels only by default.** ``labels`` holds the event classes. With
  ``parent_labels=True`` the parents (animal, vehicle, music, domestic, human, nature, tools) are
  added as AudioSet-style ontology labels; the vocabulary is then parents + classes.
* **Loudness and SNR.** Every event is normalised to the same *active* level (90th percentile
  of 50 ms frame RMS) times ``10**(gain_db/20)``; the loudest event of a clip has gain 0 dB, the
  others ``gain_db`` in ``[gain_db_range[0], 0]``. ``snr_db`` is the ratio of that 0 dB level to
  the RMS of the background. The mix is scaled down only if its peak would exceed 0.95.
* **Factors.** Per event: pitch (``midi`` integer, ``pitch_hz``; empty for unpitched classes),
  ``timbre`` (bright / dark / hollow / nasal: a harmonic profile for tonal sources, a spectral
  tilt for noise sources), ``rate_hz`` (pulses / notes / strokes per second; empty for classes
  without rhythm), ``gain_db``. The clip table copies the factors of the *main* (loudest) event.
* **Pseudo-video.** A (40, D) float16 stream per 10 s clip (one vector per 250 ms chunk): a scene
  vector plus, for every *visible* event, its class prototype (+ per-event variation) weighted by
  the fraction of the chunk covered by the event's visual interval, which is the audio interval
  shifted by ``av_offset_s`` plus Gaussian jitter; events are invisible with ``p_missing``;
  visual-only distractor events (no sound, not in ``labels``) appear with ``p_distractor``; Gaussian
  noise of std ``visual_noise`` is added. Audio and visual randomness use separate seed streams:
  changing a visual parameter leaves audio, labels and captions unchanged.
* **Determinism.** Clip ``i`` of world ``seed`` depends only on ``(seed, i)`` and the parameters,
  so results do not depend on the number of worker processes.

Files of a world folder: ``audio/<clip_id>.flac``, ``clips.csv`` + ``clips.classes.txt`` (a
:class:`~audiorepro.data.cliptable.ClipTable`), ``events.csv`` (one row per event, including
distractors with ``audible=False``), ``visual.npy`` (N, 40, D) float16 in clips.csv order,
``ontology.csv`` (class, parent, description), ``world.json`` (all parameters + version) and the
done marker ``.done`` written last.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing as mp
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import paths
from ..fileio import atomic_save_npy, atomic_write_text
from .audio import save_audio
from .cliptable import ClipTable, join_captions, join_labels
from .synth import dsp
from .synth.captions import CaptionEvent, make_captions
from .synth.sounds import CLASS_NAMES, CLASSES, COMPANIONS, PARENTS, SCENE_BY_NAME, SCENES, get_class

__all__ = [
    "VERSION", "WorldParams", "EventSpec", "ClipSpec", "World", "sample_event_factors",
    "event_waveform", "sample_clip_spec", "clip_spec", "render_clip", "render_visual",
    "clip_captions", "reworded_captions", "class_prototypes", "make_world", "load_world", "default_world",
    "world_dir_name", "ontology_frame", "assign_splits", "visual_variant", "make_event_table", "CLASS_NAMES",
    "report_duplicate_audio",
]

log = logging.getLogger(__name__)

#: Bump when the generator changes in a way that alters the output (invalidates caches).
VERSION = "synthetic-world-1.0"
#: Active RMS of an event at gain 0 dB (-20 dBFS).
REF_LEVEL = 0.1
PEAK_LIMIT = 0.95
DONE_MARKER = ".done"


class WorldError(RuntimeError):
    """A world folder is missing, incomplete or inconsistent; the message names the file."""


# =========================================================================== parameters
@dataclass(frozen=True)
class WorldParams:
    """Parameters of a synthetic world (everything except size, seed, length and rate).

    Attributes:
        n_events_probs: probabilities of 1, 2, 3, 4 drawn events per clip (companions may add
            more, up to ``len(n_events_probs)`` events).
        snr_db_range: uniform range of the clip SNR (0 dB event level vs. background RMS).
        gain_db_range: uniform range of the gains of the non-loudest events.
        floor_weight: scene weight of classes the scene does not list (0 forbids them).
        companion_scale: multiplies the companion probabilities (0 disables companions).
        parent_labels: add parent labels to ``labels`` (ontology-style multi-label).
        n_captions: captions per clip.
        visual_dim: dimension D of the pseudo-visual vectors.
        chunk_seconds: visual chunk length (0.25 s -> 40 chunks per 10 s).
        av_offset_s: constant audio-visual offset (visual = audio time + offset), in seconds.
        visual_jitter_s: std of the Gaussian jitter of visual onsets/offsets, in seconds.
        p_missing: probability that a sounding event is not visible.
        p_distractor: probability of a visual-only distractor (a second one with this
            probability again).
        visual_noise: std of the Gaussian noise added to every visual dimension.
        visual_instance_std: std of the per-event variation of a class prototype.
        scene_visual_scale: weight of the (constant) scene vector in the visual stream.
        visual_seed: seed of the class / scene prototype vectors (shared by all worlds).
    """

    n_events_probs: tuple[float, ...] = (0.3, 0.35, 0.22, 0.13)
    snr_db_range: tuple[float, float] = (6.0, 24.0)
    gain_db_range: tuple[float, float] = (-15.0, 0.0)
    floor_weight: float = 0.05
    companion_scale: float = 1.0
    parent_labels: bool = False
    n_captions: int = 5
    visual_dim: int = 128
    chunk_seconds: float = 0.25
    av_offset_s: float = 0.0
    visual_jitter_s: float = 0.1
    p_missing: float = 0.1
    p_distractor: float = 0.2
    visual_noise: float = 0.5
    visual_instance_std: float = 0.3
    scene_visual_scale: float = 0.5
    visual_seed: int = 1234

    def __post_init__(self) -> None:
        for name in ("n_events_probs", "snr_db_range", "gain_db_range"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        p = np.asarray(self.n_events_probs)
        if p.ndim != 1 or len(p) == 0 or (p < 0).any() or not np.isclose(p.sum(), 1.0):
            raise ValueError(f"world parameter n_events_probs={self.n_events_probs} must be "
                             "non-negative probabilities summing to 1")
        for name in ("snr_db_range", "gain_db_range"):
            lo_hi = getattr(self, name)
            if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1]:
                raise ValueError(f"world parameter {name}={lo_hi} must be (low, high) with low <= high")
        if self.gain_db_range[1] > 0:
            raise ValueError(f"world parameter gain_db_range={self.gain_db_range} must be <= 0 dB")
        if not 0.0 <= self.p_missing <= 1.0:  # 1: no sounding event is visible
            raise ValueError(f"world parameter p_missing={self.p_missing} must be in [0, 1]")
        if not 0.0 <= self.p_distractor < 1.0:
            raise ValueError(f"world parameter p_distractor={self.p_distractor} must be in [0, 1)")
        for name in ("visual_noise", "visual_instance_std", "visual_jitter_s", "floor_weight",
                     "companion_scale", "scene_visual_scale"):
            if getattr(self, name) < 0:
                raise ValueError(f"world parameter {name}={getattr(self, name)} must be >= 0")
        if self.visual_dim < 1 or self.n_captions < 1 or self.chunk_seconds <= 0:
            raise ValueError("world parameters visual_dim, n_captions must be >= 1 and chunk_seconds > 0")

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> "WorldParams":
        """Build from keyword arguments; unknown names raise a TypeError listing the valid ones."""
        known = {f.name for f in fields(cls)}
        bad = sorted(set(kwargs) - known)
        if bad:
            raise TypeError(f"unknown synthetic-world parameter(s) {bad}; valid: {sorted(known)}")
        return cls(**dict(kwargs))

    def to_json(self) -> dict:
        return json.loads(json.dumps(asdict(self)))


# =========================================================================== specifications
@dataclass
class EventSpec:
    """One event of a clip (times in seconds from the clip start).

    Distractors have ``audible=False`` (visual only, no sound, not in the labels) and no factors.
    """

    label: str
    onset_s: float
    offset_s: float
    timbre: str
    gain_db: float
    midi: int | None = None
    pitch_hz: float | None = None
    rate_hz: float | None = None
    seed: int = 0
    audible: bool = True
    visible: bool = True
    visual_onset_s: float | None = None
    visual_offset_s: float | None = None

    @property
    def duration_s(self) -> float:
        return self.offset_s - self.onset_s

    def factors(self) -> dict:
        """The factor dict accepted by :func:`event_waveform`."""
        return {"duration_s": self.duration_s, "midi": self.midi, "pitch_hz": self.pitch_hz,
                "timbre": self.timbre, "rate_hz": self.rate_hz, "gain_db": self.gain_db}


@dataclass
class ClipSpec:
    """Everything needed to render one clip, its visual stream and its captions."""

    clip_id: str
    scene: str
    duration_s: float
    snr_db: float
    noise_exponent: float
    noise_seed: int
    visual_seed: int
    caption_seed: int
    events: list[EventSpec] = field(default_factory=list)

    @property
    def audible(self) -> list[EventSpec]:
        return [e for e in self.events if e.audible]

    @property
    def labels(self) -> list[str]:
        """Labels of the audible events in ontology order."""
        present = {e.label for e in self.audible}
        return [c for c in CLASS_NAMES if c in present]

    def main_event(self) -> EventSpec:
        """The loudest audible event (earliest on ties)."""
        aud = self.audible
        return max(aud, key=lambda e: (e.gain_db, -e.onset_s))


def sample_event_factors(label: str, rng: np.random.Generator, max_duration: float | None = None) -> dict:
    """Draw the factors of one event of class ``label`` within its class ranges.

    Returns a dict with ``duration_s``, ``midi`` (int or None), ``pitch_hz``, ``timbre``, ``rate_hz``
    (or None), ``gain_db`` (0.0) and ``seed``.
    """
    cls = get_class(label)
    dur = float(rng.uniform(*cls.duration))
    if max_duration is not None:
        dur = min(dur, float(max_duration))
    midi = int(rng.integers(cls.midi[0], cls.midi[1] + 1)) if cls.midi else None
    return {
        "duration_s": round(dur, 3),
        "midi": midi,
        "pitch_hz": round(dsp.midi_to_hz(midi), 3) if midi is not None else None,
        "timbre": str(cls.timbres[int(rng.integers(len(cls.timbres)))]),
        "rate_hz": round(float(rng.uniform(*cls.rate)), 2) if cls.rate else None,
        "gain_db": 0.0,
        "seed": int(rng.integers(2 ** 31 - 1)),
    }


def _scene_weights(scene_name: str, floor: float) -> np.ndarray:
    w = np.full(len(CLASS_NAMES), float(floor))
    for lab, v in SCENE_BY_NAME[scene_name].weights.items():
        w[CLASS_NAMES.index(lab)] = float(v)
    return w


def _draw_labels(scene: str, k: int, max_events: int, params: WorldParams,
                 rng: np.random.Generator) -> list[str]:
    w = _scene_weights(scene, params.floor_weight)
    labels: list[str] = []
    while len(labels) < k:
        p = w.copy()
        for lab in labels:
            p[CLASS_NAMES.index(lab)] = 0.0
        if p.sum() <= 0:
            break
        lab = CLASS_NAMES[int(rng.choice(len(p), p=p / p.sum()))]
        labels.append(lab)
        for comp, prob in COMPANIONS.get(lab, ()):
            draw = rng.random()
            if comp not in labels and len(labels) < max_events and draw < prob * params.companion_scale:
                labels.append(comp)
    return labels


def sample_clip_spec(rng: np.random.Generator, clip_seconds: float = 10.0,
                     params: WorldParams | None = None, clip_id: str = "clip",
                     visual_rng: np.random.Generator | None = None,
                     text_rng: np.random.Generator | None = None) -> ClipSpec:
    """Draw a random clip: scene, events with factors and times, SNR, visual timing.

    ``rng`` drives everything audible; ``visual_rng`` (visibility, jitter, distractors) and
    ``text_rng`` (caption seed) default to independent children of ``rng``.
    """
    params = params or WorldParams()
    if visual_rng is None or text_rng is None:
        vr, tr = rng.spawn(2)
        visual_rng = visual_rng or vr
        text_rng = text_rng or tr
    scene = SCENES[int(rng.integers(len(SCENES)))].name
    max_events = len(params.n_events_probs)
    k = int(rng.choice(np.arange(1, max_events + 1), p=np.asarray(params.n_events_probs)))
    labels = _draw_labels(scene, k, max_events, params, rng)
    events: list[EventSpec] = []
    lo, hi = params.gain_db_range
    for lab in labels:
        fac = sample_event_factors(lab, rng, clip_seconds)
        onset = round(float(rng.uniform(0.0, clip_seconds - fac["duration_s"])), 3)
        offset = min(round(onset + fac["duration_s"], 3), clip_seconds)
        events.append(EventSpec(lab, onset, offset, fac["timbre"], round(float(rng.uniform(lo, hi)), 1),
                                fac["midi"], fac["pitch_hz"], fac["rate_hz"], fac["seed"]))
    top = max(e.gain_db for e in events)
    for e in events:  # the loudest event is the 0 dB reference of the SNR
        e.gain_db = round(e.gain_db - top, 1)
    snr = round(float(rng.uniform(*params.snr_db_range)), 1)
    exponent = round(SCENE_BY_NAME[scene].noise_exponent + float(rng.uniform(-0.2, 0.2)), 3)
    noise_seed = int(rng.integers(2 ** 31 - 1))

    # ---- visual side (own stream)
    jit = params.visual_jitter_s
    for e in events:
        e.visible = bool(visual_rng.random() >= params.p_missing)
        j = visual_rng.normal(0.0, jit, 2) if jit > 0 else np.zeros(2)
        von = e.onset_s + params.av_offset_s + float(j[0])
        voff = max(e.offset_s + params.av_offset_s + float(j[1]), von + 0.05)
        e.visual_onset_s, e.visual_offset_s = round(von, 3), round(voff, 3)
    n_distract = 0
    while n_distract < 2 and visual_rng.random() < params.p_distractor:
        n_distract += 1
    if n_distract:
        w = _scene_weights(scene, params.floor_weight)
        for lab in labels:
            w[CLASS_NAMES.index(lab)] = 0.0
        for _ in range(n_distract):
            if w.sum() <= 0:
                break
            lab = CLASS_NAMES[int(visual_rng.choice(len(w), p=w / w.sum()))]
            w[CLASS_NAMES.index(lab)] = 0.0
            dur = min(float(visual_rng.uniform(*get_class(lab).duration)), clip_seconds)
            on = round(float(visual_rng.uniform(0.0, clip_seconds - dur)), 3)
            off = min(round(on + dur, 3), clip_seconds)
            events.append(EventSpec(lab, on, off, "", float("nan"), audible=False, visible=True,
                                    visual_onset_s=on, visual_offset_s=off))
    return ClipSpec(clip_id, scene, float(clip_seconds), snr, exponent, noise_seed,
                    int(visual_rng.integers(2 ** 31 - 1)), int(text_rng.integers(2 ** 31 - 1)), events)


def clip_id_for(seed: int, index: int) -> str:
    """Clip id of clip ``index`` of world ``seed``: ``syn<seed>_<index:06d>``."""
    return f"syn{seed}_{index:06d}"


def clip_spec(seed: int, index: int, clip_seconds: float = 10.0,
              params: WorldParams | None = None) -> ClipSpec:
    """The spec of clip ``index`` of the world with ``seed`` (independent seed streams per clip)."""
    if seed < 0 or index < 0:
        raise ValueError(f"clip_spec: seed ({seed}) and index ({index}) must be >= 0")
    audio_ss, visual_ss, text_ss = np.random.SeedSequence([int(seed), int(index)]).spawn(3)
    return sample_clip_spec(np.random.default_rng(audio_ss), clip_seconds, params,
                            clip_id_for(seed, index), np.random.default_rng(visual_ss),
                            np.random.default_rng(text_ss))


# =========================================================================== rendering
def event_waveform(label: str, factors: Mapping[str, Any] | None = None, sample_rate: int = 16000,
                   seed: int | None = None) -> np.ndarray:
    """Render one isolated event as a float32 array of shape (round(duration_s * sample_rate),).

    Args:
        label: class name (see :data:`CLASS_NAMES`).
        factors: any of ``duration_s``, ``midi`` or ``pitch_hz``, ``timbre``, ``rate_hz``,
            ``gain_db``, ``seed``; missing ones take the middle of the class range / its first timbre.
        sample_rate: output rate in Hz.
        seed: noise seed (overrides ``factors["seed"]``).
    Returns:
        waveform whose active level (90th percentile of 50 ms RMS) is
        ``REF_LEVEL * 10**(gain_db / 20)``.
    """
    cls = get_class(label)
    f = dict(factors or {})
    dur = float(f.get("duration_s") or np.mean(cls.duration))
    n = int(round(dur * sample_rate))
    if n <= 0:
        raise ValueError(f"event {label!r}: duration_s={dur} gives no samples at {sample_rate} Hz")
    f0 = None
    if cls.pitched:
        if f.get("pitch_hz") is not None and np.isfinite(f["pitch_hz"]):
            f0 = float(f["pitch_hz"])
        elif f.get("midi") is not None and np.isfinite(f["midi"]):
            f0 = dsp.midi_to_hz(float(f["midi"]))
        else:
            f0 = dsp.midi_to_hz(float(np.mean(cls.midi)))
        if not 20.0 <= f0 < 0.45 * sample_rate:
            raise ValueError(f"event {label!r}: pitch {f0:.1f} Hz outside 20 Hz .. 0.45 x {sample_rate} Hz")
    timbre = f.get("timbre") or cls.timbres[0]
    if timbre not in cls.timbres:
        raise ValueError(f"event {label!r}: timbre {timbre!r} not among the class's timbres {cls.timbres}")
    rate = None
    if cls.rhythmic:
        rate = float(f["rate_hz"]) if f.get("rate_hz") is not None and np.isfinite(f["rate_hz"]) \
            else float(np.mean(cls.rate))
        if rate <= 0:
            raise ValueError(f"event {label!r}: rate_hz={rate} must be > 0")
    s = seed if seed is not None else int(f.get("seed") or 0)
    rng = np.random.default_rng(s)
    x = np.asarray(cls.synth(n, sample_rate, rng, f0, timbre, rate), dtype=np.float64)
    if x.shape != (n,) or not np.isfinite(x).all():
        raise RuntimeError(f"synthesiser of {label!r} returned shape {x.shape} or non-finite values "
                           f"for factors {f}")
    dsp.fade(x, sample_rate)
    level = dsp.active_rms(x, sample_rate)
    gain = float(f.get("gain_db") or 0.0)
    if level > 0:
        x *= REF_LEVEL * 10.0 ** (gain / 20.0) / level
    return x.astype(np.float32)


def render_clip(spec: ClipSpec, sample_rate: int = 16000) -> np.ndarray:
    """Mix the audible events of ``spec`` over its background: float32 (round(duration*sr),)."""
    total = int(round(spec.duration_s * sample_rate))
    mix = np.zeros(total)
    for e in spec.audible:
        x = event_waveform(e.label, e.factors(), sample_rate, e.seed)
        start = int(round(e.onset_s * sample_rate))
        if start < 0 or start + len(x) > total + 1:
            raise ValueError(f"clip {spec.clip_id}: event {e.label} [{e.onset_s}, {e.offset_s}] s lies "
                             f"outside the {spec.duration_s} s clip")
        dsp.place(mix, x, start)
    bg = dsp.colored_noise(total, sample_rate, np.random.default_rng(spec.noise_seed), spec.noise_exponent)
    mix += bg * (REF_LEVEL * 10.0 ** (-spec.snr_db / 20.0))
    peak = float(np.abs(mix).max())
    if peak > PEAK_LIMIT:
        mix *= PEAK_LIMIT / peak
    return mix.astype(np.float32)


@lru_cache(maxsize=8)
def class_prototypes(dim: int = 128, seed: int = 1234) -> tuple[np.ndarray, np.ndarray]:
    """Visual prototypes: ((num_classes, dim), (num_scenes, dim)) float32, entries N(0, 1).

    Row order: :data:`CLASS_NAMES` and :data:`~audiorepro.data.synth.sounds.SCENES`.
    """
    rng = np.random.default_rng([int(seed), int(dim)])
    protos = rng.standard_normal((len(CLASS_NAMES), dim)).astype(np.float32)
    scenes = rng.standard_normal((len(SCENES), dim)).astype(np.float32)
    protos.setflags(write=False)
    scenes.setflags(write=False)
    return protos, scenes


def chunk_activity(onset_s: float, offset_s: float, n_chunks: int, chunk_seconds: float) -> np.ndarray:
    """(n_chunks,) fraction of each chunk [k*c, (k+1)*c) covered by the interval [onset, offset]."""
    starts = np.arange(n_chunks) * chunk_seconds
    overlap = np.clip(np.minimum(offset_s, starts + chunk_seconds) - np.maximum(onset_s, starts), 0.0, None)
    return overlap / chunk_seconds


def render_visual(spec: ClipSpec, params: WorldParams | None = None) -> np.ndarray:
    """The pseudo-visual stream of ``spec``: float16 (n_chunks, visual_dim), n_chunks = duration/chunk."""
    params = params or WorldParams()
    n_chunks = int(round(spec.duration_s / params.chunk_seconds))
    protos, scene_protos = class_prototypes(params.visual_dim, params.visual_seed)
    rng = np.random.default_rng(spec.visual_seed)
    scene_idx = [s.name for s in SCENES].index(spec.scene)
    v = np.tile(params.scene_visual_scale * scene_protos[scene_idx], (n_chunks, 1)).astype(np.float64)
    for e in spec.events:
        inst = protos[CLASS_NAMES.index(e.label)] + params.visual_instance_std * rng.standard_normal(params.visual_dim)
        if not e.visible:
            continue
        a = chunk_activity(e.visual_onset_s, e.visual_offset_s, n_chunks, params.chunk_seconds)
        v += a[:, None] * inst[None, :]
    v += params.visual_noise * rng.standard_normal(v.shape)
    return v.astype(np.float16)


def clip_captions(spec: ClipSpec, n: int = 5) -> list[str]:
    """``n`` captions of ``spec`` (deterministic from its caption seed)."""
    evs = [CaptionEvent(e.label, e.onset_s, e.offset_s, e.gain_db, e.midi, e.rate_hz) for e in spec.audible]
    return make_captions(evs, SCENE_BY_NAME[spec.scene], np.random.default_rng(spec.caption_seed), n)


def reworded_captions(world: "World", clip_id: str, n: int = 5,
                      phrasing: str = "held-out") -> list[str]:
    """``n`` captions of one clip of ``world`` from its audible events and scene, worded in
    ``phrasing`` (:func:`~audiorepro.data.synth.captions.make_captions`; ``held-out``: wording
    the world's own captions never use). Deterministic from the clip id."""
    ev = world.events_of(clip_id, audible_only=True)
    if ev.empty:
        raise WorldError(f"clip {clip_id!r}: no audible event to caption")
    scene = world.table.frame.set_index(world.table.frame["clip_id"].astype(str)).loc[str(clip_id), "scene"]

    def num(x: Any) -> float | None:
        return None if pd.isna(x) else float(x)

    evs = [CaptionEvent(str(r.label), float(r.onset_s), float(r.offset_s), float(r.gain_db),
                        num(r.midi), num(r.rate_hz)) for r in ev.itertuples()]
    seed = int.from_bytes(hashlib.sha256(f"{phrasing}:{clip_id}".encode()).digest()[:8], "little")
    return make_captions(evs, SCENE_BY_NAME[str(scene)], np.random.default_rng(seed), n,
                         phrasing=phrasing)


# =========================================================================== tables
def ontology_frame() -> pd.DataFrame:
    """One row per class: ``class``, ``parent``, ``description``, ``pitched``, ``rhythmic``."""
    return pd.DataFrame([{"class": c.name, "parent": c.parent, "description": c.description,
                          "pitched": c.pitched, "rhythmic": c.rhythmic} for c in CLASSES])


def _event_rows(spec: ClipSpec) -> list[dict]:
    rows = []
    for i, e in enumerate(spec.events):
        rows.append({"clip_id": spec.clip_id, "event_index": i, "label": e.label,
                     "parent": get_class(e.label).parent, "onset_s": e.onset_s, "offset_s": e.offset_s,
                     "pitch_hz": e.pitch_hz, "midi": e.midi, "timbre": e.timbre or None,
                     "rate_hz": e.rate_hz, "gain_db": e.gain_db if e.audible else None,
                     "audible": e.audible, "visible": e.visible,
                     "visual_onset_s": e.visual_onset_s, "visual_offset_s": e.visual_offset_s})
    return rows


def _clip_row(spec: ClipSpec, params: WorldParams, captions: list[str]) -> dict:
    labels = spec.labels
    if params.parent_labels:
        parents = {get_class(lab).parent for lab in labels}
        labels = [p for p in PARENTS if p in parents] + labels
    main = spec.main_event()
    return {"clip_id": spec.clip_id, "path": f"audio/{spec.clip_id}.flac", "labels": join_labels(labels),
            "captions": join_captions(captions), "scene": spec.scene, "n_events": len(spec.audible),
            "main_label": main.label, "pitch": main.midi, "pitch_hz": main.pitch_hz,
            "timbre": main.timbre, "rate_hz": main.rate_hz, "snr_db": spec.snr_db,
            "noise_exponent": spec.noise_exponent}


def assign_splits(scenes: Sequence[str], seed: int, ratios: tuple[float, float, float] = (0.7, 0.1, 0.2),
                  n_folds: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Scene-stratified ``split`` (train/valid/test) and ``fold`` (1..n_folds) arrays.

    Clips are ordered by scene (random order inside a scene) and dealt out in that order with a
    fixed interleaved pattern, so every scene gets ~70/10/20 and equal fold shares; split and fold
    use independent orders.
    """
    scenes = np.asarray(scenes, dtype=object)
    n = len(scenes)
    rng = np.random.default_rng([int(seed), 7919])
    pattern_len = 20
    counts = np.round(np.asarray(ratios) / np.sum(ratios) * pattern_len).astype(int)
    counts[0] = pattern_len - counts[1:].sum()
    # spread the pattern evenly: position k takes the name whose quota is most behind
    pattern, taken = [], np.zeros(3)
    for k in range(pattern_len):
        j = int(np.argmax(counts * (k + 1) / pattern_len - taken))
        pattern.append(["train", "valid", "test"][j])
        taken[j] += 1
    order = np.lexsort((rng.random(n), scenes.astype(str)))
    split = np.empty(n, dtype=object)
    split[order] = [pattern[k % pattern_len] for k in range(n)]
    order_f = np.lexsort((rng.random(n), scenes.astype(str)))
    fold = np.empty(n, dtype=np.int64)
    fold[order_f] = np.arange(n) % n_folds + 1
    return split.astype(str), fold


# =========================================================================== world generation
_WORKER: dict = {}


def _make_clip(index: int) -> tuple[dict, list[dict], np.ndarray]:

    w = _WORKER
    spec = clip_spec(w["seed"], index, w["clip_seconds"], w["params"])
    audio = render_clip(spec, w["sample_rate"])
    save_audio(Path(w["audio_dir"]) / f"{spec.clip_id}.flac", audio, w["sample_rate"])
    caps = clip_captions(spec, w["params"].n_captions)
    return _clip_row(spec, w["params"], caps), _event_rows(spec), render_visual(spec, w["params"])


def _config(n_clips: int, seed: int, clip_seconds: float, sample_rate: int, params: WorldParams) -> dict:
    return {"version": VERSION, "n_clips": int(n_clips), "seed": int(seed), "clip_seconds": float(clip_seconds),
            "sample_rate": int(sample_rate), "params": params.to_json()}


def _is_complete(out_dir: Path, config: dict) -> bool:
    wj, done = out_dir / "world.json", out_dir / DONE_MARKER
    if not (wj.is_file() and done.is_file()):
        return False
    try:
        stored = json.loads(wj.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return stored == config and done.read_text().strip() == _digest(config)


def _digest(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def make_world(out_dir: str | os.PathLike, n_clips: int = 1000, seed: int = 0, clip_seconds: float = 10.0,
               sample_rate: int = 16000, *, workers: int | None = None, progress: bool = True,
               **world_params: Any) -> ClipTable:
    """Generate (or reuse) a synthetic world in ``out_dir`` and return its clip table.

    If ``out_dir/world.json`` holds the same configuration and the done marker is present, the
    existing table is returned without touching any file. Otherwise the world is (re)generated;
    the done marker is written last, so an interrupted run is detected and regenerated.

    Args:
        out_dir: folder of the world (created).
        n_clips: number of clips N.
        seed: world seed; clip ``i`` depends only on ``(seed, i)`` and the parameters.
        clip_seconds, sample_rate: clip length (s) and rate (Hz) of the mono FLAC files.
        workers: processes (default ``min(2, cpu_count)``; 1 for fewer than 64 clips).
        progress: show a tqdm bar.
        **world_params: fields of :class:`WorldParams` (e.g. ``av_offset_s=0.5``).
    Returns:
        the :class:`ClipTable` of ``out_dir/clips.csv`` (vocabulary from ``clips.classes.txt``).
    """
    if int(n_clips) < 1:
        raise ValueError(f"make_world: n_clips={n_clips} must be >= 1")
    if clip_seconds <= 0 or int(sample_rate) < 8000:
        raise ValueError(f"make_world: clip_seconds={clip_seconds} must be > 0 and sample_rate={sample_rate} >= 8000")
    params = WorldParams.from_kwargs(world_params)
    out_dir = Path(out_dir)
    config = _config(n_clips, seed, clip_seconds, sample_rate, params)
    if _is_complete(out_dir, config):
        return ClipTable.read(out_dir / "clips.csv", name="synthetic")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / DONE_MARKER).unlink(missing_ok=True)
    audio_dir = out_dir / "audio"
    audio_dir.mkdir(exist_ok=True)

    settings = {"seed": int(seed), "clip_seconds": float(clip_seconds), "sample_rate": int(sample_rate),
                "params": params, "audio_dir": str(audio_dir)}
    results = _run_pool(_make_clip, int(n_clips), settings, workers, progress, f"synthetic world {out_dir.name}")

    rows = [r[0] for r in results]
    events = pd.DataFrame([ev for r in results for ev in r[1]])
    visual = np.stack([r[2] for r in results])
    frame = pd.DataFrame(rows)
    frame["split"], frame["fold"] = assign_splits(frame["scene"].tolist(), seed)
    frame["pitch"] = frame["pitch"].astype("Int64")
    cols = ["clip_id", "path", "split", "fold", "labels", "captions", "scene"]
    frame = frame[cols + [c for c in frame.columns if c not in cols]]
    classes = (list(PARENTS) if params.parent_labels else []) + list(CLASS_NAMES)
    table = ClipTable(frame, out_dir, classes, "synthetic")
    report_duplicate_audio(table)

    events["midi"] = events["midi"].astype("Int64")
    atomic_write_text(out_dir / "events.csv", events.to_csv(index=False))
    atomic_save_npy(out_dir / "visual.npy", visual)
    atomic_write_text(out_dir / "ontology.csv", ontology_frame().to_csv(index=False))
    table.write(out_dir / "clips.csv")
    keep = {f"{cid}.flac" for cid in frame["clip_id"]}
    for stale in audio_dir.glob("syn*_*.flac"):
        if stale.name not in keep:
            stale.unlink()
    atomic_write_text(out_dir / "world.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    atomic_write_text(out_dir / DONE_MARKER, _digest(config) + "\n")
    return ClipTable.read(out_dir / "clips.csv", name="synthetic")


@dataclass
class World:
    """A loaded synthetic world.

    Attributes:
        table: the clips (:class:`ClipTable`).
        events: one row per event (columns as in ``events.csv``; distractors have ``audible`` False).
        visual: (N, n_chunks, D) float16 pseudo-visual stream, row ``i`` = ``table`` row ``i``.
        ontology: class, parent, description, pitched, rhythmic.
        config: contents of ``world.json``.
        root: the world folder.
    """

    table: ClipTable
    events: pd.DataFrame
    visual: np.ndarray
    ontology: pd.DataFrame
    config: dict
    root: Path

    @property
    def params(self) -> WorldParams:
        return WorldParams.from_kwargs(self.config["params"])

    def events_of(self, clip_id: str, audible_only: bool = False) -> pd.DataFrame:
        """Event rows of one clip (sorted by onset)."""
        ev = self.events[self.events["clip_id"] == str(clip_id)]
        if audible_only:
            ev = ev[ev["audible"]]
        return ev.sort_values("onset_s")


def load_world(out_dir: str | os.PathLike, mmap: bool = False) -> World:
    """Load a complete world written by :func:`make_world` (``mmap`` memory-maps visual.npy)."""
    out_dir = Path(out_dir)
    if not (out_dir / DONE_MARKER).is_file():
        raise WorldError(f"{out_dir} is not a complete synthetic world (no {DONE_MARKER} marker); "
                         "generate it with make_world()")
    try:
        config = json.loads((out_dir / "world.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WorldError(f"cannot read {out_dir / 'world.json'}: {exc}") from exc
    table = ClipTable.read(out_dir / "clips.csv", name="synthetic")
    events = pd.read_csv(out_dir / "events.csv", dtype={"clip_id": str, "timbre": str})
    events["midi"] = events["midi"].astype("Int64")
    visual = np.load(out_dir / "visual.npy", mmap_mode="r" if mmap else None)
    if visual.shape[0] != len(table):
        raise WorldError(f"{out_dir / 'visual.npy'} has {visual.shape[0]} rows but "
                         f"{out_dir / 'clips.csv'} has {len(table)} clips")
    ontology = pd.read_csv(out_dir / "ontology.csv")
    return World(table, events, visual, ontology, config, out_dir)


def world_dir_name(n_clips: int, seed: int, clip_seconds: float = 10.0, sample_rate: int = 16000,
                   **world_params: Any) -> str:
    """``n<N>_s<seed>``, plus a short hash when anything differs from the defaults."""
    name = f"n{int(n_clips)}_s{int(seed)}"
    params = WorldParams.from_kwargs(world_params)
    if params != WorldParams() or float(clip_seconds) != 10.0 or int(sample_rate) != 16000:
        extra = {"params": params.to_json(), "clip_seconds": float(clip_seconds), "sample_rate": int(sample_rate)}
        name += "_" + _digest(extra)[:8]
    return name


def default_world(n_clips: int = 1000, seed: int = 0, clip_seconds: float = 10.0, sample_rate: int = 16000,
                  *, workers: int | None = None, progress: bool = True, **world_params: Any) -> World:
    """The shared world under ``paths.data_dir("synthetic", world_dir_name(...))`` (made once)."""
    out = paths.data_dir("synthetic", world_dir_name(n_clips, seed, clip_seconds, sample_rate, **world_params))
    make_world(out, n_clips, seed, clip_seconds, sample_rate, workers=workers, progress=progress, **world_params)
    return load_world(out)


def visual_variant(world: World, **visual_params: Any) -> tuple[np.ndarray, pd.DataFrame]:
    """Regenerate only the pseudo-visual stream of ``world`` with other visual parameters.

    The audio side (scene, events, gains) is unchanged because it uses its own seed streams.
    Returns ``(visual (N, n_chunks, D) float16, events DataFrame)`` in the world's clip order.
    """
    allowed = {"visual_dim", "chunk_seconds", "av_offset_s", "visual_jitter_s", "p_missing", "p_distractor",
               "visual_noise", "visual_instance_std", "scene_visual_scale", "visual_seed"}
    bad = sorted(set(visual_params) - allowed)
    if bad:
        raise TypeError(f"visual_variant: {bad} are not visual parameters; allowed: {sorted(allowed)}")
    cfg = world.config
    params = WorldParams.from_kwargs({**cfg["params"], **visual_params})
    vis, rows = [], []
    for i in range(len(world.table)):
        spec = clip_spec(cfg["seed"], i, cfg["clip_seconds"], params)
        if spec.clip_id != world.table.frame["clip_id"].iloc[i]:
            raise WorldError(f"{world.root}: clip {i} is {world.table.frame['clip_id'].iloc[i]!r}, "
                             f"expected {spec.clip_id!r}; regenerate the world")
        vis.append(render_visual(spec, params))
        rows += _event_rows(spec)
    events = pd.DataFrame(rows)
    events["midi"] = events["midi"].astype("Int64")
    return np.stack(vis), events


# =========================================================================== isolated events
def _make_event_clip(index: int) -> dict:

    w = _WORKER
    classes, per_class, seed, sr, secs = w["classes"], w["per_class"], w["seed"], w["sample_rate"], w["clip_seconds"]
    label = classes[index // per_class]
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 1_000_003, int(index)]))
    fac = sample_event_factors(label, rng)
    onset = round(float(rng.uniform(0.05, 0.5)), 3)
    fac["duration_s"] = round(min(fac["duration_s"], secs - onset - 0.05), 3)
    x = event_waveform(label, fac, sr)
    total = int(round(secs * sr))
    mix = np.zeros(total)
    dsp.place(mix, x, int(round(onset * sr)))
    mix += dsp.colored_noise(total, sr, rng, 1.0) * REF_LEVEL * 10.0 ** (-w["snr_db"] / 20.0)
    peak = float(np.abs(mix).max())
    if peak > PEAK_LIMIT:
        mix *= PEAK_LIMIT / peak
    cid = f"evt{seed}_{index:06d}"
    save_audio(Path(w["audio_dir"]) / f"{cid}.flac", mix.astype(np.float32), sr)
    return {"clip_id": cid, "path": f"audio/{cid}.flac", "labels": label, "parent": get_class(label).parent,
            "pitch": fac["midi"], "pitch_hz": fac["pitch_hz"], "timbre": fac["timbre"], "rate_hz": fac["rate_hz"],
            "onset_s": onset, "offset_s": round(onset + fac["duration_s"], 3), "event_seed": fac["seed"]}


def make_event_table(out_dir: str | os.PathLike, n_per_class: int = 20, seed: int = 0,
                     clip_seconds: float = 4.0, sample_rate: int = 16000, classes: Sequence[str] | None = None,
                     snr_db: float = 30.0, *, workers: int | None = None, progress: bool = True) -> ClipTable:
    """Single-event clips (one isolated event over faint pink noise) for factor tasks.

    The analogue of NSynth / Surge style downstream tasks: ``labels`` is the event class (exactly
    one), ``pitch`` the MIDI note (empty for unpitched classes), ``timbre``, ``rate_hz``, ``parent``;
    splits and folds are stratified by class. Cached like :func:`make_world` (``world.json`` +
    done marker). Clip ``i`` is of class ``classes[i // n_per_class]``.
    """
    classes = list(classes) if classes is not None else list(CLASS_NAMES)
    for c in classes:
        get_class(c)
    if n_per_class < 1 or clip_seconds < 0.7:
        raise ValueError(f"make_event_table: n_per_class={n_per_class} must be >= 1 and "
                         f"clip_seconds={clip_seconds} >= 0.7")
    out_dir = Path(out_dir)
    config = {"version": VERSION, "kind": "isolated_events", "n_per_class": int(n_per_class), "seed": int(seed),
              "clip_seconds": float(clip_seconds), "sample_rate": int(sample_rate), "classes": classes,
              "snr_db": float(snr_db)}
    if _is_complete(out_dir, config):
        return ClipTable.read(out_dir / "clips.csv", name="synthetic_events")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / DONE_MARKER).unlink(missing_ok=True)
    audio_dir = out_dir / "audio"
    audio_dir.mkdir(exist_ok=True)
    n = len(classes) * int(n_per_class)
    settings = {"classes": classes, "per_class": int(n_per_class), "seed": int(seed), "sample_rate": int(sample_rate),
                "clip_seconds": float(clip_seconds), "snr_db": float(snr_db), "audio_dir": str(audio_dir)}
    rows = _run_pool(_make_event_clip, n, settings, workers, progress, f"isolated events {out_dir.name}")
    frame = pd.DataFrame(rows)
    frame["split"], frame["fold"] = assign_splits(frame["labels"].tolist(), seed)
    frame["pitch"] = frame["pitch"].astype("Int64")
    cols = ["clip_id", "path", "split", "fold", "labels"]
    frame = frame[cols + [c for c in frame.columns if c not in cols]]
    table = ClipTable(frame, out_dir, classes, "synthetic_events")
    report_duplicate_audio(table)
    table.write(out_dir / "clips.csv")
    keep = {f"{cid}.flac" for cid in frame["clip_id"]}
    for stale in audio_dir.glob("evt*_*.flac"):
        if stale.name not in keep:
            stale.unlink()
    atomic_write_text(out_dir / "ontology.csv", ontology_frame().to_csv(index=False))
    atomic_write_text(out_dir / "world.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    atomic_write_text(out_dir / DONE_MARKER, _digest(config) + "\n")
    return ClipTable.read(out_dir / "clips.csv", name="synthetic_events")


def report_duplicate_audio(table: ClipTable) -> list[str]:
    """Compare the bytes of every generated clip (SHA-1) and log each group of identical clips
    at WARNING, naming the rows and their splits. Clips are rendered from ``(seed, index)`` with
    their own noise, so none is expected; the rows are kept (they index ``visual.npy`` and
    ``events.csv``), the report makes a collision visible. Returns the report lines."""
    problems = table.check(content=True, files=False)
    for line in problems:
        log.warning("%s", line)
    return problems


def _run_pool(fn, n: int, settings: dict, workers: int | None, progress: bool, desc: str) -> list:
    """Run ``fn(i)`` for i in range(n) in order, with ``settings`` installed in every worker."""
    if workers is None:
        workers = 1 if n < 64 else min(2, os.cpu_count() or 1)
    bar = None
    if progress:
        from audiorepro.progress import tqdm
        bar = tqdm(total=n, desc=desc, unit="clip")
    results = []
    try:
        if workers <= 1:
            _WORKER.clear()
            _WORKER.update(settings)
            for i in range(n):
                results.append(fn(i))
                if bar is not None:
                    bar.update(1)
        else:
            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
            with ctx.Pool(workers, initializer=_install_settings, initargs=(settings,)) as pool:
                for res in pool.imap(fn, range(n), chunksize=8):
                    results.append(res)
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return results


def _install_settings(settings: dict) -> None:
    _WORKER.clear()
    _WORKER.update(settings)


# =========================================================================== CLI
def _parse_param(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--param expects NAME=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    try:
        return k.strip(), json.loads(v)
    except json.JSONDecodeError:
        return k.strip(), v


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m audiorepro.data.synthetic --out DIR --n-clips N --seed S [--param k=v ...]``."""
    ap = argparse.ArgumentParser(prog="python -m audiorepro.data.synthetic", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=None,
                    help="world folder (default: the shared data/synthetic/n<N>_s<S> folder)")
    ap.add_argument("--n-clips", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clip-seconds", type=float, default=10.0)
    ap.add_argument("--sample-rate", type=int, default=16000)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--param", type=_parse_param, action="append", default=[],
                    help="world parameter NAME=VALUE (JSON value), e.g. --param av_offset_s=0.5")
    args = ap.parse_args(argv)
    params = dict(args.param)
    out = args.out or paths.data_dir("synthetic", world_dir_name(args.n_clips, args.seed, args.clip_seconds,
                                                                 args.sample_rate, **params))
    table = make_world(out, args.n_clips, args.seed, args.clip_seconds, args.sample_rate,
                       workers=args.workers, progress=True, **params)
    print(f"{len(table)} clips, {table.num_classes} classes -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
