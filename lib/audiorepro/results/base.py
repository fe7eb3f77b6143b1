"""What every part of the results registry shares: its folder, its error, and the papers
(discovered from ``lib/audiorepro/papers/<paper>/paper.yml``)."""
from __future__ import annotations

from pathlib import Path

import yaml

from audiorepro import paths

PAPER_DIR = Path(__file__).resolve().parents[1] / "papers"


class RegistryError(ValueError):
    """A record, a paper file or a claim is malformed; the message names the file / key."""


def records_dir() -> Path:
    """Folder of the record files (``$AUDIOREPRO_HOME/results/records``)."""
    return paths.results_dir("records")


def paper_file(paper: str) -> Path:
    """``lib/audiorepro/papers/<paper>/paper.yml``."""
    return PAPER_DIR / paper / "paper.yml"


def paper_names() -> tuple[str, ...]:
    """Every paper package that has a ``paper.yml``, in book order (the file's ``order`` key,
    then the name). Nothing is listed by hand: a new package folder is a new paper."""
    found = []
    for path in PAPER_DIR.glob("*/paper.yml"):
        data = yaml.safe_load(path.read_text(encoding="utf8")) or {}
        found.append((float(data.get("order", 1e9)), path.parent.name))
    return tuple(name for _, name in sorted(found))
