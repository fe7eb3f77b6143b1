"""Official-format miniatures: tiny copies of every dataset in ``data_manifest.csv``, laid out
exactly as each is distributed, so that the code a user runs on the real download runs here.

``python -m audiorepro.data.miniatures build [--out DIR] [--only NAME ...] [--force]`` builds
them under ``paths.data_dir("miniatures")`` (one folder per dataset, named by its manifest key);
:func:`build_miniature` builds one and returns the folder to give the dataset's adapter:

    root = build_miniature("esc50")
    table = adapters.adapt("esc50", root, **adapter_options("esc50", root))

What a miniature keeps: the directory tree, file names, audio container, sample rate, channels,
sample format and length, the metadata files with their official headers, quoting, comment
lines and known quirks, the real class names (2-3 classes where the real vocabulary is large;
AudioSet keeps all 527). What it changes: a few clips per class, made-up ids, and the audio -
real recordings from the Debian packages of :mod:`audiorepro.data.debian` where those are built
and fit (speech prompts for the speech sets, instrument notes for NSynth/GTZAN/Surge, sound
effects for ESC-50/US8K/FSD50K), otherwise the deterministic generators of the synthetic world.
Each miniature's ``MINIATURE.txt`` says so, lists every file's audio origin and what differs
from the real dataset.

Caching: a miniature is rebuilt only when its recipe changes - the builder parameters, the
source of this package and of the synthetic generators, and which Debian sources are built (the
digest of their done markers); the recipe digest is kept in ``.miniature.json``. Files are
written into a temporary folder renamed into place at the end.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from ._core import (MARKER, README, VERSION, AudioLibrary, MiniatureError, MiniatureSpec, Pick,
                    Sound, build_spec, default_out, read_marker)
from .audioset import AUDIOSET, AUDIOSET_HDF5, TMAC_FEATURES
from .captions import AUDIOCAPS, CLOTHO, WAVCAPS
from .classification import ESC50, FSD50K, GTZAN, NSYNTH, SPCV2, US8K, VC1
from .evar import CREMAD, SURGE, VOXFORGE

#: manifest dataset key -> spec, in the manifest's order
MINIATURES: dict[str, MiniatureSpec] = {s.name: s for s in (
    FSD50K, AUDIOSET, AUDIOSET_HDF5, TMAC_FEATURES, ESC50, US8K, SPCV2, VC1, VOXFORGE, CREMAD,
    GTZAN, NSYNTH, SURGE, CLOTHO, AUDIOCAPS, WAVCAPS)}


def get_spec(name: str) -> MiniatureSpec:
    try:
        return MINIATURES[name]
    except KeyError:
        raise KeyError(f"no miniature {name!r}; known: {sorted(MINIATURES)}") from None


def build_miniature(name: str, out: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Build the miniature of manifest dataset ``name`` under ``out`` (default
    ``paths.data_dir("miniatures")``) unless it is current; returns its root folder."""
    return build_spec(get_spec(name), out, force)


def build_all(out: str | os.PathLike | None = None, only: Sequence[str] | None = None,
              force: bool = False) -> dict[str, Path]:
    names = list(only) if only else list(MINIATURES)
    for n in names:
        get_spec(n)
    return {n: build_miniature(n, out, force) for n in names}


def miniature_root(name: str, out: str | os.PathLike | None = None) -> Path:
    """Where the miniature of ``name`` is (or will be) built."""
    get_spec(name)
    return (Path(out) if out is not None else default_out()) / name


def adapter_options(name: str, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Adapter options that read the miniature of ``name`` at ``root`` (default: its folder):
    e.g. ``metadata_csv`` for the EVAR sets, ``on_missing="drop"`` where a clip is missing."""
    spec = get_spec(name)
    return spec.adapter_options(root if root is not None else miniature_root(name))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audiorepro.data.miniatures",
                                     description="Build official-format miniatures of the "
                                                 "datasets in data_manifest.csv")
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="build (or reuse) miniatures")
    p_build.add_argument("--out", default=None, help="output folder (default: "
                                                     "$AUDIOREPRO_HOME/data/miniatures)")
    p_build.add_argument("--only", nargs="+", default=None, metavar="NAME",
                         help=f"only these datasets: {', '.join(MINIATURES)}")
    p_build.add_argument("--force", action="store_true", help="rebuild even when current")
    sub.add_parser("list", help="list the miniatures")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, spec in MINIATURES.items():
            print(f"{name:<14} adapter {spec.adapter:<14} {spec.title}")
        return 0
    try:
        names = list(args.only) if args.only else list(MINIATURES)
        for n in names:
            get_spec(n)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    for name in names:
        t0 = time.perf_counter()
        root = build_miniature(name, args.out, args.force)
        marker = read_marker(root) or {}
        summary = marker.get("adapter", {})
        state = (f"{summary.get('rows')} clips, {summary.get('classes')} classes"
                 if summary.get("ok") else f"adapter cannot read it: {summary.get('error')}")
        print(f"{name:<14} {root}  ({state}; {time.perf_counter() - t0:.1f} s)")
    return 0


__all__ = ["MINIATURES", "MARKER", "README", "VERSION", "AudioLibrary", "MiniatureError",
           "MiniatureSpec", "Pick", "Sound", "adapter_options", "build_all", "build_miniature",
           "get_spec", "main", "miniature_root"]
