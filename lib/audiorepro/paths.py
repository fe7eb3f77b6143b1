"""Where generated data, caches and results live.

``AUDIOREPRO_HOME`` (environment variable) sets the base folder; by default it is the repository
root when the package is used from a checkout (a folder with ``pyproject.toml`` above the
package), else the current directory.
"""
from __future__ import annotations

import os
from pathlib import Path


def checkout_root() -> Path | None:
    """The repository root when the package is used from a checkout (a folder with
    ``pyproject.toml`` and ``lib/audiorepro`` above this file), else ``None``."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "lib" / "audiorepro").is_dir():
            return parent
    return None


def home() -> Path:
    env = os.environ.get("AUDIOREPRO_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return checkout_root() or Path.cwd()


def project_path(p: str | os.PathLike) -> Path:
    """A path as notebook parameters name files: ``p`` as given when it exists (or is absolute,
    ``~`` expanded), else relative to the project home (:func:`home`, e.g. ``data/miniatures``
    of a private ``AUDIOREPRO_HOME``)."""
    path = Path(p).expanduser()
    return path if path.is_absolute() or path.exists() else home() / path


def data_dir(*parts: str) -> Path:
    """``$HOME/data/...`` (generated datasets)."""
    return home().joinpath("data", *parts)


def cache_dir(*parts: str) -> Path:
    """``$HOME/cache/...`` (features, trained weights, codebooks)."""
    return home().joinpath("cache", *parts)


def results_dir(*parts: str) -> Path:
    """``$HOME/results/...`` (result records)."""
    return home().joinpath("results", *parts)
