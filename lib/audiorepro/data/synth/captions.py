"""Natural-language captions of synthetic clips, generated from the event parameters.

Every caption names every audible event of the clip (each class's phrases contain one of its
``keywords``), orders them by onset, links consecutive events with temporal words ("then",
"while", "followed by", ...) that match their real overlap, and may add a loudness / pitch / rhythm
modifier computed from the event's factors, the scene, or the background noise. Captions never
contain ``|`` (the caption separator of a clip table).

``phrasing="held-out"`` words the same facts with phrasings the training captions never use:
other names and verbs per class (:data:`HELD_OUT_PHRASES`), other scene phrases
(:data:`HELD_OUT_SCENES`), other connectives and other sentence templates. Validation and test
captions worded so test whether a text encoder maps unseen wording onto the sounds, rather than
matching the words it was trained on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .sounds import Scene, SoundClass, get_class

_NO_ARTICLE = {"someone"}
PHRASINGS = ("train", "held-out")

#: Held-out phrasings: per class (subjects, verbs, noun phrases) that the training captions never
#: use, for valid / test captions that test a text encoder on wording it was not trained on
#: (``make_captions(..., phrasing="held-out")``). The words name the same sound in other English.
HELD_OUT_PHRASES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "dog_bark": (("hound", "puppy"), ("woofs", "yaps", "yelps"), ("a hound woofing", "yapping of a puppy")),
    "cat_meow": (("tomcat", "feline"), ("mews", "yowls"), ("a tomcat yowling", "a feline's yowl")),
    "bird_chirp": (("sparrow", "finch"), ("twitters", "sings"), ("a sparrow twittering", "birdsong")),
    "rooster_crow": (("cock", "barnyard fowl"), ("calls at dawn", "cock-a-doodle-doos"), ("a cock calling at dawn", "a barnyard fowl greeting the dawn")),
    "cow_moo": (("bull", "heifer"), ("bellows", "calls out deeply"), ("a bellowing bull", "a heifer calling out")),
    "cricket": (("grasshopper", "cicada"), ("stridulates", "whirrs in the grass"), ("grasshoppers stridulating", "a cicada droning")),
    "car_engine": (("automobile", "motor"), ("purrs", "putters"), ("an automobile motor purring", "a motor puttering")),
    "car_horn": (("hooter", "klaxon"), ("hoots", "parps"), ("a vehicle hooting", "the parp of a klaxon")),
    "siren": (("patrol vehicle", "rescue truck"), ("shrieks", "blasts a warning"), ("a shrieking rescue truck", "the warning tone of a patrol vehicle")),
    "motorcycle": (("scooter", "dirt bike"), ("accelerates", "zooms past"), ("a scooter accelerating", "a dirt bike zooming past")),
    "helicopter": (("chopper", "copter"), ("circles above", "thrums"), ("a chopper circling above", "a thrumming copter")),
    "aircraft": (("airliner", "jetliner"), ("takes off", "soars high above"), ("an airliner taking off", "a jetliner high above")),
    "piano_note": (("pianoforte", "spinet"), ("tinkles", "lets a chord resonate"), ("tinkling ivories", "a spinet tinkling")),
    "guitar_pluck": (("ukulele", "banjo"), ("twangs", "is picked"), ("a twanging banjo", "a ukulele being picked")),
    "violin": (("viola", "cello"), ("sings a sustained tone", "drones a low line"), ("a cello tone", "strings droning from a viola")),
    "flute": (("recorder", "piccolo"), ("pipes", "toots softly"), ("a piccolo piping", "a recorder air")),
    "trumpet": (("bugle", "cornet"), ("heralds with a fanfare", "toots"), ("a bugle fanfare", "a cornet tooting")),
    "kick_drum": (("tom-tom", "floor tom"), ("booms", "pulses"), ("a booming tom-tom", "a pulsing low beat")),
    "hi_hat": (("shaker", "brushed snare"), ("sizzles", "shuffles in time"), ("a sizzling shaker", "brushed percussion")),
    "church_bell": (("carillon", "belfry"), ("peals", "clangs"), ("a pealing carillon", "the clang of a belfry")),
    "dishes_clink": (("crockery", "glasses"), ("jingle", "chink together"), ("crockery jingling", "glasses chinking together")),
    "water_tap": (("sink", "spigot"), ("gushes", "splashes into a basin"), ("a gushing spigot", "splashing into a sink")),
    "door_knock": (("guest", "neighbour"), ("raps on wood", "bangs at the entrance"), ("rapping at an entrance", "a rap on the front entrance")),
    "vacuum_cleaner": (("hoover", "carpet sweeper"), ("drones", "sucks up dust"), ("a hoover droning", "a carpet sweeper sucking up dust")),
    "alarm_clock": (("wake-up timer", "bedside timer"), ("shrills", "rouses the sleeper"), ("a shrilling bedside timer", "a wake-up timer going off")),
    "microwave_beep": (("kitchen timer", "appliance"), ("pings", "dings when done"), ("a kitchen timer pinging", "an appliance dinging")),
    "keyboard_typing": (("clerk", "secretary"), ("pecks at a computer", "enters text on a laptop"), ("pecking at a laptop", "a secretary entering text")),
    "telephone_ring": (("landline", "cellphone"), ("jingles", "announces an incoming caller"), ("a jingling landline", "a cellphone announcing a caller")),
    "speech": (("speaker", "lady", "gentleman"), ("chats", "converses", "murmurs a few words"), ("a gentleman chatting", "a lady conversing")),
    "laughter": (("child", "lady", "gentleman"), ("giggles", "chuckles", "cackles"), ("giggling", "a gentleman chuckling")),
    "footsteps": (("pedestrian", "hiker"), ("treads along", "paces up and down"), ("a pedestrian treading", "pacing feet")),
    "clapping": (("crowd", "spectators"), ("gives an ovation", "slaps their palms together"), ("an ovation", "palms slapping together")),
    "cough": (("patient", "old fellow"), ("hacks", "clears their throat"), ("hacking", "a patient clearing their throat")),
    "whistling": (("boy", "shepherd"), ("pipes an air", "warbles a song"), ("a shepherd's whistle", "a boy piping an air")),
    "baby_cry": (("toddler", "newborn"), ("sobs", "bawls"), ("a newborn bawling", "a sobbing toddler")),
    "rain": (("downpour", "drizzle"), ("drums on the roof", "splashes down"), ("a downpour", "drizzle splashing down")),
    "wind": (("gale", "breeze"), ("whooshes", "sweeps through"), ("a whooshing gale", "a breeze sweeping through")),
    "thunder": (("storm", "thunderstorm"), ("booms overhead", "crashes"), ("a booming storm", "thunderclaps")),
    "stream": (("river", "rivulet"), ("gurgles", "murmurs"), ("a gurgling river", "a murmuring rivulet")),
    "fire_crackle": (("bonfire", "hearth"), ("pops and hisses", "snaps"), ("a snapping bonfire", "logs popping in a hearth")),
    "hammer": (("mallet", "sledgehammer"), ("bangs on a nail", "clangs on an anvil"), ("a mallet banging", "a sledgehammer clanging")),
    "drill": (("screwdriver", "cordless driver"), ("bores into a wall", "screeches"), ("a cordless driver boring", "a screeching screwdriver")),
    "saw": (("carpenter", "handsaw"), ("scrapes through a plank", "grinds through timber"), ("a carpenter slicing a plank", "a handsaw grinding through timber")),
    "chainsaw": (("logger", "tree cutter"), ("snarls", "fells a tree"), ("a logger felling a tree", "a snarling tree cutter")),
}

#: held-out scene wording: scene -> (prepositional phrases, background phrases)
HELD_OUT_SCENES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "street": (("downtown", "near a busy junction"), ("the murmur of traffic",)),
    "kitchen": (("where a meal is being cooked", "next to the stove"), ("the buzz of a fridge",)),
    "living_room": (("in a lounge", "in somebody's flat"), ("the silence of a quiet room",)),
    "office": (("at a desk at work", "in a cubicle"), ("the whoosh of ventilation",)),
    "park": (("on a lawn", "among trees in a square"), ("open-air ambience",)),
    "farm": (("near a barn", "out on the ranch"), ("faraway country sounds",)),
    "forest": (("among the trees", "deep in a wood"), ("leaves rustling softly",)),
    "concert": (("during a performance", "at a gig"), ("a murmuring audience",)),
    "workshop": (("at a workbench", "in a shed full of tools"), ("the whine of a motor",)),
}



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


def _phrases(cls: SoundClass, phrasing: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(subjects, verbs, noun phrases) of ``cls`` in ``phrasing``."""
    if phrasing == "train":
        return cls.subjects, cls.verbs, cls.nouns
    if phrasing == "held-out":
        return HELD_OUT_PHRASES[cls.name]
    raise ValueError(f"phrasing={phrasing!r}: use one of {PHRASINGS}")


def clause(ev: CaptionEvent, rng: np.random.Generator, p_mod: float = 0.5,
           phrasing: str = "train") -> str:
    """A subject-verb clause for ``ev``, e.g. ``"a loud dog barks"``."""
    cls = get_class(ev.label)
    adj, adv = modifiers(ev, cls)
    subjects, verbs, _ = _phrases(cls, phrasing)
    subject = str(rng.choice(subjects))
    verb = str(rng.choice(verbs))
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


def noun_phrase(ev: CaptionEvent, rng: np.random.Generator, p_mod: float = 0.4,
                phrasing: str = "train") -> str:
    """A noun phrase naming ``ev``, e.g. ``"a faint dog barking"``."""
    cls = get_class(ev.label)
    adj, _ = modifiers(ev, cls)
    noun = str(rng.choice(_phrases(cls, phrasing)[2]))
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


#: connectives per phrasing: (clauses in sequence, clauses overlapping, nouns in sequence, nouns
#: overlapping)
_CONNECTIVES: dict[str, tuple[tuple[str, ...], ...]] = {
    "train": ((", then ", " and then ", ", and afterwards ", ", after which "),
              (" while ", " as ", ", and at the same time "),
              (" followed by ", " and then ", " before "),
              (" along with ", " together with ", " and ", " mixed with ")),
    "held-out": (("; later ", ", and next ", ", and subsequently "),
                 (" whilst ", ", and meanwhile ", " and simultaneously "),
                 (", after that ", " and later ", " preceding "),
                 (" plus ", " accompanied by ", " alongside ")),
}


def _narrative(evs, rng, phrasing: str = "train"):
    seq, par = _CONNECTIVES[phrasing][:2]
    return _join([clause(e, rng, phrasing=phrasing) for e in evs], evs, rng, seq, par)


def _nouns(evs, rng, phrasing: str = "train"):
    seq, par = _CONNECTIVES[phrasing][2:]
    return _join([noun_phrase(e, rng, phrasing=phrasing) for e in evs], evs, rng, seq, par)


def _styles(evs, scene: Scene, rng: np.random.Generator, phrasing: str) -> tuple[Callable[[], str], ...]:
    """The sentence templates of ``phrasing`` (each a function drawing one caption)."""
    if phrasing == "train":
        return (
            lambda: _narrative(evs, rng),
            lambda: f"{rng.choice(scene.phrases)}, {_narrative(evs, rng)}",
            lambda: f"the sound of {_nouns(evs, rng)}",
            lambda: f"{_nouns(evs, rng)} {rng.choice(scene.phrases)}",
            lambda: f"{_narrative(evs, rng)} over {rng.choice(scene.background)}",
            lambda: f"{_narrative(evs, rng)} with {rng.choice(scene.background)} in the background",
            lambda: f"you can hear {_nouns(evs, rng)}",
        )
    places, background = HELD_OUT_SCENES[scene.name]
    return (
        lambda: f"in this recording, {_narrative(evs, rng, phrasing)}",
        lambda: f"{_nouns(evs, rng, phrasing)} can be heard {rng.choice(places)}",
        lambda: f"a recording of {_nouns(evs, rng, phrasing)}",
        lambda: f"{rng.choice(places)} {_narrative(evs, rng, phrasing)}, against {rng.choice(background)}",
        lambda: f"there is {_nouns(evs, rng, phrasing)}",
    )


def _finish(text: str) -> str:
    text = " ".join(text.split())
    return text[:1].upper() + text[1:] + "."


def make_captions(events: Sequence[CaptionEvent], scene: Scene, rng: np.random.Generator,
                  n: int = 5, max_tries: int = 40, phrasing: str = "train") -> list[str]:
    """``n`` different captions (when possible) of a clip with the audible ``events``, worded
    in ``phrasing`` (``train``: the world's captions; ``held-out``: wording they never use).

    Raises ValueError when ``events`` is empty (every clip has at least one audible event) or
    ``phrasing`` is unknown.
    """
    if not events:
        raise ValueError("make_captions: a clip needs at least one audible event to be captioned")
    if phrasing not in PHRASINGS:
        raise ValueError(f"make_captions: phrasing={phrasing!r}; use one of {PHRASINGS}")
    evs = sorted(events, key=lambda e: (e.onset_s, e.offset_s))
    styles = _styles(evs, scene, rng, phrasing)
    out: list[str] = []
    tries = 0
    while len(out) < n:
        cap = _finish(styles[int(rng.integers(len(styles)))]())
        tries += 1
        if cap not in out or tries > max_tries:
            out.append(cap.replace("|", "/"))
    return out
