"""Asterisk telephone prompts (``asterisk-core-sounds-{en,es,fr,it,ru}-wav``).

One professional speaker per language (en and es: Allison Smith; fr: June Wallack; it: Carlo;
ru: "IvrvoiceRU"), recorded at 8 kHz for telephony (upsampled to 16 kHz here; no content
above 4 kHz). Every ``.wav`` under ``usr/share/asterisk/sounds/<voice>/`` is a clip except the
``silence/`` folder (digital silence, not speech).

Columns: ``labels`` = the prompt name (``digits/5``, ``letters/a``, ``phonetic/a_p``,
``vm-intro``; the same name means the same content in every language), ``prompt``,
``category`` (``digits`` / ``letters`` / ``phonetic`` / ``words``: every other prompt),
``language``, ``speaker``, ``source`` (package name), ``length_s``.

Split (fixed): hash of the prompt name (:func:`~.common.hash_split`, 70/10/20), so one prompt is
in the same split in every language and test prompts are unseen words.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from .common import ConvertJob, finish_rows, hash_split, safe_name
from .sources import ASTERISK_LANGUAGES

CATEGORIES = ("digits", "letters", "phonetic")


def package_for(language: str) -> str:
    return f"asterisk-core-sounds-{language}-wav"


def build(roots: Mapping[str, Path], out_dir: Path, workers: int = 2) -> pd.DataFrame:
    """Clip rows of the asterisk prompts.

    Args:
        roots: ``{package name: extracted package root}`` (any subset of the five languages).
        out_dir: the source's output folder; audio goes to ``audio/<lang>/...flac``.
    """
    rows: list[dict] = []
    jobs: list[ConvertJob] = []
    for lang, (folder, speaker) in ASTERISK_LANGUAGES.items():
        pkg = package_for(lang)
        if pkg not in roots:
            continue
        base = Path(roots[pkg]) / "usr" / "share" / "asterisk" / "sounds" / folder
        if not base.is_dir():
            raise FileNotFoundError(f"{pkg}: expected the prompt folder {base}")
        for wav in sorted(base.rglob("*.wav")):
            rel = wav.relative_to(base).with_suffix("")
            if rel.parts[0] == "silence":
                continue
            prompt = rel.as_posix()
            category = rel.parts[0] if len(rel.parts) > 1 and rel.parts[0] in CATEGORIES else "words"
            dst_rel = Path("audio") / lang / (safe_name(prompt.replace("/", "__")) + ".flac")
            rows.append({"clip_id": f"asterisk-{lang}-{safe_name(prompt.replace('/', '__'))}",
                         "path": dst_rel.as_posix(), "split": hash_split("asterisk:" + prompt),
                         "labels": prompt, "prompt": prompt, "category": category,
                         "language": lang, "speaker": speaker, "source": pkg})
            jobs.append(ConvertJob(wav, out_dir / dst_rel))
    return finish_rows(rows, jobs, workers)
