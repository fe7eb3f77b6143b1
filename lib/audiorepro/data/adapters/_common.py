"""Helpers shared by the dataset adapters: reading native metadata with errors that name the file
and row, checking that audio files exist, and turning a frame into a :class:`ClipTable`."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Literal, Sequence

import pandas as pd

from ...fileio import lfs_pointer_info
from ..cliptable import CAPTION_SEP, LABEL_SEP, ClipTable, ClipTableError, join_captions

log = logging.getLogger("audiorepro.data.adapters")

OnMissing = Literal["error", "drop", "keep"]
SPLITS = ("train", "valid", "test")


class AdapterError(ValueError):
    """Native metadata cannot be turned into a clip table; the message names the file and row."""


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is a usable file, else raise :class:`AdapterError` naming ``what``:
    absent, a directory, or a Git LFS pointer file left in its place by a clone without
    ``git lfs pull``."""
    path = Path(path)
    if path.is_dir():
        raise AdapterError(f"{what} {path} is a directory, not a file")
    if not path.is_file():
        raise AdapterError(f"{what} not found: {path}")
    lfs = lfs_pointer_info(path)
    if lfs is not None:
        raise AdapterError(f"{what} {path} is a Git LFS pointer ({lfs}), not the file: fetch "
                           f"the content (git lfs pull)")
    return path


def read_csv(path: Path, what: str, **kwargs) -> pd.DataFrame:
    """``pandas.read_csv`` with every cell read as text; parse errors name the file."""
    require_file(path, what)
    kwargs.setdefault("dtype", str)
    kwargs.setdefault("keep_default_na", False)
    try:
        df = pd.read_csv(path, **kwargs)
    except Exception as exc:  # pandas raises several error types
        raise AdapterError(f"cannot parse {what} {path}: {exc}") from exc
    if not isinstance(df.index, pd.RangeIndex):
        # pandas silently turns the first column into an index when the first data row has one
        # more field than the header (e.g. an unquoted comma inside a caption)
        raise AdapterError(f"cannot parse {what} {path}: the first data line has more fields "
                           f"than the header {list(df.columns)} (unquoted comma?)")
    return df


def require_columns(frame: pd.DataFrame, columns: Sequence[str], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AdapterError(f"{path}: missing column(s) {missing}; found {list(frame.columns)}")


def check_unique(values: Sequence[str], path: Path | str, what: str, line_offset: int = 2) -> None:
    """Raise if ``values`` has a duplicate; the message names the file, the value and both rows.

    ``line_offset`` converts a 0-based row index to a file line number (2 for a CSV with header).
    """
    seen: dict[str, int] = {}
    for i, v in enumerate(values):
        if v in seen:
            raise AdapterError(f"{path}: duplicated {what} {v!r} at lines {seen[v] + line_offset} "
                               f"and {i + line_offset}")
        seen[v] = i


def check_label_text(labels: Iterable[str], path: Path | str, line_offset: int = 2) -> None:
    """Labels may not contain the clip-table separator ``;``."""
    for i, lab in enumerate(labels):
        if LABEL_SEP in lab:
            raise AdapterError(f"{path}, line {i + line_offset}: label {lab!r} contains "
                               f"{LABEL_SEP!r}, the clip-table label separator")


def clean_caption(text: object) -> str:
    """Strip a caption and replace the clip-table caption separator ``|`` by ``/``."""
    if text is None or (isinstance(text, float) and text != text):
        return ""
    return str(text).strip().replace(CAPTION_SEP, "/")


def captions_cell(captions: Iterable[object]) -> str:
    """Join non-empty cleaned captions with ``|``."""
    return join_captions([c for c in (clean_caption(t) for t in captions) if c])


def strip_ext(name: str) -> str:
    """``"a/b.c.wav"`` -> ``"a/b.c"`` (only the last suffix is removed)."""
    root, _ = os.path.splitext(name)
    return root


def handle_missing(frame: pd.DataFrame, root: Path, on_missing: OnMissing, dataset: str,
                   show: int = 5) -> pd.DataFrame:
    """Check that every ``path`` exists under ``root``.

    ``on_missing``: ``error`` raises with the count and the first ``show`` missing files;
    ``drop`` removes those rows and logs the same report at WARNING; ``keep`` only logs it.
    Paths of the form ``file.h5#index`` are checked for ``file.h5``.
    """
    if on_missing not in ("error", "drop", "keep"):
        raise ValueError(f"on_missing must be error/drop/keep, got {on_missing!r}")
    if not len(frame):
        return frame
    files = frame["path"].astype(str).map(lambda p: p.split("#", 1)[0])
    exists = {f: (root / f).is_file() for f in files.unique()}
    mask = files.map(exists).to_numpy()
    n_missing = int((~mask).sum())
    if n_missing == 0:
        return frame
    first = list(files[~mask].iloc[:show])
    msg = (f"{dataset}: {n_missing} of {len(frame)} audio files are missing under {root} "
           f"(first {len(first)}: {first})")
    if on_missing == "error":
        raise AdapterError(msg + "; pass on_missing='drop' to leave them out or 'keep' to keep "
                                 "the rows")
    if on_missing == "drop":
        log.warning("%s; dropped", msg)
        return frame[mask].reset_index(drop=True)
    log.warning("%s; kept", msg)
    return frame


def finish(frame: pd.DataFrame, root: Path, classes: Sequence[str], name: str,
           out_csv: str | os.PathLike | None, on_missing: OnMissing = "error") -> ClipTable:
    """Missing-file handling, validation as a :class:`ClipTable`, optional write.

    When ``out_csv`` is given, ``path`` entries are rewritten relative to the CSV's folder so the
    written table reads back with the same audio files.
    """
    root = Path(root)
    frame = handle_missing(frame.reset_index(drop=True), root, on_missing, name)
    try:
        table = ClipTable(frame, root, list(classes), name)
    except ClipTableError as exc:
        raise AdapterError(f"{name} (root {root}): {exc}") from exc
    if out_csv is not None:
        out_csv = Path(out_csv)
        out_dir = out_csv.parent.resolve()
        written = table.frame.copy()
        written["path"] = [_relative_to(root.resolve() / p, out_dir) for p in written["path"]]
        ClipTable(written, out_dir, table.classes, name).write(out_csv)
    return table


def _relative_to(path: Path, folder: Path) -> str:
    return os.path.relpath(path, folder)
