"""Tux Paint stamps (``tuxpaint-stamps-default``): effects with captions, spoken descriptions.

A stamp is ``<tag path>/<name>.txt`` (its description: the first line in English, then
``<lang>.utf8=<text>`` lines) with an image ``<name>.png`` or ``<name>.svg`` under
``usr/share/tuxpaint/stamps/``. Its sounds (``.ogg``, a few ``.wav``), matched to the stamp by
exact file stem:

=========================  ==============  =================================================
file                       ``kind``        meaning
=========================  ==============  =================================================
``<name>.ogg``             ``effect``      the stamp's sound effect (a dog barking ...)
``<name>.ogg``             ``spoken_name`` the same file under ``symbols/math`` (digits) and
                                           ``symbols/alphabets`` (letters): a spoken English
                                           digit/letter, not an effect
``<name>_<lang>.ogg``      ``spoken_name`` the digit/letter spoken in ``<lang>``
``<name>_desc.ogg``        ``description`` the description read in English
``<name>_desc_<lang>.ogg`` ``description`` the description read in ``<lang>``
=========================  ==============  =================================================

Columns: ``labels`` (effect: the stamp name; description: the stamp name; spoken_name: the
spoken token, ``0``-``9`` or a letter such as ``A`` / ``O_with_umlaut``), ``kind``, ``stamp``,
``tag_path`` (folder path, e.g. ``animals/mammals/dogs``: a hierarchical tag), ``language``
(``en`` for untagged files), ``transcript`` (the ``.txt`` text in that language, or the English
line; ``|`` replaced by ``/``), ``captions`` (effects only: the English description),
``image`` (effects only: copied next to the audio, relative path), ``source``, ``length_s``.

Split (fixed): hash of ``<tag path>/<stamp>`` (70/10/20): all clips of one stamp share a split.
"""
from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Mapping

import pandas as pd

from .common import ConvertJob, finish_rows, hash_split, safe_name

log = logging.getLogger(__name__)

PACKAGE = "tuxpaint-stamps-default"
STAMPS = Path("usr/share/tuxpaint/stamps")
SPOKEN_TAGS = ("symbols/math", "symbols/alphabets")
_LANG = r"([a-z]{2,3}(?:_[A-Za-z]{2,4})?)"
_LANG_RE = re.compile(rf"^{_LANG}$")
AUDIO_SUFFIXES = (".ogg", ".wav")


def read_descriptions(txt: Path) -> dict[str, str]:
    """``{lang: text}`` of a stamp ``.txt`` (the untagged first line is ``en``)."""
    out: dict[str, str] = {}
    lines = [ln.strip() for ln in txt.read_text(encoding="utf-8", errors="replace").splitlines()]
    for i, ln in enumerate(lines):
        if not ln:
            continue
        m = re.match(r"^([A-Za-z_@]+)\.utf8=(.*)$", ln)
        if m:
            out.setdefault(m.group(1), m.group(2).strip())
        elif "en" not in out and i == 0:
            out["en"] = ln
    return out


def _text_for(desc: dict[str, str], lang: str) -> str:
    for key in (lang, lang.split("_")[0], lang.lower()):
        if key in desc:
            return desc[key].replace("|", "/")
    return ""


def spoken_token(tag: str, stamp: str) -> str:
    """The digit or letter a ``spoken_name`` clip says (``A_filled`` -> ``A``)."""
    return re.sub(r"_(filled|outline|outlined)$", "", stamp)


def classify(stem: str, stamps: set[str]) -> tuple[str, str, str] | None:
    """``(stamp, role, language)`` of an audio stem in a folder with these stamp names, where
    role is ``sound`` / ``desc``; ``None`` when the stem belongs to no stamp."""
    if stem in stamps:
        return stem, "sound", "en"
    if stem.endswith("_desc") and stem[:-5] in stamps:
        return stem[:-5], "desc", "en"
    # try every "_" as the stamp/suffix boundary, longest stamp name first
    cuts = [i for i, ch in enumerate(stem) if ch == "_"]
    for i in reversed(cuts):
        prefix, rest = stem[:i], stem[i + 1:]
        if prefix not in stamps:
            continue
        if rest.startswith("desc_") and _LANG_RE.match(rest[5:]):
            return prefix, "desc", rest[5:]
        if _LANG_RE.match(rest):
            return prefix, "sound", rest
    return None


def build(roots: Mapping[str, Path], out_dir: Path, workers: int = 2) -> pd.DataFrame:
    """Clip rows of the Tux Paint stamps (see the module docstring).

    Args:
        roots: ``{"tuxpaint-stamps-default": extracted package root}``.
        out_dir: output folder; audio goes to ``audio/<kind>/...flac``, images to ``images/``.
    """
    base = Path(roots[PACKAGE]) / STAMPS
    if not base.is_dir():
        raise FileNotFoundError(f"{PACKAGE}: expected the stamps folder {base}")
    rows: list[dict] = []
    jobs: list[ConvertJob] = []
    unmatched = 0
    for folder in sorted({p.parent for p in base.rglob("*.txt")}):
        tag = folder.relative_to(base).as_posix()
        stamps = {p.stem for p in folder.glob("*.txt")}
        spoken_folder = tag.startswith(SPOKEN_TAGS)
        descs = {s: read_descriptions(folder / f"{s}.txt") for s in stamps}
        for audio in sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES):
            hit = classify(audio.stem, stamps)
            if hit is None:
                unmatched += 1
                continue
            stamp, role, lang = hit
            if role == "desc":
                kind = "description"
            elif spoken_folder or lang != "en" or audio.stem != stamp:
                kind = "spoken_name"
            else:
                kind = "effect"
            desc = descs[stamp]
            name = safe_name(f"{tag}/{stamp}".replace("/", "__"))
            suffix = "" if audio.stem == stamp or audio.stem == f"{stamp}_desc" else f"-{lang}"
            if role == "desc" and audio.stem == f"{stamp}_desc":
                suffix = "-en"
            clip_id = f"tuxpaint-{kind}-{name}{suffix}"
            dst_rel = Path("audio") / kind / f"{name}{suffix}.flac"
            row = {"clip_id": clip_id, "path": dst_rel.as_posix(),
                   "split": hash_split(f"tuxpaint:{tag}/{stamp}"),
                   "labels": spoken_token(tag, stamp) if kind == "spoken_name" else safe_name(stamp),
                   "kind": kind, "stamp": stamp, "tag_path": tag, "language": lang,
                   "transcript": _text_for(desc, lang), "captions": "", "image": "",
                   "source": PACKAGE}
            if kind == "effect":
                row["captions"] = _text_for(desc, "en")
                row["image"] = _copy_image(folder, stamp, out_dir, name)
            rows.append(row)
            jobs.append(ConvertJob(audio, out_dir / dst_rel))
    if unmatched:
        log.info("%s: %d audio files matched no stamp and were left out", PACKAGE, unmatched)
    return finish_rows(rows, jobs, workers)


def _copy_image(folder: Path, stamp: str, out_dir: Path, name: str) -> str:
    for ext in (".png", ".svg"):
        src = folder / f"{stamp}{ext}"
        if src.is_file():
            rel = Path("images") / f"{name}{ext}"
            dst = out_dir / rel
            if not dst.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
            return rel.as_posix()
    return ""
