"""Atomic file writes: a temporary file in the target folder, then ``os.replace``.

A reader never sees a half-written file, and an interrupted write leaves the old file (or none).
Temporary files are named ``.<target name>.<pid>.<random>.tmp``; a process killed mid-write
(SIGKILL, power loss) leaves one behind, and the next atomic write into the same folder removes
every temporary file whose writing process no longer exists (:func:`remove_orphan_temporaries`).
Readers never mistake one for a result: they only read final names.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

import numpy as np


_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # exists, owned by someone else
        return True
    return True


def remove_orphan_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files in ``folder`` left by writers that no longer run; returns them.

    Only names of the form written by :func:`atomic_write` are touched, and only when their
    process id is not alive on this machine (a folder shared by several hosts is not supported).
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return removed
    for entry in entries:
        m = _TEMP_NAME.match(entry.name)
        if m and entry.is_file() and int(m.group(1)) != os.getpid() and not _process_alive(int(m.group(1))):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except FileNotFoundError:
                pass
    return removed


def atomic_write(path: str | os.PathLike, write: Callable[[IO], object], binary: bool = False,
                 fsync: bool = False) -> Path:
    """Write ``path`` through ``write(file)`` on a temporary file, then rename it into place.

    ``fsync`` flushes the data to disk before the rename (for checkpoints and result records).
    The file gets the usual mode (0666 minus the umask), not mkstemp's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphan_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
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


def file_digest(path: str | os.PathLike, algo: str = "md5", progress: bool = True) -> str:
    """Hex digest of ``path``, streamed in 1 MiB chunks (a tqdm bar on stderr when ``progress``)."""
    path = Path(path)
    h = hashlib.new(algo)
    bar = None
    if progress:
        from tqdm import tqdm  # only for the bar
        bar = tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=f"{algo} {path.name}",
                   leave=False, file=sys.stderr)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return h.hexdigest()


#: first bytes of a Git LFS pointer file (left in place of a large file by a clone without
#: ``git lfs pull``)
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1"


def lfs_pointer_info(path: str | os.PathLike) -> str | None:
    """``"oid sha256:..., size N"`` when ``path`` is a Git LFS pointer file, else ``None``."""
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError:
        return None
    if not head.startswith(LFS_POINTER_PREFIX):
        return None
    fields = dict(line.split(" ", 1) for line in head.decode("utf-8", "replace").splitlines()
                  if " " in line)
    return f"oid {fields.get('oid', '?')}, size {fields.get('size', '?')}"
