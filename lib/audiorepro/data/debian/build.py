"""Build the per-source clip tables from the Debian packages (cached, with done markers).

Output of source ``NAME`` (``data_dir("debian", NAME)`` unless ``data_root`` is given)::

    NAME.csv, NAME.classes.txt     the clip table (ClipTable format, paths relative)
    audio/...flac                  16 kHz mono FLAC clips
    .done.json                     done marker: packages, versions, sha256, clip count, seconds

A second :func:`build_source` with a done marker only reads the table. Delete the folder (or
pass ``force=True``) to rebuild; converted clips already on disk are reused.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from ... import paths
from ...fileio import atomic_write_text
from ..cliptable import ClipTable
from . import asterisk, hedgewars, hydrogen, klettres, soundfont, tuxpaint
from .fetch import DebianSourceUnavailable, FetchedPackage, fetch_packages
from .sources import FLUIDSYNTH_LICENCE, SOURCES, get_source

log = logging.getLogger(__name__)

Builder = Callable[..., pd.DataFrame]
BUILDERS: dict[str, Builder] = {
    "asterisk": asterisk.build, "tuxpaint": tuxpaint.build, "klettres": klettres.build,
    "hedgewars": hedgewars.build, "hydrogen": hydrogen.build, "soundfont": soundfont.build,
}
MANIFEST_ROWS = Path(__file__).with_name("manifest_rows.csv")
MANIFEST_COLUMNS = ("source", "package", "version", "licence", "copyright_licences", "origin",
                    "files", "sha256")


def data_root(root: str | os.PathLike | None = None) -> Path:
    return Path(root) if root is not None else paths.data_dir("debian")


def source_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    return data_root(root) / name


def table_path(name: str, root: str | os.PathLike | None = None) -> Path:
    return source_dir(name, root) / f"{name}.csv"


def is_built(name: str, root: str | os.PathLike | None = None) -> bool:
    return (source_dir(name, root) / ".done.json").is_file() and table_path(name, root).is_file()


def build_source(name: str, force: bool = False, cache: str | os.PathLike | None = None,
                 root: str | os.PathLike | None = None, workers: int = 2,
                 roots: Mapping[str, Path] | None = None, **builder_kwargs) -> ClipTable:
    """Fetch the packages of source ``name`` and build its clip table (cached).

    Args:
        name: a key of :data:`~.sources.SOURCES`.
        force: rebuild even when the done marker exists.
        cache: package cache folder (default ``cache_dir("debian")``).
        root: output base folder (default ``data_dir("debian")``).
        roots: extracted package roots to use instead of fetching (tests, offline trees).
        builder_kwargs: passed to the builder (e.g. ``renderer`` for ``soundfont``).
    Raises:
        DebianSourceUnavailable: a package cannot be fetched (the message names it).
    """
    src = get_source(name)
    out = source_dir(name, root)
    marker = out / ".done.json"
    if not force and is_built(name, root):
        return ClipTable.read(table_path(name, root), name=name)
    t0 = time.perf_counter()
    fetched: dict[str, FetchedPackage] = {}
    if roots is None:
        fetched = fetch_packages(src.packages, cache)
        roots = {p: f.root for p, f in fetched.items()}
    extra: dict = {}
    if name == "soundfont" and "renderer" not in builder_kwargs:
        from .fetch import fluidsynth
        fs = fluidsynth(cache)
        extra["fluidsynth"] = {"version": fs.version, "argv0": fs.argv0,
                               "packages": {f.name: {"version": f.version, "sha256": f.sha256,
                                                     "licences": f.licences} for f in fs.packages}}
        builder_kwargs["renderer"] = soundfont.fluidsynth_renderer(cache)
    out.mkdir(parents=True, exist_ok=True)
    frame = BUILDERS[name](roots, out, workers=workers, **builder_kwargs)
    if len(frame) == 0:
        raise DebianSourceUnavailable(src.packages[0], f"the {name} builder found no clips in "
                                                       f"{sorted(map(str, roots.values()))}")
    table = ClipTable(frame, out, name=name)
    table.write(table_path(name, root))
    info = {"source": name, "clips": len(table), "build_seconds": round(time.perf_counter() - t0, 2),
            "packages": {p: {"version": f.version, "sha256": f.sha256, "licences": f.licences,
                             "files": int((frame["source"] == p).sum()) if "source" in frame else 0}
                         for p, f in fetched.items()}, **extra}
    atomic_write_text(marker, json.dumps(info, indent=1))
    return table


def load_source(name: str, root: str | os.PathLike | None = None, **kwargs) -> ClipTable:
    """The clip table of source ``name``, built first if needed."""
    return build_source(name, root=root, **kwargs)


def build_all(only: list[str] | None = None, force: bool = False, **kwargs
              ) -> dict[str, ClipTable | DebianSourceUnavailable]:
    """Build every source (or ``only`` those); an unavailable source is reported, not raised."""
    names = list(SOURCES) if not only else only
    for n in names:
        get_source(n)
    out: dict[str, ClipTable | DebianSourceUnavailable] = {}
    for n in names:
        try:
            out[n] = build_source(n, force=force, **kwargs)
        except DebianSourceUnavailable as exc:
            log.error("%s", exc)
            out[n] = exc
    return out


def manifest_rows(root: str | os.PathLike | None = None) -> list[dict]:
    """Manifest rows (one per package, plus the fluidsynth tool packages) of the built sources."""
    rows = []
    for name, src in SOURCES.items():
        marker = source_dir(name, root) / ".done.json"
        if not marker.is_file():
            continue
        info = json.loads(marker.read_text())
        for pkg, p in info.get("packages", {}).items():
            rows.append({"source": name, "package": pkg, "version": p["version"],
                         "licence": src.licence, "copyright_licences": "; ".join(p["licences"]),
                         "origin": f"Debian package {pkg} {p['version']}", "files": p["files"],
                         "sha256": p["sha256"]})
        for pkg, p in info.get("fluidsynth", {}).get("packages", {}).items():
            rows.append({"source": f"{name} (renderer)", "package": pkg, "version": p["version"],
                         "licence": FLUIDSYNTH_LICENCE if pkg.endswith("fluidsynth3") or
                         pkg == "fluidsynth" else "; ".join(p["licences"]),
                         "copyright_licences": "; ".join(p["licences"]),
                         "origin": f"Debian package {pkg} {p['version']}", "files": 0,
                         "sha256": p["sha256"]})
    return rows


def write_manifest_rows(path: str | os.PathLike = MANIFEST_ROWS,
                        root: str | os.PathLike | None = None) -> Path:
    """Write :func:`manifest_rows` as CSV (rows of sources not built here are kept from the old
    file, so partial builds do not erase them)."""
    path = Path(path)
    new = manifest_rows(root)
    built = {r["package"] for r in new}
    old: list[dict] = []
    if path.is_file():
        with open(path, newline="") as f:
            old = [r for r in csv.DictReader(f) if r.get("package") not in built]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(MANIFEST_COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in sorted(old + new, key=lambda r: (r["source"], r["package"])):
        w.writerow({k: r.get(k, "") for k in MANIFEST_COLUMNS})
    atomic_write_text(path, buf.getvalue())
    return path
