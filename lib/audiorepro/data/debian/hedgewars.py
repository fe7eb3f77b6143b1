"""Hedgewars voice packs and sound effects (``hedgewars-data``).

``usr/share/games/hedgewars/Data/Sounds/voices/<pack>/<Phrase>.ogg``: each voice pack is one
acted character voice (``British``, ``Pirate``, ``Robot`` ...; the ``Default_<lang>`` packs are
localised voices). ``<Phrase>`` is the phrase id (``Ow1``, ``Illgetyou``); numbered takes
(``Ow1`` .. ``Ow4``) share the phrase ``Ow``. ``Data/Sounds/*.ogg``: named game effects.

Columns: ``labels`` (voice: the phrase, digits stripped; effect: the effect name), ``kind``
(``voice`` / ``effect``), ``speaker`` (voice pack), ``phrase``, ``take``, ``affect`` (voice
only: see below), ``effect_class`` (effect only: see :data:`EFFECT_CLASSES`), ``source``,
``length_s``.

Affect (a PROXY, not an emotion annotation): every phrase is put in one of five groups by what
it says in the game (:data:`AFFECT_GROUPS`): ``anger`` (threats, insults), ``happy`` (triumph,
praise, greeting), ``fear`` (alarm, dismay), ``pain`` (hurt sounds), ``neutral`` (commands,
weapon names, other). The actors act the game situation, so the group is a plausible, not a
verified, label of the delivered affect.

Split (fixed): voices by hash of the phrase (70/10/20: every pack in every split, test phrases
unseen); effects by hash of the effect name.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import pandas as pd

from .common import ConvertJob, finish_rows, hash_split, safe_name

PACKAGE = "hedgewars-data"
SOUNDS = Path("usr/share/games/hedgewars/Data/Sounds")

AFFECT_GROUPS: dict[str, tuple[str, ...]] = {
    "anger": ("Bugger", "Comeonthen", "Coward", "Cutitout", "Drat", "Gonnagetyou", "Illgetyou",
              "Justyouwait", "Leavemealone", "Nutter", "Revenge", "Stupid", "Traitor",
              "Watchit", "Youllregretthat", "Thisoneismine"),
    "happy": ("Amazing", "Brilliant", "Excellent", "Flawless", "Victory", "Firstblood",
              "Enemydown", "Laugh", "Hello", "Yessir", "Byebye", "Solong"),
    "fear": ("Incoming", "Takecover", "Runaway", "Uh-oh", "Ohdear", "Oops", "Hurry", "Whatthe",
             "Nooo", "Missed"),
    "pain": ("Ow", "Ooff", "Ouch", "PoisonCough", "PoisonMoan"),
}

# effect class by the first matching keyword of the lower-cased effect name (else "other")
EFFECT_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("water", ("water", "splash", "droplet")),
    ("explosion_impact", ("explosion", "impact", "bump", "melon", "egg", "mine")),
    ("firearm", ("gun", "shot", "sniper", "mortar", "minigun", "reload", "lasersight")),
    ("musical_note", ("1c", "2d", "3e", "4f", "5g", "6a", "7b", "8c", "9d", "valkyries",
                      "hogchant", "countdown", "suddendeath", "yoohoo", "whistle")),
    ("engine_machine", ("plane", "ufo", "jetpack", "drill", "pickhammer", "blowtorch",
                        "flamethrower", "steam", "tardis", "warp", "portal", "beam")),
    ("creature_voice", ("hell", "bee", "birdy", "kiss", "rubberduck", "cake")),
    ("interface_beep", ("beep", "denied", "placed", "switch", "skip", "extratime", "custom",
                        "collect", "invulnerable", "lowgravity", "shutter", "minetick")),
)


def phrase_of(stem: str) -> tuple[str, int]:
    """``Ow3`` -> (``Ow``, 3); ``Hello`` -> (``Hello``, 0)."""
    m = re.match(r"^(.*?)(\d+)$", stem)
    if m and m.group(1):
        return m.group(1), int(m.group(2))
    return stem, 0


def affect_of(phrase: str) -> str:
    for group, phrases in AFFECT_GROUPS.items():
        if phrase in phrases:
            return group
    return "neutral"


def effect_class_of(name: str) -> str:
    low = name.lower()
    for cls, keys in EFFECT_CLASSES:
        if any(k in low for k in keys):
            return cls
    return "other"


def build(roots: Mapping[str, Path], out_dir: Path, workers: int = 2) -> pd.DataFrame:
    """Clip rows of the Hedgewars voices and effects (``roots["hedgewars-data"]``)."""
    base = Path(roots[PACKAGE]) / SOUNDS
    if not base.is_dir():
        raise FileNotFoundError(f"{PACKAGE}: expected the sounds folder {base}")
    rows: list[dict] = []
    jobs: list[ConvertJob] = []
    voices = base / "voices"
    for pack in sorted(p for p in voices.iterdir() if p.is_dir()) if voices.is_dir() else []:
        for ogg in sorted(pack.glob("*.ogg")):
            phrase, take = phrase_of(ogg.stem)
            name = f"{safe_name(pack.name)}__{safe_name(ogg.stem)}"
            dst_rel = Path("audio") / "voices" / f"{name}.flac"
            rows.append({"clip_id": f"hedgewars-voice-{name}", "path": dst_rel.as_posix(),
                         "split": hash_split(f"hedgewars:phrase:{phrase}"), "labels": phrase,
                         "kind": "voice", "speaker": pack.name, "phrase": phrase, "take": take,
                         "affect": affect_of(phrase), "effect_class": "", "source": PACKAGE})
            jobs.append(ConvertJob(ogg, out_dir / dst_rel))
    for ogg in sorted(base.glob("*.ogg")):
        name = safe_name(ogg.stem)
        dst_rel = Path("audio") / "effects" / f"{name}.flac"
        rows.append({"clip_id": f"hedgewars-effect-{name}", "path": dst_rel.as_posix(),
                     "split": hash_split(f"hedgewars:effect:{ogg.stem}"), "labels": name,
                     "kind": "effect", "speaker": "", "phrase": "", "take": 0, "affect": "",
                     "effect_class": effect_class_of(ogg.stem), "source": PACKAGE})
        jobs.append(ConvertJob(ogg, out_dir / dst_rel))
    return finish_rows(rows, jobs, workers)
