"""One cache key for every run cache and done marker: parameters + data fingerprint + code digest.

A cached result (trained weights, embeddings, a finished notebook) may be served only when all
three are unchanged:

* ``params``: everything the caller passes that defines the run (a JSON-able mapping);
* ``data``: a fingerprint of the data the run reads (:func:`table_fingerprint` for a clip table,
  or any JSON-able description);
* ``code``: the source of the modules the run executes (:func:`code_digest`), so a changed model
  or training loop never reloads weights trained by older code.

Example::

    key = run_key({"arch": "pyr-s", "lr": 1e-3}, data=table_fingerprint(table),
                  code=["audiorepro.papers.atgnn", "audiorepro.training"])
    run_dir = paths.cache_dir("runs", "atgnn", f"pyr-s_{key}")
"""
from __future__ import annotations

import hashlib
import importlib
import json
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable, Mapping

SOURCE_SUFFIXES = (".py", ".yml", ".yaml", ".csv", ".txt")
#: files of a package that no cached computation reads: ``paper.yml`` holds a paper's printed
#: numbers and claims, read by tables and verdicts only, so editing a claim's text or test does
#: not make every cached embedding and training run of the paper stale
NOT_CODE = ("paper.yml",)


def canonical_json(obj: Any) -> str:
    """Sorted-key JSON of ``obj`` (non-JSON values through ``str``): equal inputs, equal text."""
    return json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))


def stable_digest(obj: Any, length: int = 16) -> str:
    """First ``length`` hex digits of the sha256 of :func:`canonical_json` of ``obj``."""
    return hashlib.sha256(canonical_json(obj).encode("utf8")).hexdigest()[:length]


def tree_digest(root: Path, suffixes: Iterable[str] = SOURCE_SUFFIXES) -> str:
    """sha256 over the files below ``root`` (or the file ``root``) with one of ``suffixes``:
    relative names and contents, in sorted order, ``__pycache__`` and :data:`NOT_CODE` skipped."""
    root = Path(root)
    h = hashlib.sha256()
    files = [root] if root.is_file() else sorted(root.rglob("*"))
    for path in files:
        if (path.is_file() and path.suffix in tuple(suffixes) and "__pycache__" not in path.parts
                and path.name not in NOT_CODE):
            h.update(path.name.encode() if path == root else path.relative_to(root).as_posix().encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


@lru_cache(maxsize=None)
def _module_digest(name: str) -> str:
    module = importlib.import_module(name)
    file = getattr(module, "__file__", None)
    if file is None:
        raise ValueError(f"module {name!r} has no source file to digest")
    path = Path(file).resolve()
    return tree_digest(path.parent if path.name == "__init__.py" else path)


def code_digest(modules: Iterable[str | ModuleType], length: int = 16) -> str:
    """Digest of the source of ``modules`` (dotted names or module objects; a package counts with
    every source file below it). Cached per process: source does not change under a run."""
    names = sorted({m.__name__ if isinstance(m, ModuleType) else str(m) for m in modules})
    return stable_digest({n: _module_digest(n) for n in names}, length)


#: what every training run executes besides its paper's package
CORE_TRAINING_CODE = ("audiorepro.training", "audiorepro.augment", "audiorepro.frontends",
                      "audiorepro.metrics", "audiorepro.preprocessing", "audiorepro.data.audio",
                      "audiorepro.data.dataset")


def run_key(params: Mapping[str, Any], data: Any = None,
            code: Iterable[str | ModuleType] = (), length: int = 16) -> str:
    """The cache key of one run: digest of (parameters, data fingerprint, code digest)."""
    return stable_digest({"params": dict(params), "data": data, "code": code_digest(code)}, length)


def table_fingerprint(table: Any) -> str:
    """Fingerprint of a :class:`~audiorepro.data.cliptable.ClipTable` (or a DataFrame): its
    rows' ids, paths, offsets, splits, labels and captions, and the class list. File contents are
    not read (fast); a changed file behind an unchanged path is the data builder's business (the
    builders write new folders when their recipe changes)."""
    frame = getattr(table, "frame", table)
    cols = [c for c in ("clip_id", "path", "start_s", "duration_s", "split", "labels", "captions")
            if c in frame.columns]
    text = frame[cols].to_csv(index=False) + "|" + ",".join(getattr(table, "classes", []) or [])
    return hashlib.sha256(text.encode("utf8")).hexdigest()[:16]
