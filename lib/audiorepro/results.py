"""Results registry: every score the book computes is appended to one table (in the spirit of EVAR).

Records
    One JSON file per record under ``audiorepro.paths.results_dir("records")``, written atomically
    (temporary file in the same folder + ``os.replace``) with a unique name made of the UTC time
    and a uuid, so concurrent writers (notebooks, DDP ranks, test processes) never corrupt each
    other and never need a lock. A *result* record holds the metrics of one run of one table
    row; a *claim* record holds a verdict on one of a paper's headline claims. Both carry the
    provenance of the run: git revision and dirty flag, package versions, hostname-free machine
    information and a timestamp.

Units
    Records store what the run computed in plain units: mAP / AUC / accuracy / R@k / mAP@10 as
    fractions in [0, 1], parameter counts and FLOPs as raw counts. The paper files
    (``lib/audiorepro/papers/<paper>.yml``) declare the unit of each printed column (``fraction``,
    ``%``, ``M``, ``GFLOPs``); :func:`paper_vs_run` converts the run's value into that unit for
    display next to the paper's number.

Matching a run to a paper row
    A record matches the paper table row named by ``params["paper_row"]`` when given, else by
    ``model``; its metric names are the paper table's column keys (e.g. ``mAP``, ``R@1``, ``ESC-50``).
    So a notebook that trains a scaled-down model records ``model="ATGNN-pyr-s (C/4, 3 blocks)"``
    and ``params={"paper_row": "ATGNN-pyr-s", ...}``: the table shows which model really ran.

Paper numbers are read from the YAML files only and are never written into records:
:func:`record` refuses metric names starting with ``paper``.
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
import yaml

from audiorepro import paths
from audiorepro.fileio import atomic_write_text

VERDICTS = ("reproduced", "not reproduced", "not yet measured")
PAPERS = ("atgnn", "thgcl", "bow", "fusion", "retrieval")
PAPER_DIR = Path(__file__).resolve().parent / "papers"
SCHEMA_VERSION = 1
# Factor from the record's unit (fraction / raw count) to the paper column's unit.
UNIT_FACTORS = {"fraction": 1.0, "%": 100.0, "M": 1e-6, "GFLOPs": 1e-9, "count": 1.0, "s": 1.0,
                "as recorded": 1.0}
RESULT_COLUMNS = ("paper", "this run", "dataset", "scale", "profile", "model")
_PACKAGES = ("torch", "torchaudio", "numpy", "scikit-learn", "pandas", "audiorepro")


class RegistryError(ValueError):
    """A record, a paper file or a claim is malformed; the message names the file / key."""


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
def records_dir() -> Path:
    """Folder of the record files (``$AUDIOREPRO_HOME/results/records``)."""
    return paths.results_dir("records")


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


def _write_atomic(payload: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    name = f"{now.strftime('%Y%m%dT%H%M%S.%fZ')}-{uuid.uuid4().hex[:12]}.json"
    final = folder / name
    payload = {**payload, "record_id": final.stem, "timestamp": now.isoformat()}
    atomic_write_text(final, json.dumps(payload, indent=1, sort_keys=True, allow_nan=False), fsync=True)
    return final


def _provenance() -> dict[str, Any]:
    return {"schema": SCHEMA_VERSION, "git": git_info(), "versions": package_versions(),
            "machine": machine_info()}


def record(chapter: str, table: str, metrics: Mapping[str, Any], params: Mapping[str, Any],
           dataset: str, scale: str, profile: str, model: str = "", notes: str = "",
           duration_s: float | None = None) -> Path:
    """Append one result record (one run of one table row) and return its file.

    Args:
        chapter: chapter / paper name (``atgnn`` ...). table: the paper table id it reproduces
            (``table2``) or a table of the book's own (``ablation_k``).
        metrics: metric name -> finite number computed by this run (fractions, raw counts).
        params: the run's parameters (JSON values); ``paper_row`` names the paper row matched.
        dataset / scale / profile: which data, how much of it, which book profile
            (``smoke`` / ``book`` / ``paper``). model: the model that really ran.
        duration_s: wall time of the run, if measured.
    """
    for kind, value in (("chapter", chapter), ("table", table), ("dataset", dataset),
                        ("scale", scale), ("profile", profile)):
        _check_name(kind, value)
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
    return _write_atomic(payload, records_dir())


# --------------------------------------------------------------------------------- reading
def _read_all(kind: str) -> list[dict[str, Any]]:
    folder = records_dir()
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RegistryError(f"unreadable result record {path}: {exc}") from exc
        if not isinstance(rec, dict) or "kind" not in rec:
            raise RegistryError(f"result record {path} has no 'kind' field")
        if rec["kind"] == kind:
            out.append(rec)
    return out


def _flat_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``{"lr": 1e-3, "k": [9, 18]}`` -> ``{"param.lr": 1e-3, "param.k": "[9, 18]"}``."""
    return {f"param.{k}": (json.dumps(v) if isinstance(v, (list, dict)) else v)
            for k, v in params.items()}


META_COLUMNS = ("record_id", "timestamp", "chapter", "table", "model", "row", "dataset", "scale",
                "profile", "metric", "value", "notes", "duration_s", "git_revision", "git_dirty")


def load_records(chapter: str | None = None, table: str | None = None,
                 latest: bool = False) -> pd.DataFrame:
    """All result records as a tidy table: one row per metric value.

    Columns: ``record_id, timestamp, chapter, table, model, row`` (the paper row matched:
    ``params["paper_row"]`` or ``model``), ``dataset, scale, profile, metric, value, notes,
    duration_s, git_revision, git_dirty`` and one ``param.<name>`` column per parameter.
    With ``latest=True`` only the newest value is kept for each identical key (chapter, table,
    model, dataset, scale, profile, parameters, metric).
    """
    rows = []
    for rec in _read_all("result"):
        if chapter is not None and rec["chapter"] != chapter:
            continue
        if table is not None and rec["table"] != table:
            continue
        params = rec.get("params", {})
        base = {"record_id": rec["record_id"], "timestamp": rec["timestamp"],
                "chapter": rec["chapter"], "table": rec["table"], "model": rec.get("model", ""),
                "row": str(params.get("paper_row") or rec.get("model", "")),
                "dataset": rec["dataset"], "scale": rec["scale"], "profile": rec["profile"],
                "notes": rec.get("notes", ""), "duration_s": rec.get("duration_s"),
                "git_revision": rec.get("git", {}).get("revision", "unknown"),
                "git_dirty": rec.get("git", {}).get("dirty")}
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


# --------------------------------------------------------------------------------- paper numbers
@lru_cache(maxsize=None)
def _paper_yaml(paper: str) -> dict[str, Any]:
    path = PAPER_DIR / f"{paper}.yml"
    if not path.is_file():
        known = sorted(p.stem for p in PAPER_DIR.glob("*.yml"))
        raise RegistryError(f"no paper file {path} (known papers: {known})")
    data = yaml.safe_load(path.read_text(encoding="utf8"))
    for key in ("paper", "title", "tables", "claims"):
        if key not in data:
            raise RegistryError(f"{path}: missing top-level key {key!r}")
    for tid, tab in data["tables"].items():
        for key in ("caption", "dataset", "columns", "rows"):
            if key not in tab:
                raise RegistryError(f"{path}: table {tid!r} lacks {key!r}")
        for col, spec in tab["columns"].items():
            if spec.get("unit") not in UNIT_FACTORS:
                raise RegistryError(f"{path}: table {tid!r} column {col!r} has unit "
                                    f"{spec.get('unit')!r}; known units {sorted(UNIT_FACTORS)}")
        for row, values in (tab["rows"] or {}).items():
            for col, value in values.items():
                if col not in tab["columns"]:
                    raise RegistryError(f"{path}: table {tid!r} row {row!r} has unknown column {col!r}")
                if not isinstance(value, (int, float)):
                    raise RegistryError(f"{path}: table {tid!r} row {row!r} column {col!r} "
                                        f"is not a number: {value!r}")
    return data


def paper_info(paper: str) -> dict[str, Any]:
    """Title, authors, reference and source file of a paper (from its YAML file)."""
    data = _paper_yaml(paper)
    return {k: data.get(k, "") for k in ("paper", "chapter", "title", "authors", "reference", "source")}


def paper_numbers(paper: str) -> pd.DataFrame:
    """Every number the paper prints in its tables, one row per number.

    Columns: ``paper, table, row, column, label, value, unit, decimals, dataset, caption``.
    """
    data = _paper_yaml(paper)
    rows = []
    for tid, tab in data["tables"].items():
        for row, values in (tab["rows"] or {}).items():
            for col, value in values.items():
                spec = tab["columns"][col]
                rows.append({"paper": paper, "table": tid, "row": row, "column": col,
                             "label": spec.get("label", col), "value": float(value),
                             "unit": spec["unit"], "decimals": int(spec.get("decimals", 3)),
                             "dataset": tab["dataset"], "caption": tab["caption"]})
    return pd.DataFrame(rows, columns=["paper", "table", "row", "column", "label", "value", "unit",
                                       "decimals", "dataset", "caption"])


def _fmt(value: float, decimals: int) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.{decimals}f}"


def paper_vs_run(chapter: str, table: str, paper: str | None = None, profile: str | None = None,
                 dataset: str | None = None, scale: str | None = None,
                 formatted: bool = True) -> pd.DataFrame:
    """The paper's table next to this run's numbers.

    Rows are matched by (row, metric): the record's ``paper_row`` / ``model`` against the paper's
    row name, the record's metric against the paper's column key. The latest record wins.
    Returns columns ``row, metric, unit, paper, this run, dataset, scale, profile, model``;
    ``this run`` is empty where no record exists (not measured), ``paper`` is empty where the
    paper prints no number. With ``formatted=True`` numbers are strings with the column's
    stated number of decimals (the paper's own precision) in the paper's unit; otherwise floats.
    ``df.attrs["caption"]`` names the paper table, the profile, the model(s) and the data.
    """
    paper = paper or chapter
    data = _paper_yaml(paper)
    tab = data["tables"].get(table)
    if tab is None:
        raise RegistryError(f"paper {paper!r} has no table {table!r} (tables: {list(data['tables'])})")
    pn = paper_numbers(paper)
    pn = pn[pn["table"] == table]
    recs = load_records(chapter, table)
    for name, value in (("profile", profile), ("dataset", dataset), ("scale", scale)):
        if value is not None and not recs.empty:
            recs = recs[recs[name] == value]
    if not recs.empty:
        recs = recs.drop_duplicates(subset=["row", "metric"], keep="last")
    columns = tab["columns"]
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in pn.itertuples():
        out[(r.row, r.column)] = {"row": r.row, "metric": r.column, "unit": r.unit,
                                  "paper": r.value, "this run": np.nan, "dataset": "", "scale": "",
                                  "profile": "", "model": ""}
    for r in recs.itertuples():
        spec = columns.get(r.metric, {"unit": "as recorded"})
        unit = spec["unit"]
        entry = out.setdefault((r.row, r.metric), {"row": r.row, "metric": r.metric, "unit": unit,
                                                   "paper": np.nan})
        entry.update({"this run": r.value * UNIT_FACTORS[unit], "dataset": r.dataset,
                      "scale": r.scale, "profile": r.profile, "model": r.model})
    row_order = {name: i for i, name in enumerate(tab["rows"] or {})}
    col_order = {name: i for i, name in enumerate(columns)}
    items = sorted(out.values(), key=lambda e: (row_order.get(e["row"], len(row_order)), e["row"],
                                                col_order.get(e["metric"], len(col_order)),
                                                e["metric"]))
    df = pd.DataFrame(items, columns=["row", "metric", "unit", "paper", "this run", "dataset",
                                      "scale", "profile", "model"])
    if formatted and not df.empty:
        dec = [int(columns.get(m, {}).get("decimals", 3)) for m in df["metric"]]
        df["paper"] = [_fmt(v, d) for v, d in zip(df["paper"], dec)]
        df["this run"] = [_fmt(v, d) for v, d in zip(df["this run"], dec)]
    measured = recs if not recs.empty else None
    if measured is None:
        run_part = "this run: not measured yet (no records)"
    else:
        run_part = ("this run: profile " + ", ".join(sorted(set(measured["profile"])))
                    + "; model " + ", ".join(sorted(set(measured["model"])))
                    + "; data " + ", ".join(sorted(set(measured["dataset"])))
                    + " (scale " + ", ".join(sorted(set(measured["scale"]))) + ")")
    df.attrs["caption"] = (f"{data['title']}. Paper: {tab['caption']}, {tab['dataset']}. "
                           f"{run_part}. Numbers in the paper's units with the paper's precision; "
                           "empty 'this run' = not measured.")
    return df


def show_paper_vs_run(chapter: str, table: str, **kwargs: Any) -> "pd.io.formats.style.Styler":
    """:func:`paper_vs_run` as a captioned table for a notebook (index hidden)."""
    df = paper_vs_run(chapter, table, **kwargs)
    return df.style.hide(axis="index").set_caption(df.attrs["caption"])


# --------------------------------------------------------------------------------- claims
def claims(paper: str) -> list[dict[str, Any]]:
    """The headline claims listed in a paper's YAML file."""
    data = _paper_yaml(paper)
    out = data["claims"] or []
    for c in out:
        for key in ("id", "text", "test"):
            if key not in c:
                raise RegistryError(f"{PAPER_DIR / (paper + '.yml')}: a claim lacks {key!r}: {c}")
    return out


def _claim(paper: str, claim_id: str) -> dict[str, Any]:
    for c in claims(paper):
        if c["id"] == claim_id:
            return c
    known = [c["id"] for c in claims(paper)]
    raise RegistryError(f"paper {paper!r} has no claim {claim_id!r} (claims: {known})")


def register_verdict(chapter: str, claim_id: str, verdict: str, evidence: str, dataset: str,
                     scale: str, profile: str, paper: str | None = None) -> Path:
    """Store a verdict on a paper claim (a ``claim`` record in the same registry).

    ``verdict`` is one of ``reproduced``, ``not reproduced``, ``not yet measured``; ``evidence``
    states what this run measured (numbers computed by the run).
    """
    paper = paper or chapter
    _claim(paper, claim_id)
    if verdict not in VERDICTS:
        raise RegistryError(f"verdict {verdict!r} for claim {claim_id!r} is not one of {VERDICTS}")
    for kind, value in (("evidence", evidence), ("dataset", dataset), ("scale", scale),
                        ("profile", profile)):
        _check_name(kind, value)
    payload = {"kind": "claim", "chapter": chapter, "paper": paper, "claim_id": claim_id,
               "verdict": verdict, "evidence": evidence, "dataset": dataset, "scale": scale,
               "profile": profile, **_provenance()}
    return _write_atomic(payload, records_dir())


@dataclass
class Verdict:
    """Outcome of :func:`evaluate_claim`; ``values`` holds the run's numbers used (record units)."""

    claim_id: str
    verdict: str
    evidence: str
    values: dict[str, float] = field(default_factory=dict)
    dataset: str = ""
    scale: str = ""
    profile: str = ""


def _latest_values(chapter: str, table: str, metric: str, rows: Iterable[str],
                   profile: str | None, dataset: str | None,
                   scale: str | None) -> tuple[dict[str, float], pd.DataFrame]:
    recs = load_records(chapter, table)
    if not recs.empty:
        recs = recs[recs["metric"] == metric]
        for name, value in (("profile", profile), ("dataset", dataset), ("scale", scale)):
            if value is not None:
                recs = recs[recs[name] == value]
        recs = recs[recs["row"].isin(list(rows))].drop_duplicates(subset=["row"], keep="last")
    values = {} if recs.empty else dict(zip(recs["row"], recs["value"].astype(float)))
    return values, recs


def evaluate_claim(chapter: str, claim_id: str, profile: str | None = None,
                   dataset: str | None = None, scale: str | None = None,
                   register: bool = False, paper: str | None = None) -> Verdict:
    """Decide a claim from the latest result records (optionally only of one profile/data/scale).

    Test kinds (the claim's ``test`` in the paper YAML, values in record units):
      * ``comparison``: ``better`` row > every ``worse`` row on ``metric``
        (``higher_is_better: false`` flips it; ``min_margin`` default 0);
      * ``close``: the run's ``row``/``metric`` within ``rel_tol`` of the paper's number;
      * ``threshold``: run value ``op`` (>, >=, <, <=) ``value``;
      * ``spread``: max - min over ``rows`` <= ``max_spread``;
      * ``manual``: only :func:`register_verdict` decides.
    A missing record gives ``not yet measured``. With ``register=True`` the verdict is stored.
    """
    paper = paper or chapter
    test = _claim(paper, claim_id)["test"]
    kind, table, metric = test.get("kind"), test.get("table"), test.get("metric")
    if kind == "manual":
        return Verdict(claim_id, "not yet measured", "manual claim: decided by the notebook")
    if kind == "comparison":
        worse = test["worse"] if isinstance(test["worse"], list) else [test["worse"]]
        needed = [test["better"], *worse]
    elif kind in ("close", "threshold"):
        needed = [test["row"]]
    elif kind == "spread":
        needed = list(test["rows"])
    else:
        raise RegistryError(f"claim {paper}/{claim_id}: unknown test kind {kind!r}")
    values, used = _latest_values(chapter, table, metric, needed, profile, dataset, scale)
    missing = [r for r in needed if r not in values]
    if missing:
        verdict = Verdict(claim_id, "not yet measured",
                          f"no record of {table}/{metric} for rows {missing}", values)
    else:
        ok, evidence = _decide(paper, kind, test, values)
        ran = {r: m for r, m in zip(used["row"], used["model"]) if isinstance(m, str) and m and m != r}
        if ran:   # a paper row measured with another model (e.g. a CPU stand-in): say which
            evidence += "; rows as run: " + "; ".join(f"{r} = {m}" for r, m in ran.items())
        verdict = Verdict(claim_id, "reproduced" if ok else "not reproduced", evidence, values,
                          ", ".join(sorted(set(used["dataset"]))),
                          ", ".join(sorted(set(used["scale"]))),
                          ", ".join(sorted(set(used["profile"]))))
    if register:
        if verdict.verdict == "not yet measured":
            register_verdict(chapter, claim_id, verdict.verdict, verdict.evidence,
                             dataset or "none", scale or "none", profile or "none", paper=paper)
        else:
            register_verdict(chapter, claim_id, verdict.verdict, verdict.evidence, verdict.dataset,
                             verdict.scale, verdict.profile, paper=paper)
    return verdict


def _decide(paper: str, kind: str, test: dict[str, Any], values: dict[str, float]) -> tuple[bool, str]:
    metric = test["metric"]
    if kind == "comparison":
        sign = 1.0 if test.get("higher_is_better", True) else -1.0
        margin = float(test.get("min_margin", 0.0))
        best = values[test["better"]]
        worse = test["worse"] if isinstance(test["worse"], list) else [test["worse"]]
        ok = all(sign * (best - values[w]) > margin for w in worse)
        parts = ", ".join(f"{w} {values[w]:.4g}" for w in worse)
        rel = ">" if sign > 0 else "<"
        return ok, f"this run {metric}: {test['better']} {best:.4g} vs. {parts} (claim: {rel} each)"
    if kind == "close":
        pn = paper_numbers(paper)
        hit = pn[(pn["table"] == test["table"]) & (pn["row"] == test["row"]) & (pn["column"] == metric)]
        if hit.empty:
            raise RegistryError(f"claim test of {paper}: no paper number for "
                                f"{test['table']}/{test['row']}/{metric}")
        paper_value, unit = float(hit["value"].iloc[0]), hit["unit"].iloc[0]
        run = values[test["row"]] * UNIT_FACTORS[unit]
        rel = abs(run - paper_value) / abs(paper_value)
        ok = rel <= float(test["rel_tol"])
        return ok, (f"this run {metric} {run:.4g} {unit} vs. paper {paper_value:g} {unit}: "
                    f"relative difference {rel:.1%} (tolerance {float(test['rel_tol']):.0%})")
    if kind == "threshold":
        ops = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}
        op = test["op"]
        if op not in ops:
            raise RegistryError(f"claim test of {paper}: unknown op {op!r}")
        run = values[test["row"]]
        ok = bool(ops[op](run, float(test["value"])))
        return ok, f"this run {metric} {run:.4g} (claim: {op} {test['value']})"
    spread = max(values.values()) - min(values.values())
    ok = spread <= float(test["max_spread"])
    return ok, (f"this run {metric} from {min(values.values()):.4g} to {max(values.values()):.4g}: "
                f"spread {spread:.4g} (claim: <= {test['max_spread']})")


def load_claim_records() -> pd.DataFrame:
    """Every stored verdict, oldest first."""
    cols = ["record_id", "timestamp", "chapter", "paper", "claim_id", "verdict", "evidence",
            "dataset", "scale", "profile"]
    recs = [{c: r.get(c) for c in cols} for r in _read_all("claim")]
    df = pd.DataFrame(recs, columns=cols)
    return df.sort_values(["timestamp", "record_id"], kind="stable").reset_index(drop=True)


def claims_table(papers: Iterable[str] = PAPERS, profile: str | None = None) -> pd.DataFrame:
    """Every claim of every paper with its latest verdict (or ``not yet measured``).

    Columns: ``paper, claim_id, claim, test, verdict, evidence, dataset, scale, profile, timestamp``.
    ``profile`` keeps only verdicts registered under that profile.
    """
    stored = load_claim_records()
    if profile is not None and not stored.empty:
        stored = stored[stored["profile"] == profile]
    latest = {} if stored.empty else {
        (r.paper, r.claim_id): r for r in stored.drop_duplicates(["paper", "claim_id"], keep="last").itertuples()}
    rows = []
    for paper in papers:
        for c in claims(paper):
            hit = latest.get((paper, c["id"]))
            test = c["test"]
            desc = ", ".join(f"{k}={v}" for k, v in test.items())
            row = {"paper": paper, "claim_id": c["id"], "claim": c["text"], "test": desc,
                   "verdict": "not yet measured", "evidence": "", "dataset": "", "scale": "",
                   "profile": "", "timestamp": ""}
            if hit is not None:
                row.update(verdict=hit.verdict, evidence=hit.evidence, dataset=hit.dataset,
                           scale=hit.scale, profile=hit.profile, timestamp=hit.timestamp)
            rows.append(row)
    return pd.DataFrame(rows, columns=["paper", "claim_id", "claim", "test", "verdict", "evidence",
                                       "dataset", "scale", "profile", "timestamp"])


VERDICT_COLOURS = {"reproduced": "#2e7d32", "not reproduced": "#c62828", "not yet measured": "#9e9e9e"}


def chapter_verdicts(paper: str, profile: str | None = None) -> "pd.io.formats.style.Styler":
    """The claims of one paper with the latest verdict registered by this run (``profile``:
    only verdicts of that profile), as a styled table indexed by claim id with the verdict coloured.

    Nothing in it is typed by hand: claim texts (with the paper's numbers) come from
    ``papers/<paper>.yml``, verdicts and evidence (this run's numbers) from the registry.
    """
    if paper not in PAPERS:
        raise KeyError(f"unknown paper {paper!r}; known: {list(PAPERS)}")
    table = claims_table([paper], profile=profile)
    shown = table[["claim_id", "claim", "verdict", "evidence", "dataset", "scale", "profile"]]

    def colour(value: str) -> str:
        return f"color: {VERDICT_COLOURS[value]}; font-weight: bold" if value in VERDICT_COLOURS else ""

    return (shown.set_index("claim_id").style.map(colour, subset=["verdict"])
            .set_properties(**{"text-align": "left"}))
