"""Hydrogen drum kits (``hydrogen-drumkits``): real drum hits named by each kit's drumkit.xml.

``usr/share/hydrogen/data/drumkits/<kit>/drumkit.xml`` lists instruments (``<name>``) and their
sample files (``<layer><filename>`` velocity layers; old kits: ``<filename>`` directly). Every
sample file listed is a clip (a file listed twice counts once). The free-form instrument name is
mapped to a drum family by the first matching rule of :data:`FAMILY_RULES` (lower-cased,
word-ish match); names matching no rule get family ``other`` (zaps, FX, numbered slots, loop
samples).

Columns: ``labels`` = drum family, ``kit``, ``instrument`` (name in drumkit.xml), ``layer``
(0-based layer index), ``velocity_min`` / ``velocity_max`` (layer range, NaN without layers),
``licence`` (the kit's ``<license>`` text), ``source``, ``length_s``.

Split (fixed, by kit: the test kits are unseen): ``test`` = :data:`TEST_KITS`, ``valid`` =
:data:`VALID_KITS`, every other kit ``train``.
"""
from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Mapping

import pandas as pd

from .common import ConvertJob, finish_rows, safe_name, shown

log = logging.getLogger(__name__)

PACKAGE = "hydrogen-drumkits"
KITS = Path("usr/share/hydrogen/data/drumkits")
TEST_KITS = ("The Black Pearl 1.0", "Gimme A Hand 1.0", "VariBreaks")
VALID_KITS = ("Millo_MultiLayered3", "HardElectro1")

FAMILY_RULES: tuple[tuple[str, str], ...] = (
    ("kick", r"kick|bass ?drum|bassdrum"),
    ("hihat", r"hi-?hat|\bhh\b|\bhat\b|\bohh\b"),
    ("snare", r"snare|rimshot"),
    ("stick", r"stick|rim click"),
    ("tom", r"\btom|tomhi|floor tom"),
    ("crash", r"crash|splash|china|cymbal"),
    ("ride", r"ride|\bbell\b"),
    ("clap", r"clap|snap"),
    ("cowbell", r"cowbell|agogo"),
    ("hand_drum", r"conga|bongo|djembe|cajon|sangban|dununba|kenkeni"),
    ("shaker", r"tambourine|maraca"),
    ("woodblock", r"woodblock|clave"),
)


def family_of(instrument: str) -> str:
    """Drum family of a drumkit.xml instrument name (``other`` when no rule matches)."""
    low = instrument.lower()
    if low.startswith("sample:"):
        return "other"
    for fam, pattern in FAMILY_RULES:
        if re.search(pattern, low):
            return fam
    return "other"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def read_drumkit(xml: Path) -> dict:
    """``{"name", "licence", "instruments": [(name, [(file, layer, vmin, vmax), ...]), ...]}``."""
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"cannot parse drum kit file {xml}: {exc}") from exc
    ilist = _child(root, "instrumentList")
    if ilist is None:
        raise ValueError(f"drum kit file {xml} has no <instrumentList>")
    lic = _child(root, "license")
    instruments = []
    for inst in ilist:
        if _local(inst.tag) != "instrument":
            continue
        name_el = _child(inst, "name")
        name = (name_el.text or "").strip() if name_el is not None else ""
        files = []
        layers = [c for c in inst if _local(c.tag) == "layer"]
        for k, layer in enumerate(layers):
            f = _child(layer, "filename")
            lo, hi = _child(layer, "min"), _child(layer, "max")
            if f is not None and (f.text or "").strip():
                files.append((f.text.strip(), k, float(lo.text) if lo is not None else float("nan"),
                              float(hi.text) if hi is not None else float("nan")))
        direct = _child(inst, "filename")
        if not layers and direct is not None and (direct.text or "").strip():
            files.append((direct.text.strip(), 0, float("nan"), float("nan")))
        instruments.append((name, files))
    return {"name": (_child(root, "name").text or xml.parent.name).strip()
            if _child(root, "name") is not None else xml.parent.name,
            "licence": (lic.text or "").strip() if lic is not None else "",
            "instruments": instruments}


def split_of_kit(kit: str) -> str:
    return "test" if kit in TEST_KITS else "valid" if kit in VALID_KITS else "train"


def build(roots: Mapping[str, Path], out_dir: Path, workers: int = 2) -> pd.DataFrame:
    """Clip rows of every drum hit (``roots["hydrogen-drumkits"]``)."""
    base = Path(roots[PACKAGE]) / KITS
    if not base.is_dir():
        raise FileNotFoundError(f"{PACKAGE}: expected the drum kit folder {base}")
    rows: list[dict] = []
    jobs: list[ConvertJob] = []
    for xml in sorted(base.glob("*/drumkit.xml")):
        kit_dir = xml.parent
        kit = kit_dir.name
        info = read_drumkit(xml)
        seen: set[str] = set()
        missing: list[str] = []
        for inst_name, files in info["instruments"]:
            for fname, layer, vmin, vmax in files:
                src = kit_dir / fname
                if fname in seen:
                    continue
                if not src.is_file():
                    if fname not in missing:
                        missing.append(fname)
                    continue
                seen.add(fname)
                name = f"{safe_name(kit)}__{safe_name(Path(fname).stem)}"
                dst_rel = Path("audio") / safe_name(kit) / f"{safe_name(Path(fname).stem)}.flac"
                rows.append({"clip_id": f"hydrogen-{name}", "path": dst_rel.as_posix(),
                             "split": split_of_kit(kit), "labels": family_of(inst_name),
                             "kit": kit, "instrument": inst_name.replace(";", ","),
                             "layer": layer, "velocity_min": vmin, "velocity_max": vmax,
                             "licence": info["licence"].replace("\n", " "), "source": PACKAGE})
                jobs.append(ConvertJob(src, out_dir / dst_rel))
        if missing:
            log.warning("%s lists %d sample file(s) that do not exist, left out: %s%s", shown(xml),
                        len(missing), ", ".join(missing[:3]), " ..." if len(missing) > 3 else "")
    return finish_rows(rows, jobs, workers)
