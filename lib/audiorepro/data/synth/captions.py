"""Natural-language captions of synthetic clips, generated from the event parameters.

Every caption names every audible event of the clip (each class's phrases contain one of its
``keywords``), orders them by onset, links consecutive events with temporal words ("then",
"while", "followed by", ...) that match their real overlap, and may add a loudness / pitch / rhythm
modifier computed from the event's factors, the scene, or the background noise. Captions never
contain ``|`` (the caption separator of a clip table).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .sounds import Scene, SoundClass, get_class

_NO_ARTICLE = {"someone"}


@dataclass(frozen=True)
class CaptionEvent:
    """What a caption needs to know about one audible event."""

    label: str
    onset_s: float
    offset_s: float
    gain_db: float
    midi: float | None
    rate_hz: float | None


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _relative(value: float, lo: float, hi: float) -> float:
    return 0.5 if hi <= lo else (value - lo) / (hi - lo)


def modifiers(ev: CaptionEvent, cls: SoundClass) -> tuple[list[str], list[str]]:
    """(adjectives, adverbs) that truthfully describe ``ev`` relative to its class's ranges.

    Loudness: gain >= -4 dB "loud", <= -10 dB "quiet/faint/distant". Pitch: lower/upper third of
    the class's MIDI range "low-pitched/deep" / "high-pitched/shrill". Rhythm: lower/upper third of
    the class's rate range "slowly" / "rapidly, quickly".
    """
    adj: list[str] = []
    adv: list[str] = []
    if ev.gain_db >= -4.0:
        adj += ["loud"]
        adv += ["loudly"]
    elif ev.gain_db <= -10.0:
        adj += ["quiet", "faint", "distant"]
        adv += ["softly", "faintly", "in the distance"]
    if cls.midi is not None and ev.midi is not None:
        u = _relative(ev.midi, *cls.midi)
        if u < 1 / 3:
            adj += ["low-pitched", "deep"]
        elif u > 2 / 3:
            adj += ["high-pitched", "shrill"]
    if cls.rate is not None and ev.rate_hz is not None:
        u = _relative(ev.rate_hz, *cls.rate)
        if u < 1 / 3:
            adv += ["slowly"]
        elif u > 2 / 3:
            adv += ["rapidly", "quickly"]
    return adj, adv


def clause(ev: CaptionEvent, rng: np.random.Generator, p_mod: float = 0.5) -> str:
    """A subject-verb clause for ``ev``, e.g. ``"a loud dog barks"``."""
    cls = get_class(ev.label)
    adj, adv = modifiers(ev, cls)
    subject = str(rng.choice(cls.subjects))
    verb = str(rng.choice(cls.verbs))
    use_adj = bool(adj) and subject not in _NO_ARTICLE and rng.random() < p_mod
    if use_adj:
        subject = f"{rng.choice(adj)} {subject}"
    if subject in _NO_ARTICLE or not cls.article:
        head = subject
    else:
        head = f"{_article(subject)} {subject}"
    if not use_adj and adv and len(verb.split()) <= 2 and rng.random() < p_mod:
        verb = f"{verb} {rng.choice(adv)}"
    return f"{head} {verb}"


def noun_phrase(ev: CaptionEvent, rng: np.random.Generator, p_mod: float = 0.4) -> str:
    """A noun phrase naming ``ev``, e.g. ``"a faint dog barking"``."""
    cls = get_class(ev.label)
    adj, _ = modifiers(ev, cls)
    noun = str(rng.choice(cls.nouns))
    if adj and rng.random() < p_mod:
        a = str(rng.choice(adj))
        first, _, rest = noun.partition(" ")
        if first in ("a", "an") and rest:
            noun = f"{_article(a)} {a} {rest}"
        elif first != "the":
            noun = f"{a} {noun}"
    return noun


def _overlaps(a: CaptionEvent, b: CaptionEvent) -> bool:
    return b.onset_s < a.offset_s - 0.1


def _join(parts: Sequence[str], evs: Sequence[CaptionEvent], rng: np.random.Generator,
          seq_words: Sequence[str], par_words: Sequence[str]) -> str:
    text = parts[0]
    for i in range(1, len(parts)):
        words = par_words if _overlaps(evs[i - 1], evs[i]) else seq_words
        text += str(rng.choice(words)) + parts[i]
    return text


_SEQ_CLAUSE = (", then ", " and then ", ", and afterwards ", ", after which ")
_PAR_CLAUSE = (" while ", " as ", ", and at the same time ")
_SEQ_NOUN = (" followed by ", " and then ", " before ")
_PAR_NOUN = (" along with ", " together with ", " and ", " mixed with ")


def _narrative(evs, rng):
    return _join([clause(e, rng) for e in evs], evs, rng, _SEQ_CLAUSE, _PAR_CLAUSE)


def _nouns(evs, rng):
    return _join([noun_phrase(e, rng) for e in evs], evs, rng, _SEQ_NOUN, _PAR_NOUN)


def _finish(text: str) -> str:
    text = " ".join(text.split())
    return text[:1].upper() + text[1:] + "."


def make_captions(events: Sequence[CaptionEvent], scene: Scene, rng: np.random.Generator,
                  n: int = 5, max_tries: int = 40) -> list[str]:
    """``n`` different captions (when possible) of a clip with the audible ``events``.

    Raises ValueError when ``events`` is empty (every clip has at least one audible event).
    """
    if not events:
        raise ValueError("make_captions: a clip needs at least one audible event to be captioned")
    evs = sorted(events, key=lambda e: (e.onset_s, e.offset_s))
    styles = (
        lambda: _narrative(evs, rng),
        lambda: f"{rng.choice(scene.phrases)}, {_narrative(evs, rng)}",
        lambda: f"the sound of {_nouns(evs, rng)}",
        lambda: f"{_nouns(evs, rng)} {rng.choice(scene.phrases)}",
        lambda: f"{_narrative(evs, rng)} over {rng.choice(scene.background)}",
        lambda: f"{_narrative(evs, rng)} with {rng.choice(scene.background)} in the background",
        lambda: f"you can hear {_nouns(evs, rng)}",
    )
    out: list[str] = []
    tries = 0
    while len(out) < n:
        cap = _finish(styles[int(rng.integers(len(styles)))]())
        tries += 1
        if cap not in out or tries > max_tries:
            out.append(cap.replace("|", "/"))
    return out
