"""KLettres spoken letters and syllables (``klettres-data``).

Each ``usr/share/klettres/<lang>/sounds.xml`` lists ``<sound name="A" file="fr/alpha/a-0.ogg"/>``
entries inside ``<alphabet>`` (letters) and ``<syllables>``. Entries whose file does not exist
(bookworm's ``id`` and ``nn`` lists name files the package does not ship; a few ``ml``/``tn``
syllables) are left out with one warning per list; entries pointing into another language's
folder are left out too, so every recording appears once, under the language that recorded it.

Columns: ``labels`` = the written letter/syllable (as in sounds.xml, e.g. ``A``, ``SI``,
``Б``), ``kind`` (``letter`` / ``syllable``), ``language`` (folder code: ``fr``, ``en_GB``,
``pt_BR`` ...), ``source``, ``length_s``. Speakers are not documented by the package (one
or a few volunteers per language): speaker and language are confounded.

Split (fixed): hash of ``<language>/<kind>/<name>`` (70/10/20).
"""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Mapping

import pandas as pd

from .common import ConvertJob, finish_rows, hash_split, safe_name, shown

log = logging.getLogger(__name__)

PACKAGE = "klettres-data"
BASE = Path("usr/share/klettres")


def read_sounds_xml(xml: Path) -> tuple[str, list[tuple[str, str, str]]]:
    """``(language code, [(kind, name, file), ...])`` of one ``sounds.xml``."""
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"cannot parse KLettres sound list {xml}: {exc}") from exc
    lang_el = root.find("language")
    if lang_el is None or not lang_el.get("code"):
        raise ValueError(f"KLettres sound list {xml} has no <language code=...>")
    out = []
    for section, kind in (("alphabet", "letter"), ("syllables", "syllable")):
        for sec in lang_el.iter(section):
            for s in sec.iter("sound"):
                name, file = s.get("name"), s.get("file")
                if not name or not file:
                    raise ValueError(f"{xml}: <sound> without name/file: {ET.tostring(s)!r}")
                out.append((kind, name.strip(), file.strip()))
    return lang_el.get("code"), out


def build(roots: Mapping[str, Path], out_dir: Path, workers: int = 2) -> pd.DataFrame:
    """Clip rows of the KLettres letters and syllables (``roots["klettres-data"]``)."""
    base = Path(roots[PACKAGE]) / BASE
    if not base.is_dir():
        raise FileNotFoundError(f"{PACKAGE}: expected the folder {base}")
    rows: list[dict] = []
    jobs: list[ConvertJob] = []
    seen: set[str] = set()
    for xml in sorted(base.glob("*/sounds.xml")):
        folder = xml.parent.name
        lang, sounds = read_sounds_xml(xml)
        missing: list[str] = []
        for kind, name, file in sounds:
            if file.split("/")[0] != folder or file in seen:
                continue
            src = base / file
            if not src.is_file():
                missing.append(file)
                continue
            seen.add(file)
            stem = safe_name(Path(file).with_suffix("").as_posix().replace("/", "__"))
            dst_rel = Path("audio") / f"{stem}.flac"
            rows.append({"clip_id": f"klettres-{stem}", "path": dst_rel.as_posix(),
                         "split": hash_split(f"klettres:{folder}/{kind}/{name}"),
                         "labels": name.replace(";", ","), "kind": kind, "language": folder,
                         "source": PACKAGE})
            jobs.append(ConvertJob(src, out_dir / dst_rel))
        if missing:
            log.warning("%s lists %d file(s) that do not exist, left out: %s%s", shown(xml), len(missing),
                        ", ".join(missing[:3]), " ..." if len(missing) > 3 else "")
    return finish_rows(rows, jobs, workers)
