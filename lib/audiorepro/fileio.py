"""Atomic file writes: a temporary file in the target folder, then ``os.replace``.

A reader never sees a half-written file, and an interrupted write leaves the old file (or none).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

import numpy as np


def atomic_write(path: str | os.PathLike, write: Callable[[IO], object], binary: bool = False,
                 fsync: bool = False) -> Path:
    """Write ``path`` through ``write(file)`` on a temporary file, then rename it into place.

    ``fsync`` flushes the data to disk before the rename (for checkpoints and result records).
    The file gets the usual mode (0666 minus the umask), not mkstemp's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf8"})) as f:
            write(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, fsync: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(text), fsync=fsync)


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """``np.save`` atomically."""
    return atomic_write(path, lambda f: np.save(f, array), binary=True)


def atomic_save_torch(obj: Any, path: str | os.PathLike, fsync: bool = True) -> Path:
    """``torch.save`` atomically (flushed to disk by default: checkpoints)."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f), binary=True, fsync=fsync)
