"""Result records: one JSON file per run of one table row (or per verdict), with provenance.

See :mod:`audiorepro.results` for the overview.
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import uuid
import warnings
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from audiorepro import paths
from audiorepro.fileio import atomic_write_text

from .base import RegistryError, paper_file, paper_names, records_dir
from .items import save_items

SCHEMA_VERSION = 1
_PACKAGES = ("torch", "torchaudio", "numpy", "scikit-learn", "pandas", "audiorepro")
PROFILES = ("smoke", "book", "paper")
# Chapters of the book that record results but are not a paper package (papers are discovered:
# audiorepro.results.paper_names()): the shared backbones' pre-training.
BOOK_CHAPTERS = ("backbones",)
#: environment variables the book executor sets for the kernel of each notebook it runs: the
#: notebook (``chapter/stem`` or ``chapter/stem [variant]``) and a fresh id of this execution
NOTEBOOK_ENV, EXECUTION_ENV = "AUDIOREPRO_NOTEBOOK", "AUDIOREPRO_EXECUTION"


# ---------------------------------------------------------------------------------- provenance
def _repo_root() -> Path | None:
    """The checkout that holds this package (folder with ``pyproject.toml``), if any."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "lib" / "audiorepro").is_dir():
            return parent
    return None


@lru_cache(maxsize=1)
def git_info() -> dict[str, Any]:
    """``{"revision": sha or "unknown", "dirty": bool or None}`` of the package's checkout.

    Cached per process: a notebook's records share one revision.
    """
    root = _repo_root()
    if root is None:
        return {"revision": "unknown", "dirty": None}
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        if rev.returncode != 0:
            return {"revision": "unknown", "dirty": None}
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                 "--untracked-files=no"], capture_output=True, text=True, timeout=30)
        dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
        return {"revision": rev.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"revision": "unknown", "dirty": None}


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Installed versions of the packages that determine a result (no import needed)."""
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["python"] = platform.python_version()
    return out


@lru_cache(maxsize=1)
def machine_info() -> dict[str, Any]:
    """Hostname-free machine description: CPU count, architecture, OS and compute device."""
    import torch  # local import: reading records must not need torch

    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)}) x{torch.cuda.device_count()}"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = "mps"
    else:
        device = "cpu"
    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "machine": platform.machine(), "system": platform.system(), "device": device}


# --------------------------------------------------------------------------------- writing
def _check_name(kind: str, name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise RegistryError(f"{kind} must be a non-empty string, got {name!r}")
    return name


def _check_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    if not isinstance(metrics, Mapping) or not metrics:
        raise RegistryError(f"metrics must be a non-empty dict of name -> number, got {metrics!r}")
    out = {}
    for key, value in metrics.items():
        _check_name("metric name", key)
        if key.lower().startswith("paper"):
            raise RegistryError(f"metric {key!r}: paper numbers are never stored in result records "
                                "(they live in lib/audiorepro/papers/*.yml)")
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # 0-d tensor / array
                value = value.item()
            else:
                raise RegistryError(f"metric {key!r} must be a number, got {type(value).__name__}")
        value = float(value)
        if not math.isfinite(value):
            raise RegistryError(f"metric {key!r} is {value}; only finite numbers are recorded "
                                "(explain a failed measurement in notes instead)")
        out[key] = value
    return out


def _jsonable(value: Any, where: str) -> Any:
    """Plain JSON value of a parameter (numpy scalars, tuples, paths converted)."""
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RegistryError(f"{where} is {value}; parameters must be finite")
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    raise RegistryError(f"{where} has type {type(value).__name__}; use numbers, strings, lists")


def _new_stem() -> tuple[str, datetime]:
    """A unique, time-ordered record id and its time."""
    now = datetime.now(timezone.utc)
    return f"{now.strftime('%Y%m%dT%H%M%S.%fZ')}-{uuid.uuid4().hex[:12]}", now


def _write_atomic(payload: dict[str, Any], folder: Path,
                  stem: tuple[str, datetime] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    name, now = stem or _new_stem()
    final = folder / f"{name}.json"
    payload = {**payload, "record_id": final.stem, "timestamp": now.isoformat()}
    atomic_write_text(final, json.dumps(payload, indent=1, sort_keys=True, allow_nan=False), fsync=True)
    return final


def execution_info() -> dict[str, str] | None:
    """``{"notebook": ..., "id": ...}`` of the book execution writing records now (set by the book
    executor through :data:`NOTEBOOK_ENV` / :data:`EXECUTION_ENV`), or None outside it."""
    notebook, run_id = os.environ.get(NOTEBOOK_ENV), os.environ.get(EXECUTION_ENV)
    return {"notebook": notebook, "id": run_id} if notebook and run_id else None


def _provenance() -> dict[str, Any]:
    return {"schema": SCHEMA_VERSION, "git": git_info(), "versions": package_versions(),
            "machine": machine_info(), "execution": execution_info()}


def record(chapter: str, table: str, metrics: Mapping[str, Any], params: Mapping[str, Any],
           dataset: str, scale: str, profile: str, model: str = "", notes: str = "",
           duration_s: float | None = None, items: Any = None) -> Path:
    """Append one result record (one run of one table row) and return its file.

    Args:
        chapter: chapter / paper name (``atgnn`` ...). table: the paper table id it reproduces
            (``table2``) or a table of the book's own (``ablation_k``).
        metrics: metric name -> finite number computed by this run (fractions, raw counts).
        params: the run's parameters (JSON values); ``paper_row`` names the paper row matched.
        dataset / scale / profile: which data, how much of it, which book profile
            (``smoke`` / ``book`` / ``paper``). model: the model that really ran.
        duration_s: wall time of the run, if measured.
        items: the per-item outputs that computed ``metrics`` (test clips' scores and targets,
            per-query ranks, ...: :mod:`audiorepro.results.items`), stored beside the record in
            ``<record_id>.items.npz`` so that verdicts can resample them. ``params["seed"]``
            names the seed of the run and ``params["run_group"]`` (:func:`new_run_group`) the
            execution of a grid / table it belongs to.
    """
    for kind, value in (("chapter", chapter), ("table", table), ("dataset", dataset),
                        ("scale", scale), ("profile", profile)):
        _check_name(kind, value)
    if profile not in PROFILES:
        raise RegistryError(f"profile {profile!r} is not one of {PROFILES}")
    if chapter not in BOOK_CHAPTERS and not paper_file(chapter).is_file():
        raise RegistryError(f"chapter {chapter!r} is not a chapter that records results "
                            f"(known: {[*paper_names(), *BOOK_CHAPTERS]})")
    if not isinstance(params, Mapping):
        raise RegistryError(f"params must be a dict, got {type(params).__name__}")
    if duration_s is not None and not (isinstance(duration_s, (int, float))
                                       and math.isfinite(duration_s) and duration_s >= 0):
        raise RegistryError(f"duration_s must be a finite number >= 0, got {duration_s!r}")
    payload = {"kind": "result", "chapter": chapter, "table": table,
               "metrics": _check_metrics(metrics),
               "params": {str(k): _jsonable(v, f"params[{k!r}]") for k, v in params.items()},
               "dataset": dataset, "scale": scale, "profile": profile, "model": str(model),
               "notes": str(notes), "duration_s": None if duration_s is None else float(duration_s),
               **_provenance()}
    stem = _new_stem()
    if items is not None:   # written first: a record never points at a missing items file
        payload["items"] = save_items(items, payload["metrics"], stem[0], records_dir())
    return _write_atomic(payload, records_dir(), stem)


# --------------------------------------------------------------------------------- reading
class CorruptRecordWarning(UserWarning):
    """A record file is unreadable or incomplete; readers skip it (see corrupt_records())."""


_REQUIRED = {"result": ("chapter", "table", "dataset", "scale", "profile"),
             "claim": ("chapter", "claim_id", "verdict", "evidence")}


def _problem(rec: Any) -> str | None:
    """Why a parsed record cannot be used, or None."""
    if not isinstance(rec, dict):
        return f"not a JSON object but {type(rec).__name__}"
    for key in ("kind", "record_id", "timestamp"):
        if not isinstance(rec.get(key), str) or not rec[key]:
            return f"missing or empty {key!r}"
    if rec["kind"] not in _REQUIRED:
        return f"unknown kind {rec['kind']!r}"
    for key in _REQUIRED[rec["kind"]]:
        if not isinstance(rec.get(key), str) or not rec[key]:
            return f"missing or empty {key!r}"
    if rec["kind"] == "result":
        metrics = rec.get("metrics")
        if not isinstance(metrics, dict) or not metrics:
            return "no 'metrics' object"
        for name, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"metric {name!r} is not a number: {value!r}"
            if not math.isfinite(value):
                return f"metric {name!r} is {value}"
        if not isinstance(rec.get("params", {}), dict):
            return "'params' is not an object"
        ex = rec.get("execution")
        if ex is not None and not (isinstance(ex, dict) and all(
                isinstance(ex.get(k), str) and ex[k] for k in ("notebook", "id"))):
            return f"'execution' is not {{notebook, id}}: {ex!r}"
    return None


def _scan() -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(usable records, corrupt files) of the registry folder."""
    folder = records_dir()
    if not folder.is_dir():
        return [], []
    good, bad = [], []
    for path in sorted(folder.glob("*.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf8"))
            problem = _problem(rec)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problem = f"unreadable: {exc}"
        if problem is None:
            good.append(rec)
        else:
            bad.append({"file": path.name, "path": str(path), "problem": problem})
    return good, bad


def corrupt_records() -> pd.DataFrame:
    """Record files that readers skip: columns ``file`` (name in the registry folder),
    ``path`` and ``problem`` (unreadable JSON, missing ``record_id``, a metric that is a string
    or NaN, ...). Empty when the registry is sound."""
    return pd.DataFrame(_scan()[1], columns=["file", "path", "problem"])


def executions_dir() -> Path:
    """Folder of the completion marks of book executions (``results/executions``)."""
    return paths.results_dir("executions")


def mark_execution_complete(execution: Mapping[str, str]) -> Path:
    """Record that the execution ``{"notebook", "id"}`` (:func:`execution_info`) finished: only
    then may it supersede older executions of its notebook (:func:`superseded`)."""
    folder = executions_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{execution['id']}.json"
    atomic_write_text(path, json.dumps({"notebook": execution["notebook"], "id": execution["id"],
                                        "finished": datetime.now(timezone.utc).isoformat()}))
    return path


def _completed_executions() -> set[str]:
    folder = executions_dir()
    return {p.stem for p in folder.glob("*.json")} if folder.is_dir() else set()


def superseded(recs: Iterable[Mapping[str, Any]]) -> set[str]:
    """Record ids a newer, finished execution of the same notebook replaced.

    A notebook run by the book executor stamps its records with its execution
    (:func:`execution_info`), and the executor marks the execution complete when the notebook
    finished without error (:func:`mark_execution_complete`). Among the records of one
    (chapter, table, notebook, profile) - the notebook label names its parameter-file variant -
    those of every execution older than the newest *complete* one are superseded (the execution
    running in this process counts as complete, so a notebook's own tables see its new rows): a
    row the notebook no longer produces (a smaller grid, a renamed row, other data or epochs)
    disappears with its old execution instead of standing beside the new rows. A failed execution
    supersedes nothing. Records without an execution (written outside the executor, or before
    records carried one) are never superseded by this rule.
    """
    done = _completed_executions()
    here = execution_info()
    if here:
        done.add(here["id"])
    newest: dict[tuple, tuple[str, str]] = {}      # key -> (timestamp, id) of its newest complete
    keyed = []
    for r in recs:
        ex = r.get("execution")
        if not ex:
            continue
        key, stamp = (r["chapter"], r["table"], ex["notebook"], r["profile"]), (r["timestamp"], ex["id"])
        keyed.append((key, stamp, r["record_id"]))
        if ex["id"] in done and (key not in newest or stamp > newest[key]):
            newest[key] = stamp
    return {rid for key, stamp, rid in keyed
            if key in newest and stamp[1] != newest[key][1] and stamp < newest[key]}


def _read_all(kind: str) -> list[dict[str, Any]]:
    """Every usable record of ``kind``; a corrupt file is skipped with a
    :class:`CorruptRecordWarning` naming it, so one bad file never blocks the others."""
    good, bad = _scan()
    for b in bad:
        warnings.warn(f"skipping corrupt results record {b['path']}: {b['problem']}",
                      CorruptRecordWarning, stacklevel=3)
    return [rec for rec in good if rec["kind"] == kind]


def _flat_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``{"lr": 1e-3, "k": [9, 18]}`` -> ``{"param.lr": 1e-3, "param.k": "[9, 18]"}``."""
    return {f"param.{k}": (json.dumps(v) if isinstance(v, (list, dict)) else v)
            for k, v in params.items()}


META_COLUMNS = ("record_id", "timestamp", "chapter", "table", "model", "row", "dataset", "scale",
                "profile", "metric", "value", "notes", "duration_s", "git_revision", "git_dirty",
                "notebook")


def load_records(chapter: str | None = None, table: str | None = None,
                 latest: bool = False, current: bool = False) -> pd.DataFrame:
    """All result records as a tidy table: one row per metric value.

    Columns: ``record_id, timestamp, chapter, table, model, row`` (the paper row matched:
    ``params["paper_row"]`` or ``model``), ``dataset, scale, profile, metric, value, notes,
    duration_s, git_revision, git_dirty, notebook`` (the book notebook that wrote it, empty
    outside the executor) and one ``param.<name>`` column per parameter.
    With ``latest=True`` only the newest value is kept for each identical key (chapter, table,
    model, dataset, scale, profile, parameters, metric). With ``current=True`` records a newer
    execution of their notebook superseded (:func:`superseded`) are left out.
    """
    rows = []
    recs = [r for r in _read_all("result")
            if (chapter is None or r["chapter"] == chapter) and (table is None or r["table"] == table)]
    gone = superseded(recs) if current else set()
    for rec in recs:
        if rec["record_id"] in gone:
            continue
        params = rec.get("params", {})
        base = {"record_id": rec["record_id"], "timestamp": rec["timestamp"],
                "chapter": rec["chapter"], "table": rec["table"], "model": rec.get("model", ""),
                "row": str(params.get("paper_row") or rec.get("model", "")),
                "dataset": rec["dataset"], "scale": rec["scale"], "profile": rec["profile"],
                "notes": rec.get("notes", ""), "duration_s": rec.get("duration_s"),
                "git_revision": rec.get("git", {}).get("revision", "unknown"),
                "git_dirty": rec.get("git", {}).get("dirty"),
                "notebook": (rec.get("execution") or {}).get("notebook", "")}
        flat = _flat_params(params)
        for metric, value in rec["metrics"].items():
            rows.append({**base, "metric": metric, "value": float(value), **flat})
    if not rows:
        return pd.DataFrame(columns=list(META_COLUMNS))
    df = pd.DataFrame(rows)
    param_cols = sorted(c for c in df.columns if c.startswith("param."))
    df = df[list(META_COLUMNS) + param_cols]
    df = df.sort_values(["timestamp", "record_id"], kind="stable").reset_index(drop=True)
    if latest:
        key = ["chapter", "table", "model", "dataset", "scale", "profile", "metric"] + param_cols
        df = df.drop_duplicates(subset=key, keep="last").reset_index(drop=True)
    return df

